// The Multi-User Chat service as a component: the default conference.localhost is served out of
// the box, listed in the host's disco#items, answers disco#info with conference/text, lists
// public rooms (not hidden or locked ones), and a configured component on another name works too.
import assert from 'node:assert/strict';
import { login, xml, type TestClient } from '../helpers/client.ts';
import { createInstant, configure, errorCondition, enter, MUC, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, statuses } from '../helpers/muc-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'muc-service-pass';

describe('e2e: MUC service (XEP-0045 §6)', function () {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (user: string) => {
    const c = await login(server, user, PASS);
    clients.push(c);
    return c;
  };
  const items = async (c: TestClient, to: string) =>
    ((await c.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: NS_DISCO_ITEMS })))).getChild('query')?.getChildren('item') ?? []).map((i) => i.attrs.jid as string);

  before(async function () {
    // No `components` in the config: the embedded default conference.localhost is served.
    server = await startServer({ users: { alice: PASS, bob: PASS } });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('is listed in the disco#items of the host and identifies as conference/text with the MUC features', async function () {
    const c = await connect('alice');
    assert.ok((await items(c, 'localhost')).includes(MUC));
    const info = (await c.iq(xml('iq', { type: 'get', to: MUC }, xml('query', { xmlns: NS_DISCO_INFO })))).getChild('query')!;
    const identity = info.getChild('identity')!;
    assert.equal(identity.attrs.category, 'conference');
    assert.equal(identity.attrs.type, 'text');
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [NS_MUC, 'urn:xmpp:occupant-id:0', 'urn:xmpp:sid:0']) assert.ok(features.includes(f), f);
  });

  it('lists public rooms, not hidden or still locked ones', async function () {
    const alice = await connect('alice');
    await createInstant(alice, `open@${MUC}`, 'alice');
    await createInstant(alice, `secret@${MUC}`, 'alice');
    assert.equal((await configure(alice, `secret@${MUC}`, { 'muc#roomconfig_publicroom': '0' })).attrs.type, 'result');
    const locked = await enter(alice, `locked@${MUC}/alice`);
    assert.deepEqual(statuses(locked), [110, 201]);
    const listed = await items(alice, MUC);
    assert.ok(listed.includes(`open@${MUC}`));
    assert.ok(!listed.includes(`secret@${MUC}`));
    assert.ok(!listed.includes(`locked@${MUC}`));
  });

  it('answers a message to the service domain with service-unavailable and a locked room with item-not-found', async function () {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.send(xml('message', { to: MUC, id: 'm1' }, xml('body', {}, 'hi')));
    const err = await alice.expect((el) => el.name === 'message' && el.attrs.id === 'm1');
    assert.equal(errorCondition(err), 'service-unavailable');
    await enter(alice, `pending@${MUC}/alice`);
    await bob.send(xml('presence', { to: `pending@${MUC}/bob` }, xml('x', { xmlns: NS_MUC })));
    const refused = await bob.expect((el) => el.name === 'presence' && el.attrs.from === `pending@${MUC}/bob`);
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'item-not-found');
  });

  describe('configured under another name', function () {
    let other: TestServer;
    before(async function () {
      other = await startServer({ host: 'example.org', users: { carol: PASS }, config: { components: { 'conference.example.org': { module: 'muc', muc: { name: 'Rooms' } } } } });
    });
    after(async function () {
      await other?.destroy();
    });

    it('serves rooms on the configured domain only', async function () {
      const c = await login(other, 'carol', PASS);
      clients.push(c);
      const listed = ((await c.iq(xml('iq', { type: 'get', to: 'example.org' }, xml('query', { xmlns: NS_DISCO_ITEMS })))).getChild('query')?.getChildren('item') ?? []).map((i) => i.attrs.jid);
      assert.deepEqual(listed, ['conference.example.org']);
      const info = (await c.iq(xml('iq', { type: 'get', to: 'conference.example.org' }, xml('query', { xmlns: NS_DISCO_INFO })))).getChild('query')!;
      assert.equal(info.getChild('identity')!.attrs.name, 'Rooms');
      await createInstant(c, 'room@conference.example.org', 'carol');
    });
  });
});
