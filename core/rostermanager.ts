// Rosters (RFC 6121 §2): loading, saving and versioning. Stored in the `roster` map store of the
// user: one key per contact (bare JID) plus a metadata key holding the version and the pending
// inbound subscription requests. Every save is one atomic, durable write.
import type { Json, MapStore, StorageManager } from './storage/manager.ts';

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

interface CacheEntry {
  roster: Roster;
  /** Bound sessions of the user holding it (SessionManager). */
  pins: number;
  /** Saves in flight. */
  saving: number;
}

/**
 * One Roster object per user while anyone uses it: the user's sessions (pinned from bind to the
 * last unbind) and modules changing an offline user's roster (kept until their save is done), so
 * a login never reads a copy older than a change being saved.
 */
export class RosterManager {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly loading = new Map<string, Promise<Roster>>();

  constructor(private readonly storage: StorageManager) {}

  private store(host: string): MapStore {
    return this.storage.map(host, 'roster');
  }

  /** The user's roster: the one in use if any, else read from storage. */
  load(host: string, username: string): Promise<Roster> {
    const key = `${username}@${host}`;
    const cached = this.cache.get(key);
    if (cached) return Promise.resolve(cached.roster);
    let p = this.loading.get(key);
    if (!p) {
      p = this.read(host, username).then(
        (roster) => {
          this.loading.delete(key);
          const entry = this.cache.get(key) ?? { roster, pins: 0, saving: 0 };
          this.cache.set(key, entry);
          // Unless pinned or saved in this turn, the copy is dropped again.
          setImmediate(() => this.maybeEvict(key));
          return entry.roster;
        },
        (err: unknown) => {
          this.loading.delete(key);
          throw err;
        },
      );
      this.loading.set(key, p);
    }
    return p;
  }

  /** Load and keep the roster for a bound session; pair with release(). */
  async acquire(host: string, username: string): Promise<Roster> {
    const roster = await this.load(host, username);
    // The entry may have been dropped (a save finished) or replaced meanwhile: pin what is current.
    const key = `${username}@${host}`;
    const entry = this.cache.get(key) ?? { roster, pins: 0, saving: 0 };
    entry.pins++;
    this.cache.set(key, entry);
    return entry.roster;
  }

  /** Pin a roster already in hand (its user's entry was re-created synchronously). */
  pin(host: string, username: string, roster: Roster): void {
    const key = `${username}@${host}`;
    const entry = this.cache.get(key) ?? { roster, pins: 0, saving: 0 };
    entry.pins++;
    this.cache.set(key, entry);
  }

  release(host: string, username: string): void {
    const key = `${username}@${host}`;
    const entry = this.cache.get(key);
    if (!entry) return;
    entry.pins = Math.max(0, entry.pins - 1);
    this.maybeEvict(key);
  }

  private maybeEvict(key: string): void {
    const entry = this.cache.get(key);
    if (entry && entry.pins === 0 && entry.saving === 0) this.cache.delete(key);
  }

  private async read(host: string, username: string): Promise<Roster> {
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
    const key = `${username}@${host}`;
    let entry = this.cache.get(key);
    if (!entry) this.cache.set(key, (entry = { roster, pins: 0, saving: 0 }));
    entry.saving++;
    try {
      await this.store(host).setKeys(username, values);
    } finally {
      entry.saving--;
      this.maybeEvict(key);
    }
  }

  async delete(host: string, username: string): Promise<void> {
    this.cache.delete(`${username}@${host}`);
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
