// One Multi-User Chat room (XEP-0045): its state and what it does with each stanza addressed to
// it or to one of its occupants. Every handler is synchronous: it changes the in-memory state and
// appends to a Batch the stanzas to send (addressed to real JIDs), the messages to archive and
// whether durable state changed. The service (service.ts) owns rooms, persistence and ordering.
//
// Multiple sessions under one nick (§7.2.8): a user (bare JID) may join the same nick from
// several resources; they form one occupant with one role, in-room messages and private messages
// go to every session, the room shows the presence of the session that spoke last (the primary),
// and a nick change from any session moves all of them. Another bare JID asking for a nick in use
// gets conflict. One full JID is one occupant: presence from a joined full JID to another nick is
// a nick change (§7.6).
import { timingSafeEqual, createHash } from 'node:crypto';
import { Element } from '@xmpp/xml';
import {
  bare, findForm, form, iqPayload, iqResult, nickname, nicknameKey, parseBoolean, parseForm, prep, readSubmission, resultForm,
  type StanzaErrorCondition, type StanzaErrorType,
} from '../../core/api.ts';
import {
  configChangeCodes, configForm, DEFAULT_CONFIG, readConfigSubmission, roomTypeFeatures,
  type ConfigLimits, type RoomConfig,
} from './config.ts';
import { History, parseHistoryRequest, type HistoryEntry, type HistoryRequest } from './history.ts';
import {
  FEATURE_SELF_PING, FEATURE_STABLE_ID, FORM_REGISTER, FORM_REQUEST, FORM_ROOMCONFIG, FORM_ROOMINFO,
  NODE_ROOMUSER, NODE_TRAFFIC, NS_ADDRESS, NS_DATA, NS_DELAY, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_FASTEN,
  NS_MODERATE, NS_MODERATE_0, NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_USER, NS_OCCUPANT_ID, NS_PING,
  NS_REGISTER, NS_RETRACT, NS_RETRACT_0, NS_SID, NS_VCARD, Status,
} from './ns.ts';
import { occupantId } from './occupant-id.ts';
import {
  AFFILIATION_RANK, checkAffiliationChange, checkRoleChange, defaultRole, isAffiliation, isRole,
  roleAfterAffiliationChange, ROLE_RANK, type Affiliation, type Refusal, type Role, type Standing,
} from './roles.ts';
import { SNAPSHOT_VERSION, type AffiliationEntry, type RoomSnapshot, type SubjectState } from './snapshot.ts';
import {
  addressedCopy, childrenExcept, itemElement, mucUserX, occupantIdElement, roomError,
  stanzaIdElement, type DestroyInfo, type ItemInfo,
} from './stanzas.ts';

/** What the room needs from its service. */
export interface RoomEnv {
  now(): number;
  newId(): string;
  limits: ConfigLimits;
  /** Service administrators act as owners of every room. */
  isServiceAdmin(bareJid: string): boolean;
  /** Whether users may register with open rooms (§7.10). */
  allowRegistration: boolean;
  /** Features other modules add to every room's disco#info (e.g. MAM). */
  extraFeatures: readonly string[];
}

/** A message the room broadcast that belongs in its archive (the MAM hook). */
export interface ArchivedMessage {
  room: string;
  /** The stanza-id the room assigned (XEP-0359, by = the room JID). */
  stanzaId: string;
  time: number;
  /** The message as broadcast: from the occupant (or room) JID, without 'to'. */
  stanza: Element;
  /** Real full JID of the sender; undefined for messages the room itself sent. */
  senderJid: string | undefined;
  nick: string | undefined;
  occupantId: string | undefined;
}

/** A retraction the archive should apply (tombstone the message with this stanza-id). */
export interface Retraction {
  room: string;
  stanzaId: string;
  /** The stanza-id of the message announcing the retraction. */
  retractionId: string;
  /**
   * The 'id' attribute of that message, which the tombstone names (XEP-0424 §"Tombstones");
   * when absent, `retractionId` (the room's announcements use one id for both).
   */
  retractionMessageId?: string;
  time: number;
  /** XEP-0425: a moderator's action; otherwise the author retracted (XEP-0424) and `authorBare` must match. */
  moderated: boolean;
  /** Occupant JID of the moderator (moderated), or the author's bare JID. */
  by: string;
  occupantId: string;
  reason?: string;
}

/** What one handled stanza produced. */
export class Batch {
  /** Stanzas to route, in order, each addressed to a real JID. */
  readonly send: Element[] = [];
  readonly archive: ArchivedMessage[] = [];
  readonly retractions: Retraction[] = [];
  /** Durable state (snapshot) changed. */
  durable = false;
  /** The room is gone (destroyed, cancelled, or temporary and empty). */
  destroyed = false;
}

interface Occupant {
  /** The nick as shown (RFC 8266 enforcement, case preserved). */
  nick: string;
  /** The nick as compared (RFC 8266 comparison form). */
  key: string;
  /** Real bare JID. */
  bare: string;
  role: Role;
  /** Real full JID → its last presence (the client's children, MUC payloads removed). */
  sessions: Map<string, Element>;
  /** The session whose presence the room shows. */
  primary: string;
}

interface PendingIq {
  requester: string;
  id: string | undefined;
  /** Where the request was forwarded (responses must come from there). */
  dest: string;
  targetKey: string;
  targetNick: string;
  expires: number;
}

interface PresenceOpts {
  type?: 'unavailable';
  /** Client presence to carry (an unavailable presence's status); default: the primary session's. */
  base?: Element;
  /** Status codes for every recipient; `selfStatuses` only for the occupant's own sessions (110 is added). */
  statuses?: readonly number[];
  selfStatuses?: readonly number[];
  /** Send from this nick instead of the current one (nick change). */
  fromNick?: string;
  /** The new nick (303). */
  nick?: string;
  role?: Role;
  affiliation?: Affiliation;
  actor?: ItemInfo['actor'];
  reason?: string;
  destroy?: DestroyInfo;
  id?: string;
}

export interface ModerationRequest {
  stanzaId: string;
  reason: string | undefined;
  moderatorJid: string;
  moderatorOccupantId: string;
  /** The id of the announcement message (also its stanza-id). */
  announceId: string;
}

export interface Checkpoint {
  snapshot: RoomSnapshot;
  locked: boolean;
  occupants: Occupant[];
  history: HistoryEntry[];
}

const DELIVERY_ERRORS: ReadonlySet<string> = new Set([
  'gone', 'item-not-found', 'recipient-unavailable', 'redirect', 'remote-server-not-found', 'remote-server-timeout', 'service-unavailable',
]);
const PENDING_IQ_TTL = 120_000;
const PENDING_IQ_MAX = 1000;
/** Payloads that make a groupchat message worth keeping (history and archive). */
const ARCHIVABLE: readonly [string, string][] = [
  ['encrypted', 'eu.siacs.conversations.axolotl'],
  ['encrypted', 'urn:xmpp:omemo:2'],
  ['reactions', 'urn:xmpp:reactions:0'],
  ['retract', NS_RETRACT],
  ['apply-to', NS_FASTEN],
];

const isMucPayload = (c: Element) => {
  const ns = c.attrs.xmlns as string | undefined;
  return (c.name === 'x' && (ns === NS_MUC || ns === NS_MUC_USER)) || (c.name === 'occupant-id' && ns === NS_OCCUPANT_ID);
};

function safeEqual(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}

/** Prep a JID and return its bare form (a domain stays a domain); null when invalid. */
export function bareJid(s: string): string | null {
  const p = prep(s);
  return p === null ? null : (bare(p) ?? null);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class Room {
  readonly jid: string;
  config: RoomConfig;
  /** Created but not yet configured (§10.1.1): only owners may enter. */
  locked: boolean;
  /** When the room was locked (for the service's lock timeout). */
  lockedAt: number;
  created: number;
  /** A snapshot of this room is in storage. */
  persisted = false;
  subject: SubjectState | undefined;
  readonly history: History;
  private secret: string;
  private readonly affiliations = new Map<string, AffiliationEntry>();
  private readonly voice = new Map<string, 'participant' | 'visitor'>();
  private readonly occupants = new Map<string, Occupant>();
  private readonly bySession = new Map<string, Occupant>();
  private readonly pendingIq = new Map<string, PendingIq>();
  private readonly ids = new Map<string, string>();

  constructor(
    private readonly env: RoomEnv,
    init: {
      jid: string;
      secret: string;
      created: number;
      locked: boolean;
      config?: RoomConfig;
      owner?: string;
    },
  ) {
    this.jid = init.jid;
    this.secret = init.secret;
    this.created = init.created;
    this.locked = init.locked;
    this.lockedAt = init.created;
    this.config = init.config ?? { ...DEFAULT_CONFIG, presenceBroadcast: [...DEFAULT_CONFIG.presenceBroadcast], getMemberList: [...DEFAULT_CONFIG.getMemberList] };
    if (init.owner) this.affiliations.set(init.owner, { affiliation: 'owner' });
    this.history = new History(env.limits.maxHistory);
  }

  static fromSnapshot(env: RoomEnv, s: RoomSnapshot): Room {
    const room = new Room(env, { jid: s.jid, secret: s.secret, created: s.created, locked: false, config: structuredClone(s.config) });
    room.loadDurable(s);
    room.persisted = true;
    return room;
  }

  private loadDurable(s: RoomSnapshot): void {
    this.config = structuredClone(s.config);
    this.secret = s.secret;
    this.created = s.created;
    this.affiliations.clear();
    for (const [jid, e] of Object.entries(s.affiliations)) this.affiliations.set(jid, { ...e });
    this.voice.clear();
    for (const [jid, r] of Object.entries(s.voice)) this.voice.set(jid, r);
    this.subject = s.subject ? { ...s.subject } : undefined;
    this.ids.clear();
  }

  /** The durable state as a JSON-serialisable value. */
  snapshot(): RoomSnapshot {
    return {
      version: SNAPSHOT_VERSION,
      jid: this.jid,
      created: this.created,
      config: structuredClone(this.config),
      affiliations: Object.fromEntries([...this.affiliations].map(([j, e]) => [j, { ...e }])),
      ...(this.subject ? { subject: { ...this.subject } } : {}),
      voice: Object.fromEntries(this.voice),
      secret: this.secret,
    };
  }

  /** Everything a failed persistence must undo (durable state, occupants, history). */
  checkpoint(): Checkpoint {
    return {
      snapshot: this.snapshot(),
      locked: this.locked,
      occupants: [...this.occupants.values()].map((o) => ({ ...o, sessions: new Map(o.sessions) })),
      history: [...this.history.all()],
    };
  }

  rollback(cp: Checkpoint): void {
    this.loadDurable(cp.snapshot);
    this.locked = cp.locked;
    this.occupants.clear();
    this.bySession.clear();
    for (const o of cp.occupants) {
      this.occupants.set(o.key, o);
      for (const s of o.sessions.keys()) this.bySession.set(s, o);
    }
    this.history.seed(cp.history);
  }

  get occupantCount(): number {
    return this.occupants.size;
  }

  get isEmpty(): boolean {
    return this.occupants.size === 0;
  }

  /** Nicks of the occupants (for tests and the admin shell). */
  nicks(): string[] {
    return [...this.occupants.values()].map((o) => o.nick);
  }

  /** Real full JIDs of every joined session. */
  sessionJids(): string[] {
    return [...this.bySession.keys()];
  }

  isOccupantSession(fullJid: string): boolean {
    return this.bySession.has(fullJid);
  }

  /** Whether the session `fullJid` may see real JIDs (non-anonymous room, or it is a moderator here). */
  showsJidsTo(fullJid: string): boolean {
    return this.seesJids(this.bySession.get(fullJid));
  }

  // ---- affiliations and roles ---------------------------------------------------------------

  /** The affiliation of a user: service admins are owners; an entry for the user's domain applies when the user has none. */
  affiliationOf(bareJid: string): Affiliation {
    if (this.env.isServiceAdmin(bareJid)) return 'owner';
    const e = this.affiliations.get(bareJid);
    if (e) return e.affiliation;
    const at = bareJid.indexOf('@');
    if (at >= 0) {
      const d = this.affiliations.get(bareJid.slice(at + 1));
      if (d) return d.affiliation;
    }
    return 'none';
  }

  /** Affiliation lists (§9.5, §9.8, §10.5, §10.8): bare JIDs with that affiliation. */
  listAffiliation(a: Exclude<Affiliation, 'none'>): string[] {
    return [...this.affiliations].filter(([, e]) => e.affiliation === a).map(([j]) => j);
  }

  reservedNick(bareJid: string): string | undefined {
    return this.affiliations.get(bareJid)?.nick;
  }

  /** Who reserved the nick with this comparison key, if anyone. */
  private reservedBy(key: string): string | undefined {
    for (const [jid, e] of this.affiliations) if (e.nick !== undefined && nicknameKey(e.nick) === key) return jid;
    return undefined;
  }

  occupantId(bareJid: string): string {
    let id = this.ids.get(bareJid);
    if (id === undefined) {
      id = occupantId(this.secret, bareJid);
      this.ids.set(bareJid, id);
    }
    return id;
  }

  private occupantJid(nick: string): string {
    return `${this.jid}/${nick}`;
  }

  private standing(bareJid: string): Standing {
    const affiliation = this.affiliationOf(bareJid);
    let role: Role = 'none';
    for (const o of this.occupants.values()) if (o.bare === bareJid && ROLE_RANK[o.role] > ROLE_RANK[role]) role = o.role;
    // Admins and owners act as moderators from outside the room too.
    if (role === 'none' && AFFILIATION_RANK[affiliation] >= AFFILIATION_RANK.admin) role = 'moderator';
    return { role, affiliation };
  }

  private initialRole(bareJid: string, a: Affiliation): Role {
    if (this.config.moderated && AFFILIATION_RANK[a] < AFFILIATION_RANK.admin) {
      const v = this.voice.get(bareJid);
      if (v) return v;
    }
    return defaultRole(a, this.config.moderated) ?? 'visitor';
  }

  private broadcastRole(role: Role): boolean {
    return role !== 'none' && (this.config.presenceBroadcast as readonly string[]).includes(role);
  }

  private actorOf(bareJid: string): ItemInfo['actor'] {
    const occ = [...this.occupants.values()].find((o) => o.bare === bareJid);
    if (occ) return this.config.whois === 'anyone' ? { nick: occ.nick, jid: bareJid } : { nick: occ.nick };
    return { jid: bareJid };
  }

  // ---- building stanzas -----------------------------------------------------------------------

  private error(b: Batch, stanza: Element, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string): void {
    if (stanza.attrs.type === 'error' || (stanza.name === 'iq' && stanza.attrs.type === 'result')) return;
    b.send.push(roomError(stanza, this.jid, type, condition, text));
  }

  private refuse(b: Batch, stanza: Element, r: Refusal): void {
    this.error(b, stanza, r.type, r.condition, r.text);
  }

  /** A presence of `occ` without 'to'; `showJid` says whether the item carries the real JID. */
  private presenceTemplate(occ: Occupant, showJid: boolean, self: boolean, o: PresenceOpts): Element {
    const attrs: Record<string, string> = { from: this.occupantJid(o.fromNick ?? occ.nick) };
    if (o.id !== undefined) attrs.id = o.id;
    if (o.type) attrs.type = o.type;
    const el = new Element('presence', attrs);
    const base = o.base ?? (o.type === 'unavailable' ? undefined : occ.sessions.get(occ.primary));
    if (base) el.children = childrenExcept(base, isMucPayload);
    const statuses = self ? [...(o.statuses ?? []), Status.Self, ...(o.selfStatuses ?? [])] : [...(o.statuses ?? [])];
    el.cnode(mucUserX({
      affiliation: o.affiliation ?? this.affiliationOf(occ.bare),
      role: o.role ?? (o.type === 'unavailable' ? 'none' : occ.role),
      jid: showJid ? occ.primary : undefined,
      nick: o.nick,
      actor: o.actor,
      reason: o.reason,
    }, statuses, o.destroy));
    el.cnode(occupantIdElement(this.occupantId(occ.bare)));
    return el;
  }

  private seesJids(viewer: Occupant | undefined): boolean {
    return this.config.whois === 'anyone' || viewer?.role === 'moderator';
  }

  /** `occ`'s presence for one session of `viewer`. */
  private presenceTo(occ: Occupant, to: string, viewer: Occupant | undefined, o: PresenceOpts = {}): Element {
    const self = viewer === occ;
    return addressedCopy(this.presenceTemplate(occ, self || this.seesJids(viewer), self, o), to);
  }

  /**
   * Send `occ`'s presence to every session in the room: its own sessions get the self form (110),
   * others get it when its role's presence is broadcast (or `force`). `visibleBefore`: on a role
   * change, viewers who saw the old role but must not see the new one get unavailable presence.
   */
  private broadcastPresence(b: Batch, occ: Occupant, o: PresenceOpts & { except?: string; visibleBefore?: boolean; force?: boolean } = {}): void {
    const visible = o.force || this.broadcastRole(o.role ?? occ.role);
    const hide = !visible && o.visibleBefore;
    const opts: PresenceOpts = hide ? { ...o, type: 'unavailable', role: 'none', base: undefined } : o;
    const id = o.id ?? this.env.newId();
    let withJid: Element | undefined;
    let withoutJid: Element | undefined;
    for (const viewer of this.occupants.values()) {
      const self = viewer === occ;
      if (!self && !visible && !hide) continue;
      for (const s of viewer.sessions.keys()) {
        if (s === o.except) continue;
        if (self) {
          b.send.push(addressedCopy(this.presenceTemplate(occ, true, true, { ...o, id }), s));
        } else if (this.seesJids(viewer)) {
          withJid ??= this.presenceTemplate(occ, true, false, { ...opts, id });
          b.send.push(addressedCopy(withJid, s));
        } else {
          withoutJid ??= this.presenceTemplate(occ, false, false, { ...opts, id });
          b.send.push(addressedCopy(withoutJid, s));
        }
      }
    }
  }

  /** Send a template (from the room or an occupant JID) to every session in the room. */
  private broadcast(b: Batch, template: Element): void {
    for (const s of this.bySession.keys()) b.send.push(addressedCopy(template, s));
  }

  private subjectMessage(to: string): Element {
    const s = this.subject;
    const el = new Element('message', { from: s?.nick ? this.occupantJid(s.nick) : this.jid, to, type: 'groupchat', id: this.env.newId() });
    el.c('subject').t(s?.text ?? '');
    if (s) el.c('delay', { xmlns: NS_DELAY, from: this.jid, stamp: iso(s.time) });
    if (s?.nick && s.occupantId) el.cnode(occupantIdElement(s.occupantId));
    return el;
  }

  private renderHistory(e: HistoryEntry, to: string): Element {
    // §7.9: history the owner brought from a one-to-one chat keeps its own delay, not ours.
    const extra = e.stanza.getChild('delay', NS_DELAY) ? [] : [new Element('delay', { xmlns: NS_DELAY, from: this.jid, stamp: iso(e.time) })];
    if (this.config.whois === 'anyone') {
      const addresses = new Element('addresses', { xmlns: NS_ADDRESS });
      addresses.c('address', { type: 'ofrom', jid: e.senderJid });
      extra.push(addresses);
    }
    return addressedCopy(e.stanza, to, extra);
  }

  /** §7.1 order after the presence of the others: self-presence, history, subject. */
  private sendEntry(b: Batch, occ: Occupant, to: string, selfStatuses: number[], id: string | undefined, history: HistoryRequest): void {
    b.send.push(addressedCopy(this.presenceTemplate(occ, true, true, { selfStatuses, id }), to));
    b.send.push(...this.history.select(history, { limit: this.config.historyLength, now: this.env.now(), render: (e) => this.renderHistory(e, to) }));
    b.send.push(this.subjectMessage(to));
  }

  private othersTo(b: Batch, viewer: Occupant, to: string): void {
    for (const other of this.occupants.values()) {
      if (other === viewer || !this.broadcastRole(other.role)) continue;
      b.send.push(this.presenceTo(other, to, viewer));
    }
  }

  // ---- presence -----------------------------------------------------------------------------

  /** Presence to the room JID or to an occupant JID (`nick`). */
  presence(b: Batch, stanza: Element, nick: string | undefined, created = false): boolean {
    const from = stanza.attrs.from as string;
    const type = stanza.attrs.type as string | undefined;
    const occ = this.bySession.get(from);
    if (type === 'error') {
      // §18.1.2 ghost users: a session that bounces what the room sent it has gone.
      if (occ && this.isDeliveryError(stanza)) this.removeSession(b, occ, from, [Status.ErrorRemoved]);
      return false;
    }
    if (type === 'unavailable') {
      if (occ) this.leave(b, occ, from, stanza); // §17.3 rule 5: ignored from non-occupants
      return false;
    }
    if (type === 'probe') {
      const target = nick === undefined ? undefined : this.occupants.get(nicknameKey(nick) ?? '');
      if (occ && target && (target === occ || this.broadcastRole(target.role))) b.send.push(this.presenceTo(target, from, occ));
      return false;
    }
    if (type !== undefined) return false; // subscriptions and unknown types are not MUC business
    if (nick === undefined) {
      this.error(b, stanza, 'modify', 'jid-malformed', 'Enter a room by sending presence to room@service/nick');
      return false;
    }
    if (!occ) return this.join(b, stanza, nick, created);
    const enforced = nickname(nick);
    if (enforced === null) {
      this.error(b, stanza, 'modify', 'jid-malformed', 'Invalid nickname');
      return false;
    }
    if (enforced === occ.nick) {
      if (stanza.getChild('x', NS_MUC)) this.resync(b, occ, from, stanza);
      else this.updatePresence(b, occ, from, stanza);
    } else {
      this.changeNick(b, occ, from, stanza, nick, enforced);
    }
    return true;
  }

  private cleanPresence(stanza: Element): Element {
    const p = new Element('presence');
    p.children = childrenExcept(stanza, isMucPayload);
    return p;
  }

  /** §7.2: enter the room. Returns whether the user is now an occupant. */
  private join(b: Batch, stanza: Element, requested: string, created: boolean): boolean {
    const from = stanza.attrs.from as string;
    const userBare = bare(from) ?? from;
    const x = stanza.getChild('x', NS_MUC);
    if (!x) {
      // §7.2.18: presence without the MUC element from a non-occupant is a client that lost
      // track of the room; tell it explicitly that it is not in (110 + 307 + 333).
      b.send.push(this.notInRoom(from, requested));
      return false;
    }
    const nick = nickname(requested);
    const key = nick === null ? null : nicknameKey(nick);
    if (nick === null || key === null) {
      this.error(b, stanza, 'modify', 'jid-malformed', 'Invalid nickname');
      return false;
    }
    const aff = this.affiliationOf(userBare);
    if (this.locked && aff !== 'owner') {
      this.error(b, stanza, 'cancel', 'item-not-found', 'The room is locked until its owner configures it');
      return false;
    }
    if (aff === 'outcast') {
      this.error(b, stanza, 'auth', 'forbidden', 'You are banned from this room');
      return false;
    }
    if (this.config.membersOnly && AFFILIATION_RANK[aff] < AFFILIATION_RANK.member) {
      this.error(b, stanza, 'auth', 'registration-required', 'This room is for members only');
      return false;
    }
    if (this.config.passwordProtected && !this.env.isServiceAdmin(userBare) && !safeEqual(x.getChildText('password') ?? '', this.config.password)) {
      this.error(b, stanza, 'auth', 'not-authorized', 'This room needs a password');
      return false;
    }
    let occ = this.occupants.get(key);
    if (occ && occ.bare !== userBare) {
      this.error(b, stanza, 'cancel', 'conflict', 'That nickname is in use');
      return false;
    }
    if (!occ) {
      const holder = this.reservedBy(key);
      if (holder !== undefined && holder !== userBare) {
        this.error(b, stanza, 'cancel', 'conflict', 'That nickname is reserved by another user');
        return false;
      }
      const max = this.config.maxUsers;
      if (max !== null && this.occupants.size >= max && AFFILIATION_RANK[aff] < AFFILIATION_RANK.admin) {
        this.error(b, stanza, 'wait', 'service-unavailable', 'The room is full');
        return false;
      }
    }
    const presence = this.cleanPresence(stanza);
    const firstSession = !occ;
    if (!occ) {
      occ = { nick, key, bare: userBare, role: this.initialRole(userBare, aff), sessions: new Map(), primary: from };
      this.occupants.set(key, occ);
    }
    occ.sessions.set(from, presence);
    occ.primary = from;
    this.bySession.set(from, occ);
    const id = stanza.attrs.id as string | undefined;
    this.othersTo(b, occ, from);
    // The new presence to everybody else (and the occupant's other sessions).
    this.broadcastPresence(b, occ, { except: from });
    const codes: number[] = [];
    if (this.config.whois === 'anyone') codes.push(Status.NonAnonymous);
    if (this.config.enableLogging) codes.push(Status.LoggingEnabled);
    if (created && firstSession) codes.push(Status.Created);
    if (occ.nick !== requested) codes.push(Status.NickModified);
    this.sendEntry(b, occ, from, codes, id, parseHistoryRequest(x.getChild('history')));
    return true;
  }

  private notInRoom(to: string, nick: string): Element {
    return notInRoomPresence(this.occupantJid(nick), to);
  }

  /** §7.2.1, §17.3 rule 3: a join from a session already in the room is a request to resynchronise. */
  private resync(b: Batch, occ: Occupant, from: string, stanza: Element): void {
    const changed = this.cleanPresence(stanza).toString() !== occ.sessions.get(from)?.toString();
    occ.sessions.set(from, this.cleanPresence(stanza));
    occ.primary = from;
    this.othersTo(b, occ, from);
    if (changed) this.broadcastPresence(b, occ, { except: from });
    const codes: number[] = [];
    if (this.config.whois === 'anyone') codes.push(Status.NonAnonymous);
    if (this.config.enableLogging) codes.push(Status.LoggingEnabled);
    const x = stanza.getChild('x', NS_MUC);
    this.sendEntry(b, occ, from, codes, stanza.attrs.id as string | undefined, parseHistoryRequest(x?.getChild('history')));
  }

  /** §7.7: new availability status. */
  private updatePresence(b: Batch, occ: Occupant, from: string, stanza: Element): void {
    occ.sessions.set(from, this.cleanPresence(stanza));
    occ.primary = from;
    this.broadcastPresence(b, occ, { id: stanza.attrs.id as string | undefined });
  }

  /** §7.6: change nickname (all sessions of the occupant move). */
  private changeNick(b: Batch, occ: Occupant, from: string, stanza: Element, requested: string, nick: string): void {
    const key = nicknameKey(nick);
    if (key === null) {
      this.error(b, stanza, 'modify', 'jid-malformed', 'Invalid nickname');
      return;
    }
    const holder = this.occupants.get(key);
    if (holder && holder !== occ) {
      this.error(b, stanza, 'cancel', 'conflict', 'That nickname is in use');
      return;
    }
    const reserved = this.reservedBy(key);
    if (reserved !== undefined && reserved !== occ.bare) {
      this.error(b, stanza, 'cancel', 'conflict', 'That nickname is reserved by another user');
      return;
    }
    const old = occ.nick;
    occ.sessions.set(from, this.cleanPresence(stanza));
    occ.primary = from;
    this.broadcastPresence(b, occ, { type: 'unavailable', fromNick: old, nick, role: occ.role, statuses: [Status.NickChanged], base: undefined });
    this.occupants.delete(occ.key);
    occ.nick = nick;
    occ.key = key;
    this.occupants.set(key, occ);
    this.broadcastPresence(b, occ, { id: stanza.attrs.id as string | undefined, selfStatuses: nick !== requested ? [Status.NickModified] : [] });
  }

  /** §7.14: a session leaves. */
  private leave(b: Batch, occ: Occupant, from: string, stanza: Element): void {
    this.removeSession(b, occ, from, [], this.cleanPresence(stanza));
  }

  /** Remove one session; the occupant leaves with its last session. */
  private removeSession(b: Batch, occ: Occupant, from: string, statuses: number[], base?: Element): void {
    if (occ.sessions.size > 1) {
      b.send.push(addressedCopy(this.presenceTemplate(occ, true, true, { type: 'unavailable', base, statuses, id: this.env.newId() }), from));
      occ.sessions.delete(from);
      this.bySession.delete(from);
      if (occ.primary === from) {
        occ.primary = occ.sessions.keys().next().value as string;
        this.broadcastPresence(b, occ);
      }
      return;
    }
    this.removeOccupant(b, occ, { statuses, base });
  }

  /**
   * Remove an occupant with all its sessions: unavailable self-presence (110) to each session,
   * then `between` (e.g. the moderator's iq result, §8.2), then unavailable to the others.
   */
  private removeOccupant(
    b: Batch,
    occ: Occupant,
    o: { statuses: number[]; base?: Element; actor?: ItemInfo['actor']; reason?: string; between?: Element; affiliation?: Affiliation },
  ): void {
    // The owner of a room that was never configured leaves: the room is destroyed (§10.1.3).
    const destroyLocked = this.locked && this.occupants.size === 1;
    const opts: PresenceOpts = {
      type: 'unavailable', base: o.base, statuses: o.statuses, actor: o.actor, reason: o.reason, affiliation: o.affiliation,
      id: this.env.newId(), ...(destroyLocked ? { destroy: {} } : {}),
    };
    for (const s of occ.sessions.keys()) b.send.push(addressedCopy(this.presenceTemplate(occ, true, true, opts), s));
    if (o.between) b.send.push(o.between);
    const visible = this.broadcastRole(occ.role);
    this.occupants.delete(occ.key);
    for (const s of occ.sessions.keys()) this.bySession.delete(s);
    if (visible) this.broadcastPresence(b, occ, { ...opts, force: true });
    if (destroyLocked) {
      b.destroyed = true;
      return;
    }
    this.checkEmpty(b);
  }

  private checkEmpty(b: Batch): void {
    if (this.occupants.size === 0 && (!this.config.persistent || this.locked)) b.destroyed = true;
  }

  private isDeliveryError(stanza: Element): boolean {
    const err = stanza.getChild('error');
    if (!err) return false;
    return err.children.some((c) => typeof c !== 'string' && DELIVERY_ERRORS.has(c.name) && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas');
  }

  // ---- messages -----------------------------------------------------------------------------

  message(b: Batch, stanza: Element, nick: string | undefined): void {
    const from = stanza.attrs.from as string;
    const type = (stanza.attrs.type as string | undefined) ?? 'normal';
    const occ = this.bySession.get(from);
    if (type === 'error') {
      if (occ && this.isDeliveryError(stanza)) this.removeSession(b, occ, from, [Status.ErrorRemoved]);
      else if (occ && nick !== undefined) this.privateMessage(b, stanza, nick, occ);
      return;
    }
    if (this.locked && !occ) {
      this.error(b, stanza, 'cancel', 'item-not-found', 'The room is locked until its owner configures it');
      return;
    }
    if (nick !== undefined) {
      this.privateMessage(b, stanza, nick, occ);
      return;
    }
    if (type === 'groupchat') {
      this.groupchat(b, stanza, occ);
      return;
    }
    const x = stanza.getChild('x', NS_MUC_USER);
    if (x?.getChild('invite')) {
      this.invite(b, stanza, x, occ);
      return;
    }
    if (x?.getChild('decline')) {
      this.decline(b, stanza, x);
      return;
    }
    const request = findForm(stanza, FORM_REQUEST);
    if (request) {
      this.voiceForm(b, stanza, request, occ);
      return;
    }
    if (type === 'headline') return;
    this.error(b, stanza, 'modify', 'bad-request', 'Messages to all occupants are of type groupchat');
  }

  /** §7.4: a message to all occupants (or §8.1 a subject change). */
  private groupchat(b: Batch, stanza: Element, occ: Occupant | undefined): void {
    if (!occ) {
      this.error(b, stanza, 'modify', 'not-acceptable', 'You are not in the room');
      return;
    }
    const hasBody = stanza.getChild('body') !== undefined;
    if (stanza.getChild('subject') !== undefined && !hasBody && stanza.getChild('thread') === undefined) {
      this.changeSubject(b, stanza, occ);
      return;
    }
    if (ROLE_RANK[occ.role] < ROLE_RANK.participant) {
      this.error(b, stanza, 'auth', 'forbidden', 'You have no voice in this room');
      return;
    }
    const archivable = this.isArchivable(stanza);
    const tpl = new Element('message', { ...this.copyAttrs(stanza), from: this.occupantJid(occ.nick), type: 'groupchat', id: (stanza.attrs.id as string | undefined) ?? this.env.newId() });
    tpl.children = this.foreignChildren(stanza);
    let stanzaId: string | undefined;
    if (archivable) {
      stanzaId = this.env.newId();
      tpl.cnode(stanzaIdElement(stanzaId, this.jid));
    }
    const oid = this.occupantId(occ.bare);
    tpl.cnode(occupantIdElement(oid));
    this.broadcast(b, tpl);
    if (stanzaId === undefined) return;
    const time = this.env.now();
    const from = stanza.attrs.from as string;
    const retract = stanza.getChild('retract', NS_RETRACT);
    if (retract) this.selfRetraction(b, occ, retract, stanzaId, tpl.attrs.id as string, time);
    else this.history.push({ stanza: tpl, time, stanzaId, senderJid: from });
    b.archive.push({ room: this.jid, stanzaId, time, stanza: tpl, senderJid: from, nick: occ.nick, occupantId: oid });
  }

  /** XEP-0424 in a room: the author retracts its own message; it is no longer replayed. */
  private selfRetraction(b: Batch, occ: Occupant, retract: Element, retractionId: string, retractionMessageId: string, time: number): void {
    const target = retract.attrs.id as string | undefined;
    if (!target) return;
    const entry = this.history.find(target);
    if (entry && bare(entry.senderJid) !== occ.bare) return;
    if (entry) this.history.remove(target);
    b.retractions.push({ room: this.jid, stanzaId: target, retractionId, retractionMessageId, time, moderated: false, by: occ.bare, occupantId: this.occupantId(occ.bare) });
  }

  private copyAttrs(stanza: Element): Record<string, string> {
    const lang = stanza.attrs['xml:lang'] as string | undefined;
    return lang ? { 'xml:lang': lang } : {};
  }

  /** The client's payload minus what only the room may say (muc#user, occupant-id, our stanza-id). */
  private foreignChildren(stanza: Element): Element[] {
    return childrenExcept(stanza, (c) => {
      const ns = c.attrs.xmlns as string | undefined;
      if (c.name === 'x' && ns === NS_MUC_USER) return true;
      if (c.name === 'occupant-id' && ns === NS_OCCUPANT_ID) return true;
      // XEP-0359 business rules: remove stanza-ids claiming to be ours.
      return c.name === 'stanza-id' && ns === NS_SID && c.attrs.by === this.jid;
    });
  }

  private isArchivable(stanza: Element): boolean {
    if (stanza.getChild('no-store', 'urn:xmpp:hints') || stanza.getChild('no-permanent-store', 'urn:xmpp:hints')) return false;
    if (stanza.getChild('body') || stanza.getChild('store', 'urn:xmpp:hints')) return true;
    return ARCHIVABLE.some(([name, ns]) => stanza.getChild(name, ns) !== undefined);
  }

  /** §8.1: change the subject (moderators, or participants when muc#roomconfig_changesubject). */
  private changeSubject(b: Batch, stanza: Element, occ: Occupant): void {
    const allowed = occ.role === 'moderator' || (this.config.changeSubject && ROLE_RANK[occ.role] >= ROLE_RANK.participant);
    if (!allowed) {
      this.error(b, stanza, 'auth', 'forbidden', 'You may not change the subject of this room');
      return;
    }
    this.subject = { text: stanza.getChildText('subject') ?? '', nick: occ.nick, occupantId: this.occupantId(occ.bare), time: this.env.now() };
    b.durable = true;
    const tpl = new Element('message', { ...this.copyAttrs(stanza), from: this.occupantJid(occ.nick), type: 'groupchat', id: (stanza.attrs.id as string | undefined) ?? this.env.newId() });
    tpl.children = this.foreignChildren(stanza);
    tpl.cnode(occupantIdElement(this.occupantId(occ.bare)));
    this.broadcast(b, tpl);
  }

  /** §7.5: a private message through the room (muc#roomconfig_allowpm). */
  private privateMessage(b: Batch, stanza: Element, nick: string, occ: Occupant | undefined): void {
    const type = (stanza.attrs.type as string | undefined) ?? 'normal';
    if (!occ) {
      this.error(b, stanza, 'cancel', 'not-acceptable', 'You are not in the room');
      return;
    }
    if (type === 'groupchat') {
      this.error(b, stanza, 'modify', 'bad-request', 'Private messages are not of type groupchat');
      return;
    }
    const target = this.occupants.get(nicknameKey(nick) ?? '');
    if (!target) {
      this.error(b, stanza, 'cancel', 'item-not-found', 'No such occupant');
      return;
    }
    if (type !== 'error' && !this.mayPm(occ)) {
      this.error(b, stanza, 'auth', 'forbidden', 'Private messages are not allowed in this room');
      return;
    }
    const attrs: Record<string, string> = { ...this.copyAttrs(stanza), from: this.occupantJid(occ.nick) };
    if (stanza.attrs.type) attrs.type = stanza.attrs.type as string;
    if (stanza.attrs.id) attrs.id = stanza.attrs.id as string;
    const tpl = new Element('message', attrs);
    tpl.children = this.foreignChildren(stanza);
    if (type !== 'error') tpl.cnode(new Element('x', { xmlns: NS_MUC_USER }));
    tpl.cnode(occupantIdElement(this.occupantId(occ.bare)));
    for (const s of target.sessions.keys()) b.send.push(addressedCopy(tpl, s));
  }

  private mayPm(occ: Occupant): boolean {
    switch (this.config.allowPm) {
      case 'anyone':
        return true;
      case 'participants':
        return ROLE_RANK[occ.role] >= ROLE_RANK.participant;
      case 'moderators':
        return occ.role === 'moderator';
      case 'none':
        return false;
    }
  }

  /** §7.8.2 mediated invitations (several <invite/> at once, §16.7.2). */
  private invite(b: Batch, stanza: Element, x: Element, occ: Occupant | undefined): void {
    const from = stanza.attrs.from as string;
    const inviter = bare(from) ?? from;
    const aff = this.affiliationOf(inviter);
    if (!occ && AFFILIATION_RANK[aff] < AFFILIATION_RANK.admin) {
      this.error(b, stanza, 'cancel', 'not-acceptable', 'Only occupants may invite others');
      return;
    }
    if (this.config.membersOnly && AFFILIATION_RANK[aff] < AFFILIATION_RANK.admin && !this.config.allowInvites) {
      this.error(b, stanza, 'auth', 'forbidden', 'Only admins may invite others to this members-only room');
      return;
    }
    const invites: { to: string; el: Element }[] = [];
    for (const el of x.getChildren('invite')) {
      const to = prep((el.attrs.to as string | undefined) ?? '');
      if (to === null) {
        this.error(b, stanza, 'modify', 'jid-malformed', 'Invalid invitee address');
        return;
      }
      invites.push({ to, el });
    }
    const newMembers: AffChange[] = [];
    for (const { to, el } of invites) {
      const msg = new Element('message', { from: this.jid, to, id: (stanza.attrs.id as string | undefined) ?? this.env.newId() });
      const reason = el.getChildText('reason') ?? undefined;
      const body = `${inviter} invites you to the room ${this.jid}${reason ? `: ${reason}` : ''}`;
      const ux = msg.c('x', { xmlns: NS_MUC_USER });
      const inv = ux.c('invite', { from: inviter });
      if (reason) inv.c('reason').t(reason);
      const cont = el.getChild('continue');
      if (cont) inv.c('continue', cont.attrs.thread ? { thread: cont.attrs.thread as string } : {});
      if (this.config.passwordProtected) ux.c('password').t(this.config.password);
      msg.c('body').t(body);
      b.send.push(msg);
      // §9.5: in a members-only room an invitation adds the invitee to the member list.
      const invitee = bare(to) ?? to;
      if (this.config.membersOnly && this.affiliationOf(invitee) === 'none' && !newMembers.some((c) => c.jid === invitee)) {
        newMembers.push({ jid: invitee, affiliation: 'member' });
      }
    }
    if (newMembers.length) this.applyAffiliations(b, newMembers, { jid: inviter }, undefined);
  }

  /** §7.8.2: the invitee declines; the room tells the inviter. */
  private decline(b: Batch, stanza: Element, x: Element): void {
    const d = x.getChild('decline');
    const to = prep((d?.attrs.to as string | undefined) ?? '');
    if (!d || to === null) {
      this.error(b, stanza, 'modify', 'jid-malformed', 'Invalid address in the decline');
      return;
    }
    const from = stanza.attrs.from as string;
    const msg = new Element('message', { from: this.jid, to, id: (stanza.attrs.id as string | undefined) ?? this.env.newId() });
    const dec = msg.c('x', { xmlns: NS_MUC_USER }).c('decline', { from: bare(from) ?? from });
    const reason = d.getChildText('reason');
    if (reason) dec.c('reason').t(reason);
    b.send.push(msg);
  }

  /** §7.13 voice requests (from visitors) and §8.6 their approval (by moderators). */
  private voiceForm(b: Batch, stanza: Element, formEl: Element, occ: Occupant | undefined): void {
    const f = parseForm(formEl);
    if (!occ || !f) {
      this.error(b, stanza, occ ? 'modify' : 'cancel', occ ? 'bad-request' : 'not-acceptable', occ ? 'Invalid form' : 'You are not in the room');
      return;
    }
    if (f.type === 'submit' && f.fields.has('muc#request_allow')) {
      if (occ.role !== 'moderator') {
        this.error(b, stanza, 'auth', 'forbidden', 'Only moderators approve voice requests');
        return;
      }
      if (!parseBoolean(f.fields.get('muc#request_allow')?.values[0])) return;
      const target = this.occupants.get(nicknameKey(f.fields.get('muc#roomnick')?.values[0] ?? '') ?? '');
      if (!target) {
        this.error(b, stanza, 'cancel', 'item-not-found', 'No such occupant');
        return;
      }
      if (target.role !== 'visitor') return;
      const refusal = checkRoleChange(this.standing(occ.bare), this.standing(target.bare), 'participant');
      if (refusal) return this.refuse(b, stanza, refusal);
      this.setRole(b, target, 'participant', this.actorOf(occ.bare), undefined);
      return;
    }
    if (f.type !== 'submit' || occ.role !== 'visitor' || f.fields.get('muc#role')?.values[0] !== 'participant') return;
    const from = stanza.attrs.from as string;
    for (const mod of this.occupants.values()) {
      if (mod.role !== 'moderator') continue;
      for (const s of mod.sessions.keys()) {
        const msg = new Element('message', { from: this.jid, to: s, id: this.env.newId() });
        msg.cnode(form({
          formType: FORM_REQUEST,
          title: 'Voice request',
          instructions: 'To approve this request for voice, select the "Grant voice to this person?" checkbox and submit.',
          fields: [
            { var: 'muc#role', type: 'list-single', label: 'Requested role', values: ['participant'], options: [{ value: 'participant' }] },
            { var: 'muc#jid', type: 'jid-single', label: 'User ID', values: this.seesJids(mod) ? [from] : [] },
            { var: 'muc#roomnick', type: 'text-single', label: 'Room Nickname', values: [occ.nick] },
            { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', values: ['false'] },
          ],
        }));
        b.send.push(msg);
      }
    }
  }

  // ---- iq -----------------------------------------------------------------------------------

  /** An iq to the room JID (`nick` undefined) or to an occupant JID. */
  iq(b: Batch, stanza: Element, nick: string | undefined): void {
    if (nick !== undefined) {
      this.occupantIq(b, stanza, nick);
      return;
    }
    const type = stanza.attrs.type as string;
    if (type !== 'get' && type !== 'set') return;
    const payload = iqPayload(stanza);
    const ns = payload?.attrs.xmlns as string | undefined;
    const from = stanza.attrs.from as string;
    const userBare = bare(from) ?? from;
    if (!payload) {
      this.error(b, stanza, 'modify', 'bad-request', 'Empty iq');
      return;
    }
    if (this.locked && this.affiliationOf(userBare) !== 'owner') {
      this.error(b, stanza, 'cancel', 'item-not-found', 'The room is locked until its owner configures it');
      return;
    }
    const key = `${type} ${payload.name} ${ns ?? ''}`;
    switch (key) {
      case `get query ${NS_DISCO_INFO}`:
        return this.discoInfo(b, stanza, payload, userBare);
      case `get query ${NS_DISCO_ITEMS}`:
        if (payload.attrs.node) return this.error(b, stanza, 'cancel', 'item-not-found');
        b.send.push(iqResult(stanza, new Element('query', { xmlns: NS_DISCO_ITEMS })));
        return;
      case `get ping ${NS_PING}`:
        b.send.push(iqResult(stanza));
        return;
      case `get query ${NS_MUC_ADMIN}`:
        return this.adminGet(b, stanza, payload, userBare);
      case `set query ${NS_MUC_ADMIN}`:
        return this.adminSet(b, stanza, payload, userBare);
      case `get query ${NS_MUC_OWNER}`:
        return this.ownerGet(b, stanza, payload, userBare);
      case `set query ${NS_MUC_OWNER}`:
        return this.ownerSet(b, stanza, payload, userBare);
      case `get query ${NS_REGISTER}`:
        return this.registerGet(b, stanza, userBare);
      case `set query ${NS_REGISTER}`:
        return this.registerSet(b, stanza, payload, userBare);
      default:
        this.error(b, stanza, 'cancel', 'service-unavailable');
    }
  }

  /** §17.4: iq to an occupant JID; XEP-0410 self-ping answered by the room. */
  private occupantIq(b: Batch, stanza: Element, nick: string): void {
    const from = stanza.attrs.from as string;
    const type = stanza.attrs.type as string;
    if (type === 'result' || type === 'error') {
      this.iqResponse(b, stanza);
      return;
    }
    const payload = iqPayload(stanza);
    const ns = payload?.attrs.xmlns as string | undefined;
    const occ = this.bySession.get(from);
    if (!occ) {
      // §6.6 disco to an occupant from outside: bad-request; XEP-0410: not-acceptable.
      const disco = ns === NS_DISCO_INFO || ns === NS_DISCO_ITEMS;
      this.error(b, stanza, disco ? 'modify' : 'cancel', disco ? 'bad-request' : 'not-acceptable', 'You are not in the room');
      return;
    }
    const target = this.occupants.get(nicknameKey(nick) ?? '');
    if (!target) {
      this.error(b, stanza, 'cancel', 'item-not-found', 'No such occupant');
      return;
    }
    if (target === occ && type === 'get' && payload?.name === 'ping' && ns === NS_PING) {
      b.send.push(iqResult(stanza));
      return;
    }
    // vCards live on the user's server: ask the bare JID (avatars of occupants, XEP-0153).
    const dest = type === 'get' && payload?.name === 'vCard' && ns === NS_VCARD ? target.bare : target.primary;
    const now = this.env.now();
    for (const [k, p] of this.pendingIq) if (p.expires < now || this.pendingIq.size >= PENDING_IQ_MAX) this.pendingIq.delete(k);
    const fid = this.env.newId();
    this.pendingIq.set(fid, {
      requester: from, id: stanza.attrs.id as string | undefined, dest, targetKey: target.key, targetNick: target.nick, expires: now + PENDING_IQ_TTL,
    });
    const fwd = new Element('iq', { from: this.occupantJid(occ.nick), to: dest, type, id: fid });
    fwd.children = stanza.children.slice();
    b.send.push(fwd);
  }

  /** The answer to a forwarded iq goes back to the session that asked, with its own id. */
  private iqResponse(b: Batch, stanza: Element): void {
    const p = this.pendingIq.get(stanza.attrs.id as string);
    if (!p || p.dest !== stanza.attrs.from) return;
    this.pendingIq.delete(stanza.attrs.id as string);
    const target = this.occupants.get(p.targetKey);
    const attrs: Record<string, string> = { from: this.occupantJid(target?.nick ?? p.targetNick), to: p.requester, type: stanza.attrs.type as string };
    if (p.id !== undefined) attrs.id = p.id;
    const el = new Element('iq', attrs);
    el.children = stanza.children.slice();
    b.send.push(el);
  }

  // ---- disco --------------------------------------------------------------------------------

  features(): string[] {
    return [
      NS_DISCO_INFO, NS_MUC, FEATURE_STABLE_ID, FEATURE_SELF_PING, NS_OCCUPANT_ID, NS_SID, NS_MODERATE, NS_MODERATE_0,
      FORM_ROOMCONFIG, FORM_ROOMINFO, FORM_REQUEST, NS_PING,
      ...(this.env.allowRegistration && !this.config.membersOnly ? [NS_REGISTER, FORM_REGISTER] : []),
      ...roomTypeFeatures(this.config),
      ...this.env.extraFeatures,
    ];
  }

  /** §6.4 room information with the muc#roominfo form (§16.5.4); §7.12 reserved nick; §18.1.1 traffic. */
  private discoInfo(b: Batch, stanza: Element, query: Element, userBare: string): void {
    const node = query.attrs.node as string | undefined;
    const q = new Element('query', node ? { xmlns: NS_DISCO_INFO, node } : { xmlns: NS_DISCO_INFO });
    if (node === NODE_ROOMUSER) {
      const nick = this.reservedNick(userBare);
      if (nick !== undefined) q.c('identity', { category: 'conference', type: 'text', name: nick });
      b.send.push(iqResult(stanza, q));
      return;
    }
    if (node === NODE_TRAFFIC) return this.error(b, stanza, 'cancel', 'feature-not-implemented');
    if (node !== undefined) return this.error(b, stanza, 'cancel', 'item-not-found');
    q.c('identity', { category: 'conference', type: 'text', name: this.config.name || (this.jid.split('@')[0] ?? this.jid) });
    for (const f of this.features()) q.c('feature', { var: f });
    q.cnode(this.roomInfo(userBare));
    b.send.push(iqResult(stanza, q));
  }

  /**
   * The muc#roominfo form. The subject and occupant count of a hidden or members-only room are
   * shown only to its occupants and affiliated users (§14.4 information leaks).
   */
  private roomInfo(userBare: string): Element {
    const c = this.config;
    const insider = AFFILIATION_RANK[this.affiliationOf(userBare)] >= AFFILIATION_RANK.member || [...this.occupants.values()].some((o) => o.bare === userBare);
    const open = c.public && !c.membersOnly;
    const fields = [
      { var: 'muc#roominfo_description', label: 'Description', values: [c.description] },
      ...(open || insider ? [
        { var: 'muc#roominfo_subject', label: 'Current Discussion Topic', values: [this.subject?.text ?? ''] },
        { var: 'muc#roominfo_occupants', label: 'Number of occupants', values: [String(this.occupants.size)] },
      ] : []),
      { var: 'muc#roominfo_subjectmod', type: 'boolean' as const, label: 'The room subject can be modified by participants', values: [c.changeSubject ? '1' : '0'] },
      { var: 'muc#roomconfig_changesubject', type: 'boolean' as const, label: 'Subject can be modified', values: [c.changeSubject ? '1' : '0'] },
      ...(c.lang ? [{ var: 'muc#roominfo_lang', label: 'Language of discussion', values: [c.lang] }] : []),
      ...(c.whois === 'anyone' ? [{ var: 'muc#roominfo_contactjid', type: 'jid-multi' as const, label: 'Contact Addresses', values: this.listAffiliation('owner') }] : []),
      { var: 'muc#maxhistoryfetch', label: 'Maximum Number of History Messages Returned by Room', values: [String(c.historyLength)] },
      { var: 'muc#roomconfig_roomname', label: 'Natural-Language Room Name', values: [c.name] },
      { var: 'muc#roomconfig_allowpm', label: 'Who Can Send Private Messages?', values: [c.allowPm] },
      { var: 'muc#roomconfig_allowinvites', type: 'boolean' as const, label: 'Allow Members to Invite Others', values: [c.allowInvites ? '1' : '0'] },
      { var: 'muc#roomconfig_whois', label: 'Who May Discover Real JIDs', values: [c.whois] },
      ...(c.pubsub ? [{ var: 'muc#roomconfig_pubsub', label: 'Associated pubsub node', values: [c.pubsub] }] : []),
    ];
    return resultForm({ formType: FORM_ROOMINFO, fields });
  }

  // ---- muc#admin ----------------------------------------------------------------------------

  /** §8.5, §9.5, §9.8, §10.5, §10.8: role and affiliation lists. */
  private adminGet(b: Batch, stanza: Element, query: Element, userBare: string): void {
    const item = query.getChild('item');
    const role = item?.attrs.role as string | undefined;
    const aff = item?.attrs.affiliation as string | undefined;
    if (!item || (role === undefined) === (aff === undefined)) {
      this.error(b, stanza, 'modify', 'bad-request', 'Ask for one role or one affiliation');
      return;
    }
    const actor = this.standing(userBare);
    const out = new Element('query', { xmlns: NS_MUC_ADMIN });
    if (role !== undefined) {
      if (!isRole(role) || role === 'none') return this.error(b, stanza, 'modify', 'bad-request', 'Unknown role');
      if (actor.role !== 'moderator') return this.error(b, stanza, 'auth', 'forbidden', 'Only moderators may list roles');
      for (const o of this.occupants.values()) {
        if (o.role === role) out.cnode(itemElement({ affiliation: this.affiliationOf(o.bare), role: o.role, nick: o.nick, jid: o.primary }));
      }
    } else {
      if (!isAffiliation(aff) || aff === 'none') return this.error(b, stanza, 'modify', 'bad-request', 'Unknown affiliation');
      if (!this.mayListAffiliation(aff, actor, userBare)) return this.error(b, stanza, 'auth', 'forbidden', `You may not see the ${aff} list`);
      for (const [jid, e] of this.affiliations) {
        if (e.affiliation !== aff) continue;
        const attrs: ItemInfo = { affiliation: aff, role: 'none', jid };
        const el = itemElement(attrs);
        delete el.attrs.role; // §17.4 rule 6: no role in affiliation results
        if (aff !== 'outcast' && e.nick) el.attrs.nick = e.nick;
        if (aff === 'outcast' && e.reason) el.c('reason').t(e.reason);
        out.cnode(el);
      }
    }
    b.send.push(iqResult(stanza, out));
  }

  private mayListAffiliation(aff: Exclude<Affiliation, 'none'>, actor: Standing, userBare: string): boolean {
    const rank = AFFILIATION_RANK[actor.affiliation];
    const nonAnonymous = this.config.whois === 'anyone';
    const inRoom = [...this.occupants.values()].find((o) => o.bare === userBare);
    switch (aff) {
      case 'outcast':
        return rank >= AFFILIATION_RANK.admin;
      case 'member':
        if (rank >= AFFILIATION_RANK.admin || actor.role === 'moderator') return true;
        // §9.5 note and *** of §5.2.1: in non-anonymous rooms members (and the roles of
        // muc#roomconfig_getmemberlist) may see the list; in semi-anonymous rooms they may not.
        if (!nonAnonymous) return false;
        if (inRoom) return (this.config.getMemberList as readonly string[]).includes(inRoom.role);
        return rank >= AFFILIATION_RANK.member;
      case 'admin':
      case 'owner':
        return rank === AFFILIATION_RANK.owner || (nonAnonymous && (rank >= AFFILIATION_RANK.member || inRoom !== undefined));
    }
  }

  /** §8.2–8.5, §9.1–9.8, §10.3–10.8: role and affiliation changes, all or nothing. */
  private adminSet(b: Batch, stanza: Element, query: Element, userBare: string): void {
    const items = query.getChildren('item');
    if (items.length === 0) return this.error(b, stanza, 'modify', 'bad-request', 'No item');
    const actor = this.standing(userBare);
    const actorInfo = this.actorOf(userBare);
    const roles: { occ: Occupant; role: Role; reason?: string }[] = [];
    const affs: AffChange[] = [];
    for (const item of items) {
      const role = item.attrs.role as string | undefined;
      const aff = item.attrs.affiliation as string | undefined;
      const reason = item.getChildText('reason') ?? undefined;
      if ((role === undefined) === (aff === undefined)) return this.error(b, stanza, 'modify', 'bad-request', 'Each item changes either a role or an affiliation');
      if (role !== undefined) {
        if (!isRole(role)) return this.error(b, stanza, 'modify', 'bad-request', `Unknown role ${role}`);
        const occ = this.findOccupant(item);
        if (!occ) return this.error(b, stanza, 'cancel', 'item-not-found', 'No such occupant');
        if (occ.role === role) continue;
        const refusal = checkRoleChange(actor, this.standing(occ.bare), role);
        if (refusal) return this.refuse(b, stanza, refusal);
        roles.push({ occ, role, reason });
      } else {
        if (!isAffiliation(aff)) return this.error(b, stanza, 'modify', 'bad-request', `Unknown affiliation ${aff}`);
        const jid = bareJid((item.attrs.jid as string | undefined) ?? '');
        if (jid === null) return this.error(b, stanza, 'modify', 'jid-malformed', 'Affiliations are changed by bare JID');
        const nickAttr = item.attrs.nick as string | undefined;
        affs.push({ jid, affiliation: aff, reason, nick: nickAttr });
      }
    }
    const refusal = this.checkAffiliations(affs, actor.affiliation, userBare);
    if (refusal) return this.refuse(b, stanza, refusal);
    const ok = iqResult(stanza);
    // §8.2: the kicked occupant learns first, then the moderator, then everyone else.
    const single = roles.length === 1 && affs.length === 0 && roles[0]?.role === 'none';
    if (!single) b.send.push(ok);
    this.applyAffiliations(b, affs, actorInfo, userBare);
    for (const r of roles) {
      if (!this.occupants.has(r.occ.key)) continue; // removed by an affiliation change above
      this.setRole(b, r.occ, r.role, actorInfo, r.reason, single ? ok : undefined);
    }
  }

  private findOccupant(item: Element): Occupant | undefined {
    const nick = item.attrs.nick as string | undefined;
    if (nick !== undefined) return this.occupants.get(nicknameKey(nick) ?? '');
    // Not in the XEP (roles go by nick), but clients send the real JID too.
    const jid = item.attrs.jid as string | undefined;
    if (jid === undefined) return undefined;
    const p = prep(jid);
    if (p === null) return undefined;
    return this.bySession.get(p) ?? [...this.occupants.values()].find((o) => o.bare === p);
  }

  /** Change an occupant's role (kick = none) and tell the room. */
  private setRole(b: Batch, occ: Occupant, role: Role, actor: ItemInfo['actor'], reason: string | undefined, between?: Element): void {
    if (role === 'none') {
      this.removeOccupant(b, occ, { statuses: [Status.Kicked], actor, reason, between });
      return;
    }
    const before = occ.role;
    occ.role = role;
    const aff = this.affiliationOf(occ.bare);
    // §5.1: roles persist across visits in moderated rooms (the voice list).
    if (this.config.moderated && AFFILIATION_RANK[aff] < AFFILIATION_RANK.admin && (role === 'participant' || role === 'visitor')) {
      if (role === defaultRole(aff, true)) this.voice.delete(occ.bare);
      else this.voice.set(occ.bare, role);
      b.durable = true;
    }
    this.broadcastPresence(b, occ, { reason, visibleBefore: this.broadcastRole(before) });
    // A new moderator of a semi-anonymous room now sees real JIDs (§7.2.4).
    if (role === 'moderator' && this.config.whois !== 'anyone') for (const s of occ.sessions.keys()) this.othersTo(b, occ, s);
  }

  /**
   * Check a set of affiliation changes before applying any (§9.2: none is applied if one is
   * refused): permissions, no self-ban (conflict), reserved nicks unique (conflict), and at least
   * one owner left (§10.4: conflict).
   */
  private checkAffiliations(changes: readonly AffChange[], actor: Affiliation, actorBare: string | undefined): Refusal | undefined {
    if (changes.length === 0) return undefined;
    const after = new Map([...this.affiliations].map(([j, e]) => [j, e.affiliation]));
    for (const c of changes) {
      const from = this.affiliations.get(c.jid)?.affiliation ?? 'none';
      // §9.1: an admin or owner banning himself gets conflict (before any permission question).
      if (c.jid === actorBare && c.affiliation === 'outcast' && AFFILIATION_RANK[actor] >= AFFILIATION_RANK.admin) {
        return { type: 'cancel', condition: 'conflict', text: 'You cannot ban yourself' };
      }
      // Checked even when the affiliation stays: editing a reserved nick is a change too.
      const refusal = checkAffiliationChange(actor, from, c.affiliation);
      if (refusal) return refusal;
      if (c.nick !== undefined && c.nick !== '') {
        const n = nickname(c.nick);
        const key = n === null ? null : nicknameKey(n);
        if (n === null || key === null) return { type: 'modify', condition: 'not-acceptable', text: 'Invalid nickname' };
        const holder = this.reservedBy(key);
        const occupant = this.occupants.get(key);
        if ((holder !== undefined && holder !== c.jid) || (occupant && occupant.bare !== c.jid)) {
          return { type: 'cancel', condition: 'conflict', text: `The nickname ${n} belongs to another user` };
        }
      }
      if (c.affiliation === 'none') after.delete(c.jid);
      else after.set(c.jid, c.affiliation);
    }
    if (![...after.values()].includes('owner')) return { type: 'cancel', condition: 'conflict', text: 'A room needs at least one owner' };
    return undefined;
  }

  /**
   * Apply checked affiliation changes and their effects on occupants (§9.1–9.4, §10.3–10.7).
   * `inviter`: send new members of a members-only room an invitation from this bare JID (§9.5).
   */
  private applyAffiliations(b: Batch, changes: readonly AffChange[], actor: ItemInfo['actor'], inviter: string | undefined): void {
    for (const c of changes) {
      const old = this.affiliations.get(c.jid);
      const from = old?.affiliation ?? 'none';
      if (c.affiliation === 'none') {
        this.affiliations.delete(c.jid);
      } else {
        const entry: AffiliationEntry = { affiliation: c.affiliation };
        // §9.1: a ban removes the reserved nick; an empty nick unsets it (§9.5).
        const nick = c.nick === undefined ? old?.nick : c.nick === '' ? undefined : (nickname(c.nick) ?? undefined);
        if (nick !== undefined && c.affiliation !== 'outcast') entry.nick = nick;
        if (c.reason && c.affiliation === 'outcast') entry.reason = c.reason;
        this.affiliations.set(c.jid, entry);
      }
      if (c.affiliation === 'outcast') this.voice.delete(c.jid);
      b.durable = true;
      if (from === c.affiliation) continue;
      // A domain's entry affects the users of that domain who have none of their own.
      const affected = [...this.occupants.values()].filter((o) => o.bare === c.jid
        || (!c.jid.includes('@') && o.bare.endsWith(`@${c.jid}`) && !this.affiliations.has(o.bare)));
      for (const occ of affected) this.affiliationChanged(b, occ, from, actor, c.reason);
      // §9.5: a new member of a members-only room gets an invitation.
      if (inviter !== undefined && this.config.membersOnly && AFFILIATION_RANK[c.affiliation] >= AFFILIATION_RANK.member
        && AFFILIATION_RANK[from] < AFFILIATION_RANK.member && affected.length === 0 && c.jid.includes('@')) {
        const msg = new Element('message', { from: this.jid, to: c.jid, id: this.env.newId() });
        const ux = msg.c('x', { xmlns: NS_MUC_USER });
        ux.c('invite', { from: inviter });
        if (this.config.passwordProtected) ux.c('password').t(this.config.password);
        b.send.push(msg);
      }
    }
  }

  private affiliationChanged(b: Batch, occ: Occupant, from: Affiliation, actor: ItemInfo['actor'], reason: string | undefined): void {
    const to = this.affiliationOf(occ.bare);
    const role = roleAfterAffiliationChange(occ.role, from, to, this.config);
    if (role === undefined) {
      // §9.1 ban (301); §9.4 removal from a members-only room (321), without a presence update first.
      this.removeOccupant(b, occ, { statuses: [to === 'outcast' ? Status.Banned : Status.AffiliationRemoved], actor, reason });
      return;
    }
    const before = occ.role;
    occ.role = role;
    this.broadcastPresence(b, occ, { reason, visibleBefore: this.broadcastRole(before) });
    if (role === 'moderator' && before !== 'moderator' && this.config.whois !== 'anyone') for (const s of occ.sessions.keys()) this.othersTo(b, occ, s);
  }

  // ---- muc#owner ----------------------------------------------------------------------------

  private isOwner(userBare: string): boolean {
    return this.affiliationOf(userBare) === 'owner';
  }

  /** §10.1.3, §10.2: the configuration form. */
  private ownerGet(b: Batch, stanza: Element, query: Element, userBare: string): void {
    if (!this.isOwner(userBare)) return this.error(b, stanza, 'auth', 'forbidden', 'Only owners may configure the room');
    if (query.getChild('destroy')) return this.error(b, stanza, 'modify', 'bad-request', 'Destroy is an iq set');
    const q = new Element('query', { xmlns: NS_MUC_OWNER });
    q.cnode(configForm(this.jid, this.config, { owners: this.listAffiliation('owner'), admins: this.listAffiliation('admin') }, this.env.limits));
    b.send.push(iqResult(stanza, q));
  }

  private ownerSet(b: Batch, stanza: Element, query: Element, userBare: string): void {
    if (!this.isOwner(userBare)) return this.error(b, stanza, 'auth', 'forbidden', 'Only owners may configure or destroy the room');
    const destroy = query.getChild('destroy');
    if (destroy) {
      const alt = destroy.attrs.jid as string | undefined;
      const venue = alt === undefined ? undefined : bareJid(alt);
      if (venue === null) return this.error(b, stanza, 'modify', 'jid-malformed', 'Invalid alternate venue');
      b.send.push(iqResult(stanza));
      this.destroy(b, { jid: venue, reason: destroy.getChildText('reason') ?? undefined, password: destroy.getChildText('password') ?? undefined });
      return;
    }
    const x = query.getChild('x', NS_DATA);
    const f = x ? parseForm(x) : undefined;
    if (!f) return this.error(b, stanza, 'modify', 'bad-request', 'Expected a data form or <destroy/>');
    if (f.type === 'cancel') {
      b.send.push(iqResult(stanza));
      // §10.1.3: cancelling the initial configuration destroys the room.
      if (this.locked) this.destroy(b, {});
      return;
    }
    if (f.type !== 'submit') return this.error(b, stanza, 'modify', 'bad-request', 'Expected a submitted form');
    const sub = readConfigSubmission(f, this.config, this.env.limits, bareJid);
    if (!sub.ok) return this.error(b, stanza, 'modify', 'not-acceptable', sub.text);
    const changes = this.listChanges(sub.owners, sub.admins);
    const refusal = this.checkAffiliations(changes, 'owner', userBare);
    if (refusal) return this.refuse(b, stanza, refusal);
    const before = this.config;
    const wasLocked = this.locked;
    this.config = sub.config;
    this.locked = false;
    b.durable = true;
    b.send.push(iqResult(stanza));
    this.applyAffiliations(b, changes, this.actorOf(userBare), userBare);
    // §10.2: a room that becomes members-only removes its non-members (322).
    if (this.config.membersOnly && !before.membersOnly) {
      for (const occ of [...this.occupants.values()]) {
        if (AFFILIATION_RANK[this.affiliationOf(occ.bare)] < AFFILIATION_RANK.member) this.removeOccupant(b, occ, { statuses: [Status.MembersOnlyRemoved] });
      }
    }
    if (!wasLocked) {
      const codes = configChangeCodes(before, this.config);
      if (codes.length) {
        const tpl = new Element('message', { from: this.jid, type: 'groupchat', id: this.env.newId() });
        tpl.cnode(mucUserX(undefined, codes));
        this.broadcast(b, tpl);
      }
      // Becoming non-anonymous: everyone now sees everyone's real JID.
      if (before.whois !== 'anyone' && this.config.whois === 'anyone') {
        for (const viewer of this.occupants.values()) for (const s of viewer.sessions.keys()) this.othersTo(b, viewer, s);
      }
    }
    if (!this.config.persistent) this.checkEmpty(b);
  }

  /** The full owner/admin lists of the form (§10.5 and §10.8: replacing, not a delta) as changes. */
  private listChanges(owners: string[] | undefined, admins: string[] | undefined): AffChange[] {
    const changes: AffChange[] = [];
    const current = (j: string) => this.affiliations.get(j)?.affiliation ?? 'none';
    const target = new Map<string, Affiliation>();
    if (owners) {
      for (const j of owners) target.set(j, 'owner');
      for (const j of this.listAffiliation('owner')) if (!owners.includes(j)) target.set(j, admins?.includes(j) ? 'admin' : 'none');
    }
    if (admins) {
      for (const j of admins) if (!target.has(j) && current(j) !== 'owner') target.set(j, 'admin');
      for (const j of this.listAffiliation('admin')) if (!admins.includes(j) && !target.has(j)) target.set(j, 'none');
    }
    for (const [jid, affiliation] of target) if (current(jid) !== affiliation) changes.push({ jid, affiliation });
    return changes;
  }

  /** §10.9: everyone leaves with a <destroy/> (alternate venue, reason); the room is gone. */
  destroy(b: Batch, info: DestroyInfo): void {
    for (const occ of this.occupants.values()) {
      const tpl = this.presenceTemplate(occ, false, false, { type: 'unavailable', affiliation: 'none', role: 'none', destroy: info, id: this.env.newId() });
      for (const s of occ.sessions.keys()) b.send.push(addressedCopy(tpl, s));
    }
    this.occupants.clear();
    this.bySession.clear();
    b.destroyed = true;
  }

  /** XEP-0045 §11.2 service shutdown (332): everyone leaves; the room stays (persistent) or goes. */
  shutdown(b: Batch): void {
    for (const occ of this.occupants.values()) {
      const tpl = this.presenceTemplate(occ, true, true, { type: 'unavailable', statuses: [Status.ServiceShutdown], id: this.env.newId() });
      for (const s of occ.sessions.keys()) b.send.push(addressedCopy(tpl, s));
    }
    this.occupants.clear();
    this.bySession.clear();
  }

  // ---- registration (§7.10) -----------------------------------------------------------------

  private registerGet(b: Batch, stanza: Element, userBare: string): void {
    const aff = this.affiliationOf(userBare);
    if (aff === 'outcast') return this.error(b, stanza, 'cancel', 'not-allowed', 'You are banned from this room');
    const entry = this.affiliations.get(userBare);
    const q = new Element('query', { xmlns: NS_REGISTER });
    if (entry && AFFILIATION_RANK[entry.affiliation] >= AFFILIATION_RANK.member) {
      q.c('registered');
      if (entry.nick) q.c('username').t(entry.nick);
      b.send.push(iqResult(stanza, q));
      return;
    }
    if (!this.env.allowRegistration || this.config.membersOnly) return this.error(b, stanza, 'cancel', 'not-allowed', 'Registration with this room is closed');
    q.c('instructions').t('Choose the nickname to reserve in this room.');
    const current = [...this.occupants.values()].find((o) => o.bare === userBare)?.nick;
    q.cnode(form({
      formType: FORM_REGISTER,
      title: `Registration with ${this.jid}`,
      fields: [{ var: 'muc#register_roomnick', type: 'text-single', label: 'Desired Nickname', required: true, values: current ? [current] : [] }],
    }));
    b.send.push(iqResult(stanza, q));
  }

  private registerSet(b: Batch, stanza: Element, query: Element, userBare: string): void {
    const entry = this.affiliations.get(userBare);
    const aff = this.affiliationOf(userBare);
    if (query.getChild('remove')) {
      if (!entry || entry.affiliation !== 'member') return this.error(b, stanza, 'cancel', 'not-allowed', 'Only members may cancel their registration');
      b.send.push(iqResult(stanza));
      this.applyAffiliations(b, [{ jid: userBare, affiliation: 'none' }], { jid: userBare }, undefined);
      return;
    }
    if (aff === 'outcast') return this.error(b, stanza, 'cancel', 'not-allowed', 'You are banned from this room');
    const registered = entry !== undefined && AFFILIATION_RANK[entry.affiliation] >= AFFILIATION_RANK.member;
    if (!registered && (!this.env.allowRegistration || this.config.membersOnly)) {
      return this.error(b, stanza, 'cancel', 'not-allowed', 'Registration with this room is closed');
    }
    const x = findForm(query);
    const f = x ? parseForm(x) : undefined;
    if (f?.type === 'cancel') {
      b.send.push(iqResult(stanza));
      return;
    }
    if (!f) return this.error(b, stanza, 'modify', 'bad-request', 'Expected the registration form');
    const r = readSubmission(f, { formType: FORM_REGISTER, fields: [{ var: 'muc#register_roomnick', type: 'text-single', required: true }] }, { allowUnknown: true });
    if (!r.ok) return this.error(b, stanza, 'modify', 'bad-request', r.text);
    const nick = nickname(r.values.get('muc#register_roomnick')?.[0] ?? '');
    const key = nick === null ? null : nicknameKey(nick);
    if (nick === null || key === null) return this.error(b, stanza, 'modify', 'not-acceptable', 'Invalid nickname');
    const change: AffChange = { jid: userBare, affiliation: registered && entry ? entry.affiliation : 'member', nick };
    const refusal = this.checkAffiliations([change], 'owner', undefined);
    if (refusal) return this.refuse(b, stanza, refusal);
    b.send.push(iqResult(stanza));
    this.applyAffiliations(b, [change], { jid: userBare }, undefined);
  }

  // ---- moderation (XEP-0425) ----------------------------------------------------------------

  /**
   * Check a moderation request (current `<moderate/>` or the fastening form of XEP-0425 0.2);
   * undefined when the stanza is not one. On refusal the error is in the batch and `error` is set.
   */
  prepareModeration(b: Batch, stanza: Element): { request?: ModerationRequest; error?: true } | undefined {
    if (stanza.attrs.type !== 'set') return undefined;
    const payload = iqPayload(stanza);
    if (!payload) return undefined;
    let stanzaId: string | undefined;
    let reason: string | undefined;
    if (payload.name === 'moderate' && payload.attrs.xmlns === NS_MODERATE && payload.getChild('retract', NS_RETRACT)) {
      stanzaId = payload.attrs.id as string | undefined;
      reason = payload.getChildText('reason') ?? undefined;
    } else if (payload.name === 'apply-to' && payload.attrs.xmlns === NS_FASTEN) {
      const m = payload.getChild('moderate', NS_MODERATE_0);
      if (!m?.getChild('retract', NS_RETRACT_0)) return undefined;
      stanzaId = payload.attrs.id as string | undefined;
      reason = m.getChildText('reason') ?? undefined;
    } else {
      return undefined;
    }
    const from = stanza.attrs.from as string;
    const occ = this.bySession.get(from) ?? [...this.occupants.values()].find((o) => o.bare === (bare(from) ?? from));
    if (!stanzaId) {
      this.error(b, stanza, 'modify', 'bad-request', 'Which message?');
      return { error: true };
    }
    if (!occ || occ.role !== 'moderator') {
      this.error(b, stanza, 'auth', 'forbidden', "Only moderators are allowed to moderate other participants' messages");
      return { error: true };
    }
    return {
      request: {
        stanzaId, reason, moderatorJid: this.occupantJid(occ.nick), moderatorOccupantId: this.occupantId(occ.bare), announceId: this.env.newId(),
      },
    };
  }

  /**
   * Retract a message (XEP-0425): drop it from the history, announce it to the room in the current
   * form and, for clients of XEP-0425 0.2, the fastening form. `archived`: the archive held it.
   */
  moderate(b: Batch, stanza: Element, req: ModerationRequest, archived: boolean): void {
    const entry = this.history.remove(req.stanzaId);
    if (!entry && !archived) return this.error(b, stanza, 'cancel', 'item-not-found', 'No such message');
    const tpl = new Element('message', { from: this.jid, type: 'groupchat', id: req.announceId });
    const retract = tpl.c('retract', { xmlns: NS_RETRACT, id: req.stanzaId });
    retract.c('moderated', { xmlns: NS_MODERATE, by: req.moderatorJid }).cnode(occupantIdElement(req.moderatorOccupantId));
    if (req.reason) retract.c('reason').t(req.reason);
    const legacy = tpl.c('apply-to', { xmlns: NS_FASTEN, id: req.stanzaId }).c('moderated', { xmlns: NS_MODERATE_0, by: req.moderatorJid });
    legacy.c('retract', { xmlns: NS_RETRACT_0 });
    if (req.reason) legacy.c('reason').t(req.reason);
    tpl.cnode(stanzaIdElement(req.announceId, this.jid));
    b.send.push(iqResult(stanza));
    this.broadcast(b, tpl);
    b.archive.push({ room: this.jid, stanzaId: req.announceId, time: this.env.now(), stanza: tpl, senderJid: undefined, nick: undefined, occupantId: undefined });
  }
}

/**
 * §7.2.18: the explicit "you are not in this room" (110 + 307 + 333) for presence without the MUC
 * element from a non-occupant — a client that lost track of the room after a restart.
 */
export function notInRoomPresence(occupantJid: string, to: string): Element {
  const p = new Element('presence', { from: occupantJid, to, type: 'unavailable' });
  p.cnode(mucUserX({ affiliation: 'none', role: 'none', reason: 'You are not in the room.' }, [Status.Self, Status.Kicked, Status.ErrorRemoved]));
  return p;
}

export interface AffChange {
  /** Bare JID (or a domain). */
  jid: string;
  affiliation: Affiliation;
  reason?: string;
  /** Reserved nick: undefined keeps it, '' unsets it. */
  nick?: string;
}
