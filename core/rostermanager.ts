// Rosters (RFC 6121 §2): loading, saving and versioning. Stored in the `roster` map store of the
// user: one key per contact (bare JID) plus a metadata key holding the version and the pending
// inbound subscription requests. Every save is one atomic, durable write.
import type { Json, MapStore, StorageManager } from './storagemanager.ts';

export type SubscriptionState = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  subscription: SubscriptionState;
  /** Outbound subscription request pending (RFC 6121 "pending out"). */
  ask?: 'subscribe';
  /** Subscription pre-approved by the user (RFC 6121 §3.4). */
  approved?: boolean;
  name?: string;
  groups: string[];
}

export interface Roster {
  items: Map<string, RosterItem>;
  /** Pending inbound subscription requests: contact bare JID → the subscribe stanza (XML). */
  pending: Map<string, string>;
  version: number;
}

interface RosterMeta {
  version: number;
  pending: Record<string, string>;
}

const META_KEY = '\u0000meta';

export class RosterManager {
  constructor(private readonly storage: StorageManager) {}

  private store(host: string): MapStore {
    return this.storage.map(host, 'roster');
  }

  async load(host: string, username: string): Promise<Roster> {
    const all = await this.store(host).getAll<Json>(username);
    const roster: Roster = { items: new Map(), pending: new Map(), version: 0 };
    for (const [key, value] of all) {
      if (key === META_KEY) {
        const meta = value as unknown as RosterMeta;
        roster.version = meta.version ?? 0;
        for (const [jid, stanza] of Object.entries(meta.pending ?? {})) roster.pending.set(jid, stanza);
      } else {
        roster.items.set(key, value as unknown as RosterItem);
      }
    }
    return roster;
  }

  /**
   * Persist the given contacts (removed from the roster when absent from `roster.items`) and the
   * metadata, bumping the version. Resolves once durable.
   */
  async save(host: string, username: string, roster: Roster, changed: Iterable<string>): Promise<void> {
    roster.version++;
    const values: Record<string, Json | undefined> = {};
    for (const jid of changed) {
      const item = roster.items.get(jid);
      values[jid] = item ? (itemToJson(item) as Json) : undefined;
    }
    const meta: RosterMeta = { version: roster.version, pending: Object.fromEntries(roster.pending) };
    values[META_KEY] = meta as unknown as Json;
    await this.store(host).setKeys(username, values);
  }

  async delete(host: string, username: string): Promise<void> {
    await this.store(host).clear(username);
  }
}

function itemToJson(item: RosterItem): Record<string, Json> {
  const o: Record<string, Json> = { subscription: item.subscription, groups: item.groups };
  if (item.ask) o.ask = item.ask;
  if (item.approved) o.approved = true;
  if (item.name !== undefined) o.name = item.name;
  return o;
}
