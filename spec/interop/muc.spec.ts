// Multi-User Chat with real client libraries at their defaults: slixmpp 1.8.3's xep_0045 plugin
// and aioxmpp 0.13.3's MUCClient (Debian's packages, the system Python, trusting the test CA).
// Each creates and configures a room with its own form handling, and joins a room where the
// other library and @xmpp/client talk: history and subject on entry, live messages both ways,
// a subject change, leaving. The scripts print `EVENT …` lines (spec/interop/slixmpp_muc.py,
// spec/interop/aioxmpp_muc.py).
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { configure, createInstant, enter, groupchat, isGroupchat, MUC, NS_DISCO_INFO, presenceFrom } from '../helpers/muc-client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PYTHON, PyClient, pythonModuleVersion, type Result } from './pyclient.ts';

const SLIX = path.join(ROOT, 'spec', 'interop', 'slixmpp_muc.py');
const AIO = path.join(ROOT, 'spec', 'interop', 'aioxmpp_muc.py');
const PASS = 'muc-interop-pass';

interface MucRun {
  user: string;
  action: 'owner' | 'guest' | 'create';
  room: string;
  nick: string;
  name?: string;
  subject?: string;
  topic?: string;
  send?: string[];
  expect?: number;
}

describe('interop: MUC with slixmpp and aioxmpp', function () {
  let server: TestServer;
  const running: PyClient[] = [];
  const clients: TestClient[] = [];

  const spawn = (script: string, label: string, r: MucRun): PyClient => {
    const args = ['--jid', `${r.user}@localhost/${label}`, '--password', PASS, '--port', String(server.c2sPort), '--action', r.action,
      '--room', r.room, '--nick', r.nick, '--timeout', '30'];
    if (r.name !== undefined) args.push('--name', r.name);
    if (r.subject !== undefined) args.push('--subject', r.subject);
    if (r.topic !== undefined) args.push('--topic', r.topic);
    for (const b of r.send ?? []) args.push('--send', b);
    if (r.expect !== undefined) args.push('--expect', String(r.expect));
    const p = PyClient.spawn(script, args, `${label} ${r.user}`);
    running.push(p);
    return p;
  };
  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-3000)}`;
  const succeeded = async (p: PyClient): Promise<string[]> => {
    const r = await p.exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT done'), explain(r));
    return r.events;
  };
  const connect = async (user: string) => {
    const c = await login(server, user, PASS);
    clients.push(c);
    return c;
  };
  const roomName = async (c: TestClient, room: string) =>
    (await c.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_DISCO_INFO })))).getChild('query')!.getChild('identity')!.attrs.name;

  before(async function () {
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    assert.ok(pythonModuleVersion('aioxmpp'), `aioxmpp is not importable by ${PYTHON}: apt-get install python3-aioxmpp`);
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, nurse: PASS, friar: PASS },
      config: { tls: testCa().serverTls },
    });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('slixmpp creates and configures a persistent room with get_room_config/set_room_config, sets the subject and talks', async function () {
    const room = `slix-made@${MUC}`;
    const events = await succeeded(spawn(SLIX, 'slix', { user: 'romeo', action: 'owner', room, nick: 'Romeo', name: 'Made by slixmpp', subject: 'Balcony', send: ['hello from slixmpp'] }));
    assert.ok(events.some((e) => /^EVENT joined nick=Romeo role=moderator affiliation=owner statuses=110,201$/.test(e)), events.join('\n'));
    assert.ok(events.includes('EVENT configured'), events.join('\n'));
    assert.ok(events.includes('EVENT message from=Romeo body=hello from slixmpp'), events.join('\n'));
    const c = await connect('nurse');
    assert.equal(await roomName(c, room), 'Made by slixmpp');
    const subject = c.expect((el) => el.name === 'message' && el.getChild('subject') !== undefined);
    const history = c.expect(isGroupchat('hello from slixmpp'));
    await enter(c, `${room}/nurse`);
    assert.equal((await history).attrs.from, `${room}/Romeo`);
    assert.equal((await subject).getChildText('subject'), 'Balcony');
  });

  it('aioxmpp creates and configures a persistent room with its ConfigurationForm and talks', async function () {
    const room = `aio-made@${MUC}`;
    const events = await succeeded(spawn(AIO, 'aio', { user: 'juliet', action: 'create', room, nick: 'Juliet', name: 'Made by aioxmpp', send: ['hello from aioxmpp'] }));
    assert.ok(events.some((e) => /^EVENT entered nick=Juliet role=moderator affiliation=owner$/.test(e)), events.join('\n'));
    assert.ok(events.includes('EVENT configured'), events.join('\n'));
    assert.ok(events.includes('EVENT message from=Juliet body=hello from aioxmpp'), events.join('\n'));
    const c = await connect('nurse');
    assert.equal(await roomName(c, room), 'Made by aioxmpp');
  });

  it('slixmpp and aioxmpp join a room with history and subject, talk with each other and @xmpp/client, and leave', async function () {
    const room = `mixed@${MUC}`;
    const host = await connect('friar');
    await createInstant(host, room, 'Friar');
    const ok = await configure(host, room, { 'muc#roomconfig_changesubject': '1' });
    assert.equal(ok.attrs.type, 'result');
    await host.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Wedding plans')));
    await groupchat(host, room, 'earlier words');
    await host.expect(isGroupchat('earlier words'));

    const slix = spawn(SLIX, 'slix', { user: 'romeo', action: 'guest', room, nick: 'Romeo', send: ['romeo here'], expect: 2 });
    // Python clients start slowly on a loaded machine: wait as long as the scripts do.
    const LONG = 30_000;
    await host.expect(presenceFrom(`${room}/Romeo`), LONG);
    await host.expect(isGroupchat('romeo here'), LONG);
    const aio = spawn(AIO, 'aio', { user: 'juliet', action: 'guest', room, nick: 'Juliet', send: ['juliet here'], expect: 1, topic: 'Eloping' });
    await host.expect(isGroupchat('juliet here'), LONG);
    await groupchat(host, room, 'friar here');
    await host.expect(isGroupchat('friar here'));

    const slixEvents = await succeeded(slix);
    const aioEvents = await succeeded(aio);
    for (const events of [slixEvents, aioEvents]) {
      assert.ok(events.includes('EVENT history from=Friar body=earlier words'), events.join('\n'));
      assert.ok(events.includes('EVENT subject text=Wedding plans'), events.join('\n'));
      assert.ok(events.includes('EVENT message from=Friar body=friar here'), events.join('\n'));
      assert.ok(events.includes('EVENT left'), events.join('\n'));
    }
    assert.ok(slixEvents.includes('EVENT occupant nick=Friar'), slixEvents.join('\n'));
    assert.ok(slixEvents.includes('EVENT message from=Juliet body=juliet here'), slixEvents.join('\n'));
    assert.ok(aioEvents.includes('EVENT topic text=Eloping'), aioEvents.join('\n'));
    const topic = await host.expect((el) => el.name === 'message' && el.getChildText('subject') === 'Eloping', LONG);
    assert.equal(topic.attrs.from, `${room}/Juliet`);
    await host.expect(presenceFrom(`${room}/Romeo`, 'unavailable'));
    await host.expect(presenceFrom(`${room}/Juliet`, 'unavailable'));
  });
});
