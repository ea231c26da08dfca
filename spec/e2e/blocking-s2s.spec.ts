// The blocking command (XEP-0191) towards another server: alice@a.test blocks bob@b.test, a
// contact with a mutual subscription. What the server sends on her behalf (her presence
// broadcast) must not reach him while carol@b.test, an unblocked contact on the same server and
// stream, still gets it; unblocking sends him her presence again (§3.3, §3.4).
import assert from 'node:assert/strict';
import { xml, type TestClient } from '../helpers/client.ts';
import { federate, federationFixture } from '../helpers/s2s.ts';

const PASS = 'blocking-s2s-pass';
const NS = 'urn:xmpp:blocking';

describe('s2s: blocking a contact on another server (XEP-0191)', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const sync = (c: TestClient) => c.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  const status = (from: TestClient, text: string) => (el: Parameters<Parameters<TestClient['expect']>[0]>[0]) =>
    el.name === 'presence' && el.attrs.from === from.jid && el.getChildText('status') === text;

  it("a blocked remote contact gets none of the user's presence broadcasts; an unblocked one on the same server does", async () => {
    const a = await fx.start('a.test', {}, { alice: PASS });
    const b = await fx.start('b.test', {}, { bob: PASS, carol: PASS });
    const alice = await fx.user(a, 'alice');
    const bob = await fx.user(b, 'bob');
    const carol = await fx.user(b, 'carol');
    await federate(alice, bob);
    await federate(alice, carol);

    await alice.send(xml('presence', {}, xml('status', {}, 'before')));
    await bob.expect(status(alice, 'before'), 15000);
    await carol.expect(status(alice, 'before'), 15000);

    await alice.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS }, xml('item', { jid: bob.bare }))));
    await bob.expect((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.attrs.type === 'unavailable', 15000);
    await alice.send(xml('presence', {}, xml('status', {}, 'while blocked')));
    await carol.expect(status(alice, 'while blocked'), 15000);
    await sync(bob);
    assert.equal(bob.inbox.drain().filter(status(alice, 'while blocked')).length, 0, 'the blocked remote contact got the presence');

    await alice.iq(xml('iq', { type: 'set' }, xml('unblock', { xmlns: NS }, xml('item', { jid: bob.bare }))));
    await bob.expect(status(alice, 'while blocked'), 15000);
  });
});
