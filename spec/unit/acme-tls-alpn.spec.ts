// The TLS-ALPN-01 challenge certificate (RFC 8737 §3) and the DER writer it is built with: read
// back with Cadence's own DER reader, with Node's X509Certificate, with OpenSSL, and checked by
// acme-client's verifier (an independent implementation of the same section).
import assert from 'node:assert/strict';
import { createHash, X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as acme from 'acme-client';
import { OID_ACME_IDENTIFIER, tlsAlpnChallengeCertificate } from '../../core/net/acme-tls-alpn.ts';
import { TAG, children, decodeOid, expect, readTlv } from '../../core/util/der.ts';
import { oid, time, unsignedInteger } from '../../core/util/der-writer.ts';

/** The extensions of a certificate: OID → { critical, value (the extnValue contents) }. */
function extensions(der: Buffer): Map<string, { critical: boolean; value: Buffer }> {
  const cert = expect(der, 0, TAG.SEQUENCE);
  const tbs = children(der, cert)[0]!;
  const exts = children(der, tbs).find((f) => f.tag === 0xa3)!;
  const list = children(der, exts)[0]!;
  const out = new Map<string, { critical: boolean; value: Buffer }>();
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    const critical = parts.length === 3 && parts[1]!.tag === TAG.BOOLEAN && der[parts[1]!.start] === 0xff;
    const v = parts[parts.length - 1]!;
    out.set(decodeOid(der, parts[0]!), { critical, value: der.subarray(v.start, v.end) });
  }
  return out;
}

describe('TLS-ALPN-01 challenge certificate (RFC 8737 §3)', () => {
  const keyAuthorization = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nysa0VJU1k0vWjGRVWmCkN2Gyo8Dgg5IyLhgDspS9c0';

  it('carries one dNSName and the critical acmeIdentifier with SHA-256 of the key authorization', () => {
    const { cert, key } = tlsAlpnChallengeCertificate('xmpp.example.org', keyAuthorization);
    const x = new X509Certificate(cert);
    assert.equal(x.subjectAltName, 'DNS:xmpp.example.org');
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.ok(x.checkPrivateKey(createPrivateKey(key)));
    const exts = extensions(x.raw);
    const acmeId = exts.get(OID_ACME_IDENTIFIER)!;
    assert.equal(acmeId.critical, true, 'MUST be critical');
    // Authorization ::= OCTET STRING (SIZE (32)), itself inside extnValue.
    const inner = readTlv(acmeId.value, 0);
    assert.equal(inner.tag, TAG.OCTET_STRING);
    assert.equal(inner.next, acmeId.value.length);
    assert.deepEqual(acmeId.value.subarray(inner.start, inner.end), createHash('sha256').update(keyAuthorization).digest());
    // subjectAltName: exactly one entry, a dNSName.
    const san = exts.get('2.5.29.17')!;
    const names = children(san.value, readTlv(san.value, 0));
    assert.equal(names.length, 1);
    assert.equal(names[0]!.tag, 0x82);
    const now = Date.now();
    assert.ok(new Date(x.validFrom).getTime() < now && new Date(x.validTo).getTime() > now);
  });

  it("passes acme-client's check, and fails it for another key authorization", () => {
    const { cert } = tlsAlpnChallengeCertificate('xmpp.example.org', keyAuthorization);
    assert.equal(acme.crypto.isAlpnCertificateAuthorizationValid(cert, keyAuthorization), true);
    assert.equal(acme.crypto.isAlpnCertificateAuthorizationValid(cert, `${keyAuthorization}x`), false);
  });

  it('is read by OpenSSL with the extension marked critical', () => {
    const { cert } = tlsAlpnChallengeCertificate('xmpp.example.org', keyAuthorization);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: cert }).toString();
    assert.match(text, /1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
    assert.match(text, /DNS:xmpp\.example\.org/);
  });

  it('names an internationalised domain in A-labels, and refuses wildcards and non-names', () => {
    assert.equal(new X509Certificate(tlsAlpnChallengeCertificate('bücher.example', 'k.t').cert).subjectAltName, 'DNS:xn--bcher-kva.example');
    assert.throws(() => tlsAlpnChallengeCertificate('*.example.org', 'k.t'), RangeError);
    assert.throws(() => tlsAlpnChallengeCertificate('not a domain', 'k.t'), RangeError);
  });

  it('gets a fresh key and serial each time', () => {
    const a = new X509Certificate(tlsAlpnChallengeCertificate('a.example', 'k.t').cert);
    const b = new X509Certificate(tlsAlpnChallengeCertificate('a.example', 'k.t').cert);
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.notEqual(a.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'), b.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'));
  });
});

describe('DER writer', () => {
  it('encodes OIDs, integers and times as X.690 and RFC 5280 say', () => {
    assert.equal(oid('1.3.6.1.5.5.7.1.31').toString('hex'), '06082b0601050507011f');
    assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
    assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.throws(() => oid('1.40.1'), RangeError);
    assert.equal(unsignedInteger(0).toString('hex'), '020100');
    assert.equal(unsignedInteger(127).toString('hex'), '02017f');
    assert.equal(unsignedInteger(128).toString('hex'), '02020080', 'a leading zero keeps it positive');
    assert.equal(unsignedInteger(Buffer.from([0, 0, 1])).toString('hex'), '020101', 'no superfluous leading zeros');
    // UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
    assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('latin1').slice(2), '491231235959Z');
    assert.equal(time(new Date('2049-12-31T23:59:59Z'))[0], 0x17);
    assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2), '20500101000000Z');
    assert.equal(time(new Date('2050-01-01T00:00:00Z'))[0], 0x18);
  });
});
