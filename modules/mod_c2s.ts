//% requires_core_features: sessions-v1, stanza-events-v1, stanza-dispatch-ordered, module-capabilities
// Client-to-server streams over TCP (RFC 6120 §4): listeners on c2sPorts (STARTTLS) and
// c2sDirectTlsPorts (XEP-0368), the XML stream on each connection (core XmlStream: the parser,
// our header, stream errors, stanza size and depth limits — options `c2s: { stanzaSizeLimit,
// preauthStanzaSizeLimit, maxDepth, unauthenticatedTimeout, keepaliveInterval }`), the socket's
// send queue and rate shaping, and whitespace keepalives. What the stream means — header checks,
// features, element dispatch, limits, resumption hand-over, shutdown — is the core's
// ClientStreams, shared with mod_websocket and mod_bosh (core/net/c2s.ts).
import { ClientStreams, type ClientStream, defineModule, NS, startKeepalives, streamLimits, XmlStream, type Connection, type StreamLimits, STREAM_OPTIONS } from '../core/api.ts';

export default defineModule({
  scope: 'global',
  description: 'Client connections over TCP: streams, features, limits and keepalives',
  capabilities: ['sessions', 'routing', 'network'],
  options: STREAM_OPTIONS,
  async load(module) {
    const settings = {
      stanzaSizeLimit: module.option('stanzaSizeLimit'),
      preauthStanzaSizeLimit: module.option('preauthStanzaSizeLimit'),
      maxDepth: module.option('maxDepth'),
    };
    const limits = (authenticated: boolean): StreamLimits => streamLimits(settings, authenticated);
    const clients = new ClientStreams(module, { unauthenticatedTimeout: module.option('unauthenticatedTimeout') });
    const open = new Map<XmlStream, ClientStream>();

    const accept = (conn: Connection) => {
      // The client's 'from' in its header, echoed as our 'to' (RFC 6120 §4.7.2).
      let peerFrom: string | undefined;
      const stream: XmlStream = new XmlStream({
        conn,
        limits: limits(false),
        headerAttrs: () => ({ xmlns: NS.client, 'xmlns:stream': NS.streams, from: client.session.host, to: peerFrom, version: '1.0', 'xml:lang': 'en' }),
        describe: () => describe(),
        log: module.log,
        onEnd: (graceful, reason) => {
          open.delete(stream);
          client.ended(graceful, reason);
        },
        onPeerClose: (close) => client.peerClosed(close),
        sendQueueLimit: () => module.limits(client.session.host).sendQueue || Infinity,
        onSendQueueFull: () => client.sendQueueFull(),
      });
      const describe = () => {
        const s = client.session;
        return s.full_jid ?? (s.username ? `${s.username}@${s.host}` : 'unauthenticated client');
      };
      const client = clients.accept(conn, {
        sendHeader: (attrs) => {
          peerFrom = attrs.from;
          return stream.sendHeader();
        },
        send: (x, serialised) => stream.send(x, serialised),
        close: (reason) => stream.close(reason),
        reset: () => stream.reset(),
        queued: () => stream.queued,
        abandon: (reason, beforeEnd) => void stream.abandon(reason, beforeEnd),
        setReadRate: (rate, burst) => conn.setReadRate(rate, burst),
        authenticated: () => stream.authenticated(limits(true)),
      });
      open.set(stream, client);
      stream.parser.on('streamStart', (attrs) => {
        if (attrs.xmlns !== NS.client) {
          stream.close({ condition: 'invalid-namespace', text: `Default namespace must be ${NS.client}` });
          return;
        }
        client.streamStart(attrs);
      });
      stream.parser.on('stanza', (el) => client.element(el));
    };

    const network = module.privileged.network;
    await network.listen({ name: 'c2s', ports: module.config('c2sPorts'), onConnection: accept });
    const tlsPorts = module.config('c2sDirectTlsPorts');
    if (tlsPorts.length) {
      await network.listen({ name: 'c2s_direct_tls', ports: tlsPorts, directTls: true, onConnection: accept });
    }

    // Whitespace keepalives keep NAT mappings and idle-killing proxies from dropping clients.
    const keepalive = module.option('keepaliveInterval') * 1000;
    if (keepalive > 0) {
      const conns = function* () {
        for (const [stream, client] of open) if (!client.session.notopen) yield stream.conn;
      };
      startKeepalives(conns, keepalive, (fn, ms) => module.setInterval(fn, ms));
    }
  },
});
