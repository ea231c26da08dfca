// Summarise a V8 .cpuprofile (node --cpu-prof): top functions by self time, top by inclusive
// time, and self time per file / package. Idle time is excluded from the percentages.
//
//   node --import tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top 30] [--skip-ms N] [--json]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Row {
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
  totalMs?: number;
  totalPct?: number;
}

export interface Summary {
  file: string;
  wallMs: number;
  busyMs: number;
  idleMs: number;
  gcMs: number;
  topSelf: Row[];
  topTotal: Row[];
  byFile: { where: string; selfMs: number; selfPct: number }[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function shortUrl(url: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 14).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}: ${rest.slice(2).join('/')}` : `${rest[0]}: ${rest.slice(1).join('/')}`;
  }
  if (u.startsWith(ROOT)) u = u.slice(ROOT.length + 1);
  return u;
}

function fileKey(url: string): string {
  const s = shortUrl(url);
  if (!s) return '(native / V8)';
  if (s.startsWith('node:')) return 'node: built-ins';
  const colon = s.indexOf(': ');
  return colon > 0 ? `${s.slice(0, colon)} (package)` : s;
}

/** `skipMs`: ignore the first milliseconds of the profile (server start-up, module compilation). */
export function summarise(file: string, top = 30, skipMs = 0): Summary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    t += (p.timeDeltas[i] ?? 0) / 1000;
    if (t < skipMs) continue;
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000; // delta to the next sample is this sample's time
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}\u0000${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  let idle = 0;
  let gc = 0;
  let total = 0;
  const selfByKey = new Map<string, number>();
  const totalByKey = new Map<string, number>();
  const selfByFile = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    total += ms;
    const fn = n.callFrame.functionName;
    if (fn === '(idle)') {
      idle += ms;
      continue;
    }
    if (fn === '(garbage collector)') gc += ms;
    const k = key(n);
    selfByKey.set(k, (selfByKey.get(k) ?? 0) + ms);
    const fk = fn.startsWith('(') ? fn : fileKey(n.callFrame.url);
    selfByFile.set(fk, (selfByFile.get(fk) ?? 0) + ms);
    // Inclusive: credit every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur)!;
      if (cn.callFrame.functionName === '(root)') break;
      const ck = key(cn);
      if (seen.has(ck)) continue;
      seen.add(ck);
      totalByKey.set(ck, (totalByKey.get(ck) ?? 0) + ms);
    }
  }
  const busy = total - idle;
  const row = (k: string, ms: number): Row => {
    const [name, where] = k.split('\u0000') as [string, string];
    return { name, where, selfMs: selfByKey.get(k) ?? 0, selfPct: ((selfByKey.get(k) ?? 0) / busy) * 100, totalMs: totalByKey.get(k) ?? ms, totalPct: ((totalByKey.get(k) ?? ms) / busy) * 100 };
  };
  const topSelf = [...selfByKey].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => row(k, ms));
  const topTotal = [...totalByKey].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => row(k, ms));
  const byFile = [...selfByFile].sort((a, b) => b[1] - a[1]).slice(0, top).map(([where, ms]) => ({ where, selfMs: ms, selfPct: (ms / busy) * 100 }));
  return { file, wallMs: (p.endTime - p.startTime) / 1000 - skipMs, busyMs: busy, idleMs: idle, gcMs: gc, topSelf, topTotal, byFile };
}

export function formatSummary(s: Summary, top = 25): string {
  const lines: string[] = [];
  lines.push(`${path.basename(s.file)}: wall ${(s.wallMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(2)} s (GC ${((s.gcMs / s.busyMs) * 100).toFixed(1)}% of busy), idle ${(s.idleMs / 1000).toFixed(1)} s`);
  lines.push('');
  lines.push('| self % | self ms | total % | function | where |');
  lines.push('|---:|---:|---:|---|---|');
  for (const r of s.topSelf.slice(0, top)) lines.push(`| ${r.selfPct.toFixed(1)} | ${r.selfMs.toFixed(0)} | ${r.totalPct!.toFixed(1)} | \`${r.name}\` | ${r.where} |`);
  lines.push('');
  lines.push('Inclusive (time with callees), top:');
  lines.push('');
  lines.push('| total % | function | where |');
  lines.push('|---:|---|---|');
  for (const r of s.topTotal.slice(0, top)) lines.push(`| ${r.totalPct!.toFixed(1)} | \`${r.name}\` | ${r.where} |`);
  lines.push('');
  lines.push('Self time by file / package:');
  lines.push('');
  lines.push('| self % | file |');
  lines.push('|---:|---|');
  for (const r of s.byFile.slice(0, 15)) lines.push(`| ${r.selfPct.toFixed(1)} | ${r.where} |`);
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const ti = process.argv.indexOf('--top');
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 30;
  const si = process.argv.indexOf('--skip-ms');
  const skip = si > 0 ? Number(process.argv[si + 1]) : 0;
  if (!files.length) {
    process.stderr.write('usage: node --import tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--skip-ms N] [--json]\n');
    process.exit(2);
  }
  for (const f of files) {
    if (f === String(top) || f === String(skip)) continue;
    const s = summarise(f, top, skip);
    process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(s, null, 2)}\n` : `${formatSummary(s, top)}\n\n`);
  }
}
