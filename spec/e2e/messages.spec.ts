// Message delivery to local users over real sockets (RFC 6121 §8.5): a user with several resources
// at different priorities, bare and full JIDs, every message type, accounts that do not exist,
// and stanzas without a 'to'.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'messages-pass';
const MODULES = ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'offline'];
const QUIET_MS = 400;

describe('e2e: message delivery rules (RFC 6121 §8.5)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  let seq = 0;
  const nextId = (label: string) => `${label}-${++seq}`;

  /** Log in; with a priority, send available presence and wait for its reflection. */
  const connect = async (user: string, resource: string, priority?: number): Promise<TestClient> => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    if (priority !== undefined) {
      await c.send(xml('presence', {}, xml('priority', {}, String(priority))));
      await c.expect((s) => s.name === 'presence' && s.attrs.from === c.jid && s.attrs.type === undefined);
    }
    return c;
  };

  const isMessage = (id: string) => (s: Element) => s.name === 'message' && s.attrs.id === id;

  /** `id` reaches exactly `yes` among `all` (the others get nothing within QUIET_MS). */
  const deliveredTo = async (id: string, yes: TestClient[], all: TestClient[]): Promise<Element[]> => {
    const got = await Promise.all(yes.map((c) => c.expect(isMessage(id))));
    await Promise.all(all.filter((c) => !yes.includes(c)).map((c) => c.expectNothing(isMessage(id), QUIET_MS)));
    return got;
  };

  const expectError = async (c: TestClient, id: string, condition: string): Promise<Element> => {
    const err = await c.expect((s) => s.attrs.id === id && s.attrs.type === 'error');
    assert.equal(stanzaErrorCondition(err), condition);
    return err;
  };

  // alice has two resources at priority 5, one at 1, one at -1 and one connected but unavailable.
  let a5a: TestClient;
  let a5b: TestClient;
  let a1: TestClient;
  let aNeg: TestClient;
  let aBound: TestClient;
  let alice: TestClient[];
  let bob: TestClient;

  before(async function () {
    server = await startServer({
      users: { alice: PASS, bob: PASS, shy: PASS },
      config: { modulesEnabled: MODULES },
    });
    a5a = await connect('alice', 'five-a', 5);
    a5b = await connect('alice', 'five-b', 5);
    a1 = await connect('alice', 'one', 1);
    aNeg = await connect('alice', 'negative', -1);
    aBound = await connect('alice', 'bound');
    alice = [a5a, a5b, a1, aNeg, aBound];
    bob = await connect('bob', 'desk', 0);
  });
  after(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await server?.destroy();
  });

  describe('to the bare JID', function () {
    it('delivers chat only to the highest-priority resources (both tied at 5)', async function () {
      const id = nextId('chat');
      await bob.send(xml('message', { to: 'alice@localhost', type: 'chat', id }, xml('body', {}, 'hi')));
      const [m] = await deliveredTo(id, [a5a, a5b], alice);
      assert.equal(m!.attrs.from, bob.jid);
      assert.equal(m!.getChildText('body'), 'hi');
    });

    it('delivers normal (and a message without type) only to the highest-priority resources', async function () {
      const id1 = nextId('normal');
      const id2 = nextId('untyped');
      await bob.send(xml('message', { to: 'alice@localhost', type: 'normal', id: id1 }, xml('body', {}, 'n')));
      await bob.send(xml('message', { to: 'alice@localhost', id: id2 }, xml('body', {}, 'u')));
      await deliveredTo(id1, [a5a, a5b], alice);
      await deliveredTo(id2, [a5a, a5b], alice);
    });

    it('delivers headline to every non-negative available resource', async function () {
      const id = nextId('headline');
      await bob.send(xml('message', { to: 'alice@localhost', type: 'headline', id }, xml('body', {}, 'news')));
      await deliveredTo(id, [a5a, a5b, a1], alice);
      await bob.expectNothing((s) => s.attrs.id === id, 1);
    });

    it('refuses groupchat with service-unavailable and delivers it to nobody', async function () {
      const id = nextId('groupchat');
      await bob.send(xml('message', { to: 'alice@localhost', type: 'groupchat', id }, xml('body', {}, 'room?')));
      const err = await expectError(bob, id, 'service-unavailable');
      assert.equal(err.attrs.from, 'alice@localhost');
      assert.equal(err.getChild('error')?.attrs.type, 'cancel');
      await deliveredTo(id, [], alice);
    });

    it('silently ignores an error message: no bounce, no delivery', async function () {
      const id = nextId('error');
      await bob.send(xml('message', { to: 'alice@localhost', type: 'error', id }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }))));
      await Promise.all([deliveredTo(id, [], alice), bob.expectNothing((s) => s.attrs.id === id, QUIET_MS)]);
    });
  });

  describe('to a full JID', function () {
    it('delivers to a connected resource whatever its priority or availability', async function () {
      for (const target of [aNeg, a1, aBound]) {
        const id = nextId('full');
        await bob.send(xml('message', { to: target.jid, type: 'chat', id }, xml('body', {}, 'just you')));
        const [m] = await deliveredTo(id, [target], alice);
        assert.equal(m!.attrs.to, target.jid);
      }
      // Every type goes to the resource addressed, headline and groupchat included.
      for (const type of ['headline', 'groupchat', 'normal']) {
        const id = nextId(`full-${type}`);
        await bob.send(xml('message', { to: aNeg.jid, type, id }, xml('body', {}, type)));
        await deliveredTo(id, [aNeg], alice);
      }
      await bob.expectNothing((s) => s.attrs.type === 'error', 1);
    });

    it('treats chat to a resource that is not connected as sent to the bare JID', async function () {
      const id = nextId('gone-chat');
      await bob.send(xml('message', { to: 'alice@localhost/gone', type: 'chat', id }, xml('body', {}, 'where are you')));
      const [m] = await deliveredTo(id, [a5a, a5b], alice);
      assert.equal(m!.attrs.to, 'alice@localhost/gone');
    });

    it('treats normal to a resource that is not connected as sent to the bare JID (server policy, see mod_message)', async function () {
      // RFC 6121 §8.5.3.2.1 lets a server ignore or bounce such a normal message; Cadence, like
      // Prosody, falls back to the bare JID so that it can still be read (or stored offline).
      const id = nextId('gone-normal');
      await bob.send(xml('message', { to: 'alice@localhost/gone', id }, xml('body', {}, 'note')));
      await deliveredTo(id, [a5a, a5b], alice);
    });

    it('drops headline and error to a resource that is not connected, silently', async function () {
      const h = nextId('gone-headline');
      const e = nextId('gone-error');
      await bob.send(xml('message', { to: 'alice@localhost/gone', type: 'headline', id: h }, xml('body', {}, 'news')));
      await bob.send(xml('message', { to: 'alice@localhost/gone', type: 'error', id: e }, xml('error', { type: 'cancel' })));
      await Promise.all([
        deliveredTo(h, [], alice),
        deliveredTo(e, [], alice),
        bob.expectNothing((s) => s.attrs.id === h || s.attrs.id === e, QUIET_MS),
      ]);
    });

    it('refuses groupchat to a resource that is not connected with service-unavailable', async function () {
      const id = nextId('gone-groupchat');
      await bob.send(xml('message', { to: 'alice@localhost/gone', type: 'groupchat', id }, xml('body', {}, 'room?')));
      const err = await expectError(bob, id, 'service-unavailable');
      assert.equal(err.attrs.from, 'alice@localhost/gone');
      await deliveredTo(id, [], alice);
    });
  });

  describe('users without a suitable resource, and unknown users', function () {
    it('treats a user whose only resource has a negative priority as offline: the message is stored, not bounced', async function () {
      const shyNeg = await connect('shy', 'hiding', -1);
      const id = nextId('to-shy');
      await bob.send(xml('message', { to: 'shy@localhost', type: 'chat', id }, xml('body', {}, 'are you there?')));
      await Promise.all([shyNeg.expectNothing(isMessage(id), QUIET_MS), bob.expectNothing((s) => s.attrs.id === id, QUIET_MS)]);
      // A full-JID message still reaches the negative-priority resource itself.
      const direct = nextId('to-shy-full');
      await bob.send(xml('message', { to: shyNeg.jid, type: 'chat', id: direct }, xml('body', {}, 'psst')));
      await shyNeg.expect(isMessage(direct));
      // The stored message comes with the next non-negative available presence.
      const shyOn = await login(server, 'shy', PASS, { resource: 'visible' });
      clients.push(shyOn);
      await shyOn.send(xml('presence', {}, xml('priority', {}, '0')));
      const m = await shyOn.expect(isMessage(id));
      assert.equal(m.getChildText('body'), 'are you there?');
      assert.ok(m.getChild('delay', 'urn:xmpp:delay'), 'stored message carries <delay/>');
    });

    it('answers service-unavailable for chat and normal to an unknown local user, and never answers an error', async function () {
      for (const type of ['chat', 'normal']) {
        const id = nextId(`nobody-${type}`);
        await bob.send(xml('message', { to: 'nobody@localhost', type, id }, xml('body', {}, 'hello?')));
        const err = await expectError(bob, id, 'service-unavailable');
        assert.equal(err.attrs.from, 'nobody@localhost');
      }
      const full = nextId('nobody-full');
      await bob.send(xml('message', { to: 'nobody@localhost/res', type: 'chat', id: full }, xml('body', {}, 'hello?')));
      await expectError(bob, full, 'service-unavailable');
      const err = nextId('nobody-error');
      await bob.send(xml('message', { to: 'nobody@localhost', type: 'error', id: err }, xml('error', { type: 'cancel' })));
      await bob.expectNothing((s) => s.attrs.id === err, QUIET_MS);
    });

    it('answers service-unavailable for an iq to an unknown local user (bare and full JID)', async function () {
      const bare = await bob.iqRaw(xml('iq', { type: 'get', to: 'nobody@localhost' }, xml('query', { xmlns: 'urn:example:nothing' })));
      assert.equal(bare.attrs.type, 'error');
      assert.equal(stanzaErrorCondition(bare), 'service-unavailable');
      const disco = await bob.iqRaw(xml('iq', { type: 'get', to: 'nobody@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      assert.equal(stanzaErrorCondition(disco), 'service-unavailable');
      const full = await bob.iqRaw(xml('iq', { type: 'get', to: 'nobody@localhost/res' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(stanzaErrorCondition(full), 'service-unavailable');
    });

    it('drops presence to an unknown local user silently', async function () {
      const ids = [nextId('p-directed'), nextId('p-subscribe'), nextId('p-probe')];
      await bob.send(xml('presence', { to: 'nobody@localhost', id: ids[0] }));
      await bob.send(xml('presence', { to: 'nobody@localhost', type: 'subscribe', id: ids[1] }));
      await bob.send(xml('presence', { to: 'nobody@localhost/res', id: ids[2] }));
      await bob.expectNothing((s) => ids.includes(String(s.attrs.id)), QUIET_MS);
    });
  });

  describe('without a to address', function () {
    it('handles a message with no to as sent to the sender\'s own bare JID', async function () {
      const id = nextId('no-to');
      await a1.send(xml('message', { type: 'chat', id }, xml('body', {}, 'note to self')));
      const [m] = await deliveredTo(id, [a5a, a5b], alice);
      assert.equal(m!.attrs.from, a1.jid);
      await a1.expectNothing((s) => s.attrs.id === id, 1);
    });
  });
});
