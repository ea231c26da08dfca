// Privileged components (XEP-0356) over real sockets: an external component (XEP-0114, raw
// socket) granted roster get, messages and presence on localhost gets its grants advertised
// after the handshake, reads a user's roster, sends a message on behalf of the server, sees the
// user's presence, and is refused what its grant does not give (roster set; another component
// without a grant is refused everything). module.waitFor resolves when the component connects.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { RawClient, login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const NS_COMPONENT = 'jabber:component:accept';
const NS_STREAMS = 'http://etherx.jabber.org/streams';
const PRIV = 'urn:xmpp:privilege:2';
const ROSTER = 'jabber:iq:roster';
const SECRET = 's3cret';

describe('e2e: privileged components (XEP-0356)', function () {
  let server: TestServer;
  let alice: TestClient;
  const raws: RawClient[] = [];

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass' },
      config: {
        pluginPaths: [path.join(ROOT, 'spec', 'fixtures', 'modules')],
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'component', 'privilege', 'waitfor_probe'],
        componentPorts: [0],
        components: { 'priv.localhost': { secret: SECRET }, 'other.localhost': { secret: SECRET } },
        privilege: {
          entities: { 'priv.localhost': { roster: 'get', message: 'outgoing', presence: 'managed_entity' } },
          delegations: { 'urn:example:delegated': { jid: 'priv.localhost' } },
        },
        waitfor_probe: { component: 'priv.localhost' },
      },
    });
    alice = await login(server, 'alice', 'alice-pass');
    await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'bob@localhost', name: 'Bob' }, xml('group', {}, 'Friends')))));
  });
  after(async function () {
    for (const c of raws) c.close();
    await alice?.stop();
    await server.destroy();
  });

  /** Connect a component and complete the handshake. */
  const connect = async (domain: string): Promise<RawClient> => {
    const c = await RawClient.connect(server.componentPort);
    raws.push(c);
    c.write(`<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='${NS_STREAMS}' to='${domain}'>`);
    const attrs = await c.expectHeader();
    c.write(`<handshake>${createHash('sha1').update(attrs.id + SECRET).digest('hex')}</handshake>`);
    await c.expect((el) => el.name === 'handshake');
    return c;
  };

  let priv: RawClient;

  it('advertises the grants to the component when it connects, and module.waitFor resolves', async function () {
    const from = server.output.length;
    const connecting = connect('priv.localhost');
    priv = await connecting;
    const adv = await priv.expect((el) => el.name === 'message' && el.getChild('privilege', PRIV) !== undefined);
    assert.equal(adv.attrs.from, 'localhost');
    const perms = Object.fromEntries(adv.getChild('privilege', PRIV)!.getChildren('perm').map((p) => [p.attrs.access, p.attrs.type]));
    assert.deepEqual(perms, { roster: 'get', message: 'outgoing', presence: 'managed_entity' });
    assert.equal(adv.getChild('privilege', PRIV)!.getChildren('perm').find((p) => p.attrs.access === 'roster')?.attrs.push, 'true');
    await server.waitForOutput(/waitFor priv\.localhost: connected/, 5000, from);
  });

  it("reads a user's roster, answered from the user's bare JID", async function () {
    priv.write(`<iq type='get' id='r1' from='priv.localhost' to='alice@localhost'><query xmlns='${ROSTER}'/></iq>`);
    const r = await priv.expect((el) => el.name === 'iq' && el.attrs.id === 'r1');
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'alice@localhost');
    const item = r.getChild('query', ROSTER)!.getChild('item')!;
    assert.equal(item.attrs.jid, 'bob@localhost');
    assert.equal(item.getChildText('group'), 'Friends');
  });

  it("pushes the user's roster changes to the component (§4.4)", async function () {
    const pushed = priv.expect((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === 'carol@localhost');
    await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'carol@localhost' }))));
    assert.equal((await pushed).attrs.from, 'alice@localhost');
  });

  it('refuses what the grant does not give: roster set', async function () {
    priv.write(`<iq type='set' id='r2' from='priv.localhost' to='alice@localhost'><query xmlns='${ROSTER}'><item jid='eve@localhost'/></query></iq>`);
    const r = await priv.expect((el) => el.name === 'iq' && el.attrs.id === 'r2');
    assert.equal(stanzaErrorCondition(r), 'forbidden');
  });

  it('refuses a component without a grant', async function () {
    const other = await connect('other.localhost');
    other.write(`<iq type='get' id='r3' from='other.localhost' to='alice@localhost'><query xmlns='${ROSTER}'/></iq>`);
    const r = await other.expect((el) => el.name === 'iq' && el.attrs.id === 'r3');
    assert.equal(stanzaErrorCondition(r), 'forbidden');
  });

  it('sends a message on behalf of the server', async function () {
    const got = alice.expect((el) => el.name === 'message' && el.getChildText('body') === 'from the server');
    priv.write(`<message from='priv.localhost' to='localhost' id='m1'><privilege xmlns='${PRIV}'><forwarded xmlns='urn:xmpp:forward:0'>` +
      `<message xmlns='jabber:client' from='localhost' to='${alice.jid}' type='chat'><body>from the server</body></message></forwarded></privilege></message>`);
    assert.equal((await got).attrs.from, 'localhost');
  });

  it('forwards a delegated namespace to the component and its answer to the requester (XEP-0355)', async function () {
    const forwarded = priv.expect((el) => el.name === 'iq' && el.getChild('delegation', 'urn:xmpp:delegation:2') !== undefined);
    const answer = alice.iqRaw(xml('iq', { type: 'get', to: 'localhost', id: 'd1' }, xml('query', { xmlns: 'urn:example:delegated' })));
    const fwd = await forwarded;
    assert.equal(fwd.attrs.type, 'set');
    const inner = fwd.getChild('delegation', 'urn:xmpp:delegation:2')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('iq')!;
    assert.equal(inner.attrs.from, alice.jid);
    priv.write(`<iq type='result' id='${fwd.attrs.id}' from='priv.localhost' to='localhost'><delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>` +
      `<iq xmlns='jabber:client' type='result' id='d1' from='localhost' to='${alice.jid}'><query xmlns='urn:example:delegated'><answer/></query></iq></forwarded></delegation></iq>`);
    const r = await answer;
    assert.equal(r.attrs.type, 'result');
    assert.ok(r.getChild('query', 'urn:example:delegated')?.getChild('answer'));
  });

  it("relays the managed entity's presence", async function () {
    const seen = priv.expect((el) => el.name === 'presence' && el.attrs.from === alice.jid);
    await alice.send(xml('presence', {}, xml('status', {}, 'here')));
    assert.equal((await seen).getChildText('status'), 'here');
  });
});
