// SCRAM channel binding over the web transports (doc/web.md, "Channel binding over WebSocket and
// BOSH"): wss:// straight to the server binds to the TLS connection under the WebSocket exactly as
// TCP does (tls-exporter, tls-server-end-point; SASL and SASL2); BOSH over https:// offers only
// tls-server-end-point, the one type the same on every connection of a session; behind a trusted
// proxy (X-Forwarded-*) and on plain HTTP nothing is offered and the GS2 'y' flag is honest. The
// GS2 flags follow doc/authentication.md's table in both policies, including 'n' with a -PLUS
// mechanism (what StanzaJS sends) accepted by `compatible` only.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { parse, type Element } from 'ltx';
import { endPointHash } from '../../core/net/connection.ts';
import { child, HTTPBIND } from '../helpers/bosh.ts';
import { scramHash, ScramClient } from '../helpers/sasl.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { WsClient } from '../helpers/ws.ts';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_SASL2 = 'urn:xmpp:sasl:2';
const NS_CB = 'urn:xmpp:sasl-cb:0';
const USERS = { alice: 'secret' };

function binding(s: TLSSocket | undefined, type: string): Buffer {
  if (!s) throw new Error('no TLS connection');
  if (type === 'tls-exporter') return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  if (type === 'tls-server-end-point') {
    const raw = s.getPeerCertificate().raw;
    return createHash(endPointHash(raw)).update(raw).digest();
  }
  throw new Error(`no ${type} here`);
}

interface Offer {
  mechanisms: string[];
  bindings: string[] | undefined;
}

function offerOf(features: Element, sasl2 = false): Offer {
  const list = sasl2 ? features.getChild('authentication', NS_SASL2) : features.getChild('mechanisms', NS_SASL);
  return {
    mechanisms: list?.getChildren('mechanism').map((m) => m.text()) ?? [],
    bindings: features.getChild('sasl-channel-binding', NS_CB)?.getChildren('channel-binding').map((b) => String(b.attrs.type)),
  };
}

type Outcome = { status: 'success' } | { status: 'failure'; condition: string };
const failure = (el: Element): Outcome => ({ status: 'failure', condition: el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text')?.name ?? '' });

/** One SCRAM exchange: `exchange` sends an element and resolves with the server's answer. */
async function scram(exchange: (xml: string) => Promise<Element>, opts: { mechanism: string; gs2: string; cbData?: Buffer; sasl2?: boolean }): Promise<Outcome> {
  const c = new ScramClient(scramHash(opts.mechanism)!, 'alice', USERS.alice, opts.gs2, opts.cbData);
  const ns = opts.sasl2 ? NS_SASL2 : NS_SASL;
  const first = c.first().toString('base64');
  const start = opts.sasl2 ? `<authenticate xmlns='${ns}' mechanism='${opts.mechanism}'><initial-response>${first}</initial-response></authenticate>` : `<auth xmlns='${ns}' mechanism='${opts.mechanism}'>${first}</auth>`;
  const challenge = await exchange(start);
  if (challenge.name !== 'challenge') return failure(challenge);
  const last = await exchange(`<response xmlns='${ns}'>${c.final(Buffer.from(challenge.text(), 'base64')).toString('base64')}</response>`);
  if (last.name !== 'success') return failure(last);
  const serverFinal = opts.sasl2 ? last.getChildText('additional-data') ?? '' : last.text();
  assert.ok(c.verify(Buffer.from(serverFinal, 'base64')), 'the server signature verifies');
  return { status: 'success' };
}

describe('e2e: channel binding over WebSocket and BOSH', function () {
  let server: TestServer;
  let strict: TestServer;
  const sockets: WsClient[] = [];
  let agent: https.Agent;

  before(async function () {
    [server, strict] = await Promise.all([
      // other.test has its own (generated) certificate: another certificate on the same listener.
      startServer({ users: USERS, config: { virtualHosts: { localhost: { tls: testCa().serverTls }, 'other.test': {} } } }),
      // Plain ws:// allowed here, to show that no binding is offered there either.
      startServer({ users: USERS, config: { tls: testCa().serverTls, channelBindingPolicy: 'strict', c2sRequireEncryption: false } }),
    ]);
    agent = new https.Agent({ keepAlive: true, ca: readFileSync(testCa().caFile) });
  });
  afterEach(() => {
    for (const c of sockets.splice(0)) c.close();
  });
  after(async function () {
    agent?.destroy();
    await Promise.all([server?.destroy(), strict?.destroy()]);
  });

  /** A wss:// (or ws://) stream, opened; its features. */
  const ws = async (s: TestServer, headers?: Record<string, string>, plain = false) => {
    const c = await WsClient.connect(plain ? `ws://localhost:${s.httpPort}/xmpp-websocket` : `wss://localhost:${s.httpsPort}/xmpp-websocket`, { headers });
    sockets.push(c);
    await c.open();
    const features = await c.next((el) => el.name === 'stream:features');
    const exchange = (xml: string) => {
      c.send(xml);
      return c.next((el) => ['challenge', 'success', 'failure'].includes(el.name));
    };
    return { c, features, exchange };
  };

  describe('WebSocket (wss:// to the server)', function () {
    it('offers the -PLUS mechanisms with tls-exporter and tls-server-end-point (XEP-0440), in SASL and SASL2', async function () {
      const { c, features } = await ws(server);
      assert.equal(c.tlsSocket?.getProtocol(), 'TLSv1.3');
      const sasl = offerOf(features);
      assert.ok(sasl.mechanisms.includes('SCRAM-SHA-256-PLUS'), sasl.mechanisms.join(' '));
      assert.deepEqual(sasl.bindings, ['tls-exporter', 'tls-server-end-point']);
      assert.ok(offerOf(features, true).mechanisms.includes('SCRAM-SHA-256-PLUS'));
    });

    for (const type of ['tls-exporter', 'tls-server-end-point']) {
      it(`logs in with SCRAM-SHA-256-PLUS and p=${type}`, async function () {
        const { c, exchange } = await ws(server);
        assert.deepEqual(await scram(exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: `p=${type}`, cbData: binding(c.tlsSocket, type) }), { status: 'success' });
      });
    }

    it('logs in through SASL2 with SCRAM-SHA-512-PLUS and tls-exporter', async function () {
      const { c, exchange } = await ws(server);
      assert.deepEqual(await scram(exchange, { mechanism: 'SCRAM-SHA-512-PLUS', gs2: 'p=tls-exporter', cbData: binding(c.tlsSocket, 'tls-exporter'), sasl2: true }), { status: 'success' });
    });

    it('refuses the binding data of another WebSocket connection (not-authorized)', async function () {
      const other = await ws(server);
      const { exchange } = await ws(server);
      const r = await scram(exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: 'p=tls-exporter', cbData: binding(other.c.tlsSocket, 'tls-exporter') });
      assert.deepEqual(r, { status: 'failure', condition: 'not-authorized' });
    });

    it("accepts 'n' with a -PLUS mechanism (StanzaJS) in the compatible policy, refuses it in strict", async function () {
      assert.deepEqual(await scram((await ws(server)).exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: 'n' }), { status: 'success' });
      assert.deepEqual(await scram((await ws(strict)).exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: 'n' }), { status: 'failure', condition: 'malformed-request' });
    });

    it("takes 'y' (TLS 1.3, -PLUS offered) as doc/authentication.md says: compatible accepts, strict refuses", async function () {
      assert.deepEqual(await scram((await ws(server)).exchange, { mechanism: 'SCRAM-SHA-256', gs2: 'y' }), { status: 'success' });
      assert.deepEqual(await scram((await ws(strict)).exchange, { mechanism: 'SCRAM-SHA-256', gs2: 'y' }), { status: 'failure', condition: 'not-authorized' });
    });

    it("offers no -PLUS behind a trusted proxy (X-Forwarded-*), where 'y' is honest even in strict", async function () {
      const { features } = await ws(strict, { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' });
      const offer = offerOf(features);
      assert.ok(offer.mechanisms.includes('SCRAM-SHA-256'), offer.mechanisms.join(' '));
      assert.ok(!offer.mechanisms.some((m) => m.endsWith('-PLUS')), offer.mechanisms.join(' '));
      assert.equal(offer.bindings, undefined);
      assert.ok(!offerOf(features, true).mechanisms.some((m) => m.endsWith('-PLUS')));
      const { exchange } = await ws(strict, { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' });
      assert.deepEqual(await scram(exchange, { mechanism: 'SCRAM-SHA-256', gs2: 'y' }), { status: 'success' });
    });
  });

  describe('plain HTTP', function () {
    it("offers no -PLUS on ws://, and accepts 'y' there even in strict", async function () {
      const { c, features, exchange } = await ws(strict, undefined, true);
      assert.equal(c.tlsSocket, undefined);
      const offer = offerOf(features);
      assert.ok(offer.mechanisms.includes('SCRAM-SHA-256'), offer.mechanisms.join(' '));
      assert.ok(!offer.mechanisms.some((m) => m.endsWith('-PLUS')), offer.mechanisms.join(' '));
      assert.equal(offer.bindings, undefined);
      assert.deepEqual(await scram(exchange, { mechanism: 'SCRAM-SHA-256', gs2: 'y' }), { status: 'success' });
    });
  });

  describe('BOSH (https:// to the server)', function () {
    /** One request; resolves with the body and the TLS connection it went over. */
    const post = (s: TestServer, body: string, headers: Record<string, string> = {}) =>
      new Promise<{ body: Element; socket: TLSSocket }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: s.httpsPort, servername: 'localhost', method: 'POST', path: '/http-bind', agent, headers: { Host: 'localhost', 'Content-Type': 'text/xml; charset=utf-8', ...headers } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ body: parse(text) as Element, socket: socket! }));
        });
        let socket: TLSSocket | undefined;
        req.once('socket', (s) => (socket = s as TLSSocket));
        req.on('error', reject);
        req.end(body);
      });
    const opened: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      await Promise.allSettled(opened.splice(0).map((end) => end()));
    });
    const session = async (s: TestServer, headers: Record<string, string> = {}) => {
      let rid = 1000 + Math.floor(Math.random() * 1e6);
      const created = await post(s, `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='${rid}' to='localhost' xml:lang='en' ver='1.11' xmpp:version='1.0' wait='5' hold='1'/>`, headers);
      const sid = String(created.body.attrs.sid);
      const features = child(created.body, 'stream:features')!;
      assert.ok(features, `no features: ${created.body.toString()}`);
      const exchange = async (xml: string) => {
        const r = await post(s, `<body xmlns='${HTTPBIND}' sid='${sid}' rid='${++rid}'>${xml}</body>`, headers);
        const el = r.body.getChildren('challenge')[0] ?? r.body.getChildren('success')[0] ?? r.body.getChildren('failure')[0];
        assert.ok(el, r.body.toString());
        return el;
      };
      // Ended after the test (BOSH sessions count against connectionsPerAddress until they end).
      opened.push(() => post(s, `<body xmlns='${HTTPBIND}' sid='${sid}' rid='${++rid}' type='terminate'/>`, headers));
      return { features, socket: created.socket, exchange };
    };

    it('offers the -PLUS mechanisms with tls-server-end-point only, and logs in with it', async function () {
      const { features, socket, exchange } = await session(server);
      const offer = offerOf(features);
      assert.ok(offer.mechanisms.includes('SCRAM-SHA-256-PLUS'), offer.mechanisms.join(' '));
      assert.deepEqual(offer.bindings, ['tls-server-end-point']);
      assert.deepEqual(await scram(exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: 'p=tls-server-end-point', cbData: binding(socket, 'tls-server-end-point') }), { status: 'success' });
    });

    it('logs in through SASL2 with SCRAM-SHA-512-PLUS and tls-server-end-point', async function () {
      const { features, socket, exchange } = await session(server);
      assert.ok(offerOf(features, true).mechanisms.includes('SCRAM-SHA-512-PLUS'));
      const r = await scram(exchange, { mechanism: 'SCRAM-SHA-512-PLUS', gs2: 'p=tls-server-end-point', cbData: binding(socket, 'tls-server-end-point'), sasl2: true });
      assert.deepEqual(r, { status: 'success' });
    });

    it('refuses tls-exporter (unique to one of the session’s connections) and a wrong certificate hash', async function () {
      const a = await session(server);
      const r = await scram(a.exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: 'p=tls-exporter', cbData: binding(a.socket, 'tls-exporter') });
      assert.deepEqual(r, { status: 'failure', condition: 'not-authorized' });
      const b = await session(server);
      const wrong = Buffer.alloc(32, 7);
      assert.deepEqual(await scram(b.exchange, { mechanism: 'SCRAM-SHA-256-PLUS', gs2: 'p=tls-server-end-point', cbData: wrong }), { status: 'failure', condition: 'not-authorized' });
    });

    it('closes the connection of a request over another certificate than its session’s, and the session goes on (§20.1)', async function () {
      const { exchange } = await session(server);
      const second = await post(server, `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='1' to='localhost' xml:lang='en' ver='1.11' xmpp:version='1.0' wait='5' hold='1'/>`);
      const sid = String(second.body.attrs.sid ?? '');
      assert.ok(sid, second.body.toString());
      // A request of that second session over a connection presenting other.test's certificate.
      const other = new https.Agent({ rejectUnauthorized: false });
      try {
        await assert.rejects(
          new Promise((resolve, reject) => {
            const req = https.request({ host: '127.0.0.1', port: server.httpsPort, servername: 'other.test', method: 'POST', path: '/http-bind', agent: other, headers: { Host: 'localhost', 'Content-Type': 'text/xml' } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode));
            });
            req.on('error', reject);
            req.end(`<body xmlns='${HTTPBIND}' sid='${sid}' rid='2'/>`);
          }),
          /socket hang up|ECONNRESET/,
        );
      } finally {
        other.destroy();
      }
      // The same request over the session's certificate is answered: the session was not ended.
      const again = await post(server, `<body xmlns='${HTTPBIND}' sid='${sid}' rid='2' type='terminate'/>`);
      assert.equal(again.body.attrs.type, 'terminate');
      assert.equal(again.body.attrs.condition, undefined, again.body.toString());
      // The first session is untouched too.
      assert.equal((await exchange(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`)).name, 'success');
    });

    it("offers no -PLUS behind a trusted proxy, and accepts 'y' there", async function () {
      const headers = { 'X-Forwarded-For': '203.0.113.8', 'X-Forwarded-Proto': 'https' };
      const { features, exchange } = await session(strict, headers);
      const offer = offerOf(features);
      assert.ok(offer.mechanisms.includes('SCRAM-SHA-256'), offer.mechanisms.join(' '));
      assert.ok(!offer.mechanisms.some((m) => m.endsWith('-PLUS')), offer.mechanisms.join(' '));
      assert.equal(offer.bindings, undefined);
      assert.deepEqual(await scram(exchange, { mechanism: 'SCRAM-SHA-256', gs2: 'y' }), { status: 'success' });
    });
  });
});
