// External Service Discovery (XEP-0215) with TURN REST API credentials: a user asks for the
// services and gets the STUN server and the TURN server with a username `<expiry>:<bare JID>`
// and the HMAC-SHA1 password a TURN server with the same secret (coturn's use-auth-secret)
// accepts; filtering by type; credentials for one service; unknown services refused.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { DEFAULTS } from '../../core/config.ts';
import { login, stanzaErrorCondition, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS = 'urn:xmpp:extdisco:2';
const SECRET = 'turn-shared-secret';

describe('e2e: External Service Discovery (XEP-0215)', function () {
  let server: TestServer;
  let alice: TestClient;

  before(async function () {
    server = await startServer({
      users: { alice: 'alice-pw' },
      config: {
        modulesEnabled: [...DEFAULTS.modulesEnabled, 'external_services'],
        external_services: {
          services: [
            { type: 'stun', host: 'stun.example.org', port: 3478, transport: 'udp' },
            { type: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp', secret: SECRET, ttl: 600 },
          ],
        },
      },
    });
    alice = await login(server, 'alice', 'alice-pw');
  });
  after(async function () {
    await alice?.stop();
    await server?.destroy();
  });

  it('lists STUN and TURN, the TURN server with TURN REST credentials for the requester', async function () {
    const before = Math.floor(Date.now() / 1000);
    const r = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('services', { xmlns: NS })));
    const list = r.getChild('services', NS)!.getChildren('service');
    assert.deepEqual(list.map((s) => s.attrs.type), ['stun', 'turn']);
    const stun = list[0]!;
    assert.equal(stun.attrs.restricted, undefined);
    assert.equal(stun.attrs.username, undefined);
    const turn = list[1]!;
    assert.equal(turn.attrs.restricted, '1');
    const [expiry, user] = String(turn.attrs.username).split(/:(.*)/s) as [string, string];
    assert.equal(user, 'alice@localhost');
    assert.ok(Number(expiry) >= before + 600 && Number(expiry) <= before + 700, `expiry ${expiry}`);
    assert.equal(turn.attrs.password, createHmac('sha1', SECRET).update(String(turn.attrs.username)).digest('base64'));
    assert.ok(turn.attrs.expires);
  });

  it('filters by type, answers credentials for one service, and refuses unknown ones', async function () {
    const stunOnly = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('services', { xmlns: NS, type: 'stun' })));
    assert.deepEqual(stunOnly.getChild('services', NS)!.getChildren('service').map((s) => s.attrs.host), ['stun.example.org']);
    const creds = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('credentials', { xmlns: NS }, xml('service', { type: 'turn', host: 'turn.example.org' }))));
    assert.match(String(creds.getChild('credentials', NS)?.getChild('service')?.attrs.username), /^\d+:alice@localhost$/);
    const none = await alice.iqRaw(xml('iq', { type: 'get', to: 'localhost' }, xml('credentials', { xmlns: NS }, xml('service', { type: 'turn', host: 'other.example.org' }))));
    assert.equal(stanzaErrorCondition(none), 'item-not-found');
  });

  it('advertises the feature', async function () {
    const info = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
  });
});
