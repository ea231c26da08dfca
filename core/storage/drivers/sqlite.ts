// SQLite storage driver (better-sqlite3): one database file `<dataDir>/cadence.sqlite`, WAL mode
// with synchronous=FULL so a resolved write is on disk. better-sqlite3 is synchronous; every method
// is `async` so results (and errors) come back as Promises.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { getLogger } from '../../util/log.ts';
import type {
  ArchiveItem, ArchiveQuery, ArchiveStore, Json, KeyValStore, MapStore, StorageDriver,
} from '../contracts.ts';
import { ArchiveIdNotFoundError, checkPurgeUser, isBare, newArchiveId, normalizeLimit } from './common.ts';

const log = getLogger('cadence:core:storage');

export const DB_FILE = 'cadence.sqlite';

/** Schema version of the tables below; bump it and add a step to MIGRATIONS when they change. */
export const SCHEMA_VERSION = 1;

/** MIGRATIONS[n] upgrades a database at version n to n + 1 (run in a transaction). */
const MIGRATIONS: Record<number, (db: Database.Database) => void> = {};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (
  "component" TEXT PRIMARY KEY NOT NULL,
  "version" INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keyval (
  "host" TEXT NOT NULL,
  "store" TEXT NOT NULL,
  "user" TEXT NOT NULL,
  "value" TEXT NOT NULL,
  PRIMARY KEY ("host", "store", "user")
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keyval_by_user ON keyval ("host", "user");
CREATE TABLE IF NOT EXISTS map (
  "host" TEXT NOT NULL,
  "store" TEXT NOT NULL,
  "user" TEXT NOT NULL,
  "key" TEXT NOT NULL,
  "value" TEXT NOT NULL,
  PRIMARY KEY ("host", "user", "store", "key")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archive (
  "sort" INTEGER PRIMARY KEY,
  "host" TEXT NOT NULL,
  "store" TEXT NOT NULL,
  "user" TEXT NOT NULL,
  "id" TEXT NOT NULL,
  "when" INTEGER NOT NULL,
  "with" TEXT,
  "payload" TEXT NOT NULL,
  UNIQUE ("host", "user", "store", "id")
);
CREATE INDEX IF NOT EXISTS archive_by_user ON archive ("host", "user", "store");
CREATE INDEX IF NOT EXISTS archive_by_with ON archive ("host", "user", "store", "with");
CREATE INDEX IF NOT EXISTS archive_by_when ON archive ("host", "user", "store", "when");
`;

/** Stored form of the null (host-wide) user. */
const NULL_USER = '';
const u = (user: string | null): string => user ?? NULL_USER;

function encode(value: Json): string {
  const text: unknown = JSON.stringify(value);
  if (typeof text !== 'string') throw new TypeError('storage: value is not JSON-serialisable');
  return text;
}

const decode = <T>(text: string): T => JSON.parse(text) as T;

interface ArchiveRow {
  id: string;
  when: number;
  with: string | null;
  payload: string;
}

function toItem(r: ArchiveRow): ArchiveItem {
  const item: ArchiveItem = { id: r.id, when: r.when, payload: r.payload };
  if (r.with !== null) item.with = r.with;
  return item;
}

type Param = string | number | null;

export class SqliteDriver implements StorageDriver {
  readonly name = 'sqlite';
  readonly path: string;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.path = join(dataDir, DB_FILE);
    // Create the file ourselves so it is private (SQLite gives -wal/-shm the same mode).
    closeSync(openSync(this.path, 'a', 0o600));
    this.#db = new Database(this.path);
    try {
      // First: other processes (CLI account commands, a running server) may hold the lock.
      this.#db.pragma('busy_timeout = 5000');
      const mode = this.#db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') log.warn('sqlite: could not enable WAL (journal_mode is %s)', String(mode));
      this.#db.pragma('synchronous = FULL');
      this.#migrate();
    } catch (err) {
      this.#db.close();
      throw err;
    }
    log('sqlite database open at %s', this.path);
  }

  #migrate(): void {
    const db = this.#db;
    db.transaction(() => {
      db.exec(SCHEMA);
      const row = db.prepare('SELECT "version" FROM schema_version WHERE "component" = ?').get('core') as
        | { version: number }
        | undefined;
      let version = row?.version;
      if (version === undefined) {
        db.prepare('INSERT INTO schema_version ("component", "version") VALUES (?, ?)').run('core', SCHEMA_VERSION);
        return;
      }
      if (version > SCHEMA_VERSION) {
        throw new Error(`storage: ${this.path} has schema version ${version}, newer than this Cadence supports (${SCHEMA_VERSION})`);
      }
      while (version < SCHEMA_VERSION) {
        const step = MIGRATIONS[version];
        if (!step) throw new Error(`storage: no migration from schema version ${version}`);
        log.info('sqlite: migrating schema from version %d to %d', version, version + 1);
        step(db);
        version++;
      }
      db.prepare('UPDATE schema_version SET "version" = ? WHERE "component" = ?').run(version, 'core');
    }).immediate();
  }

  /** Prepared statement for `sql`, cached; `pluck` statements return the first column only. */
  #stmt(sql: string, pluck = false): Database.Statement {
    const cacheKey = pluck ? `pluck:${sql}` : sql;
    let s = this.#statements.get(cacheKey);
    if (!s) {
      s = this.#db.prepare(sql);
      if (pluck) s.pluck();
      this.#statements.set(cacheKey, s);
    }
    return s;
  }

  keyval(host: string, store: string): KeyValStore {
    const stmt = (sql: string, pluck = false): Database.Statement => this.#stmt(sql, pluck);
    return {
      async get<T extends Json>(user: string | null): Promise<T | undefined> {
        const row = stmt('SELECT "value" FROM keyval WHERE "host" = ? AND "store" = ? AND "user" = ?')
          .get(host, store, u(user)) as { value: string } | undefined;
        return row ? decode<T>(row.value) : undefined;
      },
      async set(user: string | null, value: Json | undefined): Promise<void> {
        if (value === undefined) {
          stmt('DELETE FROM keyval WHERE "host" = ? AND "store" = ? AND "user" = ?').run(host, store, u(user));
        } else {
          stmt('INSERT OR REPLACE INTO keyval ("host", "store", "user", "value") VALUES (?, ?, ?, ?)')
            .run(host, store, u(user), encode(value));
        }
      },
      async users(): Promise<string[]> {
        const rows = stmt('SELECT "user" FROM keyval WHERE "host" = ? AND "store" = ? AND "user" != ? ORDER BY "user"', true)
          .all(host, store, NULL_USER) as string[];
        return rows;
      },
    };
  }

  map(host: string, store: string): MapStore {
    const stmt = (sql: string, pluck = false): Database.Statement => this.#stmt(sql, pluck);
    const put = (user: string | null, key: string, value: Json | undefined): void => {
      if (value === undefined) {
        stmt('DELETE FROM map WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" = ?').run(host, u(user), store, key);
      } else {
        stmt('INSERT OR REPLACE INTO map ("host", "user", "store", "key", "value") VALUES (?, ?, ?, ?, ?)')
          .run(host, u(user), store, key, encode(value));
      }
    };
    const putMany = this.#db.transaction((user: string | null, values: Record<string, Json | undefined>) => {
      for (const [k, v] of Object.entries(values)) put(user, k, v);
    });
    return {
      async get<T extends Json>(user: string | null, key: string): Promise<T | undefined> {
        const row = stmt('SELECT "value" FROM map WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" = ?')
          .get(host, u(user), store, key) as { value: string } | undefined;
        return row ? decode<T>(row.value) : undefined;
      },
      async set(user: string | null, key: string, value: Json | undefined): Promise<void> {
        put(user, key, value);
      },
      async getAll<T extends Json>(user: string | null): Promise<Map<string, T>> {
        const rows = stmt('SELECT "key", "value" FROM map WHERE "host" = ? AND "user" = ? AND "store" = ? ORDER BY "key"')
          .all(host, u(user), store) as { key: string; value: string }[];
        return new Map(rows.map((r) => [r.key, decode<T>(r.value)]));
      },
      async setKeys(user: string | null, values: Record<string, Json | undefined>): Promise<void> {
        putMany(user, values);
      },
      async clear(user: string | null): Promise<void> {
        stmt('DELETE FROM map WHERE "host" = ? AND "user" = ? AND "store" = ?').run(host, u(user), store);
      },
    };
  }

  archive(host: string, store: string): ArchiveStore {
    const stmt = (sql: string, pluck = false): Database.Statement => this.#stmt(sql, pluck);

    /** Position ("sort") of an id, for after/before. */
    const position = (user: string | null, id: string): number => {
      const sort = stmt('SELECT "sort" FROM archive WHERE "host" = ? AND "user" = ? AND "store" = ? AND "id" = ?', true)
        .get(host, u(user), store, id) as number | undefined;
      if (sort === undefined) throw new ArchiveIdNotFoundError(id);
      return sort;
    };

    /** WHERE clause (without limit/order) and its parameters. */
    const where = (user: string | null, q: ArchiveQuery): { sql: string; params: Param[] } => {
      const conds = ['"host" = ?', '"user" = ?', '"store" = ?'];
      const params: Param[] = [host, u(user), store];
      if (q.with !== undefined) {
        if (isBare(q.with)) {
          // Full JIDs of the bare JID are exactly the strings in [bare + '/', bare + '0').
          conds.push('("with" = ? OR ("with" >= ? AND "with" < ?))');
          params.push(q.with, `${q.with}/`, `${q.with}0`);
        } else {
          conds.push('"with" = ?');
          params.push(q.with);
        }
      }
      if (q.start !== undefined) {
        conds.push('"when" >= ?');
        params.push(q.start);
      }
      if (q.end !== undefined) {
        conds.push('"when" <= ?');
        params.push(q.end);
      }
      if (q.after !== undefined) {
        conds.push('"sort" > ?');
        params.push(position(user, q.after));
      }
      if (q.before !== undefined) {
        conds.push('"sort" < ?');
        params.push(position(user, q.before));
      }
      if (q.ids !== undefined) {
        conds.push('"id" IN (SELECT "value" FROM json_each(?))');
        params.push(JSON.stringify(q.ids));
      }
      return { sql: conds.join(' AND '), params };
    };

    const order = (q: ArchiveQuery): string => `ORDER BY "sort" ${q.reverse ? 'DESC' : 'ASC'} LIMIT ?`;

    const appendTx = this.#db.transaction((user: string | null, row: ArchiveRow) => {
      stmt('DELETE FROM archive WHERE "host" = ? AND "user" = ? AND "store" = ? AND "id" = ?').run(host, u(user), store, row.id);
      stmt('INSERT INTO archive ("host", "user", "store", "id", "when", "with", "payload") VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(host, u(user), store, row.id, row.when, row.with, row.payload);
    });

    const deleteTx = this.#db.transaction((user: string | null, q: ArchiveQuery): number => {
      const w = where(user, q);
      const limit = normalizeLimit(q.limit);
      if (limit === undefined) {
        return stmt(`DELETE FROM archive WHERE ${w.sql}`).run(...w.params).changes;
      }
      return stmt(`DELETE FROM archive WHERE "sort" IN (SELECT "sort" FROM archive WHERE ${w.sql} ${order(q)})`)
        .run(...w.params, limit ?? -1).changes;
    });

    return {
      async append(user, item): Promise<string> {
        if (typeof item.payload !== 'string') throw new TypeError('storage: archive payload must be a string');
        const id = item.id ?? newArchiveId();
        appendTx.immediate(user, { id, when: item.when ?? Date.now(), with: item.with ?? null, payload: item.payload });
        return id;
      },
      async find(user, q = {}): Promise<ArchiveItem[]> {
        const limit = normalizeLimit(q.limit);
        const w = where(user, q);
        const rows = stmt(`SELECT "id", "when", "with", "payload" FROM archive WHERE ${w.sql} ${order(q)}`)
          .all(...w.params, limit ?? -1) as ArchiveRow[];
        return rows.map(toItem);
      },
      async count(user, q = {}): Promise<number> {
        const w = where(user, q);
        return stmt(`SELECT count(*) FROM archive WHERE ${w.sql}`, true).get(...w.params) as number;
      },
      async delete(user, q = {}): Promise<number> {
        return deleteTx.immediate(user, q);
      },
    };
  }

  async purgeUser(host: string, user: string): Promise<void> {
    checkPurgeUser(user);
    this.#db.transaction(() => {
      for (const table of ['keyval', 'map', 'archive']) {
        this.#stmt(`DELETE FROM ${table} WHERE "host" = ? AND "user" = ?`).run(host, user);
      }
    }).immediate();
    log('purged user %s on %s', user, host);
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    this.#statements.clear();
    try {
      this.#db.pragma('optimize'); // refresh planner statistics where SQLite thinks it worthwhile
    } catch (err) {
      log.warn('sqlite: PRAGMA optimize failed: %s', err);
    }
    this.#db.close();
    log('sqlite database closed (%s)', this.path);
  }
}
