// Reads a Prosody data directory (`data_path`, storage = "internal": the files util.datamanager
// writes; studied on Prosody 0.12) into the neutral model of core/util/portable-data.ts, with
// notes on everything it found but could not map. Nothing in the directory is changed.
//
// Layout: <dir>/<host>/<store>/<user>.dat (`return <table>;`) or .list (`item(<table>);` per
// archive item), host and user names with every byte outside [A-Za-z0-9] as %xx, store names
// with every byte outside [A-Za-z0-9_] as %xx. Files are parsed by core/util/lua-data.ts, never
// run. Per user:
//  - accounts: `iteration_count`, `salt`, `stored_key` and `server_key` (hex) of the hash in
//    Prosody's `password_hash` (SCRAM-SHA-1 by default; told apart by the key length), or a
//    plaintext `password` (internal_plain). Prosody keeps one hash only: an account imported
//    with SCRAM-SHA-1 keys gains SCRAM-SHA-256 and -512 when its password is next seen (PLAIN
//    login, password change; core/usermanager.ts), and until every account of the host has them
//    Cadence offers those mechanisms on that host to nobody.
//  - roster: contact → { subscription, ask, name, groups = { [group] = true } }; the `[false]`
//    entry holds the version and `pending` (contact → the stored subscribe presence, or true).
//  - vcard (mod_vcard: the vcard-temp element) — or, with Prosody 0.12's default mod_vcard_legacy,
//    the PEP vCard4 (`pep_urn:xmpp:vcard4`) and avatar (`pep_urn:xmpp:avatar:metadata`, `…:data`)
//    converted to vcard-temp.
//  - offline (.list): the stored messages with `when` (seconds) and the `stamp` Prosody adds.
//  - private: "name:namespace" → element; PEP bookmarks (mod_bookmarks, `pep_urn:xmpp:bookmarks:1`)
//    become the private <storage xmlns='storage:bookmarks'/> when there is none.
//  - blocklist: JID → true (or a time); without one, the JIDs the default privacy list (old
//    mod_privacy) denies, as mod_blocklist migrates them on first use.
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Element } from '@xmpp/xml';
import { LuaBytes, LuaDataError, LuaTable, parseLuaDat, parseLuaList, type LuaDataLimits, type LuaValue } from '../util/lua-data.ts';
import { prep } from '../util/jid.ts';
import { fromPep, NS_AVATAR_DATA, NS_AVATAR_METADATA, NS_BOOKMARKS, NS_BOOKMARKS2, NODE_VCARD4, type Bookmark2, type PepLegacy } from '../util/pep-legacy.ts';
import {
  addBlocked, addOffline, addPendingIn, addPrivate, addRosterItem, addScram, emptyUser, ImportNotes, isXmlName, isXmlText,
  parseStamp, prepUsername, setVcard, type Note, type PortableData, type PortableHost, type PortableUser,
} from '../util/portable-data.ts';
import type { ScramHash } from '../util/scram.ts';

export interface ProsodyReadOptions {
  /** Limits for each data file (core/util/lua-data.ts); maxBytes also bounds the file size. */
  limits?: LuaDataLimits;
  /** Current time, ms (for offline messages without a time). */
  now?: () => number;
}

export interface ProsodyRead {
  data: PortableData;
  notes: ImportNotes;
}

/** Stores this reader maps (the PEP item stores `pep_<node>` too, for the nodes below). */
const MAPPED = new Set(['accounts', 'roster', 'vcard', 'offline', 'private', 'blocklist', 'privacy', 'pep']);
const PEP_NODES = new Set([NODE_VCARD4, NS_AVATAR_METADATA, NS_AVATAR_DATA, NS_BOOKMARKS2, NS_BOOKMARKS]);

/** Why a store Cadence has no counterpart for is left behind. */
const UNMAPPED_REASONS: Record<string, string> = {
  archive: 'the message archive (XEP-0313): Cadence has no message archive yet',
  archive2: 'the message archive (XEP-0313): Cadence has no message archive yet',
  account_details: 'registration details',
  account_activity: 'last login times',
  lastlog: 'last login times',
  lastlog2: 'last login times',
  smacks_h: 'stream management counters of closed sessions',
  cron: "Prosody's periodic task state",
  invite_token: 'pending invitations',
  tokens: 'authentication tokens (clients log in again)',
  cloud_notify: 'push notification registrations (clients register again)',
  persistent: 'MUC rooms',
  config: 'MUC room configuration',
  muc_log: 'MUC history',
};

const KEY_HASHES: Record<number, ScramHash> = { 20: 'SHA-1', 32: 'SHA-256', 64: 'SHA-512' };

// ---- names in the directory ------------------------------------------------------------------------------

/** util.datamanager's %xx decoding: bytes, then UTF-8. Undefined when malformed. */
export function decodeName(encoded: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(encoded)) return undefined;
  const bytes = Buffer.from(encoded.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

// ---- Prosody's serialized stanzas ----------------------------------------------------------------------

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/**
 * An element from util.stanza's preserialized form: { name, attr = { … }, [1..n] = child table or
 * text }. Namespaced attribute keys are `namespace\1name` (or `namespace|name` in old data).
 * Names and text are checked, so what comes out serializes to well-formed XML.
 */
export function elementFromLua(v: LuaValue | undefined, parentNs?: string): Element {
  if (!(v instanceof LuaTable)) throw new Error('an element is not a table');
  const name = v.get('name');
  if (typeof name !== 'string' || !isXmlName(name)) throw new Error(`invalid element name ${JSON.stringify(name)}`);
  const attrs: Record<string, string> = {};
  const attr = v.get('attr');
  let prefixes = 0;
  if (attr instanceof LuaTable) {
    for (const [k, val] of attr.map) {
      if (typeof k !== 'string') continue;
      const value = typeof val === 'number' ? String(val) : val;
      if (typeof value !== 'string' || !isXmlText(value)) throw new Error(`invalid value of attribute ${k} on <${name}/>`);
      const sep = k.includes('\u0001') ? k.indexOf('\u0001') : k.indexOf('|');
      if (sep < 0) {
        if (!isXmlName(k)) throw new Error(`invalid attribute name ${JSON.stringify(k)} on <${name}/>`);
        attrs[k] = value;
        continue;
      }
      const ns = k.slice(0, sep);
      const local = k.slice(sep + 1);
      if (!isXmlName(local) || local.includes(':') || !isXmlText(ns)) throw new Error(`invalid attribute name ${JSON.stringify(k)} on <${name}/>`);
      if (ns === XML_NS) {
        attrs[`xml:${local}`] = value;
      } else {
        const prefix = `ns${++prefixes}`;
        attrs[`xmlns:${prefix}`] = ns;
        attrs[`${prefix}:${local}`] = value;
      }
    }
  } else if (attr !== undefined) {
    throw new Error(`<${name}/> has attributes that are not a table`);
  }
  // Prosody repeats the namespace on every element; where it is the parent's, it is inherited.
  if (parentNs !== undefined && attrs.xmlns === parentNs) delete attrs.xmlns;
  const ns = attrs.xmlns ?? parentNs;
  const el = new Element(name, attrs);
  for (const child of v.sequence()) {
    if (child instanceof LuaTable) {
      el.cnode(elementFromLua(child, ns));
    } else if (typeof child === 'string') {
      if (!isXmlText(child)) throw new Error(`<${name}/> holds text with characters XML does not allow`);
      el.t(child);
    } else {
      throw new Error(`<${name}/> holds a child that is neither an element nor text`);
    }
  }
  return el;
}

// ---- the reader ------------------------------------------------------------------------------------------

interface StoreDir {
  /** Decoded store name. */
  name: string;
  dir: string;
  /** File names in it (encoded), regular files only. */
  files: Set<string>;
}

export async function readProsodyDataDir(dir: string, opts: ProsodyReadOptions = {}): Promise<ProsodyRead> {
  const notes = new ImportNotes();
  const data: PortableData = { hosts: [] };
  const limits = opts.limits ?? {};
  const maxBytes = limits.maxBytes ?? 64 * 1024 * 1024;
  const now = opts.now ?? Date.now;

  const entries = await listDir(dir);
  for (const entry of entries) {
    if (!entry.isDirectory()) {
      if (entry.isSymbolicLink()) notes.add('warning', `${entry.name}: a symbolic link; not followed`);
      continue;
    }
    if (entry.name === '_global') {
      notes.add('info', `${entry.name}: server-wide data (no host); not imported`);
      continue;
    }
    const decoded = decodeName(entry.name);
    const host = decoded !== undefined ? prep(decoded) : null;
    if (!host || host.includes('@') || host.includes('/')) {
      notes.add('warning', `${entry.name}: not a host name; skipped`);
      continue;
    }
    const ph: PortableHost = { host, users: [] };
    await readHost(path.join(dir, entry.name), ph, notes, { limits, maxBytes, now });
    if (ph.users.length) data.hosts.push(ph);
  }
  return { data, notes };
}

interface HostContext {
  limits: LuaDataLimits;
  maxBytes: number;
  now: () => number;
}

async function readHost(hostDir: string, ph: PortableHost, notes: ImportNotes, ctx: HostContext): Promise<void> {
  const host = ph.host;
  const stores = new Map<string, StoreDir>();
  for (const entry of await listDir(hostDir)) {
    if (entry.isSymbolicLink()) {
      notes.add('warning', `${entry.name}: a symbolic link; not followed`, host);
      continue;
    }
    if (!entry.isDirectory()) continue; // host-wide .dat files (user = nil)
    const name = decodeName(entry.name);
    if (name === undefined) {
      notes.add('warning', `store directory ${entry.name}: malformed name; skipped`, host);
      continue;
    }
    const storeDir = path.join(hostDir, entry.name);
    const files = new Set((await listDir(storeDir)).filter((f) => f.isFile()).map((f) => f.name));
    stores.set(name, { name, dir: storeDir, files });
  }

  const accounts = stores.get('accounts');
  if (!accounts) {
    if (stores.size) notes.add('info', `no accounts (a component such as MUC?); stores not imported: ${[...stores.keys()].sort().join(', ')}`, host);
    return;
  }

  /** Reads one data file of a store; undefined (noted) when absent or unreadable. */
  const load = async (store: string, file: string, kind: 'dat' | 'list', note: Note): Promise<LuaValue | LuaValue[] | undefined> => {
    const s = stores.get(store);
    const name = `${file}.${kind}`;
    if (!s?.files.has(name)) return undefined;
    const full = path.join(s.dir, name);
    try {
      const size = (await stat(full)).size;
      if (size > ctx.maxBytes) throw new Error(`larger than ${ctx.maxBytes} bytes`);
      const text = await readFile(full);
      return kind === 'dat' ? parseLuaDat(text, ctx.limits) : parseLuaList(text, ctx.limits);
    } catch (err) {
      const why = err instanceof LuaDataError || err instanceof Error ? err.message : String(err);
      note('warning', `${store}/${name} is unreadable (${why}); skipped`);
      return undefined;
    }
  };

  const seen = new Set<string>(); // encoded user file names of imported accounts
  for (const file of [...accounts.files].sort()) {
    if (!file.endsWith('.dat')) continue;
    const encoded = file.slice(0, -'.dat'.length);
    const raw = decodeName(encoded);
    if (raw === undefined) {
      notes.add('warning', `accounts/${file}: malformed name; skipped`, host);
      continue;
    }
    const username = prepUsername(raw, notes.at(host, raw));
    if (!username) continue;
    if (ph.users.some((u) => u.username === username)) {
      notes.add('warning', `accounts/${file}: a second account that prepares to '${username}'; skipped`, host);
      continue;
    }
    const note = notes.at(host, username);
    const account = await load('accounts', encoded, 'dat', note);
    if (!(account instanceof LuaTable)) {
      if (account !== undefined) note('warning', 'the account record is not a table; account skipped');
      continue;
    }
    const user = emptyUser(username);
    readAccount(user, account, note);
    seen.add(encoded);

    const roster = await load('roster', encoded, 'dat', note);
    if (roster !== undefined) readRoster(user, host, roster as LuaValue, note);

    const vcard = await load('vcard', encoded, 'dat', note);
    if (vcard !== undefined) fromStanza(vcard as LuaValue, note, 'vCard', (el) => setVcard(user, el, note));

    const offline = await load('offline', encoded, 'list', note);
    if (offline !== undefined) readOffline(user, host, offline as LuaValue[], ctx.now, note);

    const priv = await load('private', encoded, 'dat', note);
    if (priv instanceof LuaTable) {
      for (const [key, v] of priv.map) fromStanza(v, note, `private XML ${String(key)}`, (el) => addPrivate(user, el, note));
    }

    const blocklist = await load('blocklist', encoded, 'dat', note);
    if (blocklist instanceof LuaTable) {
      for (const [jid] of blocklist.map) if (typeof jid === 'string') addBlocked(user, host, jid, note);
    } else if (blocklist === undefined) {
      const privacy = await load('privacy', encoded, 'dat', note);
      if (privacy instanceof LuaTable) readPrivacy(user, host, privacy, note);
    }

    await readPep(user, encoded, stores, load, note);
    ph.users.push(user);
  }

  // What stays behind: stores without a counterpart, and files of users without an account.
  for (const s of [...stores.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const count = s.files.size;
    if (!count) continue;
    if (s.name.startsWith('pep_')) {
      const node = s.name.slice(4);
      if (!PEP_NODES.has(node)) notes.add('info', `PEP node '${node}' of ${count} users not imported: Cadence has no PEP service yet`, host);
      continue;
    }
    if (!MAPPED.has(s.name)) {
      notes.add('info', `store '${s.name}' (${count} files) not imported${UNMAPPED_REASONS[s.name] ? `: ${UNMAPPED_REASONS[s.name]}` : ''}`, host);
      continue;
    }
    if (s.name === 'accounts' || s.name === 'pep') continue;
    const orphans = [...s.files].filter((f) => !seen.has(f.replace(/\.(dat|list)$/, '')));
    if (orphans.length) notes.add('warning', `store '${s.name}': ${orphans.length} files belong to no imported account; skipped`, host);
  }
}

function readAccount(user: PortableUser, account: LuaTable, note: Note): void {
  const password = account.get('password');
  if (typeof password === 'string' && password !== '') {
    user.password = password;
    note('info', 'stored with a plaintext password: every SCRAM hash is derived from it');
  }
  const storedKey = account.get('stored_key');
  const serverKey = account.get('server_key');
  const salt = account.get('salt');
  const iterations = account.get('iteration_count');
  if (typeof storedKey === 'string' && typeof serverKey === 'string') {
    const hash = KEY_HASHES[storedKey.length / 2];
    const hex = /^(?:[0-9a-fA-F]{2})+$/;
    if (!hash || !hex.test(storedKey) || !hex.test(serverKey) || serverKey.length !== storedKey.length) {
      note('warning', 'SCRAM keys of an unknown hash or malformed; credentials not imported');
    } else if (typeof iterations !== 'number' || !(typeof salt === 'string' || salt instanceof LuaBytes)) {
      note('warning', 'SCRAM credentials without a salt or iteration count; not imported');
    } else {
      addScram(user, hash, {
        iterations,
        salt: (salt instanceof LuaBytes ? salt.bytes : Buffer.from(salt, 'utf8')).toString('base64'),
        storedKey: Buffer.from(storedKey, 'hex').toString('base64'),
        serverKey: Buffer.from(serverKey, 'hex').toString('base64'),
      }, note);
    }
  }
  if (account.get('enabled') === false || account.get('disabled') === true) {
    // Cadence has no disabled accounts: one that could not log in at Prosody must not here either.
    user.scram = {};
    delete user.password;
    note('warning', 'the account is disabled in Prosody: imported without credentials, so it cannot log in until its password is set');
  }
  if (user.password === undefined && Object.keys(user.scram).length === 0 && account.get('enabled') !== false && account.get('disabled') !== true) {
    note('warning', 'no usable credentials: the account cannot log in until its password is set');
  }
}

function readRoster(user: PortableUser, host: string, roster: LuaValue, note: Note): void {
  if (!(roster instanceof LuaTable)) {
    note('warning', 'the roster is not a table; skipped');
    return;
  }
  for (const [key, v] of roster.map) {
    if (key === false) {
      if (!(v instanceof LuaTable)) continue;
      const version = v.get('version');
      if (typeof version === 'number' && Number.isSafeInteger(version) && version >= 0) user.rosterVersion = version;
      const pending = v.get('pending');
      if (pending instanceof LuaTable) {
        for (const [jid, request] of pending.map) {
          if (typeof jid !== 'string') continue;
          let stanza: Element | undefined;
          if (request instanceof LuaTable) {
            try {
              stanza = elementFromLua(request);
            } catch {
              stanza = undefined; // a plain request is synthesized
            }
          }
          addPendingIn(user, host, jid, stanza, note);
        }
      }
      continue;
    }
    if (typeof key !== 'string' || !(v instanceof LuaTable)) {
      note('warning', `a roster entry keyed ${JSON.stringify(key)} skipped`);
      continue;
    }
    const str = (k: string) => (typeof v.get(k) === 'string' ? (v.get(k) as string) : undefined);
    const groups: string[] = [];
    const g = v.get('groups');
    if (g instanceof LuaTable) {
      for (const [name, on] of g.map) if (typeof name === 'string' && on === true) groups.push(name);
      for (const name of g.sequence()) if (typeof name === 'string') groups.push(name);
    }
    addRosterItem(user, { jid: key, subscription: str('subscription'), ask: str('ask'), approved: v.get('approved') === true, name: str('name'), groups }, note);
  }
}

function readOffline(user: PortableUser, host: string, items: LuaValue[], now: () => number, note: Note): void {
  for (const item of items) {
    if (!(item instanceof LuaTable)) {
      note('warning', 'an offline item is not a table; skipped');
      continue;
    }
    const time = (): number => {
      const w = item.get('when');
      const attr = item.get('attr');
      const stamp = attr instanceof LuaTable ? attr.get('stamp') : undefined;
      const when = typeof w === 'number' && Number.isFinite(w) ? w * 1000 : typeof stamp === 'string' ? parseStamp(stamp) : undefined;
      if (when !== undefined) return when;
      note('info', 'an offline message without a time; stamped with the import time');
      return now();
    };
    fromStanza(item, note, 'an offline message', (el) => {
      // Storage bookkeeping on the root, not part of the message.
      delete el.attrs.stamp;
      delete el.attrs.stamp_legacy;
      return addOffline(user, host, el, time, note);
    });
  }
}

/** As mod_blocklist's migration: every jid/deny item of the default privacy list. */
function readPrivacy(user: PortableUser, host: string, privacy: LuaTable, note: Note): void {
  const defaultName = privacy.get('default');
  const lists = privacy.get('lists');
  if (typeof defaultName !== 'string' || !(lists instanceof LuaTable)) return;
  const list = lists.get(defaultName);
  const items = list instanceof LuaTable ? list.get('items') : undefined;
  if (!(items instanceof LuaTable)) return;
  let n = 0;
  let other = 0;
  for (const item of items.sequence()) {
    if (!(item instanceof LuaTable)) continue;
    if (item.get('type') === 'jid' && item.get('action') === 'deny' && typeof item.get('value') === 'string') {
      if (addBlocked(user, host, item.get('value') as string, note)) n++;
    } else {
      other++;
    }
  }
  if (n) note('info', `blocklist taken from the default privacy list '${defaultName}' (${n} JIDs), as Prosody's mod_blocklist migrates it`);
  if (other) note('warning', `${other} other rules of the privacy list '${defaultName}' not imported: Cadence has the blocklist (XEP-0191) only`);
}

type Loader = (store: string, file: string, kind: 'dat' | 'list', note: Note) => Promise<LuaValue | LuaValue[] | undefined>;

/** The PEP nodes that have a legacy form: vCard4, avatar, bookmarks. */
async function readPep(user: PortableUser, encoded: string, stores: Map<string, StoreDir>, load: Loader, note: Note): Promise<void> {
  const pep: PepLegacy = { avatarData: new Map(), bookmarks2: [] };
  const items = async (node: string): Promise<{ id?: string; payload: Element }[]> => {
    if (!stores.has(`pep_${node}`)) return [];
    const list = await load(`pep_${node}`, encoded, 'list', note);
    const out: { id?: string; payload: Element }[] = [];
    for (const item of (list as LuaValue[] | undefined) ?? []) {
      if (!(item instanceof LuaTable)) continue;
      const key = item.get('key');
      fromStanza(item, note, `PEP item of ${node}`, (el) => {
        delete el.attrs.stamp;
        // Older versions kept the <item/> wrapper; 0.12 keeps its payload.
        const payload = el.getName() === 'item' ? el.getChildElements()[0] : el;
        if (!payload) return false;
        const id = typeof key === 'string' ? key : (el.attrs.id as string | undefined);
        out.push(id !== undefined ? { id, payload } : { payload });
        return true;
      });
    }
    return out;
  };
  pep.vcard4 = (await items(NODE_VCARD4)).pop()?.payload;
  pep.avatarMetadata = (await items(NS_AVATAR_METADATA)).pop()?.payload;
  for (const { id, payload } of await items(NS_AVATAR_DATA)) if (id !== undefined) pep.avatarData.set(id, payload.text());
  for (const { id, payload } of await items(NS_BOOKMARKS2)) {
    if (id !== undefined && payload.getName() === 'conference') pep.bookmarks2.push({ id, conference: payload } satisfies Bookmark2);
  }
  pep.pepBookmarks = (await items(NS_BOOKMARKS)).pop()?.payload;
  fromPep(user, pep, note);
}

/** Converts a serialized element and hands it on; a malformed one is noted and skipped. */
function fromStanza(v: LuaValue, note: Note, what: string, use: (el: Element) => boolean): void {
  let el: Element;
  try {
    el = elementFromLua(v);
  } catch (err) {
    note('warning', `${what} is malformed (${(err as Error).message}); skipped`);
    return;
  }
  use(el);
}

async function listDir(dir: string): Promise<Dirent[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
