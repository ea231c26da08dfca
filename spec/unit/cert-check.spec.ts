// Certificate checks for `cadence check` (core/net/cert-check.ts): each mistake that makes start
// fail or peers refuse the certificate is an error, what merely deserves attention a warning.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Config, type CadenceConfig } from '../../core/config.ts';
import { certificateTargets, checkCertificate, type CertCheckReport, type CertCheckTarget } from '../../core/net/cert-check.ts';
import { S2sTestPki, type IssuedCert } from '../helpers/testca-s2s.ts';

describe('certificate checks (cadence check)', () => {
  let pki: S2sTestPki;
  let intermediate: IssuedCert;
  let dir: string;
  let n = 0;
  /** Writes a pair (the chain unless told otherwise) and returns a target for `domain`. */
  const target = (domain: string, c: IssuedCert, opts: { chain?: boolean; certText?: string; keyFile?: string; services?: CertCheckTarget['services'] } = {}): CertCheckTarget => {
    const certFile = path.join(dir, `t${++n}.crt`);
    const keyFile = path.join(dir, `t${n}.key`);
    writeFileSync(certFile, opts.certText ?? (opts.chain === false ? c.cert : c.chain));
    copyFileSync(opts.keyFile ?? c.keyFile, keyFile);
    chmodSync(keyFile, 0o600);
    return { domain, certFile, keyFile, configured: true, services: opts.services };
  };
  const codes = (r: CertCheckReport) => r.findings.map((f) => `${f.severity}:${f.code}`);
  /** The test certificates are valid for 2 days: "now" is one hour in. */
  const now = (c: IssuedCert) => new Date(new Date(c.x509.validFrom).getTime() + 3_600_000);

  before(() => {
    pki = S2sTestPki.create();
    intermediate = pki.issue({ cn: 'Cadence test intermediate', ca: true });
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-certcheck-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds nothing wrong with a full chain whose names cover the domain', async () => {
    const c = pki.issue({ dns: ['a.test'] }, intermediate);
    const r = await checkCertificate(target('a.test', c), { now: now(c), warnDays: 1 });
    assert.deepEqual(codes(r), []);
    assert.equal(r.ok, true);
    assert.deepEqual(r.matchedBy, { 'xmpp-client': 'DNS-ID', 'xmpp-server': 'DNS-ID' });
    assert.equal(r.notAfter?.getTime(), new Date(c.x509.validTo).getTime());
  });

  it('reports files that are missing or unusable as errors', async () => {
    const c = pki.issue({ dns: ['a.test'] }, intermediate);
    const missing = await checkCertificate({ domain: 'a.test', certFile: path.join(dir, 'nope.crt'), keyFile: path.join(dir, 'nope.key'), configured: true });
    assert.deepEqual(codes(missing), ['error:missing']);
    assert.equal(missing.ok, false);
    const other = pki.issue({ dns: ['a.test'] }, intermediate);
    assert.deepEqual(codes(await checkCertificate(target('a.test', c, { keyFile: other.keyFile }), { now: now(c) })), ['error:key-mismatch']);
    assert.deepEqual(codes(await checkCertificate(target('a.test', c, { certText: 'not a certificate\n' }))), ['error:no-certificate']);
    const unreadable = await checkCertificate({ domain: 'a.test', certFile: dir, keyFile: dir, configured: true });
    assert.deepEqual(codes(unreadable), ['error:unreadable']);
  });

  it('says a missing file in the default location will be generated (not an error)', async () => {
    const r = await checkCertificate({ domain: 'a.test', certFile: path.join(dir, 'gen.crt'), keyFile: path.join(dir, 'gen.key'), configured: false });
    assert.deepEqual(codes(r), ['info:will-generate']);
    assert.equal(r.ok, true);
  });

  it('reports expiry: expired and not yet valid are errors, expiring soon a warning', async () => {
    const c = pki.issue({ dns: ['a.test'] }, intermediate);
    const t = target('a.test', c);
    const expired = await checkCertificate(t, { now: new Date(new Date(c.x509.validTo).getTime() + 1000) });
    assert.deepEqual(codes(expired), ['error:expired']);
    const early = await checkCertificate(t, { now: new Date(new Date(c.x509.validFrom).getTime() - 1000) });
    assert.deepEqual(codes(early), ['error:not-yet-valid']);
    const soon = await checkCertificate(t, { now: now(c), warnDays: 14 });
    assert.deepEqual(codes(soon), ['warning:expires-soon']);
    assert.match(soon.findings[0]!.message, /expires in 1 day/);
    const realExpired = pki.issue({ dns: ['a.test'], expired: true }, intermediate);
    assert.deepEqual(codes(await checkCertificate(target('a.test', realExpired))), ['error:expired']);
  });

  it('reports names that do not cover the domain (RFC 6125), per service', async () => {
    const c = pki.issue({ dns: ['other.test'] }, intermediate);
    const r = await checkCertificate(target('a.test', c), { now: now(c), warnDays: 1 });
    assert.deepEqual(codes(r), ['error:name-mismatch']);
    assert.match(r.findings[0]!.message, /DNS:other\.test.*do not cover a\.test: clients and servers/);
    // A wildcard covers one label: a component under it, not the domain itself.
    const wild = pki.issue({ dns: ['*.example.test'] }, intermediate);
    assert.deepEqual(codes(await checkCertificate(target('conference.example.test', wild, { services: ['xmpp-server'] }), { now: now(wild), warnDays: 1 })), []);
    assert.deepEqual(codes(await checkCertificate(target('example.test', wild), { now: now(wild), warnDays: 1 })), ['error:name-mismatch']);
    // An SRV-ID for _xmpp-server only: servers accept it, clients do not.
    const srv = pki.issue({ srvNames: ['_xmpp-server.a.test'] }, intermediate);
    const s = await checkCertificate(target('a.test', srv), { now: now(srv), warnDays: 1 });
    assert.deepEqual(codes(s), ['error:name-mismatch']);
    assert.match(s.findings[0]!.message, /: clients will refuse it/);
    assert.deepEqual(s.matchedBy, { 'xmpp-server': 'SRV-ID' });
  });

  it('warns about self-signed certificates, a missing intermediate, a chain out of order, and a key others may read', async () => {
    const self = pki.selfSigned({ cn: 'a.test', dns: ['a.test'] });
    assert.deepEqual(codes(await checkCertificate(target('a.test', self), { now: now(self), warnDays: 1 })), ['warning:self-signed']);
    const c = pki.issue({ dns: ['a.test'] }, intermediate);
    const leafOnly = await checkCertificate(target('a.test', c, { chain: false }), { now: now(c), warnDays: 1 });
    assert.deepEqual(codes(leafOnly), ['warning:incomplete-chain']);
    assert.match(leafOnly.findings[0]!.message, /fullchain\.pem/);
    const unrelated = pki.issue({ dns: ['z.test'] }, intermediate);
    assert.deepEqual(codes(await checkCertificate(target('a.test', c, { certText: c.cert + unrelated.cert }), { now: now(c), warnDays: 1 })), ['warning:chain-order']);
    const t = target('a.test', c);
    chmodSync(t.keyFile, 0o644);
    const open = await checkCertificate(t, { now: now(c), warnDays: 1 });
    assert.deepEqual(codes(open), ['warning:key-permissions']);
    assert.equal(open.ok, true, 'warnings do not fail the check');
  });

  it('lists one target per host: virtual hosts for clients and servers, components for servers', () => {
    const config = new Config({
      dataDir: dir,
      tls: { certificate: 'global.crt', key: 'global.key' },
      virtualHosts: { 'a.test': {}, 'b.test': { tls: { certificate: '/etc/b.crt', key: '/etc/b.key' } } },
      components: { 'muc.a.test': { module: 'muc' } },
    } as CadenceConfig, path.join(dir, 'cadence.cfg.ts'));
    assert.deepEqual(certificateTargets(config), [
      { domain: 'a.test', certFile: path.join(dir, 'global.crt'), keyFile: path.join(dir, 'global.key'), configured: true, services: ['xmpp-client', 'xmpp-server'] },
      { domain: 'b.test', certFile: '/etc/b.crt', keyFile: '/etc/b.key', configured: true, services: ['xmpp-client', 'xmpp-server'] },
      { domain: 'muc.a.test', certFile: path.join(dir, 'global.crt'), keyFile: path.join(dir, 'global.key'), configured: true, services: ['xmpp-server'] },
    ]);
    const plain = new Config({ dataDir: dir, virtualHosts: { 'a.test': {} } } as CadenceConfig, undefined);
    assert.deepEqual(certificateTargets(plain), [
      { domain: 'a.test', certFile: path.join(dir, 'certs', 'a.test.crt'), keyFile: path.join(dir, 'certs', 'a.test.key'), configured: false, services: ['xmpp-client', 'xmpp-server'] },
    ]);
  });
});
