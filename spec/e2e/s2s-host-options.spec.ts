// Per-host s2s policy (doc/configuration.md): s2sBlocklist / s2sAllowlist, s2sSecureAuth and the
// other s2s policy options set in a virtual host's entry apply to the streams whose local end is
// that host — the `from` of an outgoing stream, the `to` of an incoming stream or dialback request
// — while the server's other host keeps the global values.
import assert from 'node:assert/strict';
import { stanzaErrorCondition, xml } from '../helpers/client.ts';
import { federationFixture, listenerPort, publish } from '../helpers/s2s.ts';
import type { TestServer } from '../helpers/server.ts';

const PASS = 's2s-host-options-pass';

describe('s2s: per-host s2s options', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);

  /** a.test (global options) and a2.test (its own) on one server; b.test on another; without bidi, one stream per direction. */
  const servers = async (a2: Record<string, unknown>): Promise<{ a: TestServer; b: TestServer }> => {
    const a = await fx.start('a.test', { s2sBidi: false, virtualHosts: { 'a.test': {}, 'a2.test': a2 } }, { alice: PASS });
    publish(fx.dns, 'a2.test', listenerPort(a, 's2s'));
    const made = await a.cli(['adduser', 'carol@a2.test'], `${PASS}\n`);
    assert.equal(made.code, 0, made.stderr);
    const b = await fx.start('b.test', { s2sBidi: false }, { bob: PASS });
    return { a, b };
  };
  const chat = async (from: Awaited<ReturnType<typeof fx.user>>, to: string, id: string) => {
    await from.send(xml('message', { to, id, type: 'chat' }, xml('body', {}, id)));
  };

  it("applies a virtual host's s2sBlocklist to its own streams both ways, not to the server's other host", async () => {
    const { a, b } = await servers({ s2sBlocklist: ['b.test'] });
    const alice = await fx.user(a, 'alice');
    const carol = await fx.user(a, 'carol', 'a2.test');
    const bob = await fx.user(b, 'bob');

    await chat(alice, bob.jid, 'from-a');
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'from-a', 20000);
    // Outgoing from a2.test: refused before any connection.
    await chat(carol, bob.jid, 'from-a2');
    const out = await carol.expect((s) => s.name === 'message' && s.attrs.id === 'from-a2' && s.attrs.type === 'error', 20000);
    assert.equal(stanzaErrorCondition(out), 'policy-violation');
    // Incoming to a2.test: the stream header is refused.
    await chat(bob, 'carol@a2.test', 'to-a2');
    const back = await bob.expect((s) => s.name === 'message' && s.attrs.id === 'to-a2' && s.attrs.type === 'error', 40000);
    assert.equal(stanzaErrorCondition(back), 'remote-server-timeout');
    await carol.expectNothing((s) => s.name === 'message' && s.getChildText('body') === 'to-a2', 500);
    assert.match(a.output, /b\.test is not allowed to federate with this server/);
    assert.match(b.output, /no stream b\.test → a2\.test: a2\.test sent a stream error: policy-violation/);
    // b.test → a.test is unaffected.
    await chat(bob, alice.jid, 'to-a');
    await alice.expect((s) => s.name === 'message' && s.getChildText('body') === 'to-a', 20000);
  });

  it("applies a virtual host's s2sSecureAuth to its own streams both ways: dialback refused for a2.test, kept for a.test", async () => {
    // Self-signed certificates everywhere: only dialback could authenticate.
    const { a, b } = await servers({ s2sSecureAuth: true });
    const alice = await fx.user(a, 'alice');
    const carol = await fx.user(a, 'carol', 'a2.test');
    const bob = await fx.user(b, 'bob');

    await chat(carol, bob.jid, 'from-a2');
    const out = await carol.expect((s) => s.name === 'message' && s.attrs.id === 'from-a2' && s.attrs.type === 'error', 20000);
    assert.equal(stanzaErrorCondition(out), 'remote-server-timeout');
    await a.waitForOutput(/b\.test did not present a valid certificate .* and one is required \(s2sSecureAuth, s2sSecureDomains\)/);

    await chat(bob, 'carol@a2.test', 'to-a2');
    const back = await bob.expect((s) => s.name === 'message' && s.attrs.id === 'to-a2' && s.attrs.type === 'error', 40000);
    assert.equal(stanzaErrorCondition(back), 'remote-server-timeout');
    await a.waitForOutput(/dialback for b\.test refused: s2sSecureAuth/);
    assert.doesNotMatch(a.output, /s2s stream from b\.test to a2\.test authenticated/);

    await chat(alice, bob.jid, 'from-a');
    await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'from-a', 20000);
    await chat(bob, alice.jid, 'to-a');
    await alice.expect((s) => s.name === 'message' && s.getChildText('body') === 'to-a', 20000);
    await a.waitForOutput(/s2s stream from b\.test to a\.test authenticated \(dialback/);
  });
});
