// SASL2 (XEP-0388) with SCRAM upgrade tasks (XEP-0480), Bind2 (XEP-0386) and FAST (XEP-0484) on
// raw sockets, and the default @xmpp/client, which uses all three when offered.
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { client as xmppClient } from '@xmpp/client';
import { Element, RawClient, streamErrorCondition, TestClient, xml, type Sasl2Options } from '../helpers/client.ts';
import { htInitiator } from '../helpers/sasl.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { startXmppJs } from '../helpers/xmppjs-start.ts';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_SASL2 = 'urn:xmpp:sasl:2';
const NS_BIND2 = 'urn:xmpp:bind:0';
const NS_FAST = 'urn:xmpp:fast:0';
const NS_UPGRADE = 'urn:xmpp:sasl:upgrade:0';
const NS_ECHO = 'urn:example:bind2-echo';
const FIXTURES = path.join(ROOT, 'spec', 'fixtures', 'modules');
const USERS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', dave: 'dave-pw', erin: 'erin-pw', frank: 'frank-pw' };

const bind = (tag?: string, ...children: Element[]) => xml('bind', { xmlns: NS_BIND2 }, ...(tag ? [xml('tag', {}, tag)] : []), ...children);
const requestToken = (mechanism = 'HT-SHA-256-NONE') => xml('request-token', { xmlns: NS_FAST, mechanism });
/** The RFC 6120 condition of a SASL1 or SASL2 <failure/>. */
const condition = (failure: Element) => failure.getChildElements().find((c) => c.getNS() === NS_SASL && c.name !== 'text')?.name;
const authzid = (success: Element) => success.getChildText('authorization-identifier');
const tokenOf = (success: Element) => success.getChild('token', NS_FAST)?.attrs as { token: string; expiry: string } | undefined;

describe('e2e: SASL2, Bind2 and FAST', function () {
  let server: TestServer;
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];

  before(async function () {
    server = await startServer({
      users: USERS,
      config: {
        pluginPaths: [FIXTURES],
        virtualHosts: { localhost: { modulesEnabled: ['bind2_echo'] } },
      },
    });
  });
  afterEach(async function () {
    for (const c of raws.splice(0)) c.close();
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  /**
   * A raw client over direct TLS (TLS 1.3) whose stream features were read. Tests that fail on
   * purpose connect `from` an address of their own: the core throttles addresses with failures.
   */
  const connect = async (directTls = true, from?: string) => {
    const c = await RawClient.connect(directTls ? server.directTlsPort : server.c2sPort, { directTls, localAddress: from });
    raws.push(c);
    c.openStream();
    const features = await c.expect((el) => el.name === 'stream:features');
    return { c, features };
  };

  /** Authenticate on a fresh stream; returns the client, the outcome and the features that followed a success. */
  const sasl2 = async (opts: Sasl2Options & { from?: string }) => {
    const { c } = await connect(true, opts.from);
    const r = await c.sasl2(opts);
    const features = r.outcome.name === 'success' ? await c.expect((el) => el.name === 'stream:features') : undefined;
    return { c, ...r, features };
  };

  const shell = async (...words: string[]) => {
    const r = await server.cli(['shell', ...words]);
    assert.equal(r.code, 0, `shell ${words.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };

  /** Wait until the server has logged `count` lines matching `re` (global) since `from`; then no more. */
  const logLines = async (re: RegExp, count: number, from: number) => {
    const deadline = Date.now() + 5000;
    while ((server.output.slice(from).match(re)?.length ?? 0) < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.equal(server.output.slice(from).match(re)?.length ?? 0, count, server.output.slice(from));
  };

  const ping = async (c: RawClient, id: string) => {
    c.write(`<iq type='get' to='localhost' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    return c.expect((el) => el.name === 'iq' && el.attrs.id === id);
  };

  describe('SASL2 (XEP-0388)', function () {
    it('is offered beside SASL1 after TLS, with the same mechanisms and channel-binding types, Bind2 and FAST inline, and upgrade tasks', async function () {
      const { features } = await connect();
      const sasl1 = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
      const auth = features.getChild('authentication', NS_SASL2);
      assert.ok(auth, features.toString());
      assert.deepEqual(auth.getChildren('mechanism').map((m) => m.text()), sasl1);
      assert.ok(sasl1.includes('SCRAM-SHA-256-PLUS') && sasl1.includes('SCRAM-SHA-1'), sasl1.join());
      // XEP-0440 once, next to both.
      const cb = features.getChildren('sasl-channel-binding', 'urn:xmpp:sasl-cb:0');
      assert.equal(cb.length, 1);
      assert.deepEqual(cb[0]!.getChildren('channel-binding').map((t) => t.attrs.type), ['tls-exporter', 'tls-server-end-point']);
      const inline = auth.getChild('inline')!;
      const bind2 = inline.getChild('bind', NS_BIND2)!;
      assert.ok(bind2, inline.toString());
      // The default modules that take part in Bind2 (XEP-0198, XEP-0352, XEP-0280), then the test's own.
      assert.deepEqual(bind2.getChild('inline')?.getChildren('feature').map((f) => f.attrs.var), ['urn:xmpp:sm:3', 'urn:xmpp:csi:0', 'urn:xmpp:carbons:2', NS_ECHO]);
      assert.deepEqual(inline.getChild('fast', NS_FAST)?.getChildren('mechanism').map((m) => m.text()), ['HT-SHA-256-EXPR', 'HT-SHA-256-ENDP', 'HT-SHA-256-NONE']);
      const upgrades = auth.getChildren('upgrade', NS_UPGRADE).map((u) => u.text());
      assert.ok(upgrades.includes('UPGR-SCRAM-SHA-256') && upgrades.every((u) => /^UPGR-SCRAM-SHA-\d+$/.test(u)), upgrades.join());
      assert.ok(!sasl1.some((m) => m.startsWith('HT-')), 'the token mechanisms are offered through FAST only');
    });

    it('is not offered before TLS', async function () {
      const { features } = await connect(false);
      assert.ok(features.getChild('starttls'));
      assert.equal(features.getChild('authentication', NS_SASL2), undefined);
    });

    it('logs in with SCRAM-SHA-256 and a user agent: <success/> has the server signature and the bare JID, stream features follow without a restart', async function () {
      const from = server.output.length;
      const id = randomUUID();
      const r = await sasl2({ user: 'alice', password: USERS.alice, userAgent: { id, software: 'Cadence tests', device: 'CI runner' } });
      assert.equal(r.outcome.name, 'success', r.outcome.toString());
      assert.ok(r.serverVerified, 'the additional data is the SCRAM server signature');
      assert.equal(authzid(r.outcome), 'alice@localhost');
      // No restart: the same stream goes on; not bound, so the bind iq is offered.
      assert.ok(r.features!.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'), r.features!.toString());
      assert.equal(r.features!.getChild('authentication', NS_SASL2), undefined);
      r.c.write(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>`);
      const bound = await r.c.expect((el) => el.attrs.id === 'b1');
      assert.equal(bound.getChild('bind')?.getChildText('jid'), 'alice@localhost/desk');
      assert.equal((await ping(r.c, 'p1')).attrs.type, 'result');
      await server.waitForOutput(/authenticated alice@localhost from 127\.0\.0\.1 with SCRAM-SHA-256 \(SASL2\)/, 5000, from);
      // The user agent is remembered for the account.
      const clients = JSON.parse(await shell('module', 'call', 'sasl2@localhost', 'clients', 'alice')) as { id: string; software: string; device: string }[];
      assert.deepEqual(clients.filter((c) => c.id === id).map((c) => [c.software, c.device]), [['Cadence tests', 'CI runner']]);
    });

    it('logs in with SCRAM-SHA-256-PLUS (tls-exporter), with PLAIN, and without an initial response (empty challenge first)', async function () {
      const plus = await sasl2({ user: 'bob', password: USERS.bob, mechanism: 'SCRAM-SHA-256-PLUS' });
      assert.equal(plus.outcome.name, 'success', plus.outcome.toString());
      assert.ok(plus.serverVerified);
      const plain = await sasl2({ user: 'bob', password: USERS.bob, mechanism: 'PLAIN' });
      assert.equal(plain.outcome.name, 'success', plain.outcome.toString());
      assert.equal(authzid(plain.outcome), 'bob@localhost');
      const later = await sasl2({ user: 'bob', password: USERS.bob, mechanism: 'SCRAM-SHA-1', initialResponse: false });
      assert.equal(later.outcome.name, 'success', later.outcome.toString());
    });

    it('fails with the RFC 6120 condition and a text, leaves the stream unauthenticated, and closes it after too many failures', async function () {
      const from = server.output.length;
      const { c } = await connect(true, '127.0.0.11');
      const wrong = await c.sasl2({ user: 'alice', password: 'nope' });
      assert.equal(wrong.outcome.name, 'failure');
      assert.equal(condition(wrong.outcome), 'not-authorized');
      assert.ok(wrong.outcome.getChildText('text'));
      await server.waitForOutput(/authentication failure for alice@localhost from 127\.0\.0\.11: not-authorized/, 5000, from);
      const unknown = await c.sasl2({ user: 'nobody', password: 'x' });
      assert.equal(condition(unknown.outcome), 'not-authorized');
      const notOffered = await c.sasl2({ user: 'alice', password: USERS.alice, mechanism: 'DIGEST-MD5' });
      assert.equal(condition(notOffered.outcome), 'invalid-mechanism');
      c.write(`<authenticate xmlns='${NS_SASL2}' mechanism='PLAIN'><initial-response>not base64!</initial-response></authenticate>`);
      assert.equal(condition(await c.expect((el) => el.name === 'failure')), 'incorrect-encoding');
      const fifth = await c.sasl2({ user: 'alice', password: 'nope again' });
      assert.equal(condition(fifth.outcome), 'not-authorized');
      assert.equal(streamErrorCondition(await c.expect((el) => el.name === 'stream:error')), 'policy-violation');
      await c.waitClosed();
      await logLines(/authentication failure for /g, 5, from);
    });

    it('answers <abort/> with <aborted/> and logs it', async function () {
      const from = server.output.length;
      const { c } = await connect();
      c.write(`<authenticate xmlns='${NS_SASL2}' mechanism='SCRAM-SHA-256'><initial-response>${Buffer.from('n,,n=alice,r=abcdefgh').toString('base64')}</initial-response></authenticate>`);
      await c.expect((el) => el.name === 'challenge');
      c.write(`<abort xmlns='${NS_SASL2}'/>`);
      assert.equal(condition(await c.expect((el) => el.name === 'failure')), 'aborted');
      await server.waitForOutput(/authentication aborted by alice@localhost from 127\.0\.0\.1 \(SCRAM-SHA-256\)/, 5000, from);
      const again = await c.sasl2({ user: 'alice', password: USERS.alice });
      assert.equal(again.outcome.name, 'success');
    });

    it('ends the stream when the client sends a stanza during authentication, and on a second <authenticate/> after success', async function () {
      const { c } = await connect();
      c.write(`<authenticate xmlns='${NS_SASL2}' mechanism='SCRAM-SHA-256'><initial-response>${Buffer.from('n,,n=alice,r=abcdefgh').toString('base64')}</initial-response></authenticate><message to='bob@localhost' id='early'><body>x</body></message>`);
      assert.equal(streamErrorCondition(await c.expect((el) => el.name === 'stream:error')), 'policy-violation');
      await c.waitClosed();

      const ok = await sasl2({ user: 'alice', password: USERS.alice });
      assert.equal(ok.outcome.name, 'success');
      ok.c.write(`<authenticate xmlns='${NS_SASL2}' mechanism='PLAIN'><initial-response>${Buffer.from('\0alice\0alice-pw').toString('base64')}</initial-response></authenticate>`);
      assert.equal(streamErrorCondition(await ok.c.expect((el) => el.name === 'stream:error')), 'policy-violation');
    });
  });

  describe('Bind2 (XEP-0386)', function () {
    it('binds in the same round trip: the full JID in <success/>, <bound/>, a working session', async function () {
      const r = await sasl2({ user: 'alice', password: USERS.alice, userAgent: { id: randomUUID() }, extra: [bind('Tests')] });
      assert.equal(r.outcome.name, 'success', r.outcome.toString());
      const jid = authzid(r.outcome)!;
      assert.match(jid, /^alice@localhost\/Tests\/[\w-]{12}$/);
      assert.ok(r.outcome.getChild('bound', NS_BIND2));
      assert.equal(r.features!.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'), undefined, 'bound already: no bind feature');
      // A bound session like any other: addressable, sees its roster, gets messages.
      const bob = await sasl2({ user: 'bob', password: USERS.bob, userAgent: { id: randomUUID() }, extra: [bind()] });
      bob.c.write(`<message to='${jid}' type='chat' id='m1'><body>hello</body></message>`);
      const m = await r.c.expect((el) => el.name === 'message' && el.attrs.id === 'm1');
      assert.equal(m.attrs.from, authzid(bob.outcome));
      r.c.write(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
      assert.equal((await r.c.expect((el) => el.attrs.id === 'r1')).attrs.type, 'result');
    });

    it('gives the same client (user-agent id) the same resource and replaces its earlier session; another client gets another resource', async function () {
      const id = randomUUID();
      const first = await sasl2({ user: 'bob', password: USERS.bob, userAgent: { id }, extra: [bind('Phone')] });
      const second = await sasl2({ user: 'bob', password: USERS.bob, userAgent: { id }, extra: [bind('Phone')] });
      assert.equal(authzid(second.outcome), authzid(first.outcome));
      assert.equal(streamErrorCondition(await first.c.expect((el) => el.name === 'stream:error')), 'conflict');
      await first.c.waitClosed();
      assert.equal((await ping(second.c, 'p2')).attrs.type, 'result');

      const other = await sasl2({ user: 'bob', password: USERS.bob, userAgent: { id: randomUUID() }, extra: [bind('Phone')] });
      assert.notEqual(authzid(other.outcome), authzid(second.outcome));
      assert.match(authzid(other.outcome)!, /^bob@localhost\/Phone\//);
      await second.c.expectNothing((el) => el.name === 'stream:error', 300);
      // The user-agent id never shows in the resource.
      assert.ok(!authzid(second.outcome)!.includes(id));
    });

    it('hands its child elements to the module that listed the inline feature, which adds to <bound/>', async function () {
      const r = await sasl2({ user: 'carol', password: USERS.carol, userAgent: { id: randomUUID() }, extra: [bind('Echo', xml('echo', { xmlns: NS_ECHO }, 'ping!'))] });
      const echoed = r.outcome.getChild('bound', NS_BIND2)?.getChild('echoed', NS_ECHO);
      assert.ok(echoed, r.outcome.toString());
      assert.equal(echoed.text(), 'ping!');
      assert.equal(echoed.attrs.jid, authzid(r.outcome), 'handled after binding');
    });

    it('processes nothing inline when authentication fails', async function () {
      const r = await sasl2({ user: 'carol', password: 'wrong', userAgent: { id: randomUUID() }, extra: [bind('Unbound')], from: '127.0.0.12' });
      assert.equal(r.outcome.name, 'failure');
      assert.equal(r.outcome.getChild('bound', NS_BIND2), undefined);
      assert.doesNotMatch(await shell('session', 'list'), /carol@localhost\/Unbound/);
    });
  });

  describe('FAST (XEP-0484)', function () {
    /** Log in with the password asking for a token; returns the token. */
    const getToken = async (user: keyof typeof USERS, id: string, mechanism = 'HT-SHA-256-NONE') => {
      const r = await sasl2({ user, password: USERS[user], userAgent: { id, software: 'FAST tests' }, extra: [bind('Fast'), requestToken(mechanism)] });
      assert.equal(r.outcome.name, 'success', r.outcome.toString());
      const t = tokenOf(r.outcome);
      assert.ok(t, r.outcome.toString());
      return { ...t, jid: authzid(r.outcome)! };
    };
    const withToken = (user: string, id: string, token: string, more: Partial<Sasl2Options> & { from?: string } = {}) =>
      sasl2({ user, token, userAgent: { id }, extra: [bind('Fast')], ...more });

    it('issues a token on request and logs in with it (HT-SHA-256-NONE), mutually authenticated, on the same resource', async function () {
      const id = randomUUID();
      const t = await getToken('alice', id);
      assert.ok(t.token.length >= 22);
      const expiry = Date.parse(t.expiry);
      assert.ok(expiry > Date.now() + 86400_000, t.expiry);
      assert.match(t.expiry, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      const from = server.output.length;
      const r = await withToken('alice', id, t.token);
      assert.equal(r.outcome.name, 'success', r.outcome.toString());
      assert.ok(r.serverVerified, 'the responder HMAC');
      assert.equal(authzid(r.outcome), t.jid);
      assert.equal(tokenOf(r.outcome), undefined, 'not due for rotation yet');
      await server.waitForOutput(/authenticated alice@localhost from 127\.0\.0\.1 with HT-SHA-256-NONE \(SASL2\)/, 5000, from);
      assert.ok(!server.output.includes(t.token), 'tokens are never logged');
      assert.ok(!readFileSync(path.join(server.dir, 'data', 'cadence.sqlite')).includes(t.token), 'tokens are never stored');
    });

    it('binds a token to its mechanism, its client and <fast/>; -EXPR proves the TLS channel; no token mechanism over SASL1', async function () {
      const id = randomUUID();
      const expr = await getToken('bob', id, 'HT-SHA-256-EXPR');
      const ok = await withToken('bob', id, expr.token, { mechanism: 'HT-SHA-256-EXPR' });
      assert.equal(ok.outcome.name, 'success', ok.outcome.toString());
      assert.ok(ok.serverVerified);
      const otherMech = await withToken('bob', id, expr.token, { mechanism: 'HT-SHA-256-NONE', from: '127.0.0.13' });
      assert.equal(condition(otherMech.outcome), 'not-authorized');
      const otherClient = await withToken('bob', randomUUID(), expr.token, { mechanism: 'HT-SHA-256-EXPR', from: '127.0.0.13' });
      assert.equal(condition(otherClient.outcome), 'not-authorized');
      const noFast = await withToken('bob', id, expr.token, { mechanism: 'HT-SHA-256-EXPR', fast: false, from: '127.0.0.13' });
      assert.equal(condition(noFast.outcome), 'invalid-mechanism');
      // The right token with another channel's binding data (a relayed proof) fails.
      const relayed = await connect(true, '127.0.0.13');
      relayed.c.write(xml('authenticate', { xmlns: NS_SASL2, mechanism: 'HT-SHA-256-EXPR' },
        xml('initial-response', {}, htInitiator('bob', expr.token, Buffer.alloc(32)).toString('base64')),
        xml('user-agent', { id }), xml('fast', { xmlns: NS_FAST })).toString());
      assert.equal(condition(await relayed.c.expect((el) => el.name === 'failure')), 'not-authorized');
      // Over SASL1 the token mechanisms do not exist.
      const { c, features } = await connect();
      assert.ok(!features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').some((m) => m.text().startsWith('HT-')));
      c.write(`<auth xmlns='${NS_SASL}' mechanism='HT-SHA-256-NONE'>${Buffer.from('bob\0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx').toString('base64')}</auth>`);
      assert.equal(condition(await c.expect((el) => el.name === 'failure')), 'invalid-mechanism');
    });

    it('accepts the draft-ietf-kitten-sasl-ht framing (authcid NUL extra-values NUL hmac) and answers in it', async function () {
      const id = randomUUID();
      const t = await getToken('bob', id);
      const { c } = await connect();
      const extras = 'dp=abc';
      const hmac = createHmac('sha256', t.token).update(`Initiator${extras}`).digest();
      c.write(xml('authenticate', { xmlns: NS_SASL2, mechanism: 'HT-SHA-256-NONE' },
        xml('initial-response', {}, Buffer.concat([Buffer.from(`bob\0${extras}\0`), hmac]).toString('base64')),
        xml('user-agent', { id }), xml('fast', { xmlns: NS_FAST })).toString());
      const success = await c.expect((el) => el.name === 'success' || el.name === 'failure');
      assert.equal(success.name, 'success', success.toString());
      const expected = Buffer.concat([Buffer.from([0, 0]), createHmac('sha256', t.token).update('Responder').digest()]);
      assert.deepEqual(Buffer.from(success.getChildText('additional-data')!, 'base64'), expected);
    });

    it('counts a wrong or used-up token as an authentication failure', async function () {
      const id = randomUUID();
      const t = await getToken('carol', id);
      const from = server.output.length;
      const { c } = await connect(true, '127.0.0.14');
      for (let i = 0; i < 4; i++) {
        const r = await c.sasl2({ user: 'carol', token: `${t.token}x`, userAgent: { id } });
        assert.equal(condition(r.outcome), 'not-authorized');
      }
      const last = await c.sasl2({ user: 'carol', token: 'guess', userAgent: { id } });
      assert.equal(condition(last.outcome), 'not-authorized');
      assert.equal(streamErrorCondition(await c.expect((el) => el.name === 'stream:error')), 'policy-violation');
      await logLines(/authentication failure for carol@localhost from 127\.0\.0\.14: not-authorized/g, 5, from);
      // The real token still works.
      assert.equal((await withToken('carol', id, t.token)).outcome.name, 'success');
    });

    it('ends a token the client invalidates (log out)', async function () {
      const id = randomUUID();
      const t = await getToken('carol', id);
      const out = await withToken('carol', id, t.token, { fast: { invalidate: 'true' } });
      assert.equal(out.outcome.name, 'success');
      assert.equal(tokenOf(out.outcome), undefined);
      assert.equal(condition((await withToken('carol', id, t.token, { from: '127.0.0.15' })).outcome), 'not-authorized');
    });

    it('keeps tokens and Bind2 resources across a restart; ends them on a password change and on account deletion', async function () {
      const aliceId = randomUUID();
      const frankId = randomUUID();
      const alice = await getToken('alice', aliceId);
      const frank = await getToken('frank', frankId);
      for (const c of raws.splice(0)) c.close();
      await server.restart();
      const afterRestart = await withToken('alice', aliceId, alice.token);
      assert.equal(afterRestart.outcome.name, 'success', afterRestart.outcome.toString());
      assert.equal(authzid(afterRestart.outcome), alice.jid, 'the same resource after the restart');
      assert.equal((await withToken('frank', frankId, frank.token)).outcome.name, 'success');

      const passwd = await server.cli(['passwd', 'alice@localhost'], 'alice-new-pw\n');
      assert.equal(passwd.code, 0, passwd.stderr);
      assert.equal(condition((await withToken('alice', aliceId, alice.token, { from: '127.0.0.16' })).outcome), 'not-authorized');
      assert.equal((await sasl2({ user: 'alice', password: 'alice-new-pw' })).outcome.name, 'success');
      await server.cli(['passwd', 'alice@localhost'], `${USERS.alice}\n`);

      const del = await server.cli(['deluser', 'frank@localhost', '--yes']);
      assert.equal(del.code, 0, del.stderr);
      assert.equal(condition((await withToken('frank', frankId, frank.token, { from: '127.0.0.16' })).outcome), 'not-authorized');
      // Not even once the name is taken again.
      await server.adduser('frank', USERS.frank);
      assert.equal(condition((await withToken('frank', frankId, frank.token, { from: '127.0.0.16' })).outcome), 'not-authorized');
    });

    it('lists and revokes one client\'s tokens from the admin shell', async function () {
      const phone = randomUUID();
      const laptop = randomUUID();
      const p = await getToken('dave', phone);
      const l = await getToken('dave', laptop);
      const list = JSON.parse(await shell('module', 'call', 'fast@localhost', 'list', 'dave')) as { client: string; software: string; mechanism: string }[];
      assert.deepEqual(list.map((e) => e.client).sort(), [phone, laptop].sort());
      assert.ok(list.every((e) => e.software === 'FAST tests' && e.mechanism === 'HT-SHA-256-NONE'));
      assert.ok(!JSON.stringify(list).includes(p.token));
      assert.match(await shell('module', 'call', 'fast@localhost', 'revoke', 'dave@localhost', phone), /revoked/);
      assert.equal(condition((await withToken('dave', phone, p.token, { from: '127.0.0.17' })).outcome), 'not-authorized');
      assert.equal((await withToken('dave', laptop, l.token)).outcome.name, 'success');
    });

    it('logs in with the default @xmpp/client: SASL2 with SCRAM-SHA-1 asking for a token, then FAST on reconnect, and exchanges messages', async function () {
      const from = server.output.length;
      const xmpp = xmppClient({ service: `xmpp://127.0.0.1:${server.c2sPort}`, domain: 'localhost', username: 'dave', password: USERS.dave, resource: 'xmppjs' });
      xmpp.reconnect.stop();
      const dave = new TestClient(xmpp, 'dave');
      clients.push(dave);
      dave.jid = (await startXmppJs(xmpp)).toString();
      assert.match(dave.jid, /^dave@localhost\/xmppjs\//);
      await server.waitForOutput(/authenticated dave@localhost from 127\.0\.0\.1 with SCRAM-SHA-1 \(SASL2\)/, 5000, from);
      const token = (await xmpp.fast.fetch()) as { token: string; mechanism: string } | undefined;
      assert.equal(token?.mechanism, 'HT-SHA-256-NONE');

      await xmpp.stop();
      const again = server.output.length;
      dave.jid = (await startXmppJs(xmpp)).toString();
      await server.waitForOutput(/authenticated dave@localhost from 127\.0\.0\.1 with HT-SHA-256-NONE \(SASL2\)/, 5000, again);
      assert.equal(server.output.slice(from).match(/authenticat(ed|ion failure for) dave@/g)?.length, 2, 'one SASL attempt per login');

      const r = await sasl2({ user: 'bob', password: USERS.bob, extra: [bind()] });
      r.c.write(`<message to='${dave.jid}' type='chat' id='to-dave'><body>hi</body></message>`);
      assert.equal((await dave.expect((s) => s.attrs.id === 'to-dave')).getChildText('body'), 'hi');
      await dave.send(xml('message', { to: authzid(r.outcome)!, type: 'chat', id: 'to-bob' }, xml('body', {}, 'hello')));
      assert.equal((await r.c.expect((el) => el.attrs.id === 'to-bob')).attrs.from, dave.jid);
    });
  });
});

describe('e2e: FAST token rotation', function () {
  let server: TestServer;
  const raws: RawClient[] = [];

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pw' }, config: { fast: { tokenRotation: 0 } } });
  });
  afterEach(function () {
    for (const c of raws.splice(0)) c.close();
  });
  after(async function () {
    await server?.destroy();
  });

  const login = async (opts: Sasl2Options) => {
    const c = await RawClient.connect(server.directTlsPort, { directTls: true });
    raws.push(c);
    c.openStream();
    await c.expect((el) => el.name === 'stream:features');
    return (await c.sasl2(opts)).outcome;
  };

  it('gives a new token on a token login, keeps the old one until the new one is used, then ends it', async function () {
    const id = randomUUID();
    const first = tokenOf(await login({ user: 'alice', password: 'alice-pw', userAgent: { id }, extra: [requestToken()] }))!.token;
    const r1 = await login({ user: 'alice', token: first, userAgent: { id } });
    const second = tokenOf(r1)?.token;
    assert.ok(second && second !== first, r1.toString());
    // The client may not have received it: the old token still works (and gets yet another new one).
    const r2 = await login({ user: 'alice', token: first, userAgent: { id } });
    const third = tokenOf(r2)?.token;
    assert.ok(third && third !== second);
    // Only the latest issued token replaces the old one; the unused one before it is gone.
    assert.equal(condition(await login({ user: 'alice', token: second, userAgent: { id } })), 'not-authorized');
    assert.equal((await login({ user: 'alice', token: third, userAgent: { id } })).name, 'success');
    assert.equal(condition(await login({ user: 'alice', token: first, userAgent: { id } })), 'not-authorized');
  });
});

describe('e2e: FAST on several hosts', function () {
  let server: TestServer;
  const raws: RawClient[] = [];

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pw' }, config: { virtualHosts: { localhost: {}, 'second.test': {} } } });
    const r = await server.cli(['adduser', 'alice@second.test'], 'second-pw\n');
    assert.equal(r.code, 0, r.stderr);
  });
  afterEach(function () {
    for (const c of raws.splice(0)) c.close();
  });
  after(async function () {
    await server?.destroy();
  });

  const login = async (host: string, opts: Sasl2Options) => {
    const c = await RawClient.connect(server.directTlsPort, { directTls: true });
    raws.push(c);
    c.openStream(host);
    await c.expect((el) => el.name === 'stream:features');
    return (await c.sasl2(opts)).outcome;
  };

  it('runs on every host, each with its own tokens', async function () {
    const id = randomUUID();
    const here = tokenOf(await login('localhost', { user: 'alice', password: 'alice-pw', userAgent: { id }, extra: [requestToken()] }))!.token;
    const there = tokenOf(await login('second.test', { user: 'alice', password: 'second-pw', userAgent: { id }, extra: [requestToken()] }))!.token;
    assert.equal((await login('second.test', { user: 'alice', token: there, userAgent: { id } })).name, 'success');
    assert.equal((await login('localhost', { user: 'alice', token: here, userAgent: { id } })).name, 'success');
    assert.equal(condition(await login('localhost', { user: 'alice', token: there, userAgent: { id } })), 'not-authorized');
  });
});

describe('e2e: SCRAM upgrade tasks (XEP-0480)', function () {
  let server: TestServer;
  const raws: RawClient[] = [];

  before(async function () {
    server = await startServer({ users: { erin: 'erin-pw', other: 'other-pw' } });
    // The records as stored before SCRAM-SHA-512 existed (edited while the server is stopped).
    await server.stop();
    const db = new Database(path.join(server.dir, 'data', 'cadence.sqlite'));
    try {
      for (const user of ['erin', 'other']) {
        const row = db.prepare(`SELECT "value" FROM keyval WHERE "host" = ? AND "store" = 'accounts' AND "user" = ?`).get('localhost', user) as { value: string };
        const record = JSON.parse(row.value) as { scram: Record<string, unknown> };
        delete record.scram['SHA-512'];
        db.prepare(`UPDATE keyval SET "value" = ? WHERE "host" = ? AND "store" = 'accounts' AND "user" = ?`).run(JSON.stringify(record), 'localhost', user);
      }
    } finally {
      db.close();
    }
    server.output = '';
    await server.start();
  });
  afterEach(function () {
    for (const c of raws.splice(0)) c.close();
  });
  after(async function () {
    await server?.destroy();
  });

  const login = async (opts: Sasl2Options) => {
    const c = await RawClient.connect(server.directTlsPort, { directTls: true });
    raws.push(c);
    c.openStream();
    const features = await c.expect((el) => el.name === 'stream:features');
    const mechanisms = features.getChild('authentication', NS_SASL2)!.getChildren('mechanism').map((m) => m.text());
    return { mechanisms, ...(await c.sasl2(opts)) };
  };
  const upgrade = (hash: string) => xml('upgrade', { xmlns: NS_UPGRADE }, `UPGR-SCRAM-${hash}`);

  it('adds the SCRAM hash an account lacks from the client\'s SaltedPassword, never after a token login; the new mechanism then works', async function () {
    // Not every account has SHA-512 credentials: SCRAM-SHA-512 is not offered (core/sasl.ts).
    const erin = await login({ user: 'erin', password: 'erin-pw', mechanism: 'SCRAM-SHA-256-PLUS', extra: [upgrade('SHA-512'), upgrade('SHA-256')] });
    assert.ok(!erin.mechanisms.includes('SCRAM-SHA-512'), erin.mechanisms.join());
    assert.equal(erin.outcome.name, 'success', erin.outcome.toString());
    // One task (SHA-256 is there already); the mechanism's data came with the <continue/>.
    assert.deepEqual(erin.continues.map((c) => c.getChild('tasks')!.getChildText('task')), ['UPGR-SCRAM-SHA-512']);
    assert.ok(erin.serverVerified);
    assert.equal(authzid(erin.outcome), 'erin@localhost');

    // A token never sets a password: no task after a FAST login.
    const id = randomUUID();
    const first = await login({ user: 'other', password: 'other-pw', userAgent: { id }, extra: [requestToken()] });
    assert.ok(!first.mechanisms.includes('SCRAM-SHA-512'), 'other still lacks SHA-512');
    const fast = await login({ user: 'other', token: tokenOf(first.outcome)!.token, userAgent: { id }, extra: [upgrade('SHA-512')] });
    assert.equal(fast.outcome.name, 'success', fast.outcome.toString());
    assert.equal(fast.continues.length, 0);
    const other = await login({ user: 'other', password: 'other-pw', extra: [upgrade('SHA-512')] });
    assert.deepEqual(other.continues.map((c) => c.getChild('tasks')!.getChildText('task')), ['UPGR-SCRAM-SHA-512']);
    assert.equal(other.outcome.name, 'success');

    // Every account has SHA-512 now: offered, and it works with the credentials the tasks stored.
    const after = await login({ user: 'erin', password: 'erin-pw', mechanism: 'SCRAM-SHA-512', extra: [upgrade('SHA-512')] });
    assert.ok(after.mechanisms.includes('SCRAM-SHA-512-PLUS') && after.mechanisms.includes('SCRAM-SHA-512'), after.mechanisms.join());
    assert.equal(after.outcome.name, 'success', after.outcome.toString());
    assert.ok(after.serverVerified);
    assert.equal(after.continues.length, 0, 'nothing left to upgrade');
  });
});
