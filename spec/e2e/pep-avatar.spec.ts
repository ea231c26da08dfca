// Avatars, vCard4 and nicknames over PEP end to end: a vcard-temp photo becomes a XEP-0084 avatar
// (data + metadata, notified to contacts) and the presence hash of XEP-0153; a XEP-0084 avatar
// becomes the vcard-temp photo (XEP-0398); vCard4 (XEP-0292) and vcard-temp follow each other;
// the nickname (XEP-0172) is an ordinary PEP node that contacts are notified of.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { xml, type Element, type TestClient } from '../helpers/client.ts';
import { advertise, befriend, fetchItems, isEvent, itemsOf, notify, ok, pepFixture, publish, pubsubIq } from '../helpers/pep.ts';

const PASS = 'av-pass';
const DATA = 'urn:xmpp:avatar:data';
const METADATA = 'urn:xmpp:avatar:metadata';
const VCARD4 = 'urn:xmpp:vcard4';
const NS_VCARD4 = 'urn:ietf:params:xml:ns:vcard-4.0';
const NICK = 'http://jabber.org/protocol/nick';
const UPDATE = 'vcard-temp:x:update';
// A 1×1 PNG, and a 2×1 one.
const PNG1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=';
const PNG2 = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAAC0lEQVR4nGNggAIAAAkAAftSuKkAAAAASUVORK5CYII=';
const sha1 = (b64: string) => createHash('sha1').update(Buffer.from(b64, 'base64')).digest('hex');

const vcardSet = (c: TestClient, ...fields: Element[]) => c.iqRaw(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, ...fields)));
const vcardGet = async (c: TestClient) => ok(await c.iqRaw(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })))).getChild('vCard', 'vcard-temp')!;
const photo = (b64: string) => xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, b64));

describe('e2e: avatars, vCard4 and nicknames over PEP (XEP-0084, XEP-0153, XEP-0398, XEP-0292, XEP-0172)', function () {
  const { connect } = pepFixture(['alice', 'bob'], { password: PASS });

  it('vcard-temp photo → XEP-0084 avatar (notified), vCard4, and the presence hash', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    await advertise(alice, []);
    await advertise(bob, [notify(METADATA), notify(VCARD4)]);
    await befriend(alice, bob);
    ok(await vcardSet(alice, xml('FN', {}, 'Alice Liddell'), photo(PNG1)));
    const id = sha1(PNG1);
    const event = await bob.expect(isEvent(METADATA, alice.bare));
    const info = itemsOf(event)[0]?.getChild('metadata', METADATA)?.getChild('info');
    assert.equal(info?.attrs.id, id);
    assert.equal(info?.attrs.type, 'image/png');
    assert.equal(info?.attrs.width, '1');
    // The data is there for anyone who wants it (the vCard is public).
    const data = itemsOf(ok(await pubsubIq(bob, 'get', xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: DATA }, xml('item', { id }))), alice.bare)));
    assert.equal(data[0]?.getChild('data', DATA)?.text(), PNG1);
    // vCard4 follows.
    const v4 = await bob.expect(isEvent(VCARD4, alice.bare));
    assert.equal(itemsOf(v4)[0]?.getChild('vcard', NS_VCARD4)?.getChild('fn')?.getChildText('text'), 'Alice Liddell');
    // The server puts the hash into alice's presence.
    await alice.send(xml('presence', {}, xml('status', {}, 'here')));
    const pres = await bob.expect((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.getChildText('status') === 'here');
    assert.equal(pres.getChild('x', UPDATE)?.getChildText('photo'), id);
  });

  it('XEP-0084 avatar → vcard-temp photo (XEP-0398)', async function () {
    const alice = await connect('alice', 'a2');
    const id = sha1(PNG2);
    ok(await pubsubIq(alice, 'set', publish(DATA, id, xml('data', { xmlns: DATA }, PNG2))));
    ok(await pubsubIq(alice, 'set', publish(METADATA, id, xml('metadata', { xmlns: METADATA }, xml('info', { id, type: 'image/png', bytes: String(Buffer.from(PNG2, 'base64').length) })))));
    const card = await vcardGet(alice);
    assert.equal(card.getChild('PHOTO')?.getChildText('BINVAL'), PNG2);
    assert.equal(card.getChildText('FN'), 'Alice Liddell', 'the rest of the card is kept');
  });

  it('vCard4 publish → vcard-temp, and the nickname node notifies contacts', async function () {
    const alice = await connect('alice', 'a3');
    const bob = await connect('bob', 'b3');
    await advertise(bob, [notify(NICK)]);
    ok(await pubsubIq(alice, 'set', publish(VCARD4, 'current', xml('vcard', { xmlns: NS_VCARD4 },
      xml('fn', {}, xml('text', {}, 'Alice L.')), xml('nickname', {}, xml('text', {}, 'ali'))), { 'pubsub#access_model': 'open' })));
    const card = await vcardGet(alice);
    assert.equal(card.getChildText('FN'), 'Alice L.');
    assert.equal(card.getChildText('NICKNAME'), 'ali');
    ok(await pubsubIq(alice, 'set', publish(NICK, 'current', xml('nick', { xmlns: NICK }, 'Ali'))));
    const nick = await bob.expect(isEvent(NICK, alice.bare));
    assert.equal(itemsOf(nick)[0]?.getChild('nick', NICK)?.text(), 'Ali');
    assert.equal(itemsOf(ok(await fetchItems(bob, NICK, alice.bare)))[0]?.getChild('nick', NICK)?.text(), 'Ali');
  });
});
