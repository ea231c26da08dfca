// Querying the account archive over a real stream (XEP-0313 §4, XEP-0059, #extended): the form,
// filters by with/start/end/before-id/after-id/ids, RSM paging forwards and backwards with count
// and index, flip-page, complete on the last page, item-not-found for unknown ids, bad-request
// for a malformed date, metadata.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { NS_MAM, NS_RSM, mamForm, mamQuery, rsm } from '../helpers/mam.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'mam-query-pass';
const N = 12; // messages from romeo; then 3 from tybalt

describe('e2e: message archive queries (XEP-0313 §4, XEP-0059)', function () {
  let server: TestServer;
  let juliet: TestClient;
  let romeo: TestClient;
  let tybalt: TestClient;
  /** Archive ids of Juliet's archive, oldest first, and the message ids they hold. */
  let ids: string[] = [];
  let msgIds: string[] = [];
  let middle = '';

  const body = (m: Element) => m.getChildText('body');
  const setOf = (r: { fin: Element }) => r.fin.getChild('set', NS_RSM)!;

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, tybalt: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'mam'] },
    });
    juliet = await login(server, 'juliet', PASS, { resource: 'q', presence: true });
    romeo = await login(server, 'romeo', PASS, { resource: 'q' });
    tybalt = await login(server, 'tybalt', PASS, { resource: 'q' });
    for (let i = 0; i < N; i++) {
      await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: `r${i}` }, xml('body', {}, `romeo ${i}`)));
      await juliet.expect((s) => s.attrs.id === `r${i}`);
      if (i === 5) {
        await new Promise((r) => setTimeout(r, 20)); // a gap in time for the start/end filters
        middle = new Date().toISOString();
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    for (let i = 0; i < 3; i++) {
      await tybalt.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: `t${i}` }, xml('body', {}, `tybalt ${i}`)));
      await juliet.expect((s) => s.attrs.id === `t${i}`);
    }
    const all = await mamQuery(juliet);
    ids = all.ids;
    msgIds = all.messages.map((m) => String(m.attrs.id));
  });
  after(async function () {
    await Promise.all([juliet, romeo, tybalt].map((c) => c?.stop()));
    await server?.destroy();
  });

  it('returns the whole archive oldest first, complete, with count and first/last', async function () {
    assert.equal(ids.length, N + 3);
    assert.deepEqual(msgIds, [...Array.from({ length: N }, (_, i) => `r${i}`), 't0', 't1', 't2']);
    const all = await mamQuery(juliet);
    assert.equal(all.fin.attrs.complete, 'true');
    assert.equal(setOf(all).getChildText('count'), String(N + 3));
    assert.equal(setOf(all).getChildText('first'), ids[0]);
    assert.equal(setOf(all).getChildText('last'), ids.at(-1));
    const first = all.results[0]!;
    assert.equal(first.attrs.from, 'juliet@localhost');
    assert.ok(first.getChild('result', NS_MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('delay', 'urn:xmpp:delay'));
  });

  it('offers the query form with its fields (§4.1.5)', async function () {
    const r = await juliet.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_MAM })));
    const fields = r.getChild('query', NS_MAM)!.getChild('x', 'jabber:x:data')!.getChildren('field').map((f) => f.attrs.var as string);
    for (const f of ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']) assert.ok(fields.includes(f), f);
  });

  it('filters by with (bare JID)', async function () {
    const r = await mamQuery(juliet, [mamForm({ with: 'tybalt@localhost' })]);
    assert.deepEqual(r.messages.map(body), ['tybalt 0', 'tybalt 1', 'tybalt 2']);
  });

  it('filters by start and end', async function () {
    const after = await mamQuery(juliet, [mamForm({ start: middle, with: 'romeo@localhost' })]);
    assert.deepEqual(after.messages.map((m) => m.attrs.id), ['r6', 'r7', 'r8', 'r9', 'r10', 'r11']);
    const before = await mamQuery(juliet, [mamForm({ end: middle })]);
    assert.deepEqual(before.messages.map((m) => m.attrs.id), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('filters by after-id, before-id and ids (#extended)', async function () {
    const a = await mamQuery(juliet, [mamForm({ 'after-id': ids[N - 1]! })]);
    assert.deepEqual(a.ids, ids.slice(N));
    const b = await mamQuery(juliet, [mamForm({ 'before-id': ids[2]! })]);
    assert.deepEqual(b.ids, ids.slice(0, 2));
    const c = await mamQuery(juliet, [mamForm({ ids: [ids[4]!, ids[1]!] })]);
    assert.deepEqual(c.ids, [ids[1], ids[4]]);
  });

  it('answers item-not-found for unknown ids, bad-request for a bad date', async function () {
    for (const q of [[mamForm({ 'after-id': 'nope' })], [mamForm({ ids: ['nope'] })], [rsm({ after: 'nope' })]]) {
      const r = await mamQuery(juliet, q);
      assert.equal(r.reply.attrs.type, 'error');
      assert.equal(stanzaErrorCondition(r.reply), 'item-not-found');
    }
    const bad = await mamQuery(juliet, [mamForm({ start: 'yesterday' })]);
    assert.equal(stanzaErrorCondition(bad.reply), 'bad-request');
  });

  it('pages forwards with <after/> and backwards from the last page with <before/>', async function () {
    const p1 = await mamQuery(juliet, [rsm({ max: '5' })]);
    assert.deepEqual(p1.ids, ids.slice(0, 5));
    assert.equal(p1.fin.attrs.complete, undefined);
    assert.equal(setOf(p1).getChild('first')!.attrs.index, '0');
    const p2 = await mamQuery(juliet, [rsm({ max: '5', after: p1.ids.at(-1) })]);
    assert.deepEqual(p2.ids, ids.slice(5, 10));
    const last = await mamQuery(juliet, [rsm({ max: '5', before: undefined })]);
    assert.deepEqual(last.ids, ids.slice(-5));
    assert.equal(setOf(last).getChild('first')!.attrs.index, String(ids.length - 5));
    const prev = await mamQuery(juliet, [rsm({ max: '5', before: last.ids[0] })]);
    assert.deepEqual(prev.ids, ids.slice(-10, -5));
    const oldest = await mamQuery(juliet, [rsm({ max: '5', before: prev.ids[0] })]);
    assert.deepEqual(oldest.ids, ids.slice(0, 5));
    assert.equal(oldest.fin.attrs.complete, 'true', 'nothing older');
  });

  it('pages by <index/>, counts with <max>0</max>, flips a page (§4.3.5)', async function () {
    const at = await mamQuery(juliet, [rsm({ max: '3', index: '4' })]);
    assert.deepEqual(at.ids, ids.slice(4, 7));
    const count = await mamQuery(juliet, [mamForm({ with: 'romeo@localhost' }), rsm({ max: '0' })]);
    assert.equal(count.ids.length, 0);
    assert.equal(setOf(count).getChildText('count'), String(N));
    const flipped = await mamQuery(juliet, [rsm({ max: '3' }), xml('flip-page')]);
    assert.deepEqual(flipped.ids, ids.slice(0, 3).reverse());
  });

  it('answers metadata with the first and last item (§5)', async function () {
    const r = await juliet.iq(xml('iq', { type: 'get' }, xml('metadata', { xmlns: NS_MAM })));
    const md = r.getChild('metadata', NS_MAM)!;
    assert.equal(md.getChild('start')!.attrs.id, ids[0]);
    assert.equal(md.getChild('end')!.attrs.id, ids.at(-1));
  });
});
