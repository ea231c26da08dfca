// Starts a real Cadence server process on 127.0.0.1 with ephemeral ports and a private data
// directory, creates accounts through the CLI (the operator's path), and cleans up after itself.
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../core/server.ts';
import { tryRunningServer } from '../../core/cli/shell-client.ts';
import { assertBuilt } from './build.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CADENCE = path.join(ROOT, 'bin', 'cadence.js');
/** As in bin/cadence.js's shebang and `npm start`. */
export const NODE_FLAGS = ['--max-semi-space-size=4'];

export interface ServerOptions {
  /** Extra config fields (merged over the test defaults). */
  config?: Record<string, unknown>;
  /** Accounts to create before start: { 'alice': 'password' } on the first host. */
  users?: Record<string, string>;
  /** Reuse a data directory (durability tests). */
  dir?: string;
  host?: string;
  /** Extra environment of the server process (e.g. DEBUG namespaces). */
  env?: Record<string, string>;
}

export class TestServer {
  proc: ChildProcess | undefined;
  c2sPort = 0;
  directTlsPort = 0;
  /** Port of the listener named 'component' (mod_component, XEP-0114), when there is one. */
  componentPort = 0;
  /** Ports of the HTTP and HTTPS listeners (doc/web.md), when a module serves HTTP. */
  httpPort = 0;
  httpsPort = 0;
  addresses: string[] = [];
  output = '';
  private exited: Promise<number | null> | undefined;

  constructor(readonly dir: string, readonly configFile: string, readonly host: string, readonly env: Record<string, string> = {}) {}

  async start(): Promise<void> {
    assertBuilt(ROOT);
    const proc = spawn(process.execPath, [...NODE_FLAGS, CADENCE, '-c', this.configFile, 'start'], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: undefined, ...this.env },
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString();
        const m = /^ready (.*)$/m.exec(this.output);
        if (m) {
          this.addresses = m[1]!.split(' ');
          for (const a of this.addresses) {
            const [name, addr] = a.split('=') as [string, string];
            const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
            if (name === 'c2s') this.c2sPort = port;
            if (name === 'c2s_direct_tls') this.directTlsPort = port;
            if (name === 'component') this.componentPort = port;
            if (name === 'http' && !this.httpPort) this.httpPort = port;
            if (name === 'https' && !this.httpsPort) this.httpsPort = port;
          }
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (c: Buffer) => {
        this.output += c.toString();
      });
      proc.once('exit', (code) => reject(new Error(`server exited (${code}) before ready:\n${this.output}`)));
    });
    await ready;
  }

  /** Wait until the server's output (after `from`) matches `re`. */
  async waitForOutput(re: RegExp, timeoutMs = 5000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.output.slice(from));
      if (m) return m[0];
      if (Date.now() > deadline) throw new Error(`server output did not match ${re} within ${timeoutMs} ms:\n${this.output.slice(from)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGTERM and wait for exit; returns the exit code. */
  async stop(): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode ?? null;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), 10_000);
    const code = await this.exited!;
    clearTimeout(timer);
    return code;
  }

  async restart(): Promise<void> {
    await this.stop();
    this.output = '';
    await this.start();
  }

  /** Run a CLI command against this server's config; resolves with { code, stdout, stderr }. */
  cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCli(['-c', this.configFile, ...args], stdin, this.dir);
  }

  async adduser(user: string, password: string): Promise<void> {
    const r = await this.cli(['adduser', `${user}@${this.host}`], `${password}\n`);
    if (r.code !== 0) throw new Error(`adduser ${user} failed: ${r.stderr}`);
  }

  /** Stop and remove the data directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP port free on 127.0.0.1 now (for a peer that must know it before the server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function runCli(args: string[], stdin?: string, cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  assertBuilt(ROOT);
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CADENCE, ...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin!.end(stdin ?? '');
  });
}

/** Write a config file for a test server (plain object default export, as an operator may). */
export function writeConfig(dir: string, host: string, extra: Record<string, unknown> = {}): string {
  const config = {
    dataDir: path.join(dir, 'data'),
    c2sPorts: [0],
    c2sDirectTlsPorts: [0],
    interfaces: ['127.0.0.1'],
    httpPorts: [0],
    httpsPorts: [0],
    virtualHosts: { [host]: {} },
    ...extra,
    // No whitespace keepalives unless a test asks for them (its other c2s options are kept).
    c2s: { keepaliveInterval: 0, ...(extra.c2s as Record<string, unknown> | undefined) },
  };
  // JavaScript, not TypeScript: every CLI call and start with a `.ts` config pays tsx (~0.5 s of CPU).
  const file = path.join(dir, 'test.cfg.mjs');
  writeFileSync(file, `export default ${JSON.stringify(config, null, 2)};\n`);
  return file;
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const host = opts.host ?? 'localhost';
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'cadence-test-'));
  const configFile = writeConfig(dir, host, opts.config);
  const server = new TestServer(dir, configFile, host, opts.env);
  const users = Object.entries(opts.users ?? {});
  // Accounts are made through the running server's admin shell when it has one (one in-process
  // request each), not one CLI process each: a spec with fifteen accounts spent most of its
  // before-hook starting CLI processes. Without admin_shell, the CLI does it before start: the
  // first account alone (that process creates and migrates the database), the others two at a
  // time — all at once they contended for the new database, one by one sixteen of them outlasted
  // a before-hook's time limit in CI.
  const viaShell = !Array.isArray((opts.config ?? {}).modulesEnabled) || ((opts.config ?? {}).modulesEnabled as string[]).includes('admin_shell');
  if (!viaShell && users.length) {
    const [first, ...rest] = users;
    await server.adduser(...first!);
    const next = () => rest.shift();
    const worker = async () => {
      for (let u = next(); u; u = next()) await server.adduser(...u);
    };
    await Promise.all([worker(), worker()]);
  }
  await server.start();
  if (viaShell && users.length) {
    const config = await loadConfig(configFile);
    for (const [u, p] of users) {
      const r = await tryRunningServer(config, ['user', 'create', `${u}@${host}`, p]);
      if (!r?.ok) throw new Error(`creating ${u}@${host} through the admin shell failed: ${r?.text ?? 'no admin socket'}`);
    }
  }
  return server;
}
