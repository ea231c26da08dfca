// PEP (XEP-0163) and the blocking command (XEP-0191) across servers: alice@a.test blocks
// bob@b.test, who had subscribed to one of her nodes; her next publish reaches carol@b.test (same
// remote server, same stream, subscribed after bob) and not bob. mod_blocking checks stanzas as
// they are delivered on a local host, which a remote recipient never is: mod_pep checks the
// blocklist itself before sending.
import assert from 'node:assert/strict';
import { xml, type TestClient } from '../helpers/client.ts';
import { isEvent, itemsOf, ok, ps, publish, pubsubIq } from '../helpers/pep.ts';
import { federationFixture } from '../helpers/s2s.ts';

const PASS = 'pep-blocking-s2s-pass';
const TUNE = 'http://jabber.org/protocol/tune';
const NS_BLOCKING = 'urn:xmpp:blocking';
const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', {}, title));
const OPEN = { 'pubsub#access_model': 'open' };

describe('s2s: PEP notifications to a blocked remote subscriber (XEP-0163, XEP-0191)', function () {
  this.timeout(60000);
  const fx = federationFixture(PASS);
  const sync = (c: TestClient) => c.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  // The first stanza to a.test waits for the s2s stream: a patient timeout.
  const subscribe = (c: TestClient, owner: string) => c.iqRaw(xml('iq', { type: 'set', to: owner }, ps(xml('subscribe', { node: TUNE, jid: c.bare }))), 20000);
  const published = (from: string, id: string) => (el: Parameters<ReturnType<typeof isEvent>>[0]) => isEvent(TUNE, from)(el) && itemsOf(el)[0]?.attrs.id === id;

  it('a blocked remote subscriber gets no notification; an unblocked one on the same server does', async () => {
    const a = await fx.start('a.test', {}, { alice: PASS });
    const b = await fx.start('b.test', {}, { bob: PASS, carol: PASS });
    const alice = await fx.user(a, 'alice');
    const bob = await fx.user(b, 'bob');
    const carol = await fx.user(b, 'carol');
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'first', tune('first'), OPEN)));
    // bob first: his notification is ahead of carol's on the one a.test → b.test stream.
    ok(await subscribe(bob, alice.bare));
    ok(await subscribe(carol, alice.bare));

    ok(await pubsubIq(alice, 'set', publish(TUNE, 'before', tune('before the block'))));
    await bob.expect(published(alice.bare, 'before'), 15000);
    await carol.expect(published(alice.bare, 'before'), 15000);

    await alice.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS_BLOCKING }, xml('item', { jid: bob.bare }))));
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'after', tune('after the block'))));
    await carol.expect(published(alice.bare, 'after'), 15000);
    await sync(bob);
    assert.equal(bob.inbox.drain().filter(published(alice.bare, 'after')).length, 0, 'the blocked remote subscriber got the notification');
  });
});
