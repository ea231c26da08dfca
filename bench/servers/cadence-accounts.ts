// Bench-only bulk account creation for Cadence, in-process (no server running):
//   node --import tsx bench/servers/cadence-accounts.ts CONFIG DOMAIN PASSWORD < names (one a line)
// The first account goes through core/usermanager.ts (UserManager.create: the operator's path,
// SCRAM-SHA-1 4096 + SCRAM-SHA-256 10000 PBKDF2 iterations); every other account gets a copy of
// that record (same password, same salt) written through the same storage API, so that creating
// 10,000 accounts does not cost 10,000 key derivations (~5 ms each here).
import { readFileSync } from 'node:fs';
import { loadConfig, Server } from '../../core/server.ts';
import type { Json } from '../../core/storage/manager.ts';

const [file, domain, password] = process.argv.slice(2) as [string, string, string];
const names = readFileSync(0, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
const server = new Server(await loadConfig(file));
const t0 = performance.now();
const [first, ...rest] = names;
if (first) {
  if (!(await server.users.exists(domain, first))) await server.users.create(domain, first, password);
  const store = server.storage.keyval(domain, 'accounts');
  const record = await store.get<Json>(first);
  if (!record) throw new Error('account record not found after create');
  for (const name of rest) await store.set(name, record);
}
await server.storage.close();
process.stdout.write(`created ${names.length} accounts in ${Math.round(performance.now() - t0)} ms\n`);
