// PEP access models end to end (XEP-0163 §4.1, XEP-0060 §4.5): presence (the default) admits
// contacts with a presence subscription, open admits anyone, roster admits contacts in the allowed
// roster groups, whitelist only the owner and members; the node is created with the model through
// publish-options (XEP-0223) or set by configuration.
import assert from 'node:assert/strict';
import { xml, type TestClient } from '../helpers/client.ts';
import { befriend, failure, fetchItems, form, itemsOf, NODE_CONFIG, ok, owner, PEP_MODULES, publish, pubsubIq, login } from '../helpers/pep.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'pep-pass';
const NS = 'urn:example:pep-access';
const payload = (text: string) => xml('note', { xmlns: NS }, text);

describe('e2e: PEP access models', function () {
  let server: TestServer;
  let alice: TestClient;
  let friend: TestClient;
  let stranger: TestClient;
  let member: TestClient;

  before(async function () {
    server = await startServer({ users: { alice: PASS, friend: PASS, stranger: PASS, member: PASS }, config: { modulesEnabled: PEP_MODULES } });
    alice = await login(server, 'alice', PASS, { resource: 'a', presence: true });
    friend = await login(server, 'friend', PASS, { resource: 'f', presence: true });
    stranger = await login(server, 'stranger', PASS, { resource: 's', presence: true });
    member = await login(server, 'member', PASS, { resource: 'm', presence: true });
    await befriend(alice, friend);
    // friend is in alice's roster group 'family'.
    ok(await alice.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' },
      xml('item', { jid: friend.bare }, xml('group', {}, 'family'))))));
  });
  after(async function () {
    await Promise.all([alice, friend, stranger, member].map((c) => c?.stop()));
    await server?.destroy();
  });

  it('presence (default): contacts read, strangers get presence-subscription-required', async function () {
    ok(await pubsubIq(alice, 'set', publish(`${NS}/presence`, 'one', payload('for contacts'))));
    assert.equal(itemsOf(ok(await fetchItems(friend, `${NS}/presence`, alice.bare)))[0]?.getChild('note', NS)?.text(), 'for contacts');
    assert.deepEqual(failure(await fetchItems(stranger, `${NS}/presence`, alice.bare)), { type: 'auth', condition: 'not-authorized', app: 'presence-subscription-required' });
    // Subscribing is refused the same way.
    const sub = await pubsubIq(stranger, 'set', xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('subscribe', { node: `${NS}/presence`, jid: stranger.bare })), alice.bare);
    assert.equal(failure(sub).app, 'presence-subscription-required');
  });

  it('open (publish-options): anyone reads', async function () {
    ok(await pubsubIq(alice, 'set', publish(`${NS}/open`, 'one', payload('for everyone'), { 'pubsub#access_model': 'open' })));
    assert.equal(itemsOf(ok(await fetchItems(stranger, `${NS}/open`, alice.bare)))[0]?.attrs.id, 'one');
  });

  it('roster: only contacts in the allowed groups read', async function () {
    ok(await pubsubIq(alice, 'set', publish(`${NS}/roster`, 'one', payload('for family'))));
    ok(await pubsubIq(alice, 'set', owner(xml('configure', { node: `${NS}/roster` },
      form(NODE_CONFIG, { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': ['family'] })))));
    assert.equal(itemsOf(ok(await fetchItems(friend, `${NS}/roster`, alice.bare)))[0]?.attrs.id, 'one');
    assert.equal(failure(await fetchItems(stranger, `${NS}/roster`, alice.bare)).app, 'not-in-roster-group');
    // Out of the group: no longer admitted.
    ok(await pubsubIq(alice, 'set', owner(xml('configure', { node: `${NS}/roster` },
      form(NODE_CONFIG, { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': ['work'] })))));
    assert.equal(failure(await fetchItems(friend, `${NS}/roster`, alice.bare)).app, 'not-in-roster-group');
  });

  it('whitelist: only the owner and members read; the owner manages members', async function () {
    ok(await pubsubIq(alice, 'set', publish(`${NS}/white`, 'one', payload('private'), { 'pubsub#access_model': 'whitelist' })));
    assert.equal(itemsOf(ok(await fetchItems(alice, `${NS}/white`)))[0]?.attrs.id, 'one');
    assert.deepEqual(failure(await fetchItems(friend, `${NS}/white`, alice.bare)), { type: 'cancel', condition: 'not-allowed', app: 'closed-node' });
    assert.equal(failure(await fetchItems(member, `${NS}/white`, alice.bare)).app, 'closed-node');
    ok(await pubsubIq(alice, 'set', owner(xml('affiliations', { node: `${NS}/white` }, xml('affiliation', { jid: member.bare, affiliation: 'member' })))));
    assert.equal(itemsOf(ok(await fetchItems(member, `${NS}/white`, alice.bare)))[0]?.attrs.id, 'one');
    const affs = ok(await pubsubIq(alice, 'get', owner(xml('affiliations', { node: `${NS}/white` }))));
    const list = affs.getChild('pubsub')?.getChild('affiliations')?.getChildren('affiliation').map((a) => `${a.attrs.jid}=${a.attrs.affiliation}`);
    assert.deepEqual(list?.sort(), [`${alice.bare}=owner`, `${member.bare}=member`].sort());
    // Nobody but the owner publishes to a PEP node.
    assert.equal(failure(await pubsubIq(member, 'set', publish(`${NS}/white`, 'two', payload('mine')), alice.bare)).condition, 'forbidden');
  });
});
