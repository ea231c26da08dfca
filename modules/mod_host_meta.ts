//% requires_core_features: http-routes
// Connection discovery over HTTP (XEP-0156 §3): /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json (JRD) on every virtual host, listing the endpoints the transport
// modules announce through `connection-methods` (mod_websocket, mod_bosh). CORS for any origin:
// web clients on other sites read it before connecting. doc/web.md.
//
// XEP-0487 (Host Meta 2, 0.1.0) in the JSON document when the operator names the server's
// public addresses (`host_meta: { ips: […] }`; the server cannot know them behind NAT or a proxy,
// and the XEP makes them mandatory), over HTTPS only (§2.2): a top-level `xmpp` object with `ttl`,
// the direct-TLS endpoints (`urn:xmpp:alt-connections:tls` with ALPN `xmpp-client`, `…:s2s-tls`
// with `xmpp-server`, as XEP-0368 has them) and the secure WebSocket/BOSH links, each with `ips`,
// `priority`, `weight` and `sni`. The `xmpp` object tells clients and servers to skip SRV lookups,
// so it is published only when clients can connect through what is listed (STARTTLS on 5222 has
// no link relation in XEP-0487) and, when federation listens, servers too (an s2s direct-TLS
// port). No `public-key-pins-sha-256`: each ACME renewal makes a new key, and pins need a key
// announced two TTLs before it is used, which the certificate handling does not do.
import net from 'node:net';
import { defineModule, HttpError, type HttpRequest } from '../core/api.ts';

const XRD_NS = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';
const REL_DIRECT_TLS = 'urn:xmpp:alt-connections:tls';
const REL_S2S_DIRECT_TLS = 'urn:xmpp:alt-connections:s2s-tls';
/** RFC 2782 order (lower first): direct TLS, then WebSocket, then BOSH; equal weights. */
const PRIORITY: Record<string, number> = {
  [REL_DIRECT_TLS]: 10,
  [REL_S2S_DIRECT_TLS]: 10,
  'urn:xmpp:alt-connections:websocket': 20,
  'urn:xmpp:alt-connections:xbosh': 30,
};
const WEIGHT = 50;

const OPTIONS = {
  ips: { type: 'string[]', description: 'Public IPv4/IPv6 addresses of this server; when set, host-meta.json carries XEP-0487 connection data', default: [] },
  ttl: { type: 'integer', description: 'Seconds clients may cache host-meta (XEP-0487 ttl and Cache-Control max-age)', default: 3600, min: 60 },
  directTlsPort: { type: 'integer', description: 'Port clients reach direct TLS on, when it is forwarded (0: the port the direct-TLS listener is bound to)', default: 0, min: 0, max: 65535 },
  s2sDirectTlsPort: { type: 'integer', description: 'Port servers reach server-to-server direct TLS on, when it is forwarded (0: the port the listener is bound to)', default: 0, min: 0, max: 65535 },
} as const;

interface Link {
  rel: string;
  href?: string;
  port?: number;
  ips?: string[];
  priority?: number;
  weight?: number;
  sni?: string;
}

function escapeAttr(v: string): string {
  return v.replace(/[&<>'"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&apos;' : '&quot;'));
}

export default defineModule({
  scope: 'global',
  description: 'XEP-0156 connection discovery: /.well-known/host-meta and host-meta.json (with XEP-0487 data when configured)',
  options: OPTIONS,
  load(module) {
    const ips = module.option('ips');
    const bad = ips.filter((ip) => net.isIP(ip) === 0);
    if (bad.length) throw new Error(`host_meta.ips: not IP addresses: ${bad.join(', ')}`);
    const ttl = module.option('ttl');
    const directTlsPort = module.option('directTlsPort');
    const s2sDirectTlsPort = module.option('s2sDirectTlsPort');
    let warned = false;

    const links = (req: HttpRequest): { rel: string; href: string }[] => {
      const host = req.host;
      if (module.hosts.kind(host) !== 'virtualhost') throw new HttpError(404, 'Not found');
      const external = module.config('httpExternalUrl');
      // As the client reached us when it came over HTTPS (its Host header holds the port it
      // used); else the HTTPS listener, since pages served over HTTPS can use only secure endpoints.
      const reqHost = typeof req.headers.host === 'string' && req.secure ? req.headers.host : undefined;
      const base = (external ?? (reqHost ? `https://${reqHost}` : module.http.url('/', host))).replace(/\/+$/, '');
      const event = { host, base, methods: [] as { rel: string; href: string }[] };
      module.emit('connection-methods', event);
      return event.methods;
    };

    /** The JRD: XEP-0156 links, with XEP-0487's fields when `ips` is configured and something secure is listed. */
    const jrd = (req: HttpRequest): { xmpp?: { ttl: number }; links: Link[] } => {
      const host = req.host;
      const listed: Link[] = links(req);
      // XEP-0487 §2.2: fetched over HTTPS only; a plain-HTTP answer stays XEP-0156.
      if (!ips.length || !req.secure) return { links: listed };
      const secure = (l: Link) => /^(wss|https):\/\//.test(l.href ?? '');
      const out: Link[] = listed.map((l) => {
        if (!secure(l) || PRIORITY[l.rel] === undefined) return l;
        // The name to send in SNI: the URL's when it names another host (a proxy with its own certificate).
        const urlHost = new URL(l.href!).hostname;
        return { ...l, ips, priority: PRIORITY[l.rel], weight: WEIGHT, sni: net.isIP(urlHost.replace(/^\[|\]$/g, '')) ? host : urlHost };
      });
      const listeners = module.listeners();
      const ports = (name: string, forwarded: number) => {
        const bound = [...new Set(listeners.filter((l) => l.name === name).map((l) => l.port))];
        return bound.length && forwarded ? [forwarded] : bound;
      };
      const s2sTls = ports('s2s_direct_tls', s2sDirectTlsPort);
      for (const port of s2sTls.reverse()) out.unshift({ rel: REL_S2S_DIRECT_TLS, port, ips, priority: PRIORITY[REL_S2S_DIRECT_TLS], weight: WEIGHT, sni: host });
      for (const port of ports('c2s_direct_tls', directTlsPort).reverse()) out.unshift({ rel: REL_DIRECT_TLS, port, ips, priority: PRIORITY[REL_DIRECT_TLS], weight: WEIGHT, sni: host });
      // The `xmpp` object makes clients and servers skip SRV lookups (§2.2): published only when
      // clients can connect through what is listed and, with federation on, servers too.
      const clientsReach = out.some((l) => l.rel === REL_DIRECT_TLS || l.sni !== undefined);
      const serversReach = !listeners.some((l) => l.name === 's2s') || s2sTls.length > 0;
      if (!clientsReach || !serversReach) {
        if (!warned) {
          warned = true;
          module.log.warn('host_meta: no XEP-0487 data in host-meta.json: %s', !clientsReach ? 'clients could reach this server only through STARTTLS, which XEP-0487 cannot list' : 'federation has no direct-TLS port (s2sDirectTlsPorts), and servers that read XEP-0487 would skip the SRV records of the STARTTLS one');
        }
        return { links: listed };
      }
      return { xmpp: { ttl }, links: out };
    };

    const headers = { 'Cache-Control': `max-age=${ttl}` };
    module.http.route('GET', '/.well-known/host-meta', (req) => ({
      headers: { ...headers, 'Content-Type': 'application/xrd+xml; charset=utf-8' },
      body: `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='${XRD_NS}'>\n${links(req).map((l) => `  <Link rel='${escapeAttr(l.rel)}' href='${escapeAttr(l.href)}'/>\n`).join('')}</XRD>\n`,
    }), { cors: true });
    module.http.route('GET', '/.well-known/host-meta.json', (req) => ({
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify(jrd(req), null, 2) + '\n',
    }), { cors: true });
  },
});
