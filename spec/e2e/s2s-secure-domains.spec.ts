// Per-remote-domain certificate requirements (Prosody's s2s_secure_domains / s2s_insecure_domains):
// with s2sSecureAuth off, the domains in s2sSecureDomains must still prove themselves with a
// certificate (no dialback), in both directions; with it on, those in s2sInsecureDomains may use
// dialback.
import assert from 'node:assert/strict';
import { stanzaErrorCondition, xml } from '../helpers/client.ts';
import { federationFixture } from '../helpers/s2s.ts';

const PASS = 's2s-secure-pass';

describe('s2s: s2sSecureDomains and s2sInsecureDomains', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const { start, user } = fx;

  it('refuses dialback with a domain in s2sSecureDomains both ways, and keeps it for the others', async () => {
    // Self-signed certificates everywhere: only dialback could authenticate.
    const a = await start('a.test', { s2sSecureDomains: ['b.test'], s2sBidi: false }, { alice: PASS });
    const b = await start('b.test', { s2sBidi: false }, { bob: PASS });
    const c = await start('c.test', { s2sBidi: false }, { carol: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const carol = await user(c, 'carol');

    await alice.send(xml('message', { to: bob.jid, id: 'ab', type: 'chat' }, xml('body', {}, 'needs a certificate')));
    const out = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'ab' && s.attrs.type === 'error', 20000);
    assert.equal(stanzaErrorCondition(out), 'remote-server-timeout');
    await a.waitForOutput(/b\.test did not present a valid certificate .* and one is required \(s2sSecureAuth, s2sSecureDomains\)/);

    await bob.send(xml('message', { to: alice.jid, id: 'ba', type: 'chat' }, xml('body', {}, 'dialback please')));
    const back = await bob.expect((s) => s.name === 'message' && s.attrs.id === 'ba' && s.attrs.type === 'error', 40000);
    assert.equal(stanzaErrorCondition(back), 'remote-server-timeout');
    assert.doesNotMatch(a.output, /s2s stream from b\.test to a\.test authenticated/);

    await alice.send(xml('message', { to: carol.jid, type: 'chat' }, xml('body', {}, 'dialback is fine with c')));
    await carol.expect((s) => s.name === 'message' && s.getChildText('body') === 'dialback is fine with c', 20000);
    await a.waitForOutput(/s2s stream a\.test → c\.test established \(dialback/);
  });

  it('allows dialback with a domain in s2sInsecureDomains under s2sSecureAuth', async () => {
    const a = await start('a.test', { s2sSecureAuth: true, s2sInsecureDomains: ['b.test'] }, { alice: PASS });
    const b = await start('b.test', {}, { bob: PASS });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'dialback allowed')));
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'dialback allowed', 20000);
    await bob.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'and back')));
    await alice.expect((s) => s.name === 'message' && s.getChildText('body') === 'and back', 20000);
    await a.waitForOutput(/s2s stream a\.test → b\.test established \(dialback/);
  });
});
