// Interop of stream management (XEP-0198) and client state indication (XEP-0352) with real client
// libraries at their defaults: slixmpp's xep_0198 and xep_0352 plugins (Debian's python3-slixmpp)
// enable resumable SM and say <inactive/> by themselves; the client drops its TCP connection
// like a phone losing its network, 5 messages are sent to it meanwhile, it reconnects and its
// plugin resumes the stream: the 5 messages arrive, each once. The same with aioxmpp.Client, which
// negotiates stream management and resumes on its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RawClient, xml } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PYTHON, PyClient, pythonModuleVersion, type Result } from './pyclient.ts';

const SLIXMPP_SM = path.join(ROOT, 'spec', 'interop', 'slixmpp_sm.py');
const AIOXMPP_SM = path.join(ROOT, 'spec', 'interop', 'aioxmpp_sm.py');

describe('interop: stream management and client state (slixmpp, aioxmpp)', function () {
  let server: TestServer;
  let dir: string;
  const running: PyClient[] = [];
  const clients: RawClient[] = [];
  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-4000)}`;

  before(async function () {
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({ users: { romeo: 'r0meo-pass', juliet: 'jul1et-pass' }, config: { tls: testCa().serverTls } });
    dir = mkdtempSync(path.join(os.tmpdir(), 'cadence-sm-interop-'));
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((s) => s.kill()));
    for (const c of clients.splice(0)) c.socket.destroy();
  });
  after(async function () {
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Drop the client's connection, send it 5 messages while it is away, let it come back. */
  const awayAndBack = async (client: PyClient, jid: string, tag: string) => {
    const drop = path.join(dir, `${tag}-drop`);
    const resume = path.join(dir, `${tag}-resume`);
    const romeo = await RawClient.connect(server.c2sPort);
    clients.push(romeo);
    romeo.openStream();
    await romeo.starttls();
    await romeo.authenticate('romeo', 'r0meo-pass', `desk-${tag}`);

    const mark = server.output.length;
    writeFileSync(drop, '');
    await client.waitFor(/^EVENT dropped$/m);
    await server.waitForOutput(new RegExp(`${jid.replace('.', '\\.')} hibernates`), 10_000, mark);
    for (let i = 1; i <= 5; i++) romeo.write(xml('message', { to: jid, type: 'chat', id: `${tag}${i}` }, xml('body', {}, `while away ${i}`)).toString());
    // Its ping's answer: the five messages have been routed (to the hibernating session).
    romeo.write(xml('iq', { type: 'get', id: 'sync', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })).toString());
    await romeo.expect((el) => el.name === 'iq' && el.attrs.id === 'sync');
    writeFileSync(resume, '');
    const r = await client.exited;
    assert.equal(r.code, 0, explain(r));
    const bodies = r.events.filter((e) => e.startsWith('EVENT message ')).map((e) => e.slice(e.indexOf(' body=') + 6));
    assert.deepEqual(bodies, [1, 2, 3, 4, 5].map((i) => `while away ${i}`), explain(r));
    assert.ok(r.events.includes('EVENT received count=5'), explain(r));
    return r;
  };

  it('slixmpp xep_0198 + xep_0352: enabled by default, resumes after a dropped connection and gets the 5 messages sent meanwhile, once', async function () {
    const args = (tag: string) => ['--drop-when', path.join(dir, `${tag}-drop`), '--resume-when', path.join(dir, `${tag}-resume`), '--expect', '5', '--collect', '0.5'];
    const slix = PyClient.spawn(SLIXMPP_SM, ['--jid', 'juliet@localhost/phone', '--password', 'jul1et-pass', '--port', String(server.c2sPort), ...args('slix')], 'slixmpp sm');
    running.push(slix);
    await slix.waitFor(/^EVENT sm_enabled id=\S+ resume=true$/m);
    await slix.waitFor(/^EVENT csi inactive$/m);
    const r = await awayAndBack(slix, 'juliet@localhost/phone', 'slix');
    assert.ok(r.events.includes('EVENT sm_resumed'), explain(r));
    assert.ok(!r.events.includes('EVENT sm_failed'), explain(r));
  });

  it('aioxmpp stream management: enabled by default, resumes by itself after a dropped connection and gets the 5 messages, once', async function () {
    const aio = PyClient.spawn(AIOXMPP_SM, ['--jid', 'juliet@localhost/aio', '--password', 'jul1et-pass', '--port', String(server.c2sPort),
      '--drop-when', path.join(dir, 'aio-drop'), '--resume-when', path.join(dir, 'aio-resume'), '--expect', '5', '--collect', '0.5'], 'aioxmpp sm');
    running.push(aio);
    await aio.waitFor(/^EVENT sm enabled=True resumable=True$/m);
    const r = await awayAndBack(aio, 'juliet@localhost/aio', 'aio');
    assert.ok(r.events.includes('EVENT resumed'), explain(r));
    assert.ok(!r.events.includes('EVENT established'), `a new session instead of a resumption: ${explain(r)}`);
  });
});
