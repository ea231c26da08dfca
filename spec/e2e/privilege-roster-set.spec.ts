// Privileged components, roster set (XEP-0356 §4.3 with access set/both) over real sockets: a raw
// component changes a user's roster as the user's own roster set would (RFC 6121 §2.3 rules, a
// 'subscription' other than "remove" ignored), is answered from the user's bare JID, the user's
// interested resource gets the roster push and so does the component (§4.4); offline users too;
// a component with roster get only is refused with forbidden; a config reload that changes the
// grants advertises them again and enforces them from the next stanza.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type Element, type RawClient, type TestClient } from '../helpers/client.ts';
import { connectComponent, NS_PRIVILEGE } from '../helpers/component.ts';
import { startServer, writeConfig, type TestServer } from '../helpers/server.ts';

const ROSTER = 'jabber:iq:roster';
const SECRET = 's3cret';

function config(grants: Record<string, unknown>): Record<string, unknown> {
  return {
    modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'presence', 'disco', 'component', 'privilege'],
    componentPorts: [0],
    components: { 'priv.localhost': { secret: SECRET }, 'reader.localhost': { secret: SECRET } },
    privilege: { entities: grants },
  };
}
const GRANTS = { 'priv.localhost': { roster: 'both' }, 'reader.localhost': { roster: 'get' } };

const perms = (adv: Element) =>
  Object.fromEntries(adv.getChild('privilege', NS_PRIVILEGE)!.getChildren('perm').map((p) => [p.attrs.access, p.attrs.type]));

describe('e2e: privileged components set rosters (XEP-0356 §4.3)', function () {
  let server: TestServer;
  let alice: TestClient;
  let priv: RawClient;
  let reader: RawClient;
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pass', bob: 'bob-pass' }, config: config(GRANTS) });
    alice = await login(server, 'alice', 'alice-pass');
    clients.push(alice);
    await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER }))); // interested in pushes
    priv = await connectComponent(server.componentPort, 'priv.localhost', SECRET);
    reader = await connectComponent(server.componentPort, 'reader.localhost', SECRET);
    raws.push(priv, reader);
  });
  after(async function () {
    for (const c of raws) c.close();
    for (const c of clients) await c.stop();
    await server.destroy();
  });

  const set = (c: RawClient, from: string, id: string, user: string, items: string) => {
    c.write(`<iq type='set' id='${id}' from='${from}' to='${user}'><query xmlns='${ROSTER}'>${items}</query></iq>`);
    return c.expect((el) => el.name === 'iq' && el.attrs.id === id);
  };

  it('advertises roster access both, with pushes', async function () {
    const adv = await priv.expect((el) => el.name === 'message' && el.getChild('privilege', NS_PRIVILEGE) !== undefined);
    assert.equal(perms(adv).roster, 'both');
    assert.equal(adv.getChild('privilege', NS_PRIVILEGE)!.getChildren('perm').find((p) => p.attrs.access === 'roster')?.attrs.push, 'true');
  });

  it("adds an item as the user's own set would: answered from the bare JID, pushed to the user and the component", async function () {
    const userPush = alice.expect((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === 'romeo@montague.lit');
    const componentPush = priv.expect((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === 'romeo@montague.lit');
    // 'subscription' other than "remove" is ignored (RFC 6121 §2.1.2.5): the component cannot grant itself a subscription.
    const r = await set(priv, 'priv.localhost', 's1', 'alice@localhost', `<item jid='romeo@montague.lit' name='Romeo' subscription='both'><group>Rivals</group></item>`);
    assert.equal(r.attrs.type, 'result', r.toString());
    assert.equal(r.attrs.from, 'alice@localhost');
    const item = (await userPush).getChild('query', ROSTER)!.getChild('item')!;
    assert.equal(item.attrs.name, 'Romeo');
    assert.equal(item.attrs.subscription, 'none');
    assert.equal(item.getChildText('group'), 'Rivals');
    assert.equal((await componentPush).attrs.from, 'alice@localhost');
    const roster = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
    const mine = roster.getChild('query', ROSTER)!.getChildren('item').find((i) => i.attrs.jid === 'romeo@montague.lit');
    assert.equal(mine?.attrs.subscription, 'none');
  });

  it("changes an offline user's roster, which the user sees at login", async function () {
    const componentPush = priv.expect((el) => el.name === 'iq' && el.attrs.type === 'set' && el.attrs.from === 'bob@localhost');
    const r = await set(priv, 'priv.localhost', 's2', 'bob@localhost', `<item jid='nurse@capulet.lit'/>`);
    assert.equal(r.attrs.type, 'result', r.toString());
    await componentPush;
    const bob = await login(server, 'bob', 'bob-pass');
    clients.push(bob);
    const roster = await bob.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
    assert.deepEqual(roster.getChild('query', ROSTER)!.getChildren('item').map((i) => i.attrs.jid), ['nurse@capulet.lit']);
  });

  it('removes an item (subscription="remove"), pushed as removed', async function () {
    const userPush = alice.expect((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === 'remove');
    const r = await set(priv, 'priv.localhost', 's3', 'alice@localhost', `<item jid='romeo@montague.lit' subscription='remove'/>`);
    assert.equal(r.attrs.type, 'result', r.toString());
    assert.equal((await userPush).getChild('query', ROSTER)!.getChild('item')!.attrs.jid, 'romeo@montague.lit');
  });

  it('answers an invalid set with the error the user would get', async function () {
    assert.equal(stanzaErrorCondition(await set(priv, 'priv.localhost', 'e1', 'alice@localhost', `<item jid='a@x.lit'/><item jid='b@x.lit'/>`)), 'bad-request');
    assert.equal(stanzaErrorCondition(await set(priv, 'priv.localhost', 'e2', 'alice@localhost', `<item jid='alice@localhost'/>`)), 'not-allowed');
    assert.equal(stanzaErrorCondition(await set(priv, 'priv.localhost', 'e3', 'alice@localhost', `<item jid='romeo@montague.lit' subscription='remove'/>`)), 'item-not-found');
    assert.equal(stanzaErrorCondition(await set(priv, 'priv.localhost', 'e4', 'nobody@localhost', `<item jid='romeo@montague.lit'/>`)), 'forbidden');
  });

  it('refuses a roster set to a component granted get only', async function () {
    const r = await set(reader, 'reader.localhost', 'g1', 'alice@localhost', `<item jid='eve@localhost'/>`);
    assert.equal(stanzaErrorCondition(r), 'forbidden');
  });

  it('applies grants changed by a config reload: advertised again, enforced at once', async function () {
    const readerAdv = reader.expect((el) => el.name === 'message' && el.getChild('privilege', NS_PRIVILEGE) !== undefined && perms(el).roster === 'both', 15_000);
    const privAdv = priv.expect((el) => el.name === 'message' && el.getChild('privilege', NS_PRIVILEGE) !== undefined && perms(el).roster === 'none', 15_000);
    writeConfig(server.dir, 'localhost', config({ 'reader.localhost': { roster: 'both' } }));
    server.proc!.kill('SIGHUP');
    await readerAdv;
    await privAdv;
    assert.equal((await set(reader, 'reader.localhost', 'g2', 'alice@localhost', `<item jid='eve@localhost'/>`)).attrs.type, 'result');
    assert.equal(stanzaErrorCondition(await set(priv, 'priv.localhost', 'g3', 'alice@localhost', `<item jid='mallory@localhost'/>`)), 'forbidden');
  });
});
