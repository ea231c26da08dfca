// A reader for the subset of Lua that data files are written in — Prosody's `internal` storage
// (util.serialization behind util.datamanager): `return <value>;` in `*.dat` files and a sequence
// of `item(<value>);` calls in `*.list` files.
//
// It is a parser, never an evaluator: nothing is run, no name is looked up, no function is
// called. The accepted values are tables (`{ "a"; [k] = v, name = v }`), strings (short strings
// with every Lua 5.4 escape, long strings `[==[ … ]==]`), numbers (decimal, hexadecimal integers,
// a leading minus, and the three forms the serializer writes for non-finite numbers: `(1/0)`,
// `(-1/0)`, `(0/0)`), `true`, `false` and `nil`; comments are skipped. Anything else — a name as a
// value, an operator, a call other than the list's `item(…)` — is an error with a line and column.
//
// Lua strings are bytes. A string that is valid UTF-8 comes back as a JS string; one that is not
// comes back as a LuaBytes holding the bytes (a table key must be text). Limits bound the input
// size, the nesting depth and the number of values, so a hostile file costs bounded time and memory.

export class LuaDataError extends Error {
  constructor(message: string, readonly line: number, readonly column: number) {
    super(`${message} (line ${line}, column ${column})`);
    this.name = 'LuaDataError';
  }
}

/** A Lua string that is not valid UTF-8. */
export class LuaBytes {
  constructor(readonly bytes: Buffer) {}
}

export type LuaKey = string | number | boolean;
export type LuaValue = null | boolean | number | string | LuaBytes | LuaTable;

/** A Lua table: keys in the order they appear in the file; `sequence()` is what `ipairs` walks. */
export class LuaTable {
  readonly map = new Map<LuaKey, LuaValue>();

  get(key: LuaKey): LuaValue | undefined {
    return this.map.get(key);
  }

  /** The values at 1, 2, 3, … up to the first missing one. */
  sequence(): LuaValue[] {
    const out: LuaValue[] = [];
    for (let i = 1; this.map.has(i); i++) out.push(this.map.get(i)!);
    return out;
  }

  /** Entries whose key is a string, in file order. */
  *named(): IterableIterator<[string, LuaValue]> {
    for (const [k, v] of this.map) if (typeof k === 'string') yield [k, v];
  }

  get size(): number {
    return this.map.size;
  }
}

export interface LuaDataLimits {
  /** Largest input, in bytes (default 64 MiB). */
  maxBytes?: number;
  /** Deepest table nesting (default 128, as Prosody's serializer). */
  maxDepth?: number;
  /** Most values (tables, strings, numbers, … keys included) in one input (default 4,000,000). */
  maxValues?: number;
}

const DEFAULTS: Required<LuaDataLimits> = { maxBytes: 64 * 1024 * 1024, maxDepth: 128, maxValues: 4_000_000 };

const KEYWORDS = new Set([
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'goto', 'if', 'in',
  'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while',
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
function isNameStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || isDigit(c);
}
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

class Parser {
  private pos = 0;
  private values = 0;
  private readonly limits: Required<LuaDataLimits>;

  constructor(private readonly src: Buffer, limits: LuaDataLimits) {
    this.limits = { ...DEFAULTS, ...limits };
    if (src.length > this.limits.maxBytes) throw this.error(`input is larger than ${this.limits.maxBytes} bytes`, 0);
    // A UTF-8 byte order mark is not Lua, but an editor may have added one.
    if (src[0] === 0xef && src[1] === 0xbb && src[2] === 0xbf) this.pos = 3;
  }

  // -- positions and errors ----------------------------------------------------------------------

  error(message: string, at = this.pos): LuaDataError {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.src.length; i++) {
      if (this.src[i] === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    return new LuaDataError(message, line, at - lineStart + 1);
  }

  private peek(offset = 0): number {
    return this.pos + offset < this.src.length ? this.src[this.pos + offset]! : -1;
  }

  private count(): void {
    if (++this.values > this.limits.maxValues) throw this.error(`more than ${this.limits.maxValues} values`);
  }

  // -- whitespace and comments -------------------------------------------------------------------

  /** Skips spaces and comments. */
  skip(): void {
    for (;;) {
      const c = this.peek();
      if (isSpace(c)) {
        this.pos++;
      } else if (c === 0x2d && this.peek(1) === 0x2d) {
        this.pos += 2;
        const level = this.longBracketLevel();
        if (level >= 0) {
          this.longBracket(level, 'comment');
        } else {
          while (this.pos < this.src.length && this.src[this.pos] !== 0x0a) this.pos++;
        }
      } else {
        return;
      }
    }
  }

  atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  /** `[` followed by n `=` and `[`: n, else -1 (nothing consumed). */
  private longBracketLevel(): number {
    if (this.peek() !== 0x5b) return -1;
    let n = 0;
    while (this.peek(1 + n) === 0x3d) n++;
    return this.peek(1 + n) === 0x5b ? n : -1;
  }

  /** The contents of a long bracket of the given level, the opening one at pos. */
  private longBracket(level: number, what: string): Buffer {
    const start = this.pos;
    this.pos += level + 2;
    // A newline right after the opening bracket is not part of the string.
    if (this.peek() === 0x0d || this.peek() === 0x0a) {
      const first = this.peek();
      this.pos++;
      if ((this.peek() === 0x0d || this.peek() === 0x0a) && this.peek() !== first) this.pos++;
    }
    const close = Buffer.from(`]${'='.repeat(level)}]`, 'latin1');
    const end = this.src.indexOf(close, this.pos);
    if (end < 0) throw this.error(`unfinished long ${what}`, start);
    const body = this.src.subarray(this.pos, end);
    this.pos = end + close.length;
    return body;
  }

  // -- tokens ------------------------------------------------------------------------------------

  /** Consumes `ch` (after skipping) or throws. */
  expect(ch: string): void {
    this.skip();
    if (this.peek() !== ch.charCodeAt(0)) throw this.error(`'${ch}' expected`);
    this.pos++;
  }

  /** Consumes `ch` if it is next (after skipping). */
  accept(ch: string): boolean {
    this.skip();
    if (this.peek() !== ch.charCodeAt(0)) return false;
    this.pos++;
    return true;
  }

  /** A name (identifier or keyword) at pos, without consuming it; undefined if none. */
  peekName(): string | undefined {
    this.skip();
    if (!isNameStart(this.peek())) return undefined;
    let end = this.pos + 1;
    while (end < this.src.length && isNameChar(this.src[end]!)) end++;
    return this.src.toString('latin1', this.pos, end);
  }

  /** Consumes the given keyword or name, or throws. */
  expectName(name: string): void {
    if (this.peekName() !== name) throw this.error(`'${name}' expected`);
    this.pos += name.length;
  }

  // -- values ------------------------------------------------------------------------------------

  value(depth: number): LuaValue {
    this.skip();
    const c = this.peek();
    if (c < 0) throw this.error('a value expected, found the end of the input');
    if (c === 0x22 || c === 0x27) return this.shortString();
    if (c === 0x5b) {
      const level = this.longBracketLevel();
      if (level < 0) throw this.error('unexpected \'[\'');
      this.count();
      const body = this.longBracket(level, 'string');
      return text(body, 0, body.length);
    }
    if (c === 0x7b) return this.table(depth + 1);
    if (c === 0x28) return this.parenthesized();
    if (isDigit(c) || c === 0x2e || c === 0x2d) return this.signedNumber();
    const name = this.peekName();
    if (name === 'true' || name === 'false' || name === 'nil') {
      this.pos += name.length;
      this.count();
      return name === 'nil' ? null : name === 'true';
    }
    if (name !== undefined) throw this.error(`'${name}' is not a value (only literals are read, nothing is evaluated)`);
    throw this.error(`unexpected character '${String.fromCharCode(c)}'`);
  }

  /** `(1/0)`, `(-1/0)`, `(0/0)` and the like: a quotient of two number literals, nothing more. */
  private parenthesized(): number {
    const start = this.pos;
    this.pos++;
    const a = this.signedNumber();
    if (!this.accept('/')) throw this.error('only a quotient of two numbers may be parenthesized', start);
    const b = this.signedNumber();
    this.expect(')');
    return a / b;
  }

  private signedNumber(): number {
    this.skip();
    let negative = false;
    if (this.peek() === 0x2d) {
      if (this.peek(1) === 0x2d) throw this.error('a value expected');
      negative = true;
      this.pos++;
      this.skip();
    }
    const n = this.number();
    return negative ? -n : n;
  }

  private number(): number {
    const start = this.pos;
    this.count();
    if (this.peek() === 0x30 && (this.peek(1) === 0x78 || this.peek(1) === 0x58)) {
      this.pos += 2;
      const digits = this.pos;
      while (isHexDigit(this.peek())) this.pos++;
      if (this.pos === digits) throw this.error('malformed number', start);
      if (this.peek() === 0x2e || this.peek() === 0x70 || this.peek() === 0x50) throw this.error('hexadecimal fractions are not supported', start);
      if (isNameChar(this.peek())) throw this.error('malformed number', start);
      // Lua wraps hexadecimal integers around 2^64; data files never hold such numbers.
      const value = BigInt(`0x${this.src.toString('latin1', digits, this.pos)}`);
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error('number out of range', start);
      return Number(value);
    }
    while (isDigit(this.peek())) this.pos++;
    if (this.peek() === 0x2e) {
      this.pos++;
      while (isDigit(this.peek())) this.pos++;
    }
    if (this.peek() === 0x65 || this.peek() === 0x45) {
      this.pos++;
      if (this.peek() === 0x2b || this.peek() === 0x2d) this.pos++;
      const exp = this.pos;
      while (isDigit(this.peek())) this.pos++;
      if (this.pos === exp) throw this.error('malformed number', start);
    }
    const text = this.src.toString('latin1', start, this.pos);
    if (isNameChar(this.peek()) || this.peek() === 0x2e || text === '.' || !/\d/.test(text)) throw this.error('malformed number', start);
    return Number(text);
  }

  /** Bytes of the string being read, reused from string to string. */
  private sink = Buffer.allocUnsafe(256);
  private sinkLength = 0;

  private sinkReserve(n: number): void {
    if (this.sinkLength + n <= this.sink.length) return;
    let size = this.sink.length * 2;
    while (size < this.sinkLength + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.sink.copy(bigger, 0, 0, this.sinkLength);
    this.sink = bigger;
  }

  private sinkRange(from: number, to: number): void {
    this.sinkReserve(to - from);
    this.sinkLength += this.src.copy(this.sink, this.sinkLength, from, to);
  }

  /** A quoted string with its escapes (Lua 5.4 §3.1). */
  private shortString(): string | LuaBytes {
    const start = this.pos;
    const quote = this.src[this.pos++]!;
    let runStart = this.pos;
    let escaped = false;
    this.sinkLength = 0;
    this.count();
    for (;;) {
      if (this.pos >= this.src.length) throw this.error('unfinished string', start);
      const c = this.src[this.pos]!;
      if (c === quote) {
        const end = this.pos;
        this.pos++;
        if (!escaped) return text(this.src, runStart, end);
        this.sinkRange(runStart, end);
        return text(this.sink, 0, this.sinkLength);
      }
      if (c === 0x0a || c === 0x0d) throw this.error('unfinished string (a line break inside quotes)', start);
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      escaped = true;
      this.sinkRange(runStart, this.pos);
      const bytes = this.escape();
      this.sinkReserve(bytes.length);
      for (const b of bytes) this.sink[this.sinkLength++] = b;
      runStart = this.pos;
    }
  }

  /** The bytes of the escape sequence at pos (a backslash), which it consumes. */
  private escape(): number[] {
    const escAt = this.pos;
    this.pos++;
    const e = this.peek();
    this.pos++;
    switch (e) {
      case 0x61: return [0x07]; // \a
      case 0x62: return [0x08]; // \b
      case 0x66: return [0x0c]; // \f
      case 0x6e: return [0x0a]; // \n
      case 0x72: return [0x0d]; // \r
      case 0x74: return [0x09]; // \t
      case 0x76: return [0x0b]; // \v
      case 0x5c: return [0x5c];
      case 0x22: return [0x22];
      case 0x27: return [0x27];
      case 0x0a:
      case 0x0d: {
        // A backslash before a line break keeps the line break (\r\n and \n\r count as one).
        const next = this.peek();
        if ((next === 0x0a || next === 0x0d) && next !== e) this.pos++;
        return [0x0a];
      }
      case 0x7a: // \z skips the following whitespace
        while (isSpace(this.peek())) this.pos++;
        return [];
      case 0x78: { // \xXX
        const h1 = this.peek();
        const h2 = this.peek(1);
        if (!isHexDigit(h1) || !isHexDigit(h2)) throw this.error('\\x needs two hexadecimal digits', escAt);
        this.pos += 2;
        return [parseInt(String.fromCharCode(h1, h2), 16)];
      }
      case 0x75: { // \u{XXX}: the UTF-8 encoding of the code point (Lua allows up to 2^31)
        if (this.peek() !== 0x7b) throw this.error('\\u needs {', escAt);
        this.pos++;
        const digits = this.pos;
        while (isHexDigit(this.peek()) && this.pos - digits < 8) this.pos++;
        if (this.pos === digits || this.peek() !== 0x7d) throw this.error('malformed \\u{…} escape', escAt);
        const cp = parseInt(this.src.toString('latin1', digits, this.pos), 16);
        this.pos++;
        if (cp > 0x7fffffff) throw this.error('\\u{…} escape out of range', escAt);
        return utf8Extended(cp);
      }
      default: {
        if (!isDigit(e)) throw this.error(e < 0 ? 'unfinished string' : `invalid escape '\\${String.fromCharCode(e)}'`, escAt);
        // \d, \dd, \ddd: a decimal byte value
        let v = e - 0x30;
        for (let i = 0; i < 2 && isDigit(this.peek()); i++) v = v * 10 + (this.src[this.pos++]! - 0x30);
        if (v > 255) throw this.error('decimal escape too large', escAt);
        return [v];
      }
    }
  }

  private table(depth: number): LuaTable {
    if (depth > this.limits.maxDepth) throw this.error(`tables nested deeper than ${this.limits.maxDepth}`);
    const start = this.pos;
    this.pos++; // {
    this.count();
    const table = new LuaTable();
    // Positional fields are stored after the keyed ones, as Lua's constructor does.
    const positional: LuaValue[] = [];
    for (;;) {
      if (this.accept('}')) break;
      if (this.atEnd()) throw this.error('unfinished table', start);
      let key: LuaKey | undefined;
      let value: LuaValue;
      this.skip();
      const name = this.peekName();
      if (this.peek() === 0x5b && this.longBracketLevel() < 0) {
        // [key] = value
        this.pos++;
        const keyAt = this.pos;
        const k = this.value(depth);
        this.expect(']');
        this.expect('=');
        key = tableKey(k, () => this.error('invalid table key', keyAt));
        value = this.value(depth);
      } else if (name !== undefined && !KEYWORDS.has(name) && this.followedByEquals(name.length)) {
        // name = value
        this.pos += name.length;
        this.expect('=');
        this.count();
        key = name;
        value = this.value(depth);
      } else {
        value = this.value(depth);
      }
      if (key === undefined) positional.push(value);
      else if (value === null) table.map.delete(key);
      else table.map.set(key, value);
      if (this.accept(',') || this.accept(';')) continue;
      this.expect('}');
      break;
    }
    positional.forEach((v, i) => {
      if (v === null) table.map.delete(i + 1);
      else table.map.set(i + 1, v);
    });
    return table;
  }

  /** Whether `=` (not `==`) follows a name of the given length at pos. */
  private followedByEquals(length: number): boolean {
    let i = this.pos + length;
    while (i < this.src.length && isSpace(this.src[i]!)) i++;
    return this.src[i] === 0x3d && this.src[i + 1] !== 0x3d;
  }
}

/** Bytes as text when they are UTF-8 (ASCII without building a view of them), else as LuaBytes. */
function text(buf: Buffer, from: number, to: number): string | LuaBytes {
  let ascii = true;
  for (let i = from; i < to; i++) {
    if (buf[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', from, to);
  const bytes = buf.subarray(from, to);
  try {
    return utf8.decode(bytes);
  } catch {
    return new LuaBytes(Buffer.from(bytes));
  }
}

/** A value as a table key: numbers with an integral value are integers (Lua 5.3+); nil and NaN are not keys. */
function tableKey(k: LuaValue, error: () => LuaDataError): LuaKey {
  if (typeof k === 'string' || typeof k === 'boolean') return k;
  if (typeof k === 'number' && !Number.isNaN(k)) return k;
  throw error();
}

/** UTF-8 as Lua writes it for \u{…}: up to six bytes, for code points up to 2^31 - 1. */
function utf8Extended(cp: number): number[] {
  if (cp < 0x80) return [cp];
  const bytes: number[] = [];
  let limit = 0x3f; // largest value that fits in the first byte
  let rest = cp;
  while (rest > limit) {
    bytes.unshift(0x80 | (rest & 0x3f));
    rest = Math.floor(rest / 64);
    limit >>= 1;
  }
  bytes.unshift(((~limit << 1) & 0xff) | rest);
  return bytes;
}

function toBuffer(input: string | Buffer): Buffer {
  return typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
}

/** A bare value (what util.serialization writes). */
export function parseLuaValue(input: string | Buffer, limits: LuaDataLimits = {}): LuaValue {
  const p = new Parser(toBuffer(input), limits);
  const v = p.value(0);
  p.skip();
  if (!p.atEnd()) throw p.error('unexpected text after the value');
  return v;
}

/** A `*.dat` file: `return <value>` with an optional `;`. */
export function parseLuaDat(input: string | Buffer, limits: LuaDataLimits = {}): LuaValue {
  const p = new Parser(toBuffer(input), limits);
  p.expectName('return');
  const v = p.value(0);
  p.accept(';');
  p.skip();
  if (!p.atEnd()) throw p.error('unexpected text after the returned value');
  return v;
}

/** A `*.list` file: any number of `item(<value>);` (or `item{…}` / `item"…"`), in order. */
export function parseLuaList(input: string | Buffer, limits: LuaDataLimits = {}, call = 'item'): LuaValue[] {
  const p = new Parser(toBuffer(input), limits);
  const items: LuaValue[] = [];
  for (;;) {
    p.skip();
    if (p.atEnd()) return items;
    p.expectName(call);
    if (p.accept('(')) {
      items.push(p.value(0));
      p.expect(')');
    } else {
      // Lua's call sugar: f{…} and f"…" take exactly one table or string.
      p.skip();
      const v = p.value(0);
      if (!(v instanceof LuaTable) && typeof v !== 'string' && !(v instanceof LuaBytes)) throw p.error(`'(' expected after '${call}'`);
      items.push(v);
    }
    p.accept(';');
  }
}
