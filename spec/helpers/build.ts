// The e2e and interop tests run the shipped server: the JavaScript build in dist/ (bin/cadence.js).
// `npm test` builds first (pretest); a dist/ older than a source (edited after the build, or never
// built) fails loudly here rather than silently testing old code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Why dist/ under `root` does not match the sources, or undefined when it does. */
export function staleBuild(root: string): string | undefined {
  const stamp = path.join(root, 'dist', '.built');
  if (!existsSync(stamp)) return 'dist/ is not built';
  const built = statSync(stamp).mtimeMs;
  const walk = (dir: string): string | undefined => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (e.isDirectory()) {
        const found = walk(file);
        if (found) return found;
      } else if (e.name.endsWith('.ts') && statSync(file).mtimeMs > built) {
        return `${path.relative(root, file)} changed after the last build`;
      }
    }
    return undefined;
  };
  return walk(path.join(root, 'core')) ?? walk(path.join(root, 'modules'));
}

let checked = false;

/** Throw unless dist/ is up to date (checked once per test process). */
export function assertBuilt(root: string): void {
  if (checked) return;
  const problem = staleBuild(root);
  if (problem) throw new Error(`${problem}: run \`npm run build\` (npm test does it first)`);
  checked = true;
}
