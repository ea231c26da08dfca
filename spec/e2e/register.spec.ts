// In-Band Registration (XEP-0077) end to end: the stream feature, registration on an
// unauthenticated stream (after STARTTLS), its errors, the per-IP throttle, registration turned
// off, password change, and account removal with the clean-up of the account's contacts and data.
import assert from 'node:assert/strict';
import { RawClient, login, stanzaErrorCondition, streamErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS_REGISTER = 'jabber:iq:register';
const NS_FEATURE = 'http://jabber.org/features/iq-register';
const NS_ROSTER = 'jabber:iq:roster';
const NS_BLOCKING = 'urn:xmpp:blocking';
const PASS = 'register-pass';
const CLOSED = 'closed.localhost';
const THROTTLED = 'throttled.localhost';

const query = (...children: (Element | string)[]) => xml('query', { xmlns: NS_REGISTER }, ...children);
const registerIq = (username: string | undefined, password: string | undefined, id = 'reg') =>
  `<iq type='set' id='${id}'><query xmlns='${NS_REGISTER}'>${username === undefined ? '' : `<username>${username}</username>`}${password === undefined ? '' : `<password>${password}</password>`}</query></iq>`;

describe('e2e: in-band registration (XEP-0077)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  const connect = async (user: string, password: string, resource: string, presence = false) => {
    const c = await login(server, user, password, { resource, presence });
    clients.push(c);
    return c;
  };

  /** A raw stream to `host`, secured with STARTTLS; resolves with the features after TLS. */
  const secureStream = async (host = 'localhost'): Promise<{ c: RawClient; features: Element }> => {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream(host);
    await c.starttls(host);
    const features = await c.expect((el) => el.name === 'stream:features');
    return { c, features };
  };

  const reply = (c: RawClient, id: string) => c.expect((el) => el.name === 'iq' && el.attrs.id === id);

  /** Register over a fresh secure stream; resolves with the reply and the stream. */
  const register = async (username: string, password: string, host = 'localhost') => {
    const { c } = await secureStream(host);
    c.write(registerIq(username, password));
    return { c, r: await reply(c, 'reg') };
  };

  const rejectsLogin = (user: string, password: string) =>
    assert.rejects(login(server, user, password), (err: Error & { condition?: string }) => {
      assert.equal(err.condition, 'not-authorized');
      return true;
    });

  before(async function () {
    server = await startServer({
      users: { taken: PASS, changer: PASS, remover: PASS, friend: PASS, info: PASS },
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'blocking', 'register'],
        register: { allowRegistration: true, registrationThrottle: 0 },
        virtualHosts: {
          localhost: {},
          [CLOSED]: { register: { allowRegistration: false } },
          [THROTTLED]: { register: { registrationThrottle: 60 } },
        },
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

  // -- the stream feature ---------------------------------------------------------------------------

  it('advertises the register feature only once the stream is encrypted', async function () {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    const before = await c.expect((el) => el.name === 'stream:features');
    assert.equal(before.getChild('register', NS_FEATURE), undefined);
    const { features } = await secureStream();
    assert.ok(features.getChild('register', NS_FEATURE), 'register feature after STARTTLS');
  });

  it('answers registration before STARTTLS with not-authorized and keeps the stream', async function () {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    await c.expect((el) => el.name === 'stream:features');
    c.write(`<iq type='get' id='early'><query xmlns='${NS_REGISTER}'/></iq>`);
    const r = await reply(c, 'early');
    assert.equal(stanzaErrorCondition(r), 'not-authorized');
    assert.equal(c.closed, false);
  });

  it('still closes the stream for any other stanza before authentication', async function () {
    const { c } = await secureStream();
    c.write(`<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const e = await c.expect((el) => el.name === 'stream:error');
    assert.equal(streamErrorCondition(e), 'not-authorized');
    await c.waitClosed();
  });

  it('is advertised in disco#info', async function () {
    const c = await connect('info', PASS, 'disco');
    const r = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = r.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(NS_REGISTER));
  });

  // -- registration ----------------------------------------------------------------------------------

  it('returns the registration fields', async function () {
    const { c } = await secureStream();
    c.write(`<iq type='get' id='fields' to='localhost'><query xmlns='${NS_REGISTER}'/></iq>`);
    const r = await reply(c, 'fields');
    assert.equal(r.attrs.type, 'result');
    const q = r.getChild('query', NS_REGISTER)!;
    assert.ok(q.getChild('instructions')?.text());
    assert.ok(q.getChild('username'));
    assert.ok(q.getChild('password'));
    assert.equal(q.getChild('registered'), undefined);
  });

  it('registers an account, which then authenticates on the same stream and with a new connection', async function () {
    const { c, r } = await register('Newbie', 'newbie-pass');
    assert.equal(r.attrs.type, 'result');
    // The username is prepared (lowercase): the account is newbie@localhost.
    const jid = await c.authenticate('newbie', 'newbie-pass', 'raw', 'localhost', true);
    assert.equal(jid, 'newbie@localhost/raw');
    const n = await connect('newbie', 'newbie-pass', 'again');
    assert.equal(n.jid, 'newbie@localhost/again');
    await server.waitForOutput(/registered account newbie@localhost from 127\.0\.0\.1/);
  });

  it('answers conflict for a taken username, without echoing the password', async function () {
    const { r } = await register('taken', 'another-pass');
    assert.equal(r.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(r), 'conflict');
    assert.doesNotMatch(r.toString(), /another-pass/);
    await rejectsLogin('taken', 'another-pass');
  });

  it('answers not-acceptable for missing fields, an empty or short password', async function () {
    const { c } = await secureStream();
    for (const [id, u, p] of [['nouser', undefined, 'long-enough'], ['nopass', 'someone', undefined], ['empty', 'someone', ''], ['short', 'someone', 'short']] as const) {
      c.write(registerIq(u, p, id));
      const r = await reply(c, id);
      assert.equal(stanzaErrorCondition(r), 'not-acceptable', `${id}: ${r.toString()}`);
    }
    await rejectsLogin('someone', 'short');
  });

  it('answers jid-malformed for a username that is not a localpart', async function () {
    const { r } = await register('bad@name', 'long-enough');
    assert.equal(stanzaErrorCondition(r), 'jid-malformed');
  });

  it('registers at most one account per stream', async function () {
    const { c, r } = await register('first1', 'first-pass');
    assert.equal(r.attrs.type, 'result');
    c.write(registerIq('second1', 'second-pass', 'again'));
    const r2 = await reply(c, 'again');
    assert.equal(stanzaErrorCondition(r2), 'not-acceptable');
    await rejectsLogin('second1', 'second-pass');
  });

  it('refuses unauthenticated removal with unexpected-request', async function () {
    const { c } = await secureStream();
    c.write(`<iq type='set' id='rm'><query xmlns='${NS_REGISTER}'><remove/></query></iq>`);
    assert.equal(stanzaErrorCondition(await reply(c, 'rm')), 'unexpected-request');
  });

  it('throttles registrations per IP address', async function () {
    const first = await register('one', 'throttle-pass', THROTTLED);
    assert.equal(first.r.attrs.type, 'result');
    const second = await register('two', 'throttle-pass', THROTTLED);
    assert.equal(second.r.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(second.r), 'policy-violation');
    assert.equal(second.r.getChild('error')!.attrs.type, 'wait');
    // The first account works.
    const jid = await first.c.authenticate('one', 'throttle-pass', 'raw', THROTTLED, true);
    assert.equal(jid, `one@${THROTTLED}/raw`);
  });

  it('neither advertises nor allows registration where it is disabled', async function () {
    const { c, features } = await secureStream(CLOSED);
    assert.equal(features.getChild('register', NS_FEATURE), undefined);
    c.write(`<iq type='get' id='g'><query xmlns='${NS_REGISTER}'/></iq>`);
    assert.equal(stanzaErrorCondition(await reply(c, 'g')), 'service-unavailable');
    c.write(registerIq('intruder', 'intruder-pass', 's'));
    assert.equal(stanzaErrorCondition(await reply(c, 's')), 'service-unavailable');
    // The stream stays usable for authentication; the account does not exist.
    await assert.rejects(c.authenticate('intruder', 'intruder-pass', 'x', CLOSED, true), /auth failed/);
  });

  // -- authenticated: information, password change ----------------------------------------------------

  it('tells an authenticated user that it is registered', async function () {
    const c = await connect('info', PASS, 'get');
    const r = await c.iq(xml('iq', { type: 'get' }, query()));
    const q = r.getChild('query', NS_REGISTER)!;
    assert.ok(q.getChild('registered'));
    assert.equal(q.getChildText('username'), 'info');
  });

  it('changes the password', async function () {
    const c = await connect('changer', PASS, 'pw');
    const bad = [
      [query(xml('username', {}, 'changer'), xml('password')), 'not-acceptable'],
      [query(xml('username', {}, 'changer'), xml('password', {}, 'tiny')), 'not-acceptable'],
      [query(xml('username', {}, 'taken'), xml('password', {}, 'long-enough-pass')), 'forbidden'],
      [query(xml('username', {}, 'changer')), 'bad-request'],
    ] as const;
    for (const [q, condition] of bad) {
      const r = await c.iqRaw(xml('iq', { type: 'set' }, q));
      assert.equal(stanzaErrorCondition(r), condition, r.toString());
      assert.doesNotMatch(r.toString(), /long-enough-pass/);
    }
    const ok = await c.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, query(xml('username', {}, 'changer'), xml('password', {}, 'changed-pass'))));
    assert.equal(ok.attrs.type, 'result');
    await rejectsLogin('changer', PASS);
    const again = await connect('changer', 'changed-pass', 'new');
    assert.equal(again.jid, 'changer@localhost/new');
    await rejectsLogin('taken', 'long-enough-pass');
  });

  // -- account removal ---------------------------------------------------------------------------------

  it('removes the account: result, stream closed, sessions ended, contacts unsubscribed, data gone', async function () {
    // remover and friend subscribe to each other; remover blocks someone and has a roster.
    const r1 = await connect('remover', PASS, 'one', true);
    const friend = await connect('friend', PASS, 'f', true);
    await friend.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
    await r1.send(xml('presence', { to: 'friend@localhost', type: 'subscribe' }));
    await friend.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
    await friend.send(xml('presence', { to: 'remover@localhost', type: 'subscribed' }));
    await friend.send(xml('presence', { to: 'remover@localhost', type: 'subscribe' }));
    await r1.expect((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
    await r1.send(xml('presence', { to: 'friend@localhost', type: 'subscribed' }));
    await friend.expect((s) => s.name === 'presence' && s.attrs.from === r1.jid && s.attrs.type === undefined);
    await r1.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS_BLOCKING }, xml('item', { jid: 'spammer@example.com' }))));
    friend.inbox.drain();

    // A second session of the account, on a raw stream.
    const raw = await RawClient.connect(server.c2sPort);
    raws.push(raw);
    raw.openStream();
    await raw.starttls();
    await raw.authenticate('remover', PASS, 'two');
    const r1Closed = new Promise<string | undefined>((resolve) => r1.xmpp.on('error', (e: Error & { condition?: string }) => resolve(e.condition)));

    // <remove/> must be alone.
    raw.write(`<iq type='set' id='rm0'><query xmlns='${NS_REGISTER}'><remove/><username>remover</username></query></iq>`);
    assert.equal(stanzaErrorCondition(await reply(raw, 'rm0')), 'bad-request');

    raw.write(`<iq type='set' id='rm1'><query xmlns='${NS_REGISTER}'><remove/></query></iq>`);
    const ok = await reply(raw, 'rm1');
    assert.equal(ok.attrs.type, 'result');
    assert.equal(streamErrorCondition(await raw.expect((el) => el.name === 'stream:error')), 'not-authorized');
    await raw.waitClosed();
    assert.equal(await r1Closed, 'not-authorized');

    // The contact sees both resources go offline, then is unsubscribed both ways.
    await friend.expect((s) => s.name === 'presence' && s.attrs.from === r1.jid && s.attrs.type === 'unavailable');
    await friend.expect((s) => s.name === 'presence' && s.attrs.from === 'remover@localhost' && s.attrs.type === 'unsubscribe');
    await friend.expect((s) => s.name === 'presence' && s.attrs.from === 'remover@localhost' && s.attrs.type === 'unsubscribed');
    await friend.expect((s) => s.name === 'iq' && s.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.subscription === 'none');
    const roster = await friend.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
    const item = roster.getChild('query')!.getChildren('item').find((i) => i.attrs.jid === 'remover@localhost');
    assert.equal(item?.attrs.subscription, 'none');
    assert.equal(item?.attrs.ask, undefined);

    await rejectsLogin('remover', PASS);
    await server.waitForOutput(/deleted account remover@localhost/);

    // A new account of the same name starts empty: no roster, no blocklist.
    const again = await register('remover', 'remover-new-pass');
    assert.equal(again.r.attrs.type, 'result');
    const fresh = await connect('remover', 'remover-new-pass', 'fresh');
    const r = await fresh.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
    assert.deepEqual(r.getChild('query')!.getChildren('item'), []);
    const b = await fresh.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: NS_BLOCKING })));
    assert.deepEqual(b.getChild('blocklist')!.getChildren('item'), []);
  });
});
