// The stanza router: takes a stanza from a client session (or from a module, a component, the
// server), checks and stamps its addresses, and dispatches it by event name:
//   pre-<kind>/<dest>   on the origin's host, for stanzas sent by local clients (outbound hooks)
//   <kind>/<dest>       on the destination host (delivery)
// with <dest> one of: host (the domain itself), bare, full, self (an iq to one's own account).
// mod_iq then dispatches iq get/set by payload: iq-get/<dest>/<xmlns>:<name>.
//
// Dispatch is asynchronous where a handler needs it, and ordered per session (Prosody's
// per-session runner): a handler may return a Promise (util/events.ts), and while it is pending,
// later stanzas from the same session wait in that session's queue; other sessions go on. When
// no handler awaits, everything stays synchronous and allocates nothing beyond the event.
// A handler that throws or rejects with a StanzaError gets that error reply; any other failure
// gets internal-server-error. Unhandled iq get/set and messages get service-unavailable;
// presence is dropped; result and error stanzas are never answered with an error.
import type { EventBus } from './util/events.ts';
import type { DestType, GlobalEvents, StanzaEvent } from './event-types.ts';
import type { HostManager } from './hostmanager.ts';
import { prep, split } from './util/jid.ts';
import { getLogger } from './util/log.ts';
import { observers } from './util/observe.ts';
import type { Session, SessionFilters } from './session.ts';
import { NS, attrsOf, errorReply, iqPayload, mustNotReplyWithError, type Stanza, type StanzaKind } from './util/stanza.ts';
import { StanzaError, type StanzaErrorCondition, type StanzaErrorExtra, type StanzaErrorType } from './util/errors.ts';

/**
 * Delivery of stanzas: what stream modules and the server route through (the single-process
 * implementation is StanzaRouter; a cluster layer would provide another).
 */
export interface Routing {
  /**
   * A stanza (message, presence, iq) read from an authenticated client's stream. It is handled in
   * order with the session's other stanzas: checked (before binding only the bind or session iq
   * is accepted; a foreign 'from' is refused), filtered (`stanzas/in`), stamped and dispatched. A
   * stanza that breaks the rules closes the session's stream (not-authorized, invalid-from).
   */
  fromClient(origin: Session, stanza: Stanza): void;
  /** A stanza whose 'from' is trusted (modules, components, the server), in order per session. */
  route(origin: Session, stanza: Stanza): void;
  /** Run `task` in order with the stanzas of `session` (e.g. a stream element after them). */
  inOrder(session: Session, task: () => unknown): void;
  /** Send an error reply for `stanza` back to its origin (never for errors and iq results). */
  bounce(origin: Session, stanza: Stanza, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string, extra?: StanzaErrorExtra): void;
  /** Hold routing (a module swap); returns the release function. Holds nest. */
  hold(): () => void;
}

const log = getLogger('core:router');

/** A stanza or a task waiting for its turn in a session's queue (or for the end of a hold). */
interface Waiting {
  stanza: Stanza | undefined;
  fromClient: boolean;
  task: (() => unknown) | undefined;
  /** When a client's stanza arrived (performance.now()), while observers.routed is set; else 0. */
  since?: number;
}

/**
 * The stanzas an authenticated but unbound session may send (RFC 6120 §7.1, RFC 3921 §3): an iq
 * set whose only payload is <bind/> or the legacy <session/>, to the server or the own account.
 */
function isSessionSetup(stanza: Stanza, host: string, bare: string): boolean {
  const attrs = stanza.attrs;
  if (stanza.name !== 'iq' || attrs.type !== 'set') return false;
  if (attrs.to !== undefined) {
    const to = prep(attrs.to);
    if (to !== host && to !== bare) return false;
  }
  const payload = iqPayload(stanza);
  if (!payload) return false;
  const ns = attrsOf(payload).xmlns;
  return (payload.name === 'bind' && ns === NS.bind) || (payload.name === 'session' && ns === NS.session);
}

export class StanzaRouter implements Routing {
  /** Per session: what waits while a handler of its earlier stanza is pending. */
  private readonly pending = new WeakMap<Session, Waiting[]>();
  /** Stanzas held while a module is swapped (hot reload), handled in order on release. */
  private held: { origin: Session; stanza: Stanza; fromClient: boolean }[] | undefined;
  private holds = 0;

  constructor(
    private readonly hosts: HostManager,
    private readonly globalEvents: EventBus<GlobalEvents>,
    private readonly filters: SessionFilters,
  ) {}

  fromClient(origin: Session, stanza: Stanza): void {
    const queue = this.pending.get(origin);
    if (queue !== undefined) {
      queue.push({ stanza, fromClient: true, task: undefined, since: observers.routed ? performance.now() : 0 });
      return;
    }
    const r = this.timedClient(origin, stanza, observers.routed ? performance.now() : 0);
    if (r !== undefined) this.waitFor(origin, r);
  }

  /** processClient, reporting the time from `since` (the stanza's arrival) to the end to observers.routed. */
  private timedClient(origin: Session, stanza: Stanza, since: number): Promise<void> | undefined {
    const routed = observers.routed;
    if (routed === undefined || since === 0) return this.processClient(origin, stanza);
    const kind = stanza.name;
    const r = this.processClient(origin, stanza);
    if (r === undefined) routed(kind, (performance.now() - since) / 1000);
    else void r.finally(() => routed(kind, (performance.now() - since) / 1000)).catch(() => undefined);
    return r;
  }

  route(origin: Session, stanza: Stanza): void {
    // Server-generated stanzas have no order to keep with each other: each is handled on its own.
    if (origin.type === 'local') {
      void this.processTrusted(origin, stanza);
      return;
    }
    const queue = this.pending.get(origin);
    if (queue !== undefined) {
      queue.push({ stanza, fromClient: false, task: undefined });
      return;
    }
    const r = this.processTrusted(origin, stanza);
    if (r !== undefined) this.waitFor(origin, r);
  }

  inOrder(session: Session, task: () => unknown): void {
    const queue = this.pending.get(session);
    if (queue !== undefined) {
      queue.push({ stanza: undefined, fromClient: false, task });
      return;
    }
    const r = this.runTask(session, task);
    if (r !== undefined) this.waitFor(session, r);
  }

  hold(): () => void {
    this.holds++;
    this.held ??= [];
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds > 0) return;
      const queue = this.held ?? [];
      this.held = undefined;
      for (const { origin, stanza, fromClient } of queue) {
        if (fromClient) this.fromClient(origin, stanza);
        else this.route(origin, stanza);
      }
    };
  }

  // ---- the per-session queue ------------------------------------------------------------------------

  /** A handler of the session's stanza is pending: queue what comes next until it settles. */
  private waitFor(session: Session, running: Promise<unknown>): void {
    const queue: Waiting[] = [];
    this.pending.set(session, queue);
    const drain = (): void => {
      for (;;) {
        const next = queue.shift();
        if (next === undefined) {
          this.pending.delete(session);
          return;
        }
        if (session.destroyed && session.type !== 'local') continue; // the stream ended: nothing more from it
        const r = next.task !== undefined
          ? this.runTask(session, next.task)
          : next.fromClient ? this.timedClient(session, next.stanza!, next.since ?? 0) : this.processTrusted(session, next.stanza!);
        if (r !== undefined) {
          r.then(drain, drain);
          return;
        }
      }
    };
    running.then(drain, drain);
  }

  private runTask(session: Session, task: () => unknown): Promise<unknown> | undefined {
    let r: unknown;
    try {
      r = task();
    } catch (err) {
      log.error('task of %s failed: %s', session.id, err);
      return undefined;
    }
    if (!(r instanceof Promise)) return undefined;
    return r.catch((err: unknown) => log.error('task of %s failed: %s', session.id, err));
  }

  // ---- processing a stanza ----------------------------------------------------------------------------

  private processClient(origin: Session, stanza: Stanza): Promise<void> | undefined {
    if (origin.destroyed) return undefined;
    if (this.held) {
      this.held.push({ origin, stanza, fromClient: true });
      return undefined;
    }
    const { username, host } = origin;
    if (origin.type !== 'c2s' || username === undefined || host === undefined) {
      origin.close({ condition: 'not-authorized', text: 'Stanza sent before authentication' });
      return undefined;
    }
    const bare = `${username}@${host}`;
    // Authenticated but no session bound yet (whoever binds it: resource binding or Bind2): only
    // the iq that binds it, or the legacy session iq, to the server or the own account. Checked
    // when the stanza's turn comes, so stanzas pipelined behind the bind iq see the bound session.
    const full = origin.full_jid;
    if (full === undefined && !isSessionSetup(stanza, host, bare)) {
      origin.close({ condition: 'not-authorized', text: 'Bind a resource first: before binding only the bind (or session) iq is accepted' });
      return undefined;
    }
    if (this.filters.active('stanzas/in')) {
      const filtered = this.filters.run('stanzas/in', origin, stanza);
      if (filtered === undefined) return undefined;
      stanza = filtered;
    }
    const attrs = stanza.attrs;
    const own = full ?? bare;
    // RFC 6120 §8.1.2.1: the server stamps 'from'; a client-supplied one must match.
    if (attrs.from !== undefined && attrs.from !== own) {
      const p = prep(attrs.from);
      if (p !== own && p !== bare) {
        origin.close({ condition: 'invalid-from', text: 'from does not match your address' });
        return undefined;
      }
    }
    attrs.from = own;
    return this.post(origin, stanza, true);
  }

  private processTrusted(origin: Session, stanza: Stanza): Promise<void> | undefined {
    if (this.held) {
      this.held.push({ origin, stanza, fromClient: false });
      return undefined;
    }
    return this.post(origin, stanza, false);
  }

  /** Classify and dispatch; resolves (never rejects) once handled when a handler is asynchronous. */
  private post(origin: Session, stanza: Stanza, fromClient: boolean): Promise<void> | undefined {
    const event = this.classify(origin, stanza, fromClient);
    if (event === undefined) return undefined;
    const kind = stanza.name as StanzaKind;
    try {
      if (fromClient && origin.host !== undefined) {
        const originHost = this.hosts.get(origin.host);
        const pre = originHost?.events.fire(`pre-${kind}/${event.destType}`, event);
        if (pre !== undefined) return pre instanceof Promise ? this.afterPre(pre, event) : undefined;
      }
      const r = this.deliver(kind, event);
      if (r === undefined) {
        this.unhandled(event);
        return undefined;
      }
      return r instanceof Promise ? this.afterDelivery(r, event) : undefined;
    } catch (err) {
      this.failed(event, err);
      return undefined;
    }
  }

  private async afterPre(pre: Promise<unknown>, event: StanzaEvent): Promise<void> {
    try {
      if ((await pre) !== undefined) return;
      if ((await this.deliver(event.stanza.name as StanzaKind, event)) === undefined) this.unhandled(event);
    } catch (err) {
      this.failed(event, err);
    }
  }

  private async afterDelivery(delivery: Promise<unknown>, event: StanzaEvent): Promise<void> {
    try {
      if ((await delivery) === undefined) this.unhandled(event);
    } catch (err) {
      this.failed(event, err);
    }
  }

  /** `<kind>/<dest>` on the destination host: the handler's result, undefined when unhandled. */
  private deliver(kind: StanzaKind, event: StanzaEvent): unknown {
    const host = this.hosts.get(event.toHost);
    if (host) return host.events.fire(`${kind}/${event.destType}`, event);
    // No server-to-server yet: a module may claim remote routing.
    const r = this.globalEvents.fire('route/remote', event);
    if (r instanceof Promise) return r.then((v) => v ?? this.remoteUnreachable(event));
    return r ?? this.remoteUnreachable(event);
  }

  private remoteUnreachable(event: StanzaEvent): true {
    this.bounce(event.origin, event.stanza, 'cancel', 'remote-server-not-found', `Cannot reach ${event.toHost}`);
    return true;
  }

  /** Prepare 'to' and classify the destination; undefined (after an error reply) when 'to' is invalid. */
  private classify(origin: Session, stanza: Stanza, fromClient: boolean): StanzaEvent | undefined {
    const kind = stanza.name;
    const attrs = stanza.attrs;
    let to: string | undefined;
    if (attrs.to !== undefined) {
      const p = prep(attrs.to);
      if (p === null) {
        this.bounce(origin, stanza, 'modify', 'jid-malformed', 'Invalid recipient address');
        return undefined;
      }
      to = p;
      attrs.to = p;
    }
    let toNode: string | undefined;
    let toHost: string;
    let toResource: string | undefined;
    let destType: DestType;
    if (to === undefined) {
      // No 'to' from a client: addressed to the user's own account (RFC 6120 §10.3).
      toNode = origin.username;
      toHost = origin.host ?? '';
      destType = kind === 'iq' && fromClient ? 'self' : toNode ? 'bare' : 'host';
    } else {
      const parts = split(to);
      toNode = parts.node;
      toHost = parts.host ?? '';
      toResource = parts.resource;
      if (!toNode) destType = 'host';
      else if (toResource) destType = 'full';
      else destType = fromClient && kind === 'iq' && toNode === origin.username && toHost === origin.host ? 'self' : 'bare';
    }
    return { origin, stanza, to, toNode, toHost, toResource, destType };
  }

  /** A handler failed: a StanzaError is its answer; anything else is internal-server-error (the bus logged it). */
  private failed(event: StanzaEvent, err: unknown): void {
    if (err instanceof StanzaError) {
      this.bounce(event.origin, event.stanza, err.type, err.condition, err.text, err.extra);
      return;
    }
    log('answering internal-server-error to %s/%s from %s', event.stanza.name, event.destType, event.origin.id);
    this.bounce(event.origin, event.stanza, 'wait', 'internal-server-error');
  }

  private unhandled(event: StanzaEvent): void {
    const { stanza, origin } = event;
    log('unhandled %s/%s to %s', stanza.name, event.destType, event.to ?? '(none)');
    if (stanza.name === 'presence') return; // presence is never bounced
    this.bounce(origin, stanza, 'cancel', 'service-unavailable');
  }

  bounce(origin: Session, stanza: Stanza, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string, extra?: StanzaErrorExtra): void {
    if (mustNotReplyWithError(stanza)) return;
    if (origin.type === 'local') {
      log('dropping error %s for server-originated %s', condition, stanza.name);
      return;
    }
    origin.send(errorReply(stanza, type, condition, text, undefined, extra));
  }
}
