// The stanza router: takes a stanza from a client session (or from a module on behalf of a
// host), checks and stamps its addresses, and dispatches it by event name:
//   pre-<kind>/<dest>   on the origin's host, for stanzas sent by local clients (outbound hooks)
//   <kind>/<dest>       on the destination host (delivery)
// with <dest> one of: host (the domain itself), bare, full, self (an iq to one's own account).
// mod_iq then dispatches iq get/set by payload: iq-get/<dest>/<xmlns>:<name>.
// Unhandled iq get/set get service-unavailable; result/error are never answered with an error.
import type { Element } from '@xmpp/xml';
import type { EventBus } from './util/events.ts';
import type { GlobalEvents, HostEvents } from './event-types.ts';
import { HANDLER_ERROR } from './util/events.ts';
import type { HostManager } from './hostmanager.ts';
import { prep, split } from './util/jid.ts';
import { getLogger } from './util/log.ts';
import type { Session } from './session.ts';
import { NS, errorReply, iqPayload, mustNotReplyWithError } from './util/stanza.ts';
import type { StanzaErrorCondition, StanzaErrorType } from './util/errors.ts';

export type DestType = 'host' | 'bare' | 'full' | 'self';

export interface StanzaEvent {
  origin: Session;
  stanza: Element;
  /** Prepared destination JID ('' never: undefined when the stanza had no 'to'). */
  to: string | undefined;
  toNode: string | undefined;
  toHost: string;
  toResource: string | undefined;
  destType: DestType;
}

const log = getLogger('core:router');

/**
 * The stanzas an authenticated but unbound session may send (RFC 6120 §7.1, RFC 3921 §3): an iq
 * set whose only payload is <bind/> or the legacy <session/>, to the server or the own account.
 */
function isSessionSetup(stanza: Element, host: string, bare: string): boolean {
  const attrs = stanza.attrs as Record<string, string | undefined>;
  if (stanza.name !== 'iq' || attrs.type !== 'set') return false;
  if (attrs.to !== undefined) {
    const to = prep(attrs.to);
    if (to !== host && to !== bare) return false;
  }
  const payload = iqPayload(stanza);
  if (!payload) return false;
  const ns = payload.attrs.xmlns as string | undefined;
  return (payload.name === 'bind' && ns === NS.bind) || (payload.name === 'session' && ns === NS.session);
}

export class StanzaRouter {
  /** Stanzas held while a module is swapped (hot reload), delivered in order on release. */
  private held: { origin: Session; stanza: Element; fromClient: boolean }[] | undefined;
  private holds = 0;

  constructor(
    private readonly hosts: HostManager,
    private readonly globalEvents: EventBus<GlobalEvents>,
  ) {}

  /**
   * A stanza (message, presence, iq in the stream's namespace) from a client session.
   * Returns false when the stream must be closed with the given condition instead.
   */
  fromClient(origin: Session, stanza: Element): { ok: true } | { ok: false; condition: 'not-authorized' | 'invalid-from'; text: string } {
    if (origin.type !== 'c2s' || !origin.username || !origin.host) {
      return { ok: false, condition: 'not-authorized', text: 'Stanza sent before authentication' };
    }
    const attrs = stanza.attrs as Record<string, string | undefined>;
    // Authenticated but no session bound yet (whoever binds it: resource binding or Bind2): only
    // the iq that binds it, or the legacy session iq, to the server or the own account.
    const full = origin.full_jid;
    if (full === undefined && !isSessionSetup(stanza, origin.host, `${origin.username}@${origin.host}`)) {
      return { ok: false, condition: 'not-authorized', text: 'Bind a resource first: before binding only the bind (or session) iq is accepted' };
    }
    const own = full ?? `${origin.username}@${origin.host}`;
    // RFC 6120 §8.1.2.1: the server stamps 'from'; a client-supplied one must match.
    if (attrs.from !== undefined && attrs.from !== own) {
      const p = prep(attrs.from);
      if (p !== own && p !== `${origin.username}@${origin.host}`) return { ok: false, condition: 'invalid-from', text: 'from does not match your address' };
    }
    attrs.from = own;
    this.post(origin, stanza, true);
    return { ok: true };
  }

  /** Route a stanza whose 'from' is already trusted (modules, components, the server itself). */
  route(origin: Session, stanza: Element): void {
    this.post(origin, stanza, false);
  }

  /**
   * Hold routing (e.g. while a module is reloaded, so no stanza meets a half-loaded module);
   * returns the release function. Holds nest.
   */
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
      for (const { origin, stanza, fromClient } of queue) this.post(origin, stanza, fromClient);
    };
  }

  private post(origin: Session, stanza: Element, fromClient: boolean): void {
    if (this.held) {
      this.held.push({ origin, stanza, fromClient });
      return;
    }
    const kind = stanza.name;
    const attrs = stanza.attrs as Record<string, string | undefined>;
    let to: string | undefined;
    if (attrs.to !== undefined) {
      const p = prep(attrs.to);
      if (p === null) {
        this.bounce(origin, stanza, 'modify', 'jid-malformed', 'Invalid recipient address');
        return;
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
    const event: StanzaEvent = { origin, stanza, to, toNode, toHost, toResource, destType };

    if (fromClient && origin.host) {
      const originHost = this.hosts.get(origin.host);
      if (originHost && this.dispatch(originHost.events, `pre-${kind}/${destType}`, event)) return;
    }

    const host = this.hosts.get(toHost);
    if (!host) {
      // No server-to-server yet: a module may claim remote routing.
      if (this.dispatch(this.globalEvents, `route/remote`, event)) return;
      this.bounce(origin, stanza, 'cancel', 'remote-server-not-found', `Cannot reach ${toHost}`);
      return;
    }
    if (this.dispatch(host.events, `${kind}/${destType}`, event)) return;
    this.unhandled(event);
  }

  /** Fire `name`; true when handled. A handler error on an iq request answers internal-server-error. */
  private dispatch(bus: EventBus<HostEvents> | EventBus<GlobalEvents>, name: string, event: StanzaEvent): boolean {
    const result = (bus as unknown as EventBus).fire(name, event);
    if (result === undefined) return false;
    if (result === HANDLER_ERROR) {
      this.bounce(event.origin, event.stanza, 'wait', 'internal-server-error');
    }
    return true;
  }

  private unhandled(event: StanzaEvent): void {
    const { stanza, origin } = event;
    log('unhandled %s/%s to %s', stanza.name, event.destType, event.to ?? '(none)');
    if (stanza.name === 'presence') return; // presence is never bounced
    this.bounce(origin, stanza, 'cancel', 'service-unavailable');
  }

  /** Send an error reply for `stanza` back to its origin (never for errors and iq results). */
  bounce(origin: Session, stanza: Element, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string): void {
    if (mustNotReplyWithError(stanza)) return;
    const reply = errorReply(stanza, type, condition, text);
    if (origin.type === 'local') {
      log('dropping error %s for server-originated %s', condition, stanza.name);
      return;
    }
    origin.send(reply);
  }
}
