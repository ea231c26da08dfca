// The session registry: every session by connection, bound ones by host → user → resource, and
// connected components by domain. It moves sessions through their states (authenticate, bind,
// component handshake, destroy) and fires the lifecycle events. The model is core/session.ts.
import { randomUUID } from 'node:crypto';
import type { StreamTransport } from './net/transport.ts';
import type { EventBus } from './util/events.ts';
import type { GlobalEvents, HostEvents, SessionEvent } from './event-types.ts';
import { limitsHit } from './limits.ts';
import { getLogger } from './util/log.ts';
import type { Roster, RosterManager } from './rostermanager.ts';
import type { ResourceConflictPolicy } from './config.ts';
import { Session, SessionFilters, type BoundSession, type CloseReason, type SessionType, type StreamOps } from './session.ts';

interface UserSessions {
  sessions: Map<string, BoundSession>;
  roster: Roster;
}

export type BindResult = { ok: true; resource: string } | { ok: false; condition: 'conflict' | 'not-allowed' | 'resource-constraint' | 'internal-server-error' };

/** The session events fired on the server's bus and on the session's host's. */
type SessionEventName = 'authentication-success' | 'resource-bind' | 'resource-unbind' | 'session-added' | 'session-removed' | 'connection-removed';

/**
 * Session lookups, read-only: what every module may ask (`module.sessions`). The single-process
 * implementation is SessionManager; a cluster layer would answer the same questions for sessions
 * on other nodes. Modules keep no maps of other users' sessions: they ask here.
 */
export interface SessionRegistry {
  /** The connected resource `username@host/resource`. */
  getByFullJid(host: string, username: string, resource: string): BoundSession | undefined;
  /** A user's connected resources. */
  sessionsOf(host: string, username: string): BoundSession[];
  /** A user's available resources (presence set). */
  availableSessions(host: string, username: string): BoundSession[];
  /** The "most available" resources (RFC 6121 §8.5.2.1.1): available, non-negative priority, the highest one (all of a tie). */
  mostAvailableSessions(host: string, username: string): BoundSession[];
  /** A user's interested resources (they requested the roster). */
  interestedSessions(host: string, username: string): BoundSession[];
  /** The roster shared by a user's connected resources; undefined when none is connected. */
  roster(host: string, username: string): Roster | undefined;
  /** The connected external component serving `host` (XEP-0114). */
  getComponent(host: string): Session | undefined;
  /** Every connected resource, of one host or of all. */
  boundSessions(host?: string): Iterable<BoundSession>;
}

/** Changing sessions: for stream and authentication modules (capability 'sessions'). */
export interface SessionControl {
  /** A new connection's session (type c2s_unauthed or component_unauthed). */
  create(type: SessionType, conn: StreamTransport, ops: StreamOps): Session;
  /** SASL success: the session becomes type c2s, authenticated as `username` (not yet bound). */
  makeAuthenticated(session: Session, username: string): void;
  /** XEP-0114 handshake success; false when that component is already connected. */
  makeComponent(session: Session, host: string): boolean;
  /** Resource binding (RFC 6120 §7). */
  bind(session: Session, requested: string | undefined): Promise<BindResult>;
  /** Remove the session from every registry and fire the removal events. Idempotent. */
  destroy(session: Session, reason?: CloseReason): void;
  /**
   * Stream resumption (XEP-0198): `session` (bound, possibly hibernating) takes over the
   * connection of `carrier` (the new, authenticated, unbound session the client resumed on), which
   * is retired without unbind events; `session-resumed` tells the stream module.
   */
  resume(session: Session, carrier: Session): void;
}

/** Registry of all sessions, by connection and by host → user → resource. */
export class SessionManager implements SessionRegistry, SessionControl {
  readonly all = new Set<Session>();
  private readonly byHost = new Map<string, Map<string, UserSessions>>();
  /** Connected external components (XEP-0114), by their domain. */
  private readonly components = new Map<string, Session>();
  private readonly log = getLogger('core:sessionmanager');
  /** The session filters (module.filter), shared with the router for `stanzas/in`. */
  readonly filters = new SessionFilters();
  private readOnly: SessionRegistry | undefined;
  private controlView: SessionControl | undefined;

  constructor(
    private readonly events: EventBus<GlobalEvents>,
    private readonly hostEvents: (host: string) => EventBus<HostEvents> | undefined,
    private readonly rosters: RosterManager,
    private readonly conflictPolicy: () => ResourceConflictPolicy,
    /** Connected resources one account may have on `host` (0: unlimited); `limits.sessionsPerAccount`. */
    private readonly maxSessions: (host: string) => number = () => 0,
  ) {}

  private fire(name: SessionEventName, host: string | undefined, event: SessionEvent): void {
    this.events.emit(name, event);
    if (host) this.hostEvents(host)?.emit(name, event);
  }

  /** A new connection's session (type c2s_unauthed or component_unauthed). */
  create(type: SessionType, conn: StreamTransport, ops: StreamOps): Session {
    const session = new Session(type, conn, ops, this.filters);
    this.all.add(session);
    this.log('created %s %s from %s', type, session.id, conn.ip);
    this.events.emit('connection-added', { session });
    return session;
  }

  /** SASL success: the session becomes type c2s, authenticated as `username` (not yet bound). */
  makeAuthenticated(session: Session, username: string): void {
    if (session.type !== 'c2s_unauthed') throw new Error(`session ${session.id} is ${session.type}, not c2s_unauthed`);
    session.type = 'c2s';
    session.username = username;
    this.log('%s authenticated as %s@%s', session.id, username, session.host);
    this.fire('authentication-success', session.host, { session });
  }

  /**
   * XEP-0114 handshake success: the session becomes type component, serving `host`.
   * Returns false (the session is left unchanged) when that component is already connected.
   */
  makeComponent(session: Session, host: string): boolean {
    if (session.type !== 'component_unauthed') throw new Error(`session ${session.id} is ${session.type}, not component_unauthed`);
    if (this.components.has(host)) return false;
    session.type = 'component';
    session.host = host;
    this.components.set(host, session);
    this.log('%s authenticated as component %s', session.id, host);
    return true;
  }

  /** The connected external component serving `host`, if any. */
  getComponent(host: string): Session | undefined {
    return this.components.get(host);
  }

  /** Resource binding (RFC 6120 §7). Loads the roster and applies the conflict policy. */
  async bind(session: Session, requested: string | undefined): Promise<BindResult> {
    const { username, host } = session;
    if (session.type !== 'c2s' || !username || !host) return { ok: false, condition: 'not-allowed' };
    if (session.full_jid) return { ok: false, condition: 'not-allowed' };
    let user = this.byHost.get(host)?.get(username);
    if (!user) {
      let roster: Roster;
      try {
        roster = await this.rosters.acquire(host, username);
      } catch (err) {
        this.log.error('cannot load roster of %s@%s: %s', username, host, err);
        return { ok: false, condition: 'internal-server-error' };
      }
      if (session.destroyed) {
        this.rosters.release(host, username);
        return { ok: false, condition: 'not-allowed' };
      }
      // Another session of the user may have loaded it meanwhile.
      user = this.byHost.get(host)?.get(username);
      if (user) {
        this.rosters.release(host, username);
      } else {
        user = { sessions: new Map(), roster };
        let users = this.byHost.get(host);
        if (!users) this.byHost.set(host, (users = new Map()));
        users.set(username, user);
      }
    }
    let resource = requested ?? generateResource();
    const existing = user.sessions.get(resource);
    // RFC 6120 §7.6.2.1: the account has reached its number of connected resources (a resource
    // that replaces an existing one does not add to it).
    const max = this.maxSessions(host);
    if (max > 0 && user.sessions.size >= max && !(existing && requested && this.conflictPolicy() === 'kick_old')) {
      this.log.info('%s@%s has %d connected resources (the limit): refusing another', username, host, user.sessions.size);
      limitsHit.sessionsPerAccount++;
      return { ok: false, condition: 'resource-constraint' };
    }
    if (existing) {
      const policy = requested ? this.conflictPolicy() : 'random';
      if (policy === 'kick_new') return { ok: false, condition: 'conflict' };
      if (policy === 'random') {
        do resource = generateResource();
        while (user.sessions.has(resource));
      } else {
        this.log.info('resource conflict on %s: replacing the older session', existing.full_jid);
        existing.close({ condition: 'conflict', text: 'Replaced by new connection' });
        this.unbind(existing);
      }
    }
    session.resource = resource;
    session.full_jid = `${username}@${host}/${resource}`;
    session.roster = user.roster;
    user.sessions.set(resource, session as BoundSession);
    // Kicking the last other session dropped the user entry: put it back.
    let users = this.byHost.get(host);
    if (!users) this.byHost.set(host, (users = new Map()));
    if (users.get(username) !== user) {
      users.set(username, user);
      this.rosters.pin(host, username, user.roster);
    }
    this.log('%s bound %s', session.id, session.full_jid);
    this.fire('resource-bind', host, { session });
    this.fire('session-added', host, { session });
    return { ok: true, resource };
  }

  private unbind(session: Session): void {
    const { host, username, resource } = session;
    if (!host || !username || !resource) return;
    const users = this.byHost.get(host);
    const user = users?.get(username);
    if (!user || user.sessions.get(resource) !== session) return;
    // Listeners (presence) still see the session as it was: they send unavailable, etc.
    this.fire('resource-unbind', host, { session });
    this.fire('session-removed', host, { session });
    user.sessions.delete(resource);
    if (user.sessions.size === 0) {
      users!.delete(username);
      this.rosters.release(host, username);
    }
    session.full_jid = undefined;
    session.presence = undefined;
    session.interested = undefined;
  }

  /** Remove the session from every registry and fire the removal events. Idempotent. */
  destroy(session: Session, reason?: CloseReason): void {
    if (session.destroyed) return;
    session.closeReason ??= reason;
    this.unbind(session);
    session.destroyed = true;
    this.all.delete(session);
    if (session.type === 'component' && session.host && this.components.get(session.host) === session) this.components.delete(session.host);
    this.fire('connection-removed', session.host, { session });
    this.log('destroyed %s (%s)', session.id, reason?.condition ?? 'closed');
  }

  /** Stream resumption (XEP-0198): `session` takes over `carrier`'s connection; `carrier` is retired. */
  resume(session: Session, carrier: Session): void {
    if (session === carrier || carrier.full_jid !== undefined || session.destroyed || carrier.destroyed) {
      throw new Error(`cannot resume ${session.id} on ${carrier.id}`);
    }
    session.takeStream(carrier);
    carrier.destroyed = true;
    this.all.delete(carrier);
    this.log('%s resumed on the connection of %s', session.full_jid ?? session.id, carrier.id);
    this.events.emit('session-resumed', { session, carrier });
    this.fire('connection-removed', carrier.host, { session: carrier });
  }

  roster(host: string, username: string): Roster | undefined {
    return this.byHost.get(host)?.get(username)?.roster;
  }

  /** Connected resources of a user. */
  sessionsOf(host: string, username: string): BoundSession[] {
    const user = this.byHost.get(host)?.get(username);
    return user ? [...user.sessions.values()] : [];
  }

  getByFullJid(host: string, username: string, resource: string): BoundSession | undefined {
    return this.byHost.get(host)?.get(username)?.sessions.get(resource);
  }

  availableSessions(host: string, username: string): BoundSession[] {
    return this.sessionsOf(host, username).filter((s) => s.isAvailable);
  }

  /**
   * The "most available" resources (RFC 6121 §8.5.2.1.1): available, non-negative priority, and
   * the highest priority among them (all of them on a tie).
   */
  mostAvailableSessions(host: string, username: string): BoundSession[] {
    let best = -1;
    let out: BoundSession[] = [];
    for (const s of this.sessionsOf(host, username)) {
      if (!s.isAvailable || s.priority < 0 || s.priority < best) continue;
      if (s.priority > best) {
        best = s.priority;
        out = [];
      }
      out.push(s);
    }
    return out;
  }

  interestedSessions(host: string, username: string): BoundSession[] {
    return this.sessionsOf(host, username).filter((s) => s.isInterested);
  }

  /** Every bound c2s session, of one host or of all. */
  *boundSessions(host?: string): Iterable<BoundSession> {
    const hosts = host === undefined ? [...this.byHost.values()] : [this.byHost.get(host) ?? new Map<string, UserSessions>()];
    for (const users of hosts) for (const u of users.values()) yield* u.sessions.values();
  }

  /** The read-only view modules get (module.sessions): lookups only, nothing that changes the registry. */
  view(): SessionRegistry {
    return (this.readOnly ??= Object.freeze({
      getByFullJid: (h: string, u: string, r: string) => this.getByFullJid(h, u, r),
      sessionsOf: (h: string, u: string) => this.sessionsOf(h, u),
      availableSessions: (h: string, u: string) => this.availableSessions(h, u),
      mostAvailableSessions: (h: string, u: string) => this.mostAvailableSessions(h, u),
      interestedSessions: (h: string, u: string) => this.interestedSessions(h, u),
      roster: (h: string, u: string) => this.roster(h, u),
      getComponent: (h: string) => this.getComponent(h),
      boundSessions: (h?: string) => this.boundSessions(h),
    }));
  }

  /** The operations of capability 'sessions' (module.privileged.sessions). */
  control(): SessionControl {
    return (this.controlView ??= Object.freeze({
      create: (type: SessionType, conn: StreamTransport, ops: StreamOps) => this.create(type, conn, ops),
      makeAuthenticated: (s: Session, username: string) => this.makeAuthenticated(s, username),
      makeComponent: (s: Session, host: string) => this.makeComponent(s, host),
      bind: (s: Session, requested: string | undefined) => this.bind(s, requested),
      destroy: (s: Session, reason?: CloseReason) => this.destroy(s, reason),
      resume: (s: Session, carrier: Session) => this.resume(s, carrier),
    }));
  }
}

function generateResource(): string {
  return `cadence-${randomUUID().slice(0, 13)}`;
}
