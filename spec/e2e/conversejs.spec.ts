// mod_conversejs over real HTTP (doc/web.md): the page's settings (WebSocket and BOSH URLs as the
// browser reached us, ?transport=, the host as default domain, operator settings merged), its
// security headers, and the dist files: content types, immutable caching, and nothing outside
// dist/ or of an unknown type. The browser side is spec/interop/browser-conversejs.spec.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import { DEFAULTS } from '../../core/config.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

interface Got { status: number; headers: http.IncomingHttpHeaders; body: string }

describe('e2e: mod_conversejs serves Converse.js at /conversejs', function () {
  let server: TestServer;

  const get = (urlPath: string, host = `localhost:${server.httpPort}`): Promise<Got> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.httpPort, method: 'GET', path: urlPath, headers: { Host: host } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end();
    });
  const settingsOf = (page: string): Record<string, unknown> => {
    const m = /<script type="application\/json" id="conversejs-settings">(.*?)<\/script>/s.exec(page);
    assert.ok(m, 'settings block');
    return JSON.parse(m[1]!) as Record<string, unknown>;
  };

  before(async function () {
    server = await startServer({
      config: {
        modulesEnabled: [...DEFAULTS.modulesEnabled, 'conversejs'],
        conversejs: { settings: { theme: 'dracula', note: '</script><script>alert(1)</script>' } },
      },
    });
  });
  after(async function () {
    await server?.destroy();
  });

  it('serves the page with the endpoints the browser reached, the host as domain, and a CSP', async function () {
    const r = await get('/conversejs');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
    assert.match(csp, new RegExp(`connect-src 'self' ws://localhost:${server.httpPort}/xmpp-websocket http://localhost:${server.httpPort}/http-bind`));
    assert.match(csp, /frame-ancestors 'none'/);
    const s = settingsOf(r.body);
    assert.equal(s.websocket_url, `ws://localhost:${server.httpPort}/xmpp-websocket`);
    assert.equal(s.bosh_service_url, `http://localhost:${server.httpPort}/http-bind`);
    assert.equal(s.default_domain, 'localhost');
    assert.equal(s.view_mode, 'fullscreen');
    assert.equal(s.theme, 'dracula');
    // Operator text cannot end the data block.
    assert.equal(s.note, '</script><script>alert(1)</script>');
    assert.doesNotMatch(r.body, /<script>alert/);
    assert.match(String(s.assets_path), /^\/conversejs\/dist\/\d+\.\d+\.\d+[^/]*\/$/);
    assert.match(r.body, new RegExp(`<script type="module" src="${String(s.assets_path)}converse.min.js"></script>`));
  });

  it('?transport=bosh and ?transport=websocket give only that endpoint; another value is 400', async function () {
    const bosh = settingsOf((await get('/conversejs?transport=bosh')).body);
    assert.equal(bosh.websocket_url, undefined);
    assert.equal(bosh.bosh_service_url, `http://localhost:${server.httpPort}/http-bind`);
    const ws = settingsOf((await get('/conversejs?transport=websocket')).body);
    assert.equal(ws.bosh_service_url, undefined);
    assert.equal(ws.websocket_url, `ws://localhost:${server.httpPort}/xmpp-websocket`);
    assert.equal((await get('/conversejs?transport=carrier-pigeon')).status, 400);
  });

  it('serves dist files with their type and immutable caching, and nothing else', async function () {
    const assets = String(settingsOf((await get('/conversejs')).body).assets_path);
    const js = await get(`${assets}converse.min.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    assert.match(js.body, /window\.converse=/);
    const css = await get(`${assets}converse.min.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const init = await get('/conversejs/init.js');
    assert.equal(init.status, 200);
    assert.match(init.body, /converse\.initialize/);
    // Another version, a path out of dist/ (encoded dot segments), an unknown type, a directory.
    assert.equal((await get('/conversejs/dist/0.0.1/converse.min.js')).status, 404);
    assert.equal((await get(`${assets}..%2F..%2Fpackage.json`)).status, 404);
    assert.equal((await get(`${assets}%2e%2e/package.json`)).status, 404);
    assert.equal((await get(`${assets}images`)).status, 404);
    assert.equal((await get(`${assets}nonexistent.js`)).status, 404);
  });
});
