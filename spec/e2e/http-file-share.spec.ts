// HTTP File Upload (XEP-0363) over real XMPP and HTTP: a slot from the upload component, PUT with
// the right headers, GET with the safe download headers, the per-file limit (file-too-large with
// the max size), the daily quota (resource-constraint), refusals that write nothing (unknown slot,
// wrong size, replay), and the files removed with the account.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const UPLOAD = 'upload.localhost';
const NS = 'urn:xmpp:http:upload:0';

describe('e2e: HTTP File Upload (XEP-0363)', function () {
  let server: TestServer;
  let alice: TestClient;

  const request = (method: string, urlPath: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.httpPort, method, path: urlPath, headers: { Host: UPLOAD, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const slot = (c: TestClient, filename: string, size: number, contentType?: string) =>
    c.iqRaw(xml('iq', { type: 'get', to: UPLOAD }, xml('request', { xmlns: NS, filename, size: String(size), ...(contentType ? { 'content-type': contentType } : {}) })));
  const putPath = (reply: { getChild: (n: string, ns?: string) => { getChild: (n: string) => { attrs: Record<string, unknown> } | undefined } | undefined }) =>
    new URL(String(reply.getChild('slot', NS)!.getChild('put')!.attrs.url)).pathname;
  const files = () => readdirSync(path.join(server.dir, 'data', 'http_file_share')).filter((f) => !f.startsWith('.'));

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pw', bob: 'bob-pw' },
      config: { components: { [UPLOAD]: { module: 'http_file_share', http_file_share: { maxFileSize: 1000, dailyQuota: 1500 } } } },
    });
    alice = await login(server, 'alice', 'alice-pw');
  });
  after(async function () {
    await alice?.stop();
    await server?.destroy();
  });

  it('announces the service with its max-file-size', async function () {
    const info = await alice.iq(xml('iq', { type: 'get', to: UPLOAD }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const q = info.getChild('query')!;
    assert.ok(q.getChildren('feature').some((f) => f.attrs.var === NS));
    assert.ok(q.getChildren('identity').some((i) => i.attrs.category === 'store' && i.attrs.type === 'file'));
    assert.match(q.toString(), /max-file-size.*1000/);
  });

  it('hands out a slot, takes the PUT, serves the GET with safe headers, and refuses a replay', async function () {
    const reply = await slot(alice, 'photo one.png', 5, 'image/png');
    assert.equal(reply.attrs.type, 'result', reply.toString());
    const p = putPath(reply);
    assert.match(p, /^\/file_share\/[^/]+\/photo%20one\.png$/);
    const put = await request('PUT', p, Buffer.from('hello'), { 'Content-Type': 'image/png' });
    assert.equal(put.status, 201);
    const get = await request('GET', p);
    assert.equal(get.status, 200);
    assert.equal(get.body.toString(), 'hello');
    assert.equal(get.headers['content-type'], 'image/png');
    assert.match(String(get.headers['content-disposition']), /^inline; filename="photo one.png"/);
    assert.match(String(get.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(get.headers['x-content-type-options'], 'nosniff');
    const before = files();
    assert.equal((await request('PUT', p, Buffer.from('xxxxx'), { 'Content-Type': 'image/png' })).status, 409, 'a replay is refused');
    assert.deepEqual(files(), before);
    assert.equal((await request('GET', p)).body.toString(), 'hello', 'the file is unchanged');
  });

  it('refuses unknown slots and wrong sizes without writing to disk', async function () {
    const before = files();
    assert.equal((await request('PUT', '/file_share/nope/x.txt', Buffer.from('abc'), { 'Content-Type': 'text/plain' })).status, 404);
    const reply = await slot(alice, 'a.txt', 10, 'text/plain');
    const p = putPath(reply);
    assert.equal((await request('PUT', p, Buffer.from('short'), { 'Content-Type': 'text/plain' })).status, 400);
    assert.deepEqual(files(), before);
  });

  it('answers a file over the limit with file-too-large and the max size, and a full quota with resource-constraint', async function () {
    const big = await slot(alice, 'big.bin', 1001);
    assert.equal(stanzaErrorCondition(big), 'not-acceptable');
    assert.equal(big.getChild('error')?.getChild('file-too-large', NS)?.getChildText('max-file-size'), '1000');
    // 5 + 10 (pending) bytes used; 900 more fit, then the quota of 1500 is reached.
    assert.equal((await slot(alice, 'c.bin', 900)).attrs.type, 'result');
    const over = await slot(alice, 'd.bin', 900);
    assert.equal(stanzaErrorCondition(over), 'resource-constraint');
    assert.equal(over.getChild('error')?.attrs.type, 'wait');
  });

  it('removes the files of a deleted account', async function () {
    assert.ok(files().length > 0);
    const r = await server.cli(['deluser', 'alice@localhost', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    await server.waitForOutput(/removed \d+ uploads of deleted account alice@localhost/, 10_000);
    assert.deepEqual(files(), []);
  });
});
