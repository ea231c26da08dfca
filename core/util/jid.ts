/**
 * JID helpers (RFC 7622).
 *
 * Parts and their string-preparation profiles (enforcement, core/util/precis.ts and core/util/idna.ts):
 *   - localpart    PRECIS UsernameCaseMapped (RFC 8265 §3.3: width mapping, toLowerCase,
 *                  NFC, IdentifierClass with the RFC 5892 contextual rules, the Bidi Rule of
 *                  RFC 5893 when the part has right-to-left code points) plus RFC 7622 §3.3's
 *                  exclusions  " & ' / : < > @
 *   - domainpart   IDNA2008 (RFC 7622 §3.2): RFC 5895 mapping; NR-LDH labels (and '_'),
 *                  U-labels and A-labels (converted to U-labels) validated per RFC 5891 §5.4
 *                  with the RFC 5892 derived property, contextual rules and, for a name with a
 *                  right-to-left label, the Bidi Rule; IPv4 literals and bracketed IPv6 literals
 *   - resourcepart PRECIS OpaqueString (RFC 8265 §4.2: non-ASCII spaces to U+0020, NFC,
 *                  FreeformClass with the contextual rules; no directionality rule)
 * Each part is 1..1023 octets of UTF-8 after preparation (RFC 7622 §3.1).
 *
 * The derived properties, Bidi_Class, Joining_Type, Script and virama data come from tables
 * generated from the Unicode Character Database (core/util/unicode-tables.ts, Unicode 17.0.0, by
 * bin/gen-unicode-tables.ts); case mapping and normalisation use the engine's ICU.
 *
 * All functions are pure. Plain ASCII parts skip the tables entirely, and prep() keeps a small
 * bounded cache because it runs for every stanza address.
 */

import { isIPv6 } from 'node:net';
import { toUnicodeDomain } from './idna.ts';
import { opaqueString, usernameCaseMapped } from './precis.ts';

export interface JidParts {
	node?: string;
	host?: string;
	resource?: string;
}

/** RFC 7622 §3.1: each part is 1..1023 octets of UTF-8. */
const MAX_PART_BYTES = 1023;
/**
 * Early bound on a raw (unprepared) part, in UTF-8 octets and so also in UTF-16 code units.
 * Width mapping, space mapping and NFC composition shrink UTF-8 at most threefold (a fullwidth
 * letter to ASCII, three conjoining jamo to one syllable), so a raw part longer than this can
 * never prepare to <= 1023 octets and is rejected before any Unicode work.
 */
const MAX_RAW_PART_OCTETS = MAX_PART_BYTES * 4;

function rawTooLong(s: string): boolean {
	return s.length > MAX_RAW_PART_OCTETS || utf8Length(s) > MAX_RAW_PART_OCTETS;
}

// ---------------------------------------------------------------------------
// split / join / bare (no preparation)
// ---------------------------------------------------------------------------

/**
 * Split a JID into its parts without any preparation (RFC 7622 §3.2 order:
 * the resource starts at the first '/', the localpart ends at the first '@'
 * before that). An empty part that is syntactically present (e.g. "@host",
 * "host/") is returned as '' so that prepParts() can reject it.
 */
export function split(jid: string): JidParts {
	const slash = jid.indexOf('/');
	const head = slash < 0 ? jid : jid.slice(0, slash);
	const at = head.indexOf('@');
	const parts: JidParts = {};
	if (at < 0) {
		parts.host = head;
	} else {
		parts.node = head.slice(0, at);
		parts.host = head.slice(at + 1);
	}
	if (slash >= 0) parts.resource = jid.slice(slash + 1);
	return parts;
}

/** Build a JID string. Empty/undefined node and resource are omitted. */
export function join(node: string | undefined, host: string, resource?: string): string {
	let s = node ? `${node}@${host}` : host;
	if (resource) s += `/${resource}`;
	return s;
}

/** The bare (localpart@domainpart) portion, unprepped; undefined when there is no domainpart. */
export function bare(jid: string): string | undefined {
	const slash = jid.indexOf('/');
	const head = slash < 0 ? jid : jid.slice(0, slash);
	const at = head.indexOf('@');
	if (at === head.length - 1) return undefined; // "" or "node@"
	return head;
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex -- the whole ASCII range, controls included
const ASCII_ONLY = /^[\x00-\x7f]*$/;

function utf8Length(s: string): number {
	return ASCII_ONLY.test(s) ? s.length : Buffer.byteLength(s, 'utf8');
}

// ---------------------------------------------------------------------------
// Localpart: UsernameCaseMapped
// ---------------------------------------------------------------------------

/** Plain ASCII that is already in canonical form: lowercase, PVALID, none of "&'/:<>@. */
const NODE_FAST = /^[a-z0-9!#$%()*+,\-.;=?[\\\]^_`{|}~]+$/;
/** RFC 7622 §3.3: code points a localpart must not contain although IdentifierClass allows them. */
const NODE_EXCLUDED = /["&'/:<>@]/;

/** Prepare a localpart (UsernameCaseMapped). Returns null when invalid. */
export function nodeprep(s: string): string | null {
	if (NODE_FAST.test(s)) return s.length <= MAX_PART_BYTES ? s : null;
	if (s.length === 0 || rawTooLong(s)) return null;
	const out = usernameCaseMapped(s);
	if (out === null || NODE_EXCLUDED.test(out) || utf8Length(out) > MAX_PART_BYTES) return null;
	return out;
}

// ---------------------------------------------------------------------------
// Resourcepart: OpaqueString
// ---------------------------------------------------------------------------

/** Printable ASCII (incl. space) is always valid OpaqueString and already NFC. */
const RESOURCE_FAST = /^[\x20-\x7e]+$/;

/** Prepare a resourcepart (OpaqueString; case preserved). Returns null when invalid. */
export function resourceprep(s: string): string | null {
	if (RESOURCE_FAST.test(s)) return s.length <= MAX_PART_BYTES ? s : null;
	if (s.length === 0 || rawTooLong(s)) return null;
	const out = opaqueString(s);
	if (out === null || utf8Length(out) > MAX_PART_BYTES) return null;
	return out;
}

// ---------------------------------------------------------------------------
// Domainpart
// ---------------------------------------------------------------------------

/** One ASCII label: 1..63 of [a-z0-9_-], no leading/trailing hyphen. */
const LDH_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** Plain lowercase ASCII hostname (labels still checked individually). */
const HOST_FAST = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const ALL_DIGITS = /^[0-9]+$/;
const IPV4_STRICT = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
/**
 * Rejected before any mapping: whitespace and controls (the mapping would turn U+3000 into a
 * space), surrogates, private use. Format characters are left to IDNA2008, which allows ZWNJ
 * and ZWJ in context.
 */
const HOST_FORBIDDEN = /[\p{Z}\p{Cc}\p{Cs}\p{Co}\s]/u;

/** Validate an already lowercase, ASCII, non-IDN host (no trailing dot). */
function checkAsciiHost(h: string): boolean {
	if (h.length === 0 || h.length > MAX_PART_BYTES) return false;
	const labels = h.split('.');
	for (const l of labels) if (!LDH_LABEL.test(l)) return false;
	// A numeric final label is only acceptable as part of an IPv4 literal.
	if (ALL_DIGITS.test(labels.at(-1) ?? '')) return IPV4_STRICT.test(h);
	return true;
}

function prepIPv6(h: string): string | null {
	if (h.length < 4 || h[h.length - 1] !== ']') return null;
	const inner = h.slice(1, -1);
	// No zone identifiers ("%eth0"); only hex, ':' and an embedded IPv4 tail.
	if (!/^[0-9a-fA-F:.]+$/.test(inner) || !isIPv6(inner)) return null;
	try {
		return new URL(`http://[${inner}]/`).hostname; // RFC 5952 canonical text form, bracketed
	} catch {
		return null;
	}
}

/**
 * Prepare a domainpart. ASCII hostnames stay ASCII; IDNs are returned in
 * lowercase Unicode (U-label) form, A-labels are converted to U-labels
 * (RFC 7622 §3.2.2). One trailing '.' is stripped. IPv4 dotted-quad and
 * bracketed IPv6 literals are accepted (IPv6 in RFC 5952 form). Returns null
 * when invalid.
 */
export function nameprep(s: string): string | null {
	// "--" may start an A-label or be a reserved label: those take the full path.
	if (HOST_FAST.test(s) && !s.includes('--')) return checkAsciiHost(s) ? s : null;
	if (s.length === 0 || rawTooLong(s)) return null;
	if (s[0] === '[') return prepIPv6(s);
	if (HOST_FORBIDDEN.test(s)) return null;
	const h = toUnicodeDomain(s);
	if (h === null) return null;
	if (ASCII_ONLY.test(h)) return checkAsciiHost(h) ? h : null;
	if (ALL_DIGITS.test(h.slice(h.lastIndexOf('.') + 1))) return null; // numeric TLD
	return utf8Length(h) <= MAX_PART_BYTES ? h : null;
}

// ---------------------------------------------------------------------------
// Whole JIDs
// ---------------------------------------------------------------------------

/** Prepare each part; null if any part is invalid or the domainpart is missing. */
export function prepParts(p: JidParts): JidParts | null {
	if (p.host === undefined) return null;
	const host = nameprep(p.host);
	if (host === null) return null;
	const out: JidParts = {};
	if (p.node !== undefined) {
		const node = nodeprep(p.node);
		if (node === null) return null;
		out.node = node;
	}
	out.host = host;
	if (p.resource !== undefined) {
		const resource = resourceprep(p.resource);
		if (resource === null) return null;
		out.resource = resource;
	}
	return out;
}

const CACHE_MAX = 4096;
/** Inputs longer than this are prepared but not cached (bounds cache memory). */
const CACHE_KEY_MAX = 512;
// Two generations instead of an LRU: a hit costs one lookup and no writes; when the young
// generation is full it becomes the old one (the previous old one is dropped).
let young = new Map<string, string | null>();
let old = new Map<string, string | null>();

function prepUncached(jid: string): string | null {
	if (jid.length > 3 * MAX_RAW_PART_OCTETS + 2) return null;
	const parts = split(jid);
	const p = prepParts(parts);
	if (p === null) return null;
	if (p.node === parts.node && p.host === parts.host && p.resource === parts.resource) return jid;
	return join(p.node, p.host as string, p.resource);
}

/** Canonical form of a JID, or null when it is invalid. */
export function prep(jid: string): string | null {
	let res = young.get(jid);
	if (res !== undefined) return res;
	res = old.get(jid);
	if (res === undefined) res = prepUncached(jid);
	if (jid.length <= CACHE_KEY_MAX) {
		if (young.size >= CACHE_MAX / 2) {
			old = young;
			young = new Map();
		}
		young.set(jid, res);
	}
	return res;
}

/** True for a valid JID without a resourcepart. */
export function isBare(jid: string): boolean {
	const p = prep(jid);
	return p !== null && !p.includes('/');
}

/** True for a valid JID with a resourcepart. */
export function isFull(jid: string): boolean {
	const p = prep(jid);
	return p !== null && p.includes('/');
}

/** True when both JIDs are valid and their prepared bare parts are equal. */
export function compareBare(a: string, b: string): boolean {
	const pa = prep(a);
	if (pa === null) return false;
	const pb = prep(b);
	if (pb === null) return false;
	return bare(pa) === bare(pb);
}
