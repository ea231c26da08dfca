// Service administration (XEP-0133) over real sockets: an admin lists the commands and adds a
// user with admin#add-user, the user logs in; a non-admin sees no admin command and is refused
// one; disabling an account ends its session and refuses its logins (account-disabled) until
// re-enabled; the message of the day reaches users at login; counts and announcements.
import assert from 'node:assert/strict';
import { login, xml, stanzaErrorCondition, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const CMD = 'http://jabber.org/protocol/commands';
const DATA = 'jabber:x:data';
const ITEMS = 'http://jabber.org/protocol/disco#items';
const ADMIN = 'http://jabber.org/protocol/admin#';

function submit(fields: Record<string, string | string[]>): Element {
  return xml('x', { xmlns: DATA, type: 'submit' }, ...Object.entries(fields).map(([v, value]) =>
    xml('field', { var: v }, ...(Array.isArray(value) ? value : [value]).map((one) => xml('value', {}, one)))));
}

/** Run a one-stage command: execute, then complete with `fields` (or, for a command without form, just execute). */
async function run(client: TestClient, node: string, fields?: Record<string, string | string[]>): Promise<Element> {
  const first = await client.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, node, action: 'execute' })));
  if (!fields || first.attrs.type === 'error') return first;
  const sessionid = first.getChild('command', CMD)!.attrs.sessionid as string;
  return client.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, node, sessionid, action: 'complete' }, submit(fields))));
}

const field = (reply: Element, name: string) => reply.getChild('command', CMD)?.getChild('x', DATA)?.getChildren('field').find((f) => f.attrs.var === name);

describe('e2e: service administration (XEP-0133)', function () {
  let server: TestServer;
  let admin: TestClient;
  let bob: TestClient;
  const clients: TestClient[] = [];

  before(async function () {
    server = await startServer({
      users: { admin: 'admin-pass', bob: 'bob-pass' },
      config: { admins: ['admin@localhost'], modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'adhoc', 'admin_adhoc'] },
    });
    admin = await login(server, 'admin', 'admin-pass');
    bob = await login(server, 'bob', 'bob-pass');
    clients.push(admin, bob);
  });
  after(async function () {
    for (const c of clients) await c.stop();
    await server.destroy();
  });

  const listCommands = async (c: TestClient) =>
    (await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: ITEMS, node: CMD })))).getChild('query', ITEMS)!.getChildren('item').map((i) => i.attrs.node as string);

  it('lists the admin commands to an admin, and adds a user who can then log in', async function () {
    const nodes = await listCommands(admin);
    assert.ok(nodes.includes(`${ADMIN}add-user`) && nodes.includes(`${ADMIN}announce`) && nodes.includes('cadence:admin#reload-modules'), nodes.join(' '));
    const first = await admin.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, node: `${ADMIN}add-user`, action: 'execute' })));
    const form = first.getChild('command', CMD)!.getChild('x', DATA)!;
    assert.equal(form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value'), 'http://jabber.org/protocol/admin');
    const sessionid = first.getChild('command', CMD)!.attrs.sessionid as string;
    const mismatch = await admin.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, node: `${ADMIN}add-user`, sessionid, action: 'complete' },
      submit({ accountjid: 'carol@localhost', password: 'carol-pass', 'password-verify': 'other' }))));
    assert.ok(mismatch.getChild('error')?.getChild('bad-payload', CMD));
    const done = await admin.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, node: `${ADMIN}add-user`, sessionid, action: 'complete' },
      submit({ accountjid: 'carol@localhost', password: 'carol-pass', 'password-verify': 'carol-pass' }))));
    assert.equal(done.getChild('command', CMD)?.attrs.status, 'completed');
    const carol = await login(server, 'carol', 'carol-pass');
    clients.push(carol);
    assert.equal(carol.bare, 'carol@localhost');
    assert.equal(stanzaErrorCondition(await run(admin, `${ADMIN}add-user`, { accountjid: 'carol@localhost', password: 'x' })), 'conflict');
  });

  it('shows a non-admin no admin command and refuses to run one with forbidden', async function () {
    const nodes = await listCommands(bob);
    assert.ok(!nodes.some((n) => n.startsWith(ADMIN)), nodes.join(' '));
    assert.equal(stanzaErrorCondition(await run(bob, `${ADMIN}add-user`)), 'forbidden');
    assert.equal(stanzaErrorCondition(await run(bob, `${ADMIN}get-registered-users-num`)), 'forbidden');
  });

  it('counts and lists users', async function () {
    assert.equal(field(await run(admin, `${ADMIN}get-registered-users-num`), 'registeredusersnum')?.getChildText('value'), '3');
    const online = field(await run(admin, `${ADMIN}get-online-users-list`, { max_items: '25' }), 'onlineuserjids')!;
    assert.deepEqual(online.getChildren('value').map((v) => v.text()), ['admin@localhost', 'bob@localhost', 'carol@localhost']);
  });

  it('sends an announcement to online users', async function () {
    const got = bob.expect((s) => s.name === 'message' && s.attrs.type === 'headline');
    await run(admin, `${ADMIN}announce`, { announcement: 'Maintenance at noon' });
    assert.equal((await got).getChildText('body'), 'Maintenance at noon');
  });

  it('disables an account (its session ends, logins get account-disabled) and re-enables it', async function () {
    const dave = await run(admin, `${ADMIN}add-user`, { accountjid: 'dave@localhost', password: 'dave-pass' });
    assert.equal(dave.getChild('command', CMD)?.attrs.status, 'completed');
    const d = await login(server, 'dave', 'dave-pass');
    clients.push(d);
    const closed = new Promise<string | undefined>((resolve) => d.xmpp.on('error', (err: Error & { condition?: string }) => resolve(err.condition)));
    await run(admin, `${ADMIN}disable-user`, { accountjids: ['dave@localhost'] });
    assert.equal(await closed, 'policy-violation');
    await assert.rejects(login(server, 'dave', 'dave-pass'), (err: Error & { condition?: string }) => {
      assert.equal(err.condition, 'account-disabled');
      return true;
    });
    assert.equal(field(await run(admin, `${ADMIN}get-disabled-users-num`), 'disabledusersnum')?.getChildText('value'), '1');
    await run(admin, `${ADMIN}reenable-user`, { accountjids: ['dave@localhost'] });
    clients.push(await login(server, 'dave', 'dave-pass'));
  });

  it('changes a password and deletes a user', async function () {
    await run(admin, `${ADMIN}change-user-password`, { accountjid: 'dave@localhost', password: 'new-pass' });
    clients.push(await login(server, 'dave', 'new-pass'));
    const deleted = await run(admin, `${ADMIN}delete-user`, { accountjids: ['dave@localhost'] });
    assert.equal(deleted.getChild('command', CMD)?.getChildText('note'), 'Deleted dave@localhost');
    await assert.rejects(login(server, 'dave', 'new-pass'));
  });

  it('sends the message of the day to users at login, once', async function () {
    const now = bob.expect((s) => s.name === 'message' && s.getChildText('subject') === 'Message of the Day');
    await run(admin, `${ADMIN}set-motd`, { motd: 'Welcome to Cadence' });
    assert.equal((await now).getChildText('body'), 'Welcome to Cadence', 'online users get it at once');
    await run(admin, `${ADMIN}add-user`, { accountjid: 'erin@localhost', password: 'erin-pass' });
    const c = await login(server, 'erin', 'erin-pass');
    clients.push(c);
    const motd = c.expect((s) => s.name === 'message' && s.getChildText('subject') === 'Message of the Day');
    await c.send(xml('presence'));
    assert.equal((await motd).getChildText('body'), 'Welcome to Cadence');
    const again = await login(server, 'erin', 'erin-pass');
    clients.push(again);
    await again.send(xml('presence'));
    await again.expectNothing((s) => s.name === 'message', 500);
    const edit = await admin.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, node: `${ADMIN}edit-motd`, action: 'execute' })));
    assert.equal(edit.getChild('command', CMD)?.getChild('x', DATA)?.getChildren('field').find((f) => f.attrs.var === 'motd')?.getChildText('value'), 'Welcome to Cadence');
  });

  it('gets a user roster and last login time', async function () {
    const roster = await run(admin, `${ADMIN}get-user-roster`, { accountjids: ['bob@localhost'] });
    assert.ok(roster.getChild('command', CMD)?.getChild('x', DATA)?.getChild('query', 'jabber:iq:roster'));
    const last = field(await run(admin, `${ADMIN}get-user-lastlogin`, { accountjids: ['bob@localhost'] }), 'lastlogin')!;
    assert.match(last.getChildText('value') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});
