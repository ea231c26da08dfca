// In-memory storage driver (tests, ephemeral servers). Same semantics as the sqlite driver; values
// are deep-copied on the way in and out so callers never share objects with the store.
import { getLogger } from '../../util/log.ts';
import type {
  ArchiveItem, ArchiveQuery, ArchiveStore, Json, KeyValStore, MapStore, StorageDriver,
} from '../contracts.ts';
import { ArchiveIdNotFoundError, checkPurgeUser, isBare, newArchiveId, normalizeLimit } from './common.ts';

const log = getLogger('cadence:core:storage');

// ---------------------------------------------------------------------------------------------
// Memory driver

/** Stored form of the null (host-wide) user, as in the sqlite driver. */
const NULL_USER = '';
const u = (user: string | null): string => user ?? NULL_USER;

interface Entry {
  id: string;
  when: number;
  with: string | undefined;
  payload: string;
}

/** host → store → user → data */
type Tree<V> = Map<string, Map<string, Map<string, V>>>;

function bucket<V>(tree: Tree<V>, host: string, store: string, create: true): Map<string, V>;
function bucket<V>(tree: Tree<V>, host: string, store: string, create: false): Map<string, V> | undefined;
function bucket<V>(tree: Tree<V>, host: string, store: string, create: boolean): Map<string, V> | undefined {
  let stores = tree.get(host);
  if (!stores) {
    if (!create) return undefined;
    stores = new Map();
    tree.set(host, stores);
  }
  let users = stores.get(store);
  if (!users && create) {
    users = new Map();
    stores.set(store, users);
  }
  return users;
}

const clone = <T>(v: T): T => structuredClone(v);

function toItem(e: Entry): ArchiveItem {
  const item: ArchiveItem = { id: e.id, when: e.when, payload: e.payload };
  if (e.with !== undefined) item.with = e.with;
  return item;
}

/** Entries matching q, in result order, limit applied unless `ignoreLimit`. */
function select(list: Entry[], q: ArchiveQuery, ignoreLimit = false): Entry[] {
  let lo = 0;
  let hi = list.length;
  if (q.after !== undefined) {
    const i = list.findIndex((e) => e.id === q.after);
    if (i < 0) throw new ArchiveIdNotFoundError(q.after);
    lo = i + 1;
  }
  if (q.before !== undefined) {
    const i = list.findIndex((e) => e.id === q.before);
    if (i < 0) throw new ArchiveIdNotFoundError(q.before);
    hi = i;
  }
  const limit = ignoreLimit ? undefined : normalizeLimit(q.limit);
  const w = q.with;
  const prefix = w !== undefined && isBare(w) ? `${w}/` : undefined;
  const ids = q.ids ? new Set(q.ids) : undefined;
  const out: Entry[] = [];
  if (lo >= hi || limit === 0) return out;
  const step = q.reverse ? -1 : 1;
  for (let i = q.reverse ? hi - 1 : lo; i >= lo && i < hi; i += step) {
    const e = list[i]!;
    if (w !== undefined && e.with !== w && !(prefix !== undefined && e.with?.startsWith(prefix))) continue;
    if (q.start !== undefined && e.when < q.start) continue;
    if (q.end !== undefined && e.when > q.end) continue;
    if (ids && !ids.has(e.id)) continue;
    out.push(e);
    if (limit !== undefined && out.length >= limit) break;
  }
  return out;
}

export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  readonly #keyval: Tree<Json> = new Map();
  readonly #map: Tree<Map<string, Json>> = new Map();
  readonly #archive: Tree<Entry[]> = new Map();
  #closed = false;

  #check(): void {
    if (this.#closed) throw new Error('storage: the memory driver is closed');
  }

  keyval(host: string, store: string): KeyValStore {
    const tree = this.#keyval;
    const check = (): void => this.#check();
    return {
      async get<T extends Json>(user: string | null): Promise<T | undefined> {
        check();
        const v = bucket(tree, host, store, false)?.get(u(user));
        return v === undefined ? undefined : (clone(v) as T);
      },
      async set(user: string | null, value: Json | undefined): Promise<void> {
        check();
        if (value === undefined) {
          bucket(tree, host, store, false)?.delete(u(user));
        } else {
          const copy = clone(value);
          bucket(tree, host, store, true).set(u(user), copy);
        }
      },
      async users(): Promise<string[]> {
        check();
        const users = bucket(tree, host, store, false);
        return users ? [...users.keys()].filter((k) => k !== NULL_USER).sort() : [];
      },
    };
  }

  map(host: string, store: string): MapStore {
    const tree = this.#map;
    const check = (): void => this.#check();
    const apply = (user: string | null, values: Record<string, Json | undefined>): void => {
      // Copy everything first, so a value that cannot be copied changes nothing.
      const copies = Object.entries(values).map(([k, v]) => [k, v === undefined ? undefined : clone(v)] as const);
      const users = bucket(tree, host, store, true);
      let m = users.get(u(user));
      for (const [k, v] of copies) {
        if (v === undefined) {
          m?.delete(k);
        } else {
          if (!m) {
            m = new Map();
            users.set(u(user), m);
          }
          m.set(k, v);
        }
      }
      if (m && m.size === 0) users.delete(u(user));
    };
    return {
      async get<T extends Json>(user: string | null, key: string): Promise<T | undefined> {
        check();
        const v = bucket(tree, host, store, false)?.get(u(user))?.get(key);
        return v === undefined ? undefined : (clone(v) as T);
      },
      async set(user: string | null, key: string, value: Json | undefined): Promise<void> {
        check();
        apply(user, { [key]: value });
      },
      async getAll<T extends Json>(user: string | null): Promise<Map<string, T>> {
        check();
        const m = bucket(tree, host, store, false)?.get(u(user));
        const out = new Map<string, T>();
        if (m) for (const [k, v] of m) out.set(k, clone(v) as T);
        return out;
      },
      async setKeys(user: string | null, values: Record<string, Json | undefined>): Promise<void> {
        check();
        apply(user, values);
      },
      async clear(user: string | null): Promise<void> {
        check();
        bucket(tree, host, store, false)?.delete(u(user));
      },
    };
  }

  archive(host: string, store: string): ArchiveStore {
    const tree = this.#archive;
    const check = (): void => this.#check();
    const list = (user: string | null): Entry[] => bucket(tree, host, store, false)?.get(u(user)) ?? [];
    return {
      async append(user, item): Promise<string> {
        check();
        if (typeof item.payload !== 'string') throw new TypeError('storage: archive payload must be a string');
        const users = bucket(tree, host, store, true);
        let entries = users.get(u(user));
        if (!entries) {
          entries = [];
          users.set(u(user), entries);
        }
        const id = item.id ?? newArchiveId();
        const existing = entries.findIndex((e) => e.id === id);
        if (existing >= 0) entries.splice(existing, 1);
        entries.push({ id, when: item.when ?? Date.now(), with: item.with, payload: item.payload });
        return id;
      },
      async find(user, q = {}): Promise<ArchiveItem[]> {
        check();
        return select(list(user), q).map(toItem);
      },
      async count(user, q = {}): Promise<number> {
        check();
        return select(list(user), { ...q, reverse: false }, true).length;
      },
      async delete(user, q = {}): Promise<number> {
        check();
        const entries = list(user);
        const doomed = new Set(select(entries, q));
        if (doomed.size === 0) return 0;
        const kept = entries.filter((e) => !doomed.has(e));
        const users = bucket(tree, host, store, true);
        if (kept.length) users.set(u(user), kept);
        else users.delete(u(user));
        return doomed.size;
      },
      async replacePayload(user, id, payload): Promise<boolean> {
        check();
        if (typeof payload !== 'string') throw new TypeError('storage: archive payload must be a string');
        const entry = list(user).find((e) => e.id === id);
        if (!entry) return false;
        entry.payload = payload;
        return true;
      },
    };
  }

  async purgeUser(host: string, user: string): Promise<void> {
    this.#check();
    checkPurgeUser(user);
    for (const tree of [this.#keyval, this.#map, this.#archive] as Tree<unknown>[]) {
      for (const users of tree.get(host)?.values() ?? []) users.delete(user);
    }
    log('purged user %s on %s', user, host);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
