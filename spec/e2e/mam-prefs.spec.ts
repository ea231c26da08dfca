// Archiving preferences (XEP-0441, the mam:2 <prefs/>): default always/never/roster with always
// and never lists decide what is archived; the server's mam.defaultPolicy for accounts without
// preferences; invalid preferences are refused.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { NS_MAM, mamForm, mamQuery } from '../helpers/mam.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'mam-prefs-pass';

describe('e2e: archiving preferences (XEP-0441)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  let seq = 0;

  const connect = async (user: string) => {
    const c = await login(server, user, PASS, { resource: `r${++seq}`, presence: true });
    clients.push(c);
    return c;
  };
  const prefs = (def: string, always: string[] = [], never: string[] = []) =>
    xml('iq', { type: 'set' }, xml('prefs', { xmlns: NS_MAM, default: def },
      xml('always', {}, ...always.map((j) => xml('jid', {}, j))), xml('never', {}, ...never.map((j) => xml('jid', {}, j)))));
  /** `from` sends Juliet's account a message; is it in her archive? */
  const archived = async (juliet: TestClient, from: TestClient): Promise<boolean> => {
    const id = `p${++seq}`;
    await from.send(xml('message', { to: juliet.bare, type: 'chat', id }, xml('body', {}, id)));
    await juliet.expect((s) => s.attrs.id === id);
    const r = await mamQuery(juliet, [mamForm({ with: from.bare })]);
    return r.messages.some((m) => m.attrs.id === id);
  };

  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('archives by default, and follows default never with an always list', async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, tybalt: PASS, nurse: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'mam'] },
    });
    const juliet = await connect('juliet');
    const romeo = await connect('romeo');
    const tybalt = await connect('tybalt');
    const initial = await juliet.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: NS_MAM })));
    assert.equal(initial.getChild('prefs', NS_MAM)!.attrs.default, 'always');
    assert.equal(await archived(juliet, tybalt), true);

    const set = await juliet.iq(prefs('never', ['romeo@localhost']));
    const applied = set.getChild('prefs', NS_MAM)!;
    assert.equal(applied.attrs.default, 'never');
    assert.deepEqual(applied.getChild('always')!.getChildren('jid').map((j) => j.text()), ['romeo@localhost']);
    assert.equal(await archived(juliet, romeo), true);
    assert.equal(await archived(juliet, tybalt), false);

    await juliet.iq(prefs('always', [], ['tybalt@localhost']));
    assert.equal(await archived(juliet, romeo), true);
    assert.equal(await archived(juliet, tybalt), false);
    const got = await juliet.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: NS_MAM })));
    assert.deepEqual(got.getChild('prefs', NS_MAM)!.getChild('never')!.getChildren('jid').map((j) => j.text()), ['tybalt@localhost']);
  });

  it('with default roster, archives only contacts in the roster', async function () {
    const nurse = await connect('nurse');
    const romeo = await connect('romeo');
    const tybalt = await connect('tybalt');
    await nurse.iq(prefs('roster'));
    await nurse.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'romeo@localhost' }))));
    assert.equal(await archived(nurse, romeo), true);
    assert.equal(await archived(nurse, tybalt), false);
  });

  it('refuses an invalid default with bad-request', async function () {
    const nurse = await connect('nurse');
    const r = await nurse.iqRaw(prefs('sometimes'));
    assert.equal(stanzaErrorCondition(r), 'bad-request');
  });

  it('uses mam.defaultPolicy for accounts without preferences', async function () {
    await server.destroy();
    server = await startServer({
      users: { romeo: PASS, juliet: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'mam'], mam: { defaultPolicy: 'never' } },
    });
    const juliet = await connect('juliet');
    const romeo = await connect('romeo');
    assert.equal(await archived(juliet, romeo), false);
    const initial = await juliet.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: NS_MAM })));
    assert.equal(initial.getChild('prefs', NS_MAM)!.attrs.default, 'never');
  });
});
