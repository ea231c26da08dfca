// ACME HTTP-01 (RFC 8555 §8.3) through the configuration: a server with `acme: { challenge:
// 'http-01' }` and no module that serves HTTP still answers /.well-known/acme-challenge/<token> on
// its plain HTTP port, Debian's pebble on loopback validates there for real, and the issued
// certificate is what a new c2s connection gets after STARTTLS. `cadence check` accepts the
// setup and `shell cert list` names the certificate's source.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RawClient } from '../helpers/client.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { freePort, startServer, type TestServer } from '../helpers/server.ts';

const HOST = 'xmpp.cadence.test';

function get(port: number, urlPath: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, headers: { Host: host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('e2e: ACME HTTP-01 from the config (against pebble)', function () {
  this.timeout(120_000);
  let dns: TestDnsServer;
  let pebble: Pebble;
  let server: TestServer;
  let dir: string;
  let httpPort: number;
  const clients: RawClient[] = [];

  const starttlsCertificate = async () => {
    const c = await RawClient.connect(server.c2sPort);
    clients.push(c);
    c.openStream(HOST);
    await c.starttls(HOST);
    return c.tlsSocket!.getPeerCertificate();
  };

  before(async function () {
    dns = await startDnsServer();
    dns.set(HOST, [{ type: 'A', address: '127.0.0.1' }]);
    httpPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: await freePort(), dnsServer: dns.address });
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-acme-http01-'));
    const caFile = path.join(dir, 'pebble-ca.pem');
    writeFileSync(caFile, pebble.directoryCa);
    server = await startServer({
      host: HOST,
      config: {
        // Nothing else serves HTTP: the admin shell only (for `cert list`), and no direct TLS.
        modulesEnabled: ['tls', 'saslauth', 'bind', 'admin_shell'],
        c2sDirectTlsPorts: [],
        httpPorts: [httpPort],
        httpsPorts: [],
        acme: { directory: pebble.directoryUrl, directoryCa: caFile, email: 'admin@cadence.test', challenge: 'http-01' },
      },
    });
  });
  after(async function () {
    for (const c of clients) c.close();
    await server?.destroy();
    await pebble?.stop();
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('cadence check accepts HTTP-01 and names the port it is answered on', async function () {
    const r = await server.cli(['check']);
    assert.match(r.stdout, /acme:\n {2}\+ http-01 on httpPorts \d+ for xmpp\.cadence\.test/, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /! .*acme|challenge/);
  });

  it('obtains the host certificate through HTTP-01 and presents it on a new c2s connection', async function () {
    assert.ok(server.addresses.includes(`http=127.0.0.1:${httpPort}`), `the HTTP port listens without any HTTP module: ${server.addresses.join(' ')}`);
    await server.waitForOutput(new RegExp(`certificate of ${HOST.replace(/\./g, '\\.')} reloaded from`), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\npebble:\n${pebble.output()}`);
    });
    assert.match(pebble.output(), new RegExp(`validate w/ HTTP: http://${HOST.replace(/\./g, '\\.')}:${httpPort}/\\.well-known/acme-challenge/`), 'pebble validated over HTTP-01 on the HTTP port');
    const cert = await starttlsCertificate();
    assert.match(String(cert.issuer.CN), /Pebble/i);
    assert.equal(cert.subjectaltname, `DNS:${HOST}`);

    const list = await server.cli(['shell', 'cert', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const row = list.stdout.split('\n').find((l) => l.startsWith(HOST))!;
    assert.match(row, /issuer=Pebble Intermediate CA/);
    assert.match(row, new RegExp(`notAfter=${new Date(cert.valid_to).toISOString()}`));
    assert.match(row, /\sacme\s+acme scheduled next \d{4}-/);
  });

  it('answers 404 for a token that is not pending, and nothing for other paths', async function () {
    assert.equal((await get(httpPort, '/.well-known/acme-challenge/unknown-token', HOST)).status, 404);
    assert.equal((await get(httpPort, '/other', HOST)).status, 404);
  });
});
