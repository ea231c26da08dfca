// Durable resumption state of mod_smacks: what a client needs to resume its session after a
// restart or a crash of the server. One map store per host, by account:
//   `<id>`        → the session's header (resource, counters, resumption time, presence…)
//   `<id>/<seq>`  → one unacknowledged stanza sent to the client (its XML and when it was sent)
// and a keyval store naming the accounts that have any (read once, at start-up).
//
// Writes are batched: changes of every session collect in memory and are written together, one
// atomic `setKeys` per account, right after the current turn of the event loop. A stanza costs
// one row in that batch (appended when sent, deleted when acknowledged), not a rewrite of the
// queue. `flushed()` waits until everything changed so far is durable: mod_smacks awaits it before
// it acknowledges anything to a client.
import type { Json, KeyValStore, MapStore } from '../../core/api.ts';

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

export class ResumptionStore {
  private pending = new Map<string, Record<string, Json | undefined>>();
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly map: MapStore,
    private readonly index: KeyValStore,
    private readonly onError: (err: unknown) => void,
  ) {}

  private change(username: string, key: string, value: Json | undefined): void {
    let p = this.pending.get(username);
    if (!p) {
      this.pending.set(username, (p = {}));
    }
    p[key] = value;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  header(username: string, id: string, header: StoredHeader): void {
    this.change(username, id, { ...header });
  }

  append(username: string, id: string, stanza: StoredStanza): void {
    this.change(username, `${id}/${stanza.seq}`, { xml: stanza.xml, sent: stanza.sent });
  }

  remove(username: string, id: string, seqs: Iterable<number>): void {
    for (const seq of seqs) this.change(username, `${id}/${seq}`, undefined);
  }

  /** Forget the session: its header and the given queued stanzas. */
  drop(username: string, id: string, seqs: Iterable<number>): void {
    this.change(username, id, undefined);
    this.remove(username, id, seqs);
  }

  /** Write everything pending now; resolves when it is durable. */
  flush(): Promise<void> {
    this.scheduled = false;
    if (this.pending.size === 0) return this.writing;
    const batch = this.pending;
    this.pending = new Map();
    const previous = this.writing;
    this.writing = (async () => {
      await previous;
      for (const [username, values] of batch) {
        try {
          await this.map.setKeys(username, values);
          await this.index.set(username, true);
        } catch (err) {
          this.onError(err);
        }
      }
    })();
    return this.writing;
  }

  /** Resolves once every change made so far is durable. */
  flushed(): Promise<void> {
    return this.pending.size ? this.flush() : this.writing;
  }

  /** The stored sessions of one account (`only`: that resumption id). */
  async load(username: string, only?: string): Promise<StoredSession[]> {
    await this.flushed();
    const all = await this.map.getAll<Json>(username);
    const sessions = new Map<string, StoredSession>();
    const queued: [string, number, { xml: string; sent: number }][] = [];
    for (const [key, value] of all) {
      const slash = key.indexOf('/');
      if (slash < 0) {
        if (only !== undefined && key !== only) continue;
        sessions.set(key, { id: key, username, header: value as unknown as StoredHeader, queue: [] });
      } else {
        const id = key.slice(0, slash);
        if (only !== undefined && id !== only) continue;
        queued.push([id, Number(key.slice(slash + 1)), value as { xml: string; sent: number }]);
      }
    }
    for (const [id, seq, v] of queued) {
      const s = sessions.get(id);
      if (s) s.queue.push({ seq, xml: v.xml, sent: v.sent });
    }
    for (const s of sessions.values()) s.queue.sort((a, b) => a.seq - b.seq);
    // Stanzas whose header is gone (a session that ended while a write was lost): cleaned up.
    const orphans = queued.filter(([id]) => !sessions.has(id));
    if (orphans.length) for (const [id, seq] of orphans) this.remove(username, id, [seq]);
    return [...sessions.values()];
  }

  /** Accounts that may have stored sessions. */
  users(): Promise<string[]> {
    return this.index.users();
  }

  /** An account has no stored sessions left. */
  forgetUser(username: string): void {
    void this.flushed().then(() => this.index.set(username, undefined)).catch(this.onError);
  }
}
