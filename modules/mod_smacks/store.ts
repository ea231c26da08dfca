// Durable resumption state of mod_smacks: what a client needs to resume its session after a
// restart or a crash of the server. One host-wide map (the module's map store, user null):
//   `<account>/<id>`        → the session's header (resource, counters, resumption time, presence…)
//   `<account>/<id>/<seq>`  → one unacknowledged stanza sent to the client (its XML, when it was sent)
//
// Writes are batched (group commit): the changes of every session collect in memory and are
// written together, in ONE atomic `setKeys` (one transaction, one fsync), at most every
// FLUSH_INTERVAL_MS. A stanza costs one row in that batch when sent and one when acknowledged,
// never a rewrite of the queue; a stanza acknowledged before its batch was written costs nothing.
// `flushed()` waits (at most one interval, without forcing a write of its own) until everything
// changed so far is durable: mod_smacks awaits it before it acknowledges anything to a client, so
// clients asking for acks often do not multiply the fsyncs.
import type { Json, MapStore } from '../../core/api.ts';

/** The header of a resumable session. */
export interface StoredHeader {
  resource: string;
  /** Stanzas handled from the client (XEP-0198 'h', mod 2^32), as last acknowledged to it. */
  hIn: number;
  /** The client's last acknowledged 'h' of what we sent. */
  hOutAcked: number;
  /** Resumption time, seconds. */
  max: number;
  /** When the session stops being resumable (ms since the epoch); null while it is connected. */
  expires: number | null;
  /** The client's last available presence (XML), re-sent on its behalf after a restart. */
  presence: string | null;
  interested: boolean;
}

/** An unacknowledged stanza: its sequence number (the key), XML and when it was first sent. */
export interface StoredStanza {
  seq: number;
  xml: string;
  sent: number;
}

export interface StoredSession {
  id: string;
  username: string;
  header: StoredHeader;
  queue: StoredStanza[];
}

/** Longest time a change waits for its batch (what an unasked-for crash can lose, at most). */
export const FLUSH_INTERVAL_MS = 50;

export class ResumptionStore {
  private pending: Record<string, Json | undefined> = {};
  /** Keys first written by the pending batch: removing one needs no write at all. */
  private fresh = new Set<string>();
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Settles when the scheduled batch is durable. */
  private next: { promise: Promise<void>; resolve: () => void } | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly map: MapStore,
    private readonly onError: (err: unknown) => void,
  ) {}

  private change(key: string, value: Json | undefined): void {
    if (value === undefined && this.fresh.delete(key)) {
      delete this.pending[key];
      return;
    }
    this.pending[key] = value;
    this.size++;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
    if (this.next === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.next = { promise, resolve };
    }
  }

  header(username: string, id: string, header: StoredHeader): void {
    this.change(`${username}/${id}`, { ...header });
  }

  append(username: string, id: string, stanza: StoredStanza): void {
    const key = `${username}/${id}/${stanza.seq}`;
    this.change(key, { xml: stanza.xml, sent: stanza.sent });
    this.fresh.add(key);
  }

  remove(username: string, id: string, seqs: Iterable<number>): void {
    for (const seq of seqs) this.change(`${username}/${id}/${seq}`, undefined);
  }

  /** Forget the session: its header and the given queued stanzas. */
  drop(username: string, id: string, seqs: Iterable<number>): void {
    this.change(`${username}/${id}`, undefined);
    this.remove(username, id, seqs);
  }

  /** Write everything pending now, in one transaction; resolves when it is durable. */
  flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.next;
    this.next = undefined;
    if (this.size === 0) {
      next?.resolve();
      return this.writing;
    }
    const batch = this.pending;
    this.pending = {};
    this.fresh = new Set();
    this.size = 0;
    const previous = this.writing;
    this.writing = previous.then(() => this.map.setKeys(null, batch)).catch(this.onError);
    void this.writing.then(() => next?.resolve());
    return this.writing;
  }

  /** Resolves once every change made so far is durable (with the next scheduled batch). */
  flushed(): Promise<void> {
    return this.next ? this.next.promise : this.writing;
  }

  /** Every stored session (read once, at start-up); stanzas without a header are removed. */
  async loadAll(): Promise<StoredSession[]> {
    await this.flushed();
    const all = await this.map.getAll<Json>(null);
    const sessions = new Map<string, StoredSession>();
    const queued: [string, string, number, { xml: string; sent: number }][] = [];
    for (const [key, value] of all) {
      const parts = key.split('/');
      if (parts.length === 2) {
        const [username, id] = parts as [string, string];
        sessions.set(`${username}/${id}`, { id, username, header: value as unknown as StoredHeader, queue: [] });
      } else if (parts.length === 3) {
        const [username, id, seq] = parts as [string, string, string];
        queued.push([username, id, Number(seq), value as { xml: string; sent: number }]);
      }
    }
    for (const [username, id, seq, v] of queued) {
      const s = sessions.get(`${username}/${id}`);
      if (s) s.queue.push({ seq, xml: v.xml, sent: v.sent });
      else this.remove(username, id, [seq]);
    }
    for (const s of sessions.values()) s.queue.sort((a, b) => a.seq - b.seq);
    return [...sessions.values()];
  }
}
