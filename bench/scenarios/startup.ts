// Start-up and the operator's commands (issue 12): each server is started `starts` times from
// cold (its own process, data already there); per start the time from spawn until it serves
// XMPP, and after the last one the idle RSS once it has settled. With the server idle, each CLI
// command is run `cliRuns` times (wall time from spawn to exit). Cadence is started with a
// JavaScript config (no TypeScript compiled at run time) and with a .ts config (tsx loaded).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { load, median, rssBytes, sample, sleep } from '../lib/proc.ts';
import type { ServerDriver } from '../servers/types.ts';

export interface StartupVariant {
  /** e.g. 'cadence.cfg.mjs' or 'prosody.cfg.lua'. */
  label: string;
  /** Per start: milliseconds from spawn until it serves XMPP. */
  readyMs: number[];
  /** Per start: CPU the server process used until then (user + system), ms — less sensitive to machine load. */
  readyCpuMs: number[];
  /** RSS of the idle server `settleMs` after the last start, MiB. */
  idleRssMiB: number;
}

export interface CliTiming {
  label: string;
  command: string;
  ms: number[];
  /** CPU (user + system) of each run, ms, when /usr/bin/time is there to measure it. */
  cpuMs: number[];
  error?: string;
}

export interface StartupResult {
  variants: StartupVariant[];
  cli: CliTiming[];
  /** How `readyMs` is observed (Cadence: its `ready` line; peers: polling with a stream header). */
  readyBy: string;
  load: string;
}

export interface StartupOptions {
  starts: number;
  settleMs: number;
  cliRuns: number;
  log: (line: string) => void;
}

const TIME = '/usr/bin/time';

/** Wall time and, through /usr/bin/time, CPU time of one command run. */
function timeCommand(argv: string[]): Promise<{ ms: number; cpuMs?: number }> {
  const dir = existsSync(TIME) ? mkdtempSync(path.join(os.tmpdir(), 'cadence-bench-time-')) : undefined;
  const file = dir && path.join(dir, 'time');
  const cmd = file ? [TIME, '-f', '%U %S', '-o', file, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(cmd[0]!, cmd.slice(1), { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, _out, stderr) => {
      const ms = performance.now() - t0;
      let cpuMs: number | undefined;
      if (file) {
        const [u, sys] = readFileSync(file, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        cpuMs = ((u ?? NaN) + (sys ?? NaN)) * 1000;
        rmSync(dir!, { recursive: true, force: true });
      }
      if (err) reject(new Error(`${argv.join(' ')}: ${err.message} ${String(stderr).slice(0, 500)}`));
      else resolve({ ms, cpuMs });
    });
  });
}

export async function startup(d: ServerDriver, opts: StartupOptions): Promise<StartupResult> {
  const variants: StartupVariant[] = [];
  const cli: CliTiming[] = [];
  const labels = d.startVariants?.() ?? [undefined];
  for (const [vi, variant] of labels.entries()) {
    const readyMs: number[] = [];
    const readyCpuMs: number[] = [];
    let idleRssMiB = 0;
    for (let i = 0; i < opts.starts; i++) {
      const t0 = performance.now();
      await d.start({ variant });
      readyMs.push(d.lastStartMs?.() ?? performance.now() - t0);
      readyCpuMs.push(sample(d.pid()).cpu * 1000);
      const last = i === opts.starts - 1;
      try {
        if (last) {
          await sleep(opts.settleMs);
          idleRssMiB = rssBytes(d.pid()) / 1048576;
          // The commands run once, against the first variant's idle server.
          if (vi === 0) {
            for (const c of d.cliCommands?.() ?? []) {
              const t: CliTiming = { label: c.label, command: c.argv.join(' '), ms: [], cpuMs: [] };
              try {
                for (let r = 0; r < opts.cliRuns; r++) {
                  const { ms, cpuMs } = await timeCommand(c.argv);
                  t.ms.push(ms);
                  if (cpuMs !== undefined) t.cpuMs.push(cpuMs);
                }
              } catch (err) {
                t.error = (err as Error).message.split('\n')[0];
              }
              cli.push(t);
            }
          }
        }
      } finally {
        await d.stop();
      }
    }
    const label = variant ?? d.configLabel?.() ?? d.name;
    variants.push({ label, readyMs, readyCpuMs, idleRssMiB });
    opts.log(`  ${d.name} ${label}: ready ${median(readyMs).toFixed(0)} ms (CPU ${median(readyCpuMs).toFixed(0)} ms, median of ${readyMs.length}), idle RSS ${idleRssMiB.toFixed(1)} MiB`);
  }
  for (const c of cli) opts.log(`  ${d.name} ${c.label}: ${c.error ?? `${median(c.ms).toFixed(0)} ms, CPU ${median(c.cpuMs).toFixed(0)} ms (median of ${c.ms.length})`}`);
  const l = load();
  return {
    variants,
    cli,
    readyBy: d.name === 'cadence' ? 'spawn to its `ready` line' : 'spawn until a stream header gets stream features (polled every 250 ms)',
    load: `${l.load1.toFixed(2)} / ${l.load5.toFixed(2)} on ${l.cores} cores`,
  };
}
