// Privileged components, presence permission (XEP-0356 §7) over real sockets: with
// managed_entity a component receives the users' initial and unavailable presence (also an
// unavailable a resource sends without leaving); with roster it also receives the presence of
// the users' contacts (here another component's users, subscribed to), also while the user is
// offline, never a stranger's directed presence; a component connecting later is sent the
// current presences (business rule 1); a reload that withdraws the grant stops the copies.
import assert from 'node:assert/strict';
import { login, xml, type Element, type RawClient, type TestClient } from '../helpers/client.ts';
import { connectComponent, NS_PRIVILEGE } from '../helpers/component.ts';
import { startServer, writeConfig, type TestServer } from '../helpers/server.ts';

const ROSTER = 'jabber:iq:roster';
const SECRET = 's3cret';
const ROMEO = 'romeo@contacts.localhost/orchard';

function config(grants: Record<string, unknown>): Record<string, unknown> {
  return {
    modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'presence', 'disco', 'component', 'privilege'],
    componentPorts: [0],
    components: Object.fromEntries(['priv', 'me', 'late', 'contacts'].map((c) => [`${c}.localhost`, { secret: SECRET }])),
    privilege: { entities: grants },
  };
}
const GRANTS = {
  'priv.localhost': { roster: 'get', presence: 'roster' },
  'me.localhost': { presence: 'managed_entity' },
  'late.localhost': { roster: 'get', presence: 'roster' },
};

const presenceFrom = (from: string, pred: (el: Element) => boolean = () => true) => (el: Element) => el.name === 'presence' && el.attrs.from === from && pred(el);
const status = (text: string) => (el: Element) => el.getChildText('status') === text;

describe('e2e: privileged components receive presence (XEP-0356 §7)', function () {
  let server: TestServer;
  let alice: TestClient;
  let priv: RawClient;
  let me: RawClient;
  let contacts: RawClient;
  const raws: RawClient[] = [];

  before(async function () {
    server = await startServer({ users: { alice: 'alice-pass' }, config: config(GRANTS) });
    priv = await connectComponent(server.componentPort, 'priv.localhost', SECRET);
    me = await connectComponent(server.componentPort, 'me.localhost', SECRET);
    contacts = await connectComponent(server.componentPort, 'contacts.localhost', SECRET);
    raws.push(priv, me, contacts);
    alice = await login(server, 'alice', 'alice-pass');
    await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
  });
  after(async function () {
    for (const c of raws) c.close();
    await alice?.stop();
    await server.destroy();
  });

  /** No presence from `from` is queued in `c` (everything before a later stanza was processed). */
  const noneFrom = (c: RawClient, from: string) => assert.deepEqual(c.inbox.drain().filter(presenceFrom(from)).map(String), []);

  it("sends the user's initial presence to components with managed_entity or roster access", async function () {
    const toPriv = priv.expect(presenceFrom(alice.jid, status('here')));
    const toMe = me.expect(presenceFrom(alice.jid, status('here')));
    await alice.send(xml('presence', {}, xml('status', {}, 'here')));
    assert.equal((await toPriv).attrs.to, 'priv.localhost');
    assert.equal((await toMe).attrs.to, 'me.localhost');
  });

  it("sends a subscribed contact's presence with roster access only", async function () {
    // alice subscribes to romeo (a user of another domain, served by the contacts component).
    const request = contacts.expect((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    const pushed = alice.expect((el) => el.name === 'iq' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === 'to');
    await alice.send(xml('presence', { to: 'romeo@contacts.localhost', type: 'subscribe' }));
    await request;
    contacts.write(`<presence from='romeo@contacts.localhost' to='alice@localhost' type='subscribed'/>`);
    await pushed;
    const toPriv = priv.expect(presenceFrom(ROMEO, status('in the orchard')));
    const toAlice = alice.expect(presenceFrom(ROMEO));
    contacts.write(`<presence from='${ROMEO}' to='alice@localhost' id='p1'><status>in the orchard</status></presence>`);
    assert.equal((await toPriv).attrs.to, 'priv.localhost');
    await toAlice;
    // me.localhost (managed_entity) gets alice's next presence, and nothing of romeo before it.
    const next = me.expect(presenceFrom(alice.jid, status('still here')));
    await alice.send(xml('presence', {}, xml('status', {}, 'still here')));
    await next;
    noneFrom(me, ROMEO);
  });

  it("does not send a stranger's directed presence", async function () {
    contacts.write(`<presence from='juliet@contacts.localhost/balcony' to='alice@localhost'><status>who?</status></presence>`);
    await alice.expect(presenceFrom('juliet@contacts.localhost/balcony'));
    const next = priv.expect(presenceFrom(alice.jid, status('third')));
    await alice.send(xml('presence', {}, xml('status', {}, 'third')));
    await next;
    noneFrom(priv, 'juliet@contacts.localhost/balcony');
  });

  it('sends unavailable when a resource says so without leaving, and contacts\' presence while the user is unavailable', async function () {
    const toPriv = priv.expect(presenceFrom(alice.jid, (el) => el.attrs.type === 'unavailable'));
    const toMe = me.expect(presenceFrom(alice.jid, (el) => el.attrs.type === 'unavailable'));
    await alice.send(xml('presence', { type: 'unavailable' }));
    await toPriv;
    await toMe;
    const romeo = priv.expect(presenceFrom(ROMEO, status('waiting')));
    contacts.write(`<presence from='${ROMEO}' to='alice@localhost'><status>waiting</status></presence>`);
    await romeo;
  });

  it('sends a component connecting later the current presences (business rule 1)', async function () {
    const back = priv.expect(presenceFrom(alice.jid, status('back')));
    await alice.send(xml('presence', {}, xml('status', {}, 'back')));
    await back;
    const late = await connectComponent(server.componentPort, 'late.localhost', SECRET);
    raws.push(late);
    await late.expect(presenceFrom(alice.jid, status('back')));
    await late.expect(presenceFrom(ROMEO, status('waiting')));
  });

  it('stops when a config reload withdraws the presence access', async function () {
    const withdrawn = priv.expect((el) => el.name === 'message' && el.getChild('privilege', NS_PRIVILEGE)?.getChildren('perm').find((p) => p.attrs.access === 'presence')?.attrs.type === 'none', 15_000);
    writeConfig(server.dir, 'localhost', config({ ...GRANTS, 'priv.localhost': { roster: 'get' } }));
    server.proc!.kill('SIGHUP');
    await withdrawn;
    const toMe = me.expect(presenceFrom(alice.jid, status('after reload')));
    contacts.write(`<presence from='${ROMEO}' to='alice@localhost'><status>gone</status></presence>`);
    await alice.expect(presenceFrom(ROMEO, status('gone')));
    await alice.send(xml('presence', {}, xml('status', {}, 'after reload')));
    await toMe;
    noneFrom(priv, ROMEO);
    noneFrom(priv, alice.jid);
  });
});
