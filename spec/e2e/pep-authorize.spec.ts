// The 'authorize' access model on a PEP node (XEP-0060 §4.5, §6.1.6, §8.6): a subscription is
// pending until the account approves it; the account receives the request as a
// subscribe_authorization form from its own PEP service and answers it by submitting the form to
// its bare JID; an approved subscriber is told, gets the last item and reads the node; a denied
// one is told and still cannot read.
import assert from 'node:assert/strict';
import { xml, type Element, type TestClient } from '../helpers/client.ts';
import { failure, fetchItems, form, itemsOf, NS_PUBSUB_EVENT, ok, pepFixture, ps, publish, pubsubIq, sync } from '../helpers/pep.ts';

const PASS = 'pep-authorize-pass';
const NODE = 'urn:test:diary';
const AUTH_FORM = 'http://jabber.org/protocol/pubsub#subscribe_authorization';
const entry = (text: string) => xml('entry', { xmlns: NODE }, text);

const isRequest = (from: string, subscriber: string) => (el: Element): boolean => {
  if (el.name !== 'message' || el.attrs.from !== from) return false;
  const x = el.getChild('x', 'jabber:x:data');
  const field = (v: string) => x?.getChildren('field').find((f) => f.attrs.var === v)?.getChildText('value');
  return x?.attrs.type === 'form' && field('FORM_TYPE') === AUTH_FORM && field('pubsub#subscriber_jid') === subscriber;
};
const subscriptionEvent = (from: string, state: string) => (el: Element): boolean =>
  el.name === 'message' && el.attrs.from === from && el.getChild('event', NS_PUBSUB_EVENT)?.getChild('subscription')?.attrs.subscription === state;

describe('e2e: the authorize access model on PEP nodes (XEP-0060 §4.5, §8.6)', function () {
  const { connect } = pepFixture(['alice', 'bob', 'carol'], { password: PASS, presence: true });
  const subscribe = (c: TestClient, owner: string) => pubsubIq(c, 'set', ps(xml('subscribe', { node: NODE, jid: c.bare })), owner);
  /** The owner's answer: the request's form, submitted with pubsub#allow, to the account's own bare JID. */
  const answer = (c: TestClient, request: Element, allow: boolean) => {
    const x = request.getChild('x', 'jabber:x:data')!;
    const value = (v: string) => x.getChildren('field').find((f) => f.attrs.var === v)?.getChildText('value') ?? '';
    return c.send(xml('message', { to: c.bare }, form(AUTH_FORM, {
      'pubsub#subid': value('pubsub#subid'), 'pubsub#node': value('pubsub#node'),
      'pubsub#subscriber_jid': value('pubsub#subscriber_jid'), 'pubsub#allow': allow ? 'true' : 'false',
    })));
  };

  it('pending until the account approves; approved reads and gets the last item, denied does not', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    const carol = await connect('carol', 'c');
    ok(await pubsubIq(alice, 'set', publish(NODE, 'day1', entry('day one'), { 'pubsub#access_model': 'authorize' })));

    // bob asks: pending, the account gets the request, bob cannot read yet.
    const pending = ok(await subscribe(bob, alice.bare));
    assert.equal(pending.getChild('pubsub')?.getChild('subscription')?.attrs.subscription, 'pending');
    const request = await alice.expect(isRequest(alice.bare, bob.bare));
    assert.equal(failure(await fetchItems(bob, NODE, alice.bare)).app, 'not-subscribed');

    // Approved: bob is told, gets the last item, and reads the node.
    await answer(alice, request, true);
    await bob.expect(subscriptionEvent(alice.bare, 'subscribed'));
    const last = await bob.expect((el) => el.name === 'message' && el.attrs.from === alice.bare && el.getChild('event', NS_PUBSUB_EVENT)?.getChild('items')?.attrs.node === NODE);
    assert.equal(itemsOf(last)[0]?.attrs.id, 'day1');
    assert.deepEqual(itemsOf(ok(await fetchItems(bob, NODE, alice.bare))).map((i) => i.attrs.id), ['day1']);

    // carol asks and is denied: told 'none', still cannot read; the answer is not a chat message to alice's clients.
    ok(await subscribe(carol, alice.bare));
    const request2 = await alice.expect(isRequest(alice.bare, carol.bare));
    await answer(alice, request2, false);
    await carol.expect(subscriptionEvent(alice.bare, 'none'));
    assert.equal(failure(await fetchItems(carol, NODE, alice.bare)).app, 'not-subscribed');
    await sync(alice);
    assert.equal(alice.inbox.drain().filter((el) => el.name === 'message' && el.getChild('x', 'jabber:x:data')?.attrs.type === 'submit').length, 0);

    // A new publish reaches bob (approved subscriber), not carol.
    ok(await pubsubIq(alice, 'set', publish(NODE, 'day2', entry('day two'))));
    const next = await bob.expect((el) => el.name === 'message' && itemsOf(el)[0]?.attrs.id === 'day2');
    assert.equal(next.attrs.from, alice.bare);
    await sync(carol);
    assert.equal(carol.inbox.drain().filter((el) => itemsOf(el).length > 0).length, 0);
  });
});
