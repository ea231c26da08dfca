// Limits (core/limits.ts) on the web transports, as on TCP (spec/e2e/limits.spec.ts):
// connections per address counted over TCP, WebSocket and BOSH together; a flooding WebSocket or
// BOSH client is shaped while another user's message gets through; a WebSocket or BOSH client
// that does not take what is sent to it is closed with policy-violation and the messages it did
// not get are in offline storage.
import assert from 'node:assert/strict';
import { login, RawClient, streamErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { BoshClient, closeBoshAgent } from '../helpers/bosh.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { FRAMING, WsClient } from '../helpers/ws.ts';

const PASS = 'web-limits-pass';
const USERS = { alice: PASS, bob: PASS, carol: PASS };

const isMessageFrom = (prefix: string) => (el: Element) => el.name === 'message' && String(el.attrs.id).startsWith(prefix);
const errorCondition = (el: Element) => el.getChildElements()[0]?.name;

describe('e2e: limits on WebSocket and BOSH', function () {
  const sockets: WsClient[] = [];
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];
  const bosh: BoshClient[] = [];
  afterEach(async function () {
    // Closed by the stream's end, so the server has counted them out before the next test.
    await Promise.all(sockets.splice(0).map(async (c) => {
      if (c.ws.readyState === c.ws.OPEN) c.send(`<close xmlns='${FRAMING}'/>`);
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 3000))]);
      c.ws.terminate();
    }));
    await Promise.all(bosh.splice(0).map((b) => b.send('', "type='terminate'").catch(() => undefined)));
    await Promise.all(raws.splice(0).map(async (r) => {
      if (!r.closed) {
        r.write('</stream:stream>');
        await r.waitClosed().catch(() => undefined);
      }
      r.socket.destroy();
    }));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(function () {
    closeBoshAgent();
  });

  describe('connections per address and rate shaping', function () {
    let server: TestServer;
    let url: string;
    const ws = async () => {
      const c = await WsClient.connect(url);
      sockets.push(c);
      return c;
    };
    before(async function () {
      this.timeout(180_000);
      server = await startServer({ users: USERS, config: { tls: testCa().serverTls, limits: { rate: 4096, burst: 8192, connectionsPerAddress: 4 } } });
      url = `wss://localhost:${server.httpsPort}/xmpp-websocket`;
    });
    after(async function () {
      await server?.destroy();
    });

    it('counts TCP, WebSocket and BOSH connections of one address together and refuses past connectionsPerAddress on each', async function () {
      for (let i = 0; i < 2; i++) {
        const c = await ws();
        await c.open();
        await c.next((el) => el.name === 'stream:features');
      }
      const tcp = await RawClient.connect(server.c2sPort);
      raws.push(tcp);
      tcp.openStream();
      await tcp.expect((el) => el.name === 'stream:features');
      const b = new BoshClient(server.httpsPort);
      const created = await b.create();
      assert.equal(created.attrs.type, undefined, created.toString());
      bosh.push(b);

      // A fifth over WebSocket: the stream error, then <close/>.
      const fifth = await ws();
      fifth.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
      assert.equal(errorCondition(await fifth.next((el) => el.name === 'stream:error')), 'policy-violation');
      await fifth.next((el) => el.name === 'close');
      // Over BOSH: the creation is answered with the stream error (XEP-0206 §4).
      const refused = await new BoshClient(server.httpsPort).create();
      assert.equal(refused.attrs.type, 'terminate', refused.toString());
      assert.equal(refused.attrs.condition, 'remote-stream-error');
      const error = refused.getChildElements().find((c) => c.name === 'stream:error');
      assert.ok(error, refused.toString());
      assert.equal(streamErrorCondition(error), 'policy-violation');

      // One leaves: a new WebSocket is accepted.
      const first = sockets[0]!;
      first.send(`<close xmlns='${FRAMING}'/>`);
      await first.closed;
      const again = await ws();
      await again.open();
      await again.next((el) => el.name === 'stream:features');
    });

    it("shapes a flooding WebSocket client while another user's message gets through", async function () {
      // Shaping takes seconds by design (4 KiB/s); the suite's default timeout is 20 s.
      this.timeout(60_000);
      const carol = await login(server, 'carol', PASS, { resource: 'reader', presence: true });
      clients.push(carol);
      const bob = await login(server, 'bob', PASS, { resource: 'talker' });
      clients.push(bob);
      const alice = await ws();
      await alice.login('alice', PASS, 'flood');
      // 200 messages of ~500 bytes, one per frame: 100 KB, 25 s at 4 KiB/s; unshaped, all read at once.
      const FLOOD = 200;
      const pad = 'x'.repeat(420);
      for (let i = 0; i < FLOOD; i++) alice.send(`<message xmlns='jabber:client' to='carol@localhost' type='chat' id='flood-${i}'><body>${pad}</body></message>`);
      await carol.expect(isMessageFrom('flood-'));
      await bob.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'bob-1' }, xml('body', {}, 'still there?')));
      await carol.expect(isMessageFrom('bob-'), 15_000);
      const flooded = carol.inbox.drain().filter(isMessageFrom('flood-')).length + 1;
      assert.ok(flooded < FLOOD / 2, `${flooded} of ${FLOOD} flood messages were delivered before Bob's`);
      const r = await server.cli(['shell', 'session', 'list']);
      const line = r.stdout.split('\n').find((l) => l.includes('alice@localhost/flood'));
      assert.ok(line, r.stdout);
      assert.match(line, /rate=4096B\/s/);
      assert.match(line, /throttled=[1-9]/);
    });

    it("shapes a flooding BOSH client (its requests wait) while another user's message gets through", async function () {
      // Shaping takes seconds by design (4 KiB/s); the suite's default timeout is 20 s.
      this.timeout(60_000);
      const carol = await login(server, 'carol', PASS, { resource: 'reader2', presence: true });
      clients.push(carol);
      const bob = await login(server, 'bob', PASS, { resource: 'talker2' });
      clients.push(bob);
      const alice = new BoshClient(server.httpsPort);
      bosh.push(alice);
      await alice.login('alice', PASS, 'bosh-flood');
      // Two requests of 80 messages (~40 KB each): the first is the debt, the second waits ~8 s.
      const pad = 'x'.repeat(420);
      const batch = (name: string) => Array.from({ length: 80 }, (_, i) => `<message xmlns='jabber:client' to='carol@localhost' type='chat' id='${name}-${i}'><body>${pad}</body></message>`).join('');
      const first = alice.send(batch('first'));
      const second = alice.send(batch('second'));
      await carol.expect(isMessageFrom('first-'));
      await bob.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'bob-2' }, xml('body', {}, 'still there?')));
      await carol.expect(isMessageFrom('bob-'), 15_000);
      assert.equal(carol.inbox.drain().filter(isMessageFrom('second-')).length, 0, "the second request was handled before Bob's message");
      const r = await server.cli(['shell', 'session', 'list']);
      const line = r.stdout.split('\n').find((l) => l.includes('alice@localhost/bosh-flood'));
      assert.ok(line, r.stdout);
      assert.match(line, /rate=4096B\/s/);
      assert.match(line, /throttled=[1-9]/);
      await Promise.all([first, second]);
      for (let i = 0; i < 80; i++) await carol.expect(isMessageFrom('second-'), 30_000);
    });
  });

  describe('a web client that does not read', function () {
    let server: TestServer;
    let url: string;
    before(async function () {
      this.timeout(180_000);
      server = await startServer({ users: USERS, config: { tls: testCa().serverTls, limits: { rate: 0, sendQueue: 50 }, offline: { limit: 100_000 } } });
      url = `wss://localhost:${server.httpsPort}/xmpp-websocket`;
    });
    after(async function () {
      await server?.destroy();
    });

    /** Alice sends Carol messages until the server holds some back for her, then `extra` more: their ids. */
    const flood = async (alice: TestClient, carolJid: string, extra: number) => {
      const pad = 'y'.repeat(4000);
      const sent: string[] = [];
      const sendBatch = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const id = `m-${sent.length}`;
          sent.push(id);
          await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id }, xml('body', {}, pad)));
        }
        await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 30_000);
      };
      const queued = async () => {
        const r = await server.cli(['shell', 'session', 'list']);
        const line = r.stdout.split('\n').find((l) => l.includes(carolJid));
        return Number(/queued=(\d+)\//.exec(line ?? '')?.[1] ?? 0);
      };
      while ((await queued()) === 0) {
        assert.ok(sent.length < 10_000, 'the buffers never filled');
        await sendBatch(200);
      }
      await sendBatch(extra);
      return sent;
    };

    /** Every message in `missing` waits in Carol's offline storage, in order, none twice. */
    const inOffline = async (missing: string[]) => {
      const later = await login(server, 'carol', PASS, { resource: 'back' });
      clients.push(later);
      await later.send(xml('presence'));
      const stored: string[] = [];
      for (let i = 0; i < missing.length; i++) stored.push(String((await later.expect((el) => el.name === 'message' && String(el.attrs.id).startsWith('m-'), 30_000)).attrs.id));
      assert.deepEqual(stored, missing);
      await later.expectNothing((el) => el.name === 'message' && String(el.attrs.id).startsWith('m-'), 300);
    };

    it('closes a WebSocket client that does not read with policy-violation; what it did not take is in offline storage', async function () {
      this.timeout(120_000);
      const carol = await WsClient.connect(url);
      sockets.push(carol);
      const jid = await carol.login('carol', PASS, 'stuck');
      carol.send(`<presence xmlns='jabber:client'/>`);
      await carol.next((el) => el.name === 'presence');
      carol.ws.pause(); // stops reading: the socket buffers fill, then the server's queue
      const alice = await login(server, 'alice', PASS, { resource: 'sender' });
      clients.push(alice);
      const mark = server.output.length;
      const sent = await flood(alice, jid, 60);
      await server.waitForOutput(/carol@localhost\/stuck did not read/, 30_000, mark);
      assert.match(server.output.slice(mark), /closing WebSocket stream of carol@localhost\/stuck from .+: policy-violation/);
      carol.ws.resume();
      await carol.closed;
      const read = carol.frames.filter((el) => el.name === 'message').map((el) => String(el.attrs.id));
      const missing = sent.filter((id) => !read.includes(id));
      assert.ok(missing.length > 50, `only ${missing.length} messages were not read`);
      await inOffline(missing);
    });

    it('closes a BOSH client that does not poll with policy-violation; what no request came for is in offline storage', async function () {
      this.timeout(120_000);
      const carol = new BoshClient(server.httpsPort);
      const jid = await carol.login('carol', PASS, 'idle');
      await carol.send(`<presence xmlns='jabber:client'/>`);
      // No request outstanding from now on.
      const alice = await login(server, 'alice', PASS, { resource: 'sender2' });
      clients.push(alice);
      const mark = server.output.length;
      const sent: string[] = [];
      for (let i = 0; i < 60; i++) {
        const id = `m-${i}`;
        sent.push(id);
        await alice.send(xml('message', { to: jid, type: 'chat', id }, xml('body', {}, 'are you there?')));
      }
      await server.waitForOutput(/carol@localhost\/idle did not read: 60 messages routed again/, 30_000, mark);
      assert.match(server.output.slice(mark), /closing BOSH session of carol@localhost\/idle from .+: policy-violation/);
      const next = await carol.send();
      assert.equal(next.attrs.type, 'terminate');
      await inOffline(sent);
    });
  });
});
