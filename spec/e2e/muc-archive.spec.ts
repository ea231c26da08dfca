// The room archive (XEP-0313 on a MUC room): messages are archived under the stanza-id the room
// stamps (by = the room), queries page through them, access follows the room (members-only:
// members; never outcasts), real JIDs only for those allowed to see them, retracted messages
// (moderated or by their author) become tombstones in place, a temporary room's archive does not
// outlive it (not even across a crash), and a persistent room's history comes back from its
// archive after a restart.
import assert from 'node:assert/strict';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import { adminSet, configure, createInstant, enter, enterForHistory, errorCondition, groupchat, isGroupchat, MUC, NS_DISCO_INFO, NS_USER } from '../helpers/muc-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'muc-archive-pass';
const NS_MAM = 'urn:xmpp:mam:2';

describe('e2e: MUC room archive (XEP-0313)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string) => {
    const c = await login(server, user, PASS);
    clients.push(c);
    return c;
  };
  const stopClients = () => Promise.all(clients.splice(0).map((c) => c.stop()));
  const ok = (r: { attrs: Record<string, string> }) => assert.equal(r.attrs.type, 'result', String(r));

  /** Run a query; resolves to the iq reply and the forwarded messages. */
  const query = async (c: TestClient, room: string, opts: { with?: string; max?: number } = {}): Promise<{ reply: Element; results: Element[] }> => {
    const queryid = `q${Math.random().toString(36).slice(2)}`;
    const q = xml('query', { xmlns: NS_MAM, queryid });
    if (opts.with) {
      q.cnode(xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_MAM)),
        xml('field', { var: 'with' }, xml('value', {}, opts.with))));
    }
    if (opts.max !== undefined) q.cnode(xml('set', { xmlns: 'http://jabber.org/protocol/rsm' }, xml('max', {}, String(opts.max))));
    const reply = await c.iqRaw(xml('iq', { type: 'set', to: room }, q));
    const results = c.inbox.drain().filter((m) => m.name === 'message' && m.getChild('result', NS_MAM)?.attrs.queryid === queryid);
    return { reply, results };
  };
  const forwarded = (m: Element) => m.getChild('result', NS_MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;

  before(async function () {
    server = await startServer({ users: { owner: PASS, alice: PASS, bob: PASS } });
  });
  afterEach(stopClients);
  after(async function () {
    await server?.destroy();
  });

  it('archives groupchat messages under the room’s stanza-id and answers queries on the room', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `logged@${MUC}`;
    await createInstant(owner, room, 'boss');
    const info = await owner.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_DISCO_INFO })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS_MAM));
    await enter(alice, `${room}/alice`);
    const ids: string[] = [];
    for (const body of ['one', 'two', 'three']) {
      await groupchat(alice, room, body);
      const m = await owner.expect(isGroupchat(body));
      ids.push(m.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id);
    }
    // Alice (a participant of a semi-anonymous room) gets the messages without real JIDs.
    const { reply, results } = await query(alice, room);
    ok(reply);
    assert.equal(reply.getChild('fin', NS_MAM)?.attrs.complete, 'true');
    assert.deepEqual(results.map((r) => r.getChild('result', NS_MAM)!.attrs.id), ids);
    assert.deepEqual(results.map((r) => forwarded(r).getChildText('body')), ['one', 'two', 'three']);
    for (const r of results) {
      assert.equal(r.attrs.from, room);
      assert.equal(forwarded(r).attrs.from, `${room}/alice`);
      assert.equal(forwarded(r).getChild('x', NS_USER), undefined);
    }
    // The owner (a moderator) sees who wrote them and may filter by real JID.
    const mod = await query(owner, room, { with: alice.bare, max: 2 });
    ok(mod.reply);
    assert.equal(mod.results.length, 2);
    assert.equal(forwarded(mod.results[0]!).getChild('x', NS_USER)?.getChild('item')?.attrs.jid, alice.jid, String(mod.results[0]));
    const refused = await query(alice, room, { with: owner.bare });
    assert.equal(errorCondition(refused.reply), 'forbidden');
  });

  it('lets only members read a members-only room’s archive and never outcasts', async function () {
    const owner = await connect('owner');
    const bob = await connect('bob');
    const room = `private-log@${MUC}`;
    await createInstant(owner, room, 'boss');
    await groupchat(owner, room, 'secret');
    await owner.expect(isGroupchat('secret'));
    ok(await configure(owner, room, { 'muc#roomconfig_membersonly': '1' }));
    assert.equal(errorCondition((await query(bob, room)).reply), 'forbidden');
    ok(await adminSet(owner, room, { jid: bob.bare, affiliation: 'member' }));
    const { reply, results } = await query(bob, room);
    ok(reply);
    assert.deepEqual(results.map((r) => forwarded(r).getChildText('body')), ['secret']);
    ok(await adminSet(owner, room, { jid: bob.bare, affiliation: 'outcast' }));
    assert.equal(errorCondition((await query(bob, room)).reply), 'forbidden');
  });

  it('leaves a tombstone where a moderated (XEP-0425) or self-retracted (XEP-0424) message was', async function () {
    const NS_RETRACT = 'urn:xmpp:message-retract:1';
    const NS_MODERATE = 'urn:xmpp:message-moderate:1';
    const NS_OID = 'urn:xmpp:occupant-id:0';
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `tombstones@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await configure(owner, room, { 'muc#roomconfig_persistentroom': '1' }));
    const info = await owner.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_DISCO_INFO })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === `${NS_RETRACT}#tombstone`));
    await enter(alice, `${room}/alice`);
    const sid: Record<string, string> = {};
    let aliceOid = '';
    for (const body of ['first', 'regret', 'third', 'oops']) {
      await groupchat(alice, room, body);
      const m = await owner.expect(isGroupchat(body));
      sid[body] = m.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id;
      aliceOid = m.getChild('occupant-id', NS_OID)!.attrs.id;
    }
    // Alice retracts her own message (XEP-0424)…
    await alice.send(xml('message', { to: room, type: 'groupchat', id: 'alice-retraction' },
      xml('retract', { xmlns: NS_RETRACT, id: sid.oops }), xml('fallback', { xmlns: 'urn:xmpp:fallback:0' }),
      xml('body', {}, 'This person attempted to retract a previous message')));
    await owner.expect((el) => el.name === 'message' && el.getChild('retract', NS_RETRACT)?.attrs.id === sid.oops);
    // …and the owner moderates another one (XEP-0425).
    const moderate = () => owner.iqRaw(xml('iq', { type: 'set', to: room },
      xml('moderate', { xmlns: NS_MODERATE, id: sid.regret }, xml('retract', { xmlns: NS_RETRACT }), xml('reason', {}, 'Off topic'))));
    ok(await moderate());
    const ann = await alice.expect((el) => el.name === 'message' && el.getChild('retract', NS_RETRACT)?.attrs.id === sid.regret);
    const ownerOid = ann.getChild('retract', NS_RETRACT)!.getChild('moderated', NS_MODERATE)!.getChild('occupant-id', NS_OID)!.attrs.id;

    const { reply, results } = await query(owner, room);
    ok(reply);
    const byId = new Map(results.map((r) => [r.getChild('result', NS_MAM)!.attrs.id, forwarded(r)]));
    // Every message keeps its place: the tombstones are where the messages were.
    assert.deepEqual(results.map((r) => r.getChild('result', NS_MAM)!.attrs.id).slice(0, 4), [sid.first, sid.regret, sid.third, sid.oops]);
    assert.equal(byId.get(sid.first)!.getChildText('body'), 'first');
    for (const r of results) {
      assert.ok(!String(r).includes('regret') && !String(r).includes('oops'), `retracted content in ${String(r)}`);
    }
    const moderated = byId.get(sid.regret)!;
    assert.equal(moderated.attrs.from, `${room}/alice`);
    assert.equal(moderated.getChild('body'), undefined);
    assert.equal(moderated.getChild('occupant-id', NS_OID)?.attrs.id, aliceOid);
    const t1 = moderated.getChild('retracted', NS_RETRACT)!;
    assert.ok(t1, String(moderated));
    assert.equal(t1.attrs.id, ann.attrs.id);
    assert.ok(!Number.isNaN(Date.parse(t1.attrs.stamp)), t1.attrs.stamp);
    const by = t1.getChild('moderated', NS_MODERATE)!;
    assert.equal(by.attrs.by, `${room}/boss`);
    assert.equal(by.getChild('occupant-id', NS_OID)?.attrs.id, ownerOid);
    assert.equal(t1.getChildText('reason'), 'Off topic');
    const own = byId.get(sid.oops)!;
    assert.equal(own.getChild('body'), undefined);
    const t2 = own.getChild('retracted', NS_RETRACT)!;
    assert.ok(t2, String(own));
    assert.equal(t2.attrs.id, 'alice-retraction');
    assert.equal(t2.getChild('moderated', NS_MODERATE), undefined);
    // The retraction and the announcement are archived too, after the messages.
    assert.equal(results.length, 6);
    // A second request for the same message: nothing left to retract.
    assert.equal(errorCondition(await moderate()), 'item-not-found');

    // Neither the history nor, after a restart, the history read back from the archive replays them.
    const histories: string[][] = [];
    for (const restart of [false, true]) {
      if (restart) {
        await stopClients();
        await server.restart();
      }
      const bob = await connect('bob');
      histories.push(await enterForHistory(bob, `${room}/bob`));
      await bob.send(xml('presence', { to: `${room}/bob`, type: 'unavailable' }));
    }
    assert.deepEqual(histories, [['first', 'third'], ['first', 'third']]);
  });

  it('forgets a temporary room’s archive across a restart; a new room of that name starts empty', async function () {
    const owner = await connect('owner');
    const temp = `fleeting@${MUC}`;
    const kept = `lasting@${MUC}`;
    await createInstant(owner, temp, 'boss');
    await groupchat(owner, temp, 'temporary secret');
    await owner.expect(isGroupchat('temporary secret'));
    await createInstant(owner, kept, 'boss');
    ok(await configure(owner, kept, { 'muc#roomconfig_persistentroom': '1' }));
    await groupchat(owner, kept, 'kept message');
    await owner.expect(isGroupchat('kept message'));
    // The server crashes while the temporary room still has its occupant (a clean stop lets the
    // occupants leave first, which drops the archive with the room).
    server.proc!.kill('SIGKILL');
    await server.restart();
    await stopClients();
    await server.waitForOutput(/deleted the archives of 1 temporary room/);
    // Someone else creates a room of the same name: neither its archive nor its history shows
    // anything of the earlier room.
    const bob = await connect('bob');
    const bodies: string[] = [];
    bob.inbox.drain();
    await createInstant(bob, temp, 'bobby');
    for (const el of bob.inbox.drain()) if (el.name === 'message' && el.getChild('body')) bodies.push(el.getChildText('body')!);
    assert.deepEqual(bodies, []);
    const fresh = await query(bob, temp);
    ok(fresh.reply);
    assert.deepEqual(fresh.results.map((r) => forwarded(r).getChildText('body')), []);
    assert.equal(fresh.reply.getChild('fin', NS_MAM)?.getChild('set', 'http://jabber.org/protocol/rsm')?.getChildText('count') ?? '0', '0');
    // The persistent room keeps its archive.
    const alice = await connect('alice');
    await enter(alice, `${kept}/alice`);
    const old = await query(alice, kept);
    ok(old.reply);
    assert.deepEqual(old.results.map((r) => forwarded(r).getChildText('body')), ['kept message']);
  });

  it('gives a persistent room its history back from the archive after a restart', async function () {
    const owner = await connect('owner');
    const room = `remembers@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await configure(owner, room, { 'muc#roomconfig_persistentroom': '1' }));
    await groupchat(owner, room, 'before the restart');
    const sent = await owner.expect(isGroupchat('before the restart'));
    await stopClients();
    await server.restart();
    const alice = await connect('alice');
    const history = alice.expect((el) => el.name === 'message' && el.getChildText('body') === 'before the restart');
    await enter(alice, `${room}/alice`);
    const h = await history;
    assert.equal(h.attrs.from, `${room}/boss`);
    assert.equal(h.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id, sent.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id);
    assert.ok(h.getChild('delay', 'urn:xmpp:delay'));
  });
});
