// Interop: slixmpp 1.8.3 (Debian's python3-slixmpp) with its own PEP plugins at their defaults
// (spec/interop/slixmpp_pep.py): xep_0084 publishes an avatar through xep_0163/xep_0060 and reads
// it back; another slixmpp client, a contact whose caps (xep_0115) say avatar metadata+notify, is
// sent the avatar when it comes online; xep_0048 stores bookmarks in private XML storage (its
// default) and in PEP (xep_0223), and both reach the XEP-0402 node another client reads.
import assert from 'node:assert/strict';
import path from 'node:path';
import { befriend, fetchItems, itemsOf, login, ok } from '../helpers/pep.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PYTHON, PyClient, pythonModuleVersion, type Result } from './pyclient.ts';

const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_pep.py');
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=';
const AVATAR_ID = '9650c36d04d3c738aca45e40061e0c3f4a6d8836';
const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';

describe('interop: slixmpp PEP plugins (xep_0060, xep_0163, xep_0084, xep_0048)', function () {
  let server: TestServer;
  const running: PyClient[] = [];

  const run = (jid: string, password: string, action: string, extra: string[] = []): PyClient => {
    const p = PyClient.spawn(SCRIPT, ['--jid', jid, '--password', password, '--port', String(server.c2sPort), '--action', action, ...extra], `slixmpp ${jid}`);
    running.push(p);
    return p;
  };
  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-3000)}`;

  before(async function () {
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({ users: { romeo: 'r0meo-pass', juliet: 'jul1et-pass', nurse: 'nurse-pass' }, config: { tls: testCa().serverTls } });
    // romeo and juliet are contacts (both ways).
    const romeo = await login(server, 'romeo', 'r0meo-pass', { resource: 'setup', presence: true });
    const juliet = await login(server, 'juliet', 'jul1et-pass', { resource: 'setup', presence: true });
    await befriend(romeo, juliet);
    await Promise.all([romeo.stop(), juliet.stop()]);
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((p) => p.kill()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('xep_0084 publishes an avatar; a contact with +notify in its caps is sent it on login', async function () {
    const pub = await run('romeo@localhost/slix', 'r0meo-pass', 'avatar-publish', ['--avatar', PNG]).exited;
    assert.equal(pub.code, 0, explain(pub));
    assert.ok(pub.events.includes(`EVENT avatar_published id=${AVATAR_ID}`), explain(pub));
    assert.ok(pub.events.includes(`EVENT own_metadata id=${AVATAR_ID}`), explain(pub));
    const listen = await run('juliet@localhost/slix', 'jul1et-pass', 'avatar-listen', ['--peer', 'romeo@localhost']).exited;
    assert.equal(listen.code, 0, explain(listen));
    assert.ok(listen.events.includes(`EVENT avatar_event from=romeo@localhost id=${AVATAR_ID}`), explain(listen));
  });

  for (const method of ['xep_0049', 'xep_0223']) {
    it(`xep_0048 bookmarks (${method}) are read back and reach the XEP-0402 node`, async function () {
      const room = `${method.replace('_', '')}@conference.localhost`;
      const r = await run('nurse@localhost/slix', 'nurse-pass', 'bookmarks', ['--room', room, '--nick', 'Nurse', '--method', method]).exited;
      assert.equal(r.code, 0, explain(r));
      assert.ok(r.events.some((e) => e.startsWith(`EVENT bookmark jid=${room} name=Interop room autojoin=True nick=Nurse`)), explain(r));
      const reader = await login(server, 'nurse', 'nurse-pass', { resource: 'modern' });
      try {
        const items = itemsOf(ok(await fetchItems(reader, NS_BOOKMARKS)));
        const item = items.find((i) => i.attrs.id === room);
        assert.ok(item, `no XEP-0402 item for ${room}: ${items.map(String).join('\n')}`);
        assert.equal(item.getChild('conference', NS_BOOKMARKS)?.getChildText('nick'), 'Nurse');
      } finally {
        await reader.stop();
      }
    });
  }
});
