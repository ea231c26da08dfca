// Certificate reload without a restart: files replaced on disk are served to new connections
// (STARTTLS and direct TLS) after SIGHUP or `cadence shell cert reload`, while an existing
// session stays up; a config reload that changes ports says a restart is needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login, RawClient, xml, type TestClient } from '../helpers/client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { tlsProbe } from '../helpers/tls-probe.ts';

const PASS = 'cert-pass';

/** A self-signed certificate for localhost (EC P-256), as `<name>.crt` and `<name>.key` in `dir`. */
function makeCert(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=localhost/O=${name}`, '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

describe('e2e: certificate reload', function () {
  let server: TestServer;
  let dir: string;
  let first: ReturnType<typeof makeCert>;
  let second: ReturnType<typeof makeCert>;
  const live = () => ({ cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') });
  const install = (c: { cert: string; key: string }) => {
    copyFileSync(c.key, live().key);
    copyFileSync(c.cert, live().cert);
  };
  const clients: TestClient[] = [];

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-certs-'));
    first = makeCert(dir, 'first');
    second = makeCert(dir, 'second');
    install(first);
    server = await startServer({ users: { alice: PASS }, config: { tls: { certificate: live().cert, key: live().key } } });
  });
  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const directTlsFingerprint = async () => {
    const p = await tlsProbe({ port: server.directTlsPort, servername: 'localhost' });
    p.socket.destroy();
    return p.fingerprint256;
  };
  const starttlsFingerprint = async () => {
    const c = await RawClient.connect(server.c2sPort);
    c.openStream();
    await c.expect((el) => el.name === 'stream:features');
    c.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await c.expect((el) => el.name === 'proceed');
    await c.upgradeTls();
    const fp = c.tlsSocket!.getPeerCertificate().fingerprint256;
    c.socket.destroy();
    return fp;
  };

  it('serves a certificate replaced on disk after SIGHUP, while an existing session stays up', async function () {
    const alice = await login(server, 'alice', PASS, { resource: 'stays' });
    clients.push(alice);
    assert.equal(await directTlsFingerprint(), first.fingerprint);
    assert.equal(await starttlsFingerprint(), first.fingerprint);

    install(second);
    const mark = server.output.length;
    server.proc!.kill('SIGHUP');
    await server.waitForOutput(/certificate of localhost reloaded from .*live\.crt/, 10_000, mark);

    assert.equal(await directTlsFingerprint(), second.fingerprint);
    assert.equal(await starttlsFingerprint(), second.fingerprint);
    // The session made before the reload is still there and answered.
    const pong = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(pong.attrs.type, 'result');
  });

  it('reloads with `cadence shell cert reload`, and keeps the old certificate when the new files are broken', async function () {
    install(first);
    let r = await server.cli(['shell', 'cert', 'reload']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /localhost: updated \(.*live\.crt, valid until /);
    assert.equal(await directTlsFingerprint(), first.fingerprint);

    r = await server.cli(['shell', 'cert', 'reload']);
    assert.match(r.stdout, /localhost: unchanged/);

    writeFileSync(live().cert, 'not a certificate\n');
    r = await server.cli(['shell', 'cert', 'reload']);
    assert.match(r.stdout, /localhost: not reloaded: .*\(the previous certificate stays\)/);
    assert.equal(await directTlsFingerprint(), first.fingerprint);
    install(first);
  });

  it('says "restart needed" when a reload changes the ports', async function () {
    const text = readFileSync(server.configFile, 'utf8');
    writeFileSync(server.configFile, text.replace('"c2sDirectTlsPorts": [\n    0\n  ]', '"c2sDirectTlsPorts": []'));
    try {
      const r = await server.cli(['shell', 'config', 'reload']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /c2sDirectTlsPorts changed \(\[0\] → \[\]\): restart needed/);
    } finally {
      writeFileSync(server.configFile, text);
    }
  });
});
