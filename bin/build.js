#!/usr/bin/env node
// `npm run build` (also run by `npm install` through `prepare`): compiles core/, modules/ and the
// example config prosody-like.cfg.ts to JavaScript in dist/ (tsconfig.build.json, incremental),
// writes the characters beyond ASCII of the output as \u escapes (V8 keeps each module's source
// text in memory, two bytes a character if one character needs it: ~1 MiB of the idle server),
// marks the config's twin as built now (core/loader.ts uses it only while it is not older than
// the source, and an incremental build does not rewrite an unchanged output), removes what a deleted or renamed source
// left in dist/ (a stale mod_x.js would still load), and stamps the build (dist/.built) so tests
// can refuse a dist/ older than its sources (spec/helpers/build.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
} catch {
  process.exit(1);
}

function prune(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) {
      prune(file);
      if (readdirSync(file).length === 0) rmSync(file, { recursive: true });
    } else if (e.name.endsWith('.js') && !existsSync(path.join(root, path.relative(dist, file)).replace(/\.js$/, '.ts'))) {
      rmSync(file);
    }
  }
}
/**
 * `text` with every character beyond ASCII as a \u escape (two for one beyond U+FFFF), the same
 * value in a string, template or regular expression literal; comments may read oddly, and `//%`
 * header lines (core/module-header.ts reads them from dist/) are left as they are. Undefined when
 * a backslash precedes such a character (an escape would change its meaning): left as it is.
 */
function asciiOnly(text) {
  if (/\\[\u0080-\uffff]/.test(text)) return undefined;
  return text
    .split('\n')
    .map((line) => (line.startsWith('//%') ? line : line.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)))
    .join('\n');
}
function escapeOutput(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) escapeOutput(file);
    else if (e.name.endsWith('.js')) {
      const text = readFileSync(file, 'utf8');
      if (!/[\u0080-\uffff]/.test(text)) continue;
      const ascii = asciiOnly(text);
      if (ascii !== undefined) writeFileSync(file, ascii);
    }
  }
}
for (const top of ['core', 'modules']) if (existsSync(path.join(dist, top))) escapeOutput(path.join(dist, top));

const configTwin = path.join(dist, 'prosody-like.cfg.js');
if (existsSync(configTwin)) {
  const ascii = asciiOnly(readFileSync(configTwin, 'utf8'));
  if (ascii !== undefined) writeFileSync(configTwin, ascii);
}
if (existsSync(configTwin)) {
  if (existsSync(path.join(root, 'prosody-like.cfg.ts'))) utimesSync(configTwin, new Date(), new Date());
  else rmSync(configTwin);
}
for (const top of ['core', 'modules']) if (existsSync(path.join(dist, top))) prune(path.join(dist, top));
writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);
