// Bookmarks end to end: XEP-0402 (PEP native bookmarks) kept in sync with XEP-0048 in private XML
// storage (XEP-0049) and in the storage:bookmarks PEP node, both directions (XEP-0402 §4,
// XEP-0411), and private XML bookmarks written before PEP was enabled moved over (XEP-0411 §5).
import assert from 'node:assert/strict';
import { xml, type Element, type TestClient } from '../helpers/client.ts';
import { advertise, fetchItems, isEvent, itemsOf, notify, ok, PEP_MODULES, pepFixture, ps, publish, pubsubIq } from '../helpers/pep.ts';
import { writeConfig } from '../helpers/server.ts';

const PASS = 'bm-pass';
const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
const NS_LEGACY = 'storage:bookmarks';
const NS_PRIVATE = 'jabber:iq:private';
const BOOKMARK_OPTIONS = { 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' };

const privateSet = (c: TestClient, storage: Element) => c.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_PRIVATE }, storage)));
const privateGet = async (c: TestClient) =>
  ok(await c.iqRaw(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_PRIVATE }, xml('storage', { xmlns: NS_LEGACY }))))).getChild('query')!.getChild('storage', NS_LEGACY)!;
const conferences = (storage: Element) => storage.getChildren('conference').map((c) => `${c.attrs.jid}|${c.attrs.autojoin ?? 'false'}|${c.getChildText('nick') ?? ''}`).sort();

describe('e2e: bookmarks (XEP-0402, XEP-0411 ⇄ XEP-0048)', function () {
  const pep = pepFixture(['alice', 'old'], { password: PASS, config: { modulesEnabled: PEP_MODULES.filter((m) => m !== 'pep') } });
  const { connect } = pep;

  it('moves private XML bookmarks written before PEP was enabled', async function () {
    const before = await connect('old', 'o');
    ok(await privateSet(before, xml('storage', { xmlns: NS_LEGACY },
      xml('conference', { jid: 'tea@conference.localhost', autojoin: 'true', name: 'Tea' }, xml('nick', {}, 'oldie')))));
    await pep.stopClients();
    writeConfig(pep.server.dir, pep.server.host, { modulesEnabled: PEP_MODULES });
    await pep.server.restart();
    const after = await connect('old', 'o2');
    const items = itemsOf(ok(await fetchItems(after, NS_BOOKMARKS)));
    assert.equal(items[0]?.attrs.id, 'tea@conference.localhost');
    assert.equal(items[0]?.getChild('conference', NS_BOOKMARKS)?.attrs.autojoin, 'true');
    assert.equal(items[0]?.getChild('conference', NS_BOOKMARKS)?.getChildText('nick'), 'oldie');
  });

  it('private XML → XEP-0402: a legacy client’s bookmarks reach a new client (with a notification)', async function () {
    const modern = await connect('alice', 'modern');
    const legacy = await connect('alice', 'legacy');
    await advertise(modern, [notify(NS_BOOKMARKS)]);
    ok(await privateSet(legacy, xml('storage', { xmlns: NS_LEGACY },
      xml('conference', { jid: 'room@conference.localhost', autojoin: 'true', name: 'Room' }, xml('nick', {}, 'al')),
      xml('url', { name: 'Site', url: 'https://example.org/' }))));
    const event = await modern.expect(isEvent(NS_BOOKMARKS, modern.bare));
    assert.equal(itemsOf(event)[0]?.attrs.id, 'room@conference.localhost');
    const items = itemsOf(ok(await fetchItems(modern, NS_BOOKMARKS)));
    assert.deepEqual(items.map((i) => i.attrs.id), ['room@conference.localhost']);
    assert.equal(items[0]?.getChild('conference', NS_BOOKMARKS)?.attrs.name, 'Room');
    // The node is private (XEP-0402 §3.3 configuration).
    const config = ok(await pubsubIq(modern, 'get', xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub#owner' }, xml('configure', { node: NS_BOOKMARKS }))));
    const access = config.getChild('pubsub')?.getChild('configure')?.getChild('x')?.getChildren('field').find((f) => f.attrs.var === 'pubsub#access_model');
    assert.equal(access?.getChildText('value'), 'whitelist');
    // The legacy client reads back what it wrote, URL bookmark included.
    const back = await privateGet(legacy);
    assert.deepEqual(conferences(back), ['room@conference.localhost|true|al']);
    assert.equal(back.getChild('url')?.attrs.url, 'https://example.org/');
  });

  it('XEP-0402 → private XML: publishes and retractions show in the legacy view', async function () {
    const modern = await connect('alice', 'modern2');
    ok(await pubsubIq(modern, 'set', publish(NS_BOOKMARKS, 'other@conference.localhost',
      xml('conference', { xmlns: NS_BOOKMARKS, autojoin: 'false', name: 'Other' }, xml('nick', {}, 'al2')), BOOKMARK_OPTIONS)));
    assert.deepEqual(conferences(await privateGet(modern)), ['other@conference.localhost|false|al2', 'room@conference.localhost|true|al']);
    ok(await pubsubIq(modern, 'set', ps(xml('retract', { node: NS_BOOKMARKS, notify: 'true' }, xml('item', { id: 'room@conference.localhost' })))));
    const view = await privateGet(modern);
    assert.deepEqual(conferences(view), ['other@conference.localhost|false|al2']);
    assert.equal(view.getChild('url')?.attrs.url, 'https://example.org/', 'the URL bookmark is kept');
    // A legacy set that removes a room retracts it from the XEP-0402 node.
    ok(await privateSet(modern, xml('storage', { xmlns: NS_LEGACY })));
    assert.equal(itemsOf(ok(await fetchItems(modern, NS_BOOKMARKS))).length, 0);
  });

  it('the XEP-0048 PEP node: a publish there reaches XEP-0402, and XEP-0402 changes are republished there', async function () {
    const c = await connect('alice', 'pep48');
    ok(await pubsubIq(c, 'set', publish(NS_LEGACY, 'current', xml('storage', { xmlns: NS_LEGACY },
      xml('conference', { jid: 'pep@conference.localhost', autojoin: 'true' })), { 'pubsub#persist_items': 'true', 'pubsub#access_model': 'whitelist' })));
    assert.deepEqual(itemsOf(ok(await fetchItems(c, NS_BOOKMARKS))).map((i) => i.attrs.id), ['pep@conference.localhost']);
    ok(await pubsubIq(c, 'set', publish(NS_BOOKMARKS, 'new@conference.localhost', xml('conference', { xmlns: NS_BOOKMARKS, autojoin: 'true' }), BOOKMARK_OPTIONS)));
    const legacy = itemsOf(ok(await fetchItems(c, NS_LEGACY)))[0]?.getChild('storage', NS_LEGACY);
    assert.ok(legacy);
    assert.deepEqual(conferences(legacy), ['new@conference.localhost|true|', 'pep@conference.localhost|true|']);
  });
});
