/**
 * IDNA2008 for XMPP domainparts (RFC 7622 §3.2): the RFC 5895 mapping, label validation per
 * RFC 5891 §5.4 with the RFC 5892 derived property (core/util/unicode-tables.ts), the contextual
 * rules (RFC 5892 Appendix A) and the Bidi Rule (RFC 5893), and Punycode (RFC 3492) for
 * A-labels. Pure; no dependence on the runtime's UTS #46 tables.
 */

import {
	CONTEXTJ,
	CONTEXTO,
	PVALID,
	type ContextScan,
	bidiRuleHolds,
	codePoints,
	contextRuleHolds,
	hasRtl,
	idnaProperty,
	isCombiningMark,
	widthMap,
} from './unicode.ts';

// ---------------------------------------------------------------------------
// Punycode (RFC 3492)
// ---------------------------------------------------------------------------

const BASE = 36;
const TMIN = 1;
const TMAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
const MAX_CODE_POINT = 0x10ffff;
/** Bound on the intermediate integers (RFC 3492 §6.4); far above any valid label. */
const MAX_INT = 0x7fffffff;

function adapt(delta: number, numPoints: number, firstTime: boolean): number {
	delta = firstTime ? Math.floor(delta / DAMP) : delta >> 1;
	delta += Math.floor(delta / numPoints);
	let k = 0;
	while (delta > ((BASE - TMIN) * TMAX) >> 1) {
		delta = Math.floor(delta / (BASE - TMIN));
		k += BASE;
	}
	return k + Math.floor(((BASE - TMIN + 1) * delta) / (delta + SKEW));
}

function threshold(k: number, bias: number): number {
	return k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
}

/** 0..25 -> a..z, 26..35 -> 0..9 */
function encodeDigit(d: number): string {
	return String.fromCharCode(d < 26 ? 0x61 + d : 0x30 + d - 26);
}

function decodeDigit(c: number): number {
	if (c >= 0x30 && c <= 0x39) return c - 0x30 + 26;
	if (c >= 0x41 && c <= 0x5a) return c - 0x41;
	if (c >= 0x61 && c <= 0x7a) return c - 0x61;
	return BASE; // not a digit
}

/** Punycode of a string (without the "xn--" prefix), or null on overflow. */
export function punycodeEncode(input: string): string | null {
	const cps = codePoints(input);
	let out = '';
	for (const c of cps) if (c < 0x80) out += String.fromCharCode(c);
	const basic = out.length;
	let handled = basic;
	if (basic > 0) out += '-';
	let n = INITIAL_N;
	let delta = 0;
	let bias = INITIAL_BIAS;
	while (handled < cps.length) {
		let m = MAX_CODE_POINT + 1;
		for (const c of cps) if (c >= n && c < m) m = c;
		delta += (m - n) * (handled + 1);
		if (delta > MAX_INT) return null;
		n = m;
		for (const c of cps) {
			if (c < n && ++delta > MAX_INT) return null;
			if (c !== n) continue;
			let q = delta;
			for (let k = BASE; ; k += BASE) {
				const t = threshold(k, bias);
				if (q < t) break;
				out += encodeDigit(t + ((q - t) % (BASE - t)));
				q = Math.floor((q - t) / (BASE - t));
			}
			out += encodeDigit(q);
			bias = adapt(delta, handled + 1, handled === basic);
			delta = 0;
			handled++;
		}
		delta++;
		n++;
	}
	return out;
}

/** The string a Punycode sequence (without "xn--") decodes to, or null when malformed. */
export function punycodeDecode(input: string): string | null {
	const delimiter = input.lastIndexOf('-');
	const out: number[] = [];
	for (let j = 0; j < Math.max(delimiter, 0); j++) {
		const c = input.charCodeAt(j);
		if (c >= 0x80) return null;
		out.push(c);
	}
	let n = INITIAL_N;
	let i = 0;
	let bias = INITIAL_BIAS;
	for (let pos = delimiter > 0 ? delimiter + 1 : 0; pos < input.length; ) {
		const oldI = i;
		let w = 1;
		for (let k = BASE; ; k += BASE) {
			if (pos >= input.length) return null;
			const digit = decodeDigit(input.charCodeAt(pos++));
			if (digit >= BASE) return null;
			i += digit * w;
			if (i > MAX_INT) return null;
			const t = threshold(k, bias);
			if (digit < t) break;
			w *= BASE - t;
			if (w > MAX_INT) return null;
		}
		bias = adapt(i - oldI, out.length + 1, oldI === 0);
		n += Math.floor(i / (out.length + 1));
		if (n > MAX_CODE_POINT) return null;
		i %= out.length + 1;
		out.splice(i, 0, n);
		i++;
	}
	return String.fromCodePoint(...out);
}

// ---------------------------------------------------------------------------
// Labels and domain names
// ---------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex -- the whole ASCII range, controls included
const ASCII_ONLY = /^[\x00-\x7f]*$/;
/**
 * An ASCII label: letters, digits, hyphen, not starting or ending with a hyphen, at most 63
 * octets. '_' is accepted too: it is not LDH, but internal XMPP hosts use it.
 */
const ASCII_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** Label separators mapped to '.' before splitting (RFC 5895 §2 step 4, RFC 3490 §3.1). */
const DOTS_G = /[\u3002\uff0e\uff61]/g;
const MAX_LABEL_OCTETS = 63;

/** RFC 5895 §2: lowercase, width mapping, NFC, label separators. */
export function mapDomain(s: string): string {
	if (ASCII_ONLY.test(s)) return s.toLowerCase();
	return widthMap(s.toLowerCase()).normalize('NFC').replace(DOTS_G, '.');
}

/** RFC 5891 §5.4 for one non-ASCII label (already mapped). */
function validULabel(label: string): boolean {
	if (label.normalize('NFC') !== label) return false;
	// §4.2.3.1: no "--" in the third and fourth positions, no leading or trailing hyphen.
	if (label.startsWith('-') || label.endsWith('-') || label.slice(2, 4) === '--') return false;
	const cps = codePoints(label);
	// Its A-label ("xn--", then at least one character per code point) must fit in 63 octets.
	if (cps.length + 4 > MAX_LABEL_OCTETS) return false;
	// §4.2.3.2: no leading combining mark.
	if (cps.length > 0 && isCombiningMark(cps[0]!)) return false;
	// §4.2.3.3 / §5.4: every code point PVALID, or contextual with its rule satisfied.
	const scan: ContextScan = {};
	for (let i = 0; i < cps.length; i++) {
		const p = idnaProperty(cps[i]!);
		if (p === PVALID) continue;
		if ((p === CONTEXTJ || p === CONTEXTO) && contextRuleHolds(cps, i, scan)) continue;
		return false;
	}
	return true;
}

/** One label in its U-label (or ASCII) form, or null when it is not valid. */
function prepLabel(label: string): string | null {
	if (ASCII_ONLY.test(label)) {
		if (!ASCII_LABEL.test(label)) return null;
		if (label.slice(2, 4) !== '--') return label; // an NR-LDH label
		if (!label.startsWith('xn--')) return null; // reserved LDH labels (RFC 5890 §2.3.1)
		// An A-label: must decode to a valid U-label that encodes back to exactly this label.
		const u = punycodeDecode(label.slice(4));
		if (u === null || u === '' || ASCII_ONLY.test(u) || !validULabel(u)) return null;
		return punycodeEncode(u) === label.slice(4) ? u : null;
	}
	if (!validULabel(label)) return null;
	const ace = punycodeEncode(label);
	if (ace === null || ace.length + 4 > MAX_LABEL_OCTETS) return null;
	return label;
}

/**
 * A domain name prepared for an XMPP domainpart (RFC 7622 §3.2): mapped per RFC 5895, one
 * trailing dot removed, every label an NR-LDH label, an A-label or a U-label, and the Bidi Rule
 * (RFC 5893) holding for every label when any label is right-to-left. A-labels come back as
 * U-labels. Returns null when the name is not valid. IP literals are not handled here.
 */
export function toUnicodeDomain(name: string): string | null {
	let mapped = mapDomain(name);
	if (mapped.endsWith('.')) mapped = mapped.slice(0, -1);
	if (mapped.length === 0) return null;
	const labels = mapped.split('.');
	let changed = false;
	let rtl = false;
	for (let i = 0; i < labels.length; i++) {
		const label = prepLabel(labels[i]!);
		if (label === null) return null;
		if (label !== labels[i]) {
			labels[i] = label;
			changed = true;
		}
		if (!rtl && !ASCII_ONLY.test(label) && hasRtl(codePoints(label))) rtl = true;
	}
	// RFC 5893 §2: in a domain name with a right-to-left label, every label obeys the Bidi Rule.
	if (rtl && !labels.every((l) => bidiRuleHolds(codePoints(l)))) return null;
	return changed ? labels.join('.') : mapped;
}
