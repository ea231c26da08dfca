// What the bench needs from a server under test: a private config and data directory on
// 127.0.0.1, bulk accounts, start/stop, and the pid whose CPU and RSS are measured.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { Target } from '../lib/client.ts';
import { sleep } from '../lib/proc.ts';

export interface ServerSetup {
  /** Private directory (config, data, logs), created by the caller. */
  dir: string;
  port: number;
  /** HTTP port for XMPP over WebSocket at /xmpp-websocket (and BOSH where served). */
  httpPort: number;
  domain: string;
  certFile: string;
  keyFile: string;
  /** Accounts to create, all with `password`. */
  users: string[];
  password: string;
  log: (line: string) => void;
}

export interface StartOptions {
  /** Cadence only: directory for `node --cpu-prof` output. */
  cpuProfDir?: string;
  /** One of startVariants() (the startup scenario), else the driver's default. */
  variant?: string;
}

/** An operator command timed by the startup scenario, run with the server idle. */
export interface CliCommand {
  label: string;
  argv: string[];
}

export interface ServerDriver {
  readonly name: string;
  /** Package/program version, for the report. */
  version(): string;
  /** Write the config and create the accounts (the server is not running). */
  prepare(setup: ServerSetup): Promise<void>;
  start(opts?: StartOptions): Promise<void>;
  /** The process to measure (CPU, RSS). */
  pid(): number;
  stop(): Promise<void>;
  /** The target with `wsUrl` set: XMPP over WebSocket (RFC 7395) on the HTTP port. */
  wsTarget(): Target;
  target(): Target;
  /** How accounts were created, config remarks, etc. (for RESULTS.md). */
  notes(): string[];
  /** The modules / features loaded, for the report. */
  describe(): string;
  /** Ways to start it the startup scenario compares (e.g. config file formats). */
  startVariants?(): string[];
  /** Its config file, for the startup report. */
  configLabel?(): string;
  /** Milliseconds from spawn to ready of the last start, when the driver sees it exactly. */
  lastStartMs?(): number;
  /** Operator commands to time (startup scenario). */
  cliCommands?(): CliCommand[];
}

/**
 * Start a peer server process, keep the tail of its output, and wait until it serves XMPP; on
 * failure the error carries that output.
 */
export async function spawnUntilXmpp(
  command: string,
  args: string[],
  cwd: string,
  target: Target,
  timeoutMs: number,
  sink: { output: string },
): Promise<ChildProcess> {
  const proc = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  sink.output = '';
  const onOut = (c: Buffer) => {
    sink.output = (sink.output + c.toString()).slice(-20_000);
  };
  proc.stdout!.on('data', onOut);
  proc.stderr!.on('data', onOut);
  try {
    await waitForXmpp(target, timeoutMs, () => proc.exitCode === null);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${sink.output}`, { cause: err });
  }
  return proc;
}

/** Resolves when the port accepts a connection and answers a stream header with features. */
export async function waitForXmpp(t: Target, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('server process exited during start-up');
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: t.host, port: t.port });
      let buf = '';
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(2000, () => done(false));
      s.on('error', (e) => {
        last = e.message;
        done(false);
      });
      s.on('connect', () =>
        s.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${t.domain}' version='1.0'>`),
      );
      s.on('data', (c) => {
        buf += c.toString();
        if (buf.includes('stream:features')) done(true);
        else if (buf.includes('stream:error')) {
          last = buf;
          done(false);
        }
      });
    });
    if (ok) return;
    await sleep(250);
  }
  throw new Error(`server at ${t.host}:${t.port} not ready in ${timeoutMs} ms (${last})`);
}

/** Run a command to completion; rejects on a non-zero exit, with its output. */
export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`));
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** SIGTERM a process we started, SIGKILL after `graceMs`; resolves when it has exited. */
export async function terminate(proc: ChildProcess | undefined, graceMs = 15_000, pid?: number): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    process.kill(pid ?? proc.pid!, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const t = setTimeout(() => {
    try {
      if (pid) process.kill(pid, 'SIGKILL');
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await exited;
  clearTimeout(t);
}

export function pkgVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg]).toString().trim();
  } catch {
    return 'unknown';
  }
}
