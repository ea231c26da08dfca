#!/usr/bin/env node
// Cadence runs its TypeScript sources (and users' .ts modules and config) through tsx's loader,
// so there is no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../core/cli.ts');
process.exitCode = await main(process.argv.slice(2));
