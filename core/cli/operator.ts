// Operator commands of `cadence` beyond start/adduser/check: account listing, backup and restore
// of the SQLite database, certificate import, and data import/export (Prosody data directories,
// XEP-0227 files). Each returns the process exit code; output goes to stdout, problems to stderr.
import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../config.ts';
import { certificatePaths } from '../net/cert-files.ts';
import { StorageManager } from '../storage/manager.ts';
import { CoreError } from '../util/errors.ts';
import { formatReport, type ImportNotes, type PortableData } from '../util/portable-data.ts';
import { importCertificates } from './cert-import.ts';
import { adminSocketPath, tryRunningServer } from './shell-client.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`cadence: ${s}\n`);

/** The database file of the config's sqlite storage (an error for other drivers). */
function databaseFile(config: Config): string {
  if (config.global('storage') !== 'sqlite') throw new CoreError('CONFIG_INVALID', `storage '${config.global('storage')}' has no database file to back up or restore`);
  return path.join(config.dataDir, 'cadence.sqlite');
}

/** Whether a server answers on the config's admin socket. */
async function serverRunning(config: Config): Promise<boolean> {
  return (await tryRunningServer(config, ['server', 'info'])) !== undefined;
}

function virtualHosts(config: Config): string[] {
  return config.hosts.filter((h) => h.kind === 'virtualhost').map((h) => h.name);
}

// ---- user list -----------------------------------------------------------------------------------------

export async function userList(config: Config, host: string | undefined): Promise<number> {
  const hosts = virtualHosts(config);
  if (host !== undefined && !hosts.includes(host)) {
    err(`host '${host}' is not a virtual host of ${config.file ?? 'the config'}`);
    return 1;
  }
  // Reading is safe while the server runs (SQLite in WAL mode: readers never block the writer).
  const storage = new StorageManager({ driver: config.global('storage'), dataDir: config.dataDir });
  try {
    for (const h of host ? [host] : hosts) {
      const users = (await storage.keyval(h, 'accounts').users()).sort();
      for (const u of users) out(`${u}@${h}`);
    }
    return 0;
  } finally {
    await storage.close();
  }
}

// ---- backup and restore ---------------------------------------------------------------------------------

/** SQLite's online backup: a consistent copy even while the server writes. */
export async function backup(config: Config, file: string | undefined): Promise<number> {
  if (!file) {
    err('backup needs a file name');
    return 1;
  }
  const source = databaseFile(config);
  if (!existsSync(source)) {
    err(`no database at ${source}: nothing to back up`);
    return 1;
  }
  const target = path.resolve(file);
  if (existsSync(target)) {
    err(`${target} exists: not overwritten`);
    return 1;
  }
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(target);
  } finally {
    db.close();
  }
  // The copy holds credentials: private like the database itself.
  chmodSync(target, 0o600);
  out(`backed up ${source} to ${target} (${statSync(target).size} bytes)`);
  return 0;
}

/** Replace the database with a backup; only while no server uses it. */
export async function restore(config: Config, file: string | undefined): Promise<number> {
  if (!file) {
    err('restore needs a file name');
    return 1;
  }
  const backupFile = path.resolve(file);
  if (!existsSync(backupFile)) {
    err(`${backupFile} does not exist`);
    return 1;
  }
  if (await serverRunning(config)) {
    err(`a server is running on ${adminSocketPath(config)}: stop it before restoring`);
    return 1;
  }
  const target = databaseFile(config);
  let src: Database.Database;
  try {
    src = new Database(backupFile, { readonly: true, fileMustExist: true });
    const tables = src.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    if (!tables.length) throw new Error('it holds no tables');
  } catch (e) {
    err(`${backupFile} is not a Cadence backup: ${(e as Error).message}`);
    return 1;
  }
  try {
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${target}${suffix}`, { force: true });
    await src.backup(target);
  } finally {
    src.close();
  }
  chmodSync(target, 0o600);
  out(`restored ${target} from ${backupFile}`);
  return 0;
}

// ---- certificates ----------------------------------------------------------------------------------------

export async function certImport(config: Config, dirs: string[]): Promise<number> {
  if (!dirs.length) {
    err('cert import needs one or more directories (e.g. /etc/letsencrypt/live)');
    return 1;
  }
  const results = await importCertificates({
    dirs: dirs.map((d) => path.resolve(d)),
    hosts: config.hosts.map((h) => h.name),
    dataDir: config.dataDir,
    configuredPaths: (host) => certificatePaths(config, host),
  });
  let imported = 0;
  for (const r of results) {
    out(`${r.host}: ${r.message}`);
    for (const w of r.warnings) out(`  note: ${w}`);
    for (const x of r.rejected) out(`  passed over ${x.candidate.certFile}: ${x.reason}`);
    if (r.status === 'imported') imported++;
  }
  if (imported) {
    const running = await tryRunningServer(config, ['cert', 'reload']);
    if (running) out(running.ok ? `running server: ${running.text.split('\n').join('; ')}` : `running server: reload failed: ${running.text}`);
  }
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

// ---- import and export -----------------------------------------------------------------------------------

interface ImportFlags {
  replace: boolean;
  dryRun: boolean;
}

function flags(rest: string[]): { args: string[]; flags: ImportFlags } {
  return {
    args: rest.filter((a) => !a.startsWith('--')),
    flags: { replace: rest.includes('--replace'), dryRun: rest.includes('--dry-run') },
  };
}

async function writeImport(config: Config, data: PortableData, notes: ImportNotes, f: ImportFlags): Promise<number> {
  out(formatReport(data, notes.list));
  if (f.dryRun) {
    out('dry run: nothing written');
    return 0;
  }
  if (await serverRunning(config)) {
    err(`a server is running on ${adminSocketPath(config)}: stop it before importing (its sessions and caches would not see the data)`);
    return 1;
  }
  const { writePortableData } = await import('./import-writer.ts');
  const storage = new StorageManager({ driver: config.global('storage'), dataDir: config.dataDir });
  try {
    const result = await writePortableData(storage, data, { hosts: virtualHosts(config), existing: f.replace ? 'replace' : 'skip' });
    for (const n of result.notes.list.slice(notes.list.length)) out(`${n.level}: ${n.host ?? ''}${n.user ? ` ${n.user}` : ''}: ${n.message}`);
    out(`imported ${result.written.length} account(s)${result.skipped.length ? `; ${result.skipped.length} already existed and were left alone (--replace replaces them): ${result.skipped.join(', ')}` : ''}`);
    return result.skipped.length ? 1 : 0;
  } finally {
    await storage.close();
  }
}

/** `import prosody DIR` and `import xep0227 FILE`. */
export async function importData(config: Config, rest: string[]): Promise<number> {
  const { args, flags: f } = flags(rest);
  const [kind, source] = args;
  if ((kind !== 'prosody' && kind !== 'xep0227') || !source) {
    err('usage: import prosody DIR | import xep0227 FILE  [--replace] [--dry-run]');
    return 1;
  }
  if (kind === 'prosody') {
    const { readProsodyDataDir } = await import('./import-prosody.ts');
    const { data, notes } = await readProsodyDataDir(path.resolve(source));
    return writeImport(config, data, notes, f);
  }
  const { readXep0227File } = await import('./xep0227-file.ts');
  const { data, notes } = await readXep0227File(path.resolve(source));
  return writeImport(config, data, notes, f);
}

/** `export xep0227 FILE [HOST…]`: SCRAM credentials, never a plaintext password (there is none). */
export async function exportData(config: Config, rest: string[]): Promise<number> {
  const { args } = flags(rest);
  const [kind, file, ...hosts] = args;
  if (kind !== 'xep0227' || !file) {
    err('usage: export xep0227 FILE [HOST…]');
    return 1;
  }
  const all = virtualHosts(config);
  for (const h of hosts) {
    if (!all.includes(h)) {
      err(`host '${h}' is not a virtual host of ${config.file ?? 'the config'}`);
      return 1;
    }
  }
  const target = path.resolve(file);
  if (existsSync(target)) {
    err(`${target} exists: not overwritten`);
    return 1;
  }
  const { readPortableData } = await import('./import-writer.ts');
  const { writeXep0227File } = await import('./xep0227-file.ts');
  const storage = new StorageManager({ driver: config.global('storage'), dataDir: config.dataDir });
  try {
    const { data, notes } = await readPortableData(storage, hosts.length ? hosts : all);
    await writeXep0227File(target, data);
    for (const n of notes.list) out(`${n.level}: ${n.host ?? ''}${n.user ? ` ${n.user}` : ''}: ${n.message}`);
    const users = data.hosts.reduce((n, h) => n + h.users.length, 0);
    out(`exported ${users} account(s) of ${data.hosts.map((h) => h.host).join(', ')} to ${target}`);
    return 0;
  } finally {
    await storage.close();
  }
}
