// The HTTP(S) server of the process: one set of listeners (plain on httpPorts, TLS with the hosts'
// certificates via SNI on httpsPorts) and a route table that modules fill per host and path
// (`route(host | '*', method, '/upload/:slot', handler)`), WebSocket upgrades routed the same way,
// CORS per route, body size limits, per-request timeouts, X-Forwarded-* from trusted proxies only,
// one access log line per request, and a shutdown that waits for what is in flight. doc/web.md.
//
// node:http rather than a framework: the server needs routing by host and path, CORS, limits and
// upgrades — a few hundred lines — and the modules on top need the raw request and response
// (BOSH holds responses open, uploads stream bodies to disk, WebSocket takes over the socket).
// HTTP/1.1 only: WebSocket (RFC 6455) and BOSH long-polling are HTTP/1.1 protocols.
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { BlockList } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import type { WebSocketServer, WebSocket } from 'ws';
import { CoreError } from '../util/errors.ts';
import { getLogger, type Logger } from '../util/log.ts';

export const HTTP_DEFAULTS = {
  httpPorts: [5280],
  httpsPorts: [5281],
  /** Largest request body a route accepts unless it sets its own maxBodyBytes. */
  maxBodyBytes: 1024 * 1024,
  /** Time from the request's first byte to the end of its response, unless the route sets its own. */
  requestTimeoutMs: 60_000,
  /** Time a client has to send the request head (slowloris). */
  headersTimeoutMs: 20_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** How long close() waits for in-flight requests before cutting connections. */
  shutdownGraceMs: 5_000,
};

export interface HttpTls {
  /** For tls.Server's SNICallback (CertManager.sni). */
  sni(servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void;
  /** Certificate for clients that send no SNI (CertManager.fallback). */
  fallback: { cert: Buffer | string; key: Buffer | string } | undefined;
}

export interface HttpServerOptions {
  /** Plain HTTP ports (default [5280]); [] for none. */
  httpPorts?: number[];
  /** HTTPS ports (default [5281]); [] for none. Needs `tls`. */
  httpsPorts?: number[];
  /** Addresses to bind (default: all). */
  interfaces?: string[];
  tls?: HttpTls;
  /** Peers whose X-Forwarded-For/-Proto/-Host are believed: addresses or CIDR blocks. */
  trustedProxies?: readonly string[];
  /** Another name for a host: the routes of `aliases[name]` serve requests for `name`. */
  hostAliases?: Readonly<Record<string, string>>;
  maxBodyBytes?: number;
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  log?: Logger;
}

/** CORS (Fetch standard, "CORS protocol") for a route. */
export interface CorsOptions {
  /** Allowed origins: '*', a list of exact origins ('https://chat.example.org'), or a test. */
  origins: '*' | readonly string[] | ((origin: string) => boolean);
  /** Methods allowed in preflight answers (default: the methods of the CORS routes on the path). */
  methods?: readonly string[];
  /** Request headers allowed beyond the CORS-safelisted ones (default: Content-Type). */
  headers?: readonly string[];
  /** Response headers scripts may read. */
  exposeHeaders?: readonly string[];
  /** Cookies/HTTP authentication allowed (the origin is then echoed, never '*'). */
  credentials?: boolean;
  /** How long a browser may cache a preflight answer (default 7200 s). */
  maxAgeSeconds?: number;
}

export interface RouteOptions {
  cors?: CorsOptions | true;
  /** Largest request body (default: the server's maxBodyBytes); larger gets 413. */
  maxBodyBytes?: number;
  /** Time from the request to the end of the response (default: the server's requestTimeoutMs). */
  timeoutMs?: number;
  /** Parameters never written to the access log (secrets in the path, e.g. an upload slot). */
  redactParams?: readonly string[];
}

export interface WebSocketRouteOptions {
  /** Sub-protocols spoken here, best first (RFC 6455 §1.9); the first the client offers is chosen. */
  protocols?: readonly string[];
  /** Refuse the upgrade (400) when the client offers none of `protocols`. */
  requireProtocol?: boolean;
  /** Origins allowed to open the socket from a browser (default: any); a refused Origin gets 403. */
  origins?: CorsOptions['origins'];
  /** Largest message (default 1 MiB); larger closes the socket with 1009. */
  maxPayload?: number;
  /** Send a WebSocket ping every this many ms; a peer that has not answered the previous one is dropped. */
  pingIntervalMs?: number;
}

/** What a handler may return instead of writing the response itself. */
export interface HttpReply {
  status?: number;
  headers?: Record<string, string | number | readonly string[]>;
  body?: string | Uint8Array | Readable;
}

export type HttpHandler = (req: HttpRequest, res: ServerResponse) => HttpReply | void | Promise<HttpReply | void>;

/** Who is on the other end of a request or upgrade, after trusted proxies. */
export interface ClientInfo {
  /** The client's address (from X-Forwarded-For when the peer is a trusted proxy). */
  ip: string;
  /** The TCP peer's address. */
  peer: string;
  /** HTTPS as the client sees it (X-Forwarded-Proto from a trusted proxy, else the listener). */
  secure: boolean;
  /** The requested host: lower case, without port or trailing dot ('' when absent). */
  host: string;
  /**
   * The TLS connection the client itself negotiated with this server (for channel binding):
   * undefined on plain HTTP, and when a trusted proxy forwarded the request (X-Forwarded-*), since
   * that TLS connection is the proxy's, not the client's.
   */
  clientTls: tls.TLSSocket | undefined;
}

export interface WebSocketContext extends ClientInfo {
  path: string;
  params: Record<string, string>;
  /** The negotiated sub-protocol ('' when none). */
  protocol: string;
  origin: string | undefined;
  headers: IncomingHttpHeaders;
  /** The TLS connection, when this server terminated TLS for the upgrade (for channel binding). */
  tlsSocket: tls.TLSSocket | undefined;
  /**
   * Hold what is written to the socket until the end of this tick, then send it at once: the
   * messages sent in one tick leave in one syscall (and TLS record) instead of one each.
   */
  batchWrites(): void;
}

export type WebSocketHandler = (ws: WebSocket, ctx: WebSocketContext) => void;

/** Thrown by handlers (or body reading) to answer with that status. */
export class HttpError extends Error {
  constructor(readonly status: number, message?: string, readonly headers?: Record<string, string>) {
    super(message ?? http.STATUS_CODES[status] ?? 'Error');
    this.name = 'HttpError';
  }
}

export class HttpRequest implements ClientInfo {
  readonly method: string;
  readonly ip: string;
  readonly peer: string;
  readonly secure: boolean;
  readonly host: string;
  readonly clientTls: tls.TLSSocket | undefined;
  /** The path as sent (percent-encoded, dot segments removed), without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly origin: string | undefined;
  /** Aborted when the client goes away or the request times out. */
  readonly signal: AbortSignal;
  private continued = false;
  private consumed = false;

  constructor(
    readonly raw: IncomingMessage,
    private readonly res: ServerResponse,
    client: ClientInfo,
    url: URL,
    readonly params: Readonly<Record<string, string>>,
    readonly maxBodyBytes: number,
    private readonly expectsContinue: boolean,
    signal: AbortSignal,
  ) {
    this.method = raw.method ?? 'GET';
    this.ip = client.ip;
    this.peer = client.peer;
    this.secure = client.secure;
    this.host = client.host;
    this.clientTls = client.clientTls;
    this.path = url.pathname;
    this.query = url.searchParams;
    this.headers = raw.headers;
    this.origin = header(raw.headers, 'origin');
    this.signal = signal;
  }

  /** The declared body length, if any. */
  get contentLength(): number | undefined {
    const v = this.headers['content-length'];
    return v === undefined ? undefined : Number(v);
  }

  /** The body, chunk by chunk; throws HttpError 413 past maxBodyBytes. Read it once. */
  async *bodyStream(): AsyncGenerator<Buffer> {
    if (this.consumed) throw new Error('the request body was already read');
    this.consumed = true;
    // Expect: 100-continue — the client waits for this before it sends the body, so a handler
    // that refuses first (wrong slot, no permission) never receives it.
    if (this.expectsContinue && !this.continued) {
      this.continued = true;
      this.res.writeContinue();
    }
    let total = 0;
    for await (const chunk of this.raw as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > this.maxBodyBytes) throw new HttpError(413, `The request body exceeds ${this.maxBodyBytes} bytes`);
      yield chunk;
    }
  }

  async body(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.bodyStream()) chunks.push(c);
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return (await this.body()).toString('utf8');
  }
}

// ---- trusted proxies ----

/** A set of addresses and CIDR blocks ('10.0.0.0/8', '::1', 'fd00::/8'). Throws CONFIG_INVALID. */
export function parseAddressList(entries: readonly string[], what = 'trustedProxies'): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits, extra] = entry.trim().split('/');
    const family = net.isIP(addr ?? '');
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32) || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new CoreError('CONFIG_INVALID', `${what}: '${entry}' is not an IP address or CIDR block`);
    }
    list.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** An address as compared and logged: IPv4-mapped IPv6 becomes IPv4, zone ids are dropped. */
export function normaliseIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1]!;
  const pct = ip.indexOf('%');
  return pct >= 0 ? ip.slice(0, pct) : ip;
}

function inList(list: BlockList, ip: string): boolean {
  const family = net.isIP(ip);
  return family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** One X-Forwarded-For entry: an address, maybe with a port ('1.2.3.4:80', '[::1]:80'). */
function forwardedAddress(entry: string): string | undefined {
  let a = entry.trim();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracket) a = bracket[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  a = normaliseIp(a);
  return net.isIP(a) ? a : undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function lastListValue(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  return parts[parts.length - 1];
}

/** Host header → virtual host name: lower case, no port, no trailing dot; '' if absent or malformed. */
export function hostFromHeader(value: string | undefined): string {
  if (!value) return '';
  let h = value.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : '';
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return /^[a-z0-9._-]+$/.test(h) ? h : '';
}

// ---- routes ----

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'rest' };

interface Route {
  host: string;
  method: string;
  pattern: string;
  segments: Segment[];
  handler: HttpHandler;
  opts: RouteOptions;
  cors: CorsOptions | undefined;
}

interface WsRoute {
  host: string;
  pattern: string;
  segments: Segment[];
  handler: WebSocketHandler;
  opts: WebSocketRouteOptions;
  /** Made at the route's first upgrade: the `ws` package is loaded only by a server that gets one. */
  wss?: WebSocketServer;
}

let wsPackage: Promise<typeof import('ws')> | undefined;

/** What an upgrade found out before the WebSocket takes the socket (see HttpServer.upgrade). */
interface UpgradeContext {
  client: ClientInfo;
  url: URL;
  params: Record<string, string>;
  origin: string | undefined;
  listenerSecure: boolean;
  id: number;
  started: number;
}

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/;
const METHOD = /^[A-Z]+$/;

function parsePattern(pattern: string): Segment[] {
  if (!pattern.startsWith('/')) throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route '${pattern}': a path pattern starts with '/'`);
  const parts = splitPath(pattern);
  const names = new Set<string>();
  return parts.map((p, i): Segment => {
    if (p === '*') {
      if (i !== parts.length - 1) throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route '${pattern}': '*' may only end a pattern`);
      return { kind: 'rest' };
    }
    if (p.startsWith(':')) {
      const m = PARAM.exec(p);
      if (!m || names.has(m[1]!)) throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route '${pattern}': bad or repeated parameter '${p}'`);
      names.add(m[1]!);
      return { kind: 'param', name: m[1]! };
    }
    if (p.includes('*')) throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route '${pattern}': '*' must be a whole segment`);
    return { kind: 'literal', value: p };
  });
}

/** Segments of a path; a trailing slash is ignored ('/a/' is '/a'), the root has none. */
function splitPath(path: string): string[] {
  const parts = path.split('/').slice(1);
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Literal before parameter before the rest, segment by segment; longer before shorter. */
function specificity(a: Segment[], b: Segment[]): number {
  const rank = (s: Segment | undefined) => (s === undefined ? 0 : s.kind === 'literal' ? 3 : s.kind === 'param' ? 2 : 1);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = rank(b[i]) - rank(a[i]);
    if (d !== 0) return d;
  }
  return 0;
}

function shape(segments: Segment[]): string {
  return segments.map((s) => (s.kind === 'literal' ? `/${s.value}` : s.kind === 'param' ? '/:' : '/*')).join('');
}

/** Params of a match, or undefined; throws HttpError 400 on a malformed percent-encoding. */
function match(segments: Segment[], parts: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.kind === 'rest') {
      params['*'] = parts.slice(i).map(decode).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal') {
      if (decode(part) !== seg.value) return undefined;
    } else {
      params[seg.name] = decode(part);
    }
  }
  return parts.length === segments.length ? params : undefined;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'Malformed percent-encoding in the path');
  }
}

// ---- CORS ----

/** Request headers a browser sends without asking (Fetch: CORS-safelisted request headers). */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language', 'content-type', 'range']);

function originAllowed(origins: CorsOptions['origins'], origin: string): boolean {
  if (origins === '*') return true;
  if (typeof origins === 'function') return origins(origin);
  return origins.includes(origin);
}

function corsOf(opts: RouteOptions): CorsOptions | undefined {
  return opts.cors === true ? { origins: '*' } : opts.cors;
}

/** CORS headers for an actual (non-preflight) request; none when the origin is not allowed. */
function corsHeaders(cors: CorsOptions, origin: string): Record<string, string> {
  if (!originAllowed(cors.origins, origin)) return {};
  const h: Record<string, string> = {};
  if (cors.origins === '*' && !cors.credentials) {
    h['Access-Control-Allow-Origin'] = '*';
  } else {
    h['Access-Control-Allow-Origin'] = origin;
    h.Vary = 'Origin';
  }
  if (cors.credentials) h['Access-Control-Allow-Credentials'] = 'true';
  if (cors.exposeHeaders?.length) h['Access-Control-Expose-Headers'] = cors.exposeHeaders.join(', ');
  return h;
}

// ---- the server ----

interface InFlight {
  res: ServerResponse;
}

let upgradeIds = 0;

export class HttpServer {
  private readonly routes = new Map<string, Route[]>();
  private readonly wsRoutes = new Map<string, WsRoute[]>();
  private readonly servers: { server: http.Server; secure: boolean; address: string; port: number }[] = [];
  private readonly trusted: BlockList;
  private readonly inFlight = new Set<InFlight>();
  private readonly sockets = new Set<WebSocket>();
  private readonly log: Logger;
  private readonly opts: Required<Pick<HttpServerOptions, 'httpPorts' | 'httpsPorts' | 'maxBodyBytes' | 'requestTimeoutMs' | 'headersTimeoutMs' | 'keepAliveTimeoutMs'>> & HttpServerOptions;
  private closing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: HttpServerOptions = {}) {
    this.opts = {
      ...options,
      httpPorts: options.httpPorts ?? HTTP_DEFAULTS.httpPorts,
      httpsPorts: options.httpsPorts ?? HTTP_DEFAULTS.httpsPorts,
      maxBodyBytes: options.maxBodyBytes ?? HTTP_DEFAULTS.maxBodyBytes,
      requestTimeoutMs: options.requestTimeoutMs ?? HTTP_DEFAULTS.requestTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs ?? HTTP_DEFAULTS.headersTimeoutMs,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? HTTP_DEFAULTS.keepAliveTimeoutMs,
    };
    this.trusted = parseAddressList(options.trustedProxies ?? []);
    this.log = options.log ?? getLogger('core:http');
  }

  /** Bind every port on every interface; throws LISTEN_FAILED (nothing stays bound) or TLS_FAILED. */
  async listen(): Promise<void> {
    const { httpPorts } = this.opts;
    let { httpsPorts } = this.opts;
    if (httpsPorts.length && !this.opts.tls) throw new CoreError('TLS_FAILED', 'httpsPorts are set but no certificates were given to the HTTP server');
    if (httpsPorts.length && !this.opts.tls?.fallback) {
      this.log.warn('no certificate is loaded: HTTPS is not served (httpsPorts %s)', httpsPorts.join(', '));
      httpsPorts = [];
    }
    const ifaces = this.opts.interfaces?.length ? this.opts.interfaces : [undefined];
    try {
      for (const [ports, secure] of [[httpPorts, false], [httpsPorts, true]] as const) {
        for (const port of ports) for (const iface of ifaces) await this.bind(port, iface, secure);
      }
    } catch (err) {
      await Promise.all(this.servers.splice(0).map(({ server }) => new Promise((r) => server.close(r))));
      throw err;
    }
    this.log('listening on %s', this.addresses().map((a) => `${a.secure ? 'https' : 'http'}://${a.address}:${a.port}`).join(', '));
  }

  /** Whether listen() has bound the listeners (and close() has not run). */
  get listening(): boolean {
    return this.servers.length > 0;
  }

  /** Whether any route or WebSocket route is registered. */
  get hasRoutes(): boolean {
    return this.routes.size > 0 || this.wsRoutes.size > 0;
  }

  /**
   * The certificates changed (CertManager reload): clients without SNI get the new default at
   * once; SNI clients already ask the callback per handshake.
   */
  refreshTls(): void {
    const fallback = this.opts.tls?.fallback;
    if (!fallback) return;
    for (const { server, secure } of this.servers) if (secure) (server as https.Server).setSecureContext({ ...fallback, minVersion: 'TLSv1.2' });
  }

  /** What is bound (ports resolved when 0 was asked for). */
  addresses(): { secure: boolean; address: string; port: number }[] {
    return this.servers.map(({ secure, address, port }) => ({ secure, address, port }));
  }

  private async bind(port: number, iface: string | undefined, secure: boolean): Promise<void> {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res, secure, false);
    const tlsOpts = this.opts.tls;
    const server: http.Server = secure
      ? https.createServer({ ...tlsOpts!.fallback, SNICallback: tlsOpts!.sni, minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }, onRequest)
      : http.createServer(onRequest);
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res, secure, true));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, secure));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      this.log('bad request from %s: %s', (socket as net.Socket).remoteAddress, err.code ?? err.message);
      if (err.code !== 'ECONNRESET' && socket.writable) {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else {
        socket.destroy();
      }
    });
    if (secure) {
      server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => this.log('TLS handshake failed from %s: %s', socket.remoteAddress, err.message));
    }
    server.headersTimeout = this.opts.headersTimeoutMs;
    server.requestTimeout = 0; // our own per-request timer covers body and handler (route timeoutMs)
    server.keepAliveTimeout = this.opts.keepAliveTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: iface, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
      throw new CoreError('LISTEN_FAILED', `cannot listen for ${secure ? 'https' : 'http'} on ${iface ?? '*'}:${port}: ${why}`);
    });
    server.on('error', (err) => this.log.error('%s listener error: %s', secure ? 'https' : 'http', err));
    const a = server.address() as net.AddressInfo;
    this.servers.push({ server, secure, address: a.address, port: a.port });
  }

  /**
   * Serve `method pattern` on `host` ('*': every host that has no route of its own for the path).
   * Patterns: literal segments, `:name` parameters (percent-decoded), a final `*` for the rest
   * (params['*']). A GET route answers HEAD too. Returns the function that removes the route.
   */
  route(host: string, method: string, pattern: string, handler: HttpHandler, opts: RouteOptions = {}): () => void {
    const m = method.toUpperCase();
    if (!METHOD.test(m)) throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route ${pattern}: bad method '${method}'`);
    if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route ${pattern}: timeoutMs must be positive`);
    const segments = parsePattern(pattern);
    const h = host.toLowerCase();
    const list = this.routes.get(h) ?? [];
    if (list.some((r) => r.method === m && shape(r.segments) === shape(segments))) {
      throw new CoreError('HTTP_ROUTE_INVALID', `HTTP route ${m} ${h}${pattern} is already registered`);
    }
    const route: Route = { host: h, method: m, pattern, segments, handler, opts, cors: corsOf(opts) };
    list.push(route);
    list.sort((a, b) => specificity(a.segments, b.segments));
    this.routes.set(h, list);
    this.log('route %s %s%s', m, h, pattern);
    return () => {
      const l = this.routes.get(h);
      const i = l?.indexOf(route) ?? -1;
      if (i >= 0) l!.splice(i, 1);
      if (l && l.length === 0) this.routes.delete(h);
    };
  }

  /** WebSocket upgrades for `pattern` on `host` (RFC 6455, the `ws` package). Returns the remover. */
  websocket(host: string, pattern: string, handler: WebSocketHandler, opts: WebSocketRouteOptions = {}): () => void {
    const segments = parsePattern(pattern);
    const h = host.toLowerCase();
    const list = this.wsRoutes.get(h) ?? [];
    if (list.some((r) => shape(r.segments) === shape(segments))) throw new CoreError('HTTP_ROUTE_INVALID', `WebSocket route ${h}${pattern} is already registered`);
    const route: WsRoute = { host: h, pattern, segments, handler, opts };
    list.push(route);
    list.sort((a, b) => specificity(a.segments, b.segments));
    this.wsRoutes.set(h, list);
    return () => {
      const l = this.wsRoutes.get(h);
      const i = l?.indexOf(route) ?? -1;
      if (i >= 0) l!.splice(i, 1);
      if (l && l.length === 0) this.wsRoutes.delete(h);
      route.wss?.close();
    };
  }

  /** Who sent this request: X-Forwarded-* are read only when the TCP peer is a trusted proxy. */
  clientInfo(req: IncomingMessage, listenerSecure: boolean): ClientInfo {
    const peer = normaliseIp(req.socket.remoteAddress ?? '');
    let ip = peer;
    let secure = listenerSecure;
    let hostValue = header(req.headers, 'host');
    let forwarded = false;
    if (inList(this.trusted, peer)) {
      forwarded = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].some((h) => req.headers[h] !== undefined);
      // Walk X-Forwarded-For from the right: the first address not of a trusted proxy is the client.
      const hops = (header(req.headers, 'x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      for (let i = hops.length - 1; i >= 0 && inList(this.trusted, ip); i--) {
        const a = forwardedAddress(hops[i]!);
        if (!a) break;
        ip = a;
      }
      // The proxy next to us sets the last value of each list.
      const proto = lastListValue(header(req.headers, 'x-forwarded-proto'))?.toLowerCase();
      if (proto === 'https' || proto === 'wss') secure = true;
      else if (proto === 'http' || proto === 'ws') secure = false;
      hostValue = lastListValue(header(req.headers, 'x-forwarded-host')) ?? hostValue;
    }
    let host = hostFromHeader(hostValue);
    host = this.opts.hostAliases?.[host] ?? host;
    const clientTls = listenerSecure && !forwarded && req.socket instanceof tls.TLSSocket ? req.socket : undefined;
    return { ip, peer, secure, host, clientTls };
  }

  /** Routes of the host, then the '*' routes. */
  private candidates<T>(table: Map<string, T[]>, host: string): T[] {
    const own = table.get(host) ?? [];
    const any = host === '*' ? [] : (table.get('*') ?? []);
    return own.length === 0 ? any : any.length === 0 ? own : [...own, ...any];
  }

  private handle(req: IncomingMessage, res: ServerResponse, listenerSecure: boolean, expectsContinue: boolean): void {
    const started = Date.now();
    const client = this.clientInfo(req, listenerSecure);
    const method = (req.method ?? 'GET').toUpperCase();
    const entry: InFlight = { res };
    this.inFlight.add(entry);
    if (this.closing) res.shouldKeepAlive = false;
    let logPath = '';
    res.once('close', () => {
      this.inFlight.delete(entry);
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      this.log('%s %s %s%s %s %dms "%s"', client.ip, method, client.host || '-', logPath, status, Date.now() - started, header(req.headers, 'user-agent') ?? '');
      if (this.inFlight.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });

    const fail = (status: number, text: string, headers: Record<string, string> = {}) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body we did not read is not read: the connection goes.
      if (!req.complete) res.shouldKeepAlive = false;
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers });
      res.end(`${text}\n`);
    };

    let url: URL;
    try {
      if (!req.url?.startsWith('/')) {
        logPath = ' (bad target)';
        return fail(400, 'Bad request target');
      }
      url = new URL(req.url, 'http://localhost');
    } catch {
      logPath = ' (bad target)';
      return fail(400, 'Bad request target');
    }
    logPath = url.pathname;
    const parts = splitPath(url.pathname);

    let found: { route: Route; params: Record<string, string> } | undefined;
    const pathRoutes: { route: Route; params: Record<string, string> }[] = [];
    try {
      for (const route of this.candidates(this.routes, client.host)) {
        const params = match(route.segments, parts);
        if (!params) continue;
        pathRoutes.push({ route, params });
        if (!found && (route.method === method || (method === 'HEAD' && route.method === 'GET'))) found = { route, params };
      }
    } catch (err) {
      return fail((err as HttpError).status ?? 400, (err as Error).message);
    }
    if (pathRoutes.length === 0) return fail(404, 'Not found');

    const origin = header(req.headers, 'origin');
    if (method === 'OPTIONS' && !found) return this.options(req, res, pathRoutes.map((p) => p.route), origin, fail);
    if (!found) {
      const allow = [...new Set(pathRoutes.flatMap((p) => (p.route.method === 'GET' ? ['GET', 'HEAD'] : [p.route.method])))];
      return fail(405, 'Method not allowed', { Allow: [...allow, 'OPTIONS'].join(', ') });
    }
    const { route, params } = found;
    logPath = redact(route, params, url.pathname);

    if (origin !== undefined && route.cors) for (const [k, v] of Object.entries(corsHeaders(route.cors, origin))) res.setHeader(k, v);

    const maxBody = route.opts.maxBodyBytes ?? this.opts.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBody) {
      return fail(413, `The request body exceeds ${maxBody} bytes`);
    }

    const abort = new AbortController();
    res.once('close', () => abort.abort());
    const timeoutMs = route.opts.timeoutMs ?? this.opts.requestTimeoutMs;
    const timer = setTimeout(() => {
      this.log('%s %s%s timed out after %dms', method, client.host, logPath, timeoutMs);
      abort.abort();
      fail(req.complete ? 503 : 408, req.complete ? 'The request took too long' : 'The request body took too long');
    }, timeoutMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));

    const request = new HttpRequest(req, res, client, url, params, maxBody, expectsContinue, abort.signal);
    let result: HttpReply | void | Promise<HttpReply | void>;
    try {
      result = route.handler(request, res);
    } catch (err) {
      return this.handlerError(err, route, fail);
    }
    Promise.resolve(result).then(
      (reply) => {
        if (reply) return this.reply(req, res, reply);
        if (!res.headersSent && !res.writableEnded && !abort.signal.aborted) {
          this.log.error('HTTP handler of %s %s%s returned without answering', route.method, route.host, route.pattern);
          fail(500, 'Internal server error');
        }
      },
      (err) => this.handlerError(err, route, fail),
    ).catch((err) => {
      // A client that went away mid-response is not an error of ours.
      if (abort.signal.aborted) this.log('HTTP reply of %s %s%s cut short: %s', route.method, route.host, route.pattern, err);
      else this.log.error('HTTP reply of %s %s%s failed: %s', route.method, route.host, route.pattern, err);
      res.destroy();
    });
  }

  private handlerError(err: unknown, route: Route, fail: (status: number, text: string, headers?: Record<string, string>) => void): void {
    if (err instanceof HttpError) return fail(err.status, err.message, err.headers);
    this.log.error('HTTP handler of %s %s%s failed: %s', route.method, route.host, route.pattern, err);
    fail(500, 'Internal server error');
  }

  private async reply(req: IncomingMessage, res: ServerResponse, reply: HttpReply): Promise<void> {
    if (res.headersSent) return;
    if (!req.complete) res.shouldKeepAlive = false;
    res.statusCode = reply.status ?? 200;
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, typeof v === 'number' ? v : (v as string | string[]));
    const body = reply.body;
    if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      res.end(body);
      return;
    }
    await pipeline(body, res);
  }

  /** OPTIONS on a path without an OPTIONS route: a CORS preflight, or the methods allowed. */
  private options(req: IncomingMessage, res: ServerResponse, routes: Route[], origin: string | undefined, fail: (status: number, text: string, headers?: Record<string, string>) => void): void {
    const requested = header(req.headers, 'access-control-request-method');
    if (origin === undefined || requested === undefined) {
      const allow = [...new Set(routes.flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method])))];
      res.writeHead(204, { Allow: [...allow, 'OPTIONS'].join(', ') });
      res.end();
      return;
    }
    const want = requested.toUpperCase();
    const corsRoutes = routes.filter((r) => r.cors && originAllowed(r.cors.origins, origin));
    const target = corsRoutes.find((r) => r.method === want || (want === 'HEAD' && r.method === 'GET'));
    const cors = target?.cors;
    const methods = cors?.methods ?? [...new Set(corsRoutes.map((r) => r.method))];
    const allowedHeaders = new Set([...(cors?.headers ?? ['Content-Type'])].map((h) => h.toLowerCase()));
    const requestedHeaders = (header(req.headers, 'access-control-request-headers') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const headersOk = requestedHeaders.every((h) => SAFELISTED.has(h) || allowedHeaders.has(h));
    if (!cors || !methods.includes(want) || !headersOk) {
      return fail(403, 'CORS preflight refused', { Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' });
    }
    res.writeHead(204, {
      ...corsHeaders(cors, origin),
      'Access-Control-Allow-Methods': methods.join(', '),
      'Access-Control-Allow-Headers': [...new Set([...(cors.headers ?? ['Content-Type']), ...requestedHeaders])].join(', '),
      'Access-Control-Max-Age': String(cors.maxAgeSeconds ?? 7200),
      Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
    res.end();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, listenerSecure: boolean): void {
    const started = Date.now();
    const client = this.clientInfo(req, listenerSecure);
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, text: string) => {
      this.log('%s UPGRADE %s%s %d %s', client.ip, client.host || '-', req.url ?? '', status, text);
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text) + 1}\r\n\r\n${text}\n`);
      } else {
        socket.destroy();
      }
    };
    if (this.closing) return refuse(503, 'The server is shutting down');
    if ((header(req.headers, 'upgrade') ?? '').toLowerCase() !== 'websocket') return refuse(400, 'Only WebSocket upgrades are supported');
    let url: URL;
    try {
      if (!req.url?.startsWith('/')) return refuse(400, 'Bad request target');
      url = new URL(req.url, 'http://localhost');
    } catch {
      return refuse(400, 'Bad request target');
    }
    const parts = splitPath(url.pathname);
    let found: { route: WsRoute; params: Record<string, string> } | undefined;
    try {
      for (const route of this.candidates(this.wsRoutes, client.host)) {
        const params = match(route.segments, parts);
        if (params) {
          found = { route, params };
          break;
        }
      }
    } catch (err) {
      return refuse(400, (err as Error).message);
    }
    if (!found) return refuse(404, 'Not found');
    const { route, params } = found;
    const origin = header(req.headers, 'origin');
    if (origin !== undefined && route.opts.origins !== undefined && !originAllowed(route.opts.origins, origin)) {
      return refuse(403, 'Origin not allowed');
    }
    const protocols = route.opts.protocols ?? [];
    const offered = (header(req.headers, 'sec-websocket-protocol') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (route.opts.requireProtocol && !protocols.some((p) => offered.includes(p))) {
      return refuse(400, `This endpoint speaks the WebSocket sub-protocol ${protocols.join(', ')}`);
    }
    const id = ++upgradeIds;
    if (!route.wss) {
      // The first upgrade of this route: load `ws` (once per process), then go on with this one.
      wsPackage ??= import('ws');
      wsPackage.then(
        ({ WebSocketServer }) => {
          route.wss ??= new WebSocketServer({
            noServer: true,
            maxPayload: route.opts.maxPayload ?? 1024 * 1024,
            perMessageDeflate: false,
            handleProtocols: (offered: Set<string>) => protocols.find((p) => offered.has(p)) ?? false,
          });
          if (socket.destroyed) return;
          if (this.closing || !this.wsRoutes.get(route.host)?.includes(route)) return refuse(503, 'The server is shutting down');
          this.upgradeOn(route, req, socket, head, { client, url, params, origin, listenerSecure, id, started });
        },
        (err: unknown) => {
          this.log.error('cannot load the ws package: %s', err);
          refuse(500, 'Internal error');
        },
      );
      return;
    }
    this.upgradeOn(route, req, socket, head, { client, url, params, origin, listenerSecure, id, started });
  }

  private upgradeOn(route: WsRoute, req: IncomingMessage, socket: Duplex, head: Buffer, u: UpgradeContext): void {
    const { client, url, params, origin, listenerSecure, id, started } = u;
    route.wss!.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.add(ws);
      this.log('%s UPGRADE %s%s 101 ws#%d protocol=%s', client.ip, client.host || '-', url.pathname, id, ws.protocol || '-');
      ws.once('close', (code) => {
        this.sockets.delete(ws);
        this.log('ws#%d closed %d after %dms', id, code, Date.now() - started);
      });
      if (route.opts.pingIntervalMs) keepAlive(ws, route.opts.pingIntervalMs);
      try {
        const tlsSocket = listenerSecure && req.socket instanceof tls.TLSSocket ? req.socket : undefined;
        let corked = false;
        const batchWrites = () => {
          if (corked || socket.destroyed) return;
          corked = true;
          socket.cork();
          process.nextTick(() => {
            corked = false;
            socket.uncork();
          });
        };
        route.handler(ws, { ...client, path: url.pathname, params, protocol: ws.protocol, origin, headers: req.headers, tlsSocket, batchWrites });
      } catch (err) {
        this.log.error('WebSocket handler of %s%s failed: %s', route.host, route.pattern, err);
        ws.close(1011, 'Internal error');
      }
    });
  }

  /** Requests being answered now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Stop: no new connections, idle keep-alive connections closed at once, in-flight requests
   * answered (their connections then close) within `graceMs`, then everything cut. Open
   * WebSockets get a close frame 1001 (going away) — their modules should have ended them first.
   */
  async close(graceMs = HTTP_DEFAULTS.shutdownGraceMs): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const { res } of this.inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    const closed = this.servers.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const { server } of this.servers) server.closeIdleConnections();
    for (const ws of this.sockets) ws.close(1001, 'Server shutting down');
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        t.unref();
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    for (const { server } of this.servers) server.closeAllConnections();
    for (const ws of this.sockets) ws.terminate();
    for (const list of this.wsRoutes.values()) for (const r of list) r.wss?.close();
    await Promise.all(closed);
    this.servers.length = 0;
    this.log('closed');
  }
}

/** The path for the access log, with the route's secret parameters replaced by their names. */
function redact(route: Route, params: Record<string, string>, path: string): string {
  const secret = route.opts.redactParams;
  if (!secret?.length) return path;
  return '/' + route.segments
    .map((s) => (s.kind === 'literal' ? s.value : s.kind === 'param' ? (secret.includes(s.name) ? `:${s.name}` : encodeURIComponent(params[s.name]!)) : secret.includes('*') ? '*' : params['*']))
    .join('/');
}

function keepAlive(ws: WebSocket, intervalMs: number): void {
  let answered = true;
  ws.on('pong', () => {
    answered = true;
  });
  const timer = setInterval(() => {
    if (!answered) {
      ws.terminate();
      return;
    }
    answered = false;
    ws.ping();
  }, intervalMs);
  timer.unref();
  ws.once('close', () => clearInterval(timer));
}
