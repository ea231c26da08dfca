// Turns the run's JSON into Markdown: a summary (Cadence / best peer per row) and one table per
// scenario with a row per server.
import type { FanoutResult } from '../scenarios/fanout.ts';
import type { LoginResult } from '../scenarios/login.ts';
import type { MemoryResult } from '../scenarios/memory.ts';
import type { StartupResult } from '../scenarios/startup.ts';
import type { MucResult } from '../scenarios/muc.ts';
import type { RoutingResult } from '../scenarios/routing.ts';
import { median } from './proc.ts';

export interface RoundResult {
  server: string;
  round: number;
  loginTls?: LoginResult;
  loginPlain?: LoginResult;
  routing?: RoutingResult;
  /** The routing scenario over XMPP over WebSocket (RFC 7395, plain ws://). */
  routingWs?: RoutingResult;
  /** The same routing with stream management (XEP-0198, resumable) on every client. */
  routingSm?: RoutingResult;
  /** Over WebSocket with stream management: what mobile web clients (Converse.js) do. */
  routingWsSm?: RoutingResult;
  fanout?: FanoutResult;
  memory?: MemoryResult;
  muc?: MucResult;
  startup?: StartupResult;
  errors: string[];
}

export interface RunJson {
  started: string;
  finished: string;
  command: string;
  quick: boolean;
  machine: Record<string, string>;
  versions: Record<string, string>;
  configs: Record<string, string>;
  notes: Record<string, string[]>;
  load: { before: string; after: string; other: string[] };
  params: Record<string, unknown>;
  rounds: RoundResult[];
}

type Better = 'higher' | 'lower';

interface Metric {
  label: string;
  better: Better;
  get: (r: RoundResult) => number | undefined;
  fmt: (v: number) => string;
}

const f0 = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '–');
const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '–');
const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '–');

export const METRICS: Metric[] = [
  { label: 'Logins/s, STARTTLS + SCRAM-SHA-1', better: 'higher', get: (r) => r.loginTls?.loginsPerSec, fmt: f1 },
  { label: 'Logins/s, no TLS + PLAIN', better: 'higher', get: (r) => r.loginPlain?.loginsPerSec, fmt: f1 },
  { label: 'Routing, delivered msgs/s', better: 'higher', get: (r) => r.routing?.msgsPerSec, fmt: f0 },
  { label: 'Routing latency p50 (ms)', better: 'lower', get: (r) => r.routing?.latencyP50Ms, fmt: f1 },
  { label: 'Routing latency p99 (ms)', better: 'lower', get: (r) => r.routing?.latencyP99Ms, fmt: f1 },
  { label: 'RSS per idle session at 1,000 (KiB)', better: 'lower', get: (r) => r.memory?.levels.find((l) => l.sessions === 1000)?.kibPerSession, fmt: f1 },
  { label: 'RSS per idle session at 10,000 (KiB)', better: 'lower', get: (r) => r.memory?.levels.find((l) => l.sessions === 10000)?.kibPerSession, fmt: f1 },
  { label: 'RSS per additional idle session, 1,000 → 10,000 (KiB)', better: 'lower', get: (r) => r.memory?.marginalKibPerSession, fmt: f1 },
  { label: 'Presence fan-out to 200 contacts, median (ms)', better: 'lower', get: (r) => r.fanout?.medianMs, fmt: f1 },
  { label: 'Server CPU s per 1,000 messages', better: 'lower', get: (r) => r.routing?.serverCpuSecPer1000, fmt: f3 },
  { label: 'Routing with stream management, msgs/s', better: 'higher', get: (r) => r.routingSm?.msgsPerSec, fmt: f0 },
  { label: 'Server CPU s per 1,000 messages with stream management', better: 'lower', get: (r) => r.routingSm?.serverCpuSecPer1000, fmt: f3 },
  { label: 'Routing over WebSocket with stream management, msgs/s', better: 'higher', get: (r) => r.routingWsSm?.msgsPerSec, fmt: f0 },
  { label: 'Server CPU s per 1,000 messages over WebSocket with stream management', better: 'lower', get: (r) => r.routingWsSm?.serverCpuSecPer1000, fmt: f3 },
  { label: 'MUC: one message to 500 occupants, median (ms)', better: 'lower', get: (r) => r.muc?.medianMs, fmt: f1 },
  { label: 'MUC: messages/s through one 500-occupant room', better: 'higher', get: (r) => r.muc?.msgsPerSec, fmt: f0 },
];

function servers(run: RunJson): string[] {
  return [...new Set(run.rounds.map((r) => r.server))];
}

/** Median over rounds of one metric for one server. */
export function value(run: RunJson, server: string, get: (r: RoundResult) => number | undefined): number {
  const xs = run.rounds.filter((r) => r.server === server).map(get).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return xs.length ? median(xs) : NaN;
}

function perRound(run: RunJson, server: string, m: Metric): string {
  const xs = run.rounds.filter((r) => r.server === server).map((r) => m.get(r));
  return xs.length > 1 ? ` (${xs.map((v) => (v === undefined ? '–' : m.fmt(v))).join(' / ')})` : '';
}

export function summaryTable(run: RunJson): string {
  const names = servers(run);
  const peers = names.filter((n) => n !== 'cadence');
  const head = `| Scenario | ${names.join(' | ')} | Cadence / best peer | Cadence ahead? |`;
  const sep = `|---|${names.map(() => '---:').join('|')}|---:|:---:|`;
  const rows = METRICS.map((m) => {
    const vals = names.map((n) => value(run, n, m.get));
    const peerVals = peers.map((n) => value(run, n, m.get)).filter(Number.isFinite);
    const best = peerVals.length ? (m.better === 'higher' ? Math.max(...peerVals) : Math.min(...peerVals)) : NaN;
    const c = value(run, 'cadence', m.get);
    const ratio = c / best;
    const ahead = !Number.isFinite(ratio) ? '–' : (m.better === 'higher' ? ratio > 1 : ratio < 1) ? 'yes' : 'no';
    const cells = names.map((n, i) => `${m.fmt(vals[i]!)}${perRound(run, n, m)}`);
    return `| ${m.label} (${m.better} is better) | ${cells.join(' | ')} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '–'} | ${ahead} |`;
  });
  return [head, sep, ...rows].join('\n');
}

function table(headers: string[], rows: string[][]): string {
  return [`| ${headers.join(' | ')} |`, `|${headers.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

interface Col {
  h: string;
  get: (r: RoundResult) => number | undefined;
  better: Better;
  fmt: (v: number) => string;
  /** Include in the Cadence / best peer row (default true). */
  ratio?: boolean;
}

function ratioCell(run: RunJson, c: Col): string {
  if (c.ratio === false) return '';
  const peers = servers(run).filter((n) => n !== 'cadence');
  const pv = peers.map((n) => value(run, n, c.get)).filter(Number.isFinite);
  const best = pv.length ? (c.better === 'higher' ? Math.max(...pv) : Math.min(...pv)) : NaN;
  const r = value(run, 'cadence', c.get) / best;
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '–';
}

export function scenarioTables(run: RunJson): string {
  const names = servers(run);
  const out: string[] = [];
  const loginCols = (pick: (r: RoundResult) => LoginResult | undefined): Col[] => [
    { h: 'logins/s', get: (r) => pick(r)?.loginsPerSec, better: 'higher', fmt: f1 },
    { h: 'p50 login (ms)', get: (r) => pick(r)?.latencyP50Ms, better: 'lower', fmt: f0 },
    { h: 'p99 login (ms)', get: (r) => pick(r)?.latencyP99Ms, better: 'lower', fmt: f0 },
    { h: 'server CPU ms/login', get: (r) => pick(r)?.serverCpuMsPerLogin, better: 'lower', fmt: f2 },
    { h: 'errors', get: (r) => pick(r)?.errors, better: 'lower', fmt: f0, ratio: false },
    { h: 'load generator CPU (of one core)', get: (r) => pick(r)?.clientCpuShare, better: 'lower', fmt: pct, ratio: false },
  ];
  const section = (title: string, cols: Col[]) => {
    const rows = names.map((n) => [n, ...cols.map((c) => c.fmt(value(run, n, c.get)))]);
    if (names.includes('cadence') && names.length > 1) rows.push(['**Cadence / best peer**', ...cols.map((c) => ratioCell(run, c))]);
    out.push(`### ${title}\n\n${table(['server', ...cols.map((c) => c.h)], rows)}\n`);
  };
  const p = run.params as Record<string, number>;
  section(`1a. Login rate, STARTTLS + SCRAM-SHA-1 (${p.loginConcurrency} concurrent connectors)`, loginCols((r) => r.loginTls));
  section(`1b. Login rate, no TLS + PLAIN (${p.loginConcurrency} concurrent connectors)`, loginCols((r) => r.loginPlain));
  const routingCols = (pick: (r: RoundResult) => RoutingResult | undefined): Col[] => [
    { h: 'msgs/s', get: (r) => pick(r)?.msgsPerSec, better: 'higher', fmt: f0 },
    { h: 'p50 (ms)', get: (r) => pick(r)?.latencyP50Ms, better: 'lower', fmt: f1 },
    { h: 'p99 (ms)', get: (r) => pick(r)?.latencyP99Ms, better: 'lower', fmt: f1 },
    { h: 'server CPU s / 1,000 msgs', get: (r) => pick(r)?.serverCpuSecPer1000, better: 'lower', fmt: f3 },
    { h: 'server RSS (MiB)', get: (r) => pick(r)?.serverRssMiB, better: 'lower', fmt: f0 },
    { h: 'errors', get: (r) => pick(r)?.errors, better: 'lower', fmt: f0, ratio: false },
    { h: 'load generator CPU (of one core)', get: (r) => pick(r)?.clientCpuShare, better: 'lower', fmt: pct, ratio: false },
  ];
  /** With SM: how often the server asked for an acknowledgement (part of what SM costs it). */
  const smCols = (pick: (r: RoundResult) => RoutingResult | undefined): Col[] => [
    ...routingCols(pick),
    { h: '`<r/>` per 1,000 msgs', get: (r) => pick(r)?.smAckRequestsPer1000, better: 'lower', fmt: f0, ratio: false },
  ];
  section(`2/5. Message routing (${p.routingPairs} pairs, ${p.routingWindow} messages in flight per sender, plain TCP)`, routingCols((r) => r.routing));
  if (run.rounds.some((r) => r.routingWs)) {
    section(`2w. Message routing over WebSocket (RFC 7395, ws:// on 127.0.0.1; ${p.routingPairs} pairs, ${p.routingWindow} in flight per sender)`, routingCols((r) => r.routingWs));
  }
  if (run.rounds.some((r) => r.routingSm)) {
    section(`2b. Message routing with stream management (as 2, every client with XEP-0198 resumption enabled, answering <r/>)`, smCols((r) => r.routingSm));
  }
  if (run.rounds.some((r) => r.routingWsSm)) {
    section(`2wb. Message routing over WebSocket with stream management (as 2w, every client with XEP-0198 resumption enabled, answering <r/>)`, smCols((r) => r.routingWsSm));
  }
  const levels = [...new Set(run.rounds.flatMap((r) => r.memory?.levels.map((l) => l.sessions) ?? []))].sort((a, b) => a - b);
  section('3. Memory: RSS per idle authenticated session (fresh server, plain TCP, SCRAM-SHA-1, bound, available)', [
    { h: 'baseline RSS (MiB)', get: (r) => r.memory?.baselineMiB, better: 'lower', fmt: f1 },
    ...levels.flatMap((n): Col[] => [
      { h: `KiB/session at ${n}`, get: (r) => r.memory?.levels.find((l) => l.sessions === n)?.kibPerSession, better: 'lower', fmt: f1 },
      { h: `RSS at ${n} (MiB)`, get: (r) => r.memory?.levels.find((l) => l.sessions === n)?.rssMiB, better: 'lower', fmt: f1 },
    ]),
    // Beside the averages: what one more session costs (see bench/RESULTS.md, method).
    { h: 'marginal KiB/session 1,000 → 10,000', get: (r) => r.memory?.marginalKibPerSession, better: 'lower', fmt: f1 },
  ]);
  section(`4. Presence fan-out (1 user, ${p.fanoutContacts} online contacts, ${p.fanoutRounds} changes)`, [
    { h: 'median (ms)', get: (r) => r.fanout?.medianMs, better: 'lower', fmt: f1 },
    { h: 'p90 (ms)', get: (r) => r.fanout?.p90Ms, better: 'lower', fmt: f1 },
    { h: 'best (ms)', get: (r) => r.fanout?.bestMs, better: 'lower', fmt: f1 },
    { h: 'server CPU ms / change', get: (r) => r.fanout?.serverCpuMsPerRound, better: 'lower', fmt: f1 },
    { h: 'complete rounds', get: (r) => r.fanout?.completeRounds, better: 'higher', fmt: f0, ratio: false },
  ]);
  section(`6. Multi-User Chat (one room, ${p.mucOccupants} occupants; throughput: ${p.mucSenders} senders, ${p.mucWindow} messages in flight each)`, [
    { h: 'one message to all, median (ms)', get: (r) => r.muc?.medianMs, better: 'lower', fmt: f1 },
    { h: 'p90 (ms)', get: (r) => r.muc?.p90Ms, better: 'lower', fmt: f1 },
    { h: 'msgs/s through the room', get: (r) => r.muc?.msgsPerSec, better: 'higher', fmt: f0 },
    { h: 'deliveries/s', get: (r) => r.muc?.deliveriesPerSec, better: 'higher', fmt: f0 },
    { h: 'server CPU ms / message', get: (r) => r.muc?.serverCpuMsPerMessage, better: 'lower', fmt: f2 },
    { h: 'entering (s)', get: (r) => (r.muc ? r.muc.joinMs / 1000 : undefined), better: 'lower', fmt: f1 },
    { h: 'complete rounds', get: (r) => r.muc?.completeRounds, better: 'higher', fmt: f0, ratio: false },
    { h: 'load generator CPU (of one core)', get: (r) => r.muc?.clientCpuShare, better: 'lower', fmt: pct, ratio: false },
  ]);
  const errs = run.rounds.filter((r) => r.errors.length || r.memory?.error);
  if (errs.length) {
    out.push('### Errors\n');
    for (const r of errs) for (const e of [...r.errors, ...(r.memory?.error ? [`memory: ${r.memory.error}`] : [])]) out.push(`- ${r.server} (round ${r.round}): ${e.split('\n')[0]!.slice(0, 300)}`);
    out.push('');
  }
  return out.join('\n');
}

export function renderMarkdown(run: RunJson): string {
  const lines: string[] = [];
  lines.push(`Run ${run.started} → ${run.finished}${run.quick ? ' (**--quick**: small counts, short windows — for development, not for comparison)' : ''}.`);
  lines.push('');
  lines.push(`Command: \`${run.command}\``);
  lines.push('');
  lines.push('Machine: ' + Object.entries(run.machine).map(([k, v]) => `${k} ${v}`).join('; ') + '.');
  lines.push('');
  const other = run.rounds
    .flatMap((r) => [r.loginTls?.otherCores, r.loginPlain?.otherCores, r.routing?.otherCores, r.routingWs?.otherCores, r.routingSm?.otherCores, r.routingWsSm?.otherCores, r.fanout?.otherCores, r.muc?.otherCores])
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b);
  const otherText = other.length
    ? ` CPU used by other processes during the measurement windows (from /proc/stat, minus server and load generator): median ${other[other.length >> 1]!.toFixed(2)}, max ${other[other.length - 1]!.toFixed(2)} cores.`
    : '';
  const busy = other.length && other[other.length - 1]! > 0.1;
  lines.push(
    `Load average before / after: ${run.load.before} / ${run.load.after}.${otherText}${busy ? ' **Other work was running on the machine during this run: treat the numbers as provisional** (the CPU-cost rows — CPU ms per login, CPU s per 1,000 messages — are the least affected).' : ''}`,
  );
  lines.push('');
  lines.push('Versions: ' + Object.entries(run.versions).map(([k, v]) => `${k} ${v}`).join('; ') + '.');
  lines.push('');
  lines.push('Values are medians over rounds (per-round values in parentheses when repeated; rounds run the servers in A B C A B C order).');
  lines.push('');
  lines.push(summaryTable(run));
  lines.push('');
  lines.push(scenarioTables(run));
  const st = startupSection(run);
  if (st) lines.push(st);
  lines.push('### Server set-up\n');
  for (const [k, v] of Object.entries(run.configs)) lines.push(`- **${k}**: ${v}`);
  for (const [k, v] of Object.entries(run.notes)) for (const n of v) lines.push(`- ${k} ${n}`);
  lines.push(`- parameters: ${Object.entries(run.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`);
  lines.push('');
  return lines.join('\n');
}

/** Targets of issue 12 for the precompiled build, shown beside the measurements. */
const STARTUP_TARGETS = { readyMs: 500, idleRssMiB: 60, aboutMs: 300 };

/** Start-up, idle RSS and command latency (scenario `startup`), with the issue-12 targets. */
function startupSection(run: RunJson): string | undefined {
  const rounds = run.rounds.filter((r) => r.startup);
  if (!rounds.length) return undefined;
  const med = (xs: number[]) => {
    const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
    if (!s.length) return NaN;
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const mark = (v: number, target: number | undefined) => (target === undefined || !Number.isFinite(v) ? '' : v <= target ? ' ✓' : ' ✗');
  const out: string[] = ['### Start-up and operator commands\n'];
  out.push(`Targets for Cadence (issue 12): start to ready ≤ ${STARTUP_TARGETS.readyMs} ms, idle RSS ≤ ${STARTUP_TARGETS.idleRssMiB} MiB, \`cadence about\` ≤ ${STARTUP_TARGETS.aboutMs} ms (✓ met, ✗ not met). Medians of each round's starts / command runs.\n`);
  out.push('Wall times grow with the machine\'s load (other processes share the cores); the CPU columns (user + system of the server until ready, of the command run) much less.\n');
  out.push('| server | config | round | start to ready (ms) | CPU until ready (ms) | idle RSS (MiB) | how ready is observed | load (1 / 5 min) |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const r of rounds) {
    for (const v of r.startup!.variants) {
      const isCadence = r.server === 'cadence';
      const ready = med(v.readyMs);
      out.push(`| ${r.server} | ${v.label} | ${r.round} | ${ready.toFixed(0)}${mark(ready, isCadence ? STARTUP_TARGETS.readyMs : undefined)} (${v.readyMs.map((x) => x.toFixed(0)).join(', ')}) | ${med(v.readyCpuMs ?? []).toFixed(0)} | ${v.idleRssMiB.toFixed(1)}${mark(v.idleRssMiB, isCadence ? STARTUP_TARGETS.idleRssMiB : undefined)} | ${r.startup!.readyBy} | ${r.startup!.load} |`);
    }
  }
  out.push('');
  out.push('| server | command | round | wall time (ms) | CPU (ms) |');
  out.push('|---|---|---|---|---|');
  for (const r of rounds) {
    for (const c of r.startup!.cli) {
      const ms = med(c.ms);
      const target = r.server === 'cadence' && c.label === 'about' ? STARTUP_TARGETS.aboutMs : undefined;
      out.push(`| ${r.server} | \`${c.label}\` | ${r.round} | ${c.error ? `failed: ${c.error.slice(0, 120)}` : `${ms.toFixed(0)}${mark(ms, target)} (${c.ms.map((x) => x.toFixed(0)).join(', ')})`} | ${c.cpuMs?.length ? med(c.cpuMs).toFixed(0) : '–'} |`);
    }
  }
  out.push('');
  return out.join('\n');
}
