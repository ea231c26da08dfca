// The MAM engine (core/util/mam.ts) against the text of XEP-0313 (queries, paging, results,
// metadata), XEP-0059 (as MAM uses it), XEP-0441 (preferences), XEP-0359 (stanza ids) and the
// storage rules, over the memory and the sqlite archive store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Element } from '@xmpp/xml';
import { parse } from 'ltx';
import type { ArchiveStore } from '../../core/storage/contracts.ts';
import { StorageManager } from '../../core/storage/manager.ts';
import { NS_DATA, parseForm, submit } from '../../core/util/dataforms.ts';
import { StanzaError } from '../../core/util/errors.ts';
import {
  type ArchivePrefs, type MamOptions, type MamPage,
  NS_MAM, NS_MAM_EXTENDED, NS_MAM_GROUPCHAT_FIELD, NS_SID,
  addStanzaId, answerMamIq, archivePolicy, archiveTargets, archivedPayload, defaultPrefs, expireArchive, finElement, mamFeatures,
  originIdOf, parseExpiry, parsePrefs, parseQuery, prefsElement, queryFormElement, resultMessage, roomArchiveDecision, runQuery,
  shouldArchive, stanzaIdOf, storedPrefs, stripStanzaIds, userArchiveDecision,
} from '../../core/util/mam.ts';
import { NS_RSM } from '../../core/util/rsm.ts';

const el = (xml: string) => parse(xml) as Element;
const T0 = Date.UTC(2024, 0, 1, 12, 0, 0); // item i is archived at 12:0i, one minute apart
const at = (i: number) => T0 + i * 60_000;
const stamp = (i: number) => new Date(at(i)).toISOString().replace('.000Z', 'Z');

// The test archive of alice@example.com: who each item is with.
const WITHS = [
  'bob@example.com/phone', 'carol@example.com', 'bob@example.com/laptop', 'bob@example.com/phone',
  'dave@other.example', 'carol@example.com', 'alice@example.com', 'bob@example.com/phone',
  'carol@example.com/x', 'bob@example.com', 'dave@other.example', 'bob@example.com/laptop',
];
const BOB = [0, 2, 3, 7, 9, 11];

async function assertRejects(p: Promise<unknown>, condition: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StanzaError, String(err));
    assert.equal(err.condition, condition);
    return true;
  });
}

function assertThrows(f: () => unknown, condition: string): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof StanzaError, String(err));
    assert.equal(err.condition, condition);
    return true;
  });
}

/** A <query xmlns='urn:xmpp:mam:2'> with an optional submitted form, RSM <set/> and more. */
function query(fields?: Record<string, string | string[]>, rsm?: string, more = '', attrs: Record<string, string> = {}): Element {
  const q = new Element('query', { xmlns: NS_MAM, ...attrs });
  if (fields) q.cnode(submit(NS_MAM, fields));
  if (rsm !== undefined) q.cnode(el(`<set xmlns='${NS_RSM}'>${rsm}</set>`));
  if (more) q.cnode(el(more));
  return q;
}

describe('MAM query form and parsing (XEP-0313 §4.1)', () => {
  it('offers the form with FORM_TYPE and every field, none required, ids as an open list (§4.1.5)', () => {
    const q = queryFormElement();
    assert.equal(q.attrs.xmlns, NS_MAM);
    const x = q.getChild('x', NS_DATA)!;
    const f = parseForm(x)!;
    assert.equal(f.type, 'form');
    assert.equal(f.formType, NS_MAM);
    assert.deepEqual([...f.fields.keys()], ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
    assert.equal(f.fields.get('with')!.type, 'jid-single');
    assert.equal(f.fields.get('start')!.type, 'text-single');
    assert.equal(f.fields.get('end')!.type, 'text-single');
    assert.equal(f.fields.get('ids')!.type, 'list-multi');
    const ids = x.getChildren('field').find((c) => c.attrs.var === 'ids')!;
    assert.ok(ids.getChild('validate', 'http://jabber.org/protocol/xdata-validate')!.getChild('open'));
    assert.equal(ids.getChildren('option').length, 0);
    assert.equal(x.toString().includes('<required'), false);
  });

  it('adds include-groupchat and its feature only when asked', () => {
    assert.deepEqual(mamFeatures(), [NS_MAM, NS_MAM_EXTENDED]);
    assert.deepEqual(mamFeatures({ groupchatField: true }), [NS_MAM, NS_MAM_EXTENDED, NS_MAM_GROUPCHAT_FIELD]);
    const f = parseForm(queryFormElement({ groupchatField: true }).getChild('x', NS_DATA)!)!;
    assert.equal(f.fields.get('include-groupchat')!.type, 'boolean');
  });

  it('reads queryid, every field, RSM and flip-page', () => {
    const q = parseQuery(query(
      { with: 'Juliet@Capulet.lit', start: '2010-06-07T00:00:00Z', end: '2010-07-07T13:23:54.5+02:00', 'after-id': 'a', 'before-id': 'b', ids: ['x', 'y', 'x'] },
      '<max>10</max><after>z</after>',
      `<flip-page xmlns='${NS_MAM}'/>`,
      { queryid: 'f27' },
    ));
    assert.deepEqual(q, {
      queryId: 'f27',
      filter: {
        with: 'juliet@capulet.lit',
        start: Date.UTC(2010, 5, 7),
        end: Date.UTC(2010, 6, 7, 11, 23, 54, 500),
        afterId: 'a',
        beforeId: 'b',
        ids: ['x', 'y'],
      },
      rsm: { max: 10, after: 'z' },
      flip: true,
    });
  });

  it('reads an empty query as "everything", not flipped', () => {
    assert.deepEqual(parseQuery(query()), { filter: {}, rsm: {}, flip: false });
    // A form without FORM_TYPE is read as ours; a field without a value is no filter.
    const x = el(`<x xmlns='${NS_DATA}' type='submit'><field var='with'/><field var='start'><value>2010-06-07T00:00:00Z</value></field></x>`);
    const q = new Element('query', { xmlns: NS_MAM }).cnode(x).up() as Element;
    assert.deepEqual(parseQuery(q).filter, { start: Date.UTC(2010, 5, 7) });
  });

  it('rounds sub-millisecond bounds so they stay inclusive', () => {
    const q = parseQuery(query({ start: '2010-06-07T00:00:00.0001Z', end: '2010-06-07T00:00:00.0009Z' }));
    assert.equal(q.filter.start, Date.UTC(2010, 5, 7) + 1);
    assert.equal(q.filter.end, Date.UTC(2010, 5, 7));
  });

  it('refuses bad input with the right condition', () => {
    assertThrows(() => parseQuery(query({ with: 'not a@jid@x' })), 'jid-malformed');
    assertThrows(() => parseQuery(query({ with: ['a@b', 'c@d'] })), 'bad-request');
    assertThrows(() => parseQuery(query({ start: '2010-06-07' })), 'bad-request');
    assertThrows(() => parseQuery(query({ start: '2010-06-07T00:00:00' })), 'bad-request'); // no time zone
    assertThrows(() => parseQuery(query({ end: '2010-02-30T00:00:00Z' })), 'bad-request');
    assertThrows(() => parseQuery(query({ 'after-id': '' })), 'bad-request');
    assertThrows(() => parseQuery(query({ ids: ['a', ''] })), 'bad-request');
    assertThrows(() => parseQuery(query({}, '<max>ten</max>')), 'bad-request');
    const otherType = new Element('query', { xmlns: NS_MAM }).cnode(submit('urn:xmpp:mam:1', { with: 'a@b' })).up() as Element;
    assertThrows(() => parseQuery(otherType), 'bad-request');
    const notSubmit = new Element('query', { xmlns: NS_MAM }).cnode(el(`<x xmlns='${NS_DATA}' type='form'/>`)).up() as Element;
    assertThrows(() => parseQuery(notSubmit), 'bad-request');
  });

  it('refuses a field it does not know with feature-not-implemented (§4.1.5)', () => {
    assertThrows(() => parseQuery(query({ '{urn:example}free-text-search': 'x' })), 'feature-not-implemented');
    assertThrows(() => parseQuery(query({ 'include-groupchat': 'true' })), 'feature-not-implemented');
    assert.equal(parseQuery(query({ 'include-groupchat': 'true' }), { groupchatField: true }).filter.includeGroupchat, true);
    assert.equal(parseQuery(query({ 'include-groupchat': '0' }), { groupchatField: true }).filter.includeGroupchat, false);
    assertThrows(() => parseQuery(query({ 'include-groupchat': 'maybe' }), { groupchatField: true }), 'bad-request');
  });

  it('refuses a pubsub node query (XEP-0442 is not served here)', () => {
    assertThrows(() => parseQuery(query(undefined, undefined, '', { node: 'fdp/submitted' })), 'feature-not-implemented');
  });
});

for (const driver of ['memory', 'sqlite'] as const) {
  describe(`MAM queries over the ${driver} archive (XEP-0313 §4, XEP-0059)`, () => {
    let dir: string;
    let sm: StorageManager;
    let store: ArchiveStore;
    let ids: string[];

    const payload = (i: number) => {
      const w = WITHS[i]!;
      const out = i % 2 === 0;
      return `<message xmlns='jabber:client' from='${out ? 'alice@example.com/pc' : w}' to='${out ? w : 'alice@example.com/pc'}' type='chat' id='m${i}'><body>message ${i}</body></message>`;
    };

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cadence-mam-'));
      sm = new StorageManager({ driver, dataDir: join(dir, 'data') });
      store = sm.archive('example.com', 'archive');
      ids = [];
      for (let i = 0; i < WITHS.length; i++) ids.push(await store.append('alice', { when: at(i), with: WITHS[i]!, payload: payload(i) }));
      await store.append('bob', { when: at(0), with: 'alice@example.com', payload: payload(0) }); // someone else's archive
    });

    afterEach(async () => {
      await sm.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const run = (q: Element, opts: MamOptions = {}, user = 'alice') => runQuery(store, user, parseQuery(q, opts), opts);
    const idx = (page: MamPage) => page.items.map((i) => ids.indexOf(i.id));
    const upto = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

    describe('paging (§4.3, XEP-0059)', () => {
      it('without RSM: the server page size, oldest first, not complete, with count and index 0', async () => {
        const p = await run(query(), { defaultMax: 5 });
        assert.deepEqual(idx(p), [0, 1, 2, 3, 4]);
        assert.equal(p.complete, false);
        assert.equal(p.count, 12);
        assert.equal(p.firstIndex, 0);
      });

      it('a result set that fits is complete (§4.3.2)', async () => {
        const p = await run(query());
        assert.deepEqual(idx(p), upto(0, 12));
        assert.equal(p.complete, true);
      });

      it('a max above the server limit is cut, and the page is then not complete', async () => {
        const p = await run(query(undefined, '<max>100</max>'), { maxMax: 4 });
        assert.deepEqual(idx(p), [0, 1, 2, 3]);
        assert.equal(p.complete, false);
      });

      it('pages forwards with after = last, in order, to a complete last page (§4.3.1)', async () => {
        const seen: number[] = [];
        let after: string | undefined;
        let pages = 0;
        for (;;) {
          const p = await run(query(undefined, `<max>5</max>${after ? `<after>${after}</after>` : ''}`));
          assert.equal(p.firstIndex, seen.length);
          seen.push(...idx(p));
          pages++;
          if (p.complete) break;
          after = p.items.at(-1)!.id;
        }
        assert.deepEqual(seen, upto(0, 12));
        assert.equal(pages, 3);
      });

      it('the empty <before/> is the last page, still oldest first (§4.3.4)', async () => {
        const p = await run(query(undefined, '<max>5</max><before/>'));
        assert.deepEqual(idx(p), [7, 8, 9, 10, 11]);
        assert.equal(p.firstIndex, 7);
        assert.equal(p.complete, false);
      });

      it('pages backwards with before = first, to a complete first page', async () => {
        const seen: number[] = [];
        let before = '';
        for (;;) {
          const p = await run(query(undefined, `<max>5</max><before>${before}</before>`));
          assert.equal(p.firstIndex, idx(p)[0]);
          seen.unshift(...idx(p));
          if (p.complete) break;
          before = p.items[0]!.id;
        }
        assert.deepEqual(seen, upto(0, 12));
      });

      it('max 0 gives only the count', async () => {
        const p = await run(query(undefined, '<max>0</max>'));
        assert.deepEqual(p.items, []);
        assert.equal(p.count, 12);
        assert.equal(p.complete, false);
        const empty = await run(query(undefined, '<max>0</max>'), {}, 'nobody');
        assert.equal(empty.count, 0);
        assert.equal(empty.complete, true);
      });

      it('an empty archive or no match is a successful, complete, empty page (§4.1)', async () => {
        const p = await run(query(undefined, '<max>5</max><before/>'), {}, 'nobody');
        assert.deepEqual(p, { items: [], complete: true, count: 0, flip: false });
        const none = await run(query({ with: 'nobody@example.com' }));
        assert.equal(none.items.length, 0);
        assert.equal(none.complete, true);
      });

      it('RSM <index/> gives the page at that position, from either end', async () => {
        const p = await run(query(undefined, '<max>3</max><index>2</index>'));
        assert.deepEqual(idx(p), [2, 3, 4]);
        assert.equal(p.firstIndex, 2);
        assert.equal(p.complete, false);
        const late = await run(query(undefined, '<max>3</max><index>10</index>'));
        assert.deepEqual(idx(late), [10, 11]);
        assert.equal(late.complete, true);
        const past = await run(query(undefined, '<max>3</max><index>12</index>'));
        assert.deepEqual(past.items, []);
        assert.equal(past.complete, true);
        // Reported even when counting is off: an index answer means nothing without them.
        const uncounted = await run(query(undefined, '<max>3</max><index>2</index>'), { count: false });
        assert.equal(uncounted.count, 12);
        assert.equal(uncounted.firstIndex, 2);
      });

      it('RSM <index/> too deep into a large set is feature-not-implemented (XEP-0059 §2.6)', async () => {
        await assertRejects(run(query(undefined, '<max>1</max><index>5</index>'), { maxIndexSkip: 3 }), 'feature-not-implemented');
        const p = await run(query(undefined, '<max>1</max><index>9</index>'), { maxIndexSkip: 3 }); // read from the newest end
        assert.deepEqual(idx(p), [9]);
      });

      it('RSM after and before together page backwards between them', async () => {
        const p = await run(query(undefined, `<max>2</max><after>${ids[2]}</after><before>${ids[8]}</before>`));
        assert.deepEqual(idx(p), [6, 7]);
        assert.equal(p.complete, false);
        assert.equal(p.firstIndex, 6);
      });

      it('unknown RSM ids are item-not-found, also ids of another archive (§4.3.2)', async () => {
        await assertRejects(run(query(undefined, '<after>nope</after>')), 'item-not-found');
        await assertRejects(run(query(undefined, '<before>nope</before>')), 'item-not-found');
        const bobs = (await store.find('bob'))[0]!.id;
        await assertRejects(run(query(undefined, `<after>${bobs}</after>`)), 'item-not-found');
      });

      it('without counting: no count and no index', async () => {
        const p = await run(query(undefined, '<max>2</max><before/>'), { count: false });
        assert.deepEqual(idx(p), [10, 11]);
        assert.equal(p.count, undefined);
        assert.equal(p.firstIndex, undefined);
      });

      it("with index 'ends', only pages at an end of the set get an index", async () => {
        const mid = await run(query(undefined, `<max>2</max><after>${ids[3]}</after>`), { index: 'ends' });
        assert.deepEqual(idx(mid), [4, 5]);
        assert.equal(mid.firstIndex, undefined);
        assert.equal(mid.count, 12);
        assert.equal((await run(query(undefined, '<max>2</max><before/>'), { index: 'ends' })).firstIndex, 10);
        assert.equal((await run(query(undefined, '<max>2</max>'), { index: 'ends' })).firstIndex, 0);
        assert.equal((await run(query(undefined, `<max>5</max><after>${ids[8]}</after>`), { index: 'ends' })).firstIndex, 9);
      });

      it('a mid-set page gets its exact index', async () => {
        const p = await run(query(undefined, `<max>2</max><after>${ids[3]}</after>`));
        assert.deepEqual(idx(p), [4, 5]);
        assert.equal(p.firstIndex, 4);
        const q = await run(query(undefined, `<max>2</max><before>${ids[9]}</before>`));
        assert.deepEqual(idx(q), [7, 8]);
        assert.equal(q.firstIndex, 7);
      });
    });

    describe('filters (§4.1)', () => {
      it('with a bare JID matches its full JIDs too (§4.1.1)', async () => {
        const p = await run(query({ with: 'bob@example.com' }));
        assert.deepEqual(idx(p), BOB);
        assert.equal(p.count, 6);
      });

      it('with a full JID matches only that one', async () => {
        assert.deepEqual(idx(await run(query({ with: 'bob@example.com/phone' }))), [0, 3, 7]);
        assert.deepEqual(idx(await run(query({ with: 'carol@example.com/x' }))), [8]);
      });

      it('with the account itself finds the messages to oneself (§4.1.1)', async () => {
        assert.deepEqual(idx(await run(query({ with: 'alice@example.com' }))), [6]);
      });

      it('with + the last page: the newest of that contact, count of that contact', async () => {
        const p = await run(query({ with: 'bob@example.com' }, '<max>2</max><before/>'));
        assert.deepEqual(idx(p), [9, 11]);
        assert.equal(p.count, 6);
        assert.equal(p.firstIndex, 4);
        const back = await run(query({ with: 'bob@example.com' }, `<max>2</max><before>${ids[9]}</before>`));
        assert.deepEqual(idx(back), [3, 7]);
        assert.equal(back.firstIndex, 2);
      });

      it('start and end are inclusive (§4.1.2)', async () => {
        assert.deepEqual(idx(await run(query({ start: stamp(3), end: stamp(5) }))), [3, 4, 5]);
        assert.deepEqual(idx(await run(query({ start: stamp(10) }))), [10, 11]);
        assert.deepEqual(idx(await run(query({ end: stamp(1) }))), [0, 1]);
        const p = await run(query({ start: stamp(5), end: stamp(2) }));
        assert.deepEqual(p.items, []);
        assert.equal(p.complete, true);
        // A time zone offset names the same instant.
        assert.deepEqual(idx(await run(query({ start: '2024-01-01T14:10:00+02:00' }))), [10, 11]);
      });

      it('start + with + RSM combine', async () => {
        const p = await run(query({ with: 'bob@example.com', start: stamp(3) }, '<max>2</max>'));
        assert.deepEqual(idx(p), [3, 7]);
        assert.equal(p.count, 4);
        assert.equal(p.complete, false);
      });

      it('after-id and before-id bound the result set itself (§4.1.3)', async () => {
        const p = await run(query({ 'after-id': ids[2]!, 'before-id': ids[7]! }));
        assert.deepEqual(idx(p), [3, 4, 5, 6]);
        assert.equal(p.count, 4);
        assert.equal(p.complete, true);
        // Unlike RSM before, before-id does not page backwards: the first page of the set.
        const q = await run(query({ 'before-id': ids[7]! }, '<max>2</max>'));
        assert.deepEqual(idx(q), [0, 1]);
        // And the last page of a set bounded by before-id.
        const r = await run(query({ 'before-id': ids[7]! }, '<max>2</max><before/>'));
        assert.deepEqual(idx(r), [5, 6]);
        assert.equal(r.firstIndex, 5);
      });

      it('after-id with RSM after: the later of the two bounds applies', async () => {
        const earlierRsm = await run(query({ 'after-id': ids[5]! }, `<max>3</max><after>${ids[1]}</after>`));
        assert.deepEqual(idx(earlierRsm), [6, 7, 8]);
        assert.equal(earlierRsm.firstIndex, 0);
        const laterRsm = await run(query({ 'after-id': ids[5]! }, `<max>3</max><after>${ids[8]}</after>`));
        assert.deepEqual(idx(laterRsm), [9, 10, 11]);
        assert.equal(laterRsm.count, 6);
        assert.equal(laterRsm.firstIndex, 3);
        assert.equal(laterRsm.complete, true);
      });

      it('before-id with RSM before: the earlier of the two bounds applies', async () => {
        const p = await run(query({ 'before-id': ids[5]! }, `<max>2</max><before>${ids[9]}</before>`));
        assert.deepEqual(idx(p), [3, 4]);
        const q = await run(query({ 'before-id': ids[9]! }, `<max>2</max><before>${ids[5]}</before>`));
        assert.deepEqual(idx(q), [3, 4]);
      });

      it('ids fetches those items, in archive order (§4.1.3)', async () => {
        const p = await run(query({ ids: [ids[9]!, ids[2]!] }));
        assert.deepEqual(idx(p), [2, 9]);
        assert.equal(p.count, 2);
        assert.equal(p.complete, true);
        assert.deepEqual(idx(await run(query({ ids: [ids[9]!, ids[1]!], with: 'bob@example.com' }))), [9]);
      });

      it('any unknown id in before-id, after-id or ids is item-not-found (§4.1.3)', async () => {
        await assertRejects(run(query({ 'after-id': 'nope' })), 'item-not-found');
        await assertRejects(run(query({ 'before-id': 'nope' })), 'item-not-found');
        await assertRejects(run(query({ ids: [ids[1]!, 'nope'] })), 'item-not-found');
        // Also when the other bound would be the tighter one.
        await assertRejects(run(query({ 'after-id': ids[3]! }, '<after>nope</after>')), 'item-not-found');
        await assertRejects(run(query({ 'after-id': 'nope' }, `<after>${ids[3]}</after>`)), 'item-not-found');
        await assertRejects(run(query({ 'before-id': ids[3]! }, '<before>nope</before>')), 'item-not-found');
      });
    });

    describe('answering the iq', () => {
      const sent: Element[] = [];
      const ctx = (extra: object = {}) => ({ store, user: 'alice', archiveJid: 'alice@example.com', send: (m: Element) => void sent.push(m), ...extra });
      const iq = (type: string, payload: Element, from = 'alice@example.com/pc') => new Element('iq', { type, id: 'q1', from }).cnode(payload).up() as Element;

      beforeEach(() => {
        sent.length = 0;
      });

      it('sends each result as a forwarded message with delay, then the fin (§4.2, §4.3)', async () => {
        const fin = await answerMamIq(iq('set', query({ with: 'carol@example.com' }, '<max>2</max>', '', { queryid: 'f27' })), ctx());
        assert.equal(sent.length, 2);
        const [m] = sent;
        assert.equal(m!.attrs.to, 'alice@example.com/pc');
        assert.equal(m!.attrs.from, 'alice@example.com');
        const result = m!.getChild('result', NS_MAM)!;
        assert.equal(result.attrs.queryid, 'f27');
        assert.equal(result.attrs.id, ids[1]);
        const fwd = result.getChild('forwarded', 'urn:xmpp:forward:0')!;
        assert.equal(fwd.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp, stamp(1));
        const inner = fwd.getChild('message')!;
        assert.equal(inner.attrs.xmlns, 'jabber:client');
        assert.equal(inner.attrs.from, 'carol@example.com');
        assert.equal(inner.getChildText('body'), 'message 1');
        assert.equal(fin!.toString(),
          `<fin xmlns="${NS_MAM}"><set xmlns="${NS_RSM}"><first index="0">${ids[1]}</first><last>${ids[5]}</last><count>3</count></set></fin>`);
      });

      it('marks the final page complete', async () => {
        const fin = await answerMamIq(iq('set', query({ with: 'carol@example.com' })), ctx());
        assert.equal(fin!.attrs.complete, 'true');
        assert.equal(fin!.attrs.stable, undefined); // stable: no attribute (§4.3.3)
        assert.equal(sent.length, 3);
        assert.equal(sent[0]!.getChild('result', NS_MAM)!.attrs.queryid, undefined);
      });

      it('flip-page sends the same page newest first; first/last stay in archive order (§4.3.5)', async () => {
        const fin = await answerMamIq(iq('set', query(undefined, '<max>3</max><before/>', `<flip-page xmlns='${NS_MAM}'/>`)), ctx());
        assert.deepEqual(sent.map((m) => m.getChild('result', NS_MAM)!.attrs.id), [ids[11], ids[10], ids[9]]);
        const set = fin!.getChild('set', NS_RSM)!;
        assert.equal(set.getChildText('first'), ids[9]);
        assert.equal(set.getChildText('last'), ids[11]);
      });

      it('an empty page: fin with only the count', async () => {
        const fin = await answerMamIq(iq('set', query({ with: 'nobody@example.com' })), ctx());
        assert.equal(fin!.toString(), `<fin xmlns="${NS_MAM}" complete="true"><set xmlns="${NS_RSM}"><count>0</count></set></fin>`);
        assert.equal(sent.length, 0);
      });

      it('errors come back as StanzaErrors and nothing is sent', async () => {
        await assertRejects(answerMamIq(iq('set', query({ ids: ['nope'] })), ctx()), 'item-not-found');
        await assertRejects(answerMamIq(iq('set', query({ 'urn:x:unknown': 'y' })), ctx()), 'feature-not-implemented');
        await assertRejects(answerMamIq(new Element('iq', { type: 'set', id: 'x' }).cnode(query()).up() as Element, ctx()), 'bad-request');
        await assertRejects(answerMamIq(iq('set', el(`<metadata xmlns='${NS_MAM}'/>`)), ctx()), 'service-unavailable');
        await assertRejects(answerMamIq(iq('get', el(`<other xmlns='urn:x'/>`)), ctx()), 'service-unavailable');
        assert.equal(sent.length, 0);
      });

      it('get <query/> returns the form', async () => {
        const r = await answerMamIq(iq('get', query()), ctx());
        assert.equal(parseForm(r!.getChild('x', NS_DATA)!)!.formType, NS_MAM);
      });

      it('metadata: first and last item, or empty for an empty archive (§5)', async () => {
        const md = await answerMamIq(iq('get', el(`<metadata xmlns='${NS_MAM}'/>`)), ctx());
        assert.equal(md!.toString(),
          `<metadata xmlns="${NS_MAM}"><start id="${ids[0]}" timestamp="${stamp(0)}"/><end id="${ids[11]}" timestamp="${stamp(11)}"/></metadata>`);
        const empty = await answerMamIq(iq('get', el(`<metadata xmlns='${NS_MAM}'/>`)), ctx({ user: 'nobody' }));
        assert.equal(empty!.toString(), `<metadata xmlns="${NS_MAM}"/>`);
      });

      it('preferences through the context, or feature-not-implemented without (XEP-0441 §2.1)', async () => {
        let saved: ArchivePrefs = defaultPrefs('roster');
        const prefs = { get: async () => saved, set: async (p: ArchivePrefs) => (saved = p) };
        const got = await answerMamIq(iq('get', el(`<prefs xmlns='${NS_MAM}'/>`)), ctx({ prefs }));
        assert.equal(got!.toString(), `<prefs xmlns="${NS_MAM}" default="roster"><always/><never/></prefs>`);
        const set = await answerMamIq(iq('set', el(`<prefs xmlns='${NS_MAM}' default='always'><always><jid>romeo@montague.lit</jid></always><never><jid>montague@montague.lit</jid></never></prefs>`)), ctx({ prefs }));
        assert.equal(set!.toString(),
          `<prefs xmlns="${NS_MAM}" default="always"><always><jid>romeo@montague.lit</jid></always><never><jid>montague@montague.lit</jid></never></prefs>`);
        assert.deepEqual(saved, { default: 'always', always: ['romeo@montague.lit'], never: ['montague@montague.lit'] });
        await assertRejects(answerMamIq(iq('get', el(`<prefs xmlns='${NS_MAM}'/>`)), ctx()), 'feature-not-implemented');
        await assertRejects(answerMamIq(iq('set', el(`<prefs xmlns='${NS_MAM}' default='sometimes'/>`)), ctx({ prefs })), 'bad-request');
      });

      it('render adjusts each forwarded message (the room archive adds real JIDs)', async () => {
        const render = (item: { with?: string }, m: Element) => {
          m.c('x', { xmlns: 'http://jabber.org/protocol/muc#user' }).c('item', { jid: item.with ?? '' });
          return m;
        };
        await answerMamIq(iq('set', query({ ids: [ids[4]!] })), ctx({ render }));
        const inner = sent[0]!.getChild('result', NS_MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;
        assert.equal(inner.getChild('x', 'http://jabber.org/protocol/muc#user')!.getChild('item')!.attrs.jid, 'dave@other.example');
      });
    });

    it('expireArchive removes the oldest items up to the first newer one, never leaving a hole (§3.2)', async () => {
      // An item archived later with an older time (a clock that went back) stays.
      const late = await store.append('alice', { when: at(1), payload: '<message/>' });
      assert.equal(await expireArchive(store, 'alice', at(4), 2), 5);
      const left = await store.find('alice');
      assert.deepEqual(left.map((i) => i.id), [...ids.slice(5), late]);
      assert.equal(await expireArchive(store, 'alice', at(100)), 8);
      assert.equal(await store.count('alice'), 0);
      assert.equal(await store.count('bob'), 1);
      assert.equal(await expireArchive(store, 'alice', at(100)), 0);
    });
  });
}

describe('result messages and fin', () => {
  it('an unreadable stored payload is sent as a placeholder: id and time, no message', () => {
    const m = resultMessage({ id: 'x1', when: T0, payload: 'not xml <' }, { to: 'a@b/c', from: 'a@b' });
    assert.equal(m.toString(),
      `<message to="a@b/c" from="a@b"><result xmlns="${NS_MAM}" id="x1"><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2024-01-01T12:00:00Z"/></forwarded></result></message>`);
    const notMessage = resultMessage({ id: 'x2', when: T0 + 5, payload: '<presence/>' }, { to: 'a@b/c', from: 'a@b' });
    assert.equal(notMessage.getChild('result', NS_MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!.children.length, 1);
    assert.match(notMessage.toString(), /stamp="2024-01-01T12:00:00.005Z"/);
  });

  it('keeps a stored namespace and adds jabber:client where missing', () => {
    const m = resultMessage({ id: 'x', when: T0, payload: '<message><body>hi</body></message>' }, { to: 'a@b/c', from: 'a@b' });
    assert.equal(m.getChild('result', NS_MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!.attrs.xmlns, 'jabber:client');
  });

  it('fin of a non-final page has no complete attribute (§4.3.2)', () => {
    const fin = finElement({ items: [{ id: 'a', when: 0, payload: '' }], complete: false, count: 9, firstIndex: 3, flip: false });
    assert.equal(fin.toString(), `<fin xmlns="${NS_MAM}"><set xmlns="${NS_RSM}"><first index="3">a</first><last>a</last><count>9</count></set></fin>`);
  });
});

describe('archiving preferences (XEP-0441)', () => {
  const prefs = (xml: string) => parsePrefs(el(`<prefs xmlns='${NS_MAM}' ${xml}`));

  it('reads default and the lists, normalising JIDs', () => {
    assert.deepEqual(prefs(`default='roster'><always><jid>Romeo@Montague.lit</jid></always><never><jid>montague@montague.lit</jid><jid>x.example/r</jid></never></prefs>`),
      { default: 'roster', always: ['romeo@montague.lit'], never: ['montague@montague.lit', 'x.example/r'] });
    assert.deepEqual(prefs(`default='never'/>`), { default: 'never', always: [], never: [] });
  });

  it('keeps a JID that is in both lists in never only, and drops duplicates', () => {
    assert.deepEqual(prefs(`default='always'><always><jid>a@b</jid><jid>c@d</jid><jid>c@d</jid></always><never><jid>a@b</jid></never></prefs>`),
      { default: 'always', always: ['c@d'], never: ['a@b'] });
  });

  it('refuses a missing or unknown default, and malformed JIDs', () => {
    assertThrows(() => prefs(`><always/></prefs>`), 'bad-request');
    assertThrows(() => prefs(`default='sometimes'/>`), 'bad-request');
    assertThrows(() => prefs(`default='always'><never><jid>a@@b</jid></never></prefs>`), 'jid-malformed');
    assertThrows(() => parsePrefs(el(`<prefs xmlns='urn:xmpp:mam:1' default='always'/>`)), 'bad-request');
  });

  it('writes always and never even when empty (§2.1)', () => {
    assert.equal(prefsElement(defaultPrefs()).toString(), `<prefs xmlns="${NS_MAM}" default="always"><always/><never/></prefs>`);
  });

  it('reads stored preferences defensively', () => {
    assert.deepEqual(storedPrefs(undefined, 'roster'), defaultPrefs('roster'));
    assert.deepEqual(storedPrefs({ default: 'bogus', always: ['a@b', 3], never: 'x' }), { default: 'always', always: ['a@b'], never: [] });
  });

  it('matches lists as §2.3 says: full entries exactly, bare entries by bare JID; more specific wins, then never', () => {
    const p: ArchivePrefs = { default: 'roster', always: ['romeo@montague.lit', 'nurse@capulet.lit/kitchen'], never: ['tybalt@capulet.lit', 'nurse@capulet.lit'] };
    assert.equal(archivePolicy(p, 'romeo@montague.lit/orchard'), 'always');
    assert.equal(archivePolicy(p, 'romeo@montague.lit'), 'always');
    assert.equal(archivePolicy(p, 'tybalt@capulet.lit/sword'), 'never');
    assert.equal(archivePolicy(p, 'nurse@capulet.lit/kitchen'), 'always'); // full entry beats bare
    assert.equal(archivePolicy(p, 'nurse@capulet.lit/garden'), 'never');
    assert.equal(archivePolicy(p, 'benvolio@montague.lit'), 'roster');
    const both: ArchivePrefs = { default: 'always', always: ['a@b/r'], never: ['a@b/r'] };
    assert.equal(archivePolicy(both, 'a@b/r'), 'never');
    // A full entry does not match the bare JID or another resource.
    assert.equal(archivePolicy({ default: 'always', always: [], never: ['a@b/r'] }, 'a@b'), 'always');
    assert.equal(archivePolicy({ default: 'always', always: [], never: ['a@b/r'] }, 'a@b/s'), 'always');
  });

  it('shouldArchive resolves default=roster with the roster', () => {
    const p = defaultPrefs('roster');
    assert.equal(shouldArchive(p, 'friend@example.com/x', true), true);
    assert.equal(shouldArchive(p, 'stranger@example.com/x', false), false);
    assert.equal(shouldArchive(defaultPrefs('always'), 'stranger@example.com', false), true);
    assert.equal(shouldArchive(defaultPrefs('never'), 'friend@example.com', true), false);
  });
});

describe('stanza ids (XEP-0359)', () => {
  const msg = () => el(`<message from='romeo@montague.lit/orchard' to='juliet@capulet.lit'><body>hi</body>`
    + `<stanza-id xmlns='${NS_SID}' by='Juliet@Capulet.lit' id='forged'/><stanza-id xmlns='${NS_SID}' by='room@muc.example' id='keep'/>`
    + `<origin-id xmlns='${NS_SID}' id='orig-1'/></message>`);

  it('strips ids claiming our by (compared as JIDs), keeps the others and leaves the original alone', () => {
    const m = msg();
    const s = stripStanzaIds(m, 'juliet@capulet.lit');
    assert.notEqual(s, m);
    assert.equal(s.getChildren('stanza-id', NS_SID).length, 1);
    assert.equal(stanzaIdOf(s, 'room@muc.example'), 'keep');
    assert.equal(m.getChildren('stanza-id', NS_SID).length, 2);
    const clean = el(`<message><body>x</body></message>`);
    assert.equal(stripStanzaIds(clean, 'juliet@capulet.lit'), clean);
  });

  it('adds exactly one stanza-id for by, replacing a forged one (§3 rules 2 and 4)', () => {
    const m = addStanzaId(msg(), 'juliet@capulet.lit', '28482-98726-73623');
    const mine = m.getChildren('stanza-id', NS_SID).filter((c) => c.attrs.by === 'juliet@capulet.lit' || c.attrs.by === 'Juliet@Capulet.lit');
    assert.equal(mine.length, 1);
    assert.equal(stanzaIdOf(m, 'juliet@capulet.lit'), '28482-98726-73623');
    assert.equal(originIdOf(m), 'orig-1'); // the origin-id is preserved (§2.2)
    assert.equal(stanzaIdOf(el(`<message/>`), 'juliet@capulet.lit'), undefined);
    assert.equal(originIdOf(el(`<message/>`)), undefined);
  });
});

describe('what is archived (§5.1) and how', () => {
  const decide = (xml: string) => userArchiveDecision(el(xml)).archive;

  it('user archive: chat/normal with a body, hints honoured, no errors, headlines, groupchat or copies', () => {
    assert.equal(decide(`<message type='chat'><body>hi</body></message>`), true);
    assert.equal(decide(`<message><body>hi</body></message>`), true);
    assert.equal(decide(`<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`), false);
    assert.equal(decide(`<message type='chat'><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>`), false);
    assert.equal(decide(`<message type='chat'><body>hi</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`), false);
    assert.equal(decide(`<message type='chat'><store xmlns='urn:xmpp:hints'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>`), true);
    assert.equal(decide(`<message type='error'><body>hi</body><store xmlns='urn:xmpp:hints'/></message>`), false);
    assert.equal(decide(`<message type='headline'><body>news</body></message>`), false);
    assert.equal(decide(`<message type='groupchat'><body>hi</body></message>`), false);
    assert.equal(decide(`<message type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/></received></message>`), false);
    assert.equal(decide(`<message><result xmlns='urn:xmpp:mam:2' id='x'/></message>`), false);
    assert.equal(decide(`<message type='weird'><body>hi</body></message>`), false);
  });

  it('user archive: content without a body that other devices need', () => {
    assert.equal(decide(`<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>`), true);
    assert.equal(decide(`<message type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>`), true);
    assert.equal(decide(`<message type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>`), true);
    assert.equal(decide(`<message><x xmlns='jabber:x:conference' jid='room@muc'/></message>`), true);
    assert.equal(decide(`<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>`), true);
    assert.equal(decide(`<message><x xmlns='http://jabber.org/protocol/muc#user'/></message>`), false);
    assert.equal(decide(`<message type='chat'><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>`), true);
  });

  it('room archive: groupchat with body or subject, not private messages or hinted ones', () => {
    const room = (xml: string) => roomArchiveDecision(el(xml)).archive;
    assert.equal(room(`<message type='groupchat'><body>hi</body></message>`), true);
    assert.equal(room(`<message type='groupchat'><subject/></message>`), true);
    assert.equal(room(`<message type='groupchat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`), false);
    assert.equal(room(`<message type='chat'><body>pm</body></message>`), false);
    assert.equal(room(`<message type='groupchat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`), false);
    assert.equal(room(`<message type='groupchat'><store xmlns='urn:xmpp:hints'/></message>`), true);
  });

  it('stores the stanza in jabber:client without forged ids; for a room without to and muc#user x', () => {
    const m = el(`<message from='room@muc/nick' to='juliet@capulet.lit/balcony' type='groupchat'><body>hi</body>`
      + `<stanza-id xmlns='${NS_SID}' by='room@muc' id='forged'/><x xmlns='http://jabber.org/protocol/muc#user'><item jid='liar@x'/></x></message>`);
    assert.equal(archivedPayload(m, 'room@muc', { room: true }), `<message from="room@muc/nick" type="groupchat" xmlns="jabber:client"><body>hi</body></message>`);
    const user = archivedPayload(el(`<message to='a@b' from='c@d/e'><body>x</body></message>`), 'a@b');
    assert.equal(user, `<message to="a@b" from="c@d/e" xmlns="jabber:client"><body>x</body></message>`);
    assert.equal(m.getChildren('stanza-id', NS_SID).length, 1); // the original is untouched
  });

  it('archiveTargets: both sides of a message, once for a message to oneself', () => {
    assert.deepEqual(archiveTargets(el(`<message from='alice@example.com/pc' to='bob@example.com'/>`)), [
      { owner: 'alice@example.com', direction: 'outgoing', with: 'bob@example.com' },
      { owner: 'bob@example.com', direction: 'incoming', with: 'alice@example.com/pc' },
    ]);
    assert.deepEqual(archiveTargets(el(`<message from='alice@example.com/pc' to='alice@example.com/phone'/>`)), [
      { owner: 'alice@example.com', direction: 'outgoing', with: 'alice@example.com/phone' },
    ]);
    assert.deepEqual(archiveTargets(el(`<message to='alice@example.com'/>`)), []);
  });

  it('parseExpiry reads seconds, units and never', () => {
    assert.equal(parseExpiry(undefined), undefined);
    assert.equal(parseExpiry('never'), undefined);
    assert.equal(parseExpiry(3600), 3_600_000);
    assert.equal(parseExpiry('7d'), 7 * 86_400_000);
    assert.equal(parseExpiry('2w'), 14 * 86_400_000);
    assert.equal(parseExpiry('1y'), 365 * 86_400_000);
    assert.equal(parseExpiry('12h'), 12 * 3_600_000);
    assert.equal(parseExpiry('90m'), 90 * 60_000);
    for (const bad of ['0d', '-1', 'soon', '7 days', '']) assert.throws(() => parseExpiry(bad), RangeError);
    assert.throws(() => parseExpiry(-5), RangeError);
  });
});
