// The example config prosody-like.cfg.ts (what `npm start` runs) is compiled by `npm run build`
// too: `start`, `check` and `about` with it never load tsx, and an operator who edits it without
// rebuilding gets their edit (compiled at run time, with an info line saying so).
// Runs in a copy of the installed package (package.json, bin/, core/, dist/ of this checkout,
// node_modules linked) so the config can be edited; its ports are set to 0 on 127.0.0.1 in both
// the source and its build, as an operator would edit it and rebuild.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assertBuilt } from '../helpers/build.ts';
import { NODE_FLAGS, ROOT } from '../helpers/server.ts';

const TRACE = pathToFileURL(path.join(ROOT, 'spec', 'fixtures', 'trace-tsx', 'register.mjs')).href;
const CONFIG = 'prosody-like.cfg.ts';
const TWIN = path.join('dist', 'prosody-like.cfg.js');

/** The edits that make the example config listen on ephemeral loopback ports only. */
const LOOPBACK: [string, string][] = [
  ['c2sPorts: [5222]', 'c2sPorts: [0]'],
  ['c2sDirectTlsPorts: [5223]', 'c2sDirectTlsPorts: [0]'],
  ['httpPorts: [5280]', 'httpPorts: [0]'],
  ['httpsPorts: [5281]', 'httpsPorts: [0]'],
  ["// interfaces: ['127.0.0.1'],", "interfaces: ['127.0.0.1'],"],
];

function edit(file: string, edits: [string, string][]): void {
  let text = readFileSync(file, 'utf8');
  for (const [from, to] of edits) {
    assert.ok(text.includes(from), `${file} has no ${from}`);
    text = text.replace(from, to);
  }
  writeFileSync(file, text);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** The modules of tsx the process resolved. */
  tsx: string[];
}

describe('e2e: the example config runs precompiled', function () {
  let pkg: string;
  let traceFile: string;
  let server: ChildProcess | undefined;

  const env = () => ({ ...process.env, CADENCE_TRACE_TSX: traceFile, DEBUG: '' });
  const traced = (): string[] => (existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter(Boolean) : []);

  /** Run the copied package's `cadence` (default config ./prosody-like.cfg.ts, as `npm start`). */
  function cli(args: string[]): Promise<Run> {
    rmSync(traceFile, { force: true });
    return new Promise((resolve) => {
      const child = execFile(process.execPath, ['--import', TRACE, path.join(pkg, 'bin', 'cadence.js'), ...args], { cwd: pkg, env: env(), timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), tsx: traced() });
      });
      child.stdin!.end();
    });
  }

  /** `cadence start` as `npm start` runs it; resolves with its output up to the `ready` line. */
  function start(): Promise<string> {
    rmSync(traceFile, { force: true });
    // The server's trace covers `ws` too: it is loaded at the first WebSocket upgrade, not at start.
    const proc = spawn(process.execPath, [...NODE_FLAGS, '--import', TRACE, path.join(pkg, 'bin', 'cadence.js'), 'start'], { cwd: pkg, env: { ...env(), CADENCE_TRACE_PACKAGES: 'tsx,ws' }, stdio: ['ignore', 'pipe', 'pipe'] });
    server = proc;
    return new Promise((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (/^ready /m.test(output)) resolve(output);
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`server exited (${code}) before ready:\n${output}`)));
    });
  }

  async function stop(): Promise<void> {
    const proc = server;
    server = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }

  beforeEach(function () {
    assertBuilt(ROOT);
    pkg = mkdtempSync(path.join(tmpdir(), 'cadence-pkg-'));
    traceFile = path.join(pkg, 'tsx-modules.txt');
    for (const part of ['package.json', 'bin', 'core', 'dist', CONFIG]) cpSync(path.join(ROOT, part), path.join(pkg, part), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    // Edited and rebuilt: the build is newer than the source, and older than an edit made now
    // (set explicitly: file times are as coarse as the kernel's clock tick).
    edit(path.join(pkg, CONFIG), LOOPBACK);
    edit(path.join(pkg, TWIN), LOOPBACK);
    const edited = new Date(Date.now() - 60_000);
    const built = new Date(Date.now() - 30_000);
    utimesSync(path.join(pkg, CONFIG), edited, edited);
    utimesSync(path.join(pkg, TWIN), built, built);
  });

  afterEach(async function () {
    await stop();
    rmSync(pkg, { recursive: true, force: true });
  });

  it('start, check and about with the built config do not load tsx (nor does start load ws)', async function () {
    const check = await cli(['check']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, new RegExp(`^config ${path.join(pkg, CONFIG)}: syntax and fields ok$`, 'm'));
    assert.deepEqual(check.tsx, [], check.stderr);
    assert.doesNotMatch(check.stderr, /npm run build/);

    const about = await cli(['about']);
    assert.equal(about.code, 0, about.stderr);
    assert.deepEqual(about.tsx, []);

    const output = await start();
    assert.doesNotMatch(output, /npm run build/);
    assert.deepEqual(traced(), [], 'the server loaded neither tsx nor ws until ready');
    const info = await cli(['shell', 'server', 'info']);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^TypeScript compiled at run time: none$/m, info.stdout);
    // Neither the server (trace written up to its `ready` and its shell answer) nor the shell client.
    assert.deepEqual(traced(), []);
  });

  it('an edited, not rebuilt config is compiled at run time, and the edit is honoured', async function () {
    edit(path.join(pkg, CONFIG), [['localhost: {},', "localhost: {},\n    'edited.localhost': {},"]]);

    const check = await cli(['check']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^host edited\.localhost:$/m);
    assert.match(check.stderr, /prosody-like\.cfg\.ts changed after the last build: compiling it at run time \(tsx\); `npm run build` makes start leaner/);
    assert.notDeepEqual(check.tsx, []);

    const output = await start();
    assert.match(output, /`npm run build` makes start leaner/);
    const info = await cli(['shell', 'server', 'info']);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, new RegExp(`^TypeScript compiled at run time: ${path.join(pkg, CONFIG)}$`, 'm'), info.stdout);
    const modules = await cli(['shell', 'module', 'list', 'edited.localhost']);
    assert.equal(modules.code, 0, modules.stderr);
    assert.match(modules.stdout, /^edited\.localhost +roster /m, modules.stdout);
  });
});
