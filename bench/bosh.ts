// BOSH sessions per second (XEP-0124/0206 at /http-bind), beside Prosody and ejabberd when
// installed: C concurrent workers loop for D seconds over keep-alive HTTP/1.1 on 127.0.0.1, each
// iteration a whole session — create, SASL PLAIN, xmpp:restart, bind, ping round trip, terminate.
// Server CPU per 1,000 sessions from /proc. Results are printed; copy them into bench/RESULTS.md.
//   node --import tsx bench/bosh.ts [--servers cadence,prosody,ejabberd] [--seconds 10] [--concurrency 20]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, machineBusy, sample, selfCpu } from './lib/proc.ts';
import { CadenceServer } from './servers/cadence.ts';
import { EjabberdServer } from './servers/ejabberd.ts';
import { ProsodyServer } from './servers/prosody.ts';
import type { ServerDriver } from './servers/types.ts';

const { values: args } = parseArgs({
  options: {
    servers: { type: 'string', default: 'cadence,prosody,ejabberd' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '20' },
  },
});
const DOMAIN = 'bench.localhost';
const PASSWORD = 'bench-password';
const HTTPBIND = 'http://jabber.org/protocol/httpbind';
const log = (l: string) => process.stdout.write(`${l}\n`);

const agent = new http.Agent({ keepAlive: true, maxSockets: 1000 });

function post(url: URL, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'Content-Type': 'text/xml; charset=utf-8' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const attr = (xml: string, name: string) => new RegExp(`\\s${name}=['"]([^'"]*)['"]`).exec(xml)?.[1];

/** One whole BOSH session; resolves when terminated, rejects on anything unexpected. */
async function session(url: URL, user: string): Promise<void> {
  let rid = Math.floor(Math.random() * 1e9);
  const created = await post(url, `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='${rid}' to='${DOMAIN}' xml:lang='en' wait='10' hold='1' ver='1.6' xmpp:version='1.0'/>`);
  const sid = attr(created, 'sid');
  if (!sid) throw new Error(`no sid: ${created.slice(0, 200)}`);
  const req = async (payload: string, extra = '', until?: RegExp): Promise<string> => {
    let got = await post(url, `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' sid='${sid}' rid='${++rid}'${extra}>${payload}</body>`);
    // Features or answers may come in a later response (servers differ in what they hold).
    for (let i = 0; until && !until.test(got) && i < 5; i++) got += await post(url, `<body xmlns='${HTTPBIND}' sid='${sid}' rid='${++rid}'/>`);
    if (got.includes("type='terminate'") || got.includes('type="terminate"')) throw new Error(`terminated: ${got.slice(0, 300)}`);
    return got;
  };
  if (!created.includes('mechanism')) await req('', '', /mechanism/);
  const token = Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64');
  await req(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`, '', /<success/);
  await req('', ` xmpp:restart='true' to='${DOMAIN}' xml:lang='en'`, /<bind/);
  await req(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`, '', /id=['"]b['"]/);
  await req(`<iq xmlns='jabber:client' type='get' id='p' to='${DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>`, '', /id=['"]p['"]/);
  await post(url, `<body xmlns='${HTTPBIND}' sid='${sid}' rid='${++rid}' type='terminate'><presence xmlns='jabber:client' type='unavailable'/></body>`);
}

const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const users = Array.from({ length: concurrency }, (_, i) => `b${i}`);
const dir = mkdtempSync(path.join(os.tmpdir(), 'cadence-bench-bosh-'));
const certFile = path.join(dir, 'bench.crt');
const keyFile = path.join(dir, 'bench.key');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${DOMAIN}`], { stdio: 'ignore' });
const make: Record<string, () => Promise<ServerDriver>> = {
  cadence: async () => new CadenceServer(),
  prosody: async () => new ProsodyServer(),
  ejabberd: async () => new EjabberdServer(await freePort()),
};
try {
  for (const name of args.servers!.split(',')) {
    const d = await make[name]!();
    const sdir = path.join(dir, name);
    mkdirSync(sdir, { recursive: true });
    try {
      await d.prepare({ dir: sdir, port: await freePort(), httpPort: await freePort(), domain: DOMAIN, certFile, keyFile, users, password: PASSWORD, log: () => true });
      await d.start();
    } catch (err) {
      log(`${name}: not run: ${(err as Error).message.split('\n')[0]}`);
      await d.stop().catch(() => undefined);
      continue;
    }
    // The BOSH endpoint sits beside the WebSocket one on the HTTP port.
    const url = new URL(d.wsTarget().wsUrl!.replace(/^ws:/, 'http:').replace('/xmpp-websocket', '/http-bind'));
    let done = 0;
    let failed = 0;
    let firstError = '';
    const warmupEnd = Date.now() + 2000;
    const end = warmupEnd + seconds * 1000;
    let s0 = sample(d.pid());
    let c0 = selfCpu();
    let b0 = machineBusy();
    let t0 = performance.now();
    let measuring = false;
    const worker = async (user: string) => {
      while (Date.now() < end) {
        if (!measuring && Date.now() >= warmupEnd) {
          measuring = true;
          s0 = sample(d.pid());
          c0 = selfCpu();
          b0 = machineBusy();
          t0 = performance.now();
        }
        try {
          await session(url, user);
          if (measuring) done++;
        } catch (err) {
          failed++;
          firstError ||= (err as Error).message;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    await Promise.all(users.map(worker));
    const s1 = sample(d.pid());
    const secs = (performance.now() - t0) / 1000;
    const cpu = s1.cpu - s0.cpu;
    const client = selfCpu() - c0;
    const other = Math.max(0, (machineBusy() - b0 - client - cpu) / secs);
    log(`${name} ${d.version()}: ${(done / secs).toFixed(1)} BOSH sessions/s (${done} in ${secs.toFixed(1)} s, ${concurrency} workers), server ${((cpu / Math.max(done, 1)) * 1000).toFixed(2)} CPU s / 1,000 sessions, RSS ${(s1.rss / 1048576).toFixed(0)} MiB, load generator ${((client / secs) * 100).toFixed(0)}% of a core, other processes ${other.toFixed(2)} cores${failed ? `, ${failed} failed (first: ${firstError.slice(0, 200)})` : ''}`);
    await d.stop();
  }
} finally {
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
}
