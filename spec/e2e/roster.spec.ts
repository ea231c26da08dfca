// Roster management end to end (RFC 6121 §2, XEP-0237): get/set/remove, pushes to interested
// resources, versioning, invalid sets, and the subscription clean-up of removal and account
// deletion.
import assert from 'node:assert/strict';
import { RawClient, login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS_ROSTER = 'jabber:iq:roster';
const PASS = 'roster-pass';
const HOST = 'localhost';

const USERS = ['feat', 'get', 'push', 'ver', 'rem', 'bad', 'own', 'other', 'rs1', 'rs2', 'del1', 'del2', 'del3', 'ask1', 'ask2'];


interface ItemView {
  jid: string;
  subscription: string | undefined;
  ask: string | undefined;
  name: string | undefined;
  groups: string[];
}

function items(query: Element | undefined): ItemView[] {
  if (!query) return [];
  return query.getChildren('item').map((i) => ({
    jid: i.attrs.jid as string,
    subscription: i.attrs.subscription as string | undefined,
    ask: i.attrs.ask as string | undefined,
    name: i.attrs.name as string | undefined,
    groups: i.getChildren('group').map((g) => g.text()),
  }));
}

function rosterQuery(el: Element): Element | undefined {
  return el.getChild('query', NS_ROSTER);
}

const isPush = (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && rosterQuery(el) !== undefined;
const isPushFor = (jid: string) => (el: Element) => isPush(el) && rosterQuery(el)!.getChild('item')?.attrs.jid === jid;

describe('e2e: roster', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  const connect = async (user: string, resource: string, opts: { presence?: boolean; roster?: boolean } = {}) => {
    const c = await login(server, user, PASS, { resource, presence: opts.presence });
    clients.push(c);
    if (opts.roster) await rosterGet(c);
    return c;
  };

  const rosterGet = (c: TestClient, ver?: string) =>
    c.iq(xml('iq', { type: 'get' }, xml('query', ver === undefined ? { xmlns: NS_ROSTER } : { xmlns: NS_ROSTER, ver })));

  const rosterSet = (c: TestClient, item: Record<string, string>, groups: string[] = []) =>
    c.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', item, ...groups.map((g) => xml('group', {}, g))))));

  const expectResult = (reply: Element) => {
    assert.equal(reply.attrs.type, 'result', `expected a result, got ${reply.toString()}`);
  };

  before(async function () {
    this.timeout(120_000);
    server = await startServer({
      users: Object.fromEntries(USERS.map((u) => [u, PASS])),
      config: { virtualHosts: { [HOST]: { modulesEnabled: ['register'] } } },
    });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    for (const r of raws.splice(0)) r.close();
  });
  after(async function () {
    await server?.destroy();
  });

  it('advertises roster versioning in the stream features after authentication', async function () {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    await c.starttls();
    const pre = await c.expect((el) => el.name === 'stream:features');
    assert.equal(pre.getChild('ver', 'urn:xmpp:features:rosterver'), undefined, 'not before authentication');
    c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0feat\0${PASS}`).toString('base64')}</auth>`);
    await c.expect((el) => el.name === 'success');
    c.restartStream();
    const post = await c.expect((el) => el.name === 'stream:features');
    assert.ok(post.getChild('ver', 'urn:xmpp:features:rosterver'), 'rosterver advertised');
    assert.ok(post.getChild('sub', 'urn:xmpp:features:pre-approval'), 'pre-approval advertised');
  });

  it('returns an empty roster with a version and makes the resource interested', async function () {
    const a = await connect('get', 'one');
    const b = await connect('get', 'two');
    // Not interested yet: no push.
    const r1 = await rosterGet(a);
    const q = rosterQuery(r1)!;
    assert.ok(q, 'query in result');
    assert.equal(items(q).length, 0);
    assert.equal(typeof q.attrs.ver, 'string');
    expectResult(await rosterSet(b, { jid: 'someone@example.org' }));
    await a.expect(isPushFor('someone@example.org'));
    await b.expectNothing(isPush, 400); // b never asked for the roster
  });

  it('adds and updates items, answers, then pushes to every interested resource with fresh ids', async function () {
    const a = await connect('push', 'a', { roster: true });
    const b = await connect('push', 'b', { roster: true });
    const c = await connect('push', 'c'); // connected, not interested

    const reply = await rosterSet(a, { jid: 'Friend@Example.org', name: 'Friend' }, ['Buddies', 'Work']);
    expectResult(reply);
    const pa = await a.expect(isPushFor('friend@example.org'));
    const pb = await b.expect(isPushFor('friend@example.org'));
    for (const [p, c0] of [[pa, a], [pb, b]] as const) {
      assert.equal(p.attrs.to, c0.jid);
      assert.ok(p.attrs.from === undefined || p.attrs.from === 'push@localhost');
      assert.ok(p.attrs.id);
      const [it0] = items(rosterQuery(p));
      assert.deepEqual(it0, { jid: 'friend@example.org', subscription: 'none', ask: undefined, name: 'Friend', groups: ['Buddies', 'Work'] });
      assert.ok(rosterQuery(p)!.attrs.ver);
    }
    assert.notEqual(pa.attrs.id, pb.attrs.id);
    await c.expectNothing(isPush, 300);

    // Update: name removed, groups replaced; subscription untouched.
    expectResult(await rosterSet(b, { jid: 'friend@example.org' }, ['Family']));
    const upd = await a.expect(isPushFor('friend@example.org'));
    assert.deepEqual(items(rosterQuery(upd))[0], { jid: 'friend@example.org', subscription: 'none', ask: undefined, name: undefined, groups: ['Family'] });
    await b.expect(isPushFor('friend@example.org'));

    const all = items(rosterQuery(await rosterGet(c)));
    assert.deepEqual(all, [{ jid: 'friend@example.org', subscription: 'none', ask: undefined, name: undefined, groups: ['Family'] }]);
  });

  it('answers an empty result when the client has the current version (XEP-0237)', async function () {
    const a = await connect('ver', 'a');
    const first = rosterQuery(await rosterGet(a))!;
    const v0 = first.attrs.ver as string;
    const same = await rosterGet(a, v0);
    assert.equal(same.attrs.type, 'result');
    assert.equal(rosterQuery(same), undefined, 'no query when up to date');

    expectResult(await rosterSet(a, { jid: 'x@example.org' }));
    const push = await a.expect(isPushFor('x@example.org'));
    const v1 = rosterQuery(push)!.attrs.ver as string;
    assert.notEqual(v1, v0);

    // A stale version gets the whole roster with the current version.
    const stale = rosterQuery(await rosterGet(a, v0))!;
    assert.equal(stale.attrs.ver, v1);
    assert.deepEqual(items(stale).map((i) => i.jid), ['x@example.org']);
    // An empty ver (a client without a cached roster) too.
    const empty = rosterQuery(await rosterGet(a, ''))!;
    assert.equal(empty.attrs.ver, v1);
    // The version from the push is current.
    const current = await rosterGet(a, v1);
    assert.equal(rosterQuery(current), undefined);
  });

  it("removes items with a subscription='remove' push and answers item-not-found for unknown ones", async function () {
    const a = await connect('rem', 'a', { roster: true });
    const b = await connect('rem', 'b', { roster: true });
    expectResult(await rosterSet(a, { jid: 'gone@example.org' }));
    await a.expect(isPushFor('gone@example.org'));
    await b.expect(isPushFor('gone@example.org'));

    expectResult(await rosterSet(a, { jid: 'gone@example.org', subscription: 'remove' }));
    for (const c of [a, b]) {
      const p = await c.expect(isPushFor('gone@example.org'));
      assert.equal(rosterQuery(p)!.getChild('item')!.attrs.subscription, 'remove');
    }
    assert.deepEqual(items(rosterQuery(await rosterGet(a))), []);

    const err = await rosterSet(a, { jid: 'gone@example.org', subscription: 'remove' });
    assert.equal(err.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(err), 'item-not-found');
  });

  it('rejects invalid roster sets with the RFC 6121 §2.3.3 errors', async function () {
    const a = await connect('bad', 'a', { roster: true });
    const cases: { what: string; iq: Element; condition: string }[] = [
      {
        what: 'two items',
        iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@example.org' }), xml('item', { jid: 'b@example.org' }))),
        condition: 'bad-request',
      },
      { what: 'no item', iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER })), condition: 'bad-request' },
      { what: 'item without jid', iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { name: 'x' }))), condition: 'bad-request' },
      { what: 'invalid jid', iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@b@example.org' }))), condition: 'jid-malformed' },
      { what: 'full jid', iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@example.org/res' }))), condition: 'jid-malformed' },
      { what: 'own jid', iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'bad@localhost' }))), condition: 'not-allowed' },
      { what: 'own jid, other case', iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'BAD@LocalHost' }))), condition: 'not-allowed' },
      {
        what: 'duplicate group',
        iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@example.org' }, xml('group', {}, 'G'), xml('group', {}, 'G')))),
        condition: 'bad-request',
      },
      {
        what: 'empty group',
        iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@example.org' }, xml('group', {})))),
        condition: 'bad-request',
      },
      {
        what: 'group name too long',
        iq: xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@example.org' }, xml('group', {}, 'g'.repeat(5000))))),
        condition: 'not-acceptable',
      },
    ];
    for (const c of cases) {
      const reply = await a.iqRaw(c.iq);
      assert.equal(reply.attrs.type, 'error', `${c.what}: ${reply.toString()}`);
      assert.equal(stanzaErrorCondition(reply), c.condition, c.what);
    }
    await a.expectNothing(isPush, 300);
    assert.deepEqual(items(rosterQuery(await rosterGet(a))), []);
  });

  it("ignores a subscription value other than 'remove' in a roster set (§2.1.2.5)", async function () {
    const a = await connect('bad', 'claims', { roster: true });
    const reply = await rosterSet(a, { jid: 'a@example.org', subscription: 'both', name: 'Claimed' });
    assert.equal(reply.attrs.type, 'result');
    const push = await a.expect(isPush);
    assert.deepEqual(items(rosterQuery(push)), [{ jid: 'a@example.org', subscription: 'none', ask: undefined, name: 'Claimed', groups: [] }]);
  });

  it("forbids access to another entity's roster", async function () {
    const a = await connect('own', 'a');
    for (const type of ['get', 'set']) {
      const q = type === 'get' ? xml('query', { xmlns: NS_ROSTER }) : xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'x@example.org' }));
      const reply = await a.iqRaw(xml('iq', { type, to: 'other@localhost' }, q));
      assert.equal(reply.attrs.type, 'error');
      assert.equal(stanzaErrorCondition(reply), 'forbidden', type);
    }
    // Addressed to one's own bare JID, it is one's own roster.
    const mine = await a.iqRaw(xml('iq', { type: 'get', to: 'own@localhost' }, xml('query', { xmlns: NS_ROSTER })));
    assert.equal(mine.attrs.type, 'result');
  });

  it('cancels the subscription both ways when a contact is removed (§2.5.2)', async function () {
    const a = await connect('rs1', 'a', { roster: true, presence: true });
    const b = await connect('rs2', 'b', { roster: true, presence: true });
    // Mutual subscription.
    await a.send(xml('presence', { to: 'rs2@localhost', type: 'subscribe' }));
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
    await b.send(xml('presence', { to: 'rs1@localhost', type: 'subscribed' }));
    await b.send(xml('presence', { to: 'rs1@localhost', type: 'subscribe' }));
    await a.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
    await a.send(xml('presence', { to: 'rs2@localhost', type: 'subscribed' }));
    await b.expect((s) => isPushFor('rs1@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'both');
    await a.expect((s) => isPushFor('rs2@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'both');
    b.inbox.drain();

    expectResult(await rosterSet(a, { jid: 'rs2@localhost', subscription: 'remove' }));
    await a.expect((s) => isPushFor('rs2@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'remove');
    // The contact sees a go offline, then both subscriptions end.
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === a.jid);
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'unsubscribe' && s.attrs.from === 'rs1@localhost');
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'unsubscribed' && s.attrs.from === 'rs1@localhost');
    const bRoster = items(rosterQuery(await rosterGet(b)));
    const entry = bRoster.find((i) => i.jid === 'rs1@localhost');
    assert.ok(entry, 'the contact keeps the item');
    assert.equal(entry.subscription, 'none');
    assert.equal(entry.ask, undefined);
    // No more presence from b to a.
    await b.send(xml('presence', {}, xml('show', {}, 'dnd')));
    await b.expect((s) => s.name === 'presence' && s.getChildText('show') === 'dnd'); // own echo
    await a.expectNothing((s) => s.name === 'presence' && s.getChildText('show') === 'dnd', 400);
  });

  it('removing a contact with an outbound request pending cancels the request', async function () {
    const a = await connect('ask1', 'a', { roster: true });
    const b = await connect('ask2', 'b', { roster: true, presence: true });
    await a.send(xml('presence', { to: 'ask2@localhost', type: 'subscribe' }));
    await a.expect((s) => isPushFor('ask2@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.ask === 'subscribe');
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
    expectResult(await rosterSet(a, { jid: 'ask2@localhost', subscription: 'remove' }));
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'unsubscribe' && s.attrs.from === 'ask1@localhost');
    await b.stop();
    // The request is no longer pending: a new session of b is not asked again.
    const b2 = await connect('ask2', 'b2', { presence: true });
    await b2.expectNothing((s) => s.name === 'presence' && s.attrs.type === 'subscribe', 500);
  });

  it('unsubscribes every contact when the account is deleted', async function () {
    const d = await connect('del1', 'd', { roster: true, presence: true });
    const x = await connect('del2', 'x', { roster: true, presence: true });
    const y = await connect('del3', 'y', { roster: true, presence: true });
    // d ↔ x both; y subscribed to d (y has to, d has from).
    await d.send(xml('presence', { to: 'del2@localhost', type: 'subscribe' }));
    await x.expect((s) => s.attrs.type === 'subscribe');
    await x.send(xml('presence', { to: 'del1@localhost', type: 'subscribed' }));
    await x.send(xml('presence', { to: 'del1@localhost', type: 'subscribe' }));
    await d.expect((s) => s.attrs.type === 'subscribe' && s.attrs.from === 'del2@localhost');
    await d.send(xml('presence', { to: 'del2@localhost', type: 'subscribed' }));
    await y.send(xml('presence', { to: 'del1@localhost', type: 'subscribe' }));
    await d.expect((s) => s.attrs.type === 'subscribe' && s.attrs.from === 'del3@localhost');
    await d.send(xml('presence', { to: 'del3@localhost', type: 'subscribed' }));
    await x.expect((s) => isPushFor('del1@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'both');
    await y.expect((s) => isPushFor('del1@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'to');

    const r = await d.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('remove'))));
    assert.equal(r.attrs.type, 'result');
    await x.expect((s) => isPushFor('del1@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'none');
    await y.expect((s) => isPushFor('del1@localhost')(s) && rosterQuery(s)!.getChild('item')!.attrs.subscription === 'none');
    assert.deepEqual(items(rosterQuery(await rosterGet(x))).map((i) => [i.jid, i.subscription, i.ask]), [['del1@localhost', 'none', undefined]]);
    assert.deepEqual(items(rosterQuery(await rosterGet(y))).map((i) => [i.jid, i.subscription, i.ask]), [['del1@localhost', 'none', undefined]]);
  });
});
