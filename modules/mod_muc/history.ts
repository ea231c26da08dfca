// Discussion history (XEP-0045 §7.2.13–7.2.14): the last messages of a room, kept in memory, and
// the selection a joining occupant gets — the smallest set meeting every limit of its <history/>
// (maxchars, maxstanzas, seconds, since) and the room's muc#maxhistoryfetch.
import type { Element } from '@xmpp/xml';

export interface HistoryEntry {
  /** The message as reflected to the room: from the occupant JID, no 'to', with stanza-id. */
  stanza: Element;
  /** When the room received it (ms since the epoch). */
  time: number;
  /** The stanza-id the room assigned (XEP-0359), the handle for moderation. */
  stanzaId: string;
  /** The sender's real full JID (for the XEP-0033 ofrom address in non-anonymous rooms). */
  senderJid: string;
}

/** What a joining occupant asked for; every limit is optional. */
export interface HistoryRequest {
  maxchars?: number;
  maxstanzas?: number;
  seconds?: number;
  /** ms since the epoch. */
  since?: number;
}

const INT = /^\+?\d{1,9}$/;

/**
 * Read the <history/> child of a join's <x xmlns='…/muc'/> (§7.2.14). Attributes that are not
 * valid (non-integers, a 'since' that is not an XEP-0082 DateTime) are ignored rather than failing
 * the join: the room limit still applies.
 */
export function parseHistoryRequest(history: Element | undefined): HistoryRequest {
  const req: HistoryRequest = {};
  if (!history) return req;
  const int = (name: string) => {
    const v = history.attrs[name] as string | undefined;
    return v !== undefined && INT.test(v) ? Number(v) : undefined;
  };
  req.maxchars = int('maxchars');
  req.maxstanzas = int('maxstanzas');
  req.seconds = int('seconds');
  const since = history.attrs.since as string | undefined;
  if (since !== undefined && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(since)) {
    const t = Date.parse(since);
    if (!Number.isNaN(t)) req.since = t;
  }
  return req;
}

export class History {
  private entries: HistoryEntry[] = [];

  /** `capacity`: how many messages are kept (the largest muc#maxhistoryfetch the service allows). */
  constructor(private capacity: number) {}

  get size(): number {
    return this.entries.length;
  }

  push(entry: HistoryEntry): void {
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  /** Replace the contents (e.g. seeded from the room archive after a restart), oldest first. */
  seed(entries: readonly HistoryEntry[]): void {
    this.entries = entries.slice(-this.capacity);
  }

  find(stanzaId: string): HistoryEntry | undefined {
    return this.entries.find((e) => e.stanzaId === stanzaId);
  }

  /** Remove a message (moderation, XEP-0425): it is not replayed to occupants who join later. */
  remove(stanzaId: string): HistoryEntry | undefined {
    const i = this.entries.findIndex((e) => e.stanzaId === stanzaId);
    return i < 0 ? undefined : this.entries.splice(i, 1)[0];
  }

  all(): readonly HistoryEntry[] {
    return this.entries;
  }

  /**
   * The history to send, oldest first, rendered by `render` (which addresses and stamps each
   * message for the recipient). The newest messages that satisfy every limit: received at or
   * after `since` and within the last `seconds`, at most min(`maxstanzas`, `limit`) of them, and
   * — counting the characters of the complete stanzas as sent — at most `maxchars` in total
   * (whole stanzas only; 0 means none).
   */
  select(req: HistoryRequest, opts: { limit: number; now: number; render: (e: HistoryEntry) => Element }): Element[] {
    let count = Math.min(opts.limit, req.maxstanzas ?? Infinity);
    if (req.maxchars === 0 || count <= 0) return [];
    let from = -Infinity;
    if (req.since !== undefined) from = req.since;
    if (req.seconds !== undefined) from = Math.max(from, opts.now - req.seconds * 1000);
    const picked: Element[] = [];
    let chars = 0;
    for (const e of this.entries.slice().reverse()) { // newest first
      if (count <= 0 || e.time < from) break; // entries are in arrival order
      const el = opts.render(e);
      if (req.maxchars !== undefined) {
        chars += el.toString().length;
        if (chars > req.maxchars) break;
      }
      picked.push(el);
      count--;
    }
    return picked.reverse();
  }
}
