// XEP-0227 (Portable Import/Export Format for XMPP-IM Servers, version 1.1) ↔ the neutral model
// of core/util/portable-data.ts.
//
// Import reads <server-data xmlns='urn:xmpp:pie:0'> (and the pre-1.0 namespace
// 'http://www.xmpp.org/extensions/xep-0227.html#ns'): per <host jid=…>, per <user name=…>:
//  - §4.3 SCRAM credentials (<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism=…>) for
//    SCRAM-SHA-1, -256, -512, and the 'password' attribute (§4.2, from which every hash is derived);
//  - §4.4 the roster (<query xmlns='jabber:iq:roster'>, its 'ver' kept as the roster version);
//  - §4.5 offline messages (<offline-messages>, jabber:client <message/>s, oldest first; the time
//    each was stored from its <delay/> stamp);
//  - §4.6 private XML (<query xmlns='jabber:iq:private'>), §4.7 the vCard (vcard-temp);
//  - §4.8 privacy lists: the JIDs the default list denies outright become the blocklist (XEP-0191
//    §5 maps the blocklist to the default list's jid/deny items); other rules cannot be kept and
//    are counted in the notes;
//  - §4.9 pending subscription requests (<presence type='subscribe'/> children of <user/>);
//  - §4.10 PEP: a vCard4 (XEP-0292) and avatar (XEP-0084) become the vcard-temp vCard when the
//    user has none, PEP bookmarks (XEP-0402, or XEP-0048 in PEP) the private <storage/> when the
//    user has none; other nodes are named in the notes (Cadence has no PEP service yet);
//  - §4.11 the message archive is counted and named in the notes (no archive yet);
//  - an extension: <blocklist xmlns='urn:xmpp:blocking'> with XEP-0191 <item jid=…/>s;
//  - §5 XInclude: <include/> children of <server-data/>, <host/> and <user/> are replaced by the
//    root element of the document the injected resolver returns for their relative 'href'; any
//    with 'parse' other than xml or an 'xpointer' is skipped with a note, and includes deeper
//    inside user data are data, never processed (§6).
// Anything else is ignored with a note (§4: "SHOULD ignore the unknown data, SHOULD notify").
//
// Export writes one document (no XInclude split) with SCRAM credentials, and the plaintext
// password only when asked for (§4.2 discourages it). The blocklist goes out both as the
// extension above and as the default privacy list, so importers that know only §4.8 keep it.
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { prep } from './jid.ts';
import { fromPep, NS_AVATAR_DATA, NS_AVATAR_METADATA, NS_BOOKMARKS, NS_BOOKMARKS2, NODE_VCARD4, type Bookmark2 } from './pep-legacy.ts';
import {
  addBlocked, addOffline, addPendingIn, addPrivate, addRosterItem, addScram, emptyUser, ImportNotes, NS_DELAY, NS_VCARD,
  parseStamp, prepUsername, setVcard, type Note, type PortableData, type PortableHost, type PortableUser,
} from './portable-data.ts';
import type { ScramHash } from './scram.ts';

export const NS_PIE = 'urn:xmpp:pie:0';
/** The namespace of XEP-0227 before version 1.0; read, never written. */
export const NS_PIE_DRAFT = 'http://www.xmpp.org/extensions/xep-0227.html#ns';
export const NS_PIE_SCRAM = 'urn:xmpp:pie:0#scram';
export const NS_PIE_MAM = 'urn:xmpp:pie:0#mam';
export const NS_XINCLUDE = 'http://www.w3.org/2001/XInclude';
const NS_CLIENT = 'jabber:client';
const NS_ROSTER = 'jabber:iq:roster';
const NS_PRIVATE = 'jabber:iq:private';
const NS_PRIVACY = 'jabber:iq:privacy';
const NS_BLOCKING = 'urn:xmpp:blocking';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
const NS_LEGACY_DELAY = 'jabber:x:delay';

const MECHANISMS: Record<string, ScramHash> = { 'SCRAM-SHA-1': 'SHA-1', 'SCRAM-SHA-256': 'SHA-256', 'SCRAM-SHA-512': 'SHA-512' };

export class Xep0227Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Xep0227Error';
  }
}

// ---- XML parsing ----------------------------------------------------------------------------------------

export interface XmlLimits {
  /** Largest document, in UTF-16 code units of its text (default 1 GiB). */
  maxChars?: number;
  /** Deepest element nesting (default 256). */
  maxDepth?: number;
  /** Most elements in one document (default 50,000,000). */
  maxElements?: number;
}

const XML_DEFAULTS: Required<XmlLimits> = { maxChars: 1 << 30, maxDepth: 256, maxElements: 50_000_000 };

/**
 * Parses a document into Elements whose names carry no prefixes and whose namespaces are explicit
 * `xmlns` attributes wherever they differ from the parent's, so getNS() is right on every element
 * and any subtree can be stored on its own (selfContained). A DOCTYPE is refused (no entity
 * definitions, no external subsets); undefined entities are errors.
 */
export function parseXmlDocument(text: string, limits: XmlLimits = {}): Element {
  const lim = { ...XML_DEFAULTS, ...limits };
  if (text.length > lim.maxChars) throw new Xep0227Error(`the document is larger than ${lim.maxChars} characters`);
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: { el: Element; ns: string }[] = [];
  let root: Element | undefined;
  let elements = 0;
  const fail = (message: string): never => {
    throw new Xep0227Error(`${message} (line ${parser.line}, column ${parser.column})`);
  };
  parser.on('error', (err) => fail(err.message.replace(/^\S*:\d+:\d+: /, '')));
  parser.on('doctype', () => fail('a DOCTYPE is not accepted'));
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (++elements > lim.maxElements) fail(`more than ${lim.maxElements} elements`);
    if (stack.length >= lim.maxDepth) fail(`elements nested deeper than ${lim.maxDepth}`);
    const attrs: Record<string, string> = {};
    const parentNs = stack.length ? stack[stack.length - 1]!.ns : '';
    if (tag.uri !== parentNs) attrs.xmlns = tag.uri;
    for (const a of Object.values(tag.attributes)) {
      if (a.name === 'xmlns') continue;
      attrs[a.name] = a.value;
    }
    const el = new Element(tag.local, attrs);
    if (stack.length) stack[stack.length - 1]!.el.cnode(el);
    else root = el;
    stack.push({ el, ns: tag.uri });
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const onText = (t: string) => {
    if (stack.length) stack[stack.length - 1]!.el.t(t);
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.write(text).close();
  if (!root) throw new Xep0227Error('the document has no root element');
  return root;
}

// ---- import ---------------------------------------------------------------------------------------------

/**
 * Fetches the document an <include href=…/> names, relative to the document `base` it appears in
 * (undefined for the top document). Returns its text and its own base (for includes inside it,
 * and to detect cycles). Where it may read from is its business (core/cli/xep0227-file.ts).
 */
export type IncludeResolver = (href: string, base: string | undefined) => Promise<{ text: string; base: string }>;

export interface Xep0227ImportOptions {
  resolveInclude?: IncludeResolver;
  /** The top document's base, for the resolver. */
  base?: string;
  limits?: XmlLimits & {
    /** Most documents included in all (default 1,000,000). */
    maxIncludes?: number;
    /** Deepest chain of includes (default 8). */
    maxIncludeDepth?: number;
  };
  /** Current time, ms (for messages without any stamp). */
  now?: () => number;
}

export interface Xep0227Import {
  data: PortableData;
  notes: ImportNotes;
}

const isPie = (el: Element, name: string) => el.getName() === name && (el.getNS() === NS_PIE || el.getNS() === NS_PIE_DRAFT);
const isInclude = (el: Element) => el.getName() === 'include' && el.getNS() === NS_XINCLUDE;
const describe = (el: Element) => `<${el.getName()}${el.getNS() ? ` xmlns='${el.getNS()}'` : ''}>`;

export async function importXep0227(text: string, opts: Xep0227ImportOptions = {}): Promise<Xep0227Import> {
  const notes = new ImportNotes();
  const maxIncludes = opts.limits?.maxIncludes ?? 1_000_000;
  const maxIncludeDepth = opts.limits?.maxIncludeDepth ?? 8;
  const now = opts.now ?? Date.now;
  let included = 0;

  /** The element children of `el`, with XInclude <include/>s replaced by what they include. */
  const children = async (el: Element, base: string | undefined, chain: string[], note: Note): Promise<{ el: Element; base: string | undefined; chain: string[] }[]> => {
    const out: { el: Element; base: string | undefined; chain: string[] }[] = [];
    for (const child of el.getChildElements()) {
      if (!isInclude(child)) {
        out.push({ el: child, base, chain });
        continue;
      }
      const href = child.attrs.href as string | undefined;
      const parse = child.attrs.parse as string | undefined;
      if (href === undefined || href === '' || (parse !== undefined && parse !== 'xml') || child.attrs.xpointer !== undefined) {
        note('warning', `an <include/> ${href ? `of '${href}' ` : ''}with ${href ? "'parse' or 'xpointer'" : "no 'href'"} is not supported; skipped`);
        continue;
      }
      if (!opts.resolveInclude) {
        note('warning', `<include href='${href}'/> skipped: includes are not read here`);
        continue;
      }
      if (chain.length >= maxIncludeDepth) throw new Xep0227Error(`includes nested deeper than ${maxIncludeDepth} (at '${href}')`);
      if (++included > maxIncludes) throw new Xep0227Error(`more than ${maxIncludes} included documents`);
      let doc: { text: string; base: string };
      try {
        doc = await opts.resolveInclude(href, base);
      } catch (err) {
        const fallback = child.getChildElements().find((c) => c.getName() === 'fallback' && c.getNS() === NS_XINCLUDE);
        note('warning', `<include href='${href}'/> could not be read (${(err as Error).message})${fallback ? '; its fallback used' : '; skipped'}`);
        if (fallback) for (const f of fallback.getChildElements()) out.push({ el: f, base, chain });
        continue;
      }
      if (chain.includes(doc.base)) throw new Xep0227Error(`'${href}' includes itself`);
      let root: Element;
      try {
        root = parseXmlDocument(doc.text, opts.limits);
      } catch (err) {
        throw new Xep0227Error(`${doc.base}: ${(err as Error).message}`);
      }
      out.push({ el: root, base: doc.base, chain: [...chain, doc.base] });
    }
    return out;
  };

  let top: Element;
  try {
    top = parseXmlDocument(text, opts.limits);
  } catch (err) {
    throw new Xep0227Error(`${opts.base ? `${opts.base}: ` : ''}${(err as Error).message}`);
  }
  if (!isPie(top, 'server-data')) throw new Xep0227Error(`the root element is ${describe(top)}, not <server-data xmlns='${NS_PIE}'>`);
  if (top.getNS() === NS_PIE_DRAFT) notes.add('info', `the file uses XEP-0227's pre-1.0 namespace ${NS_PIE_DRAFT}`);

  const data: PortableData = { hosts: [] };
  const topChain = opts.base !== undefined ? [opts.base] : [];
  for (const { el: hostEl, base, chain } of await children(top, opts.base, topChain, notes.at())) {
    if (!isPie(hostEl, 'host')) {
      notes.add('warning', `${describe(hostEl)} in <server-data/> is not understood; ignored`);
      continue;
    }
    const rawHost = hostEl.attrs.jid as string | undefined;
    const host = rawHost !== undefined ? prep(rawHost) : null;
    if (!host || host.includes('@') || host.includes('/')) {
      notes.add('warning', `<host jid='${rawHost ?? ''}'/> is not a domain; its users skipped`);
      continue;
    }
    let ph = data.hosts.find((h) => h.host === host);
    if (!ph) data.hosts.push((ph = { host, users: [] }));
    for (const { el: userEl, base: userBase, chain: userChain } of await children(hostEl, base, chain, notes.at(host))) {
      if (!isPie(userEl, 'user')) {
        notes.add('warning', `${describe(userEl)} in <host jid='${host}'/> is not understood; ignored`, host);
        continue;
      }
      await readUser(ph, userEl, (el) => children(el, userBase, userChain, notes.at(host, userEl.attrs.name as string | undefined)), notes, now);
    }
  }
  return { data, notes };
}

async function readUser(
  ph: PortableHost,
  userEl: Element,
  childrenOf: (el: Element) => Promise<{ el: Element }[]>,
  notes: ImportNotes,
  now: () => number,
): Promise<void> {
  const host = ph.host;
  const rawName = userEl.attrs.name as string | undefined;
  if (rawName === undefined) {
    notes.add('warning', "a <user/> without 'name' skipped", host);
    return;
  }
  const username = prepUsername(rawName, notes.at(host, rawName));
  if (!username) return;
  const note = notes.at(host, username);
  const user = emptyUser(username);
  const password = userEl.attrs.password as string | undefined;
  if (password !== undefined) user.password = password;

  const mechanisms = new Set<string>();
  let vcard4: Element | undefined;
  let avatarMetadata: Element | undefined;
  const avatarData = new Map<string, string>();
  const bookmarks2: Bookmark2[] = [];
  let pepBookmarks: Element | undefined;

  for (const { el } of await childrenOf(userEl)) {
    const name = el.getName();
    const ns = el.getNS();
    if (name === 'scram-credentials' && ns === NS_PIE_SCRAM) {
      const mechanism = (el.attrs.mechanism as string | undefined) ?? '';
      const hash = MECHANISMS[mechanism];
      if (!hash) {
        note('warning', `SCRAM credentials for '${mechanism}' skipped: Cadence implements ${Object.keys(MECHANISMS).join(', ')}`);
        continue;
      }
      if (mechanisms.has(mechanism)) note('warning', `SCRAM credentials for ${mechanism} appear twice; the later ones kept`);
      mechanisms.add(mechanism);
      const iter = el.getChildText('iter-count')?.trim() ?? '';
      if (!/^[1-9]\d*$/.test(iter)) {
        note('warning', `${mechanism} credentials skipped: <iter-count/> '${iter}' is not a positive integer without leading zeros`);
        continue;
      }
      addScram(user, hash, {
        iterations: Number(iter),
        salt: (el.getChildText('salt') ?? '').trim(),
        storedKey: (el.getChildText('stored-key') ?? '').trim(),
        serverKey: (el.getChildText('server-key') ?? '').trim(),
      }, note);
    } else if (name === 'query' && ns === NS_ROSTER) {
      const ver = el.attrs.ver as string | undefined;
      if (ver !== undefined && /^\d{1,15}$/.test(ver)) user.rosterVersion = Number(ver);
      for (const item of el.getChildElements()) {
        if (item.getName() !== 'item') continue;
        addRosterItem(user, {
          jid: (item.attrs.jid as string | undefined) ?? '',
          subscription: item.attrs.subscription as string | undefined,
          ask: item.attrs.ask as string | undefined,
          approved: item.attrs.approved === 'true' || item.attrs.approved === '1',
          name: item.attrs.name as string | undefined,
          groups: item.getChildElements().filter((g) => g.getName() === 'group').map((g) => g.text()),
        }, note);
      }
    } else if (name === 'offline-messages' && (ns === NS_PIE || ns === NS_PIE_DRAFT)) {
      for (const m of el.getChildElements()) addOffline(user, host, m, () => offlineTime(m, host, now, note), note);
    } else if (name === 'query' && ns === NS_PRIVATE) {
      for (const f of el.getChildElements()) addPrivate(user, f, note);
    } else if (name === 'vCard' && ns === NS_VCARD) {
      setVcard(user, el, note);
    } else if (name === 'query' && ns === NS_PRIVACY) {
      readPrivacy(user, host, el, note);
    } else if (name === 'blocklist' && ns === NS_BLOCKING) {
      for (const item of el.getChildElements()) {
        if (item.getName() === 'item') addBlocked(user, host, (item.attrs.jid as string | undefined) ?? '', note);
      }
    } else if (name === 'presence' && (ns === NS_CLIENT || ns === undefined)) {
      if (el.attrs.type !== 'subscribe') {
        note('warning', `a <presence type='${el.attrs.type ?? 'available'}'/> is not a subscription request; ignored`);
        continue;
      }
      addPendingIn(user, host, (el.attrs.from as string | undefined) ?? '', el, note);
    } else if (name === 'pubsub' && ns === NS_PUBSUB) {
      for (const items of el.getChildElements()) {
        if (items.getName() !== 'items') continue;
        const node = (items.attrs.node as string | undefined) ?? '';
        const payloads = items.getChildElements().filter((i) => i.getName() === 'item');
        const payload = (i: Element) => i.getChildElements()[0];
        if (node === NODE_VCARD4) vcard4 = payloads.map(payload).filter((p) => p !== undefined).pop();
        else if (node === NS_AVATAR_METADATA) avatarMetadata = payloads.map(payload).filter((p) => p !== undefined).pop();
        else if (node === NS_AVATAR_DATA) {
          for (const i of payloads) if (typeof i.attrs.id === 'string' && payload(i)) avatarData.set(i.attrs.id, payload(i)!.text());
        } else if (node === NS_BOOKMARKS2) {
          for (const i of payloads) {
            const c = payload(i);
            if (typeof i.attrs.id === 'string' && c?.getName() === 'conference') bookmarks2.push({ id: i.attrs.id, conference: c });
          }
        } else if (node === NS_BOOKMARKS) pepBookmarks = payloads.map(payload).filter((p) => p !== undefined).pop();
        else note('info', `PEP node '${node}' (${payloads.length} items) not imported: Cadence has no PEP service yet`);
      }
    } else if (name === 'pubsub' && ns === NS_PUBSUB_OWNER) {
      // Node configuration: nothing to keep without a PEP service; the items are noted above.
    } else if (name === 'archive' && ns === NS_PIE_MAM) {
      note('info', `${el.getChildElements().length} archived messages (XEP-0313) not imported: Cadence has no message archive yet`);
    } else {
      note('warning', `${describe(el)} is not understood; ignored`);
    }
  }

  fromPep(user, { vcard4, avatarMetadata, avatarData, bookmarks2, pepBookmarks }, note);

  const existing = ph.users.findIndex((u) => u.username === username);
  if (existing >= 0) {
    note('warning', 'the user appears twice; the later one kept');
    ph.users.splice(existing, 1);
  }
  ph.users.push(user);
}

/** When an offline message was stored: its <delay/> from the host, else any <delay/>, else now. */
function offlineTime(m: Element, host: string, now: () => number, note: Note): number {
  const delays = m.getChildren('delay', NS_DELAY);
  const delay = delays.find((d) => d.attrs.from === host) ?? delays[0];
  const stamp = (delay?.attrs.stamp as string | undefined) ?? (m.getChild('x', NS_LEGACY_DELAY)?.attrs.stamp as string | undefined);
  const when = stamp !== undefined ? parseStamp(stamp) : undefined;
  if (when !== undefined) return when;
  note('info', `an offline message has no${stamp !== undefined ? ' valid' : ''} delay stamp; stamped with the import time`);
  return now();
}

/** §4.8: the JIDs the default list denies outright become the blocklist. */
function readPrivacy(user: PortableUser, host: string, query: Element, note: Note): void {
  const lists = query.getChildElements().filter((l) => l.getName() === 'list');
  const defaultName = query.getChildElements().find((d) => d.getName() === 'default')?.attrs.name as string | undefined;
  let kept = 0;
  let dropped = 0;
  for (const list of lists) {
    const items = list.getChildElements().filter((i) => i.getName() === 'item');
    if (list.attrs.name !== defaultName) {
      dropped += items.length;
      continue;
    }
    const ordered = [...items].sort((a, b) => Number(a.attrs.order ?? 0) - Number(b.attrs.order ?? 0));
    for (const item of ordered) {
      if (item.attrs.type === 'jid' && item.attrs.action === 'deny' && item.getChildElements().length === 0) {
        if (addBlocked(user, host, (item.attrs.value as string | undefined) ?? '', note)) kept++;
      } else if (!(item.attrs.type === undefined && item.attrs.action === 'allow')) {
        dropped++;
      }
    }
  }
  if (dropped) note('warning', `${dropped} privacy list rules (XEP-0016) not imported: only the JIDs the default list denies are kept, as the blocklist${kept ? ` (${kept})` : ''}`);
}

// ---- export ---------------------------------------------------------------------------------------------

export interface Xep0227ExportOptions {
  /** Write plaintext passwords the data holds (§4.2 discourages it; off by default). */
  passwords?: boolean;
}

const HASH_MECHANISM: Record<ScramHash, string> = { 'SHA-1': 'SCRAM-SHA-1', 'SHA-256': 'SCRAM-SHA-256', 'SHA-512': 'SCRAM-SHA-512' };

/** The data as one XEP-0227 document (UTF-8 text with its XML declaration). */
export function exportXep0227(data: PortableData, opts: Xep0227ExportOptions = {}): string {
  const out: string[] = ["<?xml version='1.0' encoding='UTF-8'?>", `<server-data xmlns='${NS_PIE}'>`];
  const line = (depth: number, el: Element | string) => out.push(`${'  '.repeat(depth)}${typeof el === 'string' ? el : el.toString()}`);
  for (const h of data.hosts) {
    line(1, `<host jid=${quote(h.host)}>`);
    for (const u of h.users) {
      const attrs: Record<string, string> = { name: u.username };
      if (opts.passwords && u.password !== undefined) attrs.password = u.password;
      const userEl = new Element('user', attrs);
      const open = userEl.toString().replace(/\/>$/, '>');
      line(2, open);
      for (const hash of Object.keys(u.scram) as ScramHash[]) {
        const c = u.scram[hash]!;
        const el = new Element('scram-credentials', { xmlns: NS_PIE_SCRAM, mechanism: HASH_MECHANISM[hash] });
        el.c('iter-count').t(String(c.iterations));
        el.c('salt').t(c.salt);
        el.c('server-key').t(c.serverKey);
        el.c('stored-key').t(c.storedKey);
        line(3, el);
      }
      if (u.roster.length || u.rosterVersion !== undefined) {
        const q = new Element('query', { xmlns: NS_ROSTER, ...(u.rosterVersion !== undefined ? { ver: String(u.rosterVersion) } : {}) });
        for (const i of u.roster) {
          const item = q.c('item', {
            jid: i.jid,
            subscription: i.subscription,
            ...(i.name !== undefined ? { name: i.name } : {}),
            ...(i.ask ? { ask: i.ask } : {}),
            ...(i.approved ? { approved: 'true' } : {}),
          });
          for (const g of i.groups) item.c('group').t(g);
        }
        line(3, q);
      }
      for (const p of u.pendingIn) line(3, withNs(p.stanza, NS_CLIENT));
      if (u.vcard) line(3, u.vcard);
      if (u.offline.length) {
        line(3, '<offline-messages>');
        for (const m of u.offline) line(4, withNs(m.stanza, NS_CLIENT));
        line(3, '</offline-messages>');
      }
      if (u.privateXml.length) {
        const q = new Element('query', { xmlns: NS_PRIVATE });
        for (const f of u.privateXml) q.cnode(clone(f) as Element);
        line(3, q);
      }
      if (u.blocked.length) {
        const b = new Element('blocklist', { xmlns: NS_BLOCKING });
        for (const jid of u.blocked) b.c('item', { jid });
        line(3, b);
        const q = new Element('query', { xmlns: NS_PRIVACY });
        q.c('default', { name: 'blocklist' });
        const list = q.c('list', { name: 'blocklist' });
        u.blocked.forEach((jid, i) => list.c('item', { type: 'jid', value: jid, action: 'deny', order: String(i + 1) }));
        line(3, q);
      }
      line(2, '</user>');
    }
    line(1, '</host>');
  }
  out.push('</server-data>', '');
  return out.join('\n');
}

/** A copy of a stanza with its content namespace declared on its root. */
function withNs(stanza: Element, ns: string): Element {
  const copy = clone(stanza) as Element;
  copy.attrs.xmlns = ns;
  return copy;
}

function quote(s: string): string {
  return `'${s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;')}'`;
}
