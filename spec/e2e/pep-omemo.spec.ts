// OMEMO (XEP-0384) at the protocol level, as clients do it: the device list and a bundle are
// published with publish-options (access_model open; bundles max_items max), a stranger (no
// roster relationship) fetches both to start a session, and a contact that advertises
// `urn:xmpp:omemo:2:devices+notify` receives the device-list notification. The legacy
// Conversations namespace (eu.siacs.conversations.axolotl) works the same way.
import assert from 'node:assert/strict';
import { xml } from '../helpers/client.ts';
import { advertise, befriend, fetchItems, isEvent, itemsOf, notify, ok, pepFixture, publish, pubsubIq, sync } from '../helpers/pep.ts';

const PASS = 'omemo-pass';
const NS_OMEMO = 'urn:xmpp:omemo:2';
const DEVICES = 'urn:xmpp:omemo:2:devices';
const BUNDLES = 'urn:xmpp:omemo:2:bundles';
const LEGACY = 'eu.siacs.conversations.axolotl';
const LEGACY_DEVICES = `${LEGACY}.devicelist`;

const devices = (...ids: number[]) => xml('devices', { xmlns: NS_OMEMO }, ...ids.map((id) => xml('device', { id: String(id) })));
const bundle = (seed: string) => xml('bundle', { xmlns: NS_OMEMO },
  xml('spk', { id: '1' }, Buffer.from(`spk-${seed}`).toString('base64')),
  xml('spks', {}, Buffer.from(`sig-${seed}`).toString('base64')),
  xml('ik', {}, Buffer.from(`ik-${seed}`).toString('base64')),
  xml('prekeys', {}, ...[1, 2, 3].map((i) => xml('pk', { id: String(i) }, Buffer.from(`pk-${seed}-${i}`).toString('base64')))));

describe('e2e: OMEMO device lists and bundles (XEP-0384 over PEP)', function () {
  const { connect } = pepFixture(['alice', 'bob', 'stranger'], { password: PASS });

  it('publishes with access_model open, a stranger fetches, a contact is notified', async function () {
    const alice = await connect('alice', 'phone');
    const bob = await connect('bob', 'laptop');
    const stranger = await connect('stranger', 'x');
    await advertise(alice, [notify(DEVICES)]);
    await advertise(bob, [notify(DEVICES)]);
    await advertise(stranger, [notify(DEVICES)]);
    await befriend(alice, bob);

    ok(await pubsubIq(alice, 'set', publish(BUNDLES, '1001', bundle('a1'), { 'pubsub#max_items': 'max', 'pubsub#access_model': 'open' })));
    ok(await pubsubIq(alice, 'set', publish(DEVICES, 'current', devices(1001), { 'pubsub#access_model': 'open' })));

    // The contact hears the device list (from alice's bare JID).
    const heard = await bob.expect((el) => isEvent(DEVICES, alice.bare)(el) && itemsOf(el)[0]?.getChild('devices', NS_OMEMO) !== undefined);
    assert.deepEqual(itemsOf(heard)[0]!.getChild('devices', NS_OMEMO)!.getChildren('device').map((d) => d.attrs.id), ['1001']);

    // The stranger fetches both, although it shares no presence with alice.
    const list = itemsOf(ok(await fetchItems(stranger, DEVICES, alice.bare)));
    assert.equal(list[0]?.attrs.id, 'current');
    assert.deepEqual(list[0]?.getChild('devices', NS_OMEMO)?.getChildren('device').map((d) => d.attrs.id), ['1001']);
    const b = itemsOf(ok(await pubsubIq(stranger, 'get', xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' },
      xml('items', { node: BUNDLES }, xml('item', { id: '1001' }))), alice.bare)));
    assert.equal(b[0]?.getChild('bundle', NS_OMEMO)?.getChild('prekeys')?.getChildren('pk').length, 3);

    // A second device: the bundle node keeps both bundles (max_items max); the list is replaced and notified.
    ok(await pubsubIq(alice, 'set', publish(BUNDLES, '1002', bundle('a2'), { 'pubsub#max_items': 'max', 'pubsub#access_model': 'open' })));
    ok(await pubsubIq(alice, 'set', publish(DEVICES, 'current', devices(1001, 1002), { 'pubsub#access_model': 'open' })));
    const again = await bob.expect((el) => isEvent(DEVICES, alice.bare)(el) && itemsOf(el)[0]?.getChild('devices', NS_OMEMO)?.getChildren('device').length === 2);
    assert.ok(again);
    assert.deepEqual(itemsOf(ok(await fetchItems(stranger, BUNDLES, alice.bare))).map((i) => i.attrs.id).sort(), ['1001', '1002']);
    // The stranger, not a contact, gets no notification of a device list it did not subscribe to.
    await sync(stranger);
    assert.equal(stranger.inbox.drain().filter(isEvent(DEVICES, alice.bare)).length, 0);
  });

  it('legacy OMEMO (Conversations): device list and bundle nodes with open access', async function () {
    const alice = await connect('alice', 'old');
    const stranger = await connect('stranger', 'y');
    const list = xml('list', { xmlns: LEGACY }, xml('device', { id: '77' }));
    ok(await pubsubIq(alice, 'set', publish(LEGACY_DEVICES, 'current', list, { 'pubsub#access_model': 'open' })));
    const legacyBundle = xml('bundle', { xmlns: LEGACY }, xml('signedPreKeyPublic', { signedPreKeyId: '1' }, 'AAAA'));
    ok(await pubsubIq(alice, 'set', publish(`${LEGACY}.bundles:77`, 'current', legacyBundle, { 'pubsub#access_model': 'open' })));
    assert.equal(itemsOf(ok(await fetchItems(stranger, LEGACY_DEVICES, alice.bare)))[0]?.getChild('list', LEGACY)?.getChild('device')?.attrs.id, '77');
    assert.ok(itemsOf(ok(await fetchItems(stranger, `${LEGACY}.bundles:77`, alice.bare)))[0]?.getChild('bundle', LEGACY));
  });
});
