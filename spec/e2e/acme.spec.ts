// ACME (RFC 8555) against Debian's pebble on loopback, validating for real: HTTP-01 fetched from
// the HTTP server (core/net/http.ts) and TLS-ALPN-01 (RFC 8737) handshakes answered by the
// direct-TLS listener (core/net/portmanager.ts), names resolved through the test DNS server. A
// certificate is obtained for a host that has only its first-start self-signed one, then renewed
// when the (moved) clock reaches the renewal time, through each challenge: the CertManager serves
// the renewed one to a new TLS connection while a connection made before stays up.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Config, type CadenceConfig } from '../../core/config.ts';
import { AcmeManager, Http01Responder, TlsAlpn01Responder, directoryFolder, type AcmeEvent, type AcmeOptions } from '../../core/net/acme.ts';
import { certificatePaths } from '../../core/net/cert-files.ts';
import { CertManager } from '../../core/net/certmanager.ts';
import type { Connection } from '../../core/net/connection.ts';
import { HttpServer } from '../../core/net/http.ts';
import { PortManager, type Listener } from '../../core/net/portmanager.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { roundTrip, tlsProbe } from '../helpers/tls-probe.ts';

const HOST = 'xmpp.cadence.test';
const UNREACHABLE = 'nowhere.cadence.test';

/** Counts the HTTP-01 requests pebble makes (the responder is the real one). */
class CountingHttp01 extends Http01Responder {
  served = 0;
  override respond(token: string, host?: string): string | undefined {
    const r = super.respond(token, host);
    if (r !== undefined) this.served++;
    return r;
  }
}

describe('ACME against pebble (RFC 8555, HTTP-01 and TLS-ALPN-01)', function () {
  this.timeout(120_000);
  let dns: TestDnsServer;
  let dataDir: string;
  let config: Config;
  let certs: CertManager;
  let ports: PortManager;
  let listener: Listener;
  let http: HttpServer;
  let http01: CountingHttp01;
  let pebble: Pebble;
  const connections: Connection[] = [];
  const managers: AcmeManager[] = [];
  const sockets: { destroy(): void }[] = [];

  const manager = (o: Partial<AcmeOptions>, events: AcmeEvent[] = []) => {
    const m = new AcmeManager({
      directoryUrl: pebble.directoryUrl,
      directoryCa: pebble.directoryCa,
      email: 'admin@cadence.test',
      dataDir,
      responders: { 'http-01': http01, 'tls-alpn-01': new TlsAlpn01Responder(certs) },
      certificatePaths: (h) => certificatePaths(config, h),
      reload: (h) => certs.reload(h),
      pollIntervalMs: 100,
      onEvent: (e) => events.push(e),
      ...o,
    });
    managers.push(m);
    return m;
  };
  const probe = async (servername?: string) => {
    const p = await tlsProbe({ port: Number(listener.addresses[0]!.split(':').pop()), servername });
    sockets.push(p.socket);
    return p;
  };

  before(async () => {
    dns = await startDnsServer();
    dns.set(HOST, [{ type: 'A', address: '127.0.0.1' }]);
    dns.set(UNREACHABLE, [{ type: 'A', address: '127.0.0.1' }]);
    dataDir = mkdtempSync(path.join(tmpdir(), 'cadence-acme-'));
    config = new Config({ dataDir, virtualHosts: { [HOST]: {}, [UNREACHABLE]: {} } } as CadenceConfig, undefined);
    certs = new CertManager(config);
    await certs.init([HOST, UNREACHABLE]); // self-signed, as at a first start
    ports = new PortManager(certs, () => undefined);
    listener = await ports.listen({
      name: 'c2s_direct_tls',
      ports: [0],
      interfaces: ['127.0.0.1'],
      directTls: true,
      onConnection: (conn) => {
        connections.push(conn);
        conn.onData((d) => conn.write(`echo:${d.toString()}`));
      },
    });
    http = new HttpServer({ httpPorts: [0], httpsPorts: [], interfaces: ['127.0.0.1'] });
    await http.listen();
    http01 = new CountingHttp01();
    http01.route(http);
    pebble = await startPebble({
      httpPort: http.addresses()[0]!.port,
      tlsPort: Number(listener.addresses[0]!.split(':').pop()),
      dnsServer: dns.address,
    });
  });

  after(async () => {
    for (const m of managers) m.stop();
    for (const s of sockets) s.destroy();
    for (const c of connections) c.destroy();
    await pebble?.stop();
    await http?.close(0);
    await listener?.close();
    await dns?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  let firstFingerprint: string;

  it('obtains a certificate through HTTP-01 for a host that has only a self-signed one, and serves it', async () => {
    const selfSigned = certs.info(HOST)!.fingerprint256;
    const events: AcmeEvent[] = [];
    let settled!: (e: AcmeEvent) => void;
    const outcome = new Promise<AcmeEvent>((resolve) => (settled = resolve));
    const m = manager({ challenge: 'http-01', onEvent: (e) => (events.push(e), settled(e)) }, events);
    m.start([HOST]); // as at server start: the self-signed certificate makes it order at once
    const event = await outcome;
    assert.equal(event.type, 'issued', event.type === 'failed' ? `${event.error}\n${pebble.output()}` : undefined);
    const status = m.hosts().find((h) => h.host === HOST)!;
    assert.equal(status.state, 'scheduled');
    assert.equal(events[0]?.type === 'issued' && events[0].challenge, 'http-01');
    assert.ok(http01.served >= 1, 'pebble fetched the key authorization from the HTTP server');

    const info = certs.info(HOST)!;
    assert.notEqual(info.fingerprint256, selfSigned);
    assert.match(info.issuer, /Pebble Intermediate CA/);
    assert.equal(info.subjectAltName, `DNS:${HOST}`);
    // Renewal is planned at two thirds of the lifetime.
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    assert.ok(Math.abs(status.nextAt!.getTime() - (info.notBefore.getTime() + (lifetime * 2) / 3)) < 1000);

    const served = await probe(HOST);
    assert.equal(served.fingerprint256, info.fingerprint256);
    firstFingerprint = info.fingerprint256;

    // Files where CertManager reads them, the key private; the account key kept for next time.
    const { certFile, keyFile } = certificatePaths(config, HOST);
    assert.match(readFileSync(certFile, 'utf8'), /(-----BEGIN CERTIFICATE-----[\s\S]*){2}/, 'the chain is stored');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const accountDir = path.join(dataDir, 'acme', directoryFolder(pebble.directoryUrl));
    assert.equal(statSync(path.join(accountDir, 'account.key')).mode & 0o777, 0o600);
    assert.match(JSON.parse(readFileSync(path.join(accountDir, 'account.json'), 'utf8')).url, /^https:\/\/127\.0\.0\.1:\d+\//);
  });

  it('renews through TLS-ALPN-01 at the renewal time: a new connection gets the new certificate, an established one stays up', async () => {
    const established = await probe(HOST);
    assert.equal(established.fingerprint256, firstFingerprint);
    assert.equal(await roundTrip(established.socket, 'before'), 'echo:before');

    let offset = 0;
    const events: AcmeEvent[] = [];
    const m = manager({ challenge: 'tls-alpn-01', now: () => Date.now() + offset }, events);
    const accountUrl = JSON.parse(readFileSync(path.join(dataDir, 'acme', directoryFolder(pebble.directoryUrl), 'account.json'), 'utf8')).url;

    // Not yet: the certificate is fresh.
    const waiting = await m.evaluate(HOST);
    assert.equal(waiting.state, 'scheduled');
    assert.equal(events.length, 0);
    assert.equal(certs.info(HOST)!.fingerprint256, firstFingerprint);

    // The clock reaches the renewal time.
    offset = waiting.nextAt!.getTime() - Date.now() + 60_000;
    const renewed = await m.evaluate(HOST);
    assert.equal(renewed.state, 'scheduled', renewed.lastError ?? pebble.output());
    assert.equal(events[0]?.type === 'issued' && events[0].challenge, 'tls-alpn-01');
    assert.equal(certs.alpnChallengesPending, false, 'the challenge certificate is gone');

    const fresh = await probe(HOST);
    assert.notEqual(fresh.fingerprint256, firstFingerprint);
    assert.equal(fresh.fingerprint256, certs.info(HOST)!.fingerprint256);
    // The connection made before the renewal is still up, with the certificate it got.
    assert.equal(await roundTrip(established.socket, 'after'), 'echo:after');
    assert.equal(established.socket.getPeerCertificate().fingerprint256, firstFingerprint);
    // Same account (the key in the data directory).
    assert.equal(JSON.parse(readFileSync(path.join(dataDir, 'acme', directoryFolder(pebble.directoryUrl), 'account.json'), 'utf8')).url, accountUrl);
  });

  it('renews through HTTP-01 at the renewal time as well: the renewed certificate is served to a new connection', async () => {
    const current = certs.info(HOST)!.fingerprint256;
    const servedBefore = http01.served;
    let offset = 0;
    const events: AcmeEvent[] = [];
    const m = manager({ challenge: 'http-01', now: () => Date.now() + offset }, events);
    const waiting = await m.evaluate(HOST);
    assert.equal(waiting.state, 'scheduled');
    assert.equal(events.length, 0, 'nothing ordered before the renewal time');

    offset = waiting.nextAt!.getTime() - Date.now() + 60_000;
    const renewed = await m.evaluate(HOST);
    assert.equal(renewed.state, 'scheduled', renewed.lastError ?? pebble.output());
    assert.equal(events[0]?.type === 'issued' && events[0].challenge, 'http-01');
    assert.ok(http01.served > servedBefore, 'pebble fetched the key authorization from the HTTP server again');
    const fresh = await probe(HOST);
    assert.notEqual(fresh.fingerprint256, current);
    assert.equal(fresh.fingerprint256, certs.info(HOST)!.fingerprint256);
  });

  it('keeps the certificate and schedules a retry when validation fails', async () => {
    const before = certs.info(UNREACHABLE)!.fingerprint256;
    const events: AcmeEvent[] = [];
    // A responder that answers nothing: pebble's HTTP-01 fetch gets 404.
    const m = manager({ challenge: 'http-01', responders: { 'http-01': { present: () => undefined, remove: () => undefined } } }, events);
    const t0 = Date.now();
    const attempt = m.order(UNREACHABLE);
    assert.equal(m.order(UNREACHABLE), attempt, 'a second request joins the order under way');
    await assert.rejects(attempt, /unauthorized: .*returned 404/);
    const [status] = m.hosts().filter((h) => h.host === UNREACHABLE);
    assert.equal(status!.state, 'failed');
    assert.equal(status!.failures, 1);
    assert.ok(status!.nextAt!.getTime() - t0 >= 9 * 60_000, 'retried minutes later, not in a loop');
    assert.equal(events[0]?.type, 'failed');
    assert.equal(certs.info(UNREACHABLE)!.fingerprint256, before);
    assert.deepEqual(readdirSync(path.join(dataDir, 'certs')).filter((f) => !/\.(crt|key)$/.test(f)), [], 'no temporary files left');
  });

  it('leaves hosts whose certificate the config names alone', async () => {
    const configured = new Config({ dataDir, tls: { certificate: '/etc/x.crt', key: '/etc/x.key' }, virtualHosts: { [HOST]: {} } } as CadenceConfig, undefined);
    const events: AcmeEvent[] = [];
    const m = manager({ certificatePaths: (h) => certificatePaths(configured, h) }, events);
    const status = await m.evaluate(HOST);
    assert.equal(status.state, 'skipped');
    assert.match(status.lastError!, /tls\.certificate/);
    assert.equal(events[0]?.type, 'skipped');
  });
});
