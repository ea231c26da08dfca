// Room configuration (XEP-0045 §10.1–10.2): the typed settings of a room, the muc#roomconfig form
// built from them (§16.5.3), reading a submitted form back with validation, the status codes a
// change announces (§10.2.1), and the room's disco#info: room-type features (§16.3) and the
// muc#roominfo form (§16.5.4).
import type { Element } from '@xmpp/xml';
import { form, parseBoolean, readSubmission, type FieldSpec, type FormSpec, type ParsedForm } from '../../core/api.ts';
import { FORM_ROOMCONFIG, Status, type StatusCode } from './ns.ts';
import type { Role } from './roles.ts';

export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';
export type Whois = 'moderators' | 'anyone';
/** Roles that appear in muc#roomconfig_presencebroadcast and muc#roomconfig_getmemberlist. */
export type ListedRole = Exclude<Role, 'none'>;

export interface RoomConfig {
  /** muc#roomconfig_roomname: natural-language name (the disco identity name). */
  name: string;
  /** muc#roomconfig_roomdesc. */
  description: string;
  /** muc#roomconfig_lang (a language tag, or ''). */
  lang: string;
  /** muc#roomconfig_persistentroom: kept when the last occupant leaves, stored durably. */
  persistent: boolean;
  /** muc#roomconfig_publicroom: listed in the service's disco#items. */
  public: boolean;
  /** muc#roomconfig_membersonly. */
  membersOnly: boolean;
  /** muc#roomconfig_moderatedroom: only participants and moderators speak. */
  moderated: boolean;
  /** muc#roomconfig_passwordprotectedroom with muc#roomconfig_roomsecret. */
  passwordProtected: boolean;
  password: string;
  /** muc#roomconfig_maxusers; null for no limit. */
  maxUsers: number | null;
  /** muc#roomconfig_whois: who sees real JIDs ('anyone' = non-anonymous). */
  whois: Whois;
  /** muc#maxhistoryfetch: how many messages of history a joining occupant gets at most. */
  historyLength: number;
  /** muc#roomconfig_allowinvites: members (not only admins) may invite into a members-only room. */
  allowInvites: boolean;
  /** muc#roomconfig_changesubject: participants (not only moderators) may change the subject. */
  changeSubject: boolean;
  /** muc#roomconfig_allowpm: who may send private messages. */
  allowPm: AllowPm;
  /** muc#roomconfig_presencebroadcast: roles whose presence is broadcast to the room. */
  presenceBroadcast: ListedRole[];
  /** muc#roomconfig_getmemberlist: roles that may retrieve the member list. */
  getMemberList: ListedRole[];
  /** muc#roomconfig_enablelogging: discussions are logged publicly (status 170 on entry). */
  enableLogging: boolean;
  /** muc#roomconfig_pubsub: XMPP URI of an associated pubsub node, or ''. */
  pubsub: string;
}

export const DEFAULT_CONFIG: Readonly<RoomConfig> = Object.freeze<RoomConfig>({
  name: '',
  description: '',
  lang: '',
  persistent: false,
  public: true,
  membersOnly: false,
  moderated: false,
  passwordProtected: false,
  password: '',
  maxUsers: null,
  whois: 'moderators',
  historyLength: 20,
  allowInvites: false,
  changeSubject: false,
  allowPm: 'anyone',
  presenceBroadcast: ['moderator', 'participant', 'visitor'],
  getMemberList: ['moderator', 'participant', 'visitor'],
  enableLogging: false,
  pubsub: '',
});

const LISTED_ROLES: readonly ListedRole[] = ['moderator', 'participant', 'visitor'];
const ALLOW_PM: readonly AllowPm[] = ['anyone', 'participants', 'moderators', 'none'];
const WHOIS: readonly Whois[] = ['moderators', 'anyone'];

export const F = {
  name: 'muc#roomconfig_roomname',
  description: 'muc#roomconfig_roomdesc',
  lang: 'muc#roomconfig_lang',
  persistent: 'muc#roomconfig_persistentroom',
  public: 'muc#roomconfig_publicroom',
  membersOnly: 'muc#roomconfig_membersonly',
  moderated: 'muc#roomconfig_moderatedroom',
  passwordProtected: 'muc#roomconfig_passwordprotectedroom',
  password: 'muc#roomconfig_roomsecret',
  maxUsers: 'muc#roomconfig_maxusers',
  whois: 'muc#roomconfig_whois',
  historyLength: 'muc#maxhistoryfetch',
  allowInvites: 'muc#roomconfig_allowinvites',
  changeSubject: 'muc#roomconfig_changesubject',
  allowPm: 'muc#roomconfig_allowpm',
  presenceBroadcast: 'muc#roomconfig_presencebroadcast',
  getMemberList: 'muc#roomconfig_getmemberlist',
  enableLogging: 'muc#roomconfig_enablelogging',
  pubsub: 'muc#roomconfig_pubsub',
  owners: 'muc#roomconfig_roomowners',
  admins: 'muc#roomconfig_roomadmins',
} as const;

/** Service-level limits the form offers and enforces. */
export interface ConfigLimits {
  /** Upper bound of muc#maxhistoryfetch (the size of the in-memory history). */
  maxHistory: number;
  /** Upper bound of muc#roomconfig_maxusers; null for none. */
  maxUsers: number | null;
}

const bool = (b: boolean) => (b ? '1' : '0');
const roleOptions = LISTED_ROLES.map((r) => ({ label: r.charAt(0).toUpperCase() + r.slice(1), value: r }));

/** The muc#roomconfig form for the current settings and lists (§10.1.3, §10.2). */
export function configForm(
  roomJid: string,
  c: RoomConfig,
  lists: { owners: readonly string[]; admins: readonly string[] },
  limits: ConfigLimits,
): Element {
  const maxUserOptions = [10, 20, 30, 50, 100, 200, 500, 1000]
    .filter((n) => limits.maxUsers === null || n <= limits.maxUsers)
    .map((n) => ({ value: String(n) }));
  const fields: FieldSpec[] = [
    { var: F.name, type: 'text-single', label: 'Natural-Language Room Name', values: [c.name] },
    { var: F.description, type: 'text-single', label: 'Short Description of Room', values: [c.description] },
    { var: F.lang, type: 'text-single', label: 'Natural Language for Room Discussions', values: [c.lang], validate: { datatype: 'xs:language' } },
    { var: F.persistent, type: 'boolean', label: 'Make Room Persistent?', values: [bool(c.persistent)] },
    { var: F.public, type: 'boolean', label: 'Make Room Publicly Searchable?', values: [bool(c.public)] },
    { var: F.membersOnly, type: 'boolean', label: 'Make Room Members-Only?', values: [bool(c.membersOnly)] },
    { var: F.moderated, type: 'boolean', label: 'Make Room Moderated?', values: [bool(c.moderated)] },
    { var: F.passwordProtected, type: 'boolean', label: 'Password Required to Enter?', values: [bool(c.passwordProtected)] },
    { var: F.password, type: 'text-private', label: 'Password', values: c.passwordProtected ? [c.password] : [] },
    {
      var: F.maxUsers,
      type: 'list-single',
      label: 'Maximum Number of Occupants',
      values: [c.maxUsers === null ? 'none' : String(c.maxUsers)],
      options: [...maxUserOptions, ...(limits.maxUsers === null ? [{ label: 'None', value: 'none' }] : [])],
      validate: { datatype: 'xs:integer', open: true },
    },
    {
      var: F.whois,
      type: 'list-single',
      label: 'Who May Discover Real JIDs?',
      values: [c.whois],
      options: [{ label: 'Moderators Only', value: 'moderators' }, { label: 'Anyone', value: 'anyone' }],
    },
    {
      var: F.historyLength,
      type: 'text-single',
      label: 'Maximum Number of History Messages Returned by Room',
      values: [String(c.historyLength)],
      validate: { datatype: 'xs:integer', range: { min: '0', max: String(limits.maxHistory) } },
    },
    { var: F.allowInvites, type: 'boolean', label: 'Allow Members to Invite Others?', values: [bool(c.allowInvites)] },
    { var: F.changeSubject, type: 'boolean', label: 'Allow Occupants to Change Subject?', values: [bool(c.changeSubject)] },
    {
      var: F.allowPm,
      type: 'list-single',
      label: 'Who Can Send Private Messages?',
      values: [c.allowPm],
      options: [
        { label: 'Anyone', value: 'anyone' },
        { label: 'Anyone with Voice', value: 'participants' },
        { label: 'Moderators Only', value: 'moderators' },
        { label: 'Nobody', value: 'none' },
      ],
    },
    { var: F.presenceBroadcast, type: 'list-multi', label: 'Roles for which Presence is Broadcasted', values: c.presenceBroadcast, options: roleOptions },
    { var: F.getMemberList, type: 'list-multi', label: 'Roles and Affiliations that May Retrieve Member List', values: c.getMemberList, options: roleOptions },
    { var: F.enableLogging, type: 'boolean', label: 'Enable Public Logging?', values: [bool(c.enableLogging)] },
    { var: F.pubsub, type: 'text-single', label: 'XMPP URI of Associated Publish-Subscribe Node', values: c.pubsub ? [c.pubsub] : [] },
    { var: F.admins, type: 'jid-multi', label: 'Full List of Room Admins', values: lists.admins },
    { var: F.owners, type: 'jid-multi', label: 'Full List of Room Owners', values: lists.owners },
  ];
  return form({
    formType: FORM_ROOMCONFIG,
    title: `Configuration for ${roomJid}`,
    instructions: 'Complete this form to configure the room; submit it unchanged to accept the current settings.',
    fields,
  });
}

/** The spec submissions are checked against (values do not matter here, only types and rules). */
function submissionSpec(limits: ConfigLimits): FormSpec {
  return {
    formType: FORM_ROOMCONFIG,
    fields: [
      { var: F.name, type: 'text-single' },
      { var: F.description, type: 'text-single' },
      { var: F.lang, type: 'text-single', validate: { regex: '(|[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*)' } },
      { var: F.persistent, type: 'boolean' },
      { var: F.public, type: 'boolean' },
      { var: F.membersOnly, type: 'boolean' },
      { var: F.moderated, type: 'boolean' },
      { var: F.passwordProtected, type: 'boolean' },
      { var: F.password, type: 'text-private' },
      { var: F.maxUsers, type: 'list-single', validate: { regex: '(|none|[0-9]{1,9})', open: true } },
      { var: F.whois, type: 'list-single', options: WHOIS.map((value) => ({ value })) },
      { var: F.historyLength, type: 'text-single', validate: { datatype: 'xs:integer', range: { min: '0', max: String(limits.maxHistory) } } },
      { var: F.allowInvites, type: 'boolean' },
      { var: F.changeSubject, type: 'boolean' },
      { var: F.allowPm, type: 'list-single', options: ALLOW_PM.map((value) => ({ value })) },
      { var: F.presenceBroadcast, type: 'list-multi', options: LISTED_ROLES.map((value) => ({ value })) },
      { var: F.getMemberList, type: 'list-multi', options: LISTED_ROLES.map((value) => ({ value })) },
      { var: F.enableLogging, type: 'boolean' },
      { var: F.pubsub, type: 'text-single' },
      { var: F.admins, type: 'jid-multi' },
      { var: F.owners, type: 'jid-multi' },
    ],
  };
}

export type ConfigSubmission =
  | {
      ok: true;
      config: RoomConfig;
      /** Full owner/admin lists when the form carried them (§10.5, §10.8: the lists replace, not a delta). */
      owners: string[] | undefined;
      admins: string[] | undefined;
    }
  | { ok: false; text: string };

/**
 * Read a submitted muc#roomconfig form onto `current`: fields absent from the form keep their
 * value, fields this service does not know are ignored (clients send vendor fields), invalid
 * values and service-policy violations (a password-protected room without a password, more
 * occupants than the service allows) are refused — the caller answers not-acceptable (§10.1.3).
 * JIDs in the owner and admin lists are checked and reduced to bare JIDs by `bareJid`.
 */
export function readConfigSubmission(
  x: ParsedForm,
  current: RoomConfig,
  limits: ConfigLimits,
  bareJid: (s: string) => string | null,
): ConfigSubmission {
  const r = readSubmission(x, submissionSpec(limits), { allowUnknown: true, isJid: (s) => bareJid(s) !== null });
  if (!r.ok) return { ok: false, text: r.text };
  const v = r.values;
  const c: RoomConfig = { ...current, presenceBroadcast: [...current.presenceBroadcast], getMemberList: [...current.getMemberList] };
  const text = (f: string) => v.get(f)?.[0] ?? '';
  const flag = (f: string, dflt: boolean) => (v.has(f) ? parseBoolean(v.get(f)?.[0]) ?? dflt : dflt);
  if (v.has(F.name)) c.name = text(F.name);
  if (v.has(F.description)) c.description = text(F.description);
  if (v.has(F.lang)) c.lang = text(F.lang);
  if (v.has(F.pubsub)) c.pubsub = text(F.pubsub);
  c.persistent = flag(F.persistent, c.persistent);
  c.public = flag(F.public, c.public);
  c.membersOnly = flag(F.membersOnly, c.membersOnly);
  c.moderated = flag(F.moderated, c.moderated);
  c.allowInvites = flag(F.allowInvites, c.allowInvites);
  c.changeSubject = flag(F.changeSubject, c.changeSubject);
  c.enableLogging = flag(F.enableLogging, c.enableLogging);
  if (v.has(F.whois)) c.whois = text(F.whois) as Whois;
  if (v.has(F.allowPm)) c.allowPm = text(F.allowPm) as AllowPm;
  if (v.has(F.historyLength)) c.historyLength = Number(text(F.historyLength));
  if (v.has(F.presenceBroadcast)) c.presenceBroadcast = uniqueRoles(v.get(F.presenceBroadcast) ?? []);
  if (v.has(F.getMemberList)) c.getMemberList = uniqueRoles(v.get(F.getMemberList) ?? []);
  if (v.has(F.maxUsers)) {
    const m = text(F.maxUsers);
    if (m === 'none' || m === '' || m === '0') {
      if (limits.maxUsers !== null) return { ok: false, text: `This service allows at most ${limits.maxUsers} occupants per room` };
      c.maxUsers = null;
    } else {
      const n = Number(m);
      if (limits.maxUsers !== null && n > limits.maxUsers) return { ok: false, text: `This service allows at most ${limits.maxUsers} occupants per room` };
      c.maxUsers = n;
    }
  }
  // The password: a submitted secret with no explicit flag means the owner wants it required
  // (clients that only send muc#roomconfig_roomsecret); an explicit 0 clears it.
  const secret = v.get(F.password)?.[0];
  if (secret !== undefined) c.password = secret;
  if (v.has(F.passwordProtected)) c.passwordProtected = flag(F.passwordProtected, false);
  else if (secret !== undefined) c.passwordProtected = secret !== '';
  if (!c.passwordProtected) c.password = '';
  else if (c.password === '') return { ok: false, text: 'A password-protected room needs a password' };
  const list = (f: string): string[] | undefined | null => {
    if (!v.has(f)) return undefined;
    const out: string[] = [];
    for (const j of v.get(f) ?? []) {
      if (j.trim() === '') continue;
      const b = bareJid(j.trim());
      if (b === null) return null;
      if (!out.includes(b)) out.push(b);
    }
    return out;
  };
  const owners = list(F.owners);
  const admins = list(F.admins);
  if (owners === null || admins === null) return { ok: false, text: 'Invalid JID in the owner or admin list' };
  if (owners !== undefined && owners.length === 0) return { ok: false, text: 'A room needs at least one owner' };
  return { ok: true, config: c, owners, admins };
}

function uniqueRoles(values: readonly string[]): ListedRole[] {
  return LISTED_ROLES.filter((r) => values.includes(r));
}

/**
 * Status codes to announce after a configuration change (§10.2.1): 170/171 when public logging
 * was switched on/off, 172/173 when the room became non-anonymous/semi-anonymous, 104 for any
 * other change. Empty when nothing changed.
 */
export function configChangeCodes(before: RoomConfig, after: RoomConfig): StatusCode[] {
  const codes: StatusCode[] = [];
  if (before.enableLogging !== after.enableLogging) codes.push(after.enableLogging ? Status.LoggingEnabled : Status.LoggingDisabled);
  if (before.whois !== after.whois) codes.push(after.whois === 'anyone' ? Status.NowNonAnonymous : Status.NowSemiAnonymous);
  const rest = (c: RoomConfig) => JSON.stringify({ ...c, enableLogging: undefined, whois: undefined });
  if (rest(before) !== rest(after)) codes.push(Status.ConfigChanged);
  return codes;
}

/** The room-type features of §16.3 for disco#info. */
export function roomTypeFeatures(c: RoomConfig): string[] {
  return [
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
  ];
}

/** Check a stored configuration read back from JSON; returns what is wrong, or undefined. */
export function checkStoredConfig(c: unknown): string | undefined {
  if (typeof c !== 'object' || c === null) return 'config is not an object';
  const o = c as Record<string, unknown>;
  for (const k of ['name', 'description', 'lang', 'password', 'pubsub'] as const) if (typeof o[k] !== 'string') return `config.${k} is not a string`;
  for (const k of ['persistent', 'public', 'membersOnly', 'moderated', 'passwordProtected', 'allowInvites', 'changeSubject', 'enableLogging'] as const) {
    if (typeof o[k] !== 'boolean') return `config.${k} is not a boolean`;
  }
  if (!(o.maxUsers === null || (typeof o.maxUsers === 'number' && Number.isInteger(o.maxUsers) && o.maxUsers > 0))) return 'config.maxUsers is invalid';
  if (!(typeof o.historyLength === 'number' && Number.isInteger(o.historyLength) && o.historyLength >= 0)) return 'config.historyLength is invalid';
  if (!WHOIS.includes(o.whois as Whois)) return 'config.whois is invalid';
  if (!ALLOW_PM.includes(o.allowPm as AllowPm)) return 'config.allowPm is invalid';
  for (const k of ['presenceBroadcast', 'getMemberList'] as const) {
    const a = o[k];
    if (!Array.isArray(a) || !a.every((r) => LISTED_ROLES.includes(r as ListedRole))) return `config.${k} is invalid`;
  }
  return undefined;
}
