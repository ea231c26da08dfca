// The HTTP(S) server (core/net/http.ts) over real sockets on 127.0.0.1: routing by host and path,
// CORS, limits, timeouts, trusted proxies, TLS with SNI, WebSocket upgrades, shutdown.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { once } from 'node:events';
import selfsigned from 'selfsigned';
import tls from 'node:tls';
import WebSocket from 'ws';
import { HttpError, HttpServer, hostFromHeader, normaliseIp, parseAddressList, type HttpServerOptions } from '../../core/net/http.ts';
import { addLogSink } from '../../core/util/log.ts';
import { CoreError } from '../../core/util/errors.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A raw HTTP exchange on one socket: what the server wrote until it closed. */
async function raw(port: number, text: string): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write(text);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await once(s, 'close');
  return Buffer.concat(chunks).toString();
}

describe('HTTP server (core/net/http.ts)', () => {
  let server: HttpServer;
  let port: number;

  async function start(opts: HttpServerOptions = {}): Promise<HttpServer> {
    server = new HttpServer({ httpPorts: [0], httpsPorts: [], interfaces: ['127.0.0.1'], ...opts });
    await server.listen();
    port = server.addresses()[0]!.port;
    return server;
  }

  afterEach(async () => {
    await server?.close(200);
  });

  describe('routes', () => {
    it('routes by Host header and path, with :params, and falls back to the * routes', async () => {
      await start();
      server.route('example.org', 'GET', '/upload/:slot/:name', (req) => ({ body: `org ${req.params.slot} ${req.params.name} ${req.host}` }));
      server.route('*', 'GET', '/upload/:slot/:name', (req) => ({ body: `any ${req.host}` }));
      server.route('*', 'GET', '/hello', () => ({ body: 'hello' }));
      assert.equal((await request(port, { path: '/upload/abc/caf%C3%A9.jpg', headers: { Host: 'Example.ORG:5280' } })).body, 'org abc café.jpg example.org');
      assert.equal((await request(port, { path: '/upload/abc/x', headers: { Host: 'other.example' } })).body, 'any other.example');
      assert.equal((await request(port, { path: '/hello', headers: { Host: 'example.org' } })).body, 'hello', 'a host without its own route for the path gets the * route');
      assert.equal((await request(port, { path: '/nothing', headers: { Host: 'example.org' } })).status, 404);
    });

    it('answers 404 for a host with no routes when there are no * routes', async () => {
      await start();
      server.route('example.org', 'GET', '/a', () => ({ body: 'a' }));
      assert.equal((await request(port, { path: '/a', headers: { Host: 'evil.example' } })).status, 404);
      assert.equal((await request(port, { path: '/a', headers: { Host: 'example.org.' } })).body, 'a', 'a trailing dot names the same host');
    });

    it('prefers literal segments over parameters and matches the rest with *', async () => {
      await start();
      server.route('*', 'GET', '/files/:id', (req) => ({ body: `param ${req.params.id}` }));
      server.route('*', 'GET', '/files/index', () => ({ body: 'literal' }));
      server.route('*', 'GET', '/static/*', (req) => ({ body: `rest [${req.params['*']}]` }));
      assert.equal((await request(port, { path: '/files/index' })).body, 'literal');
      assert.equal((await request(port, { path: '/files/42/' })).body, 'param 42', 'a trailing slash is ignored');
      assert.equal((await request(port, { path: '/static/a/b.js' })).body, 'rest [a/b.js]');
      assert.equal((await request(port, { path: '/static' })).body, 'rest []');
      assert.equal((await request(port, { path: '/files/a/../index' })).body, 'literal', 'dot segments are resolved before matching');
      assert.equal((await request(port, { path: '/files/%E0%A4%A' })).status, 400, 'malformed percent-encoding');
    });

    it('unregisters a route with the function route() returned, and refuses duplicates and bad patterns', async () => {
      await start();
      const off = server.route('*', 'GET', '/x/:a', () => ({ body: 'x' }));
      assert.throws(() => server.route('*', 'GET', '/x/:b', () => undefined), (e: CoreError) => e.code === 'HTTP_ROUTE_INVALID');
      assert.throws(() => server.route('*', 'GET', 'x', () => undefined), (e: CoreError) => e.code === 'HTTP_ROUTE_INVALID');
      assert.throws(() => server.route('*', 'GET', '/a/*/b', () => undefined), (e: CoreError) => e.code === 'HTTP_ROUTE_INVALID');
      assert.throws(() => server.route('*', 'GET', '/a/:p/:p', () => undefined), (e: CoreError) => e.code === 'HTTP_ROUTE_INVALID');
      assert.equal((await request(port, { path: '/x/1' })).status, 200);
      off();
      assert.equal((await request(port, { path: '/x/1' })).status, 404);
      server.route('*', 'GET', '/x/:b', () => ({ body: 'again' }));
      assert.equal((await request(port, { path: '/x/1' })).body, 'again');
    });

    it('answers 405 with Allow for another method, HEAD from GET, and OPTIONS with Allow', async () => {
      await start();
      server.route('*', 'GET', '/r', () => ({ body: 'body', headers: { 'Content-Type': 'text/plain' } }));
      server.route('*', 'PUT', '/r', () => ({ status: 201 }));
      const post = await request(port, { method: 'POST', path: '/r' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD, PUT, OPTIONS');
      const head = await request(port, { method: 'HEAD', path: '/r' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      const options = await request(port, { method: 'OPTIONS', path: '/r' });
      assert.equal(options.status, 204);
      assert.equal(options.headers.allow, 'GET, HEAD, PUT, OPTIONS');
      assert.equal((await request(port, { method: 'PUT', path: '/r' })).status, 201);
    });

    it('turns HttpError into its status, other throws and unanswered requests into 500', async () => {
      await start();
      server.route('*', 'GET', '/forbidden', () => {
        throw new HttpError(403, 'Not yours');
      });
      server.route('*', 'GET', '/bug', async () => {
        throw new Error('boom');
      });
      server.route('*', 'GET', '/silent', () => undefined);
      server.route('*', 'GET', '/direct', (_req, res) => {
        res.writeHead(202);
        res.end('written');
      });
      const f = await request(port, { path: '/forbidden' });
      assert.equal(f.status, 403);
      assert.equal(f.body, 'Not yours\n');
      assert.equal(f.headers['x-content-type-options'], 'nosniff');
      assert.equal((await request(port, { path: '/bug' })).status, 500);
      assert.equal((await request(port, { path: '/silent' })).status, 500);
      assert.equal((await request(port, { path: '/direct' })).body, 'written');
    });

    it('refuses a request target that is not a path', async () => {
      await start();
      server.route('*', 'GET', '/', () => ({ body: 'root' }));
      const out = await raw(port, 'GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n');
      assert.match(out, /^HTTP\/1\.1 400 /);
    });
  });

  describe('CORS', () => {
    it('adds CORS headers for allowed origins only', async () => {
      await start();
      server.route('*', 'POST', '/http-bind', () => ({ body: 'ok' }), { cors: { origins: ['https://chat.example.org'], exposeHeaders: ['X-Id'] } });
      server.route('*', 'GET', '/open', () => ({ body: 'ok' }), { cors: true });
      server.route('*', 'GET', '/plain', () => ({ body: 'ok' }));
      const ok = await request(port, { method: 'POST', path: '/http-bind', headers: { Origin: 'https://chat.example.org' } });
      assert.equal(ok.headers['access-control-allow-origin'], 'https://chat.example.org');
      assert.equal(ok.headers.vary, 'Origin');
      assert.equal(ok.headers['access-control-expose-headers'], 'X-Id');
      const other = await request(port, { method: 'POST', path: '/http-bind', headers: { Origin: 'https://evil.example' } });
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      assert.equal((await request(port, { path: '/open', headers: { Origin: 'https://a.example' } })).headers['access-control-allow-origin'], '*');
      assert.equal((await request(port, { path: '/plain', headers: { Origin: 'https://a.example' } })).headers['access-control-allow-origin'], undefined);
    });

    it('answers a preflight for an allowed origin, method and headers, and refuses the rest', async () => {
      await start();
      server.route('*', 'POST', '/http-bind', () => ({ body: 'ok' }), { cors: { origins: '*', headers: ['Content-Type', 'X-Requested-With'], maxAgeSeconds: 600 } });
      server.route('*', 'PUT', '/upload/:slot', () => ({ status: 201 }), { cors: { origins: ['https://chat.example.org'], credentials: true } });
      const pre = await request(port, { method: 'OPTIONS', path: '/http-bind', headers: { Origin: 'https://x.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, x-requested-with' } });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers['access-control-allow-origin'], '*');
      assert.equal(pre.headers['access-control-allow-methods'], 'POST');
      assert.match(pre.headers['access-control-allow-headers']!, /x-requested-with/i);
      assert.equal(pre.headers['access-control-max-age'], '600');
      const wrongMethod = await request(port, { method: 'OPTIONS', path: '/http-bind', headers: { Origin: 'https://x.example', 'Access-Control-Request-Method': 'DELETE' } });
      assert.equal(wrongMethod.status, 403);
      assert.equal(wrongMethod.headers['access-control-allow-origin'], undefined);
      const wrongHeader = await request(port, { method: 'OPTIONS', path: '/http-bind', headers: { Origin: 'https://x.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' } });
      assert.equal(wrongHeader.status, 403);
      const cred = await request(port, { method: 'OPTIONS', path: '/upload/abc', headers: { Origin: 'https://chat.example.org', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' } });
      assert.equal(cred.status, 204);
      assert.equal(cred.headers['access-control-allow-origin'], 'https://chat.example.org', 'credentials: the origin is echoed, never *');
      assert.equal(cred.headers['access-control-allow-credentials'], 'true');
      const wrongOrigin = await request(port, { method: 'OPTIONS', path: '/upload/abc', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'PUT' } });
      assert.equal(wrongOrigin.status, 403);
    });
  });

  describe('limits and timeouts', () => {
    it('answers 413 for a declared length over the limit without calling the handler, and closes the connection', async () => {
      await start();
      let called = 0;
      server.route('*', 'POST', '/small', async (req) => {
        called++;
        return { body: `got ${(await req.body()).length}` };
      }, { maxBodyBytes: 10 });
      assert.equal((await request(port, { method: 'POST', path: '/small', body: '0123456789' })).body, 'got 10');
      const out = await raw(port, 'POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n');
      assert.match(out, /^HTTP\/1\.1 413 /);
      assert.match(out, /connection: close/i);
      assert.equal(called, 1);
    });

    it('answers 413 when a chunked body grows past the limit', async () => {
      await start();
      server.route('*', 'POST', '/small', async (req) => ({ body: `got ${(await req.body()).length}` }), { maxBodyBytes: 10 });
      const out = await raw(port, 'POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n');
      assert.match(out, /^HTTP\/1\.1 413 /);
    });

    it('sends 100 Continue only when the handler reads the body', async () => {
      await start();
      server.route('*', 'PUT', '/upload/:slot', async (req) => {
        if (req.params.slot !== 'good') throw new HttpError(403, 'Unknown slot');
        return { status: 201, body: `stored ${(await req.body()).length}` };
      });
      const put = (slot: string) => new Promise<{ status: number; continued: boolean; body: string }>((resolve, reject) => {
        let continued = false;
        const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: `/upload/${slot}`, agent: false, headers: { Expect: '100-continue', 'Content-Length': '5' } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, continued, body }));
        });
        req.on('continue', () => {
          continued = true;
          req.end('hello');
        });
        req.on('error', reject);
        req.flushHeaders();
      });
      const refused = await put('bad');
      assert.equal(refused.status, 403);
      assert.equal(refused.continued, false, 'the client was never asked for the body');
      const stored = await put('good');
      assert.deepEqual([stored.status, stored.continued, stored.body], [201, true, 'stored 5']);
    });

    it('answers 503 and aborts the handler when a request outlives its timeout', async () => {
      await start();
      let aborted = false;
      server.route('*', 'GET', '/slow', (req) => new Promise<void>((resolve) => req.signal.addEventListener('abort', () => {
        aborted = true;
        resolve();
      })), { timeoutMs: 50 });
      const r = await request(port, { path: '/slow' });
      assert.equal(r.status, 503);
      assert.equal(aborted, true);
    });

    it('answers 408 when the body does not arrive in time', async () => {
      await start();
      server.route('*', 'POST', '/p', async (req) => ({ body: String((await req.body()).length) }), { timeoutMs: 50 });
      const out = await raw(port, 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly a part');
      assert.match(out, /^HTTP\/1\.1 408 /);
    });
  });

  describe('trusted proxies', () => {
    it('parses addresses and CIDR blocks, IPv4-mapped addresses included, and refuses garbage', () => {
      const list = parseAddressList(['10.0.0.0/8', '::1', '2001:db8::/32']);
      assert.equal(list.check('10.2.3.4', 'ipv4'), true);
      assert.equal(list.check('11.0.0.1', 'ipv4'), false);
      assert.equal(list.check('2001:db8:1::5', 'ipv6'), true);
      assert.equal(list.check('::1', 'ipv6'), true);
      assert.equal(normaliseIp('::ffff:10.1.1.1'), '10.1.1.1');
      assert.equal(normaliseIp('fe80::1%eth0'), 'fe80::1');
      for (const bad of ['10.0.0.0/33', 'example.org', '10.0.0.0/8/1', '::/129', '1.2.3.4/']) {
        assert.throws(() => parseAddressList([bad]), (e: CoreError) => e.code === 'CONFIG_INVALID', bad);
      }
      assert.equal(hostFromHeader('[::1]:5280'), '[::1]');
      assert.equal(hostFromHeader('bad host'), '');
    });

    it('ignores X-Forwarded-* from a peer that is not a trusted proxy', async () => {
      await start({ trustedProxies: ['192.0.2.0/24'] });
      server.route('*', 'GET', '/who', (req) => ({ body: `${req.ip} ${req.secure} ${req.host}` }));
      const r = await request(port, { path: '/who', headers: { Host: 'a.example', 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'b.example' } });
      assert.equal(r.body, '127.0.0.1 false a.example');
    });

    it('takes the client address, scheme and host from a trusted proxy, skipping trusted hops and not believing the client', async () => {
      await start({ trustedProxies: ['127.0.0.0/8', '10.0.0.0/8'] });
      server.route('b.example', 'GET', '/who', (req) => ({ body: `${req.ip} ${req.peer} ${req.secure} ${req.host}` }));
      const r = await request(port, { path: '/who', headers: { Host: 'internal', 'X-Forwarded-For': '198.51.100.1, 203.0.113.7, 10.1.1.1', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'b.example' } });
      assert.equal(r.body, '203.0.113.7 127.0.0.1 true b.example', 'the address the client claimed (198.51.100.1) is not believed');
    });
  });

  describe('access log', () => {
    it('writes one debug line per request with status, hiding secret parameters and the query', async () => {
      const lines: string[] = [];
      const off = addLogSink((_level, ns, line) => {
        if (ns === 'cadence:core:http') lines.push(line);
      });
      try {
        await start();
        server.route('*', 'GET', '/upload/:slot/:name', () => ({ body: 'x' }), { redactParams: ['slot'] });
        await request(port, { path: '/upload/s3cr3t/photo.jpg?token=abc', headers: { Host: 'example.org', 'User-Agent': 'test-agent' } });
        const line = lines.find((l) => l.startsWith('127.0.0.1 '));
        assert.ok(line, lines.join('\n'));
        assert.match(line, /^127\.0\.0\.1 GET example\.org\/upload\/:slot\/photo\.jpg 200 \d+ms "test-agent"$/);
        assert.doesNotMatch(lines.join('\n'), /s3cr3t|token/);
      } finally {
        off();
      }
    });
  });

  describe('TLS', () => {
    it('serves HTTPS with the certificate of the host named by SNI', async () => {
      const certs = new Map<string, { cert: string; key: string }>();
      for (const host of ['a.example', 'b.example']) {
        const p = await selfsigned.generate([{ name: 'commonName', value: host }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
        certs.set(host, { cert: p.cert, key: p.private });
      }
      const contexts = new Map([...certs].map(([h, pem]) => [h, tls.createSecureContext(pem)]));
      server = new HttpServer({
        httpPorts: [],
        httpsPorts: [0],
        interfaces: ['127.0.0.1'],
        tls: { sni: (name, cb) => cb(null, contexts.get(name) ?? contexts.get('a.example')), fallback: certs.get('a.example') },
      });
      await server.listen();
      const tlsPort = server.addresses()[0]!.port;
      assert.equal(server.addresses()[0]!.secure, true);
      server.route('*', 'GET', '/', (req) => ({ body: `${req.host} ${req.secure}` }));
      const get = (servername: string | undefined) => new Promise<{ cn: string; body: string }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: tlsPort, path: '/', servername, headers: { Host: servername ?? 'a.example' }, rejectUnauthorized: false, agent: false }, (res) => {
          const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject.CN);
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ cn, body }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(await get('b.example'), { cn: 'b.example', body: 'b.example true' });
      assert.deepEqual(await get('a.example'), { cn: 'a.example', body: 'a.example true' });
      assert.equal((await get(undefined)).cn, 'a.example');
    });

    it("gives the client's own TLS connection (clientTls) for channel binding: not on plain HTTP, not through a trusted proxy", async () => {
      const p = await selfsigned.generate([{ name: 'commonName', value: 'a.example' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
      const ctx = tls.createSecureContext({ cert: p.cert, key: p.private });
      server = new HttpServer({
        httpPorts: [0],
        httpsPorts: [0],
        interfaces: ['127.0.0.1'],
        trustedProxies: ['127.0.0.1'],
        tls: { sni: (_name, cb) => cb(null, ctx), fallback: { cert: p.cert, key: p.private } },
      });
      await server.listen();
      const plainPort = server.addresses().find((a) => !a.secure)!.port;
      const tlsPort = server.addresses().find((a) => a.secure)!.port;
      server.route('*', 'GET', '/', (req) => ({ body: `${req.clientTls ? req.clientTls.getProtocol() : 'none'} ${req.secure}` }));
      const get = (headers: Record<string, string> = {}) => new Promise<string>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: tlsPort, path: '/', headers: { Host: 'a.example', ...headers }, rejectUnauthorized: false, agent: false }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(await get(), 'TLSv1.3 true', 'HTTPS straight to us, from a trusted address without X-Forwarded-*');
      assert.equal(await get({ 'X-Forwarded-For': '203.0.113.9' }), 'none true', "through a trusted proxy: the TLS is the proxy's");
      assert.equal((await request(plainPort, { headers: { Host: 'a.example', 'X-Forwarded-Proto': 'https' } })).body, 'none true');
      assert.equal((await request(plainPort, { headers: { Host: 'a.example' } })).body, 'none false');
    });

    it('refuses httpsPorts without certificates', async () => {
      const s = new HttpServer({ httpPorts: [], httpsPorts: [0], interfaces: ['127.0.0.1'] });
      await assert.rejects(s.listen(), (e: CoreError) => e.code === 'TLS_FAILED');
    });

    it('reports a port in use as LISTEN_FAILED and leaves nothing bound', async () => {
      await start();
      const s = new HttpServer({ httpPorts: [0, port], httpsPorts: [], interfaces: ['127.0.0.1'] });
      await assert.rejects(s.listen(), (e: CoreError) => e.code === 'LISTEN_FAILED');
      assert.deepEqual(s.addresses(), []);
    });
  });

  describe('WebSocket', () => {
    const open = (url: string, protocols?: string[], headers?: Record<string, string>) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });

    it('routes upgrades by host and path, negotiates the sub-protocol and hands the socket over', async () => {
      await start();
      server.websocket('example.org', '/xmpp-websocket', (ws, ctx) => {
        ws.send(`hello ${ctx.host} ${ctx.protocol} ${ctx.ip}`);
        ws.on('message', (m) => ws.send(`echo ${m}`));
      }, { protocols: ['xmpp'], requireProtocol: true });
      const ws = new WebSocket(`ws://127.0.0.1:${port}/xmpp-websocket`, ['xmpp'], { headers: { Host: 'example.org' } });
      const messages: string[] = [];
      let arrived: () => void = () => undefined;
      ws.on('message', (m) => {
        messages.push(String(m));
        arrived();
      });
      const next = () => new Promise<void>((r) => (arrived = r));
      let wait = next();
      await once(ws, 'open');
      assert.equal(ws.protocol, 'xmpp');
      if (messages.length === 0) await wait;
      assert.equal(messages[0], 'hello example.org xmpp 127.0.0.1');
      wait = next();
      ws.send('ping');
      await wait;
      assert.equal(messages[1], 'echo ping');
      ws.close();
      await once(ws, 'close');
    });

    it('refuses an upgrade without the required sub-protocol (400), on an unknown path (404), from a refused origin (403)', async () => {
      await start();
      server.websocket('*', '/xmpp-websocket', (ws) => ws.close(), { protocols: ['xmpp'], requireProtocol: true, origins: ['https://chat.example.org'] });
      await assert.rejects(open(`ws://127.0.0.1:${port}/xmpp-websocket`, ['chat']), /HTTP 400/);
      await assert.rejects(open(`ws://127.0.0.1:${port}/elsewhere`, ['xmpp']), /HTTP 404/);
      await assert.rejects(open(`ws://127.0.0.1:${port}/xmpp-websocket`, ['xmpp'], { Origin: 'https://evil.example' }), /HTTP 403/);
      const ws = await open(`ws://127.0.0.1:${port}/xmpp-websocket`, ['xmpp'], { Origin: 'https://chat.example.org' });
      await once(ws, 'close');
    });

    it('drops a peer that does not answer pings', async () => {
      await start();
      server.websocket('*', '/ws', () => undefined, { pingIntervalMs: 30 });
      const ws = await open(`ws://127.0.0.1:${port}/ws`);
      // A client that never answers: stop ws from sending pongs automatically.
      (ws as unknown as { _receiver: { removeAllListeners(e: string): void } })._receiver.removeAllListeners('ping');
      const [code] = await once(ws, 'close');
      assert.equal(code, 1006, 'terminated without a close frame');
    });
  });

  describe('shutdown', () => {
    it('finishes in-flight requests with Connection: close, closes idle keep-alive connections and WebSockets', async () => {
      await start();
      let release!: () => void;
      const entered = new Promise<void>((r) => server.route('*', 'GET', '/slow', () => {
        r();
        return new Promise((done) => (release = () => done({ body: 'late' })));
      }));
      server.route('*', 'GET', '/quick', () => ({ body: 'quick' }));
      server.websocket('*', '/ws', () => undefined);

      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const idle = await new Promise<net.Socket>((resolve) => {
        http.get({ host: '127.0.0.1', port, path: '/quick', agent }, (res) => {
          const socket = res.socket;
          res.resume();
          res.on('end', () => resolve(socket));
        });
      });
      const idleClosed = once(idle, 'close');
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      await once(ws, 'open');
      const wsClosed = once(ws, 'close');
      const slow = request(port, { path: '/slow' });
      await entered;

      const closing = server.close(5000);
      await idleClosed;
      const [code] = await wsClosed;
      assert.equal(code, 1001);
      release();
      const r = await slow;
      assert.equal(r.body, 'late');
      assert.equal(r.headers.connection, 'close');
      await closing;
      await assert.rejects(request(port, { path: '/quick' }), /ECONNREFUSED/);
      agent.destroy();
    });

    it('cuts requests still running after the grace period', async () => {
      await start();
      server.route('*', 'GET', '/never', () => new Promise(() => undefined), { timeoutMs: 60_000 });
      const pending = request(port, { path: '/never' }).then(() => 'answered', (e: Error) => e.message);
      await new Promise<void>((r) => {
        const check = () => (server.inFlightCount > 0 ? r() : setTimeout(check, 5));
        check();
      });
      await server.close(50);
      assert.match(await pending, /socket hang up|ECONNRESET/);
    });
  });
});
