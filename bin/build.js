#!/usr/bin/env node
// `npm run build` (also run by `npm install` through `prepare`): compiles core/, modules/ and the
// example config prosody-like.cfg.ts to JavaScript in dist/ (tsconfig.build.json, incremental),
// marks the config's twin as built now (core/loader.ts uses it only while it is not older than
// the source, and an incremental build does not rewrite an unchanged output), removes what a deleted or renamed source
// left in dist/ (a stale mod_x.js would still load), and stamps the build (dist/.built) so tests
// can refuse a dist/ older than its sources (spec/helpers/build.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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
const configTwin = path.join(dist, 'prosody-like.cfg.js');
if (existsSync(configTwin)) {
  if (existsSync(path.join(root, 'prosody-like.cfg.ts'))) utimesSync(configTwin, new Date(), new Date());
  else rmSync(configTwin);
}
for (const top of ['core', 'modules']) if (existsSync(path.join(dist, top))) prune(path.join(dist, top));
writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);
