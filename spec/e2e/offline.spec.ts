// Offline messages end to end (XEP-0160, XEP-0203, RFC 6121 §8.5.2.2.1): stored while the user has
// no available non-negative resource, delivered in order with <delay/> on the next available
// presence, never twice, hints and types respected, the storage limit, account deletion, and
// durability across a server restart.
import assert from 'node:assert/strict';
import { DateTime } from 'luxon';
import { login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'offline-pass';
const MODULES = ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'offline', 'blocking'];
const LIMIT = 5;
const QUIET_MS = 400;
const NS_DELAY = 'urn:xmpp:delay';
const NS_HINTS = 'urn:xmpp:hints';

describe('e2e: offline messages (XEP-0160)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  let seq = 0;
  const nextId = (label: string) => `${label}-${++seq}`;

  const connect = async (user: string, resource: string, presence?: number): Promise<TestClient> => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    if (presence !== undefined) await c.send(xml('presence', {}, xml('priority', {}, String(presence))));
    return c;
  };

  const chat = (to: string, id: string, body: string, type = 'chat', ...extra: Element[]) =>
    xml('message', { to, type, id }, xml('body', {}, body), ...extra);

  const isMessage = (ids: string[]) => (s: Element) => s.name === 'message' && ids.includes(String(s.attrs.id));

  /** The next `n` messages among `ids`, in arrival order. */
  const receive = async (c: TestClient, ids: string[], n = ids.length): Promise<Element[]> => {
    const got: Element[] = [];
    for (let i = 0; i < n; i++) got.push(await c.expect(isMessage(ids)));
    return got;
  };

  /** A ping round trip: every stanza the client sent before has been processed by the server. */
  const sync = async (c: TestClient) => {
    await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  };

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, nurse: PASS, tybalt: PASS, paris: PASS, friar: PASS },
      config: { modulesEnabled: MODULES, offline: { limit: LIMIT } },
    });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('withholds messages stored before their sender was blocked (XEP-0191)', async function () {
    const tybalt = await connect('tybalt', 'sword');
    const ids = [nextId('before-block'), nextId('other')];
    await tybalt.send(chat('paris@localhost', ids[0]!, 'stored, then blocked'));
    await sync(tybalt);
    const romeo = await connect('romeo', 'quill');
    await romeo.send(chat('paris@localhost', ids[1]!, 'stored, not blocked'));
    await sync(romeo);
    // Paris blocks Tybalt from a resource that is not available, then comes online.
    const quiet = await connect('paris', 'quiet');
    await quiet.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'tybalt@localhost' }))));
    const paris = await connect('paris', 'home', 0);
    const [got] = await receive(paris, ids, 1);
    assert.equal(got!.attrs.id, ids[1]);
    await paris.expectNothing(isMessage([ids[0]!]), QUIET_MS);
  });

  it('advertises msgoffline in disco#info', async function () {
    const romeo = await connect('romeo', 'disco');
    const info = await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);
    assert.ok(features.includes('msgoffline'), `features: ${features.join(', ')}`);
  });

  it('stores messages while the user is offline and delivers them in order, with <delay/>, on the next available presence', async function () {
    const romeo = await connect('romeo', 'balcony');
    const ids = [nextId('o'), nextId('o'), nextId('o')];
    const t0 = DateTime.utc();
    await romeo.send(chat('juliet@localhost', ids[0]!, 'first'));
    await romeo.send(xml('message', { to: 'juliet@localhost', id: ids[1] }, xml('subject', {}, 'Re'), xml('body', {}, 'second')));
    await romeo.send(chat('juliet@localhost/garden', ids[2]!, 'third')); // full JID, not connected: like the bare JID
    await sync(romeo);
    const t1 = DateTime.utc();
    await romeo.expectNothing((s) => s.attrs.type === 'error', QUIET_MS); // accepted: no bounce

    // Connected but not yet available: nothing is delivered.
    const juliet = await connect('juliet', 'garden');
    await juliet.expectNothing(isMessage(ids), QUIET_MS);

    await juliet.send(xml('presence'));
    const got = await receive(juliet, ids);
    assert.deepEqual(got.map((m) => m.attrs.id), ids, 'delivered in the order sent');
    assert.deepEqual(got.map((m) => m.getChildText('body')), ['first', 'second', 'third']);
    assert.equal(got[1]!.getChildText('subject'), 'Re');
    assert.equal(got[1]!.attrs.type, undefined, 'the stanza is kept as sent');
    for (const m of got) {
      assert.equal(m.attrs.from, romeo.jid);
      const delays = m.getChildren('delay', NS_DELAY);
      assert.equal(delays.length, 1, m.toString());
      const delay = delays[0]!;
      assert.equal(delay.attrs.from, 'localhost');
      const stamp = String(delay.attrs.stamp);
      assert.match(stamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'XEP-0082 DateTime, UTC, with milliseconds');
      const when = DateTime.fromISO(stamp, { setZone: true });
      assert.ok(when.isValid, `stamp ${stamp} parses`);
      assert.equal(when.offset, 0, 'UTC');
      assert.ok(when >= t0.minus({ milliseconds: 5 }) && when <= t1.plus({ milliseconds: 5 }), `stamp ${stamp} is when the message arrived`);
    }
    assert.equal(got[2]!.attrs.to, 'juliet@localhost/garden');
  });

  it('delivers stored messages once: not again on the next login, nor to another resource', async function () {
    const romeo = await connect('romeo', 'once');
    const id = nextId('once');
    await romeo.send(chat('juliet@localhost', id, 'only once'));
    await sync(romeo);

    const first = await connect('juliet', 'one', 0);
    await first.expect(isMessage([id]));
    // A second resource coming online meanwhile gets nothing from the store.
    const second = await connect('juliet', 'two', 0);
    await second.expectNothing(isMessage([id]), QUIET_MS);
    await first.stop();
    await second.stop();

    const again = await connect('juliet', 'again', 0);
    await again.expectNothing(isMessage([id]), QUIET_MS);
  });

  it('delivers directly, without storing, while a non-negative resource is available', async function () {
    const juliet = await connect('juliet', 'online', 1);
    await juliet.expect((s) => s.name === 'presence' && s.attrs.from === juliet.jid);
    const romeo = await connect('romeo', 'live');
    const id = nextId('live');
    await romeo.send(chat('juliet@localhost', id, 'now'));
    const m = await juliet.expect(isMessage([id]));
    assert.equal(m.getChild('delay', NS_DELAY), undefined, 'a live message has no <delay/>');
    await juliet.stop();
    const later = await connect('juliet', 'later', 0);
    await later.expectNothing(isMessage([id]), QUIET_MS);
  });

  it('delivers when a negative-priority resource becomes non-negative', async function () {
    const shy = await connect('paris', 'shy', -1);
    await shy.expect((s) => s.name === 'presence' && s.attrs.from === shy.jid);
    const romeo = await connect('romeo', 'neg');
    const id = nextId('neg');
    await romeo.send(chat('paris@localhost', id, 'stored for you'));
    await sync(romeo);
    await shy.expectNothing(isMessage([id]), QUIET_MS);
    await romeo.expectNothing((s) => s.attrs.id === id, 1);
    // A presence update that stays negative does not deliver.
    await shy.send(xml('presence', {}, xml('priority', {}, '-5'), xml('show', {}, 'away')));
    await shy.expectNothing(isMessage([id]), QUIET_MS);
    await shy.send(xml('presence', {}, xml('priority', {}, '2')));
    const m = await shy.expect(isMessage([id]));
    assert.ok(m.getChild('delay', NS_DELAY));
  });

  it('does not store a message with the no-store hint: the sender gets service-unavailable', async function () {
    const romeo = await connect('romeo', 'hint');
    const id = nextId('nostore');
    await romeo.send(chat('tybalt@localhost', id, 'ephemeral', 'chat', xml('no-store', { xmlns: NS_HINTS })));
    const err = await romeo.expect((s) => s.attrs.id === id && s.attrs.type === 'error');
    assert.equal(stanzaErrorCondition(err), 'service-unavailable');
    const tybalt = await connect('tybalt', 'hint', 0);
    await tybalt.expectNothing(isMessage([id]), QUIET_MS);
  });

  it('does not store headline, groupchat, error or chat-state-only messages', async function () {
    const romeo = await connect('romeo', 'types');
    const headline = nextId('headline');
    const groupchat = nextId('groupchat');
    const error = nextId('error');
    const states = nextId('states');
    await romeo.send(chat('tybalt@localhost', headline, 'news', 'headline'));
    await romeo.send(chat('tybalt@localhost', groupchat, 'room', 'groupchat'));
    await romeo.send(xml('message', { to: 'tybalt@localhost', type: 'error', id: error }, xml('error', { type: 'cancel' })));
    await romeo.send(xml('message', { to: 'tybalt@localhost', type: 'chat', id: states }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    // groupchat is refused (RFC 6121 §8.5.2.2.1); the others are dropped silently.
    const err = await romeo.expect((s) => s.attrs.id === groupchat && s.attrs.type === 'error');
    assert.equal(stanzaErrorCondition(err), 'service-unavailable');
    await romeo.expectNothing((s) => [headline, error, states].includes(String(s.attrs.id)), QUIET_MS);
    const tybalt = await connect('tybalt', 'types', 0);
    await tybalt.expectNothing(isMessage([headline, groupchat, error, states]), QUIET_MS);
  });

  it('stores a chat-state-only message that carries the store hint', async function () {
    const romeo = await connect('romeo', 'storehint');
    const id = nextId('storehint');
    await romeo.send(xml('message', { to: 'tybalt@localhost', type: 'chat', id },
      xml('gone', { xmlns: 'http://jabber.org/protocol/chatstates' }), xml('store', { xmlns: NS_HINTS })));
    await sync(romeo);
    const tybalt = await connect('tybalt', 'storehint', 0);
    await tybalt.expect(isMessage([id]));
  });

  it(`bounces with service-unavailable once ${LIMIT} messages are stored, and stores again after delivery`, async function () {
    const romeo = await connect('romeo', 'limit');
    const ids = Array.from({ length: LIMIT + 1 }, () => nextId('limit'));
    for (const [i, id] of ids.entries()) await romeo.send(chat('nurse@localhost', id, `message ${i}`));
    const over = ids[LIMIT]!;
    const err = await romeo.expect((s) => s.attrs.id === over && s.attrs.type === 'error');
    assert.equal(stanzaErrorCondition(err), 'service-unavailable');
    assert.equal(err.getChild('error')?.attrs.type, 'cancel');
    assert.match(err.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? '', /offline .*storage.* full/i);
    assert.equal(err.attrs.from, 'nurse@localhost');
    await romeo.expectNothing((s) => s.attrs.type === 'error' && s.attrs.id !== over, QUIET_MS);

    const nurse = await connect('nurse', 'limit', 0);
    const got = await receive(nurse, ids, LIMIT);
    assert.deepEqual(got.map((m) => m.attrs.id), ids.slice(0, LIMIT));
    await nurse.expectNothing(isMessage([over]), QUIET_MS);
    await nurse.stop();

    // Delivered messages are gone from the store: there is room again.
    const again = nextId('limit-again');
    await romeo.send(chat('nurse@localhost', again, 'room again'));
    await sync(romeo);
    await romeo.expectNothing((s) => s.attrs.id === again, QUIET_MS);
    const nurse2 = await connect('nurse', 'limit2', 0);
    await nurse2.expect(isMessage([again]));
  });

  it('forgets the stored messages of a deleted account', async function () {
    const romeo = await connect('romeo', 'deleted');
    const id = nextId('deleted');
    await romeo.send(chat('friar@localhost', id, 'for the old friar'));
    await sync(romeo);
    await romeo.expectNothing((s) => s.attrs.id === id, QUIET_MS);
    const del = await server.cli(['deluser', 'friar@localhost', '--yes']);
    assert.equal(del.code, 0, del.stderr);
    await server.adduser('friar', PASS);
    const friar = await connect('friar', 'new', 0);
    await friar.expectNothing(isMessage([id]), QUIET_MS);
  });

  it('keeps stored messages across a server restart', async function () {
    const romeo = await connect('romeo', 'durable');
    const ids = [nextId('durable'), nextId('durable')];
    await romeo.send(chat('juliet@localhost', ids[0]!, 'before the restart'));
    await romeo.send(chat('juliet@localhost', ids[1]!, 'also before'));
    await sync(romeo);
    await romeo.expectNothing((s) => s.attrs.type === 'error', QUIET_MS);
    await romeo.stop();
    clients.splice(0);

    await server.restart();

    const juliet = await connect('juliet', 'after-restart', 0);
    const got = await receive(juliet, ids);
    assert.deepEqual(got.map((m) => m.attrs.id), ids);
    assert.deepEqual(got.map((m) => m.getChildText('body')), ['before the restart', 'also before']);
    for (const m of got) assert.equal(m.getChild('delay', NS_DELAY)?.attrs.from, 'localhost');
    await juliet.stop();
    const again = await connect('juliet', 'after-restart-2', 0);
    await again.expectNothing(isMessage(ids), QUIET_MS);
  });
});
