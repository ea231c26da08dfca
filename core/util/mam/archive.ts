// The archive the MAM engine reads and trims. Declared here by shape, since core/util imports
// nothing outside core/util: core/storage's ArchiveStore (core/storage/contracts.ts) fits these
// interfaces as it is, and its semantics are the ones the engine relies on — items in archive
// (insertion) order, `start`/`end` inclusive, `after`/`before` exclusive ids, an id that is not in
// the archive rejected with item-not-found, `count` ignoring `limit` and `reverse`.

export interface ArchiveItem {
  id: string;
  /** ms since the epoch */
  when: number;
  with?: string;
  /** serialized XML */
  payload: string;
}

/** Filters for find/count/delete; all given fields must match (see core/storage/contracts.ts). */
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

/** What the engine does with an archive: read pages, count them, delete expired items. */
export interface MamArchive {
  find(user: string | null, q?: ArchiveQuery): Promise<ArchiveItem[]>;
  count(user: string | null, q?: ArchiveQuery): Promise<number>;
  delete(user: string | null, q?: ArchiveQuery): Promise<number>;
}
