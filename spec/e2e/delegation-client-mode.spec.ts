// Namespace delegation, client mode (XEP-0355 §5) over real sockets: a component asks to manage
// a namespace for alice; the server asks alice with a form (challenge, default 0); when she
// allows it the component is told (<delegation to='alice@localhost'>), then alice's iqs to the
// server and anyone's iqs to alice's bare JID in that namespace go to the component (not its
// own), and the grant ends with alice's session (the component is told again). Refused:
// urn:xmpp:delegation:2 itself (forbidden), a user who is offline, a namespace the user refused.
import assert from 'node:assert/strict';
import { login, stanzaErrorCondition, xml, type Element, type RawClient, type TestClient } from '../helpers/client.ts';
import { connectComponent, NS_DELEGATION, NS_FORWARD } from '../helpers/component.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const SECRET = 's3cret';
const NS = 'urn:example:client-ns';

describe('e2e: namespace delegation in client mode (XEP-0355 §5)', function () {
  let server: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  let pep: RawClient;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass', bob: 'bob-pass', carol: 'carol-pass' },
      config: {
        modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'presence', 'message', 'disco', 'component', 'privilege'],
        componentPorts: [0],
        components: { 'pep.localhost': { secret: SECRET } },
      },
    });
    alice = await login(server, 'alice', 'alice-pass', { presence: true });
    bob = await login(server, 'bob', 'bob-pass');
    pep = await connectComponent(server.componentPort, 'pep.localhost', SECRET);
  });
  after(async function () {
    pep?.close();
    await alice?.stop();
    await bob?.stop();
    await server.destroy();
  });

  const ask = (id: string, user: string, namespaces: string[]) => {
    pep.write(`<iq type='get' id='${id}' from='pep.localhost' to='localhost'><query xmlns='${NS_DELEGATION}' to='${user}'>${namespaces.map((n) => `<delegate namespace='${n}'/>`).join('')}</query></iq>`);
    return pep.expect((el) => el.name === 'iq' && el.attrs.id === id);
  };
  const notice = () => pep.expect((el) => el.name === 'message' && el.getChild('delegation', NS_DELEGATION)?.attrs.to === 'alice@localhost');
  const delegatedOf = (m: Element) => m.getChild('delegation', NS_DELEGATION)!.getChildren('delegated').map((d) => d.attrs.namespace as string);
  const formFor = (c: TestClient) => c.expect((el) => el.name === 'message' && el.getChild('x', 'jabber:x:data') !== undefined);
  const answer = (form: Element, value: '0' | '1') => {
    const challenge = form.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'challenge')!.getChildText('value')!;
    return alice.send(xml('message', { to: 'localhost' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE' }, xml('value', {}, NS_DELEGATION)),
      xml('field', { var: 'challenge' }, xml('value', {}, challenge)),
      xml('field', { var: NS }, xml('value', {}, value)))));
  };

  it('refuses urn:xmpp:delegation:2 itself, and a user who is not online to allow it', async function () {
    assert.equal(stanzaErrorCondition(await ask('a1', 'alice@localhost', [NS_DELEGATION])), 'forbidden');
    assert.equal(stanzaErrorCondition(await ask('a2', 'carol@localhost', [NS])), 'recipient-unavailable');
  });

  it('asks the user with a form; a refusal delegates nothing', async function () {
    const form = formFor(alice);
    assert.equal((await ask('b1', 'alice@localhost', [NS])).attrs.type, 'result');
    const f = await form;
    const field = f.getChild('x', 'jabber:x:data')!.getChildren('field').find((x) => x.attrs.var === NS)!;
    assert.equal(field.attrs.type, 'list-single');
    assert.equal(field.getChildText('value'), '0', 'refused by default');
    const told = notice();
    await answer(f, '0');
    assert.deepEqual(delegatedOf(await told), []);
    const r = await bob.iqRaw(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: NS })));
    assert.equal(r.attrs.type, 'error', 'not forwarded');
  });

  it("once allowed, forwards alice's iqs to the server and others' iqs to her bare JID in that namespace", async function () {
    const form = formFor(alice);
    await ask('c1', 'alice@localhost', [NS]);
    const told = notice();
    await answer(await form, '1');
    assert.deepEqual(delegatedOf(await told), [NS]);

    for (const [client, to] of [[alice, 'localhost'], [bob, 'alice@localhost']] as const) {
      const fwd = pep.expect((el) => el.name === 'iq' && el.getChild('delegation', NS_DELEGATION) !== undefined);
      const reply = client.iqRaw(xml('iq', { type: 'get', to }, xml('query', { xmlns: NS })));
      const outer = await fwd;
      const inner = outer.getChild('delegation', NS_DELEGATION)!.getChild('forwarded', NS_FORWARD)!.getChild('iq')!;
      assert.equal(inner.attrs.from, client.jid);
      pep.write(`<iq type='result' id='${outer.attrs.id as string}' from='pep.localhost' to='localhost'><delegation xmlns='${NS_DELEGATION}'><forwarded xmlns='${NS_FORWARD}'>` +
        `<iq xmlns='jabber:client' type='result' id='${inner.attrs.id as string}' to='${client.jid}'><query xmlns='${NS}'><managed/></query></iq></forwarded></delegation></iq>`);
      const r = await reply;
      assert.equal(r.attrs.type, 'result', r.toString());
      assert.ok(r.getChild('query', NS)?.getChild('managed'));
    }
    // bob's own iq to the server is not alice's to delegate.
    const own = await bob.iqRaw(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS })));
    assert.equal(own.attrs.type, 'error');
    // The managing entity's own iq to alice's bare JID is handled as usual, not sent back to it.
    pep.write(`<iq type='get' id='own1' from='pep.localhost' to='alice@localhost'><query xmlns='${NS}'/></iq>`);
    assert.equal((await pep.expect((el) => el.name === 'iq' && el.attrs.id === 'own1')).attrs.type, 'error');
  });

  const DISCO = 'http://jabber.org/protocol/disco#info';
  const aliceFeatures = async () => (await bob.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: DISCO })))).getChild('query', DISCO)!.getChildren('feature').map((f) => f.attrs.var as string);

  it("nests the managing entity's bare-JID features into alice's disco#info (asked when she allowed it)", async function () {
    const q = await pep.expect((el) => el.name === 'iq' && el.attrs.type === 'get' && el.getChild('query', DISCO)?.attrs.node === `${NS_DELEGATION}:bare:${NS}`);
    pep.write(`<iq type='result' id='${q.attrs.id as string}' from='pep.localhost' to='localhost'><query xmlns='${DISCO}' node='${NS_DELEGATION}:bare:${NS}'><feature var='${NS}#managed'/></query></iq>`);
    pep.write(`<iq type='get' id='sync' from='pep.localhost' to='localhost'><query xmlns='${DISCO}'/></iq>`);
    await pep.expect((el) => el.name === 'iq' && el.attrs.id === 'sync');
    assert.ok((await aliceFeatures()).includes(`${NS}#managed`));
  });

  it("ends with alice's session: the component is told, nothing is forwarded any more", async function () {
    const told = notice();
    await alice.stop();
    assert.deepEqual(delegatedOf(await told), []);
    assert.ok(!(await aliceFeatures()).includes(`${NS}#managed`));
    const r = await bob.iqRaw(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: NS })));
    assert.equal(r.attrs.type, 'error');
  });
});
