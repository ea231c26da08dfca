// Service Administration (XEP-0133 1.2) as data: the command nodes, their names, the forms with
// the titles, instructions, field vars, types and labels of the XEP's examples, the result forms,
// and pure checks that turn a submission into a typed request (or the error to answer). The
// actions themselves — creating accounts, closing sessions, sending announcements — call the
// server's services and live in mod_admin_adhoc (doc/remote-admin.md); this file does no I/O.
// Who is an admin comes from the `admins` option (global and per host): `isAdmin` below.
import { Element } from '@xmpp/xml';
import { adhocError, type AdhocError } from './adhoc.ts';
import { result as resultForm, type FieldSpec, type FormSpec } from './dataforms.ts';
import { bare, prep, split } from './jid.ts';

export const NS_ADMIN = 'http://jabber.org/protocol/admin';
const A = `${NS_ADMIN}#`;

/** The XEP-0133 command nodes Cadence implements, and one of its own (reloading modules). */
export const ADMIN_NODES = {
  addUser: `${A}add-user`,
  deleteUser: `${A}delete-user`,
  disableUser: `${A}disable-user`,
  reenableUser: `${A}reenable-user`,
  endUserSession: `${A}end-user-session`,
  changeUserPassword: `${A}change-user-password`,
  getUserRoster: `${A}get-user-roster`,
  getUserLastLogin: `${A}get-user-lastlogin`,
  getRegisteredUsersNum: `${A}get-registered-users-num`,
  getDisabledUsersNum: `${A}get-disabled-users-num`,
  getOnlineUsersNum: `${A}get-online-users-num`,
  getRegisteredUsersList: `${A}get-registered-users-list`,
  getDisabledUsersList: `${A}get-disabled-users-list`,
  getOnlineUsersList: `${A}get-online-users-list`,
  announce: `${A}announce`,
  setMotd: `${A}set-motd`,
  editMotd: `${A}edit-motd`,
  deleteMotd: `${A}delete-motd`,
  /** Not in XEP-0133 (node values are opaque, XEP-0050 §3.2); Cadence's own. */
  reloadModules: 'cadence:admin#reload-modules',
} as const;

export type AdminCommandKey = keyof typeof ADMIN_NODES;

export interface AdminCommandSpec {
  key: AdminCommandKey;
  node: string;
  /** The disco#items name. */
  name: string;
  /** The form of the single stage; absent for commands that complete at once (counts, delete-motd). */
  form?: FormSpec;
}

const hidden = { formType: NS_ADMIN };

function jidsForm(title: string, instructions: string, label: string): FormSpec {
  return { ...hidden, title, instructions, fields: [{ var: 'accountjids', type: 'jid-multi', label, required: true }] };
}

const MAX_ITEMS: FieldSpec = {
  var: 'max_items',
  type: 'list-single',
  label: 'Maximum number of items to show',
  options: [
    { label: '25', value: '25' }, { label: '50', value: '50' }, { label: '75', value: '75' }, { label: '100', value: '100' },
    { label: '150', value: '150' }, { label: '200', value: '200' }, { label: 'None', value: 'none' },
  ],
};

function listForm(title: string, what: string): FormSpec {
  return { ...hidden, title, instructions: `Fill out this form to request the ${what} of this service.`, fields: [MAX_ITEMS] };
}

/** Every command, in the order of XEP-0133 §4, with its form as the XEP gives it. */
export const ADMIN_COMMANDS: readonly AdminCommandSpec[] = [
  {
    key: 'addUser', node: ADMIN_NODES.addUser, name: 'Add User',
    form: {
      ...hidden, title: 'Adding a User', instructions: 'Fill out this form to add a user.',
      fields: [
        { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for the account to be added', required: true },
        { var: 'password', type: 'text-private', label: 'The password for this account' },
        { var: 'password-verify', type: 'text-private', label: 'Retype password' },
        { var: 'email', type: 'text-single', label: 'Email address' },
        { var: 'given_name', type: 'text-single', label: 'Given name' },
        { var: 'surname', type: 'text-single', label: 'Family name' },
      ],
    },
  },
  { key: 'deleteUser', node: ADMIN_NODES.deleteUser, name: 'Delete User', form: jidsForm('Deleting a User', 'Fill out this form to delete a user.', 'The Jabber ID(s) to delete') },
  { key: 'disableUser', node: ADMIN_NODES.disableUser, name: 'Disable User', form: jidsForm('Disabling a User', 'Fill out this form to disable a user.', 'The Jabber ID(s) to disable') },
  { key: 'reenableUser', node: ADMIN_NODES.reenableUser, name: 'Re-Enable User', form: jidsForm('Re-Enable a User', 'Fill out this form to re-enable a user.', 'The Jabber ID(s) to re-enable') },
  {
    key: 'endUserSession', node: ADMIN_NODES.endUserSession, name: 'End User Session',
    form: jidsForm('Ending a User Session', "Fill out this form to end a user's session.", 'The Jabber ID(s) for which to end sessions'),
  },
  {
    key: 'changeUserPassword', node: ADMIN_NODES.changeUserPassword, name: 'Change User Password',
    form: {
      ...hidden, title: 'Changing a User Password', instructions: "Fill out this form to change a user's password.",
      fields: [
        { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for this account', required: true },
        { var: 'password', type: 'text-private', label: 'The password for this account', required: true },
      ],
    },
  },
  {
    key: 'getUserRoster', node: ADMIN_NODES.getUserRoster, name: 'Get User Roster',
    form: jidsForm("Getting a User's Roster", "Fill out this form to get a user's roster.", 'The Jabber ID(s) for which to retrieve the roster'),
  },
  {
    key: 'getUserLastLogin', node: ADMIN_NODES.getUserLastLogin, name: 'Get User Last Login Time',
    form: jidsForm("Getting a User's Last Login Time", "Fill out this form to get a user's last login time.", 'The Jabber ID(s) for which to retrieve the last login time'),
  },
  { key: 'getRegisteredUsersNum', node: ADMIN_NODES.getRegisteredUsersNum, name: 'Get Number of Registered Users' },
  { key: 'getDisabledUsersNum', node: ADMIN_NODES.getDisabledUsersNum, name: 'Get Number of Disabled Users' },
  { key: 'getOnlineUsersNum', node: ADMIN_NODES.getOnlineUsersNum, name: 'Get Number of Online Users' },
  { key: 'getRegisteredUsersList', node: ADMIN_NODES.getRegisteredUsersList, name: 'Get List of Registered Users', form: listForm('Requesting List of Registered Users', 'registered users') },
  { key: 'getDisabledUsersList', node: ADMIN_NODES.getDisabledUsersList, name: 'Get List of Disabled Users', form: listForm('Requesting List of Disabled Users', 'disabled users') },
  { key: 'getOnlineUsersList', node: ADMIN_NODES.getOnlineUsersList, name: 'Get List of Online Users', form: listForm('Requesting List of Online Users', 'online users') },
  {
    key: 'announce', node: ADMIN_NODES.announce, name: 'Send Announcement to Online Users',
    form: {
      ...hidden, title: 'Making an Announcement', instructions: 'Fill out this form to make an announcement to all active users of this service.',
      fields: [{ var: 'announcement', type: 'text-multi', label: 'Announcement', required: true }],
    },
  },
  {
    key: 'setMotd', node: ADMIN_NODES.setMotd, name: 'Set Message of the Day',
    form: {
      ...hidden, title: 'Setting the Message of the Day', instructions: 'Fill out this form to set the message of the day.',
      fields: [{ var: 'motd', type: 'text-multi', label: 'Message of the Day', required: true }],
    },
  },
  {
    key: 'editMotd', node: ADMIN_NODES.editMotd, name: 'Edit Message of the Day',
    // The current message is filled in by editMotdForm(); this is the form without one set.
    form: {
      ...hidden, title: 'Editing the Message of the Day', instructions: 'Fill out this form to edit the message of the day.',
      fields: [{ var: 'motd', type: 'text-multi', label: 'Message of the Day', required: true }],
    },
  },
  { key: 'deleteMotd', node: ADMIN_NODES.deleteMotd, name: 'Delete Message of the Day' },
  {
    key: 'reloadModules', node: ADMIN_NODES.reloadModules, name: 'Reload Modules',
    // The options (the loaded modules) are filled in by reloadModulesForm().
    form: { ...hidden, title: 'Reloading Modules', instructions: 'Select the modules to reload.', fields: [{ var: 'modules', type: 'list-multi', label: 'Modules to reload', required: true }] },
  },
];

export function adminCommand(key: AdminCommandKey): AdminCommandSpec {
  return ADMIN_COMMANDS.find((c) => c.key === key) as AdminCommandSpec;
}

/** The edit-motd form with the current message (§4.25 "SHOULD include the current message of the day"). */
export function editMotdForm(current: string | undefined): FormSpec {
  const f = adminCommand('editMotd').form as FormSpec;
  if (current === undefined) return f;
  return { ...f, fields: f.fields.map((fs) => (fs.var === 'motd' ? { ...fs, values: current.split('\n') } : fs)) };
}

/** The reload form offering the modules loaded on the host. */
export function reloadModulesForm(loaded: readonly string[]): FormSpec {
  const f = adminCommand('reloadModules').form as FormSpec;
  return { ...f, fields: f.fields.map((fs) => ({ ...fs, options: loaded.map((value) => ({ value })) })) };
}

// ---- rights ------------------------------------------------------------------------------------

/** The `admins` option: global admins, and admins of single hosts (`virtualHosts[h].admins`). */
export interface AdminList {
  global: readonly string[];
  hosts?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Whether `jid` (any resource) administers `host`: its bare JID is a global admin or an admin
 * of that host. JIDs are compared prepared, so case and width variants match.
 */
export function isAdmin(admins: AdminList, jid: string, host: string): boolean {
  const who = bareOf(jid);
  if (who === undefined) return false;
  const match = (list: readonly string[] | undefined) => (list ?? []).some((a) => bareOf(a) === who);
  return match(admins.global) || match(admins.hosts?.[host]);
}

function bareOf(jid: string): string | undefined {
  const p = prep(jid);
  return p === null ? undefined : bare(p);
}

// ---- reading submissions -----------------------------------------------------------------------

export type Checked<T> = { ok: true; value: T } | { ok: false; error: AdhocError };

/** What the checks need to know about the requester and the server. */
export interface AdminScope {
  /** Hosts (virtual hosts) of this server; accounts elsewhere are refused. */
  isLocalHost: (host: string) => boolean;
  /** Whether the requester administers this host (isAdmin with the requester bound in). */
  administers: (host: string) => boolean;
}

export interface AccountRef {
  /** Prepared JID as given (bare, or full for end-user-session). */
  jid: string;
  username: string;
  host: string;
  resource?: string;
}

/** A submission the requester can correct: bad-request with bad-payload (XEP-0050 §4.4). */
const payload = (text: string): Checked<never> => ({ ok: false, error: adhocError('bad-payload', text) });

function account(raw: string, scope: AdminScope, allowFull: boolean): Checked<AccountRef> {
  const jid = prep(raw);
  if (jid === null) return payload(`'${raw}' is not a valid JID`);
  const parts = split(jid);
  if (!parts.node) return payload(`'${raw}' is not an account (user@host)`);
  if (parts.resource !== undefined && !allowFull) return payload(`'${raw}' must be a bare JID (user@host)`);
  const host = parts.host as string;
  if (!scope.isLocalHost(host)) return payload(`${host} is not served here`);
  if (!scope.administers(host)) return { ok: false, error: { type: 'cancel', condition: 'forbidden', text: `You do not administer ${host}` } };
  return { ok: true, value: { jid, username: parts.node, host, ...(parts.resource !== undefined ? { resource: parts.resource } : {}) } };
}

function one(values: ReadonlyMap<string, readonly string[]>, v: string): string | undefined {
  const got = values.get(v)?.[0];
  return got === undefined || got === '' ? undefined : got;
}

export interface AddUserRequest extends AccountRef {
  password: string;
  email?: string;
  givenName?: string;
  surname?: string;
}

/**
 * add-user (§4.1): accountjid a bare JID on a host the requester administers; a password (the
 * XEP's form does not mark it required, but Cadence stores SCRAM credentials and needs one);
 * password-verify, when given, equal to it.
 */
export function readAddUser(values: ReadonlyMap<string, readonly string[]>, scope: AdminScope): Checked<AddUserRequest> {
  const raw = one(values, 'accountjid');
  if (raw === undefined) return payload('The Jabber ID is required');
  const acct = account(raw, scope, false);
  if (!acct.ok) return acct;
  const password = one(values, 'password');
  if (password === undefined) return payload('A password is required');
  const verify = one(values, 'password-verify');
  if (verify !== undefined && verify !== password) return payload('The passwords do not match');
  const email = one(values, 'email'), givenName = one(values, 'given_name'), surname = one(values, 'surname');
  return {
    ok: true,
    value: { ...acct.value, password, ...(email ? { email } : {}), ...(givenName ? { givenName } : {}), ...(surname ? { surname } : {}) },
  };
}

/**
 * accountjids of delete-user, disable-user, reenable-user, get-user-roster, get-user-lastlogin
 * (bare JIDs, §4.2–4.9) and end-user-session (full JIDs too: a full JID ends only that resource,
 * §4.5). Duplicates are dropped; the first bad JID refuses the whole request.
 */
export function readAccountJids(values: ReadonlyMap<string, readonly string[]>, scope: AdminScope, opts: { allowFull?: boolean } = {}): Checked<AccountRef[]> {
  const raws = (values.get('accountjids') ?? []).filter((v) => v !== '');
  if (!raws.length) return payload('At least one Jabber ID is required');
  const out = new Map<string, AccountRef>();
  for (const raw of raws) {
    const acct = account(raw, scope, opts.allowFull ?? false);
    if (!acct.ok) return acct;
    out.set(acct.value.jid, acct.value);
  }
  return { ok: true, value: [...out.values()] };
}

/** change-user-password (§4.7). */
export function readChangePassword(values: ReadonlyMap<string, readonly string[]>, scope: AdminScope): Checked<AccountRef & { password: string }> {
  const raw = one(values, 'accountjid');
  if (raw === undefined) return payload('The Jabber ID is required');
  const acct = account(raw, scope, false);
  if (!acct.ok) return acct;
  const password = one(values, 'password');
  if (password === undefined) return payload('A password is required');
  return { ok: true, value: { ...acct.value, password } };
}

/** max_items of the list commands: a number, or undefined for 'none' or no choice (no limit). */
export function readMaxItems(values: ReadonlyMap<string, readonly string[]>): Checked<number | undefined> {
  const v = one(values, 'max_items');
  if (v === undefined || v === 'none') return { ok: true, value: undefined };
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) return payload(`'${v}' is not a number of items`);
  return { ok: true, value: n };
}

/** announcement / motd text (text-multi): the lines joined with newlines; blank is refused. */
export function readText(values: ReadonlyMap<string, readonly string[]>, field: 'announcement' | 'motd'): Checked<string> {
  const text = (values.get(field) ?? []).join('\n');
  if (text.trim() === '') return payload(`The ${field === 'motd' ? 'message of the day' : 'announcement'} is empty`);
  return { ok: true, value: text };
}

/** modules of reload-modules: each must be loaded. */
export function readModules(values: ReadonlyMap<string, readonly string[]>, loaded: readonly string[]): Checked<string[]> {
  const mods = [...new Set((values.get('modules') ?? []).filter((m) => m !== ''))];
  if (!mods.length) return payload('Select at least one module');
  const unknown = mods.find((m) => !loaded.includes(m));
  if (unknown !== undefined) return payload(`Module '${unknown}' is not loaded`);
  return { ok: true, value: mods };
}

// ---- result forms ------------------------------------------------------------------------------

function adminResult(fields: FieldSpec[]): Element {
  return resultForm({ ...hidden, fields });
}

const NUMBER_LABELS = {
  registeredusersnum: 'The number of registered users',
  disabledusersnum: 'The number of disabled users',
  onlineusersnum: 'The number of online users',
} as const;

/** The result of a get-*-num command (§4.13–4.15; the XEP's examples use type form in two places, a result is meant). */
export function countResult(field: keyof typeof NUMBER_LABELS, n: number): Element {
  return adminResult([{ var: field, type: 'text-single', label: NUMBER_LABELS[field], values: [String(n)] }]);
}

const LIST_LABELS = {
  registereduserjids: 'The list of all users',
  disableduserjids: 'The list of all disabled users',
  onlineuserjids: 'The list of all online users',
} as const;

/** The result of a get-*-list command (§4.18–4.20): jid-multi, truncated to max_items. */
export function listResult(field: keyof typeof LIST_LABELS, jids: readonly string[], maxItems?: number): Element {
  const shown = maxItems === undefined ? jids : jids.slice(0, maxItems);
  return adminResult([{ var: field, type: 'jid-multi', label: LIST_LABELS[field], values: shown }]);
}

/** XEP-0082 DateTime, in UTC without fractions: 2003-12-19T17:58:35Z. */
export function xep82DateTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The result of get-user-lastlogin (§4.9) for one account; no value when it never logged in. */
export function lastLoginResult(jid: string, lastLogin: Date | undefined): Element {
  return adminResult([
    { var: 'accountjids', type: 'jid-multi', values: [jid] },
    { var: 'lastlogin', type: 'text-single', label: 'The last login time', values: lastLogin ? [xep82DateTime(lastLogin)] : [] },
  ]);
}

export interface RosterEntry {
  jid: string;
  name?: string;
  subscription: 'none' | 'to' | 'from' | 'both';
  ask?: boolean;
  groups: readonly string[];
}

/** The result of get-user-roster (§4.8) for one account: the jabber:iq:roster query inside the result form. */
export function rosterResult(jid: string, items: readonly RosterEntry[]): Element {
  const x = adminResult([{ var: 'accountjids', type: 'jid-multi', values: [jid] }]);
  const q = x.c('query', { xmlns: 'jabber:iq:roster' });
  for (const it of items) {
    const item = q.c('item', { jid: it.jid, subscription: it.subscription, ...(it.name ? { name: it.name } : {}), ...(it.ask ? { ask: 'subscribe' } : {}) });
    for (const g of it.groups) item.c('group').t(g);
  }
  return x;
}

// ---- messages ----------------------------------------------------------------------------------

/** A one-time announcement (§4.23) to an online resource: a headline (RFC 6121 §5.2.2: no reply expected, not stored offline). */
export function announcementMessage(from: string, to: string, text: string): Element {
  const m = new Element('message', { from, to, type: 'headline' });
  m.c('subject').t('Announcement');
  m.c('body').t(text);
  return m;
}

/** The message of the day as delivered at login (§4.24 note: a standing announcement, sent once to each user until deleted). */
export function motdMessage(from: string, to: string, text: string): Element {
  const m = new Element('message', { from, to });
  m.c('subject').t('Message of the Day');
  m.c('body').t(text);
  return m;
}

/** The stored message of the day: an id changes when a new one is set, so each user sees each message once. */
export interface Motd {
  id: string;
  text: string;
  /** XEP-0082 DateTime when it was set. */
  setAt: string;
}

/** set-motd: a new message, sent to everyone (online now, others at their next login). */
export function newMotd(text: string, now: Date, id: string): Motd {
  return { id, text, setAt: xep82DateTime(now) };
}

/** edit-motd corrects the text and keeps the id: users who saw it are not sent the correction. */
export function editMotd(current: Motd | undefined, text: string, now: Date, id: string): Motd {
  return current ? { ...current, text } : newMotd(text, now, id);
}

/** Whether a user whose last seen message of the day is `seenId` gets `motd` at login. */
export function motdDue(motd: Motd | undefined, seenId: string | undefined): boolean {
  return motd !== undefined && motd.id !== seenId;
}
