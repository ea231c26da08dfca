//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities
// Client-to-server streams (RFC 6120 §4): listeners on c2sPorts (STARTTLS) and
// c2sDirectTlsPorts (XEP-0368), the stream header and features, stream errors, limits and
// timeouts (options `c2s: { stanzaSizeLimit, preauthStanzaSizeLimit, maxDepth,
// unauthenticatedTimeout, keepaliveInterval }`), whitespace keepalives, and the hand-over of
// stanzas to the router. Stanzas before
// authentication are offered to `unauthenticated-stanza/<kind>` on the host (XEP-0077), never routed.
// The host's `limits` (core/limits.ts) apply here: inbound rate shaping, connections per
// address, and the bound on stanzas waiting for a client that does not read.
import { Element } from '@xmpp/xml';
import { addressKey, defineModule, errorReply, limitsHit, isStanzaKind, NS, prep, startKeepalives, streamLimits, XmlStream, type CloseReason, type Connection, type GlobalModuleApi, type Session, type Stanza, type StanzaKind, STREAM_OPTIONS, type StreamElementEvent, type StreamFeaturesEvent, type StreamLimits, type UnauthenticatedStanzaEvent, type UndeliveredEvent } from '../core/api.ts';

export default defineModule({
  scope: 'global',
  description: 'Client connections: streams, features, limits and keepalives',
  capabilities: ['sessions', 'routing', 'network'],
  options: STREAM_OPTIONS,
  async load(module) {
    const settings = {
      stanzaSizeLimit: module.option('stanzaSizeLimit'),
      preauthStanzaSizeLimit: module.option('preauthStanzaSizeLimit'),
      maxDepth: module.option('maxDepth'),
    };
    const limits = (authenticated: boolean): StreamLimits => streamLimits(settings, authenticated);
    const streams = new Map<Session, XmlStream>();
    /** Each connection's hand-over for stream resumption (XEP-0198), by the session it carries. */
    const carriers = new Map<Session, Carrier>();
    /** Open connections per source address (addressKey), for limits.connectionsPerAddress. */
    const perAddress = new Map<string, number>();

    const accept = (conn: Connection) => acceptConnection(module, conn, streams, carriers, limits, perAddress);
    const network = module.privileged.network;
    await network.listen({ name: 'c2s', ports: module.config('c2sPorts'), onConnection: accept });
    const tlsPorts = module.config('c2sDirectTlsPorts');
    if (tlsPorts.length) {
      await network.listen({ name: 'c2s_direct_tls', ports: tlsPorts, directTls: true, onConnection: accept });
    }

    // Authenticated clients get the larger stanza size limit and no timeout; whatever the client
    // pipelined behind its last authentication message is dropped, never run as authenticated.
    module.hookGlobal('authentication-success', ({ session }) => {
      const stream = streams.get(session);
      if (!stream) return;
      stream.authenticated(limits(true));
      const l = module.limits(session.host);
      stream.conn.setReadRate(l.rate, l.burst);
    });

    // Whitespace keepalives keep NAT mappings and idle-killing proxies from dropping clients.
    const keepalive = module.option('keepaliveInterval') * 1000;
    if (keepalive > 0) {
      const open = function* () {
        for (const [s, stream] of streams) if (!s.notopen) yield stream.conn;
      };
      startKeepalives(open, keepalive, (fn, ms) => module.setInterval(fn, ms));
    }

    // Stream resumption (mod_smacks): the new connection carries the resumed session from now on;
    // the connection that carried it before (if still open) is closed, without ending the session.
    module.hookGlobal('session-resumed', ({ session, carrier }) => {
      carriers.get(session)?.release({ condition: 'conflict', text: 'Replaced by a resumed stream' });
      carriers.get(carrier)?.carry(session);
    });

    module.hookGlobal('server-stopping', () => {
      for (const session of [...streams.keys()]) session.close({ condition: 'system-shutdown', text: 'Server is shutting down' });
    });
  },
});

/** What stream resumption needs of a connection: carry another session, or let go of its own. */
interface Carrier {
  /** From now on this connection's stream is `session`'s. */
  carry(session: Session): void;
  /** Close this connection's stream; the session it carried lives on elsewhere. */
  release(reason: CloseReason): void;
}

function acceptConnection(
  module: GlobalModuleApi<typeof STREAM_OPTIONS>,
  conn: Connection,
  streams: Map<Session, XmlStream>,
  carriers: Map<Session, Carrier>,
  limits: (authenticated: boolean) => StreamLimits,
  perAddress: Map<string, number>,
): void {
  const address = addressKey(conn.ip);
  perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
  // Until the stream header names the host: the global limits.
  const global = module.limits('*');
  conn.setReadRate(global.unauthenticatedRate, global.unauthenticatedBurst);
  const stream: XmlStream = new XmlStream({
    conn,
    limits: limits(false),
    unauthenticatedTimeoutMs: module.option('unauthenticatedTimeout') * 1000,
    headerAttrs: () => ({ xmlns: NS.client, 'xmlns:stream': NS.streams, from: session.host, to: peerFrom, version: '1.0', 'xml:lang': 'en' }),
    describe: () => describe(),
    log: module.log,
    onEnd: (graceful, reason) => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
      if (released) return;
      streams.delete(session);
      carriers.delete(session);
      // Dropped without a stream close: stream management may keep the session for resumption.
      if (!graceful && session.type === 'c2s' && session.host && !session.destroyed
        && module.fireOnHost(session.host, 'c2s-connection-lost', { session, reason }) !== undefined) return;
      sessions.destroy(session, reason);
    },
    // The client's </stream:stream> takes its turn behind its stanzas and stream elements still
    // being handled (an <a/> just before it acknowledges what it received: XEP-0198 §4).
    onPeerClose: (close) => (session.type === 'c2s' ? module.privileged.routing.inOrder(session, close) : close()),
    sendQueueLimit: () => module.limits(session.host).sendQueue || Infinity,
    onSendQueueFull: () => {
      const limit = module.limits(session.host).sendQueue;
      limitsHit.sendQueue++;
      const host = session.host;
      const who = describe();
      let claimed = false;
      const undelivered = stream.abandon({ condition: 'policy-violation', text: `More than ${limit} stanzas waiting: the client does not read` }, (stanzas) => {
        // Stream management keeps these among its unacknowledged stanzas and routes them itself.
        if (host) claimed = module.fireOnHost(host, 'c2s-undelivered', { session, stanzas } satisfies UndeliveredEvent) !== undefined;
      });
      if (host && !claimed) reroute(module, host, undelivered, who);
    },
  });
  /** Set once the session this stream carried was resumed on another connection. */
  let released = false;
  const describe = () => session.full_jid ?? (session.username ? `${session.username}@${session.host}` : 'unauthenticated client');
  // The client's 'from' in its header, echoed as our 'to' (RFC 6120 §4.7.2).
  let peerFrom: string | undefined;

  const { sessions, routing } = module.privileged;
  let session = sessions.create('c2s_unauthed', conn, {
    send: (x) => stream.send(x),
    close: (reason) => stream.close(reason),
    reset: () => stream.reset(),
    queued: () => stream.queued,
  });
  streams.set(session, stream);
  const carrier: Carrier = {
    carry: (resumed) => {
      streams.delete(session);
      carriers.delete(session);
      session = resumed;
      streams.set(resumed, stream);
      carriers.set(resumed, carrier);
    },
    release: (reason) => {
      released = true;
      streams.delete(session);
      carriers.delete(session);
      stream.close(reason);
    },
  };
  carriers.set(session, carrier);
  const close = (reason: CloseReason) => stream.close(reason);

  stream.parser.on('streamStart', (attrs) => {
    if (attrs.xmlns !== NS.client) {
      close({ condition: 'invalid-namespace', text: `Default namespace must be ${NS.client}` });
      return;
    }
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
      conn.setReadRate(l.unauthenticatedRate, l.unauthenticatedBurst);
    }
    session.host = to;
    if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) {
      close({ condition: 'unsupported-version', text: 'Only XMPP 1.0 streams are supported' });
      return;
    }
    session.notopen = false;
    if (attrs['xml:lang']) session.lang = attrs['xml:lang'];
    peerFrom = attrs.from;
    session.streamId = stream.sendHeader();
    const features = new Element('stream:features');
    module.emitOnHost(to, 'stream-features', { origin: session, features } satisfies StreamFeaturesEvent);
    stream.send(features);
  });

  /**
   * Offer an element to the host's handlers; `unclaimed` runs when none returns a value. A
   * handler that fails closes the stream (its error is logged by the event bus).
   */
  const offer = (claimed: () => unknown, unclaimed: () => void): unknown => {
    const fail = () => close({ condition: 'internal-server-error', text: 'The server failed to process that element' });
    let r: unknown;
    try {
      r = claimed();
    } catch {
      fail();
      return undefined;
    }
    if (r instanceof Promise) {
      return r.then((v) => {
        if (v === undefined || v === false) unclaimed();
      }, fail);
    }
    if (r === undefined || r === false) unclaimed();
    return undefined;
  };

  stream.parser.on('stanza', (el) => {
    const host = session.host;
    if (session.notopen || !host) return;
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
  });
}

/**
 * Stanzas a client never received (it stopped reading and was closed) go where an unavailable
 * resource's would (RFC 6121 §8.5.3.2, §8.5.3.3; RFC 6120 §10.5.3): messages are routed again —
 * to the account's other resources or offline storage —, an iq request is answered with
 * service-unavailable, presence and iq results/errors are dropped.
 */
function reroute(module: GlobalModuleApi<typeof STREAM_OPTIONS>, host: string, stanzas: Stanza[], who: string): void {
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
