// Rooms over real sockets (XEP-0045 §7, §8.1, §10.1): creating an instant and a reserved room,
// entering with the order of §7.1, history on entry (maxstanzas, maxchars, seconds, since), nick
// conflicts, nick changes (303), subject, private messages, leaving, and the room's disco#info
// with the muc#roominfo form.
import assert from 'node:assert/strict';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import {
  configure, createInstant, enter, errorCondition, groupchat, isGroupchat, item, join, MUC, NS_DATA, NS_DISCO_INFO, NS_MUC, NS_OWNER, NS_USER,
  presenceFrom, ROOMCONFIG, statuses,
} from '../helpers/muc-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'muc-rooms-pass';
const USERS = ['owner', 'alice', 'bob', 'carol'];

describe('e2e: MUC rooms (XEP-0045 §7, §10.1)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string) => {
    const c = await login(server, user, PASS);
    clients.push(c);
    return c;
  };

  before(async function () {
    server = await startServer({ users: Object.fromEntries(USERS.map((u) => [u, PASS])) });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('creates a reserved room with the muc#roomconfig form and unlocks it on submit', async function () {
    const owner = await connect('owner');
    const room = `reserved@${MUC}`;
    const p = await enter(owner, `${room}/boss`);
    assert.deepEqual(statuses(p), [110, 201]);
    assert.equal(item(p).affiliation, 'owner');
    assert.equal(item(p).role, 'moderator');
    const form = (await owner.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_OWNER })))).getChild('query', NS_OWNER)!.getChild('x', NS_DATA)!;
    assert.equal(form.attrs.type, 'form');
    const vars = form.getChildren('field').map((f) => f.attrs.var);
    for (const v of ['FORM_TYPE', 'muc#roomconfig_roomname', 'muc#roomconfig_persistentroom', 'muc#roomconfig_membersonly', 'muc#roomconfig_whois']) assert.ok(vars.includes(v), v);
    assert.equal(form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE')!.getChildText('value'), ROOMCONFIG);

    const alice = await connect('alice');
    const locked = await join(alice, `${room}/alice`);
    assert.equal(errorCondition(locked), 'item-not-found');

    assert.equal((await configure(owner, room, { 'muc#roomconfig_roomname': 'The Reserve', 'muc#roomconfig_roomdesc': 'Reserved room' })).attrs.type, 'result');
    await enter(alice, `${room}/alice`);
    const info = (await alice.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_DISCO_INFO })))).getChild('query')!;
    assert.equal(info.getChild('identity')!.attrs.name, 'The Reserve');
    assert.ok(info.getChildren('feature').some((f) => f.attrs.var === NS_MUC));
    const roominfo = info.getChild('x', NS_DATA)!;
    const field = (v: string) => roominfo.getChildren('field').find((f) => f.attrs.var === v)?.getChildText('value');
    assert.equal(field('FORM_TYPE'), 'http://jabber.org/protocol/muc#roominfo');
    assert.equal(field('muc#roominfo_description'), 'Reserved room');
    assert.equal(field('muc#roominfo_occupants'), '2');
  });

  it('sends the others’ presence, the self-presence, history and subject on entry, in that order', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `order@${MUC}`;
    await createInstant(owner, room, 'boss');
    await owner.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Today')));
    await owner.expect((el) => el.name === 'message' && el.getChildText('subject') === 'Today');
    await groupchat(owner, room, 'first');
    await owner.expect(isGroupchat('first'));

    const seen: Element[] = [];
    const done = alice.expect((el) => {
      seen.push(el);
      return el.name === 'message' && el.getChild('subject') !== undefined;
    });
    await alice.send(xml('presence', { to: `${room}/alice` }, xml('x', { xmlns: NS_MUC })));
    await done;
    const kinds = seen.filter((el) => el.attrs.from?.startsWith(room)).map((el) =>
      el.name === 'presence' ? `presence:${el.attrs.from.split('/')[1]}` : el.getChild('subject') ? 'subject' : `message:${el.getChildText('body')}`);
    assert.deepEqual(kinds, ['presence:boss', 'presence:alice', 'message:first', 'subject']);
    const history = seen.find((el) => el.getChildText('body') === 'first')!;
    assert.equal(history.attrs.from, `${room}/boss`);
    assert.equal(history.getChild('delay', 'urn:xmpp:delay')?.attrs.from, room);
    assert.equal(history.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by, room);
    // The owner saw alice enter, without her real JID (semi-anonymous: only moderators see it).
    const joined = await owner.expect(presenceFrom(`${room}/alice`));
    assert.equal(item(joined).jid, alice.jid);
    assert.equal(item(joined).role, 'participant');
  });

  it('limits history by maxstanzas, maxchars, seconds and since', async function () {
    const owner = await connect('owner');
    const room = `history@${MUC}`;
    await createInstant(owner, room, 'boss');
    for (const body of ['h1', 'h2', 'h3', 'h4']) {
      await groupchat(owner, room, body);
      await owner.expect(isGroupchat(body));
    }
    const bodies = async (user: string, history: Record<string, string>): Promise<string[]> => {
      const c = await connect(user);
      const got: string[] = [];
      const subject = c.expect((el) => {
        if (el.name === 'message' && el.getChild('body') && el.getChild('delay', 'urn:xmpp:delay')) got.push(el.getChildText('body')!);
        return el.name === 'message' && el.getChild('subject') !== undefined;
      });
      await enter(c, `${room}/${user}`, { history });
      await subject;
      await c.send(xml('presence', { to: `${room}/${user}`, type: 'unavailable' }));
      await c.expect(presenceFrom(`${room}/${user}`, 'unavailable'));
      return got;
    };
    assert.deepEqual(await bodies('alice', { maxstanzas: '2' }), ['h3', 'h4']);
    assert.deepEqual(await bodies('alice', { maxstanzas: '0' }), []);
    assert.deepEqual(await bodies('bob', { maxchars: '0' }), []);
    assert.deepEqual(await bodies('bob', {}), ['h1', 'h2', 'h3', 'h4']);
    assert.deepEqual(await bodies('carol', { seconds: '3600' }), ['h1', 'h2', 'h3', 'h4']);
    assert.deepEqual(await bodies('carol', { since: new Date(Date.now() + 60_000).toISOString() }), []);
    // One message is more than 20 characters as sent: a small maxchars gets no whole stanza.
    assert.deepEqual(await bodies('carol', { maxchars: '20' }), []);
  });

  it('refuses a nick in use with conflict, changes nicks with 303, and leaves with unavailable', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `nicks@${MUC}`;
    await createInstant(owner, room, 'boss');
    const refused = await join(alice, `${room}/Boss`);
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'conflict');
    await enter(alice, `${room}/alice`);
    await owner.expect(presenceFrom(`${room}/alice`));

    await alice.send(xml('presence', { to: `${room}/boss` }));
    const clash = await alice.expect((el) => el.name === 'presence' && el.attrs.type === 'error');
    assert.equal(errorCondition(clash), 'conflict');

    await alice.send(xml('presence', { to: `${room}/ally` }));
    const gone = await owner.expect(presenceFrom(`${room}/alice`, 'unavailable'));
    assert.deepEqual(statuses(gone), [303]);
    assert.equal(item(gone).nick, 'ally');
    const selfGone = await alice.expect(presenceFrom(`${room}/alice`, 'unavailable'));
    assert.deepEqual(statuses(selfGone), [110, 303]);
    await alice.expect((el) => presenceFrom(`${room}/ally`)(el) && statuses(el).includes(110));
    await owner.expect(presenceFrom(`${room}/ally`));

    await alice.send(xml('presence', { to: `${room}/ally`, type: 'unavailable' }, xml('status', {}, 'bye')));
    const left = await owner.expect(presenceFrom(`${room}/ally`, 'unavailable'));
    assert.equal(left.getChildText('status'), 'bye');
    assert.equal(item(left).role, 'none');
    const selfLeft = await alice.expect(presenceFrom(`${room}/ally`, 'unavailable'));
    assert.deepEqual(statuses(selfLeft), [110]);
  });

  it('lets moderators set the subject, refuses participants unless allowed, and passes private messages', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const bob = await connect('bob');
    const room = `subject@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(alice, `${room}/alice`);
    await enter(bob, `${room}/bob`);

    await alice.send(xml('message', { to: room, type: 'groupchat', id: 's1' }, xml('subject', {}, 'Mine')));
    const refused = await alice.expect((el) => el.name === 'message' && el.attrs.id === 's1' && el.attrs.type === 'error');
    assert.equal(errorCondition(refused), 'forbidden');
    assert.equal((await configure(owner, room, { 'muc#roomconfig_changesubject': '1' })).attrs.type, 'result');
    const changed = await alice.expect((el) => el.name === 'message' && statuses(el).includes(104));
    assert.equal(changed.attrs.from, room);
    await alice.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Mine now')));
    const subj = await bob.expect((el) => el.name === 'message' && el.getChildText('subject') === 'Mine now');
    assert.equal(subj.attrs.from, `${room}/alice`);

    await alice.send(xml('message', { to: `${room}/bob`, type: 'chat', id: 'pm1' }, xml('body', {}, 'psst')));
    const pm = await bob.expect((el) => el.name === 'message' && el.attrs.id === 'pm1');
    assert.equal(pm.attrs.from, `${room}/alice`);
    assert.equal(pm.attrs.type, 'chat');
    assert.ok(pm.getChild('x', NS_USER));
    await alice.send(xml('message', { to: `${room}/nobody`, type: 'chat', id: 'pm2' }, xml('body', {}, 'hello?')));
    const missing = await alice.expect((el) => el.name === 'message' && el.attrs.id === 'pm2');
    assert.equal(errorCondition(missing), 'item-not-found');
    assert.equal((await configure(owner, room, { 'muc#roomconfig_allowpm': 'none' })).attrs.type, 'result');
    await alice.send(xml('message', { to: `${room}/bob`, type: 'chat', id: 'pm3' }, xml('body', {}, 'again')));
    const forbidden = await alice.expect((el) => el.name === 'message' && el.attrs.id === 'pm3');
    assert.equal(errorCondition(forbidden), 'forbidden');
  });

  it('broadcasts presence only for the roles of muc#roomconfig_presencebroadcast', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `broadcast@${MUC}`;
    await createInstant(owner, room, 'boss');
    assert.equal((await configure(owner, room, { 'muc#roomconfig_presencebroadcast': ['moderator'] })).attrs.type, 'result');
    await enter(alice, `${room}/alice`);
    await alice.send(xml('presence', { to: `${room}/alice` }, xml('show', {}, 'away')));
    await alice.expect((el) => presenceFrom(`${room}/alice`)(el) && el.getChildText('show') === 'away');
    // The moderator's presence reaches alice; alice (a participant) is never shown to the owner.
    await owner.expectNothing(presenceFrom(`${room}/alice`), 300);
  });

  it('refuses entry without the password of a protected room (not-authorized) and admits with it', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `locked-door@${MUC}`;
    await createInstant(owner, room, 'boss');
    assert.equal((await configure(owner, room, { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'sesame' })).attrs.type, 'result');
    const refused = await join(alice, `${room}/alice`);
    assert.equal(errorCondition(refused), 'not-authorized');
    const wrong = await join(alice, `${room}/alice`, { password: 'nope' });
    assert.equal(errorCondition(wrong), 'not-authorized');
    await enter(alice, `${room}/alice`, { password: 'sesame' });
  });

  it('takes an occupant out of the room when its session ends (the user\'s server sends unavailable)', async function () {
    const owner = await connect('owner');
    const alice = await connect('alice');
    const room = `vanish@${MUC}`;
    await createInstant(owner, room, 'boss');
    await enter(alice, `${room}/alice`);
    await owner.expect(presenceFrom(`${room}/alice`));
    await alice.stop();
    const gone = await owner.expect(presenceFrom(`${room}/alice`, 'unavailable'));
    assert.equal(item(gone).role, 'none');
  });
});
