// `cadence cert import DIR` (core/cli/cert-import.ts): in a tree laid out as Let's Encrypt and
// other tools leave it, the right certificate and key for each host are found — by file name, by
// wildcard, by a parent domain's certificate that lists the host — checked, and copied to
// <dataDir>/certs/ with the key at mode 0600.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findCandidates, importCertificates, type CertImportResult } from '../../core/cli/cert-import.ts';
import { CertManager } from '../../core/net/certmanager.ts';
import { Config, type CadenceConfig } from '../../core/config.ts';
import { S2sTestPki, type IssuedCert } from '../helpers/testca-s2s.ts';

describe('cert import', () => {
  let pki: S2sTestPki;
  let intermediate: IssuedCert;
  let src: string;
  let dataDir: string;
  const certs: Record<string, IssuedCert> = {};
  const put = (rel: string, text: string) => {
    const f = path.join(src, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, text);
  };
  const byHost = (results: CertImportResult[]) => Object.fromEntries(results.map((r) => [r.host, r]));
  const hosts = ['a.test', 'b.test', 'c.test', 'conference.example.test', 'muc.example.net', 'd.test', 'missing.test'];

  before(() => {
    pki = S2sTestPki.create();
    intermediate = pki.issue({ cn: 'Cadence test intermediate', ca: true });
    src = mkdtempSync(path.join(tmpdir(), 'cadence-import-src-'));
    // Let's Encrypt: live/<name>/{fullchain,privkey,cert}.pem are links into archive/.
    certs.a = pki.issue({ dns: ['a.test'] }, intermediate);
    put('letsencrypt/archive/a.test/fullchain1.pem', certs.a.chain);
    put('letsencrypt/archive/a.test/cert1.pem', certs.a.cert);
    put('letsencrypt/archive/a.test/privkey1.pem', certs.a.key);
    mkdirSync(path.join(src, 'letsencrypt/live/a.test'), { recursive: true });
    for (const [link, target] of [['fullchain.pem', 'fullchain1.pem'], ['cert.pem', 'cert1.pem'], ['privkey.pem', 'privkey1.pem']]) {
      symlinkSync(`../../archive/a.test/${target}`, path.join(src, 'letsencrypt/live/a.test', link!));
    }
    // The same host again as a leaf-only .crt: the full chain wins.
    put('other/a.test.crt', certs.a.cert);
    put('other/a.test.key', certs.a.key);
    // .crt + .key
    certs.b = pki.issue({ dns: ['b.test'] }, intermediate);
    put('ssl/b.test.crt', certs.b.chain);
    put('ssl/b.test.key', certs.b.key);
    // One .pem holding certificate and key.
    certs.c = pki.issue({ dns: ['c.test'] }, intermediate);
    put('combined/c.test.pem', certs.c.chain + certs.c.key);
    // A wildcard in a Let's Encrypt directory named after the base domain.
    certs.wild = pki.issue({ dns: ['example.test', '*.example.test'] }, intermediate);
    put('letsencrypt/live/example.test/fullchain.pem', certs.wild.chain);
    put('letsencrypt/live/example.test/privkey.pem', certs.wild.key);
    // A parent domain's certificate that lists the component.
    certs.net = pki.issue({ dns: ['example.net', 'muc.example.net'] }, intermediate);
    put('ssl/example.net.crt', certs.net.chain);
    put('ssl/example.net.key', certs.net.key);
    // d.test: its own files are unusable (key of another certificate, an expired one).
    certs.d = pki.issue({ dns: ['d.test'] }, intermediate);
    put('bad/d.test.crt', certs.d.chain);
    put('bad/d.test.key', certs.b.key);
    certs.dOld = pki.issue({ dns: ['d.test'], expired: true }, intermediate);
    put('old/d.test.crt', certs.dOld.chain);
    put('old/d.test.key', certs.dOld.key);
    // Noise: unrelated files and a link loop.
    put('ssl/README', 'nothing here\n');
    put('ssl/dhparam.pem', '-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n');
    symlinkSync('..', path.join(src, 'ssl/loop'));
  });

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'cadence-import-data-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));
  after(() => rmSync(src, { recursive: true, force: true }));

  it('finds the layouts it knows in the tree', async () => {
    const found = (await findCandidates(src)).map((c) => `${c.layout} ${c.name} ${path.relative(src, c.certFile)}`).sort();
    assert.deepEqual(found, [
      'combined-pem c.test combined/c.test.pem',
      'crt-key a.test other/a.test.crt',
      'crt-key b.test ssl/b.test.crt',
      'crt-key d.test bad/d.test.crt',
      'crt-key d.test old/d.test.crt',
      'crt-key example.net ssl/example.net.crt',
      'letsencrypt a.test letsencrypt/live/a.test/fullchain.pem',
      'letsencrypt example.test letsencrypt/live/example.test/fullchain.pem',
    ]);
  });

  it('copies the right pair for each host, keys at 0600, and reports per host', async () => {
    const results = byHost(await importCertificates({ dirs: [src], hosts, dataDir }));
    const fromOf = (h: string) => path.relative(src, results[h]!.source!.certFile);
    assert.equal(results['a.test']!.status, 'imported');
    assert.equal(fromOf('a.test'), 'letsencrypt/live/a.test/fullchain.pem', 'the full chain beats the leaf-only file');
    assert.equal(fromOf('b.test'), 'ssl/b.test.crt');
    assert.equal(fromOf('c.test'), 'combined/c.test.pem');
    assert.equal(fromOf('conference.example.test'), 'letsencrypt/live/example.test/fullchain.pem');
    assert.equal(results['conference.example.test']!.matchedBy, 'DNS-ID');
    assert.equal(fromOf('muc.example.net'), 'ssl/example.net.crt');
    assert.equal(results['missing.test']!.status, 'not-found');
    assert.equal(results['d.test']!.status, 'not-found');
    assert.deepEqual(results['d.test']!.rejected.map((r) => [path.relative(src, r.candidate.certFile), /does not belong|expired/.exec(r.reason)?.[0]]).sort(), [
      ['bad/d.test.crt', 'does not belong'],
      ['old/d.test.crt', 'expired'],
    ]);

    for (const h of ['a.test', 'b.test', 'c.test', 'conference.example.test', 'muc.example.net']) {
      const crt = path.join(dataDir, 'certs', `${h}.crt`);
      const key = path.join(dataDir, 'certs', `${h}.key`);
      assert.equal(statSync(key).mode & 0o777, 0o600, `${h} key mode`);
      assert.doesNotMatch(readFileSync(crt, 'utf8'), /PRIVATE KEY/, 'the certificate file holds no key');
      assert.match(readFileSync(key, 'utf8'), /^-----BEGIN (EC )?PRIVATE KEY-----/);
    }
    assert.equal(readFileSync(path.join(dataDir, 'certs', 'conference.example.test.crt'), 'utf8'), certs.wild!.chain);
    assert.equal(existsSync(path.join(dataDir, 'certs', 'missing.test.crt')), false);

    // The server loads what was imported.
    const config = new Config({ dataDir, virtualHosts: Object.fromEntries(hosts.slice(0, 5).map((h) => [h, {}])) } as CadenceConfig, undefined);
    const manager = new CertManager(config);
    await manager.init(hosts.slice(0, 5));
    assert.equal(manager.info('c.test')!.fingerprint256, certs.c!.x509.fingerprint256);
    assert.equal(manager.info('muc.example.net')!.fingerprint256, certs.net!.x509.fingerprint256);
  });

  it('says unchanged on a second run, and writes nothing in a dry run', async () => {
    await importCertificates({ dirs: [src], hosts: ['b.test'], dataDir });
    const [again] = await importCertificates({ dirs: [src], hosts: ['b.test'], dataDir });
    assert.equal(again!.status, 'unchanged');
    const dry = mkdtempSync(path.join(tmpdir(), 'cadence-import-dry-'));
    const [r] = await importCertificates({ dirs: [src], hosts: ['b.test'], dataDir: dry, dryRun: true });
    assert.equal(r!.status, 'imported');
    assert.match(r!.message, /would copy/);
    assert.equal(existsSync(path.join(dry, 'certs')), false);
    rmSync(dry, { recursive: true, force: true });
  });

  it('warns when the config reads another file for the host, and when there is no chain', async () => {
    const leafOnly = mkdtempSync(path.join(tmpdir(), 'cadence-import-leaf-'));
    writeFileSync(path.join(leafOnly, 'b.test.crt'), certs.b!.cert);
    writeFileSync(path.join(leafOnly, 'b.test.key'), certs.b!.key);
    const [r] = await importCertificates({
      dirs: [leafOnly],
      hosts: ['b.test'],
      dataDir,
      configuredPaths: () => ({ certFile: '/etc/xmpp/b.crt', keyFile: '/etc/xmpp/b.key', configured: true }),
    });
    assert.equal(r!.status, 'imported');
    assert.equal(r!.warnings.length, 2);
    assert.match(r!.warnings[0]!, /\/etc\/xmpp\/b\.crt/);
    assert.match(r!.warnings[1]!, /no intermediate/);
    rmSync(leafOnly, { recursive: true, force: true });
  });
});
