// Asynchronous, ordered stanza dispatch over raw sockets, with a fixture module
// (spec/fixtures/modules/mod_dispatch_probe.ts) loaded through pluginPaths: a handler that
// rejects is answered internal-server-error, a StanzaError is answered as that error, one
// session's stanzas are handled in order while a handler awaits storage, stanzas pipelined
// behind the bind iq wait for the bind, and session filters see what enters and leaves.
import assert from 'node:assert/strict';
import path from 'node:path';
import { RawClient, stanzaErrorCondition, type Element } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const NS = 'urn:example:dispatch';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const FIXTURES = path.join(ROOT, 'spec', 'fixtures', 'modules');
const plainAuth = (user: string, password: string) => `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${Buffer.from(`\u0000${user}\u0000${password}`).toString('base64')}</auth>`;

describe('e2e: asynchronous, ordered dispatch', function () {
  let server: TestServer;
  const raws: RawClient[] = [];

  /** A raw client over STARTTLS, authenticated and bound as `user/resource`. */
  const bound = async (user: string, resource: string): Promise<RawClient> => {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    await c.starttls();
    await c.authenticate(user, `${user}-pass`, resource);
    return c;
  };
  const reply = (c: RawClient, id: string) => c.expect((el) => el.name === 'iq' && el.attrs.id === id);
  const probe = (type: string, id: string, name: string) => `<iq type='${type}' id='${id}' to='localhost'><${name} xmlns='${NS}'/></iq>`;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass' },
      config: { pluginPaths: [FIXTURES], modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'ping', 'dispatch_probe'] },
    });
  });
  afterEach(function () {
    for (const c of raws.splice(0)) c.close();
  });
  after(async function () {
    await server.destroy();
  });

  it('answers internal-server-error when an asynchronous iq handler rejects', async function () {
    const c = await bound('alice', 'reject');
    const from = server.output.length;
    c.write(probe('get', 'r1', 'reject'));
    const r = await reply(c, 'r1');
    assert.equal(r.attrs.type, 'error');
    assert.equal(stanzaErrorCondition(r), 'internal-server-error');
    assert.equal(r.getChild('error')?.attrs.type, 'wait');
    // The failure is logged with the event and the module.
    await server.waitForOutput(/handler of iq-get\/host\/urn:example:dispatch:reject \(dispatch_probe\) failed: .*fails on purpose/, 5000, from);
  });

  it('answers the StanzaError a handler throws, at once or after awaiting', async function () {
    const c = await bound('alice', 'refuse');
    c.write(probe('get', 's1', 'refuse') + probe('get', 's2', 'refuse-later'));
    const now = await reply(c, 's1');
    assert.equal(stanzaErrorCondition(now), 'not-acceptable');
    assert.equal(now.getChild('error')?.attrs.type, 'modify');
    assert.equal(now.getChild('error')?.getChildText('text'), 'Refused on purpose');
    const later = await reply(c, 's2');
    assert.equal(stanzaErrorCondition(later), 'forbidden');
    assert.equal(later.getChild('error')?.attrs.type, 'auth');
  });

  it('handles two stanzas of one session in order while the first one’s handler awaits storage', async function () {
    const c = await bound('alice', 'order');
    const seen: string[] = [];
    const collect = (el: Element) => {
      if (el.name === 'iq' && (el.attrs.id === 'slow1' || el.attrs.id === 'fast1')) seen.push(el.attrs.id as string);
      return seen.length === 2;
    };
    // One write: the second stanza is parsed while the first one's handler is still waiting.
    c.write(probe('set', 'slow1', 'slow') + probe('get', 'fast1', 'fast'));
    await c.expect(collect);
    assert.deepEqual(seen, ['slow1', 'fast1']);
    // Another session is not held up by it.
    const other = await bound('bob', 'other');
    other.write(probe('get', 'fast2', 'fast'));
    assert.equal((await reply(other, 'fast2')).attrs.type, 'result');
  });

  it('lets stanzas pipelined behind the bind iq wait for the bind, then handles them as the bound resource', async function () {
    const c = await RawClient.connect(server.c2sPort);
    raws.push(c);
    c.openStream();
    await c.starttls();
    await c.expect((el) => el.name === 'stream:features');
    c.write(plainAuth('alice', 'alice-pass'));
    await c.expect((el) => el.name === 'success');
    c.restartStream();
    await c.expect((el) => el.name === 'stream:features');
    // Bind, initial presence and a ping in one write, as a client that does not wait.
    c.write(`<iq type='set' id='b1'><bind xmlns='${NS_BIND}'><resource>piped</resource></bind></iq><presence/><iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const bindResult = await reply(c, 'b1');
    assert.equal(bindResult.getChild('bind')?.getChildText('jid'), 'alice@localhost/piped');
    const own = await c.expect((el) => el.name === 'presence');
    assert.equal(own.attrs.from, 'alice@localhost/piped', 'the presence was broadcast from the bound resource');
    assert.equal((await reply(c, 'p1')).attrs.type, 'result');
    assert.equal(c.closed, false);
  });

  it('runs the session filters: stanzas/in before routing, stanzas/out on what a session is sent', async function () {
    const alice = await bound('alice', 'filters');
    const bob = await bound('bob', 'filters');
    const body = (el: Element) => el.getChildText('body');
    const message = (extra: string, text: string) => `<message to='bob@localhost/filters' type='chat'><body>${text}</body>${extra}</message>`;
    const nextMessage = () => bob.expect((el) => el.name === 'message');

    alice.write(message(`<drop-in xmlns='${NS}'/>`, 'dropped in') + message('', 'after drop-in'));
    assert.equal(body(await nextMessage()), 'after drop-in', 'the message dropped by stanzas/in never arrives');

    alice.write(message(`<drop-out xmlns='${NS}'/>`, 'dropped out') + message('', 'after drop-out'));
    assert.equal(body(await nextMessage()), 'after drop-out', 'the message dropped by stanzas/out is never written');

    alice.write(message(`<mark-in xmlns='${NS}'/><mark-out xmlns='${NS}'/>`, 'marked'));
    const m = await nextMessage();
    assert.equal(body(m), 'marked');
    assert.ok(m.getChild('marked-in', NS), 'changed by stanzas/in');
    assert.ok(m.getChild('marked-out', NS), 'changed by stanzas/out');
    assert.equal(m.attrs.from, 'alice@localhost/filters', 'stamped after the in-filter');
  });
});
