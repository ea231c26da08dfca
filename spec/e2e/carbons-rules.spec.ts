// Which messages Message Carbons copy (XEP-0280 §5 and §8, XEP-0334 <no-copy/>): chat, normal
// with a body, normal with an IM payload, errors to an online resource; never groupchat,
// headline, normal without content, <private/> (which the recipient does not see) or <no-copy/>;
// a private message from a room to the joined client is not copied, one sent to an occupant is.
import assert from 'node:assert/strict';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'carbons-rules-pass';
const NS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const QUIET_MS = 400;

describe('e2e: carbons eligibility (XEP-0280 §5, XEP-0334)', function () {
  let server: TestServer;
  let main: TestClient;
  let other: TestClient;
  let romeo: TestClient;
  let seq = 0;
  const nextId = () => `rule-${++seq}`;

  const carbon = (direction: 'sent' | 'received', id: string) => (s: Element) =>
    s.name === 'message' && s.getChild(direction, NS)?.getChild('forwarded', NS_FORWARD)?.getChild('message')?.attrs.id === id;
  const byId = (id: string) => (s: Element) => s.name === 'message' && s.attrs.id === id;

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'ping', 'offline', 'carbons'] },
    });
    main = await login(server, 'juliet', PASS, { resource: 'main' });
    other = await login(server, 'juliet', PASS, { resource: 'other' });
    romeo = await login(server, 'romeo', PASS, { resource: 'garden' });
    for (const [c, prio] of [[main, 5], [other, 1], [romeo, 0]] as const) {
      await c.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS })));
      await c.send(xml('presence', {}, xml('priority', {}, String(prio))));
    }
    await main.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  });
  after(async function () {
    await Promise.all([main, other, romeo].map((c) => c?.stop()));
    await server?.destroy();
  });

  /** Romeo sends `message` to Juliet's bare JID; main gets it; does other get a received carbon? */
  const receivedCopy = async (message: Element, expectCopy: boolean, to = 'juliet@localhost'): Promise<Element | undefined> => {
    const id = nextId();
    message.attrs.id = id;
    message.attrs.to = to;
    await romeo.send(message);
    const got = to === 'juliet@localhost' || to === main.jid ? await main.expect(byId(id)) : undefined;
    if (expectCopy) await other.expect(carbon('received', id));
    else await other.expectNothing(carbon('received', id), QUIET_MS);
    return got;
  };

  it('copies chat messages, also without a body (chat states)', async function () {
    await receivedCopy(xml('message', { type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })), true);
  });

  it('copies normal messages with a body, and with an IM payload (receipts)', async function () {
    await receivedCopy(xml('message', {}, xml('body', {}, 'normal with body')), true);
    await receivedCopy(xml('message', { type: 'normal' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' })), true);
  });

  it('does not copy normal messages without content, nor headlines', async function () {
    await receivedCopy(xml('message', { type: 'normal' }, xml('thread', {}, 't')), false);
    const id = nextId();
    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'headline', id }, xml('body', {}, 'news')));
    await other.expect(byId(id)); // headlines go to every resource (RFC 6121 §8.5.2.1.2), as originals
    await other.expectNothing(carbon('received', id), QUIET_MS);
  });

  it('does not copy <private/> messages and removes <private/> before delivery (§8)', async function () {
    const got = await receivedCopy(xml('message', { type: 'chat' }, xml('body', {}, 'private'), xml('private', { xmlns: NS })), false);
    assert.equal(got!.getChild('private', NS), undefined);
    const id = nextId();
    await main.send(xml('message', { to: romeo.jid, type: 'chat', id }, xml('body', {}, 'private out'), xml('private', { xmlns: NS })));
    await romeo.expect(byId(id));
    await other.expectNothing(carbon('sent', id), QUIET_MS);
  });

  it('does not copy messages hinted <no-copy/> (XEP-0334)', async function () {
    await receivedCopy(xml('message', { type: 'chat' }, xml('body', {}, 'no copy'), xml('no-copy', { xmlns: 'urn:xmpp:hints' })), false);
    const id = nextId();
    await main.send(xml('message', { to: romeo.jid, type: 'chat', id }, xml('body', {}, 'no copy out'), xml('no-copy', { xmlns: 'urn:xmpp:hints' })));
    await romeo.expect(byId(id));
    await other.expectNothing(carbon('sent', id), QUIET_MS);
  });

  it('copies errors sent to an online resource', async function () {
    await receivedCopy(xml('message', { type: 'error' }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }))), true, main.jid);
  });

  it('does not copy a room\'s private message to the joined client, copies one sent to an occupant', async function () {
    // A MUC private message arrives at the full JID of the client that joined.
    await receivedCopy(xml('message', { type: 'chat' }, xml('body', {}, 'pm from room'), xml('x', { xmlns: NS_MUC_USER })), false, main.jid);
    // One the client sends to an occupant (XEP-0045 §7.5) is copied to its other resources.
    const id = nextId();
    await main.send(xml('message', { to: romeo.jid, type: 'chat', id }, xml('body', {}, 'pm to occupant'), xml('x', { xmlns: NS_MUC_USER })));
    await other.expect(carbon('sent', id));
  });

  it('does not copy groupchat messages', async function () {
    const id = nextId();
    await main.send(xml('message', { to: romeo.jid, type: 'groupchat', id }, xml('body', {}, 'gc')));
    await other.expectNothing(carbon('sent', id), QUIET_MS);
  });
});
