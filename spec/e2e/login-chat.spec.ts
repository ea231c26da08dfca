// Two accounts made with the CLI log in with @xmpp/client (default settings: STARTTLS, SASL2 with
// SCRAM-SHA-1, Bind2), subscribe to each other, see each other's presence and chat.
import assert from 'node:assert/strict';
import { login, xml, RawClient, stanzaErrorCondition, streamErrorCondition, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('e2e: login and chat', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string, pass: string, resource: string, presence = false) => {
    const c = await login(server, user, pass, { resource, presence });
    clients.push(c);
    return c;
  };

  before(async function () {
    server = await startServer({ users: { romeo: 'r0meo-pass', juliet: 'jul1et-pass' } });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('logs in over STARTTLS with SASL2 (SCRAM-SHA-1) in one attempt and binds with Bind2, its resource tagged as asked', async function () {
    const from = server.output.length;
    const romeo = await connect('romeo', 'r0meo-pass', 'balcony');
    assert.match(romeo.jid, /^romeo@localhost\/balcony\/[\w-]+$/);
    await server.waitForOutput(/authenticated romeo@localhost from 127\.0\.0\.1 with SCRAM-SHA-1 \(SASL2\)/, 5000, from);
    assert.equal(server.output.slice(from).match(/authenticat(ed|ion failure for) romeo@/g)?.length, 1, 'exactly one SASL attempt');
  });

  it('binds the requested resource for a client that uses SASL1 and the bind iq (RFC 6120)', async function () {
    const raw = await RawClient.connect(server.directTlsPort, { directTls: true });
    raw.openStream();
    try {
      assert.equal(await raw.authenticate('romeo', 'r0meo-pass', 'balcony'), 'romeo@localhost/balcony');
    } finally {
      raw.close();
    }
  });

  it('refuses a wrong password with not-authorized', async function () {
    await assert.rejects(login(server, 'romeo', 'wrong'), (err: Error & { condition?: string }) => {
      assert.equal(err.condition, 'not-authorized');
      return true;
    });
    await server.waitForOutput(/authentication failure for romeo@localhost from 127\.0\.0\.1/);
  });

  it('subscribes both ways, shares presence and exchanges messages', async function () {
    const romeo = await connect('romeo', 'r0meo-pass', 'balcony', true);
    const juliet = await connect('juliet', 'jul1et-pass', 'garden', true);

    await romeo.send(xml('presence', { to: 'juliet@localhost', type: 'subscribe' }));
    await juliet.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === 'romeo@localhost');
    await juliet.send(xml('presence', { to: 'romeo@localhost', type: 'subscribed' }));
    // Romeo now sees Juliet online.
    await romeo.expect((s) => s.name === 'presence' && s.attrs.from === juliet.jid && s.attrs.type === undefined);

    await juliet.send(xml('presence', { to: 'romeo@localhost', type: 'subscribe' }));
    await romeo.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === 'juliet@localhost');
    await romeo.send(xml('presence', { to: 'juliet@localhost', type: 'subscribed' }));
    await juliet.expect((s) => s.name === 'presence' && s.attrs.from === romeo.jid && s.attrs.type === undefined);

    // A later presence change is broadcast to the subscriber.
    await romeo.send(xml('presence', {}, xml('show', {}, 'away')));
    const p = await juliet.expect((s) => s.name === 'presence' && s.attrs.from === romeo.jid && s.getChildText('show') === 'away');
    assert.equal(p.attrs.to, juliet.jid);

    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'But soft!')));
    const m = await juliet.expect((s) => s.name === 'message' && s.attrs.id === 'm1');
    assert.equal(m.attrs.from, romeo.jid);
    assert.equal(m.getChildText('body'), 'But soft!');

    await juliet.send(xml('message', { to: romeo.jid, type: 'chat', id: 'm2' }, xml('body', {}, 'Ay me!')));
    const r = await romeo.expect((s) => s.name === 'message' && s.attrs.id === 'm2');
    assert.equal(r.attrs.from, juliet.jid);
  });

  it('stamps from: a client cannot forge it', async function () {
    const romeo = await connect('romeo', 'r0meo-pass', 'forger');
    const juliet = await connect('juliet', 'jul1et-pass', 'target', true);
    // A from naming oneself (bare) is accepted and rewritten to the full JID.
    await romeo.send(xml('message', { to: juliet.jid, from: 'romeo@localhost', id: 'own' }, xml('body', {}, 'me')));
    const own = await juliet.expect((s) => s.attrs.id === 'own');
    assert.equal(own.attrs.from, romeo.jid);
    // A from naming someone else closes the stream with invalid-from; nothing is delivered.
    await romeo.send(xml('message', { to: juliet.jid, from: 'juliet@localhost/x', id: 'forged' }, xml('body', {}, 'fake')));
    await juliet.expectNothing((s) => s.attrs.id === 'forged', 800);
    await server.waitForOutput(/invalid-from/);
  });

  it('answers service-unavailable to an unhandled iq and never answers a result', async function () {
    const romeo = await connect('romeo', 'r0meo-pass', 'iq');
    const reply = await romeo.iqRaw(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'urn:example:none' })));
    assert.equal(reply.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(reply), 'service-unavailable');
    await romeo.send(xml('iq', { type: 'result', to: 'localhost', id: 'stray' }));
    await romeo.send(xml('iq', { type: 'error', to: 'localhost', id: 'stray2' }, xml('error', { type: 'cancel' })));
    await romeo.expectNothing((s) => s.attrs.id === 'stray' || s.attrs.id === 'stray2', 500);
    const ping = await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(ping.attrs.type, 'result');
  });

  it('answers service-unavailable for a message to an unknown local user', async function () {
    const romeo = await connect('romeo', 'r0meo-pass', 'unknown');
    await romeo.send(xml('message', { to: 'nobody@localhost', type: 'chat', id: 'nx' }, xml('body', {}, 'hello?')));
    const err = await romeo.expect((s) => s.attrs.id === 'nx');
    assert.equal(err.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(err), 'service-unavailable');
  });

  it('answers jid-malformed for an invalid recipient', async function () {
    const romeo = await connect('romeo', 'r0meo-pass', 'bad');
    await romeo.send(xml('message', { to: 'a@b@localhost', type: 'chat', id: 'bad' }, xml('body', {}, 'x')));
    const err = await romeo.expect((s) => s.attrs.id === 'bad');
    assert.equal(stanzaErrorCondition(err), 'jid-malformed');
  });

  it('gives the new session the resource on conflict and closes the old one with <conflict/> (RFC 6120 binding)', async function () {
    const first = await RawClient.connect(server.directTlsPort, { directTls: true });
    const second = await RawClient.connect(server.directTlsPort, { directTls: true });
    try {
      first.openStream();
      assert.equal(await first.authenticate('romeo', 'r0meo-pass', 'same'), 'romeo@localhost/same');
      second.openStream();
      assert.equal(await second.authenticate('romeo', 'r0meo-pass', 'same'), 'romeo@localhost/same');
      assert.equal(streamErrorCondition(await first.expect((el) => el.name === 'stream:error')), 'conflict');
      await first.waitClosed();
    } finally {
      first.close();
      second.close();
    }
  });
});
