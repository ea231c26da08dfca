// XMPP over WebSocket (RFC 7395) at /xmpp-websocket, and connection discovery (XEP-0156): the
// `xmpp` sub-protocol, the framing and its errors, the same SASL/bind/routing path as TCP (a
// WebSocket session chats with a TCP one), closing, and host-meta listing the endpoint.
import assert from 'node:assert/strict';
import http from 'node:http';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { FRAMING, WsClient } from '../helpers/ws.ts';

const isError = (el: { name: string }) => el.name === 'stream:error';
const errorCondition = (el: { children: unknown[] }) => (el.children[0] as { name: string }).name;

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers: { Host: `localhost:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject);
  });
}

describe('e2e: XMPP over WebSocket (RFC 7395)', function () {
  let server: TestServer;
  const open: WsClient[] = [];
  const tcp: TestClient[] = [];
  let url: string;
  const connect = async (opts?: Parameters<typeof WsClient.connect>[1]) => {
    const c = await WsClient.connect(url, opts);
    open.push(c);
    return c;
  };

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pw', bob: 'bob-pw' }, config: { tls: testCa().serverTls } });
    url = `wss://localhost:${server.httpsPort}/xmpp-websocket`;
  });
  after(async function () {
    for (const c of open) c.ws.terminate();
    await Promise.all(tcp.map((c) => c.stop()));
    await server?.destroy();
  });

  it('is served by default, and refuses upgrades without the xmpp sub-protocol', async function () {
    await assert.rejects(WsClient.connect(url, { protocols: [] }), /HTTP 400/);
    await assert.rejects(WsClient.connect(url, { protocols: ['chat'] }), /HTTP 400/);
    const c = await connect();
    assert.equal(c.ws.protocol, 'xmpp');
  });

  it('answers <open/> with <open/> and stream features, and logs in as a normal session that chats with a TCP client', async function () {
    const bob = await login(server, 'bob', 'bob-pw', { presence: true });
    tcp.push(bob);
    const c = await connect();
    const opened = await c.open();
    assert.equal(opened.attrs.xmlns, FRAMING);
    assert.equal(opened.attrs.from, 'localhost');
    assert.equal(opened.attrs.version, '1.0');
    assert.ok(opened.attrs.id);
    const jid = await c.login('alice', 'alice-pw', 'web');
    assert.match(jid, /^alice@localhost\/web/);
    // The roster and presence work as on TCP.
    c.send(`<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
    assert.equal((await c.next((el) => el.attrs.id === 'r1')).attrs.type, 'result');
    c.send(`<presence xmlns='jabber:client'/>`);
    c.send(`<message xmlns='jabber:client' to='${bob.jid}' type='chat'><body>hi from the web</body></message>`);
    const got = await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'hi from the web');
    assert.equal(got.attrs.from, jid);
    await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'hi back')));
    const back = await c.next((el) => el.name === 'message');
    assert.equal(back.attrs.xmlns, 'jabber:client', 'each frame carries its namespace');
    assert.equal(back.getChildText('body'), 'hi back');
    // The client closes: we answer <close/> and the WebSocket closes normally.
    c.send(`<close xmlns='${FRAMING}'/>`);
    assert.equal((await c.next((el) => el.name === 'close')).attrs.xmlns, FRAMING);
    assert.equal(await c.closed, 1000);
  });

  const framingErrors: [string, string, string][] = [
    ['a stanza before <open/>', `<message xmlns='jabber:client'/>`, 'invalid-namespace'],
    ['<stream:stream> instead of <open/>', `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`, 'invalid-namespace'],
    ['two elements in one frame', `<open xmlns='${FRAMING}' to='localhost' version='1.0'/><open xmlns='${FRAMING}' to='localhost' version='1.0'/>`, 'not-well-formed'],
    ['half an element', `<open xmlns='${FRAMING}' to='localhost'`, 'not-well-formed'],
    ['a comment', `<!-- hi --><open xmlns='${FRAMING}' to='localhost' version='1.0'/>`, 'restricted-xml'],
  ];
  for (const [what, frame, condition] of framingErrors) {
    it(`closes with <${condition}/> then <close/> on ${what}`, async function () {
      const c = await connect();
      c.send(frame);
      const err = await c.next(isError);
      assert.equal(errorCondition(err), condition);
      await c.next((el) => el.name === 'close' && el.attrs.xmlns === FRAMING);
      c.send(`<close xmlns='${FRAMING}'/>`); // RFC 7395 §3.6: answered with <close/>, then the server closes
      assert.equal(await c.closed, 1000);
    });
  }

  it('closes with <bad-format/> on a second <open/> while the stream is open', async function () {
    const c = await connect();
    await c.open();
    c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    assert.equal(errorCondition(await c.next(isError)), 'bad-format');
  });

  it('closes with <host-unknown/> for a host it does not serve', async function () {
    const c = await connect();
    c.send(`<open xmlns='${FRAMING}' to='elsewhere.example' version='1.0'/>`);
    assert.equal(errorCondition(await c.next(isError)), 'host-unknown');
  });

  it('closes the WebSocket with 1003 on a binary message', async function () {
    const c = await connect();
    c.send(Buffer.from(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`), true);
    assert.equal(await c.closed, 1003);
  });

  it('refuses stanzas before authentication', async function () {
    const c = await connect();
    await c.open();
    c.send(`<message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>`);
    assert.equal(errorCondition(await c.next(isError)), 'not-authorized');
  });

  it('never runs as authenticated what the client sent behind its SASL2 <authenticate/> before <success/>', async function () {
    const bob = await login(server, 'bob', 'bob-pw', { presence: true });
    tcp.push(bob);
    const c = await connect();
    await c.open();
    await c.next((el) => el.name === 'stream:features');
    const token = Buffer.from('\0alice\0alice-pw').toString('base64');
    // SASL2 with Bind2 inline: no stream restart, so a frame pipelined behind <authenticate/>
    // would otherwise be read after <success/> in the authenticated session.
    c.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${token}</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>pipe</tag></bind></authenticate>`);
    c.send(`<message xmlns='jabber:client' to='${bob.jid}' type='chat' id='early'><body>pipelined</body></message>`);
    await c.next((el) => el.name === 'success');
    c.send(`<message xmlns='jabber:client' to='${bob.jid}' type='chat' id='late'><body>after success</body></message>`);
    await bob.expect((s) => s.name === 'message' && s.attrs.id === 'late');
    await bob.expectNothing((s) => s.attrs.id === 'early', 300);
  });

  it('lists the WebSocket endpoint in host-meta (XML and JSON), readable from any origin', async function () {
    const xrd = await get(server.httpPort, '/.well-known/host-meta', { Origin: 'https://app.example' });
    assert.equal(xrd.status, 200);
    assert.match(String(xrd.headers['content-type']), /^application\/xrd\+xml/);
    assert.equal(xrd.headers['access-control-allow-origin'], '*');
    const wss = `wss://localhost:${server.httpsPort}/xmpp-websocket`;
    assert.ok(xrd.body.includes(`<Link rel='urn:xmpp:alt-connections:websocket' href='${wss}'/>`), xrd.body);
    const jrd = await get(server.httpPort, '/.well-known/host-meta.json');
    assert.deepEqual((JSON.parse(jrd.body) as { links: unknown[] }).links.filter((l) => (l as { rel: string }).rel.endsWith('websocket')), [{ rel: 'urn:xmpp:alt-connections:websocket', href: wss }]);
    assert.equal((await get(server.httpPort, '/.well-known/host-meta', { Host: 'elsewhere.example' })).status, 404);
  });
});
