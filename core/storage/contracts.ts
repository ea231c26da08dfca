// Storage contracts: the interfaces every driver implements and every user of storage sees.
//
// Data is addressed by (host, store, user). `user` is an account's node (localpart), or null for
// host-wide data. Three kinds of store:
//   keyval  — one JSON value per user (e.g. 'accounts', 'vcard')
//   map     — many JSON values per user, by key (e.g. 'roster' keyed by contact JID)
//   archive — an append-only, ordered list of items per user (e.g. MAM, offline messages)
//
// The API is Promise based so an asynchronous driver can be added; a resolved write means the
// data is durable (sqlite).
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
  /**
   * Replaces the payload of the item with this id in place: its position, id, `when` and `with`
   * stay (e.g. a retracted message's tombstone, XEP-0424). Resolves to false when the archive
   * has no such item.
   */
  replacePayload(user: string | null, id: string, payload: string): Promise<boolean>;
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
