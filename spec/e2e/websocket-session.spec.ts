// Issue 11's WebSocket bullets beyond the framing (spec/e2e/websocket.spec.ts): a WebSocket session
// is a normal session — roster pushes from another resource, presence, carbons (XEP-0280) — and the
// limits and keepalives are the c2s ones: the stanza size limits before and after authentication
// (policy-violation), a message beyond the WebSocket's payload limit (1009), WebSocket pings, and a
// peer that does not answer them dropped.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { FRAMING, WsClient } from '../helpers/ws.ts';

const PASS = 'pw';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_ROSTER = 'jabber:iq:roster';
const isError = (el: { name: string }) => el.name === 'stream:error';
const condition = (el: { children: unknown[] }) => (el.children.find((c) => typeof c !== 'string') as { name: string }).name;

describe('e2e: a WebSocket session is a normal session, with the c2s limits and keepalives', function () {
  let server: TestServer;
  let url: string;
  const sockets: WsClient[] = [];
  const clients: TestClient[] = [];

  const ws = async () => {
    const c = await WsClient.connect(url);
    sockets.push(c);
    return c;
  };

  before(async function () {
    server = await startServer({
      users: { alice: PASS, bob: PASS },
      config: { websocket: { keepaliveInterval: 1, preauthStanzaSizeLimit: 3000, stanzaSizeLimit: 8000 } },
    });
    url = `wss://localhost:${server.httpsPort}/xmpp-websocket`;
  });
  afterEach(async function () {
    for (const c of sockets.splice(0)) c.ws.terminate();
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('gets roster pushes, presence and carbons like a TCP session', async function () {
    const web = await ws();
    const jid = await web.login('alice', PASS, 'web');
    web.send(`<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='${NS_ROSTER}'/></iq>`);
    assert.equal((await web.next((el) => el.name === 'iq' && el.attrs.id === 'r1')).attrs.type, 'result');
    web.send(`<presence xmlns='jabber:client'/>`);
    web.send(`<iq xmlns='jabber:client' type='set' id='c1'><enable xmlns='${NS_CARBONS}'/></iq>`);
    assert.equal((await web.next((el) => el.name === 'iq' && el.attrs.id === 'c1')).attrs.type, 'result');

    const desk = await login(server, 'alice', PASS, { resource: 'desk', presence: true });
    clients.push(desk);
    // The other resource's presence reaches the WebSocket one.
    const seen = await web.next((el) => el.name === 'presence' && el.attrs.from === desk.jid);
    assert.equal(seen.attrs.type, undefined);
    // A roster change made on the TCP resource is pushed to the WebSocket one (RFC 6121 §2.1.6).
    await desk.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'bob@localhost', name: 'Bob' }))));
    const push = await web.next((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS_ROSTER) !== undefined);
    assert.equal(push.getChild('query', NS_ROSTER)!.getChild('item')!.attrs.jid, 'bob@localhost');
    web.send(`<iq xmlns='jabber:client' type='result' id='${String(push.attrs.id)}'/>`);
    // A message the TCP resource sends is carbon-copied to the WebSocket one (XEP-0280 §6).
    await desk.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'from the desk')));
    const carbon = await web.next((el) => el.name === 'message' && el.getChild('sent', NS_CARBONS) !== undefined);
    assert.equal(carbon.attrs.to, jid);
    assert.match(carbon.toString(), /from the desk/);
  });

  it('closes with policy-violation on a frame over the limit before authentication, and after it', async function () {
    const before = await ws();
    await before.open();
    before.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${'A'.repeat(3500)}</auth>`);
    assert.equal(condition(await before.next(isError)), 'policy-violation');

    const after = await ws();
    await after.login('bob', PASS, 'big');
    // Within the authenticated limit: delivered (here: answered).
    after.send(`<iq xmlns='jabber:client' type='get' id='ok' to='localhost'><ping xmlns='urn:xmpp:ping'/><x xmlns='urn:example'>${'b'.repeat(3500)}</x></iq>`);
    assert.ok((await after.next((el) => el.name === 'iq' && el.attrs.id === 'ok')).attrs.type);
    after.send(`<message xmlns='jabber:client' to='alice@localhost'><body>${'b'.repeat(9000)}</body></message>`);
    assert.equal(condition(await after.next(isError)), 'policy-violation');
    await after.next((el) => el.name === 'close' && el.attrs.xmlns === FRAMING);
  });

  it('closes the WebSocket with 1009 on a message beyond its payload limit', async function () {
    const c = await ws();
    await c.login('bob', PASS, 'huge');
    c.send(`<message xmlns='jabber:client' to='alice@localhost'><body>${'b'.repeat(20_000)}</body></message>`);
    assert.equal(await c.closed, 1009);
  });

  it('sends WebSocket pings, and drops a peer that does not answer them', async function () {
    const c = await ws();
    await c.open();
    await new Promise<void>((resolve) => c.ws.once('ping', () => resolve()));

    // A client that never answers a ping (the keepalive interval is 1 s).
    const silent = new WebSocket(url, ['xmpp'], { ca: readFileSync(testCa().caFile), autoPong: false });
    const closed = new Promise<number>((resolve) => silent.once('close', (code: number) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      silent.once('open', () => resolve());
      silent.once('error', reject);
    });
    silent.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    assert.equal(await closed, 1006, 'cut without a close handshake');
  });
});
