//% requires_core_features: http-routes
// Prometheus/OpenMetrics text at /metrics on the HTTP server (prom-client): sessions by type and
// host, stanzas in and out by kind and host, authentication failures by condition, limits hit,
// server-to-server streams by direction, remote domain and authentication (from mod_s2s),
// and prom-client's process metrics (memory, CPU, event-loop delay, GC). Only the addresses in
// `metrics.allow` (default loopback) may read it. No label ever holds a JID or a username: hosts,
// session types, stanza kinds and SASL conditions only. doc/metrics.md.
import { defineModule, HttpError, limitsHit, normaliseIp, observers, parseAddressList, type HttpRequest, type LimitHitKind, type Session, type Stanza } from '../core/api.ts';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type RegistryContentType } from 'prom-client';

const options = {
  allow: { type: 'string[]', description: 'Addresses and CIDR blocks that may read /metrics (after trustedProxies)', default: ['127.0.0.1', '::1'] },
  handlerTimes: { type: 'boolean', description: 'Time every event handler (cadence_handler_seconds, by event and module)', default: true },
  processMetrics: { type: 'boolean', description: "prom-client's default process metrics: memory, CPU, event-loop delay, GC, handles", default: true },
} as const;

/** The label a session's host gets: '' until the stream named one (unauthenticated streams). */
const hostOf = (s: Session): string => s.host ?? '';

export default defineModule({
  scope: 'global',
  description: 'Prometheus/OpenMetrics metrics at /metrics (loopback only by default)',
  options,
  load(module) {
    const allowed = parseAddressList(module.option('allow'), 'metrics.allow');
    const registry = new Registry<RegistryContentType>();
    if (module.option('processMetrics')) {
      collectDefaultMetrics({ register: registry });
      // GC durations get a series once a collection of that kind is seen; a lean idle server may
      // not have collected yet: zero them, so the series (and the dashboard's panel) exist at once.
      const gc = registry.getSingleMetric('nodejs_gc_duration_seconds');
      if (gc instanceof Histogram) for (const kind of ['minor', 'major', 'incremental', 'weakcb']) gc.zero({ kind });
    }

    // Sessions: counted when scraped from the connections the module is told about, so a session
    // that changes type (c2s_unauthed → c2s) is counted under its type of the moment.
    const connections = new Set<Session>();
    module.onConnections({ added: (s) => void connections.add(s), removed: (s) => void connections.delete(s) });
    new Gauge({
      name: 'cadence_sessions',
      help: 'Open sessions by type (c2s, c2s_unauthed, component, s2sin, …) and host',
      labelNames: ['type', 'host'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of connections) if (!s.destroyed) this.inc({ type: s.type, host: hostOf(s) });
      },
    });
    new Gauge({
      name: 'cadence_bound_resources',
      help: 'Bound client resources by host',
      labelNames: ['host'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const host of module.hosts.names()) this.set({ host }, [...module.sessions.boundSessions(host)].length);
      },
    });

    // Server-to-server streams (mod_s2s's export 'list', when it is loaded): outgoing routes live
    // outside the session registry. Labels are domains and methods, never JIDs.
    new Gauge({
      name: 'cadence_s2s_streams',
      help: 'Established server-to-server streams by direction (in, out), remote domain, authentication (EXTERNAL, dialback, none) and XEP-0288 bidi',
      labelNames: ['direction', 'remote', 'auth', 'bidi'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        let rows: { direction: string; remote: string; auth: string; bidi?: boolean; state: string }[];
        try {
          rows = await module.call('s2s', 'list');
        } catch {
          return; // mod_s2s not loaded
        }
        for (const r of rows) {
          if (r.state !== 'ready') continue; // negotiating ones are in cadence_sessions (s2sin_unauthed)
          for (const remote of r.remote.split(',')) this.inc({ direction: r.direction, remote, auth: r.auth, bidi: r.bidi ? 'yes' : 'no' });
        }
      },
    });

    // Stanzas through the session filters: what sessions sent us (in) and what was written to them (out).
    const stanzas = new Counter({
      name: 'cadence_stanzas_total',
      help: 'Stanzas received from (in) and written to (out) sessions, by kind and the session\'s host',
      labelNames: ['direction', 'kind', 'host'] as const,
      registers: [registry],
    });
    // Children cached by label values: prom-client hashes the labels object on every plain inc().
    const stanzaSeries = new Map<string, { inc(): void }>();
    const count = (direction: 'in' | 'out') => (stanza: Stanza, session: Session): Stanza => {
      const host = hostOf(session);
      const key = `${direction} ${stanza.name} ${host}`;
      let series = stanzaSeries.get(key);
      if (series === undefined) stanzaSeries.set(key, (series = stanzas.labels({ direction, kind: stanza.name, host })));
      series.inc();
      return stanza;
    };
    // Lowest priority on the way in: after the filters that may drop a stanza (blocking…).
    module.filter('stanzas/in', count('in'), -1000);
    module.filter('stanzas/out', count('out'), -1000);

    const authFailures = new Counter({
      name: 'cadence_auth_failures_total',
      help: 'Failed SASL authentications by host and SASL condition',
      labelNames: ['host', 'condition'] as const,
      registers: [registry],
    });
    module.hookEachHost('authentication-failure', ({ session, condition }) => {
      authFailures.inc({ host: hostOf(session), condition });
    });

    // core/limits.ts keeps process-wide counters; the counter follows them (they only grow).
    const seen: Record<LimitHitKind, number> = { ...limitsHit };
    for (const k of Object.keys(seen) as LimitHitKind[]) seen[k] = 0;
    new Counter({
      name: 'cadence_limits_hit_total',
      help: 'Times a limit was hit: rate (a connection\'s reading paused), connectionsPerAddress (connection refused), sessionsPerAccount (resource refused), sendQueue (slow reader closed)',
      labelNames: ['limit'] as const,
      registers: [registry],
      collect() {
        for (const k of Object.keys(seen) as LimitHitKind[]) {
          this.inc({ limit: k }, limitsHit[k] - seen[k]);
          seen[k] = limitsHit[k];
        }
      },
    });

    // Routing: a client's stanza from its arrival at the router to the end of its handling
    // (filters, checks, every handler, including asynchronous ones and storage they await).
    const routed = new Histogram({
      name: 'cadence_routing_seconds',
      help: "Time from a client stanza's arrival at the router to the end of its handling, by kind",
      labelNames: ['kind'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
    const routedSeries = new Map<string, { observe(v: number): void }>();
    observers.routed = (kind, seconds) => {
      let series = routedSeries.get(kind);
      if (series === undefined) routedSeries.set(kind, (series = routed.labels({ kind })));
      series.observe(seconds);
    };

    if (module.option('handlerTimes')) {
      // A summed counter pair rather than a histogram: one series per event and module is already many.
      const seconds = new Counter({ name: 'cadence_handler_seconds_total', help: 'Time spent in event handlers, by event and module', labelNames: ['event', 'module'] as const, registers: [registry] });
      const calls = new Counter({ name: 'cadence_handler_calls_total', help: 'Event handler calls, by event and module', labelNames: ['event', 'module'] as const, registers: [registry] });
      const handlerSeries = new Map<string, { seconds: { inc(v: number): void }; calls: { inc(): void } }>();
      observers.handler = (event, owner, s) => {
        // Keyed by the label, not the raw name: iq responses' names hold ids (unbounded).
        const label = eventLabel(event);
        const key = `${label} ${owner}`;
        let series = handlerSeries.get(key);
        if (series === undefined) {
          const labels = { event: label, module: owner };
          handlerSeries.set(key, (series = { seconds: seconds.labels(labels), calls: calls.labels(labels) }));
        }
        series.seconds.inc(s);
        series.calls.inc();
      };
    }

    module.http.route('GET', '/metrics', async (req: HttpRequest) => {
      const ip = normaliseIp(req.ip);
      if (!allowedIp(allowed, ip)) {
        module.log.warn('/metrics refused to %s (not in metrics.allow)', ip);
        throw new HttpError(403, 'Forbidden');
      }
      // OpenMetrics when the scraper asks for it (Prometheus does), else the classic text format.
      // The format is the registry's state while it renders, so scrapes take turns.
      const open = /application\/openmetrics-text/.test(String(req.headers.accept ?? ''));
      return module.serial('scrape', async () => {
        registry.setContentType(open ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE);
        return { headers: { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' }, body: await registry.metrics() };
      });
    });

    module.signal.addEventListener('abort', () => {
      delete observers.routed;
      delete observers.handler;
      registry.clear();
    });
  },
});

function allowedIp(list: ReturnType<typeof parseAddressList>, ip: string): boolean {
  const family = ip.includes(':') ? 'ipv6' : 'ipv4';
  try {
    return list.check(ip, family);
  } catch {
    return false;
  }
}

/**
 * An event name as a label, without the parts that are unbounded: iq responses are dispatched by
 * their id (`iq-result/host/<id>`), so they are counted under `iq-result/host`.
 */
function eventLabel(event: string): string {
  if (event.startsWith('iq-result/') || event.startsWith('iq-error/')) return event.split('/', 2).join('/');
  return event;
}
