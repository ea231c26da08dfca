// The module system over a running server: drop a module in while it runs, load it from the admin
// shell, reload it without dropping clients or stanzas, unload it; config-driven failures.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { ROOT, runCli, startServer, writeConfig, type TestServer } from '../helpers/server.ts';

const EXAMPLE = path.join(ROOT, 'doc', 'examples', 'mod_hello.ts');
const FIXTURES = path.join(ROOT, 'spec', 'fixtures', 'modules');
const MODULES = ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'admin_shell'];
const hello = (c: TestClient) => c.iqRaw(xml('iq', { type: 'get', to: 'localhost' }, xml('hello', { xmlns: 'urn:example:hello' })));
const discoFeatures = async (c: TestClient) =>
  (await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }))))
    .getChild('query')!.getChildren('feature').map((f) => String(f.attrs.var));

describe('e2e: modules at run time', function () {
  let server: TestServer;
  let userDir: string;
  const clients: TestClient[] = [];

  before(async function () {
    userDir = mkdtempSync(path.join(tmpdir(), 'cadence-usermods-'));
    server = await startServer({ users: { alice: 'alice-pw', bob: 'bob-pw' }, config: { pluginPaths: [userDir], modulesEnabled: MODULES } });
  });
  after(async function () {
    await Promise.all(clients.map((c) => c.stop()));
    await server?.destroy();
    rmSync(userDir, { recursive: true, force: true });
  });

  const shell = async (...words: string[]) => {
    const r = await server.cli(['shell', ...words]);
    assert.equal(r.code, 0, `shell ${words.join(' ')} failed: ${r.stderr}`);
    return r.stdout.trim();
  };

  it('loads a module dropped into the user path from the shell; it answers at once and learns of existing sessions', async function () {
    const alice = await login(server, 'alice', 'alice-pw', { resource: 'desk', presence: true });
    clients.push(alice);
    assert.equal(stanzaErrorCondition(await hello(alice)), 'service-unavailable');

    copyFileSync(EXAMPLE, path.join(userDir, 'mod_hello.ts'));
    assert.match(await shell('module', 'load', 'hello', 'localhost'), /loaded hello on localhost/);

    const r = await hello(alice);
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.getChildText('hello'), 'Hello, alice@localhost/desk!');
    assert.equal(r.getChild('hello')?.attrs.times, '1');
    assert.equal((await hello(alice)).getChild('hello')?.attrs.times, '2', 'counted durably, in order');
    const refused = await alice.iqRaw(xml('iq', { type: 'get', to: 'localhost' }, xml('hello', { xmlns: 'urn:example:hello' }, 'please')));
    assert.equal(stanzaErrorCondition(refused), 'bad-request', 'a StanzaError thrown by the handler is the answer');
    assert.equal(await shell('module', 'call', 'hello@localhost', 'sessionCount'), '1', 'told about the session that already existed');
    assert.ok((await discoFeatures(alice)).includes('urn:example:hello'));
    assert.match(await shell('module', 'exports', 'localhost'), /hello\.greet/);
    assert.equal(await shell('module', 'call', 'hello@localhost', 'greet', 'Bob'), 'Hello, Bob!');
    assert.match(await shell('session', 'list'), /c2s\s+alice@localhost\/desk\s+127\.0\.0\.1\s+TLSv1\.3\s+\d+s/);
    assert.equal(statSync(path.join(server.dir, 'data', 'cadence.sock')).mode & 0o777, 0o600, 'the admin socket is private');
  });

  it('reloads new code without dropping the client; stanzas sent during the swap arrive', async function () {
    const alice = clients[0]!;
    const bob = await login(server, 'bob', 'bob-pw', { resource: 'phone' });
    clients.push(bob);
    // First a version whose unload takes a while, so the next swap is slow enough to send into.
    const slowUnload = (greeting: string) =>
      readFileSync(EXAMPLE, 'utf8')
        .replace("default: 'Hello'", `default: '${greeting}'`)
        .replace('  load(module: ModuleApi<typeof options>) {', '  async unload() {\n    await new Promise((r) => setTimeout(r, 1500));\n  },\n  load(module: ModuleApi<typeof options>) {');
    writeFileSync(path.join(userDir, 'mod_hello.ts'), slowUnload('Hello'));
    await shell('module', 'reload', 'hello', 'localhost');
    writeFileSync(path.join(userDir, 'mod_hello.ts'), slowUnload('Howdy'));

    const before = server.output.length;
    const reloading = shell('module', 'reload', 'hello', 'localhost');
    while (!server.output.slice(before).includes('reloading hello on localhost')) await new Promise((r) => setTimeout(r, 20));
    await bob.send(xml('message', { to: 'alice@localhost/desk', type: 'chat', id: 'during' }, xml('body', {}, 'sent during the reload')));
    const answer = hello(alice);
    assert.match(await reloading, /reloaded hello on localhost/);
    const m = await alice.expect((s) => s.attrs.id === 'during');
    assert.equal(m.getChildText('body'), 'sent during the reload');
    assert.equal((await answer).getChildText('hello'), 'Howdy, alice@localhost/desk!');
    // Same session, still bound.
    const pong = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(pong.attrs.to, 'alice@localhost/desk');
  });

  it('unloads: its hooks and disco features are gone', async function () {
    const alice = clients[0]!;
    assert.match(await shell('module', 'unload', 'hello', 'localhost'), /unloaded hello from localhost/);
    assert.equal(stanzaErrorCondition(await hello(alice)), 'service-unavailable');
    assert.equal((await discoFeatures(alice)).includes('urn:example:hello'), false);
    const r = await server.cli(['shell', 'module', 'call', 'hello@localhost', 'greet', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not loaded/);
  });

  it('applies a module added to the config on SIGHUP', async function () {
    const alice = clients[0]!;
    writeConfig(server.dir, 'localhost', { pluginPaths: [userDir], modulesEnabled: [...MODULES, 'hello'], hello: { greeting: 'Hi' } });
    server.proc!.kill('SIGHUP');
    let r = await hello(alice);
    for (let i = 0; i < 20 && r.attrs.type !== 'result'; i++) {
      await new Promise((res) => setTimeout(res, 250));
      r = await hello(alice);
    }
    assert.equal(r.getChildText('hello'), 'Hi, alice@localhost/desk!');
    assert.match(server.output, /configuration reloaded: loaded hello on localhost/);
  });
});

describe('e2e: modules named in the config', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-cfg-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stops start-up when a configured module throws in load(), naming it and the reason', async function () {
    const cfg = writeConfig(dir, 'localhost', { pluginPaths: [FIXTURES], modulesEnabled: ['throws'] });
    const r = await runCli(['-c', cfg, 'start']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot start: module 'throws' failed to load on localhost: database unreachable/);
  });

  it('skips a configured module refused by its header, with a warning, and starts', async function () {
    const cfg = writeConfig(dir, 'localhost', { pluginPaths: [FIXTURES], modulesEnabled: ['tls', 'saslauth', 'bind', 'needs_missing'] });
    const r = await runCli(['-c', cfg, 'check']);
    assert.match(r.stdout, /needs_missing: filtered: .*mod_needs_missing\.ts requires missing core feature\(s\): teleportation/);
    const srv = await startServer({ dir, config: { pluginPaths: [FIXTURES], modulesEnabled: ['tls', 'saslauth', 'bind', 'needs_missing'] } });
    try {
      assert.match(srv.output, /warn .*needs_missing.*teleportation/);
    } finally {
      await srv.stop();
    }
  });

  it('reports wrong option types and unknown options at start-up and in check, naming module and option', async function () {
    const cfg = writeConfig(dir, 'localhost', { saslauth: { mechanisms: 'PLAIN', colour: 'blue' } });
    const start = await runCli(['-c', cfg, 'start']);
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /module 'saslauth': option 'mechanisms' must be an array of strings/);
    const check = await runCli(['-c', cfg, 'check']);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /module 'saslauth': unknown option 'colour'/);
  });

  it('prints every module option with check --options', async function () {
    const cfg = writeConfig(dir, 'localhost');
    const r = await runCli(['-c', cfg, 'check', '--options']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /mechanisms: string\[\] = \[.*\] \(one of SCRAM-SHA-512-PLUS/);
    assert.match(r.stdout, /maxFailures: integer = 5/);
  });

  it('rejects an unknown config field, naming it', async function () {
    const cfg = writeConfig(dir, 'localhost', { c2sPort: [5222] });
    const r = await runCli(['-c', cfg, 'start']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(r.stderr, /'c2sPort' is not a known option/);
  });
});
