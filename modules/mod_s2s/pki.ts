// What a peer's certificate is worth for a domain (RFC 6120 §13.7.2, RFC 6125, XEP-0178): a chain
// that leads to a trust anchor (the system store plus `s2sCaFile`), dates valid, every issuer a
// CA, and a name valid for the remote domain. OpenSSL is told to accept any certificate on s2s
// sockets (a certificate that does not authenticate is still fine for dialback), so the chain is
// judged here, the same way for both directions.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { verifyCertificateName } from '../../core/api.ts';

export type CertVerdict =
  | { valid: true; matchedBy: string }
  | { valid: false; reason: string };

const MAX_DEPTH = 10;

/** Split a PEM bundle into its certificates. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** The trust anchors for s2s: the system store and the configured CA file. */
export function loadAnchors(caFile: string | undefined): X509Certificate[] {
  const anchors: X509Certificate[] = [];
  for (const pem of rootCertificates) {
    try {
      anchors.push(new X509Certificate(pem));
    } catch {
      /* a root Node cannot parse is no anchor */
    }
  }
  if (caFile) anchors.push(...pemCertificates(readFileSync(caFile, 'utf8')));
  return anchors;
}

function datesValid(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

function issuedBy(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.checkIssued(issuer) && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** PKIX path check (RFC 5280 §6, the parts a server certificate needs): leaf first. */
export function verifyChain(chain: readonly Buffer[], anchors: readonly X509Certificate[], now = Date.now()): { ok: true } | { ok: false; reason: string } {
  if (chain.length === 0) return { ok: false, reason: 'no certificate' };
  let certs: X509Certificate[];
  try {
    certs = chain.map((d) => new X509Certificate(d));
  } catch {
    return { ok: false, reason: 'unparsable certificate' };
  }
  let current = certs[0]!;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (!datesValid(current, now)) return { ok: false, reason: depth === 0 ? 'certificate expired or not yet valid' : 'an issuer is expired or not yet valid' };
    const anchor = anchors.find((a) => a.raw.equals(current.raw) || issuedBy(current, a));
    if (anchor) {
      if (!anchor.raw.equals(current.raw) && !datesValid(anchor, now)) return { ok: false, reason: 'trust anchor expired' };
      return { ok: true };
    }
    const next = certs.find((c) => c !== current && c.ca && issuedBy(current, c));
    if (!next) return { ok: false, reason: depth === 0 && current.checkIssued(current) ? 'self-signed certificate' : 'no path to a trusted CA' };
    current = next;
  }
  return { ok: false, reason: 'chain too long' };
}

/** Does the chain authenticate `domain`: PKIX and an RFC 6125 name match. */
export function certVerdict(chain: readonly Buffer[], domain: string, anchors: readonly X509Certificate[]): CertVerdict {
  const path = verifyChain(chain, anchors);
  if (!path.ok) return { valid: false, reason: path.reason };
  const names = verifyCertificateName(chain[0]!, domain);
  if (!names.ok) return { valid: false, reason: `certificate not valid for ${domain} (${names.reason})` };
  return { valid: true, matchedBy: names.matchedBy };
}
