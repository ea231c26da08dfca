//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities
// Client-to-server streams (RFC 6120 §4): listeners on c2sPorts (STARTTLS) and
// c2sDirectTlsPorts (XEP-0368), the stream header and features, stream errors, limits and
// timeouts (options `c2s: { stanzaSizeLimit, preauthStanzaSizeLimit, maxDepth,
// unauthenticatedTimeout, keepaliveInterval }`), whitespace keepalives, and the hand-over of
// stanzas to the router. Stanzas before
// authentication are offered to `unauthenticated-stanza/<kind>` on the host (XEP-0077), never routed.
import { clientStream, defineModule, NS, startKeepalives, streamLimits, XmlStream, type Connection, type GlobalModuleApi, type Session, STREAM_OPTIONS, type StreamLimits } from '../core/api.ts';

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

    const accept = (conn: Connection) => acceptConnection(module, conn, streams, limits);
    const network = module.privileged.network;
    await network.listen({ name: 'c2s', ports: module.config('c2sPorts'), onConnection: accept });
    const tlsPorts = module.config('c2sDirectTlsPorts');
    if (tlsPorts.length) {
      await network.listen({ name: 'c2s_direct_tls', ports: tlsPorts, directTls: true, onConnection: accept });
    }

    // Authenticated clients get the larger stanza size limit and no timeout; whatever the client
    // pipelined behind its last authentication message is dropped, never run as authenticated.
    module.hookGlobal('authentication-success', ({ session }) => {
      streams.get(session)?.authenticated(limits(true));
    });

    // Whitespace keepalives keep NAT mappings and idle-killing proxies from dropping clients.
    const keepalive = module.option('keepaliveInterval') * 1000;
    if (keepalive > 0) {
      const open = function* () {
        for (const [s, stream] of streams) if (!s.notopen) yield stream.conn;
      };
      startKeepalives(open, keepalive, (fn, ms) => module.setInterval(fn, ms));
    }

    module.hookGlobal('server-stopping', () => {
      for (const session of [...streams.keys()]) session.close({ condition: 'system-shutdown', text: 'Server is shutting down' });
    });
  },
});

function acceptConnection(
  module: GlobalModuleApi<typeof STREAM_OPTIONS>,
  conn: Connection,
  streams: Map<Session, XmlStream>,
  limits: (authenticated: boolean) => StreamLimits,
): void {
  const stream: XmlStream = new XmlStream({
    conn,
    limits: limits(false),
    unauthenticatedTimeoutMs: module.option('unauthenticatedTimeout') * 1000,
    headerAttrs: () => ({ xmlns: NS.client, 'xmlns:stream': NS.streams, from: session.host, to: peerFrom, version: '1.0', 'xml:lang': 'en' }),
    describe: () => session.full_jid ?? (session.username ? `${session.username}@${session.host}` : 'unauthenticated client'),
    log: module.log,
    onEnd: (_graceful, reason) => {
      streams.delete(session);
      sessions.destroy(session, reason);
    },
  });
  // The client's 'from' in its header, echoed as our 'to' (RFC 6120 §4.7.2).
  let peerFrom: string | undefined;

  const { sessions } = module.privileged;
  const session = sessions.create('c2s_unauthed', conn, {
    send: (x) => stream.send(x),
    close: (reason) => stream.close(reason),
    reset: () => stream.reset(),
  });
  streams.set(session, stream);
  const client = clientStream(module, session, {
    sendHeader: (attrs) => {
      peerFrom = attrs.from;
      return stream.sendHeader();
    },
    close: (reason) => stream.close(reason),
  });

  stream.parser.on('streamStart', (attrs) => {
    if (attrs.xmlns !== NS.client) {
      stream.close({ condition: 'invalid-namespace', text: `Default namespace must be ${NS.client}` });
      return;
    }
    client.streamStart(attrs);
  });
  stream.parser.on('stanza', (el) => client.element(el));
}
