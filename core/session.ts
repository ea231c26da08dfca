// A session, as in doc/session.txt of the seeds (see doc/architecture.md):
//  - a connection starts as type 'c2s_unauthed' (notopen until the stream header arrives);
//  - SASL success makes it type 'c2s' with `username` set (authenticated, not yet bound);
//  - resource binding sets `resource`, `full_jid` and loads `roster`: a *connected resource*
//    (a BoundSession: `isBound(session)`);
//  - `presence` set (last broadcast available presence): an *available resource*;
//  - `interested` set (it requested the roster): an *interested resource*.
//  - an external component (XEP-0114) starts as 'component_unauthed'; its handshake makes it
//    type 'component' serving `host`.
// The registry of sessions is core/sessionmanager.ts; this file is the model alone, so that the
// event catalogue and the hosts can name it without depending on the registry.
import type { Element } from '@xmpp/xml';
import type { Connection } from './net/connection.ts';
import type { StreamErrorCondition } from './util/errors.ts';
import { getLogger, type Logger } from './util/log.ts';
import { isStanzaKind, type Stanza } from './util/stanza.ts';
import type { Roster } from './rostermanager.ts';

export type SessionType = 'c2s_unauthed' | 'c2s' | 'component_unauthed' | 'component' | 'local'
  // an incoming server-to-server stream (mod_s2s): before and after the peer authenticated a domain
  | 's2sin_unauthed' | 's2sin';

export interface CloseReason {
  condition: StreamErrorCondition;
  text?: string;
}

export interface StreamOps {
  /** Serialise and write to the connection. */
  send(x: Element | string): boolean;
  /** Close the stream (with a stream error when a reason is given) and the connection. */
  close(reason?: CloseReason): void;
  /** Expect a new stream header (after STARTTLS or SASL success, RFC 6120 §4.3.3). */
  reset?(): void;
  /** Elements waiting for the peer to read (its socket buffer is full). */
  queued?(): number;
}

let sessionCounter = 0;

// ---- session filters ------------------------------------------------------------------------------

/** `stanzas/in`: stanzas a client sends, before routing; `stanzas/out`: stanzas written to a session. */
export type FilterKind = 'stanzas/in' | 'stanzas/out';

/**
 * A session filter: returns the stanza to go on with — the same one, or a changed copy (the same
 * stanza object may be on its way to several sessions: never change it in place) — or
 * `undefined` to drop it. Filters run synchronously, highest priority first.
 */
export type StanzaFilter = (stanza: Stanza, session: Session) => Stanza | undefined;

interface FilterEntry {
  fn: StanzaFilter;
  /** The host whose sessions it applies to, or '*' for every host. */
  host: string;
  priority: number;
  owner: string;
}

/**
 * The filters of every session (Prosody's session filters), registered by modules through
 * `module.filter()`. With no filter of a kind registered, running them costs one length check.
 */
export class SessionFilters {
  private readonly lists: Record<FilterKind, FilterEntry[]> = { 'stanzas/in': [], 'stanzas/out': [] };
  private readonly log = getLogger('core:filters');

  /** Whether any filter of this kind exists. */
  active(kind: FilterKind): boolean {
    return this.lists[kind].length > 0;
  }

  /** Add a filter for the sessions of `host` ('*': all); returns the function that removes it. */
  add(kind: FilterKind, host: string, fn: StanzaFilter, priority = 0, owner = 'core'): () => void {
    const entry: FilterEntry = { fn, host, priority, owner };
    const list = this.lists[kind].slice();
    let i = list.length;
    while (i > 0 && list[i - 1]!.priority < priority) i--;
    list.splice(i, 0, entry);
    this.lists[kind] = list;
    return () => {
      this.lists[kind] = this.lists[kind].filter((e) => e !== entry);
    };
  }

  /** Run the filters of `kind` that apply to `session`: the stanza to go on with, or undefined to drop it. */
  run(kind: FilterKind, session: Session, stanza: Stanza): Stanza | undefined {
    let current = stanza;
    for (const e of this.lists[kind]) {
      if (e.host !== '*' && e.host !== session.host) continue;
      let next: Stanza | undefined;
      try {
        next = e.fn(current, session);
      } catch (err) {
        // A broken filter is skipped: the stanza goes on as it was.
        this.log.error('%s filter of %s failed on a %s for %s: %s', kind, e.owner, current.name, session.id, err);
        continue;
      }
      if (next === undefined) {
        this.log('%s filter of %s dropped a %s for %s', kind, e.owner, stanza.name, session.id);
        return undefined;
      }
      current = next;
    }
    return current;
  }
}

// ---- the session ----------------------------------------------------------------------------------

export class Session {
  readonly id: string;
  readonly created = Date.now();
  private logger: Logger | undefined;
  /** The TCP connection (absent for the host's local pseudo-session). */
  conn: Connection | undefined;
  /** True until the stream header has been received (and again after a stream restart). */
  notopen = true;
  type: SessionType;
  username: string | undefined;
  host: string | undefined;
  resource: string | undefined;
  full_jid: string | undefined;
  priority = 0;
  /** Last broadcast, undirected, available presence; undefined when unavailable. */
  presence: Element | undefined;
  /** Set when the resource requested the roster. */
  interested: boolean | undefined;
  /** The user's roster, shared by all of the user's sessions; loaded at bind. */
  roster: Roster | undefined;
  /** Stream id sent in our header. */
  streamId: string | undefined;
  lang = 'en';
  /** Why the session ended (set before destruction). */
  closeReason: CloseReason | undefined;
  destroyed = false;
  /**
   * Stream management (XEP-0198, mod_smacks): the connection is gone but the session waits for
   * the client to resume it. It stays bound and available; what is sent to it is kept for the
   * resumed stream (or, when it ends unresumed, re-routed as for an unavailable resource).
   */
  hibernating = false;
  /** Client State Indication (XEP-0352, mod_csi): 'inactive' while the client is in the background. */
  clientState: 'active' | 'inactive' = 'active';
  private ops: StreamOps;
  /** The session filters (none for a host's local session). */
  private readonly filters: SessionFilters | undefined;

  constructor(type: SessionType, conn: Connection | undefined, ops: StreamOps, filters?: SessionFilters) {
    this.id = conn ? conn.id : `local${++sessionCounter}`;
    this.type = type;
    this.conn = conn;
    this.ops = ops;
    this.filters = filters;
  }

  /** This session's logger (cadence:session:<id>), made on first use. */
  get log(): Logger {
    return (this.logger ??= getLogger(`session:${this.id}`));
  }

  /** Write to the session's stream; stanzas pass the `stanzas/out` filters first. */
  send(x: Element | string): boolean {
    const filters = this.filters;
    if (filters !== undefined && typeof x !== 'string' && filters.active('stanzas/out') && isStanzaKind(x.name)) {
      const filtered = filters.run('stanzas/out', this, x as Stanza);
      if (filtered === undefined) return true;
      x = filtered;
    }
    return this.ops.send(x);
  }

  close(reason?: CloseReason): void {
    this.ops.close(reason);
  }

  /**
   * Stream resumption (XEP-0198, through SessionControl.resume only): this session takes over the
   * connection and stream of `carrier`, the new connection the client resumed it on.
   */
  takeStream(carrier: Session): void {
    this.conn = carrier.conn;
    this.ops = carrier.ops;
    this.streamId = carrier.streamId;
    this.notopen = carrier.notopen;
    this.lang = carrier.lang;
    this.hibernating = false;
  }

  /** Elements waiting for the client to read (limits.sendQueue bounds them). */
  get queued(): number {
    return this.ops.queued?.() ?? 0;
  }

  /** Stream restart: the next data must be a new stream header. */
  resetStream(): void {
    this.notopen = true;
    this.ops.reset?.();
  }

  get bareJid(): string | undefined {
    return this.username && this.host ? `${this.username}@${this.host}` : undefined;
  }

  get isConnectedResource(): boolean {
    return this.full_jid !== undefined;
  }

  get isAvailable(): boolean {
    return this.presence !== undefined;
  }

  get isInterested(): boolean {
    return this.interested === true && this.full_jid !== undefined;
  }
}

/**
 * A connected resource (RFC 6120 §7): an authenticated client session with a bound resource, so
 * its address and roster are known. `isBound(session)` narrows a Session to it.
 */
export type BoundSession = Session & {
  type: 'c2s';
  username: string;
  host: string;
  resource: string;
  full_jid: string;
  roster: Roster;
};

/** Whether `session` is a client session with a bound resource (its username, host, resource, full JID and roster set). */
export function isBound(session: Session): session is BoundSession {
  return session.type === 'c2s' && session.full_jid !== undefined && session.username !== undefined
    && session.host !== undefined && session.resource !== undefined && session.roster !== undefined;
}
