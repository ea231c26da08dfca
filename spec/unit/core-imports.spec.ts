// The layering of core/ (doc/architecture.md), checked on the import statements of every
// core/**/*.ts file — type-only imports and re-exports included: no import cycle anywhere in
// core/, and core/util/ (pure helpers) imports nothing outside core/util/.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CORE = path.join(ROOT, 'core');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative specifiers a file imports: `import … from`, `import '…'`, `export … from`, `import('…')`. */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const re = /\b(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const spec = m[1] ?? m[2];
    if (spec?.startsWith('.')) out.push(spec);
  }
  return out;
}

/** core file → the core files it imports (absolute paths). */
function coreGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(CORE)) {
    const deps = importsOf(readFileSync(file, 'utf8')).map((s) => path.resolve(path.dirname(file), s));
    graph.set(file, deps.filter((d) => d.startsWith(CORE + path.sep)));
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as a list of files (first = last). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'active');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      const s = state.get(d);
      if (s === 'active') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('core layering (imports)', function () {
  const rel = (f: string) => path.relative(ROOT, f);

  it('finds the imports of a file, type-only ones and re-exports included', function () {
    const src = [
      "import type { A } from './a.ts';",
      "import { b, type C } from '../b.ts';",
      "export { d } from './d.ts';",
      "export type { E } from './e.ts';",
      "import './side-effect.ts';",
      "const f = await import('./f.ts');",
      "// import { g } from './commented.ts';",
      "import x from 'node:fs';",
    ].join('\n');
    assert.deepEqual(importsOf(src), ['./a.ts', '../b.ts', './d.ts', './e.ts', './side-effect.ts', './f.ts']);
  });

  it('has no import cycle in core/', function () {
    const graph = coreGraph();
    assert.ok(graph.size > 30, 'the core files are found');
    const found = cycles(graph);
    assert.deepEqual(found.map((c) => c.map(rel).join(' → ')), []);
  });

  it('keeps core/util/ pure: it imports nothing outside core/util/', function () {
    const util = path.join(CORE, 'util') + path.sep;
    const outside: string[] = [];
    for (const [file, deps] of coreGraph()) {
      if (!file.startsWith(util)) continue;
      for (const d of deps) if (!d.startsWith(util)) outside.push(`${rel(file)} → ${rel(d)}`);
    }
    assert.deepEqual(outside, []);
  });
});
