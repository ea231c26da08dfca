//% requires_core_features: http-routes
// Connection discovery over HTTP (XEP-0156 §3): /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json (JRD) on every virtual host, listing the endpoints the transport
// modules announce through `connection-methods` (mod_websocket, mod_bosh). CORS for any origin:
// web clients on other sites read it before connecting. doc/web.md.
import { defineModule, HttpError, type HttpRequest } from '../core/api.ts';

const XRD_NS = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';

function escapeAttr(v: string): string {
  return v.replace(/[&<>'"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&apos;' : '&quot;'));
}

export default defineModule({
  scope: 'global',
  description: 'XEP-0156 connection discovery: /.well-known/host-meta and host-meta.json',
  load(module) {
    const links = (req: HttpRequest) => {
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
    const headers = { 'Cache-Control': 'max-age=3600' };
    module.http.route('GET', '/.well-known/host-meta', (req) => ({
      headers: { ...headers, 'Content-Type': 'application/xrd+xml; charset=utf-8' },
      body: `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='${XRD_NS}'>\n${links(req).map((l) => `  <Link rel='${escapeAttr(l.rel)}' href='${escapeAttr(l.href)}'/>\n`).join('')}</XRD>\n`,
    }), { cors: true });
    module.http.route('GET', '/.well-known/host-meta.json', (req) => ({
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ links: links(req) }, null, 2) + '\n',
    }), { cors: true });
  },
});
