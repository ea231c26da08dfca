// Roles and affiliations over real sockets (XEP-0045 §8, §9, §10): kick (307), ban (301) and the
// ban list, voice in a moderated room, moderator grants, membership with removal from a
// members-only room (321, 322), member registration (§7.10), admin and owner lists, the
// permission matrix of §5 (forbidden / not-allowed / conflict), and destroying a room with an
// alternate venue (§10.9).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login, xml, type TestClient } from '../helpers/client.ts';
import {
  adminList, adminSet, configure, createInstant, enter, errorCondition, groupchat, item, join, MUC, NS_DATA, NS_OWNER, NS_USER, presenceFrom, statuses,
} from '../helpers/muc-client.ts';
import { TestServer, writeConfig } from '../helpers/server.ts';

const PASS = 'muc-admin-pass';
const USERS = ['owner', 'admin', 'alice', 'bob', 'carol'];
const jid = (u: string) => `${u}@localhost`;

describe('e2e: MUC roles and affiliations (XEP-0045 §8–§10)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string) => {
    const c = await login(server, user, PASS);
    clients.push(c);
    return c;
  };
  const ok = (r: { attrs: Record<string, string> }) => assert.equal(r.attrs.type, 'result', String(r));
  const refused = (r: Parameters<typeof errorCondition>[0], condition: string) => {
    assert.equal(r.attrs.type, 'error', String(r));
    assert.equal(errorCondition(r), condition, String(r));
  };

  before(async function () {
    // The accounts one after the other: five account CLIs at once outlast the CLI's time limit
    // on a loaded machine.
    this.timeout(300_000);
    const dir = mkdtempSync(path.join(tmpdir(), 'cadence-test-'));
    server = new TestServer(dir, writeConfig(dir, 'localhost'), 'localhost');
    for (const u of USERS) await server.adduser(u, PASS);
    await server.start();
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('kicks with 307, actor and reason; a participant may not kick (forbidden)', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const bob = await connect('bob');
    const room = `kick@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(alice, `${room}/alice`);
    await enter(bob, `${room}/bob`);

    refused(await adminSet(alice, room, { nick: 'bob', role: 'none' }), 'forbidden');
    ok(await adminSet(owner, room, { nick: 'bob', role: 'none' }, 'Spamming'));
    const kicked = await bob.expect(presenceFrom(`${room}/bob`, 'unavailable'));
    assert.deepEqual(statuses(kicked), [110, 307]);
    const i = kicked.getChild('x', NS_USER)!.getChild('item')!;
    assert.equal(i.getChildText('reason'), 'Spamming');
    assert.equal(i.getChild('actor')?.attrs.nick, 'boss');
    const seen = await alice.expect(presenceFrom(`${room}/bob`, 'unavailable'));
    assert.deepEqual(statuses(seen), [307]);
    assert.equal(item(seen).role, 'none');
    // Kicked is not banned: bob may come back.
    await enter(bob, `${room}/bob`);
  });

  it('bans with 301, keeps the ban in the outcast list with its reason, and refuses the banned user (forbidden)', async function () {
    const owner = await connect('owner');
    const bob = await connect('bob');
    const room = `ban@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(bob, `${room}/bob`);
    ok(await adminSet(owner, room, { jid: jid('bob'), affiliation: 'outcast' }, 'Trolling'));
    const banned = await bob.expect(presenceFrom(`${room}/bob`, 'unavailable'));
    assert.deepEqual(statuses(banned), [110, 301]);
    assert.equal(item(banned).affiliation, 'outcast');
    const list = await adminList(owner, room, { affiliation: 'outcast' });
    assert.deepEqual(list.map((e) => [e.jid, e.affiliation]), [[jid('bob'), 'outcast']]);
    const again = await join(bob, `${room}/bob`);
    assert.equal(errorCondition(again), 'forbidden');
    refused(await adminSet(owner, room, { jid: jid('owner'), affiliation: 'outcast' }), 'conflict');
  });

  it('gives and takes voice in a moderated room and grants moderator', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const bob = await connect('bob');
    const room = `voice@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await configure(owner, room, { 'muc#roomconfig_moderatedroom': '1' }));
    const p = await enter(alice, `${room}/alice`);
    assert.equal(item(p).role, 'visitor');
    await alice.send(xml('message', { to: room, type: 'groupchat', id: 'v1' }, xml('body', {}, 'may I?')));
    const denied = await alice.expect((el) => el.name === 'message' && el.attrs.id === 'v1');
    assert.equal(errorCondition(denied), 'forbidden');

    ok(await adminSet(owner, room, { nick: 'alice', role: 'participant' }, 'Go ahead'));
    const voiced = await alice.expect((el) => presenceFrom(`${room}/alice`)(el) && item(el).role === 'participant');
    assert.deepEqual(statuses(voiced), [110]);
    const voiceList = await adminList(owner, room, { role: 'participant' });
    assert.deepEqual(voiceList.map((e) => e.nick), ['alice']);
    await groupchat(alice, room, 'thanks');
    await owner.expect((el) => el.name === 'message' && el.getChildText('body') === 'thanks');

    await enter(bob, `${room}/bob`);
    // A participant may not grant moderator; an owner may, and then the new moderator kicks.
    refused(await adminSet(alice, room, { nick: 'bob', role: 'moderator' }), 'forbidden');
    ok(await adminSet(owner, room, { nick: 'alice', role: 'moderator' }));
    await alice.expect((el) => presenceFrom(`${room}/alice`)(el) && item(el).role === 'moderator');
    ok(await adminSet(alice, room, { nick: 'bob', role: 'participant' }));
    await bob.expect((el) => presenceFrom(`${room}/bob`)(el) && item(el).role === 'participant');
    ok(await adminSet(alice, room, { nick: 'bob', role: 'visitor' }));
    await bob.expect((el) => presenceFrom(`${room}/bob`)(el) && item(el).role === 'visitor');
    // A moderator may not take the voice of an owner (not-allowed, §8.4).
    refused(await adminSet(alice, room, { nick: 'boss', role: 'visitor' }), 'not-allowed');
  });

  it('members-only: members enter, others get registration-required; removal from the list ejects (321), switching ejects non-members (322)', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const bob = await connect('bob');
    const carol = await connect('carol');
    const room = `members@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(carol, `${room}/carol`);
    ok(await adminSet(owner, room, { jid: jid('alice'), affiliation: 'member', nick: 'Al' }));
    ok(await configure(owner, room, { 'muc#roomconfig_membersonly': '1' }));
    const ejected = await carol.expect(presenceFrom(`${room}/carol`, 'unavailable'));
    assert.deepEqual(statuses(ejected), [110, 322]);

    const no = await join(bob, `${room}/bob`);
    assert.equal(errorCondition(no), 'registration-required');
    const p = await enter(alice, `${room}/Al`);
    assert.equal(item(p).affiliation, 'member');
    const members = await adminList(owner, room, { affiliation: 'member' });
    assert.deepEqual(members.map((e) => [e.jid, e.nick]), [[jid('alice'), 'Al']]);

    ok(await adminSet(owner, room, { jid: jid('alice'), affiliation: 'none' }));
    const out = await alice.expect(presenceFrom(`${room}/Al`, 'unavailable'));
    assert.deepEqual(statuses(out), [110, 321]);
  });

  it('admins and owners: grants, lists, who may change whom (§5.2, §10.3–10.8)', async function () {
    const owner = await connect('owner');
    const admin = await connect('admin');
    const alice = await connect('alice');
    const room = `affs@${MUC}`;
    await createInstant(owner, room, 'boss');
    ok(await adminSet(owner, room, { jid: jid('admin'), affiliation: 'admin' }));
    const admins = await adminList(owner, room, { affiliation: 'admin' });
    assert.deepEqual(admins.map((e) => e.jid), [jid('admin')]);
    // An admin manages members, but not owners or other admins, and grants no admin.
    ok(await adminSet(admin, room, { jid: jid('alice'), affiliation: 'member' }));
    refused(await adminSet(admin, room, { jid: jid('owner'), affiliation: 'member' }), 'not-allowed');
    refused(await adminSet(admin, room, { jid: jid('alice'), affiliation: 'admin' }), 'forbidden');
    refused(await adminSet(alice, room, { jid: jid('bob'), affiliation: 'member' }), 'forbidden');
    // The last owner cannot leave the room without one (conflict).
    refused(await adminSet(owner, room, { jid: jid('owner'), affiliation: 'admin' }), 'conflict');
    ok(await adminSet(owner, room, { jid: jid('admin'), affiliation: 'owner' }));
    const owners = await adminList(owner, room, { affiliation: 'owner' });
    assert.deepEqual(owners.map((e) => e.jid).sort(), [jid('admin'), jid('owner')]);
    // An occupant's affiliation change is announced in presence.
    await enter(alice, `${room}/alice`);
    ok(await adminSet(owner, room, { jid: jid('alice'), affiliation: 'admin' }));
    const up = await alice.expect((el) => presenceFrom(`${room}/alice`)(el) && item(el).affiliation === 'admin');
    assert.equal(item(up).role, 'moderator');
  });

  it('registers members with a reserved nick (jabber:iq:register, §7.10)', async function () {
    const owner = await connect('owner');
    const bob = await connect('bob');
    const room = `register@${MUC}`;
    await createInstant(owner, room, 'boss');
    const form = await bob.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'jabber:iq:register' })));
    assert.ok(form.getChild('query')!.getChild('x', NS_DATA));
    const submit = xml('x', { xmlns: NS_DATA, type: 'submit' },
      xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#register')),
      xml('field', { var: 'muc#register_roomnick' }, xml('value', {}, 'Bobby')));
    await bob.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: 'jabber:iq:register' }, submit)));
    const members = await adminList(owner, room, { affiliation: 'member' });
    assert.deepEqual(members.map((e) => [e.jid, e.nick]), [[jid('bob'), 'Bobby']]);
    // The reserved nick is bob's: another user gets conflict.
    const carol = await connect('carol');
    const clash = await join(carol, `${room}/Bobby`);
    assert.equal(errorCondition(clash), 'conflict');
    const nick = await bob.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'x-roomuser-item' })));
    assert.equal(nick.getChild('query')!.getChild('identity')?.attrs.name, 'Bobby');
  });

  it('destroys a room with an alternate venue and reason; only owners may (forbidden)', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `doomed@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(alice, `${room}/alice`);
    const destroy = (c: TestClient) => c.iqRaw(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS_OWNER },
      xml('destroy', { jid: `haven@${MUC}` }, xml('reason', {}, 'Moving'), xml('password', {}, 'pw')))));
    refused(await destroy(alice), 'forbidden');
    ok(await destroy(owner));
    const gone = await alice.expect(presenceFrom(`${room}/alice`, 'unavailable'));
    const d = gone.getChild('x', NS_USER)!.getChild('destroy')!;
    assert.equal(d.attrs.jid, `haven@${MUC}`);
    assert.equal(d.getChildText('reason'), 'Moving');
    assert.equal(d.getChildText('password'), 'pw');
    assert.equal(item(gone).role, 'none');
    // The room is gone: a join creates a new one.
    const again = await enter(alice, `${room}/alice`);
    assert.ok(statuses(again).includes(201));
  });
});
