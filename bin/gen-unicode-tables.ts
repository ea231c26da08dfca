/**
 * Generates core/util/unicode-tables.ts: the per-code-point data that PRECIS (RFC 8264) and IDNA2008
 * (RFC 5892) need, computed from the Unicode Character Database.
 *
 *   npm run gen:unicode                       # fetches the UCD package with `npm pack`
 *   npm run gen:unicode -- --ucd DIR          # an unpacked @unicode/unicode-X package
 *   npm run gen:unicode -- --check-precis F   # also compare with a derived-property listing
 *
 * Data source: the npm package @unicode/unicode-<version> (Mathias Bynens' node-unicode-data,
 * MIT), fetched into a temporary directory; it is not a dependency of Cadence. Two properties
 * it lacks come from the running Node's ICU, which must implement the same Unicode version
 * (checked): NFKC (for HasCompat and IDNA2008's Unstable) and Canonical_Combining_Class = 9
 * (Virama), read from canonical reordering. Hangul_Syllable_Type L/V/T is the assigned code
 * points of the three Hangul Jamo blocks (checked to be Hangul letters).
 *
 * Everything the tables say is cross-checked against the running ICU where ICU can answer
 * (General_Category, Script, the binary properties); a disagreement aborts the run.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const UNICODE_VERSION = '17.0.0';
const UCD_PACKAGE = `@unicode/unicode-${UNICODE_VERSION}@2.1.0`;
const OUT = resolve(import.meta.dirname, '../core/util/unicode-tables.ts');
const CP_COUNT = 0x110000;

// ---------------------------------------------------------------------------
// Arguments and data source
// ---------------------------------------------------------------------------

function argValue(name: string): string | undefined {
	const i = process.argv.indexOf(name);
	return i >= 0 ? process.argv[i + 1] : undefined;
}

let fetchedDir: string | undefined;

function fetchUcd(): string {
	const dir = mkdtempSync(join(tmpdir(), 'cadence-ucd-'));
	fetchedDir = dir;
	console.log(`npm pack ${UCD_PACKAGE} -> ${dir}`);
	const out = execFileSync('npm', ['pack', UCD_PACKAGE, '--silent', '--pack-destination', dir], {
		encoding: 'utf8',
	}).trim();
	const tarball = join(dir, out.split('\n').pop() as string);
	execFileSync('tar', ['xzf', tarball, '-C', dir]);
	return join(dir, 'package');
}

const icuUnicode = process.versions.unicode ?? '';
if (!UNICODE_VERSION.startsWith(`${icuUnicode}.`) && UNICODE_VERSION !== icuUnicode) {
	console.error(
		`This Node's ICU implements Unicode ${icuUnicode}; the tables are for ${UNICODE_VERSION}. ` +
			'Run the generator with a Node whose ICU matches (process.versions.unicode).',
	);
	process.exit(1);
}

const ucdDir = argValue('--ucd') ?? fetchUcd();
const pkg = JSON.parse(readFileSync(join(ucdDir, 'package.json'), 'utf8')) as { name: string; version: string };
if (pkg.name !== `@unicode/unicode-${UNICODE_VERSION}`) {
	console.error(`${ucdDir} holds ${pkg.name}, expected @unicode/unicode-${UNICODE_VERSION}`);
	process.exit(1);
}

async function load<T>(path: string): Promise<T> {
	const mod = (await import(pathToFileURL(join(ucdDir, path)).href)) as { default: T };
	return mod.default;
}

/** Every value directory of a property, mapped to its code points. */
async function valuesOf(property: string): Promise<Map<string, number[]>> {
	const out = new Map<string, number[]>();
	for (const entry of readdirSync(join(ucdDir, property), { withFileTypes: true })) {
		if (!entry.isDirectory()) continue;
		out.set(entry.name, await load<number[]>(`${property}/${entry.name}/code-points.mjs`));
	}
	return out;
}

async function setOf(path: string): Promise<Set<number>> {
	return new Set(await load<number[]>(`${path}/code-points.mjs`));
}

// ---------------------------------------------------------------------------
// Raw properties
// ---------------------------------------------------------------------------

const GC_SHORT: Record<string, string> = {
	Uppercase_Letter: 'Lu', Lowercase_Letter: 'Ll', Titlecase_Letter: 'Lt', Modifier_Letter: 'Lm',
	Other_Letter: 'Lo', Nonspacing_Mark: 'Mn', Spacing_Mark: 'Mc', Enclosing_Mark: 'Me',
	Decimal_Number: 'Nd', Letter_Number: 'Nl', Other_Number: 'No', Connector_Punctuation: 'Pc',
	Dash_Punctuation: 'Pd', Open_Punctuation: 'Ps', Close_Punctuation: 'Pe', Initial_Punctuation: 'Pi',
	Final_Punctuation: 'Pf', Other_Punctuation: 'Po', Math_Symbol: 'Sm', Currency_Symbol: 'Sc',
	Modifier_Symbol: 'Sk', Other_Symbol: 'So', Space_Separator: 'Zs', Line_Separator: 'Zl',
	Paragraph_Separator: 'Zp', Control: 'Cc', Format: 'Cf', Surrogate: 'Cs', Private_Use: 'Co',
	Unassigned: 'Cn',
};

const gcMap = await load<Map<number, string>>('General_Category/index.mjs');
const gc: string[] = new Array<string>(CP_COUNT);
for (let cp = 0; cp < CP_COUNT; cp++) {
	const long = gcMap.get(cp);
	const short = long === undefined ? undefined : GC_SHORT[long];
	if (short === undefined) throw new Error(`General_Category of U+${hex(cp)}: ${long}`);
	gc[cp] = short;
}

const BIDI_SHORT: Record<string, string> = {
	Left_To_Right: 'L', Right_To_Left: 'R', Arabic_Letter: 'AL', European_Number: 'EN',
	European_Separator: 'ES', European_Terminator: 'ET', Arabic_Number: 'AN', Common_Separator: 'CS',
	Nonspacing_Mark: 'NSM', Boundary_Neutral: 'BN', Paragraph_Separator: 'B', Segment_Separator: 'S',
	White_Space: 'WS', Other_Neutral: 'ON', Left_To_Right_Embedding: 'LRE', Left_To_Right_Override: 'LRO',
	Right_To_Left_Embedding: 'RLE', Right_To_Left_Override: 'RLO', Pop_Directional_Format: 'PDF',
	Left_To_Right_Isolate: 'LRI', Right_To_Left_Isolate: 'RLI', First_Strong_Isolate: 'FSI',
	Pop_Directional_Isolate: 'PDI',
};
const BIDI_CLASSES = Object.values(BIDI_SHORT);
const bidiMap = await load<Map<number, string>>('Bidi_Class/index.mjs');

const JOINING_SHORT: Record<string, string> = {
	Non_Joining: 'U', Join_Causing: 'C', Dual_Joining: 'D', Left_Joining: 'L', Right_Joining: 'R',
	Transparent: 'T',
};
const JOINING_TYPES = Object.values(JOINING_SHORT);
const joining = new Uint8Array(CP_COUNT); // 0 = U
for (const [name, cps] of await valuesOf('Joining_Type')) {
	const i = JOINING_TYPES.indexOf(JOINING_SHORT[name] ?? '?');
	if (i < 0) throw new Error(`Joining_Type ${name}`);
	for (const cp of cps) joining[cp] = i;
}

/** Only the scripts the RFC 5892 CONTEXTO rules ask about. */
const SCRIPTS = ['Other', 'Greek', 'Hebrew', 'Hiragana', 'Katakana', 'Han'];
const script = new Uint8Array(CP_COUNT);
for (let i = 1; i < SCRIPTS.length; i++) {
	for (const cp of await load<number[]>(`Script/${SCRIPTS[i]}/code-points.mjs`)) script[cp] = i;
}

const defaultIgnorable = await setOf('Binary_Property/Default_Ignorable_Code_Point');
const noncharacter = await setOf('Binary_Property/Noncharacter_Code_Point');
const whiteSpace = await setOf('Binary_Property/White_Space');
const joinControl = await setOf('Binary_Property/Join_Control');

const ignorableBlocks = new Set<number>();
for (const name of ['Combining_Diacritical_Marks_For_Symbols', 'Musical_Symbols', 'Ancient_Greek_Musical_Notation']) {
	for (const cp of await load<number[]>(`Block/${name}/code-points.mjs`)) ignorableBlocks.add(cp);
}

// Hangul_Syllable_Type L, V, T: the conjoining jamo, i.e. the assigned code points of these blocks.
const oldHangulJamo = new Set<number>();
for (const name of ['Hangul_Jamo', 'Hangul_Jamo_Extended_A', 'Hangul_Jamo_Extended_B']) {
	for (const cp of await load<number[]>(`Block/${name}/code-points.mjs`)) {
		if (gc[cp] === 'Cn') continue;
		if (gc[cp] !== 'Lo' || !/\p{Script=Hangul}/u.test(String.fromCodePoint(cp))) {
			throw new Error(`U+${hex(cp)} in a jamo block is not a Hangul letter`);
		}
		oldHangulJamo.add(cp);
	}
}

/** Full case folding (status C and F), for IDNA2008's Unstable property. */
const caseFold = new Map<number, number[]>();
for (const [cp, to] of await load<Map<number, number>>('Case_Folding/C/code-points.mjs')) caseFold.set(cp, [to]);
for (const [cp, to] of await load<Map<number, number[]>>('Case_Folding/F/code-points.mjs')) caseFold.set(cp, to);

/** Width mapping (RFC 8264 Width Mapping Rule, RFC 5895 §2): <wide> and <narrow> decompositions. */
const widthMap = new Map<number, number>();
for (const type of ['Wide', 'Narrow']) {
	for (const [cp, to] of await load<Map<number, number[]>>(`Decomposition_Mapping/${type}/code-points.mjs`)) {
		if (to.length !== 1) throw new Error(`<${type}> U+${hex(cp)} maps to ${to.length} code points`);
		widthMap.set(cp, to[0]!);
	}
}

// ---------------------------------------------------------------------------
// Cross-checks against the running ICU
// ---------------------------------------------------------------------------

const str = (cp: number): string => String.fromCodePoint(cp);
function hex(cp: number): string {
	return cp.toString(16).toUpperCase().padStart(4, '0');
}

{
	const gcRegex = new Map<string, RegExp>();
	for (const short of Object.values(GC_SHORT)) gcRegex.set(short, new RegExp(`^\\p{gc=${short}}$`, 'u'));
	const scriptRegex = SCRIPTS.slice(1).map((s) => new RegExp(`^\\p{Script=${s}}$`, 'u'));
	const binary: [Set<number>, RegExp][] = [
		[defaultIgnorable, /^\p{Default_Ignorable_Code_Point}$/u],
		[noncharacter, /^\p{Noncharacter_Code_Point}$/u],
		[whiteSpace, /^\p{White_Space}$/u],
		[joinControl, /^\p{Join_Control}$/u],
	];
	let mismatches = 0;
	const report = (what: string): void => {
		if (mismatches++ < 20) console.error(what);
	};
	for (let cp = 0; cp < CP_COUNT; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff) continue; // lone surrogates: no regex answer
		const s = str(cp);
		if (!(gcRegex.get(gc[cp]!) as RegExp).test(s)) report(`General_Category U+${hex(cp)}: UCD ${gc[cp]}, ICU differs`);
		for (let i = 0; i < scriptRegex.length; i++) {
			if (scriptRegex[i]!.test(s) !== (script[cp] === i + 1)) report(`Script U+${hex(cp)} ${SCRIPTS[i + 1]}`);
		}
		for (const [set, re] of binary) if (re.test(s) !== set.has(cp)) report(`${re.source} U+${hex(cp)}`);
	}
	if (mismatches > 0) {
		console.error(`${mismatches} disagreements between the UCD package and ICU; not writing tables`);
		process.exit(1);
	}
}

// ---------------------------------------------------------------------------
// Virama (Canonical_Combining_Class = 9) from canonical reordering
// ---------------------------------------------------------------------------

// NFD sorts adjacent non-starters by combining class. With U+3099 (ccc 8) and U+05B0 (ccc 10)
// as probes, a mark moves behind the first iff its class is > 8 and in front of the second iff
// its class is < 10: both happen exactly for class 9.
const virama = new Set<number>();
for (let cp = 0; cp < CP_COUNT; cp++) {
	if (gc[cp] !== 'Mn' && gc[cp] !== 'Mc') continue; // every ccc > 0 code point is a mark
	if (cp === 0x3099 || cp === 0x05b0) continue; // the probes themselves (classes 8 and 10)
	const c = str(cp);
	if (c.normalize('NFD') !== c) continue;
	const above8 = `a${c}\u3099`.normalize('NFD') === `a\u3099${c}`;
	const below10 = `a\u05b0${c}`.normalize('NFD') === `a${c}\u05b0`;
	if (above8 && below10) virama.add(cp);
}
for (const known of [0x094d, 0x09cd, 0x0d4d, 0x0e3a, 0x1039, 0x0f84]) {
	if (!virama.has(known)) throw new Error(`virama probe missed U+${hex(known)}`);
}
// Marks with a canonical decomposition were skipped above; none of them may have class 9.
for (let cp = 0; cp < CP_COUNT; cp++) {
	if ((gc[cp] === 'Mn' || gc[cp] === 'Mc') && str(cp).normalize('NFD') !== str(cp)) {
		const first = str(cp).normalize('NFD').codePointAt(0) as number;
		if (virama.has(first)) throw new Error(`U+${hex(cp)} decomposes to a virama`);
	}
}

// ---------------------------------------------------------------------------
// Derived properties
// ---------------------------------------------------------------------------

const UNASSIGNED = 0;
const PVALID = 1;
const FREE_PVAL = 2; // IdentifierClass: ID_DIS; FreeformClass: FREE_PVAL
const CONTEXTJ = 3;
const CONTEXTO = 4;
const DISALLOWED = 5;
const PROPERTY_NAMES = ['UNASSIGNED', 'PVALID', 'FREE_PVAL', 'CONTEXTJ', 'CONTEXTO', 'DISALLOWED'];

/** RFC 5892 §2.6 Exceptions (F), which PRECIS (RFC 8264) uses as they are. */
const EXCEPTIONS = new Map<number, number>([
	[0x00df, PVALID], [0x03c2, PVALID], [0x06fd, PVALID], [0x06fe, PVALID], [0x0f0b, PVALID], [0x3007, PVALID],
	[0x00b7, CONTEXTO], [0x0375, CONTEXTO], [0x05f3, CONTEXTO], [0x05f4, CONTEXTO], [0x30fb, CONTEXTO],
	[0x0640, DISALLOWED], [0x07fa, DISALLOWED], [0x302e, DISALLOWED], [0x302f, DISALLOWED],
	[0x3031, DISALLOWED], [0x3032, DISALLOWED], [0x3033, DISALLOWED], [0x3034, DISALLOWED],
	[0x3035, DISALLOWED], [0x303b, DISALLOWED],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, CONTEXTO);
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, CONTEXTO);

const LETTER_DIGITS = new Set(['Ll', 'Lu', 'Lo', 'Nd', 'Lm', 'Mn', 'Mc']);
const OTHER_LETTER_DIGITS = new Set(['Lt', 'Nl', 'No', 'Me']);
const SYMBOLS = new Set(['Sm', 'Sc', 'Sk', 'So']);
const PUNCTUATION = new Set(['Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf', 'Po']);

const isUnassigned = (cp: number): boolean => gc[cp] === 'Cn' && !noncharacter.has(cp);
const isSurrogate = (cp: number): boolean => cp >= 0xd800 && cp <= 0xdfff;

/** RFC 8264 §8, in the RFC's order. */
function precisProperty(cp: number): number {
	const exception = EXCEPTIONS.get(cp);
	if (exception !== undefined) return exception;
	// BackwardCompatible (G) is empty.
	if (isUnassigned(cp)) return UNASSIGNED;
	if (cp >= 0x21 && cp <= 0x7e) return PVALID; // ASCII7
	if (joinControl.has(cp)) return CONTEXTJ;
	if (oldHangulJamo.has(cp)) return DISALLOWED;
	if (defaultIgnorable.has(cp) || noncharacter.has(cp)) return DISALLOWED; // PrecisIgnorableProperties
	if (gc[cp] === 'Cc') return DISALLOWED; // Controls
	if (isSurrogate(cp)) return DISALLOWED;
	if (str(cp).normalize('NFKC') !== str(cp)) return FREE_PVAL; // HasCompat
	if (LETTER_DIGITS.has(gc[cp]!)) return PVALID;
	if (OTHER_LETTER_DIGITS.has(gc[cp]!)) return FREE_PVAL;
	if (gc[cp] === 'Zs') return FREE_PVAL; // Spaces
	if (SYMBOLS.has(gc[cp]!)) return FREE_PVAL;
	if (PUNCTUATION.has(gc[cp]!)) return FREE_PVAL;
	return DISALLOWED;
}

function caseFoldString(s: string): string {
	let out = '';
	for (const ch of s) {
		const to = caseFold.get(ch.codePointAt(0) as number);
		out += to ? String.fromCodePoint(...to) : ch;
	}
	return out;
}

/** RFC 5892 §3 (IDNA2008), in the RFC's order. */
function idnaProperty(cp: number): number {
	const exception = EXCEPTIONS.get(cp);
	if (exception !== undefined) return exception;
	if (isUnassigned(cp)) return UNASSIGNED;
	if (cp === 0x2d || (cp >= 0x30 && cp <= 0x39) || (cp >= 0x61 && cp <= 0x7a)) return PVALID; // LDH
	if (joinControl.has(cp)) return CONTEXTJ;
	if (isSurrogate(cp)) return DISALLOWED;
	const s = str(cp);
	if (caseFoldString(s.normalize('NFKC')).normalize('NFKC') !== s) return DISALLOWED; // Unstable
	if (defaultIgnorable.has(cp) || whiteSpace.has(cp) || noncharacter.has(cp)) return DISALLOWED;
	if (ignorableBlocks.has(cp)) return DISALLOWED;
	if (oldHangulJamo.has(cp)) return DISALLOWED;
	if (LETTER_DIGITS.has(gc[cp]!)) return PVALID;
	return DISALLOWED;
}

// ---------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------

// One number per code point; the layout is repeated in the generated file.
const PRECIS_SHIFT = 0; // 3 bits
const IDNA_SHIFT = 3; // 3 bits
const BIDI_SHIFT = 6; // 5 bits
const JOINING_SHIFT = 11; // 3 bits
const VIRAMA_BIT = 1 << 14;
const SCRIPT_SHIFT = 15; // 3 bits
const MARK_BIT = 1 << 18;

const precisCount = new Array<number>(PROPERTY_NAMES.length).fill(0);
const values = new Uint32Array(CP_COUNT);
for (let cp = 0; cp < CP_COUNT; cp++) {
	const precis = precisProperty(cp);
	const idna = idnaProperty(cp);
	precisCount[precis]!++;
	let v = (precis << PRECIS_SHIFT) | (idna << IDNA_SHIFT);
	// The other fields only matter for code points some class can accept; leaving them out
	// elsewhere keeps the runs long.
	const usable = (precis !== UNASSIGNED && precis !== DISALLOWED) || (idna !== UNASSIGNED && idna !== DISALLOWED);
	if (usable) {
		const bidi = BIDI_CLASSES.indexOf(BIDI_SHORT[bidiMap.get(cp) ?? ''] ?? '?');
		if (bidi < 0) throw new Error(`Bidi_Class of U+${hex(cp)}: ${bidiMap.get(cp)}`);
		v |= (bidi << BIDI_SHIFT) | (joining[cp]! << JOINING_SHIFT) | (script[cp]! << SCRIPT_SHIFT);
		if (virama.has(cp)) v |= VIRAMA_BIT;
		if (gc[cp]![0] === 'M') v |= MARK_BIT;
	}
	values[cp] = v;
}

// Runs of equal values: a palette of distinct values, then (run length, palette index) pairs.
const palette: number[] = [];
const paletteIndex = new Map<number, number>();
const runs: number[] = [];
for (let cp = 0; cp < CP_COUNT; ) {
	const v = values[cp]!;
	let end = cp + 1;
	while (end < CP_COUNT && values[end] === v) end++;
	let idx = paletteIndex.get(v);
	if (idx === undefined) {
		idx = palette.length;
		palette.push(v);
		paletteIndex.set(v, idx);
	}
	runs.push(end - cp, idx);
	cp = end;
}

/** Variable-length base-64: 5 payload bits per character, 0x20 = more characters follow. */
const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function encodeNumbers(nums: number[]): string {
	let out = '';
	for (let n of nums) {
		const chunk: number[] = [];
		do {
			chunk.push(n & 0x1f);
			n >>>= 5;
		} while (n > 0);
		for (let i = chunk.length - 1; i >= 0; i--) out += DIGITS[chunk[i]! | (i > 0 ? 0x20 : 0)];
	}
	return out;
}

function wrap(s: string, width: number): string {
	const lines: string[] = [];
	for (let i = 0; i < s.length; i += width) lines.push(`\t'${s.slice(i, i + width)}',`);
	return lines.join('\n');
}

const widthPairs = [...widthMap].sort((a, b) => a[0] - b[0]).flat();

const source = `/**
 * GENERATED by bin/gen-unicode-tables.ts from the Unicode Character Database ${UNICODE_VERSION}
 * (${pkg.name}@${pkg.version}). Do not edit; regenerate with \`npm run gen:unicode\`.
 *
 * Per code point, one packed number:
 *   bits 0-2    PRECIS derived property (RFC 8264 §8)   } 0 UNASSIGNED, 1 PVALID, 2 FREE_PVAL
 *   bits 3-5    IDNA2008 derived property (RFC 5892 §3) }   (= ID_DIS), 3 CONTEXTJ, 4 CONTEXTO, 5 DISALLOWED
 *   bits 6-10   Bidi_Class, an index into BIDI_CLASSES
 *   bits 11-13  Joining_Type, an index into JOINING_TYPES
 *   bit 14      Canonical_Combining_Class = Virama (9)
 *   bits 15-17  Script, an index into SCRIPTS (only those the CONTEXTO rules name)
 *   bit 18      General_Category M (a combining mark)
 * Bits 6-18 are zero where both properties are UNASSIGNED or DISALLOWED.
 *
 * RUNS: (run length, PALETTE index) pairs covering U+0000..U+10FFFF in order, and WIDTH_MAP:
 * (code point, mapping) pairs for the <wide> and <narrow> decompositions; both as numbers in a
 * base-64 string (5 bits per character, 0x20 = continued), alphabet DIGITS.
 */

export const UNICODE_VERSION = '${UNICODE_VERSION}';

export const BIDI_CLASSES: readonly string[] = ${JSON.stringify(BIDI_CLASSES)};
export const JOINING_TYPES: readonly string[] = ${JSON.stringify(JOINING_TYPES)};
export const SCRIPTS: readonly string[] = ${JSON.stringify(SCRIPTS)};

export const DIGITS = '${DIGITS}';

export const PALETTE: readonly number[] = ${JSON.stringify(palette)};

export const RUNS = [
${wrap(encodeNumbers(runs), 96)}
].join('');

export const WIDTH_MAP = [
${wrap(encodeNumbers(widthPairs), 96)}
].join('');
`;

writeFileSync(OUT, source);
console.log(
	`wrote ${OUT}: ${runs.length / 2} runs, ${palette.length} distinct values, ${widthMap.size} width mappings, ` +
		`${virama.size} viramas; PRECIS: ${PROPERTY_NAMES.map((n, i) => `${n} ${precisCount[i]}`).join(', ')}`,
);

// ---------------------------------------------------------------------------
// Optional: compare with another implementation's derived-property listing
// ---------------------------------------------------------------------------

// Lines "XXXX-YYYY PROPERTY/reason" (as precis_i18n's test/derived-props-N.txt), or IANA's
// precis-tables CSV ("XXXX[-YYYY],PROPERTY,description"). Code points the listing calls
// UNASSIGNED are skipped (they may be assigned now).
const checkFile = argValue('--check-precis');
if (checkFile !== undefined && existsSync(checkFile)) {
	let differences = 0;
	for (const line of readFileSync(checkFile, 'utf8').split(/\r?\n/)) {
		const m = /^([0-9A-F]{4,6})(?:-([0-9A-F]{4,6}))?[ ,]([A-Z_]+(?: or [A-Z_]+)?)/.exec(line);
		if (!m) continue;
		const expected = m[3]!.startsWith('ID_DIS') || m[3] === 'FREE_PVAL' ? FREE_PVAL : PROPERTY_NAMES.indexOf(m[3]!);
		if (expected === UNASSIGNED) continue;
		const first = parseInt(m[1]!, 16);
		const last = m[2] ? parseInt(m[2], 16) : first;
		for (let cp = first; cp <= last; cp++) {
			const got = values[cp]! & 7;
			if (got !== expected && differences++ < 50) {
				console.log(`U+${hex(cp)}: listing ${m[3]}, generated ${PROPERTY_NAMES[got]} (gc ${gc[cp]})`);
			}
		}
	}
	console.log(`${differences} differences from ${checkFile}`);
}

if (fetchedDir !== undefined) rmSync(fetchedDir, { recursive: true, force: true });
