// Interop for remote administration (issue 13) with slixmpp 1.8.3 (Debian's python3-slixmpp) and
// its own plugins at their defaults: xep_0050 lists the commands (an admin sees XEP-0133's, a
// user does not), runs admin#add-user with the form the server sent (the new user then logs
// in) and an exported method generated as a command; xep_0009 calls an exported method over
// Jabber-RPC and gets its fault. The driver script is spec/interop/slixmpp_remote.py.
import assert from 'node:assert/strict';
import path from 'node:path';
import { login } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PyClient, pythonModuleVersion, PYTHON, type Result } from './pyclient.ts';

const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_remote.py');
const ADMIN = 'http://jabber.org/protocol/admin#';

describe('interop: slixmpp xep_0050 and xep_0009 against ad-hoc commands and Jabber-RPC', function () {
  let server: TestServer;
  const running: PyClient[] = [];

  const run = async (jid: string, password: string, args: string[]): Promise<Result> => {
    const c = PyClient.spawn(SCRIPT, ['--jid', jid, '--password', password, '--port', String(server.c2sPort), ...args], `slixmpp ${jid}`);
    running.push(c);
    return c.exited;
  };
  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-3000)}`;

  before(async function () {
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({
      users: { admin: 'admin-pass', robot: 'robot-pass', juliet: 'jul1et-pass' },
      config: {
        tls: testCa().serverTls,
        admins: ['admin@localhost'],
        pluginPaths: [path.join(ROOT, 'spec', 'fixtures', 'modules')],
        modulesEnabled: ['tls', 'saslauth', 'sasl2', 'bind', 'roster', 'disco', 'adhoc', 'admin_adhoc', 'rpc', 'adhoc_probe'],
      },
    });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((c) => c.kill()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('lists the admin commands to an admin and adds a user with admin#add-user; the user logs in', async function () {
    const r = await run('admin@localhost/slix', 'admin-pass', ['--action', 'commands', '--node', `${ADMIN}add-user`,
      '--field', 'accountjid=romeo@localhost', '--field', 'password=r0meo-pass', '--field', 'password-verify=r0meo-pass']);
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes(`EVENT command node=${ADMIN}add-user name=Add User`), explain(r));
    assert.ok(r.events.includes('EVENT form node=http://jabber.org/protocol/admin#add-user title=Adding a User'), explain(r));
    assert.ok(r.events.includes('EVENT status completed'), explain(r));
    assert.ok(r.events.includes('EVENT note type=info text=Added romeo@localhost'), explain(r));
    const romeo = await login(server, 'romeo', 'r0meo-pass');
    assert.equal(romeo.bare, 'romeo@localhost');
    await romeo.stop();
  });

  it('shows a user no admin command, and refuses one with forbidden', async function () {
    const r = await run('juliet@localhost/slix', 'jul1et-pass', ['--action', 'commands', '--node', `${ADMIN}delete-user`]);
    assert.equal(r.code, 0, explain(r));
    assert.ok(!r.events.some((e) => e.startsWith(`EVENT command node=${ADMIN}`)), explain(r));
    assert.ok(r.events.includes('EVENT command_error condition=forbidden'), explain(r));
  });

  it('runs an exported method generated as a command', async function () {
    const r = await run('juliet@localhost/slix', 'jul1et-pass', ['--action', 'commands', '--node', 'cadence:adhoc_probe#add', '--field', 'a=40', '--field', 'b=2']);
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT field var=result value=42'), explain(r));
  });

  it('calls an exported method over Jabber-RPC and reads its fault', async function () {
    const ok = await run('robot@localhost/slix', 'robot-pass', ['--action', 'rpc', '--method', 'adhoc_probe.add', '--param', 'i:40', '--param', 'i:2']);
    assert.equal(ok.code, 0, explain(ok));
    assert.ok(ok.events.includes('EVENT rpc_result value=[42]'), explain(ok));
    const fault = await run('robot@localhost/slix', 'robot-pass', ['--action', 'rpc', '--method', 'adhoc_probe.fail', '--param', 's:why not']);
    assert.ok(fault.events.includes('EVENT rpc_fault code=-32500 string=failed: why not'), explain(fault));
    const refused = await run('juliet@localhost/slix', 'jul1et-pass', ['--action', 'rpc', '--method', 'adhoc_probe.add', '--param', 'i:1', '--param', 'i:2']);
    assert.ok(refused.events.includes('EVENT rpc_error condition=forbidden'), explain(refused));
  });
});
