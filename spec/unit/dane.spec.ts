// DANE TLSA matching (RFC 6698) with the usage semantics of RFC 7671 and the SRV rules of
// RFC 7673, against certificate chains made by openssl; then the whole outgoing path on loopback:
// DNSSEC-validated SRV, address and TLSA answers from the test DNS server, a direct TLS
// connection, and the peer's chain checked against the records.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import tls from 'node:tls';
import { Resolver, resolveS2sTargets } from '../../core/net/dns.ts';
import { connectHappyEyeballs, expandTargets, peerCertificateChain } from '../../core/net/connect.ts';
import { daneVerify, usableRecords, type TlsaRecord } from '../../core/util/dane.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { S2sTestPki, type IssuedCert } from '../helpers/testca-s2s.ts';

/** A TLSA record for a certificate, computed here independently of core/util/dane.ts. */
function tlsa(cert: IssuedCert, usage: number, selector: number, matchingType: number): TlsaRecord {
  const x = new X509Certificate(cert.cert);
  const selected = selector === 0 ? x.raw : x.publicKey.export({ type: 'spki', format: 'der' });
  const data = matchingType === 0 ? Buffer.from(selected) : createHash(matchingType === 1 ? 'sha256' : 'sha512').update(selected).digest();
  return { usage, selector, matchingType, data };
}

const INTER_SKID = '01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67';

describe('DANE (RFC 6698, RFC 7671, RFC 7673)', () => {
  let pki: S2sTestPki;
  let other: S2sTestPki;
  let inter: IssuedCert;
  let leaf: IssuedCert;
  let selfSigned: IssuedCert;
  let expiredLeaf: IssuedCert;
  let foreignLeaf: IssuedCert;
  let hostingLeaf: IssuedCert;
  before(() => {
    pki = S2sTestPki.create();
    other = S2sTestPki.create('Another CA');
    inter = pki.issue({ cn: 'Intermediate', ca: true, subjectKeyId: INTER_SKID });
    leaf = pki.issue({ dns: ['peer.example'] }, inter);
    selfSigned = pki.selfSigned({ cn: 'not the domain', expired: true });
    expiredLeaf = pki.issue({ dns: ['peer.example'], expired: true }, inter);
    foreignLeaf = other.issue({ dns: ['peer.example'] });
    hostingLeaf = pki.issue({ dns: ['xmpp.hosting.example'] }, inter);
  });

  it('computes the same SPKI SHA2-256 as openssl (the usual "3 1 1" record)', () => {
    const spki = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: execFileSync('openssl', ['x509', '-noout', '-pubkey', '-in', leaf.certFile]) });
    assert.deepEqual(tlsa(leaf, 3, 1, 1).data, createHash('sha256').update(spki).digest());
  });

  describe('DANE-EE (usage 3)', () => {
    it('accepts a matching leaf whatever its names, issuer and dates (RFC 7671 §5.1)', () => {
      for (const [selector, matchingType] of [[1, 1], [0, 1], [0, 0], [1, 2], [1, 0]] as const) {
        const r = daneVerify({ records: [tlsa(selfSigned, 3, selector, matchingType)], chain: [selfSigned.der], domain: 'peer.example' });
        assert.deepEqual(r, { status: 'verified', usage: 3, record: tlsa(selfSigned, 3, selector, matchingType), depth: 0 }, `3 ${selector} ${matchingType}`);
      }
    });

    it('fails when no record matches the leaf, with no fallback to PKIX', () => {
      const r = daneVerify({ records: [tlsa(leaf, 3, 1, 1)], chain: [selfSigned.der], domain: 'peer.example', pkixChain: [selfSigned.der] });
      assert.equal(r.status, 'failed');
      // A record for an issuer does not make DANE-EE match.
      assert.equal(daneVerify({ records: [tlsa(inter, 3, 1, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
    });
  });

  describe('DANE-TA (usage 2)', () => {
    it('accepts a chain from a matching presented issuer, with the domain\'s name in the leaf', () => {
      const r = daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: leaf.chainDer, domain: 'peer.example' });
      assert.equal(r.status, 'verified');
      assert.equal(r.status === 'verified' && r.depth, 1);
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 1, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'verified');
    });

    it('checks names: the domain, or the DNSSEC-secured SRV target host (RFC 7673 §4.2)', () => {
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: leaf.chainDer, domain: 'other.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: hostingLeaf.chainDer, domain: 'customer.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: hostingLeaf.chainDer, domain: 'customer.example', targetHost: 'xmpp.hosting.example' }).status, 'verified');
    });

    it('uses a full-certificate record as the trust anchor when the peer does not send it', () => {
      // The chain the peer sends stops below the root; "2 0 0" carries the root itself.
      assert.equal(daneVerify({ records: [tlsa(pki.root, 2, 1, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
      const r = daneVerify({ records: [tlsa(pki.root, 2, 0, 0)], chain: leaf.chainDer, domain: 'peer.example' });
      assert.equal(r.status, 'verified');
      assert.equal(r.status === 'verified' && r.depth, 2);
    });

    it('refuses a leaf the anchor did not sign, an expired leaf, and a record matching the leaf itself', () => {
      // The matching intermediate is presented, but the leaf comes from another CA.
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: [foreignLeaf.der, inter.der], domain: 'peer.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: expiredLeaf.chainDer, domain: 'peer.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(leaf, 2, 0, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
    });

    it('verifies signatures, not only issuer names, and accepts only CAs as intermediates', () => {
      // An intermediate of another CA with our intermediate's name and key identifier signs a
      // leaf: names and identifiers chain up, the signature does not.
      const lookalike = other.issue({ cn: 'Intermediate', ca: true, subjectKeyId: INTER_SKID });
      const forged = other.issue({ dns: ['peer.example'] }, lookalike);
      assert.equal(forged.x509.checkIssued(inter.x509), true);
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: [forged.der, inter.der], domain: 'peer.example' }).status, 'failed');
      // A leaf used to sign another leaf is no intermediate.
      const underLeaf = pki.issue({ dns: ['peer.example'] }, leaf);
      assert.equal(daneVerify({ records: [tlsa(inter, 2, 0, 1)], chain: [underLeaf.der, leaf.der, inter.der], domain: 'peer.example' }).status, 'failed');
    });
  });

  describe('PKIX-EE and PKIX-TA (usages 1 and 0)', () => {
    it('need a PKIX-validated chain besides the matching record', () => {
      const validated = [...leaf.chainDer, pki.root.der];
      assert.equal(daneVerify({ records: [tlsa(leaf, 1, 1, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(leaf, 1, 1, 1)], chain: leaf.chainDer, pkixChain: validated, domain: 'peer.example' }).status, 'verified');
      assert.equal(daneVerify({ records: [tlsa(pki.root, 0, 0, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
      const ta = daneVerify({ records: [tlsa(pki.root, 0, 0, 1)], chain: leaf.chainDer, pkixChain: validated, domain: 'peer.example' });
      assert.equal(ta.status === 'verified' && ta.depth, 2);
    });

    it('check names and refuse a record for another certificate or a chain for another leaf', () => {
      const validated = [...leaf.chainDer, pki.root.der];
      assert.equal(daneVerify({ records: [tlsa(leaf, 1, 1, 1)], chain: leaf.chainDer, pkixChain: validated, domain: 'other.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(other.root, 0, 0, 1)], chain: leaf.chainDer, pkixChain: validated, domain: 'peer.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(leaf, 1, 1, 1)], chain: leaf.chainDer, pkixChain: [foreignLeaf.der, other.root.der], domain: 'peer.example' }).status, 'failed');
      // A PKIX-TA record never matches the leaf itself.
      assert.equal(daneVerify({ records: [tlsa(leaf, 0, 0, 1)], chain: leaf.chainDer, pkixChain: validated, domain: 'peer.example' }).status, 'failed');
    });
  });

  describe('usable records (RFC 6698 §4.1, RFC 7671 §9)', () => {
    it('answers "unusable" when no record is usable, so the connection goes on without DANE', () => {
      const good = tlsa(leaf, 3, 1, 1);
      const unusable: TlsaRecord[] = [
        { ...good, usage: 4 },
        { ...good, usage: 255 },
        { ...good, selector: 2 },
        { ...good, matchingType: 3 },
        { ...good, data: good.data.subarray(1) },
        { ...good, matchingType: 2 },
        { ...good, data: Buffer.alloc(0), matchingType: 0 },
      ];
      assert.deepEqual(daneVerify({ records: unusable, chain: leaf.chainDer, domain: 'peer.example' }), { status: 'unusable' });
      assert.deepEqual(daneVerify({ records: [], chain: leaf.chainDer, domain: 'peer.example' }), { status: 'unusable' });
      // One usable record that does not match is a failure, not "unusable".
      assert.equal(daneVerify({ records: [...unusable, tlsa(other.root, 3, 1, 1)], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
    });

    it('uses only the strongest digest of each usage and selector', () => {
      const sha256 = tlsa(leaf, 3, 1, 1);
      const wrong512: TlsaRecord = { ...tlsa(selfSigned, 3, 1, 2) };
      assert.deepEqual(usableRecords([sha256, wrong512]), [wrong512]);
      assert.equal(daneVerify({ records: [sha256, wrong512], chain: leaf.chainDer, domain: 'peer.example' }).status, 'failed');
      // Another selector is another combination, and Full(0) is not a digest.
      const full = tlsa(leaf, 3, 0, 0);
      assert.deepEqual(usableRecords([sha256, wrong512, full]), [wrong512, full]);
      assert.equal(daneVerify({ records: [sha256, wrong512, full], chain: leaf.chainDer, domain: 'peer.example' }).status, 'verified');
    });

    it('fails cleanly on a chain that is not DER', () => {
      assert.equal(daneVerify({ records: [tlsa(leaf, 3, 1, 1)], chain: [Buffer.from('garbage')], domain: 'peer.example' }).status, 'failed');
      assert.equal(daneVerify({ records: [tlsa(leaf, 3, 1, 1)], chain: [], domain: 'peer.example' }).status, 'failed');
    });
  });

  it('end to end: secure SRV, addresses and TLSA from the resolver; direct TLS; the peer chain matches', async () => {
    const dns = await startDnsServer();
    const server = tls.createServer({ cert: selfSigned.cert, key: selfSigned.key, ALPNProtocols: ['xmpp-server'] });
    server.on('tlsClientError', () => {});
    server.on('secureConnection', (s) => s.on('error', () => {}));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', () => resolve()));
    const port = (server.address() as { port: number }).port;
    try {
      dns.set('_xmpps-server._tcp.peer.example', [{ type: 'SRV', priority: 0, weight: 0, port, target: 'xmpp.peer.example' }], { secure: true });
      dns.set('_xmpp-server._tcp.peer.example', [], { secure: true });
      dns.set('xmpp.peer.example', [{ type: 'A', address: '127.0.0.3' }], { secure: true });
      dns.set(`_${port}._tcp.xmpp.peer.example`, [{ type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: tlsa(selfSigned, 3, 1, 1).data }], { secure: true });
      const resolver = new Resolver({ servers: [dns.address], hostsFile: false, timeoutMs: 500, attempts: 1 });
      const targets = await resolveS2sTargets('peer.example', { resolver });
      assert.ok(targets.ok);
      const conn = await connectHappyEyeballs(expandTargets(targets.targets, (h) => resolver.addresses(h)), { tlsOptions: () => ({ servername: 'peer.example' }) });
      assert.ok(conn.ok);
      assert.equal(conn.candidate.secure, true);
      const socket = conn.socket as tls.TLSSocket;
      assert.equal(socket.authorized, false); // self-signed, expired, wrong name: PKIX says no
      const records = await resolver.tlsa(conn.candidate.host, conn.candidate.port);
      assert.ok(records.ok && records.secure);
      const r = daneVerify({ records: records.records, chain: peerCertificateChain(socket), domain: 'peer.example', targetHost: conn.candidate.host });
      assert.equal(r.status, 'verified');
      socket.destroy();
      // The same records without AD are not DNSSEC-validated: the caller must not use them.
      dns.set(`_${port}._tcp.other.peer.example`, [{ type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: tlsa(selfSigned, 3, 1, 1).data }]);
      const insecure = await resolver.tlsa('other.peer.example', port);
      assert.ok(insecure.ok && !insecure.secure);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await dns.close();
    }
  });
});
