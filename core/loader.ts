// Imports users' TypeScript/JavaScript files (config, modules). Files inside an ESM package
// (nearest package.json has "type": "module", like Cadence's own) are imported directly; others
// go through tsx's tsImport, since a plain import() of such a .ts file fails. tsx compiles those
// as CommonJS, so their `export default` arrives as `default.default`: unwrap it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

let counter = 0;

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

/** Import a file afresh (a new URL each time, so an edited file is re-read) and return its default export. */
export async function importDefault(file: string): Promise<unknown> {
  const url = `${pathToFileURL(file).href}?cadence-load=${++counter}`;
  let mod: { default?: unknown };
  if (inEsmScope(file)) {
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
