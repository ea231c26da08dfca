// Brute force, tried as an attacker would: wrong passwords from one address (127.0.0.2; the server
// listens on 127.0.0.1) are delayed, then refused with <temporary-auth-failure/> (RFC 6120
// §6.5.11), with warnings in the log; the account's owner on another address still logs in at once;
// the counts are in storage, so a restart does not reset them. Default settings throughout.
import assert from 'node:assert/strict';
import { RawClient, saslCondition } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('e2e: brute-force throttling', function () {
  this.timeout(120_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ users: { alice: 'secret' } });
  });
  after(async () => {
    await server?.destroy();
  });

  /** One PLAIN attempt on a fresh connection; resolves with 'success' or the failure condition. */
  const attempt = async (from: string, password: string): Promise<string> => {
    const c = await RawClient.connect(server.c2sPort, { localAddress: from });
    try {
      c.openStream();
      await c.starttls();
      await c.expect((el) => el.name === 'stream:features');
      c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0alice\0${password}`).toString('base64')}</auth>`);
      const r = await c.expect((el) => el.name === 'success' || el.name === 'failure', 40_000);
      return r.name === 'success' ? 'success' : saslCondition(r)!;
    } finally {
      c.close();
    }
  };

  const delayedFrom = (address: string) => server.output.split('\n').filter((l) => l.includes(`authentication from ${address}`) && l.includes('delayed'));

  it('delays, then refuses 50 wrong passwords from one address within the first 10, while the owner logs in from another', async () => {
    const results: string[] = [];
    for (let i = 0; i < 50; i++) results.push(await attempt('127.0.0.2', `guess${i}`));

    // The first guesses are plain failures (a client trying its mechanisms in turn is never slowed).
    assert.deepEqual(results.slice(0, 5), Array(5).fill('not-authorized'));
    const firstRefusal = results.indexOf('temporary-auth-failure');
    assert.ok(firstRefusal >= 5 && firstRefusal < 10, `first refusal at attempt ${firstRefusal + 1}: ${results.join(' ')}`);
    assert.deepEqual(results.slice(firstRefusal), Array(50 - firstRefusal).fill('temporary-auth-failure'));
    // Attempts between the free ones and the refusal were delayed, and the log says so.
    assert.equal(delayedFrom('127.0.0.2').length, firstRefusal - 5, server.output);
    assert.match(server.output, /warn .*address 127\.0\.0\.2 locked out of authentication on localhost for 900 s after \d+ failed attempts/);
    assert.match(server.output, /warn .*authentication from 127\.0\.0\.2 refused: \d+ failed attempts, address locked/);

    // The right password from the locked address is refused too: it is the address that is locked.
    assert.equal(await attempt('127.0.0.2', 'secret'), 'temporary-auth-failure');
    // The owner, from another address, logs in at once (nothing delays or refuses it).
    assert.equal(await attempt('127.0.0.1', 'secret'), 'success');
    assert.deepEqual(delayedFrom('127.0.0.1'), []);
  });

  it('keeps the counts across a restart', async () => {
    await server.restart();
    assert.equal(await attempt('127.0.0.2', 'secret'), 'temporary-auth-failure');
    assert.equal(await attempt('127.0.0.1', 'secret'), 'success');
  });
});
