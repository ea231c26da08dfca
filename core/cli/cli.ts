// The `cadence` command. Operator contract (keep stable):
//   cadence [-c|--config PATH] <command> [args]
//   start | adduser JID | passwd JID | deluser JID [--yes] | user list [HOST] | check [--options]
//   | about | shell [COMMAND…] | cert import DIR… | backup FILE | restore FILE
//   | import prosody DIR | import xep0227 FILE | export xep0227 FILE [HOST…]
// Passwords come from a prompt, or from stdin when stdin is not a TTY — never from arguments.
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import { CoreError } from '../util/errors.ts';
import { coreFeatures } from '../features.ts';
import { VERSION, ROOT_DIR, installedLibraries } from '../package.ts';
import type { Config } from '../config.ts';
import type { AnyModuleDefinition } from '../moduleapi.ts';

// The server, config, storage and modules are imported by the commands that need them, so
// `help`, `version` and `about` answer without loading them (and `user list` or `shell` without the server).
const loadConfig = async (file: string): Promise<Config> => (await import('../config.ts')).loadConfig(file);

const USAGE = `Usage: cadence [-c|--config PATH] <command> [args]

Commands:
  start              run the server (logs "ready <addresses>" when it accepts connections)
  adduser JID        create an account (password from prompt, or stdin when not a TTY)
  passwd JID         change an account's password
  deluser JID [--yes]
                     delete an account and all its data (asks on a terminal; --yes for scripts)
  user list [HOST]   the accounts, of every virtual host or of one
  check [--options]  validate the config; show which modules would load, which are filtered
                     and why; with --options, every module's declared options
  about              version, paths and core features
  shell [COMMAND…]   admin shell of the running server (needs mod_admin_shell); interactive
                     without a command, e.g. 'shell module reload NAME [HOST]'
  cert import DIR…   copy each host's certificate and key found in DIR (Let's Encrypt's
                     live/, *.crt + *.key, …) to <dataDir>/certs; a running server reloads
  backup FILE        a consistent copy of the SQLite database, also while the server runs
  restore FILE       replace the database with a backup (the server must be stopped)
  import prosody DIR [--replace] [--dry-run]
                     accounts (with their passwords), rosters, vCards, offline messages,
                     private XML and blocklists from a Prosody data directory
  import xep0227 FILE [--replace] [--dry-run]
  export xep0227 FILE [HOST…]
                     XEP-0227 (portable import/export) files

The default config is ./prosody-like.cfg.ts.`;

interface Args {
  config: string;
  command: string | undefined;
  rest: string[];
}

function parseArgs(argv: string[]): Args | string {
  let config = 'prosody-like.cfg.ts';
  const rest: string[] = [];
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (command === undefined && (a === '-c' || a === '--config')) {
      const v = argv[++i];
      if (!v) return `${a} needs a path`;
      config = v;
    } else if (command === undefined && a.startsWith('--config=')) {
      config = a.slice('--config='.length);
    } else if (command === undefined && (a === '-h' || a === '--help')) {
      command = 'help';
    } else if (command === undefined && (a === '-v' || a === '--version')) {
      command = 'version';
    } else if (command === undefined) {
      command = a;
    } else {
      rest.push(a);
    }
  }
  return { config: path.resolve(config), command, rest };
}

function fail(message: string): number {
  process.stderr.write(`cadence: ${message}\n`);
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') return fail(`${args}\n${USAGE}`);
  try {
    switch (args.command) {
      case undefined:
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return args.command ? 0 : 1;
      case 'version':
        process.stdout.write(`cadence ${VERSION}\n`);
        return 0;
      case 'start':
        return await start(args);
      case 'adduser':
      case 'passwd':
      case 'deluser':
        return await userCommand(args);
      case 'check':
        return await check(args);
      case 'about':
        return about(args);
      case 'shell': {
        const { runShell } = await import('./shell-client.ts');
        return await runShell(args.config, args.rest);
      }
      case 'user':
        if (args.rest[0] !== 'list') return fail(`unknown command 'user ${args.rest[0] ?? ''}' (user list [HOST])`);
        return await (await import('./operator.ts')).userList(await loadConfig(args.config), args.rest[1]);
      case 'backup':
        return await (await import('./operator.ts')).backup(await loadConfig(args.config), args.rest[0]);
      case 'restore':
        return await (await import('./operator.ts')).restore(await loadConfig(args.config), args.rest[0]);
      case 'cert':
        if (args.rest[0] !== 'import') return fail(`unknown command 'cert ${args.rest[0] ?? ''}' (cert import DIR…)`);
        return await (await import('./operator.ts')).certImport(await loadConfig(args.config), args.rest.slice(1));
      case 'import':
        return await (await import('./operator.ts')).importData(await loadConfig(args.config), args.rest);
      case 'export':
        return await (await import('./operator.ts')).exportData(await loadConfig(args.config), args.rest);
      default:
        return fail(`unknown command '${args.command}'\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof CoreError) return fail(err.message);
    return fail(`${(err as Error).stack ?? String(err)}`);
  }
}

/**
 * V8's optimising compiler (Turbofan) off while the server starts, on again at `ready`, before
 * any client traffic: start-up code runs once, and optimising it left ~10 MiB in the idle server
 * (the compiler's memory, optimised code, the compiler's pages of the node binary; idle RSS 74 →
 * 64 MiB, bench/RESULTS.md). Left alone when the operator runs node without Turbofan.
 * Returns what turns it back on.
 */
function startWithoutOptimiser(): () => void {
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (/(^|\s)--(no-opt|no-turbofan|jitless|lite-mode|max-opt=)/.test(flags)) return () => undefined;
  v8.setFlagsFromString('--no-opt');
  return () => v8.setFlagsFromString('--opt');
}

/**
 * One memory-reducing full GC once the server has started and is idle, as V8's memory reducer
 * would do after some seconds of idleness: start-up grows the young generation to its maximum
 * (2 × 4 MiB semi-spaces, all resident) and leaves garbage in the old one; this shrinks both
 * (bench/RESULTS.md). Asked for through the inspector protocol's `HeapProfiler.collectGarbage`
 * (V8's low-memory notification) on an in-process session, which opens no port. Not through
 * `v8.queryObjects()`, which does the same GC but then walks the heap with a hash set of every
 * object: the C library kept those ~4 MiB it freed. A node built without the inspector skips it.
 */
function collectStartupGarbage(): void {
  let session: import('node:inspector').Session;
  try {
    session = new (process.getBuiltinModule('node:inspector').Session)();
    session.connect();
  } catch {
    return;
  }
  // Disconnecting inside the callback deadlocks the session: after it, on the next turn.
  session.post('HeapProfiler.collectGarbage', () => setImmediate(() => session.disconnect()));
}

async function start(args: Args): Promise<number> {
  const optimiseFromNowOn = startWithoutOptimiser();
  const { Server } = await import('../server.ts');
  const { configureLogging, reopenLogFile } = await import('../util/log.ts');
  let config: Config;
  let server: InstanceType<typeof Server>;
  const logging = (c: Config) => configureLogging(c.raw.log && { ...c.raw.log, file: c.raw.log.file && path.resolve(c.baseDir, c.raw.log.file) });
  try {
    config = await loadConfig(args.config);
    logging(config);
    server = new Server(config);
  } catch (err) {
    return fail(`cannot start: ${(err as Error).message}`);
  }
  let addresses: string[];
  try {
    addresses = await server.start();
  } catch (err) {
    await server.stop('start-up failed').catch(() => undefined);
    return fail(`cannot start: ${(err as Error).message}`);
  }
  optimiseFromNowOn();
  process.stdout.write(`ready ${addresses.join(' ')}\n`);
  // Only on a server still idle then, as V8's memory reducer only acts on an idle one: clients
  // arriving at once would pay for the young generation growing back (more scavenges).
  setTimeout(() => {
    if (server.sessions.all.size === 0) collectStartupGarbage();
  }, 1000).unref();
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      server.stop(`received ${signal}`).then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`cadence: error during shutdown: ${String(err)}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      // First the log file (logrotate moved it), then the config — whose `log` may have changed.
      try {
        reopenLogFile();
      } catch (err) {
        process.stderr.write(`cadence: cannot reopen the log file: ${(err as Error).message}\n`);
      }
      server.reloadConfig().then(
        () => {
          try {
            logging(server.config);
          } catch (err) {
            process.stderr.write(`cadence: log settings not applied: ${(err as Error).message}\n`);
          }
        },
        (err: unknown) => process.stderr.write(`cadence: config reload failed: ${(err as Error).message}\n`),
      );
    });
    server.events.on('server-stop-requested', (e: { reason?: string }) => {
      stop(e.reason ?? 'stop request');
      return undefined;
    });
  });
}

async function userCommand(args: Args): Promise<number> {
  const jid = args.rest.find((a) => !a.startsWith('--'));
  if (!jid) return fail(`${args.command} needs a JID (user@host)`);
  const { prep, split } = await import('../util/jid.ts');
  const p = prep(jid);
  const parts = p ? split(p) : undefined;
  if (!parts?.node || !parts.host || parts.resource) return fail(`'${jid}' is not a valid user JID (user@host)`);
  const { node, host } = parts;
  const config = await loadConfig(args.config);
  if (!config.hosts.some((h) => h.name === host && h.kind === 'virtualhost')) {
    return fail(`host '${host}' is not a virtual host of ${args.config}`);
  }
  if (args.command === 'deluser' && !args.rest.includes('--yes')) {
    // Deleting an account cannot be undone: a person confirms it, a script says so with --yes.
    if (!process.stdin.isTTY) return fail(`deluser: not confirmed: add --yes to delete ${node}@${host} from a script`);
    const answer = await ask(`Delete ${node}@${host} and all its data (roster, vCard, offline messages, …)? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) return fail('deluser: not confirmed: nothing deleted');
  }
  const password = args.command === 'deluser' ? '' : await readPassword();
  if (args.command !== 'deluser' && !password) return fail('empty password');

  // A running server does it itself (its sessions and modules see the change)...
  const { tryRunningServer } = await import('./shell-client.ts');
  const verb = { adduser: 'create', passwd: 'password', deluser: 'delete' }[args.command as 'adduser' | 'passwd' | 'deluser'];
  const remote = await tryRunningServer(config, ['user', verb, `${node}@${host}`, ...(password ? [password] : [])]);
  if (remote) {
    if (!remote.ok) return fail(remote.text);
    process.stdout.write(`${remote.text}\n`);
    return 0;
  }
  // ...otherwise the host modules run offline (no listeners), so user-deleted reaches them all.
  const [{ setLogLevel }, { Server }] = await Promise.all([import('../util/log.ts'), import('../server.ts')]);
  setLogLevel('warn');
  const server = new Server(config);
  await server.start({ offline: true });
  try {
    if (args.command === 'deluser') {
      await server.users.delete(host, node);
      process.stdout.write(`deleted ${node}@${host}\n`);
    } else if (args.command === 'adduser') {
      await server.users.create(host, node, password);
      process.stdout.write(`created ${node}@${host}\n`);
    } else {
      await server.users.setPassword(host, node, password);
      process.stdout.write(`changed the password of ${node}@${host}\n`);
    }
    return 0;
  } finally {
    await server.stop('account command done');
  }
}

/** From stdin's first line when piped; else prompted twice without echo. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  const first = await prompt('Password: ');
  const second = await prompt('Again: ');
  if (first !== second) throw new CoreError('CONFIG_INVALID', 'the passwords differ');
  return first;
}

/** A question answered on the terminal, with echo. */
function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
  });
}

function prompt(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stdout.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stdout.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

async function check(args: Args): Promise<number> {
  const config = await loadConfig(args.config);
  const [{ Server }, { DEFAULTS }, { importDefault }] = await Promise.all([import('../server.ts'), import('../config.ts'), import('../loader.ts')]);
  const server = new Server(config, { storage: 'memory' });
  const showOptions = args.rest.includes('--options');
  let problems = 0;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`config ${args.config}: syntax and fields ok`);
  const seen = new Set<string>();
  for (const host of config.hosts) {
    out(`\n${host.kind === 'component' ? 'component' : 'host'} ${host.name}:`);
    for (const name of server.modulesFor(host.name)) {
      const { found, filtered } = server.modules.resolve(name);
      for (const f of filtered) out(`  - ${name}: filtered: ${f.file} ${f.reason}`);
      if (!found) {
        if (!filtered.length) {
          out(`  ! ${name}: not found on ${server.modules.paths().join(', ')}`);
          problems++;
        }
        continue;
      }
      let def: AnyModuleDefinition;
      try {
        def = (await importDefault(found.file)) as AnyModuleDefinition;
      } catch (err) {
        out(`  ! ${name}: ${found.file} fails to import: ${(err as Error).message}`);
        problems++;
        continue;
      }
      const scope = def.scope === 'global' ? ' (global)' : '';
      const optionProblems = server.modules.checkOptions(def.scope === 'global' ? '*' : host.name, name, def);
      out(`  + ${name}${scope}: ${found.file}`);
      for (const p of optionProblems) {
        out(`  ! ${p}`);
        problems++;
      }
      if (showOptions && !seen.has(name)) {
        seen.add(name);
        for (const [opt, spec] of Object.entries(def.options ?? {})) {
          const allowed = spec.allowed ? ` (one of ${spec.allowed.join(', ')})` : '';
          out(`      ${opt}: ${spec.type} = ${JSON.stringify(spec.default)}${allowed} — ${spec.description}`);
        }
      }
    }
  }
  problems += checkPorts(config, DEFAULTS, out);
  problems += await checkCerts(config, out);
  problems += checkAcmeSetup(config, DEFAULTS, out);
  // Federation: own SRV records and certificate coverage, when the s2s module is enabled.
  if (config.hosts.some((h) => server.modulesFor(h.name).includes('s2s'))) {
    out('\nserver-to-server:');
    const { checkS2s } = await import('./s2s-check.ts');
    const s2s = await checkS2s(config, config.hosts.map((h) => h.name));
    for (const line of s2s.lines) out(line);
    problems += s2s.problems;
  }
  out(problems ? `\n${problems} problem(s) found` : '\nall good');
  return problems ? 1 : 0;
}

/** Listener ports: none for clients, one port in two lists. */
function checkPorts(config: Config, DEFAULTS: typeof import('../config.ts').DEFAULTS, out: (s: string) => void): number {
  let problems = 0;
  out('\nports:');
  const lists = ['c2sPorts', 'c2sDirectTlsPorts', 'componentPorts', 'httpPorts'] as const;
  const seen = new Map<number, string>();
  for (const key of lists) {
    const ports = config.get<number[]>(undefined, key) ?? (key in DEFAULTS ? (DEFAULTS[key as keyof typeof DEFAULTS] as number[]) : []);
    for (const port of ports) {
      if (port === 0) continue; // an ephemeral port each time
      const other = seen.get(port);
      if (other) {
        out(`  ! port ${port} is listed twice (${other} and ${key}): the second listener cannot bind`);
        problems++;
      } else {
        seen.set(port, key);
      }
    }
  }
  const c2s = config.get<number[]>(undefined, 'c2sPorts') ?? DEFAULTS.c2sPorts;
  const direct = config.get<number[]>(undefined, 'c2sDirectTlsPorts') ?? DEFAULTS.c2sDirectTlsPorts;
  if (!c2s.length && !direct.length) {
    out('  ! c2sPorts and c2sDirectTlsPorts are both empty: no client can connect');
    problems++;
  } else if (!c2s.length) {
    out('  - c2sPorts is empty: clients connect with direct TLS only (XEP-0368), most need an SRV record for it');
  }
  const external = config.hosts.some((h) => h.kind === 'component' && (h.options as { secret?: string }).secret !== undefined);
  const components = config.get<number[]>(undefined, 'componentPorts') ?? DEFAULTS.componentPorts;
  if (external && !components.length) {
    out('  ! componentPorts is empty but external components are configured: they cannot connect');
    problems++;
  }
  if (!problems) out(`  + ${[...seen].map(([p, k]) => `${k} ${p}`).join(', ') || 'ephemeral ports only'}`);
  return problems;
}

/** Each host's certificate: present, valid, not expiring soon, covering the host's name. */
async function checkCerts(config: Config, out: (s: string) => void): Promise<number> {
  const { certificateTargets, checkCertificates } = await import('../net/cert-check.ts');
  let problems = 0;
  out('\ncertificates:');
  for (const r of await checkCertificates(certificateTargets(config))) {
    const until = r.notAfter ? `, valid until ${r.notAfter.toISOString().slice(0, 10)}` : '';
    const names = r.matchedBy ? Object.entries(r.matchedBy).map(([svc, m]) => `${svc} by ${String(m)}`).join(', ') : '';
    out(`  ${r.ok ? '+' : '!'} ${r.domain}: ${r.certFile}${until}${names ? ` (${names})` : ''}`);
    for (const f of r.findings) {
      out(`      ${f.severity}: ${f.message}`);
      if (f.severity === 'error') problems++;
    }
  }
  return problems;
}

/** ACME: the challenge's listener is configured (the CA reaches it on port 80 or 443). */
function checkAcmeSetup(config: Config, DEFAULTS: typeof import('../config.ts').DEFAULTS, out: (s: string) => void): number {
  const acme = config.get<{ challenge?: string; directory?: string } | false>(undefined, 'acme');
  if (!acme) return 0;
  out('\nacme:');
  const challenge = acme.challenge ?? 'tls-alpn-01';
  const key = challenge === 'http-01' ? 'httpPorts' : 'c2sDirectTlsPorts';
  const ports = config.get<number[]>(undefined, key) ?? (DEFAULTS[key] as number[]);
  const hosts = config.hosts.filter((h) => config.get(h.name, 'acme') !== false).map((h) => h.name);
  if (!ports.length) {
    out(`  ! ${challenge} is answered on ${key}, which is empty: no certificate can be obtained`);
    return 1;
  }
  const wanted = challenge === 'http-01' ? 80 : 443;
  out(`  + ${challenge} on ${key} ${ports.join(', ')} for ${hosts.join(', ') || 'no host'} (the CA connects to port ${wanted}${ports.includes(wanted) ? '' : ': forward it there'})`);
  return 0;
}

function about(args: Args): number {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`Cadence ${VERSION} — XMPP server`);
  out(`Node.js ${process.version} on ${process.platform}/${process.arch} (OpenSSL ${process.versions.openssl})`);
  out(`installed in ${ROOT_DIR}`);
  out(`config ${args.config}`);
  // What a bug report needs besides the version: which libraries (XML, SQLite, ACME, …) are in use.
  out('libraries:');
  for (const lib of installedLibraries()) out(`  ${lib.name} ${lib.installed ?? `not installed (package.json wants ${lib.wanted})`}`);
  out('core features:');
  for (const [name, desc] of coreFeatures) out(`  ${name} — ${desc}`);
  return 0;
}
