// Writes the neutral model of migrated user data (core/util/portable-data.ts) into Cadence's
// storage through the StorageManager, and reads it back (for XEP-0227 export and checks).
//
// It writes exactly what the modules themselves store — so when one of these formats changes in
// its module, this file must follow (doc/migration.md, "Formats"):
//   accounts  keyval 'accounts'   core/usermanager.ts      { scram: { 'SHA-1': {iterations, salt, storedKey, serverKey}, … }, created }
//   roster    map    'roster'     core/rostermanager.ts    contact → { subscription, groups, ask?, approved?, name? };
//                                                          '\u0000meta' → { version, pending: { contact: subscribe presence XML } }
//   vCard     keyval 'vcard'      modules/mod_vcard.ts     the <vCard xmlns='vcard-temp'/> as XML text
//   offline   archive 'offline'   modules/mod_offline.ts   { when, with: sender, payload: <message/> XML with its <delay/> }
//   private   map    'private'    modules/mod_private.ts   '{namespace}name' → the fragment as XML text
//   blocklist map    'blocking'   modules/mod_blocking.ts  blocked JID → true
//
// Per user, the account record is written last: an account exists only once all its data is in.
// Before writing, whatever the user has in any store is purged (leftovers of an import that was
// interrupted, or the data of an account being replaced), so running an import twice gives the
// same result. Run it while the server is stopped: modules cache rosters and blocklists.
import { Element } from '@xmpp/xml';
import type { Json, StorageManager } from '../storage/manager.ts';
import {
  addBlocked, addOffline, addPendingIn, addPrivate, addRosterItem, addScram, emptyUser, ImportNotes, privateKey, setVcard,
  type Note, type PortableData, type PortableHost, type PortableUser,
} from '../util/portable-data.ts';
import { deriveCredentialsAsync, SCRAM_HASHES, type ScramCredentials, type ScramHash } from '../util/scram.ts';
import { parseXml } from '../util/stanza.ts';

/** Where each kind of data lives: store names as the owning module opens them. */
export const STORES = {
  accounts: 'accounts',
  roster: 'roster',
  vcard: 'vcard',
  offline: 'offline',
  private: 'private',
  blocking: 'blocking',
} as const;

/** core/rostermanager.ts's key of the roster metadata (version, pending requests). */
const ROSTER_META = '\u0000meta';

export type ExistingAccounts = 'skip' | 'replace';

export interface WriteOptions {
  /** The hosts this Cadence serves: data for any other host is not written (and is noted). */
  hosts: readonly string[];
  /** An account that already exists: left alone with its data ('skip', default), or replaced. */
  existing?: ExistingAccounts;
  /** Current time, ms (creation time of accounts whose source does not know it). */
  now?: () => number;
}

export interface WriteResult {
  /** Accounts written, as user@host. */
  written: string[];
  /** Accounts that existed and were left alone. */
  skipped: string[];
  notes: ImportNotes;
}

export async function writePortableData(storage: StorageManager, data: PortableData, opts: WriteOptions, notes = new ImportNotes()): Promise<WriteResult> {
  const result: WriteResult = { written: [], skipped: [], notes };
  const now = opts.now ?? Date.now;
  for (const h of data.hosts) {
    if (!opts.hosts.includes(h.host)) {
      notes.add('warning', `not a host of this server: its ${h.users.length} accounts not imported`, h.host);
      continue;
    }
    for (const u of h.users) {
      const exists = (await storage.keyval(h.host, STORES.accounts).get(u.username)) !== undefined;
      if (exists && (opts.existing ?? 'skip') === 'skip') {
        notes.add('warning', 'an account of that name exists here; left as it is, nothing imported for it', h.host, u.username);
        result.skipped.push(`${u.username}@${h.host}`);
        continue;
      }
      if (exists) notes.add('info', 'an account of that name existed here; replaced with its data', h.host, u.username);
      await writeUser(storage, h.host, u, now);
      result.written.push(`${u.username}@${h.host}`);
    }
  }
  return result;
}

async function writeUser(storage: StorageManager, host: string, u: PortableUser, now: () => number): Promise<void> {
  const user = u.username;
  await storage.purgeUser(host, user);

  if (u.roster.length || u.pendingIn.length) {
    const values: Record<string, Json> = {};
    for (const item of u.roster) {
      const v: Record<string, Json> = { subscription: item.subscription, groups: item.groups };
      if (item.ask) v.ask = item.ask;
      if (item.approved) v.approved = true;
      if (item.name !== undefined) v.name = item.name;
      values[item.jid] = v;
    }
    // One past the source's version, so a client holding the old server's version fetches the
    // roster once (XEP-0237) rather than trusting a cache made elsewhere.
    values[ROSTER_META] = {
      version: (u.rosterVersion ?? 0) + 1,
      pending: Object.fromEntries(u.pendingIn.map((p) => [p.jid, p.stanza.toString()])),
    };
    await storage.map(host, STORES.roster).setKeys(user, values);
  }

  if (u.vcard) await storage.keyval(host, STORES.vcard).set(user, u.vcard.toString());

  const offline = storage.archive(host, STORES.offline);
  for (const m of u.offline) {
    const from = m.stanza.attrs.from as string | undefined;
    await offline.append(user, { when: m.when, ...(from ? { with: from } : {}), payload: m.stanza.toString() });
  }

  if (u.privateXml.length) {
    await storage.map(host, STORES.private).setKeys(user, Object.fromEntries(u.privateXml.map((f) => [privateKey(f), f.toString()])));
  }

  if (u.blocked.length) await storage.map(host, STORES.blocking).setKeys(user, Object.fromEntries(u.blocked.map((j) => [j, true])));

  // Last: the account (a plaintext password gives every hash Cadence has).
  let scram: Partial<Record<ScramHash, ScramCredentials>> = { ...u.scram };
  if (u.password !== undefined) {
    scram = {};
    for (const hash of SCRAM_HASHES) scram[hash] = await deriveCredentialsAsync(hash, u.password);
  }
  const record = { scram, created: u.created ?? now() };
  await storage.keyval(host, STORES.accounts).set(user, record as unknown as Json);
}

/** Everything the writer writes, read back from storage for the given hosts. */
export async function readPortableData(storage: StorageManager, hosts: readonly string[], notes = new ImportNotes()): Promise<{ data: PortableData; notes: ImportNotes }> {
  const data: PortableData = { hosts: [] };
  for (const host of hosts) {
    const ph: PortableHost = { host, users: [] };
    for (const username of await storage.keyval(host, STORES.accounts).users()) {
      ph.users.push(await readUser(storage, host, username, notes.at(host, username)));
    }
    data.hosts.push(ph);
  }
  return { data, notes };
}

async function readUser(storage: StorageManager, host: string, username: string, note: Note): Promise<PortableUser> {
  const u = emptyUser(username);
  const record = (await storage.keyval(host, STORES.accounts).get<Json>(username)) as { scram?: Record<string, ScramCredentials>; created?: number } | undefined;
  for (const [hash, creds] of Object.entries(record?.scram ?? {})) {
    if ((SCRAM_HASHES as readonly string[]).includes(hash)) addScram(u, hash as ScramHash, creds, note);
  }
  if (typeof record?.created === 'number') u.created = record.created;

  for (const [key, value] of await storage.map(host, STORES.roster).getAll<Json>(username)) {
    if (key === ROSTER_META) {
      const meta = value as { version?: number; pending?: Record<string, string> };
      if (typeof meta.version === 'number') u.rosterVersion = meta.version;
      for (const [jid, xml] of Object.entries(meta.pending ?? {})) addPendingIn(u, host, jid, xml ? parseOrNote(xml, note) : undefined, note);
      continue;
    }
    const item = value as { subscription?: string; ask?: string; approved?: boolean; name?: string; groups?: string[] };
    addRosterItem(u, { jid: key, subscription: item.subscription, ask: item.ask, approved: item.approved, name: item.name, groups: item.groups ?? [] }, note);
  }

  const vcard = await storage.keyval(host, STORES.vcard).get<string>(username);
  const vcardEl = typeof vcard === 'string' ? parseOrNote(vcard, note) : undefined;
  if (vcardEl) setVcard(u, vcardEl, note);

  for (const item of await storage.archive(host, STORES.offline).find(username)) {
    const m = parseOrNote(item.payload, note);
    if (m) addOffline(u, host, m, item.when, note);
  }

  for (const [, xml] of await storage.map(host, STORES.private).getAll<string>(username)) {
    const f = typeof xml === 'string' ? parseOrNote(xml, note) : undefined;
    if (f) addPrivate(u, f, note);
  }

  for (const [jid] of await storage.map(host, STORES.blocking).getAll<boolean>(username)) addBlocked(u, host, jid, note);
  return u;
}

function parseOrNote(text: string, note: Note): Element | undefined {
  try {
    return parseXml(text);
  } catch (err) {
    note('warning', `stored XML is unreadable (${(err as Error).message}); skipped`);
    return undefined;
  }
}
