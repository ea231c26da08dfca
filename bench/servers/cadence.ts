// Cadence under test: bin/cadence.js (the build in dist/) with a private config (.ts, or the same as
// .mjs for the startup scenario) and SQLite data directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Target } from '../lib/client.ts';
import { freePort } from '../lib/proc.ts';
import { run, terminate, type CliCommand, type ServerDriver, type ServerSetup, type StartOptions } from './types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CADENCE = path.join(ROOT, 'bin', 'cadence.js');
/** The same feature set as the peers' configs: TLS, SASL, bind, roster, disco, ping (+ the autoloaded c2s, iq, presence, message). */
// CADENCE_BENCH_EXTRA_MODULES='mam,carbons' adds modules (to compare a hot path with them on and off).
/**
 * startVariants(): the config as JavaScript (no TypeScript compiled at run time), as TypeScript,
 * and what `npm start` runs: prosody-like.cfg.ts as built (every default module, the MUC and
 * upload components, STARTTLS, direct TLS, HTTP and HTTPS; host `localhost`, certificates it
 * generates at its first start) with only its data directory and ports moved.
 */
const DEFAULT_VARIANT = 'default config (prosody-like.cfg)';
const VARIANTS: Record<string, string> = { 'cadence.cfg.mjs': 'cadence.cfg.mjs', 'cadence.cfg.ts (tsx loaded)': 'cadence.cfg.ts', [DEFAULT_VARIANT]: 'default.cfg.mjs' };
const MODULES = ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'smacks', 'websocket', 'bosh', ...(process.env.CADENCE_BENCH_EXTRA_MODULES ?? '').split(',').filter(Boolean)];

export class CadenceServer implements ServerDriver {
  readonly name = 'cadence';
  private proc: ChildProcess | undefined;
  private setup!: ServerSetup;
  private configFile = '';
  private created = '';
  output = '';
  /** Milliseconds from spawn to the `ready` line of the last start (profile start-up to skip). */
  startupMs = 0;

  version(): string {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    return `${pkg.version} (node ${process.version})`;
  }

  describe(): string {
    const extra = process.env.CADENCE_BENCH_NODE_FLAGS ? `; node flags ${process.env.CADENCE_BENCH_NODE_FLAGS}` : '';
    return `modules ${MODULES.join(', ')}; storage sqlite; log level warn${extra} (start-up also with the default config: prosody-like.cfg's modules and components)`;
  }

  notes(): string[] {
    return ['limits off (rate, connections per address, sessions per account, send queue), as ejabberd runs with no shaper', `accounts: first through UserManager.create, the rest copies of its record (${this.created})`];
  }

  async prepare(s: ServerSetup): Promise<void> {
    this.setup = s;
    const modules = MODULES.filter((m) => existsSync(path.join(ROOT, 'modules', `mod_${m}.ts`)) || existsSync(path.join(ROOT, 'modules', `mod_${m}`, 'index.ts')));
    const config = {
      dataDir: path.join(s.dir, 'data'),
      storage: 'sqlite',
      c2sPorts: [s.port],
      c2sDirectTlsPorts: [],
      httpPorts: [s.httpPort],
      httpsPorts: [],
      interfaces: ['127.0.0.1'],
      c2sRequireEncryption: false,
      allowUnencryptedPlainAuth: true,
      c2s: { keepaliveInterval: 0 },
      modulesEnabled: modules,
      log: { level: 'warn' },
      // Like ejabberd's "shaper: none": the load generator opens thousands of connections from
      // one address and sends as fast as it can; the defaults (doc/configuration.md) would shape it.
      limits: { rate: 0, unauthenticatedRate: 0, connectionsPerAddress: 0, sessionsPerAccount: 0, sendQueue: 0 },
      virtualHosts: { [s.domain]: {} },
      // Multi-User Chat for scenario 6, like the peers' (no room archive: theirs have none).
      components: { [`conference.${s.domain}`]: { module: 'muc', muc: { archive: false } } },
    };
    // The shared bench certificate goes where Cadence keeps its per-host certificates, so it is
    // used instead of a generated one (a top-level `tls: { certificate, key }` is currently
    // rejected at start-up as unknown options of mod_tls, see the notes in RESULTS.md).
    mkdirSync(path.join(config.dataDir, 'certs'), { recursive: true });
    copyFileSync(s.certFile, path.join(config.dataDir, 'certs', `${s.domain}.crt`));
    copyFileSync(s.keyFile, path.join(config.dataDir, 'certs', `${s.domain}.key`));
    this.configFile = path.join(s.dir, 'cadence.cfg.ts');
    writeFileSync(this.configFile, `export default ${JSON.stringify(config, null, 2)};\n`);
    writeFileSync(path.join(s.dir, 'cadence.cfg.mjs'), `export default ${JSON.stringify(config, null, 2)};\n`);
    const out = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'servers', 'cadence-accounts.ts'), this.configFile, s.domain, s.password], {
      input: s.users.join('\n'),
      cwd: ROOT,
      timeoutMs: 600_000,
    });
    this.created = out.trim();
    s.log(`cadence: ${this.created}`);
    const moved = { dataDir: path.join(s.dir, 'default-data'), c2sPorts: [await freePort()], c2sDirectTlsPorts: [await freePort()], httpPorts: [await freePort()], httpsPorts: [await freePort()], interfaces: ['127.0.0.1'] };
    writeFileSync(path.join(s.dir, VARIANTS[DEFAULT_VARIANT]!), `import base from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'prosody-like.cfg.js')).href)};\nexport default { ...base, ...${JSON.stringify(moved)} };\n`);
  }

  async start(opts: StartOptions = {}): Promise<void> {
    // CADENCE_BENCH_NODE_FLAGS: extra node flags for experiments (e.g. --max-semi-space-size=1).
    const extra = (process.env.CADENCE_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    // As bin/cadence.js's shebang and `npm start` run it.
    const config = opts.variant ? path.join(this.setup.dir, VARIANTS[opts.variant]!) : this.configFile;
    const args = ['--max-semi-space-size=4', ...extra, ...(opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : []), CADENCE, '-c', config, 'start'];
    const t0 = performance.now();
    const proc = spawn(process.execPath, args, { cwd: this.setup.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cadence not ready in 60 s:\n${this.output}`)), 60_000);
      proc.stdout!.on('data', (c: Buffer) => {
        this.output += c.toString();
        if (/^ready /m.test(this.output)) {
          this.startupMs = performance.now() - t0;
          clearTimeout(timer);
          resolve();
        }
      });
      proc.stderr!.on('data', (c: Buffer) => {
        this.output += c.toString();
        if (this.output.length > 100_000) this.output = this.output.slice(-50_000);
      });
      proc.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`cadence exited (${code}) before ready: ${this.output.trim()}`));
      });
    });
  }

  pid(): number {
    return this.proc!.pid!;
  }

  startVariants(): string[] {
    return Object.keys(VARIANTS);
  }

  lastStartMs(): number {
    return this.startupMs;
  }

  cliCommands(): CliCommand[] {
    const js = path.join(this.setup.dir, 'cadence.cfg.mjs');
    return [
      { label: 'about', argv: [process.execPath, CADENCE, '-c', js, 'about'] },
      { label: 'user list', argv: [process.execPath, CADENCE, '-c', js, 'user', 'list'] },
      { label: 'user list (.ts config)', argv: [process.execPath, CADENCE, '-c', this.configFile, 'user', 'list'] },
    ];
  }

  async stop(): Promise<void> {
    await terminate(this.proc, 20_000);
    this.proc = undefined;
  }

  target(): Target {
    return { host: '127.0.0.1', port: this.setup.port, domain: this.setup.domain };
  }

  wsTarget(): Target {
    return { ...this.target(), wsUrl: `ws://127.0.0.1:${this.setup.httpPort}/xmpp-websocket` };
  }
}

