#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4: a small young generation keeps idle sessions cheap (bench/RESULTS.md);
// start the server with it (`npm start`, this shebang) — it cannot be set once running.
// Cadence runs its TypeScript sources (and users' .ts modules and config) through tsx's loader,
// so there is no build step.
import { register } from 'tsx/esm/api';

// `cadence about | head` and the like: a closed stdout is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

register();
const { main } = await import('../core/cli/cli.ts');
process.exitCode = await main(process.argv.slice(2));
