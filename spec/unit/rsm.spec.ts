// Result Set Management (XEP-0059): request parsing, response building, and paging a list by
// every rule of §2 (limit, forwards, backwards, page not found, last page, index, count).
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import type { Element } from '@xmpp/xml';
import { StanzaError } from '../../core/util/errors.ts';
import { NS_RSM, findRsm, pageList, pageSize, parseRsm, rsmElement, rsmResponse } from '../../core/util/rsm.ts';

const set = (inner: string): Element => parse(`<set xmlns='${NS_RSM}'>${inner}</set>`) as Element;

function rejects(f: () => unknown, condition: string): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof StanzaError, String(err));
    assert.equal(err.condition, condition);
    return true;
  });
}

describe('RSM (XEP-0059)', () => {
  describe('parseRsm', () => {
    it('reads max, after, before and index', () => {
      assert.deepEqual(parseRsm(set('<max>10</max><after>peterpan@neverland.lit</after>')), { max: 10, after: 'peterpan@neverland.lit' });
      assert.deepEqual(parseRsm(set('<max>10</max><before>peter@pixyland.org</before>')), { max: 10, before: 'peter@pixyland.org' });
      assert.deepEqual(parseRsm(set('<max>10</max><index>371</index>')), { max: 10, index: 371 });
      assert.deepEqual(parseRsm(set('<max> 0 </max>')), { max: 0 });
    });

    it('reads an empty <before/> as the last page and an empty <after/> as no after', () => {
      assert.deepEqual(parseRsm(set('<max>10</max><before/>')), { max: 10, before: '' });
      assert.deepEqual(parseRsm(set('<after/>')), {});
    });

    it('keeps UIDs exactly as sent (they are opaque)', () => {
      assert.deepEqual(parseRsm(set('<after> a b </after>')), { after: ' a b ' });
    });

    it('ignores response elements and foreign children', () => {
      assert.deepEqual(parseRsm(set(`<count>5</count><first index='0'>x</first><last>y</last><max xmlns='urn:other'>x</max><max>3</max>`)), { max: 3 });
    });

    it('refuses malformed numbers with bad-request', () => {
      for (const bad of ['<max>abc</max>', '<max>-1</max>', '<max/>', '<max>1.5</max>', '<max>2147483648</max>', '<index>x</index>', '<index>-3</index>']) {
        rejects(() => parseRsm(set(bad)), 'bad-request');
      }
      assert.deepEqual(parseRsm(set('<max>2147483647</max>')), { max: 2147483647 });
    });

    it('refuses an element given twice, and index with after/before', () => {
      rejects(() => parseRsm(set('<max>1</max><max>2</max>')), 'bad-request');
      rejects(() => parseRsm(set('<after>a</after><after>b</after>')), 'bad-request');
      rejects(() => parseRsm(set('<index>2</index><after>a</after>')), 'bad-request');
      rejects(() => parseRsm(set('<index>2</index><before/>')), 'bad-request');
    });

    it('findRsm reads the <set/> child of a payload, if any', () => {
      const q = parse(`<query xmlns='jabber:iq:search'><nick>Pete</nick><set xmlns='${NS_RSM}'><max>10</max></set></query>`) as Element;
      assert.deepEqual(findRsm(q), { max: 10 });
      assert.equal(findRsm(parse(`<query xmlns='jabber:iq:search'/>`) as Element), undefined);
    });
  });

  describe('responses', () => {
    it('first with index, last and count', () => {
      const el = rsmElement(rsmResponse(['a', 'b', 'c'], { firstIndex: 10, count: 800 }));
      assert.equal(el.toString(), `<set xmlns="${NS_RSM}"><first index="10">a</first><last>c</last><count>800</count></set>`);
    });

    it('one item: first and last are the same', () => {
      const r = rsmResponse(['only'], { firstIndex: 0, count: 1 });
      assert.equal(r.first, 'only');
      assert.equal(r.last, 'only');
    });

    it('an empty page has no first or last (§2.2), only the count', () => {
      const el = rsmElement(rsmResponse([], { firstIndex: 0, count: 790 }));
      assert.equal(el.toString(), `<set xmlns="${NS_RSM}"><count>790</count></set>`);
      assert.equal(rsmElement(rsmResponse([])).toString(), `<set xmlns="${NS_RSM}"/>`);
    });

    it('pageSize: the request, the default, and the server limit', () => {
      assert.equal(pageSize(undefined), 50);
      assert.equal(pageSize({}, { defaultMax: 20 }), 20);
      assert.equal(pageSize({ max: 5 }, { defaultMax: 20 }), 5);
      assert.equal(pageSize({ max: 500 }, { maxMax: 100 }), 100);
      assert.equal(pageSize({ max: 0 }, { maxMax: 100 }), 0);
    });
  });

  describe('pageList', () => {
    const items = Array.from({ length: 25 }, (_, i) => ({ uid: `u${String(i).padStart(2, '0')}` }));
    const uid = (x: { uid: string }) => x.uid;
    const uids = (p: { items: { uid: string }[] }) => p.items.map(uid);
    const range = (a: number, b: number) => items.slice(a, b).map(uid);

    it('limits the first page, with first index 0 and the count (§2.1, §2.2)', () => {
      const p = pageList(items, { max: 10 }, uid);
      assert.deepEqual(uids(p), range(0, 10));
      assert.deepEqual(p.rsm, { first: 'u00', firstIndex: 0, last: 'u09', count: 25 });
      assert.equal(p.complete, false);
    });

    it('pages forwards with after = last of the previous page, to the end', () => {
      const p2 = pageList(items, { max: 10, after: 'u09' }, uid);
      assert.deepEqual(uids(p2), range(10, 20));
      assert.equal(p2.rsm.firstIndex, 10);
      const p3 = pageList(items, { max: 10, after: p2.rsm.last! }, uid);
      assert.deepEqual(uids(p3), range(20, 25));
      assert.equal(p3.rsm.firstIndex, 20); // count minus the items in the last page
      assert.equal(p3.complete, true);
      const p4 = pageList(items, { max: 10, after: 'u24' }, uid);
      assert.deepEqual(p4, { items: [], rsm: { count: 25 }, complete: true });
    });

    it('pages backwards with before = first of the page already seen (§2.3)', () => {
      const p = pageList(items, { max: 10, before: 'u20' }, uid);
      assert.deepEqual(uids(p), range(10, 20)); // the last item precedes u20, order unchanged
      assert.equal(p.rsm.firstIndex, 10);
      assert.equal(p.complete, false);
      const p0 = pageList(items, { max: 10, before: 'u10' }, uid);
      assert.deepEqual(uids(p0), range(0, 10));
      assert.equal(p0.complete, true);
      assert.deepEqual(pageList(items, { max: 10, before: 'u00' }, uid).items, []);
    });

    it('the empty <before/> is the last page (§2.5)', () => {
      const p = pageList(items, { max: 10, before: '' }, uid);
      assert.deepEqual(uids(p), range(15, 25));
      assert.equal(p.rsm.firstIndex, 15);
      assert.equal(p.complete, false);
      assert.equal(pageList(items, { max: 30, before: '' }, uid).complete, true);
    });

    it('an unknown UID is item-not-found (§2.4)', () => {
      rejects(() => pageList(items, { after: 'gone' }, uid), 'item-not-found');
      rejects(() => pageList(items, { before: 'gone' }, uid), 'item-not-found');
    });

    it('a page out of order by index (§2.6), and an empty page past the end', () => {
      const p = pageList(items, { max: 10, index: 12 }, uid);
      assert.deepEqual(uids(p), range(12, 22));
      assert.equal(p.rsm.firstIndex, 12);
      assert.deepEqual(uids(pageList(items, { max: 10, index: 0 }, uid)), range(0, 10));
      assert.deepEqual(pageList(items, { max: 10, index: 25 }, uid), { items: [], rsm: { count: 25 }, complete: true });
      assert.deepEqual(pageList(items, { max: 10, index: 99 }, uid).items, []);
    });

    it('max 0 gives only the count (§2.7)', () => {
      assert.deepEqual(pageList(items, { max: 0 }, uid), { items: [], rsm: { count: 25 }, complete: false });
      assert.deepEqual(pageList([], { max: 0 }, uid), { items: [], rsm: { count: 0 }, complete: true });
    });

    it('an empty result set gives an empty complete page', () => {
      assert.deepEqual(pageList([], { max: 10 }, uid), { items: [], rsm: { count: 0 }, complete: true });
      assert.deepEqual(pageList([], { max: 10, before: '' }, uid), { items: [], rsm: { count: 0 }, complete: true });
    });

    it('after and before together page backwards within that range', () => {
      const p = pageList(items, { max: 3, after: 'u05', before: 'u15' }, uid);
      assert.deepEqual(uids(p), range(12, 15));
      assert.equal(p.complete, false);
      assert.deepEqual(uids(pageList(items, { max: 30, after: 'u05', before: 'u15' }, uid)), range(6, 15));
    });

    it('applies the default page size and the server limit', () => {
      assert.equal(pageList(items, undefined, uid, { defaultMax: 7 }).items.length, 7);
      const p = pageList(items, { max: 100 }, uid, { maxMax: 20 });
      assert.equal(p.items.length, 20);
      assert.equal(p.complete, false);
    });
  });
});
