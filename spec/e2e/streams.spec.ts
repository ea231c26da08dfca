// Stream-level behaviour over raw sockets: errors, limits, authentication requirements.
import assert from 'node:assert/strict';
import { RawClient, login, streamErrorCondition, xml } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('e2e: streams', function () {
  let server: TestServer;
  const raws: RawClient[] = [];
  const raw = async (directTls = false) => {
    const c = await RawClient.connect(directTls ? server.directTlsPort : server.c2sPort, { directTls });
    raws.push(c);
    return c;
  };
  const streamError = (c: RawClient) => c.expect((el) => el.name === 'stream:error');

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pass', bob: 'bob-pass' }, config: { c2s: { preauthStanzaSizeLimit: 2048 } } });
  });
  afterEach(function () {
    for (const c of raws.splice(0)) c.close();
  });
  after(async function () {
    await server?.destroy();
  });

  it('offers STARTTLS as required and no SASL mechanism before TLS', async function () {
    const c = await raw();
    c.openStream();
    const features = await c.expect((el) => el.name === 'stream:features');
    const starttls = features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls');
    assert.ok(starttls, 'starttls offered');
    assert.ok(starttls.getChild('required'), 'starttls required');
    assert.equal(features.getChild('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl'), undefined);
    assert.equal(c.streamAttrs?.from, 'localhost');
    assert.equal(c.streamAttrs?.version, '1.0');
    assert.ok(c.streamAttrs?.id);
  });

  it('offers SCRAM (with -PLUS and channel-binding types) and PLAIN after STARTTLS', async function () {
    const c = await raw();
    c.openStream();
    await c.starttls();
    const features = await c.expect((el) => el.name === 'stream:features');
    const mechs = features.getChild('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl')!.getChildren('mechanism').map((m) => m.text());
    assert.deepEqual(mechs, ['SCRAM-SHA-512-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    const cb = features.getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0')!.getChildren('channel-binding').map((e) => e.attrs.type);
    assert.ok(cb.includes('tls-server-end-point'));
  });

  it('refuses SASL before TLS with encryption-required', async function () {
    const c = await raw();
    c.openStream();
    await c.expect((el) => el.name === 'stream:features');
    c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0alice-pass').toString('base64')}</auth>`);
    const f = await c.expect((el) => el.name === 'failure');
    assert.ok(f.getChild('encryption-required'));
  });

  it('does not route a stanza sent before authentication', async function () {
    const bob = await login(server, 'bob', 'bob-pass', { resource: 'b', presence: true });
    try {
      const c = await raw();
      c.openStream();
      await c.expect((el) => el.name === 'stream:features');
      c.write(`<message to='bob@localhost/b' id='sneaky'><body>unauthenticated</body></message>`);
      assert.equal(streamErrorCondition(await streamError(c)), 'not-authorized');
      await c.waitClosed();
      await bob.expectNothing((s) => s.attrs.id === 'sneaky', 500);
    } finally {
      await bob.stop();
    }
  });

  it('answers malformed XML with not-well-formed and keeps serving others', async function () {
    const alice = await login(server, 'alice', 'alice-pass', { resource: 'a' });
    try {
      const c = await raw();
      c.openStream();
      await c.expect((el) => el.name === 'stream:features');
      c.write(`<message><body>broken</message>`);
      assert.equal(streamErrorCondition(await streamError(c)), 'not-well-formed');
      await c.waitClosed();
      assert.match(c.received, /<\/stream:stream>$/);
      const pong = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(pong.attrs.type, 'result');
    } finally {
      await alice.stop();
    }
  });

  for (const [what, data, condition] of [
    ['a comment', '<!-- hi -->', 'restricted-xml'],
    ['a processing instruction', '<?foo bar?>', 'restricted-xml'],
    ['a DOCTYPE', '<!DOCTYPE x [<!ENTITY a "b">]>', 'restricted-xml'],
    ['duplicate attributes', "<message to='a' to='b'/>", 'not-well-formed'],
  ] as const) {
    it(`rejects ${what} with ${condition}`, async function () {
      const c = await raw();
      c.openStream();
      await c.expect((el) => el.name === 'stream:features');
      c.write(data);
      assert.equal(streamErrorCondition(await streamError(c)), condition);
      await c.waitClosed();
    });
  }

  it('answers host-unknown for a host it does not serve', async function () {
    const c = await raw();
    c.openStream('example.net');
    assert.equal(streamErrorCondition(await streamError(c)), 'host-unknown');
    await c.waitClosed();
  });

  it('answers invalid-namespace for a wrong stream namespace', async function () {
    const c = await raw();
    c.write(`<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`);
    assert.equal(streamErrorCondition(await streamError(c)), 'invalid-namespace');
  });

  it('enforces the smaller stanza size limit before authentication', async function () {
    const c = await raw();
    c.openStream();
    await c.expect((el) => el.name === 'stream:features');
    c.write(`<message><body>${'x'.repeat(4096)}</body></message>`);
    const e = await streamError(c);
    assert.equal(streamErrorCondition(e), 'policy-violation');
    await c.waitClosed();
  });

  it('accepts whitespace keepalives between stanzas', async function () {
    const c = await raw();
    c.openStream();
    await c.starttls();
    const jid = await c.authenticate('alice', 'alice-pass', 'ws');
    assert.equal(jid, 'alice@localhost/ws');
    c.write('   \n  ');
    c.write(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const r = await c.expect((el) => el.attrs.id === 'p1');
    assert.equal(r.attrs.type, 'result');
  });

  it("routes a stanza that restates xmlns='jabber:client' like any other", async function () {
    const bob = await login(server, 'bob', 'bob-pass', { resource: 'phone', presence: true });
    try {
      const c = await raw();
      c.openStream();
      await c.starttls();
      await c.authenticate('alice', 'alice-pass', 'ns');
      c.write(`<iq xmlns='jabber:client' type='get' id='ns1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      assert.equal((await c.expect((el) => el.attrs.id === 'ns1')).attrs.type, 'result');
      c.write(`<message xmlns='jabber:client' to='bob@localhost/phone' type='chat'><body>restated</body></message>`);
      const m = await bob.expect((el) => el.name === 'message' && el.getChildText('body') === 'restated');
      assert.equal(m.attrs.from, 'alice@localhost/ns');
    } finally {
      await bob.stop();
    }
  });

  it('closes the stream cleanly when the client closes it', async function () {
    const c = await raw();
    c.openStream();
    await c.starttls();
    await c.authenticate('alice', 'alice-pass', 'bye');
    c.write('</stream:stream>');
    await c.waitClosed();
    assert.match(c.received, /<\/stream:stream>$/);
  });

  it('serves direct TLS (XEP-0368) on its own port', async function () {
    const c = await raw(true);
    c.openStream();
    const f = await c.expect((el) => el.name === 'stream:features');
    assert.equal(f.getChild('starttls'), undefined);
    assert.ok(f.getChild('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl'));
    const jid = await c.authenticate('alice', 'alice-pass', 'direct', 'localhost', true);
    assert.equal(jid, 'alice@localhost/direct');
  });

  it('refuses a message before binding with not-authorized', async function () {
    const c = await raw();
    c.openStream();
    await c.starttls();
    await c.expect((el) => el.name === 'stream:features');
    c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0alice-pass').toString('base64')}</auth>`);
    await c.expect((el) => el.name === 'success');
    c.restartStream();
    const features = await c.expect((el) => el.name === 'stream:features');
    assert.ok(features.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'));
    const session = features.getChild('session', 'urn:ietf:params:xml:ns:xmpp-session');
    assert.ok(session?.getChild('optional'), 'legacy session is optional');
    c.write(`<message to='bob@localhost'><body>unbound</body></message>`);
    assert.equal(streamErrorCondition(await streamError(c)), 'not-authorized');
  });
});

describe('e2e: stream timers', function () {
  let server: TestServer;
  const raws: RawClient[] = [];
  before(async function () {
    server = await startServer({ users: { alice: 'alice-pass' }, config: { c2s: { unauthenticatedTimeout: 1, keepaliveInterval: 1 } } });
  });
  afterEach(function () {
    for (const c of raws.splice(0)) c.close();
  });
  after(async function () {
    await server?.destroy();
  });

  it('closes a connection that does not authenticate in time with connection-timeout', async function () {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    const err = await c.expect((el) => el.name === 'stream:error', 4000);
    assert.equal(streamErrorCondition(err), 'connection-timeout');
    await c.waitClosed();
  });

  it('sends whitespace keepalives on an idle authenticated stream (and keeps it open)', async function () {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    await c.starttls();
    await c.authenticate('alice', 'alice-pass', 'idle');
    const mark = c.received.length;
    await new Promise((r) => setTimeout(r, 2600));
    assert.match(c.received.slice(mark), /^\s+$/, 'only whitespace arrived while idle');
    assert.equal(c.closed, false, 'an authenticated stream is not timed out');
  });
});
