// Imports users' TypeScript/JavaScript files (config, modules).
// Cadence itself runs as JavaScript compiled into dist/ (`npm run build`); TypeScript is compiled
// at run time (tsx) only for an operator's own `.ts` config or module, and tsx is loaded the first
// time one is imported — a JavaScript config and the built-in modules never load it.
// `.ts` files inside an ESM package (nearest package.json has "type": "module", like Cadence's
// own) are imported directly once tsx's hooks are registered; others go through tsx's tsImport,
// since a plain import() of such a .ts file fails. tsx compiles those as CommonJS, so their
// `export default` arrives as `default.default`: unwrap it.
// Cadence's own example config (prosody-like.cfg.ts, what `npm start` runs) is compiled by the
// build too: its JavaScript twin in dist/ is imported instead while it is not older than the
// source, so `npm start` needs no compiler; an edited, not rebuilt config is compiled as above.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RedirectData } from './loader-hooks.ts';
import { CODE_DIR, COMPILED, ROOT_DIR } from './package.ts';
import { getLogger } from './util/log.ts';

const log = getLogger('loader');
/** Cadence's own .ts files outside core/ and modules/ that `npm run build` compiles into dist/ too. */
const PREBUILT = ['prosody-like.cfg.ts'];

let counter = 0;
let typescript: Promise<void> | undefined;
const compiledFiles: string[] = [];

/** The operator's `.ts` files compiled at run time so far (`shell server info`). */
export function typescriptFiles(): readonly string[] {
  return compiledFiles;
}

function inEsmScope(file: string): boolean {
  let dir = path.dirname(path.resolve(file));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type === 'module';
      } catch {
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

/**
 * Register tsx's hooks, once. Running compiled, also the redirect of Cadence's own sources to
 * their build (core/loader-hooks.ts): an operator's module importing `…/core/api.ts` gets the
 * very classes the server runs (StanzaError, …), not a second copy compiled from source.
 */
function enableTypeScript(): Promise<void> {
  typescript ??= (async () => {
    if (!COMPILED) return; // the sources run through tsx already
    const { register } = await import('tsx/esm/api');
    register();
    const { register: registerHooks } = await import('node:module');
    const data: RedirectData = {
      sources: pathToFileURL(ROOT_DIR + path.sep).href,
      compiled: pathToFileURL(CODE_DIR + path.sep).href,
    };
    registerHooks('./loader-hooks.js', import.meta.url, { data });
  })();
  return typescript;
}

/**
 * The build's JavaScript twin of one of Cadence's own `.ts` files (PREBUILT), when it is not
 * older than the source: an operator who edits the file without rebuilding gets their edit.
 */
function prebuiltTwin(file: string): string | undefined {
  if (!COMPILED) return undefined;
  const rel = path.relative(ROOT_DIR, file);
  if (!PREBUILT.includes(rel)) return undefined;
  const twin = path.join(CODE_DIR, rel.replace(/\.ts$/, '.js'));
  const built = existsSync(twin) ? statSync(twin).mtimeMs : undefined;
  if (built !== undefined && built >= statSync(file).mtimeMs) return twin;
  log.info(`${file} ${built === undefined ? 'is not built' : 'changed after the last build'}: compiling it at run time (tsx); \`npm run build\` makes start leaner`);
  return undefined;
}

/** Import a file afresh (a new URL each time, so an edited file is re-read) and return its default export. */
export async function importDefault(source: string): Promise<unknown> {
  const file = (/\.ts$/.test(source) && prebuiltTwin(source)) || source;
  const url = `${pathToFileURL(file).href}?cadence-load=${++counter}`;
  let mod: { default?: unknown };
  const ts = /\.[cm]?ts$/.test(file);
  if (ts) {
    await enableTypeScript();
    if (!compiledFiles.includes(file)) compiledFiles.push(file);
  }
  if (!ts || inEsmScope(file)) {
    mod = (await import(url)) as { default?: unknown };
  } else {
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(url, import.meta.url)) as { default?: unknown };
  }
  let value = mod.default;
  if (value && typeof value === 'object' && '__esModule' in value && 'default' in value) {
    value = (value as { default: unknown }).default;
  }
  return value;
}
