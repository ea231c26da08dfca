// Stream management (XEP-0198) over WebSocket and BOSH, as web clients use it: a WebSocket
// session whose socket is destroyed hibernates and resumes on a new WebSocket with exactly what
// it had not acknowledged; a TCP session resumes on a WebSocket (a client switching transports)
// and is the same session there; a WebSocket <close/> waits for the <a/> sent before it; over
// BOSH <enable/>, <r/> and <a/> work, a session dropped for inactivity hibernates and resumes on a
// WebSocket, and without stream management what the dropped BOSH session still held goes to
// offline storage.
import assert from 'node:assert/strict';
import { login, RawClient, xml, type Element, type TestClient } from '../helpers/client.ts';
import { BoshClient, closeBoshAgent } from '../helpers/bosh.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { FRAMING, WsClient } from '../helpers/ws.ts';

const PASS = 'web-sm-pass';
const NS_SM = 'urn:xmpp:sm:3';
const USERS = { romeo: PASS, juliet: PASS, nurse: PASS, mercutio: PASS, tybalt: PASS, benvolio: PASS, paris: PASS };

const isSm = (name: string) => (el: Element) => el.name === name && el.attrs.xmlns === NS_SM;
const hasBody = (el: Element) => el.name === 'message' && el.getChild('body') !== undefined;
const bodies = (els: Element[]) => els.map((m) => m.getChildText('body'));

describe('e2e: stream management over WebSocket and BOSH', function () {
  let server: TestServer;
  let romeo: TestClient;
  const sockets: WsClient[] = [];
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];
  let url: string;

  const ws = async () => {
    const c = await WsClient.connect(url);
    sockets.push(c);
    return c;
  };

  /** Over WebSocket: logged in, available, stream management enabled with resumption. */
  const wsSm = async (user: string, resource: string) => {
    const c = await ws();
    const jid = await c.login(user, PASS, resource);
    c.send(`<presence xmlns='jabber:client'/>`);
    c.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const enabled = await c.next(isSm('enabled'));
    assert.equal(enabled.attrs.resume, 'true');
    return { c, jid, previd: String(enabled.attrs.id) };
  };

  /** A new WebSocket of `user` (authenticated, not bound) resuming `previd` after `h` stanzas. */
  const wsResume = async (user: string, previd: string, h: number) => {
    const c = await ws();
    await c.authenticate(user, PASS);
    c.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='${h}'/>`);
    const answer = await c.next((el) => el.attrs.xmlns === NS_SM && (el.name === 'resumed' || el.name === 'failed'));
    return { c, answer };
  };

  /** `n` messages with a body, then none for a while. */
  const collect = async (c: WsClient, n: number): Promise<Element[]> => {
    const got: Element[] = [];
    for (let i = 0; i < n; i++) got.push(await c.next(hasBody));
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(c.frames.filter(hasBody).map(String), [], 'nothing more');
    return got;
  };

  const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));
  /** Romeo sends and the server has handled it all (an iq round trip behind them). */
  const sendAll = async (to: string, texts: string[]) => {
    for (const t of texts) await romeo.send(chat(to, t));
    await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  };

  before(async function () {
    this.timeout(180_000);
    server = await startServer({ users: USERS, config: { tls: testCa().serverTls, bosh: { inactivity: 2 }, smacks: { requestAckAfterStanzas: 5 } } });
    url = `wss://localhost:${server.httpsPort}/xmpp-websocket`;
    romeo = await login(server, 'romeo', PASS, { resource: 'desk' });
  });
  afterEach(async function () {
    for (const c of sockets.splice(0)) c.ws.terminate();
    for (const r of raws.splice(0)) r.socket.destroy();
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    closeBoshAgent();
    await romeo?.stop();
    await server?.destroy();
  });

  it('resumes a WebSocket session whose socket was destroyed on a new WebSocket: exactly the unacknowledged messages, once', async function () {
    const { c: juliet, jid, previd } = await wsSm('juliet', 'phone');
    await sendAll(jid, ['m1', 'm2', 'm3', 'm4', 'm5']);
    assert.deepEqual(bodies(await collect(juliet, 5)), ['m1', 'm2', 'm3', 'm4', 'm5']);
    const mark = server.output.length;
    juliet.ws.terminate(); // no <close/>, nothing acknowledged
    await server.waitForOutput(/juliet@localhost\/phone hibernates \(5 unacknowledged\)/, 10_000, mark);
    await sendAll(jid, ['m6']);

    const { c: again, answer } = await wsResume('juliet', previd, 2);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.equal(answer.attrs.previd, previd);
    assert.deepEqual(bodies(await collect(again, 4)), ['m3', 'm4', 'm5', 'm6']);
    // The same session: its full JID, and what it sends comes from it.
    again.send(`<iq xmlns='jabber:client' type='get' id='after-resume' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal((await again.next((el) => el.attrs.id === 'after-resume')).attrs.to, jid);
  });

  it('resumes a TCP session on a WebSocket (the client switched transports); the WebSocket then carries that session', async function () {
    const tcp = await RawClient.connect(server.c2sPort);
    raws.push(tcp);
    tcp.openStream();
    await tcp.starttls();
    const jid = await tcp.authenticate('nurse', PASS, 'switcher');
    tcp.write(xml('presence').toString());
    tcp.write(xml('enable', { xmlns: NS_SM, resume: 'true' }).toString());
    const previd = String((await tcp.expect(isSm('enabled'))).attrs.id);
    await sendAll(jid, ['t1', 't2']);
    await tcp.expect((el) => el.name === 'message' && el.getChildText('body') === 't2');
    const mark = server.output.length;
    tcp.socket.destroy();
    await server.waitForOutput(/nurse@localhost\/switcher hibernates/, 10_000, mark);

    const { c: web, answer } = await wsResume('nurse', previd, 0);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.deepEqual(bodies(await collect(web, 2)), ['t1', 't2']);
    web.send(`<message xmlns='jabber:client' to='${romeo.jid}' type='chat'><body>from the web now</body></message>`);
    const got = await romeo.expect((s) => s.name === 'message' && s.getChildText('body') === 'from the web now');
    assert.equal(got.attrs.from, jid);
    // Dropping the WebSocket hibernates the session again (it is the resumed one).
    const mark2 = server.output.length;
    web.ws.terminate();
    await server.waitForOutput(/nurse@localhost\/switcher hibernates/, 10_000, mark2);
  });

  it('handles an <a/> sent right before the WebSocket <close/> before closing: what it acknowledged is not delivered again', async function () {
    const { c: nurse, jid } = await wsSm('nurse', 'leaving');
    await sendAll(jid, ['ack-then-close']);
    await collect(nurse, 1);
    const mark = server.output.length;
    // Handling the message to an offline account takes a storage write; the <a/> and the
    // <close/> behind it must wait for it, in order.
    nurse.send(`<message xmlns='jabber:client' to='mercutio@localhost' type='chat'><body>to offline mercutio</body></message>`);
    nurse.send(`<a xmlns='${NS_SM}' h='1'/>`);
    nurse.send(`<close xmlns='${FRAMING}'/>`);
    await nurse.next((el) => el.name === 'close');
    assert.equal(await nurse.closed, 1000);
    const back = await ws();
    await back.login('nurse', PASS, 'back');
    back.send(`<presence xmlns='jabber:client'/>`);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(back.frames.filter((el) => el.name === 'message' && el.getChildText('body') === 'ack-then-close').length, 0);
    assert.doesNotMatch(server.output.slice(mark), /re-routed \d+ unacknowledged/);
  });

  it('over BOSH: enables, counts in <a/>, and a session dropped for inactivity resumes on a WebSocket', async function () {
    // Waits for the BOSH inactivity period (2 s) behind a held request (wait 2 s).
    this.timeout(60_000);
    const b = new BoshClient(server.httpsPort);
    const jid = await b.login('tybalt', PASS);
    await b.send(`<presence xmlns='jabber:client'/>`);
    const r = await b.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const enabled = r.getChild('enabled', NS_SM) ?? (await b.until(isSm('enabled'))).found;
    assert.equal(enabled.attrs.resume, 'true');
    const previd = String(enabled.attrs.id);
    await sendAll(jid, ['b1', 'b2']);
    const { found, seen } = await b.until((el) => el.name === 'message' && el.getChildText('body') === 'b2');
    assert.deepEqual(bodies([...seen.filter(hasBody), found]), ['b1', 'b2']);
    const a = await b.send(`<iq xmlns='jabber:client' type='get' id='bp' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='${NS_SM}'/>`)
      .then(async (r) => r.getChild('a', NS_SM) ?? (await b.until(isSm('a'))).found);
    assert.equal(a.attrs.h, '1', 'the ping, counted');
    const mark = server.output.length;
    // The client stops polling (the browser tab was suspended).
    await server.waitForOutput(/tybalt@localhost\/bosh hibernates \(\d+ unacknowledged\)/, 15_000, mark);
    await sendAll(jid, ['b3']);
    const { c: web, answer } = await wsResume('tybalt', previd, 2);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.deepEqual(bodies((await collect(web, 1))), ['b3']);
  });

  it('over BOSH without stream management: what a session dropped for inactivity still held goes to offline storage', async function () {
    // Waits for the BOSH inactivity period (2 s) behind a held request (wait 2 s).
    this.timeout(60_000);
    const b = new BoshClient(server.httpsPort);
    const jid = await b.login('benvolio', PASS, 'web');
    // Available; then no request is outstanding any more.
    await b.send(`<presence xmlns='jabber:client'/>`);
    const mark = server.output.length;
    await sendAll(jid, ['while away']);
    await server.waitForOutput(/benvolio@localhost\/web did not read: 1 messages routed again/, 15_000, mark);
    const later = await login(server, 'benvolio', PASS, { resource: 'back', presence: true });
    clients.push(later);
    const got = await later.expect((s) => s.name === 'message' && s.getChildText('body') === 'while away', 10_000);
    assert.equal(got.attrs.from?.split('/')[0], 'romeo@localhost');
  });
});
