// The load generator on its own, against any XMPP server: host, port, domain, and a command that
// creates one account (run once per account unless --no-create).
//
//   node --import tsx bench/loadgen.ts --host 127.0.0.1 --port 5222 --domain example.org \
//     --account-cmd 'prosodyctl register {user} {domain} {password}' --users 250 \
//     [--pid SERVER_PID] [--seconds 10] login-tls login-plain routing fanout memory:1000
//
// Scenarios: login-tls (STARTTLS + SCRAM-SHA-1), login-plain (no TLS + PLAIN), login-scram (no TLS
// + SCRAM-SHA-1), routing, fanout (needs --users ≥ 201: the last 201 accounts are used),
// memory:N[,M] (needs --pid). With --pid the server's CPU and RSS are read from /proc.
// Only loopback targets are accepted (this tool is for servers on this machine).
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { Ctx } from './scenarios/common.ts';
import { fanout } from './scenarios/fanout.ts';
import { loginRate } from './scenarios/login.ts';
import { memory } from './scenarios/memory.ts';
import { routing } from './scenarios/routing.ts';

const { values: o, positionals } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '5222' },
    domain: { type: 'string' },
    'account-cmd': { type: 'string' },
    'no-create': { type: 'boolean', default: false },
    users: { type: 'string', default: '250' },
    prefix: { type: 'string', default: 'bench' },
    password: { type: 'string', default: 'bench-password' },
    pid: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '50' },
  },
  allowPositionals: true,
});

if (!o.domain || !positionals.length) {
  process.stderr.write('usage: loadgen.ts --domain D [--host H] [--port P] [--account-cmd CMD] [--users N] [--pid PID] SCENARIO…\n');
  process.exit(2);
}
if (!/^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(o.host!)) {
  process.stderr.write('loadgen only drives servers on this machine (127.0.0.0/8, ::1, localhost)\n');
  process.exit(2);
}

const log = (l: string) => process.stdout.write(`${l}\n`);
const n = Number(o.users);
const users = Array.from({ length: n }, (_, i) => `${o.prefix}${i}`);
const ctx: Ctx = { target: { host: o.host!, port: Number(o.port), domain: o.domain }, pid: Number(o.pid), password: o.password!, log };
const ms = Number(o.seconds) * 1000;
const conc = Number(o.concurrency);

function sh(cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code} ${err}`))));
  });
}

if (o['account-cmd'] && !o['no-create']) {
  const tpl = o['account-cmd'];
  const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < users.length; i = next++) {
        await sh(tpl.replaceAll('{user}', quote(users[i]!)).replaceAll('{domain}', quote(o.domain!)).replaceAll('{password}', quote(o.password!))).catch((e: Error) => log(`account ${users[i]}: ${e.message.trim()}`));
      }
    }),
  );
  log(`created ${users.length} accounts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const results: Record<string, unknown> = {};
for (const s of positionals) {
  const [name, arg] = s.split(':') as [string, string | undefined];
  if (name === 'login-tls') results[s] = await loginRate(ctx, { users: users.slice(0, conc), starttls: true, mechanism: 'SCRAM-SHA-1', concurrency: conc, warmupMs: 2000, durationMs: ms });
  else if (name === 'login-plain') results[s] = await loginRate(ctx, { users: users.slice(0, conc), starttls: false, mechanism: 'PLAIN', concurrency: conc, warmupMs: 2000, durationMs: ms });
  else if (name === 'login-scram') results[s] = await loginRate(ctx, { users: users.slice(0, conc), starttls: false, mechanism: 'SCRAM-SHA-1', concurrency: conc, warmupMs: 2000, durationMs: ms });
  else if (name === 'routing') results[s] = await routing(ctx, { users, pairs: Math.min(100, Math.floor(n / 2)), window: 10, warmupMs: 2000, durationMs: ms });
  else if (name === 'fanout') {
    if (n < 201) throw new Error('fanout needs --users ≥ 201');
    results[s] = await fanout(ctx, { fan: users[n - 201]!, contacts: users.slice(n - 200), rounds: 20 });
  } else if (name === 'memory') {
    if (!ctx.pid) throw new Error('memory needs --pid');
    results[s] = await memory(ctx, { users, levels: (arg ?? '1000').split(',').map(Number), settleMs: 3000 });
  } else throw new Error(`unknown scenario ${s}`);
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
process.exit(0);
