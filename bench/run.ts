// Cadence vs Prosody vs ejabberd, same machine, same run (issue #5).
//
//   npm run bench                      full run (2 rounds, A B C A B C), writes bench/RESULTS.md
//   npm run bench -- --quick           < 2 minutes, writes bench/results/quick.{md,json}
//   npm run bench -- --servers cadence --scenarios routing --repeat 1
//   npm run bench -- --scenarios routing-ws-sm   routing over WebSocket with stream management
//   npm run bench -- --scenarios startup    start-to-ready, idle RSS and CLI latency (issue 12 targets)
//   npm run bench -- --cadence-cpu-prof bench/results/prof   (Cadence runs under node --cpu-prof)
//   npm run bench -- --render bench/results/latest.json       (re-write RESULTS.md from a run's JSON)
//
// Everything binds to 127.0.0.1; servers get private configs, data directories and ports in a
// fresh temporary directory, and are stopped at the end (also on Ctrl-C).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, load } from './lib/proc.ts';
import { renderMarkdown, type RoundResult, type RunJson } from './lib/report.ts';
import type { Ctx } from './scenarios/common.ts';
import { fanout } from './scenarios/fanout.ts';
import { loginRate } from './scenarios/login.ts';
import { mamScenario } from './scenarios/mam.ts';
import { memory } from './scenarios/memory.ts';
import { mucRoom } from './scenarios/muc.ts';
import { routing } from './scenarios/routing.ts';
import { startup } from './scenarios/startup.ts';
import { CadenceServer } from './servers/cadence.ts';
import { EjabberdServer } from './servers/ejabberd.ts';
import { ProsodyServer } from './servers/prosody.ts';
import type { ServerDriver } from './servers/types.ts';

/**
 * The routing scenario's rows: one traffic pattern (scenarios/routing.ts) over plain TCP or XMPP
 * over WebSocket (RFC 7395), with or without stream management (XEP-0198) on every client.
 */
const ROUTING_VARIANTS: { scenario: string; key: 'routing' | 'routingWs' | 'routingSm' | 'routingWsSm'; label: string; ws: boolean; sm: boolean }[] = [
  { scenario: 'routing', key: 'routing', label: 'routing', ws: false, sm: false },
  { scenario: 'routing-ws', key: 'routingWs', label: 'routing over WebSocket', ws: true, sm: false },
  { scenario: 'routing-sm', key: 'routingSm', label: 'routing with SM', ws: false, sm: true },
  // What mobile web clients (Converse.js) do: WebSocket, and SM to survive network changes.
  { scenario: 'routing-ws-sm', key: 'routingWsSm', label: 'routing over WebSocket with SM', ws: true, sm: true },
];

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const DOMAIN = 'bench.local';
const PASSWORD = 'bench-password';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    servers: { type: 'string', default: 'cadence,prosody,ejabberd' },
    scenarios: { type: 'string', default: 'startup,login,routing,routing-ws,routing-sm,routing-ws-sm,fanout,muc,memory,mam' },
    repeat: { type: 'string' },
    sessions: { type: 'string' },
    md: { type: 'string' },
    json: { type: 'string' },
    'cadence-cpu-prof': { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
    render: { type: 'string' },
  },
  allowPositionals: false,
});

const quick = args.quick!;
const P = {
  repeat: Number(args.repeat ?? (quick ? 1 : 2)),
  loginConcurrency: 50,
  loginWarmupMs: quick ? 1000 : 2000,
  loginDurationMs: quick ? 3000 : 10_000,
  routingPairs: 100,
  routingWindow: 10,
  routingWarmupMs: quick ? 1000 : 3000,
  routingDurationMs: quick ? 4000 : 15_000,
  fanoutContacts: 200,
  fanoutRounds: quick ? 10 : 30,
  mucOccupants: quick ? 100 : 500,
  mucRounds: quick ? 5 : 20,
  mucSenders: 10,
  mucWindow: 2,
  mucDurationMs: quick ? 3000 : 10_000,
  memoryLevels: (args.sessions ?? (quick ? '1000' : '1000,10000')).split(',').map(Number),
  memorySettleMs: quick ? 1500 : 5000,
  startupStarts: quick ? 3 : 5,
  startupSettleMs: quick ? 3000 : 5000,
  startupCliRuns: quick ? 3 : 5,
};
const scenarios = new Set(args.scenarios!.split(','));
const serverNames = args.servers!.split(',');
const mdPath = path.resolve(args.md ?? (quick ? path.join(BENCH, 'results', 'quick.md') : path.join(BENCH, 'RESULTS.md')));
const jsonPath = path.resolve(args.json ?? path.join(BENCH, 'results', quick ? 'quick.json' : 'latest.json'));

const t0 = Date.now();
const log = (line: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

function raiseFileLimit(): string {
  // 10,000 sessions need 10,000 sockets in the load generator and in the server; children
  // inherit the limit. Raise the soft limit to the hard one (and the hard one, where allowed).
  for (const lim of ['--nofile=65536:65536', '--nofile=unlimited:']) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), lim], { stdio: 'ignore' });
      break;
    } catch {
      /* not permitted */
    }
  }
  try {
    const hard = execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--noheadings', '--output', 'HARD']).toString().trim();
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:`], { stdio: 'ignore' });
  } catch {
    /* keep what we have */
  }
  try {
    return execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--noheadings', '--output', 'SOFT']).toString().trim();
  } catch {
    return 'unknown';
  }
}

function machine(): Record<string, string> {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  let distro = 'unknown';
  try {
    distro = /PRETTY_NAME="(.*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro;
  } catch {
    /* ignore */
  }
  return {
    cpu: `${cpu} × ${os.cpus().length}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${distro}, Linux ${os.release()}`,
    node: process.version,
  };
}

function loadString(): string {
  const l = load();
  return `${l.load1.toFixed(2)} (1 min), ${l.load5.toFixed(2)} (5 min) on ${l.cores} cores`;
}

function makeCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'bench.crt');
  const keyFile = path.join(dir, 'bench.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${DOMAIN}`, '-addext', `subjectAltName=DNS:${DOMAIN}`], { stdio: 'ignore' });
  return { certFile, keyFile };
}

function writeMarkdown(file: string, body: string): void {
  const START = '<!-- bench:results:start -->';
  const END = '<!-- bench:results:end -->';
  const block = `${START}\n${body}\n${END}`;
  mkdirSync(path.dirname(file), { recursive: true });
  if (existsSync(file)) {
    const old = readFileSync(file, 'utf8');
    const a = old.indexOf(START);
    const b = old.indexOf(END);
    if (a >= 0 && b > a) {
      writeFileSync(file, old.slice(0, a) + block + old.slice(b + END.length));
      return;
    }
    writeFileSync(file, `${old.trimEnd()}\n\n${block}\n`);
    return;
  }
  writeFileSync(file, `# Cadence benchmark results\n\n${block}\n`);
}

async function main(): Promise<number> {
  if (args.render) {
    // Re-render the Markdown from a previous run's JSON (no servers started).
    const run = JSON.parse(readFileSync(args.render, 'utf8')) as RunJson;
    writeMarkdown(mdPath, renderMarkdown(run));
    log(`rendered ${args.render} into ${path.relative(process.cwd(), mdPath)}`);
    return 0;
  }
  const nofile = raiseFileLimit();
  const maxLevel = Math.max(0, ...P.memoryLevels);
  if (Number(nofile) < maxLevel + 1000 && scenarios.has('memory')) log(`warning: open-file limit ${nofile} may be too low for ${maxLevel} sessions (run as root or raise ulimit -n)`);
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'cadence-bench-'));
  execFileSync('chmod', ['755', runDir]);
  const { certFile, keyFile } = makeCert(runDir);
  const userCount = Math.max(2 * P.routingPairs, P.loginConcurrency, maxLevel);
  const users = Array.from({ length: userCount }, (_, i) => `u${i}`);
  const fanUser = 'fan';
  const contacts = Array.from({ length: P.fanoutContacts }, (_, i) => `f${i}`);
  const drivers: ServerDriver[] = [];
  for (const n of serverNames) {
    if (n === 'cadence') drivers.push(new CadenceServer());
    else if (n === 'prosody') drivers.push(new ProsodyServer());
    else if (n === 'ejabberd') drivers.push(new EjabberdServer(await freePort()));
    else throw new Error(`unknown server ${n}`);
  }
  const loadBefore = loadString();
  const run: RunJson = {
    started: new Date().toISOString(),
    finished: '',
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick,
    machine: { ...machine(), 'open files': nofile },
    versions: {},
    configs: {},
    notes: {},
    load: { before: loadBefore, after: '', other: [] },
    params: { ...P, accounts: userCount + 1 + contacts.length },
    rounds: [],
  };
  log(`run directory ${runDir}; load ${loadBefore}; ${userCount + 1 + contacts.length} accounts per server`);

  let active: ServerDriver | undefined;
  const onSignal = () => {
    log('interrupted: stopping the server under test');
    void (active?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const usable: ServerDriver[] = [];
  for (const d of drivers) {
    const dir = path.join(runDir, d.name);
    mkdirSync(dir, { recursive: true });
    try {
      run.versions[d.name] = d.version();
      log(`${d.name} ${run.versions[d.name]}: preparing config and accounts`);
      await d.prepare({ dir, port: await freePort(), httpPort: await freePort(), domain: DOMAIN, certFile, keyFile, users: [...users, fanUser, ...contacts], password: PASSWORD, log });
      run.configs[d.name] = d.describe();
      usable.push(d);
    } catch (err) {
      log(`${d.name}: cannot be prepared: ${(err as Error).message}`);
      run.notes[d.name] = [`could not be prepared: ${(err as Error).message.split('\n')[0]}`];
      await d.stop().catch(() => undefined);
    }
  }

  const other: number[] = [];
  for (let round = 1; round <= P.repeat; round++) {
    for (const d of usable) {
      const rr: RoundResult = { server: d.name, round, errors: [] };
      run.rounds.push(rr);
      const ctx = (): Ctx => ({ target: d.target(), pid: d.pid(), password: PASSWORD, log });
      const step = async <T>(name: string, f: () => Promise<T>): Promise<T | undefined> => {
        try {
          const r = await f();
          const oc = (r as { otherCores?: number }).otherCores;
          if (typeof oc === 'number') other.push(oc);
          return r;
        } catch (err) {
          rr.errors.push(`${name}: ${(err as Error).message}`);
          log(`  ${name} failed: ${(err as Error).message.split('\n')[0]}`);
          return undefined;
        }
      };
      const profDir = d.name === 'cadence' && args['cadence-cpu-prof'] ? path.resolve(args['cadence-cpu-prof'], `round${round}`) : undefined;
      if (profDir) mkdirSync(profDir, { recursive: true });
      if (scenarios.has('login') || ROUTING_VARIANTS.some((v) => scenarios.has(v.scenario)) || scenarios.has('fanout') || scenarios.has('muc')) {
        log(`round ${round}: ${d.name}: start`);
        active = d;
        try {
          await d.start({ cpuProfDir: profDir });
          if (scenarios.has('login')) {
            rr.loginTls = await step('login STARTTLS', () =>
              loginRate(ctx(), { users: users.slice(0, P.loginConcurrency), starttls: true, mechanism: 'SCRAM-SHA-1', concurrency: P.loginConcurrency, warmupMs: P.loginWarmupMs, durationMs: P.loginDurationMs }),
            );
            rr.loginPlain = await step('login PLAIN', () =>
              loginRate(ctx(), { users: users.slice(0, P.loginConcurrency), starttls: false, mechanism: 'PLAIN', concurrency: P.loginConcurrency, warmupMs: P.loginWarmupMs, durationMs: P.loginDurationMs }),
            );
          }
          for (const v of ROUTING_VARIANTS) {
            if (!scenarios.has(v.scenario)) continue;
            rr[v.key] = await step(v.label, () =>
              routing({ ...ctx(), target: v.ws ? d.wsTarget() : d.target() }, { users, pairs: P.routingPairs, window: P.routingWindow, warmupMs: P.routingWarmupMs, durationMs: P.routingDurationMs, sm: v.sm }),
            );
          }
          if (scenarios.has('fanout')) rr.fanout = await step('fan-out', () => fanout(ctx(), { fan: fanUser, contacts, rounds: P.fanoutRounds }));
          if (scenarios.has('muc')) {
            rr.muc = await step('muc', () =>
              mucRoom(ctx(), { users, service: `conference.${DOMAIN}`, occupants: P.mucOccupants, rounds: P.mucRounds, senders: P.mucSenders, window: P.mucWindow, durationMs: P.mucDurationMs }),
            );
          }
        } catch (err) {
          rr.errors.push(`start: ${(err as Error).message}`);
          log(`  ${d.name} failed to start: ${(err as Error).message.split('\n')[0]}`);
        } finally {
          await d.stop();
          active = undefined;
        }
      }
      if (scenarios.has('startup')) {
        log(`round ${round}: ${d.name}: start-up and commands`);
        active = d;
        try {
          rr.startup = await step('startup', () => startup(d, { starts: P.startupStarts, settleMs: P.startupSettleMs, cliRuns: P.startupCliRuns, log }));
        } finally {
          active = undefined;
        }
      }
      if (scenarios.has('memory')) {
        log(`round ${round}: ${d.name}: fresh start for memory`);
        active = d;
        try {
          await d.start();
          rr.memory = await step('memory', () => memory(ctx(), { users, levels: P.memoryLevels, settleMs: P.memorySettleMs }));
        } catch (err) {
          rr.errors.push(`start: ${(err as Error).message}`);
        } finally {
          await d.stop();
          active = undefined;
        }
      }
    }
  }
  if (scenarios.has('mam')) run.notes.mam = await mamScenario({ runDir, quick, log }); // in-process, no server
  run.finished = new Date().toISOString();
  run.load.after = loadString();
  for (const d of usable) run.notes[d.name] = [...(run.notes[d.name] ?? []), ...d.notes()];
  const busy = other.filter((x) => x > 0.1);
  if (busy.length) {
    const max = Math.max(...other);
    run.load.other.push(`other processes used up to ${max.toFixed(2)} cores (median ${[...other].sort((a, b) => a - b)[other.length >> 1]!.toFixed(2)}) during the measurement windows`);
  }
  mkdirSync(path.dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(run, null, 2)}\n`);
  const md = renderMarkdown(run);
  writeMarkdown(mdPath, md);
  log(`wrote ${path.relative(process.cwd(), mdPath)} and ${path.relative(process.cwd(), jsonPath)}`);
  process.stdout.write(`\n${md}\n`);
  if (!args['keep-dir']) rmSync(runDir, { recursive: true, force: true });
  else log(`kept ${runDir}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
