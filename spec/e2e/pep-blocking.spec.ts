// PEP (XEP-0163) and the blocking command (XEP-0191): an entity the account blocks receives no
// notification of its nodes — neither as an explicit subscriber (XEP-0060 §6.1) nor as a contact
// whose entity capabilities say `+notify` — and cannot subscribe again; unblocked entities keep
// theirs. Local recipients here; a remote (server-to-server) one in pep-blocking-s2s.spec.ts.
import assert from 'node:assert/strict';
import { xml, type TestClient } from '../helpers/client.ts';
import { advertise, befriend, failure, isEvent, itemsOf, notify, ok, pepFixture, ps, publish, pubsubIq, sync } from '../helpers/pep.ts';

const PASS = 'pep-blocking-pass';
const TUNE = 'http://jabber.org/protocol/tune';
const NS_BLOCKING = 'urn:xmpp:blocking';
const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', {}, title));
const OPEN = { 'pubsub#access_model': 'open' };

describe('e2e: PEP notifications and blocked entities (XEP-0163, XEP-0191)', function () {
  const { connect } = pepFixture(['alice', 'bob', 'carol', 'dave'], { password: PASS });
  const block = (c: TestClient, ...jids: string[]) => c.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid })))));
  const subscribe = (c: TestClient, owner: string) => pubsubIq(c, 'set', ps(xml('subscribe', { node: TUNE, jid: c.bare })), owner);

  it('sends nothing to a blocked explicit subscriber or a blocked +notify contact', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    const carol = await connect('carol', 'c');
    const dave = await connect('dave', 'd');
    await advertise(alice, []);
    // An open node: bob subscribes to it without sharing presence.
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'first', tune('first'), OPEN)));
    await advertise(bob, []);
    ok(await subscribe(bob, alice.bare));
    // carol, then dave: contacts whose caps ask for tunes (dave's notification goes out last).
    await advertise(carol, [notify(TUNE)]);
    await befriend(alice, carol);
    await advertise(dave, [notify(TUNE)]);
    await befriend(alice, dave);

    // Before the block all three hear a publish.
    let id = 0;
    for (;;) {
      ok(await pubsubIq(alice, 'set', publish(TUNE, `t${++id}`, tune(`song ${id}`))));
      const heard = await dave.expect((el) => isEvent(TUNE, alice.bare)(el) && itemsOf(el)[0]?.attrs.id === `t${id}`, 2000).catch(() => undefined);
      if (heard) break;
      assert.ok(id < 5, 'dave never got a notification');
    }
    await bob.expect((el) => isEvent(TUNE, alice.bare)(el) && itemsOf(el)[0]?.attrs.id === `t${id}`);
    await carol.expect((el) => isEvent(TUNE, alice.bare)(el) && itemsOf(el)[0]?.attrs.id === `t${id}`);

    await block(alice, bob.bare, carol.bare);
    await Promise.all([sync(bob), sync(carol)]);
    bob.inbox.drain();
    carol.inbox.drain();
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'after', tune('after the block'))));
    await dave.expect((el) => isEvent(TUNE, alice.bare)(el) && itemsOf(el)[0]?.attrs.id === 'after');
    await Promise.all([sync(bob), sync(carol)]);
    assert.deepEqual(bob.inbox.drain().filter(isEvent(TUNE)).map(String), [], 'the blocked subscriber got a notification');
    assert.deepEqual(carol.inbox.drain().filter(isEvent(TUNE)).map(String), [], 'the blocked +notify contact got a notification');

    // A blocked entity cannot subscribe again or read the items (XEP-0191 §3.3: the account looks absent).
    assert.equal(failure(await subscribe(bob, alice.bare)).condition, 'service-unavailable');
    assert.equal(failure(await pubsubIq(bob, 'get', ps(xml('items', { node: TUNE })), alice.bare)).condition, 'service-unavailable');
  });

  it('sends no last item to a blocked subscriber’s resource that comes online', async function () {
    const alice = await connect('alice', 'a2');
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'latest', tune('latest'), OPEN)));
    // bob is still blocked (previous test); dave is not and gets the last item on his presence.
    const bob = await connect('bob', 'b2');
    await advertise(bob, [notify(TUNE)]);
    const dave = await connect('dave', 'd2');
    await advertise(dave, [notify(TUNE)]);
    const last = await dave.expect(isEvent(TUNE, alice.bare));
    assert.equal(itemsOf(last)[0]?.attrs.id, 'latest');
    await sync(bob);
    assert.deepEqual(bob.inbox.drain().filter(isEvent(TUNE)).map(String), [], 'the blocked entity got the last item');
  });
});
