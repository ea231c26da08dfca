// Scenario 6: one Multi-User Chat room with N occupants (XEP-0045). The first user creates the
// room (an instant room: empty configuration form), the others enter it (no history), then
//  - latency: one occupant sends a groupchat message, R times; the time until every occupant
//    (the sender's own reflection included) has it;
//  - throughput: S occupants each keep W messages in flight (the next one goes when one of its
//    own comes back) for D ms; messages the room broadcast per second, counted at one observer,
//    and deliveries per second (× N).
import { attr } from '../lib/framer.ts';
import { median, percentile, sleep } from '../lib/proc.ts';
import { Meter, closeAll, loginMany, type Ctx } from './common.ts';

export interface MucResult {
  otherCores: number;
  occupants: number;
  rounds: number;
  completeRounds: number;
  /** Time for one message to reach every occupant. */
  medianMs: number;
  p90Ms: number;
  senders: number;
  window: number;
  /** Messages the room broadcast per second under load. */
  msgsPerSec: number;
  /** msgsPerSec × occupants. */
  deliveriesPerSec: number;
  serverCpuMsPerMessage: number;
  joinMs: number;
  /** The load generator's CPU in the throughput window, as a share of one core. */
  clientCpuShare: number;
}

const NS_MUC = 'http://jabber.org/protocol/muc';

export async function mucRoom(
  ctx: Ctx,
  o: { users: string[]; service: string; occupants: number; rounds: number; senders: number; window: number; durationMs: number },
): Promise<MucResult> {
  if (o.users.length < o.occupants) throw new Error(`muc needs ${o.occupants} accounts`);
  const room = `bench${Date.now().toString(36)}@${o.service}`;
  const clients = await loginMany(ctx, o.users.slice(0, o.occupants), { concurrency: 50 });
  const t0 = performance.now();
  const nick = (i: number) => `n${i}`;

  // Enter: wait for each occupant's self-presence (status 110), a bounded number at a time.
  const enter = (i: number): Promise<void> => {
    const c = clients[i]!;
    const me = `${room}/${nick(i)}`;
    const got = c.expect((x) => x.startsWith('<presence') && attr(x, 'from') === me && (x.includes("code='110'") || x.includes('code="110"') || attr(x, 'type') === 'error'));
    c.send(`<presence to='${me}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`);
    return got.then((x) => {
      if (attr(x, 'type') === 'error') throw new Error(`muc: ${nick(i)} could not enter: ${x.slice(0, 300)}`);
    });
  };
  await enter(0);
  const owner = clients[0]!;
  const configured = owner.expect((x) => x.startsWith('<iq') && attr(x, 'id') === 'cfg');
  owner.send(`<iq type='set' to='${room}' id='cfg'><query xmlns='${NS_MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
  const cfg = await configured;
  if (attr(cfg, 'type') !== 'result') throw new Error(`muc: configuring the room failed: ${cfg.slice(0, 300)}`);
  let next = 1;
  await Promise.all(Array.from({ length: 25 }, async () => {
    for (;;) {
      const i = next++;
      if (i >= o.occupants) return;
      await enter(i);
    }
  }));
  // Let the presence broadcasts of the last entries drain.
  await sleep(1000);
  const joinMs = performance.now() - t0;
  ctx.log(`  muc: ${o.occupants} occupants in ${(joinMs / 1000).toFixed(1)} s`);

  // Latency: one message to everyone, R times.
  const times: number[] = [];
  let complete = 0;
  for (let r = 1; r <= o.rounds; r++) {
    const token = `lat-${r}-${Date.now()}`;
    let got = 0;
    const start = performance.now();
    const done = new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(NaN), 20_000);
      for (const c of clients) {
        let seen = false;
        c.onStanza = (xml) => {
          if (seen || !xml.startsWith('<message') || !xml.includes(token)) return;
          seen = true;
          if (++got === clients.length) {
            clearTimeout(timer);
            resolve(performance.now() - start);
          }
        };
      }
    });
    clients[r % clients.length]!.send(`<message to='${room}' type='groupchat' id='${token}'><body>${token}</body></message>`);
    const ms = await done;
    if (Number.isFinite(ms)) {
      complete++;
      times.push(ms);
    } else ctx.log(`  muc round ${r}: only ${got}/${clients.length} within 20 s`);
    await sleep(50);
  }

  // Throughput: S senders with W messages in flight each.
  const senders = clients.slice(1, 1 + o.senders);
  const observer = clients[0]!;
  let sending = true;
  let measuring = false;
  let observed = 0;
  let inflight = 0;
  for (const c of clients) c.onStanza = undefined;
  observer.onStanza = (xml) => {
    if (measuring && xml.startsWith('<message') && xml.includes('tp-')) observed++;
  };
  senders.forEach((c, k) => {
    const me = `${room}/${nick(1 + k)}`;
    let seq = 0;
    const send = () => {
      inflight++;
      c.queue(`<message to='${room}' type='groupchat'><body>tp-${k}-${++seq}</body></message>`);
    };
    c.onStanza = (xml) => {
      if (!xml.startsWith('<message') || attr(xml, 'from') !== me || !xml.includes('tp-')) return;
      inflight--;
      if (sending) send();
    };
    for (let w = 0; w < o.window; w++) send();
  });
  await sleep(1000); // warm-up
  const meter = new Meter(ctx.pid);
  measuring = true;
  meter.begin();
  await sleep(o.durationMs);
  const w = meter.end();
  measuring = false;
  const count = observed;
  sending = false;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && inflight > 0) await sleep(50);
  await closeAll(clients);

  const sorted = [...times].sort((a, b) => a - b);
  const msgsPerSec = count / w.seconds;
  const r: MucResult = {
    otherCores: w.otherCores,
    occupants: o.occupants,
    rounds: o.rounds,
    completeRounds: complete,
    medianMs: median(times),
    p90Ms: percentile(sorted, 90),
    senders: o.senders,
    window: o.window,
    msgsPerSec,
    deliveriesPerSec: msgsPerSec * o.occupants,
    serverCpuMsPerMessage: count ? (w.serverCpu / count) * 1000 : NaN,
    joinMs,
    clientCpuShare: w.clientCpu / w.seconds,
  };
  ctx.log(`  muc ${o.occupants} occupants: one message to all median ${r.medianMs.toFixed(1)} ms, p90 ${r.p90Ms.toFixed(1)} ms (${complete}/${o.rounds}); ${r.msgsPerSec.toFixed(0)} msgs/s through the room (${r.deliveriesPerSec.toFixed(0)} deliveries/s), server ${r.serverCpuMsPerMessage.toFixed(2)} ms CPU/message`);
  return r;
}
