// MUC extensions over real sockets: mediated invitations (XEP-0045 §7.8.2) and declines, direct
// invitations (XEP-0249), self-ping (XEP-0410), occupant ids (XEP-0421) and moderated message
// retraction (XEP-0425).
import assert from 'node:assert/strict';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { adminList, adminSet, configure, createInstant, enter, enterForHistory, errorCondition, groupchat, isGroupchat, MUC, NS_USER } from '../helpers/muc-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'muc-ext-pass';
const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';

describe('e2e: MUC invitations, self-ping, occupant ids, moderation', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  // Invitations go to the bare JID: the invitee is available.
  const connect = async (user: string) => {
    const c = await login(server, user, PASS, { presence: true });
    clients.push(c);
    return c;
  };
  const ok = (r: { attrs: Record<string, string> }) => assert.equal(r.attrs.type, 'result', String(r));

  before(async function () {
    server = await startServer({ users: { owner: PASS, alice: PASS, bob: PASS } });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('mediates invitations (§7.8.2) into a members-only room, adding the invitee as member, and passes declines back', async function () {
    const owner = await connect('owner');
    const bob = await connect('bob');
    const room = `invite@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await configure(owner, room, { 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'pw' }));
    await owner.send(xml('message', { to: room }, xml('x', { xmlns: NS_USER }, xml('invite', { to: bob.bare }, xml('reason', {}, 'Join us')))));
    const inv = await bob.expect((el) => el.name === 'message' && el.attrs.from === room && el.getChild('x', NS_USER)?.getChild('invite') !== undefined);
    const x = inv.getChild('x', NS_USER)!;
    assert.equal(x.getChild('invite')!.attrs.from, owner.bare);
    assert.equal(x.getChild('invite')!.getChildText('reason'), 'Join us');
    assert.equal(x.getChildText('password'), 'pw');
    assert.deepEqual((await adminList(owner, room, { affiliation: 'member' })).map((e) => e.jid), [bob.bare]);

    await bob.send(xml('message', { to: room }, xml('x', { xmlns: NS_USER }, xml('decline', { to: owner.bare }, xml('reason', {}, 'Busy')))));
    const decline = await owner.expect((el) => el.name === 'message' && el.getChild('x', NS_USER)?.getChild('decline') !== undefined);
    assert.equal(decline.attrs.from, room);
    assert.equal(decline.getChild('x', NS_USER)!.getChild('decline')!.attrs.from, bob.bare);
    assert.equal(decline.getChild('x', NS_USER)!.getChild('decline')!.getChildText('reason'), 'Busy');
    await enter(bob, `${room}/bob`, { password: 'pw' });
  });

  it('lets members of a members-only room invite only with muc#roomconfig_allowinvites (forbidden otherwise)', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const bob = await connect('bob');
    const room = `noinvite@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await adminSet(owner, room, { jid: alice.bare, affiliation: 'member' }));
    ok(await configure(owner, room, { 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_allowinvites': '0' }));
    await enter(alice, `${room}/alice`);
    await alice.send(xml('message', { to: room, id: 'i1' }, xml('x', { xmlns: NS_USER }, xml('invite', { to: bob.bare }))));
    const err = await alice.expect((el) => el.name === 'message' && el.attrs.id === 'i1');
    assert.equal(errorCondition(err), 'forbidden');
    ok(await configure(owner, room, { 'muc#roomconfig_allowinvites': '1' }));
    await alice.send(xml('message', { to: room, id: 'i2' }, xml('x', { xmlns: NS_USER }, xml('invite', { to: bob.bare }))));
    await bob.expect((el) => el.name === 'message' && el.getChild('x', NS_USER)?.getChild('invite')?.attrs.from === alice.bare);
  });

  it('carries direct invitations (XEP-0249) from client to client', async function () {
    const owner = await connect('owner');
    const bob = await connect('bob');
    const room = `direct@${MUC}`;
    await createInstant(owner, room, 'boss');
    await owner.send(xml('message', { to: bob.jid, id: 'd1' }, xml('x', { xmlns: 'jabber:x:conference', jid: room, reason: 'Come over' })));
    const inv = await bob.expect((el) => el.name === 'message' && el.attrs.id === 'd1');
    assert.equal(inv.getChild('x', 'jabber:x:conference')!.attrs.jid, room);
    await enter(bob, `${room}/bob`);
  });

  it('answers self-pings (XEP-0410): result while joined, not-acceptable after leaving', async function () {
    const alice = await connect('alice');
    const room = `ping@${MUC}`;
    await createInstant(alice, room, 'alice');
    const info = await alice.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'http://jabber.org/protocol/muc#self-ping-optimization'));
    const ping = () => alice.iqRaw(xml('iq', { type: 'get', to: `${room}/alice` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    ok(await ping());
    const bob = await connect('bob');
    await enter(bob, `${room}/bob`);
    await alice.send(xml('presence', { to: `${room}/alice`, type: 'unavailable' }));
    await alice.expect((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === `${room}/alice`);
    const r = await ping();
    assert.equal(r.attrs.type, 'error');
    assert.equal(errorCondition(r), 'not-acceptable');
  });

  it('stamps occupant ids (XEP-0421) stable per user and room, and replaces forged ones', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `ids@${MUC}`;
    await createInstant(owner, room, 'boss');
    const p1 = await enter(alice, `${room}/alice`);
    const id = p1.getChild('occupant-id', NS_OCCUPANT_ID)!.attrs.id;
    assert.match(id, /^[0-9a-f]{64}$/);
    await alice.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'who am i'), xml('occupant-id', { xmlns: NS_OCCUPANT_ID, id: 'forged' })));
    const m = await owner.expect(isGroupchat('who am i'));
    const ids = m.getChildren('occupant-id', NS_OCCUPANT_ID).map((e) => e.attrs.id);
    assert.deepEqual(ids, [id]);
    // Another nick, same user: the same id.
    await alice.send(xml('presence', { to: `${room}/alice2` }));
    const p2 = await owner.expect((el) => el.name === 'presence' && el.attrs.from === `${room}/alice2`);
    assert.equal(p2.getChild('occupant-id', NS_OCCUPANT_ID)!.attrs.id, id);
    // Another room: another id.
    const other = await createInstant(alice, `ids2@${MUC}`, 'alice');
    assert.notEqual(other.getChild('occupant-id', NS_OCCUPANT_ID)!.attrs.id, id);
  });

  it('retracts a message on a moderator’s request (XEP-0425) and refuses non-moderators (forbidden)', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `moderate@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(alice, `${room}/alice`);
    await groupchat(alice, room, 'oops');
    const m = await owner.expect(isGroupchat('oops'));
    const sid = m.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id;
    const moderate = (c: TestClient) => c.iqRaw(xml('iq', { type: 'set', to: room },
      xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: sid }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' }), xml('reason', {}, 'Off topic'))));
    const denied = await moderate(alice);
    assert.equal(errorCondition(denied), 'forbidden');
    ok(await moderate(owner));
    const ann = await alice.expect((el) => el.name === 'message' && el.getChild('retract', 'urn:xmpp:message-retract:1') !== undefined);
    assert.equal(ann.attrs.from, room);
    const retract = ann.getChild('retract', 'urn:xmpp:message-retract:1')!;
    assert.equal(retract.attrs.id, sid);
    assert.equal(retract.getChild('moderated', 'urn:xmpp:message-moderate:1')!.attrs.by, `${room}/boss`);
    assert.equal(retract.getChildText('reason'), 'Off topic');
    // Gone from the history: a newcomer does not get it.
    const bob = await connect('bob');
    assert.deepEqual(await enterForHistory(bob, `${room}/bob`), []);
    // A second request for the same message: item-not-found.
    assert.equal(errorCondition(await moderate(owner)), 'item-not-found');
  });
});
