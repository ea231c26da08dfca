// Scenario 1: full c2s logins per second with N concurrent connectors. Each connector loops:
// connect, stream, [STARTTLS], SASL (SCRAM-SHA-1 or PLAIN), stream restart, bind, initial
// presence + ping round-trip (the login counts when the ping is answered), close the stream.
import { XmppClient, type Mechanism } from '../lib/client.ts';
import { percentile, sleep } from '../lib/proc.ts';
import { Meter, type Ctx } from './common.ts';

export interface LoginResult {
  /** cores used by other processes during the measurement (provisional numbers when > ~0.1) */
  otherCores: number;
  variant: string;
  concurrency: number;
  logins: number;
  errors: number;
  seconds: number;
  loginsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  serverCpuSec: number;
  /** server CPU ms per login */
  serverCpuMsPerLogin: number;
  clientCpuSec: number;
  /** load generator CPU as a share of one core */
  clientCpuShare: number;
  firstError?: string;
}

export async function loginRate(
  ctx: Ctx,
  o: { users: string[]; starttls: boolean; mechanism: Mechanism; concurrency: number; warmupMs: number; durationMs: number },
): Promise<LoginResult> {
  const variant = `${o.starttls ? 'STARTTLS' : 'no TLS'}, ${o.mechanism}`;
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let logins = 0;
  let errors = 0;
  let firstError: string | undefined;
  const lat: number[] = [];
  const meter = new Meter(ctx.pid);

  const connector = async (i: number) => {
    const user = o.users[i % o.users.length]!;
    while (phase !== 'stop') {
      const c = new XmppClient(ctx.target);
      const t0 = performance.now();
      try {
        await c.login({ username: user, password: ctx.password, starttls: o.starttls, mechanism: o.mechanism, timeoutMs: 20_000 });
        if (phase === 'measure') {
          logins++;
          lat.push(performance.now() - t0);
        }
        c.close(2000);
      } catch (err) {
        c.destroy();
        if ((phase as string) !== 'stop') {
          errors++;
          firstError ??= (err as Error).message;
          await sleep(50);
        }
      }
    }
  };

  const running = Array.from({ length: o.concurrency }, (_, i) => connector(i));
  await sleep(o.warmupMs);
  phase = 'measure';
  meter.begin();
  await sleep(o.durationMs);
  const w = meter.end();
  const counted = logins;
  phase = 'stop';
  await Promise.race([Promise.all(running), sleep(25_000)]);
  await sleep(300);
  lat.sort((a, b) => a - b);
  const r: LoginResult = {
    otherCores: w.otherCores,
    variant,
    concurrency: o.concurrency,
    logins: counted,
    errors,
    seconds: w.seconds,
    loginsPerSec: counted / w.seconds,
    latencyP50Ms: percentile(lat, 50),
    latencyP99Ms: percentile(lat, 99),
    serverCpuSec: w.serverCpu,
    serverCpuMsPerLogin: (w.serverCpu / counted) * 1000,
    clientCpuSec: w.clientCpu,
    clientCpuShare: w.clientCpu / w.seconds,
  };
  if (firstError) r.firstError = firstError;
  ctx.log(
    `  login ${variant}: ${r.loginsPerSec.toFixed(1)}/s (p50 ${r.latencyP50Ms.toFixed(0)} ms, errors ${errors}), server ${r.serverCpuMsPerLogin.toFixed(2)} ms CPU/login, client CPU ${(r.clientCpuShare * 100).toFixed(0)}%`,
  );
  return r;
}
