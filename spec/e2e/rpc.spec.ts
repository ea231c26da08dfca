// Jabber-RPC (XEP-0009) over real sockets: an exported method of the fixture
// spec/fixtures/modules/mod_adhoc_probe.ts called as XML-RPC by the JID its export allows, its
// fault responses (application error, invalid parameters, unknown method), introspection, and
// forbidden for anyone else.
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, stanzaErrorCondition, type Element, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const RPC = 'jabber:iq:rpc';

const call = (method: string, ...params: Element[]) =>
  xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: RPC }, xml('methodCall', {}, xml('methodName', {}, method), xml('params', {}, ...params.map((v) => xml('param', {}, xml('value', {}, v)))))));
const int = (n: number) => xml('int', {}, String(n));
const str = (s: string) => xml('string', {}, s);

function fault(reply: Element): { code: string; text: string } | undefined {
  const f = reply.getChild('query', RPC)?.getChild('methodResponse')?.getChild('fault');
  if (!f) return undefined;
  const members = f.getChild('value')!.getChild('struct')!.getChildren('member');
  const get = (n: string) => members.find((m) => m.getChildText('name') === n)!.getChild('value')!;
  return { code: get('faultCode').getChildText('int') ?? get('faultCode').getChildText('i4') ?? '', text: get('faultString').getChildText('string') ?? get('faultString').text() };
}

describe('e2e: Jabber-RPC (XEP-0009)', function () {
  let server: TestServer;
  let robot: TestClient;
  let alice: TestClient;

  before(async function () {
    server = await startServer({
      users: { robot: 'robot-pass', alice: 'alice-pass' },
      config: { pluginPaths: [path.join(ROOT, 'spec', 'fixtures', 'modules')], modulesEnabled: ['tls', 'saslauth', 'bind', 'disco', 'rpc', 'adhoc_probe'] },
    });
    robot = await login(server, 'robot', 'robot-pass');
    alice = await login(server, 'alice', 'alice-pass');
  });
  after(async function () {
    await robot?.stop();
    await alice?.stop();
    await server.destroy();
  });

  it('calls an exported method with typed parameters', async function () {
    const r = await robot.iqRaw(call('adhoc_probe.add', int(40), int(2)));
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.getChild('query', RPC)?.getChild('methodResponse')?.getChild('params')?.getChild('param')?.getChild('value')?.getChildText('int'), '42');
  });

  it('answers faults: an application error, invalid parameters, an unknown method', async function () {
    assert.deepEqual(fault(await robot.iqRaw(call('adhoc_probe.fail', str('on purpose')))), { code: '-32500', text: 'failed: on purpose' });
    assert.equal(fault(await robot.iqRaw(call('adhoc_probe.add', str('x'), int(2))))?.code, '-32602');
    assert.equal(fault(await robot.iqRaw(call('adhoc_probe.add', int(1), int(101))))?.code, '-32602');
    assert.equal(fault(await robot.iqRaw(call('nothing.here')))?.code, '-32601');
  });

  it('lists the methods the caller may call', async function () {
    const r = await robot.iqRaw(call('system.listMethods'));
    const names = r.getChild('query', RPC)!.getChild('methodResponse')!.getChild('params')!.getChild('param')!.getChild('value')!.getChild('array')!.getChild('data')!
      .getChildren('value').map((v) => v.getChildText('string') ?? v.text());
    assert.ok(names.includes('adhoc_probe.add') && names.includes('system.listMethods'), names.join(' '));
  });

  it('refuses a JID the export does not allow with forbidden, and a query without methodCall with bad-request', async function () {
    assert.equal(stanzaErrorCondition(await alice.iqRaw(call('adhoc_probe.add', int(1), int(2)))), 'forbidden');
    assert.equal(stanzaErrorCondition(await robot.iqRaw(xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: RPC })))), 'bad-request');
  });
});
