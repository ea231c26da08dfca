// Imports users' TypeScript/JavaScript files (config, modules).
// Cadence itself runs as JavaScript compiled into dist/ (`npm run build`); TypeScript is compiled
// at run time (tsx) only for an operator's own `.ts` config or module, and tsx is loaded the first
// time one is imported — a JavaScript config and the built-in modules never load it.
// `.ts` files inside an ESM package (nearest package.json has "type": "module", like Cadence's
// own) are imported directly once tsx's hooks are registered; others go through tsx's tsImport,
// since a plain import() of such a .ts file fails. tsx compiles those as CommonJS, so their
// `export default` arrives as `default.default`: unwrap it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RedirectData } from './loader-hooks.ts';
import { CODE_DIR, COMPILED, ROOT_DIR } from './package.ts';

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

/** Import a file afresh (a new URL each time, so an edited file is re-read) and return its default export. */
export async function importDefault(file: string): Promise<unknown> {
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
