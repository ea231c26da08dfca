import assert from 'node:assert/strict';
import { mapDomain, punycodeDecode, punycodeEncode, toUnicodeDomain } from '../../core/util/idna.ts';

describe('core/idna', () => {
	describe('Punycode (RFC 3492)', () => {
		// RFC 3492 §7.1 sample strings (A), (B) and (L).
		const samples: [number[], string][] = [
			[
				[0x0644, 0x064a, 0x0647, 0x0645, 0x0627, 0x0628, 0x062a, 0x0643, 0x0644, 0x0645, 0x0648, 0x0634, 0x0639, 0x0631, 0x0628, 0x064a, 0x061f],
				'egbpdaj6bu4bxfgehfvwxn',
			],
			[[0x4ed6, 0x4eec, 0x4e3a, 0x4ec0, 0x4e48, 0x4e0d, 0x8bf4, 0x4e2d, 0x6587], 'ihqwcrb4cv8a8dqg056pqjye'],
			[[0x0033, 0x5e74, 0x0042, 0x7d44, 0x91d1, 0x516b, 0x5148, 0x751f], '3B-ww4c5e180e575a65lsy2b'],
		];

		it('encodes and decodes the RFC 3492 §7.1 samples', () => {
			for (const [cps, encoded] of samples) {
				const s = String.fromCodePoint(...cps);
				assert.equal(punycodeEncode(s), encoded);
				assert.equal(punycodeDecode(encoded), s);
			}
			assert.equal(punycodeEncode('b\u00fccher'), 'bcher-kva');
		});

		it('rejects malformed input', () => {
			assert.equal(punycodeDecode('a\u00e9-b'), null); // non-basic before the delimiter
			assert.equal(punycodeDecode('99999999999'), null); // overflow
			assert.equal(punycodeDecode('b!'), null); // not a digit
			assert.equal(punycodeDecode('bcher-kv'), null); // truncated
		});
	});

	describe('mapDomain (RFC 5895)', () => {
		it('lowercases, width-maps, normalises and maps full stops', () => {
			assert.equal(mapDomain('Example.COM'), 'example.com');
			assert.equal(mapDomain('\uff25\uff38\uff0ecom'), 'ex.com');
			assert.equal(mapDomain('BU\u0308CHER\u3002de'), 'b\u00fccher.de');
		});
	});

	describe('toUnicodeDomain (RFC 7622 §3.2, RFC 5891 §5.4)', () => {
		it('accepts NR-LDH labels, U-labels and A-labels, returning U-labels', () => {
			assert.equal(toUnicodeDomain('example.com'), 'example.com');
			assert.equal(toUnicodeDomain('B\u00fccher.example'), 'b\u00fccher.example');
			assert.equal(toUnicodeDomain('xn--bcher-kva.example'), 'b\u00fccher.example');
			assert.equal(toUnicodeDomain('XN--BCHER-KVA.example'), 'b\u00fccher.example');
			assert.equal(toUnicodeDomain('a--b.example'), 'a--b.example'); // "--" not in positions 3-4
			assert.equal(toUnicodeDomain('example.com.'), 'example.com');
		});

		it('rejects reserved LDH labels and bad A-labels', () => {
			assert.equal(toUnicodeDomain('ab--cd.example'), null); // R-LDH (RFC 5890 §2.3.1)
			assert.equal(toUnicodeDomain('xn--abc-.example'), null); // decodes to ASCII
			assert.equal(toUnicodeDomain(`xn--${punycodeEncode('u\u0308x')}.example`), null); // not NFC
			assert.equal(toUnicodeDomain(`xn--${punycodeEncode('\u2603')}.example`), null); // DISALLOWED
			assert.equal(toUnicodeDomain('xn--.example'), null);
		});

		it('rejects U-labels the IDNA2008 rules exclude', () => {
			assert.equal(toUnicodeDomain('\u2603.example'), null); // symbol
			assert.equal(toUnicodeDomain('\ufb01.example'), null); // ligature (Unstable)
			assert.equal(toUnicodeDomain('\u0301a.example'), null); // leading combining mark
			assert.equal(toUnicodeDomain('\u00e9-.example'), null); // trailing hyphen
			assert.equal(toUnicodeDomain('\u00e9\u00e9--x.example'), null); // "--" in positions 3-4
			assert.equal(toUnicodeDomain('a_\u00e9.example'), null); // '_' only in ASCII labels
			assert.equal(toUnicodeDomain(`${'\u00e9'.repeat(60)}.example`), null); // A-label over 63 octets
		});

		it('applies the contextual rules to U-labels', () => {
			assert.equal(toUnicodeDomain('\u0915\u094d\u200c\u0937.example'), '\u0915\u094d\u200c\u0937.example');
			assert.equal(toUnicodeDomain('a\u200c\u00e9.example'), null);
			assert.equal(toUnicodeDomain('l\u00b7l.example'), 'l\u00b7l.example');
			assert.equal(toUnicodeDomain('a\u00b7b.example'), null);
			assert.equal(toUnicodeDomain('\u30a2\u30fb\u30a4.example'), '\u30a2\u30fb\u30a4.example');
		});

		it('applies the Bidi Rule to every label of a name with a right-to-left label', () => {
			assert.equal(toUnicodeDomain('\u05d0\u05d1.example'), '\u05d0\u05d1.example');
			assert.equal(toUnicodeDomain('xn--4dbrk0ce.example'), '\u05d9\u05e9\u05e8\u05d0\u05dc.example');
			assert.equal(toUnicodeDomain('\u05d0a.example'), null); // RTL label with L
			assert.equal(toUnicodeDomain('1a.\u05d0\u05d1'), null); // LTR label starting with a digit
			assert.equal(toUnicodeDomain('1a.example'), '1a.example'); // fine without RTL labels
			assert.equal(toUnicodeDomain('\u0627\u0661.example'), '\u0627\u0661.example');
			assert.equal(toUnicodeDomain('\u06271\u0661.example'), null); // EN with AN
		});
	});
});
