/**
 * JID helpers (RFC 7622).
 *
 * Parts and their string-preparation profiles:
 *   - localpart    PRECIS UsernameCaseMapped (RFC 8265 §3.3) plus RFC 7622's
 *                  extra exclusions  " & ' / : < > @
 *   - domainpart   IDNA2008-style (RFC 7622 §3.2): ASCII LDH (+ '_') labels,
 *                  U-labels validated through node:url's UTS #46 implementation,
 *                  IPv4 literals and bracketed IPv6 literals
 *   - resourcepart PRECIS OpaqueString (RFC 8265 §4.2)
 *
 * This is an approximation of PRECIS built on the JS Unicode property
 * escapes (General_Category, Default_Ignorable_Code_Point) rather than the
 * full RFC 8264 derived-property tables. Not implemented: the Bidi Rule
 * (RFC 5893) for localparts, and the contextual rules (CONTEXTJ / CONTEXTO)
 * -- ZWJ/ZWNJ are rejected outright, CONTEXTO code points follow their
 * general category.
 *
 * All functions are pure. prep() keeps a small bounded cache because it
 * runs for every stanza address.
 */

import { domainToASCII, domainToUnicode } from 'node:url';
import { isIPv6 } from 'node:net';

export interface JidParts {
	node?: string;
	host?: string;
	resource?: string;
}

/** RFC 7622 §3.1: each part is 1..1023 octets of UTF-8. */
const MAX_PART_BYTES = 1023;
/**
 * Early bound on raw (pre-normalisation) part length in UTF-16 code units.
 * Mapping and NFC composition can shrink a string (at most ~4 code units fold
 * into one code point of >= 3 octets), so a raw part longer than this can never
 * prepare to <= 1023 octets and is rejected before doing any Unicode work.
 */
const MAX_RAW_PART_UNITS = MAX_PART_BYTES * 4;

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

/**
 * Fullwidth / halfwidth code points (decomposition types <wide> and <narrow>):
 * U+3000 and the Halfwidth and Fullwidth Forms block. Their NFKC form is their
 * width-mapped form (RFC 8265 §3.3.1 step 1, RFC 8264 §9.11).
 */
const WIDTH_CHARS = /[\u3000\uff01-\uffee]/;
const WIDTH_CHARS_G = /[\u3000\uff01-\uffee]/g;

function widthMap(s: string): string {
	return WIDTH_CHARS.test(s) ? s.replace(WIDTH_CHARS_G, (c) => c.normalize('NFKC')) : s;
}

/** Conjoining Hangul jamo (RFC 5892 OldHangulJamo, i.e. Hangul_Syllable_Type L, V, T). */
const JAMO = '\\u1100-\\u11ff\\ua960-\\ua97f\\ud7b0-\\ud7ff';

// ---------------------------------------------------------------------------
// Localpart: UsernameCaseMapped
// ---------------------------------------------------------------------------

/** Plain ASCII that is already in canonical form: lowercase, PVALID, none of "&'/:<>@. */
const NODE_FAST = /^[a-z0-9!#$%()*+,\-.;=?[\\\]^_`{|}~]+$/;

/**
 * IdentifierClass PVALID (RFC 8264 §9.1): ASCII7 printable and LetterDigits
 * (Ll Lu Lo Nd Lm Mn Mc), minus default-ignorables and old Hangul jamo, minus
 * RFC 7622's extra localpart exclusions.
 */
const NODE_VALID = new RegExp(
	`^(?:(?![\\p{Default_Ignorable_Code_Point}${JAMO}])` +
		`[\\x21\\x23-\\x25\\x28-\\x2e\\x30-\\x39\\x3b\\x3d\\x3f\\x41-\\x7e\\p{Ll}\\p{Lu}\\p{Lo}\\p{Nd}\\p{Lm}\\p{Mn}\\p{Mc}])+$`,
	'u',
);

/** Prepare a localpart (UsernameCaseMapped). Returns null when invalid. */
export function nodeprep(s: string): string | null {
	if (NODE_FAST.test(s)) return s.length <= MAX_PART_BYTES ? s : null;
	if (s.length === 0 || s.length > MAX_RAW_PART_UNITS) return null;
	// 1. width mapping, 3. case mapping, 4. NFC
	const out = widthMap(s).toLowerCase().normalize('NFC');
	if (!NODE_VALID.test(out)) return null;
	// IdentifierClass disallows HasCompat code points (NFKC(cp) != cp).
	if (!ASCII_ONLY.test(out) && out.normalize('NFKC') !== out) return null;
	if (utf8Length(out) > MAX_PART_BYTES) return null;
	return out;
}

// ---------------------------------------------------------------------------
// Resourcepart: OpaqueString
// ---------------------------------------------------------------------------

/** Printable ASCII (incl. space) is always valid OpaqueString and already NFC. */
const RESOURCE_FAST = /^[\x20-\x7e]+$/;
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/;
const NON_ASCII_SPACE_G = /[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/g;

/**
 * FreeformClass (RFC 8264 §9.2) approximated by general category: letters,
 * marks, numbers, punctuation, symbols and the space are allowed; controls,
 * format characters (incl. ZWJ/ZWNJ), private use, surrogates, unassigned,
 * line/paragraph separators, default-ignorables and old Hangul jamo are not.
 */
const RESOURCE_VALID = new RegExp(
	`^(?:(?![\\p{Default_Ignorable_Code_Point}${JAMO}])[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S} ])+$`,
	'u',
);

/** Prepare a resourcepart (OpaqueString; case preserved). Returns null when invalid. */
export function resourceprep(s: string): string | null {
	if (RESOURCE_FAST.test(s)) return s.length <= MAX_PART_BYTES ? s : null;
	if (s.length === 0 || s.length > MAX_RAW_PART_UNITS) return null;
	// Additional mapping: non-ASCII spaces -> U+0020, then NFC.
	const mapped = NON_ASCII_SPACE.test(s) ? s.replace(NON_ASCII_SPACE_G, ' ') : s;
	const out = mapped.normalize('NFC');
	if (!RESOURCE_VALID.test(out)) return null;
	if (utf8Length(out) > MAX_PART_BYTES) return null;
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
/** Label separators treated as '.', per IDNA (U+3002, U+FF0E, U+FF61). */
const IDEO_DOTS_G = /[\u3002\uff0e\uff61]/g;
/** Rejected before any mapping: whitespace, controls, format chars, ignorables. */
const HOST_FORBIDDEN = /[\p{Z}\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Default_Ignorable_Code_Point}\s]/u;
/**
 * Code points allowed in a U-label after UTS #46 mapping: IDNA2008 LetterDigits
 * and '-'. (Lu only survives the mapping where it is case-stable, e.g. Cherokee.)
 */
const ULABEL_VALID = new RegExp(
	`^(?:(?![\\p{Default_Ignorable_Code_Point}${JAMO}])[\\p{Ll}\\p{Lu}\\p{Lo}\\p{Lm}\\p{Nd}\\p{Mn}\\p{Mc}_-])+$`,
	'u',
);

/** Validate an already lowercase, ASCII, non-IDN host (no trailing dot). */
function checkAsciiHost(h: string): boolean {
	if (h.length === 0 || h.length > MAX_PART_BYTES) return false;
	const labels = h.split('.');
	for (const l of labels) if (!LDH_LABEL.test(l)) return false;
	// A numeric final label is only acceptable as part of an IPv4 literal.
	if (ALL_DIGITS.test(labels[labels.length - 1])) return IPV4_STRICT.test(h);
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

function prepIDN(h: string): string | null {
	const ace = domainToASCII(h);
	if (ace === '' || ace.length > MAX_PART_BYTES) return null;
	const aceLabels = ace.split('.');
	for (const l of aceLabels) if (!LDH_LABEL.test(l)) return null;
	if (ALL_DIGITS.test(aceLabels[aceLabels.length - 1])) return null;
	const uni = domainToUnicode(ace);
	if (uni === '') return null;
	const uniLabels = uni.split('.');
	if (uniLabels.length !== aceLabels.length) return null;
	for (let i = 0; i < uniLabels.length; i++) {
		const u = uniLabels[i];
		const a = aceLabels[i];
		if (a.startsWith('xn--')) {
			// A-label must decode to a genuine, valid U-label and round-trip exactly.
			if (ASCII_ONLY.test(u) || !ULABEL_VALID.test(u)) return null;
			if (u.startsWith('-') || u.endsWith('-') || u.slice(2, 4) === '--') return null;
			if (domainToASCII(u) !== a) return null;
		} else if (u !== a) {
			return null;
		}
	}
	if (utf8Length(uni) > MAX_PART_BYTES) return null;
	return uni;
}

/**
 * Prepare a domainpart. ASCII hostnames stay ASCII; IDNs are returned in
 * lowercase Unicode (U-label) form, A-labels are converted to U-labels
 * (RFC 7622 §3.2.2). One trailing '.' is stripped. IPv4 dotted-quad and
 * bracketed IPv6 literals are accepted (IPv6 in RFC 5952 form). Returns null
 * when invalid.
 */
export function nameprep(s: string): string | null {
	if (HOST_FAST.test(s) && !s.includes('xn--')) return checkAsciiHost(s) ? s : null;
	if (s.length === 0 || s.length > MAX_RAW_PART_UNITS) return null;
	if (s[0] === '[') return prepIPv6(s);
	if (HOST_FORBIDDEN.test(s)) return null;
	let h = widthMap(s).replace(IDEO_DOTS_G, '.').toLowerCase().normalize('NFC');
	if (h.endsWith('.')) h = h.slice(0, -1);
	if (h.length === 0) return null;
	// IDNA2008 disallows HasCompat code points rather than mapping them.
	if (!ASCII_ONLY.test(h) && h.normalize('NFKC') !== h) return null;
	if (ASCII_ONLY.test(h) && !/(?:^|\.)xn--/.test(h)) {
		return checkAsciiHost(h) ? h : null;
	}
	return prepIDN(h);
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
	if (jid.length > 3 * MAX_RAW_PART_UNITS + 2) return null;
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
