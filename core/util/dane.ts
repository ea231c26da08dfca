// DANE for outgoing s2s streams: does the peer's certificate chain match the TLSA records of its
// endpoint? RFC 6698 (TLSA), with the usage semantics of RFC 7671 and the SRV rules of RFC 7673.
// Only records from a DNSSEC-validated answer may be given here (core/net/dns.ts reports
// `secure`); the caller looks them up at `_<port>._tcp.<SRV target>` when the SRV and address
// answers were validated too (RFC 7673 §3).
//
//   usage 3 DANE-EE   the leaf matches; nothing else is checked: no PKIX chain, no names, no
//                     validity dates (RFC 7671 §5.1)
//   usage 2 DANE-TA   a certificate of the presented chain (or the record's own certificate, for
//                     full-certificate records) matches and is the trust anchor of a chain to the
//                     leaf: signatures, CA flags and dates are checked, and the leaf's names
//                     (RFC 7671 §5.2, RFC 7673 §4.2)
//   usage 1 PKIX-EE   the leaf matches, the chain validated by PKIX, names checked
//   usage 0 PKIX-TA   an issuer in the PKIX-validated chain matches, names checked
//
// The result is 'unusable' when no record is usable (unknown usage, selector or matching type,
// or a digest of the wrong length; RFC 6698 §4.1): the connection proceeds as without DANE.
// When some record is usable and none matches, authentication has failed: there is no fallback
// to plain PKIX (RFC 6698 §4.1).
import { X509Certificate, createHash } from 'node:crypto';
import { verifyCertificateName } from './cert-names.ts';

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export const DANE_USAGE = { PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3 } as const;

export interface DaneInput {
  /** TLSA records of a DNSSEC-validated answer. */
  records: readonly TlsaRecord[];
  /** The chain the peer presented, leaf first (DER or parsed). */
  chain: readonly (Buffer | X509Certificate)[];
  /**
   * The chain PKIX validation built, leaf first and ending at a trust anchor of the configured
   * store, when validation succeeded (TLS `authorized`); undefined otherwise. Needed by usages
   * 0 and 1 only.
   */
  pkixChain?: readonly (Buffer | X509Certificate)[];
  /** The remote XMPP domain: the reference identifier of usages 0–2. */
  domain: string;
  /**
   * The SRV target host the connection went to, accepted as a DNS-ID too (RFC 7673 §4.2),
   * only when its SRV answer was DNSSEC-validated.
   */
  targetHost?: string;
  now?: Date;
}

export type DaneResult =
  | { status: 'verified'; usage: number; record: TlsaRecord; depth: number }
  | { status: 'unusable' }
  | { status: 'failed'; reason: string };

const DIGEST_LENGTH: Record<number, number> = { 1: 32, 2: 64 };
const MAX_CHAIN = 10;

function isUsable(r: TlsaRecord): boolean {
  if (r.usage > 3 || r.selector > 1 || r.matchingType > 2) return false;
  const length = DIGEST_LENGTH[r.matchingType];
  if (length !== undefined && r.data.length !== length) return false;
  return r.data.length > 0;
}

/**
 * The records a client should use: the usable ones, and among digests of the same usage and
 * selector only the strongest present (RFC 7671 §9 digest algorithm agility: SHA2-512 over
 * SHA2-256). Full(0) records are not digests and are always kept.
 */
export function usableRecords(records: readonly TlsaRecord[]): TlsaRecord[] {
  const usable = records.filter(isUsable);
  const strongest = new Map<string, number>();
  for (const r of usable) {
    if (r.matchingType === 0) continue;
    const k = `${r.usage}/${r.selector}`;
    strongest.set(k, Math.max(strongest.get(k) ?? 0, r.matchingType));
  }
  return usable.filter((r) => r.matchingType === 0 || strongest.get(`${r.usage}/${r.selector}`) === r.matchingType);
}

function parse(c: Buffer | X509Certificate): X509Certificate | undefined {
  if (c instanceof X509Certificate) return c;
  try {
    return new X509Certificate(c);
  } catch {
    return undefined;
  }
}

/** The data a record's selector picks from a certificate, hashed by its matching type. */
export function associationData(cert: X509Certificate, selector: number, matchingType: number): Buffer {
  const selected = selector === 0 ? cert.raw : (cert.publicKey.export({ type: 'spki', format: 'der' }) as Buffer);
  if (matchingType === 1) return createHash('sha256').update(selected).digest();
  if (matchingType === 2) return createHash('sha512').update(selected).digest();
  return Buffer.from(selected);
}

function matches(cert: X509Certificate, r: TlsaRecord): boolean {
  try {
    return associationData(cert, r.selector, r.matchingType).equals(r.data);
  } catch {
    return false;
  }
}

function inValidity(cert: X509Certificate, now: Date): boolean {
  return new Date(cert.validFrom) <= now && now <= new Date(cert.validTo);
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/**
 * DANE-TA: a path from the leaf up through presented certificates to one matching the record
 * (or the record's own certificate), every signature verified, intermediates CAs, all in date.
 */
function daneTaPath(leaf: X509Certificate, presented: X509Certificate[], r: TlsaRecord, now: Date): { depth: number } | undefined {
  const anchors: X509Certificate[] = presented.slice(1).filter((c) => matches(c, r));
  if (r.selector === 0 && r.matchingType === 0) {
    const own = parse(r.data);
    if (own) anchors.push(own);
  }
  if (anchors.length === 0) return undefined;
  const pool = presented.slice(1);
  // Depth-first over issuers; the pool is small (a chain), the depth bounded.
  const walk = (cert: X509Certificate, depth: number, used: Set<X509Certificate>): number | undefined => {
    if (depth > MAX_CHAIN || !inValidity(cert, now)) return undefined;
    for (const anchor of anchors) {
      if (anchor.ca && issuedBy(cert, anchor)) return depth + 1;
    }
    for (const next of pool) {
      if (used.has(next) || !next.ca || !issuedBy(cert, next)) continue;
      const found = walk(next, depth + 1, new Set([...used, next]));
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const depth = walk(leaf, 0, new Set());
  return depth === undefined ? undefined : { depth };
}

/** Checks a peer chain against TLSA records (see the header for each usage's rules). */
export function daneVerify(input: DaneInput): DaneResult {
  const records = usableRecords(input.records);
  if (records.length === 0) return { status: 'unusable' };
  const presented = input.chain.map(parse);
  if (presented.length === 0 || presented.some((c) => c === undefined)) return { status: 'failed', reason: 'the peer presented no parsable certificate chain' };
  const chain = presented as X509Certificate[];
  const leaf = chain[0]!;
  const now = input.now ?? new Date();
  const pkix = input.pkixChain?.map(parse).filter((c): c is X509Certificate => c !== undefined);
  const nameOk = () => verifyCertificateName(leaf, input.domain, { extraDnsIds: input.targetHost ? [input.targetHost] : [] }).ok;
  const reasons = new Set<string>();

  // DANE-EE first: it needs nothing but the leaf.
  for (const r of records.filter((x) => x.usage === DANE_USAGE.DANE_EE)) {
    if (matches(leaf, r)) return { status: 'verified', usage: r.usage, record: r, depth: 0 };
    reasons.add('no DANE-EE record matches the leaf');
  }
  for (const r of records.filter((x) => x.usage === DANE_USAGE.DANE_TA)) {
    const path = daneTaPath(leaf, chain, r, now);
    if (!path) {
      reasons.add('no DANE-TA record matches a trust anchor of a valid chain to the leaf');
      continue;
    }
    if (!nameOk()) {
      reasons.add(`the certificate is not valid for ${input.domain}`);
      continue;
    }
    return { status: 'verified', usage: r.usage, record: r, depth: path.depth };
  }
  for (const r of records.filter((x) => x.usage === DANE_USAGE.PKIX_EE || x.usage === DANE_USAGE.PKIX_TA)) {
    if (!pkix || pkix.length === 0 || !pkix[0]!.raw.equals(leaf.raw)) {
      reasons.add('PKIX-TA/PKIX-EE records need a PKIX-valid chain');
      continue;
    }
    const depth = r.usage === DANE_USAGE.PKIX_EE
      ? (matches(leaf, r) ? 0 : -1)
      : pkix.findIndex((c, i) => i > 0 && matches(c, r));
    if (depth < 0) {
      reasons.add(r.usage === DANE_USAGE.PKIX_EE ? 'no PKIX-EE record matches the leaf' : 'no PKIX-TA record matches an issuer of the validated chain');
      continue;
    }
    if (!nameOk()) {
      reasons.add(`the certificate is not valid for ${input.domain}`);
      continue;
    }
    return { status: 'verified', usage: r.usage, record: r, depth };
  }
  return { status: 'failed', reason: [...reasons].join('; ') };
}
