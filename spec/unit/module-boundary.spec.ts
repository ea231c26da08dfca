// The module boundary of eslint.config.js: a module imports from Cadence only through
// core/api.ts. Linted as if it were modules/mod_bad_imports.ts, the fixture's import of another
// module and its import of a core file outside the public API are both errors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURE = path.join(ROOT, 'spec', 'fixtures', 'lint', 'mod_bad_imports.ts');

describe('module boundary (lint)', function () {
  this.timeout(60_000);

  const lint = async (source: string, file: string) => {
    const eslint = new ESLint({ cwd: ROOT });
    const [result] = await eslint.lintText(source, { filePath: path.join(ROOT, file) });
    return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports');
  };

  it('refuses a module importing another module and a non-public core file', async function () {
    const text = readFileSync(FIXTURE, 'utf8');
    const source = text.split('\n');
    const lineOf = (s: string) => source.findIndex((l) => l.includes(s)) + 1;
    const messages = await lint(text, 'modules/mod_bad_imports.ts');
    const byLine = new Map(messages.map((m) => [m.line, m.message]));
    assert.match(byLine.get(lineOf("from './mod_c2s.ts'")) ?? '', /never imports another module/);
    assert.match(byLine.get(lineOf("from '../core/sessionmanager.ts'")) ?? '', /only through core\/api\.ts/);
    assert.equal(byLine.has(lineOf("from '../core/api.ts'")), false, 'core/api.ts is the public entry');
    assert.equal(messages.length, 2, messages.map((m) => `${m.line}: ${m.message}`).join('\n'));
  });

  it('lets a module folder import its own files, and nothing else but core/api.ts', async function () {
    const source = [
      "import { defineModule } from '../../core/api.ts';",
      "import { engine } from './engine.ts';",
      "import { other } from '../mod_other.ts';",
      "import { shared } from '../shared.ts';",
      "import { jid } from '../../core/util/jid.ts';",
      'export default defineModule({ load() { void [engine, other, shared, jid]; } });',
    ].join('\n');
    const messages = await lint(source, 'modules/mod_folder/index.ts');
    assert.deepEqual(messages.map((m) => m.line), [3, 4, 5]);
  });
});
