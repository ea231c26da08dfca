// Runs a real Prosody (Debian's 0.12) for federation tests: its own loopback address (s2s on 5269,
// c2s on 5222 of that address, so the fixed ports collide with nothing), a private config and data
// directory removed afterwards, its certificate (and the CA it trusts) from the test PKI, and
// name resolution through the test's loopback DNS server — Prosody resolves with libunbound,
// which ignores /etc/hosts and resolv.conf when told (`unbound = { resolvconf = false, forward }`).
// As root, Prosody runs as the prosody user (it refuses root), who owns the directory.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ProsodyServerOptions {
  host: string;
  /** Loopback address to listen on (e.g. 127.0.0.2). */
  address: string;
  /** The test DNS server's port on 127.0.0.1. */
  dnsPort: number;
  /** Certificate and key (PEM files) for the host. */
  certFile: string;
  keyFile: string;
  /** CA certificates Prosody trusts for s2s (PEM file). */
  caFile?: string;
  users: Record<string, string>;
  /** s2s_secure_auth (default false). */
  secureAuth?: boolean;
  /** Load mod_s2s_bidi (XEP-0288; Debian ships it), default off. */
  bidi?: boolean;
}

export interface ProsodyServer {
  readonly host: string;
  readonly address: string;
  readonly c2sPort: number;
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

const lua = (s: string) => JSON.stringify(s);

function chownTree(p: string, uid: number, gid: number): void {
  chownSync(p, uid, gid);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

export async function startProsody(opts: ProsodyServerOptions): Promise<ProsodyServer> {
  const root = mkdtempSync(path.join(tmpdir(), 'cadence-prosody-s2s-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  const data = path.join(root, 'data');
  mkdirSync(data);
  const file = (name: string, from: string) => {
    const to = path.join(root, name);
    copyFileSync(from, to);
    return to;
  };
  const cert = file('host.crt', opts.certFile);
  const key = file('host.key', opts.keyFile);
  const ca = opts.caFile ? file('ca.crt', opts.caFile) : undefined;
  const cfg = path.join(root, 'prosody.cfg.lua');
  const ssl = `{ certificate = ${lua(cert)}; key = ${lua(key)};${ca ? ` cafile = ${lua(ca)};` : ''} }`;
  writeFileSync(cfg, [
    `data_path = ${lua(data)}`,
    `pidfile = ${lua(path.join(root, 'prosody.pid'))}`,
    `certificates = ${lua(root)}`,
    'log = { { levels = { min = "debug" }, to = "console" } }',
    `interfaces = { ${lua(opts.address)} }`,
    'c2s_ports = { 5222 }',
    's2s_ports = { 5269 }',
    'c2s_direct_tls_ports = { }',
    's2s_direct_tls_ports = { }',
    `modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"${opts.bidi ? '; "s2s_bidi"' : ''} }`,
    `modules_disabled = { "http"; "bosh"; "websocket"; "admin_shell"; "admin_telnet"; "proxy65"${opts.bidi ? '' : '; "s2s_bidi"'} }`,
    `s2s_secure_auth = ${opts.secureAuth ? 'true' : 'false'}`,
    's2s_timeout = 20',
    `unbound = { resolvconf = false; hoststxt = false; forward = { "127.0.0.1@${opts.dnsPort}" } }`,
    `ssl = ${ssl}`,
    `VirtualHost ${lua(opts.host)}`,
    `  ssl = ${ssl}`,
    '',
  ].join('\n'));
  let asProsody: string[] = [];
  if (process.getuid?.() === 0) {
    const uid = Number((await run('id', ['-u', 'prosody'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'prosody'])).stdout.trim());
    chownTree(root, uid, gid);
    asProsody = ['runuser', '-u', 'prosody', '--'];
  }
  try {
    for (const [user, password] of Object.entries(opts.users)) {
      await run('prosodyctl', ['--config', cfg, 'register', user, opts.host, password]);
    }
  } catch (err) {
    cleanup();
    throw err;
  }
  const argv = [...asProsody, 'prosody', '--config', cfg, '-F'];
  const proc: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const server: ProsodyServer = {
    host: opts.host,
    address: opts.address,
    c2sPort: 5222,
    output: () => out,
    async waitForOutput(re, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m[0];
        if (proc.exitCode !== null) throw new Error(`prosody exited (${proc.exitCode}):\n${out}`);
        if (Date.now() > deadline) throw new Error(`prosody output did not match ${re} within ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
  try {
    await server.waitForOutput(/Activated service 'c2s' on/);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
