// The typed event catalogue cannot silently rot: tsc must refuse the fixtures' misspelt event
// names and wrong payloads (lines marked `expect-error`), and accept everything else — including
// an event a module declares for itself by declaration merging on core/api.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = path.join(ROOT, 'spec', 'fixtures', 'types');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function runTsc(): Promise<string> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', FIXTURES, '--noEmit', '--pretty', 'false'], { cwd: ROOT, timeout: 180_000 }, (_err, stdout, stderr) => {
      resolve(String(stdout) + String(stderr));
    });
  });
}

describe('typed events (tsc on spec/fixtures/types)', function () {
  this.timeout(200_000);
  let reported: Map<string, Set<number>>;
  let output: string;

  before(async function () {
    output = await runTsc();
    reported = new Map();
    for (const m of output.matchAll(/^(.+?)\((\d+),\d+\): error TS\d+/gm)) {
      const file = path.resolve(ROOT, m[1]!);
      if (!reported.has(file)) reported.set(file, new Set());
      reported.get(file)!.add(Number(m[2]));
    }
  });

  const expected = (file: string) =>
    readFileSync(file, 'utf8').split('\n').flatMap((l, i) => (l.includes('// expect-error') ? [i + 1] : []));

  for (const name of readdirSync(FIXTURES).filter((f) => f.endsWith('.ts')).sort()) {
    it(`reports exactly the marked lines of ${name}`, function () {
      const file = path.join(FIXTURES, name);
      const want = expected(file);
      assert.deepEqual([...(reported.get(file) ?? [])].sort((a, b) => a - b), want, output);
    });
  }

  it('reports a misspelt event name and a wrong payload', function () {
    assert.ok(expected(path.join(FIXTURES, 'mod_misspelt_event.ts')).length >= 1);
    assert.ok(expected(path.join(FIXTURES, 'mod_wrong_payload.ts')).length >= 1);
    assert.ok(reported.get(path.join(FIXTURES, 'mod_misspelt_event.ts'))?.size, 'misspelt event reported');
    assert.ok(reported.get(path.join(FIXTURES, 'mod_wrong_payload.ts'))?.size, 'wrong payload reported');
  });

  it('reports nothing outside the fixtures (the core itself type-checks)', function () {
    const elsewhere = [...reported.keys()].filter((f) => path.dirname(f) !== FIXTURES);
    assert.deepEqual(elsewhere, [], output);
  });
});
