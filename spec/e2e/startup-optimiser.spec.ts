// `cadence start` keeps V8's optimising compiler (Turbofan) off until `ready` — optimising
// code that runs once at start-up cost the idle server ~10 MiB — and on from then, for the
// clients' traffic — and collects the start-up garbage once idle. Shown with V8's own traces
// (--trace-opt, --trace-gc: written to stdout like `ready`).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertBuilt } from '../helpers/build.ts';
import { login, xml } from '../helpers/client.ts';
import { CADENCE, NODE_FLAGS, ROOT, TestServer, writeConfig } from '../helpers/server.ts';

const OPTIMISED = /^\[completed optimizing /m;

describe('e2e: start-up (no optimising compiler until ready, its garbage collected once idle)', function () {
  let dir: string;
  let proc: ChildProcess | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-opt-'));
  });
  afterEach(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((resolve) => proc!.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    }
    proc = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** `cadence start` with extra node flags; `until` waits for a line pattern in its stdout (V8 traces go there too). */
  function startTraced(server: TestServer, flags: string[]) {
    const child = spawn(process.execPath, [...NODE_FLAGS, ...flags, CADENCE, '-c', server.configFile, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    proc = child;
    const out = { stdout: '', stderr: '' };
    child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()));
    let onOutput = () => {};
    child.stdout.on('data', (c: Buffer) => {
      out.stdout += c.toString();
      onOutput();
    });
    const until = (re: RegExp, from = 0) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(out.stdout.slice(from))) resolve();
        };
        onOutput = check;
        child.once('exit', (code) => reject(new Error(`server exited (${code}):\n${out.stdout}\n${out.stderr}`)));
        check();
      });
    return { child, out, until };
  }

  it('optimises nothing before `ready` and optimises hot code after it', async function () {
    assertBuilt(ROOT);
    const server = new TestServer(dir, writeConfig(dir, 'localhost', { modulesEnabled: ['tls', 'saslauth', 'bind', 'ping', 'admin_shell'] }), 'localhost');
    await server.adduser('alice', 'pw-alice');
    const { out, until } = startTraced(server, ['--trace-opt']);
    await until(/^ready .*$/m);
    const ready = /^ready (.*)$/m.exec(out.stdout)!;
    const before = out.stdout.slice(0, ready.index);
    assert.doesNotMatch(before, OPTIMISED, 'optimised during start-up');
    server.c2sPort = Number(/\bc2s=[^ ]*:(\d+)/.exec(ready[1]!)![1]);

    // Client traffic makes the stanza path hot: Turbofan is on again.
    const c = await login(server, 'alice', 'pw-alice');
    const optimised = until(OPTIMISED, ready.index);
    let done = false;
    void optimised.then(() => (done = true), () => (done = true));
    for (let round = 0; round < 200 && !done; round++) {
      await Promise.all(Array.from({ length: 50 }, () => c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 30_000)));
    }
    await optimised;
    await c.stop();
  });

  // A second after `ready`, on a server nobody uses yet, one memory-reducing GC gives back what
  // start-up left (the young generation at its maximum, garbage in the old one): idle RSS, bench
  // scenario `startup`. V8's own memory reducer would only act some 8 s or more later.
  it('collects the start-up garbage once it is idle, and still stops on SIGTERM', async function () {
    assertBuilt(ROOT);
    const server = new TestServer(dir, writeConfig(dir, 'localhost', { modulesEnabled: ['tls', 'saslauth', 'bind', 'ping'] }), 'localhost');
    const { child, out, until } = startTraced(server, ['--trace-gc']);
    await until(/^ready .*$/m);
    const readyAt = Date.now();
    const from = out.stdout.indexOf('\nready ');
    await until(/Mark-Compact \(reduce\)/, from);
    assert.ok(Date.now() - readyAt < 6000, `the memory-reducing GC came ${Date.now() - readyAt} ms after ready`);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, `exit code after SIGTERM:\n${out.stderr}`);
  });
});
