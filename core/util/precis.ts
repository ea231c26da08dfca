/**
 * PRECIS (RFC 8264) profiles: UsernameCaseMapped, UsernameCasePreserved and OpaqueString
 * (RFC 8265), Nickname (RFC 8266). Each function enforces its profile and returns the result,
 * or null when the string is not valid for it.
 *
 * Enforcement follows RFC 8264 §7: the profile's rules in order -- width mapping, additional
 * mapping, case mapping, normalisation -- applied again until the result is stable (rejected if
 * it is not after three more rounds), then the result must be non-empty, every code point
 * PVALID (or FREE_PVAL in FreeformClass) or CONTEXTJ/CONTEXTO with its RFC 5892 Appendix A rule
 * satisfied, and the directionality rule (the Bidi Rule, for the Username profiles, when the
 * string has right-to-left code points) must hold. The code points are checked on the result,
 * not on the input: input that is canonically equivalent to a valid string (decomposed Hangul
 * jamo, U+212A KELVIN SIGN) is accepted in its normalised form, as in precis_i18n and Go's
 * x/text/secure/precis.
 *
 * Unicode data: core/util/unicode-tables.ts (UNICODE_VERSION); case mapping and normalisation use
 * the JavaScript engine's (ICU's) String.prototype.toLowerCase / normalize.
 */

import {
	CONTEXTJ,
	CONTEXTO,
	FREE_PVAL,
	PVALID,
	type ContextScan,
	bidiRuleHolds,
	codePoints,
	contextRuleHolds,
	hasRtl,
	precisProperty,
	widthMap,
} from './unicode.ts';

interface Profile {
	/** FreeformClass (true) or IdentifierClass (false). */
	freeform: boolean;
	width: boolean;
	additional?: (s: string) => string;
	lowercase: boolean;
	normalization: 'NFC' | 'NFKC';
	/** The Bidi Rule applies to strings with right-to-left code points. */
	bidi: boolean;
}

// eslint-disable-next-line no-control-regex -- the whole ASCII range, controls included
const ASCII_ONLY = /^[\x00-\x7f]*$/;
/** ASCII that both classes allow (IdentifierClass: no space; FreeformClass: space too). */
const ASCII_IDENTIFIER = /^[\x21-\x7e]*$/;
const ASCII_FREEFORM = /^[\x20-\x7e]*$/;

/** Spaces other than U+0020 (General_Category Zs). */
const NON_ASCII_SPACE_G = /(?! )\p{Zs}/gu;

function mapNonAsciiSpaces(s: string): string {
	return ASCII_ONLY.test(s) ? s : s.replace(NON_ASCII_SPACE_G, ' ');
}

/** RFC 8266 §2.1: non-ASCII spaces to U+0020, trim, collapse runs of spaces. */
function nicknameSpaces(s: string): string {
	return mapNonAsciiSpaces(s).replace(/ {2,}/g, ' ').replace(/^ | $/g, '');
}

/** The behavioural rules of RFC 8264 §7 step 6: class membership and contextual rules. */
function validInClass(cps: readonly number[], freeform: boolean): boolean {
	const scan: ContextScan = {};
	for (let i = 0; i < cps.length; i++) {
		const p = precisProperty(cps[i]!);
		if (p === PVALID) continue;
		if (p === FREE_PVAL && freeform) continue;
		if ((p === CONTEXTJ || p === CONTEXTO) && contextRuleHolds(cps, i, scan)) continue;
		return false;
	}
	return true;
}

function applyRules(p: Profile, s: string): string {
	let out = p.width ? widthMap(s) : s;
	if (p.additional) out = p.additional(out);
	if (p.lowercase) out = out.toLowerCase();
	return out.normalize(p.normalization);
}

function enforce(p: Profile, s: string): string | null {
	if (s.length === 0) return null;
	// Pure ASCII: no table needed (ASCII7 is PVALID, U+0020 FREE_PVAL, no contextual or RTL
	// code points, already normalised, width mapping does nothing).
	if (ASCII_ONLY.test(s)) {
		let out = p.additional ? p.additional(s) : s;
		if (p.lowercase) out = out.toLowerCase();
		if (out.length === 0) return null;
		return (p.freeform ? ASCII_FREEFORM : ASCII_IDENTIFIER).test(out) ? out : null;
	}
	// The rules, until stable (RFC 8264 §7: at most three more applications).
	let out = applyRules(p, s);
	// (When the rules left the input as it was, applying them again changes nothing either.)
	if (out !== s) {
		for (let round = 0; ; round++) {
			const again = applyRules(p, out);
			if (again === out) break;
			if (round === 2) return null;
			out = again;
		}
	}
	if (out.length === 0) return null;
	const cps = codePoints(out);
	if (!validInClass(cps, p.freeform)) return null;
	if (p.bidi && hasRtl(cps) && !bidiRuleHolds(cps)) return null;
	return out;
}

const USERNAME_CASE_MAPPED: Profile = { freeform: false, width: true, lowercase: true, normalization: 'NFC', bidi: true };
const USERNAME_CASE_PRESERVED: Profile = { ...USERNAME_CASE_MAPPED, lowercase: false };
const OPAQUE_STRING: Profile = {
	freeform: true,
	width: false,
	additional: mapNonAsciiSpaces,
	lowercase: false,
	normalization: 'NFC',
	bidi: false,
};
const NICKNAME: Profile = {
	freeform: true,
	width: false, // NFKC does it
	additional: nicknameSpaces,
	lowercase: false, // enforcement preserves case; comparison maps it (nicknameKey)
	normalization: 'NFKC',
	bidi: false,
};
const NICKNAME_COMPARISON: Profile = { ...NICKNAME, lowercase: true };

/** RFC 8265 §3.3 UsernameCaseMapped. */
export function usernameCaseMapped(s: string): string | null {
	return enforce(USERNAME_CASE_MAPPED, s);
}

/** RFC 8265 §3.4 UsernameCasePreserved. */
export function usernameCasePreserved(s: string): string | null {
	return enforce(USERNAME_CASE_PRESERVED, s);
}

/** RFC 8265 §4.2 OpaqueString (passwords, XMPP resourceparts). */
export function opaqueString(s: string): string | null {
	return enforce(OPAQUE_STRING, s);
}

/** RFC 8266 §2.3 Nickname enforcement (case preserved, for display). */
export function nickname(s: string): string | null {
	return enforce(NICKNAME, s);
}

/** RFC 8266 §2.4: the form two nicknames are compared in (case mapped too). */
export function nicknameKey(s: string): string | null {
	return enforce(NICKNAME_COMPARISON, s);
}
