// The PubSub service component (XEP-0060, mod_pubsub on `components: { 'pubsub.localhost':
// { module: 'pubsub' } }`) end to end: discovery, node creation by local accounts, subscriptions
// with options, notifications, affiliations, items, deletion, and persistence across a restart.
import assert from 'node:assert/strict';
import { xml } from '../helpers/client.ts';
import {
  failure, fetchItems, form, isEvent, itemsOf, NS_DISCO_INFO, NS_DISCO_ITEMS, ok, owner, pepFixture, ps, publish, pubsubIq, sync,
} from '../helpers/pep.ts';

const PASS = 'ps-pass';
const SERVICE = 'pubsub.localhost';
const NS = 'urn:example:news';
const SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';
const entry = (text: string) => xml('entry', { xmlns: NS }, text);

describe('e2e: PubSub service component (XEP-0060)', function () {
  const fixture = pepFixture(['alice', 'bob', 'carol'], {
    password: PASS,
    presence: true,
    config: {
      modulesEnabled: ['tls', 'saslauth', 'sasl2', 'bind', 'bind2', 'roster', 'disco', 'ping', 'caps', 'register'],
      components: { [SERVICE]: { module: 'pubsub' } },
    },
  });
  const { connect } = fixture;

  it('is discoverable from the host, as pubsub/service with its features', async function () {
    const alice = await connect('alice', 'a');
    const items = ok(await alice.iqRaw(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS }))));
    assert.ok(items.getChild('query')?.getChildren('item').some((i) => i.attrs.jid === SERVICE));
    const info = ok(await alice.iqRaw(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS_DISCO_INFO })))).getChild('query')!;
    assert.ok(info.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'service'));
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['create-nodes', 'subscribe', 'publish', 'subscription-options', 'modify-affiliations', 'retrieve-items', 'persistent-items']) {
      assert.ok(features.includes(`http://jabber.org/protocol/pubsub#${f}`), f);
    }
    // Every access model the component offers, each once (XEP-0060 §4.5, §10).
    assert.deepEqual(features.filter((f) => f.startsWith('http://jabber.org/protocol/pubsub#access-')).sort(),
      ['authorize', 'open', 'presence', 'roster', 'whitelist'].map((m) => `http://jabber.org/protocol/pubsub#access-${m}`));
  });

  it('creates nodes, subscribes with options, notifies, manages affiliations, deletes', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    const carol = await connect('carol', 'c');
    ok(await pubsubIq(alice, 'set', ps(xml('create', { node: 'news' })), SERVICE));
    assert.equal(failure(await pubsubIq(bob, 'set', ps(xml('create', { node: 'news' })), SERVICE)).condition, 'conflict');

    // bob subscribes (open node); carol subscribes with delivery off.
    const sub = ok(await pubsubIq(bob, 'set', ps(xml('subscribe', { node: 'news', jid: bob.jid })), SERVICE));
    assert.equal(sub.getChild('pubsub')?.getChild('subscription')?.attrs.subscription, 'subscribed');
    ok(await pubsubIq(carol, 'set', ps(xml('subscribe', { node: 'news', jid: carol.bare }),
      xml('options', {}, form(SUBSCRIBE_OPTIONS, { 'pubsub#deliver': 'false' }))), SERVICE));
    // A subscription for someone else is refused.
    assert.equal(failure(await pubsubIq(bob, 'set', ps(xml('subscribe', { node: 'news', jid: carol.bare })), SERVICE)).app, 'invalid-jid');

    ok(await pubsubIq(alice, 'set', publish('news', 'n1', entry('first')), SERVICE));
    const event = await bob.expect(isEvent('news', SERVICE));
    assert.equal(itemsOf(event)[0]?.getChild('entry', NS)?.text(), 'first');
    await sync(carol);
    assert.equal(carol.inbox.drain().filter(isEvent('news')).length, 0, 'carol turned delivery off');

    // bob may not publish until alice makes him a publisher.
    assert.equal(failure(await pubsubIq(bob, 'set', publish('news', 'b1', entry('by bob')), SERVICE)).condition, 'forbidden');
    ok(await pubsubIq(alice, 'set', owner(xml('affiliations', { node: 'news' }, xml('affiliation', { jid: bob.bare, affiliation: 'publisher' }))), SERVICE));
    ok(await pubsubIq(bob, 'set', publish('news', 'b1', entry('by bob')), SERVICE));
    assert.deepEqual(itemsOf(ok(await fetchItems(carol, 'news', SERVICE))).map((i) => i.attrs.id).sort(), ['b1', 'n1']);
    assert.equal(itemsOf(ok(await fetchItems(carol, 'news', SERVICE, { max_items: '1' }))).length, 1);

    // Subscriptions and affiliations as the owner sees them, and as an entity sees its own.
    const subs = ok(await pubsubIq(alice, 'get', owner(xml('subscriptions', { node: 'news' })), SERVICE));
    assert.deepEqual(subs.getChild('pubsub')?.getChild('subscriptions')?.getChildren('subscription').map((s) => s.attrs.jid).sort(), [bob.jid, carol.bare].sort());
    const mine = ok(await pubsubIq(bob, 'get', ps(xml('affiliations')), SERVICE));
    assert.deepEqual(mine.getChild('pubsub')?.getChild('affiliations')?.getChildren('affiliation').map((a) => `${a.attrs.node}=${a.attrs.affiliation}`), ['news=publisher']);

    // Delete: subscribers are told.
    ok(await pubsubIq(alice, 'set', owner(xml('delete', { node: 'news' })), SERVICE));
    await bob.expect(isEvent('news', SERVICE, 'delete'));
    assert.equal(failure(await fetchItems(bob, 'news', SERVICE)).condition, 'item-not-found');
  });

  it('keeps nodes, items and subscriptions across a restart', async function () {
    let alice = await connect('alice', 'a');
    ok(await pubsubIq(alice, 'set', publish('kept', 'k1', entry('kept')), SERVICE));
    let bob = await connect('bob', 'b');
    ok(await pubsubIq(bob, 'set', ps(xml('subscribe', { node: 'kept', jid: bob.bare })), SERVICE));
    await fixture.stopClients();
    await fixture.server.restart();
    alice = await connect('alice', 'a2');
    bob = await connect('bob', 'b2');
    assert.equal(itemsOf(ok(await fetchItems(bob, 'kept', SERVICE)))[0]?.getChild('entry', NS)?.text(), 'kept');
    ok(await pubsubIq(alice, 'set', publish('kept', 'k2', entry('after restart')), SERVICE));
    const event = await bob.expect(isEvent('kept', SERVICE));
    assert.equal(itemsOf(event)[0]?.attrs.id, 'k2');
  });
});
