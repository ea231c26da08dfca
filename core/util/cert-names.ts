// Is a certificate valid for an XMPP domain? The name checks of RFC 6120 §13.7.2, RFC 6125 §6
// (as RFC 7590 profiles them for XMPP) and XEP-0178 §3 for server-to-server streams:
//   SRV-ID   subjectAltName otherName id-on-dnsSRV (RFC 4985) `_xmpp-server.<domain>`
//   DNS-ID   subjectAltName dNSName `<domain>`, with the wildcard rules of RFC 6125 §6.4.3
//   XmppAddr subjectAltName otherName id-on-xmppAddr (RFC 6120 §13.7.1.4) `<domain>`, no wildcards
//   CN-ID    the subject's commonName, only when the certificate presents none of the above
//            and no URI-ID (RFC 6125 §6.4.4)
// The names are read from the certificate's DER here: Node's X509Certificate.subjectAltName
// renders otherNames as text ("othername:XmppAddr:…") whose quoting is ambiguous to parse back.
// Chain validity (issuer, dates, revocation) is not checked here: that is TLS's (or DANE's) job.
import { X509Certificate } from 'node:crypto';
import { DerError, TAG, children, decodeOid, decodeString, expect, readTlv, type Tlv } from './der.ts';
import { toAsciiDomain } from './domain.ts';

export const OID_SUBJECT_ALT_NAME = '2.5.29.17';
export const OID_COMMON_NAME = '2.5.4.3';
/** id-on-xmppAddr (RFC 6120 §13.7.1.4). */
export const OID_XMPP_ADDR = '1.3.6.1.5.5.7.8.5';
/** id-on-dnsSRV, SRVName (RFC 4985). */
export const OID_DNS_SRV = '1.3.6.1.5.5.7.8.7';

/** The identifiers a certificate presents, as written in it. */
export interface PresentedIdentifiers {
  /** subjectAltName dNSName entries. */
  dnsNames: string[];
  /** subjectAltName otherName id-on-dnsSRV entries (`_service.name`). */
  srvNames: string[];
  /** subjectAltName otherName id-on-xmppAddr entries. */
  xmppAddrs: string[];
  /** subjectAltName uniformResourceIdentifier entries. */
  uris: string[];
  /** The subject's commonName attributes. */
  commonNames: string[];
}

export type NameMatch = 'SRV-ID' | 'DNS-ID' | 'XmppAddr' | 'CN-ID';

export type NameCheck =
  | { ok: true; matchedBy: NameMatch; presented: string; reference: string }
  | { ok: false; reason: 'invalid-reference' | 'unparsable-certificate' | 'no-match' };

export interface NameCheckOptions {
  /** The SRV service of the SRV-ID (RFC 6120 §13.7.1.2): 'xmpp-server' (default) or 'xmpp-client'. */
  service?: string;
  /** Accept the subject CN when no SAN identifier is presented (RFC 6125 §6.4.4; default true). */
  allowCommonName?: boolean;
  /**
   * Further names accepted as DNS-IDs only, e.g. the DNSSEC-secured SRV target host with DANE
   * (RFC 7673 §4.2). Never used for SRV-ID or XmppAddr.
   */
  extraDnsIds?: readonly string[];
}

/** Reads the presented identifiers; undefined when the certificate cannot be parsed. */
export function presentedIdentifiers(cert: Buffer | X509Certificate): PresentedIdentifiers | undefined {
  const der = cert instanceof X509Certificate ? cert.raw : cert;
  try {
    return parseIdentifiers(der);
  } catch (err) {
    if (err instanceof DerError) return undefined;
    throw err;
  }
}

function parseIdentifiers(der: Buffer): PresentedIdentifiers {
  const ids: PresentedIdentifiers = { dnsNames: [], srvNames: [], xmppAddrs: [], uris: [], commonNames: [] };
  const certificate = expect(der, 0, TAG.SEQUENCE);
  if (certificate.next !== der.length) throw new DerError('trailing data after the certificate');
  const tbs = children(der, certificate)[0];
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new DerError('no tbsCertificate');
  const fields = children(der, tbs);
  // version [0] EXPLICIT is optional; then serialNumber, signature, issuer, validity, subject.
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[base + 4];
  if (!subject || subject.tag !== TAG.SEQUENCE) throw new DerError('no subject');
  for (const rdn of children(der, subject)) {
    if (rdn.tag !== TAG.SET) throw new DerError('RDN is not a SET');
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, atv);
      if (!type || !value) throw new DerError('short AttributeTypeAndValue');
      if (decodeOid(der, type) !== OID_COMMON_NAME) continue;
      const cn = decodeString(der, value);
      if (cn !== undefined) ids.commonNames.push(cn);
    }
  }
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (!extensions) return ids;
  const list = children(der, extensions)[0];
  if (!list || list.tag !== TAG.SEQUENCE) throw new DerError('extensions are not a SEQUENCE');
  let sanSeen = false;
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    if (!parts[0] || decodeOid(der, parts[0]) !== OID_SUBJECT_ALT_NAME) continue;
    // RFC 5280 §4.2: an extension appears at most once; two SANs could disagree.
    if (sanSeen) throw new DerError('two subjectAltName extensions');
    sanSeen = true;
    const value = parts[parts.length - 1]!;
    if (value.tag !== TAG.OCTET_STRING) throw new DerError('extnValue is not an OCTET STRING');
    const names = expect(der, value.start, TAG.SEQUENCE, value.end);
    if (names.next !== value.end) throw new DerError('trailing data in subjectAltName');
    for (const name of children(der, names)) readGeneralName(der, name, ids);
  }
  return ids;
}

function readGeneralName(der: Buffer, name: Tlv, ids: PresentedIdentifiers): void {
  switch (name.tag) {
    case 0xa0: {
      // otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
      const [typeId, wrapper] = children(der, name);
      if (!typeId || !wrapper || wrapper.tag !== 0xa0) throw new DerError('malformed otherName');
      const oid = decodeOid(der, typeId);
      const inner = readTlv(der, wrapper.start, wrapper.end);
      if (oid === OID_XMPP_ADDR) {
        // RFC 6120 §13.7.1.4: a UTF8String.
        const v = inner.tag === TAG.UTF8_STRING ? decodeString(der, inner) : undefined;
        if (v !== undefined) ids.xmppAddrs.push(v);
      } else if (oid === OID_DNS_SRV) {
        // RFC 4985: SRVName ::= IA5String
        const v = inner.tag === TAG.IA5_STRING ? decodeString(der, inner) : undefined;
        if (v !== undefined) ids.srvNames.push(v);
      }
      return;
    }
    case 0x82: {
      // dNSName [2] IMPLICIT IA5String
      const v = decodeString(der, { ...name, tag: TAG.IA5_STRING });
      if (v !== undefined) ids.dnsNames.push(v);
      return;
    }
    case 0x86: {
      // uniformResourceIdentifier [6] IMPLICIT IA5String
      const v = decodeString(der, { ...name, tag: TAG.IA5_STRING });
      if (v !== undefined) ids.uris.push(v);
      return;
    }
    default:
      return; // rfc822Name, iPAddress, directoryName, …: not identifiers of an XMPP domain
  }
}

/** A presented DNS name in comparable form: lowercase ASCII, no trailing dot; undefined if unusable. */
function presentedDnsName(s: string): string | undefined {
  let name = s.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!/^[a-z0-9*_-]+(?:\.[a-z0-9_-]+)*$/.test(name)) return undefined;
  if (name.split('.').some((l) => l.length === 0 || l.length > 63)) return undefined;
  return name;
}

/**
 * RFC 6125 §6.4 matching of one presented DNS-ID against a reference domain in A-label form.
 * Wildcards (§6.4.3): only in the left-most label, at most one, never inside an A-label, matching
 * exactly one non-empty label or label fragment (`*.example.org` matches `a.example.org`, not
 * `example.org` nor `a.b.example.org`; `im*.example.net` matches `im1.example.net`, as XEP-0178
 * §3 allows). A wildcard needs two labels to its right, so `*.com` matches nothing.
 */
export function matchDnsId(presented: string, reference: string): boolean {
  const p = presentedDnsName(presented);
  if (p === undefined) return false;
  if (!p.includes('*')) return p === reference;
  const labels = p.split('.');
  const refLabels = reference.split('.');
  const wild = labels[0]!;
  if (!wild.includes('*') || p.indexOf('*') !== p.lastIndexOf('*')) return false;
  if (labels.length < 3 || labels.length !== refLabels.length) return false;
  if (wild.startsWith('xn--')) return false;
  if (labels.slice(1).join('.') !== refLabels.slice(1).join('.')) return false;
  const refFirst = refLabels[0]!;
  if (refFirst.length === 0) return false;
  if (wild === '*') return true;
  if (refFirst.startsWith('xn--')) return false; // a fragment wildcard never matches into an A-label
  const [prefix, suffix] = wild.split('*') as [string, string];
  return refFirst.length > prefix.length + suffix.length && refFirst.startsWith(prefix) && refFirst.endsWith(suffix);
}

/**
 * Checks a certificate against an XMPP domain (the peer's domain for s2s, RFC 6120 §13.7.2.1).
 * The reference may be given as U-labels or A-labels.
 */
export function verifyCertificateName(cert: Buffer | X509Certificate, domain: string, options: NameCheckOptions = {}): NameCheck {
  const reference = toAsciiDomain(domain);
  if (reference === null || reference.includes(':') || /^[0-9.]+$/.test(reference)) return { ok: false, reason: 'invalid-reference' };
  const ids = presentedIdentifiers(cert);
  if (!ids) return { ok: false, reason: 'unparsable-certificate' };
  const service = `_${(options.service ?? 'xmpp-server').toLowerCase()}.`;

  for (const srv of ids.srvNames) {
    if (!srv.toLowerCase().startsWith(service)) continue;
    if (matchDnsId(srv.slice(service.length), reference)) return { ok: true, matchedBy: 'SRV-ID', presented: srv, reference };
  }
  for (const dns of ids.dnsNames) {
    if (matchDnsId(dns, reference)) return { ok: true, matchedBy: 'DNS-ID', presented: dns, reference };
  }
  for (const addr of ids.xmppAddrs) {
    // A server's XmppAddr is a bare domain; it may be written with U-labels.
    if (/[@/]/.test(addr)) continue;
    if (toAsciiDomain(addr) === reference) return { ok: true, matchedBy: 'XmppAddr', presented: addr, reference };
  }
  const extra = (options.extraDnsIds ?? []).map((h) => toAsciiDomain(h)).filter((h): h is string => h !== null);
  for (const host of extra) {
    for (const dns of ids.dnsNames) {
      if (matchDnsId(dns, host)) return { ok: true, matchedBy: 'DNS-ID', presented: dns, reference: host };
    }
  }
  const hasSanIdentifiers = ids.dnsNames.length + ids.srvNames.length + ids.xmppAddrs.length + ids.uris.length > 0;
  if (!hasSanIdentifiers && options.allowCommonName !== false) {
    for (const cn of ids.commonNames) {
      // A CN is checked only when it has the form of a DNS name (RFC 6125 §6.4.4).
      const form = cn.includes('*') ? cn : toAsciiDomain(cn);
      if (form === null) continue;
      for (const ref of [reference, ...extra]) {
        if (matchDnsId(form, ref)) return { ok: true, matchedBy: 'CN-ID', presented: cn, reference: ref };
      }
    }
  }
  return { ok: false, reason: 'no-match' };
}
