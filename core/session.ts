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
import type { Roster } from './rostermanager.ts';

export type SessionType = 'c2s_unauthed' | 'c2s' | 'component_unauthed' | 'component' | 'local';

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
}

let sessionCounter = 0;

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
  private ops: StreamOps;

  constructor(type: SessionType, conn: Connection | undefined, ops: StreamOps) {
    this.id = conn ? conn.id : `local${++sessionCounter}`;
    this.type = type;
    this.conn = conn;
    this.ops = ops;
  }

  /** This session's logger (cadence:session:<id>), made on first use. */
  get log(): Logger {
    return (this.logger ??= getLogger(`session:${this.id}`));
  }

  send(x: Element | string): boolean {
    return this.ops.send(x);
  }

  close(reason?: CloseReason): void {
    this.ops.close(reason);
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
