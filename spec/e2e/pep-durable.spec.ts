// PEP data is durable and belongs to the account: nodes, items and configuration survive a
// restart; deleting the account (XEP-0077 <remove/>) removes them, so a new account of the same
// name starts empty. Disco shows the account as a pubsub/pep service with its nodes.
import assert from 'node:assert/strict';
import { RawClient, xml, type TestClient } from '../helpers/client.ts';
import { failure, fetchItems, itemsOf, NS_DISCO_INFO, NS_DISCO_ITEMS, ok, pepFixture, publish, pubsubIq } from '../helpers/pep.ts';

const PASS = 'pep-pass';
const NS = 'urn:example:pep-durable';
const NS_REGISTER = 'jabber:iq:register';

describe('e2e: PEP durability, disco and account deletion', function () {
  const pep = pepFixture(['alice', 'bob', 'gone'], { password: PASS, config: { register: { allowRegistration: true } } });
  const { connect } = pep;

  it('shows the account as pubsub/pep with its visible nodes', async function () {
    const alice = await connect('alice', 'a');
    const bob = await connect('bob', 'b');
    ok(await pubsubIq(alice, 'set', publish(`${NS}/open`, '1', xml('n', { xmlns: NS }), { 'pubsub#access_model': 'open' })));
    ok(await pubsubIq(alice, 'set', publish(`${NS}/closed`, '1', xml('n', { xmlns: NS }))));
    const info = ok(await bob.iqRaw(xml('iq', { type: 'get', to: alice.bare }, xml('query', { xmlns: NS_DISCO_INFO }))));
    const q = info.getChild('query', NS_DISCO_INFO)!;
    assert.ok(q.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'));
    const features = q.getChildren('feature').map((f) => f.attrs.var as string);
    for (const f of ['publish-options', 'auto-create', 'filtered-notifications', 'last-published']) {
      assert.ok(features.includes(`http://jabber.org/protocol/pubsub#${f}`), f);
    }
    // Every access model PEP offers, each once, and no other (XEP-0163 defaults, XEP-0060 §10).
    assert.deepEqual(features.filter((f) => f.startsWith('http://jabber.org/protocol/pubsub#access-')).sort(),
      ['authorize', 'open', 'presence', 'roster', 'whitelist'].map((m) => `http://jabber.org/protocol/pubsub#access-${m}`));
    // disco#items: bob (no contact) sees only the open node; alice sees both.
    const itemsFor = async (c: TestClient) => ok(await c.iqRaw(xml('iq', { type: 'get', to: alice.bare }, xml('query', { xmlns: NS_DISCO_ITEMS }))))
      .getChild('query', NS_DISCO_ITEMS)!.getChildren('item').map((i) => i.attrs.node as string).sort();
    assert.deepEqual(await itemsFor(bob), [`${NS}/open`]);
    assert.deepEqual(await itemsFor(alice), [`${NS}/closed`, `${NS}/open`]);
    // disco#info of a node: pubsub/leaf with its meta-data.
    const node = ok(await bob.iqRaw(xml('iq', { type: 'get', to: alice.bare }, xml('query', { xmlns: NS_DISCO_INFO, node: `${NS}/open` }))));
    assert.ok(node.getChild('query')?.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'leaf'));
    // Another account's pubsub: service-unavailable when there is no such account.
    assert.equal(failure(await fetchItems(bob, `${NS}/open`, 'nobody@localhost')).condition, 'service-unavailable');
  });

  it('keeps nodes, items and configuration across a restart', async function () {
    const alice = await connect('alice', 'a');
    ok(await pubsubIq(alice, 'set', publish(`${NS}/kept`, 'k1', xml('n', { xmlns: NS }, 'kept'), { 'pubsub#max_items': '3', 'pubsub#access_model': 'open' })));
    await pep.stopClients();
    await pep.server.restart();
    const bob = await connect('bob', 'b');
    const items = itemsOf(ok(await fetchItems(bob, `${NS}/kept`, 'alice@localhost')));
    assert.equal(items[0]?.attrs.id, 'k1');
    assert.equal(items[0]?.getChild('n', NS)?.text(), 'kept');
  });

  it('removes the account’s nodes when the account is deleted', async function () {
    const gone = await connect('gone', 'g');
    ok(await pubsubIq(gone, 'set', publish(`${NS}/mine`, 'x', xml('n', { xmlns: NS }), { 'pubsub#access_model': 'open' })));
    ok(await gone.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_REGISTER }, xml('remove')))));
    await pep.server.waitForOutput(/deleted account gone@localhost/);
    // The name registered again: an empty PEP service.
    const raw = await RawClient.connect(pep.server.c2sPort);
    try {
      raw.openStream('localhost');
      await raw.starttls('localhost');
      await raw.expect((el) => el.name === 'stream:features');
      raw.write(`<iq type='set' id='reg'><query xmlns='${NS_REGISTER}'><username>gone</username><password>again-pass</password></query></iq>`);
      assert.equal((await raw.expect((el) => el.name === 'iq' && el.attrs.id === 'reg')).attrs.type, 'result');
    } finally {
      raw.close();
    }
    const again = await connect('gone', 'g2', 'again-pass');
    assert.equal(failure(await fetchItems(again, `${NS}/mine`)).condition, 'item-not-found');
  });
});
