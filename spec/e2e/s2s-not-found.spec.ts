// A remote domain that cannot exist bounces at once (RFC 6120 §4.9.3.19, §8.3.3): when DNS
// answers that neither its SRV records nor its address exist (NXDOMAIN), or that it has no
// address at all, the stanza is answered remote-server-not-found without waiting for
// s2sQueueTimeout; a temporary failure (SERVFAIL) keeps the retries and bounces with
// remote-server-timeout when they run out (doc/federation.md).
import assert from 'node:assert/strict';
import { stanzaErrorCondition, xml } from '../helpers/client.ts';
import { federationFixture } from '../helpers/s2s.ts';

const PASS = 's2s-not-found-pass';

describe('s2s: remote domains that do not exist', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);

  it('bounces at once with remote-server-not-found for a domain DNS says does not exist (NXDOMAIN), without retries', async () => {
    // Stanzas would wait 50 s for a reachable-later domain; the expectation below allows 20.
    const a = await fx.start('a.test', { s2sQueueTimeout: 50 }, { alice: PASS });
    const alice = await fx.user(a, 'alice');
    await alice.send(xml('message', { to: 'x@ghost.test', id: 'nx1', type: 'chat' }, xml('body', {}, 'hello?')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'nx1' && s.attrs.type === 'error', 20000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-not-found');
    assert.equal(error.attrs.from, 'x@ghost.test');
    await a.waitForOutput(/ghost\.test cannot be resolved: ghost\.test does not exist \(NXDOMAIN\)/);
    assert.doesNotMatch(a.output, /ghost\.test.*trying again/);
  });

  it('bounces at once when the domain exists but has no SRV records and no address', async () => {
    const a = await fx.start('a.test', { s2sQueueTimeout: 50 }, { alice: PASS });
    fx.dns.set('mailonly.test', []);
    const alice = await fx.user(a, 'alice');
    await alice.send(xml('message', { to: 'x@mailonly.test', id: 'na1', type: 'chat' }, xml('body', {}, 'hello?')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'na1' && s.attrs.type === 'error', 20000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-not-found');
    await a.waitForOutput(/mailonly\.test cannot be resolved: mailonly\.test has no address records/);
  });

  it('keeps waiting and retrying on a temporary DNS failure (SERVFAIL): remote-server-timeout after s2sQueueTimeout', async () => {
    const a = await fx.start('a.test', { s2sQueueTimeout: 3 }, { alice: PASS });
    for (const name of ['_xmpp-server._tcp.flaky.test', '_xmpps-server._tcp.flaky.test', 'flaky.test']) fx.dns.behave(name, 'servfail');
    const alice = await fx.user(a, 'alice');
    await alice.send(xml('message', { to: 'x@flaky.test', id: 'sf1', type: 'chat' }, xml('body', {}, 'hello?')));
    const error = await alice.expect((s) => s.name === 'message' && s.attrs.id === 'sf1' && s.attrs.type === 'error', 40000);
    assert.equal(stanzaErrorCondition(error), 'remote-server-timeout');
    assert.match(a.output, /s2s route a\.test → flaky\.test: cannot connect to flaky\.test: .*; trying again in 1 s/);
  });
});
