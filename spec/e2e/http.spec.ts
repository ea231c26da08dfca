// HTTP in core (doc/web.md): the server listens on httpPorts and httpsPorts once a module
// registers a route; routes belong to the module's host and go away when it unloads; CORS per
// route; body limits; X-Forwarded-* only from trusted proxies; one access log line per request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import path from 'node:path';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';

const FIXTURES = path.join(ROOT, 'spec', 'fixtures', 'modules');

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  cert?: { subject: { CN?: string } };
}

function request(port: number, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string; secure?: boolean; servername?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const base = { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: { Host: 'localhost', ...opts.headers }, agent: false as const };
    const req = opts.secure
      // Without SNI the certificate is still checked against the name the client means.
      ? https.request({ ...base, ca: readFileSync(testCa().caFile), servername: opts.servername ?? 'localhost', checkServerIdentity: (_h, cert) => tls.checkServerIdentity('localhost', cert) })
      : http.request(base);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const sock = res.socket as tls.TLSSocket;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, cert: opts.secure ? (sock.getPeerCertificate() as Answer['cert']) : undefined });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('e2e: HTTP in core', function () {
  let server: TestServer;

  before(async function () {
    server = await startServer({
      config: { pluginPaths: [FIXTURES], modulesEnabled: ['admin_shell', 'http_probe'], tls: testCa().serverTls },
      env: { DEBUG: 'cadence:core:http' },
    });
  });
  after(async function () {
    await server?.destroy();
  });

  it('binds HTTP and HTTPS when a module registers a route, and lists them in the ready line', function () {
    assert.ok(server.httpPort > 0, `no http= in ${server.addresses.join(' ')}`);
    assert.ok(server.httpsPort > 0, `no https= in ${server.addresses.join(' ')}`);
  });

  it("serves a host module's routes on that host only, over HTTP and HTTPS", async function () {
    const plain = await request(server.httpPort, { path: '/probe/whoami' });
    assert.equal(plain.status, 200);
    const who = JSON.parse(plain.body) as { host: string; secure: boolean; url: string };
    assert.equal(who.host, 'localhost');
    assert.equal(who.secure, false);
    assert.equal(who.url, `https://localhost:${server.httpsPort}/probe/whoami`, 'module.http.url prefers the HTTPS listener');
    assert.equal((await request(server.httpPort, { path: '/probe/whoami', headers: { Host: 'elsewhere.example' } })).status, 404);
    const secure = await request(server.httpsPort, { path: '/probe/whoami', secure: true });
    assert.equal(secure.status, 200);
    assert.equal((JSON.parse(secure.body) as { secure: boolean }).secure, true);
    assert.equal(secure.cert?.subject.CN, 'localhost', "the host's certificate, chosen by SNI");
  });

  it('answers clients without SNI with the default certificate', async function () {
    const r = await request(server.httpsPort, { path: '/probe/whoami', secure: true, servername: '' });
    assert.equal(r.status, 200);
    assert.equal(r.cert?.subject.CN, 'localhost');
  });

  it('answers CORS preflights per route: allowed origins get 204, others 403', async function () {
    const ok = await request(server.httpPort, { method: 'OPTIONS', path: '/probe/whoami', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET' } });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(ok.headers['access-control-allow-methods']), /GET/);
    const refused = await request(server.httpPort, { method: 'OPTIONS', path: '/probe/whoami', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    const actual = await request(server.httpPort, { path: '/probe/whoami', headers: { Origin: 'https://app.example' } });
    assert.equal(actual.headers['access-control-allow-origin'], 'https://app.example');
    const noCors = await request(server.httpPort, { method: 'OPTIONS', path: '/probe/echo', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(noCors.status, 403, 'a route without CORS refuses preflights');
  });

  it('refuses bodies over the route limit with 413 and serves those within it', async function () {
    assert.equal((await request(server.httpPort, { method: 'POST', path: '/probe/echo', body: 'x'.repeat(17) })).status, 413);
    const ok = await request(server.httpPort, { method: 'POST', path: '/probe/echo', body: 'hello' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'hello');
  });

  it('answers HttpError with its status, and wrong methods with 405', async function () {
    assert.equal((await request(server.httpPort, { path: '/probe/teapot' })).status, 418);
    const r = await request(server.httpPort, { method: 'DELETE', path: '/probe/echo' });
    assert.equal(r.status, 405);
    assert.match(String(r.headers.allow), /POST/);
  });

  it('believes X-Forwarded-For from a trusted proxy (127.0.0.1 by default) and logs the client', async function () {
    const from = server.output.length;
    const r = await request(server.httpPort, { path: '/probe/whoami', headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9', 'X-Forwarded-Proto': 'https', 'User-Agent': 'probe/1' } });
    const who = JSON.parse(r.body) as { ip: string; secure: boolean };
    assert.equal(who.ip, '203.0.113.9', 'the rightmost address not of a trusted proxy');
    assert.equal(who.secure, true);
    await server.waitForOutput(/203\.0\.113\.9 GET localhost\/probe\/whoami 200 \d+ms "probe\/1"/, 5000, from);
  });

  it('removes routes when their module unloads', async function () {
    const r = await server.cli(['shell', 'module', 'unload', 'http_probe', 'localhost']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await request(server.httpPort, { path: '/probe/whoami' })).status, 404);
  });
});

describe('e2e: HTTP behind an untrusted peer', function () {
  let server: TestServer;
  before(async function () {
    server = await startServer({ config: { pluginPaths: [FIXTURES], modulesEnabled: ['http_probe'], trustedProxies: ['10.0.0.0/8'], httpsPorts: [] } });
  });
  after(async function () {
    await server?.destroy();
  });

  it('ignores X-Forwarded-* from peers not in trustedProxies', async function () {
    const r = await request(server.httpPort, { path: '/probe/whoami', headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example' } });
    const who = JSON.parse(r.body) as { ip: string; secure: boolean; host: string; url: string };
    assert.equal(who.ip, '127.0.0.1');
    assert.equal(who.secure, false);
    assert.equal(who.host, 'localhost');
    assert.equal(server.httpsPort, 0, 'httpsPorts: [] binds no HTTPS');
    assert.equal(who.url, `http://localhost:${server.httpPort}/probe/whoami`);
  });
});
