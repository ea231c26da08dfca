//% requires_core_features: sessions-v1, stanza-events-v1, events-async, module-capabilities
// External components (XEP-0114, jabber:component:accept): Cadence's out-of-process plugins.
// A component connects to componentPorts, opens a stream to its own domain (a `components`
// entry with a `secret`), proves the secret with <handshake/> = hex SHA-1(stream id + secret),
// and then exchanges stanzas with the server: what it sends is routed as coming from its domain
// (any JID at that domain), what is addressed to its domain is written to its stream.
//
// Events (global bus): `component-connected` { host } after a successful handshake, and
// `component-disconnected` { host, graceful } when it goes away — graceful when the stream was
// closed (by the component's </stream:stream> or by the server), not graceful when the socket
// dropped without a stream close. Both are logged at info level.
//
// While a component is not connected, iq get/set and messages to its domain are answered with
// service-unavailable, presence is dropped. A second connection for a connected component is
// refused with a <conflict/> stream error (the established one stays).
import { createHash, timingSafeEqual } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { attrsOf, defineModule, isStanzaKind, NS, prep, split, StanzaError, startKeepalives, streamLimits, XmlStream, type CloseReason, type ComponentConnectedEvent, type ComponentDisconnectedEvent, type ComponentStanzaEvent, type Connection, type GlobalModuleApi, type Session, type Stanza, type StanzaEvent, STREAM_OPTIONS, type StreamLimits } from '../core/api.ts';

interface Shared {
  module: GlobalModuleApi<typeof STREAM_OPTIONS>;
  /** External components: domain → shared secret. */
  secrets: ReadonlyMap<string, string>;
  streams: Map<Session, XmlStream>;
  limits: (authenticated: boolean) => StreamLimits;
}

const KINDS = ['message', 'presence', 'iq'] as const;
const DESTS = ['host', 'bare', 'full'] as const;

/** The external components (entries with a secret) of the config. */
function externalComponents(module: GlobalModuleApi): Map<string, string> {
  const configured: Record<string, { secret?: unknown }> = module.config('components') ?? {};
  const secrets = new Map<string, string>();
  for (const [domain, entry] of Object.entries(configured)) {
    if (entry && typeof entry.secret === 'string' && entry.secret !== '') secrets.set(domain, entry.secret);
  }
  return secrets;
}

/** XEP-0114 §3: the handshake is the lowercase hex SHA-1 of the stream id followed by the secret. */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1').update(streamId + secret, 'utf8').digest('hex');
}

function digestMatches(offered: string, expected: string): boolean {
  const a = Buffer.from(offered.trim().toLowerCase(), 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Serialise for a component stream: a client/server content namespace gives way to the stream's. */
function serialise(x: Element): string {
  const attrs = attrsOf(x);
  if (attrs.xmlns !== NS.client && attrs.xmlns !== NS.server) return x.toString();
  const { xmlns: _dropped, ...rest } = attrs;
  const copy = new Element(x.name, rest);
  copy.children = x.children;
  return copy.toString();
}

export default defineModule({
  scope: 'global',
  description: 'External components (XEP-0114): handshake, routing to and from component domains',
  capabilities: ['sessions', 'routing', 'network'],
  options: STREAM_OPTIONS,
  async load(module) {
    const secrets = externalComponents(module);
    if (secrets.size === 0) {
      module.log('no external components configured: not listening');
      return;
    }
    const settings = {
      stanzaSizeLimit: module.option('stanzaSizeLimit'),
      preauthStanzaSizeLimit: module.option('preauthStanzaSizeLimit'),
      maxDepth: module.option('maxDepth'),
    };
    const limits = (authenticated: boolean): StreamLimits => streamLimits(settings, authenticated);
    const streams = new Map<Session, XmlStream>();
    const shared: Shared = { module, secrets, streams, limits };

    // Stanzas addressed to a component's domain: to its stream, ahead of anything else on that host.
    const deliver = (event: StanzaEvent): unknown => {
      if (!secrets.has(event.toHost)) return undefined;
      const { stanza } = event;
      const target = module.sessions.getComponent(event.toHost);
      if (target && streams.has(target)) {
        target.send(stanza);
        return true;
      }
      // Presence is dropped; never an error for iq results and errors (the router sees to it).
      if (stanza.name !== 'presence') throw new StanzaError('cancel', 'service-unavailable', `${event.toHost} is not connected`);
      return true;
    };
    for (const kind of KINDS) for (const dest of DESTS) module.hookEachHost(`${kind}/${dest}`, deliver, 1000);

    await module.privileged.network.listen({
      name: 'component',
      ports: module.config('componentPorts'),
      onConnection: (conn) => acceptConnection(shared, conn),
    });

    const keepalive = module.option('keepaliveInterval') * 1000;
    if (keepalive > 0) {
      const connected = function* () {
        for (const s of streams.keys()) if (s.conn && s.type === 'component') yield s.conn;
      };
      startKeepalives(connected, keepalive, (fn, ms) => module.setInterval(fn, ms));
    }

    const closeAll = (text: string) => {
      for (const session of [...streams.keys()]) session.close({ condition: 'system-shutdown', text });
    };
    module.hookGlobal('server-stopping', () => closeAll('Server is shutting down'));
    // Unloaded at run time: nothing would route to the components any more.
    module.signal.addEventListener('abort', () => closeAll('Component service unloaded'), { once: true });
  },
});

function acceptConnection(shared: Shared, conn: Connection): void {
  const { module, secrets, streams, limits } = shared;
  const { sessions, routing } = module.privileged;
  const who = () => (session.type === 'component' ? `component ${session.host}` : `unauthenticated component connection${session.host ? ` for ${session.host}` : ''}`);

  const stream: XmlStream = new XmlStream({
    conn,
    limits: limits(false),
    unauthenticatedTimeoutMs: module.option('unauthenticatedTimeout') * 1000,
    headerAttrs: () => ({ 'xmlns:stream': NS.streams, xmlns: NS.component, from: session.host }),
    serialise,
    describe: who,
    log: module.log,
    onEnd: (graceful, reason) => {
      streams.delete(session);
      const host = session.host;
      const wasConnected = session.type === 'component' && host !== undefined && module.sessions.getComponent(host) === session;
      sessions.destroy(session, reason);
      if (wasConnected) {
        module.log.info('component %s disconnected (%s)', host, graceful ? 'graceful' : 'not graceful');
        module.emit('component-disconnected', { host, graceful } satisfies ComponentDisconnectedEvent);
      }
    },
  });
  const session = sessions.create('component_unauthed', conn, { send: (x) => stream.send(x), close: (r) => stream.close(r) });
  streams.set(session, stream);
  const close = (reason: CloseReason) => stream.close(reason);

  stream.parser.on('streamStart', (attrs) => {
    if (attrs.xmlns !== NS.component) {
      close({ condition: 'invalid-namespace', text: `Default namespace must be ${NS.component}` });
      return;
    }
    const to = attrs.to !== undefined ? prep(attrs.to) : undefined;
    if (!to || !secrets.has(to) || module.hosts.kind(to) !== 'component') {
      close({ condition: 'host-unknown', text: to ? `${to} is not an external component of this server` : "The stream header has no 'to'" });
      return;
    }
    session.host = to;
    session.notopen = false;
    session.streamId = stream.sendHeader();
  });

  const handshake = (el: Element, host: string) => {
    const secret = secrets.get(host);
    if (secret === undefined || !digestMatches(el.text(), handshakeDigest(session.streamId ?? '', secret))) {
      close({ condition: 'not-authorized', text: 'Handshake failed' });
      return;
    }
    if (!sessions.makeComponent(session, host)) {
      close({ condition: 'conflict', text: `Component ${host} is already connected` });
      return;
    }
    // XEP-0114 §3: the component waits for our <handshake/> before it sends stanzas; any it
    // pipelined behind its handshake are dropped, not routed with the new identity.
    stream.authenticated(limits(true));
    stream.send('<handshake/>');
    module.log.info('component %s connected from %s', host, conn.ip);
    module.emit('component-connected', { host } satisfies ComponentConnectedEvent);
  };

  const fromComponent = (el: Stanza, host: string) => {
    const attrs = el.attrs;
    delete attrs.xmlns; // the stream's content namespace: stanzas travel without one inside the server
    if (attrs.from === undefined) {
      attrs.from = host; // lenient: the component's own domain
    } else {
      const from = prep(attrs.from);
      if (from === null || split(from).host !== host) {
        close({ condition: 'invalid-from', text: `A component may only send from addresses at ${host}` });
        return;
      }
      attrs.from = from;
    }
    if (attrs.to === undefined) {
      routing.bounce(session, el, 'modify', 'bad-request', "A component's stanzas must have a 'to' address");
      return;
    }
    // Privileged components (mod_privilege, XEP-0356) may have it taken over before routing.
    if (module.fire('component-stanza', { host, stanza: el } satisfies ComponentStanzaEvent) !== undefined) return;
    routing.route(session, el);
  };

  stream.parser.on('stanza', (el) => {
    const host = session.host;
    if (session.notopen || !host) return;
    const ns = attrsOf(el).xmlns;
    const inStreamNs = ns === undefined || ns === NS.component;
    if (session.type === 'component_unauthed') {
      if (el.name === 'handshake' && inStreamNs) handshake(el, host);
      else close({ condition: 'not-authorized', text: 'Send the handshake first' });
      return;
    }
    // jabber:client is tolerated for stanzas (some libraries can be told to use it).
    if ((inStreamNs || ns === NS.client) && isStanzaKind(el.name)) {
      fromComponent(el as Stanza, host);
      return;
    }
    close({ condition: 'unsupported-stanza-type', text: `Unexpected <${el.name}/>${ns ? ` in ${ns}` : ''}` });
  });
}
