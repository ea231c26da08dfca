// Server-side measurements from /proc: CPU seconds (utime + stime of all threads) and RSS.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** user + system CPU seconds of the process (all threads) */
  cpu: number;
  /** resident set size, bytes */
  rss: number;
  /** wall clock, ms (performance.now) */
  at: number;
}

export function sample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  return { cpu, rss: rssBytes(pid), at: performance.now() };
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The client's own CPU (this process, all threads), seconds. */
export function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds the whole machine has spent busy (all cores; from /proc/stat). */
export function machineBusy(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice: busy excludes idle, iowait, guests (counted in user).
  const busy = v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!;
  return busy / CLK_TCK;
}

/** One-minute load average and the number of cores. */
export function load(): { load1: number; load5: number; cores: number } {
  const [l1, l5] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return { load1: l1!, load5: l5!, cores: os.cpus().length };
}

/** Pids of the direct children of `pid` (from /proc, no `ps`). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The command name (comm) of a process. */
export function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Walk down from `pid` to the first descendant whose comm matches `re` (e.g. beam.smp). */
export function findDescendant(pid: number, re: RegExp, depth = 4): number | undefined {
  if (re.test(comm(pid))) return pid;
  if (depth === 0) return undefined;
  for (const c of childrenOf(pid)) {
    const f = findDescendant(c, re, depth - 1);
    if (f) return f;
  }
  return undefined;
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(xs: number[]): number {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A TCP port on 127.0.0.1 that was free a moment ago. */
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
