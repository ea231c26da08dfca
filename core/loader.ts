// Imports users' TypeScript/JavaScript files (config, modules) through tsx. A file outside an
// ESM package is compiled as CommonJS by tsx, so its `export default` arrives as
// `default.default`; unwrap that so both kinds look the same to the caller.
import { pathToFileURL } from 'node:url';

let counter = 0;

/** Import a file afresh (a new URL each time, so an edited file is re-read) and return its default export. */
export async function importDefault(file: string): Promise<unknown> {
  const url = `${pathToFileURL(file).href}?cadence-load=${++counter}`;
  const mod = (await import(url)) as { default?: unknown };
  let value = mod.default;
  if (value && typeof value === 'object' && '__esModule' in value && 'default' in value) {
    value = (value as { default: unknown }).default;
  }
  return value;
}
