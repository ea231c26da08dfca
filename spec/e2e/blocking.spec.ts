// Blocking Command (XEP-0191) end to end: the blocklist (get, block, unblock, unblock-all, pushes
// to the resources that retrieved it, durability), JID matching, what a block does to messages,
// iq and presence in both directions, and the presence sent on block and unblock.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS = 'urn:xmpp:blocking';
const NS_ERRORS = 'urn:xmpp:blocking:errors';
const NS_ROSTER = 'jabber:iq:roster';
const PASS = 'blocking-pass';
const USERS = ['list', 'list2', 'bad', 'msg', 'pest', 'pres', 'pal', 'all', 'all1', 'all2', 'dom', 'other', 'full', 'off', 'offpest', 'offok'];

const items = (el: Element | undefined) => (el?.getChildren('item') ?? []).map((i) => i.attrs.jid as string);
const isPush = (command: 'block' | 'unblock') => (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild(command, NS) !== undefined;
const isMessage = (id: string) => (el: Element) => el.name === 'message' && el.attrs.id === id;

describe('e2e: blocking command (XEP-0191)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];

  const connect = async (user: string, resource: string, presence = false) => {
    const c = await login(server, user, PASS, { resource, presence });
    clients.push(c);
    return c;
  };
  const blocklist = async (c: TestClient) => items((await c.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: NS })))).getChild('blocklist', NS));
  const block = (c: TestClient, ...jids: string[]) => c.iqRaw(xml('iq', { type: 'set' }, xml('block', { xmlns: NS }, ...jids.map((jid) => xml('item', { jid })))));
  const unblock = (c: TestClient, ...jids: string[]) => c.iqRaw(xml('iq', { type: 'set' }, xml('unblock', { xmlns: NS }, ...jids.map((jid) => xml('item', { jid })))));
  const ok = (r: Element) => assert.equal(r.attrs.type, 'result', r.toString());
  const chat = (from: TestClient, to: string, id: string) => from.send(xml('message', { to, type: 'chat', id }, xml('body', {}, id)));

  /** Mutual presence subscription between two available clients. */
  const befriend = async (a: TestClient, b: TestClient) => {
    await a.send(xml('presence', { to: b.bare, type: 'subscribe' }));
    await b.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === a.bare);
    await b.send(xml('presence', { to: a.bare, type: 'subscribed' }));
    await a.expect((s) => s.name === 'presence' && s.attrs.from === b.jid && s.attrs.type === undefined);
    await b.send(xml('presence', { to: a.bare, type: 'subscribe' }));
    await a.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === b.bare);
    await a.send(xml('presence', { to: b.bare, type: 'subscribed' }));
    await b.expect((s) => s.name === 'presence' && s.attrs.from === a.jid && s.attrs.type === undefined);
    a.inbox.drain();
    b.inbox.drain();
  };

  before(async function () {
    server = await startServer({
      users: Object.fromEntries(USERS.map((u) => [u, PASS])),
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'blocking', 'register'],
        register: { allowRegistration: true },
      },
    });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('advertises urn:xmpp:blocking in disco#info', async function () {
    const c = await connect('list', 'disco');
    const r = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(r.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
  });

  it('keeps the blocklist durably and pushes changes to the resources that retrieved it', async function () {
    const a = await connect('list', 'a');
    const b = await connect('list', 'b');
    const quiet = await connect('list', 'quiet'); // never asks for the blocklist: no pushes
    assert.deepEqual(await blocklist(a), []);
    assert.deepEqual(await blocklist(b), []);

    ok(await block(a, 'Romeo@Montague.lit', 'iago@shakespeare.lit/Evil'));
    for (const c of [a, b]) {
      const push = await c.expect(isPush('block'));
      assert.deepEqual(items(push.getChild('block', NS)), ['romeo@montague.lit', 'iago@shakespeare.lit/Evil']);
      assert.equal(push.attrs.to, c.jid);
    }
    assert.deepEqual((await blocklist(b)).sort(), ['iago@shakespeare.lit/Evil', 'romeo@montague.lit']);

    // Blocking an already blocked JID changes nothing and pushes nothing.
    ok(await block(a, 'romeo@montague.lit'));
    await a.expectNothing(isPush('block'), 300);

    ok(await unblock(a, 'romeo@montague.lit', 'never@blocked.lit'));
    for (const c of [a, b]) assert.deepEqual(items((await c.expect(isPush('unblock'))).getChild('unblock', NS)), ['romeo@montague.lit']);
    await quiet.expectNothing(isPush('block'), 100);
    await quiet.expectNothing(isPush('unblock'), 100);

    // It survives a restart.
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await server.restart();
    const again = await connect('list', 'again');
    assert.deepEqual(await blocklist(again), ['iago@shakespeare.lit/Evil']);
  });

  it('answers bad-request and jid-malformed for invalid commands', async function () {
    const c = await connect('bad', 'r');
    const empty = await c.iqRaw(xml('iq', { type: 'set' }, xml('block', { xmlns: NS })));
    assert.equal(stanzaErrorCondition(empty), 'bad-request');
    const noJid = await c.iqRaw(xml('iq', { type: 'set' }, xml('block', { xmlns: NS }, xml('item'))));
    assert.equal(stanzaErrorCondition(noJid), 'bad-request');
    const malformed = await block(c, 'a@b@c');
    assert.equal(stanzaErrorCondition(malformed), 'jid-malformed');
    const self = await block(c, 'bad@localhost/other');
    assert.equal(stanzaErrorCondition(self), 'not-acceptable');
    assert.deepEqual(await blocklist(c), []);
    // Someone else's blocklist is not reachable.
    const other = await c.iqRaw(xml('iq', { type: 'get', to: 'msg@localhost' }, xml('blocklist', { xmlns: NS })));
    assert.equal(other.attrs.type, 'error');
  });

  it('stops messages and iq both ways: not-acceptable + <blocked/> to the blocker, service-unavailable to the blocked', async function () {
    const user = await connect('msg', 'm', true);
    const pest = await connect('pest', 'p', true);
    ok(await block(user, 'pest@localhost'));

    // Inbound: the user hears nothing, the pest gets service-unavailable.
    await chat(pest, 'msg@localhost', 'in1');
    const e1 = await pest.expect(isMessage('in1'));
    assert.equal(e1.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(e1), 'service-unavailable');
    await chat(pest, user.jid, 'in2');
    assert.equal(stanzaErrorCondition(await pest.expect(isMessage('in2'))), 'service-unavailable');
    const ping = await pest.iqRaw(xml('iq', { type: 'get', to: user.jid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(stanzaErrorCondition(ping), 'service-unavailable');
    const info = await pest.iqRaw(xml('iq', { type: 'get', to: 'msg@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.equal(stanzaErrorCondition(info), 'service-unavailable');
    // An iq result from the pest is dropped silently.
    await pest.send(xml('iq', { type: 'result', to: user.jid, id: 'stray' }));
    await user.expectNothing((s) => s.attrs.id === 'in1' || s.attrs.id === 'in2' || s.attrs.id === 'stray' || s.attrs.from === pest.jid, 400);

    // Outbound: the user gets not-acceptable with the blocked condition; the pest hears nothing.
    await chat(user, 'pest@localhost', 'out1');
    const e2 = await user.expect(isMessage('out1'));
    assert.equal(e2.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(e2), 'not-acceptable');
    assert.ok(e2.getChild('error')!.getChild('blocked', NS_ERRORS), e2.toString());
    const out = await user.iqRaw(xml('iq', { type: 'get', to: pest.jid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(stanzaErrorCondition(out), 'not-acceptable');
    assert.ok(out.getChild('error')!.getChild('blocked', NS_ERRORS));
    // Presence to the pest is dropped without an error.
    await user.send(xml('presence', { to: pest.jid }));
    await pest.expectNothing((s) => s.attrs.id === 'out1' || (s.name === 'presence' && s.attrs.from === user.jid), 400);
    await user.expectNothing((s) => s.name === 'presence' && s.attrs.type === 'error', 100);

    // Unblocked, both directions work again.
    ok(await unblock(user, 'pest@localhost'));
    await chat(pest, 'msg@localhost', 'in3');
    await user.expect(isMessage('in3'));
    await chat(user, 'pest@localhost', 'out2');
    await pest.expect(isMessage('out2'));
  });

  it('makes the user look offline to a blocked contact, and back online on unblock', async function () {
    const user = await connect('pres', 'home', true);
    const pal = await connect('pal', 'desk', true);
    await befriend(user, pal);

    ok(await block(user, 'pal@localhost'));
    // The contact receives unavailable from the user's resource; the user sees the contact go offline.
    await pal.expect((s) => s.name === 'presence' && s.attrs.from === user.jid && s.attrs.type === 'unavailable');
    await user.expect((s) => s.name === 'presence' && s.attrs.from === pal.jid && s.attrs.type === 'unavailable');

    // Presence changes on either side and subscription requests no longer cross.
    await user.send(xml('presence', {}, xml('show', {}, 'away')));
    await pal.send(xml('presence', {}, xml('show', {}, 'dnd')));
    await pal.send(xml('presence', { to: 'pres@localhost', type: 'subscribe' }));
    await pal.send(xml('presence', { to: 'pres@localhost', type: 'probe' }));
    await pal.expectNothing((s) => s.name === 'presence' && s.attrs.from?.toString().startsWith('pres@localhost'), 500);
    await user.expectNothing((s) => s.name === 'presence' && s.attrs.from?.toString().startsWith('pal@localhost'), 100);

    // Unblock: the contact gets the user's current presence, and the user the contact's.
    ok(await unblock(user, 'pal@localhost'));
    const p = await pal.expect((s) => s.name === 'presence' && s.attrs.from === user.jid && s.attrs.type === undefined);
    assert.equal(p.getChildText('show'), 'away');
    const q = await user.expect((s) => s.name === 'presence' && s.attrs.from === pal.jid && s.attrs.type === undefined);
    assert.equal(q.getChildText('show'), 'dnd');
  });

  it('unblocks everyone with an empty <unblock/>', async function () {
    const user = await connect('all', 'r', true);
    const one = await connect('all1', 'r', true);
    const two = await connect('all2', 'r', true);
    assert.deepEqual(await blocklist(user), []);
    ok(await block(user, 'all1@localhost', 'all2@localhost', 'example.net'));
    await user.expect(isPush('block'));
    await chat(one, 'all@localhost', 'b1');
    assert.equal(stanzaErrorCondition(await one.expect(isMessage('b1'))), 'service-unavailable');

    ok(await unblock(user));
    const push = await user.expect(isPush('unblock'));
    assert.deepEqual(items(push.getChild('unblock', NS)), []);
    assert.deepEqual(await blocklist(user), []);
    await chat(one, 'all@localhost', 'u1');
    await chat(two, 'all@localhost', 'u2');
    await user.expect(isMessage('u1'));
    await user.expect(isMessage('u2'));
  });

  it('matches JIDs per XEP-0191: a domain blocks everyone there, a full JID only that resource', async function () {
    const user = await connect('dom', 'r', true);
    const other = await connect('other', 'r', true);
    const full1 = await connect('full', 'one', true);
    const full2 = await connect('full', 'two', true);

    ok(await block(user, full1.jid));
    await chat(full1, user.jid, 'f1');
    assert.equal(stanzaErrorCondition(await full1.expect(isMessage('f1'))), 'service-unavailable');
    await chat(full2, user.jid, 'f2');
    await user.expect(isMessage('f2'));
    // Outbound to the blocked resource is refused; to the other resource it is delivered.
    await chat(user, full1.jid, 'o1');
    assert.ok((await user.expect(isMessage('o1'))).getChild('error')!.getChild('blocked', NS_ERRORS));
    await chat(user, full2.jid, 'o2');
    await full2.expect(isMessage('o2'));

    // The domain item covers every account of the domain (the user's own resources excepted).
    ok(await block(user, 'localhost'));
    await chat(other, 'dom@localhost', 'd1');
    assert.equal(stanzaErrorCondition(await other.expect(isMessage('d1'))), 'service-unavailable');
    await chat(user, 'other@localhost', 'd2');
    assert.ok((await user.expect(isMessage('d2'))).getChild('error')!.getChild('blocked', NS_ERRORS));
    // The server itself still answers.
    const pong = await user.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(pong.attrs.type, 'result');
    const self = await connect('dom', 'r2', true);
    await chat(self, user.jid, 'self1');
    await user.expect(isMessage('self1'));
    ok(await unblock(user));
  });

  it('applies a stored blocklist to stanzas for a user who is offline', async function () {
    const u = await connect('off', 'r', true);
    ok(await block(u, 'offpest@localhost'));
    await u.stop();
    clients.splice(clients.indexOf(u), 1);
    // A fresh process: nothing is cached, the blocklist is loaded on demand.
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await server.restart();

    const pest = await connect('offpest', 'r', true);
    const friend = await connect('offok', 'r', true);
    await pest.send(xml('presence', { to: 'off@localhost', type: 'subscribe' }));
    await friend.send(xml('presence', { to: 'off@localhost', type: 'subscribe' }));
    await chat(pest, 'off@localhost', 'offline1');
    assert.equal(stanzaErrorCondition(await pest.expect(isMessage('offline1'))), 'service-unavailable');
    await new Promise((r) => setTimeout(r, 300));

    // The request from the blocked JID was dropped; the other one waits for the user.
    const back = await connect('off', 'back');
    await back.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
    await back.send(xml('presence'));
    await back.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === 'offok@localhost');
    await back.expectNothing((s) => s.name === 'presence' && s.attrs.from === 'offpest@localhost', 400);
  });
});
