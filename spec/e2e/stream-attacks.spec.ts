// The login path as an attacker tries it, over raw sockets: whatever a client (or a man in the
// middle) pipelines behind a stream state change — <starttls/>, the last SASL message, a
// component's handshake, a stanza that closes the stream — is never processed in the new state.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RawClient, login, stanzaErrorCondition, streamErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const COMPONENT = 'echo.localhost';
const SECRET = 'c0mp-secret';

const header = (to = 'localhost') => `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='${to}' version='1.0'>`;
const plainAuth = (user: string, password: string) => `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${Buffer.from(`\u0000${user}\u0000${password}`).toString('base64')}</auth>`;
const bind = (resource: string, id = 'bind1') => `<iq type='set' id='${id}'><bind xmlns='${NS_BIND}'><resource>${resource}</resource></bind></iq>`;
const fromUser = (user: string) => (el: { attrs: Record<string, unknown> }) => String(el.attrs.from ?? '').startsWith(`${user}@`);

describe('e2e: stream attacks (state changes discard what was pipelined behind them)', function () {
  let server: TestServer;
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];
  const raw = async (port = server.c2sPort) => {
    const c = await RawClient.connect(port);
    raws.push(c);
    return c;
  };
  const user = async (name: string, resource: string) => {
    const c = await login(server, name, `${name}-pass`, { resource, presence: true });
    clients.push(c);
    return c;
  };
  const streamError = async (c: RawClient) => streamErrorCondition(await c.expect((el) => el.name === 'stream:error'));

  /** A raw client over STARTTLS, authenticated with SASL PLAIN and restarted, not yet bound. */
  const unbound = async (name: string) => {
    const c = await raw();
    c.openStream();
    await c.starttls();
    await c.expect((el) => el.name === 'stream:features');
    c.write(plainAuth(name, `${name}-pass`));
    await c.expect((el) => el.name === 'success');
    c.restartStream();
    const features = await c.expect((el) => el.name === 'stream:features');
    assert.ok(features.getChild('bind', NS_BIND), 'bind offered');
    return c;
  };

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass', carol: 'carol-pass' },
      config: { componentPorts: [0], components: { [COMPONENT]: { secret: SECRET } } },
    });
  });
  afterEach(async function () {
    for (const c of raws.splice(0)) c.close();
    for (const c of clients.splice(0)) await c.stop();
  });
  after(async function () {
    await server?.destroy();
  });

  describe('STARTTLS command injection (CVE-2011-0411 class)', function () {
    it('never parses or answers what follows <starttls/> in the same write, inside or outside TLS', async function () {
      const carol = await user('carol', 'c');
      const c = await raw();
      c.openStream();
      await c.expect((el) => el.name === 'stream:features');
      const mark = server.output.length;
      // A man in the middle appends, in plaintext: a new stream, bob's credentials, a restart,
      // a bind and a message to carol.
      const injected =
        header() +
        plainAuth('bob', 'bob-pass') +
        header() +
        bind('injected') +
        `<message to='${carol.jid}' id='injected'><body>sent as bob</body></message>`;
      c.write(`<starttls xmlns='${NS_TLS}'/>${injected}`);
      await c.expect((el) => el.name === 'proceed');
      await c.expectNothing(() => true, 300); // nothing else in plaintext
      await c.upgradeTls();
      // Inside TLS the server waits for our header: no stream header, no <success/>, nothing.
      await c.expectNothing(() => true, 700);
      assert.equal(c.received, '', 'the server answered the injected plaintext inside TLS');
      await carol.expectNothing((el) => el.attrs.id === 'injected' || fromUser('bob')(el), 300);
      assert.doesNotMatch(server.output.slice(mark), /authenticated bob@localhost/);
      await server.waitForOutput(/discarded \d+ bytes of XML from 127\.0\.0\.1 sent ahead of a stream state change/, 5000, mark);

      // The client itself opens the encrypted stream and logs in as itself.
      c.openStream();
      const features = await c.expect((el) => el.name === 'stream:features');
      assert.equal(features.getChild('starttls', NS_TLS), undefined);
      assert.ok(features.getChild('mechanisms', NS_SASL));
      const jid = await c.authenticate('alice', 'alice-pass', 'own', 'localhost', true);
      assert.equal(jid, 'alice@localhost/own');
      c.write(`<message to='${carol.jid}' id='real'><body>hi</body></message>`);
      const m = await carol.expect((el) => el.attrs.id === 'real');
      assert.equal(m.attrs.from, 'alice@localhost/own');
    });

    it('never parses plaintext sent after <proceed/> before the handshake (the handshake fails, the connection closes)', async function () {
      const carol = await user('carol', 'c');
      const c = await raw();
      c.openStream();
      await c.expect((el) => el.name === 'stream:features');
      const mark = server.output.length;
      c.write(`<starttls xmlns='${NS_TLS}'/>`);
      await c.expect((el) => el.name === 'proceed');
      c.write(header() + plainAuth('bob', 'bob-pass') + `<message to='${carol.jid}' id='injected2'><body>x</body></message>`);
      await c.waitClosed();
      await c.expectNothing((el) => el.name !== 'stream:features' && el.name !== 'proceed', 0);
      await carol.expectNothing((el) => el.attrs.id === 'injected2', 300);
      assert.doesNotMatch(server.output.slice(mark), /authenticated bob@localhost/);
    });

    it("accepts go-sendxmpp's newline after <starttls/>: the new stream inside TLS starts with its XML declaration", async function () {
      const c = await raw();
      c.openStream();
      await c.expect((el) => el.name === 'stream:features');
      c.write(`<starttls xmlns='${NS_TLS}'/>\n`);
      await c.expect((el) => el.name === 'proceed');
      await c.upgradeTls();
      c.write(header()); // `<?xml version='1.0'?><stream:stream …>`, as go-sendxmpp sends it
      const features = await c.expect((el) => el.name === 'stream:features');
      assert.ok(features.getChild('mechanisms', NS_SASL), features.toString());
      const jid = await c.authenticate('alice', 'alice-pass', 'gosendxmpp', 'localhost', true);
      assert.equal(jid, 'alice@localhost/gosendxmpp');
    });
  });

  describe('authenticated but unbound streams', function () {
    it('lets a batch sent before binding reach nobody: closed with not-authorized at the first stanza', async function () {
      const bob = await user('bob', 'b');
      const c = await unbound('alice');
      c.write(
        `<message to='${bob.jid}' id='u1'><body>one</body></message>` +
          `<message to='bob@localhost' id='u2'><body>two</body></message>` +
          `<presence type='subscribe' to='bob@localhost' id='u3'/>` +
          `<iq type='get' to='${bob.jid}' id='u4'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>` +
          `<iq type='get' id='u5'><query xmlns='jabber:iq:roster'/></iq>`,
      );
      assert.equal(await streamError(c), 'not-authorized');
      await c.waitClosed();
      await bob.expectNothing(fromUser('alice'), 1000);
      await c.expectNothing((el) => el.name === 'iq', 0);
    });

    it('refuses an iq to another user before binding with not-authorized (it is never routed)', async function () {
      const bob = await user('bob', 'b');
      const c = await unbound('alice');
      c.write(`<iq type='get' to='${bob.jid}' id='early'><ping xmlns='urn:xmpp:ping'/></iq>`);
      assert.equal(await streamError(c), 'not-authorized');
      await c.waitClosed();
      await bob.expectNothing(fromUser('alice'), 700);
    });

    it('refuses any iq other than bind and session before binding, even to the server', async function () {
      const c = await unbound('alice');
      c.write(`<iq type='get' to='localhost' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>`);
      assert.equal(await streamError(c), 'not-authorized');
      await c.expectNothing((el) => el.attrs.id === 'ping1', 0);
    });

    it('accepts the legacy session iq and the bind iq (to the server or the own account) before binding', async function () {
      const c = await unbound('alice');
      c.write(`<iq type='set' to='localhost' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
      assert.equal((await c.expect((el) => el.attrs.id === 'sess')).attrs.type, 'result');
      c.write(`<iq type='set' to='alice@localhost' id='b2'><bind xmlns='${NS_BIND}'><resource>mine</resource></bind></iq>`);
      const r = await c.expect((el) => el.attrs.id === 'b2');
      assert.equal(r.attrs.type, 'result', r.toString());
      assert.equal(r.getChild('bind')?.getChildText('jid'), 'alice@localhost/mine');
    });
  });

  describe('a stream the server closed', function () {
    it('processes nothing more from the same read (no bind of the closed session)', async function () {
      const bob = await user('bob', 'b');
      await user('alice', 'one'); // keeps alice's account entry alive while the raw stream closes
      const c = await raw();
      c.openStream();
      await c.starttls();
      await c.authenticate('alice', 'alice-pass', 'two');
      // The spoofed 'from' closes the stream; the bind behind it must not bind the dead session.
      c.write(`<message from='mallory@elsewhere.example' to='${bob.jid}'><body>x</body></message>${bind('zombie', 'rebind')}`);
      assert.equal(await streamError(c), 'invalid-from');
      await c.waitClosed();
      await c.expectNothing((el) => el.attrs.id === 'rebind', 0);
      // alice@localhost/zombie does not exist: an iq to it is answered with an error.
      const reply = await bob.iqRaw(xml('iq', { type: 'get', to: 'alice@localhost/zombie' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(reply.attrs.type, 'error', reply.toString());
      assert.equal(stanzaErrorCondition(reply), 'service-unavailable');
    });
  });

  describe('SASL success and the stream restart', function () {
    it('drops a stream header, bind and message pipelined behind the last SASL message', async function () {
      const bob = await user('bob', 'b');
      const c = await raw();
      c.openStream();
      await c.starttls();
      await c.expect((el) => el.name === 'stream:features');
      const restart = header().replace(/^<\?xml[^>]*>/, ''); // a second declaration would be an error at once
      c.write(plainAuth('alice', 'alice-pass') + restart + bind('early') + `<message to='${bob.jid}' id='early'><body>x</body></message>`);
      await c.expect((el) => el.name === 'success');
      // The pipelined header is not answered: the server waits for one sent after <success/>.
      await c.expectNothing(() => true, 700);
      assert.doesNotMatch(c.received.slice(c.received.indexOf('<success')), /<stream:stream/);
      await bob.expectNothing((el) => el.attrs.id === 'early', 300);
      c.restartStream();
      await c.expect((el) => el.name === 'stream:features');
      c.write(bind('late', 'bind2'));
      const r = await c.expect((el) => el.attrs.id === 'bind2');
      assert.equal(r.getChild('bind')?.getChildText('jid'), 'alice@localhost/late');
    });

    it('treats a stanza pipelined behind the SASL message as unauthenticated (not-authorized, never routed)', async function () {
      const bob = await user('bob', 'b');
      const c = await raw();
      c.openStream();
      await c.starttls();
      await c.expect((el) => el.name === 'stream:features');
      c.write(plainAuth('alice', 'alice-pass') + `<message to='${bob.jid}' id='early2'><body>x</body></message>`);
      assert.equal(await streamError(c), 'not-authorized');
      await c.waitClosed();
      await bob.expectNothing((el) => el.attrs.id === 'early2', 500);
    });
  });

  describe('SASL2 with Bind2 inline (no stream restart)', function () {
    const authenticate = (user: string, password: string, tag: string) =>
      `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${Buffer.from(`\u0000${user}\u0000${password}`).toString('base64')}</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>${tag}</tag></bind></authenticate>`;

    it('never runs a stanza sent in the same packet behind <authenticate/> as authenticated', async function () {
      const bob = await user('bob', 'b');
      const c = await raw();
      c.openStream();
      await c.starttls();
      await c.expect((el) => el.name === 'stream:features');
      c.write(authenticate('alice', 'alice-pass', 'pipe') + `<message to='${bob.jid}' type='chat' id='early'><body>pipelined</body></message>`);
      // Read while authentication is under way, it ends the stream (XEP-0388 §2.5); never routed.
      assert.equal(await streamError(c), 'policy-violation');
      await bob.expectNothing((el) => el.attrs.id === 'early', 300);
    });
  });

  describe('component handshake (XEP-0114)', function () {
    it('drops stanzas pipelined behind the handshake; stanzas after the server acknowledged it are routed', async function () {
      const bob = await user('bob', 'b');
      const c = await raw(server.componentPort);
      c.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='${NS_STREAMS}' to='${COMPONENT}'>`);
      const attrs = await c.expectHeader();
      const digest = createHash('sha1').update(attrs.id + SECRET).digest('hex');
      c.write(`<handshake>${digest}</handshake><message from='${COMPONENT}' to='${bob.jid}' id='pipelined'><body>x</body></message>`);
      await c.expect((el) => el.name === 'handshake');
      await bob.expectNothing((el) => el.attrs.id === 'pipelined', 700);
      c.write(`<message from='${COMPONENT}' to='${bob.jid}' id='after'><body>y</body></message>`);
      const m = await bob.expect((el) => el.attrs.id === 'after');
      assert.equal(m.attrs.from, COMPONENT);
    });
  });
});
