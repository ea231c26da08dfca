// Shared by the scenarios: what a scenario gets, measurement windows, and login of many clients.
import { XmppClient, type Mechanism, type Target } from '../lib/client.ts';
import { machineBusy, sample, selfCpu, type ProcSample } from '../lib/proc.ts';

export interface Ctx {
  target: Target;
  /** Server pid to measure (0: not measured, e.g. a remote server). */
  pid: number;
  password: string;
  log: (line: string) => void;
}

export interface Window {
  seconds: number;
  serverCpu: number;
  clientCpu: number;
  serverRss: number;
  /** CPU used by everything else on the machine during the window, in cores (0 = quiet machine). */
  otherCores: number;
}

/** Measures server CPU/RSS and the load generator's own CPU between begin() and end(). */
export class Meter {
  private s0: ProcSample | undefined;
  private c0 = 0;
  private t0 = 0;
  private b0 = 0;

  constructor(private readonly pid: number) {}

  begin(): void {
    this.s0 = this.pid ? sample(this.pid) : undefined;
    this.c0 = selfCpu();
    this.b0 = machineBusy();
    this.t0 = performance.now();
  }

  end(): Window {
    const s1 = this.pid ? sample(this.pid) : undefined;
    const seconds = (performance.now() - this.t0) / 1000;
    const serverCpu = s1 && this.s0 ? s1.cpu - this.s0.cpu : NaN;
    const clientCpu = selfCpu() - this.c0;
    const busy = machineBusy() - this.b0;
    return {
      seconds,
      serverCpu,
      clientCpu,
      serverRss: s1?.rss ?? NaN,
      otherCores: Math.max(0, (busy - clientCpu - (Number.isFinite(serverCpu) ? serverCpu : 0)) / seconds),
    };
  }
}

/**
 * Log in `users` (one client each) with at most `concurrency` logins in flight; returns the
 * clients in the order of `users`. Fails if any login fails (after `retries` attempts each).
 */
export async function loginMany(
  ctx: Ctx,
  users: string[],
  o: { concurrency?: number; mechanism?: Mechanism; starttls?: boolean; presence?: boolean; resource?: string; retries?: number },
  onProgress?: (done: number) => void,
): Promise<XmppClient[]> {
  const out: XmppClient[] = new Array(users.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= users.length) return;
      let attempt = 0;
      for (;;) {
        const c = new XmppClient(ctx.target);
        try {
          await c.login({
            username: users[i]!,
            password: ctx.password,
            mechanism: o.mechanism ?? 'SCRAM-SHA-1',
            starttls: o.starttls ?? false,
            presence: o.presence ?? true,
            resource: o.resource,
          });
          out[i] = c;
          break;
        } catch (err) {
          c.destroy();
          if (++attempt > (o.retries ?? 2)) throw new Error(`login of ${users[i]} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      if (++done % 500 === 0) onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 50, users.length) }, worker));
  return out;
}

/** Close clients gracefully, a bounded number at a time, then make sure every socket is gone. */
export async function closeAll(clients: (XmppClient | undefined)[]): Promise<void> {
  for (const c of clients) c?.close(1500);
  await new Promise((r) => setTimeout(r, 300));
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && clients.some((c) => c && !c.closed)) await new Promise((r) => setTimeout(r, 100));
  for (const c of clients) c?.destroy();
}
