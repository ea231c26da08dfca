// Scenario 4: presence fan-out. One user with C online contacts (mutual subscriptions, set up
// over XMPP with subscribe/subscribed the first time) changes presence; the time until every
// contact has received it is measured, R times.
import type { XmppClient } from '../lib/client.ts';
import { attr } from '../lib/framer.ts';
import { median, percentile, sleep } from '../lib/proc.ts';
import { Meter, closeAll, loginMany, type Ctx } from './common.ts';

export interface FanoutResult {
  /** cores used by other processes during the measurement (provisional numbers when > ~0.1) */
  otherCores: number;
  contacts: number;
  rounds: number;
  completeRounds: number;
  medianMs: number;
  p90Ms: number;
  bestMs: number;
  serverCpuMsPerRound: number;
  setupMs: number;
}

function bareOf(jid: string): string {
  const i = jid.indexOf('/');
  return i < 0 ? jid : jid.slice(0, i);
}

async function rosterBoth(fan: XmppClient, id: string): Promise<number> {
  const res = fan.expect((x) => x.startsWith('<iq') && attr(x, 'id') === id);
  fan.send(`<iq type='get' id='${id}'><query xmlns='jabber:iq:roster'/></iq>`);
  const xml = await res;
  return (xml.match(/subscription=['"]both['"]/g) ?? []).length;
}

export async function fanout(ctx: Ctx, o: { fan: string; contacts: string[]; rounds: number }): Promise<FanoutResult> {
  const t0 = performance.now();
  const contacts = await loginMany(ctx, o.contacts, { concurrency: 50 });
  const [fan] = await loginMany(ctx, [o.fan], {});
  const fanBare = bareOf(fan!.jid);
  const all = [fan!, ...contacts];

  // Auto-accept subscription requests; contacts subscribe back once.
  const askedBack = new Set<XmppClient>();
  for (const c of all) {
    c.onStanza = (xml) => {
      if (!xml.startsWith('<presence')) return;
      const type = attr(xml, 'type');
      const from = attr(xml, 'from');
      if (type === 'subscribe' && from) {
        c.send(`<presence to='${bareOf(from)}' type='subscribed'/>`);
        if (c !== fan && !askedBack.has(c)) {
          askedBack.add(c);
          c.send(`<presence to='${bareOf(from)}' type='subscribe'/>`);
        }
      }
    };
  }
  let both = await rosterBoth(fan!, 'r0');
  if (both < contacts.length) {
    ctx.log(`  fan-out: setting up ${contacts.length} mutual subscriptions over XMPP (roster has ${both})`);
    const out = contacts.map((c) => `<presence to='${bareOf(c.jid)}' type='subscribe'/>`).join('');
    fan!.send(out);
    for (let k = 1; k <= 120 && both < contacts.length; k++) {
      await sleep(500);
      both = await rosterBoth(fan!, `r${k}`);
    }
    if (both < contacts.length) throw new Error(`fan-out: only ${both} of ${contacts.length} subscriptions became mutual`);
    // Contacts that subscribed back on a later run must not do it again; let stray presences settle.
    await sleep(500);
  }
  const setupMs = performance.now() - t0;

  const times: number[] = [];
  const meter = new Meter(ctx.pid);
  meter.begin();
  let complete = 0;
  for (let r = 1; r <= o.rounds; r++) {
    const status = `<status>round ${r}</status>`;
    let got = 0;
    const start = performance.now();
    const done = new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(NaN), 10_000);
      for (const c of contacts) {
        let seen = false;
        c.onStanza = (xml) => {
          if (seen || !xml.startsWith('<presence') || !xml.includes(status)) return;
          const from = attr(xml, 'from');
          if (!from || bareOf(from) !== fanBare) return;
          seen = true;
          if (++got === contacts.length) {
            clearTimeout(timer);
            resolve(performance.now() - start);
          }
        };
      }
    });
    fan!.send(`<presence>${status}</presence>`);
    const ms = await done;
    if (Number.isFinite(ms)) {
      complete++;
      times.push(ms);
    } else ctx.log(`  fan-out round ${r}: only ${got}/${contacts.length} within 10 s`);
    await sleep(100);
  }
  const w = meter.end();
  await closeAll(all);
  const sorted = [...times].sort((a, b) => a - b);
  const r: FanoutResult = {
    otherCores: w.otherCores,
    contacts: contacts.length,
    rounds: o.rounds,
    completeRounds: complete,
    medianMs: median(times),
    p90Ms: percentile(sorted, 90),
    bestMs: sorted[0] ?? NaN,
    serverCpuMsPerRound: (w.serverCpu / o.rounds) * 1000,
    setupMs,
  };
  ctx.log(`  fan-out to ${r.contacts}: median ${r.medianMs.toFixed(1)} ms, p90 ${r.p90Ms.toFixed(1)} ms (${complete}/${o.rounds} complete), server ${r.serverCpuMsPerRound.toFixed(1)} ms CPU/round`);
  return r;
}
