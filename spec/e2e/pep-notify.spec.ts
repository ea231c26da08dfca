// PEP (XEP-0163) publish and notifications end to end: auto-create on publish, notifications from
// the account's bare JID to its own resources and to contacts that advertise `node+notify` in
// their entity capabilities (XEP-0115, resolved by the server with disco#info), nothing to contacts
// without it, retract notifications, and the last item to a resource that comes online or gains
// `+notify` (§4.3.4).
import assert from 'node:assert/strict';
import { xml } from '../helpers/client.ts';
import { advertise, befriend, fetchItems, isEvent, itemsOf, notify, ok, pepFixture, ps, publish, pubsubIq, sync } from '../helpers/pep.ts';

const PASS = 'pep-pass';
const TUNE = 'http://jabber.org/protocol/tune';
const NS_DELAY = 'urn:xmpp:delay';
const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', {}, title));

describe('e2e: PEP notifications (XEP-0163 §4, XEP-0115 +notify)', function () {
  const { connect } = pepFixture(['alice', 'bob', 'carol'], { password: PASS });

  it('auto-creates the node, notifies own and contacts’ +notify resources only, and retracts', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    const carol = await connect('carol', 'c');
    await advertise(alice, [notify(TUNE)]);
    await advertise(bob, [notify(TUNE)]);
    await advertise(carol, []);
    await befriend(alice, bob);
    await befriend(alice, carol);

    // Publishing may race the caps resolution of the presence just exchanged: publish until bob hears.
    let id = 0;
    for (;;) {
      ok(await pubsubIq(alice, 'set', publish(TUNE, `t${++id}`, tune(`song ${id}`))));
      const heard = await bob.expect(isEvent(TUNE, alice.bare), 2000).catch(() => undefined);
      if (heard) {
        assert.equal(heard.attrs.type, 'headline');
        assert.equal(itemsOf(heard)[0]?.attrs.id, `t${id}`);
        assert.equal(itemsOf(heard)[0]?.getChild('tune', TUNE)?.getChildText('title'), `song ${id}`);
        break;
      }
      assert.ok(id < 5, 'bob never got a notification');
    }
    const own = await alice.expect((el) => isEvent(TUNE, alice.bare)(el) && itemsOf(el)[0]?.attrs.id === `t${id}`);
    assert.equal(own.attrs.to, alice.jid);
    await sync(carol);
    assert.equal(carol.inbox.drain().filter(isEvent(TUNE)).length, 0, 'carol did not ask for tunes');

    // The node kept one item (the PEP default max_items).
    const items = itemsOf(ok(await fetchItems(bob, TUNE, alice.bare)));
    assert.deepEqual(items.map((i) => i.attrs.id), [`t${id}`]);

    // Retract: bob hears it.
    ok(await pubsubIq(alice, 'set', ps(xml('retract', { node: TUNE, notify: 'true' }, xml('item', { id: `t${id}` })))));
    const retracted = await bob.expect(isEvent(TUNE, alice.bare));
    assert.equal(retracted.getChild('event')?.getChild('items')?.getChild('retract')?.attrs.id, `t${id}`);
    assert.equal(itemsOf(ok(await fetchItems(bob, TUNE, alice.bare))).length, 0);
  });

  it('sends the last item, delayed, to a contact’s resource that comes online with +notify', async function () {
    const alice = await connect('alice', 'a2');
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'last', tune('the last one'))));
    const bob = await connect('bob', 'b2');
    await advertise(bob, [notify(TUNE)]);
    const last = await bob.expect(isEvent(TUNE, alice.bare));
    assert.equal(itemsOf(last)[0]?.attrs.id, 'last');
    assert.ok(last.getChild('delay', NS_DELAY), 'the last item carries its publication time');
  });

  it('sends the last item when a resource’s caps change to add +notify', async function () {
    const alice = await connect('alice', 'a3');
    ok(await pubsubIq(alice, 'set', publish(TUNE, 'again', tune('again'))));
    const bob = await connect('bob', 'b3');
    await advertise(bob, []);
    await sync(bob);
    await advertise(bob, [notify(TUNE)]);
    const last = await bob.expect(isEvent(TUNE, alice.bare));
    assert.equal(itemsOf(last)[0]?.attrs.id, 'again');
  });
});
