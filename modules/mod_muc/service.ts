// A Multi-User Chat service (XEP-0045) on one domain: the rooms, room creation (§10.1), the
// service's own disco (§6.1–6.3), and the discipline around each room's handlers — one stanza at a
// time per room, durable changes stored through the persistence callback before anything is sent
// (and undone if storing fails), archivable messages handed to the archive hook.
//
// Input: a stanza addressed to the service domain, a room or an occupant JID, with 'from' and 'to'
// already checked and prepared by the router. Output: the stanzas to route, in order, each
// addressed to a real JID.
import { randomUUID } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { bare, iqPayload, iqResult, nickname, split } from '../../core/api.ts';
import { DEFAULT_CONFIG, type ConfigLimits, type RoomConfig } from './config.ts';
import type { HistoryEntry } from './history.ts';
import { FEATURE_STABLE_ID, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_OCCUPANT_ID, NS_PING, NS_SID, NS_MUC_USER } from './ns.ts';
import { newRoomSecret } from './occupant-id.ts';
import { Batch, notInRoomPresence, Room, type ArchivedMessage, type Checkpoint, type Retraction, type RoomEnv } from './room.ts';
import { parseSnapshot, type RoomSnapshot } from './snapshot.ts';
import { roomError } from './stanzas.ts';

/** Where the engine reports; the glue passes the module's logger. */
export interface MucLog {
  (fmt: string, ...args: unknown[]): void;
  warn(fmt: string, ...args: unknown[]): void;
  error(fmt: string, ...args: unknown[]): void;
}

/** The room archive (XEP-0313 on the room, written later by the MAM work). */
export interface MucArchive {
  /** Store a message the room broadcast; awaited before the broadcast is released. */
  store(entry: ArchivedMessage): void | Promise<void>;
  /**
   * Replace an archived message with a tombstone (XEP-0424/0425). For moderated retractions the
   * result says whether the archive held the message (the room answers item-not-found when
   * neither its history nor the archive had it); for an author's own retraction the archive must
   * check that `by` is the author's bare JID.
   */
  retract(r: Retraction): boolean | Promise<boolean>;
}

export interface MucServiceOptions {
  /** The service domain, e.g. conference.example.org. */
  host: string;
  /** Disco identity name of the service. */
  name?: string;
  /** Lock new rooms until their owner configures them (§10.1.1); default true. */
  lockRooms?: boolean;
  /** A room still locked after this long is destroyed by `sweep()`; default 5 minutes. */
  lockTimeoutMs?: number;
  /** Messages of history kept per room, and the upper bound of muc#maxhistoryfetch; default 100. */
  maxHistory?: number;
  /** Upper bound of muc#roomconfig_maxusers; default none. */
  maxUsers?: number | null;
  /** Settings of new rooms (over XEP-0045's example defaults). */
  defaultConfig?: Partial<RoomConfig>;
  /** Users may register with open rooms (§7.10); default true. */
  allowRegistration?: boolean;
  /** Who may create rooms (§10.1.1, not-allowed otherwise); default everyone. */
  canCreateRoom?: (bareJid: string) => boolean;
  /** Service administrators are owners of every room. */
  isServiceAdmin?: (bareJid: string) => boolean;
  /** Extra features for every room's disco#info (e.g. urn:xmpp:mam:2 once the archive exists). */
  roomFeatures?: readonly string[];
}

export interface MucDeps {
  /** ms since the epoch; default Date.now. */
  now?: () => number;
  /** Ids for stanzas and stanza-ids (unpredictable, XEP-0359); default random UUIDs. */
  newId?: () => string;
  /** A new room's occupant-id secret; default 32 random bytes. */
  newSecret?: () => string;
  /**
   * Store (or, with null, delete) a room's durable state. Awaited before the stanzas that
   * acknowledge the change are released; a rejection undoes the change and the requester gets
   * internal-server-error.
   */
  persist: (roomJid: string, snapshot: RoomSnapshot | null) => void | Promise<void>;
  archive?: MucArchive;
  log?: MucLog;
}

const noLog: MucLog = Object.assign(() => {}, { warn: () => {}, error: () => {} });

export class MucService {
  readonly host: string;
  private readonly rooms = new Map<string, Room>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly env: RoomEnv;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly newSecret: () => string;
  private readonly log: MucLog;
  private readonly limits: ConfigLimits;

  constructor(private readonly opts: MucServiceOptions, private readonly deps: MucDeps) {
    this.host = opts.host;
    this.now = deps.now ?? Date.now;
    this.newId = deps.newId ?? randomUUID;
    this.newSecret = deps.newSecret ?? newRoomSecret;
    this.log = deps.log ?? noLog;
    this.limits = { maxHistory: opts.maxHistory ?? 100, maxUsers: opts.maxUsers ?? null };
    const isAdmin = opts.isServiceAdmin ?? (() => false);
    this.env = {
      now: this.now,
      newId: this.newId,
      limits: this.limits,
      isServiceAdmin: isAdmin,
      allowRegistration: opts.allowRegistration ?? true,
      extraFeatures: opts.roomFeatures ?? [],
    };
  }

  /** Rebuild persistent rooms from stored snapshots (at start). Bad entries are skipped and reported. */
  restore(values: readonly unknown[]): { restored: string[]; skipped: { index: number; error: string }[] } {
    const restored: string[] = [];
    const skipped: { index: number; error: string }[] = [];
    values.forEach((v, index) => {
      const r = parseSnapshot(v);
      if (!r.ok) {
        skipped.push({ index, error: r.error });
        this.log.warn('skipping stored room #%d: %s', index, r.error);
        return;
      }
      if (split(r.snapshot.jid).host !== this.host) {
        skipped.push({ index, error: `room ${r.snapshot.jid} is not on ${this.host}` });
        return;
      }
      this.rooms.set(r.snapshot.jid, Room.fromSnapshot(this.env, r.snapshot));
      restored.push(r.snapshot.jid);
    });
    return { restored, skipped };
  }

  room(jid: string): Room | undefined {
    return this.rooms.get(jid);
  }

  allRooms(): Room[] {
    return [...this.rooms.values()];
  }

  /** Seed a room's history (e.g. from its archive after a restart). */
  seedHistory(roomJid: string, entries: readonly HistoryEntry[]): void {
    this.rooms.get(roomJid)?.history.seed(entries);
  }

  /** Everything to send in answer to one stanza for this service. */
  handle(stanza: Element): Promise<Element[]> {
    const to = stanza.attrs.to as string | undefined;
    const from = stanza.attrs.from as string | undefined;
    if (!to || !from) return Promise.resolve([]);
    const { node, host, resource } = split(to);
    if (host !== this.host) return Promise.resolve([]);
    if (!node) return Promise.resolve(this.serviceStanza(stanza));
    const roomJid = `${node}@${host}`;
    return this.serialize(roomJid, () => this.roomStanza(roomJid, stanza, resource));
  }

  /** One stanza at a time per room: a handler's durable change is stored before the next runs. */
  private serialize<T>(roomJid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(roomJid) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(roomJid, tail);
    void tail.then(() => {
      if (this.queues.get(roomJid) === tail) this.queues.delete(roomJid);
    });
    return run;
  }

  private async roomStanza(roomJid: string, stanza: Element, nick: string | undefined): Promise<Element[]> {
    let room = this.rooms.get(roomJid);
    const b = new Batch();
    let created = false;
    if (!room) {
      const r = this.createFor(roomJid, stanza, nick, b);
      if (!r) return b.send;
      room = r;
      created = true;
    }
    const cp = created ? undefined : mayChangeDurableState(stanza) ? room.checkpoint() : undefined;
    if (stanza.name === 'presence') {
      const joined = room.presence(b, stanza, nick, created);
      if (created && !joined) return b.send; // the creator's join failed: no room
      if (created) {
        this.rooms.set(roomJid, room);
        if (!room.locked) b.durable = true;
      }
    } else if (stanza.name === 'message') {
      room.message(b, stanza, nick);
    } else if (stanza.name === 'iq') {
      const mod = nick === undefined ? room.prepareModeration(b, stanza) : undefined;
      if (mod?.request) {
        const archived = await this.retractInArchive({
          room: roomJid, stanzaId: mod.request.stanzaId, retractionId: mod.request.announceId, time: this.now(), moderated: true,
          by: mod.request.moderatorJid, occupantId: mod.request.moderatorOccupantId, reason: mod.request.reason,
        });
        room.moderate(b, stanza, mod.request, archived);
      } else if (!mod) {
        room.iq(b, stanza, nick);
      }
    }
    if (!(await this.store(room, b, cp, created))) return internalError(stanza, roomJid);
    if (b.destroyed) this.rooms.delete(roomJid);
    for (const entry of b.archive) await this.archive(entry);
    for (const r of b.retractions) await this.retractInArchive(r);
    return b.send;
  }

  /** A stanza for a room that does not exist: create it (§10.1.1) or answer for it. */
  private createFor(roomJid: string, stanza: Element, nick: string | undefined, b: Batch): Room | undefined {
    const type = stanza.attrs.type as string | undefined;
    const from = stanza.attrs.from as string;
    const isJoin = stanza.name === 'presence' && type === undefined;
    if (!isJoin) {
      // §17.2 (messages), §7.10 (register), §6.4 (disco): the room does not exist.
      if (type !== 'error' && type !== 'result' && stanza.name !== 'presence') {
        b.send.push(roomError(stanza, roomJid, 'cancel', 'item-not-found', 'No such room'));
      }
      return undefined;
    }
    if (nick === undefined) {
      b.send.push(roomError(stanza, roomJid, 'modify', 'jid-malformed', 'Enter a room by sending presence to room@service/nick'));
      return undefined;
    }
    if (!stanza.getChild('x', NS_MUC)) {
      b.send.push(notInRoomPresence(`${roomJid}/${nick}`, from));
      return undefined;
    }
    if (nickname(nick) === null) {
      b.send.push(roomError(stanza, roomJid, 'modify', 'jid-malformed', 'Invalid nickname'));
      return undefined;
    }
    const creator = bare(from) ?? from;
    const admin = this.env.isServiceAdmin(creator);
    if (!admin && !(this.opts.canCreateRoom ?? (() => true))(creator)) {
      b.send.push(roomError(stanza, roomJid, 'cancel', 'not-allowed', 'You may not create rooms on this service'));
      return undefined;
    }
    const config: RoomConfig = { ...DEFAULT_CONFIG, ...this.opts.defaultConfig };
    config.presenceBroadcast = [...config.presenceBroadcast];
    config.getMemberList = [...config.getMemberList];
    if (config.historyLength > this.limits.maxHistory) config.historyLength = this.limits.maxHistory;
    return new Room(this.env, { jid: roomJid, secret: this.newSecret(), created: this.now(), locked: this.opts.lockRooms ?? true, config, owner: creator });
  }

  /**
   * Store a durable change before anything is released: a persistent room's snapshot, or the
   * deletion of one that is gone or no longer persistent. On failure the room is put back as it
   * was (a new room is forgotten) and false is returned.
   */
  private async store(room: Room, b: Batch, cp: Checkpoint | undefined, created: boolean): Promise<boolean> {
    let snapshot: RoomSnapshot | null | undefined;
    if (b.destroyed) snapshot = room.persisted ? null : undefined;
    else if (b.durable && !room.locked) snapshot = room.config.persistent ? room.snapshot() : room.persisted ? null : undefined;
    if (snapshot === undefined) return true;
    try {
      await this.deps.persist(room.jid, snapshot);
      room.persisted = snapshot !== null;
      return true;
    } catch (err) {
      this.log.error('storing room %s failed: %s', room.jid, err);
      if (created) this.rooms.delete(room.jid);
      else if (cp) room.rollback(cp);
      else this.log.error('room %s changed without a checkpoint; the change stays in memory only', room.jid);
      return false;
    }
  }

  private async archive(entry: ArchivedMessage): Promise<void> {
    if (!this.deps.archive) return;
    try {
      await this.deps.archive.store(entry);
    } catch (err) {
      this.log.error('archiving a message of %s failed: %s', entry.room, err);
    }
  }

  private async retractInArchive(r: Retraction): Promise<boolean> {
    if (!this.deps.archive) return false;
    try {
      return await this.deps.archive.retract(r);
    } catch (err) {
      this.log.error('retracting %s in the archive of %s failed: %s', r.stanzaId, r.room, err);
      return false;
    }
  }

  // ---- the service JID ----------------------------------------------------------------------

  /** §6.1–6.3: disco of the service; everything else addressed to it is refused. */
  private serviceStanza(stanza: Element): Element[] {
    const type = stanza.attrs.type as string | undefined;
    if (stanza.name === 'presence' || type === 'error' || type === 'result') return [];
    if (stanza.name === 'message') return [roomError(stanza, this.host, 'cancel', 'service-unavailable')];
    const payload = iqPayload(stanza);
    const ns = payload?.attrs.xmlns as string | undefined;
    if (type === 'get' && payload?.name === 'query' && ns === NS_DISCO_INFO) {
      if (payload.attrs.node) return [roomError(stanza, this.host, 'cancel', 'item-not-found')];
      const q = new Element('query', { xmlns: NS_DISCO_INFO });
      q.c('identity', { category: 'conference', type: 'text', name: this.opts.name ?? 'Chatrooms' });
      // XEP-0421 §5: every room has occupant ids, so the service says so too.
      for (const f of [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, FEATURE_STABLE_ID, NS_OCCUPANT_ID, NS_SID, NS_PING]) q.c('feature', { var: f });
      return [iqResult(stanza, q)];
    }
    if (type === 'get' && payload?.name === 'query' && ns === NS_DISCO_ITEMS) {
      if (payload.attrs.node) return [roomError(stanza, this.host, 'cancel', 'item-not-found')];
      const q = new Element('query', { xmlns: NS_DISCO_ITEMS });
      for (const room of this.rooms.values()) {
        if (room.locked || !room.config.public) continue; // §6.3: hidden rooms are not listed
        q.c('item', { jid: room.jid, name: room.config.name || room.jid.split('@')[0] });
      }
      return [iqResult(stanza, q)];
    }
    if (type === 'get' && payload?.name === 'ping' && ns === NS_PING) return [iqResult(stanza)];
    return [roomError(stanza, this.host, 'cancel', 'service-unavailable')];
  }

  // ---- housekeeping -------------------------------------------------------------------------

  /**
   * Destroy rooms left locked longer than the lock timeout (§10.1.1 "an implementation MAY set a
   * timeout for initial configuration"; §14.6 unconfigured rooms as a denial of service). The glue
   * calls this periodically and sends what it returns.
   */
  async sweep(): Promise<Element[]> {
    const limit = this.opts.lockTimeoutMs ?? 5 * 60_000;
    const out: Element[] = [];
    for (const room of [...this.rooms.values()]) {
      if (!room.locked || this.now() - room.lockedAt < limit) continue;
      out.push(...await this.serialize(room.jid, async () => {
        if (!room.locked || this.rooms.get(room.jid) !== room) return [];
        const b = new Batch();
        room.destroy(b, { reason: 'The room was not configured in time' });
        this.rooms.delete(room.jid);
        return b.send;
      }));
    }
    return out;
  }

  /** Service shutdown (§11.2, status 332): every occupant leaves; temporary rooms are gone. */
  shutdown(): Element[] {
    const out: Element[] = [];
    for (const room of this.rooms.values()) {
      const b = new Batch();
      room.shutdown(b);
      out.push(...b.send);
    }
    for (const [jid, room] of this.rooms) if (!room.config.persistent || room.locked) this.rooms.delete(jid);
    return out;
  }
}

/** Stanzas whose handling may change durable state (so a checkpoint is taken first). */
function mayChangeDurableState(stanza: Element): boolean {
  if (stanza.name === 'iq') return stanza.attrs.type === 'set';
  if (stanza.name !== 'message') return false;
  return stanza.getChild('subject') !== undefined || stanza.getChild('x', NS_MUC_USER) !== undefined || stanza.getChild('x', 'jabber:x:data') !== undefined;
}

function internalError(stanza: Element, roomJid: string): Element[] {
  const type = stanza.attrs.type as string | undefined;
  if (type === 'error' || (stanza.name === 'iq' && type === 'result')) return [];
  return [roomError(stanza, roomJid, 'wait', 'internal-server-error', 'The change could not be stored')];
}
