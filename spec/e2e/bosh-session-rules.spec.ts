// BOSH session rules over real HTTPS (XEP-0124): pause (§10) — maxpause advertised, held requests
// answered at once, the session kept past its inactivity period and continued with the next rid,
// a pause above maxpause refused; acknowledgements (§9) — ack on responses, report/time when the
// client's ack shows a lost response, which it then fetches again by resending its request;
// overactivity (§11) with the one extra request allowed to pause; too-frequent polling (§12); the
// session's 'content' type (§7.1).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { parse, type Element } from 'ltx';
import { child, HTTPBIND } from '../helpers/bosh.ts';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: Element;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('e2e: BOSH session rules (XEP-0124 §7.1, §9–§12)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let bob: TestClient;
  let agent: https.Agent;

  const post = (body: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: server.httpsPort, servername: 'localhost', method: 'POST', path: '/http-bind', agent, headers: { Host: 'localhost', 'Content-Type': 'text/xml; charset=utf-8' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parse(text) as Element });
          } catch (err) {
            reject(new Error(`HTTP ${res.statusCode}: ${text} (${String(err)})`));
          }
        });
      });
      req.on('error', reject);
      req.end(body);
    });

  /** A session: its rid counter, requests by rid. */
  class Session {
    rid = 1000 + Math.floor(Math.random() * 1e6);
    sid = '';
    created: Answer | undefined;

    async create(attrs = "wait='60' hold='1'"): Promise<Answer> {
      this.created = await post(`<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='${this.rid}' to='localhost' xml:lang='en' ver='1.11' xmpp:version='1.0' ${attrs}/>`);
      this.sid = String(this.created.body.attrs.sid ?? '');
      return this.created;
    }

    body(rid: number, payload = '', attrs = ''): string {
      return `<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' sid='${this.sid}' rid='${rid}' ${attrs}>${payload}</body>`;
    }

    /** The request with this rid. */
    at(rid: number, payload = '', attrs = ''): Promise<Answer> {
      return post(this.body(rid, payload, attrs));
    }

    /**
     * Sends the request with `rid` and waits until the server has taken it (its debug line):
     * requests on different connections would otherwise race. Resolves with the pending answer.
     */
    async taken(rid: number): Promise<{ answer: Promise<Answer> }> {
      const mark = server.output.length;
      const answer = this.at(rid);
      await server.waitForOutput(new RegExp(`BOSH request rid=${rid} `), 10_000, mark);
      return { answer };
    }

    /** The next request. */
    next(payload = '', attrs = ''): Promise<Answer> {
      return this.at(++this.rid, payload, attrs);
    }

    /** PLAIN, restart, bind: the full JID. Each step's answer is in its own response (hold 1, nothing held). */
    async login(user: string, password: string, resource: string, attrs?: string): Promise<string> {
      await this.create(attrs);
      const token = Buffer.from(`\0${user}\0${password}`).toString('base64');
      assert.ok((await this.next(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`)).body.getChild('success'));
      const restarted = await this.next('', "xmpp:restart='true' to='localhost' xml:lang='en'");
      assert.ok(child(restarted.body, 'stream:features')?.getChild('bind'), restarted.text);
      const bound = await this.next(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
      const jid = bound.body.getChild('iq')?.getChild('bind')?.getChildText('jid');
      assert.ok(jid, bound.text);
      return jid;
    }
  }

  /** Resolves when `p` settles, or rejects after `ms` (a held request must have been answered long before its `wait`). */
  const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what} not answered within ${ms} ms`)))]);

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pw', bob: 'bob-pw' },
      config: { tls: testCa().serverTls, bosh: { inactivity: 2, maxPause: 10 } },
      env: { DEBUG: 'cadence:mod:bosh' },
    });
    agent = new https.Agent({ keepAlive: true, ca: readFileSync(testCa().caFile) });
    bob = await login(server, 'bob', 'bob-pw', { presence: true });
  });
  after(async function () {
    agent?.destroy();
    await bob?.stop();
    await server?.destroy();
  });

  describe('pause (§10)', function () {
    it('answers the held request at once, keeps the session past its inactivity period, and goes on with the next rid', async function () {
      const s = new Session();
      const jid = await s.login('alice', 'alice-pw', 'paused');
      assert.equal(s.created!.body.attrs.maxpause, '10');
      assert.equal(s.created!.body.attrs.inactivity, '2');
      // Held for up to 60 s…
      const held = s.next();
      // …until the pause, which answers it and itself at once, without payloads.
      const paused = await s.next('', "pause='8'");
      assert.equal(paused.body.attrs.type, undefined, paused.text);
      assert.equal(paused.body.children.length, 0);
      const answered = await within(held, 15_000, 'the held request');
      assert.equal(answered.body.attrs.type, undefined, answered.text);

      // A message arrives while the client is away.
      await bob.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'while paused')));
      // A session created now, not paused, is dropped after the inactivity period (2 s); by
      // then the paused one has been without requests for longer.
      const mark = server.output.length;
      const control = new Session();
      await control.create();
      await server.waitForOutput(/BOSH session of unauthenticated client from \S+ ended: inactivity/, 20_000, mark);
      assert.equal((await control.next()).body.attrs.condition, 'item-not-found', 'the control session is gone');
      assert.doesNotMatch(server.output.slice(mark), /alice@localhost\/paused/, 'the paused session did not end');

      // The next rid after the pause: the session goes on, with what came in meanwhile.
      const back = await s.next();
      assert.equal(back.body.attrs.type, undefined, back.text);
      assert.equal(back.body.getChild('message')?.getChildText('body'), 'while paused');
      assert.equal((await s.next('', "type='terminate'")).body.attrs.type, 'terminate');
    });

    it('ends a paused session the client does not come back to when its pause is over', async function () {
      const s = new Session();
      await s.login('alice', 'alice-pw', 'gone');
      const mark = server.output.length;
      assert.equal((await s.next('', "pause='3'")).body.attrs.type, undefined);
      await server.waitForOutput(/BOSH session of alice@localhost\/gone from \S+ ended: inactivity/, 20_000, mark);
      assert.equal((await s.next()).body.attrs.condition, 'item-not-found');
    });

    it('refuses a pause longer than maxpause with policy-violation', async function () {
      const s = new Session();
      await s.create();
      const r = await s.next('', "pause='11'");
      assert.equal(r.body.attrs.type, 'terminate');
      assert.equal(r.body.attrs.condition, 'policy-violation');
    });

    it('forwards the payloads of a pause request', async function () {
      const s = new Session();
      const jid = await s.login('alice', 'alice-pw', 'pausing');
      const got = bob.expect((el) => el.name === 'message' && el.getChildText('body') === 'brb');
      const paused = await s.next(`<message xmlns='jabber:client' to='${bob.jid}' type='chat'><body>brb</body></message>`, "pause='5'");
      assert.equal(paused.body.children.length, 0);
      assert.equal((await got).attrs.from, jid);
      assert.equal((await s.next('', "type='terminate'")).body.attrs.type, 'terminate');
    });
  });

  describe('acknowledgements (§9)', function () {
    it('acknowledges requests, reports a response the client did not get, and resends it for its rid', async function () {
      const s = new Session();
      await s.login('alice', 'alice-pw', 'acks', "wait='60' hold='1' ack='1'");
      const before = s.rid;
      // The creation request's rid (three requests ago: auth, restart, bind): acknowledgements are on.
      assert.equal(s.created!.body.attrs.ack, String(before - 3));
      // Held (nothing to send)…
      const r1 = s.next();
      // …until the next request comes (hold 1): its answer acknowledges that request too.
      const r2 = s.next(`<iq xmlns='jabber:client' type='get' id='ping1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      let a2: Answer | undefined;
      void r2.then((a) => (a2 = a));
      const a1 = await within(r1, 15_000, 'the held request');
      assert.equal(a1.body.attrs.ack, String(before + 2), a1.text);
      // The ping's result is in the first response that leaves after it (this one, or the next).
      if (a1.body.getChild('iq')?.attrs.id !== 'ping1') assert.equal((await within(r2, 15_000, 'the ping')).body.getChild('iq')?.attrs.id, 'ping1');
      // The client says it has the responses up to `before` only: the answer to before+1 was lost.
      // Once that answer is older than 2 s, the server's next response reports it at once: the
      // one to before+2 if still held, else this one.
      await sleep(2100);
      // (Not empty: an empty request while one is held, within `polling` s of the last, is §11 overactivity.)
      const r3 = s.next(`<iq xmlns='jabber:client' type='get' id='ping2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`, `ack='${before}'`);
      const a3 = await within(a2 ? r3 : r2, 15_000, 'the reporting response');
      assert.equal(a3.body.attrs.report, String(before + 1), a3.text);
      assert.ok(Number(a3.body.attrs.time) >= 2000, a3.text);
      // The client sends the request of the missing response again: the same response.
      const again = await s.at(before + 1);
      assert.equal(again.text, a1.text);
      assert.equal((await s.next('', "type='terminate'")).body.attrs.type, 'terminate');
      await Promise.all([r2, r3]);
    });
  });

  describe('overactivity (§11) and polling (§12)', function () {
    it('terminates a session with more simultaneous requests than `requests` (policy-violation)', async function () {
      const s = new Session();
      const created = await s.create();
      assert.equal(created.body.attrs.requests, '2');
      const base = s.rid;
      const held = await s.taken(base + 1);
      const ahead = await s.taken(base + 3);
      const third = await s.at(base + 2);
      assert.equal(third.body.attrs.type, 'terminate');
      assert.equal(third.body.attrs.condition, 'policy-violation');
      assert.equal((await held.answer).body.attrs.type, 'terminate');
      assert.equal((await ahead.answer).body.attrs.type, 'terminate');
    });

    it('allows one extra request when it pauses', async function () {
      const s = new Session();
      await s.create();
      const base = s.rid;
      const held = await s.taken(base + 1);
      const ahead = await s.taken(base + 3);
      const pause = await s.at(base + 2, '', "pause='5'");
      assert.equal(pause.body.attrs.type, undefined, pause.text);
      assert.equal((await within(held.answer, 15_000, 'the held request')).body.attrs.type, undefined);
      s.rid = base + 3;
      const end = await s.next('', "type='terminate'");
      assert.equal(end.body.attrs.type, 'terminate');
      assert.equal((await ahead.answer).body.attrs.type, undefined, 'answered before the terminate');
    });

    it('terminates a polling session that polls faster than `polling` (policy-violation)', async function () {
      const s = new Session();
      const created = await s.create("wait='0' hold='0'");
      assert.equal(created.body.attrs.polling, '5');
      assert.equal((await s.next()).body.attrs.type, undefined, 'the first poll is answered, empty');
      const again = await s.next();
      assert.equal(again.body.attrs.type, 'terminate');
      assert.equal(again.body.attrs.condition, 'policy-violation');
    });
  });

  describe('clients without ver (§17.1)', function () {
    const raw = (body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: server.httpsPort, servername: 'localhost', method: 'POST', path: '/http-bind', agent, headers: { Host: 'localhost', 'Content-Type': 'text/xml; charset=utf-8' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });

    it('get HTTP 400, 404 and 403 instead of bad-request, item-not-found and policy-violation', async function () {
      assert.equal((await raw(`<body xmlns='${HTTPBIND}' rid='7' to='localhost' hold='1'/>`)).status, 400, 'no wait');
      const rid = 1000 + Math.floor(Math.random() * 1e6);
      const created = await raw(`<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0' rid='${rid}' to='localhost' wait='60' hold='1'/>`);
      assert.equal(created.status, 200);
      const sid = /sid='([^']+)'/.exec(created.text)?.[1];
      assert.ok(sid, created.text);
      assert.equal((await raw(`<body xmlns='${HTTPBIND}' sid='${sid}' rid='${rid + 9}'/>`)).status, 404, 'out of the window');
      const other = await raw(`<body xmlns='${HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0' rid='${rid}' to='localhost' wait='0' hold='0'/>`);
      const sid2 = /sid='([^']+)'/.exec(other.text)?.[1];
      assert.equal((await raw(`<body xmlns='${HTTPBIND}' sid='${sid2}' rid='${rid + 1}'/>`)).status, 200);
      assert.equal((await raw(`<body xmlns='${HTTPBIND}' sid='${sid2}' rid='${rid + 2}'/>`)).status, 403, 'polling too fast');
    });
  });

  describe("the session's content type (§7.1)", function () {
    it("answers every request of the session with the Content-Type of its 'content' attribute, never as a runnable page", async function () {
      const s = new Session();
      const created = await s.create("wait='60' hold='1' content='text/plain; charset=utf-8'");
      assert.equal(created.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(created.headers['x-content-type-options'], 'nosniff');
      assert.match(String(created.headers['content-security-policy']), /sandbox/);
      const end = await s.next('', "type='terminate'");
      assert.equal(end.headers['content-type'], 'text/plain; charset=utf-8');
      const plain = new Session();
      assert.equal((await plain.create()).headers['content-type'], 'text/xml; charset=utf-8');
      await plain.next('', "type='terminate'");
    });

    it("refuses a 'content' that is not a media type (bad-request)", async function () {
      const r = await new Session().create("wait='60' hold='1' content='text/html, */*'");
      assert.equal(r.body.attrs.condition, 'bad-request');
    });
  });
});
