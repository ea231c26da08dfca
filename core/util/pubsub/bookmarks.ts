// Bookmarks in both of their stored forms, translated into each other (XEP-0402 §5.3
// "Compatibility", XEP-0411): PEP Native Bookmarks — one item per room in the
// 'urn:xmpp:bookmarks:1' node, the room's JID as ItemID — and the single <storage
// xmlns='storage:bookmarks'/> element of XEP-0048, kept in Private XML Storage (XEP-0049) or in the
// 'storage:bookmarks' PEP node (XEP-0048 §3, item 'current'). Pure functions: the glue decides
// when to translate (see doc/pubsub.md).
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { parseBoolean } from '../dataforms.ts';
import { prep } from '../jid.ts';
import type { NodeConfig } from './config.ts';

export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
export const NS_BOOKMARKS_LEGACY = 'storage:bookmarks';
/** XEP-0402: the server unifies XEP-0049 (private XML) bookmarks with these. */
export const FEATURE_BOOKMARKS_COMPAT = `${NS_BOOKMARKS}#compat`;
/** XEP-0402: the server unifies the XEP-0048 PEP node with these. */
export const FEATURE_BOOKMARKS_COMPAT_PEP = `${NS_BOOKMARKS}#compat-pep`;
/** XEP-0411: bookmarks convert between private XML and PEP. */
export const FEATURE_BOOKMARKS_CONVERSION = 'urn:xmpp:bookmarks-conversion:0';

/** The configuration XEP-0402 §3.3 publishes with (XEP-0223: private, persistent), for items the server writes. */
export const BOOKMARKS_NODE_CONFIG: Partial<NodeConfig> = {
  persist_items: true,
  max_items: 'max',
  send_last_published_item: 'never',
  access_model: 'whitelist',
};

/** The configuration of XEP-0048's PEP node (§3.1: XEP-0223's persist + whitelist). */
export const LEGACY_BOOKMARKS_NODE_CONFIG: Partial<NodeConfig> = {
  persist_items: true,
  access_model: 'whitelist',
};

/** The ItemID XEP-0048 §3.1 stores its <storage/> under. */
export const LEGACY_BOOKMARKS_ITEM = 'current';

export interface Bookmark {
  /** The room's JID (prepared). */
  jid: string;
  name?: string;
  autojoin: boolean;
  nick?: string;
  password?: string;
  /** XEP-0402 <extensions/> children, kept as they are (clients MUST preserve them). */
  extensions?: Element[];
}

function text(el: Element, name: string): string | undefined {
  const c = el.getChild(name);
  return c ? c.text() : undefined;
}

/** A XEP-0402 item (ItemID and <conference/> payload) as a Bookmark; undefined when the ItemID is not a JID. */
export function bookmarkFromItem(id: string, conference: Element): Bookmark | undefined {
  const jid = prep(id);
  if (jid === null) return undefined;
  const b: Bookmark = { jid, autojoin: parseBoolean(conference.attrs.autojoin as string | undefined) ?? false };
  if (typeof conference.attrs.name === 'string') b.name = conference.attrs.name;
  const nick = text(conference, 'nick');
  if (nick !== undefined) b.nick = nick;
  const password = text(conference, 'password');
  if (password !== undefined) b.password = password;
  const ext = conference.getChild('extensions');
  if (ext && ext.getChildElements().length > 0) b.extensions = ext.getChildElements().map((e) => clone(e) as unknown as Element);
  return b;
}

/** The XEP-0402 <conference/> payload of a bookmark (its ItemID is `b.jid`). */
export function bookmarkPayload(b: Bookmark): Element {
  const el = new Element('conference', {
    xmlns: NS_BOOKMARKS,
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.autojoin ? { autojoin: 'true' } : {}),
  });
  if (b.nick !== undefined) el.c('nick').t(b.nick);
  if (b.password !== undefined) el.c('password').t(b.password);
  if (b.extensions && b.extensions.length > 0) {
    const ext = el.c('extensions');
    for (const e of b.extensions) ext.cnode(clone(e) as unknown as Element);
  }
  return el;
}

/** What a XEP-0048 <storage/> holds: rooms, and everything else (URL bookmarks, unknown elements) to keep. */
export interface LegacyBookmarks {
  bookmarks: Bookmark[];
  /** <url/> bookmarks and unknown children, which XEP-0402 cannot hold and a translation back must keep. */
  others: Element[];
}

/** Read a XEP-0048 <storage xmlns='storage:bookmarks'/>. Conferences without a valid jid are kept in `others`. */
export function readLegacyStorage(storage: Element): LegacyBookmarks {
  const out: LegacyBookmarks = { bookmarks: [], others: [] };
  const seen = new Set<string>();
  for (const c of storage.getChildElements()) {
    const jid = c.name === 'conference' && typeof c.attrs.jid === 'string' ? prep(c.attrs.jid) : null;
    if (jid === null || seen.has(jid)) {
      out.others.push(clone(c) as unknown as Element);
      continue;
    }
    seen.add(jid);
    const b: Bookmark = { jid, autojoin: parseBoolean(c.attrs.autojoin as string | undefined) ?? false };
    if (typeof c.attrs.name === 'string') b.name = c.attrs.name;
    const nick = text(c, 'nick');
    if (nick !== undefined) b.nick = nick;
    const password = text(c, 'password');
    if (password !== undefined) b.password = password;
    out.bookmarks.push(b);
  }
  return out;
}

/**
 * A XEP-0048 <storage/> holding `bookmarks` (XEP-0402 §5.3.1: the item id becomes the jid
 * attribute), followed by what the previous storage held that XEP-0402 cannot (URL bookmarks,
 * unknown elements), so a legacy client's data survives a round trip.
 */
export function legacyStorage(bookmarks: readonly Bookmark[], previous?: Element): Element {
  const storage = new Element('storage', { xmlns: NS_BOOKMARKS_LEGACY });
  for (const b of bookmarks) {
    const c = storage.c('conference', {
      jid: b.jid,
      ...(b.name !== undefined ? { name: b.name } : {}),
      ...(b.autojoin ? { autojoin: 'true' } : {}),
    });
    if (b.nick !== undefined) c.c('nick').t(b.nick);
    if (b.password !== undefined) c.c('password').t(b.password);
  }
  if (previous) for (const o of readLegacyStorage(previous).others) storage.cnode(o);
  return storage;
}

export interface BookmarksDiff {
  /** Items to (re)publish to the XEP-0402 node: new or changed bookmarks. */
  publish: { id: string; payload: Element }[];
  /** ItemIDs to retract: bookmarks the legacy list no longer has. */
  retract: string[];
}

/**
 * What to publish and retract so the XEP-0402 node matches a replacement list written the old way
 * (XEP-0402 §5.3.2): unchanged bookmarks are left alone (no notification), changed ones keep their
 * <extensions/> (XEP-0048 has no place for them).
 */
export function diffBookmarks(current: ReadonlyMap<string, Element>, incoming: readonly Bookmark[]): BookmarksDiff {
  const diff: BookmarksDiff = { publish: [], retract: [] };
  const wanted = new Set<string>();
  for (const b of incoming) {
    wanted.add(b.jid);
    const existing = current.get(b.jid);
    const before = existing ? bookmarkFromItem(b.jid, existing) : undefined;
    const merged: Bookmark = before?.extensions ? { ...b, extensions: before.extensions } : b;
    const payload = bookmarkPayload(merged);
    if (before && bookmarkPayload(before).toString() === payload.toString()) continue;
    diff.publish.push({ id: b.jid, payload });
  }
  for (const id of current.keys()) if (!wanted.has(prep(id) ?? id)) diff.retract.push(id);
  return diff;
}

/** The bookmarks of a XEP-0402 node's items (ItemID → <conference/>), skipping items whose ItemID is not a JID. */
export function bookmarksFromItems(items: ReadonlyMap<string, Element>): Bookmark[] {
  const out: Bookmark[] = [];
  for (const [id, payload] of items) {
    const b = bookmarkFromItem(id, payload);
    if (b) out.push(b);
  }
  return out;
}
