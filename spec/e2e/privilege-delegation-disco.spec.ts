// Namespace delegation, disco nesting (XEP-0355 §7.2) over real sockets: when the managing
// component connects the server asks it for the features of each delegated namespace (nodes
// urn:xmpp:delegation:2::<ns> and urn:xmpp:delegation:2:bare:<ns>) and shows them in the host's
// disco#info and in an account's disco#info, in place of its own features of that namespace
// (here jabber:iq:version, which mod_version would advertise); gone when the component leaves.
import assert from 'node:assert/strict';
import { login, xml, type Element, type RawClient, type TestClient } from '../helpers/client.ts';
import { connectComponent, NS_DELEGATION } from '../helpers/component.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const DISCO = 'http://jabber.org/protocol/disco#info';
const VERSION = 'jabber:iq:version';
const SECRET = 's3cret';
const ITEMS_ANY = 'urn:xmpp:delegation:2:bare:disco#items:*';
const INFO_ANY = 'urn:xmpp:delegation:2:bare:disco#info:*';
const ITEMS = 'http://jabber.org/protocol/disco#items';

describe('e2e: disco nesting of delegated namespaces (XEP-0355 §7.2)', function () {
  let server: TestServer;
  let alice: TestClient;
  let priv: RawClient;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass' },
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'disco', 'version', 'component', 'privilege'],
        componentPorts: [0],
        components: { 'priv.localhost': { secret: SECRET } },
        privilege: { delegations: { [VERSION]: { jid: 'priv.localhost' }, [ITEMS_ANY]: { jid: 'priv.localhost' }, [INFO_ANY]: { jid: 'priv.localhost' } } },
      },
    });
    alice = await login(server, 'alice', 'alice-pass');
  });
  after(async function () {
    priv?.close();
    await alice?.stop();
    await server.destroy();
  });

  const features = (r: Element) => r.getChild('query', DISCO)!.getChildren('feature').map((f) => f.attrs.var as string);
  const hostInfo = () => alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: DISCO })));
  const accountInfo = () => alice.iq(xml('iq', { type: 'get', to: alice.bare }, xml('query', { xmlns: DISCO })));

  it("asks the managing entity for the delegated namespace's features on both nodes when it connects", async function () {
    priv = await connectComponent(server.componentPort, 'priv.localhost', SECRET);
    const adv = await priv.expect((el) => el.name === 'message' && el.getChild('delegation', NS_DELEGATION) !== undefined);
    assert.equal(adv.getChild('delegation', NS_DELEGATION)!.getChild('delegated')!.attrs.namespace, VERSION);
    const asked: string[] = [];
    for (let i = 0; i < 2; i++) {
      const q = await priv.expect((el) => el.name === 'iq' && el.attrs.type === 'get' && el.getChild('query', DISCO) !== undefined);
      const node = q.getChild('query', DISCO)!.attrs.node as string;
      asked.push(node);
      const answer = node === `${NS_DELEGATION}::${VERSION}`
        ? `<feature var='${VERSION}'/><feature var='${VERSION}#os-hidden'/>`
        : `<identity category='client' type='bot'/><feature var='urn:example:account-feature'/>`;
      priv.write(`<iq type='result' id='${q.attrs.id}' from='priv.localhost' to='localhost'><query xmlns='${DISCO}' node='${node}'>${answer}</query></iq>`);
    }
    assert.deepEqual(asked.sort(), [`${NS_DELEGATION}::${VERSION}`, `${NS_DELEGATION}:bare:${VERSION}`]);
    // Both answers were taken in before the server answers this (one stream, in order).
    priv.write(`<iq type='get' id='sync' from='priv.localhost' to='localhost'><query xmlns='${DISCO}'/></iq>`);
    await priv.expect((el) => el.name === 'iq' && el.attrs.id === 'sync');
  });

  it("shows the managing entity's features in the host's disco#info, in place of the server's own", async function () {
    const f = features(await hostInfo());
    assert.ok(f.includes(NS_DELEGATION), f.join(' '));
    assert.ok(f.includes(`${VERSION}#os-hidden`), f.join(' '));
    assert.equal(f.filter((x) => x === VERSION).length, 1);
  });

  it("shows the bare-JID features in an account's disco#info", async function () {
    const r = await accountInfo();
    assert.ok(features(r).includes('urn:example:account-feature'));
    const identities = r.getChild('query', DISCO)!.getChildren('identity').map((i) => `${i.attrs.category as string}/${i.attrs.type as string}`);
    assert.deepEqual(identities.sort(), ['account/registered', 'client/bot']);
  });

  it('forwards disco#items on an account, and disco#info on a node the server does not serve (§7.2 special namespaces)', async function () {
    for (const [ns, node] of [[ITEMS, undefined], [DISCO, 'urn:xmpp:microblog:0']] as const) {
      const fwd = priv.expect((el) => el.name === 'iq' && el.getChild('delegation', NS_DELEGATION) !== undefined);
      const reply = alice.iqRaw(xml('iq', { type: 'get', to: alice.bare }, xml('query', node ? { xmlns: ns, node } : { xmlns: ns })));
      const outer = await fwd;
      const inner = outer.getChild('delegation', NS_DELEGATION)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('iq')!;
      assert.equal(inner.getChild('query', ns)?.attrs.node, node);
      const payload = ns === ITEMS ? `<item jid='${alice.bare}' node='urn:xmpp:microblog:0'/>` : `<identity category='pubsub' type='leaf'/>`;
      priv.write(`<iq type='result' id='${outer.attrs.id as string}' from='priv.localhost' to='localhost'><delegation xmlns='${NS_DELEGATION}'><forwarded xmlns='urn:xmpp:forward:0'>` +
        `<iq xmlns='jabber:client' type='result' id='${inner.attrs.id as string}' to='${alice.jid}'><query xmlns='${ns}'${node ? ` node='${node}'` : ''}>${payload}</query></iq></forwarded></delegation></iq>`);
      const r = await reply;
      assert.equal(r.attrs.type, 'result', r.toString());
      assert.equal(r.attrs.from, alice.bare);
      assert.ok(r.getChild('query', ns)!.getChildren(ns === ITEMS ? 'item' : 'identity').length === 1, r.toString());
    }
  });

  it('drops them when the managing entity leaves (the server does not advertise its own for a delegated namespace)', async function () {
    const from = server.output.length;
    priv.close();
    await server.waitForOutput(/priv\.localhost.*(disconnected|closed|left)/i, 5000, from);
    const f = features(await hostInfo());
    assert.ok(!f.includes(`${VERSION}#os-hidden`), f.join(' '));
    assert.ok(!f.includes(VERSION), f.join(' '));
    assert.ok(!features(await accountInfo()).includes('urn:example:account-feature'));
    const items = await alice.iqRaw(xml('iq', { type: 'get', to: alice.bare }, xml('query', { xmlns: ITEMS })));
    assert.equal(items.getChild('error')?.getChild('service-unavailable') !== undefined, true, items.toString());
  });
});
