// A config reload that changes the `acme` section restarts ACME (doc/certificates.md): after
// SIGHUP a host newly covered gets its certificate from pebble and serves it, a host left out is
// no longer managed (no renewal planned, `shell cert list` says `file`), and `shell config reload`
// without `acme` stops it. HTTP-01 against Debian's pebble on loopback.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RawClient } from '../helpers/client.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { freePort, startServer, writeConfig, type TestServer } from '../helpers/server.ts';

const A = 'a.cadence.test';
const B = 'b.cadence.test';
const esc = (s: string) => s.replace(/\./g, '\\.');

describe('e2e: a config reload restarts ACME', function () {
  this.timeout(120_000);
  let dns: TestDnsServer;
  let pebble: Pebble;
  let server: TestServer;
  let dir: string;
  let caFile: string;
  let httpPort: number;
  const clients: RawClient[] = [];

  const config = (acmeHosts: Record<string, boolean> | false) => ({
    modulesEnabled: ['tls', 'saslauth', 'bind', 'admin_shell'],
    components: {},
    httpPorts: [httpPort],
    httpsPorts: [],
    virtualHosts: { [A]: acmeHosts && acmeHosts[A] ? {} : { acme: false }, [B]: acmeHosts && acmeHosts[B] ? {} : { acme: false } },
    ...(acmeHosts ? { acme: { directory: pebble.directoryUrl, directoryCa: caFile, email: 'admin@cadence.test', challenge: 'http-01' } } : {}),
  });
  const presented = async (host: string) => {
    const c = await RawClient.connect(server.c2sPort);
    clients.push(c);
    c.openStream(host);
    await c.starttls(host);
    return c.tlsSocket!.getPeerCertificate();
  };
  const certRow = async (host: string) => {
    const r = await server.cli(['shell', 'cert', 'list']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').find((l) => l.startsWith(`${host} `)) ?? `(no row for ${host} in:\n${r.stdout})`;
  };
  const issued = (host: string, from: number) =>
    server.waitForOutput(new RegExp(`certificate of ${esc(host)} reloaded from`), 60_000, from).catch((err: Error) => {
      throw new Error(`${err.message}\npebble:\n${pebble.output()}`);
    });

  before(async function () {
    dns = await startDnsServer();
    dns.set(A, [{ type: 'A', address: '127.0.0.1' }]);
    dns.set(B, [{ type: 'A', address: '127.0.0.1' }]);
    httpPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: await freePort(), dnsServer: dns.address });
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-acme-reload-'));
    caFile = path.join(dir, 'pebble-ca.pem');
    writeFileSync(caFile, pebble.directoryCa);
    server = await startServer({ host: A, config: config({ [A]: true }) });
  });
  after(async function () {
    for (const c of clients) c.close();
    await server?.destroy();
    await pebble?.stop();
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('at start, manages only the host the config covers', async function () {
    await issued(A, 0);
    assert.match(String((await presented(A)).issuer.CN), /Pebble/);
    assert.match(await certRow(A), /\sacme\s+acme scheduled next /);
    const b = await certRow(B);
    assert.match(b, /\sself-signed$/, 'B is not managed: it keeps its first-start certificate');
    assert.doesNotMatch(String((await presented(B)).issuer.CN), /Pebble/);
  });

  it('after SIGHUP with B covered and A left out: B gets a certificate, A is no longer renewed', async function () {
    const from = server.output.length;
    writeConfig(server.dir, A, config({ [B]: true }));
    server.proc!.kill('SIGHUP');
    await server.waitForOutput(new RegExp(`acme: no longer renewing the certificates of ${esc(A)}`), 20_000, from);
    await server.waitForOutput(new RegExp(`acme restarted: managing ${esc(B)} \\(http-01\\)`), 20_000, from);
    await issued(B, from);
    const b = await presented(B);
    assert.match(String(b.issuer.CN), /Pebble/);
    assert.equal(b.subjectaltname, `DNS:${B}`);
    assert.match(await certRow(B), /\sacme\s+acme scheduled next /);
    // A keeps the certificate it has (still served), but nothing renews it any more.
    const a = await certRow(A);
    assert.match(a, /issuer=Pebble Intermediate CA/);
    assert.match(a, /\sfile$/);
    assert.match(String((await presented(A)).issuer.CN), /Pebble/);
  });

  it('`shell config reload` without `acme` stops it', async function () {
    writeConfig(server.dir, A, config(false));
    const r = await server.cli(['shell', 'config', 'reload']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /acme stopped/);
    assert.match(await certRow(B), /\sfile$/);
    const again = await server.cli(['shell', 'config', 'reload']);
    assert.doesNotMatch(again.stdout, /acme/, 'an unchanged config leaves ACME alone');
  });
});
