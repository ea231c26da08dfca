// The module API for remote administration (issue 13), in-process: typed exports are checked and
// published as 'export' items (removed on unload), module.command publishes 'adhoc-command'
// items, isAdmin reads the global and per-host admins, waitFor resolves on a component's
// connection or after its time.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExportItem } from '../../core/api.ts';
import type { Server } from '../../core/server.ts';
import { makeServer } from '../helpers/core.ts';

const API = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'core', 'api.ts');
type Probe = Record<string, unknown>;
const probe = (): Probe => (globalThis as unknown as { __probe: Probe }).__probe;

describe('module API: commands, typed exports, admins, waitFor', function () {
  let dir: string;
  let server: Server;

  const write = (name: string, body: string) =>
    writeFileSync(path.join(dir, `mod_${name}.ts`), `import { defineModule } from '${API}';\nconst P = (globalThis as any).__probe;\nexport default defineModule(${body});\n`);

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-api-remote-'));
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
    (globalThis as unknown as { __probe: Probe }).__probe = {};
    server = makeServer({
      pluginPaths: [dir],
      log: { level: 'error' },
      admins: ['root@example.org'],
      virtualHosts: { 'example.org': {}, 'other.org': { admins: ['boss@other.org'] } },
    });
  });
  afterEach(async function () {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes a typed export as an item with its options and a call, and removes it on unload', async function () {
    write('calc', `{ load(module) {
      module.export('add', (a, b) => a + b, { description: 'Add', params: [{ name: 'a', type: 'integer' }, { name: 'b', type: 'integer' }], command: true });
      module.export('plain', () => 1, 'untyped');
    } }`);
    await server.modules.load('example.org', 'calc');
    const host = server.hosts.get('example.org')!;
    const items = host.getItems<ExportItem>('export');
    assert.deepEqual(items.map((i) => `${i.module}.${i.name} ${i.description}`), ['calc.add Add']);
    assert.equal(await items[0]!.call(40, 2), 42);
    assert.equal(await server.modules.call('example.org', 'calc', 'add', [1, 2]), 3, 'still an ordinary export');
    await server.modules.unload('example.org', 'calc');
    assert.deepEqual(host.getItems('export'), []);
  });

  it('refuses an export declaration with problems, naming them', async function () {
    write('bad', `{ load(module) { module.export('pick', (x) => x, { params: [{ name: 'x', type: 'enum' }] }); } }`);
    await assert.rejects(server.modules.load('example.org', 'bad'), /pick\(x\): enum needs values/);
  });

  it('publishes module.command definitions as adhoc-command items, removed on unload', async function () {
    write('cmd', `{ load(module) { module.command({ node: 'x#y', name: 'Y', allowed: () => true, stages: [], run: () => ({}) }); } }`);
    await server.modules.load('example.org', 'cmd');
    const host = server.hosts.get('example.org')!;
    assert.deepEqual(host.getItems<{ node: string }>('adhoc-command').map((c) => c.node), ['x#y']);
    await server.modules.unload('example.org', 'cmd');
    assert.deepEqual(host.getItems('adhoc-command'), []);
  });

  it('isAdmin: global admins everywhere, a host admin on that host only', async function () {
    write('who', `{ load(module) { P.isAdmin = (jid, host) => module.isAdmin(jid, host); } }`);
    await server.modules.load('example.org', 'who');
    const isAdmin = probe().isAdmin as (jid: string, host?: string) => boolean;
    assert.equal(isAdmin('ROOT@example.org/phone'), true);
    assert.equal(isAdmin('root@example.org', 'other.org'), true);
    assert.equal(isAdmin('boss@other.org', 'other.org'), true);
    assert.equal(isAdmin('boss@other.org'), false, 'not on example.org');
    assert.equal(isAdmin('nobody@example.org'), false);
  });

  it('waitFor resolves true when the component connects and false after its time', async function () {
    write('waiter', `{ load(module) { P.waitFor = (h, ms) => module.waitFor(h, ms); } }`);
    await server.modules.load('example.org', 'waiter');
    const waitFor = probe().waitFor as (h: string, ms: number) => Promise<boolean>;
    const connected = waitFor('bot.example.org', 60_000);
    server.events.emit('component-connected', { host: 'bot.example.org' });
    assert.equal(await connected, true);
    assert.equal(await waitFor('never.example.org', 10), false);
  });
});
