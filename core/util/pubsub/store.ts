// Persistence of a pubsub service: node records (configuration, affiliations, subscriptions) and
// items. The engine talks to the PubSubStore interface; `storagePubSubStore` implements it over the
// map and archive stores of core/storage (declared here structurally, since core/util imports
// nothing outside core/util; a MapStore and an ArchiveStore fit these shapes as they are).
//
// Layout, per service (`user` = the account's node for PEP, null for a service component):
//   map 'pubsub_nodes'     key = NodeID           value = NodeRecord (JSON)
//   archive 'pubsub_items' id = <node key> ' ' <ItemID>, with = <node key>, payload = StoredItem JSON
// where <node key> is the NodeID percent-encoded (no '/' and no space), so one archive holds the
// items of every node of the service, in publication order, and republishing an ItemID moves it
// to the end — exactly XEP-0060 §12.1's data model.
import type { NodeConfig } from './config.ts';
import type { Affiliation } from './access.ts';
import { errors } from './errors.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export type SubscriptionState = 'none' | 'pending' | 'unconfigured' | 'subscribed';

export interface SubscriptionRecord {
  /** The subscribed JID, bare or full, as requested (§6.1.1). */
  jid: string;
  subid: string;
  state: 'pending' | 'subscribed';
  deliver: boolean;
}

export interface NodeRecord {
  config: NodeConfig;
  creator: string | undefined;
  /** ms since the epoch */
  created: number;
  /** Bare JID → affiliation other than 'none'. */
  affiliations: Record<string, Affiliation>;
  subscriptions: SubscriptionRecord[];
}

/** A deleted node's forwarding address (§8.4.1 redirect), answered with <gone/>. */
export interface Tombstone {
  gone: string;
}

export interface StoredItem {
  id: string;
  /** Bare JID of the publisher (for retract permissions and the 'publisher' attribute). */
  publisher: string | undefined;
  /** The payload element serialized, or undefined for an item without payload. */
  payload: string | undefined;
  /** Publication time, ms since the epoch. */
  when: number;
}

/** A page request over a node's items (XEP-0059 over publication order). */
export interface ItemQuery {
  ids?: readonly string[];
  after?: string;
  before?: string;
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
}

export interface PubSubStore {
  /** Every node record and tombstone of the service. */
  loadNodes(): Promise<Map<string, NodeRecord | Tombstone>>;
  /** Write (or, with undefined, remove) a node's record; durable when resolved. */
  saveNode(node: string, record: NodeRecord | Tombstone | undefined): Promise<void>;
  /** Store an item as the node's newest, replacing one with the same id. */
  putItem(node: string, item: StoredItem): Promise<void>;
  /** Items in publication order (or newest first with `reverse`). Unknown after/before ids reject with item-not-found. */
  getItems(node: string, q?: ItemQuery): Promise<StoredItem[]>;
  countItems(node: string, q?: Pick<ItemQuery, 'after' | 'before'>): Promise<number>;
  /** Delete the given items (all of the node's when `ids` is undefined); resolves to the ids deleted. */
  deleteItems(node: string, ids?: readonly string[]): Promise<string[]>;
  /** Remove everything of this service (account deletion, or the service's removal). */
  clear(): Promise<void>;
}

// ---- the storage-backed implementation ----------------------------------------------------------

/** The part of core/storage's MapStore used here. */
export interface MapStoreLike {
  get<T extends Json>(user: string | null, key: string): Promise<T | undefined>;
  set(user: string | null, key: string, value: Json | undefined): Promise<void>;
  getAll<T extends Json>(user: string | null): Promise<Map<string, T>>;
  clear(user: string | null): Promise<void>;
}

/** The part of core/storage's ArchiveStore used here. */
export interface ArchiveStoreLike {
  append(user: string | null, item: { when?: number; with?: string; payload: string; id?: string }): Promise<string>;
  find(user: string | null, q?: { with?: string; after?: string; before?: string; limit?: number; reverse?: boolean; ids?: string[] }):
    Promise<{ id: string; when: number; with?: string; payload: string }[]>;
  count(user: string | null, q?: { with?: string; after?: string; before?: string }): Promise<number>;
  delete(user: string | null, q?: { with?: string; ids?: string[] }): Promise<number>;
}

function nodeKey(node: string): string {
  return encodeURIComponent(node);
}

function archiveId(node: string, itemId: string): string {
  return `${nodeKey(node)} ${itemId}`;
}

function itemIdOf(archiveId: string): string {
  return archiveId.slice(archiveId.indexOf(' ') + 1);
}

/** Is `err` the storage's "no such id" for after/before (a StanzaError item-not-found)? */
function isUnknownId(err: unknown): boolean {
  return err instanceof Error && (err as { condition?: string }).condition === 'item-not-found';
}

/**
 * A PubSubStore over a map store ('pubsub_nodes') and an archive store ('pubsub_items') of one
 * host, for the service whose data lives under `user` (the account for PEP, null for a component).
 */
export function storagePubSubStore(stores: { nodes: MapStoreLike; items: ArchiveStoreLike }, user: string | null): PubSubStore {
  const { nodes, items } = stores;
  const decode = (row: { id: string; when: number; payload: string }): StoredItem => {
    const p = JSON.parse(row.payload) as { publisher?: string; payload?: string };
    return { id: itemIdOf(row.id), publisher: p.publisher, payload: p.payload, when: row.when };
  };
  const mapUnknown = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      if (isUnknownId(err)) throw errors.itemNotFound('No item with that id in this node');
      throw err;
    }
  };
  return {
    async loadNodes() {
      const all = await nodes.getAll<Json>(user);
      const out = new Map<string, NodeRecord | Tombstone>();
      for (const [k, v] of all) out.set(k, v as unknown as NodeRecord | Tombstone);
      return out;
    },
    async saveNode(node, record) {
      await nodes.set(user, node, record === undefined ? undefined : (record as unknown as Json));
    },
    async putItem(node, item) {
      const payload: Record<string, string> = {};
      if (item.publisher !== undefined) payload.publisher = item.publisher;
      if (item.payload !== undefined) payload.payload = item.payload;
      await items.append(user, { id: archiveId(node, item.id), with: nodeKey(node), when: item.when, payload: JSON.stringify(payload) });
    },
    async getItems(node, q = {}) {
      return mapUnknown(async () => {
        const rows = await items.find(user, {
          with: nodeKey(node),
          ...(q.ids ? { ids: q.ids.map((i) => archiveId(node, i)) } : {}),
          ...(q.after !== undefined ? { after: archiveId(node, q.after) } : {}),
          ...(q.before !== undefined ? { before: archiveId(node, q.before) } : {}),
          ...(q.limit !== undefined ? { limit: q.limit } : {}),
          ...(q.reverse ? { reverse: true } : {}),
        });
        return rows.map(decode);
      });
    },
    async countItems(node, q = {}) {
      return mapUnknown(() => items.count(user, {
        with: nodeKey(node),
        ...(q.after !== undefined ? { after: archiveId(node, q.after) } : {}),
        ...(q.before !== undefined ? { before: archiveId(node, q.before) } : {}),
      }));
    },
    async deleteItems(node, ids) {
      const query = { with: nodeKey(node), ...(ids ? { ids: ids.map((i) => archiveId(node, i)) } : {}) };
      const present = await items.find(user, query);
      if (present.length === 0) return [];
      await items.delete(user, query);
      return present.map((r) => itemIdOf(r.id));
    },
    async clear() {
      await items.delete(user, {});
      await nodes.clear(user);
    },
  };
}

export function isTombstone(r: NodeRecord | Tombstone | undefined): r is Tombstone {
  return r !== undefined && typeof (r as Tombstone).gone === 'string';
}

/** A record read from storage, with configuration fields added since it was written filled from `defaults`. */
export function upgradeRecord(r: NodeRecord, defaults: NodeConfig): NodeRecord {
  return { ...r, config: { ...defaults, ...r.config }, affiliations: r.affiliations ?? {}, subscriptions: r.subscriptions ?? [] };
}
