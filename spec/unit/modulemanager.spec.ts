import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreError } from '../../core/util/errors.ts';
import { addLogSink } from '../../core/util/log.ts';
import type { Server } from '../../core/server.ts';
import { makeServer } from '../helpers/core.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'modules');
const CORE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'core');

describe('module manager', function () {
  let server: Server;
  let warnings: string[];
  let removeSink: () => void;
  let userDir: string;

  beforeEach(function () {
    userDir = mkdtempSync(path.join(tmpdir(), 'cadence-mods-'));
    // An ESM scope, so the in-process loader imports directly (e2e/modules.spec.ts covers a
    // plain directory through the real CLI).
    writeFileSync(path.join(userDir, 'package.json'), '{ "type": "module" }\n');
    server = makeServer({ pluginPaths: [userDir, FIXTURES], log: { level: 'error' } });
    warnings = [];
    removeSink = addLogSink((level, _ns, line) => {
      if (level === 'warn') warnings.push(line);
    });
  });
  afterEach(async function () {
    removeSink();
    await server.modules.unloadAll();
    rmSync(userDir, { recursive: true, force: true });
  });

  it('loads a module whose required core features are present', async function () {
    const m = await server.modules.load('example.org', 'needs_present');
    assert.equal(m.file, path.join(FIXTURES, 'mod_needs_present.ts'));
    assert.ok(server.hosts.get('example.org')!.getItems('feature').includes('urn:example:present'));
  });

  it('does not load (or import) a module that requires a missing feature, and says which and where', async function () {
    await assert.rejects(server.modules.load('example.org', 'needs_missing'), (err: CoreError) => {
      assert.equal(err.code, 'MODULE_FILTERED');
      assert.match(err.message, /teleportation/);
      assert.match(err.message, /mod_needs_missing\.ts/);
      return true;
    });
    assert.ok(warnings.some((w) => w.includes('teleportation') && w.includes(path.join(FIXTURES, 'mod_needs_missing.ts'))), warnings.join('\n'));
    assert.equal(server.modules.isLoaded('example.org', 'needs_missing'), false);
  });

  it('does not load a module that conflicts with a present feature', async function () {
    await assert.rejects(server.modules.load('example.org', 'conflicting'), (err: CoreError) => err.code === 'MODULE_FILTERED' && /sessions-v1/.test(err.message));
    assert.ok(warnings.some((w) => w.includes('conflicts with core feature(s): sessions-v1') && w.includes('mod_conflicting.ts')));
  });

  it('skips a refused user copy and keeps searching: the next path provides the module', async function () {
    writeFileSync(path.join(userDir, 'mod_needs_present.ts'), '//% requires_core_features: time-travel\nexport default { load() { throw new Error("must not run"); } };\n');
    const m = await server.modules.load('example.org', 'needs_present');
    assert.equal(m.file, path.join(FIXTURES, 'mod_needs_present.ts'));
    assert.ok(warnings.some((w) => w.includes('time-travel') && w.includes(userDir)));
  });

  it('makes a mod_*.ts dropped into a user module path loadable', async function () {
    assert.throws(() => {
      if (!server.modules.resolve('dropped').found) throw new Error('not there yet');
    });
    writeFileSync(
      path.join(userDir, 'mod_dropped.ts'),
      `//% requires_core_features: stanza-events-v1\nimport { defineModule } from '${path.join(CORE_DIR, 'moduleapi.ts')}';\nexport default defineModule({ load(module) { module.addFeature('urn:example:dropped'); } });\n`,
    );
    assert.ok(server.modules.available().includes('dropped'));
    await server.modules.load('example.org', 'dropped');
    assert.ok(server.hosts.get('example.org')!.getItems('feature').includes('urn:example:dropped'));
  });

  it('reports a module that throws in load(), after calling its unload()', async function () {
    await assert.rejects(server.modules.load('example.org', 'throws'), (err: CoreError) => {
      assert.equal(err.code, 'MODULE_LOAD_FAILED');
      assert.match(err.message, /'throws'.*database unreachable/);
      return true;
    });
    assert.ok(warnings.includes('unload after failed load'));
    assert.equal(server.hosts.get('example.org')!.getItems('feature').includes('urn:example:half-made'), false, 'items of the failed load are removed');
  });

  it('refuses reserved names and a second copy of a loaded module', async function () {
    await assert.rejects(server.modules.load('example.org', 'core'), (e: CoreError) => e.code === 'MODULE_NAME_RESERVED');
    await server.modules.load('example.org', 'needs_present');
    await assert.rejects(server.modules.load('example.org', 'needs_present'), (e: CoreError) => e.code === 'MODULE_ALREADY_LOADED');
  });

  it('unloads a module with every hook and item it registered', async function () {
    await server.modules.load('example.org', 'ping');
    const host = server.hosts.get('example.org')!;
    assert.ok(host.events.has('iq-get/host/urn:xmpp:ping:ping'));
    assert.ok(host.getItems('feature').includes('urn:xmpp:ping'));
    await server.modules.unload('example.org', 'ping');
    assert.equal(host.events.has('iq-get/host/urn:xmpp:ping:ping'), false);
    assert.equal(host.getItems('feature').includes('urn:xmpp:ping'), false);
  });

  it('computes the module set per host like Prosody (global + host lists, disabled removed)', function () {
    const s = makeServer({
      modulesEnabled: ['roster', 'ping'],
      modulesDisabled: ['ping'],
      virtualHosts: { 'a.example': { modulesEnabled: ['disco'] }, 'b.example': { modulesDisabled: ['roster'] } },
    });
    assert.deepEqual(s.modulesFor('a.example'), ['c2s', 'iq', 'presence', 'message', 'roster', 'disco']);
    assert.deepEqual(s.modulesFor('b.example'), ['c2s', 'iq', 'presence', 'message']);
  });
});
