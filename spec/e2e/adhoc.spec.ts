// Ad-hoc commands (XEP-0050) over real sockets: commands declared by a module (the fixture
// spec/fixtures/modules/mod_adhoc_probe.ts), listed by disco per requester's rights, a two-stage
// session with prev, XEP-0122 validation errors, and an exported method offered as a command.
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, stanzaErrorCondition, type Element, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const CMD = 'http://jabber.org/protocol/commands';
const DATA = 'jabber:x:data';
const ITEMS = 'http://jabber.org/protocol/disco#items';
const INFO = 'http://jabber.org/protocol/disco#info';

function submit(fields: Record<string, string>): Element {
  return xml('x', { xmlns: DATA, type: 'submit' }, ...Object.entries(fields).map(([v, value]) => xml('field', { var: v }, xml('value', {}, value))));
}

describe('e2e: ad-hoc commands (XEP-0050)', function () {
  let server: TestServer;
  let alice: TestClient;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pass' },
      config: { pluginPaths: [path.join(ROOT, 'spec', 'fixtures', 'modules')], modulesEnabled: ['tls', 'saslauth', 'bind', 'disco', 'adhoc', 'adhoc_probe'] },
    });
    alice = await login(server, 'alice', 'alice-pass');
  });
  after(async function () {
    await alice?.stop();
    await server.destroy();
  });

  const command = (attrs: Record<string, string>, ...children: Element[]) =>
    alice.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: CMD, ...attrs }, ...children)));

  it('lists the commands the requester may run on the commands node, and describes a command node', async function () {
    const items = (await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: ITEMS, node: CMD })))).getChild('query', ITEMS)!;
    assert.deepEqual(items.getChildren('item').map((i) => `${i.attrs.jid} ${i.attrs.node} ${i.attrs.name}`).sort(), [
      'localhost cadence:adhoc_probe#add Add two numbers',
      'localhost probe#order Order a drink',
    ]);
    const info = (await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: INFO, node: 'probe#order' })))).getChild('query', INFO)!;
    assert.equal(info.getChild('identity')?.attrs.type, 'command-node');
    assert.deepEqual(info.getChildren('feature').map((f) => f.attrs.var).sort(), [CMD, DATA]);
    const host = (await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: INFO })))).getChild('query', INFO)!;
    assert.ok(host.getChildren('feature').some((f) => f.attrs.var === CMD));
  });

  it('runs a two-stage command, going back with prev, and refuses an out-of-range value (XEP-0122)', async function () {
    const first = (await command({ node: 'probe#order', action: 'execute' })).getChild('command', CMD)!;
    assert.equal(first.attrs.status, 'executing');
    const sessionid = first.attrs.sessionid as string;
    assert.equal(first.getChild('actions')?.attrs.execute, 'next');
    assert.equal(first.getChild('x', DATA)?.getChildText('title'), 'Drink');

    const second = (await command({ node: 'probe#order', sessionid, action: 'next' }, submit({ drink: 'tea' }))).getChild('command', CMD)!;
    assert.equal(second.getChild('x', DATA)?.getChildText('title'), 'How much tea');
    assert.ok(second.getChild('actions')?.getChild('prev'), 'prev offered on the second stage');

    const back = (await command({ node: 'probe#order', sessionid, action: 'prev' })).getChild('command', CMD)!;
    const drink = back.getChild('x', DATA)!.getChildren('field').find((f) => f.attrs.var === 'drink')!;
    assert.equal(drink.getChildText('value'), 'tea', 'the earlier answer is shown again');

    const coffee = (await command({ node: 'probe#order', sessionid, action: 'next' }, submit({ drink: 'coffee' }))).getChild('command', CMD)!;
    assert.equal(coffee.getChild('x', DATA)?.getChildText('title'), 'How much coffee');

    const tooMany = await command({ node: 'probe#order', sessionid, action: 'complete' }, submit({ cups: '9' }));
    assert.equal(stanzaErrorCondition(tooMany), 'bad-request');
    assert.ok(tooMany.getChild('error')?.getChild('bad-payload', CMD));

    const done = (await command({ node: 'probe#order', sessionid, action: 'complete' }, submit({ cups: '2' }))).getChild('command', CMD)!;
    assert.equal(done.attrs.status, 'completed');
    assert.equal(done.getChildText('note'), '2 cups of coffee');

    const after = await command({ node: 'probe#order', sessionid, action: 'complete' }, submit({ cups: '2' }));
    assert.equal(stanzaErrorCondition(after), 'not-allowed');
    assert.ok(after.getChild('error')?.getChild('session-expired', CMD));
  });

  it('cancels a session', async function () {
    const first = (await command({ node: 'probe#order' })).getChild('command', CMD)!;
    const canceled = (await command({ node: 'probe#order', sessionid: first.attrs.sessionid as string, action: 'cancel' })).getChild('command', CMD)!;
    assert.equal(canceled.attrs.status, 'canceled');
  });

  it('offers an exported method with typed parameters as a command with a generated form', async function () {
    const first = (await command({ node: 'cadence:adhoc_probe#add', action: 'execute' })).getChild('command', CMD)!;
    const form = first.getChild('x', DATA)!;
    const b = form.getChildren('field').find((f) => f.attrs.var === 'b')!;
    assert.equal(b.getChild('validate', 'http://jabber.org/protocol/xdata-validate')?.attrs.datatype, 'xs:integer');
    const sessionid = first.attrs.sessionid as string;
    const bad = await command({ node: 'cadence:adhoc_probe#add', sessionid, action: 'complete' }, submit({ a: 'x', b: '2' }));
    assert.equal(stanzaErrorCondition(bad), 'bad-request');
    const done = (await command({ node: 'cadence:adhoc_probe#add', sessionid, action: 'complete' }, submit({ a: '40', b: '2' }))).getChild('command', CMD)!;
    assert.equal(done.attrs.status, 'completed');
    const result = done.getChild('x', DATA)!;
    assert.equal(result.attrs.type, 'result');
    assert.equal(result.getChildren('field').find((f) => f.attrs.var === 'result')?.getChildText('value'), '42');
  });

  it('answers item-not-found for an unknown node and bad-action for an action the stage does not offer', async function () {
    assert.equal(stanzaErrorCondition(await command({ node: 'probe#nothing' })), 'item-not-found');
    const first = (await command({ node: 'probe#order' })).getChild('command', CMD)!;
    const prev = await command({ node: 'probe#order', sessionid: first.attrs.sessionid as string, action: 'prev' });
    assert.ok(prev.getChild('error')?.getChild('bad-action', CMD));
  });
});
