// Presence end to end (RFC 6121 §3–4): the subscription handshake, every subscription stanza in
// every state (Appendix A, both directions at once since both accounts are local), pre-approval,
// pending requests, broadcast, probes, directed presence, dropped connections and durability.
import assert from 'node:assert/strict';
import { RawClient, login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS_ROSTER = 'jabber:iq:roster';
const PASS = 'presence-pass';

type Kind = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
type StateName = 'None' | 'None+Out' | 'None+In' | 'None+Out+In' | 'To' | 'To+In' | 'From' | 'From+Out' | 'Both';
const STATES: StateName[] = ['None', 'None+Out', 'None+In', 'None+Out+In', 'To', 'To+In', 'From', 'From+Out', 'Both'];

// ---- RFC 6121 Appendix A, transcribed ------------------------------------------------------------

/** A.2: the user's server on an outbound stanza: [route?, new state]. */
const OUTBOUND: Record<Kind, Record<StateName, [boolean, StateName]>> = {
  subscribe: {
    None: [true, 'None+Out'], 'None+Out': [true, 'None+Out'], 'None+In': [true, 'None+Out+In'], 'None+Out+In': [true, 'None+Out+In'],
    To: [true, 'To'], 'To+In': [true, 'To+In'], From: [true, 'From+Out'], 'From+Out': [true, 'From+Out'], Both: [true, 'Both'],
  },
  unsubscribe: {
    None: [true, 'None'], 'None+Out': [true, 'None'], 'None+In': [true, 'None+In'], 'None+Out+In': [true, 'None+In'],
    To: [true, 'None'], 'To+In': [true, 'None+In'], From: [true, 'From'], 'From+Out': [true, 'From'], Both: [true, 'From'],
  },
  subscribed: {
    None: [false, 'None'], 'None+Out': [false, 'None+Out'], 'None+In': [true, 'From'], 'None+Out+In': [true, 'From+Out'],
    To: [false, 'To'], 'To+In': [true, 'Both'], From: [false, 'From'], 'From+Out': [false, 'From+Out'], Both: [false, 'Both'],
  },
  unsubscribed: {
    None: [false, 'None'], 'None+Out': [false, 'None+Out'], 'None+In': [true, 'None'], 'None+Out+In': [true, 'None+Out'],
    To: [false, 'To'], 'To+In': [true, 'To'], From: [true, 'None'], 'From+Out': [true, 'None+Out'], Both: [true, 'To'],
  },
};

/** A.3: the contact's server on an inbound stanza: [deliver to the client?, new state]. */
const INBOUND: Record<Kind, Record<StateName, [boolean, StateName]>> = {
  subscribe: {
    None: [true, 'None+In'], 'None+Out': [true, 'None+Out+In'], 'None+In': [false, 'None+In'], 'None+Out+In': [false, 'None+Out+In'],
    To: [true, 'To+In'], 'To+In': [false, 'To+In'], From: [false, 'From'], 'From+Out': [false, 'From+Out'], Both: [false, 'Both'],
  },
  unsubscribe: {
    None: [false, 'None'], 'None+Out': [false, 'None+Out'], 'None+In': [true, 'None'], 'None+Out+In': [true, 'None+Out'],
    To: [false, 'To'], 'To+In': [true, 'To'], From: [true, 'None'], 'From+Out': [true, 'None+Out'], Both: [true, 'To'],
  },
  subscribed: {
    None: [false, 'None'], 'None+Out': [true, 'To'], 'None+In': [false, 'None+In'], 'None+Out+In': [true, 'To+In'],
    To: [false, 'To'], 'To+In': [false, 'To+In'], From: [false, 'From'], 'From+Out': [true, 'Both'], Both: [false, 'Both'],
  },
  unsubscribed: {
    None: [false, 'None'], 'None+Out': [true, 'None'], 'None+In': [false, 'None+In'], 'None+Out+In': [true, 'None+In'],
    To: [true, 'None'], 'To+In': [true, 'None+In'], From: [false, 'From'], 'From+Out': [true, 'From'], Both: [true, 'From'],
  },
};

interface Sub {
  to: boolean;
  from: boolean;
  out: boolean;
  in: boolean;
}

function parseState(s: StateName): Sub {
  return {
    to: s.startsWith('To') || s === 'Both',
    from: s.startsWith('From') || s === 'Both',
    out: s.includes('Out'),
    in: s.includes('In'),
  };
}

/** The same relationship seen from the other side. */
function mirror(s: StateName): StateName {
  const p = parseState(s);
  const m: Sub = { to: p.from, from: p.to, out: p.in, in: p.out };
  const base = m.to && m.from ? 'Both' : m.to ? 'To' : m.from ? 'From' : 'None';
  const suffix = m.out && m.in ? '+Out+In' : m.out ? '+Out' : m.in ? '+In' : '';
  return `${base}${suffix}` as StateName;
}

/** What a roster get shows for the state: subscription and ask (pending-in is not an item attribute). */
function visible(s: StateName): string {
  const p = parseState(s);
  const sub = p.to && p.from ? 'both' : p.to ? 'to' : p.from ? 'from' : 'none';
  return p.out ? `${sub}+ask` : sub;
}

/** How to reach each state from None: [who acts ('u' the user, 'c' the contact), stanza]. */
const SETUP: Record<StateName, ['u' | 'c', Kind][]> = {
  None: [],
  'None+Out': [['u', 'subscribe']],
  'None+In': [['c', 'subscribe']],
  'None+Out+In': [['u', 'subscribe'], ['c', 'subscribe']],
  To: [['u', 'subscribe'], ['c', 'subscribed']],
  'To+In': [['u', 'subscribe'], ['c', 'subscribed'], ['c', 'subscribe']],
  From: [['c', 'subscribe'], ['u', 'subscribed']],
  'From+Out': [['c', 'subscribe'], ['u', 'subscribed'], ['u', 'subscribe']],
  Both: [['u', 'subscribe'], ['c', 'subscribed'], ['c', 'subscribe'], ['u', 'subscribed']],
};

// ---- helpers -------------------------------------------------------------------------------------

function rosterQuery(el: Element): Element | undefined {
  return el.getChild('query', NS_ROSTER);
}

const rosterGet = (c: TestClient) => c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));

/** The visible state of `jid` in c's roster ('none' when absent). */
async function seen(c: TestClient, jid: string): Promise<string> {
  const item = rosterQuery(await rosterGet(c))?.getChildren('item').find((i) => i.attrs.jid === jid);
  if (!item) return 'none';
  return item.attrs.ask === 'subscribe' ? `${item.attrs.subscription as string}+ask` : (item.attrs.subscription as string);
}

async function rosterItem(c: TestClient, jid: string): Promise<Element | undefined> {
  return rosterQuery(await rosterGet(c))?.getChildren('item').find((i) => i.attrs.jid === jid);
}

/** Poll both rosters until they show the expected states. */
async function waitSeen(u: TestClient, c: TestClient, expectU: string, expectC: string, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [su, sc] = await Promise.all([seen(u, c.bare), seen(c, u.bare)]);
    if (su === expectU && sc === expectC) return;
    if (Date.now() > deadline) assert.fail(`${what}: expected user ${expectU} / contact ${expectC}, but user sees ${su}, contact sees ${sc}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

const isPresence = (type: string | undefined, from?: string) => (s: Element) =>
  s.name === 'presence' && s.attrs.type === type && (from === undefined || s.attrs.from === from);
const isPushOf = (jid: string, subscription?: string) => (s: Element) => {
  if (s.name !== 'iq' || s.attrs.type !== 'set') return false;
  const item = rosterQuery(s)?.getChild('item');
  return item?.attrs.jid === jid && (subscription === undefined || item.attrs.subscription === subscription);
};

let seq = 0;
const nextId = () => `p${++seq}`;

/** Make a and b subscribed to each other (both must be available). */
async function befriend(a: TestClient, b: TestClient): Promise<void> {
  await a.send(xml('presence', { to: b.bare, type: 'subscribe' }));
  await b.expect(isPresence('subscribe', a.bare));
  await b.send(xml('presence', { to: a.bare, type: 'subscribed' }));
  await b.send(xml('presence', { to: a.bare, type: 'subscribe' }));
  await a.expect(isPresence('subscribe', b.bare));
  await a.send(xml('presence', { to: b.bare, type: 'subscribed' }));
  await waitSeen(a, b, 'both', 'both', 'befriend');
}

// ---- tests ---------------------------------------------------------------------------------------

const TABLE_USERS = (['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'] as const).flatMap((k) => [`u-${k}`, `c-${k}`]);
const USERS = [
  ...TABLE_USERS,
  'hs1', 'hs2', 'cx1', 'cx2', 'np1', 'np2', 'pa1', 'pa2', 'pr1', 'pr2', 'b1', 'b2', 'b3', 'd1', 'd2', 'd3', 'tcp1', 'tcp2', 'inv', 'un1', 'un2', 'mr1', 'mr2',
];

describe('e2e: presence', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  const connect = async (user: string, resource: string, opts: { presence?: boolean; roster?: boolean } = {}) => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    if (opts.roster ?? true) await rosterGet(c);
    if (opts.presence ?? true) {
      await c.send(xml('presence'));
      await c.expect((s) => s.name === 'presence' && s.attrs.from === c.jid && s.attrs.type === undefined); // own echo
    }
    return c;
  };

  before(async function () {
    this.timeout(180_000);
    server = await startServer({ users: Object.fromEntries(USERS.map((u) => [u, PASS])) });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    for (const r of raws.splice(0)) r.close();
  });
  after(async function () {
    await server?.destroy();
  });

  it('runs the subscription handshake: subscribe → pending → subscribed → to, then both', async function () {
    const u = await connect('hs1', 'r');
    const c = await connect('hs2', 'r');

    await u.send(xml('presence', { to: 'HS2@localhost/whatever', type: 'subscribe', id: 'hs-sub' }, xml('status', {}, 'Let me in')));
    // The user's roster gets the contact with ask='subscribe'.
    const push1 = await u.expect(isPushOf('hs2@localhost', 'none'));
    assert.equal(rosterQuery(push1)!.getChild('item')!.attrs.ask, 'subscribe');
    // The contact gets the request from the bare JID, addressed to its bare JID, with its content.
    const req = await c.expect(isPresence('subscribe'));
    assert.equal(req.attrs.from, 'hs1@localhost');
    assert.equal(req.attrs.to, 'hs2@localhost');
    assert.equal(req.getChildText('status'), 'Let me in');
    // Pending in is not a roster item of the contact.
    assert.equal(await rosterItem(c, 'hs1@localhost'), undefined);

    await c.send(xml('presence', { to: 'hs1@localhost', type: 'subscribed' }));
    const cPush = await c.expect(isPushOf('hs1@localhost', 'from'));
    assert.equal(rosterQuery(cPush)!.getChild('item')!.attrs.ask, undefined);
    const ok = await u.expect(isPresence('subscribed', 'hs2@localhost'));
    assert.equal(ok.attrs.to, 'hs1@localhost');
    const uPush = await u.expect(isPushOf('hs2@localhost', 'to'));
    assert.equal(rosterQuery(uPush)!.getChild('item')!.attrs.ask, undefined);
    // The new subscriber immediately receives the contact's presence.
    const pres = await u.expect(isPresence(undefined, c.jid));
    assert.equal(pres.attrs.to, u.jid);

    // The other direction.
    await c.send(xml('presence', { to: 'hs1@localhost', type: 'subscribe' }));
    await c.expect((s) => isPushOf('hs1@localhost', 'from')(s) && rosterQuery(s)!.getChild('item')!.attrs.ask === 'subscribe');
    await u.expect(isPresence('subscribe', 'hs2@localhost'));
    await u.send(xml('presence', { to: 'hs2@localhost', type: 'subscribed' }));
    await u.expect(isPushOf('hs2@localhost', 'both'));
    await c.expect(isPushOf('hs1@localhost', 'both'));
    await c.expect(isPresence(undefined, u.jid));
    assert.equal(await seen(u, 'hs2@localhost'), 'both');
    assert.equal(await seen(c, 'hs1@localhost'), 'both');
  });

  it('ends presence with the subscription: unavailable before unsubscribed, and after unsubscribe', async function () {
    const u = await connect('cx1', 'r');
    const c = await connect('cx2', 'r');
    await befriend(u, c);
    u.inbox.drain();
    c.inbox.drain();

    // c cancels u's subscription: u sees c go offline first, then the cancellation.
    await c.send(xml('presence', { to: u.bare, type: 'unsubscribed' }));
    const first = await u.expect((s) => s.name === 'presence' && String(s.attrs.from).startsWith('cx2@'));
    assert.equal(first.attrs.type, 'unavailable');
    assert.equal(first.attrs.from, c.jid);
    await u.expect(isPresence('unsubscribed', c.bare));
    await waitSeen(u, c, 'from', 'to', 'after unsubscribed');

    // c unsubscribes from u: u's resources go offline for c.
    c.inbox.drain();
    await c.send(xml('presence', { to: u.bare, type: 'unsubscribe' }));
    await u.expect(isPresence('unsubscribe', c.bare));
    await c.expect(isPresence('unavailable', u.jid));
    await waitSeen(u, c, 'none', 'none', 'after unsubscribe');
    // No more broadcasts either way.
    await u.send(xml('presence', {}, xml('show', {}, 'away')));
    await c.expectNothing((s) => s.name === 'presence' && s.getChildText('show') === 'away', 300);
  });

  it('broadcasts to resources with a negative priority too', async function () {
    const a = await connect('np1', 'r');
    const b = await connect('np2', 'low', { presence: false });
    await b.send(xml('presence', {}, xml('priority', {}, '-5')));
    await b.expect(isPresence(undefined, b.jid));
    await befriend(a, b);
    await a.send(xml('presence', {}, xml('status', {}, 'hello low')));
    await b.expect((s) => s.name === 'presence' && s.attrs.from === a.jid && s.getChildText('status') === 'hello low');
  });

  describe('Appendix A: every subscription stanza in every state', function () {
    for (const kind of ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'] as const) {
      describe(`${kind}`, function () {
        let u: TestClient;
        let c: TestClient;
        const mine: TestClient[] = [];

        before(async function () {
          u = await login(server, `u-${kind}`, PASS, { resource: 'u', presence: true });
          c = await login(server, `c-${kind}`, PASS, { resource: 'c', presence: true });
          mine.push(u, c);
          await rosterGet(u);
          await rosterGet(c);
        });
        after(async function () {
          await Promise.all(mine.splice(0).map((x) => x.stop()));
        });

        /** Remove each other from both rosters: every subscription and request is cancelled. */
        const reset = async () => {
          const remove = (x: TestClient, jid: string) =>
            x.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid, subscription: 'remove' }))));
          // Either side may have no item (a request pending in is not one): item-not-found is fine.
          await remove(u, c.bare);
          await remove(c, u.bare);
          await waitSeen(u, c, 'none', 'none', 'reset');
          await new Promise((r) => setTimeout(r, 100));
          assert.equal(await rosterItem(u, c.bare), undefined);
          assert.equal(await rosterItem(c, u.bare), undefined);
          u.inbox.drain();
          c.inbox.drain();
        };

        for (const state of STATES) {
          const [routed, outNext] = OUTBOUND[kind][state];
          const [deliverable, inNext] = INBOUND[kind][mirror(state)];
          const delivered = routed && deliverable;
          // Both servers agree on the relationship afterwards.
          const contactNext = routed ? inNext : mirror(state);

          it(`user in "${state}" sends ${kind}: ${routed ? 'routed' : 'not routed'}, contact ${delivered ? 'gets it' : 'does not get it'}, → "${outNext}" / contact "${contactNext}"`, async function () {
            this.timeout(30_000);
            assert.equal(contactNext, mirror(outNext), 'the transcribed tables agree');
            await reset();
            for (const [who, type] of SETUP[state]) {
              const [actor, other] = who === 'u' ? [u, c] : [c, u];
              await actor.send(xml('presence', { to: other.bare, type, id: nextId() }));
              await new Promise((r) => setTimeout(r, 30));
            }
            await waitSeen(u, c, visible(state), visible(mirror(state)), `set up ${state}`);
            await new Promise((r) => setTimeout(r, 100));
            u.inbox.drain();
            c.inbox.drain();

            const id = nextId();
            await u.send(xml('presence', { to: c.bare, type: kind, id }));
            if (delivered) {
              const got = await c.expect((s) => s.name === 'presence' && s.attrs.id === id);
              assert.equal(got.attrs.type, kind);
              assert.equal(got.attrs.from, u.bare);
            } else {
              await c.expectNothing((s) => s.name === 'presence' && s.attrs.id === id, 300);
            }
            await waitSeen(u, c, visible(outNext), visible(contactNext), `after ${kind}`);
            // Nothing comes back as an error: presence is never bounced.
            await u.expectNothing((s) => s.name === 'presence' && s.attrs.type === 'error', 50);
          });
        }

        after(async function () {
          await reset().catch(() => undefined);
        });
      });
    }
  });

  it('pre-approves a subscription (§3.4) and approves the later request automatically', async function () {
    const contact = await connect('pa1', 'r');
    const user = await connect('pa2', 'r');
    await contact.send(xml('presence', { to: 'pa2@localhost', type: 'subscribed', id: 'pre' }));
    const push = await contact.expect(isPushOf('pa2@localhost', 'none'));
    assert.equal(rosterQuery(push)!.getChild('item')!.attrs.approved, 'true');
    // Not routed.
    await user.expectNothing((s) => s.attrs.id === 'pre', 300);
    assert.equal((await rosterItem(contact, 'pa2@localhost'))?.attrs.approved, 'true');

    await user.send(xml('presence', { to: 'pa1@localhost', type: 'subscribe', id: 'req' }));
    await user.expect(isPresence('subscribed', 'pa1@localhost'));
    await user.expect(isPresence(undefined, contact.jid));
    await waitSeen(user, contact, 'to', 'from', 'after the pre-approved request');
    // The contact never sees the request, and the pre-approval is used up.
    await contact.expectNothing((s) => s.attrs.id === 'req', 200);
    assert.equal((await rosterItem(contact, 'pa2@localhost'))?.attrs.approved, undefined);
  });

  it('cancels a pre-approval with unsubscribed, without routing it', async function () {
    const contact = await connect('un1', 'r');
    const user = await connect('un2', 'r');
    await contact.send(xml('presence', { to: user.bare, type: 'subscribed' }));
    await contact.expect((s) => isPushOf(user.bare)(s) && rosterQuery(s)!.getChild('item')!.attrs.approved === 'true');
    await contact.send(xml('presence', { to: user.bare, type: 'unsubscribed', id: 'cancel' }));
    const p = await contact.expect(isPushOf(user.bare));
    assert.equal(rosterQuery(p)!.getChild('item')!.attrs.approved, undefined);
    await user.expectNothing((s) => s.attrs.id === 'cancel', 300);
    // Now a request is delivered normally.
    await user.send(xml('presence', { to: contact.bare, type: 'subscribe' }));
    await contact.expect(isPresence('subscribe', user.bare));
  });

  it('stores a request for an offline contact and delivers it at every login until answered', async function () {
    const user = await connect('pr1', 'r');
    await user.send(xml('presence', { to: 'pr2@localhost', type: 'subscribe' }, xml('nick', { xmlns: 'http://jabber.org/protocol/nick' }, 'Pat')));
    await user.expect(isPushOf('pr2@localhost', 'none'));
    await new Promise((r) => setTimeout(r, 200));

    // Connected but not yet available: nothing is delivered before initial presence.
    const c1 = await connect('pr2', 'one', { presence: false });
    await c1.expectNothing(isPresence('subscribe'), 300);
    await c1.send(xml('presence'));
    const req = await c1.expect(isPresence('subscribe', 'pr1@localhost'));
    assert.equal(req.getChild('nick', 'http://jabber.org/protocol/nick')?.text(), 'Pat');
    await c1.stop();

    // Not answered: delivered again at the next login.
    const c2 = await connect('pr2', 'two', { presence: false });
    await c2.send(xml('presence'));
    await c2.expect(isPresence('subscribe', 'pr1@localhost'));
    await c2.send(xml('presence', { to: 'pr1@localhost', type: 'unsubscribed' }));
    await user.expect(isPresence('unsubscribed', 'pr2@localhost'));
    await user.expect(isPushOf('pr2@localhost', 'none'));
    assert.equal(await seen(user, 'pr2@localhost'), 'none');
    await c2.stop();

    // Denied: no longer delivered.
    const c3 = await connect('pr2', 'three', { presence: false });
    await c3.send(xml('presence'));
    await c3.expectNothing(isPresence('subscribe'), 400);
  });

  it('broadcasts presence, answers probes and shares presence between own resources', async function () {
    // b1 ↔ b2 subscribed both ways; b3 is a stranger.
    {
      const x = await connect('b1', 'setup');
      const y = await connect('b2', 'setup');
      await befriend(x, y);
      await Promise.all([x.stop(), y.stop()]);
      clients.length = 0;
    }
    const r1 = await connect('b1', 'r1');
    const b2 = await connect('b2', 'main', { presence: false });
    await b2.send(xml('presence', {}, xml('show', {}, 'chat'), xml('priority', {}, '5')));
    // Own presence echoed, the contact's presence from the probe answer, the contact notified.
    await b2.expect((s) => s.name === 'presence' && s.attrs.from === b2.jid && s.getChildText('show') === 'chat');
    const fromR1 = await b2.expect(isPresence(undefined, r1.jid));
    // The probe came from the bare JID; its answer reaches the available resource, addressed to it.
    assert.equal(fromR1.attrs.to, b2.jid);
    const toR1 = await r1.expect((s) => s.name === 'presence' && s.attrs.from === b2.jid && s.getChildText('show') === 'chat');
    assert.equal(toR1.attrs.to, r1.jid);
    assert.equal(toR1.getChildText('priority'), '5');

    // A second resource of b1: gets r1's presence and b2's; r1 and b2 hear about r2.
    const r2 = await connect('b1', 'r2', { presence: false });
    await r2.send(xml('presence', {}, xml('status', {}, 'second')));
    await r2.expect(isPresence(undefined, r1.jid));
    await r2.expect((s) => s.name === 'presence' && s.attrs.from === b2.jid && s.getChildText('show') === 'chat');
    await r1.expect((s) => s.name === 'presence' && s.attrs.from === r2.jid && s.getChildText('status') === 'second');
    await b2.expect((s) => s.name === 'presence' && s.attrs.from === r2.jid && s.getChildText('status') === 'second');

    // Later presence is broadcast to every resource of the subscriber, addressed to each.
    await b2.send(xml('presence', {}, xml('show', {}, 'away')));
    const a1 = await r1.expect((s) => s.name === 'presence' && s.attrs.from === b2.jid && s.getChildText('show') === 'away');
    const a2 = await r2.expect((s) => s.name === 'presence' && s.attrs.from === b2.jid && s.getChildText('show') === 'away');
    assert.equal(a1.attrs.to, r1.jid);
    assert.equal(a2.attrs.to, r2.jid);

    // Probes: a subscriber gets the presence of each available resource, a stranger nothing.
    const b3 = await connect('b3', 'r');
    await b3.send(xml('presence', { to: 'b1@localhost', type: 'probe' }));
    await b3.expectNothing((s) => s.name === 'presence' && (s.attrs.from ?? '').startsWith('b1@'), 400);
    b2.inbox.drain();
    await b2.send(xml('presence', { to: 'b1@localhost', type: 'probe' }));
    const ans = await Promise.all([b2.expect(isPresence(undefined, r1.jid)), b2.expect(isPresence(undefined, r2.jid))]);
    assert.equal(ans[0].attrs.to, b2.jid);
    assert.equal(ans[1].getChildText('status'), 'second');

    // Going offline: subscribers and the other resource get unavailable.
    await r2.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'bye')));
    const off = await b2.expect(isPresence('unavailable', r2.jid));
    assert.equal(off.getChildText('status'), 'bye');
    await r1.expect(isPresence('unavailable', r2.jid));
    await r2.expect(isPresence('unavailable', r2.jid)); // own echo
    await r1.stop();
    await b2.expect(isPresence('unavailable', r1.jid));

    // With no available resource a probe is answered with unavailable from the bare JID.
    b2.inbox.drain();
    await b2.send(xml('presence', { to: 'b1@localhost', type: 'probe' }));
    const none = await b2.expect((s) => s.name === 'presence' && (s.attrs.from ?? '').startsWith('b1@'));
    assert.equal(none.attrs.type, 'unavailable');
    assert.equal(none.attrs.from, 'b1@localhost');
  });

  it('tracks directed presence and sends unavailable to its recipients when the session ends', async function () {
    const d1 = await connect('d1', 'r');
    const d2 = await connect('d2', 'r');
    const d3 = await connect('d3', 'r');
    await d1.send(xml('presence', { to: 'd2@localhost' }, xml('status', {}, 'just for you')));
    const got = await d2.expect(isPresence(undefined, d1.jid));
    assert.equal(got.getChildText('status'), 'just for you');
    await d1.send(xml('presence', { to: d3.jid }));
    await d3.expect(isPresence(undefined, d1.jid));
    // Directed unavailable ends the tracking for d3.
    await d1.send(xml('presence', { to: d3.jid, type: 'unavailable' }));
    await d3.expect(isPresence('unavailable', d1.jid));
    // Broadcast presence is not sent to directed-presence recipients.
    await d1.send(xml('presence', {}, xml('show', {}, 'xa')));
    await d2.expectNothing((s) => s.name === 'presence' && s.getChildText('show') === 'xa', 300);
    // The session ends: d2 learns that d1 is gone; d3 already knows.
    d3.inbox.drain();
    await d1.stop();
    await d2.expect(isPresence('unavailable', d1.jid));
    await d3.expectNothing(isPresence('unavailable', d1.jid), 300);
  });

  it('broadcasts unavailable when the TCP connection drops without </stream:stream>', async function () {
    const a = await connect('tcp1', 'setup');
    const b = await connect('tcp2', 'watch');
    await befriend(a, b);
    await a.stop();
    await b.expect(isPresence('unavailable', a.jid));

    const raw = await RawClient.connect(server.c2sPort);
    raws.push(raw);
    raw.openStream();
    await raw.starttls();
    const jid = await raw.authenticate('tcp1', PASS, 'raw');
    assert.equal(jid, 'tcp1@localhost/raw');
    raw.write('<presence/>');
    await b.expect(isPresence(undefined, jid));
    raw.socket.destroy(); // no </stream:stream>, no unavailable
    const gone = await b.expect(isPresence('unavailable', jid));
    assert.equal(gone.attrs.to, b.jid);
  });

  it('answers bad-request to an invalid presence type and drops presence for unknown users', async function () {
    const c = await connect('inv', 'r');
    await c.send(xml('presence', { type: 'available', id: 'badtype' }));
    const err = await c.expect((s) => s.attrs.id === 'badtype');
    assert.equal(err.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(err), 'bad-request');
    for (const type of [undefined, 'subscribe', 'probe', 'unsubscribed']) {
      await c.send(xml('presence', type ? { to: 'nobody@localhost', type, id: `nx-${type}` } : { to: 'nobody@localhost', id: 'nx-avail' }));
    }
    await c.expectNothing((s) => String(s.attrs.id ?? '').startsWith('nx-'), 400);
    // The request to the unknown account stays pending on the user's side.
    assert.equal(await seen(c, 'nobody@localhost'), 'none+ask');
  });

  it('lets presence to a full JID reach only that resource and a connected-only resource get no broadcast', async function () {
    const a = await connect('mr1', 'one');
    const a2 = await connect('mr1', 'quiet', { presence: false });
    const b = await connect('mr2', 'r');
    await b.send(xml('presence', { to: a.jid, id: 'direct-full' }));
    await a.expect((s) => s.attrs.id === 'direct-full');
    await a2.expectNothing((s) => s.attrs.id === 'direct-full', 200);
    await b.send(xml('presence', { to: 'mr1@localhost', id: 'direct-bare' }));
    const got = await a.expect((s) => s.attrs.id === 'direct-bare');
    assert.equal(got.attrs.to, a.jid);
    await a2.expectNothing((s) => s.attrs.id === 'direct-bare', 200);
    // A resource that never sent presence gets no broadcast from its own account either.
    await a.send(xml('presence', {}, xml('show', {}, 'dnd')));
    await a2.expectNothing((s) => s.name === 'presence' && s.getChildText('show') === 'dnd', 300);
  });
});

describe('e2e: presence subscriptions survive a restart', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string, resource: string, presence = true) => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    await rosterGet(c);
    if (presence) await c.send(xml('presence'));
    return c;
  };

  before(async function () {
    this.timeout(60_000);
    server = await startServer({ users: { s1: PASS, s2: PASS, s3: PASS } });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('keeps subscriptions, pending requests and approvals across a restart', async function () {
    this.timeout(60_000);
    const s1 = await connect('s1', 'a');
    const s2 = await connect('s2', 'a');
    await befriend(s1, s2);
    await s1.stop();
    // s3 asks s1 while s1 is offline.
    const s3 = await connect('s3', 'a');
    await s3.send(xml('presence', { to: 's1@localhost', type: 'subscribe' }));
    await s3.expect(isPushOf('s1@localhost', 'none'));
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(clients.splice(0).map((c) => c.stop()));

    await server.restart();

    const t2 = await connect('s2', 'b');
    const t1 = await connect('s1', 'b', false);
    assert.equal(await seen(t1, 's2@localhost'), 'both');
    assert.equal(await seen(t2, 's1@localhost'), 'both');
    await t1.send(xml('presence'));
    // The probe is answered from the contact's live session; the stored request is re-delivered.
    await t1.expect(isPresence(undefined, t2.jid));
    await t2.expect(isPresence(undefined, t1.jid));
    await t1.expect(isPresence('subscribe', 's3@localhost'));
    const t3 = await connect('s3', 'b');
    assert.equal(await seen(t3, 's1@localhost'), 'none+ask');
    await t1.send(xml('presence', { to: 's3@localhost', type: 'subscribed' }));
    await t3.expect(isPresence('subscribed', 's1@localhost'));
    await waitSeen(t3, t1, 'to', 'from', 'approved after restart');
  });
});
