// HTTP File Upload (XEP-0363) expiry over real XMPP and HTTP, with expiry and cleanup intervals
// of seconds instead of a fake clock: an uploaded file is served until `fileExpiry`, then GET
// answers 404, the periodic cleanup (`cleanupInterval`) removes it from the data directory, and
// the daily quota it used is free again. A slot whose PUT URL has expired (`slotExpiry`) refuses
// the PUT with 410 without writing anything.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** Files expire after 2 s, cleanup every second. */
const EXPIRING = 'upload.localhost';
/** PUT URLs expire after 1 s; cleanup hourly (so the expired slot is still known). */
const SHORT_SLOTS = 'slots.localhost';
const NS = 'urn:xmpp:http:upload:0';

type Reply = { status: number; body: Buffer };

describe('e2e: HTTP File Upload expiry and cleanup (XEP-0363)', function () {
  let server: TestServer;
  let alice: TestClient;

  const request = (host: string, method: string, urlPath: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.httpPort, method, path: urlPath, headers: { Host: host, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  /** Repeats `attempt` every 100 ms until its status is `status` (or 10 s pass). */
  const until = async (status: number, attempt: () => Promise<Reply>): Promise<Reply> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await attempt();
      if (r.status === status || Date.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  const slot = (to: string, filename: string, size: number) =>
    alice.iqRaw(xml('iq', { type: 'get', to }, xml('request', { xmlns: NS, filename, size: String(size), 'content-type': 'text/plain' })));
  const putPath = (reply: Awaited<ReturnType<typeof slot>>) => new URL(String(reply.getChild('slot', NS)!.getChild('put')!.attrs.url)).pathname;
  const dataDir = () => path.join(server.dir, 'data', 'http_file_share');
  const files = () => readdirSync(dataDir()).sort();

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pw' },
      config: {
        components: {
          [EXPIRING]: { module: 'http_file_share', http_file_share: { maxFileSize: 1000, dailyQuota: 1000, fileExpiry: 2, cleanupInterval: 1 } },
          [SHORT_SLOTS]: { module: 'http_file_share', http_file_share: { slotExpiry: 1 } },
        },
      },
    });
    alice = await login(server, 'alice', 'alice-pw');
  });
  after(async function () {
    await alice?.stop();
    await server?.destroy();
  });

  it('serves a file until it expires, then answers 404, removes it from disk and frees the quota', async function () {
    const reply = await slot(EXPIRING, 'note.txt', 600);
    assert.equal(reply.attrs.type, 'result', reply.toString());
    const p = putPath(reply);
    const id = p.split('/')[2]!;
    const from = server.output.length;
    assert.equal((await request(EXPIRING, 'PUT', p, Buffer.alloc(600, 'x'), { 'Content-Type': 'text/plain' })).status, 201);
    assert.ok(existsSync(path.join(dataDir(), id)), 'stored under the data directory');
    assert.equal((await request(EXPIRING, 'GET', p)).status, 200);
    assert.equal(stanzaErrorCondition(await slot(EXPIRING, 'more.txt', 600)), 'resource-constraint', 'the stored file uses the quota');

    const gone = await until(404, () => request(EXPIRING, 'GET', p));
    assert.equal(gone.status, 404, 'expired files are not served');
    await server.waitForOutput(/removed 1 expired uploads and unused slots/, 10_000, from);
    assert.equal(existsSync(path.join(dataDir(), id)), false, 'the cleanup removed the file');
    assert.equal((await request(EXPIRING, 'GET', p)).status, 404);
    const again = await slot(EXPIRING, 'more.txt', 600);
    assert.equal(again.attrs.type, 'result', `the quota is free again: ${again.toString()}`);
  });

  it('refuses the PUT of an expired slot with 410 and writes nothing', async function () {
    const reply = await slot(SHORT_SLOTS, 'late.txt', 5);
    assert.equal(reply.attrs.type, 'result', reply.toString());
    const p = putPath(reply);
    // A PUT of the wrong length is refused (400) without using the slot; once the slot has
    // expired the same PUT gets 410.
    const expired = await until(410, () => request(SHORT_SLOTS, 'PUT', p, Buffer.from('abcd'), { 'Content-Type': 'text/plain' }));
    assert.equal(expired.status, 410, expired.body.toString());
    const before = files();
    const late = await request(SHORT_SLOTS, 'PUT', p, Buffer.from('hello'), { 'Content-Type': 'text/plain' });
    assert.equal(late.status, 410, late.body.toString());
    assert.match(late.body.toString(), /expired/);
    assert.deepEqual(files(), before, 'nothing written (no file, no .part)');
    assert.equal((await request(SHORT_SLOTS, 'GET', p)).status, 404);
  });
});
