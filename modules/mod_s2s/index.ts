//% requires_core_features: sessions-v1, stanza-events-v1, module-capabilities, module-exports
// Server-to-server streams (RFC 6120, jabber:server; doc/federation.md): listeners on s2sPorts
// (STARTTLS) and s2sDirectTlsPorts (XEP-0368), bound to s2sInterfaces; one outgoing stream per
// domain pair, found through s2sRoutes or SRV (dnsServers), with a bounded queue whose stanzas
// bounce when the stream cannot be established; authentication by certificate (SASL EXTERNAL,
// XEP-0178) or dialback (XEP-0220, XEP-0185 keys) unless s2sSecureAuth forbids it; idle streams
// closed after s2sIdleTimeout. Stanzas for remote domains arrive through the router's remote
// route (`route/remote`); stanzas from remote domains are checked and routed like local ones.
// Bidirectional streams (XEP-0288, s2sBidi): a stream either side opened carries both directions,
// so a stanza for a remote domain first looks for a bidi stream that may carry it.
import type { Element } from '@xmpp/xml';
import {
  defineModule, errorReply, IssuedKeys, mustNotReplyWithError, newDialbackSecret, parseDnsServer, parseS2sRoutes, prep, Resolver, resolveS2sTargets, split, streamLimits, STREAM_OPTIONS,
  type Session, type Stanza, type StanzaErrorCondition, type StanzaErrorType,
} from '../../core/api.ts';
import { acceptIncoming, type IncomingDeps, type IncomingStream } from './incoming.ts';
import { OutgoingRoute, type VerifyOutcome } from './outgoing.ts';
import { loadAnchors } from './pki.ts';

const ERROR_TYPE: Partial<Record<StanzaErrorCondition, StanzaErrorType>> = {
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'remote-server-not-found': 'cancel',
  'policy-violation': 'cancel',
};

/** What one of our domains requires of remote domains (its s2s options). */
interface HostPolicy {
  requireEncryption: boolean;
  /** Must this remote domain authenticate with its certificate (s2sSecureAuth / s2sSecureDomains / s2sInsecureDomains)? */
  secureAuth(remote: string): boolean;
  /** Is this remote domain allowed (s2sBlocklist / s2sAllowlist)? */
  allowed(remote: string): boolean;
}

/** One line of `s2s list`. */
export interface S2sStreamInfo {
  direction: 'out' | 'in';
  local: string;
  remote: string;
  auth: string;
  tls: string;
  ageSeconds: number;
  state: string;
  queued?: number;
  /** XEP-0288: the stream carries stanzas both ways. */
  bidi?: boolean;
}

export default defineModule({
  scope: 'global',
  description: 'Server-to-server streams (federation): listeners, outgoing routes, dialback and SASL EXTERNAL',
  capabilities: ['sessions', 'routing', 'network', 'tls'],
  options: STREAM_OPTIONS,
  async load(module) {
    const settings = {
      stanzaSizeLimit: module.option('stanzaSizeLimit'),
      preauthStanzaSizeLimit: module.option('preauthStanzaSizeLimit'),
      maxDepth: module.option('maxDepth'),
    };
    const limits = (authenticated: boolean) => streamLimits(settings, authenticated);

    const parsedRoutes = parseS2sRoutes(module.config('s2sRoutes'));
    if (!parsedRoutes.ok) throw new Error(parsedRoutes.errors.join('; '));
    const dnsServers = module.config('dnsServers');
    if (dnsServers) {
      const bad = dnsServers.filter((s) => parseDnsServer(s) === undefined);
      if (bad.length) throw new Error(`dnsServers: not an address: ${bad.join(', ')}`);
    }
    const resolver = new Resolver({ servers: dnsServers });
    const readAnchors = () => {
      const caFile = module.config('s2sCaFile');
      return loadAnchors(caFile ? module.resolvePath(caFile) : undefined);
    };
    let anchors = readAnchors(); // a broken CA file stops the start, not the first connection
    const trustAnchors = () => anchors;
    // A reload re-reads the CA file (a renewed CA at the same path, or another path); a broken one
    // leaves the anchors in force.
    module.hookGlobal('config-reloaded', () => {
      try {
        anchors = readAnchors();
      } catch (err) {
        module.log.error('s2sCaFile not reloaded, the previous trust anchors stay: %s', (err as Error).message);
      }
    });
    const secret = module.config('dialbackSecret') ?? newDialbackSecret();
    const issued = new IssuedKeys({ secret });
    const norm = (list: string[] | undefined) => (list ? new Set(list.map((x) => prep(x) ?? x)) : undefined);
    /**
     * The policy of one of our domains towards remote domains: its own s2s options (virtualHosts /
     * components entry), else the global ones. Applied by the local end of each stream: the `to` of an
     * incoming stream or dialback request, the `from` of an outgoing one.
     */
    const policies = new Map<string, HostPolicy>();
    const policy = (local: string): HostPolicy => {
      let p = policies.get(local);
      if (p) return p;
      // Certificates required from every peer (s2sSecureAuth) but those in s2sInsecureDomains, or only
      // from those in s2sSecureDomains (Prosody's s2s_secure_domains / s2s_insecure_domains).
      const secureAll = module.config('s2sSecureAuth', local);
      const secureDomains = norm(module.config('s2sSecureDomains', local)) ?? new Set<string>();
      const insecureDomains = norm(module.config('s2sInsecureDomains', local)) ?? new Set<string>();
      const blocklist = norm(module.config('s2sBlocklist', local)) ?? new Set<string>();
      const allowlist = norm(module.config('s2sAllowlist', local));
      p = {
        requireEncryption: module.config('s2sRequireEncryption', local),
        secureAuth: (remote) => (secureAll ? !insecureDomains.has(remote) : secureDomains.has(remote)),
        allowed: (remote) => !blocklist.has(remote) && (allowlist === undefined || allowlist.has(remote)),
      };
      policies.set(local, p);
      return p;
    };
    module.hookGlobal('config-reloaded', () => policies.clear());
    const dane = module.config('dane');
    const interfaces = module.config('s2sInterfaces') ?? module.config('interfaces');
    const localAddress = interfaces ? sourceAddresses(interfaces) : undefined;

    const outgoing = new Map<string, OutgoingRoute>();
    // Domain pairs ('local remote') whose route just failed: their stanzas bounce at once for
    // s2sFailureMemory seconds instead of each opening a new route (and a new round of connection
    // attempts). Per pair, since the failure may be one local domain's policy (s2sSecureAuth per host).
    const failureMemoryMs = module.config('s2sFailureMemory') * 1000;
    const recentFailures = new Map<string, { condition: StanzaErrorCondition; text: string; until: number }>();
    const incoming = new Map<Session, IncomingStream>();
    const bidi = module.config('s2sBidi');
    const { sessions, routing } = module.privileged;
    /** The session that carries what a peer sends us over our outgoing bidi stream (routed like an incoming stream's). */
    const reverse = new Map<OutgoingRoute, Session>();

    /** Answer a stanza that cannot reach its remote destination (never an error or a result). */
    const bounce = (stanza: Stanza, condition: StanzaErrorCondition, text: string) => {
      const fromHost = stanza.attrs.from !== undefined ? split(stanza.attrs.from).host : undefined;
      if (mustNotReplyWithError(stanza) || !fromHost || !module.hosts.has(fromHost)) {
        module.log('not bouncing %s to %s (%s): %s', stanza.name, stanza.attrs.to, condition, text);
        return;
      }
      module.log('bouncing %s from %s to %s: %s (%s)', stanza.name, stanza.attrs.from, stanza.attrs.to, condition, text);
      module.sendFrom(fromHost, errorReply(stanza, ERROR_TYPE[condition] ?? 'cancel', condition, text));
    };

    const routeFor = (local: string, remote: string): OutgoingRoute => {
      const key = `${local} ${remote}`;
      const existing = outgoing.get(key);
      if (existing && existing.state !== 'closed') return existing;
      const route = new OutgoingRoute({
        local,
        remote,
        log: module.log,
        resolve: (domain) => resolveS2sTargets(domain, { resolver, routes: parsedRoutes.routes }),
        lookup: (host) => resolver.addresses(host),
        tlsa: dane ? (host, port) => resolver.tlsa(host, port) : undefined,
        pem: () => module.privileged.tls.pem(local),
        anchors: trustAnchors,
        requireEncryption: policy(local).requireEncryption,
        secureAuth: policy(local).secureAuth(remote),
        secureAuthFor: (domain) => policy(local).secureAuth(domain),
        connectTimeoutMs: module.config('s2sConnectTimeout') * 1000,
        queueTimeoutMs: module.config('s2sQueueTimeout') * 1000,
        dialbackTimeoutMs: 30_000,
        queueLimit: module.config('s2sQueueLimit'),
        localAddress,
        issued,
        limits: limits(true),
        bounce,
        closed: (r) => {
          if (outgoing.get(key) === r) outgoing.delete(key);
          const why = r.failedWith;
          if (why && failureMemoryMs > 0) recentFailures.set(key, { ...why, until: Date.now() + failureMemoryMs });
          const s = reverse.get(r);
          if (s) {
            reverse.delete(r);
            sessions.destroy(s, { condition: 'connection-timeout', text: 'the s2s stream closed' });
          }
        },
        bidi,
        allowed: (domain) => policy(local).allowed(domain),
        inbound: (r, stanza) => {
          let s = reverse.get(r);
          if (!s) {
            s = sessions.create('s2sin', r.transport(), {
              // Error replies the router sends "to" this session go to the remote like any stanza.
              send: (x) => (typeof x === 'string' ? false : sendRemote(x)),
              close: () => r.close('closed'),
              reset: () => undefined,
            });
            s.host = r.local;
            s.notopen = false;
            reverse.set(r, s);
          }
          routing.route(s, stanza);
        },
        verifyElsewhere: (other, streamId, key) => routeFor(local, other).verify(streamId, key),
        // A bidi stream, or an established stream of another domain of ours it can be multiplexed onto.
        carried: () => (bidiCarrier(local, remote) ? 'a bidirectional stream' : sharedStream(local, remote) ? `the stream ${sharedStream(local, remote)!.local} → ${remote} (multiplexing)` : undefined),
        senderRefused: (other, stanzas) => {
          for (const stanza of stanzas) routeFor(other, remote).send(stanza);
        },
      });
      outgoing.set(key, route);
      void route.start().catch((err: unknown) => {
        module.log.error('s2s route %s → %s failed: %s', local, remote, err);
        route.close(String(err));
      });
      return route;
    };

    /** A bidirectional stream that carries (or, after dialback over it, will carry) stanzas from `local` to `remote`. */
    const bidiCarrier = (local: string, remote: string): { send(stanza: Stanza): void } | undefined => {
      if (!bidi) return undefined;
      for (const r of outgoing.values()) {
        if (r.bidi && r.state === 'ready' && r.local === local && (r.remote === remote || r.inbound.has(remote))) return r;
      }
      for (const s of incoming.values()) if (s.canSend(local, remote)) return { send: (x) => s.sendStanza(x) };
      return undefined;
    };

    /**
     * An established outgoing stream from another domain of ours to `remote` that may carry `local`
     * too, after dialback for the pair on it (XEP-0220 "Multiplexing Sender Domains") — instead of a
     * connection per domain pair.
     */
    const sharedStream = (local: string, remote: string): OutgoingRoute | undefined => {
      const p = policy(local);
      const needs = { requireEncryption: p.requireEncryption, secureAuth: p.secureAuth(remote) };
      for (const r of outgoing.values()) if (r.remote === remote && r.canCarryFrom(local, needs)) return r;
      return undefined;
    };

    /** A stanza for a remote domain: onto the route of its domain pair. */
    const sendRemote = (stanza: Element): boolean => {
      const s = stanza as Stanza;
      const local = s.attrs.from !== undefined ? split(s.attrs.from).host : undefined;
      const remote = s.attrs.to !== undefined ? split(s.attrs.to).host : undefined;
      if (!local || !remote || !module.hosts.has(local)) {
        module.log.warn('cannot send %s from %s to %s over s2s: the sender is not one of our domains', s.name, s.attrs.from, s.attrs.to);
        return false;
      }
      if (module.hosts.has(remote)) return false;
      if (!policy(local).allowed(remote)) {
        bounce(s, 'policy-violation', `Federation with ${remote} is not allowed on this server`);
        return true;
      }
      const existing = outgoing.get(`${local} ${remote}`);
      if (existing?.state === 'ready') {
        existing.send(s);
        return true;
      }
      const carrier = bidiCarrier(local, remote);
      if (carrier) {
        carrier.send(s);
        return true;
      }
      // A route of the pair's own that only verifies dialback keys does not stop multiplexing.
      const shared = existing && existing.state !== 'closed' && !existing.verifyOnly ? undefined : sharedStream(local, remote);
      if (shared) {
        shared.sendFrom(local, s);
        return true;
      }
      const failed = recentFailures.get(`${local} ${remote}`);
      if (failed && !existing) {
        if (failed.until > Date.now()) {
          bounce(s, failed.condition, `${failed.text} (failed ${Math.round((failureMemoryMs - (failed.until - Date.now())) / 1000)} s ago; not trying again yet)`);
          return true;
        }
        recentFailures.delete(`${local} ${remote}`);
      }
      routeFor(local, remote).send(s);
      return true;
    };

    module.hookGlobal('route/remote', ({ stanza }) => {
      if (!sendRemote(stanza)) return undefined;
      return true;
    });

    const deps: IncomingDeps = {
      module,
      limits,
      unauthenticatedTimeoutMs: module.option('unauthenticatedTimeout') * 1000,
      requireEncryption: (local) => (local === undefined ? module.config('s2sRequireEncryption') : policy(local).requireEncryption),
      secureAuth: (local, remote) => policy(local).secureAuth(remote),
      anchors: trustAnchors,
      issued,
      allowed: (local, remote) => policy(local).allowed(remote),
      verify: (local, remote, streamId, key): Promise<VerifyOutcome> => routeFor(local, remote).verify(streamId, key),
      sendRemote,
      streams: incoming,
      bidi,
      bounce,
      dialbackTimeoutMs: 30_000,
    };
    const network = module.privileged.network;
    await network.listen({ name: 's2s', ports: module.config('s2sPorts'), interfaces, onConnection: (conn) => acceptIncoming(deps, conn) });
    const directPorts = module.config('s2sDirectTlsPorts');
    if (directPorts.length) {
      await network.listen({ name: 's2s_direct_tls', ports: directPorts, interfaces, directTls: true, alpn: 'xmpp-server', requestCert: true, onConnection: (conn) => acceptIncoming(deps, conn) });
    }

    // Idle streams (nothing either way for s2sIdleTimeout) are closed; a new stanza opens a new one.
    const idleMs = module.config('s2sIdleTimeout') * 1000;
    module.setInterval(() => {
      const now = Date.now();
      for (const r of outgoing.values()) if (r.state === 'ready' && now - r.lastActivity >= idleMs) r.close('idle');
      for (const s of incoming.values()) if (s.pairs.size > 0 && now - s.conn.lastActivity >= idleMs) s.stream.close();
    }, Math.max(1000, Math.min(idleMs, 30_000)));
    module.setInterval(() => {
      issued.sweep();
      const now = Date.now();
      for (const [pair, f] of recentFailures) if (f.until <= now) recentFailures.delete(pair);
    }, 60_000);

    const list = (): S2sStreamInfo[] => {
      const now = Date.now();
      const out: S2sStreamInfo[] = [];
      for (const r of outgoing.values()) {
        out.push({ direction: 'out', local: r.locals.join(','), remote: r.remote, auth: r.auth + (r.dane === 'verified' ? '+DANE' : ''), tls: r.tlsProtocol ?? 'none', ageSeconds: Math.round((now - r.created) / 1000), state: r.state, queued: r.queued, bidi: r.bidi });
      }
      for (const s of incoming.values()) {
        const pairs = [...s.pairs.entries()];
        const remote = pairs.length ? [...new Set(pairs.map(([k]) => k.split(' ')[0]))].join(',') : (s.peer ?? '?');
        const auth = pairs.length ? [...new Set(pairs.map(([, how]) => how))].join(',') : 'none';
        out.push({ direction: 'in', local: s.session.host ?? '?', remote, auth, tls: s.conn.tlsInfo?.protocol ?? 'none', ageSeconds: Math.round((now - s.conn.created) / 1000), state: pairs.length ? 'ready' : 'negotiating', bidi: s.bidi });
      }
      return out;
    };
    const closeDomain = (domain: string): number => {
      const d = prep(domain) ?? domain;
      let n = 0;
      for (const r of [...outgoing.values()]) if (r.remote === d) {
        r.close('closed by the operator');
        n++;
      }
      for (const s of [...incoming.values()]) if (s.peer === d || [...s.pairs.keys()].some((k) => k.startsWith(`${d} `))) {
        s.stream.close({ condition: 'policy-violation', text: 'Closed by the operator' });
        n++;
      }
      return n;
    };
    module.export('list', list, 'The s2s streams: direction, domains, authentication, TLS, age');
    module.export('close', closeDomain, 'Close every s2s stream with a remote domain');

    const closeAll = () => {
      for (const r of [...outgoing.values()]) r.close('shutting down');
      for (const s of [...incoming.values()]) s.stream.close({ condition: 'system-shutdown', text: 'Server is shutting down' });
    };
    module.hookGlobal('server-stopping', closeAll);
    module.signal.addEventListener('abort', closeAll, { once: true });
  },
});

/** Source addresses per family from s2sInterfaces (a wildcard binds nothing). */
function sourceAddresses(interfaces: string[]): { 4?: string; 6?: string } | undefined {
  const out: { 4?: string; 6?: string } = {};
  for (const i of interfaces) {
    if (i === '0.0.0.0' || i === '::' || i === '*') return undefined;
    if (i.includes(':')) out[6] ??= i;
    else out[4] ??= i;
  }
  return out;
}
