// Offline messages (XEP-0160) with the archive (XEP-0313): a message stored while the account is
// offline is archived once, and delivered from offline storage with the same stanza id as its
// archive copy — also after a restart of the server.
import assert from 'node:assert/strict';
import { login, xml } from '../helpers/client.ts';
import { mamForm, mamQuery, stanzaId } from '../helpers/mam.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'offline-mam-pass';

describe('e2e: offline storage and the archive', function () {
  let server: TestServer;

  before(async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'ping', 'offline', 'mam'] },
    });
  });
  after(async function () {
    await server?.destroy();
  });

  it('delivers a stored message with the stanza id of its one archive copy, across a restart', async function () {
    const romeo = await login(server, 'romeo', PASS, { resource: 'r' });
    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'while-away' }, xml('body', {}, 'stored and archived')));
    await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await romeo.stop();
    await server.restart();

    const juliet = await login(server, 'juliet', PASS, { resource: 'back' });
    try {
      await juliet.send(xml('presence'));
      const got = await juliet.expect((s) => s.name === 'message' && s.attrs.id === 'while-away');
      assert.ok(got.getChild('delay', 'urn:xmpp:delay'), 'from offline storage');
      const sid = stanzaId(got, 'juliet@localhost');
      assert.ok(sid, 'carries the archive id');
      const r = await mamQuery(juliet, [mamForm({ with: 'romeo@localhost' })]);
      const copies = r.ids.filter((_, i) => r.messages[i]!.attrs.id === 'while-away');
      assert.deepEqual(copies, [sid], 'archived once, under the same id');
    } finally {
      await juliet.stop();
    }
  });
});
