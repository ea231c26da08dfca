// Issue 11: the default configuration serves WebSocket and HTTP File Upload on localhost out of the
// box — no `components`, no `modulesEnabled` in the config: upload.localhost is listed in the
// host's disco#items, hands out a slot, takes the PUT and serves the GET; /xmpp-websocket answers.
import assert from 'node:assert/strict';
import http from 'node:http';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { WsClient } from '../helpers/ws.ts';

const NS_UPLOAD = 'urn:xmpp:http:upload:0';

describe('e2e: the default configuration serves upload and WebSocket on localhost', function () {
  let server: TestServer;
  let alice: TestClient;

  const request = (method: string, url: URL, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.httpPort, method, path: url.pathname, headers: { Host: url.hostname, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pw' } });
    alice = await login(server, 'alice', 'alice-pw');
  });
  after(async function () {
    await alice?.stop();
    await server?.destroy();
  });

  it('lists upload.localhost, which hands out a slot, takes the PUT and serves the file', async function () {
    const items = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    const jids = items.getChild('query')!.getChildren('item').map((i) => String(i.attrs.jid));
    assert.ok(jids.includes('upload.localhost'), jids.join(' '));
    const slot = await alice.iq(xml('iq', { type: 'get', to: 'upload.localhost' }, xml('request', { xmlns: NS_UPLOAD, filename: 'note.txt', size: '5', 'content-type': 'text/plain' })));
    const put = new URL(String(slot.getChild('slot', NS_UPLOAD)!.getChild('put')!.attrs.url));
    const get = new URL(String(slot.getChild('slot', NS_UPLOAD)!.getChild('get')!.attrs.url));
    assert.equal(put.hostname, 'upload.localhost');
    assert.equal((await request('PUT', put, Buffer.from('hello'), { 'Content-Type': 'text/plain' })).status, 201);
    const got = await request('GET', get);
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'hello');
  });

  it('answers XMPP over WebSocket at /xmpp-websocket', async function () {
    const c = await WsClient.connect(`wss://localhost:${server.httpsPort}/xmpp-websocket`);
    try {
      await c.open();
      const features = await c.next((el) => el.name === 'stream:features');
      assert.ok(features.getChild('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl'), features.toString());
    } finally {
      c.close();
    }
  });
});
