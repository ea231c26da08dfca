// Domain names as DNS and certificates carry them: A-labels (RFC 5890 §2.3.2.1), lowercase, no
// trailing dot. XMPP domainparts are kept as U-labels (core/util/jid.ts); DNS queries and the
// DNS-IDs / SRV-IDs of certificates use the ASCII form made here.
import { isIP } from 'node:net';
import { punycodeEncode, toUnicodeDomain } from './idna.ts';

// eslint-disable-next-line no-control-regex -- the whole ASCII range
const ASCII = /^[\x00-\x7f]*$/;

/**
 * The A-label form of a domain name (IDNA2008 checks of core/util/idna.ts, then Punycode for
 * every non-ASCII label), or null when the name is not a valid domain name. IP literals are
 * returned unchanged (IPv6 without brackets).
 */
export function toAsciiDomain(name: string): string | null {
  const literal = ipLiteral(name);
  if (literal) return literal;
  const unicode = toUnicodeDomain(name);
  if (unicode === null) return null;
  const labels = unicode.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (ASCII.test(label)) continue;
    const encoded = punycodeEncode(label);
    if (encoded === null) return null;
    labels[i] = `xn--${encoded}`;
  }
  const ascii = labels.join('.');
  return ascii.length > 253 ? null : ascii;
}

/** The address of an IP literal (`192.0.2.1`, `::1`, `[::1]`), or undefined for a name. */
export function ipLiteral(name: string): string | undefined {
  const bracketed = name.startsWith('[') && name.endsWith(']');
  const bare = bracketed ? name.slice(1, -1) : name;
  const family = isIP(bare);
  if (family === 6) return bare.toLowerCase();
  if (family === 4 && !bracketed) return bare;
  return undefined;
}
