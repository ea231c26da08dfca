// Certificate name checks for XMPP domains: RFC 6125 §6 (DNS-ID with wildcards, SRV-ID, CN-ID
// fallback), RFC 6120 §13.7 (XmppAddr, SRV-ID `_xmpp-server`), XEP-0178 §3; and the DER reader.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { matchDnsId, presentedIdentifiers, verifyCertificateName } from '../../core/util/cert-names.ts';
import { DerError, TAG, decodeOid, decodeString, readTlv } from '../../core/util/der.ts';
import { toAsciiDomain } from '../../core/util/domain.ts';
import { S2sTestPki } from '../helpers/testca-s2s.ts';

// A tiny DER writer, for certificates no CA tool would produce.
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const oid = (hex: string) => tlv(0x06, Buffer.from(hex, 'hex'));
const OID_SAN_HEX = '551d11'; // 2.5.29.17
const OID_CN_HEX = '550403'; // 2.5.4.3
const OID_XMPP_ADDR_HEX = '2b06010505070805'; // 1.3.6.1.5.5.7.8.5

function fakeCertificate(extensions: Buffer[], cn = 'x.example'): Buffer {
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, oid(OID_CN_HEX), tlv(0x0c, Buffer.from(cn)))));
  const tbs = tlv(0x30,
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, Buffer.from([1])),
    tlv(0x30), tlv(0x30), tlv(0x30),
    subject,
    tlv(0x30),
    tlv(0xa3, tlv(0x30, ...extensions)));
  return tlv(0x30, tbs, tlv(0x30), tlv(0x03, Buffer.from([0])));
}
const sanExtension = (...names: Buffer[]) => tlv(0x30, oid(OID_SAN_HEX), tlv(0x04, tlv(0x30, ...names)));
const dnsName = (name: string) => tlv(0x82, Buffer.from(name));
const xmppAddr = (value: Buffer) => tlv(0xa0, oid(OID_XMPP_ADDR_HEX), tlv(0xa0, tlv(0x0c, value)));

describe('certificate names (RFC 6125, RFC 6120 §13.7, XEP-0178)', () => {
  let pki: S2sTestPki;
  before(() => {
    pki = S2sTestPki.create();
  });

  describe('DNS-ID matching and wildcards (RFC 6125 §6.4.3)', () => {
    const cases: [presented: string, reference: string, expected: boolean][] = [
      ['example.com', 'example.com', true],
      ['EXAMPLE.Com.', 'example.com', true],
      ['example.com', 'www.example.com', false],
      // §6.4.3 item 2: the wildcard stands for the left-most label only.
      ['*.example.com', 'foo.example.com', true],
      ['*.example.com', 'bar.foo.example.com', false],
      ['*.example.com', 'example.com', false],
      // item 1: nowhere but the left-most label.
      ['bar.*.example.net', 'bar.foo.example.net', false],
      ['*.*.example.net', 'a.b.example.net', false],
      ['**.example.net', 'ab.example.net', false],
      // item 3: a fragment of the left-most label (XEP-0178 §3's im*.example.net).
      ['baz*.example.net', 'baz1.example.net', true],
      ['*baz.example.net', 'foobaz.example.net', true],
      ['b*z.example.net', 'buzz.example.net', true],
      ['im*.example.net', 'im1.example.net', true],
      ['im*.example.net', 'chat.example.net', false],
      ['baz*.example.net', 'baz.example.net', false],
      // …but never inside an A-label, nor a fragment matching into one.
      ['xn--*.example.net', 'xn--bcher-kva.example.net', false],
      ['x*.example.net', 'xn--bcher-kva.example.net', false],
      ['*.example.net', 'xn--bcher-kva.example.net', true],
      // A wildcard needs two labels to its right.
      ['*.com', 'example.com', false],
      ['*', 'com', false],
      // Not DNS names at all.
      ['exa mple.com', 'exa mple.com', false],
      ['', '', false],
    ];
    for (const [presented, reference, expected] of cases) {
      it(`${JSON.stringify(presented)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(reference)}`, () => {
        assert.equal(matchDnsId(presented, reference), expected);
      });
    }
  });

  describe('reading identifiers from DER', () => {
    it('reads dNSName, SRVName, XmppAddr, URI and CN as written, in agreement with Node', () => {
      const c = pki.issue({ cn: 'ünï.example', dns: ['example.org', '*.example.org'], xmppAddrs: ['bücher.example'], srvNames: ['_xmpp-server.example.net'], uris: ['xmpp:example.org'] });
      const ids = presentedIdentifiers(c.der);
      assert.deepEqual(ids, {
        dnsNames: ['example.org', '*.example.org'],
        srvNames: ['_xmpp-server.example.net'],
        xmppAddrs: ['bücher.example'],
        uris: ['xmpp:example.org'],
        commonNames: ['ünï.example'],
      });
      // Node prints the same otherNames (which is why their text form is not parsed back).
      assert.equal(c.x509.subjectAltName, 'DNS:example.org, DNS:*.example.org, othername:XmppAddr:bücher.example, othername:SRVName:_xmpp-server.example.net, URI:xmpp:example.org');
      assert.deepEqual(presentedIdentifiers(c.x509), ids);
    });

    it('returns undefined for what is not a certificate, without throwing', () => {
      const c = pki.issue({ dns: ['example.org'] });
      assert.equal(presentedIdentifiers(Buffer.alloc(0)), undefined);
      assert.equal(presentedIdentifiers(Buffer.from('not DER at all')), undefined);
      assert.equal(presentedIdentifiers(c.der.subarray(0, c.der.length - 10)), undefined);
      assert.equal(presentedIdentifiers(Buffer.concat([c.der, Buffer.from([0])])), undefined);
      // Every truncation of a real certificate is refused cleanly.
      for (let n = 0; n < c.der.length; n += 7) assert.equal(presentedIdentifiers(c.der.subarray(0, n)), undefined);
      assert.equal(verifyCertificateName(Buffer.from([0x30, 0x03, 0x02, 0x01]), 'example.org').ok, false);
    });

    it('refuses a certificate with two subjectAltName extensions (RFC 5280 §4.2)', () => {
      const one = fakeCertificate([sanExtension(dnsName('example.org'))]);
      assert.deepEqual(presentedIdentifiers(one)?.dnsNames, ['example.org']);
      const two = fakeCertificate([sanExtension(dnsName('example.org')), sanExtension(dnsName('evil.example'))]);
      assert.equal(presentedIdentifiers(two), undefined);
      assert.deepEqual(verifyCertificateName(two, 'example.org'), { ok: false, reason: 'unparsable-certificate' });
    });

    it('ignores an XmppAddr that is not valid UTF-8', () => {
      const cert = fakeCertificate([sanExtension(xmppAddr(Buffer.from([0x65, 0xff, 0x2e, 0x6f]))), ]);
      assert.deepEqual(presentedIdentifiers(cert)?.xmppAddrs, []);
    });

    it('reads OIDs, strings and lengths strictly', () => {
      const o = oid('2b06010505070805');
      assert.equal(decodeOid(o, readTlv(o, 0)), '1.3.6.1.5.5.7.8.5');
      const san = oid(OID_SAN_HEX);
      assert.equal(decodeOid(san, readTlv(san, 0)), '2.5.29.17');
      assert.throws(() => readTlv(Buffer.from([0x04, 0x81, 0x05, 1, 2, 3, 4, 5]), 0), DerError); // non-minimal length
      assert.throws(() => readTlv(Buffer.from([0x04, 0x80]), 0), DerError); // indefinite length
      assert.throws(() => readTlv(Buffer.from([0x04, 0x05, 1]), 0), DerError); // past the end
      const bmp = Buffer.from([0x1e, 0x04, 0x00, 0x61, 0x00, 0xfc]);
      assert.equal(decodeString(bmp, readTlv(bmp, 0)), 'aü');
      const ia5 = Buffer.from([TAG.IA5_STRING, 0x02, 0x61, 0xfc]);
      assert.equal(decodeString(ia5, readTlv(ia5, 0)), undefined);
    });
  });

  describe('is a certificate valid for a domain?', () => {
    it('accepts an SRV-ID for _xmpp-server only (RFC 6120 §13.7.1.2)', () => {
      const c = pki.issue({ srvNames: ['_xmpp-server.example.org', '_xmpp-client.example.net'] });
      assert.deepEqual(verifyCertificateName(c.der, 'example.org'), { ok: true, matchedBy: 'SRV-ID', presented: '_xmpp-server.example.org', reference: 'example.org' });
      assert.equal(verifyCertificateName(c.der, 'example.net').ok, false);
      assert.equal(verifyCertificateName(c.der, 'example.net', { service: 'xmpp-client' }).ok, true);
    });

    it('accepts a DNS-ID, exact or by wildcard, for the domain and its subdomains', () => {
      const c = pki.issue({ dns: ['example.org', '*.example.org'] });
      assert.equal(verifyCertificateName(c.der, 'example.org').ok, true);
      assert.deepEqual(verifyCertificateName(c.der, 'conference.example.org'), { ok: true, matchedBy: 'DNS-ID', presented: '*.example.org', reference: 'conference.example.org' });
      assert.deepEqual(verifyCertificateName(c.der, 'a.conference.example.org'), { ok: false, reason: 'no-match' });
      assert.equal(verifyCertificateName(c.der, 'example.com').ok, false);
    });

    it('accepts an XmppAddr naming the bare domain, never with wildcards or a localpart', () => {
      const c = pki.issue({ xmppAddrs: ['example.org', '*.example.net', 'user@example.com'] });
      assert.deepEqual(verifyCertificateName(c.der, 'example.org'), { ok: true, matchedBy: 'XmppAddr', presented: 'example.org', reference: 'example.org' });
      assert.equal(verifyCertificateName(c.der, 'a.example.net').ok, false);
      assert.equal(verifyCertificateName(c.der, 'example.com').ok, false);
    });

    it('compares internationalised names in A-label form, whichever form each side uses', () => {
      const c = pki.issue({ dns: ['xn--bcher-kva.example'], xmppAddrs: ['straße.example'] });
      assert.equal(verifyCertificateName(c.der, 'bücher.example').ok, true);
      assert.equal(verifyCertificateName(c.der, 'BÜCHER.example').ok, true);
      assert.equal(verifyCertificateName(c.der, 'xn--strae-oqa.example').ok, true);
      assert.equal(toAsciiDomain('straße.example'), 'xn--strae-oqa.example');
    });

    it('falls back to the CN only when no DNS-ID, SRV-ID, XmppAddr or URI-ID is present (RFC 6125 §6.4.4)', () => {
      const cnOnly = pki.issue({ cn: 'example.org' });
      assert.deepEqual(verifyCertificateName(cnOnly.der, 'example.org'), { ok: true, matchedBy: 'CN-ID', presented: 'example.org', reference: 'example.org' });
      assert.equal(verifyCertificateName(cnOnly.der, 'example.org', { allowCommonName: false }).ok, false);
      const withDns = pki.issue({ cn: 'example.org', dns: ['other.example'] });
      assert.equal(verifyCertificateName(withDns.der, 'example.org').ok, false);
      const withUri = pki.issue({ cn: 'example.org', uris: ['xmpp:example.org'] });
      assert.equal(verifyCertificateName(withUri.der, 'example.org').ok, false);
      const withXmpp = pki.issue({ cn: 'example.org', xmppAddrs: ['other.example'] });
      assert.equal(verifyCertificateName(withXmpp.der, 'example.org').ok, false);
      const notAName = pki.issue({ cn: 'Example Org Ltd' });
      assert.equal(verifyCertificateName(notAName.der, 'example.org').ok, false);
    });

    it('accepts extra DNS-IDs (a DNSSEC-secured SRV target) as DNS-IDs only', () => {
      const c = pki.issue({ dns: ['xmpp.hosting.example'], xmppAddrs: ['xmpp.hosting.example'] });
      assert.equal(verifyCertificateName(c.der, 'customer.example').ok, false);
      assert.deepEqual(verifyCertificateName(c.der, 'customer.example', { extraDnsIds: ['xmpp.hosting.example'] }), { ok: true, matchedBy: 'DNS-ID', presented: 'xmpp.hosting.example', reference: 'xmpp.hosting.example' });
      const srvOnly = pki.issue({ srvNames: ['_xmpp-server.xmpp.hosting.example'] });
      assert.equal(verifyCertificateName(srvOnly.der, 'customer.example', { extraDnsIds: ['xmpp.hosting.example'] }).ok, false);
    });

    it('refuses references that are not domain names', () => {
      const c = pki.issue({ dns: ['example.org'] });
      for (const bad of ['', 'a..b', '192.0.2.1', '[::1]', 'exa mple.org']) {
        assert.deepEqual(verifyCertificateName(c.der, bad), { ok: false, reason: 'invalid-reference' }, bad);
      }
    });

    it('works on X509Certificate objects as on DER', () => {
      const c = pki.issue({ dns: ['example.org'] });
      assert.equal(verifyCertificateName(new X509Certificate(c.cert), 'example.org').ok, true);
    });
  });
});
