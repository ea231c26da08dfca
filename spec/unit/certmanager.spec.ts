// CertManager reload over real sockets: certificates replaced on disk are presented to new
// connections — direct TLS with SNI, direct TLS without SNI, STARTTLS — while connections made
// before keep working; a reload that cannot use the new files keeps the old certificate and says
// why; nothing is regenerated. And the TLS-ALPN-01 challenge certificate on direct-TLS listeners.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { Config, type CadenceConfig } from '../../core/config.ts';
import { ACME_TLS_ALPN, tlsAlpnChallengeCertificate } from '../../core/net/acme-tls-alpn.ts';
import { CertManager } from '../../core/net/certmanager.ts';
import { PortManager, type Listener } from '../../core/net/portmanager.ts';
import type { Connection } from '../../core/net/connection.ts';
import { S2sTestPki, type IssuedCert } from '../helpers/testca-s2s.ts';
import { roundTrip, tlsProbe as openProbe, type TlsProbeOptions } from '../helpers/tls-probe.ts';

describe('CertManager reload', function () {
  this.timeout(30_000);
  let pki: S2sTestPki;
  let dataDir: string;
  let certs: CertManager;
  let ports: PortManager;
  let listeners: Listener[];
  let connections: Connection[];
  let first: { a: IssuedCert; b: IssuedCert };
  let clients: net.Socket[];
  /** A TLS client, closed after the test whatever happens. */
  const tlsProbe = async (o: TlsProbeOptions) => {
    const p = await openProbe(o);
    clients.push(p.socket);
    return p;
  };

  const certDir = () => path.join(dataDir, 'certs');
  /** Put an issued pair where the server reads `host`'s certificate (the default location). */
  const install = (host: string, c: IssuedCert, opts: { chain?: boolean } = {}) => {
    writeFileSync(path.join(certDir(), `${host}.crt`), opts.chain === false ? c.cert : c.chain);
    copyFileSync(c.keyFile, path.join(certDir(), `${host}.key`));
  };
  const fp = (c: IssuedCert) => c.x509.fingerprint256;

  function makeConfig(raw: Partial<CadenceConfig> = {}): Config {
    return new Config({ dataDir, virtualHosts: { 'a.test': {}, 'b.test': {} }, ...raw } as CadenceConfig, undefined);
  }

  async function listen(directTls: boolean, onConn?: (c: Connection) => void): Promise<number> {
    const l = await ports.listen({
      name: directTls ? 'c2s_direct_tls' : 'c2s',
      ports: [0],
      interfaces: ['127.0.0.1'],
      directTls,
      onConnection: (conn) => {
        connections.push(conn);
        if (onConn) return onConn(conn);
        conn.onData((d) => conn.write(`echo:${d.toString()}`));
      },
    });
    listeners.push(l);
    return Number(l.addresses[0]!.split(':').pop());
  }

  before(() => {
    pki = S2sTestPki.create();
    first = { a: pki.issue({ dns: ['a.test'] }), b: pki.issue({ dns: ['b.test'] }) };
  });

  beforeEach(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'cadence-certs-'));
    mkdirSync(certDir(), { recursive: true });
    install('a.test', first.a);
    install('b.test', first.b);
    certs = new CertManager(makeConfig());
    await certs.init(['a.test', 'b.test']);
    ports = new PortManager(certs, () => undefined);
    listeners = [];
    connections = [];
    clients = [];
  });

  afterEach(async () => {
    for (const c of clients) c.destroy();
    for (const c of connections) c.destroy();
    await Promise.all(listeners.map((l) => l.close()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves a replaced certificate to new direct-TLS connections while an established one stays up', async () => {
    const port = await listen(true);
    const before = await tlsProbe({ port, servername: 'a.test', ca: pki.root.cert });
    assert.equal(before.fingerprint256, fp(first.a));
    assert.equal(await roundTrip(before.socket, 'one'), 'echo:one');

    const renewed = pki.issue({ dns: ['a.test'] });
    install('a.test', renewed);
    const results = await certs.reload();
    assert.deepEqual(results.map((r) => [r.host, r.status]), [['a.test', 'updated'], ['b.test', 'unchanged']]);
    assert.equal(certs.info('a.test')?.fingerprint256, fp(renewed));

    const after = await tlsProbe({ port, servername: 'a.test', ca: pki.root.cert });
    assert.equal(after.fingerprint256, fp(renewed));
    // The connection made before the reload is still up, with the certificate it was given.
    assert.equal(await roundTrip(before.socket, 'two'), 'echo:two');
    assert.equal(before.socket.getPeerCertificate().fingerprint256, fp(first.a));
    // The other host is untouched.
    assert.equal((await tlsProbe({ port, servername: 'b.test', ca: pki.root.cert })).fingerprint256, fp(first.b));
    before.socket.destroy();
    after.socket.destroy();
  });

  it('replaces the certificate for clients that send no SNI', async () => {
    const port = await listen(true);
    const before = await tlsProbe({ port }); // 127.0.0.1: no SNI
    assert.equal(before.fingerprint256, fp(first.a), 'the first host is the default');
    const renewed = pki.issue({ dns: ['a.test'] });
    install('a.test', renewed);
    await certs.reload(['a.test']);
    const after = await tlsProbe({ port });
    assert.equal(after.fingerprint256, fp(renewed));
    before.socket.destroy();
    after.socket.destroy();
  });

  it('serves the replaced certificate on STARTTLS (the context is looked up per connection)', async () => {
    // What mod_tls does on <starttls/>: conn.starttls(certs.context(host), name => certs.context(name)).
    const port = await listen(false, (conn) => {
      conn.onData((d) => {
        if (d.toString() !== 'STARTTLS') return;
        conn.write('PROCEED');
        void conn.starttls(certs.context('a.test')!, (name) => certs.context(name)).then(() => conn.onData((x) => conn.write(`echo:${x.toString()}`)));
      });
    });
    const starttls = async () => {
      const raw = net.connect(port, '127.0.0.1');
      clients.push(raw);
      await once(raw, 'connect');
      raw.write('STARTTLS');
      await once(raw, 'data');
      return tlsProbe({ port, socket: raw, servername: 'a.test', ca: pki.root.cert });
    };
    const before = await starttls();
    assert.equal(before.fingerprint256, fp(first.a));
    const renewed = pki.issue({ dns: ['a.test'] });
    install('a.test', renewed);
    await certs.reload();
    const after = await starttls();
    assert.equal(after.fingerprint256, fp(renewed));
    assert.equal(await roundTrip(before.socket, 'still'), 'echo:still');
    before.socket.destroy();
    after.socket.destroy();
  });

  describe('a reload that cannot use the new files keeps the old certificate and says why', () => {
    const cases: [name: string, damage: () => void, problem: string][] = [
      ['a missing certificate file', () => unlinkSync(path.join(certDir(), 'a.test.crt')), 'missing'],
      ['a missing key file', () => unlinkSync(path.join(certDir(), 'a.test.key')), 'missing'],
      ['a garbled certificate', () => writeFileSync(path.join(certDir(), 'a.test.crt'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n'), 'bad-certificate'],
      ['a file that is no certificate', () => writeFileSync(path.join(certDir(), 'a.test.crt'), 'hello\n'), 'no-certificate'],
      ['a garbled key', () => writeFileSync(path.join(certDir(), 'a.test.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), 'bad-key'],
      ['a key that is not the certificate\'s', () => copyFileSync(first.b.keyFile, path.join(certDir(), 'a.test.key')), 'key-mismatch'],
      ['an encrypted key', () => writeFileSync(path.join(certDir(), 'a.test.key'), '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n'), 'encrypted-key'],
    ];
    for (const [name, damage, problem] of cases) {
      it(name, async () => {
        const port = await listen(true);
        // b.test gets a new certificate in the same reload: one bad host does not hold it back.
        const renewedB = pki.issue({ dns: ['b.test'] });
        install('b.test', renewedB);
        damage();
        const results = await certs.reload();
        const a = results.find((r) => r.host === 'a.test')!;
        assert.equal(a.status, 'failed');
        assert.equal(a.problem, problem);
        assert.ok(a.error && a.error.length > 10, 'a reason for the operator');
        assert.equal(a.notAfter?.getTime(), new Date(first.a.x509.validTo).getTime(), 'reports the certificate kept');
        assert.equal(results.find((r) => r.host === 'b.test')!.status, 'updated');
        const probe = await tlsProbe({ port, servername: 'a.test', ca: pki.root.cert });
        assert.equal(probe.fingerprint256, fp(first.a));
        probe.socket.destroy();
        const probeB = await tlsProbe({ port, servername: 'b.test', ca: pki.root.cert });
        assert.equal(probeB.fingerprint256, fp(renewedB));
        probeB.socket.destroy();
      });
    }
  });

  it('never regenerates a certificate on reload (a self-signed one is made only at first start)', async () => {
    rmSync(certDir(), { recursive: true });
    const fresh = new CertManager(makeConfig());
    await fresh.init(['a.test']);
    assert.ok(existsSync(path.join(certDir(), 'a.test.crt')), 'generated at first start');
    const generated = fresh.info('a.test')!.fingerprint256;
    unlinkSync(path.join(certDir(), 'a.test.crt'));
    unlinkSync(path.join(certDir(), 'a.test.key'));
    const [r] = await fresh.reload();
    assert.equal(r!.status, 'failed');
    assert.equal(r!.problem, 'missing');
    assert.equal(existsSync(path.join(certDir(), 'a.test.crt')), false);
    assert.equal(fresh.info('a.test')!.fingerprint256, generated);
  });

  it('reads the paths of the config in force (a config getter)', async () => {
    let config = makeConfig();
    const managed = new CertManager(() => config);
    await managed.init(['a.test']);
    const elsewhere = pki.issue({ dns: ['a.test'] });
    config = makeConfig({ tls: { certificate: elsewhere.certFile, key: elsewhere.keyFile } });
    const [r] = await managed.reload();
    assert.equal(r!.status, 'updated');
    assert.equal(r!.certFile, elsewhere.certFile);
    assert.equal(managed.info('a.test')!.fingerprint256, fp(elsewhere));
  });

  it('tells change listeners once per reload that changed something, not for unchanged ones', async () => {
    let calls = 0;
    const off = certs.onChange(() => calls++);
    await certs.reload();
    assert.equal(calls, 0);
    install('a.test', pki.issue({ dns: ['a.test'] }));
    install('b.test', pki.issue({ dns: ['b.test'] }));
    await certs.reload();
    assert.equal(calls, 1);
    off();
    install('a.test', pki.issue({ dns: ['a.test'] }));
    await certs.reload();
    assert.equal(calls, 1);
  });

  it('runs concurrent reloads one after the other', async () => {
    install('a.test', pki.issue({ dns: ['a.test'] }));
    const [x, y] = await Promise.all([certs.reload(['a.test']), certs.reload(['a.test'])]);
    assert.deepEqual([x[0]!.status, y[0]!.status], ['updated', 'unchanged']);
  });

  describe('TLS-ALPN-01 on direct-TLS listeners (RFC 8737)', () => {
    it('presents the challenge certificate only to acme-tls/1 handshakes for the name being validated', async () => {
      const port = await listen(true);
      const challenge = tlsAlpnChallengeCertificate('a.test', 'token.thumbprint');
      certs.setAlpnChallenge('a.test', challenge);
      assert.equal(certs.alpnChallengesPending, true);

      const validation = await tlsProbe({ port, servername: 'a.test', alpn: [ACME_TLS_ALPN] });
      assert.equal(validation.alpnProtocol, ACME_TLS_ALPN);
      assert.equal(validation.peer.raw.toString('base64'), challenge.cert.replace(/-----[A-Z ]+-----|\n/g, ''));
      // §4: no application data; the server closes.
      await once(validation.socket, 'end');
      validation.socket.destroy();

      // A client during the validation gets the host's certificate and its stream works.
      const client = await tlsProbe({ port, servername: 'a.test', alpn: ['xmpp-client'], ca: pki.root.cert });
      assert.equal(client.fingerprint256, fp(first.a));
      assert.equal(client.alpnProtocol, 'xmpp-client');
      assert.equal(await roundTrip(client.socket, 'hi'), 'echo:hi');
      client.socket.destroy();

      // acme-tls/1 for a name with no validation under way never gets a challenge certificate.
      const other = await tlsProbe({ port, servername: 'b.test', alpn: [ACME_TLS_ALPN, 'xmpp-client'], ca: pki.root.cert });
      assert.equal(other.fingerprint256, fp(first.b));
      assert.notEqual(other.alpnProtocol, ACME_TLS_ALPN);
      other.socket.destroy();

      certs.clearAlpnChallenge('a.test');
      assert.equal(certs.alpnChallengesPending, false);
      const afterwards = await tlsProbe({ port, servername: 'a.test', alpn: [ACME_TLS_ALPN, 'xmpp-client'], ca: pki.root.cert });
      assert.equal(afterwards.fingerprint256, fp(first.a));
      afterwards.socket.destroy();
    });

    it('hands anything that is not a ClientHello to TLS as before, while a validation is under way', async () => {
      const port = await listen(true);
      certs.setAlpnChallenge('a.test', tlsAlpnChallengeCertificate('a.test', 'k.a'));
      const raw = net.connect(port, '127.0.0.1');
      clients.push(raw);
      await once(raw, 'connect');
      raw.write('GET / HTTP/1.1\r\n\r\n');
      raw.resume();
      await once(raw, 'close'); // the TLS server refuses it and closes
      const client = await tlsProbe({ port, servername: 'a.test', ca: pki.root.cert });
      assert.equal(await roundTrip(client.socket, 'ok'), 'echo:ok');
      client.socket.destroy();
    });
  });
});
