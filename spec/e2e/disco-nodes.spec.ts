// Disco (XEP-0030) on nodes and on accounts, answered by the modules that own them through
// mod_disco's events (a fixture module, spec/fixtures/modules/mod_disco_nodes.ts).
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, stanzaErrorCondition, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';

describe('e2e: disco on nodes and accounts', function () {
  let server: TestServer;
  let alice: TestClient;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass' },
      config: { pluginPaths: [path.join(ROOT, 'spec', 'fixtures', 'modules')], modulesEnabled: ['tls', 'saslauth', 'bind', 'disco', 'disco_nodes'] },
    });
    alice = await login(server, 'alice', 'alice-pass');
  });
  after(async function () {
    await alice?.stop();
    await server.destroy();
  });

  const ask = (to: string, ns: string, node?: string) =>
    alice.iqRaw(xml('iq', { type: 'get', to }, xml('query', node ? { xmlns: ns, node } : { xmlns: ns })));

  it('answers disco#items on a node of the domain from the owning module', async function () {
    const r = await ask('localhost', ITEMS, 'urn:example:commands');
    const q = r.getChild('query', ITEMS)!;
    assert.equal(q.attrs.node, 'urn:example:commands');
    assert.deepEqual(q.getChildren('item').map((i) => i.attrs.node), ['urn:example:commands#hello']);
  });

  it('answers item-not-found for a node nobody owns', async function () {
    assert.equal(stanzaErrorCondition(await ask('localhost', ITEMS, 'urn:example:nothing')), 'item-not-found');
  });

  it('lets modules add to an account\'s disco#info and disco#items, and answer its nodes', async function () {
    const info = (await ask('bob@localhost', INFO)).getChild('query', INFO)!;
    const ids = info.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`);
    assert.deepEqual(ids.sort(), ['account/registered', 'pubsub/pep']);
    const items = (await ask('bob@localhost', ITEMS)).getChild('query', ITEMS)!;
    assert.deepEqual(items.getChildren('item').map((i) => `${i.attrs.jid} ${i.attrs.node}`), ['bob@localhost urn:example:notes']);
    const node = (await ask('bob@localhost', INFO, 'urn:example:notes')).getChild('query', INFO)!;
    assert.equal(node.attrs.node, 'urn:example:notes');
    assert.equal(node.getChild('identity')?.attrs.type, 'leaf');
  });

  it('answers service-unavailable for an account that does not exist', async function () {
    assert.equal(stanzaErrorCondition(await ask('nobody@localhost', ITEMS)), 'service-unavailable');
  });
});
