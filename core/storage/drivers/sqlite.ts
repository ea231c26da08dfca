// SQLite storage driver (better-sqlite3): one database file `<dataDir>/cadence.sqlite`, WAL mode
// with synchronous=FULL so a resolved write is on disk (in WAL mode FULL syncs the log at every
// commit; NORMAL would only sync at checkpoints, so a power cut could lose acknowledged writes).
// better-sqlite3 is synchronous; every method is `async` so results (and errors) come back as
// Promises.
//
// Archive appends are group-committed: the appends of one event-loop turn (under load: of up to
// ARCHIVE_COMMIT_INTERVAL_MS, see there), of any archive store, go into one transaction — one fsync for all
// of them instead of one each (MAM archives every message twice). Each append's promise resolves
// only once its batch is committed. A batch is written to archive_pending (one B-tree, appended
// at its end), and the pending rows move into `archive` and its indexes in batches of thousands
// (#movePending), which costs each archive's index pages once per move instead of once per
// append. Reads, deletes and purges move the pending rows first, so they see every append made
// before them; a crash leaves them pending, and the next open moves them.
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
export const SCHEMA_VERSION = 4;

// The bare part of an archive item's `with` (everything before the first '/'), as a virtual
// generated column: indexed, so a query by bare JID is an index range in archive order.
const WITH_BARE = `"with_bare" TEXT GENERATED ALWAYS AS (CASE WHEN instr("with", '/') > 0 THEN substr("with", 1, instr("with", '/') - 1) ELSE "with" END) VIRTUAL`;

// archive_count keeps, per archive, the number of items (with_bare = '') and per bare `with`
// (with_bare = that JID), so counting a whole archive or one contact's part is one row read;
// and, on the '' row, the largest `when` so far and whether an item ever came with a `when`
// smaller than an earlier one. While that never happened, `when` grows with archive order and a
// start/end query becomes a range of positions (plan() below). The driver UPDATEs only an archive
// row's payload (replacePayload); append replaces by DELETE + INSERT, so the two triggers keep
// the counts exact.
const ARCHIVE_COUNT = `
CREATE TABLE IF NOT EXISTS archive_count (
  "host" TEXT NOT NULL,
  "user" TEXT NOT NULL,
  "store" TEXT NOT NULL,
  "with_bare" TEXT NOT NULL,
  "n" INTEGER NOT NULL,
  "max_when" INTEGER,
  "disordered" INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY ("host", "user", "store", "with_bare")
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS archive_count_insert AFTER INSERT ON archive BEGIN
  INSERT INTO archive_count ("host", "user", "store", "with_bare", "n", "max_when")
    VALUES (NEW."host", NEW."user", NEW."store", '', 1, NEW."when")
    ON CONFLICT DO UPDATE SET "n" = "n" + 1, "disordered" = "disordered" OR excluded."max_when" < "max_when",
      "max_when" = max("max_when", excluded."max_when");
  INSERT INTO archive_count ("host", "user", "store", "with_bare", "n")
    SELECT NEW."host", NEW."user", NEW."store", NEW."with_bare", 1 WHERE NEW."with_bare" <> ''
    ON CONFLICT DO UPDATE SET "n" = "n" + 1;
END;
CREATE TRIGGER IF NOT EXISTS archive_count_delete AFTER DELETE ON archive BEGIN
  UPDATE archive_count SET "n" = "n" - 1
    WHERE "host" = OLD."host" AND "user" = OLD."user" AND "store" = OLD."store" AND "with_bare" IN ('', OLD."with_bare");
  DELETE FROM archive_count
    WHERE "host" = OLD."host" AND "user" = OLD."user" AND "store" = OLD."store" AND "with_bare" IN ('', OLD."with_bare") AND "n" <= 0;
END;
`;

// archive_pending: appends land here first (one row at the end of one B-tree, whatever the
// archive), and move into `archive` in large batches (#movePending): a batch touches each
// archive's index pages once for many of its items, where appending straight into `archive`
// touched them for every item. A row here is as durable as one in `archive`; every read, delete
// and purge moves the pending rows first, so callers never see the difference. `replace`: the
// caller gave the id (an item with that id is replaced when the row moves).
const ARCHIVE_PENDING = `
CREATE TABLE IF NOT EXISTS archive_pending (
  "seq" INTEGER PRIMARY KEY,
  "host" TEXT NOT NULL,
  "store" TEXT NOT NULL,
  "user" TEXT NOT NULL,
  "id" TEXT NOT NULL,
  "when" INTEGER NOT NULL,
  "with" TEXT,
  "payload" TEXT NOT NULL,
  "replace" INTEGER NOT NULL
);
`;

/** MIGRATIONS[n] upgrades a database at version n to n + 1 (run in a transaction). */
const MIGRATIONS: Record<number, (db: Database.Database) => void> = {
  // 1 → 2: index by bare `with` instead of `with` (a bare-JID query was a scan), archive counts.
  1: (db) => {
    db.exec(`
      ALTER TABLE archive ADD COLUMN ${WITH_BARE};
      DROP INDEX IF EXISTS archive_by_with;
      CREATE INDEX archive_by_with_bare ON archive ("host", "user", "store", "with_bare");
      ${ARCHIVE_COUNT}
      INSERT INTO archive_count ("host", "user", "store", "with_bare", "n", "max_when", "disordered")
        SELECT "host", "user", "store", '', count(*), max("when"), max(coalesce("back", 0)) FROM (
          SELECT "host", "user", "store", "when", "when" < max("when") OVER (
            PARTITION BY "host", "user", "store" ORDER BY "sort" ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS "back"
          FROM archive)
        GROUP BY "host", "user", "store";
      INSERT INTO archive_count ("host", "user", "store", "with_bare", "n")
        SELECT "host", "user", "store", "with_bare", count(*) FROM archive WHERE "with_bare" <> ''
        GROUP BY "host", "user", "store", "with_bare";
    `);
  },
  // 2 → 3: no index by `when` (one B-tree less to update per append; time bounds are found by a
  // binary search over positions, see timePosition).
  2: (db) => {
    db.exec('DROP INDEX IF EXISTS archive_by_when;');
  },
  // 3 → 4: appends are staged in archive_pending and moved into archive in batches.
  3: (db) => {
    db.exec(ARCHIVE_PENDING);
  },
};

const VERSION_TABLE = `
CREATE TABLE IF NOT EXISTS schema_version (
  "component" TEXT PRIMARY KEY NOT NULL,
  "version" INTEGER NOT NULL
);
`;

const SCHEMA = `
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
  ${WITH_BARE},
  UNIQUE ("host", "user", "store", "id")
);
CREATE INDEX IF NOT EXISTS archive_by_user ON archive ("host", "user", "store");
CREATE INDEX IF NOT EXISTS archive_by_with_bare ON archive ("host", "user", "store", "with_bare");
${ARCHIVE_COUNT}
${ARCHIVE_PENDING}
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

/**
 * Under load (the last group commit had at least ARCHIVE_BUSY_BATCH appends), group commits are
 * at least this far apart (from the end of one to the start of the next), so appends gather in
 * fewer, larger transactions (each has a fixed cost: begin, commit, fsync). Otherwise an append
 * is committed right after its turn: one user's messages (two appends each, one after the
 * other) wait for no timer.
 */
export const ARCHIVE_COMMIT_INTERVAL_MS = 20;
export const ARCHIVE_BUSY_BATCH = 64;

/** Pending archive rows move into `archive` once this many are pending… */
export const ARCHIVE_MOVE_ROWS = 4000;
/** …or this long after the first of them was committed, whichever comes first. */
export const ARCHIVE_MOVE_AFTER_MS = 1000;

/** An archive append waiting for the next group commit. */
interface PendingAppend {
  write: () => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SqliteDriver implements StorageDriver {
  readonly name = 'sqlite';
  readonly path: string;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  /** Archive appends of the current turn, in call order (see the top of the file). */
  #appends: PendingAppend[] = [];
  /** The scheduled group commit, if one is: right after this turn, or after a while. */
  #commitImmediate: NodeJS.Immediate | undefined;
  #commitTimer: NodeJS.Timeout | undefined;
  /** When the last group commit ended (performance.now()), and how many appends it had. */
  #lastCommitAt = -Infinity;
  #lastBatchSize = 0;
  /** Runs one append in a savepoint of the batch: its failure undoes it alone. */
  readonly #savepoint: (write: () => void) => void;
  /** Rows this connection committed to archive_pending since the last move. */
  #pendingRows = 0;
  /** The scheduled move of the pending rows, if one is: after a while, or (enough rows) now. */
  #moveTimer: NodeJS.Timeout | undefined;
  #moveImmediate: NodeJS.Immediate | undefined;

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
    this.#savepoint = this.#db.transaction((write: () => void) => write());
    try {
      this.#movePending(); // what a previous run (or another process) left pending
    } catch (err) {
      log.error('sqlite: could not move pending archive rows at open (they stay pending): %s', err);
    }
    log('sqlite database open at %s', this.path);
  }

  /** Queues an archive write for the group commit; resolves when it is committed. */
  #queueAppend(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#appends.push({ write, resolve, reject });
      if (this.#commitTimer === undefined && this.#commitImmediate === undefined) {
        const wait = this.#lastBatchSize < ARCHIVE_BUSY_BATCH ? 0 : this.#lastCommitAt + ARCHIVE_COMMIT_INTERVAL_MS - performance.now();
        if (wait > 0) this.#commitTimer = setTimeout(() => this.#commitAppends(), wait);
        else this.#commitImmediate = setImmediate(() => this.#commitAppends());
      }
    });
  }

  /**
   * Writes every queued append in one IMMEDIATE transaction, in call order. An append that fails
   * (its savepoint rolled back) rejects its caller alone; when the transaction cannot begin or
   * commit, or SQLite abandoned it, nothing of the batch is written and every caller of the batch
   * is rejected. Appends queued later form the next batch.
   */
  #commitAppends(): void {
    clearTimeout(this.#commitTimer);
    clearImmediate(this.#commitImmediate);
    this.#commitTimer = undefined;
    this.#commitImmediate = undefined;
    const batch = this.#appends;
    if (batch.length === 0) return;
    this.#appends = [];
    try {
      this.#writeBatch(batch);
    } finally {
      this.#lastCommitAt = performance.now();
      this.#lastBatchSize = batch.length;
    }
  }

  #writeBatch(batch: PendingAppend[]): void {
    // Fast path: the whole batch in one transaction, no savepoint. (A savepoint makes SQLite copy
    // every page it changes to a sub-journal first: ~6 more page writes per append, 2–3× the CPU.)
    let writing = false;
    try {
      this.#db.transaction(() => {
        writing = true;
        for (const p of batch) p.write();
        writing = false;
      }).immediate();
      this.#pendingWritten(batch.length);
      for (const p of batch) p.resolve();
      return;
    } catch (err) {
      if (!writing) {
        // BEGIN or COMMIT failed (busy, I/O, full disk): nothing of the batch is written.
        log.error('sqlite: archive batch of %d append(s) not written: %s', batch.length, err);
        for (const p of batch) p.reject(err);
        return;
      }
    }
    // An append failed, and the transaction was rolled back: again, each append in its own
    // savepoint, to find which; the others are written.
    const failed = new Map<PendingAppend, unknown>();
    try {
      this.#db.transaction(() => {
        for (const p of batch) {
          try {
            this.#savepoint(p.write);
          } catch (err) {
            // Some errors (I/O, full disk) make SQLite roll back the whole transaction.
            if (!this.#db.inTransaction) throw err;
            failed.set(p, err);
          }
        }
      }).immediate();
    } catch (err) {
      log.error('sqlite: archive batch of %d append(s) not written: %s', batch.length, err);
      for (const p of batch) p.reject(err);
      return;
    }
    log.warn('sqlite: %d of %d archive append(s) failed', failed.size, batch.length);
    this.#pendingWritten(batch.length - failed.size);
    for (const p of batch) {
      if (failed.has(p)) p.reject(failed.get(p));
      else p.resolve();
    }
  }

  /** `n` more rows committed to archive_pending: schedules their move. */
  #pendingWritten(n: number): void {
    this.#pendingRows += n;
    if (this.#pendingRows >= ARCHIVE_MOVE_ROWS) {
      // Soon, but after the callers of this batch went on (their deliveries come first).
      this.#moveImmediate ??= setImmediate(() => this.#moveSoon());
    } else if (this.#moveTimer === undefined && this.#moveImmediate === undefined && this.#pendingRows > 0) {
      this.#moveTimer = setTimeout(() => this.#moveSoon(), ARCHIVE_MOVE_AFTER_MS);
      this.#moveTimer.unref(); // the rows are durable where they are; the next open moves them
    }
  }

  #moveSoon(): void {
    if (!this.#db.open) return;
    try {
      this.#movePending();
    } catch (err) {
      // They stay pending (durable, and still found: every read moves them first); retry later.
      log.error('sqlite: could not move %d pending archive row(s): %s', this.#pendingRows, err);
      this.#moveTimer = setTimeout(() => this.#moveSoon(), ARCHIVE_MOVE_AFTER_MS);
      this.#moveTimer.unref();
    }
  }

  /**
   * Commits the queued appends, then moves every row of archive_pending (this process's and any
   * other's) into `archive` in one transaction, in append order: an item whose id was given
   * replaces the item with that id (in the archive, or pending before it). Throws when the
   * rows cannot be moved (they stay pending). Runs before every archive read or delete.
   */
  #movePending(): void {
    this.#commitAppends();
    clearTimeout(this.#moveTimer);
    clearImmediate(this.#moveImmediate);
    this.#moveTimer = undefined;
    this.#moveImmediate = undefined;
    if (this.#pendingRows === 0 && !this.#stmt('SELECT EXISTS (SELECT 1 FROM archive_pending)', true).get()) return;
    const moved = this.#db.transaction((): number => {
      const replacing = this.#stmt('SELECT "seq", "host", "store", "user", "id" FROM archive_pending WHERE "replace" <> 0 ORDER BY "seq"')
        .all() as { seq: number; host: string; store: string; user: string; id: string }[];
      for (const r of replacing) {
        this.#stmt(`DELETE FROM archive WHERE "host" = ? AND "user" = ? AND "store" = ? AND "id" = ?`).run(r.host, r.user, r.store, r.id);
        this.#stmt(`DELETE FROM archive_pending WHERE "seq" < ? AND "host" = ? AND "user" = ? AND "store" = ? AND "id" = ?`)
          .run(r.seq, r.host, r.user, r.store, r.id);
      }
      const MOVE = `INSERT INTO archive ("host", "store", "user", "id", "when", "with", "payload")
        SELECT "host", "store", "user", "id", "when", "with", "payload" FROM archive_pending`;
      try {
        const n = this.#stmt(`${MOVE} ORDER BY "seq"`).run().changes;
        this.#stmt('DELETE FROM archive_pending').run();
        return n;
      } catch (err) {
        if (!this.#db.inTransaction) throw err;
        log.warn('sqlite: moving pending archive rows failed (%s); moving them one by one', err);
      }
      // A row failed (the statement alone was undone): each row in its own savepoint; one that
      // cannot move stays pending (never dropped) and is reported.
      let n = 0;
      for (const seq of this.#stmt('SELECT "seq" FROM archive_pending ORDER BY "seq"', true).all() as number[]) {
        try {
          this.#savepoint(() => {
            this.#stmt(`${MOVE} WHERE "seq" = ?`).run(seq);
            this.#stmt('DELETE FROM archive_pending WHERE "seq" = ?').run(seq);
          });
          n++;
        } catch (err) {
          if (!this.#db.inTransaction) throw err;
          log.error('sqlite: pending archive row %d cannot move into the archive (it stays pending): %s', seq, err);
        }
      }
      return n;
    }).immediate();
    this.#pendingRows = 0;
    if (moved) log('sqlite: moved %d pending archive row(s)', moved);
  }

  #migrate(): void {
    const db = this.#db;
    db.transaction(() => {
      db.exec(VERSION_TABLE);
      const row = db.prepare('SELECT "version" FROM schema_version WHERE "component" = ?').get('core') as
        | { version: number }
        | undefined;
      let version = row?.version;
      if (version === undefined) {
        db.exec(SCHEMA);
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
      db.exec(SCHEMA); // creates whatever a database of this version may lack (all IF NOT EXISTS)
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
    const OWNER = '"host" = ? AND "user" = ? AND "store" = ?';

    /** Position ("sort") of an id, for after/before. */
    const position = (user: string | null, id: string): number => {
      const sort = stmt(`SELECT "sort" FROM archive WHERE ${OWNER} AND "id" = ?`, true)
        .get(host, u(user), store, id) as number | undefined;
      if (sort === undefined) throw new ArchiveIdNotFoundError(id);
      return sort;
    };

    /** The archive's row in archive_count (with_bare = ''), if it has items. */
    const totals = (user: string | null): { n: number; disordered: number } | undefined =>
      stmt(`SELECT "n", "disordered" FROM archive_count WHERE ${OWNER} AND "with_bare" = ''`)
        .get(host, u(user), store) as { n: number; disordered: number } | undefined;

    // The owner's item at the first position >= p, or at the last position <= p.
    const atOrAfter = stmt(`SELECT "sort", "when" FROM archive WHERE ${OWNER} AND "sort" >= ? ORDER BY "sort" ASC LIMIT 1`);
    const atOrBefore = stmt(`SELECT "sort", "when" FROM archive WHERE ${OWNER} AND "sort" <= ? ORDER BY "sort" DESC LIMIT 1`);
    type At = { sort: number; when: number } | undefined;

    /**
     * First (or last) position whose `when` is >= (or <=) t, in an archive whose `when` never went
     * back (so `when` grows with position): a binary search over the range of positions, each
     * step one lookup in the owner's index (about 40 steps at most; no index by `when` to update
     * on every append).
     */
    const timePosition = (user: string | null, t: number, side: 'start' | 'end'): number | undefined => {
      const after = (p: number) => atOrAfter.get(host, u(user), store, p) as At;
      const before = (p: number) => atOrBefore.get(host, u(user), store, p) as At;
      const first = after(Number.MIN_SAFE_INTEGER);
      const last = before(Number.MAX_SAFE_INTEGER);
      if (!first || !last) return undefined;
      let a = first.sort;
      let b = last.sort;
      if (side === 'start') {
        if (last.when < t) return undefined;
        let found = last.sort;
        while (a <= b) {
          const mid = Math.floor((a + b) / 2);
          const r = after(mid);
          if (!r || r.sort > b) b = mid - 1; // nothing in [mid, b]
          else if (r.when >= t) {
            found = r.sort; // nothing in [mid, r.sort) either: a better one is below mid
            b = mid - 1;
          } else a = r.sort + 1;
        }
        return found;
      }
      if (first.when > t) return undefined;
      let found = first.sort;
      while (a <= b) {
        const mid = Math.ceil((a + b) / 2);
        const r = before(mid);
        if (!r || r.sort < a) a = mid + 1; // nothing in [a, mid]
        else if (r.when <= t) {
          found = r.sort;
          a = mid + 1;
        } else b = r.sort - 1;
      }
      return found;
    };

    /**
     * How to select q's items: the owner and `with` conditions (`base`), an inclusive range of
     * positions (`lo`..`hi`) from after/before and — while the archive's `when` has never gone
     * back — from start/end, and what else must be checked row by row (`rest`). `countKey` is
     * the archive_count row that counts `base` when there is no `rest`.
     */
    const plan = (user: string | null, q: ArchiveQuery) => {
      const base = [OWNER];
      const baseParams: Param[] = [host, u(user), store];
      const rest: string[] = [];
      const restParams: Param[] = [];
      let countKey: string | undefined = '';
      if (q.with !== undefined) {
        if (isBare(q.with)) {
          base.push('"with_bare" = ?');
          baseParams.push(q.with);
          countKey = q.with === '' ? undefined : q.with;
        } else {
          base.push('"with_bare" = ?');
          baseParams.push(q.with.slice(0, q.with.indexOf('/')));
          rest.push('"with" = ?');
          restParams.push(q.with);
          countKey = undefined;
        }
      }
      let lo = -Infinity;
      let hi = Infinity;
      if (q.after !== undefined) lo = position(user, q.after) + 1;
      if (q.before !== undefined) hi = position(user, q.before) - 1;
      if (q.start !== undefined || q.end !== undefined) {
        const t = totals(user);
        if (!t) {
          hi = -Infinity; // empty archive
        } else if (!t.disordered) {
          if (q.start !== undefined) lo = Math.max(lo, timePosition(user, q.start, 'start') ?? Infinity);
          if (q.end !== undefined) hi = Math.min(hi, timePosition(user, q.end, 'end') ?? -Infinity);
        } else {
          if (q.start !== undefined) {
            rest.push('"when" >= ?');
            restParams.push(q.start);
          }
          if (q.end !== undefined) {
            rest.push('"when" <= ?');
            restParams.push(q.end);
          }
          countKey = undefined;
        }
      }
      if (q.ids !== undefined) {
        // By position: a handful of rowid lookups (ids not in the archive match nothing).
        const found: number[] = [];
        for (const id of new Set(q.ids)) {
          const sort = stmt(`SELECT "sort" FROM archive WHERE ${OWNER} AND "id" = ?`, true).get(host, u(user), store, id) as number | undefined;
          if (sort !== undefined) found.push(sort);
        }
        rest.push('"sort" IN (SELECT "value" FROM json_each(?))');
        restParams.push(JSON.stringify(found));
        countKey = undefined;
      }
      return { base, baseParams, rest, restParams, lo, hi, countKey, empty: lo > hi };
    };
    type Plan = ReturnType<typeof plan>;

    /** WHERE clause of a plan (with the position range narrowed to [lo, hi]) and its parameters. */
    const where = (p: Plan, lo = p.lo, hi = p.hi): { sql: string; params: Param[] } => {
      const conds = [...p.base];
      const params = [...p.baseParams];
      if (lo > -Infinity) {
        conds.push('"sort" >= ?');
        params.push(lo);
      }
      if (hi < Infinity) {
        conds.push('"sort" <= ?');
        params.push(hi);
      }
      return { sql: [...conds, ...p.rest].join(' AND '), params: [...params, ...p.restParams] };
    };

    const countWhere = (w: { sql: string; params: Param[] }): number =>
      stmt(`SELECT count(*) FROM archive WHERE ${w.sql}`, true).get(...w.params) as number;

    /**
     * count(): from archive_count when nothing but `with` (bare) filters; with a position range
     * as well, either the rows in the range or the counted total minus the rows outside it,
     * whichever side looks smaller (positions are global, so this is a guess; both are exact).
     */
    const count = (p: Plan): number => {
      if (p.empty) return 0;
      if (p.countKey === undefined) return countWhere(where(p));
      const total = (stmt(`SELECT "n" FROM archive_count WHERE ${OWNER} AND "with_bare" = ?`, true)
        .get(host, p.baseParams[1]!, store, p.countKey) as number | undefined) ?? 0;
      if (total === 0 || (p.lo === -Infinity && p.hi === Infinity)) return total;
      const b = where(p, -Infinity, Infinity);
      const first = stmt(`SELECT "sort" FROM archive WHERE ${b.sql} ORDER BY "sort" ASC LIMIT 1`, true).get(...b.params) as number;
      const last = stmt(`SELECT "sort" FROM archive WHERE ${b.sql} ORDER BY "sort" DESC LIMIT 1`, true).get(...b.params) as number;
      const lo = Math.max(p.lo, first);
      const hi = Math.min(p.hi, last);
      if (lo > hi) return 0;
      if (hi - lo <= lo - first + (last - hi)) return countWhere(where(p, lo, hi));
      const below = lo > first ? countWhere(where(p, -Infinity, lo - 1)) : 0;
      const above = hi < last ? countWhere(where(p, hi + 1, Infinity)) : 0;
      return total - below - above;
    };

    const order = (q: ArchiveQuery): string => `ORDER BY "sort" ${q.reverse ? 'DESC' : 'ASC'} LIMIT ?`;

    // Runs inside the group commit's transaction (#commitAppends).
    // `replace`: the caller gave the id, which may be in the archive already; a generated id is
    // new (a clash would fail the INSERT on the unique index, rejecting that append alone).
    const insert = stmt('INSERT INTO archive_pending ("host", "store", "user", "id", "when", "with", "payload", "replace") VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const write = (user: string | null, row: ArchiveRow, replace: boolean): void => {
      insert.run(host, store, u(user), row.id, row.when, row.with, row.payload, replace ? 1 : 0);
    };
    const commitPending = (): void => this.#movePending();
    const queueAppend = (w: () => void): Promise<void> => this.#queueAppend(w);

    // Reads run in one (deferred) transaction, so the positions and counts they look up first
    // and the rows they return come from the same snapshot.
    const findTx = this.#db.transaction((user: string | null, q: ArchiveQuery): ArchiveRow[] => {
      const limit = normalizeLimit(q.limit);
      const p = plan(user, q);
      if (p.empty || limit === 0) return [];
      const w = where(p);
      return stmt(`SELECT "id", "when", "with", "payload" FROM archive WHERE ${w.sql} ${order(q)}`)
        .all(...w.params, limit ?? -1) as ArchiveRow[];
    });

    const countTx = this.#db.transaction((user: string | null, q: ArchiveQuery): number => count(plan(user, q)));

    const deleteTx = this.#db.transaction((user: string | null, q: ArchiveQuery): number => {
      const limit = normalizeLimit(q.limit);
      const p = plan(user, q);
      if (p.empty) return 0;
      const w = where(p);
      if (limit === undefined) {
        return stmt(`DELETE FROM archive WHERE ${w.sql}`).run(...w.params).changes;
      }
      return stmt(`DELETE FROM archive WHERE "sort" IN (SELECT "sort" FROM archive WHERE ${w.sql} ${order(q)})`)
        .run(...w.params, limit).changes;
    });

    return {
      async append(user, item): Promise<string> {
        if (typeof item.payload !== 'string') throw new TypeError('storage: archive payload must be a string');
        const id = item.id ?? newArchiveId();
        const row: ArchiveRow = { id, when: item.when ?? Date.now(), with: item.with ?? null, payload: item.payload };
        await queueAppend(() => write(user, row, item.id !== undefined));
        return id;
      },
      async find(user, q = {}): Promise<ArchiveItem[]> {
        commitPending();
        return findTx(user, q).map(toItem);
      },
      async count(user, q = {}): Promise<number> {
        commitPending();
        return countTx(user, q);
      },
      async delete(user, q = {}): Promise<number> {
        commitPending();
        return deleteTx.immediate(user, q);
      },
      async replacePayload(user, id, payload): Promise<boolean> {
        if (typeof payload !== 'string') throw new TypeError('storage: archive payload must be a string');
        commitPending(); // the item may still be pending
        return stmt(`UPDATE archive SET "payload" = ? WHERE ${OWNER} AND "id" = ?`).run(payload, host, u(user), store, id).changes > 0;
      },
    };
  }

  async purgeUser(host: string, user: string): Promise<void> {
    checkPurgeUser(user);
    this.#movePending(); // nothing queued or pending for the user is written after the purge
    this.#db.transaction(() => {
      for (const table of ['keyval', 'map', 'archive']) {
        this.#stmt(`DELETE FROM ${table} WHERE "host" = ? AND "user" = ?`).run(host, user);
      }
    }).immediate();
    log('purged user %s on %s', user, host);
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    try {
      this.#movePending();
    } catch (err) {
      log.error('sqlite: pending archive rows not moved at close (the next open moves them): %s', err);
    }
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
