// Client streams (RFC 6120 §4, RFC 7395 §3.3, XEP-0206): everything about a client connection that
// does not depend on what carries it. The transports — mod_c2s (TCP), mod_websocket, mod_bosh —
// only read and write their framing and give each connection a ClientStreamIo; ClientStreams does
// the rest, the same for all of them:
//  - the checks on the client's stream header, our answer and the stream features;
//  - what happens to each element: stanzas before authentication offered to the host (In-Band
//    Registration), after it to the router in order (a restated xmlns='jabber:client' dropped),
//    stream-level elements (SASL, bind, SM, …) to their `stream-element/<ns>:<name>` handlers;
//  - the client's stream close taking its turn behind what it sent before (an SM <a/> counts);
//  - limits (core/limits.ts): connections per source address (counted over all client
//    transports of the server), inbound rate shaping before and after authentication, the bound
//    on stanzas waiting for a client that does not read (then `c2s-undelivered`, else re-routed);
//  - the unauthenticated timeout;
//  - stream resumption (XEP-0198): a connection that carried a session resumed elsewhere is
//    released, the one it resumed on carries it from then on — whatever the two transports are;
//    a connection dropped without a stream close fires `c2s-connection-lost` (mod_smacks keeps
//    the session for resumption);
//  - closing every stream with system-shutdown when the server stops.
import { Element } from '@xmpp/xml';
import type { HostEvents, StreamElementEvent, StreamFeaturesEvent, UnauthenticatedStanzaEvent, UndeliveredEvent } from '../event-types.ts';
import { limitsHit } from '../limits.ts';
import type { GlobalModuleApi } from '../moduleapi.ts';
import type { Routing } from '../router.ts';
import type { CloseReason, Session } from '../session.ts';
import type { EventName } from '../util/events.ts';
import { prep } from '../util/jid.ts';
import { addressKey } from '../sasl.ts';
import { errorReply, isStanzaKind, NS, takeSerialised, type Stanza, type StanzaKind } from '../util/stanza.ts';
import type { StreamTransport } from './transport.ts';

/** What client streams need of the transport module's `module` object. */
export type ClientStreamModule = Pick<GlobalModuleApi, 'hosts' | 'hookGlobal' | 'limits' | 'log' | 'sendFrom' | 'privileged'> & {
  fireOnHost<K extends EventName<HostEvents>>(host: string, event: K, data: HostEvents[K]): unknown;
  emitOnHost<K extends EventName<HostEvents>>(host: string, event: K, data: HostEvents[K]): void;
};

/**
 * What a transport gives for one connection: its framing's writes and closes. Every way the
 * connection ends is reported back with ClientStream.ended(), once.
 */
export interface ClientStreamIo {
  /** Answer a valid client header with ours (TCP header, WebSocket `<open/>`); returns the stream id. */
  sendHeader(clientAttrs: Record<string, string | undefined>): string;
  /**
   * Write an element (stanzas in jabber:client as the framing writes them) or prepared text.
   * `serialised` is the element's toString() when stream management already made it: a framing
   * that writes stanzas exactly so (TCP) writes that string instead of serialising again.
   */
  send(x: Element | string, serialised?: string): boolean;
  /**
   * Our close: the stream error if a reason is given, the framing's stream close, then the
   * connection; the transport reports ended(true, reason).
   */
  close(reason?: CloseReason): void;
  /** Stream restart (after SASL success): the next thing read is a new stream header. */
  reset?(): void;
  /** Elements waiting for the client to read (limits.sendQueue bounds them). */
  queued?(): number;
  /**
   * Give up on a client that does not read: drop the connection at once (the error would wait
   * behind what it does not read), hand `beforeEnd` the stanzas it never received, then report
   * ended(true, reason).
   */
  abandon(reason: CloseReason, beforeEnd: (undelivered: Stanza[]) => void): void;
  /** Inbound rate shaping (bytes/s sustained, burst; rate 0: unlimited), where the transport can. */
  setReadRate?(rate: number, burst: number): void;
  /** Authenticated: the larger stanza size limit; what the client pipelined behind is dropped. */
  authenticated?(): void;
}

/** One client connection, as its transport drives it. */
export interface ClientStream {
  /** The session the connection carries now (another one after a stream resumption). */
  readonly session: Session;
  /** The client opened (or reopened, after a restart) the stream with these header attributes. */
  streamStart(attrs: Record<string, string | undefined>): void;
  /** One top-level element the client sent (stanzas in jabber:client with or without their xmlns). */
  element(el: Element): void;
  /** The client closed the stream: `close` runs once what it sent before has been handled. */
  peerClosed(close: () => void): void;
  /** The client does not read: `limits.sendQueue` stanzas have waited too long. */
  sendQueueFull(): void;
  /**
   * The connection is gone: `graceful` when either side closed the stream, false when it was
   * dropped (then stream management may keep the session for resumption). `undelivered`: stanzas
   * the transport still held for the client (BOSH payloads no request came for).
   */
  ended(graceful: boolean, reason?: CloseReason, undelivered?: Stanza[]): void;
}

/** Open client connections per source address, for each server (its Routing), over all client transports. */
const perAddressOf = new WeakMap<Routing, Map<string, number>>();

/** A connection's hand-over for stream resumption (XEP-0198). */
interface Carrier {
  /** From now on this connection's stream is `session`'s. */
  carry(session: Session): void;
  /** Close this connection's stream; the session it carried lives on elsewhere. */
  release(reason: CloseReason): void;
}

export interface ClientStreamsOptions {
  /** Seconds a connection may stay unauthenticated. */
  unauthenticatedTimeout: number;
}

/** The client connections of one transport module. */
export class ClientStreams {
  /** Each open connection, by the session it carries. */
  private readonly carriers = new Map<Session, Carrier & { authenticated(): void }>();
  private readonly perAddress: Map<string, number>;

  constructor(private readonly module: ClientStreamModule, private readonly options: ClientStreamsOptions) {
    const routing = module.privileged.routing;
    let shared = perAddressOf.get(routing);
    if (!shared) perAddressOf.set(routing, (shared = new Map()));
    this.perAddress = shared;

    // Authenticated clients get the larger stanza size limit, the authenticated rate and no timeout.
    module.hookGlobal('authentication-success', ({ session }) => {
      this.carriers.get(session)?.authenticated();
    });
    // Stream resumption (mod_smacks): the connection the client resumed on carries the session
    // from now on; the one that carried it before (if still open) is closed, the session lives on.
    // Either may belong to another transport module: each module handles its own connections.
    module.hookGlobal('session-resumed', ({ session, carrier }) => {
      this.carriers.get(session)?.release({ condition: 'conflict', text: 'Replaced by a resumed stream' });
      this.carriers.get(carrier)?.carry(session);
    });
    module.hookGlobal('server-stopping', () => {
      for (const session of [...this.carriers.keys()]) session.close({ condition: 'system-shutdown', text: 'Server is shutting down' });
    });
  }

  /** A new connection from `conn.ip`: its session is created here. */
  accept(conn: StreamTransport, io: ClientStreamIo): ClientStream {
    const module = this.module;
    const { sessions, routing } = module.privileged;
    const carriers = this.carriers;
    const perAddress = this.perAddress;
    const address = addressKey(conn.ip);
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    // Until the stream header names the host: the global limits.
    const global = module.limits('*');
    io.setReadRate?.(global.unauthenticatedRate, global.unauthenticatedBurst);

    const close = (reason?: CloseReason) => io.close(reason);
    const describe = () => session.full_jid ?? (session.username ? `${session.username}@${session.host}` : 'unauthenticated client');
    /** Set once the session this connection carried was resumed on another one. */
    let released = false;
    let ended = false;

    let session = sessions.create('c2s_unauthed', conn, {
      // The stanza's XML when stream management's `stanzas/out` filter made it (serialised once).
      send: (x) => io.send(x, typeof x === 'string' ? undefined : takeSerialised(x)),
      close,
      reset: io.reset && (() => io.reset!()),
      queued: io.queued && (() => io.queued!()),
    });
    const authTimer = setTimeout(() => close({ condition: 'connection-timeout', text: 'Not authenticated in time' }), this.options.unauthenticatedTimeout * 1000);
    authTimer.unref();

    const carrier = {
      carry: (resumed: Session) => {
        carriers.delete(session);
        session = resumed;
        carriers.set(resumed, carrier);
      },
      release: (reason: CloseReason) => {
        released = true;
        carriers.delete(session);
        close(reason);
      },
      authenticated: () => {
        clearTimeout(authTimer);
        io.authenticated?.();
        const l = module.limits(session.host);
        io.setReadRate?.(l.rate, l.burst);
      },
    };
    carriers.set(session, carrier);

    /**
     * Offer an element to the host's handlers; `unclaimed` runs when none returns a value. A
     * handler that fails closes the stream (its error is logged by the event bus).
     */
    const offer = (claimed: () => unknown, unclaimed: () => void): void => {
      const fail = () => close({ condition: 'internal-server-error', text: 'The server failed to process that element' });
      let r: unknown;
      try {
        r = claimed();
      } catch {
        fail();
        return;
      }
      if (r instanceof Promise) {
        r.then((v) => {
          if (v === undefined || v === false) unclaimed();
        }, fail);
        return;
      }
      if (r === undefined || r === false) unclaimed();
    };

    /** Stanzas the client never got: stream management keeps them, else they are routed as to an unavailable resource. */
    const undelivered = (stanzas: Stanza[]): (() => void) | undefined => {
      const host = session.host;
      if (!host || stanzas.length === 0) return undefined;
      // Stream management keeps these among its unacknowledged stanzas and routes them itself.
      if (session.type === 'c2s' && module.fireOnHost(host, 'c2s-undelivered', { session, stanzas } satisfies UndeliveredEvent) !== undefined) return undefined;
      const who = describe();
      // After the session is gone, so that nothing comes back to it.
      return () => reroute(module, host, stanzas, who);
    };

    return {
      get session() {
        return session;
      },

      streamStart(attrs) {
        const to = attrs.to !== undefined ? prep(attrs.to) : undefined;
        if (!to || module.hosts.kind(to) !== 'virtualhost' || (session.host && session.host !== to)) {
          close({ condition: 'host-unknown', text: to ? `This server does not serve ${to}` : "The stream header has no 'to'" });
          return;
        }
        if (!session.host) {
          const l = module.limits(to);
          const open = perAddress.get(address) ?? 0;
          if (l.connectionsPerAddress > 0 && open > l.connectionsPerAddress) {
            session.host = to;
            limitsHit.connectionsPerAddress++;
            close({ condition: 'policy-violation', text: `Too many connections from your address (at most ${l.connectionsPerAddress})` });
            return;
          }
          io.setReadRate?.(l.unauthenticatedRate, l.unauthenticatedBurst);
        }
        session.host = to;
        if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) {
          close({ condition: 'unsupported-version', text: 'Only XMPP 1.0 streams are supported' });
          return;
        }
        session.notopen = false;
        if (attrs['xml:lang']) session.lang = attrs['xml:lang'];
        session.streamId = io.sendHeader(attrs);
        const features = new Element('stream:features');
        module.emitOnHost(to, 'stream-features', { origin: session, features } satisfies StreamFeaturesEvent);
        session.send(features);
      },

      element(el) {
        const host = session.host;
        if (session.notopen || !host || ended) return;
        let ns = (el as Stanza).attrs.xmlns;
        // A stanza may restate the stream's default namespace (valid XML, RFC 6120 §4.8.3); drop the
        // declaration so it routes, and leaves on other streams, like any other stanza.
        if (ns === NS.client && isStanzaKind(el.name)) {
          delete (el as Stanza).attrs.xmlns;
          ns = undefined;
        }
        if (ns === undefined && isStanzaKind(el.name)) {
          const stanza = el as Stanza;
          if (session.type !== 'c2s') {
            // Never routed: offered to the host (In-Band Registration), else the stream ends.
            offer(
              () => module.fireOnHost(host, `unauthenticated-stanza/${stanza.name as StanzaKind}`, { origin: session, stanza } satisfies UnauthenticatedStanzaEvent),
              () => close({ condition: 'not-authorized', text: 'Authenticate before sending stanzas' }),
            );
            return;
          }
          // In order with the session's other stanzas; the router closes the stream on a violation.
          routing.fromClient(session, stanza);
          return;
        }
        const element = () =>
          offer(
            () => (ns === undefined ? undefined : module.fireOnHost(host, `stream-element/${ns}:${el.name}`, { origin: session, element: el } satisfies StreamElementEvent)),
            () => close({ condition: 'unsupported-stanza-type', text: `Unexpected <${el.name}/>${ns ? ` in ${ns}` : ''}` }),
          );
        // Once authenticated, stream elements (stream management's <r/>, …) take their turn behind
        // the stanzas before them; before that, the authentication exchanges keep their own order.
        if (session.type === 'c2s') routing.inOrder(session, element);
        else element();
      },

      peerClosed(done) {
        // Behind the stanzas and stream elements still being handled (an <a/> just before the close
        // acknowledges what the client received: XEP-0198 §4).
        if (session.type === 'c2s' && !session.destroyed) routing.inOrder(session, done);
        else done();
      },

      sendQueueFull() {
        const limit = module.limits(session.host).sendQueue;
        limitsHit.sendQueue++;
        let after: (() => void) | undefined;
        io.abandon({ condition: 'policy-violation', text: `More than ${limit} stanzas waiting: the client does not read` }, (stanzas) => {
          after = undelivered(stanzas);
        });
        after?.();
      },

      ended(graceful, reason, held) {
        if (ended) return;
        ended = true;
        clearTimeout(authTimer);
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left > 0) perAddress.set(address, left);
        else perAddress.delete(address);
        if (released) return;
        carriers.delete(session);
        // Dropped without a stream close: stream management may keep the session for resumption
        // (what the transport still held is among its unacknowledged stanzas).
        if (!graceful && session.type === 'c2s' && session.host && !session.destroyed
          && module.fireOnHost(session.host, 'c2s-connection-lost', { session, reason }) !== undefined) return;
        const after = held ? undelivered(held) : undefined;
        sessions.destroy(session, reason);
        after?.();
      },
    };
  }
}

/**
 * Stanzas a client never received (it stopped reading and was closed) go where an unavailable
 * resource's would (RFC 6121 §8.5.3.2, §8.5.3.3; RFC 6120 §10.5.3): messages are routed again —
 * to the account's other resources or offline storage —, an iq request is answered with
 * service-unavailable, presence and iq results/errors are dropped.
 */
function reroute(module: ClientStreamModule, host: string, stanzas: Stanza[], who: string): void {
  let messages = 0;
  let iqs = 0;
  for (const stanza of stanzas) {
    if (stanza.name === 'message') {
      messages++;
      module.sendFrom(host, stanza);
    } else if (stanza.name === 'iq' && (stanza.attrs.type === 'get' || stanza.attrs.type === 'set')) {
      iqs++;
      module.sendFrom(host, errorReply(stanza, 'cancel', 'service-unavailable'));
    }
  }
  module.log.info('%s did not read: %d messages routed again, %d iq requests answered with service-unavailable, %d other stanzas dropped', who, messages, iqs, stanzas.length - messages - iqs);
}
