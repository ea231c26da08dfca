// The operator contract: CLI account commands, start-up failures, clean shutdown.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import selfsigned from 'selfsigned';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RawClient, login, streamErrorCondition } from '../helpers/client.ts';
import { ROOT, runCli, startServer, writeConfig, type TestServer } from '../helpers/server.ts';

describe('e2e: operator contract', function () {
  let server: TestServer | undefined;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-op-'));
  });
  afterEach(async function () {
    await server?.destroy();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM closes every stream with system-shutdown and </stream:stream>, then exits 0', async function () {
    server = await startServer({ users: { alice: 'pw-alice' } });
    const c = await RawClient.connect(server.c2sPort);
    c.openStream();
    await c.starttls();
    await c.authenticate('alice', 'pw-alice', 'r');
    const code = await server.stop();
    assert.equal(code, 0);
    const err = await c.expect((el) => el.name === 'stream:error');
    assert.equal(streamErrorCondition(err), 'system-shutdown');
    await c.waitClosed();
    assert.match(c.received, /<\/stream:stream>$/);
  });

  it('exits non-zero with one line when its port is in use', async function () {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const cfg = writeConfig(dir, 'localhost', { c2sPorts: [port] });
      const r = await runCli(['-c', cfg, 'start']);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n').filter((l) => !/ info /.test(l));
      assert.equal(lines.length, 1, r.stderr);
      assert.equal(lines[0], `cadence: cannot start: module 'c2s' failed to load on the server: cannot listen for c2s on 127.0.0.1:${port}: address already in use`);
    } finally {
      blocker.close();
    }
  });

  it('adduser reads the password from stdin; passwd changes it; deluser removes the account', async function () {
    server = await startServer({ dir });
    const jid = 'carol@localhost';
    const add = await server.cli(['adduser', jid], 'first-pw\n');
    assert.equal(add.code, 0, add.stderr);
    assert.equal((await server.cli(['adduser', jid], 'again\n')).code, 1, 'no duplicate');
    (await login(server, 'carol', 'first-pw')).stop();
    assert.equal((await server.cli(['passwd', jid], 'second-pw\n')).code, 0);
    await assert.rejects(login(server, 'carol', 'first-pw'));
    const c = await login(server, 'carol', 'second-pw');
    await c.stop();
    assert.equal((await server.cli(['deluser', jid, '--yes'])).code, 0);
    await assert.rejects(login(server, 'carol', 'second-pw'));
    assert.equal((await server.cli(['deluser', jid, '--yes'])).code, 1);
  });

  it('creates accounts from several CLI processes at once on a fresh data directory', async function () {
    // Each process loads the default modules; mod_fast makes its server key on first use, and a
    // process that found the key file before its maker had written it used to fail.
    const cfg = writeConfig(dir, 'localhost');
    const runs = await Promise.all(['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map((u) => runCli(['-c', cfg, 'adduser', `${u}@localhost`], 'pw\n')));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    server = await startServer({ dir });
    (await login(server, 'a4', 'pw')).stop();
  });

  it('refuses a JID of a host it does not serve', async function () {
    const cfg = writeConfig(dir, 'localhost');
    const r = await runCli(['-c', cfg, 'adduser', 'dave@elsewhere.example'], 'pw\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /host 'elsewhere\.example' is not a virtual host/);
  });

  it('ships a valid default config (cadence check)', async function () {
    const r = await runCli(['-c', path.join(ROOT, 'prosody-like.cfg.ts'), 'check']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /host localhost:/);
    assert.match(r.stdout, /\+ saslauth: /);
    assert.match(r.stdout, /all good/);
  });

  it('serves the certificate configured with tls: { certificate, key }', async function () {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'operator-cert.example' }], { keyType: 'ec', algorithm: 'sha256' });
    writeFileSync(path.join(dir, 'server.crt'), pems.cert);
    writeFileSync(path.join(dir, 'server.key'), pems.private);
    server = await startServer({ dir, config: { tls: { certificate: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') } } });
    const c = await RawClient.connect(server.directTlsPort, { directTls: true });
    try {
      const served = (c.socket as tls.TLSSocket).getPeerCertificate();
      assert.equal(served.fingerprint256, new X509Certificate(pems.cert).fingerprint256);
    } finally {
      c.close();
    }
  });

  it('about prints the version, the libraries in use and the core features', async function () {
    const r = await runCli(['about']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Cadence \d+\.\d+\.\d+/);
    assert.match(r.stdout, /^Node\.js v\d+\.\d+\.\d+ on \w+\/\w+ \(OpenSSL \d/m);
    for (const lib of ['acme-client', 'better-sqlite3', 'ltx', 'saxes', 'ws']) {
      assert.match(r.stdout, new RegExp(`^  ${lib} \\d+\\.\\d+\\.\\d+`, 'm'), r.stdout);
    }
    assert.match(r.stdout, /scram-sha-256/);
  });
});
