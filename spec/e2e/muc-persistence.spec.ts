// Persistent rooms survive a restart of the server process: configuration, subject, affiliations
// with reserved nicks and ban reasons, and occupant ids come back from storage; temporary rooms
// and rooms that stopped being persistent do not.
import assert from 'node:assert/strict';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { adminList, adminSet, configure, createInstant, enter, errorCondition, join, MUC, NS_DISCO_INFO, NS_DISCO_ITEMS, statuses } from '../helpers/muc-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'muc-persist-pass';

describe('e2e: MUC persistence across a restart', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string) => {
    const c = await login(server, user, PASS);
    clients.push(c);
    return c;
  };
  const stopClients = () => Promise.all(clients.splice(0).map((c) => c.stop()));
  const ok = (r: { attrs: Record<string, string> }) => assert.equal(r.attrs.type, 'result', String(r));

  before(async function () {
    server = await startServer({ users: { owner: PASS, alice: PASS, bob: PASS } });
  });
  afterEach(stopClients);
  after(async function () {
    await server?.destroy();
  });

  it('keeps persistent rooms with their configuration, subject, affiliations and occupant ids', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `lasting@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await configure(owner, room, {
      'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_roomname': 'Lasting', 'muc#roomconfig_membersonly': '1',
      'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'kept',
    }));
    ok(await adminSet(owner, room, { jid: 'alice@localhost', affiliation: 'member', nick: 'Al' }));
    ok(await adminSet(owner, room, { jid: 'bob@localhost', affiliation: 'outcast' }, 'Rude'));
    await owner.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Kept subject')));
    await owner.expect((el) => el.name === 'message' && el.getChildText('subject') === 'Kept subject');
    const before = await enter(alice, `${room}/Al`, { password: 'kept' });
    const idBefore = before.getChild('occupant-id', 'urn:xmpp:occupant-id:0')!.attrs.id;
    // A temporary room, gone with the restart.
    await createInstant(owner, `fleeting@${MUC}`, 'boss');
    await stopClients();

    await server.restart();
    await server.waitForOutput(/restored 1 room\(s\) on conference\.localhost/);

    const owner2 = await connect('owner');
    const listed = ((await owner2.iq(xml('iq', { type: 'get', to: MUC }, xml('query', { xmlns: NS_DISCO_ITEMS })))).getChild('query')?.getChildren('item') ?? []).map((i) => i.attrs.jid);
    assert.deepEqual(listed, [room]);
    const info = (await owner2.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_DISCO_INFO })))).getChild('query')!;
    assert.equal(info.getChild('identity')!.attrs.name, 'Lasting');
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['muc_persistent', 'muc_membersonly', 'muc_passwordprotected']) assert.ok(features.includes(f), f);
    assert.deepEqual((await adminList(owner2, room, { affiliation: 'member' })).map((e) => [e.jid, e.nick]), [['alice@localhost', 'Al']]);
    const bans = await owner2.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#admin' }, xml('item', { affiliation: 'outcast' }))));
    assert.equal(bans.getChild('query')!.getChild('item')!.getChildText('reason'), 'Rude');

    const alice2 = await connect('alice');
    const subject = alice2.expect((el) => el.name === 'message' && el.getChild('subject') !== undefined);
    const p = await enter(alice2, `${room}/Al`, { password: 'kept' });
    assert.equal(p.getChild('occupant-id', 'urn:xmpp:occupant-id:0')!.attrs.id, idBefore);
    assert.equal((await subject).getChildText('subject'), 'Kept subject');
    const bob = await connect('bob');
    assert.equal(errorCondition(await join(bob, `${room}/bob`, { password: 'kept' })), 'forbidden');

    // The temporary room is gone: entering creates it anew.
    const fresh = await enter(owner2, `fleeting@${MUC}/boss`);
    assert.ok(statuses(fresh).includes(201));
  });

  it('forgets a room that stopped being persistent or was destroyed', async function () {
    const owner = await connect('owner');
    for (const name of ['turned', 'razed']) {
      await createInstant(owner, `${name}@${MUC}`, 'boss');
      ok(await configure(owner, `${name}@${MUC}`, { 'muc#roomconfig_persistentroom': '1' }));
    }
    ok(await configure(owner, `turned@${MUC}`, { 'muc#roomconfig_persistentroom': '0' }));
    ok(await owner.iqRaw(xml('iq', { type: 'set', to: `razed@${MUC}` }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('destroy')))));
    await stopClients();
    await server.restart();
    const owner2 = await connect('owner');
    const listed = ((await owner2.iq(xml('iq', { type: 'get', to: MUC }, xml('query', { xmlns: NS_DISCO_ITEMS })))).getChild('query')?.getChildren('item') ?? []).map((i) => i.attrs.jid);
    assert.ok(!listed.includes(`turned@${MUC}`));
    assert.ok(!listed.includes(`razed@${MUC}`));
    const r = await owner2.iqRaw(xml('iq', { type: 'get', to: `razed@${MUC}` }, xml('query', { xmlns: NS_DISCO_INFO })));
    assert.equal(errorCondition(r), 'item-not-found');
  });
});
