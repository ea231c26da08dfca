//% requires_core_features: http-routes
// A web client in the box (doc/web.md, like Prosody's mod_conversejs): Converse.js from npm
// (the exact version pinned in package.json) at /conversejs, configured for this server's
// WebSocket endpoint with BOSH as the alternative, the host as the default domain. The files come
// from node_modules/converse.js/dist under a versioned path, so they are cached for good.
import { createReadStream, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineModule, HttpError, type GlobalModuleApi, type HttpRequest } from '../core/api.ts';

const PAGE_PATH = '/conversejs';

const OPTIONS = {
  settings: { type: 'object', description: 'Converse.js settings merged over the generated ones (https://conversejs.org/docs/html/configuration.html)', default: {} },
} as const;

/** The files the page may load, by extension; anything else in dist/ is not served. */
const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.eot': 'application/vnd.ms-fontobject',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

/**
 * Runs in the page after converse.min.js (both ES modules, run in document order): reads the JSON
 * settings block and starts Converse. No inline script, so the CSP needs no 'unsafe-inline'.
 */
const INIT_JS = `const settings = JSON.parse(document.getElementById('conversejs-settings').textContent);
window.converse.initialize(settings);
`;

interface Dist {
  dir: string;
  version: string;
}

function findDist(): Dist {
  // The package's "exports" resolve '.' to dist/converse.js.
  const dir = path.dirname(fileURLToPath(import.meta.resolve('converse.js')));
  const pkg = JSON.parse(readFileSync(path.join(dir, '..', 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('converse.js package.json has no version');
  return { dir, version: pkg.version };
}

function escapeHtml(v: string): string {
  return v.replace(/[&<>'"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&#39;' : '&quot;'));
}

/** JSON that is safe inside <script type="application/json">: no `</script>` or `<!--` can end it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

function origin(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

export default defineModule({
  scope: 'global',
  description: 'Converse.js web client at /conversejs (npm converse.js, served from node_modules)',
  options: OPTIONS,
  load(module) {
    const dist = findDist();
    const assetsPath = `${PAGE_PATH}/dist/${dist.version}/`;
    module.log.info(`serving Converse.js ${dist.version} at ${PAGE_PATH}`);

    module.http.route('GET', PAGE_PATH, (req) => page(module, req, dist, assetsPath));
    module.http.route('GET', `${PAGE_PATH}/init.js`, () => ({
      headers: { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' },
      body: INIT_JS,
    }));
    module.http.route('GET', `${PAGE_PATH}/dist/:version/*`, (req) => {
      // Another version is a page cached from before an upgrade: its files are gone.
      if (req.params.version !== dist.version) throw new HttpError(404, 'Not found');
      const rest = req.params['*'] ?? '';
      const file = path.resolve(dist.dir, rest);
      if (!file.startsWith(dist.dir + path.sep)) throw new HttpError(404, 'Not found');
      const type = CONTENT_TYPES[path.extname(file).toLowerCase()];
      if (!type) throw new HttpError(404, 'Not found');
      let size: number;
      try {
        const st = statSync(file);
        if (!st.isFile()) throw new HttpError(404, 'Not found');
        size = st.size;
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(404, 'Not found');
      }
      return {
        headers: {
          'Content-Type': type,
          'Content-Length': size,
          // The path carries the version: the file never changes under it.
          'Cache-Control': 'public, max-age=31536000, immutable',
          'X-Content-Type-Options': 'nosniff',
          // Converse loads its chunks, fonts and wasm from the page's origin only.
          'Cross-Origin-Resource-Policy': 'same-origin',
        },
        body: req.method === 'HEAD' ? undefined : createReadStream(file),
      };
    });
  },
});

function page(module: GlobalModuleApi<typeof OPTIONS>, req: HttpRequest, dist: Dist, assetsPath: string) {
  const hosts = module.hosts.names();
  const host = module.hosts.kind(req.host) === 'virtualhost' ? req.host : hosts.find((h) => module.hosts.kind(h) === 'virtualhost');
  if (!host) throw new HttpError(404, 'Not found');
  // The endpoints as this browser reached us (its Host header, its scheme), or httpExternalUrl.
  const external = module.config('httpExternalUrl');
  const reqHost = typeof req.headers.host === 'string' ? req.headers.host : undefined;
  const base = (external ?? (reqHost ? `${req.secure ? 'https' : 'http'}://${reqHost}` : module.http.url('/', host))).replace(/\/+$/, '');
  const event = { host, base, methods: [] as { rel: string; href: string }[] };
  module.emit('connection-methods', event);
  const websocketUrl = event.methods.find((m) => m.rel === 'urn:xmpp:alt-connections:websocket')?.href;
  const boshUrl = event.methods.find((m) => m.rel === 'urn:xmpp:alt-connections:xbosh')?.href;

  // ?transport=bosh (or websocket) picks one; by default Converse uses WebSocket and falls back
  // to BOSH in browsers without it.
  const transport = req.query.get('transport');
  if (transport !== null && transport !== 'bosh' && transport !== 'websocket') throw new HttpError(400, 'transport must be websocket or bosh');
  const wantWs = transport !== 'bosh';
  const wantBosh = transport !== 'websocket';
  if ((!wantWs || !websocketUrl) && (!wantBosh || !boshUrl)) {
    throw new HttpError(503, `No ${transport ?? 'WebSocket or BOSH'} endpoint is enabled on this server`);
  }
  const settings: Record<string, unknown> = {
    assets_path: assetsPath,
    view_mode: 'fullscreen',
    default_domain: host,
    domain_placeholder: host,
    discover_connection_methods: false,
    allow_registration: false,
    ...(wantWs && websocketUrl ? { websocket_url: websocketUrl } : {}),
    ...(wantBosh && boshUrl ? { bosh_service_url: boshUrl } : {}),
    ...module.option('settings'),
  };

  // Components (the XEP-0363 upload host) serve files the client PUTs to and shows inline.
  const componentOrigins = hosts.filter((h) => module.hosts.kind(h) === 'component').map((h) => origin(module.http.url('/', h))).filter((o): o is string => !!o);
  const endpointOrigins = [websocketUrl, boshUrl].map((u) => (u ? origin(u) : undefined)).filter((o): o is string => !!o);
  // Origins of ws(s):// URLs are 'null' in URL.origin: list the endpoint URLs themselves.
  const connect = ["'self'", ...new Set([...[websocketUrl, boshUrl].filter((u): u is string => !!u), ...endpointOrigins.filter((o) => o !== 'null'), ...componentOrigins])];
  const csp = [
    "default-src 'none'",
    // Converse's OMEMO library compiles WebAssembly.
    "script-src 'self' 'wasm-unsafe-eval'",
    // Lit components set style attributes.
    "style-src 'self' 'unsafe-inline'",
    // Images and media shared in chats are shown inline, wherever they are hosted.
    "img-src 'self' data: blob: https:" + (componentOrigins.length ? ' ' + componentOrigins.join(' ') : ''),
    "media-src 'self' data: blob: https:" + (componentOrigins.length ? ' ' + componentOrigins.join(' ') : ''),
    "font-src 'self' data:",
    `connect-src ${connect.join(' ')}`,
    "worker-src 'self' blob:",
    "manifest-src 'self'",
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');

  const title = `Chat on ${host}`;
  const body = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${escapeHtml(assetsPath)}converse.min.css">
<script type="application/json" id="conversejs-settings">${scriptJson(settings)}</script>
<script type="module" src="${escapeHtml(assetsPath)}converse.min.js"></script>
<script type="module" src="${PAGE_PATH}/init.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat client (Converse.js ${escapeHtml(dist.version)}) needs JavaScript.</noscript>
</body>
</html>
`;
  return {
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      // The settings depend on the request's host and scheme.
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': csp,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
    },
    body,
  };
}
