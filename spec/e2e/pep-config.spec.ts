// PEP node configuration end to end: publish-options as preconditions (XEP-0223, XEP-0060
// §7.1.5), pubsub#max_items (a number and 'max'), persist_items, send_last_published_item,
// deliver_payloads (notifications without payload), and the owner's delete and purge with their
// notifications.
import assert from 'node:assert/strict';
import { xml, type Element, type TestClient } from '../helpers/client.ts';
import {
  advertise, failure, fetchItems, form, isEvent, itemsOf, NODE_CONFIG, notify, ok, owner, PEP_MODULES, ps, publish, pubsubIq, login,
} from '../helpers/pep.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'pep-pass';
const NS = 'urn:example:pep-config';
const note = (text: string) => xml('note', { xmlns: NS }, text);
const configure = (node: string, fields: Record<string, string>) => owner(xml('configure', { node }, form(NODE_CONFIG, fields)));

/** The value of a field of a node's configuration form. */
function configValue(reply: Element, field: string): string | undefined {
  const x = reply.getChild('pubsub')?.getChild('configure')?.getChild('x', 'jabber:x:data');
  return x?.getChildren('field').find((f) => f.attrs.var === field)?.getChildText('value') ?? undefined;
}

describe('e2e: PEP node configuration and publish-options', function () {
  let server: TestServer;
  let alice: TestClient;

  before(async function () {
    server = await startServer({ users: { alice: PASS }, config: { modulesEnabled: PEP_MODULES } });
    alice = await login(server, 'alice', PASS, { resource: 'a' });
  });
  after(async function () {
    await alice?.stop();
    await server?.destroy();
  });

  it('publish-options: a new node takes them, a met precondition publishes, an unmet one is precondition-not-met', async function () {
    const node = `${NS}/pre`;
    ok(await pubsubIq(alice, 'set', publish(node, '1', note('a'), { 'pubsub#access_model': 'open', 'pubsub#max_items': '5' })));
    const config = ok(await pubsubIq(alice, 'get', owner(xml('configure', { node }))));
    assert.equal(configValue(config, 'pubsub#access_model'), 'open');
    assert.equal(configValue(config, 'pubsub#max_items'), '5');
    ok(await pubsubIq(alice, 'set', publish(node, '2', note('b'), { 'pubsub#access_model': 'open' })));
    assert.deepEqual(failure(await pubsubIq(alice, 'set', publish(node, '3', note('c'), { 'pubsub#access_model': 'whitelist' }))),
      { type: 'cancel', condition: 'conflict', app: 'precondition-not-met' });
    // An unknown option is refused (§7.1.5 MUST reject), nothing published.
    const unknown = await pubsubIq(alice, 'set', publish(node, '4', note('d'), { 'pubsub#no_such_option': '1' }));
    assert.equal(failure(unknown).type, 'modify');
    assert.deepEqual(itemsOf(ok(await fetchItems(alice, node))).map((i) => i.attrs.id).sort(), ['1', '2']);
    // A wrong FORM_TYPE is refused too.
    const wrong = ps(xml('publish', { node }, xml('item', { id: '5' }, note('e'))), xml('publish-options', {}, form('urn:wrong', { 'pubsub#access_model': 'open' })));
    assert.equal((await pubsubIq(alice, 'set', wrong)).attrs.type, 'error');
  });

  it('max_items: the oldest items go; max keeps as many as the service allows', async function () {
    const node = `${NS}/max`;
    ok(await pubsubIq(alice, 'set', publish(node, '1', note('1'), { 'pubsub#max_items': '2' })));
    ok(await pubsubIq(alice, 'set', publish(node, '2', note('2'))));
    ok(await pubsubIq(alice, 'set', publish(node, '3', note('3'))));
    assert.deepEqual(itemsOf(ok(await fetchItems(alice, node))).map((i) => i.attrs.id).sort(), ['2', '3']);
    ok(await pubsubIq(alice, 'set', configure(node, { 'pubsub#max_items': 'max' })));
    for (const id of ['4', '5', '6']) ok(await pubsubIq(alice, 'set', publish(node, id, note(id))));
    assert.deepEqual(itemsOf(ok(await fetchItems(alice, node))).map((i) => i.attrs.id).sort(), ['2', '3', '4', '5', '6']);
    // max_items on retrieval: the most recent ones.
    assert.equal(itemsOf(ok(await fetchItems(alice, node, undefined, { max_items: '2' }))).length, 2);
    assert.equal(failure(await pubsubIq(alice, 'set', configure(node, { 'pubsub#max_items': 'many' }))).condition, 'not-acceptable');
  });

  it('persist_items false: only the last item is kept; send_last_published_item never: nothing on presence', async function () {
    const node = `${NS}/transient`;
    ok(await pubsubIq(alice, 'set', publish(node, '1', note('1'), { 'pubsub#persist_items': 'false', 'pubsub#send_last_published_item': 'never' })));
    ok(await pubsubIq(alice, 'set', publish(node, '2', note('2'))));
    assert.deepEqual(itemsOf(ok(await fetchItems(alice, node))).map((i) => i.attrs.id), ['2']);
    // A retract on a node without items is unsupported persistent-items.
    assert.equal(failure(await pubsubIq(alice, 'set', ps(xml('retract', { node }, xml('item', { id: '2' }))))).app, 'unsupported');
    const second = await login(server, 'alice', PASS, { resource: 'late' });
    try {
      await advertise(second, [notify(node), notify(`${NS}/max`)]);
      // The node sent on presence arrives; the 'never' one does not.
      await second.expect(isEvent(`${NS}/max`, alice.bare));
      await second.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(second.inbox.drain().filter(isEvent(node)).length, 0);
    } finally {
      await second.stop();
    }
  });

  it('notifications with and without payload; purge and delete are notified', async function () {
    const node = `${NS}/events`;
    await advertise(alice, [notify(node)]);
    ok(await pubsubIq(alice, 'set', publish(node, 'full', note('with payload'))));
    const full = await alice.expect(isEvent(node, alice.bare));
    assert.equal(itemsOf(full)[0]?.getChild('note', NS)?.text(), 'with payload');

    ok(await pubsubIq(alice, 'set', configure(node, { 'pubsub#deliver_payloads': 'false', 'pubsub#max_items': '10' })));
    ok(await pubsubIq(alice, 'set', publish(node, 'bare', note('without payload'))));
    const bare = await alice.expect(isEvent(node, alice.bare));
    assert.equal(itemsOf(bare)[0]?.attrs.id, 'bare');
    assert.equal(itemsOf(bare)[0]?.getChildElements().length, 0, 'no payload');

    ok(await pubsubIq(alice, 'set', owner(xml('purge', { node }))));
    await alice.expect(isEvent(node, alice.bare, 'purge'));
    assert.equal(itemsOf(ok(await fetchItems(alice, node))).length, 0);

    ok(await pubsubIq(alice, 'set', owner(xml('delete', { node }))));
    await alice.expect(isEvent(node, alice.bare, 'delete'));
    assert.equal(failure(await fetchItems(alice, node)).condition, 'item-not-found');
  });
});
