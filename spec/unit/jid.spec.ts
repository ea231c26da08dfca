import assert from 'node:assert/strict';
import {
	split,
	join,
	bare,
	prep,
	prepParts,
	nodeprep,
	nameprep,
	resourceprep,
	isBare,
	isFull,
	compareBare,
} from '../../core/util/jid.ts';

describe('core/jid', () => {
	describe('split', () => {
		it('splits node, host and resource', () => {
			assert.deepEqual(split('a@b/c'), { node: 'a', host: 'b', resource: 'c' });
			assert.deepEqual(split('a@b'), { node: 'a', host: 'b' });
			assert.deepEqual(split('b'), { host: 'b' });
			assert.deepEqual(split('b/c'), { host: 'b', resource: 'c' });
		});

		it("lets the resource contain '@' and '/'", () => {
			assert.deepEqual(split('b/c@d'), { host: 'b', resource: 'c@d' });
			assert.deepEqual(split('a@b/c/d@e'), { node: 'a', host: 'b', resource: 'c/d@e' });
		});

		it('does not prep', () => {
			assert.deepEqual(split('RoMeo@ExAmple.COM/Res'), { node: 'RoMeo', host: 'ExAmple.COM', resource: 'Res' });
		});

		it('keeps syntactically present empty parts as empty strings', () => {
			assert.deepEqual(split('@b'), { node: '', host: 'b' });
			assert.deepEqual(split('b/'), { host: 'b', resource: '' });
			assert.deepEqual(split(''), { host: '' });
		});
	});

	describe('join', () => {
		it('joins parts', () => {
			assert.equal(join('a', 'b', 'c'), 'a@b/c');
			assert.equal(join('a', 'b'), 'a@b');
			assert.equal(join(undefined, 'b', 'c'), 'b/c');
			assert.equal(join(undefined, 'b'), 'b');
		});

		it('omits empty node and resource', () => {
			assert.equal(join('', 'b', ''), 'b');
		});

		it('round-trips with split', () => {
			for (const j of ['a@b/c', 'a@b', 'b', 'b/c@d', 'a@b/c/d']) {
				const p = split(j);
				assert.equal(join(p.node, p.host ?? '', p.resource), j);
			}
		});
	});

	describe('bare', () => {
		it('returns the unprepped bare part', () => {
			assert.equal(bare('a@b/c'), 'a@b');
			assert.equal(bare('A@B'), 'A@B');
			assert.equal(bare('b/c@d'), 'b');
			assert.equal(bare('b'), 'b');
		});

		it('returns undefined without a domainpart', () => {
			assert.equal(bare(''), undefined);
			assert.equal(bare('/res'), undefined);
			assert.equal(bare('a@/res'), undefined);
		});
	});

	describe('prep', () => {
		it('returns plain lowercase ASCII JIDs unchanged', () => {
			assert.equal(prep('romeo@example.com/orchard'), 'romeo@example.com/orchard');
			assert.equal(prep('example.com'), 'example.com');
			assert.equal(prep('a.b-c_d@x1.example.net'), 'a.b-c_d@x1.example.net');
		});

		it('case-folds node and domain but preserves resource case', () => {
			assert.equal(prep('RoMeo@ExAmple.COM/Res'), 'romeo@example.com/Res');
			assert.equal(prep('JULIET@CAPULET.LIT'), 'juliet@capulet.lit');
		});

		it('applies NFC (decomposed é)', () => {
			const decomposed = 'e\u0301';
			const composed = '\u00e9';
			assert.equal(prep(`caf${decomposed}@example.com/caf${decomposed}`), `caf${composed}@example.com/caf${composed}`);
			assert.equal(nodeprep(`CAF${'E\u0301'}`), `caf${composed}`);
		});

		it('maps fullwidth/halfwidth forms in the localpart only', () => {
			// FULLWIDTH LATIN CAPITAL LETTER R, o, m...
			assert.equal(nodeprep('\uff32\uff4f\uff4d\uff45\uff4f'), 'romeo');
			// halfwidth katakana KA + voiced sound mark -> GA (U+30AC)
			assert.equal(nodeprep('\uff76\uff9e'), '\u30ac');
			// OpaqueString does not width-map
			assert.equal(resourceprep('\uff32es'), '\uff32es');
			assert.equal(prep('\uff32\uff4f\uff4d\uff45\uff4f@\uff25\uff38.com'), 'romeo@ex.com');
		});

		it('strips a single trailing dot from the domain', () => {
			assert.equal(prep('romeo@example.com./r'), 'romeo@example.com/r');
			assert.equal(nameprep('Example.COM.'), 'example.com');
			assert.equal(nameprep('example.com..'), null);
			assert.equal(nameprep('.'), null);
		});

		it('accepts 1023-octet parts and rejects 1024-octet parts', () => {
			const n1023 = 'a'.repeat(1023);
			const n1024 = 'a'.repeat(1024);
			assert.equal(nodeprep(n1023), n1023);
			assert.equal(nodeprep(n1024), null);
			assert.equal(resourceprep(n1023), n1023);
			assert.equal(resourceprep(n1024), null);
			assert.equal(prep(`${n1023}@example.com/${n1023}`), `${n1023}@example.com/${n1023}`);
			assert.equal(prep(`${n1024}@example.com`), null);
			assert.equal(prep(`example.com/${n1024}`), null);

			// Limits are in UTF-8 octets, not characters: é is 2 octets.
			assert.equal(nodeprep('\u00e9'.repeat(511) + 'a'), '\u00e9'.repeat(511) + 'a');
			assert.equal(nodeprep('\u00e9'.repeat(512)), null);
			assert.equal(resourceprep('\u00e9'.repeat(512)), null);

			// Domain: 16 labels of 63 + 15 dots = 1023 octets.
			const label = 'a'.repeat(63);
			const d1023 = Array(16).fill(label).join('.');
			assert.equal(d1023.length, 1023);
			assert.equal(nameprep(d1023), d1023);
			assert.equal(nameprep(`${d1023}b`), null);
			assert.equal(nameprep('a'.repeat(63) + '.com'), 'a'.repeat(63) + '.com');
			assert.equal(nameprep('a'.repeat(64) + '.com'), null);
		});

		it('rejects forbidden characters in the localpart', () => {
			for (const c of ['"', '&', "'", '/', ':', '<', '>', '@', ' ']) {
				assert.equal(nodeprep(`ro${c}meo`), null, `char ${JSON.stringify(c)}`);
			}
			assert.equal(prep('ro"meo@example.com'), null);
			assert.equal(prep('ro:meo@example.com'), null);
			assert.equal(prep('a@b@example.com'), null);
			// other printable ASCII is fine
			assert.equal(nodeprep('a!#$%()*+,-.;=?[\\]^_`{|}~'), 'a!#$%()*+,-.;=?[\\]^_`{|}~');
		});

		it('rejects symbols, compatibility characters and spaces in the localpart', () => {
			assert.equal(nodeprep('\u2603'), null); // snowman (So)
			assert.equal(nodeprep('\ufb01'), null); // ﬁ ligature (HasCompat)
			assert.equal(nodeprep('a\u00a0b'), null); // no-break space
			assert.equal(nodeprep('a\u3000b'), null); // ideographic space -> U+0020
			assert.equal(nodeprep('\u00c5ngstr\u00f6m'), '\u00e5ngstr\u00f6m');
			assert.equal(nodeprep('\u03a3\u03bf\u03c6\u03af\u03b1'), '\u03c3\u03bf\u03c6\u03af\u03b1');
		});

		it('rejects empty parts', () => {
			assert.equal(prep(''), null);
			assert.equal(prep('@example.com'), null);
			assert.equal(prep('example.com/'), null);
			assert.equal(prep('romeo@example.com/'), null);
			assert.equal(prep('romeo@'), null);
			assert.equal(prep('romeo@/res'), null);
			assert.equal(prep('/res'), null);
			assert.equal(nodeprep(''), null);
			assert.equal(nameprep(''), null);
			assert.equal(resourceprep(''), null);
		});

		it('accepts IPv4 and bracketed IPv6 literals', () => {
			assert.equal(prep('romeo@192.0.2.1/r'), 'romeo@192.0.2.1/r');
			assert.equal(nameprep('256.0.0.1'), null);
			assert.equal(nameprep('1.2.3'), null);
			assert.equal(nameprep('123'), null);
			assert.equal(prep('romeo@[::1]/r'), 'romeo@[::1]/r');
			assert.equal(nameprep('[2001:DB8:0:0::1]'), '[2001:db8::1]');
			assert.equal(nameprep('[::ffff:192.0.2.1]'), '[::ffff:c000:201]');
			assert.equal(nameprep('::1'), null);
			assert.equal(nameprep('[::1'), null);
			assert.equal(nameprep('[fe80::1%eth0]'), null);
			assert.equal(nameprep('[example.com]'), null);
			assert.equal(nameprep('[]'), null);
		});

		it('handles IDN domains in Unicode form', () => {
			assert.equal(nameprep('B\u00fccher.DE'), 'b\u00fccher.de');
			assert.equal(nameprep('bu\u0308cher.de'), 'b\u00fccher.de'); // decomposed ü
			assert.equal(nameprep('xn--bcher-kva.de'), 'b\u00fccher.de'); // A-label -> U-label
			assert.equal(nameprep('XN--BCHER-KVA.DE'), 'b\u00fccher.de');
			assert.equal(prep('Romeo@B\u00fccher.DE/Res'), 'romeo@b\u00fccher.de/Res');
			assert.equal(nameprep('\u4f8b\u3048.\u30c6\u30b9\u30c8'), '\u4f8b\u3048.\u30c6\u30b9\u30c8');
			assert.equal(nameprep('\u4f8b\u3048\u3002\u30c6\u30b9\u30c8'), '\u4f8b\u3048.\u30c6\u30b9\u30c8'); // ideographic full stop
			assert.equal(nameprep('fa\u00df.de'), 'fa\u00df.de'); // nontransitional: ß kept
			assert.ok(compareBare('a@xn--bcher-kva.de', 'A@B\u00dcCHER.de'));
		});

		it('rejects invalid domains', () => {
			for (const d of [
				'exa mple.com',
				'example.com ',
				'ex@mple.com',
				'ex<ample.com',
				'exa$mple.com',
				'a!b.com',
				'a..b',
				'.example.com',
				'-a.com',
				'a-.com',
				'xn--zz',
				'xn--abc-', // A-label decoding to pure ASCII
				'\u2603.net', // symbol: not IDNA2008
				'ex\u00adample.com', // soft hyphen (ignorable)
				'ex\u200bample.com', // zero width space
				'ex\tample.com',
			]) {
				assert.equal(nameprep(d), null, JSON.stringify(d));
			}
		});

		it("keeps '/' and '@' in the resource", () => {
			assert.equal(prep('romeo@example.com/a/b@c'), 'romeo@example.com/a/b@c');
			assert.equal(prep('Example.com/c@D'), 'example.com/c@D');
			assert.deepEqual(prepParts(split('x@Example.com/c@D')), { node: 'x', host: 'example.com', resource: 'c@D' });
		});

		it('maps non-ASCII spaces in the resource and preserves its case', () => {
			assert.equal(resourceprep('My\u00a0Phone'), 'My Phone');
			assert.equal(resourceprep('My\u2003Phone'), 'My Phone');
			assert.equal(resourceprep(' x '), ' x ');
			assert.equal(resourceprep('\u2603 \u00a9 \uff32'), '\u2603 \u00a9 \uff32'); // symbols & compat chars ok
		});

		it('rejects control and format characters', () => {
			for (const c of ['\u0000', '\u0007', '\t', '\n', '\r', '\u007f', '\u0085', '\u200b', '\u200d', '\ufeff', '\u2028', '\ue000', '\ud800']) {
				assert.equal(resourceprep(`a${c}b`), null, `resource ${JSON.stringify(c)}`);
				assert.equal(nodeprep(`a${c}b`), null, `node ${JSON.stringify(c)}`);
				assert.equal(nameprep(`a${c}b.com`), null, `domain ${JSON.stringify(c)}`);
			}
			assert.equal(prep('romeo@example.com/a\u0000b'), null);
		});

		it('is idempotent', () => {
			for (const j of [
				'RoMeo@ExAmple.COM/Res',
				'caf\u0065\u0301@B\u00fccher.DE/x\u00a0y',
				'\uff32omeo@xn--bcher-kva.de',
				'[2001:DB8::1]/r',
			]) {
				const once = prep(j);
				assert.notEqual(once, null, j);
				assert.equal(prep(once as string), once);
			}
		});

		it('returns cached results consistently', () => {
			for (let i = 0; i < 3; i++) {
				assert.equal(prep('User@Host.Example/R'), 'user@host.example/R');
				assert.equal(prep('bad@@host'), null);
			}
			// Exercise eviction past the cache bound.
			for (let i = 0; i < 5000; i++) assert.equal(prep(`U${i}@example.com`), `u${i}@example.com`);
			assert.equal(prep('User@Host.Example/R'), 'user@host.example/R');
		});
	});

	describe('RFC 7622 §3.5 examples', () => {
		it('accepts the valid JIDs of table 1', () => {
			const table1: [string, string][] = [
				['juliet@example.com', 'juliet@example.com'],
				['juliet@example.com/foo', 'juliet@example.com/foo'],
				['juliet@example.com/foo bar', 'juliet@example.com/foo bar'],
				['juliet@example.com/foo@bar', 'juliet@example.com/foo@bar'],
				['foo\\20bar@example.com', 'foo\\20bar@example.com'],
				['fussball@example.com', 'fussball@example.com'],
				['fu\u00dfball@example.com', 'fu\u00dfball@example.com'],
				['\u03c0@example.com', '\u03c0@example.com'],
				['\u03a3@example.com/foo', '\u03c3@example.com/foo'],
				['\u03c3@example.com/foo', '\u03c3@example.com/foo'],
				['\u03c2@example.com/foo', '\u03c2@example.com/foo'],
				['king@example.com/\u265a', 'king@example.com/\u265a'],
				['example.com', 'example.com'],
				['example.com/foobar', 'example.com/foobar'],
				['a.example.com/b@example.net', 'a.example.com/b@example.net'],
			];
			for (const [input, prepared] of table1) assert.equal(prep(input), prepared, input);
			assert.equal(compareBare('fussball@example.com', 'fu\u00dfball@example.com'), false);
		});

		it('rejects the invalid JIDs of table 2', () => {
			for (const input of [
				'"juliet"@example.com', // quotation marks in the localpart
				'foo bar@example.com', // space in the localpart
				'@example.com/', // empty localpart and resourcepart
				'henry\u2163@example.com', // ROMAN NUMERAL FOUR (compatibility) in the localpart
				'\u265a@example.com', // symbol in the localpart
				'juliet@', // empty domainpart
				'/foobar', // no domainpart
			]) {
				assert.equal(prep(input), null, input);
			}
		});

		it('accepts example 18 of table 2 (a leading space in the resourcepart), per erratum 4560', () => {
			assert.equal(prep('juliet@example.com/ foo'), 'juliet@example.com/ foo');
		});
	});

	describe('directionality (RFC 7622 §3.3, RFC 8265 §3.3, RFC 5893)', () => {
		it('rejects a localpart that mixes right-to-left and left-to-right letters', () => {
			assert.equal(prep('\u05d0a@localhost'), null); // the roster item that used to be stored
			assert.equal(prep('a\u05d0@localhost'), null);
			assert.equal(nodeprep('\u05d0a'), null);
		});

		it('accepts right-to-left localparts that obey the Bidi Rule', () => {
			assert.equal(prep('\u05d0\u05d1@localhost'), '\u05d0\u05d1@localhost');
			assert.equal(prep('\u0645\u062d\u0645\u062f@example.com'), '\u0645\u062d\u0645\u062f@example.com');
			assert.equal(nodeprep('\u05d0\u05d1-\u05d2'), '\u05d0\u05d1-\u05d2');
		});

		it('applies the digit rules to right-to-left localparts', () => {
			assert.equal(nodeprep('\u05d012'), '\u05d012'); // ends with EN
			assert.equal(nodeprep('1\u05d0'), null); // starts with EN
			assert.equal(nodeprep('\u0627\u0661\u0662'), '\u0627\u0661\u0662'); // AL with AN
			assert.equal(nodeprep('\u06271\u0661'), null); // EN and AN together
			assert.equal(nodeprep('\u05d0.'), null); // ends with CS
		});

		it('has no directionality rule for the resourcepart (OpaqueString)', () => {
			assert.equal(prep('juliet@example.com/\u05d0a'), 'juliet@example.com/\u05d0a');
			assert.equal(resourceprep('a\u05d0 1'), 'a\u05d0 1');
		});

		it('applies the Bidi Rule to domain names with a right-to-left label', () => {
			assert.equal(prep('juliet@\u05d0\u05d1.example'), 'juliet@\u05d0\u05d1.example');
			assert.equal(prep('juliet@\u05d0a.example'), null);
			assert.equal(nameprep('xn--4dbrk0ce.example'), '\u05d9\u05e9\u05e8\u05d0\u05dc.example');
		});
	});

	describe('contextual rules (RFC 5892 Appendix A, as RFC 8264 applies them)', () => {
		it('allows ZERO WIDTH NON-JOINER and JOINER after a virama only', () => {
			const zwnj = '\u0915\u094d\u200c\u0937'; // DEVANAGARI KA, VIRAMA, ZWNJ, SSA
			const zwj = '\u0915\u094d\u200d\u0937';
			assert.equal(prep(`${zwnj}@example.com/${zwnj}`), `${zwnj}@example.com/${zwnj}`);
			assert.equal(nodeprep(zwj), zwj);
			assert.equal(nodeprep('a\u200cb'), null);
			assert.equal(resourceprep('a\u200db'), null);
			assert.equal(prep(`x@${zwnj}.example`), `x@${zwnj}.example`); // IDNA2008 CONTEXTJ
			assert.equal(nameprep('a\u200c\u00e9.example'), null);
		});

		it('allows ZERO WIDTH NON-JOINER between joining Arabic letters', () => {
			const persian = '\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645';
			assert.equal(nodeprep(persian), persian);
			assert.equal(nodeprep('\u0627\u200c\u0628'), null); // ALEF does not join to the left
		});

		it('applies the CONTEXTO rules', () => {
			assert.equal(nodeprep('Co\u0142\u00b7Legi'), null); // MIDDLE DOT after ł
			assert.equal(nodeprep('col\u00b7legi'), 'col\u00b7legi'); // Catalan ela geminada
			assert.equal(nodeprep('\u0375\u03b1'), '\u0375\u03b1'); // KERAIA before Greek
			assert.equal(nodeprep('\u0375a'), null);
			assert.equal(nodeprep('\u05d0\u05f4\u05d1'), '\u05d0\u05f4\u05d1'); // GERSHAYIM after Hebrew
			assert.equal(nodeprep('\u05f3\u05d0'), null);
			assert.equal(nodeprep('\u30ab\u30fb\u30ad'), '\u30ab\u30fb\u30ad'); // KATAKANA MIDDLE DOT
			assert.equal(nodeprep('a\u30fbb'), null);
			assert.equal(nodeprep('\u0628\u0661\u0662'), '\u0628\u0661\u0662'); // Arabic-Indic digits
			assert.equal(nodeprep('\u0628\u0661\u06f2'), null); // mixed with extended ones
		});
	});

	describe('prepParts', () => {
		it('preps parts and requires a host', () => {
			assert.deepEqual(prepParts({ node: 'A', host: 'B.com', resource: 'C' }), { node: 'a', host: 'b.com', resource: 'C' });
			assert.deepEqual(prepParts({ host: 'B.com' }), { host: 'b.com' });
			assert.equal(prepParts({ node: 'a' }), null);
			assert.equal(prepParts({ node: '', host: 'b.com' }), null);
			assert.equal(prepParts({ host: 'b.com', resource: '' }), null);
		});
	});

	describe('isBare / isFull', () => {
		it('classifies valid JIDs', () => {
			assert.equal(isBare('a@b'), true);
			assert.equal(isBare('b'), true);
			assert.equal(isBare('a@b/c'), false);
			assert.equal(isFull('a@b/c'), true);
			assert.equal(isFull('b/c@d'), true);
			assert.equal(isFull('a@b'), false);
		});

		it('is false for invalid JIDs', () => {
			assert.equal(isBare(''), false);
			assert.equal(isBare('@b'), false);
			assert.equal(isFull('a@b/'), false);
			assert.equal(isFull('a"b@c/d'), false);
		});
	});

	describe('compareBare', () => {
		it('compares prepared bare JIDs', () => {
			assert.equal(compareBare('RoMeo@ExAmple.COM/Res', 'romeo@example.com'), true);
			assert.equal(compareBare('romeo@example.com/a', 'romeo@example.com./b'), true);
			assert.equal(compareBare('romeo@example.com', 'juliet@example.com'), false);
			assert.equal(compareBare('example.com', 'x@example.com'), false);
			assert.equal(compareBare('@example.com', '@example.com'), false);
		});
	});
});
