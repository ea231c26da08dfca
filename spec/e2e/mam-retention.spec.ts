// The archive's life (XEP-0313 §3.2): items older than mam.archiveExpiresAfter are removed by the
// periodic cleanup, oldest first; the archive goes with the account (XEP-0077 <remove/>).
import assert from 'node:assert/strict';
import { login, xml } from '../helpers/client.ts';
import { mamQuery } from '../helpers/mam.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const PASS = 'mam-retention-pass';

describe('e2e: archive retention and removal', function () {
  let server: TestServer | undefined;

  afterEach(async function () {
    await server?.destroy();
    server = undefined;
  });

  it('removes expired messages in the periodic cleanup', async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'ping', 'mam'], mam: { archiveExpiresAfter: '1s', cleanupInterval: 1 } },
    });
    const juliet = await login(server, 'juliet', PASS, { resource: 'r', presence: true });
    const romeo = await login(server, 'romeo', PASS, { resource: 'r' });
    try {
      await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'old' }, xml('body', {}, 'soon gone')));
      await juliet.expect((s) => s.attrs.id === 'old');
      assert.equal((await mamQuery(juliet)).ids.length, 1);
      const from = server.output.length;
      // Removed from both archives (Romeo's and Juliet's).
      await server.waitForOutput(/archive cleanup on localhost removed 2 expired message/, 15_000, from);
      assert.equal((await mamQuery(juliet)).ids.length, 0);
      assert.equal((await mamQuery(romeo)).ids.length, 0);
    } finally {
      await Promise.all([juliet.stop(), romeo.stop()]);
    }
  });

  it('removes the archive with the account', async function () {
    server = await startServer({
      users: { romeo: PASS, juliet: PASS },
      config: { modulesEnabled: ['tls', 'saslauth', 'bind', 'roster', 'ping', 'mam', 'register'] },
    });
    const juliet = await login(server, 'juliet', PASS, { resource: 'r', presence: true });
    const romeo = await login(server, 'romeo', PASS, { resource: 'r' });
    await romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'kept until removal')));
    await juliet.expect((s) => s.attrs.id === 'm1');
    assert.equal((await mamQuery(juliet)).ids.length, 1);
    const removed = await juliet.iqRaw(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('remove'))));
    assert.equal(removed.attrs.type, 'result'); // answered once the account's data is gone
    await juliet.stop();
    await server.adduser('juliet', PASS);
    const again = await login(server, 'juliet', PASS, { resource: 'r2' });
    try {
      assert.equal((await mamQuery(again)).ids.length, 0);
      assert.equal((await mamQuery(romeo)).ids.length, 1, 'the contact keeps their own archive');
    } finally {
      await Promise.all([again.stop(), romeo.stop()]);
    }
  });
});
