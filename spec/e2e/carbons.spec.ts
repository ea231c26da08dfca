// Message Carbons end to end (XEP-0280): enabling and disabling per session, received copies to
// the enabled resources that did not get the message (bare and full JID, and when the message
// goes to offline storage), sent copies to the sender's other enabled resources, Bind2-free
// plain resource binding, and the disco feature on the server.
import assert from 'node:assert/strict';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'carbons-pass';
const NS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const QUIET_MS = 400;

describe('e2e: message carbons (XEP-0280)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  let seq = 0;
  const nextId = () => `carbon-${++seq}`;

  const connect = async (user: string, resource: string, opts: { priority?: number; carbons?: boolean } = {}): Promise<TestClient> => {
    const c = await login(server, user, PASS, { resource });
    clients.push(c);
    if (opts.carbons !== false) await c.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS })));
    if (opts.priority !== undefined) {
      await c.send(xml('presence', {}, xml('priority', {}, String(opts.priority))));
      await sync(c);
    }
    return c;
  };
  const sync = async (c: TestClient) => {
    await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  };
  const chat = (to: string, id: string, body: string) => xml('message', { to, type: 'chat', id }, xml('body', {}, body));
  const original = (id: string) => (s: Element) => s.name === 'message' && s.attrs.id === id;
  /** A carbon (direction) whose forwarded message has this id. */
  const carbon = (direction: 'sent' | 'received', id: string) => (s: Element) =>
    s.name === 'message' && s.getChild(direction, NS)?.getChild('forwarded', NS_FORWARD)?.getChild('message')?.attrs.id === id;
  const forwarded = (s: Element, direction: 'sent' | 'received') => s.getChild(direction, NS)!.getChild('forwarded', NS_FORWARD)!.getChild('message')!;

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, nurse: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'offline', 'carbons'] },
    });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('advertises urn:xmpp:carbons:2 on the server', async function () {
    const c = await connect('romeo', 'disco', { carbons: false });
    const info = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);
    assert.ok(features.includes(NS));
  });

  it('answers enable and disable with a result, also when repeated (§7.1)', async function () {
    const c = await connect('romeo', 'toggle', { carbons: false });
    for (const op of ['enable', 'enable', 'disable', 'disable', 'enable']) {
      const r = await c.iqRaw(xml('iq', { type: 'set' }, xml(op, { xmlns: NS })));
      assert.equal(r.attrs.type, 'result', op);
    }
  });

  it('copies a message to the bare JID to the enabled resources that did not get it', async function () {
    const high = await connect('juliet', 'high', { priority: 5 });
    const low = await connect('juliet', 'low', { priority: 1 });
    const off = await connect('juliet', 'off', { priority: 0, carbons: false });
    const romeo = await connect('romeo', 'garden', { carbons: false });
    const id = nextId();
    await romeo.send(chat('juliet@localhost', id, 'to the bare JID'));
    await high.expect(original(id));
    const copy = await low.expect(carbon('received', id));
    assert.equal(copy.attrs.from, 'juliet@localhost');
    assert.equal(copy.attrs.to, low.jid);
    assert.equal(copy.attrs.type, 'chat');
    const inner = forwarded(copy, 'received');
    assert.equal(inner.attrs.xmlns, 'jabber:client');
    assert.equal(inner.attrs.from, romeo.jid);
    assert.equal(inner.getChildText('body'), 'to the bare JID');
    await high.expectNothing(carbon('received', id), QUIET_MS);
    await off.expectNothing((s) => s.name === 'message', QUIET_MS);
  });

  it('copies a message to a full JID to the other enabled resources', async function () {
    const a = await connect('juliet', 'a', { priority: 5 });
    const b = await connect('juliet', 'b', { priority: 1 });
    const romeo = await connect('romeo', 'garden', { carbons: false });
    const id = nextId();
    await romeo.send(chat(b.jid, id, 'to b'));
    await b.expect(original(id));
    await a.expect(carbon('received', id));
    await b.expectNothing(carbon('received', id), QUIET_MS);
  });

  it('stops copying once a resource disables carbons', async function () {
    const a = await connect('juliet', 'a2', { priority: 5 });
    const b = await connect('juliet', 'b2', { priority: 1 });
    await b.iq(xml('iq', { type: 'set' }, xml('disable', { xmlns: NS })));
    const romeo = await connect('romeo', 'garden', { carbons: false });
    const id = nextId();
    await romeo.send(chat('juliet@localhost', id, 'only a'));
    await a.expect(original(id));
    await b.expectNothing(carbon('received', id), QUIET_MS);
  });

  it('copies what a client sends to its other enabled resources, not back to the sender (§6)', async function () {
    const a = await connect('juliet', 'sender', { priority: 5, carbons: false });
    const b = await connect('juliet', 'phone', { priority: 1 });
    const romeo = await connect('romeo', 'garden', { priority: 0, carbons: false });
    const id = nextId();
    await a.send(chat(romeo.jid, id, 'sent from a'));
    await romeo.expect(original(id));
    const copy = await b.expect(carbon('sent', id));
    assert.equal(copy.attrs.from, 'juliet@localhost');
    const inner = forwarded(copy, 'sent');
    assert.equal(inner.attrs.from, a.jid);
    assert.equal(inner.attrs.to, romeo.jid);
    assert.equal(inner.getChildText('body'), 'sent from a');
    await a.expectNothing(carbon('sent', id), QUIET_MS);
  });

  it('copies a message that goes to offline storage to the enabled resources that are not available', async function () {
    // Bound with carbons on, but no available presence: the message is stored offline and copied.
    const quiet = await connect('nurse', 'quiet');
    const romeo = await connect('romeo', 'garden', { carbons: false });
    const id = nextId();
    await romeo.send(chat('nurse@localhost', id, 'stored and copied'));
    await quiet.expect(carbon('received', id));
    await romeo.expectNothing((s) => s.name === 'message' && s.attrs.type === 'error', QUIET_MS);
    const home = await connect('nurse', 'home', { priority: 0, carbons: false });
    await home.expect(original(id));
  });
});
