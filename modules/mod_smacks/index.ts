//% requires_core_features: sessions-v1, stanza-events-v1, events-async, session-filters, module-session-state, module-capabilities, storage-map, storage-keyval
// Stream Management (XEP-0198, urn:xmpp:sm:3) for client streams:
//  - <enable/> once bound (with resume: <enabled id resume max [location]/>), <failed/> with a
//    stanza error condition otherwise (unexpected-request before binding or twice; not-authorized
//    before authentication);
//  - counting: 'h' of stanzas handled from the client (the `stanzas/in` filter) and of stanzas
//    sent to it (the `stanzas/out` filter, after every other filter), both mod 2^32; <r/> is
//    answered with <a/> once everything it acknowledges is durable; the server asks with <r/>
//    after `requestAckAfterStanzas` unacknowledged stanzas or `requestAckAfterSeconds` seconds;
//    an <a/> acknowledging more than was sent ends the stream (undefined-condition with
//    <handled-count-too-high/>);
//  - resumption: a resumable session whose connection drops (`c2s-connection-lost`, from the
//    client streams of core/net/c2s.ts, whatever the transport)
//    hibernates for `max` seconds, bound and available; <resume previd h/> on a new connection of
//    the same account takes it over (SessionControl.resume: the old connection, if still open, is
//    closed), answers <resumed/> and re-sends what the client had not acknowledged;
//  - a session that ends without being resumed loses nothing unacknowledged: chat and normal
//    messages are routed again to the account (another resource, else offline storage) with a
//    Delayed Delivery stamp (XEP-0203), iq requests and groupchat messages get service-unavailable,
//    presence and the rest are dropped (RFC 6121 §8.5.3.2.1 for an unavailable resource);
//  - the resumption state is durable (store.ts), so a client resumes across a restart or crash;
//    a stanza is serialised once, for the socket write and the journal (serialiseOutgoing); the
//    count of handled stanzas from the client goes to the journal with each batch, once handled;
//  - inline with SASL2/Bind2 (XEP-0198 §… and XEP-0386): <resume/> in <authenticate/> and
//    <enable/> in <bind/>.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Element } from '@xmpp/xml';
import { attrsOf, defineModule, errorReply, isBound, NS, parseXml, serialiseOutgoing, StanzaError, xml, type Session, type Stanza } from '../../core/api.ts';
import { addH, newlyAcked, parseH } from './counter.ts';
import { ResumptionStore, type StoredSession } from './store.ts';

const NS_SM = 'urn:xmpp:sm:3';
const NS_DELAY = 'urn:xmpp:delay';
/** Messages that are copies of others (carbons, archive results): never routed again. */
const COPY_NAMESPACES = new Set(['urn:xmpp:carbons:2', 'urn:xmpp:mam:2', 'urn:xmpp:forward:0']);

const options = {
  resumeTimeout: { type: 'integer', description: 'Longest time a session waits to be resumed, in seconds (the `max` offered; 0: no resumption)', default: 600, min: 0 },
  requestAckAfterStanzas: { type: 'integer', description: 'Ask the client for an ack (<r/>) after this many unacknowledged stanzas', default: 5, min: 1 },
  requestAckAfterSeconds: { type: 'integer', description: 'Ask the client for an ack (<r/>) when a stanza stayed unacknowledged this many seconds', default: 30, min: 1 },
  maxUnacked: { type: 'integer', description: 'Most unacknowledged stanzas kept per session; more end it (what it holds is re-routed)', default: 1000, min: 1 },
  location: { type: 'string', description: 'Preferred address (host:port) to resume on, sent as <enabled location>; empty: none', default: '' },
} as const;

/** A stanza sent to the client, not yet acknowledged: its XML as written (parsed again only to re-send or re-route it). */
interface Queued {
  seq: number;
  xml: string;
  sent: number;
}

/** Stream management state of a session (module.state). */
interface SmState {
  /** The resumption id; undefined when enabled without resumption. */
  id: string | undefined;
  username: string;
  resource: string;
  /** Stanzas handled from the client, mod 2^32 (counted as each enters, before it is handled). */
  hIn: number;
  /** The inbound count last given to the journal: every stanza it covers was handled then. */
  hInStored: number;
  /** The client's last presence written to the journal's header (changed: the header is written again). */
  presenceStored: Element | undefined;
  /** The client's last acknowledged count of what we sent, mod 2^32. */
  hOutAcked: number;
  queue: Queued[];
  nextSeq: number;
  max: number;
  /** An <r/> is outstanding. */
  requested: boolean;
  ackTimer: NodeJS.Timeout | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Ended (resumed elsewhere is not an end): nothing is counted or kept any more. */
  ended: boolean;
}

/** A stream-level SM element, e.g. <failed/>, <a/>. */
function sm(name: string, attrs: Record<string, string | undefined> = {}, ...children: Element[]): Element {
  return xml(name, { xmlns: NS_SM, ...attrs }, ...children);
}

function failed(condition: string, h?: number, text?: string): Element {
  const el = sm('failed', h === undefined ? {} : { h: String(h) }, new Element(condition, { xmlns: NS.stanzas }));
  if (text) el.cnode(new Element('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }).t(text));
  return el;
}


export default defineModule({
  description: 'Stream Management (XEP-0198): acks, resumption (durable across restarts)',
  capabilities: ['sessions', 'routing'],
  options,
  async load(module) {
    const host = module.host;
    const { sessions: control, routing } = module.privileged;
    /** Resumable sessions whose client sent stanzas since their inbound count was last journaled. */
    const counted = new Set<Session>();
    /**
     * The journal takes a batch: the inbound count of each session that sent something goes with
     * it, once what it counts is handled (in order with the session's stanzas: at once unless a
     * handler is still at work; then with a later batch). So a count on disk never covers a stanza
     * whose effects are not (its journal records are in this batch or an earlier one).
     */
    const beforeBatch = () => {
      for (const session of counted) {
        const st = stateOf(session);
        if (!st || st.ended || st.id === undefined) continue;
        const n = st.hIn;
        routing.inOrder(session, () => storeHandled(st, n));
      }
      counted.clear();
    };
    /** The session's inbound count goes to the journal with the next batch (due soon, also if nothing else is recorded). */
    const countLater = (session: Session) => {
      if (counted.size === 0) store.wake();
      counted.add(session);
    };
    const storeHandled = (st: SmState, n: number) => {
      if (st.ended || st.id === undefined) return;
      st.hInStored = n;
      store.handled(st.username, st.id, n);
    };
    const store = new ResumptionStore(path.join(module.dataDir, 'smacks'), host, (err) => module.log.error('resumption journal: %s', err), { legacy: module.storage.map(), beforeBatch });
    await store.open();
    /** Resumable sessions in memory, by resumption id. */
    const byId = new Map<string, Session>();
    /** Stored sessions of a previous run waiting for resumption, by id (their expiry timers). */
    const stored = new Map<string, { saved: StoredSession; timer: NodeJS.Timeout }>();
    /** Stanzas being re-sent on resumption: their queue entries (same sequence numbers). */
    const resending = new WeakMap<Stanza, Queued>();
    /** Stanzas the module routes on a client's behalf (its presence after a restart): not counted. */
    const synthetic = new WeakSet<Stanza>();
    let stopping = false;

    // Timers of their own, not module.setTimeout: that one keeps a cleanup per timer until unload,
    // and these come and go with every ack.
    const timers = new Set<NodeJS.Timeout>();
    const later = (fn: () => void, ms: number): NodeJS.Timeout => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      t.unref();
      timers.add(t);
      return t;
    };
    const cancel = (t: NodeJS.Timeout | undefined) => {
      if (t === undefined) return;
      clearTimeout(t);
      timers.delete(t);
    };
    module.signal.addEventListener('abort', () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    }, { once: true });

    const stateOf = (session: Session) => module.peekState<SmState>(session);
    const resumeTimeout = () => module.option('resumeTimeout');

    const header = (session: Session, st: SmState, expires: number | null) => ({
      resource: st.resource,
      hIn: st.hInStored,
      hOutAcked: st.hOutAcked,
      max: st.max,
      expires,
      presence: session.presence ? session.presence.toString() : null,
      interested: session.interested === true,
    });
    const saveHeader = (session: Session, st: SmState, expires: number | null = null) => {
      if (st.id === undefined) return;
      st.presenceStored = session.presence;
      store.header(st.username, st.id, header(session, st, expires));
      if (st.hIn !== st.hInStored) countLater(session);
    };

    // -- stream features ------------------------------------------------------------------------

    module.hook('stream-features', ({ origin, features }) => {
      // Not once enabled (inline in Bind2, before SASL2's post-authentication features): offering it
      // again makes clients (xmpp.js 0.14) resume or re-enable, fail, and stop acknowledging.
      if (origin.type === 'c2s' && !stateOf(origin)) features.cnode(sm('sm'));
    });
    module.hook('sasl2-inline-features', ({ inline }) => {
      if (resumeTimeout() > 0) inline.cnode(sm('sm'));
    });
    module.hook('bind2-inline-features', ({ inline }) => {
      inline.c('feature', { var: NS_SM });
    });

    // -- counting -------------------------------------------------------------------------------

    // First of all filters on the way in: every stanza the client sent counts as handled.
    module.filter('stanzas/in', (stanza, session) => {
      const st = stateOf(session);
      if (st && !st.ended && !synthetic.has(stanza)) {
        st.hIn = addH(st.hIn, 1);
        if (st.id !== undefined) countLater(session);
      }
      return stanza;
    }, 1_000_000);

    // Last of all filters on the way out: what is actually written is what the client counts.
    module.filter('stanzas/out', (stanza, session) => {
      const st = stateOf(session);
      if (!st || st.ended) return stanza;
      let entry = resending.get(stanza);
      if (entry) {
        resending.delete(stanza);
      } else {
        // Serialised once: this string is also what the client stream writes.
        entry = { seq: st.nextSeq++, xml: serialiseOutgoing(stanza), sent: Date.now() };
        if (st.id !== undefined) store.append(st.username, st.id, entry.seq, entry.xml, entry.sent);
      }
      st.queue.push(entry);
      if (st.queue.length > module.option('maxUnacked')) {
        module.log.warn('%s has %d unacknowledged stanzas: ending its session', session.full_jid, st.queue.length);
        setImmediate(() => (session.hibernating ? control.destroy(session, { condition: 'policy-violation' }) : session.close({ condition: 'policy-violation', text: 'Too many unacknowledged stanzas' })));
      } else if (!session.hibernating) {
        scheduleRequest(session, st);
      }
      return stanza;
    }, -1_000_000);

    /** Ask for an ack after N stanzas at once, or T seconds after the first unacknowledged one. */
    const scheduleRequest = (session: Session, st: SmState) => {
      if (st.requested) return;
      if (st.queue.length >= module.option('requestAckAfterStanzas')) {
        // After the stanza that reached the count has been written.
        st.requested = true;
        setImmediate(() => {
          if (!session.hibernating && !st.ended) session.send(sm('r').toString());
        });
        return;
      }
      st.ackTimer ??= later(() => {
        st.ackTimer = undefined;
        if (st.ended || session.hibernating || st.requested || st.queue.length === 0) return;
        st.requested = true;
        session.send(sm('r').toString());
      }, module.option('requestAckAfterSeconds') * 1000);
    };

    /** The client acknowledged `h`: drop what it has; false when it claims more than was sent. */
    const acknowledge = (st: SmState, h: number): boolean => {
      const count = newlyAcked(h, st.hOutAcked);
      if (count > st.queue.length) return false;
      if (count > 0) {
        const done = st.queue.splice(0, count);
        if (st.id !== undefined) store.ack(st.username, st.id, h, done.map((q) => q.seq));
      }
      st.hOutAcked = h;
      st.requested = false;
      if (st.queue.length === 0 && st.ackTimer) {
        cancel(st.ackTimer);
        st.ackTimer = undefined;
      }
      return true;
    };

    const sentCount = (st: SmState) => addH(st.hOutAcked, st.queue.length);

    /** Stream error for an <a/> beyond what was sent (XEP-0198 §4). */
    const countTooHigh = (session: Session, st: SmState, h: number) => {
      module.log.warn('%s acknowledged %d stanzas, only %d were sent: closing the stream', session.full_jid, h, sentCount(st));
      session.send(`<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>${sm('handled-count-too-high', { h: String(h), 'send-count': String(sentCount(st)) }).toString()}</stream:error>`);
      session.close();
    };

    // -- enabling ------------------------------------------------------------------------------------

    /** Enable SM on a bound session; the <enabled/> (or <failed/>) element to send. */
    const enable = (session: Session, element: Element): Element => {
      if (session.type !== 'c2s') return failed('not-authorized');
      if (!isBound(session)) return failed('unexpected-request', undefined, 'Bind a resource before enabling stream management');
      if (stateOf(session)) return failed('unexpected-request', undefined, 'Stream management is already enabled');
      const wantsResume = element.attrs.resume === 'true' || element.attrs.resume === '1';
      const limit = resumeTimeout();
      const asked = parseH(element.attrs.max as string | undefined);
      const max = asked !== undefined && asked > 0 ? Math.min(asked, limit) : limit;
      const resumable = wantsResume && limit > 0;
      const st: SmState = {
        id: resumable ? randomBytes(18).toString('base64url') : undefined,
        username: session.username,
        resource: session.resource,
        hIn: 0,
        hInStored: 0,
        presenceStored: undefined,
        hOutAcked: 0,
        queue: [],
        nextSeq: 0,
        max,
        requested: false,
        ackTimer: undefined,
        expiryTimer: undefined,
        ended: false,
      };
      module.state(session, () => st);
      if (st.id !== undefined) {
        byId.set(st.id, session);
        saveHeader(session, st);
      }
      module.log('%s enabled stream management%s', session.full_jid, resumable ? ` (resumable for ${max} s)` : '');
      const location = module.option('location');
      return sm('enabled', resumable ? { id: st.id, resume: 'true', max: String(max), ...(location ? { location } : {}) } : {});
    };

    module.hook(`stream-element/${NS_SM}:enable`, ({ origin, element }) => {
      origin.send(enable(origin, element));
      return true;
    });

    module.hook(`bind2-inline/${NS_SM}:enable`, ({ session, element, bound }) => {
      bound.cnode(enable(session, element));
      return true;
    });

    // -- acks ---------------------------------------------------------------------------------------

    module.hook(`stream-element/${NS_SM}:r`, async ({ origin }) => {
      const st = stateOf(origin);
      if (!st) {
        origin.close({ condition: 'unsupported-stanza-type', text: 'Stream management is not enabled' });
        return true;
      }
      // Acknowledged only once what it acknowledges is durable (routed, stored). In order with the
      // stanzas before it: all of them are handled now.
      if (st.id !== undefined) {
        if (st.presenceStored !== origin.presence) saveHeader(origin, st);
        storeHandled(st, st.hIn);
      }
      try {
        await store.flushed();
      } catch {
        return true; // not durable (logged): no ack; the client asks again or resumes
      }
      if (!origin.destroyed && !origin.hibernating) origin.send(sm('a', { h: String(st.hIn) }).toString());
      return true;
    });

    module.hook(`stream-element/${NS_SM}:a`, ({ origin, element }) => {
      const st = stateOf(origin);
      if (!st) {
        origin.close({ condition: 'unsupported-stanza-type', text: 'Stream management is not enabled' });
        return true;
      }
      const h = parseH(element.attrs.h as string | undefined);
      if (h === undefined) {
        origin.close({ condition: 'invalid-xml', text: "<a/> needs an 'h' from 0 to 4294967295" });
        return true;
      }
      if (!acknowledge(st, h)) countTooHigh(origin, st, h);
      return true;
    });

    // -- hibernation and the end of a session -------------------------------------------------------

    module.hook('c2s-connection-lost', ({ session }) => {
      const st = stateOf(session);
      if (!st || st.ended || st.id === undefined || stopping) return undefined;
      session.hibernating = true;
      st.requested = false;
      cancel(st.ackTimer);
      st.ackTimer = undefined;
      const expires = Date.now() + st.max * 1000;
      saveHeader(session, st, expires);
      st.expiryTimer = later(() => {
        module.log.info('%s was not resumed within %d s', session.full_jid, st.max);
        control.destroy(session, { condition: 'connection-timeout', text: 'Not resumed in time' });
      }, st.max * 1000);
      module.log.info('%s hibernates (%d unacknowledged) for up to %d s', session.full_jid, st.queue.length, st.max);
      return true;
    });

    /** Route what the client never acknowledged as for an unavailable resource (RFC 6121 §8.5.3.2.1). */
    /**
     * A message the ended session never acknowledged goes to the account again — its other
     * resources, else offline storage — directly, not through the router: it was routed (archived,
     * carbon-copied) once already. If offline storage refuses it, its sender gets the error.
     */
    const redeliver = async (message: Stanza, username: string, origin: Session) => {
      const targets = module.sessions.mostAvailableSessions(host, username).filter((s) => !s.destroyed && s !== origin);
      if (targets.length) {
        for (const s of targets) s.send(message);
        return;
      }
      try {
        const stored = await module.fire('message/offline/handle', { username, host, stanza: message, origin });
        if (stored === undefined) module.send(errorReply(message, 'cancel', 'service-unavailable'));
      } catch (err) {
        const condition = err instanceof StanzaError ? err.condition : 'service-unavailable';
        module.send(errorReply(message, 'cancel', condition, err instanceof StanzaError ? err.text : undefined));
      }
    };

    const reroute = (stanzas: { xml: string; sent: number }[], username: string, origin: Session | undefined) => {
      let messages = 0;
      for (const { xml: text, sent } of stanzas) {
        let stanza: Stanza;
        try {
          stanza = parseXml(text) as Stanza;
        } catch (err) {
          module.log.error('dropping an unreadable unacknowledged stanza of %s@%s: %s', username, host, err);
          continue;
        }
        const type = stanza.attrs.type;
        if (stanza.name === 'iq') {
          if (type === 'get' || type === 'set') module.send(errorReply(stanza, 'cancel', 'service-unavailable'));
          continue;
        }
        if (stanza.name !== 'message') continue; // presence: dropped
        if (type === 'groupchat') {
          module.send(errorReply(stanza, 'cancel', 'service-unavailable'));
          continue;
        }
        if (type !== undefined && type !== 'chat' && type !== 'normal') continue; // headline, error
        if (stanza.getChildElements().some((c) => COPY_NAMESPACES.has(attrsOf(c).xmlns ?? ''))) continue;
        const copy = stanza; // parsed from the queue: a copy of its own
        if (!copy.getChild('delay', NS_DELAY)) copy.cnode(new Element('delay', { xmlns: NS_DELAY, from: host, stamp: new Date(sent).toISOString() }));
        if (origin === undefined) {
          module.send(copy);
          messages++;
          continue;
        }
        void redeliver(copy, username, origin).catch((err: unknown) => module.log.error('cannot re-deliver a message of %s@%s: %s', username, host, err));
        messages++;
      }
      if (messages) module.log.info('re-routed %d unacknowledged message(s) of %s@%s', messages, username, host);
    };

    // A client that stopped reading (limits.sendQueue): what it never got is in our queue, and
    // is routed once with the rest when the session ends — not a second time by the client
    // stream (core/net/c2s.ts).
    module.hook('c2s-undelivered', ({ session }) => {
      const st = stateOf(session);
      return st && !st.ended ? true : undefined;
    });

    module.hook('connection-removed', ({ session }) => {
      const st = stateOf(session);
      if (!st || st.ended) return;
      st.ended = true;
      cancel(st.ackTimer);
      cancel(st.expiryTimer);
      if (st.id !== undefined && byId.get(st.id) === session) byId.delete(st.id);
      // Shutting down: the durable state stays, to be resumed after the restart (with the inbound
      // count of what is handled by now).
      if (stopping && st.id !== undefined) {
        const n = st.hIn;
        routing.inOrder(session, () => {
          st.hInStored = n;
          store.handled(st.username, st.id!, n);
        });
        saveHeader(session, st, Date.now() + st.max * 1000);
        void store.flush();
        return;
      }
      if (st.id !== undefined) store.drop(st.username, st.id);
      reroute(st.queue, st.username, session);
      st.queue = [];
    });

    module.hookGlobal('server-stopping', () => {
      stopping = true;
      for (const session of byId.values()) {
        const st = stateOf(session);
        if (st) saveHeader(session, st, Date.now() + st.max * 1000);
      }
      void store.flush();
    }, 1000);

    // -- resumption ---------------------------------------------------------------------------------

    /** Re-send the queue on the resumed stream (the same entries, in order). */
    const resend = (session: Session, st: SmState) => {
      const old = st.queue;
      st.queue = [];
      for (const q of old) {
        let stanza: Stanza;
        try {
          stanza = parseXml(q.xml) as Stanza;
        } catch (err) {
          module.log.error('dropping an unreadable stored stanza of %s: %s', session.full_jid, err);
          continue;
        }
        resending.set(stanza, q);
        session.send(stanza);
        resending.delete(stanza);
      }
      // Entries a filter held back this time (CSI) are sent again later as new ones.
      const kept = new Set(st.queue.map((q) => q.seq));
      const gone = old.filter((q) => !kept.has(q.seq)).map((q) => q.seq);
      if (gone.length && st.id !== undefined) store.remove(st.username, st.id, gone);
      if (st.queue.length) scheduleRequest(session, st);
    };

    /**
     * Resume `previd` on `carrier` (authenticated, unbound). Returns the answer: <resumed/> (then
     * `after` re-sends the queue) or <failed/>.
     */
    const resume = async (carrier: Session, element: Element): Promise<{ answer: Element; after?: () => void }> => {
      if (carrier.type !== 'c2s' || !carrier.username) return { answer: failed('not-authorized') };
      if (carrier.full_jid !== undefined || stateOf(carrier)) return { answer: failed('unexpected-request', undefined, 'Resume before binding a resource') };
      const previd = element.attrs.previd as string | undefined;
      const h = parseH(element.attrs.h as string | undefined);
      if (!previd || h === undefined) return { answer: failed('bad-request', undefined, "<resume/> needs 'previd' and 'h'") };
      const session = byId.get(previd);
      if (session) {
        const st = stateOf(session)!;
        if (session.username !== carrier.username || st.ended) return { answer: failed('item-not-found') };
        if (!acknowledge(st, h)) {
          return { answer: failed('undefined-condition', st.hIn, 'The client acknowledged more stanzas than were sent') };
        }
        // The 'h' the answer gives the client (what the server handled) is durable first: the
        // batch awaited carries the inbound count (unless a handler of the dropped connection's
        // last stanza is still at work: then a later one).
        if (st.hIn !== st.hInStored) countLater(session);
        try {
          await store.flushed();
        } catch {
          return { answer: failed('internal-server-error', undefined, 'The resumption state could not be stored') };
        }
        if (st.ended || byId.get(previd) !== session || carrier.destroyed) return { answer: failed('item-not-found') };
        cancel(st.expiryTimer);
        st.expiryTimer = undefined;
        control.resume(session, carrier);
        saveHeader(session, st);
        module.log.info('%s resumed (%d to re-send)', session.full_jid, st.queue.length);
        return { answer: sm('resumed', { previd, h: String(st.hIn) }), after: () => resend(session, st) };
      }
      return resumeStored(carrier, previd, h);
    };

    /** Resume a session of a previous run of the server from the durable state. */
    const resumeStored = async (carrier: Session, previd: string, h: number): Promise<{ answer: Element; after?: () => void }> => {
      const username = carrier.username!;
      const waiting = stored.get(previd);
      if (!waiting || waiting.saved.username !== username) return { answer: failed('item-not-found') };
      const saved = waiting.saved;
      const count = newlyAcked(h, saved.header.hOutAcked);
      if (count > saved.queue.length) return { answer: failed('undefined-condition', saved.header.hIn, 'The client acknowledged more stanzas than were sent') };
      cancel(waiting.timer);
      stored.delete(previd);
      const r = await control.bind(carrier, saved.header.resource);
      if (!r.ok || !isBound(carrier)) {
        module.log.warn('cannot resume a session of %s@%s after a restart: binding failed (%s)', username, host, r.ok ? 'not bound' : r.condition);
        expireStored(saved);
        return { answer: failed('item-not-found', saved.header.hIn) };
      }
      const session = carrier;
      const st: SmState = {
        id: previd,
        username,
        resource: session.resource,
        hIn: saved.header.hIn,
        hInStored: saved.header.hIn,
        presenceStored: undefined,
        hOutAcked: saved.header.hOutAcked,
        queue: [],
        nextSeq: (saved.queue.at(-1)?.seq ?? -1) + 1,
        max: saved.header.max,
        requested: false,
        ackTimer: undefined,
        expiryTimer: undefined,
        ended: false,
      };
      st.queue = saved.queue.map((q) => ({ seq: q.seq, xml: q.xml, sent: q.sent }));
      module.state(session, () => st);
      byId.set(previd, session);
      acknowledge(st, h);
      if (saved.header.interested) session.interested = true;
      saveHeader(session, st);
      module.log.info('%s resumed after a restart (%d to re-send)', session.full_jid, st.queue.length);
      return {
        answer: sm('resumed', { previd, h: String(st.hIn) }),
        after: () => {
          // Available again as it was: its presence goes out on its behalf (not counted as its stanza).
          if (saved.header.presence) {
            try {
              const presence = parseXml(saved.header.presence) as Stanza;
              delete presence.attrs.from;
              synthetic.add(presence);
              routing.fromClient(session, presence);
            } catch (err) {
              module.log.error('cannot restore the presence of %s: %s', session.full_jid, err);
            }
          }
          resend(session, st);
        },
      };
    };

    module.hook(`stream-element/${NS_SM}:resume`, async ({ origin, element }) => {
      const { answer, after } = await resume(origin, element);
      if (after) {
        // The carrier's stream now carries the resumed session (or the carrier was bound to it).
        const session = answer.name === 'resumed' ? (byId.get(element.attrs.previd as string) ?? origin) : origin;
        session.send(answer);
        after();
      } else {
        origin.send(answer);
      }
      return true;
    });

    // SASL2 (XEP-0388) inline resumption: before Bind2 (priority above 50), in the <success/>.
    module.hook('sasl2-success', async (event) => {
      const { session, request, success } = event;
      const el = request.getChild('resume', NS_SM);
      if (!el) return undefined;
      const { answer, after } = await resume(session, el);
      success.cnode(answer);
      if (after) {
        // <success/> goes out on the resumed session; what it had not acknowledged right after.
        event.resumed = byId.get(el.attrs.previd as string) ?? session;
        setImmediate(after);
        // Bind2 must not bind anything else: its <bind/> is dropped once resumed (XEP-0386 §… ).
        request.remove('bind', 'urn:xmpp:bind:0');
      }
      return undefined;
    }, 100);

    // -- sessions of a previous run ----------------------------------------------------------------

    /** A stored session was not resumed in time: its stanzas are routed, its state forgotten. */
    const expireStored = (saved: StoredSession) => {
      stored.delete(saved.id);
      store.drop(saved.username, saved.id);
      // No session of this run to speak for (the server restarted): routed as anew.
      reroute(saved.queue, saved.username, undefined);
    };

    const loadStored = async () => {
      for (const saved of store.loadAll()) {
        if (byId.has(saved.id) || stored.has(saved.id)) continue;
        const until = saved.header.expires ?? Date.now() + saved.header.max * 1000;
        const timer = later(() => {
          module.log.info('%s@%s did not resume a session of the previous run in time', saved.username, host);
          expireStored(saved);
        }, Math.max(0, until - Date.now()));
        stored.set(saved.id, { saved, timer });
      }
      if (stored.size) module.log.info('%d session(s) of a previous run may resume', stored.size);
    };
    await loadStored();
    // Whatever changed last is on disk before the storage closes.
    module.task(async (signal) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      await store.close();
    });

    module.export('stats', () => ({ resumable: byId.size, storedFromPreviousRun: stored.size }), 'Resumable sessions in memory and from the previous run');
  },
});

