// Imports users' TypeScript/JavaScript files (config, modules) through tsx's tsImport, which
// works wherever the file lives (a plain `import()` of a .ts file outside an ESM package fails).
// Such a file is compiled as CommonJS, so its `export default` arrives as `default.default`;
// unwrap that so both kinds look the same to the caller.
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';

let counter = 0;

/** Import a file afresh (a new URL each time, so an edited file is re-read) and return its default export. */
export async function importDefault(file: string): Promise<unknown> {
  const url = `${pathToFileURL(file).href}?cadence-load=${++counter}`;
  const mod = (await tsImport(url, import.meta.url)) as { default?: unknown };
  let value = mod.default;
  if (value && typeof value === 'object' && '__esModule' in value && 'default' in value) {
    value = (value as { default: unknown }).default;
  }
  return value;
}
