// The precompiled build (issue 12): `cadence start` runs the JavaScript in dist/, a JavaScript
// config with the embedded defaults (no modulesEnabled, no components) needs no TypeScript
// compiler at all, and an operator's .ts config and .ts module are still compiled (tsx, loaded
// then). What the running process is made of is read from `cadence shell server info`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login } from '../helpers/client.ts';
import { NODE_FLAGS, ROOT, TestServer, runCli } from '../helpers/server.ts';

const FIXTURES = path.join(ROOT, 'spec', 'fixtures', 'modules');

/** Listeners on 127.0.0.1 with ephemeral ports; everything else from the embedded defaults. */
function ports(dir: string): string {
  return `dataDir: ${JSON.stringify(path.join(dir, 'data'))}, interfaces: ['127.0.0.1'], c2sPorts: PORTS, c2sDirectTlsPorts: PORTS, httpPorts: PORTS, httpsPorts: PORTS, c2s: { keepaliveInterval: 0 }`;
}

async function serverInfo(server: TestServer): Promise<string> {
  const r = await server.cli(['shell', 'server', 'info']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe('e2e: the precompiled build', function () {
  let dir: string;
  let server: TestServer | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-build-'));
  });
  afterEach(async () => {
    await server?.destroy();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts from dist/ with a JavaScript config and the embedded defaults, without loading tsx', async function () {
    const cfg = path.join(dir, 'cadence.cfg.mjs');
    writeFileSync(cfg, `const PORTS = [0];\nexport default { ${ports(dir)}, virtualHosts: { localhost: {} } };\n`);
    server = new TestServer(dir, cfg, 'localhost');
    await server.start();
    const info = await serverInfo(server);
    assert.match(info, new RegExp(`^code ${path.join(ROOT, 'dist')} \\(compiled JavaScript\\)$`, 'm'), info);
    assert.match(info, /^TypeScript compiled at run time: none$/m, info);
    // As `npm start` runs it: the V8 flag only, no --import/--loader of tsx.
    assert.match(info, new RegExp(`^node flags ${NODE_FLAGS.join(' ')}$`, 'm'), info);
    // The embedded defaults: the default modules and the MUC component of localhost.
    const modules = await server.cli(['shell', 'module', 'list']);
    assert.match(modules.stdout, /\bmam\b/);
    assert.match(modules.stdout, /conference\.localhost/);
    // It serves: an account made through the running server logs in.
    const add = await server.cli(['adduser', 'alice@localhost'], 'pw-alice\n');
    assert.equal(add.code, 0, add.stderr);
    const c = await login(server, 'alice', 'pw-alice');
    assert.match(c.jid ?? '', /^alice@localhost\//);
    await c.stop();
  });

  it('compiles an operator\'s .ts config (importing defineConfig from the sources) and .ts module when there are some', async function () {
    // An ESM package, like the checkout's prosody-like.cfg.ts: core/config.ts is served from dist/.
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
    const cfg = path.join(dir, 'cadence.cfg.ts');
    writeFileSync(
      cfg,
      `import { defineConfig } from ${JSON.stringify(path.join(ROOT, 'core', 'config.ts'))};\n` +
        'const PORTS: number[] = [0];\n' +
        `export default defineConfig({ ${ports(dir)}, pluginPaths: [${JSON.stringify(FIXTURES)}], modulesEnabled: ['tls', 'saslauth', 'bind', 'admin_shell', 'disco', 'adhoc', 'adhoc_probe'], virtualHosts: { localhost: {} } });\n`,
    );
    server = new TestServer(dir, cfg, 'localhost');
    await server.start();
    const info = await serverInfo(server);
    assert.match(info, new RegExp(`^code ${path.join(ROOT, 'dist')} \\(compiled JavaScript\\)$`, 'm'), info);
    const compiled = /^TypeScript compiled at run time: (.*)$/m.exec(info)?.[1]?.split(', ') ?? [];
    assert.deepEqual(compiled, [cfg, path.join(FIXTURES, 'mod_adhoc_probe.ts')], info);
    const modules = await server.cli(['shell', 'module', 'list']);
    assert.match(modules.stdout, /adhoc_probe/);
  });

  it('answers help and about without a config file', async function () {
    const about = await runCli(['-c', path.join(dir, 'missing.cfg.ts'), 'about'], undefined, dir);
    assert.equal(about.code, 0, about.stderr);
    assert.match(about.stdout, new RegExp(`^installed in ${ROOT}$`, 'm'));
    const help = await runCli(['help'], undefined, dir);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: cadence/m);
  });
});
