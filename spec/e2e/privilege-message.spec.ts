// Privileged components, message permission (XEP-0356 §5) over real sockets: with 'outgoing' a
// component sends a message forwarded inside <privilege><forwarded/> as the server or as a
// user's bare JID; refused with a forbidden message error when the forwarded 'from' is a full
// JID, another domain's JID, a user of another local host, or when it has no message grant;
// bad-request without a forwarded message.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, type RawClient, type TestClient } from '../helpers/client.ts';
import { connectComponent, NS_FORWARD, NS_PRIVILEGE } from '../helpers/component.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const SECRET = 's3cret';

describe('e2e: privileged components send messages on behalf of the server (XEP-0356 §5)', function () {
  let server: TestServer;
  let bob: TestClient;
  let priv: RawClient;
  let plain: RawClient;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass' },
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'message', 'disco', 'component', 'privilege'],
        virtualHosts: { localhost: { privilege: { entities: { 'priv.localhost': { message: 'outgoing' }, 'plain.localhost': { roster: 'get' } } } }, 'other.localhost': {} },
        componentPorts: [0],
        components: { 'priv.localhost': { secret: SECRET }, 'plain.localhost': { secret: SECRET } },
      },
    });
    bob = await login(server, 'bob', 'bob-pass');
    priv = await connectComponent(server.componentPort, 'priv.localhost', SECRET);
    plain = await connectComponent(server.componentPort, 'plain.localhost', SECRET);
  });
  after(async function () {
    priv?.close();
    plain?.close();
    await bob?.stop();
    await server.destroy();
  });

  const privileged = (c: RawClient, component: string, id: string, inner: string) =>
    c.write(`<message from='${component}' to='localhost' id='${id}'><privilege xmlns='${NS_PRIVILEGE}'><forwarded xmlns='${NS_FORWARD}'>${inner}</forwarded></privilege></message>`);
  const refusal = (c: RawClient, id: string) => c.expect((el) => el.name === 'message' && el.attrs.id === id && el.attrs.type === 'error');

  it("sends a forwarded message as a user's bare JID", async function () {
    const got = bob.expect((el) => el.name === 'message' && el.getChildText('body') === 'as alice');
    privileged(priv, 'priv.localhost', 'm1', `<message xmlns='jabber:client' from='alice@localhost' to='${bob.jid}' type='chat'><body>as alice</body></message>`);
    const m = await got;
    assert.equal(m.attrs.from, 'alice@localhost');
    assert.equal(m.attrs.type, 'chat');
  });

  it("refuses with forbidden a 'from' that is not this server or one of its users' bare JIDs", async function () {
    for (const [id, from] of [['f1', 'alice@localhost/desk'], ['f2', 'juliet@capulet.lit'], ['f3', 'carol@other.localhost'], ['f4', 'capulet.lit']]) {
      privileged(priv, 'priv.localhost', id!, `<message xmlns='jabber:client' from='${from!}' to='${bob.jid}'><body>no</body></message>`);
      const r = await refusal(priv, id!);
      assert.equal(stanzaErrorCondition(r), 'forbidden', `${from!}: ${r.toString()}`);
      assert.equal(r.attrs.from, 'localhost');
    }
  });

  it('refuses a component without message access, and a privilege element without a forwarded message', async function () {
    privileged(plain, 'plain.localhost', 'n1', `<message xmlns='jabber:client' from='localhost' to='${bob.jid}'><body>no</body></message>`);
    assert.equal(stanzaErrorCondition(await refusal(plain, 'n1')), 'forbidden');
    privileged(priv, 'priv.localhost', 'n2', '');
    assert.equal(stanzaErrorCondition(await refusal(priv, 'n2')), 'bad-request');
    // Nothing of the refused ones reached bob: the next allowed message is the first he sees.
    const next = bob.expect((el) => el.name === 'message');
    privileged(priv, 'priv.localhost', 'm2', `<message xmlns='jabber:client' from='localhost' to='${bob.jid}'><body>from the server</body></message>`);
    assert.equal((await next).getChildText('body'), 'from the server');
  });
});
