// vCard4 in an iq (XEP-0292 0.11 §4.1; 0.12.0 keeps only PEP) over the account's urn:xmpp:vcard4
// PEP node: an empty <vcard/> before there is a card; a set by the account publishes to the node
// (a contact asking for +notify hears it; vcard-temp follows) and a get by anyone the node's
// access model admits returns it; a PEP publish shows in the iq view; a set to someone else's
// account is forbidden; a stranger asking a presence-only card gets the PEP error.
import assert from 'node:assert/strict';
import { xml, type Element, type TestClient } from '../helpers/client.ts';
import { advertise, befriend, failure, fetchItems, form, isEvent, itemsOf, NODE_CONFIG, notify, ok, owner, pepFixture, publish, pubsubIq } from '../helpers/pep.ts';

const PASS = 'vcard4-iq-pass';
const VCARD4 = 'urn:xmpp:vcard4';
const NS_VCARD4 = 'urn:ietf:params:xml:ns:vcard-4.0';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

const card = (fn: string, nick: string) => xml('vcard', { xmlns: NS_VCARD4 }, xml('fn', {}, xml('text', {}, fn)), xml('nickname', {}, xml('text', {}, nick)));
const fnOf = (vcard: Element | undefined) => vcard?.getChild('fn')?.getChildText('text');
const get4 = (c: TestClient, to?: string) => c.iqRaw(xml('iq', to ? { type: 'get', to } : { type: 'get' }, xml('vcard', { xmlns: NS_VCARD4 })));
const set4 = (c: TestClient, vcard: Element, to?: string) => c.iqRaw(xml('iq', to ? { type: 'set', to } : { type: 'set' }, vcard));

describe('e2e: vCard4 iq interface over PEP (XEP-0292)', function () {
  const { connect } = pepFixture(['alice', 'bob', 'carol'], { password: PASS });

  it('get, set, PEP in step, access model, and someone else’s card', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    const carol = await connect('carol', 'c');
    await advertise(alice, []);
    await advertise(bob, [notify(VCARD4)]);
    await befriend(alice, bob);

    // The account advertises vCard4.
    const info = await alice.iq(xml('iq', { type: 'get', to: alice.bare }, xml('query', { xmlns: NS_DISCO_INFO })));
    assert.ok(info.getChild('query')?.getChildren('feature').some((f) => f.attrs.var === NS_VCARD4));

    // No card yet: an empty <vcard/> (§4.1.1), to the account itself and to others.
    for (const [c, to] of [[alice, undefined], [bob, alice.bare]] as const) {
      const empty = ok(await get4(c, to)).getChild('vcard', NS_VCARD4);
      assert.ok(empty, 'a <vcard/> in the result');
      assert.equal(empty.getChildElements().length, 0);
    }

    // Set by the account: a PEP publish (bob hears it), read back over iq and PEP, vcard-temp follows.
    ok(await set4(alice, card('Alice Liddell', 'alice')));
    const event = await bob.expect(isEvent(VCARD4, alice.bare));
    assert.equal(fnOf(itemsOf(event)[0]?.getChild('vcard', NS_VCARD4)), 'Alice Liddell');
    assert.equal(fnOf(ok(await get4(bob, alice.bare)).getChild('vcard', NS_VCARD4)), 'Alice Liddell');
    assert.equal(fnOf(ok(await get4(carol, alice.bare)).getChild('vcard', NS_VCARD4)), 'Alice Liddell', 'a card set over iq is public, like vcard-temp');
    assert.equal(fnOf(itemsOf(ok(await fetchItems(alice, VCARD4)))[0]?.getChild('vcard', NS_VCARD4)), 'Alice Liddell');
    const temp = ok(await alice.iqRaw(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })))).getChild('vCard', 'vcard-temp');
    assert.equal(temp?.getChildText('FN'), 'Alice Liddell');

    // A PEP publish is what the iq returns next.
    ok(await pubsubIq(alice, 'set', publish(VCARD4, 'current', card('Alice P. Liddell', 'alice'))));
    assert.equal(fnOf(ok(await get4(alice)).getChild('vcard', NS_VCARD4)), 'Alice P. Liddell');

    // Only the account sets its card.
    assert.equal(failure(await set4(bob, card('Mallory', 'm'), alice.bare)).condition, 'forbidden');
    assert.equal(fnOf(ok(await get4(bob, alice.bare)).getChild('vcard', NS_VCARD4)), 'Alice P. Liddell');

    // The node's access model decides who reads: presence-only keeps a stranger out, not a contact.
    ok(await pubsubIq(alice, 'set', owner(xml('configure', { node: VCARD4 }, form(NODE_CONFIG, { 'pubsub#access_model': 'presence' })))));
    assert.equal(failure(await get4(carol, alice.bare)).app, 'presence-subscription-required');
    assert.equal(fnOf(ok(await get4(bob, alice.bare)).getChild('vcard', NS_VCARD4)), 'Alice P. Liddell');
  });
});
