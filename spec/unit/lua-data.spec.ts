// The Lua data reader (core/util/lua-data.ts): what Prosody's util.serialization writes, Lua 5.4's
// literal syntax around it, and input that must be refused without running anything.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { LuaBytes, LuaDataError, LuaTable, parseLuaDat, parseLuaList, parseLuaValue, type LuaValue } from '../../core/util/lua-data.ts';

/** A plain JS view of a value, for deepEqual: tables as [key, value] pairs in file order. */
function plain(v: LuaValue): unknown {
  if (v instanceof LuaTable) return [...v.map].map(([k, x]) => [k, plain(x)]);
  if (v instanceof LuaBytes) return { bytes: [...v.bytes] };
  return v;
}

function fails(input: string, pattern: RegExp, limits = {}): LuaDataError {
  let caught: unknown;
  try {
    parseLuaValue(input, limits);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof LuaDataError, `expected a LuaDataError for ${JSON.stringify(input.slice(0, 80))}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe('Lua data reader', () => {
  describe('what Prosody writes', () => {
    it('reads a .dat file as util.datamanager stores it', () => {
      const v = parseLuaDat(`return {\n\t["server_key"] = "0d41";\n\t["iteration_count"] = 10000;\n\t[false] = {\n\t\t["version"] = 3;\n\t};\n};\n`);
      assert.ok(v instanceof LuaTable);
      assert.equal(v.get('server_key'), '0d41');
      assert.equal(v.get('iteration_count'), 10000);
      assert.equal((v.get(false) as LuaTable).get('version'), 3);
      assert.deepEqual([...v.map.keys()], ['server_key', 'iteration_count', false]);
    });

    it('reads a .list file: item(…) calls in order', () => {
      const items = parseLuaList(`item({\n\t"a";\n\t["name"] = "body";\n});\nitem({\n\t["when"] = 1700000000.25;\n});\n`);
      assert.equal(items.length, 2);
      assert.deepEqual((items[0] as LuaTable).sequence(), ['a']);
      assert.equal((items[1] as LuaTable).get('when'), 1700000000.25);
      assert.deepEqual(parseLuaList(''), []);
      assert.deepEqual(parseLuaList('item{1} item"x" item[[y]]').map(plain), [[[1, 1]], 'x', 'y']);
    });

    it('decodes the serializer\'s escapes: \\ddd bytes to UTF-8 text, \\n, \\", \\\\, \\\'', () => {
      assert.equal(parseLuaValue(String.raw`"Gr\195\188\195\159e \240\159\145\139 <&> \"q\"\nx\\y\'z"`), 'Grüße 👋 <&> "q"\nx\\y\'z');
      assert.equal(parseLuaValue(String.raw`"\a\b\f\r\t\v\000"`), '\x07\b\f\r\t\v\0');
    });

    it('reads the numbers the serializer writes, non-finite ones included', () => {
      assert.equal(parseLuaValue('10000'), 10000);
      assert.equal(parseLuaValue('-42'), -42);
      assert.equal(parseLuaValue('1796337458.1234567'), 1796337458.1234567);
      assert.equal(parseLuaValue('1e-7'), 1e-7);
      assert.equal(parseLuaValue('0x1F'), 31);
      assert.equal(parseLuaValue('.5'), 0.5);
      assert.equal(parseLuaValue('(1/0)'), Infinity);
      assert.equal(parseLuaValue('(-1/0)'), -Infinity);
      assert.ok(Number.isNaN(parseLuaValue('(0/0)')));
    });

    it('agrees with Prosody\'s own serializer on awkward values', () => {
      // Serialize with Prosody's util.serialization (real Lua), read back here.
      const lua = `package.path = "/usr/lib/prosody/?.lua;" .. package.path
        package.cpath = "/usr/lib/prosody/?.so;" .. package.cpath
        local s = require "util.serialization"
        local t = { "first", "second", nested = { deep = { [true] = false } }, [false] = { version = 7 },
          ["key with spaces"] = "tab\\tcr\\rnul\\0del\\127high\\200\\255", [3.5] = 1/0, neg = -0.125,
          ["\\"quoted\\" [[x]]"] = "]]==]", big = 9007199254740991, [10] = "sparse" }
        io.write("return " .. s.serialize(t) .. ";\\n")`;
      const out = execFileSync('lua5.4', ['-e', lua]);
      const v = parseLuaDat(out) as LuaTable;
      assert.deepEqual(v.sequence(), ['first', 'second']);
      assert.equal(v.get(10), 'sparse');
      assert.equal(((v.get('nested') as LuaTable).get('deep') as LuaTable).get(true), false);
      assert.equal((v.get(false) as LuaTable).get('version'), 7);
      assert.equal(v.get(3.5), Infinity);
      assert.equal(v.get('neg'), -0.125);
      assert.equal(v.get('"quoted" [[x]]'), ']]==]');
      assert.equal(v.get('big'), 9007199254740991);
      // \200 alone is not UTF-8: the bytes are kept exactly.
      const bytes = v.get('key with spaces');
      assert.ok(bytes instanceof LuaBytes);
      assert.deepEqual([...bytes.bytes], [...Buffer.from("tab\tcr\rnul\0del\x7fhigh", "latin1"), 200, 255]);
    });
  });

  describe('Lua 5.4 literal syntax', () => {
    it('reads tables: positional, [key] and name keys, both separators, a trailing one', () => {
      const v = parseLuaValue('{ 1, "two"; x = true, ["y"] = nil, [2.0] = "ignored", [3] = "three", }') as LuaTable;
      // Positional fields are assigned last, as Lua's constructor does: [2.0] is overwritten by "two".
      assert.deepEqual(v.sequence(), [1, 'two', 'three']);
      assert.equal(v.get('x'), true);
      assert.equal(v.get('y'), undefined);
      assert.deepEqual(plain(parseLuaValue('{}')), []);
      assert.deepEqual(plain(parseLuaValue('{ {}, { {} } }')), [[1, []], [2, [[1, []]]]]);
    });

    it('reads every string form: single quotes, \\x, \\u{…}, \\z, an escaped line break, long brackets', () => {
      assert.equal(parseLuaValue(`'it''s'`.replace("''", "\\'")), "it's");
      assert.equal(parseLuaValue('"\\x41\\x62"'), 'Ab');
      assert.equal(parseLuaValue('"\\u{48}\\u{E9}\\u{1F600}"'), 'Hé😀');
      assert.equal(parseLuaValue('"a\\z   \n   b"'), 'ab');
      assert.equal(parseLuaValue('"a\\\nb"'), 'a\nb');
      assert.equal(parseLuaValue('"a\\\r\nb"'), 'a\nb');
      assert.equal(parseLuaValue('[[\nfirst line\n]]'), 'first line\n');
      assert.equal(parseLuaValue('[==[ a ]] ]=] ]==]'), ' a ]] ]=] ');
      assert.equal(parseLuaValue('"\\65\\066\\0677"'), 'AB' + 'C7');
    });

    it('skips comments, line and long', () => {
      assert.equal(parseLuaDat('-- a comment\nreturn --[[ inline\n ]] 5 --[==[ ]] ]==] ; -- end'), 5);
    });

    it('keeps invalid UTF-8 as bytes, and \\u{…} beyond Unicode as Lua encodes it', () => {
      const v = parseLuaValue('"\\255\\254"');
      assert.ok(v instanceof LuaBytes);
      assert.deepEqual([...v.bytes], [0xff, 0xfe]);
      const big = parseLuaValue('"\\u{7FFFFFFF}"');
      assert.ok(big instanceof LuaBytes);
      assert.deepEqual([...big.bytes], [0xfd, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf]);
    });

    it('reads true, false, nil, and a UTF-8 byte order mark', () => {
      assert.equal(parseLuaValue('true'), true);
      assert.equal(parseLuaValue('false'), false);
      assert.equal(parseLuaValue('nil'), null);
      assert.equal(parseLuaDat('\ufeffreturn 1'), 1);
    });
  });

  describe('hostile and broken input', () => {
    it('never evaluates: names, calls, operators and functions are errors', () => {
      fails('os.execute("rm -rf /")', /'os' is not a value/);
      fails('{ x = os }', /'os' is not a value/);
      fails('{ x = require "io" }', /'require' is not a value/);
      fails('function() end', /'function' is not a value/);
      fails('"a" .. "b"', /after the value/);
      fails('1 + 1', /after the value/);
      fails('(1)', /quotient/);
      fails("(1/x)", /malformed number/);
      fails('#"x"', /unexpected character '#'/);
      fails('{ [f()] = 1 }', /'f' is not a value/);
      fails('setmetatable({}, { __index = _G })', /'setmetatable' is not a value/);
      assert.throws(() => parseLuaDat('return 1; os.exit(1)'), /after the returned value/);
      assert.throws(() => parseLuaDat('local x = 1 return x'), /'return' expected/);
      assert.throws(() => parseLuaList('item(1); print(2)'), /'item' expected/);
      assert.throws(() => parseLuaList('item(1, 2)'), /'\)' expected/);
      assert.throws(() => parseLuaList('item 5'), /'\(' expected/);
    });

    it('reports where the input goes wrong', () => {
      const err = fails('{\n  a = 1,\n  b = @\n}', /unexpected character '@'/);
      assert.equal(err.line, 3);
      assert.equal(err.column, 7);
    });

    it('refuses unfinished and malformed literals', () => {
      fails('"abc', /unfinished string/);
      fails('"abc\ndef"', /line break inside quotes/);
      fails('"\\q"', /invalid escape/);
      fails('"\\256"', /decimal escape too large/);
      fails('"\\xZZ"', /two hexadecimal digits/);
      fails('"\\u{}"', /malformed \\u/);
      fails('"\\u{80000000}"', /out of range/);
      fails('"\\u{110000', /malformed \\u/);
      fails('"abc\\', /unfinished string/);
      fails('[==[ never closed ]=]', /unfinished long string/);
      fails('--[[ never closed', /unfinished long comment/);
      fails('{ 1, 2', /unfinished table|'}' expected/);
      fails('{ 1 2 }', /'}' expected/);
      fails('{ [1] 2 }', /'=' expected/);
      fails('{ = 1 }', /unexpected character '='/);
      fails('1.2.3', /malformed number|after the value/);
      fails('1e', /malformed number/);
      fails('0x', /malformed number/);
      fails('0x1p4', /hexadecimal fractions/);
      fails('0xFFFFFFFFFFFFFFFFFF', /out of range/);
      fails('12abc', /malformed number/);
      fails('-', /value expected|malformed/);
      fails('', /value expected/);
      fails('{ [nil] = 1 }', /invalid table key/);
      fails('{ [(0/0)] = 1 }', /invalid table key/);
      fails('{ [{}] = 1 }', /invalid table key/);
      fails('{ ["\\255"] = 1 }', /invalid table key/);
    });

    it('bounds nesting depth without exhausting the stack', () => {
      const deep = (n: number) => '{'.repeat(n) + '}'.repeat(n);
      assert.ok(parseLuaValue(deep(128)) instanceof LuaTable);
      fails(deep(129), /nested deeper than 128/);
      fails(deep(100_000), /nested deeper than 128/);
      fails(deep(11), /nested deeper than 10/, { maxDepth: 10 });
    });

    it('bounds the input size and the number of values', () => {
      fails('"' + 'x'.repeat(2000) + '"', /larger than 1000 bytes/, { maxBytes: 1000 });
      fails(`{ ${'1,'.repeat(5000)} }`, /more than 1000 values/, { maxValues: 1000 });
      // A string of a million escapes is one value and costs linear time.
      assert.equal((parseLuaValue(`"${'\\65'.repeat(1_000_000)}"`) as string).length, 1_000_000);
    });

    it('takes keys that are special in JavaScript as plain keys', () => {
      const v = parseLuaValue('{ ["__proto__"] = { polluted = true }, constructor = 1, toString = 2 }') as LuaTable;
      assert.ok(v.get('__proto__') instanceof LuaTable);
      assert.equal(v.get('constructor'), 1);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    it('treats keywords as values, not keys, and rejects keywords as names', () => {
      assert.deepEqual((parseLuaValue('{ true, false }') as LuaTable).sequence(), [true, false]);
      fails('{ end = 1 }', /'end' is not a value/);
    });
  });
});
