// Stream management (XEP-0198) and the archive (XEP-0313) across a crash: what a session of the
// previous run never acknowledged, and nobody resumed, goes to offline storage after the restart —
// archived once (not a second time when it is routed again), delivered with its archive id.
import assert from 'node:assert/strict';
import { login, RawClient, xml, type Element } from '../helpers/client.ts';
import { mamForm, mamQuery, stanzaId } from '../helpers/mam.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'sm-mam-pass';
const NS_SM = 'urn:xmpp:sm:3';

const isSm = (name: string) => (el: Element) => el.name === name && el.attrs.xmlns === NS_SM;

describe('e2e: stream management and the archive across a crash', function () {
  let server: TestServer;
  const clients: RawClient[] = [];

  /** Logged in, available, stream management enabled with resumption for `max` seconds. */
  const smClient = async (user: string, resource: string, max: number) => {
    const c = await RawClient.connect(server.c2sPort);
    clients.push(c);
    c.openStream();
    await c.starttls();
    const jid = await c.authenticate(user, PASS, resource);
    c.write(xml('presence').toString());
    c.write(xml('enable', { xmlns: NS_SM, resume: 'true', max: String(max) }).toString());
    await c.expect(isSm('enabled'));
    return { c, jid };
  };

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'ping', 'offline', 'mam', 'smacks'] },
    });
  });
  afterEach(function () {
    for (const c of clients.splice(0)) c.socket.destroy();
  });
  after(async function () {
    await server?.destroy();
  });

  it('archives a message once when an unresumed session of the previous run hands it to offline storage', async function () {
    const { c: juliet, jid } = await smClient('juliet', 'phone', 1);
    const { c: romeo } = await smClient('romeo', 'desk', 600);
    const texts = ['c1', 'c2', 'c3'];
    for (const t of texts) romeo.write(xml('message', { to: jid, type: 'chat', id: t }, xml('body', {}, t)).toString());
    romeo.write(xml('r', { xmlns: NS_SM }).toString());
    await romeo.expect(isSm('a')); // durable: archived, and in Juliet's journal
    const delivered = new Map<string, string | undefined>();
    for (let i = 0; i < texts.length; i++) {
      const m = await juliet.expect((el) => el.name === 'message' && el.getChild('body') !== undefined);
      delivered.set(String(m.attrs.id), stanzaId(m, 'juliet@localhost'));
    }
    server.proc!.kill('SIGKILL');
    await server.stop();
    clients.splice(0).forEach((c) => c.socket.destroy());
    server.output = '';
    await server.start();
    // Nobody resumes Juliet's session: after its second, what it held goes to offline storage.
    await server.waitForOutput(/re-routed 3 unacknowledged message/, 10_000);

    const back = await login(server, 'juliet', PASS, { resource: 'back' });
    try {
      await back.send(xml('presence'));
      const offline = new Map<string, string | undefined>();
      for (let i = 0; i < texts.length; i++) {
        const m = await back.expect((s) => s.name === 'message' && s.getChild('body') !== undefined);
        assert.ok(m.getChild('delay', 'urn:xmpp:delay'), 'delivered later, with a delay stamp');
        offline.set(String(m.attrs.id), stanzaId(m, 'juliet@localhost'));
      }
      assert.deepEqual([...offline.keys()].sort(), texts);
      const r = await mamQuery(back, [mamForm({ with: 'romeo@localhost' })]);
      assert.deepEqual(r.messages.map((m) => m.attrs.id), texts, 'each message archived once');
      for (const [i, t] of texts.entries()) {
        assert.equal(offline.get(t), r.ids[i], `${t} arrives with its archive id`);
        assert.equal(delivered.get(t), r.ids[i], `${t} kept the id it was first delivered with`);
      }
    } finally {
      await back.stop();
    }
  });
});
