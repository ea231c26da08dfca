// Scenario 2 (and 5): message routing. P pairs of online clients; each client keeps up to W chat
// messages in flight to its partner's full JID (a new one is sent when one of its own is
// delivered). Measured over a fixed window after a warm-up: delivered messages/s, latency
// (send → receive, same clock), server CPU seconds per 1,000 messages, and the load generator's
// own CPU.
// With `sm`, every client first enables stream management with resumption (XEP-0198) and answers
// the server's <r/> with <a/>: the same traffic, plus what SM costs the server per stanza
// (counting, the unacknowledged queue and, on Cadence, its durable resumption state).
// The transport is the target's: plain TCP, or XMPP over WebSocket (RFC 7395) when it has a wsUrl;
// both combine (WebSocket + SM is what mobile web clients such as Converse.js run).
import type { XmppClient } from '../lib/client.ts';
import { percentile, sleep } from '../lib/proc.ts';
import { Meter, closeAll, loginMany, type Ctx } from './common.ts';

export interface RoutingResult {
  /** cores used by other processes during the measurement (provisional numbers when > ~0.1) */
  otherCores: number;
  pairs: number;
  window: number;
  delivered: number;
  seconds: number;
  msgsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  serverCpuSec: number;
  serverCpuSecPer1000: number;
  clientCpuSec: number;
  clientCpuShare: number;
  clientCpuSecPer1000: number;
  errors: number;
  serverRssMiB: number;
  /** With SM: the server's <r/> answered during the window, per 1,000 delivered messages (how often it asks). */
  smAckRequestsPer1000?: number;
}

const BODY = 'Benchmark message: the quick brown fox jumps over the lazy dog. 0123456789';

interface Peer {
  c: XmppClient;
  to: string;
  inflight: number;
  seq: number;
}

export async function routing(ctx: Ctx, o: { users: string[]; pairs: number; window: number; warmupMs: number; durationMs: number; sm?: boolean }): Promise<RoutingResult> {
  const n = o.pairs * 2;
  if (o.users.length < n) throw new Error(`routing needs ${n} accounts`);
  const clients = await loginMany(ctx, o.users.slice(0, n), { concurrency: 50 });
  const peers: Peer[] = clients.map((c) => ({ c, to: '', inflight: 0, seq: 0 }));
  /** Stanzas each client handled since SM was enabled (its 'h'). */
  const handled = new Map<XmppClient, number>();
  if (o.sm) {
    await Promise.all(clients.map(async (c) => {
      c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
      const answer = await c.expect((x) => x.startsWith('<enabled') || x.startsWith('<failed'));
      if (!answer.startsWith('<enabled')) throw new Error(`stream management refused: ${answer.slice(0, 200)}`);
      handled.set(c, 0);
    }));
  }
  let sending = true;
  let measuring = false;
  let delivered = 0;
  let errors = 0;
  let ackRequests = 0;
  const lat = new Float64Array(4_000_000);
  let nlat = 0;

  const send = (p: Peer) => {
    p.inflight++;
    p.c.queue(`<message to='${p.to}' type='chat' id='m${++p.seq}-${performance.now().toFixed(3)}'><body>${BODY}</body></message>`);
  };

  for (let i = 0; i < n; i++) {
    const me = peers[i]!;
    const partner = peers[i ^ 1]!;
    me.to = partner.c.jid;
    me.c.onStanza = (xml) => {
      if (o.sm) {
        if (xml.startsWith('<r ') || xml.startsWith('<r>') || xml.startsWith('<r/')) {
          me.c.queue(`<a xmlns='urn:xmpp:sm:3' h='${handled.get(me.c)}'/>`);
          if (measuring) ackRequests++;
          return;
        }
        if (xml.startsWith('<message') || xml.startsWith('<iq') || xml.startsWith('<presence')) handled.set(me.c, (handled.get(me.c)! + 1) % 2 ** 32);
      }
      if (!xml.startsWith('<message')) return;
      const gt = xml.indexOf('>');
      const head = xml.slice(0, gt);
      if (head.includes("type='error'") || head.includes('type="error"')) {
        // Our own message bounced: free its slot.
        errors++;
        me.inflight--;
        if (sending) send(me);
        return;
      }
      const k = head.indexOf(' id=');
      if (k >= 0) {
        const dash = head.indexOf('-', k);
        const t = parseFloat(head.slice(dash + 1, head.indexOf(head[k + 4]!, k + 5)));
        if (measuring) {
          delivered++;
          if (nlat < lat.length) lat[nlat++] = performance.now() - t;
        }
      }
      partner.inflight--;
      if (sending) send(partner);
    };
  }
  const meter = new Meter(ctx.pid);
  for (const p of peers) for (let k = 0; k < o.window; k++) send(p);
  await sleep(o.warmupMs);
  measuring = true;
  meter.begin();
  await sleep(o.durationMs);
  const w = meter.end();
  measuring = false;
  const count = delivered;
  sending = false;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && peers.some((p) => p.inflight > 0)) await sleep(50);
  const lost = peers.reduce((a, p) => a + Math.max(0, p.inflight), 0);
  // With SM, what a client received but never acknowledged is bounced when its session ends
  // (XEP-0198: unacknowledged means undelivered): acknowledge everything before closing.
  if (o.sm) for (const c of clients) c.queue(`<a xmlns='urn:xmpp:sm:3' h='${handled.get(c)}'/>`);
  await closeAll(clients);
  const sorted = lat.subarray(0, nlat).sort();
  const r: RoutingResult = {
    otherCores: w.otherCores,
    pairs: o.pairs,
    window: o.window,
    delivered: count,
    seconds: w.seconds,
    msgsPerSec: count / w.seconds,
    latencyP50Ms: percentile(sorted, 50),
    latencyP99Ms: percentile(sorted, 99),
    serverCpuSec: w.serverCpu,
    serverCpuSecPer1000: (w.serverCpu / count) * 1000,
    clientCpuSec: w.clientCpu,
    clientCpuShare: w.clientCpu / w.seconds,
    clientCpuSecPer1000: (w.clientCpu / count) * 1000,
    errors: errors + lost,
    serverRssMiB: w.serverRss / 1048576,
    ...(o.sm ? { smAckRequestsPer1000: (ackRequests / count) * 1000 } : {}),
  };
  ctx.log(
    `  routing${ctx.target.wsUrl ? ' over WebSocket' : ''}${o.sm ? ' with SM' : ''}: ${r.msgsPerSec.toFixed(0)} msgs/s, p50 ${r.latencyP50Ms.toFixed(1)} ms, p99 ${r.latencyP99Ms.toFixed(1)} ms, server ${r.serverCpuSecPer1000.toFixed(3)} CPU s/1000 msgs, client CPU ${(r.clientCpuShare * 100).toFixed(0)}%${o.sm ? `, ${r.smAckRequestsPer1000!.toFixed(0)} <r/> per 1000 msgs` : ''}${r.errors ? `, errors/lost ${r.errors}` : ''}`,
  );
  return r;
}
