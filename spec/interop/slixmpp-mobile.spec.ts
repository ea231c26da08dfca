// Interop with slixmpp 1.8.3 (Debian's python3-slixmpp) for the multi-device features, each
// plugin at its defaults: xep_0280 enables carbons and receives received and sent copies;
// xep_0313 pages through the archive with iterate() (RSM) and reads it with retrieve(), and
// sees each message once, oldest first, with the stanza id it was delivered with. (slixmpp
// 1.8.3 has no xep_0357 plugin; push is shown by spec/e2e/push.spec.ts.)
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PYTHON, PyClient, pythonModuleVersion, type Result } from './pyclient.ts';

const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_mobile.py');
const PASS = 'mobile-pass';

describe('interop: slixmpp carbons and MAM plugins', function () {
  let server: TestServer;
  const running: PyClient[] = [];
  const clients: TestClient[] = [];

  const run = (args: string[], label: string): PyClient => {
    const slix = PyClient.spawn(SCRIPT, ['--password', PASS, '--port', String(server.c2sPort), ...args], label);
    running.push(slix);
    return slix;
  };
  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-3000)}`;
  const connect = async (user: string, resource: string, priority?: number) => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    if (priority !== undefined) {
      await c.send(xml('presence', {}, xml('priority', {}, String(priority))));
      await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    }
    return c;
  };

  before(async function () {
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({ users: { romeo: PASS, juliet: PASS, nurse: PASS }, config: { tls: testCa().serverTls } });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((s) => s.kill()));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('xep_0280: enables carbons and gets received and sent copies', async function () {
    const slix = run(['--jid', 'juliet@localhost/slix', '--action', 'carbons', '--priority', '1', '--expect', '2'], 'slixmpp carbons');
    await slix.waitFor(/^EVENT carbons_enabled$/);
    const desk = await connect('juliet', 'desk', 5);
    const romeo = await connect('romeo', 'r', 0);
    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'in' }, xml('body', {}, 'to the desk')));
    await desk.expect((s) => s.attrs.id === 'in');
    await desk.send(xml('message', { to: romeo.jid, type: 'chat', id: 'out' }, xml('body', {}, 'from the desk')));
    const r = await slix.exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.some((e) => e.startsWith(`EVENT carbon_received from=${romeo.jid} to=juliet@localhost body=to the desk`)), explain(r));
    assert.ok(r.events.some((e) => e.startsWith(`EVENT carbon_sent from=${desk.jid} to=${romeo.jid} body=from the desk`)), explain(r));
  });

  it('xep_0313: pages through the archive with iterate() and reads it with retrieve()', async function () {
    const romeo = await connect('romeo', 'r2');
    const nurse = await connect('nurse', 'n', 0);
    const sids: string[] = [];
    for (let i = 0; i < 23; i++) {
      await romeo.send(xml('message', { to: 'nurse@localhost', type: 'chat', id: `m${i}` }, xml('body', {}, `line ${i}`)));
      const got = await nurse.expect((s) => s.attrs.id === `m${i}`);
      sids.push(String(got.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id));
    }
    const it = await run(['--jid', 'nurse@localhost/slix', '--action', 'mam', '--peer', 'romeo@localhost'], 'slixmpp mam').exited;
    assert.equal(it.code, 0, explain(it));
    const lines = it.events.filter((e) => e.startsWith('EVENT mam '));
    assert.equal(lines.length, 23, explain(it));
    lines.forEach((l, i) => {
      assert.ok(l.includes(`body=line ${i} `), l);
      assert.ok(l.includes(`id=${sids[i]} `), `${l} (want ${sids[i]})`);
    });
    assert.ok(it.events.includes('EVENT mam_done count=23'), explain(it));

    const all = await run(['--jid', 'nurse@localhost/slix2', '--action', 'mam-retrieve'], 'slixmpp mam retrieve').exited;
    assert.equal(all.code, 0, explain(all));
    assert.ok(all.events.some((e) => e.startsWith('EVENT mam_done count=23 ')), explain(all));
  });
});
