// Profile Cadence under one scenario at a time: a fresh server under `node --cpu-prof`, the
// scenario's load, SIGTERM (the profile is written at exit), then a summary of the hottest
// functions. Profiles go to bench/results/prof/<scenario>/ (open them in Chrome DevTools or
// speedscope for flame graphs); summaries to bench/results/profile-<scenario>.md.
//
//   node --import tsx bench/profile.ts [login-tls,login-plain,routing,fanout] [--seconds 10]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSummary, summarise } from './cpuprofile-summary.ts';
import { freePort } from './lib/proc.ts';
import type { Ctx } from './scenarios/common.ts';
import { fanout } from './scenarios/fanout.ts';
import { loginRate } from './scenarios/login.ts';
import { routing } from './scenarios/routing.ts';
import { CadenceServer } from './servers/cadence.ts';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const DOMAIN = 'bench.local';
const PASSWORD = 'bench-password';
const args = process.argv.slice(2);
const si = args.indexOf('--seconds');
const seconds = si >= 0 ? Number(args[si + 1]) : 10;
const wanted = (args.find((a) => !a.startsWith('--') && a !== String(seconds)) ?? 'login-tls,login-plain,routing,fanout').split(',');
const log = (l: string) => process.stdout.write(`${l}\n`);

const dir = mkdtempSync(path.join(os.tmpdir(), 'cadence-prof-'));
const certFile = path.join(dir, 'bench.crt');
const keyFile = path.join(dir, 'bench.key');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${DOMAIN}`], { stdio: 'ignore' });
const users = Array.from({ length: 200 }, (_, i) => `u${i}`);
const contacts = Array.from({ length: 200 }, (_, i) => `f${i}`);
const server = new CadenceServer();
await server.prepare({ dir, port: await freePort(), httpPort: await freePort(), domain: DOMAIN, certFile, keyFile, users: [...users, 'fan', ...contacts], password: PASSWORD, log });

for (const name of wanted) {
  const out = path.join(BENCH, 'results', 'prof', name);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  if (name === 'fanout') {
    // Set up the 200 mutual subscriptions once, unprofiled, so the profile shows the fan-out.
    await server.start();
    try {
      await fanout({ target: server.target(), pid: server.pid(), password: PASSWORD, log }, { fan: 'fan', contacts, rounds: 1 });
    } finally {
      await server.stop();
    }
  }
  log(`${name}: starting Cadence under --cpu-prof`);
  await server.start({ cpuProfDir: out });
  const ctx: Ctx = { target: server.target(), pid: server.pid(), password: PASSWORD, log };
  try {
    const ms = seconds * 1000;
    if (name === 'login-tls') await loginRate(ctx, { users: users.slice(0, 50), starttls: true, mechanism: 'SCRAM-SHA-1', concurrency: 50, warmupMs: 1000, durationMs: ms });
    else if (name === 'login-plain') await loginRate(ctx, { users: users.slice(0, 50), starttls: false, mechanism: 'PLAIN', concurrency: 50, warmupMs: 1000, durationMs: ms });
    else if (name === 'login-scram') await loginRate(ctx, { users: users.slice(0, 50), starttls: false, mechanism: 'SCRAM-SHA-1', concurrency: 50, warmupMs: 1000, durationMs: ms });
    else if (name === 'routing') await routing(ctx, { users, pairs: 100, window: 10, warmupMs: 1000, durationMs: ms });
    else if (name === 'fanout') await fanout(ctx, { fan: 'fan', contacts, rounds: Math.max(20, seconds * 5) });
    else throw new Error(`unknown scenario ${name}`);
  } finally {
    await server.stop();
  }
  // One profile per thread: tsx's module loader runs in a worker; the server is thread 0.
  const files = readdirSync(out).filter((f) => f.endsWith('.cpuprofile')).sort((a, b) => Number(a.split('.')[4]) - Number(b.split('.')[4]));
  if (!files.length) {
    log(`${name}: no .cpuprofile written (did the server exit cleanly?)`);
    continue;
  }
  // Skip start-up (module compilation) and the scenario's own logins where they are set-up.
  const skipMs = server.startupMs + 500;
  const s = summarise(path.join(out, files[0]!), 40, skipMs);
  const md = `# Cadence CPU profile: ${name}\n\nFirst ${(skipMs / 1000).toFixed(1)} s (start-up) skipped. Open \`bench/results/prof/${name}/*.cpuprofile\` in Chrome DevTools (Performance) or speedscope for a flame graph.\n\n${formatSummary(s, 30)}\n`;
  writeFileSync(path.join(BENCH, 'results', `profile-${name}.md`), md);
  log(md);
}
rmSync(dir, { recursive: true, force: true });
