// BOSH (XEP-0124, XEP-0206) at /http-bind over real HTTPS: session creation, SASL, stream restart,
// bind, chatting with a TCP client through held requests, rid retransmission and the rid window,
// unknown sessions, terminate, CORS preflight for browsers, and host-meta listing the endpoint.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parse, type Element } from 'ltx';
import { BoshClient, boshPost, child, closeBoshAgent, HTTPBIND } from '../helpers/bosh.ts';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

describe('e2e: BOSH (XEP-0124, XEP-0206)', function () {
  let server: TestServer;
  let bob: TestClient;
  let agent: https.Agent;

  const request = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: server.httpsPort, servername: 'localhost', method, path, agent, headers: { Host: 'localhost', ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const post = (body: string): Promise<Element> => boshPost(server.httpsPort, body);
  const Bosh = class extends BoshClient {
    constructor() {
      super(server.httpsPort);
    }
  };

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pw', bob: 'bob-pw' }, config: { tls: testCa().serverTls } });
    agent = new https.Agent({ keepAlive: true, ca: readFileSync(testCa().caFile) });
    bob = await login(server, 'bob', 'bob-pw', { presence: true });
  });
  after(async function () {
    agent?.destroy();
    closeBoshAgent();
    await bob?.stop();
    await server?.destroy();
  });

  it('creates a session with the negotiated attributes and the stream features (XEP-0124 §7, XEP-0206 §3)', async function () {
    const b = new Bosh();
    const r = await b.create("wait='30' hold='3' ack='1'");
    assert.equal(r.attrs.xmlns, HTTPBIND);
    assert.ok(String(r.attrs.sid).length >= 16);
    assert.equal(r.attrs.wait, '30');
    assert.equal(r.attrs.hold, '1', 'hold capped at maxHold');
    assert.equal(r.attrs.requests, '2');
    assert.equal(r.attrs.from, 'localhost');
    assert.equal(r.attrs['xmpp:version'], '1.0');
    assert.equal(r.attrs['xmpp:restartlogic'], 'true');
    assert.equal(r.attrs.ack, String(b.rid));
    assert.ok(child(r, 'stream:features')?.getChild('mechanisms'));
    assert.equal((await b.send('', "type='terminate'")).attrs.type, 'terminate');
  });

  it('logs in (SASL, restart, bind) and chats with a TCP client through held requests', async function () {
    const b = new Bosh();
    const jid = await b.login('alice', 'alice-pw');
    assert.match(jid, /^alice@localhost\/bosh/);
    const sent = b.send(`<presence xmlns='jabber:client'/><message xmlns='jabber:client' to='${bob.jid}' type='chat'><body>hi over BOSH</body></message>`);
    const got = await bob.expect((s) => s.name === 'message' && s.getChildText('body') === 'hi over BOSH');
    assert.equal(got.attrs.from, jid);
    await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'hi back')));
    // The held request (or the next) carries the answer.
    let messages = (await sent).getChildren('message');
    for (let i = 0; i < 5 && messages.length === 0; i++) messages = (await b.send()).getChildren('message');
    assert.equal(messages[0]?.getChildText('body'), 'hi back');
    assert.equal(messages[0]?.attrs.xmlns, 'jabber:client');
    const end = await b.send(`<presence xmlns='jabber:client' type='unavailable'/>`, "type='terminate'");
    assert.equal(end.attrs.type, 'terminate');
  });

  it('answers a repeated rid with the same response, and a rid beyond the window with item-not-found (§14)', async function () {
    const b = new Bosh();
    await b.create();
    const first = await b.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0alice-pw').toString('base64')}</auth>`);
    assert.ok(first.getChild('success'));
    const again = await post(b.raw(b.rid, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0alice-pw').toString('base64')}</auth>`));
    assert.equal(again.toString(), first.toString(), 'the buffered response, not a second authentication');
    const far = await post(b.raw(b.rid + 5));
    assert.equal(far.attrs.type, 'terminate');
    assert.equal(far.attrs.condition, 'item-not-found');
  });

  it('answers an unknown sid with item-not-found, a malformed body with bad-request, a creation without to with improper-addressing', async function () {
    const unknown = await post(`<body xmlns='${HTTPBIND}' sid='nope' rid='1'/>`);
    assert.equal(unknown.attrs.condition, 'item-not-found');
    const bad = await post(`<body xmlns='urn:wrong' rid='1' to='localhost' wait='2' hold='1' ver='1.11'/>`);
    assert.equal(bad.attrs.condition, 'bad-request');
    const unknownHost = await post(`<body xmlns='${HTTPBIND}' rid='1' to='elsewhere.example' wait='2' hold='1' ver='1.11'/>`);
    assert.equal(unknownHost.attrs.condition, 'host-unknown');
    const noHost = await post(`<body xmlns='${HTTPBIND}' rid='1' wait='2' hold='1' ver='1.11'/>`);
    assert.equal(noHost.attrs.condition, 'improper-addressing', 'XEP-0124 §17.2');
  });

  it('terminates a session created over HTTPS when a request of it comes over plain HTTP (§15.1)', async function () {
    const b = new Bosh();
    await b.create();
    const plain = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.httpPort, method: 'POST', path: '/http-bind', headers: { Host: 'localhost', 'Content-Type': 'text/xml' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(b.raw(++b.rid));
    });
    const body = parse(plain) as Element;
    assert.equal(body.attrs.type, 'terminate');
    assert.equal(body.attrs.condition, 'policy-violation');
    assert.equal((await b.send()).attrs.type, 'terminate', 'the session is over, over HTTPS too');
  });

  it('answers CORS preflights from browsers (any origin by default)', async function () {
    const r = await request('OPTIONS', '/http-bind', undefined, { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.match(String(r.headers['access-control-allow-methods']), /POST/);
    assert.match(String(r.headers['access-control-allow-headers']), /content-type/i);
  });

  it('is listed in host-meta', async function () {
    const r = await request('GET', '/.well-known/host-meta.json', undefined, { Host: `localhost:${server.httpsPort}` });
    const links = (JSON.parse(r.text) as { links: { rel: string; href: string }[] }).links;
    assert.deepEqual(links.find((l) => l.rel === 'urn:xmpp:alt-connections:xbosh'), { rel: 'urn:xmpp:alt-connections:xbosh', href: `https://localhost:${server.httpsPort}/http-bind` });
  });
});
