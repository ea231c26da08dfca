// Durable resumption state of mod_smacks: what a client needs to resume its session after a
// restart or a crash of the server, in an append-only journal file of the host
// (`<dataDir>/smacks/<host>.journal`), one JSON record per line:
//   ["h", key, header]          the session's header (resource, counters, resumption time, presence…)
//   ["a", key, seq, sent, xml]  one stanza sent to the client, not yet acknowledged
//   ["k", key, hOutAcked, seqs] the client acknowledged up to hOutAcked: these stanzas are done
//   ["i", key, hIn]             the stanzas the client sent that are handled (XEP-0198 'h' inbound)
//   ["r", key, seqs]            these stanzas are gone from the queue (re-sent as new ones)
//   ["d", key]                  the session is over: its header and stanzas are forgotten
// where key is `<account>/<id>`. Replaying the lines in order gives the state; every record sets
// state (replaying one twice changes nothing), and an ack moves the counter and removes what it
// covers in one line, so the two never disagree after a crash.
//
// Cost per stanza on the event loop: one small record object when sent (its XML is the string the
// socket write uses: serialised once, by mod_smacks), its share of one record per ack; the JSON
// line is made only when its batch is written, and a stanza acknowledged before that is never
// written. Writes are batched (group commit): one write() and one fdatasync() of everything
// pending, both on the libuv thread pool — nothing synchronous on the event loop — at most every
// FLUSH_INTERVAL_MS, and never two at once: while a batch is being written, the next one collects
// (so under load, when fdatasync is slow, stanzas acknowledged meanwhile drop out of it instead
// of queueing up in memory behind the disk). `flushed()` resolves once everything changed so far
// is durable: mod_smacks awaits it before it acknowledges anything to a client (its <a/>) and
// before it answers a resumption. Just before a batch is taken, `beforeBatch` lets mod_smacks add
// the inbound counts of sessions whose stanzas were handled since (so the count goes to disk in
// the same write as, or after, the journal records its stanzas caused).
//
// The journal is rewritten (a snapshot of the live state to a new file, fdatasync, rename) when it
// has grown past COMPACT_MIN_BYTES and is mostly dead records. A torn last line (crash in the
// middle of a write) is cut off at start-up; a damaged line elsewhere is skipped with an error.
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Json, MapStore } from '../../core/api.ts';

/** The header of a resumable session. */
export interface StoredHeader {
  resource: string;
  /** Stanzas handled from the client (XEP-0198 'h', mod 2^32): at most what their effects made durable. */
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

/** An unacknowledged stanza: its sequence number, XML and when it was first sent. */
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

/** Longest time a change waits for its batch to start being written (when no batch is being written). */
export const FLUSH_INTERVAL_MS = 20;
/** After a failed write, the next attempt (with everything pending by then) waits this long. */
const RETRY_MS = 1000;
/** The journal is compacted once larger than this and four times its live state. */
export const COMPACT_MIN_BYTES = 8 * 1024 * 1024;

/** A queued stanza as the journal holds it. */
interface LiveStanza {
  sent: number;
  xml: string;
  /** While its append record waits in `pending`: its index there, and the batch number then. */
  at: number;
  batch: number;
}

interface LiveSession {
  header: StoredHeader | undefined;
  stanzas: Map<number, LiveStanza>;
}

type JournalRecord =
  | ['h', string, StoredHeader]
  | ['a', string, number, number, LiveStanza]
  | ['k', string, number, number[]]
  | ['i', string, number]
  | ['r', string, number[]]
  | ['d', string];

const line = (r: JournalRecord): string =>
  JSON.stringify(r[0] === 'a' ? ['a', r[1], r[2], r[3], r[4].xml] : r);

export class ResumptionStore {
  readonly file: string;
  private fh: FileHandle | undefined;
  private readonly live = new Map<string, LiveSession>();
  /** Records not yet written, in order; a slot is emptied when a record needs no writing after all. */
  private pending: (JournalRecord | undefined)[] = [];
  /** Counts the batches taken from `pending`: an append whose `batch` is older is being written or written. */
  private batchNo = 0;
  private timer: NodeJS.Timeout | undefined;
  /** A batch is being written: the next one waits (and collects) until it is durable. */
  private busy = false;
  /** Settles when the scheduled batch is durable. */
  private next: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Bytes in the journal file, and a rough size of the live state (for compaction). */
  private fileBytes = 0;
  private liveBytes = 0;
  private compactions = 0;
  private batches = 0;

  constructor(
    dir: string,
    host: string,
    private readonly onError: (err: unknown) => void,
    private readonly opts: {
      /** Where an earlier version of mod_smacks kept the state (imported once, then cleared). */
      legacy?: MapStore;
      compactMinBytes?: number;
      /** Runs right before a batch is taken: the last chance to add records to it. */
      beforeBatch?: () => void;
    } = {},
  ) {
    this.file = path.join(dir, `${encodeURIComponent(host)}.journal`);
  }

  // -- changes ----------------------------------------------------------------------------------

  private session(key: string): LiveSession {
    let s = this.live.get(key);
    if (!s) this.live.set(key, (s = { header: undefined, stanzas: new Map() }));
    return s;
  }

  private record(r: JournalRecord): void {
    this.pending.push(r);
    this.schedule();
  }

  /** A batch is due in `delay` ms (or as soon as the one being written is durable). */
  private schedule(delay = FLUSH_INTERVAL_MS): void {
    if (this.timer === undefined && !this.busy) {
      this.timer = setTimeout(() => void this.flush(), delay);
      this.timer.unref();
    }
    if (this.next === undefined) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => undefined); // a failed batch nobody waited for is logged by onError
      this.next = { promise, resolve, reject };
    }
  }

  /** Drops the given stanzas from the live state; those not yet taken for writing leave the batch too. */
  private forget(s: LiveSession | undefined, seqs: Iterable<number>): number[] {
    const written: number[] = [];
    for (const seq of seqs) {
      const entry = s?.stanzas.get(seq);
      if (entry !== undefined) {
        s!.stanzas.delete(seq);
        this.liveBytes -= 200;
        if (entry.batch === this.batchNo) {
          this.pending[entry.at] = undefined;
          continue;
        }
      }
      written.push(seq);
    }
    return written;
  }

  header(username: string, id: string, header: StoredHeader): void {
    const key = `${username}/${id}`;
    const h = { ...header };
    this.session(key).header = h;
    this.record(['h', key, h]);
  }

  /** A stanza sent to the client, as written to its stream. */
  append(username: string, id: string, seq: number, xml: string, sent: number): void {
    const key = `${username}/${id}`;
    const entry: LiveStanza = { sent, xml, at: this.pending.length, batch: this.batchNo };
    this.session(key).stanzas.set(seq, entry);
    this.liveBytes += 200;
    this.record(['a', key, seq, sent, entry]);
  }

  /** The client acknowledged everything up to `hOutAcked`: `seqs` are done. */
  ack(username: string, id: string, hOutAcked: number, seqs: Iterable<number>): void {
    const key = `${username}/${id}`;
    const s = this.live.get(key);
    if (s?.header) s.header.hOutAcked = hOutAcked;
    this.record(['k', key, hOutAcked, this.forget(s, seqs)]);
  }

  /** The stanzas the client sent are handled up to `hIn` (their effects are recorded before). */
  handled(username: string, id: string, hIn: number): void {
    const key = `${username}/${id}`;
    const s = this.live.get(key);
    if (!s?.header || s.header.hIn === hIn) return;
    s.header.hIn = hIn;
    this.record(['i', key, hIn]);
  }

  /** A batch is due (within FLUSH_INTERVAL_MS) even if nothing else is recorded: beforeBatch has something to add. */
  wake(): void {
    this.schedule();
  }

  /** Stanzas gone from the queue without an ack (held back on re-sending; sent again as new ones). */
  remove(username: string, id: string, seqs: Iterable<number>): void {
    const key = `${username}/${id}`;
    const written = this.forget(this.live.get(key), seqs);
    if (written.length) this.record(['r', key, written]);
  }

  /** Forget the session: its header and every queued stanza. */
  drop(username: string, id: string): void {
    const key = `${username}/${id}`;
    const s = this.live.get(key);
    if (s) this.forget(s, [...s.stanzas.keys()]);
    this.live.delete(key);
    this.record(['d', key]);
  }

  // -- writing ----------------------------------------------------------------------------------

  /**
   * Write everything pending now (after the batch being written, if any). Resolves when it is
   * durable, or when writing failed: then the batch's waiters (flushed()) are rejected and its
   * records go back to the front of the queue, to be written with the next batch.
   */
  flush(): Promise<void> {
    if (this.busy) {
      // Taken as soon as the batch being written is durable.
      return this.next ? this.next.promise.catch(() => undefined) : this.writing;
    }
    this.opts.beforeBatch?.();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.next;
    this.next = undefined;
    const batch = this.pending;
    this.pending = [];
    this.batchNo++;
    if (batch.length === 0) {
      next?.resolve();
      return this.writing;
    }
    this.busy = true;
    this.batches++;
    const done = this.write(batch);
    this.writing = done.then(
      () => {
        this.busy = false;
        next?.resolve();
        // What collected meanwhile (or a wake()) waited long enough: written at once.
        if (this.next !== undefined) this.schedule(0);
      },
      (err: unknown) => {
        this.busy = false;
        this.onError(err);
        next?.reject(err);
        this.pending = [...batch, ...this.pending];
        // The re-queued appends can again leave the batch when acknowledged.
        this.pending.forEach((r, i) => {
          if (r?.[0] === 'a') {
            r[4].at = i;
            r[4].batch = this.batchNo;
          }
        });
        if (this.pending.length) this.schedule(RETRY_MS); // a full disk is not retried 50 times a second
      },
    );
    return this.writing;
  }

  private async write(batch: (JournalRecord | undefined)[]): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error(`resumption journal ${this.file} is not open`);
    let text = '';
    for (const r of batch) if (r !== undefined) text += `${line(r)}\n`;
    if (text === '') return;
    const data = Buffer.from(text);
    try {
      await fh.write(data);
      await fh.datasync();
    } catch (err) {
      // Part of the batch may be in the file: cut it off, so the next batch starts a clean line.
      await fh.truncate(this.fileBytes).catch(() => undefined);
      throw err;
    }
    this.fileBytes += data.length;
    if (this.fileBytes > (this.opts.compactMinBytes ?? COMPACT_MIN_BYTES) && this.fileBytes > 4 * this.liveBytes) await this.compact();
  }

  /** Resolves once every change made so far is durable (with the next scheduled batch); rejects if that batch could not be written. */
  flushed(): Promise<void> {
    return this.next ? this.next.promise : this.writing;
  }

  /**
   * Rewrites the journal as a snapshot of the live state: a new file, synced, renamed over the old
   * one (records pending meanwhile are already in the snapshot; writing them again is harmless).
   */
  private async compact(): Promise<void> {
    const lines: string[] = [];
    for (const [key, s] of this.live) {
      if (s.header) lines.push(line(['h', key, s.header]));
      for (const [seq, st] of s.stanzas) lines.push(line(['a', key, seq, st.sent, st]));
    }
    const data = Buffer.from(lines.length ? `${lines.join('\n')}\n` : '');
    const tmp = `${this.file}.new`;
    const out = await open(tmp, 'w', 0o600);
    try {
      await out.write(data);
      await out.datasync();
    } finally {
      await out.close();
    }
    await rename(tmp, this.file);
    await syncDir(path.dirname(this.file));
    await this.fh?.close();
    this.fh = await open(this.file, 'a', 0o600);
    this.fileBytes = data.length;
    this.liveBytes = data.length;
    this.compactions++;
  }

  // -- start and stop ---------------------------------------------------------------------------

  /** Opens the journal: replays it (cutting off a torn last line) and imports a legacy map store. */
  async open(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const good = this.replay(text);
    this.fh = await open(this.file, 'a', 0o600);
    if (good < Buffer.byteLength(text)) {
      this.onError(new Error(`resumption journal ${this.file}: cut off a torn last record`));
      await this.fh.truncate(good);
      await this.fh.datasync();
    }
    this.fileBytes = good;
    if (this.opts.legacy) await this.importLegacy(this.opts.legacy);
  }

  /** Applies the journal's lines; returns the byte length of the complete records. */
  private replay(text: string): number {
    let at = 0;
    let bytes = 0;
    while (at < text.length) {
      const nl = text.indexOf('\n', at);
      if (nl < 0) break; // torn: no end of line
      const l = text.slice(at, nl);
      at = nl + 1;
      bytes += Buffer.byteLength(l) + 1;
      try {
        this.apply(JSON.parse(l) as JournalRecord | ['a', string, number, number, string]);
      } catch (err) {
        this.onError(new Error(`resumption journal ${this.file}: skipped a damaged record: ${(err as Error).message}`));
      }
    }
    return bytes;
  }

  private apply(r: JournalRecord | ['a', string, number, number, string]): void {
    switch (r[0]) {
      case 'h':
        this.session(r[1]).header = r[2];
        return;
      case 'a':
        this.session(r[1]).stanzas.set(r[2], { sent: r[3], xml: r[4] as string, at: -1, batch: -1 });
        this.liveBytes += 200;
        return;
      case 'k': {
        const s = this.live.get(r[1]);
        if (s?.header) s.header.hOutAcked = r[2];
        for (const seq of r[3]) if (s?.stanzas.delete(seq)) this.liveBytes -= 200;
        return;
      }
      case 'i': {
        const h = this.live.get(r[1])?.header;
        if (h) h.hIn = r[2];
        return;
      }
      case 'r': {
        const s = this.live.get(r[1]);
        for (const seq of r[2]) if (s?.stanzas.delete(seq)) this.liveBytes -= 200;
        return;
      }
      case 'd':
        for (const _ of this.live.get(r[1])?.stanzas.keys() ?? []) this.liveBytes -= 200;
        this.live.delete(r[1]);
        return;
      default:
        throw new Error(`unknown record ${JSON.stringify(r[0])}`);
    }
  }

  /** Sessions an earlier mod_smacks stored in the storage's map store: into the journal, once. */
  private async importLegacy(map: MapStore): Promise<void> {
    const all = await map.getAll<Json>(null);
    if (all.size === 0) return;
    for (const [key, value] of all) {
      const parts = key.split('/');
      if (parts.length === 2 && !this.live.get(key)?.header) this.header(parts[0]!, parts[1]!, value as unknown as StoredHeader);
    }
    for (const [key, value] of all) {
      const parts = key.split('/');
      if (parts.length !== 3) continue;
      const sessionKey = `${parts[0]}/${parts[1]}`;
      const s = this.live.get(sessionKey);
      if (!s?.header) continue; // a stanza without its session: nothing to resume
      const { xml, sent } = value as { xml: string; sent: number };
      this.append(parts[0]!, parts[1]!, Number(parts[2]), xml, sent);
    }
    await this.flush();
    await map.clear(null);
  }

  /** Every stored session with a header (read at start-up, after open()); orphaned stanzas are dropped. */
  loadAll(): StoredSession[] {
    const out: StoredSession[] = [];
    for (const [key, s] of [...this.live]) {
      const [username, id] = key.split('/') as [string, string];
      if (!s.header) {
        this.drop(username, id);
        continue;
      }
      const queue = [...s.stanzas].map(([seq, st]) => ({ seq, xml: st.xml, sent: st.sent })).sort((a, b) => a.seq - b.seq);
      out.push({ id, username, header: { ...s.header }, queue });
    }
    return out;
  }

  /** Writes what is pending and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    await this.fh?.close();
    this.fh = undefined;
  }

  /** For the admin shell and tests: the journal's size and state. */
  stats(): { fileBytes: number; sessions: number; compactions: number; batches: number } {
    return { fileBytes: this.fileBytes, sessions: this.live.size, compactions: this.compactions, batches: this.batches };
  }
}

/** fsync a directory, so a rename in it is durable (not supported everywhere: then skipped). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // some platforms cannot open or sync a directory
  } finally {
    await fh?.close();
  }
}
