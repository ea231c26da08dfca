// Where module files are: the built-in modules/ next to the running core (dist/modules when
// compiled) and the names found in a list of directories. Light, for config validation.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUILTIN_MODULE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'modules');

/** Names of the module files (mod_<name>.ts|.js or mod_<name>/) found in the given directories. */
export function availableModules(dirs: string[]): string[] {
  const names = new Set<string>();
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = /^mod_([a-z][a-z0-9_]*)(\.ts|\.js)?$/.exec(e);
      if (!m) continue;
      if (!m[2] && !statSync(path.join(dir, e)).isDirectory()) continue;
      names.add(m[1]!);
    }
  }
  return [...names].sort();
}
