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
