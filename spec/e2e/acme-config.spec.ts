// ACME through the configuration: a server started with `acme: { directory, … }` orders the
// certificate of its host from Debian's pebble on loopback at start-up, proving control with
// TLS-ALPN-01 (RFC 8737) on its direct-TLS port, and serves it to new connections without a
// restart. (Renewal timing and failures are covered by spec/e2e/acme.spec.ts on the engine.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { freePort, startServer, type TestServer } from '../helpers/server.ts';
import { tlsProbe } from '../helpers/tls-probe.ts';

const HOST = 'xmpp.cadence.test';

describe('e2e: ACME from the config (TLS-ALPN-01 against pebble)', function () {
  this.timeout(120_000);
  let dns: TestDnsServer;
  let pebble: Pebble;
  let server: TestServer;
  let dir: string;

  before(async function () {
    dns = await startDnsServer();
    dns.set(HOST, [{ type: 'A', address: '127.0.0.1' }]);
    const tlsPort = await freePort();
    pebble = await startPebble({ httpPort: await freePort(), tlsPort, dnsServer: dns.address });
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-acme-cfg-'));
    const caFile = path.join(dir, 'pebble-ca.pem');
    writeFileSync(caFile, pebble.directoryCa);
    server = await startServer({
      host: HOST,
      config: {
        c2sDirectTlsPorts: [tlsPort],
        acme: { directory: pebble.directoryUrl, directoryCa: caFile, email: 'admin@cadence.test', challenge: 'tls-alpn-01' },
      },
    });
  });
  after(async function () {
    await server?.destroy();
    await pebble?.stop();
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('obtains the host certificate at start-up and serves it to new connections', async function () {
    const before = await tlsProbe({ port: server.directTlsPort, servername: HOST });
    before.socket.destroy();
    await server.waitForOutput(new RegExp(`certificate of ${HOST.replace(/\./g, '\\.')} reloaded from`), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\npebble:\n${pebble.output()}`);
    });
    const after = await tlsProbe({ port: server.directTlsPort, servername: HOST });
    after.socket.destroy();
    assert.notEqual(after.fingerprint256, before.fingerprint256);
    assert.match(String(after.peer.issuer.CN), /Pebble/i);
    assert.match(String(after.peer.subjectaltname), new RegExp(`DNS:${HOST}`));
  });
});
