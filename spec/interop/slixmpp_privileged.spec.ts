// Interop: slixmpp's ComponentXMPP with its xep_0356 plugin (defaults) as a privileged component
// (XEP-0356): it learns its grants from the server's advertisement, reads a user's roster on the
// host that grants it roster access, and is refused (forbidden) on a host that grants it nothing;
// with roster both and presence roster it adds a contact with set_roster and sees a user's presence.
// The driver script is spec/interop/slixmpp_privileged.py.
import assert from 'node:assert/strict';
import { login, xml } from '../helpers/client.ts';
import path from 'node:path';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { PyClient, pythonModuleVersion, PYTHON, type Result } from './pyclient.ts';

const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_privileged.py');

describe('interop: slixmpp ComponentXMPP as a privileged component (XEP-0356)', function () {
  let server: TestServer;
  let component: PyClient | undefined;

  before(async function () {
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({
      users: { alice: 'alice-pass' },
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'component', 'privilege'],
        virtualHosts: {
          localhost: { privilege: { entities: { 'priv.localhost': { roster: 'get', message: 'outgoing', presence: 'managed_entity' }, 'full.localhost': { roster: 'both', presence: 'roster' } } } },
          'other.localhost': {},
        },
        componentPorts: [0],
        components: { 'priv.localhost': { secret: 's3cret' }, 'full.localhost': { secret: 's3cret' } },
      },
    });
  });
  after(async function () {
    await component?.kill();
    await server?.destroy();
  });

  it('reads a granted user roster and is refused outside its grant', async function () {
    const alice = await login(server, 'alice', 'alice-pass');
    await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bob@localhost' }))));
    await alice.stop();
    component = PyClient.spawn(SCRIPT, ['--jid', 'priv.localhost', '--secret', 's3cret', '--port', String(server.componentPort),
      '--user', 'alice@localhost', '--user', 'eve@other.localhost'], 'slixmpp component');
    const r: Result = await component.exited;
    const explain = `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-3000)}`;
    assert.equal(r.code, 0, explain);
    assert.ok(r.events.includes('EVENT privileges roster=get message=outgoing presence=managed_entity'), explain);
    assert.ok(r.events.includes('EVENT roster user=alice@localhost items=bob@localhost'), explain);
    assert.ok(r.events.includes('EVENT roster_error user=eve@other.localhost condition=forbidden'), explain);
  });

  it('sets a user roster with set_roster and receives the user presence (roster both, presence roster)', async function () {
    await component?.kill();
    component = PyClient.spawn(SCRIPT, ['--jid', 'full.localhost', '--secret', 's3cret', '--port', String(server.componentPort),
      '--set-item', 'alice@localhost=carol@localhost', '--presence-from', 'alice@localhost'], 'slixmpp component');
    await component.waitFor(/EVENT waiting_presence/);
    const alice = await login(server, 'alice', 'alice-pass');
    await alice.send(xml('presence', {}, xml('status', {}, 'seen by the component')));
    const r: Result = await component.exited;
    await alice.stop();
    const explain = `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-3000)}`;
    assert.equal(r.code, 0, explain);
    assert.ok(r.events.includes('EVENT privileges roster=both message=none presence=roster'), explain);
    assert.ok(r.events.includes('EVENT roster_set user=alice@localhost items=bob@localhost,carol@localhost'), explain);
    assert.ok(r.events.includes(`EVENT presence from=${alice.jid} status=seen by the component`), explain);
  });
});
