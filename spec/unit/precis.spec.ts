import assert from 'node:assert/strict';
import {
	nickname,
	nicknameKey,
	opaqueString,
	usernameCaseMapped,
	usernameCasePreserved,
} from '../../core/util/precis.ts';
import {
	CONTEXTJ,
	CONTEXTO,
	DISALLOWED,
	FREE_PVAL,
	PVALID,
	UNASSIGNED,
	UNICODE_VERSION,
	bidiClass,
	bidiRuleHolds,
	codePoints,
	contextRuleHolds,
	idnaProperty,
	precisProperty,
	widthMap,
} from '../../core/util/unicode.ts';

const cps = codePoints;

describe('core/unicode', () => {
	it('is generated from Unicode 17.0.0', () => {
		assert.equal(UNICODE_VERSION, '17.0.0');
	});

	it('gives the RFC 8264 §8 derived property', () => {
		const cases: [number, number, string][] = [
			[0x0061, PVALID, 'ASCII7'],
			[0x0020, FREE_PVAL, 'Spaces (ID_DIS)'],
			[0x0009, DISALLOWED, 'Controls'],
			[0x00e9, PVALID, 'LetterDigits'],
			[0x00df, PVALID, 'Exceptions: sharp s'],
			[0x03c2, PVALID, 'Exceptions: final sigma'],
			[0x0640, DISALLOWED, 'Exceptions: ARABIC TATWEEL'],
			[0x00b7, CONTEXTO, 'Exceptions: MIDDLE DOT'],
			[0x0663, CONTEXTO, 'Exceptions: ARABIC-INDIC DIGIT THREE'],
			[0x200c, CONTEXTJ, 'JoinControl: ZWNJ'],
			[0x200d, CONTEXTJ, 'JoinControl: ZWJ'],
			[0x1100, DISALLOWED, 'OldHangulJamo'],
			[0x00ad, DISALLOWED, 'PrecisIgnorableProperties: SOFT HYPHEN'],
			[0xfdd0, DISALLOWED, 'PrecisIgnorableProperties: noncharacter'],
			[0xfb01, FREE_PVAL, 'HasCompat: fi ligature'],
			[0x2163, FREE_PVAL, 'HasCompat: ROMAN NUMERAL FOUR'],
			[0x01c5, FREE_PVAL, 'HasCompat: titlecase DZ with caron'],
			[0x265a, FREE_PVAL, 'Symbols: BLACK CHESS KING'],
			[0x2014, FREE_PVAL, 'Punctuation: EM DASH'],
			[0x20dd, FREE_PVAL, 'OtherLetterDigits: enclosing mark'],
			[0xe000, DISALLOWED, 'private use'],
			[0x0378, UNASSIGNED, 'Unassigned'],
			[0x16ea0, PVALID, 'a letter new in Unicode 17.0 (BERIA ERFE)'],
		];
		for (const [cp, expected, why] of cases) assert.equal(precisProperty(cp), expected, why);
	});

	it('gives the RFC 5892 IDNA2008 derived property', () => {
		assert.equal(idnaProperty(0x61), PVALID);
		assert.equal(idnaProperty(0x41), DISALLOWED); // Unstable: case folds to 'a'
		assert.equal(idnaProperty(0x5f), DISALLOWED); // '_' is not LDH
		assert.equal(idnaProperty(0x2d), PVALID);
		assert.equal(idnaProperty(0xfc), PVALID);
		assert.equal(idnaProperty(0x2603), DISALLOWED);
		assert.equal(idnaProperty(0x20d0), DISALLOWED); // IgnorableBlocks: Combining Diacritical Marks for Symbols
		assert.equal(idnaProperty(0x200c), CONTEXTJ);
		assert.equal(idnaProperty(0x30fb), CONTEXTO);
	});

	it('knows Bidi_Class and width mappings', () => {
		assert.equal(bidiClass(0x05d0), 'R');
		assert.equal(bidiClass(0x0627), 'AL');
		assert.equal(bidiClass(0x0661), 'AN');
		assert.equal(bidiClass(0x0031), 'EN');
		assert.equal(bidiClass(0x05b0), 'NSM');
		assert.equal(widthMap('\uff21\uff42\u3000\uff76\uff9e'), 'Ab \u30ab\u3099');
		assert.equal(widthMap('plain'), 'plain');
	});

	describe('the Bidi Rule (RFC 5893 §2)', () => {
		it('condition 1: starts with L, R or AL', () => {
			assert.equal(bidiRuleHolds(cps('abc')), true);
			assert.equal(bidiRuleHolds(cps('\u05d0\u05d1')), true);
			assert.equal(bidiRuleHolds(cps('\u0627\u0628')), true);
			assert.equal(bidiRuleHolds(cps('1\u05d0')), false); // EN first
			assert.equal(bidiRuleHolds(cps('\u0661\u0628')), false); // AN first
			assert.equal(bidiRuleHolds(cps('-\u05d0')), false); // ES first
		});

		it('condition 2: an RTL label has no L', () => {
			assert.equal(bidiRuleHolds(cps('\u05d0a')), false);
			assert.equal(bidiRuleHolds(cps('\u05d0-\u05d1')), true); // ES inside is fine
		});

		it('condition 3: an RTL label ends with R, AL, EN or AN, then NSMs', () => {
			assert.equal(bidiRuleHolds(cps('\u05d01')), true);
			assert.equal(bidiRuleHolds(cps('\u0628\u0661')), true);
			assert.equal(bidiRuleHolds(cps('\u05d0\u05b0')), true); // trailing NSM
			assert.equal(bidiRuleHolds(cps('\u05d0!')), false); // ON at the end
			assert.equal(bidiRuleHolds(cps('\u05d0-')), false); // ES at the end
		});

		it('condition 4: EN and AN do not mix in an RTL label', () => {
			assert.equal(bidiRuleHolds(cps('\u06271\u0661')), false);
			assert.equal(bidiRuleHolds(cps('\u062712')), true);
			assert.equal(bidiRuleHolds(cps('\u0627\u0661\u0662')), true);
		});

		it('conditions 5 and 6: an LTR label has no R, AL or AN and ends with L or EN', () => {
			assert.equal(bidiRuleHolds(cps('a\u05d0')), false);
			assert.equal(bidiRuleHolds(cps('a\u0661')), false);
			assert.equal(bidiRuleHolds(cps('a1')), true);
			assert.equal(bidiRuleHolds(cps('a\u0301')), true); // trailing NSM
			assert.equal(bidiRuleHolds(cps('a-')), false);
		});
	});

	describe('contextual rules (RFC 5892 Appendix A)', () => {
		const holds = (s: string, at: number): boolean => contextRuleHolds(cps(s), at);

		it('A.1 ZWNJ: after a virama, or between joining letters', () => {
			assert.equal(holds('\u0915\u094d\u200c\u0937', 2), true); // DEVANAGARI KA, VIRAMA, ZWNJ, SSA
			assert.equal(holds('\u0645\u06cc\u200c\u062e', 2), true); // Persian: D ZWNJ R
			assert.equal(holds('\u0628\u064e\u200c\u0628', 2), true); // transparent mark skipped
			assert.equal(holds('a\u200cb', 1), false);
			assert.equal(holds('\u200c\u0628', 0), false);
			assert.equal(holds('\u0627\u200c\u0628', 1), false); // ALEF is right-joining only
		});

		it('A.2 ZWJ: after a virama only', () => {
			assert.equal(holds('\u0915\u094d\u200d\u0937', 2), true);
			assert.equal(holds('\u0645\u200d\u0645', 1), false);
		});

		it('A.3 MIDDLE DOT: between two l', () => {
			assert.equal(holds('l\u00b7l', 1), true);
			assert.equal(holds('a\u00b7l', 1), false);
			assert.equal(holds('l\u00b7', 1), false);
		});

		it('A.4 GREEK KERAIA: followed by Greek', () => {
			assert.equal(holds('\u0375\u03b1', 0), true);
			assert.equal(holds('\u0375a', 0), false);
			assert.equal(holds('\u03b1\u0375', 1), false);
		});

		it('A.5/A.6 HEBREW GERESH and GERSHAYIM: preceded by Hebrew', () => {
			assert.equal(holds('\u05d0\u05f3', 1), true);
			assert.equal(holds('\u05d0\u05f4', 1), true);
			assert.equal(holds('a\u05f3', 1), false);
			assert.equal(holds('\u05f4\u05d0', 0), false);
		});

		it('A.7 KATAKANA MIDDLE DOT: with Hiragana, Katakana or Han in the string', () => {
			assert.equal(holds('\u30a2\u30fb\u30a4', 1), true);
			assert.equal(holds('\u3042\u30fb', 1), true);
			assert.equal(holds('\u6f22\u30fb', 1), true);
			assert.equal(holds('a\u30fbb', 1), false);
			assert.equal(holds('\u30fb', 0), false);
		});

		it('A.8/A.9 Arabic-Indic and extended Arabic-Indic digits do not mix', () => {
			assert.equal(holds('\u0661\u0662', 0), true);
			assert.equal(holds('\u06f1\u06f2', 0), true);
			assert.equal(holds('\u0661\u06f2', 0), false);
			assert.equal(holds('\u0661\u06f2', 1), false);
		});
	});
});

describe('core/precis', () => {
	describe('UsernameCaseMapped (RFC 8265 §3.3)', () => {
		it('accepts the RFC 8265 §3.5 examples', () => {
			assert.equal(usernameCaseMapped('juliet@example.com'), 'juliet@example.com');
			assert.equal(usernameCaseMapped('fussball'), 'fussball');
			assert.equal(usernameCaseMapped('fu\u00dfball'), 'fu\u00dfball'); // not case-folded to "ss"
			assert.equal(usernameCaseMapped('\u03c0'), '\u03c0');
			assert.equal(usernameCaseMapped('\u03a3'), '\u03c3');
			assert.equal(usernameCaseMapped('\u03c3'), '\u03c3');
			assert.equal(usernameCaseMapped('\u03c2'), '\u03c2');
		});

		it('rejects the RFC 8265 §3.5 counter-examples', () => {
			assert.equal(usernameCaseMapped('foo bar'), null); // space
			assert.equal(usernameCaseMapped(''), null);
			assert.equal(usernameCaseMapped('henry\u2163'), null); // ROMAN NUMERAL FOUR
			assert.equal(usernameCaseMapped('\u265a'), null); // BLACK CHESS KING
		});

		it('applies width mapping, toLowerCase and NFC in that order', () => {
			assert.equal(usernameCaseMapped('\uff2a\uff55\uff4c\uff49\uff45\uff54'), 'juliet');
			assert.equal(usernameCaseMapped('\uff76\uff9e'), '\u30ac'); // halfwidth KA + voiced mark, composed
			assert.equal(usernameCaseMapped('CAFE\u0301'), 'caf\u00e9');
			assert.equal(usernameCaseMapped('\u0130'), 'i\u0307'); // toLowerCase, not a Turkish mapping
		});

		it('checks code points after the rules: canonically equivalent input is accepted', () => {
			assert.equal(usernameCaseMapped('\u212aevin'), 'kevin'); // KELVIN SIGN -> K -> k
			assert.equal(usernameCaseMapped('\u1100\u1161'), '\uac00'); // conjoining jamo compose
		});

		it('applies the Bidi Rule to strings with right-to-left code points', () => {
			assert.equal(usernameCaseMapped('\u05d0a'), null);
			assert.equal(usernameCaseMapped('a\u05d0'), null);
			assert.equal(usernameCaseMapped('\u05d0\u05d1'), '\u05d0\u05d1');
			assert.equal(usernameCaseMapped('\u05d01'), '\u05d01');
			assert.equal(usernameCaseMapped('1\u05d0'), null);
			assert.equal(usernameCaseMapped('\u0627\u0661\u0662'), '\u0627\u0661\u0662');
			assert.equal(usernameCaseMapped('\u06271\u0661'), null);
			// Left-to-right only: no directionality check at all.
			assert.equal(usernameCaseMapped('1abc-'), '1abc-');
		});

		it('applies the contextual rules', () => {
			assert.equal(usernameCaseMapped('\u0915\u094d\u200c\u0937'), '\u0915\u094d\u200c\u0937');
			assert.equal(usernameCaseMapped('a\u200cb'), null);
			assert.equal(usernameCaseMapped('\u0915\u094d\u200d\u0937'), '\u0915\u094d\u200d\u0937');
			assert.equal(usernameCaseMapped('a\u200db'), null);
			assert.equal(usernameCaseMapped('L\u00b7L'), 'l\u00b7l'); // case-mapped first, then checked
			assert.equal(usernameCaseMapped('a\u00b7b'), null);
			assert.equal(usernameCaseMapped('\u0375\u03b1'), '\u0375\u03b1');
			assert.equal(usernameCaseMapped('\u0375a'), null);
			assert.equal(usernameCaseMapped('\u05d0\u05f3'), '\u05d0\u05f3');
			assert.equal(usernameCaseMapped('\u05f3\u05d0'), null);
			assert.equal(usernameCaseMapped('\u30a2\u30fb\u30a4'), '\u30a2\u30fb\u30a4');
			assert.equal(usernameCaseMapped('a\u30fbb'), null);
			assert.equal(usernameCaseMapped('\u0628\u0661\u0662'), '\u0628\u0661\u0662');
			assert.equal(usernameCaseMapped('\u0628\u0661\u06f2'), null);
		});

		it('UsernameCasePreserved keeps case', () => {
			assert.equal(usernameCasePreserved('Juliet'), 'Juliet');
			assert.equal(usernameCasePreserved('\uff2a'), 'J');
			assert.equal(usernameCasePreserved('\u05d0A'), null);
		});
	});

	describe('OpaqueString (RFC 8265 §4.2)', () => {
		it('accepts the RFC 8265 §4.3 examples', () => {
			assert.equal(opaqueString('correct horse battery staple'), 'correct horse battery staple');
			assert.equal(opaqueString('Correct Horse Battery Staple'), 'Correct Horse Battery Staple');
			assert.equal(opaqueString('\u03c0\u00df\u00e5'), '\u03c0\u00df\u00e5');
			assert.equal(opaqueString('Jack of \u2666s'), 'Jack of \u2666s');
			assert.equal(opaqueString('foo\u1680bar'), 'foo bar'); // OGHAM SPACE MARK -> SPACE
		});

		it('rejects the RFC 8265 §4.3 counter-examples', () => {
			assert.equal(opaqueString(''), null);
			assert.equal(opaqueString('my cat is a \u0009by'), null); // control character
		});

		it('has no directionality rule and keeps compatibility characters', () => {
			assert.equal(opaqueString('\u05d0a'), '\u05d0a');
			assert.equal(opaqueString('\ufb01 \u2163'), '\ufb01 \u2163');
			assert.equal(opaqueString('\uff32'), '\uff32'); // no width mapping
		});

		it('applies the contextual rules', () => {
			assert.equal(opaqueString('a\u200cb'), null);
			assert.equal(opaqueString('\u0915\u094d\u200c\u0937'), '\u0915\u094d\u200c\u0937');
			assert.equal(opaqueString('l\u00b7l'), 'l\u00b7l');
			assert.equal(opaqueString('a \u00b7 b'), null);
		});
	});

	describe('Nickname (RFC 8266)', () => {
		it('maps and trims spaces and applies NFKC, preserving case', () => {
			assert.equal(nickname('  Foo\u00a0\u2003 Bar  '), 'Foo Bar');
			assert.equal(nickname('Richard \u2163'), 'Richard IV');
			assert.equal(nickname('\u03d4'), '\u03ab'); // GREEK UPSILON WITH DIAERESIS AND HOOK SYMBOL
			assert.equal(nickname('   '), null); // empty after mapping
			assert.equal(nickname('a\u0007b'), null);
		});

		it('compares in a case-mapped form (RFC 8266 §2.4 and §4)', () => {
			assert.equal(nicknameKey('Foo'), 'foo');
			assert.equal(nicknameKey('Foo Bar'), nicknameKey('foo bar'));
			assert.equal(nicknameKey('\u03a3'), '\u03c3');
			assert.equal(nicknameKey('\u03c2'), '\u03c2');
			assert.equal(nicknameKey('\u221e'), '\u221e');
			assert.equal(nicknameKey('Richard \u2163'), 'richard iv');
			assert.equal(nicknameKey('\u03d4'), '\u03cb');
		});

		it('applies the rules again until the result is stable (RFC 8264 §7)', () => {
			// NFKC turns DIAERESIS into SPACE + COMBINING DIAERESIS: the second round collapses
			// the two spaces that leaves.
			assert.equal(nickname('a \u00a8'), 'a \u0308');
			assert.equal(nickname(nickname('a \u00a8') as string), 'a \u0308');
		});
	});

	it('is idempotent', () => {
		const inputs = ['Juliet', '\uff2a\uff55\uff4c\uff49\uff45\uff54', 'CAFE\u0301', '\u03a3\u039f\u03a6\u0399\u0391', '\u05d0\u05d1', '\u0915\u094d\u200c\u0937'];
		for (const f of [usernameCaseMapped, usernameCasePreserved, opaqueString, nickname, nicknameKey]) {
			for (const s of inputs) {
				const once = f(s);
				assert.notEqual(once, null, `${f.name}(${JSON.stringify(s)})`);
				assert.equal(f(once as string), once, `${f.name}(${JSON.stringify(s)})`);
			}
		}
	});
});
