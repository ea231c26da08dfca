// Push notifications (XEP-0357) with an app server written as an external component (XEP-0114):
// enable with jid, node and publish options; a message for an account without an online session
// is summarised to the app server as a PubSub publish (message count, last sender, body only when
// asked); nothing while a session is online; disable stops it; an error from the app server
// disables the registration; the feature on the account.
import assert from 'node:assert/strict';
import { AppServer, summary } from '../helpers/appserver.ts';
import { login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'push-pass';
const NS = 'urn:xmpp:push:0';
const APP = 'push.localhost';
const SECRET = 'app-secret';

describe('e2e: push notifications (XEP-0357)', function () {
  let server: TestServer;
  let app: AppServer;
  let romeo: TestClient;
  let seq = 0;

  const enable = (node: string, fields: Record<string, string> = {}) => {
    const e = xml('enable', { xmlns: NS, jid: APP, node });
    if (Object.keys(fields).length) {
      e.append(xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
        ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v)))));
    }
    return xml('iq', { type: 'set' }, e);
  };
  /** Log in as `user`, register `node`, log out: the account now has no session. */
  const register = async (user: string, node: string, fields: Record<string, string> = {}) => {
    const c = await login(server, user, PASS, { resource: 'phone' });
    await c.iq(enable(node, fields));
    await c.stop(); // resolves once the server closed the stream, with the session
  };
  const say = async (to: string, body: string) => {
    const id = `m${++seq}`;
    await romeo.send(xml('message', { to, type: 'chat', id }, xml('body', {}, body)));
    return id;
  };

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS, nurse: PASS, friar: PASS, paris: PASS },
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'offline', 'push'],
        componentPorts: [0],
        components: { [APP]: { secret: SECRET } },
      },
    });
    app = await AppServer.connect(server.componentPort, APP, SECRET);
    romeo = await login(server, 'romeo', PASS, { resource: 'r' });
  });
  after(async function () {
    app?.close();
    await romeo?.stop();
    await server?.destroy();
  });

  it('advertises urn:xmpp:push:0 on the account', async function () {
    const info = await romeo.iq(xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
  });

  it('refuses an enable without jid or node', async function () {
    const r1 = await romeo.iqRaw(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS, node: 'n' })));
    assert.equal(stanzaErrorCondition(r1), 'bad-request');
    const r2 = await romeo.iqRaw(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS, jid: APP })));
    assert.equal(stanzaErrorCondition(r2), 'bad-request');
  });

  it('publishes a summary with count and sender, and the publish options, while the user is offline', async function () {
    await register('juliet', 'juliet-node', { secret: 'eye' });
    await say('juliet@localhost', 'first');
    const p1 = await app.publish('juliet-node');
    assert.equal(p1.attrs.from, 'juliet@localhost');
    assert.equal(p1.attrs.to, APP);
    const s1 = summary(p1);
    assert.equal(s1.FORM_TYPE, 'urn:xmpp:push:summary');
    assert.equal(s1['message-count'], '1');
    assert.equal(s1['last-message-sender'], romeo.jid);
    assert.equal(s1['last-message-body'], undefined, 'no body unless asked');
    const opts = p1.getChild('pubsub')!.getChild('publish-options')!.getChild('x', 'jabber:x:data')!;
    assert.equal(opts.getChildren('field').find((f) => f.attrs.var === 'secret')?.getChildText('value'), 'eye');
    app.answer(p1);
    await say('juliet@localhost', 'second');
    const p2 = await app.publish('juliet-node');
    assert.equal(summary(p2)['message-count'], '2');
    app.answer(p2);
  });

  it('includes the body when the client asked for it', async function () {
    await register('friar', 'friar-node', { 'include-body': 'true' });
    await say('friar@localhost', 'the potion');
    const p = await app.publish('friar-node');
    assert.equal(summary(p)['last-message-body'], 'the potion');
    assert.equal(p.getChild('pubsub')!.getChild('publish-options'), undefined, 'include-body is for this server only');
    app.answer(p);
  });

  it('does not publish while the user has an online session', async function () {
    await register('nurse', 'nurse-node');
    const nurse = await login(server, 'nurse', PASS, { resource: 'home', presence: true });
    try {
      const id = await say('nurse@localhost', 'you are here');
      await nurse.expect((s) => s.attrs.id === id);
      await app.expectNothing('nurse-node', 500);
    } finally {
      await nurse.stop();
    }
  });

  it('stops after disable', async function () {
    const c = await login(server, 'paris', PASS, { resource: 'phone' });
    await c.iq(enable('paris-node'));
    await c.iq(xml('iq', { type: 'set' }, xml('disable', { xmlns: NS, jid: APP, node: 'paris-node' })));
    await c.stop();
    await say('paris@localhost', 'nobody listens');
    await app.expectNothing('paris-node', 800);
  });

  it('disables a registration the app server answers with an error (§7)', async function () {
    await register('juliet', 'juliet-gone');
    await say('juliet@localhost', 'to a dead token');
    // Both registrations of Juliet get it; the new one is refused.
    const p = await app.publish('juliet-gone');
    app.answer(await app.publish('juliet-node'));
    const from = server.output.length;
    app.answer(p, 'item-not-found');
    await server.waitForOutput(/refused a push notification for juliet@localhost/, 10_000, from);
    await say('juliet@localhost', 'after the error');
    app.answer(await app.publish('juliet-node'));
    await app.expectNothing('juliet-gone', 500);
  });
});
