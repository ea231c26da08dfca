/**
 * Unicode code point data for PRECIS and IDNA2008, and the two rule sets they share: the
 * contextual rules of RFC 5892 Appendix A (CONTEXTJ, CONTEXTO) and the Bidi Rule of RFC 5893.
 *
 * The data is core/util/unicode-tables.ts, generated from the Unicode Character Database by
 * bin/gen-unicode-tables.ts; it is decoded on first use (a few thousand runs) and looked up
 * by binary search. Pure: no state besides that lazily built table.
 */

import { BIDI_CLASSES, DIGITS, JOINING_TYPES, PALETTE, RUNS, SCRIPTS, UNICODE_VERSION, WIDTH_MAP } from './unicode-tables.ts';

export { UNICODE_VERSION };

/** Derived property values (RFC 8264 §8 for PRECIS, RFC 5892 §3 for IDNA2008). */
export const UNASSIGNED = 0;
export const PVALID = 1;
/** PRECIS: ID_DIS in IdentifierClass, FREE_PVAL in FreeformClass (never used for IDNA2008). */
export const FREE_PVAL = 2;
export const CONTEXTJ = 3;
export const CONTEXTO = 4;
export const DISALLOWED = 5;

// Layout of a packed value; see the header of unicode-tables.ts.
const IDNA_SHIFT = 3;
const BIDI_SHIFT = 6;
const JOINING_SHIFT = 11;
const VIRAMA_BIT = 1 << 14;
const SCRIPT_SHIFT = 15;
const MARK_BIT = 1 << 18;

const bidiIndex = (name: string): number => BIDI_CLASSES.indexOf(name);
const BIDI_L = bidiIndex('L');
const BIDI_R = bidiIndex('R');
const BIDI_AL = bidiIndex('AL');
const BIDI_AN = bidiIndex('AN');
const BIDI_EN = bidiIndex('EN');
const BIDI_NSM = bidiIndex('NSM');
const bidiMask = (...names: string[]): number => names.reduce((m, n) => m | (1 << bidiIndex(n)), 0);
/** RFC 5893 §2 condition 2 and 5: what an RTL / an LTR label may contain. */
const RTL_ALLOWED = bidiMask('R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM');
const LTR_ALLOWED = bidiMask('L', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM');
/** Conditions 3 and 6: how an RTL / an LTR label may end (before trailing NSMs). */
const RTL_END = bidiMask('R', 'AL', 'EN', 'AN');
const LTR_END = bidiMask('L', 'EN');

const joiningIndex = (name: string): number => JOINING_TYPES.indexOf(name);
const JT_D = joiningIndex('D');
const JT_L = joiningIndex('L');
const JT_R = joiningIndex('R');
const JT_T = joiningIndex('T');

const SCRIPT_GREEK = SCRIPTS.indexOf('Greek');
const SCRIPT_HEBREW = SCRIPTS.indexOf('Hebrew');
const SCRIPT_HIRAGANA = SCRIPTS.indexOf('Hiragana');
const SCRIPT_KATAKANA = SCRIPTS.indexOf('Katakana');
const SCRIPT_HAN = SCRIPTS.indexOf('Han');

// ---------------------------------------------------------------------------
// Table decoding and lookup
// ---------------------------------------------------------------------------

function decodeNumbers(s: string): number[] {
	const out: number[] = [];
	let n = 0;
	for (let i = 0; i < s.length; i++) {
		const d = DIGITS.indexOf(s[i]!);
		n = n * 32 + (d & 0x1f);
		if ((d & 0x20) === 0) {
			out.push(n);
			n = 0;
		}
	}
	return out;
}

let runStarts: Uint32Array | undefined;
let runValues: Uint32Array | undefined;
let widthTable: Map<number, number> | undefined;

function decodeRuns(): void {
	const nums = decodeNumbers(RUNS);
	const count = nums.length / 2;
	const starts = new Uint32Array(count);
	const vals = new Uint32Array(count);
	let cp = 0;
	for (let i = 0; i < count; i++) {
		starts[i] = cp;
		vals[i] = PALETTE[nums[2 * i + 1]!]!;
		cp += nums[2 * i]!;
	}
	if (cp !== 0x110000) throw new Error('unicode-tables.ts: runs do not cover the code space');
	runStarts = starts;
	runValues = vals;
}

/** The packed value for a code point. */
function lookup(cp: number): number {
	if (runStarts === undefined) decodeRuns();
	const starts = runStarts as Uint32Array;
	let lo = 0;
	let hi = starts.length - 1;
	while (lo < hi) {
		const mid = (lo + hi + 1) >>> 1;
		if (starts[mid]! <= cp) lo = mid;
		else hi = mid - 1;
	}
	return (runValues as Uint32Array)[lo]!;
}

/** PRECIS derived property (RFC 8264 §8). */
export function precisProperty(cp: number): number {
	return lookup(cp) & 7;
}

/** IDNA2008 derived property (RFC 5892 §3). */
export function idnaProperty(cp: number): number {
	return (lookup(cp) >> IDNA_SHIFT) & 7;
}

/** Bidi_Class name (for code points some class allows; 'L' elsewhere). */
export function bidiClass(cp: number): string {
	return BIDI_CLASSES[(lookup(cp) >> BIDI_SHIFT) & 31]!;
}

/** General_Category M (for code points some class allows). */
export function isCombiningMark(cp: number): boolean {
	return (lookup(cp) & MARK_BIT) !== 0;
}

/** Code points of a string. */
export function codePoints(s: string): number[] {
	const out: number[] = [];
	for (let i = 0; i < s.length; i++) {
		const c = s.codePointAt(i) as number;
		out.push(c);
		if (c > 0xffff) i++;
	}
	return out;
}

// ---------------------------------------------------------------------------
// Width mapping (the Width Mapping Rule of RFC 8264 profiles, RFC 5895 §2 step 2)
// ---------------------------------------------------------------------------

/** <wide> and <narrow> code points: U+3000 and the Halfwidth and Fullwidth Forms block. */
const MAYBE_WIDE_OR_NARROW = /[\u3000\uff01-\uffef]/;

/** Map fullwidth and halfwidth code points to their decomposition mappings. */
export function widthMap(s: string): string {
	if (!MAYBE_WIDE_OR_NARROW.test(s)) return s;
	if (widthTable === undefined) {
		const nums = decodeNumbers(WIDTH_MAP);
		widthTable = new Map();
		for (let i = 0; i < nums.length; i += 2) widthTable.set(nums[i]!, nums[i + 1]!);
	}
	let out = '';
	for (const ch of s) {
		const to = widthTable.get(ch.codePointAt(0) as number);
		out += to === undefined ? ch : String.fromCodePoint(to);
	}
	return out;
}

// ---------------------------------------------------------------------------
// Contextual rules (RFC 5892 Appendix A)
// ---------------------------------------------------------------------------

function scriptOf(cp: number | undefined): number {
	return cp === undefined ? 0 : (lookup(cp) >> SCRIPT_SHIFT) & 7;
}

function joiningTypeOf(cp: number): number {
	return (lookup(cp) >> JOINING_SHIFT) & 7;
}

function isVirama(cp: number | undefined): boolean {
	return cp !== undefined && (lookup(cp) & VIRAMA_BIT) !== 0;
}

/**
 * A.1 ZERO WIDTH NON-JOINER: after a virama, or inside
 * (Joining_Type:{L,D})(Joining_Type:T)* ZWNJ (Joining_Type:T)*(Joining_Type:{R,D}).
 */
function zwnjAllowed(cps: readonly number[], i: number): boolean {
	if (isVirama(cps[i - 1])) return true;
	let j = i - 1;
	while (j >= 0 && joiningTypeOf(cps[j]!) === JT_T) j--;
	if (j < 0) return false;
	const before = joiningTypeOf(cps[j]!);
	if (before !== JT_L && before !== JT_D) return false;
	let k = i + 1;
	while (k < cps.length && joiningTypeOf(cps[k]!) === JT_T) k++;
	if (k >= cps.length) return false;
	const after = joiningTypeOf(cps[k]!);
	return after === JT_R || after === JT_D;
}

/**
 * What the whole-string rules (A.7-A.9) found, kept per string so that a string full of such
 * code points is scanned once, not once per code point.
 */
export interface ContextScan {
	kanaOrHan?: boolean;
	arabicIndic?: boolean;
	extendedArabicIndic?: boolean;
}

/**
 * Whether the contextual rule of the CONTEXTJ/CONTEXTO code point at cps[i] is satisfied.
 * Pass the same scan object for every position of one string.
 */
export function contextRuleHolds(cps: readonly number[], i: number, scan: ContextScan = {}): boolean {
	const cp = cps[i];
	if (cp === undefined) return false;
	switch (cp) {
		case 0x200c: // A.1 ZERO WIDTH NON-JOINER
			return zwnjAllowed(cps, i);
		case 0x200d: // A.2 ZERO WIDTH JOINER: after a virama
			return isVirama(cps[i - 1]);
		case 0x00b7: // A.3 MIDDLE DOT: between two 'l' (Catalan ela geminada)
			return cps[i - 1] === 0x6c && cps[i + 1] === 0x6c;
		case 0x0375: // A.4 GREEK LOWER NUMERAL SIGN (KERAIA): followed by Greek
			return scriptOf(cps[i + 1]) === SCRIPT_GREEK;
		case 0x05f3: // A.5 HEBREW PUNCTUATION GERESH: preceded by Hebrew
		case 0x05f4: // A.6 HEBREW PUNCTUATION GERSHAYIM: preceded by Hebrew
			return scriptOf(cps[i - 1]) === SCRIPT_HEBREW;
		case 0x30fb: // A.7 KATAKANA MIDDLE DOT: some Hiragana, Katakana or Han in the string
			scan.kanaOrHan ??= cps.some((c) => {
				const sc = scriptOf(c);
				return sc === SCRIPT_HIRAGANA || sc === SCRIPT_KATAKANA || sc === SCRIPT_HAN;
			});
			return scan.kanaOrHan;
		default:
			if (cp >= 0x0660 && cp <= 0x0669) {
				// A.8 ARABIC-INDIC DIGITS: not mixed with Extended Arabic-Indic digits
				scan.extendedArabicIndic ??= cps.some((c) => c >= 0x06f0 && c <= 0x06f9);
				return !scan.extendedArabicIndic;
			}
			if (cp >= 0x06f0 && cp <= 0x06f9) {
				// A.9 EXTENDED ARABIC-INDIC DIGITS: not mixed with Arabic-Indic digits
				scan.arabicIndic ??= cps.some((c) => c >= 0x0660 && c <= 0x0669);
				return !scan.arabicIndic;
			}
			return false; // a contextual code point without a rule is never allowed
	}
}

// ---------------------------------------------------------------------------
// Bidi Rule (RFC 5893 §2)
// ---------------------------------------------------------------------------

/** True when the string has a right-to-left code point (Bidi_Class R, AL or AN; RFC 5893 §1.4). */
export function hasRtl(cps: readonly number[]): boolean {
	for (const cp of cps) {
		if (cp < 0x0590) continue; // nothing below the Hebrew block is R, AL or AN
		const b = (lookup(cp) >> BIDI_SHIFT) & 31;
		if (b === BIDI_R || b === BIDI_AL || b === BIDI_AN) return true;
	}
	return false;
}

/** The six conditions of the Bidi Rule, for one label (or one PRECIS string). */
export function bidiRuleHolds(cps: readonly number[]): boolean {
	if (cps.length === 0) return false;
	const classes = cps.map((cp) => (lookup(cp) >> BIDI_SHIFT) & 31);
	const first = classes[0];
	// 1. The first character is L (an LTR label), or R or AL (an RTL label).
	const rtl = first === BIDI_R || first === BIDI_AL;
	if (!rtl && first !== BIDI_L) return false;
	// 2. / 5. Only these classes.
	const allowed = rtl ? RTL_ALLOWED : LTR_ALLOWED;
	for (const b of classes) if ((allowed & (1 << b)) === 0) return false;
	// 3. / 6. The end, ignoring trailing NSMs.
	let last = classes.length - 1;
	while (last > 0 && classes[last] === BIDI_NSM) last--;
	if (((rtl ? RTL_END : LTR_END) & (1 << classes[last]!)) === 0) return false;
	// 4. In an RTL label, EN and AN do not mix.
	if (rtl && classes.includes(BIDI_EN) && classes.includes(BIDI_AN)) return false;
	return true;
}
