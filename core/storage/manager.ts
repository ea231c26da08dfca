// The StorageManager the server hands out: opens stores of the configured driver (core/storage/
// drivers/), one object per (kind, host, store). The contracts are in core/storage/contracts.ts.
import { CoreError } from '../util/errors.ts';
import { getLogger } from '../util/log.ts';
import type { ArchiveStore, KeyValStore, MapStore, StorageDriver, StoreKind } from './contracts.ts';
import { MemoryDriver } from './drivers/memory.ts';
import { SqliteDriver } from './drivers/sqlite.ts';

export type { ArchiveItem, ArchiveQuery, ArchiveStore, Json, KeyValStore, MapStore, StorageDriver, StoreKind } from './contracts.ts';
export { ArchiveIdNotFoundError } from './drivers/common.ts';

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
