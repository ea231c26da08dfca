// Stream Management (XEP-0198) end to end over real sockets: enabling, acks, the server's own
// <r/>, <failed/> conditions, the handled-count-too-high stream error, resumption after a dropped
// TCP connection (exactly the unacknowledged stanzas, once), the end of an unresumed session
// (messages to offline storage with a delay stamp, iq requests answered with an error), and
// resumption across a server restart (SIGTERM) and a crash (SIGKILL) — also a crash before the
// client asked for an ack: the server's 'h' still covers what it had handled (no duplicates).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RawClient, streamErrorCondition, xml, type Element } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'sm-pass';
const NS_SM = 'urn:xmpp:sm:3';
const NS_DELAY = 'urn:xmpp:delay';
const MODULES = ['tls', 'saslauth', 'sasl2', 'bind', 'bind2', 'roster', 'disco', 'ping', 'offline', 'smacks'];
const NS_SASL2 = 'urn:xmpp:sasl:2';
const NS_BIND2 = 'urn:xmpp:bind:0';

const isSm = (name: string) => (el: Element) => el.name === name && el.attrs.xmlns === NS_SM;
const failedCondition = (el: Element) => el.getChildElements().find((c) => c.name !== 'text')?.name;

describe('e2e: stream management (XEP-0198)', function () {
  let server: TestServer;
  const clients: RawClient[] = [];
  let seq = 0;

  /** Connected over STARTTLS and authenticated with PLAIN; `bind` false stops before binding. */
  const connect = async (user: string, resource: string, bind = true): Promise<{ c: RawClient; jid: string; features: Element }> => {
    const c = await RawClient.connect(server.c2sPort);
    clients.push(c);
    c.openStream();
    await c.starttls();
    if (!bind) {
      await c.expect((el) => el.name === 'stream:features');
      const payload = Buffer.from(`\u0000${user}\u0000${PASS}`).toString('base64');
      c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${payload}</auth>`);
      await c.expect((el) => el.name === 'success');
      c.restartStream();
      const features = await c.expect((el) => el.name === 'stream:features');
      return { c, jid: '', features };
    }
    const jid = await c.authenticate(user, PASS, resource);
    return { c, jid, features: xml('none') };
  };

  /** Logged in, available, stream management enabled with resumption: the client and its previd. */
  const smClient = async (user: string, resource: string, enableAttrs: Record<string, string> = { resume: 'true' }) => {
    const { c, jid } = await connect(user, resource);
    c.write(xml('presence').toString());
    c.write(xml('enable', { xmlns: NS_SM, ...enableAttrs }).toString());
    const enabled = await c.expect(isSm('enabled'));
    return { c, jid, enabled, previd: String(enabled.attrs.id ?? '') };
  };

  /** A new connection of `user` (authenticated, not bound) resuming `previd` after `h` stanzas. */
  const resume = async (user: string, previd: string, h: number) => {
    const { c } = await connect(user, '', false);
    c.write(xml('resume', { xmlns: NS_SM, previd, h: String(h) }).toString());
    const answer = await c.expect((el) => el.attrs.xmlns === NS_SM && (el.name === 'resumed' || el.name === 'failed'));
    return { c, answer };
  };

  const chat = (to: string, body: string) => xml('message', { to, type: 'chat', id: `m${++seq}` }, xml('body', {}, body));

  const bodies = (els: Element[]) => els.map((m) => m.getChildText('body'));

  /** Every message with a body that arrives within a quiet period. */
  const collect = async (c: RawClient, n: number): Promise<Element[]> => {
    const got: Element[] = [];
    for (let i = 0; i < n; i++) got.push(await c.expect((el) => el.name === 'message' && el.getChild('body') !== undefined));
    await c.expectNothing((el) => el.name === 'message' && el.getChild('body') !== undefined, 400);
    return got;
  };

  /** A sender with SM: after its <a/> the server has handled (and stored) all it sent. */
  const sendAll = async (sender: RawClient, to: string, texts: string[]) => {
    for (const t of texts) sender.write(chat(to, t).toString());
    sender.write(xml('r', { xmlns: NS_SM }).toString());
    await sender.expect(isSm('a'));
  };

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, nurse: PASS, mercutio: PASS },
      config: { modulesEnabled: MODULES, smacks: { requestAckAfterStanzas: 5 } },
    });
  });
  afterEach(function () {
    for (const c of clients.splice(0)) c.socket.destroy();
  });
  after(async function () {
    await server?.destroy();
  });

  it('offers <sm/> only once authenticated, and enables with and without resumption', async function () {
    const pre = await RawClient.connect(server.c2sPort);
    clients.push(pre);
    pre.openStream();
    const first = await pre.expect((el) => el.name === 'stream:features');
    assert.equal(first.getChild('sm', NS_SM), undefined, 'no <sm/> before authentication');
    const { features } = await connect('romeo', '', false);
    assert.ok(features.getChild('sm', NS_SM), '<sm/> once authenticated');

    const { enabled } = await smClient('romeo', 'resumable');
    assert.equal(enabled.attrs.resume, 'true');
    assert.equal(enabled.attrs.max, '600');
    assert.ok(String(enabled.attrs.id).length >= 16, 'an unguessable id');

    const { enabled: short } = await smClient('romeo', 'short', { resume: '1', max: '30' });
    assert.equal(short.attrs.max, '30', 'the client may ask for less');

    const { enabled: plain } = await smClient('romeo', 'plain', {});
    assert.equal(plain.attrs.resume, undefined);
    assert.equal(plain.attrs.id, undefined);
  });

  it('answers <failed/> with unexpected-request before binding and on a second <enable/>, not-authorized before authentication', async function () {
    const { c } = await connect('romeo', '', false);
    c.write(xml('enable', { xmlns: NS_SM, resume: 'true' }).toString());
    assert.equal(failedCondition(await c.expect(isSm('failed'))), 'unexpected-request');

    const { c: twice } = await smClient('romeo', 'twice');
    twice.write(xml('enable', { xmlns: NS_SM }).toString());
    assert.equal(failedCondition(await twice.expect(isSm('failed'))), 'unexpected-request');

    const anon = await RawClient.connect(server.c2sPort);
    clients.push(anon);
    anon.openStream();
    await anon.starttls();
    await anon.expect((el) => el.name === 'stream:features');
    anon.write(xml('enable', { xmlns: NS_SM }).toString());
    assert.equal(failedCondition(await anon.expect(isSm('failed'))), 'not-authorized');
  });

  it('counts what the client sent in <a h/> and asks for acks itself after 5 stanzas', async function () {
    const { c, jid } = await smClient('juliet', 'counting');
    // presence (sent before <enable/>) is not counted; three pings are.
    for (let i = 0; i < 3; i++) c.write(xml('iq', { type: 'get', id: `p${i}`, to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })).toString());
    c.write(xml('r', { xmlns: NS_SM }).toString());
    const a = await c.expect(isSm('a'));
    assert.equal(a.attrs.h, '3');

    // The three ping results and two messages make five unacknowledged stanzas: the server asks.
    const { c: romeo } = await smClient('romeo', 'sender');
    romeo.write(chat(jid, 'one').toString());
    romeo.write(chat(jid, 'two').toString());
    await c.expect(isSm('r'));
    c.write(xml('a', { xmlns: NS_SM, h: '5' }).toString());
    await c.expectNothing((el) => el.name === 'stream:error', 300);
  });

  it('closes the stream with undefined-condition and <handled-count-too-high/> when the client acknowledges more than was sent', async function () {
    const { c } = await smClient('juliet', 'too-high');
    // Nothing was sent since <enabled/>: 2^32 - 1 is not "one less than 0", it is far too many.
    c.write(xml('a', { xmlns: NS_SM, h: '4294967295' }).toString());
    const err = await c.expect((el) => el.name === 'stream:error');
    assert.equal(streamErrorCondition(err), 'undefined-condition');
    const detail = err.getChild('handled-count-too-high', NS_SM);
    assert.ok(detail, err.toString());
    assert.equal(detail.attrs.h, '4294967295');
    assert.equal(detail.attrs['send-count'], '0');
    await c.waitClosed();
  });

  it('answers <r/> without stream management enabled with a stream error', async function () {
    const { c } = await connect('nurse', 'no-sm');
    c.write(xml('r', { xmlns: NS_SM }).toString());
    const err = await c.expect((el) => el.name === 'stream:error');
    assert.equal(streamErrorCondition(err), 'unsupported-stanza-type');
  });

  it('resumes after the TCP connection dropped: exactly the 5 unacknowledged messages arrive, once', async function () {
    const { c: juliet, jid, previd } = await smClient('juliet', 'phone');
    const { c: romeo } = await smClient('romeo', 'desk');
    await sendAll(romeo, jid, ['m1', 'm2', 'm3', 'm4', 'm5']);
    assert.deepEqual(bodies(await collect(juliet, 5)), ['m1', 'm2', 'm3', 'm4', 'm5']);
    const mark = server.output.length;
    juliet.socket.destroy(); // never acknowledged
    await server.waitForOutput(/hibernates \(\d+ unacknowledged\)/, 5000, mark);

    // Sent while the session hibernates: kept for it too.
    await sendAll(romeo, jid, ['m6']);
    const { c: again, answer } = await resume('juliet', previd, 0);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.equal(answer.attrs.previd, previd);
    assert.equal(answer.attrs.h, '0', 'juliet sent nothing but <enable/> and presence before it');
    assert.deepEqual(bodies(await collect(again, 6)), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);

    // The resumed stream is the same session: same full JID, and acks go on from there.
    const ping = xml('iq', { type: 'get', id: 'after-resume', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' }));
    again.write(ping.toString());
    const pong = await again.expect((el) => el.name === 'iq' && el.attrs.id === 'after-resume');
    assert.equal(pong.attrs.to, jid);
    again.write(xml('a', { xmlns: NS_SM, h: '7' }).toString());
    again.write(xml('r', { xmlns: NS_SM }).toString());
    assert.equal((await again.expect(isSm('a'))).attrs.h, '1');
  });

  it('re-sends only what the resuming client had not acknowledged, and replaces a connection still open', async function () {
    const { c: juliet, jid, previd } = await smClient('juliet', 'tablet');
    const { c: romeo } = await smClient('romeo', 'desk2');
    await sendAll(romeo, jid, ['a1', 'a2', 'a3', 'a4', 'a5']);
    await collect(juliet, 5);
    // The old connection is still open (a half-dead mobile link): resuming replaces it.
    const { c: again, answer } = await resume('juliet', previd, 2);
    assert.equal(answer.name, 'resumed');
    assert.deepEqual(bodies(await collect(again, 3)), ['a3', 'a4', 'a5']);
    const err = await juliet.expect((el) => el.name === 'stream:error');
    assert.equal(streamErrorCondition(err), 'conflict');
  });

  it('answers <resume/> with <failed/>: item-not-found for an unknown or foreign previd, unexpected-request once bound', async function () {
    const unknown = await resume('nurse', 'no-such-session-id', 0);
    assert.equal(unknown.answer.name, 'failed');
    assert.equal(failedCondition(unknown.answer), 'item-not-found');

    const { previd } = await smClient('romeo', 'foreign');
    const foreign = await resume('nurse', previd, 0);
    assert.equal(failedCondition(foreign.answer), 'item-not-found', 'another account cannot take it over');

    const { c } = await smClient('nurse', 'bound');
    c.write(xml('resume', { xmlns: NS_SM, previd, h: '0' }).toString());
    assert.equal(failedCondition(await c.expect(isSm('failed'))), 'unexpected-request');
  });

  it('loses nothing when the session is not resumed in time: messages go to offline storage with a delay, iq requests get an error', async function () {
    const { c: juliet, jid } = await smClient('mercutio', 'gone', { resume: 'true', max: '1' });
    const { c: romeo } = await smClient('romeo', 'desk3');
    await sendAll(romeo, jid, ['o1', 'o2', 'o3', 'o4', 'o5']);
    romeo.write(xml('iq', { type: 'get', id: 'v1', to: jid }, xml('query', { xmlns: 'jabber:iq:version' })).toString());
    await collect(juliet, 5);
    await juliet.expect((el) => el.name === 'iq' && el.attrs.id === 'v1');
    const mark = server.output.length;
    juliet.socket.destroy();
    await server.waitForOutput(/was not resumed within 1 s/, 10_000, mark);

    const error = await romeo.expect((el) => el.name === 'iq' && el.attrs.id === 'v1');
    assert.equal(error.attrs.type, 'error');
    assert.ok(error.getChild('error')?.getChild('service-unavailable'), error.toString());

    const { c: next } = await connect('mercutio', 'next');
    next.write(xml('presence').toString());
    const got = await collect(next, 5);
    assert.deepEqual(bodies(got), ['o1', 'o2', 'o3', 'o4', 'o5']);
    for (const m of got) assert.equal(m.getChildren('delay', NS_DELAY).length, 1, `one delay stamp on ${m.toString()}`);
  });

  it('handles an <a/> sent right before </stream:stream> before closing: what it acknowledged is not delivered again', async function () {
    const { c: nurse, jid } = await smClient('nurse', 'leaving');
    const { c: romeo } = await smClient('romeo', 'desk4');
    await sendAll(romeo, jid, ['ack-then-close']);
    await collect(nurse, 1);
    const mark = server.output.length;
    // Handling the message to an offline account takes a storage write; the <a/> and the stream
    // close behind it must wait for it, in order.
    nurse.write(`${chat('juliet@localhost', 'to offline juliet').toString()}<a xmlns='${NS_SM}' h='1'/></stream:stream>`);
    await nurse.waitClosed(10_000);
    const { c: again } = await connect('nurse', 'back');
    again.write(xml('presence').toString());
    await again.expectNothing((el) => el.name === 'message' && el.getChildText('body') === 'ack-then-close', 1500);
    assert.doesNotMatch(server.output.slice(mark), /re-routed \d+ unacknowledged/);
  });

  it('hands what an unresumed session never acknowledged to another available resource, with a delay stamp', async function () {
    const { c: phone, jid } = await smClient('nurse', 'phone', { resume: 'true', max: '1' });
    const { c: desk } = await connect('nurse', 'desk');
    desk.write(xml('presence').toString());
    const { c: romeo } = await smClient('romeo', 'desk6');
    await sendAll(romeo, jid, ['d1', 'd2', 'd3', 'd4', 'd5']);
    await collect(phone, 5);
    const mark = server.output.length;
    phone.socket.destroy();
    await server.waitForOutput(/re-routed 5 unacknowledged message\(s\) of nurse@localhost/, 10_000, mark);
    const got = await collect(desk, 5);
    assert.deepEqual(bodies(got), ['d1', 'd2', 'd3', 'd4', 'd5']);
    for (const m of got) assert.equal(m.getChildren('delay', NS_DELAY).length, 1, `one delay stamp on ${m.toString()}`);
  });

  it('enables inline with Bind2 and resumes inline with SASL2 (no binding, no stream features)', async function () {
    const sasl2 = async (extra: Element[]) => {
      const c = await RawClient.connect(server.c2sPort);
      clients.push(c);
      c.openStream();
      await c.starttls();
      const features = await c.expect((el) => el.name === 'stream:features');
      const inline = features.getChild('authentication', NS_SASL2)?.getChild('inline');
      assert.ok(inline?.getChild('sm', NS_SM), `SASL2 inline <sm/>: ${features.toString()}`);
      assert.ok(inline?.getChild('bind', NS_BIND2)?.getChild('inline')?.getChildren('feature').some((f) => f.attrs.var === NS_SM), 'Bind2 inline feature');
      const r = await c.sasl2({ user: 'nurse', password: PASS, mechanism: 'PLAIN', extra });
      assert.equal(r.outcome.name, 'success', r.outcome.toString());
      return { c, success: r.outcome };
    };
    const { c: first, success } = await sasl2([xml('bind', { xmlns: NS_BIND2 }, xml('tag', {}, 'phone'), xml('enable', { xmlns: NS_SM, resume: 'true' }))]);
    const enabled = success.getChild('bound', NS_BIND2)?.getChild('enabled', NS_SM);
    assert.ok(enabled, success.toString());
    const jid = String(success.getChildText('authorization-identifier'));
    const previd = String(enabled.attrs.id);
    // The features after SASL2 do not offer <sm/> again: it is enabled (xmpp.js would otherwise
    // resume or re-enable, fail, and stop acknowledging).
    const after = await first.expect((el) => el.name === 'stream:features');
    assert.equal(after.getChild('sm', NS_SM), undefined, after.toString());
    first.write(xml('presence').toString());
    const { c: romeo } = await smClient('romeo', 'desk5');
    await sendAll(romeo, jid, ['s1', 's2', 's3', 's4', 's5']);
    await collect(first, 5);
    const mark = server.output.length;
    first.socket.destroy();
    await server.waitForOutput(/hibernates/, 5000, mark);

    const { c: again, success: resumedSuccess } = await sasl2([
      xml('resume', { xmlns: NS_SM, previd, h: '0' }),
      xml('bind', { xmlns: NS_BIND2 }, xml('tag', {}, 'phone')),
    ]);
    const resumed = resumedSuccess.getChild('resumed', NS_SM);
    assert.ok(resumed, resumedSuccess.toString());
    assert.equal(resumed.attrs.previd, previd);
    assert.equal(resumedSuccess.getChild('bound', NS_BIND2), undefined, 'nothing newly bound');
    assert.equal(resumedSuccess.getChildText('authorization-identifier'), jid);
    assert.deepEqual(bodies(await collect(again, 5)), ['s1', 's2', 's3', 's4', 's5']);
    await again.expectNothing((el) => el.name === 'stream:features', 200);
  });

  /** Stops the server (SIGTERM, or SIGKILL: a crash), drops the clients' sockets and starts it again, ready for resumption. */
  async function restart(how: 'SIGTERM' | 'SIGKILL') {
    if (how === 'SIGKILL') server.proc!.kill('SIGKILL');
    await server.stop();
    clients.splice(0).forEach((c) => c.socket.destroy());
    server.output = '';
    await server.start();
    await server.waitForOutput(/session\(s\) of a previous run may resume/);
  }

  async function restartCase(how: 'SIGTERM' | 'SIGKILL') {
    const { c: juliet, jid, previd } = await smClient('juliet', 'restart');
    const { c: romeo } = await smClient('romeo', 'desk4');
    await sendAll(romeo, jid, ['r1', 'r2', 'r3', 'r4', 'r5']);
    await collect(juliet, 5);
    await restart(how);
    const { c: again, answer } = await resume('juliet', previd, 0);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.deepEqual(bodies(await collect(again, 5)), ['r1', 'r2', 'r3', 'r4', 'r5']);
    again.write(xml('a', { xmlns: NS_SM, h: '5' }).toString());
    // Acknowledged: a later drop and resumption re-sends nothing.
    again.write(xml('r', { xmlns: NS_SM }).toString());
    await again.expect(isSm('a'));
    const mark = server.output.length;
    again.socket.destroy();
    await server.waitForOutput(/hibernates/, 5000, mark);
    const { c: third, answer: second } = await resume('juliet', previd, 5);
    assert.equal(second.name, 'resumed');
    await third.expectNothing((el) => el.name === 'message' && el.getChild('body') !== undefined, 500);
  }

  it('resumes across a server restart (SIGTERM): the same 5 messages arrive, each once', async function () {
    await restartCase('SIGTERM');
  });

  it('resumes across a crash (SIGKILL) right after acks: exactly what the client had not acknowledged arrives, once', async function () {
    const { c: juliet, jid, previd } = await smClient('juliet', 'acked');
    const { c: romeo, jid: romeoJid } = await smClient('romeo', 'desk6');
    const texts = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'k10'];
    await sendAll(romeo, jid, texts);
    assert.deepEqual(bodies(await collect(juliet, 10)), texts);
    // Juliet acknowledges the first five, then writes to Romeo: once that arrives, her <a/> was handled.
    juliet.write(xml('a', { xmlns: NS_SM, h: '5' }).toString());
    juliet.write(chat(romeoJid, 'after the ack').toString());
    await romeo.expect((el) => el.name === 'message' && el.getChildText('body') === 'after the ack');
    // Romeo's <a/> comes once everything changed so far is durable, Juliet's ack included.
    romeo.write(xml('r', { xmlns: NS_SM }).toString());
    await romeo.expect(isSm('a'));
    await restart('SIGKILL');
    const { c: again, answer } = await resume('juliet', previd, 5);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.deepEqual(bodies(await collect(again, 5)), ['k6', 'k7', 'k8', 'k9', 'k10']);
  });

  it('resumes across a crash (SIGKILL) before the sender asked for an ack: its h covers what was handled, nothing arrives twice', async function () {
    const { c: juliet, jid, previd: julietPrevid } = await smClient('juliet', 'unasked');
    const { c: romeo, previd } = await smClient('romeo', 'desk7');
    const texts = ['u1', 'u2', 'u3'];
    // Romeo never asks for an ack: the server counted his stanzas only in its memory so far.
    for (const t of texts) romeo.write(chat(jid, t).toString());
    assert.deepEqual(bodies(await collect(juliet, 3)), texts);
    // Juliet's <a/> comes once everything changed so far is durable: Romeo's messages were handled
    // (she has them), so their count is in that batch too.
    juliet.write(xml('a', { xmlns: NS_SM, h: '3' }).toString());
    juliet.write(xml('r', { xmlns: NS_SM }).toString());
    await juliet.expect(isSm('a'));
    await restart('SIGKILL');
    const { c: romeo2, answer } = await resume('romeo', previd, 0);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.equal(answer.attrs.h, '3', 'the server handled all three before the crash');
    const { c: juliet2, answer: julietAnswer } = await resume('juliet', julietPrevid, 3);
    assert.equal(julietAnswer.name, 'resumed', julietAnswer.toString());
    // As a client does (XEP-0198 §5): re-send what the server's h does not cover, then go on.
    for (const t of texts.slice(Number(answer.attrs.h))) romeo2.write(chat(jid, t).toString());
    romeo2.write(chat(jid, 'after the crash').toString());
    assert.deepEqual(bodies(await collect(juliet2, 1)), ['after the crash']);
  });

  it('journals the count of a client\'s stanzas even when they cause nothing else there (sent to a client without SM), and resumes with it after a crash', async function () {
    const { c: juliet, jid } = await connect('juliet', 'nosm');
    juliet.write(xml('presence').toString());
    const { c: romeo, previd } = await smClient('romeo', 'desk8');
    for (const t of ['n1', 'n2', 'n3']) romeo.write(chat(jid, t).toString());
    assert.deepEqual(bodies(await collect(juliet, 3)), ['n1', 'n2', 'n3']);
    // Nobody asked for an ack and nothing else was journaled: the count goes there on its own.
    const journal = path.join(server.dir, 'data', 'smacks', `${encodeURIComponent(server.host)}.journal`);
    const record = JSON.stringify(['i', `romeo/${previd}`, 3]);
    const deadline = Date.now() + 10_000;
    while (!(existsSync(journal) && readFileSync(journal, 'utf8').includes(record))) {
      assert.ok(Date.now() < deadline, `no ${record} in the journal:\n${existsSync(journal) ? readFileSync(journal, 'utf8').slice(-2000) : '(none)'}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await restart('SIGKILL');
    const { answer } = await resume('romeo', previd, 0);
    assert.equal(answer.name, 'resumed', answer.toString());
    assert.equal(answer.attrs.h, '3');
  });

  it('resumes across a crash (SIGKILL) once the sender had its ack', async function () {
    await restartCase('SIGKILL');
  });
});
