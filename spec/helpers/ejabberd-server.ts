// Runs a real ejabberd (Debian's 23.01) for federation tests: its own loopback address (s2s on
// 5269, c2s on 5222 of that address), a private config, spool and log directory removed afterwards,
// Erlang distribution without epmd on a free loopback port (ERL_DIST_PORT), its certificate and the
// CA it trusts from the test PKI, and name resolution through the test's loopback DNS server only:
// an ERL_INETRC (`inetrc` in the config directory) with that nameserver, no resolv.conf and no
// native lookups for its SRV queries. Its address lookups are libc's getaddrinfo (p1_xmpp's
// xmpp_stream_out), which would ask the system's resolver: tests give ejabberd SRV records whose
// target is an IP literal, which getaddrinfo parses without any query.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './server.ts';

const run = promisify(execFile);

export interface EjabberdServerOptions {
  host: string;
  address: string;
  dnsPort: number;
  certFile: string;
  keyFile: string;
  caFile?: string;
  users: Record<string, string>;
}

export interface EjabberdServer {
  readonly host: string;
  readonly address: string;
  readonly c2sPort: number;
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

function chownTree(p: string, uid: number, gid: number): void {
  chownSync(p, uid, gid);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

export async function startEjabberd(opts: EjabberdServerOptions): Promise<EjabberdServer> {
  const root = mkdtempSync(path.join(tmpdir(), 'cadence-ejabberd-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  const spool = path.join(root, 'spool');
  mkdirSync(spool);
  const pem = path.join(root, 'host.pem');
  writeFileSync(pem, readFileSync(opts.certFile, 'utf8') + readFileSync(opts.keyFile, 'utf8'));
  const ca = path.join(root, 'ca.pem');
  if (opts.caFile) writeFileSync(ca, readFileSync(opts.caFile, 'utf8'));
  const a = opts.address;
  writeFileSync(path.join(root, 'ejabberd.yml'), [
    'hosts:',
    `  - ${JSON.stringify(opts.host)}`,
    'loglevel: info',
    `certfiles: [${JSON.stringify(pem)}]`,
    ...(opts.caFile ? [`ca_file: ${JSON.stringify(ca)}`] : []),
    'listen:',
    `  - { port: 5269, ip: ${JSON.stringify(a)}, module: ejabberd_s2s_in }`,
    `  - { port: 5222, ip: ${JSON.stringify(a)}, module: ejabberd_c2s, starttls_required: true }`,
    's2s_use_starttls: required',
    's2s_dns_timeout: 2',
    's2s_dns_retries: 1',
    'auth_method: internal',
    'acl: {}',
    'access_rules: { s2s: { allow: all } }',
    'modules:',
    '  mod_roster: {}',
    '  mod_disco: {}',
    '  mod_ping: {}',
    '  mod_s2s_dialback: {}',
    '',
  ].join('\n'));
  const distPort = await freePort();
  const node = `cadencetest${process.pid}x${distPort}@localhost`;
  writeFileSync(path.join(root, 'ejabberdctl.cfg'), `ERL_DIST_PORT=${distPort}\nINET_DIST_INTERFACE=127.0.0.1\nERLANG_NODE=${node}\n`);
  writeFileSync(path.join(root, 'inetrc'), `{lookup, [file, dns]}.\n{resolv_conf, ""}.\n{nameserver, {127,0,0,1}, ${opts.dnsPort}}.\n`);
  if (process.getuid?.() === 0) {
    const uid = Number((await run('id', ['-u', 'ejabberd'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'ejabberd'])).stdout.trim());
    chownTree(root, uid, gid);
  }
  const ctl = ['--config-dir', root, '--logs', root, '--spool', spool];
  const proc: ChildProcess = spawn('ejabberdctl', [...ctl, 'foreground'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const server: EjabberdServer = {
    host: opts.host,
    address: a,
    c2sPort: 5222,
    output: () => out,
    async waitForOutput(re, timeoutMs = 30000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m[0];
        if (proc.exitCode !== null) throw new Error(`ejabberd exited (${proc.exitCode}):\n${out}`);
        if (Date.now() > deadline) throw new Error(`ejabberd output did not match ${re} within ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (proc.exitCode === null) {
        await run('ejabberdctl', [...ctl, 'stop']).catch(() => undefined);
        const timer = setTimeout(() => {
          try {
            process.kill(-proc.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 15_000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
  try {
    await server.waitForOutput(/Start accepting TCP connections at [0-9.]+:5269 for ejabberd_s2s_in/);
    for (const [user, password] of Object.entries(opts.users)) await run('ejabberdctl', [...ctl, 'register', user, opts.host, password]);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
