// Prosody (Debian package) under test: `prosody -F --config FILE` with a private config, data
// directory, pid file and log, on 127.0.0.1 only (no s2s, no HTTP, no components).
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Target } from '../lib/client.ts';
import { pkgVersion, run, spawnUntilXmpp, terminate, type CliCommand, type ServerDriver, type ServerSetup } from './types.ts';

const MODULES = ['roster', 'saslauth', 'tls', 'disco', 'ping', 'websocket', 'bosh', 'smacks'];

/** Prosody's internal storage escapes the host name in directory names (util.datamanager). */
function encode(s: string): string {
  return s.replace(/[^a-zA-Z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export class ProsodyServer implements ServerDriver {
  readonly name = 'prosody';
  private proc: ChildProcess | undefined;
  private setup!: ServerSetup;
  private configFile = '';
  private created = '';
  output = '';

  version(): string {
    return pkgVersion('prosody');
  }

  describe(): string {
    return `modules ${MODULES.join(', ')} (+ autoloaded c2s, presence, message, iq; s2s and offline disabled); internal_hashed auth, internal storage, epoll backend`;
  }

  notes(): string[] {
    return [`accounts: first with prosodyctl register, the rest copies of its .dat file (${this.created})`];
  }

  async prepare(s: ServerSetup): Promise<void> {
    this.setup = s;
    const d = s.dir;
    mkdirSync(path.join(d, 'data'), { recursive: true });
    mkdirSync(path.join(d, 'certs'), { recursive: true });
    this.configFile = path.join(d, 'prosody.cfg.lua');
    const q = (x: string) => JSON.stringify(x);
    writeFileSync(
      this.configFile,
      [
        'run_as_root = true',
        `pidfile = ${q(path.join(d, 'prosody.pid'))}`,
        `data_path = ${q(path.join(d, 'data'))}`,
        `certificates = ${q(path.join(d, 'certs'))}`,
        'interfaces = { "127.0.0.1" }',
        'local_interfaces = { "127.0.0.1" }',
        `c2s_ports = { ${s.port} }`,
        'c2s_direct_tls_ports = { }',
        's2s_ports = { }',
        'component_ports = { }',
        `http_ports = { ${s.httpPort} }`,
        'http_interfaces = { "127.0.0.1" }',
        'https_ports = { }',
        'network_backend = "epoll"',
        'network_settings = { tcp_backlog = 511 }',
        `log = { warn = ${q(path.join(d, 'prosody.log'))} }`,
        'authentication = "internal_hashed"',
        'storage = "internal"',
        'c2s_require_encryption = false',
        'allow_unencrypted_plain_auth = true',
        `modules_enabled = { ${MODULES.map(q).join(', ')} }`,
        'modules_disabled = { "s2s", "offline", "s2s_auth_certs" }',
        `ssl = { certificate = ${q(s.certFile)}, key = ${q(s.keyFile)} }`,
        `VirtualHost ${q(s.domain)}`,
        // Multi-User Chat for scenario 6 (default settings; no archive).
        `Component ${q(`conference.${s.domain}`)} "muc"`,
        '',
      ].join('\n'),
    );
    const t0 = performance.now();
    const [first, ...rest] = s.users;
    if (first) {
      await run('prosodyctl', ['--config', this.configFile, 'register', first, s.domain, s.password]);
      const dir = path.join(d, 'data', encode(s.domain), 'accounts');
      const src = path.join(dir, `${first}.dat`);
      readFileSync(src); // must exist: the layout is what this copy relies on
      for (const u of rest) copyFileSync(src, path.join(dir, `${u}.dat`));
    }
    this.created = `${s.users.length} accounts in ${Math.round(performance.now() - t0)} ms`;
    s.log(`prosody: ${this.created}`);
  }

  async start(): Promise<void> {
    this.proc = await spawnUntilXmpp('prosody', ['-F', '--config', this.configFile], this.setup.dir, this.target(), 60_000, this);
  }

  pid(): number {
    return this.proc!.pid!;
  }

  configLabel(): string {
    return 'prosody.cfg.lua';
  }

  cliCommands(): CliCommand[] {
    return [{ label: 'about', argv: ['prosodyctl', '--config', this.configFile, 'about'] }];
  }

  async stop(): Promise<void> {
    await terminate(this.proc);
    this.proc = undefined;
  }

  wsTarget(): Target {
    return { ...this.target(), wsUrl: `ws://127.0.0.1:${this.setup.httpPort}/xmpp-websocket` };
  }

  target(): Target {
    return { host: '127.0.0.1', port: this.setup.port, domain: this.setup.domain };
  }
}
