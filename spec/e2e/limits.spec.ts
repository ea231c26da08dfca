// Limits end to end (core/limits.ts, the `limits` option): a flooding client is shaped while
// another user's messages get through; connections per address; sessions per account
// (RFC 6120 §7.6.2.1 resource-constraint); a recipient that never reads is closed with
// policy-violation and the stanzas it did not take are kept in offline storage.
import assert from 'node:assert/strict';
import { login, RawClient, stanzaErrorCondition, streamErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'limits-pass';
const USERS = { alice: PASS, bob: PASS, carol: PASS };

/** A raw client over STARTTLS, authenticated with PLAIN and bound to `resource`. */
async function rawLogin(server: TestServer, user: string, resource: string): Promise<RawClient> {
  const c = await RawClient.connect(server.c2sPort);
  c.openStream();
  await c.starttls();
  const jid = await c.authenticate(user, PASS, resource);
  assert.equal(jid, `${user}@localhost/${resource}`);
  return c;
}

const isMessageFrom = (prefix: string) => (el: Element) => el.name === 'message' && String(el.attrs.id).startsWith(prefix);

describe('e2e: limits', function () {
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];
  afterEach(async function () {
    // Closed by the stream's end, so the server has counted them out before the next test.
    await Promise.all(raws.splice(0).map(async (r) => {
      if (!r.closed) {
        r.write('</stream:stream>');
        await r.waitClosed().catch(() => undefined);
      }
      r.socket.destroy();
    }));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });

  describe('rate shaping, connections per address, sessions per account', function () {
    let server: TestServer;
    before(async function () {
      server = await startServer({
        users: USERS,
        config: { limits: { rate: 4096, burst: 8192, connectionsPerAddress: 4, sessionsPerAccount: 2 } },
      });
    });
    after(async function () {
      await server?.destroy();
    });

    it('refuses connections from one address past connectionsPerAddress, and accepts again after one closes', async function () {
      const open: RawClient[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await RawClient.connect(server.c2sPort);
        raws.push(c);
        open.push(c);
        c.openStream();
        await c.expect((el) => el.name === 'stream:features');
      }
      const fifth = await RawClient.connect(server.c2sPort);
      raws.push(fifth);
      fifth.openStream();
      const err = await fifth.expect((el) => el.name === 'stream:error');
      assert.equal(streamErrorCondition(err), 'policy-violation');
      await fifth.waitClosed();
      // One leaves: a new connection is accepted.
      open[0]!.write('</stream:stream>');
      await open[0]!.waitClosed();
      const again = await RawClient.connect(server.c2sPort);
      raws.push(again);
      again.openStream();
      await again.expect((el) => el.name === 'stream:features');
    });

    it('answers resource-constraint to a bind past sessionsPerAccount (RFC 6120 §7.6.2.1)', async function () {
      raws.push(await rawLogin(server, 'bob', 'one'));
      raws.push(await rawLogin(server, 'bob', 'two'));
      const third = await RawClient.connect(server.c2sPort);
      raws.push(third);
      third.openStream();
      await third.starttls();
      await third.expect((el) => el.name === 'stream:features');
      third.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\u0000bob\u0000${PASS}`).toString('base64')}</auth>`);
      await third.expect((el) => el.name === 'success');
      third.restartStream();
      await third.expect((el) => el.name === 'stream:features');
      third.write(`<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>`);
      const reply = await third.expect((el) => el.name === 'iq' && el.attrs.id === 'b3');
      assert.equal(reply.attrs.type, 'error');
      assert.equal(reply.getChild('error')?.attrs.type, 'wait');
      assert.equal(stanzaErrorCondition(reply), 'resource-constraint');
      // Replacing one of the two connected resources is not a new one.
      const replacing = await rawLogin(server, 'bob', 'two');
      raws.push(replacing);
    });

    it("shapes a flooding client while another user's message gets through", async function () {
      const carol = await login(server, 'carol', PASS, { resource: 'reader', presence: true });
      clients.push(carol);
      const bob = await login(server, 'bob', PASS, { resource: 'talker' });
      clients.push(bob);
      const alice = await rawLogin(server, 'alice', 'flood');
      raws.push(alice);
      // 200 messages of ~500 bytes: 100 KB, 25 s at 4 KiB/s; unshaped, all read in one go.
      const FLOOD = 200;
      const pad = 'x'.repeat(420);
      let burst = '';
      for (let i = 0; i < FLOOD; i++) burst += `<message to='carol@localhost' type='chat' id='flood-${i}'><body>${pad}</body></message>`;
      alice.write(burst);
      await carol.expect(isMessageFrom('flood-'));
      await bob.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'bob-1' }, xml('body', {}, 'still there?')));
      await carol.expect(isMessageFrom('bob-'), 15_000);
      // Bob's message overtook the flood: most of it was still unread by the server.
      const flooded = carol.inbox.drain().filter(isMessageFrom('flood-')).length + 1;
      assert.ok(flooded < FLOOD / 2, `${flooded} of ${FLOOD} flood messages were delivered before Bob's`);
      // The shell shows the shaping of Alice's session.
      const r = await server.cli(['shell', 'session', 'list']);
      assert.equal(r.code, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.includes('alice@localhost/flood'));
      assert.ok(line, r.stdout);
      assert.match(line, /rate=4096B\/s/);
      assert.match(line, /throttled=[1-9]/);
      assert.match(line, /queued=0\/1000/);
    });
  });

  describe('a recipient that does not read', function () {
    let server: TestServer;
    before(async function () {
      server = await startServer({
        users: USERS,
        config: { limits: { rate: 0, sendQueue: 50 }, offline: { limit: 100_000 } },
      });
    });
    after(async function () {
      await server?.destroy();
    });

    it('is closed with policy-violation; every message it did not take is in offline storage', async function () {
      this.timeout(120_000);
      const carol = await rawLogin(server, 'carol', 'stuck');
      raws.push(carol);
      carol.write('<presence/>');
      await carol.expect((el) => el.name === 'presence');
      // Carol stops reading: the socket buffers fill, then the server's queue.
      carol.socket.pause();
      const alice = await login(server, 'alice', PASS, { resource: 'sender' });
      clients.push(alice);
      const pad = 'y'.repeat(4000);
      const sent: string[] = [];
      const mark = server.output.length;
      const sendBatch = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const id = `m-${sent.length}`;
          sent.push(id);
          await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id }, xml('body', {}, pad)));
        }
        // Every message so far has been handled by the server.
        await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 30_000);
      };
      /** Stanzas the server holds for Carol's session, as `shell session list` shows them. */
      const queuedForCarol = async () => {
        const r = await server.cli(['shell', 'session', 'list']);
        const line = r.stdout.split('\n').find((l) => l.includes('carol@localhost/stuck'));
        return Number(/queued=(\d+)\//.exec(line ?? '')?.[1] ?? 0);
      };
      // Fill the socket buffers until the server starts holding stanzas back, then go past the bound.
      while ((await queuedForCarol()) === 0) {
        assert.ok(sent.length < 10_000, 'the socket buffers never filled');
        await sendBatch(500);
      }
      await sendBatch(60);
      await server.waitForOutput(/carol@localhost\/stuck did not read/, 30_000, mark);
      assert.match(server.output.slice(mark), /closing stream of carol@localhost\/stuck from [^:]+: policy-violation/);
      // What reached Carol's socket before the server gave up can still be read...
      carol.socket.resume();
      await carol.waitClosed(30_000);
      const read = carol.inbox.drain().filter((el) => el.name === 'message').map((el) => String(el.attrs.id));
      // ...and everything else waits in offline storage, in order, none twice.
      const later = await login(server, 'carol', PASS, { resource: 'back' });
      clients.push(later);
      await later.send(xml('presence'));
      const missing = sent.filter((id) => !read.includes(id));
      assert.ok(missing.length > 50, `only ${missing.length} messages were not read`);
      const stored: string[] = [];
      for (let i = 0; i < missing.length; i++) {
        const m = await later.expect((el) => el.name === 'message' && String(el.attrs.id).startsWith('m-'), 30_000);
        stored.push(String(m.attrs.id));
      }
      assert.deepEqual(stored, missing);
      await later.expectNothing((el) => el.name === 'message' && String(el.attrs.id).startsWith('m-'), 300);
    });
  });
});
