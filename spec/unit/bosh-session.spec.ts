// The BOSH session engine (XEP-0124, XEP-0206), modules/mod_bosh/session.ts, on a fake clock.
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { Element } from '@xmpp/xml';
import { BoshManager, NS_HTTPBIND, NS_XBOSH, type BoshClock, type BoshEnd, type BoshOptions, type BoshSession } from '../../modules/mod_bosh/session.ts';

class FakeClock implements BoshClock {
  t = 1_000_000;
  private next = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.timers.set(++this.next, { at: this.t + ms, fn });
    return this.next;
  }
  clearTimeout(id: unknown): void {
    this.timers.delete(id as number);
  }
  /** Move time on, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!due || e[1].at < due[1].at)) due = e;
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));
const el = (xml: string) => parse(xml) as unknown as Element;
const FEATURES = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";

interface Harness {
  clock: FakeClock;
  manager: BoshManager;
  delivered: Element[][];
  restarts: number;
  ended: BoshEnd[];
  /** What the XMPP session does with delivered payloads (beyond recording them). */
  onDeliver?: (els: Element[]) => void;
  session(): BoshSession;
  /** Post a body; the response once it comes. */
  post(attrs: Record<string, string | number>, children?: string): Promise<Element>;
  /** Create a session; returns the creation response. */
  create(attrs?: Record<string, string | number>): Promise<Element>;
  rid: number;
}

/** `refuse`: the XMPP session closes with this stream error while opening (too many connections, …). */
function harness(options: Partial<BoshOptions> = {}, refuse?: Element): Harness {
  const clock = new FakeClock();
  let current: BoshSession | undefined;
  const h: Harness = {
    clock,
    delivered: [],
    restarts: 0,
    ended: [],
    rid: 1000,
    manager: new BoshManager({ polling: 2, inactivity: 30, maxPause: 120, maxWait: 60, ...options }, {
      isHost: (to) => to === 'example.org',
      open: (session) => {
        current = session;
        if (refuse) session.close(undefined, refuse);
        else session.send(el(FEATURES));
        return {
          deliver: (els) => {
            h.delivered.push(els);
            h.onDeliver?.(els);
          },
          restart: () => {
            h.restarts++;
            session.send(el(FEATURES));
          },
          ended: (r) => void h.ended.push(r),
        };
      },
    }, clock),
    session: () => current!,
    post: async (attrs, children = '') => {
      const a = Object.entries({ xmlns: NS_HTTPBIND, ...attrs }).map(([k, v]) => ` ${k}='${v}'`).join('');
      return el(await h.manager.handle(`<body${a}>${children}</body>`));
    },
    create: (attrs = {}) => h.post({ rid: h.rid, to: 'example.org', wait: 60, hold: 1, ver: '1.6', 'xml:lang': 'en', 'xmpp:version': '1.0', 'xmlns:xmpp': NS_XBOSH, ...attrs }),
  };
  return h;
}

/** Watch a pending response. */
function pending(p: Promise<Element>): { done: () => boolean; value: () => Element | undefined; promise: Promise<Element> } {
  let v: Element | undefined;
  p.then((x) => (v = x));
  return { done: () => v !== undefined, value: () => v, promise: p };
}

const sidOf = (h: Harness) => h.session().sid;
const MSG = "<message xmlns='jabber:client' to='b@example.org' type='chat'><body>hi</body></message>";

describe('BOSH session engine (XEP-0124, XEP-0206)', () => {
  describe('session creation', () => {
    it('answers with the negotiated attributes and the stream features (XEP-0124 §7.2, XEP-0206 §3)', async () => {
      const h = harness({ maxWait: 30 });
      const r = await h.create({ wait: 60, hold: 3, ver: '1.6' });
      const a = r.attrs as Record<string, string>;
      assert.equal(r.name, 'body');
      assert.equal(a.xmlns, NS_HTTPBIND);
      assert.ok(a.sid && a.sid.length >= 20, 'an unpredictable sid');
      assert.equal(a.wait, '30', 'the smaller of the client’s wait and ours');
      assert.equal(a.hold, '1', 'at most maxHold');
      assert.equal(a.requests, '2', 'hold + 1');
      assert.equal(a.inactivity, '30');
      assert.equal(a.polling, '2');
      assert.equal(a.maxpause, '120');
      assert.equal(a.ver, '1.6');
      assert.equal(a.from, 'example.org');
      assert.equal(a.secure, 'true');
      assert.equal(a['xmpp:version'], '1.0');
      assert.equal(a['xmpp:restartlogic'], 'true');
      assert.equal(a['xmlns:xmpp'], NS_XBOSH);
      assert.equal(a.authid, h.session().streamId);
      assert.equal(a.ack, undefined, 'no ack unless the client asked for acks');
      assert.ok(r.getChild('features', 'http://etherx.jabber.org/streams'), 'features in the creation response');
    });

    it('negotiates ver down to ours and echoes the creation rid as ack when asked', async () => {
      const h = harness();
      const r = await h.create({ ver: '1.99', ack: 1 });
      assert.equal(r.attrs.ver, '1.11');
      assert.equal(r.attrs.ack, String(h.rid));
      const old = await harness().create({ ver: '1.5' });
      assert.equal(old.attrs.ver, '1.5');
    });

    it('refuses a creation request without rid, wait or hold (bad-request), without to (improper-addressing, §17.2), for another host (host-unknown)', async () => {
      for (const missing of ['rid', 'wait', 'hold', 'to', 'empty to']) {
        const h = harness();
        const attrs: Record<string, string | number> = { rid: 1, to: 'example.org', wait: 60, hold: 1 };
        if (missing === 'empty to') attrs.to = '';
        else delete attrs[missing];
        const r = await h.post(attrs);
        assert.deepEqual([r.attrs.type, r.attrs.condition], ['terminate', missing.endsWith('to') ? 'improper-addressing' : 'bad-request'], missing);
        assert.equal(h.manager.size, 0);
      }
      const r = await harness().create({ to: 'elsewhere.example' });
      assert.deepEqual([r.attrs.type, r.attrs.condition], ['terminate', 'host-unknown']);
      const big = await harness().create({ rid: '9007199254740992' });
      assert.equal(big.attrs.condition, 'bad-request', 'a rid above 2^53-1');
    });

    it('refuses what is not one well-formed <body/> in the httpbind namespace with bad-request', async () => {
      const h = harness();
      for (const text of ['<body', "<body xmlns='jabber:client'/>", `<body xmlns='${NS_HTTPBIND}'/><body xmlns='${NS_HTTPBIND}'/>`, `<!DOCTYPE body><body xmlns='${NS_HTTPBIND}'/>`, `<body xmlns='${NS_HTTPBIND}'>text</body>`]) {
        const r = el(await h.manager.handle(text));
        assert.equal(r.attrs.condition, 'bad-request', text);
      }
      const r = el(await h.manager.handle(`<?xml version='1.0' encoding='utf-8'?><body xmlns='${NS_HTTPBIND}' rid='5' to='example.org' wait='10' hold='1'/>`));
      assert.ok(r.attrs.sid, 'an XML declaration is fine');
    });

    it('answers a request for an unknown sid with item-not-found', async () => {
      const r = await harness().post({ sid: 'nope', rid: 1 });
      assert.deepEqual([r.attrs.type, r.attrs.condition], ['terminate', 'item-not-found']);
    });
  });

  describe('requests and responses', () => {
    it('delivers payloads, holds the request and answers it with what the session sends, stanzas in jabber:client', async () => {
      const h = harness();
      await h.create();
      const r1 = pending(h.post({ sid: sidOf(h), rid: h.rid + 1 }, MSG));
      await flush();
      assert.equal(h.delivered.length, 1);
      const got = h.delivered[0]![0]!;
      assert.equal(got.name, 'message');
      assert.equal(got.attrs.xmlns, undefined, 'jabber:client removed, as the TCP parser gives stanzas');
      assert.equal(r1.done(), false, 'held: nothing to send yet');
      h.session().send(new Element('message', { to: 'a@example.org/r' }).c('body').t('one').up());
      h.session().send(new Element('message', { to: 'a@example.org/r' }).c('body').t('two').up());
      const r = await r1.promise;
      const msgs = r.getChildren('message', 'jabber:client');
      assert.deepEqual(msgs.map((m) => m.getChildText('body')), ['one', 'two'], 'sent in the same tick: one response');
    });

    it('answers a held request with an empty body after wait', async () => {
      const h = harness();
      await h.create({ wait: 10 });
      const r1 = pending(h.post({ sid: sidOf(h), rid: h.rid + 1 }));
      await flush();
      h.clock.advance(9_999);
      await flush();
      assert.equal(r1.done(), false);
      h.clock.advance(1);
      await flush();
      assert.equal(r1.value()!.toString(), `<body xmlns="${NS_HTTPBIND}"/>`);
    });

    it('holds at most `hold` requests: a new one answers the oldest at once', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      h.clock.advance(3000);
      const r2 = pending(h.post({ sid, rid: h.rid + 2 }, MSG));
      await flush();
      assert.equal(r1.done(), true);
      assert.equal(r2.done(), false);
      assert.equal(h.session().heldCount, 1);
    });

    it('processes requests in rid order whatever order they arrive in (§14.2)', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const second = pending(h.post({ sid, rid: h.rid + 2 }, "<presence xmlns='jabber:client'/>"));
      await flush();
      assert.equal(h.delivered.length, 0, 'waits for the missing rid');
      const first = pending(h.post({ sid, rid: h.rid + 1 }, MSG));
      await flush();
      assert.deepEqual(h.delivered.map((d) => d[0]!.name), ['message', 'presence']);
      assert.equal(first.done(), true, 'the older one is answered first');
      assert.equal(second.done(), false);
    });

    it('sends the buffered response again for a repeated rid (§14.3)', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      h.session().send(new Element('message', { to: 'a@example.org/r' }).c('body').t('once').up());
      const original = await r1.promise;
      const again = await h.post({ sid, rid: h.rid + 1 });
      assert.equal(again.toString(), original.toString());
      assert.equal(h.ended.length, 0);
    });

    it('lets a resent request take over one still held', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const first = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      const resent = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      assert.equal(first.done(), true, 'the old HTTP request is let go');
      assert.equal(resent.done(), false);
      h.session().send(new Element('message', { to: 'a@example.org/r' }));
      assert.equal((await resent.promise).getChildren('message', 'jabber:client').length, 1);
    });

    it('terminates with item-not-found for a rid no longer buffered or beyond the window (§14)', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      for (let i = 1; i <= 4; i++) {
        const r = pending(h.post({ sid, rid: h.rid + i }, MSG));
        await flush();
        h.session().send(new Element('message'));
        await r.promise;
      }
      const old = await h.post({ sid, rid: h.rid + 1 });
      assert.deepEqual([old.attrs.type, old.attrs.condition], ['terminate', 'item-not-found']);
      assert.deepEqual(h.ended, [{ graceful: false, condition: 'item-not-found', undelivered: [] }]);

      const k = harness();
      await k.create();
      const far = await k.post({ sid: sidOf(k), rid: k.rid + 3 });
      assert.deepEqual([far.attrs.type, far.attrs.condition], ['terminate', 'item-not-found'], 'window is requests=2');
      assert.equal((await k.post({ sid: sidOf(k), rid: k.rid + 1 })).attrs.condition, 'item-not-found', 'the session is gone');
    });

    it('refuses a request without a rid with bad-request', async () => {
      const h = harness();
      await h.create();
      const r = await h.post({ sid: sidOf(h) });
      assert.equal(r.attrs.condition, 'bad-request');
    });

    it('reads payloads without their own xmlns in the httpbind namespace, not as stanzas', async () => {
      const h = harness();
      await h.create();
      pending(h.post({ sid: sidOf(h), rid: h.rid + 1 }, '<message to="b@example.org"/>'));
      await flush();
      assert.equal(h.delivered[0]![0]!.attrs.xmlns, NS_HTTPBIND);
    });
  });

  describe('overactivity (§11, §12)', () => {
    it('terminates with policy-violation when more requests are outstanding than `requests`', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      pending(h.post({ sid, rid: h.rid + 3 }, MSG));
      await flush();
      const r = await h.post({ sid, rid: h.rid + 2 }, MSG);
      assert.deepEqual([r.attrs.type, r.attrs.condition], ['terminate', 'policy-violation']);
      assert.equal(h.ended[0]!.condition, 'policy-violation');
    });

    it('allows one extra request to pause or terminate', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      const r3 = pending(h.post({ sid, rid: h.rid + 3 }, MSG));
      await flush();
      const r2 = await h.post({ sid, rid: h.rid + 2, type: 'terminate' }, "<presence xmlns='jabber:client' type='unavailable'/>");
      assert.equal(r2.attrs.type, 'terminate');
      assert.equal(r2.attrs.condition, undefined);
      assert.equal(r1.done(), true);
      assert.equal((await r3.promise).attrs.type, 'terminate');
    });

    it('terminates a client polling faster than `polling` while a request is held', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      h.clock.advance(500);
      const r = await h.post({ sid, rid: h.rid + 2 });
      assert.equal(r.attrs.condition, 'policy-violation');
    });

    it('accepts the same empty request after the polling interval', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      h.clock.advance(2000);
      pending(h.post({ sid, rid: h.rid + 2 }));
      await flush();
      assert.equal(r1.value()?.attrs.type, undefined, 'the older one answered normally');
      assert.equal(h.ended.length, 0);
    });

    it('in a polling session (hold=0), refuses two empty polls within `polling` when the first got nothing', async () => {
      const h = harness();
      await h.create({ hold: 0, wait: 0 });
      const sid = sidOf(h);
      h.clock.advance(5000);
      const p1 = await h.post({ sid, rid: h.rid + 1 });
      assert.equal(p1.attrs.type, undefined);
      h.clock.advance(1000);
      const p2 = await h.post({ sid, rid: h.rid + 2 });
      assert.equal(p2.attrs.condition, 'policy-violation');
    });

    it('in a polling session, allows a quick poll after one that brought payloads', async () => {
      const h = harness();
      await h.create({ hold: 0, wait: 0 });
      const sid = sidOf(h);
      h.clock.advance(5000);
      h.session().send(new Element('message'));
      const p1 = await h.post({ sid, rid: h.rid + 1 });
      assert.equal(p1.getChildren('message', 'jabber:client').length, 1);
      h.clock.advance(500);
      const p2 = await h.post({ sid, rid: h.rid + 2 });
      assert.equal(p2.attrs.type, undefined);
    });
  });

  describe('acknowledgements (§9)', () => {
    it('puts ack on a response when a later rid has been received', async () => {
      const h = harness();
      await h.create({ ack: 1 });
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      h.clock.advance(3000);
      pending(h.post({ sid, rid: h.rid + 2, ack: h.rid }, MSG));
      await flush();
      assert.equal(r1.value()!.attrs.ack, String(h.rid + 2));
    });

    it('forgets acknowledged responses: a repeat of an acknowledged rid is item-not-found', async () => {
      const h = harness();
      await h.create({ ack: 1 });
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }, MSG));
      await flush();
      h.session().send(new Element('message'));
      await r1.promise;
      const r2 = pending(h.post({ sid, rid: h.rid + 2, ack: h.rid + 1 }, MSG));
      await flush();
      h.session().send(new Element('message'));
      await r2.promise;
      const again = await h.post({ sid, rid: h.rid + 1 });
      assert.equal(again.attrs.condition, 'item-not-found');
    });

    it('reports a response the client has not acknowledged for a while (report, time)', async () => {
      const h = harness();
      await h.create({ ack: 1 });
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }, MSG));
      await flush();
      h.session().send(new Element('message'));
      await r1.promise;
      h.clock.advance(5000);
      const r2 = pending(h.post({ sid, rid: h.rid + 2, ack: h.rid }, MSG));
      await flush();
      const v = r2.value();
      assert.ok(v, 'answered at once');
      assert.equal(v.attrs.report, String(h.rid + 1));
      assert.equal(v.attrs.time, '5000');
    });
  });

  describe('pause, terminate, restart, inactivity', () => {
    it('pause answers what is held at once, without payloads, and stretches the inactivity period once (§10)', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const r1 = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      h.clock.advance(3000);
      const p = await h.post({ sid, rid: h.rid + 2, pause: 100 });
      assert.equal(r1.done(), true);
      assert.equal(p.children.length, 0);
      h.session().send(new Element('message'));
      h.clock.advance(90_000);
      assert.equal(h.ended.length, 0, 'beyond inactivity (30 s) but within the pause');
      const next = await h.post({ sid, rid: h.rid + 3 });
      assert.equal(next.getChildren('message', 'jabber:client').length, 1, 'what came in during the pause');
      h.clock.advance(31_000);
      assert.deepEqual(h.ended, [{ graceful: false, condition: 'inactivity', undelivered: [] }], 'the normal inactivity period again');
    });

    it('forwards the payloads of a pause request; what they bring waits for the request after the pause', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const p = await h.post({ sid, rid: h.rid + 1, pause: 60 }, "<presence xmlns='jabber:client' type='unavailable'/>");
      assert.equal(p.attrs.type, undefined);
      assert.equal(p.children.length, 0, 'no payloads in the pause response');
      assert.equal(h.delivered[0]?.[0]?.attrs.type, 'unavailable');
      h.session().send(new Element('message'));
      await flush();
      h.clock.advance(45_000);
      assert.equal(h.ended.length, 0, 'within the pause');
      const next = await h.post({ sid, rid: h.rid + 2 });
      assert.equal(next.getChildren('message', 'jabber:client').length, 1);
    });

    it('refuses a pause longer than maxpause with policy-violation', async () => {
      const h = harness();
      await h.create();
      const r = await h.post({ sid: sidOf(h), rid: h.rid + 1, pause: 121 });
      assert.equal(r.attrs.condition, 'policy-violation');
    });

    it('terminate delivers its payloads, answers with type=terminate and ends the session gracefully (§13)', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const r = await h.post({ sid, rid: h.rid + 1, type: 'terminate' }, "<presence xmlns='jabber:client' type='unavailable'/>");
      assert.equal(r.attrs.type, 'terminate');
      assert.equal(h.delivered[0]![0]!.attrs.type, 'unavailable');
      assert.deepEqual(h.ended, [{ graceful: true, undelivered: [] }]);
      assert.equal(h.manager.size, 0);
      assert.equal((await h.post({ sid, rid: h.rid + 2 })).attrs.condition, 'item-not-found');
    });

    it('xmpp:restart restarts the stream and answers with the new features (XEP-0206 §5)', async () => {
      const h = harness();
      await h.create();
      const r = await h.post({ sid: sidOf(h), rid: h.rid + 1, 'xmpp:restart': 'true', 'xmlns:xmpp': NS_XBOSH, to: 'example.org' });
      assert.equal(h.restarts, 1);
      assert.ok(r.getChild('features', 'http://etherx.jabber.org/streams'));
      assert.equal(r.attrs['xmlns:stream'], 'http://etherx.jabber.org/streams');
    });

    it('refuses a restart that carries payloads with bad-request', async () => {
      const h = harness();
      await h.create();
      const r = await h.post({ sid: sidOf(h), rid: h.rid + 1, 'xmpp:restart': 'true', 'xmlns:xmpp': NS_XBOSH }, MSG);
      assert.equal(r.attrs.condition, 'bad-request');
      assert.equal(h.restarts, 0);
      assert.equal(h.delivered.length, 0);
    });

    it('drops a session silently after `inactivity` seconds with no request held (§10)', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      h.clock.advance(29_999);
      assert.equal(h.ended.length, 0);
      h.clock.advance(1);
      assert.deepEqual(h.ended, [{ graceful: false, condition: 'inactivity', undelivered: [] }]);
      assert.equal((await h.post({ sid, rid: h.rid + 1 })).attrs.condition, 'item-not-found');
    });

    it('hands over what no request came for when it drops a session for inactivity', async () => {
      const h = harness();
      await h.create();
      const queued = new Element('message', { id: 'never-carried' });
      h.session().send(queued);
      assert.equal(h.session().queued, 1);
      h.clock.advance(30_000);
      assert.equal(h.ended.length, 1);
      assert.deepEqual(h.ended[0]!.undelivered, [queued]);
    });

    it('does not count a held request as inactivity', async () => {
      const h = harness();
      await h.create({ wait: 60 });
      pending(h.post({ sid: sidOf(h), rid: h.rid + 1 }));
      await flush();
      h.clock.advance(45_000);
      assert.equal(h.ended.length, 0);
    });
  });

  describe('refused while opening', () => {
    it('answers the creation request with the terminal body and its stream error, and keeps no session', async () => {
      const streamError = el(`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`);
      const h = harness({}, streamError);
      const r = await h.create();
      assert.equal(r.attrs.type, 'terminate');
      assert.equal(r.attrs.condition, 'remote-stream-error');
      assert.equal(r.attrs.sid, undefined, 'no session to continue');
      assert.ok(r.getChildElements().some((c) => c.name === 'stream:error'), r.toString());
      assert.equal(h.manager.size, 0);
    });
  });

  describe('ending from the server', () => {
    it('sends a stream error as remote-stream-error to the held request (XEP-0206 §4)', async () => {
      const h = harness();
      await h.create();
      const r1 = pending(h.post({ sid: sidOf(h), rid: h.rid + 1 }));
      await flush();
      const err = el("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
      h.session().close(undefined, err);
      const r = await r1.promise;
      assert.deepEqual([r.attrs.type, r.attrs.condition], ['terminate', 'remote-stream-error']);
      assert.ok(r.getChild('error', 'http://etherx.jabber.org/streams')?.getChild('conflict'));
      assert.deepEqual(h.ended, [{ graceful: false, condition: 'remote-stream-error', undelivered: [] }]);
    });

    it('gives the stream error to the held request when a payload makes the session close', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      const held = pending(h.post({ sid, rid: h.rid + 1 }));
      await flush();
      // The XMPP session answers this payload by closing the stream with an error.
      h.onDeliver = () => h.session().close(undefined, el("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"));
      const second = await h.post({ sid, rid: h.rid + 2 }, "<message xmlns='jabber:client' to='x@example.org'/>");
      const first = await held.promise;
      assert.equal(first.attrs.condition, 'remote-stream-error');
      assert.ok(first.getChild('error', 'http://etherx.jabber.org/streams')?.getChild('not-authorized'));
      assert.deepEqual([second.attrs.type, second.attrs.condition], ['terminate', 'remote-stream-error'], 'the request that caused it ends too');
    });

    it('keeps the final body for the next request when none is held', async () => {
      const h = harness();
      await h.create();
      const sid = sidOf(h);
      h.manager.closeAll();
      const r = await h.post({ sid, rid: h.rid + 1 });
      assert.deepEqual([r.attrs.type, r.attrs.condition], ['terminate', 'system-shutdown']);
      assert.equal(h.session().send(new Element('message')), false, 'nothing more is queued');
    });
  });
});
