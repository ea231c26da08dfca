// Bookmarks compatibility (XEP-0402 §5.3, XEP-0411): PEP Native Bookmarks items and the
// XEP-0048 <storage/> element translated both ways, plus the translation driven through the
// engine as the glue will: a legacy client's private XML becomes XEP-0402 items and back.
import assert from 'node:assert/strict';
import type { Element } from '@xmpp/xml';
import {
  BOOKMARKS_NODE_CONFIG, bookmarkFromItem, bookmarkPayload, bookmarksFromItems, diffBookmarks, legacyStorage, NS_BOOKMARKS,
  NS_BOOKMARKS_LEGACY, readLegacyStorage,
} from '../../core/util/pubsub/bookmarks.ts';
import { harness, NS, ok, publishOptions, xml } from '../helpers/pubsub.ts';

const LEGACY = xml(`<storage xmlns='storage:bookmarks'>
  <conference name='Council of Oberon' autojoin='1' jid='Council@Conference.Underhill.org'><nick>Puck</nick><password>s3cret</password></conference>
  <conference jid='orchard@conference.shakespeare.lit'/>
  <url name='Complete Works of Shakespeare' url='http://the-tech.mit.edu/Shakespeare/'/>
  <conference name='no jid'/>
</storage>`);

describe('bookmarks: XEP-0402 ⇄ XEP-0048 (XEP-0411)', () => {
  it('reads a XEP-0048 storage: conferences become bookmarks, URLs and bad entries are kept aside', () => {
    const { bookmarks, others } = readLegacyStorage(LEGACY);
    assert.deepEqual(bookmarks, [
      { jid: 'council@conference.underhill.org', name: 'Council of Oberon', autojoin: true, nick: 'Puck', password: 's3cret' },
      { jid: 'orchard@conference.shakespeare.lit', autojoin: false },
    ]);
    assert.deepEqual(others.map((o) => o.name), ['url', 'conference']);
  });

  it('writes XEP-0402 payloads (item id = room JID) and reads them back', () => {
    const [b] = readLegacyStorage(LEGACY).bookmarks;
    const payload = bookmarkPayload(b!);
    assert.equal(payload.attrs.xmlns, NS_BOOKMARKS);
    assert.equal(payload.attrs.autojoin, 'true');
    assert.equal(payload.attrs.jid, undefined, 'XEP-0402 keeps the JID in the item id only');
    assert.equal(payload.getChildText('nick'), 'Puck');
    assert.deepEqual(bookmarkFromItem('council@conference.underhill.org', payload), b);
    assert.equal(bookmarkFromItem('not a jid@@', payload), undefined);
    const minimal = bookmarkFromItem('room@conference.example', xml(`<conference xmlns='${NS_BOOKMARKS}'/>`));
    assert.deepEqual(minimal, { jid: 'room@conference.example', autojoin: false });
  });

  it('writes a XEP-0048 storage from XEP-0402 items, keeping the previous URL bookmarks', () => {
    const items = new Map<string, Element>([
      ['theplay@conference.shakespeare.lit', xml(`<conference xmlns='${NS_BOOKMARKS}' name="The Play's the Thing" autojoin='true'><nick>JC</nick><extensions><state xmlns='http://myclient.example/bookmark/state' minimized='true'/></extensions></conference>`)],
    ]);
    const storage = legacyStorage(bookmarksFromItems(items), LEGACY);
    assert.equal(storage.attrs.xmlns, NS_BOOKMARKS_LEGACY);
    const conf = storage.getChildren('conference');
    assert.equal(conf[0]!.attrs.jid, 'theplay@conference.shakespeare.lit');
    assert.equal(conf[0]!.attrs.name, "The Play's the Thing");
    assert.equal(conf[0]!.attrs.autojoin, 'true');
    assert.equal(conf[0]!.getChildText('nick'), 'JC');
    assert.equal(conf[0]!.getChild('extensions'), undefined, 'XEP-0048 has no extensions');
    assert.equal(storage.getChild('url')!.attrs.url, 'http://the-tech.mit.edu/Shakespeare/');
  });

  it('diffs a replacement list: unchanged items untouched, changed ones keep their extensions, removed ones retracted', () => {
    const current = new Map<string, Element>([
      ['a@conf.example', xml(`<conference xmlns='${NS_BOOKMARKS}' name='A'><nick>x</nick><extensions><e xmlns='urn:client'/></extensions></conference>`)],
      ['b@conf.example', xml(`<conference xmlns='${NS_BOOKMARKS}' name='B' autojoin='true'/>`)],
      ['c@conf.example', xml(`<conference xmlns='${NS_BOOKMARKS}' name='C'/>`)],
    ]);
    const incoming = readLegacyStorage(xml(`<storage xmlns='storage:bookmarks'>
      <conference jid='a@conf.example' name='A renamed'><nick>x</nick></conference>
      <conference jid='b@conf.example' name='B' autojoin='1'/>
      <conference jid='d@conf.example' name='D'/>
    </storage>`)).bookmarks;
    const diff = diffBookmarks(current, incoming);
    assert.deepEqual(diff.publish.map((p) => p.id), ['a@conf.example', 'd@conf.example']);
    assert.equal(diff.publish[0]!.payload.attrs.name, 'A renamed');
    assert.ok(diff.publish[0]!.payload.getChild('extensions')!.getChild('e', 'urn:client'), 'extensions preserved');
    assert.deepEqual(diff.retract, ['c@conf.example']);
  });

  it('round-trips a legacy private XML write through the engine and back (what the glue does)', async () => {
    const h = harness({ jid: 'juliet@capulet.lit', kind: 'pep' });
    h.interest.set(NS_BOOKMARKS, ['juliet@capulet.lit/balcony']);
    // A modern client had stored one bookmark with an extension.
    ok(await h.request('juliet@capulet.lit/balcony', 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='${NS_BOOKMARKS}'><item id='council@conference.underhill.org'><conference xmlns='${NS_BOOKMARKS}' name='Council of Oberon' autojoin='true'><nick>Puck</nick><password>s3cret</password><extensions><x xmlns='urn:client'/></extensions></conference></item></publish>${publishOptions({ 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' })}</pubsub>`));
    h.take();
    // A legacy client writes private XML: the glue diffs it against the node and publishes for the user.
    const current = new Map((await h.service.items('juliet@capulet.lit', NS_BOOKMARKS)).items.map((i) => [i.id, i.payload!] as [string, Element]));
    const diff = diffBookmarks(current, readLegacyStorage(LEGACY).bookmarks);
    for (const p of diff.publish) {
      const item = xml(`<item id='${p.id}'/>`);
      item.cnode(p.payload);
      await h.service.publish('juliet@capulet.lit', NS_BOOKMARKS, item, { values: BOOKMARKS_NODE_CONFIG, fixed: new Map() });
    }
    if (diff.retract.length > 0) await h.service.retract('juliet@capulet.lit', NS_BOOKMARKS, diff.retract, true);
    const sent = h.take();
    assert.deepEqual(sent.map((m) => m.getChild('event', NS.event)!.getChild('items')!.getChild('item')!.attrs.id), ['orchard@conference.shakespeare.lit'], 'only the new bookmark is announced');
    // Reading private XML back: built from the node, with the legacy client's URL kept.
    const back = legacyStorage(bookmarksFromItems(new Map((await h.service.items('juliet@capulet.lit', NS_BOOKMARKS)).items.map((i) => [i.id, i.payload!] as [string, Element]))), LEGACY);
    assert.deepEqual(back.getChildren('conference').map((c) => c.attrs.jid), ['council@conference.underhill.org', 'orchard@conference.shakespeare.lit', undefined],
      'the entry without a jid is kept as the legacy client wrote it');
    assert.ok(back.getChild('url'));
    const kept = (await h.service.items('juliet@capulet.lit', NS_BOOKMARKS, { ids: ['council@conference.underhill.org'] })).items[0]!;
    assert.ok(kept.payload!.getChild('extensions')!.getChild('x', 'urn:client'), 'the modern client\'s extension survived');
    const cfg = await h.service.nodeConfig(NS_BOOKMARKS);
    assert.equal(cfg?.access_model, 'whitelist');
  });

  it('makes a bookmarks node a client left readable private before converting into it (XEP-0411 §7)', async () => {
    const h = harness({ jid: 'juliet@capulet.lit', kind: 'pep' });
    ok(await h.request('juliet@capulet.lit/balcony', 'set', `<pubsub xmlns='${NS.pubsub}'><publish node='${NS_BOOKMARKS}'><item id='a@conf.example'><conference xmlns='${NS_BOOKMARKS}'/></item></publish></pubsub>`));
    const pre = { values: BOOKMARKS_NODE_CONFIG, fixed: new Map<string, string[]>() };
    const item = xml(`<item id='b@conf.example'><conference xmlns='${NS_BOOKMARKS}'/></item>`);
    await assert.rejects(h.service.publish('juliet@capulet.lit', NS_BOOKMARKS, item, pre), (e: Error & { app?: string }) => e.app === 'precondition-not-met');
    await h.service.configureValues('juliet@capulet.lit', NS_BOOKMARKS, BOOKMARKS_NODE_CONFIG);
    await h.service.publish('juliet@capulet.lit', NS_BOOKMARKS, item, pre);
    const cfg = await h.service.nodeConfig(NS_BOOKMARKS);
    assert.deepEqual([cfg?.access_model, cfg?.max_items, cfg?.send_last_published_item], ['whitelist', 'max', 'never']);
    await assert.rejects(h.service.configureValues('romeo@montague.lit', NS_BOOKMARKS, { access_model: 'open' }), (e: Error & { condition?: string }) => e.condition === 'forbidden');
  });
});
