// SCRAM-SHA-512 for accounts stored before it existed: the server offers it only once every
// account of the host has SHA-512 credentials (a client picking it must never fail for lack of
// them), and an account gains them at its next PLAIN login, when the password is known.
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { RawClient, saslCondition } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** Make alice's stored record look like one from before SCRAM-SHA-512 (the server is stopped). */
function dropSha512(server: TestServer, user: string): void {
  const db = new Database(path.join(server.dir, 'data', 'cadence.sqlite'));
  try {
    const row = db.prepare(`SELECT "value" FROM keyval WHERE "host" = ? AND "store" = 'accounts' AND "user" = ?`).get(server.host, user) as { value: string };
    const record = JSON.parse(row.value) as { scram: Record<string, unknown> };
    assert.ok(record.scram['SHA-512'], 'new accounts get SCRAM-SHA-512 credentials');
    delete record.scram['SHA-512'];
    db.prepare(`UPDATE keyval SET "value" = ? WHERE "host" = ? AND "store" = 'accounts' AND "user" = ?`).run(JSON.stringify(record), server.host, user);
  } finally {
    db.close();
  }
}

describe('e2e: SCRAM-SHA-512 credential upgrade', function () {
  this.timeout(60_000);
  let server: TestServer;
  const clients: RawClient[] = [];

  const secured = async () => {
    const c = await RawClient.connect(server.c2sPort);
    clients.push(c);
    c.openStream();
    await c.starttls();
    const features = await c.expect((el) => el.name === 'stream:features');
    return { c, mechanisms: features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.text()) ?? [] };
  };

  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'hunter2' } });
    await server.stop();
    dropSha512(server, 'alice');
    server.output = '';
    await server.start();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    await server?.destroy();
  });

  it('does not offer SCRAM-SHA-512 while an account lacks its credentials, and refuses it', async () => {
    const { c, mechanisms } = await secured();
    assert.ok(!mechanisms.some((m) => m.startsWith('SCRAM-SHA-512')), mechanisms.join(' '));
    assert.ok(mechanisms.includes('SCRAM-SHA-256-PLUS'));
    c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-512'>${Buffer.from('n,,n=bob,r=abc').toString('base64')}</auth>`);
    assert.equal(saslCondition(await c.expect((el) => el.name === 'failure')), 'invalid-mechanism');
  });

  it('adds them at the next PLAIN login; SCRAM-SHA-512 is offered and works from then on, across restarts', async () => {
    const plain = await secured();
    plain.c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`);
    await plain.c.expect((el) => el.name === 'success');
    await server.waitForOutput(/added SCRAM-SHA-512 credentials to alice@localhost/);

    const { c, mechanisms } = await secured();
    assert.deepEqual(mechanisms.slice(0, 1), ['SCRAM-SHA-512-PLUS']);
    assert.equal((await c.scram({ mechanism: 'SCRAM-SHA-512-PLUS', user: 'alice', password: 'secret', gs2: 'p=tls-exporter' })).status, 'success');

    for (const x of clients.splice(0)) x.close(); // authenticated streams the shutdown would close
    await server.restart();
    const after = await secured();
    assert.ok(after.mechanisms.includes('SCRAM-SHA-512'));
    assert.equal((await after.c.scram({ mechanism: 'SCRAM-SHA-512', user: 'alice', password: 'secret', gs2: 'n' })).status, 'success');
  });
});
