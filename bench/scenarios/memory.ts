// Scenario 3: server RSS per idle authenticated session. On a freshly started server: RSS with no
// session, then with N idle sessions (plain TCP, SCRAM-SHA-1, bound, initial presence sent) for
// each level, sessions accumulating; per session = (RSS(N) - RSS(0)) / N. That figure charges the
// sessions with whatever the first ones cost once (lazily loaded code, caches, heap growth), so the
// leaner the idle server the "worse" it looks; the marginal figure, (RSS(10,000) - RSS(1,000)) /
// 9,000, is what one more session costs once a thousand are there (when both levels are run).
import type { XmppClient } from '../lib/client.ts';
import { rssBytes, sleep } from '../lib/proc.ts';
import { closeAll, loginMany, type Ctx } from './common.ts';

export interface MemoryLevel {
  sessions: number;
  rssMiB: number;
  kibPerSession: number;
  loginSeconds: number;
}

/** The levels between which the marginal cost per session is measured. */
export const MARGINAL_FROM = 1000;
export const MARGINAL_TO = 10_000;

export interface MemoryResult {
  baselineMiB: number;
  levels: MemoryLevel[];
  /** (RSS(10,000) - RSS(1,000)) / 9,000 in KiB, when both levels were run. */
  marginalKibPerSession?: number;
  error?: string;
}

/** RSS after the server has been idle for `ms` (the smallest of a few samples). */
async function settledRss(pid: number, ms: number): Promise<number> {
  let min = Infinity;
  const steps = 4;
  for (let i = 0; i < steps; i++) {
    await sleep(ms / steps);
    min = Math.min(min, rssBytes(pid));
  }
  return min;
}

export async function memory(ctx: Ctx, o: { users: string[]; levels: number[]; settleMs: number }): Promise<MemoryResult> {
  const base = await settledRss(ctx.pid, o.settleMs);
  const res: MemoryResult = { baselineMiB: base / 1048576, levels: [] };
  const clients: XmppClient[] = [];
  try {
    for (const level of o.levels) {
      if (level > o.users.length) throw new Error(`memory: ${level} sessions need ${level} accounts (have ${o.users.length})`);
      const t0 = performance.now();
      const more = await loginMany(ctx, o.users.slice(clients.length, level), { concurrency: 50 }, (d) =>
        ctx.log(`    … ${clients.length + d} sessions`),
      );
      clients.push(...more);
      const loginSeconds = (performance.now() - t0) / 1000;
      const rss = await settledRss(ctx.pid, o.settleMs);
      const lv: MemoryLevel = { sessions: level, rssMiB: rss / 1048576, kibPerSession: (rss - base) / 1024 / level, loginSeconds };
      res.levels.push(lv);
      ctx.log(`  memory: ${level} sessions: RSS ${lv.rssMiB.toFixed(1)} MiB (baseline ${res.baselineMiB.toFixed(1)}), ${lv.kibPerSession.toFixed(1)} KiB/session`);
    }
    const from = res.levels.find((l) => l.sessions === MARGINAL_FROM);
    const to = res.levels.find((l) => l.sessions === MARGINAL_TO);
    if (from && to) {
      res.marginalKibPerSession = ((to.rssMiB - from.rssMiB) * 1024) / (MARGINAL_TO - MARGINAL_FROM);
      ctx.log(`  memory: marginal ${res.marginalKibPerSession.toFixed(1)} KiB/session from ${MARGINAL_FROM} to ${MARGINAL_TO} sessions`);
    }
  } catch (err) {
    res.error = (err as Error).message;
    ctx.log(`  memory: ${res.error}`);
  } finally {
    await closeAll(clients);
  }
  return res;
}
