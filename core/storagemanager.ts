// Storage: the interfaces every driver implements, and the StorageManager the server hands out.
//
// Data is addressed by (host, store, user). `user` is an account's node (localpart), or null for
// host-wide data. Three kinds of store:
//   keyval  — one JSON value per user (e.g. 'accounts', 'vcard')
//   map     — many JSON values per user, by key (e.g. 'roster' keyed by contact JID)
//   archive — an append-only, ordered list of items per user (e.g. MAM, offline messages)
//
// Drivers are synchronous underneath (better-sqlite3 / plain Maps) but the API is Promise based so
// an asynchronous driver can be added later; a resolved write means the data is durable (sqlite).
import { CoreError } from './errors.ts';
import { getLogger } from './log.ts';
import { MemoryDriver, ArchiveIdNotFoundError } from './storage/memory.ts';
import { SqliteDriver } from './storage/sqlite.ts';

export { ArchiveIdNotFoundError };

export type StoreKind = 'keyval' | 'map' | 'archive';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface KeyValStore {
  get<T extends Json>(user: string | null): Promise<T | undefined>;
  /** `undefined` deletes the value. */
  set(user: string | null, value: Json | undefined): Promise<void>;
  /** Users (non-null) that have a value in this store, sorted. */
  users(): Promise<string[]>;
}

export interface MapStore {
  get<T extends Json>(user: string | null, key: string): Promise<T | undefined>;
  /** `undefined` deletes the key. */
  set(user: string | null, key: string, value: Json | undefined): Promise<void>;
  getAll<T extends Json>(user: string | null): Promise<Map<string, T>>;
  /** Sets (or, for `undefined`, deletes) several keys atomically: all or nothing. */
  setKeys(user: string | null, values: Record<string, Json | undefined>): Promise<void>;
  /** Removes every key of the user in this store. */
  clear(user: string | null): Promise<void>;
}

export interface ArchiveItem {
  id: string;
  /** ms since the epoch */
  when: number;
  with?: string;
  /** serialized XML or JSON text */
  payload: string;
}

/**
 * Filters for find/count/delete. All given fields must match.
 *  - `with`: equal to the item's `with`; a bare JID (no '/') also matches items whose `with` is
 *    a full JID of that bare JID.
 *  - `start`/`end`: inclusive bounds on `when`.
 *  - `after`/`before`: exclusive bounds by item id (in archive order). An id that is not in the
 *    archive makes the call reject with ArchiveIdNotFoundError (a StanzaError item-not-found).
 *  - `ids`: only these ids (an empty array matches nothing).
 *  - `reverse`: newest first. `limit`: at most this many, taken after ordering — so
 *    `{ before: x, limit: 10, reverse: true }` is the page of 10 just before x, newest first.
 * `count` ignores `limit` and `reverse` (it is the size of the whole result set, as RSM wants);
 * `delete` honours them (`{ limit: 100 }` deletes the 100 oldest matching items).
 */
export interface ArchiveQuery {
  with?: string;
  start?: number;
  end?: number;
  after?: string;
  before?: string;
  limit?: number;
  reverse?: boolean;
  ids?: string[];
}

export interface ArchiveStore {
  /**
   * Appends an item and resolves to its id (generated when not given: unique, and in
   * lexicographic order of generation within a process). Appending with an id already in the
   * archive replaces that item (the new one goes to the end). `when` defaults to now.
   */
  append(user: string | null, item: { when?: number; with?: string; payload: string; id?: string }): Promise<string>;
  /** Items in archive (insertion) order, oldest first unless `reverse`. */
  find(user: string | null, q?: ArchiveQuery): Promise<ArchiveItem[]>;
  count(user: string | null, q?: ArchiveQuery): Promise<number>;
  /** Deletes the matching items and resolves to how many were deleted. */
  delete(user: string | null, q?: ArchiveQuery): Promise<number>;
}

export interface StorageDriver {
  readonly name: string;
  keyval(host: string, store: string): KeyValStore;
  map(host: string, store: string): MapStore;
  archive(host: string, store: string): ArchiveStore;
  /** Removes all data of `user` on `host`, in every store of every kind. */
  purgeUser(host: string, user: string): Promise<void>;
  close(): Promise<void>;
}

export interface StorageConfig {
  driver: 'sqlite' | 'memory';
  /** Directory of the sqlite database file (`cadence.sqlite`); unused by the memory driver. */
  dataDir: string;
}

const log = getLogger('cadence:core:storage');

export class StorageManager {
  readonly driverName: string;
  readonly #driver: StorageDriver;

  constructor(cfg: StorageConfig) {
    switch (cfg.driver) {
      case 'memory':
        this.#driver = new MemoryDriver();
        break;
      case 'sqlite':
        if (typeof cfg.dataDir !== 'string' || cfg.dataDir === '') {
          throw new CoreError('CONFIG_INVALID', 'storage: the sqlite driver needs a dataDir');
        }
        this.#driver = new SqliteDriver(cfg.dataDir);
        break;
      default:
        throw new CoreError('CONFIG_INVALID', `storage: unknown driver ${JSON.stringify(cfg.driver)} (expected "sqlite" or "memory")`);
    }
    this.driverName = this.#driver.name;
    log('storage ready (driver %s)', this.driverName);
  }

  // Store objects are made once per (kind, host, store): drivers prepare statements for them.
  readonly #stores = new Map<string, KeyValStore | MapStore | ArchiveStore>();

  #open<T extends KeyValStore | MapStore | ArchiveStore>(kind: StoreKind, host: string, store: string, make: () => T): T {
    const key = `${kind}\u0000${host}\u0000${store}`;
    let s = this.#stores.get(key) as T | undefined;
    if (!s) this.#stores.set(key, (s = make()));
    return s;
  }

  keyval(host: string, store: string): KeyValStore {
    return this.#open('keyval', host, store, () => this.#driver.keyval(host, store));
  }

  map(host: string, store: string): MapStore {
    return this.#open('map', host, store, () => this.#driver.map(host, store));
  }

  archive(host: string, store: string): ArchiveStore {
    return this.#open('archive', host, store, () => this.#driver.archive(host, store));
  }

  purgeUser(host: string, user: string): Promise<void> {
    return this.#driver.purgeUser(host, user);
  }

  close(): Promise<void> {
    return this.#driver.close();
  }
}
