// Where Cadence is installed and which version it is; light, so `cadence about` and `help`
// answer without loading the server.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
/** Whether this code is the build in dist/ (else the TypeScript sources, run through tsx). */
export const COMPILED = !self.endsWith('.ts');
/** The tree core/ and modules/ run from: dist/ when compiled, else the checkout. */
export const CODE_DIR = path.resolve(path.dirname(self), '..');
/** The checkout or installed package: package.json and the TypeScript sources. */
export const ROOT_DIR = COMPILED ? path.dirname(CODE_DIR) : CODE_DIR;
export const VERSION: string = (JSON.parse(readFileSync(path.join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The libraries Cadence depends on (package.json `dependencies`) with the version installed, read
 * from their package.json files — nothing is imported. `undefined`: not installed.
 */
export function installedLibraries(): Array<{ name: string; wanted: string; installed: string | undefined }> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT_DIR, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  return Object.entries(pkg.dependencies ?? {}).map(([name, wanted]) => {
    // Node's lookup: node_modules of the package, then of each folder above (an npm install hoists).
    let installed: string | undefined;
    for (let dir = ROOT_DIR; installed === undefined; dir = path.dirname(dir)) {
      try {
        installed = (JSON.parse(readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
      } catch {
        if (path.dirname(dir) === dir) break;
      }
    }
    return { name, wanted, installed };
  });
}
