// The neutral model of migrated user data: what `cadence import prosody`, XEP-0227 import and
// export carry between another server's storage, the XEP-0227 file format and Cadence's stores.
// Readers (core/cli/import-prosody.ts, core/util/xep0227.ts) fill it through the add* functions
// below, which check every value the way Cadence's modules would when a client sends it, and
// note what they cannot take; the writer (core/cli/import-writer.ts) stores it.
//
// XML is kept as @xmpp/xml Elements. A stored fragment (vCard, private XML) has its namespace on
// its root; a stanza (offline message, subscription request) has none on its root, as stanzas
// inside Cadence do (the stream's content namespace applies).
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { bare, nodeprep, prep } from './jid.ts';
import { credentialsProblem, type ScramCredentials, type ScramHash } from './scram.ts';

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface PortableRosterItem {
  /** Bare JID, prepared. */
  jid: string;
  subscription: Subscription;
  /** Outbound subscription request pending. */
  ask?: 'subscribe';
  /** Subscription pre-approved (RFC 6121 §3.4). */
  approved?: boolean;
  name?: string;
  groups: string[];
}

export interface PortableOfflineMessage {
  /** The <message/>, without a root namespace, carrying its <delay/> stamp. */
  stanza: Element;
  /** When it was stored, ms since the epoch. */
  when: number;
}

export interface PortableUser {
  /** Localpart, prepared (nodeprep). */
  username: string;
  /** SCRAM credentials per hash (base64 fields, as Cadence stores them). */
  scram: Partial<Record<ScramHash, ScramCredentials>>;
  /** The plaintext password, when the source had one (Prosody `internal_plain`, XEP-0227 `password`). */
  password?: string;
  /** Account creation time, ms since the epoch, when the source knows it. */
  created?: number;
  roster: PortableRosterItem[];
  /** The source's roster version, when it had one. */
  rosterVersion?: number;
  /** Pending inbound subscription requests: the contact's bare JID and its subscribe presence. */
  pendingIn: { jid: string; stanza: Element }[];
  /** vcard-temp (XEP-0054) <vCard/>. */
  vcard?: Element;
  /** Oldest first. */
  offline: PortableOfflineMessage[];
  /** Private XML (XEP-0049) fragments, at most one per (namespace, name). */
  privateXml: Element[];
  /** Blocked JIDs (XEP-0191), prepared. */
  blocked: string[];
}

export interface PortableHost {
  /** Domain, prepared. */
  host: string;
  users: PortableUser[];
}

export interface PortableData {
  hosts: PortableHost[];
}

// ---- notes: what a reader or writer could not take, and why ---------------------------------------------

export interface ImportNote {
  level: 'info' | 'warning';
  host?: string;
  user?: string;
  message: string;
}

/** Collects notes; `at(host, user)` gives a notes function bound to one host/user. */
export class ImportNotes {
  readonly list: ImportNote[] = [];

  add(level: ImportNote['level'], message: string, host?: string, user?: string): void {
    this.list.push({ level, message, ...(host !== undefined ? { host } : {}), ...(user !== undefined ? { user } : {}) });
  }

  at(host?: string, user?: string): Note {
    return (level, message) => this.add(level, message, host, user);
  }

  get warnings(): ImportNote[] {
    return this.list.filter((n) => n.level === 'warning');
  }
}

export type Note = (level: ImportNote['level'], message: string) => void;

// ---- building users ----------------------------------------------------------------------------------------

export function emptyUser(username: string): PortableUser {
  return { username, scram: {}, roster: [], pendingIn: [], offline: [], privateXml: [], blocked: [] };
}

/** The prepared localpart, or undefined (noted) when it is not a valid one. */
export function prepUsername(raw: string, note: Note): string | undefined {
  const u = nodeprep(raw);
  if (!u) {
    note('warning', `'${raw}' is not a valid username (RFC 7622 localpart): account skipped`);
    return undefined;
  }
  if (u !== raw) note('info', `username '${raw}' is '${u}' once prepared (RFC 7622)`);
  return u;
}

export function addScram(user: PortableUser, hash: ScramHash, creds: ScramCredentials, note: Note): boolean {
  const problem = credentialsProblem(hash, creds);
  if (problem) {
    note('warning', `SCRAM-${hash} credentials not imported: ${problem}`);
    return false;
  }
  user.scram[hash] = { iterations: creds.iterations, salt: creds.salt, storedKey: creds.storedKey, serverKey: creds.serverKey };
  return true;
}

const SUBSCRIPTIONS = new Set<string>(['none', 'to', 'from', 'both']);

export interface RawRosterItem {
  jid: string;
  subscription?: string;
  ask?: string;
  approved?: boolean;
  name?: string;
  groups: string[];
}

/** RFC 6121 §2.1.2: a bare contact JID, a known subscription state, distinct non-empty groups. */
export function addRosterItem(user: PortableUser, raw: RawRosterItem, note: Note): boolean {
  const jid = prep(raw.jid);
  if (!jid) {
    note('warning', `roster item '${raw.jid}' skipped: not a valid JID`);
    return false;
  }
  if (bare(jid) !== jid) {
    note('warning', `roster item '${raw.jid}' skipped: a roster holds bare JIDs only`);
    return false;
  }
  const subscription = raw.subscription ?? 'none';
  if (!SUBSCRIPTIONS.has(subscription)) {
    note('warning', `roster item ${jid} skipped: unknown subscription state '${subscription}'`);
    return false;
  }
  if (raw.ask !== undefined && raw.ask !== 'subscribe') note('warning', `roster item ${jid}: ask='${raw.ask}' is not a pending request; dropped`);
  const item: PortableRosterItem = { jid, subscription: subscription as Subscription, groups: [] };
  if (raw.ask === 'subscribe' && subscription !== 'to' && subscription !== 'both') item.ask = 'subscribe';
  if (raw.approved && subscription !== 'from' && subscription !== 'both') item.approved = true;
  if (raw.name !== undefined && raw.name !== '') item.name = raw.name;
  for (const g of raw.groups) {
    if (g === '') note('info', `roster item ${jid}: an empty group name dropped`);
    else if (!item.groups.includes(g)) item.groups.push(g);
  }
  const existing = user.roster.findIndex((i) => i.jid === jid);
  if (existing >= 0) {
    note('warning', `roster item ${jid} appears twice; the later one kept`);
    user.roster.splice(existing, 1);
  }
  user.roster.push(item);
  return true;
}

/** A pending inbound subscription request from `rawJid`; `stanza` is the stored request if any. */
export function addPendingIn(user: PortableUser, host: string, rawJid: string, stanza: Element | undefined, note: Note): boolean {
  const jid = prep(rawJid);
  if (!jid || bare(jid) !== jid) {
    note('warning', `pending subscription request from '${rawJid}' skipped: not a valid bare JID`);
    return false;
  }
  const presence = stanza && stanza.name === 'presence' ? (clone(stanza) as Element) : new Element('presence');
  delete presence.attrs.xmlns;
  presence.attrs.type = 'subscribe';
  presence.attrs.from = jid;
  presence.attrs.to = `${user.username}@${host}`;
  user.pendingIn = user.pendingIn.filter((p) => p.jid !== jid);
  user.pendingIn.push({ jid, stanza: presence });
  return true;
}

export const NS_VCARD = 'vcard-temp';

/** A vcard-temp <vCard/>; an empty one is no vCard (as mod_vcard treats it). */
export function setVcard(user: PortableUser, vcard: Element, note: Note): boolean {
  if (vcard.getName() !== 'vCard' || vcard.getNS() !== NS_VCARD) {
    note('warning', `a <${vcard.name}/> in ${vcard.getNS() ?? 'no namespace'} is not a vcard-temp vCard; skipped`);
    return false;
  }
  if (isEmptyElement(vcard)) return false;
  if (user.vcard) note('warning', 'two vCards found; the later one kept');
  user.vcard = selfContained(vcard);
  return true;
}

/** Namespaces a private fragment may not use (XEP-0049 §2.3; as mod_private refuses them). */
const PRIVATE_RESERVED = new Set(['jabber:iq:private', 'jabber:client', 'jabber:server', 'jabber:component:accept', 'http://etherx.jabber.org/streams']);

/** The key Cadence's mod_private stores a fragment under: `{namespace}name`. */
export function privateKey(el: Element): string {
  return `{${el.getNS() ?? ''}}${el.getName()}`;
}

export function addPrivate(user: PortableUser, fragment: Element, note: Note): boolean {
  const ns = fragment.getNS();
  if (!ns || PRIVATE_RESERVED.has(ns)) {
    note('warning', `private XML <${fragment.getName()}/> skipped: ${ns ? `the namespace ${ns} cannot hold private data` : 'it has no namespace of its own'}`);
    return false;
  }
  if (isEmptyElement(fragment)) return false;
  const key = privateKey(fragment);
  const existing = user.privateXml.findIndex((f) => privateKey(f) === key);
  if (existing >= 0) {
    note('warning', `private XML ${key} appears twice; the later one kept`);
    user.privateXml.splice(existing, 1);
  }
  user.privateXml.push(selfContained(fragment));
  return true;
}

export function addBlocked(user: PortableUser, host: string, raw: string, note: Note): boolean {
  const jid = prep(raw);
  if (!jid) {
    note('warning', `blocked JID '${raw}' skipped: not a valid JID`);
    return false;
  }
  if (bare(jid) === `${user.username}@${host}`) {
    note('warning', `blocked JID ${jid} skipped: a user cannot block their own account`);
    return false;
  }
  if (!user.blocked.includes(jid)) user.blocked.push(jid);
  return true;
}

/**
 * An offline message: root <message/> (its namespace, if jabber:client, dropped), `to` set to the
 * user, and a <delay/> (XEP-0203) from the host with the time it was stored (ms) unless it has one.
 */
export function addOffline(user: PortableUser, host: string, message: Element, whenStored: number | (() => number), note: Note): boolean {
  if (message.getName() !== 'message') {
    note('warning', `an offline <${message.name}/> is not a message; skipped`);
    return false;
  }
  const ns = message.getNS();
  if (ns !== undefined && ns !== 'jabber:client') {
    note('warning', `an offline message in the namespace ${ns} skipped`);
    return false;
  }
  // (A function is asked only for a message that is taken: it may note how it found the time.)
  const when = typeof whenStored === 'function' ? whenStored() : whenStored;
  if (!Number.isFinite(when)) {
    note('warning', 'an offline message without a valid time skipped');
    return false;
  }
  const copy = selfContained(message);
  delete copy.attrs.xmlns;
  copy.attrs.to ??= `${user.username}@${host}`;
  const stamped = copy.getChildren('delay', NS_DELAY).some((d) => d.attrs.from === host);
  if (!stamped) copy.cnode(new Element('delay', { xmlns: NS_DELAY, from: host, stamp: formatStamp(when) }));
  user.offline.push({ stanza: copy, when: Math.round(when) });
  return true;
}

export const NS_DELAY = 'urn:xmpp:delay';

// ---- XML helpers -------------------------------------------------------------------------------------------

/** No child elements, no text but whitespace, no attributes but its namespace. */
export function isEmptyElement(el: Element): boolean {
  return el.getChildElements().length === 0 && el.text().trim() === '' && Object.keys(el.attrs).every((a) => a === 'xmlns' || a.startsWith('xmlns:'));
}

/**
 * A copy of `el` that reads the same on its own: its namespace set on its root, and the prefixes
 * its subtree uses that are declared only on its ancestors declared on the copy's root.
 */
export function selfContained(el: Element): Element {
  const copy = clone(el) as Element;
  delete (copy as { parent?: unknown }).parent;
  const ns = el.getNS();
  if (copy.attrs.xmlns === undefined && ns !== undefined) copy.attrs.xmlns = ns;
  const used = new Set<string>();
  const walk = (e: Element) => {
    for (const name of [e.name, ...Object.keys(e.attrs)]) {
      const i = name.indexOf(':');
      if (i > 0) {
        const prefix = name.slice(0, i);
        if (prefix !== 'xml' && prefix !== 'xmlns') used.add(prefix);
      }
    }
    for (const c of e.getChildElements()) walk(c);
  };
  walk(copy);
  for (const prefix of used) {
    if (copy.attrs[`xmlns:${prefix}`] !== undefined) continue;
    const uri = el.findNS(prefix);
    if (uri !== undefined) copy.attrs[`xmlns:${prefix}`] = uri;
  }
  return copy;
}

/** XEP-0082 DateTime in UTC with milliseconds, as mod_offline stamps (e.g. 2024-05-01T12:00:00.000Z). */
export function formatStamp(ms: number): string {
  return new Date(ms).toISOString();
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/;
const LEGACY_STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;

/** ms since the epoch of a UTC date and time, for any four-digit year; undefined if out of range. */
function utc(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // (Date.UTC would read years 0–99 as 1900–1999)
  date.setUTCHours(h, mi, s, ms);
  return date.getUTCDate() === d ? date.getTime() : undefined;
}

/** XEP-0082 DateTime (or the legacy XEP-0091 CCYYMMDDThh:mm:ss, UTC) to ms; undefined if malformed. */
export function parseStamp(s: string): number | undefined {
  const m = DATETIME.exec(s);
  if (m) {
    const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
    const t = utc(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
    if (t === undefined) return undefined;
    const offset = m[9] ? (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) * 60_000 : 0;
    return t - offset;
  }
  const l = LEGACY_STAMP.exec(s);
  return l ? utc(Number(l[1]), Number(l[2]), Number(l[3]), Number(l[4]), Number(l[5]), Number(l[6]), 0) : undefined;
}

// XML 1.0 (5th ed.) §2.3 Name and §2.2 Char, for names and text that come from outside XML (a
// Prosody data file): ltx escapes markup characters but would write invalid names and control
// characters as they are, and the stored text would no longer parse.
const NAME_START = 'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
const NCNAME = `[${NAME_START}][${NAME_CHAR}]*`;
// NameChar includes the combining marks U+0300–U+036F as a range, which the rule takes for a
// combined character.
// eslint-disable-next-line no-misleading-character-class
const QNAME = new RegExp(`^${NCNAME}(?::${NCNAME})?$`, 'u');
const XML_CHARS = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

/** A name an element or attribute may have (an NCName, or prefix:NCName). */
export function isXmlName(s: string): boolean {
  return QNAME.test(s);
}

/** Only characters XML 1.0 allows (no NUL or other C0 controls but tab, LF, CR; no lone surrogates). */
export function isXmlText(s: string): boolean {
  return XML_CHARS.test(s);
}

// ---- summary ---------------------------------------------------------------------------------------------

export interface HostSummary {
  users: number;
  /** Accounts whose only SCRAM credentials are SCRAM-SHA-1 (and no plaintext password). */
  sha1Only: number;
  withoutCredentials: number;
  rosterItems: number;
  pendingIn: number;
  vcards: number;
  offline: number;
  privateXml: number;
  blocked: number;
}

export function summarize(host: PortableHost): HostSummary {
  const s: HostSummary = { users: 0, sha1Only: 0, withoutCredentials: 0, rosterItems: 0, pendingIn: 0, vcards: 0, offline: 0, privateXml: 0, blocked: 0 };
  for (const u of host.users) {
    s.users++;
    const hashes = Object.keys(u.scram);
    if (u.password === undefined && hashes.length === 0) s.withoutCredentials++;
    if (u.password === undefined && hashes.length === 1 && hashes[0] === 'SHA-1') s.sha1Only++;
    s.rosterItems += u.roster.length;
    s.pendingIn += u.pendingIn.length;
    if (u.vcard) s.vcards++;
    s.offline += u.offline.length;
    s.privateXml += u.privateXml.length;
    s.blocked += u.blocked.length;
  }
  return s;
}

/** A human-readable report: per host what was found, then every note. */
export function formatReport(data: PortableData, notes: readonly ImportNote[]): string {
  const lines: string[] = [];
  for (const h of data.hosts) {
    const s = summarize(h);
    lines.push(`${h.host}: ${s.users} accounts, ${s.rosterItems} roster items, ${s.pendingIn} pending subscription requests, ${s.vcards} vCards, ${s.offline} offline messages, ${s.privateXml} private XML fragments, ${s.blocked} blocked JIDs`);
    if (s.sha1Only) lines.push(`  ${s.sha1Only} accounts have SCRAM-SHA-1 credentials only; they gain SCRAM-SHA-256 and -512 at their next PLAIN login or password change`);
    if (s.withoutCredentials) lines.push(`  ${s.withoutCredentials} accounts have no credentials and cannot log in until their password is set`);
  }
  for (const n of notes) {
    const where = n.user !== undefined ? `${n.user}@${n.host}` : n.host ?? '';
    lines.push(`${n.level === 'warning' ? 'warning' : 'note'}: ${where ? `${where}: ` : ''}${n.message}`);
  }
  return lines.join('\n');
}
