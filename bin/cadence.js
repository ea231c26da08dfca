#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4: a small young generation keeps idle sessions cheap (bench/RESULTS.md);
// start the server with it (`npm start`, this shebang) — it cannot be set once running.
// Cadence runs as JavaScript compiled into dist/ by `npm run build` (run by `npm install`);
// TypeScript is compiled at run time only for the operator's own .ts config and modules.

// `cadence about | head` and the like: a closed stdout is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

let cli;
try {
  cli = await import('../dist/core/cli/cli.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/core/cli/cli.js')) throw err;
  process.stderr.write('cadence: not built: run `npm run build` (or `npm install`) in the Cadence directory\n');
  process.exit(1);
}
process.exitCode = await cli.main(process.argv.slice(2));
