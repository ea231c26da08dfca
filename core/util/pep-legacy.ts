// PEP data in the legacy forms Cadence's modules serve, for migration from servers that keep a
// user's profile and bookmarks in PEP (Prosody 0.12's default mod_vcard_legacy and mod_bookmarks):
//  - a vCard4 (XEP-0292, RFC 6351's XML) with the user avatar (XEP-0084) → a vcard-temp vCard
//    (XEP-0054), the conversion XEP-0398 describes in the other direction;
//  - PEP Native Bookmarks (XEP-0402) → the XEP-0048 <storage xmlns='storage:bookmarks'/> kept in
//    Private XML Storage (XEP-0049), as XEP-0402 §5.3 lays out the compatibility mapping.
// Fields vcard-temp has no place for (gender, language, …) are left out and named in the result.
// fromPep() applies both to a user of the neutral model (core/util/portable-data.ts) that has no
// vCard or bookmarks of its own, which is what such a server serves to legacy clients.
import { Element } from '@xmpp/xml';
import { addPrivate, NS_VCARD, privateKey, setVcard, type Note, type PortableUser } from './portable-data.ts';

/** The PEP node of the vCard4 (XEP-0292 §3); its payload is in NS_VCARD4. */
export const NODE_VCARD4 = 'urn:xmpp:vcard4';
export const NS_VCARD4 = 'urn:ietf:params:xml:ns:vcard-4.0';
export const NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata';
export const NS_AVATAR_DATA = 'urn:xmpp:avatar:data';
export const NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1';
export const NS_BOOKMARKS = 'storage:bookmarks';

function childText(el: Element | undefined, name: string): string | undefined {
  const t = el?.getChild(name)?.text();
  return t === undefined || t === '' ? undefined : t;
}

/** All text values of a vCard4 property (`<nickname><text>a</text><text>b</text></nickname>`). */
function texts(prop: Element, name: string): string[] {
  return prop.getChildren(name).map((t) => t.text()).filter((t) => t !== '');
}

/** The TYPE parameter values of a vCard4 property, lower-cased. */
function types(prop: Element): string[] {
  const type = prop.getChild('parameters')?.getChild('type');
  return type ? texts(type, 'text').map((t) => t.toLowerCase()) : [];
}

function preferred(prop: Element): boolean {
  return prop.getChild('parameters')?.getChild('pref') !== undefined;
}

function leaf(parent: Element, name: string, text: string | undefined): void {
  if (text !== undefined) parent.c(name).t(text);
}

/** Flags (HOME, WORK, …) for the TYPE values that vcard-temp names for this property. */
function flags(parent: Element, prop: Element, known: Record<string, string>): void {
  for (const t of types(prop)) if (known[t]) parent.c(known[t]!);
  if (preferred(prop)) parent.c('PREF');
}

const TEL_TYPES: Record<string, string> = { home: 'HOME', work: 'WORK', voice: 'VOICE', fax: 'FAX', cell: 'CELL', video: 'VIDEO', pager: 'PAGER', text: 'MSG' };
const PLACE_TYPES: Record<string, string> = { home: 'HOME', work: 'WORK' };

/** `data:image/png;base64,AAAA` → type and base64 data. */
function dataUri(uri: string): { type: string; data: string } | undefined {
  const m = /^data:([^;,]*)(?:;[^,]*)?;base64,(.*)$/s.exec(uri);
  return m ? { type: m[1] || 'application/octet-stream', data: m[2]!.replace(/\s+/g, '') } : undefined;
}

export interface Avatar {
  /** <metadata xmlns='urn:xmpp:avatar:metadata'/> (XEP-0084 §4.2). */
  metadata?: Element;
  /** Avatar data items by id: the base64 text of <data xmlns='urn:xmpp:avatar:data'/>. */
  data: Map<string, string>;
}

export interface LegacyVcard {
  vcard: Element;
  /** vCard4 properties that vcard-temp has no element for. */
  dropped: string[];
}

/**
 * A vcard-temp vCard from a vCard4 and/or an avatar. Undefined when neither holds anything.
 * The avatar's first <info/> with data (or a URL) becomes the PHOTO.
 */
export function vcard4ToVcardTemp(vcard4: Element | undefined, avatar?: Avatar): LegacyVcard | undefined {
  const out = new Element('vCard', { xmlns: NS_VCARD });
  const dropped: string[] = [];
  let photo = false;
  if (vcard4) {
    for (const prop of vcard4.getChildElements()) {
      switch (prop.getName()) {
        case 'fn':
          leaf(out, 'FN', childText(prop, 'text'));
          break;
        case 'n': {
          const n = out.c('N');
          leaf(n, 'FAMILY', childText(prop, 'surname'));
          leaf(n, 'GIVEN', childText(prop, 'given'));
          leaf(n, 'MIDDLE', childText(prop, 'additional'));
          leaf(n, 'PREFIX', childText(prop, 'prefix'));
          leaf(n, 'SUFFIX', childText(prop, 'suffix'));
          if (n.getChildElements().length === 0) out.remove(n);
          break;
        }
        case 'nickname':
          for (const t of texts(prop, 'text')) leaf(out, 'NICKNAME', t);
          break;
        case 'bday':
          leaf(out, 'BDAY', childText(prop, 'date') ?? childText(prop, 'date-time') ?? childText(prop, 'text'));
          break;
        case 'email': {
          const address = childText(prop, 'text');
          if (address === undefined) break;
          const email = out.c('EMAIL');
          flags(email, prop, PLACE_TYPES);
          email.c('INTERNET');
          email.c('USERID').t(address);
          break;
        }
        case 'tel': {
          let number = childText(prop, 'uri') ?? childText(prop, 'text');
          if (number === undefined) break;
          if (number.startsWith('tel:')) number = number.slice(4);
          const tel = out.c('TEL');
          flags(tel, prop, TEL_TYPES);
          tel.c('NUMBER').t(number);
          break;
        }
        case 'adr': {
          const adr = out.c('ADR');
          flags(adr, prop, PLACE_TYPES);
          leaf(adr, 'POBOX', childText(prop, 'pobox'));
          leaf(adr, 'EXTADD', childText(prop, 'ext'));
          leaf(adr, 'STREET', childText(prop, 'street'));
          leaf(adr, 'LOCALITY', childText(prop, 'locality'));
          leaf(adr, 'REGION', childText(prop, 'region'));
          leaf(adr, 'PCODE', childText(prop, 'code'));
          leaf(adr, 'CTRY', childText(prop, 'country'));
          break;
        }
        case 'impp': {
          const uri = childText(prop, 'uri');
          if (uri?.startsWith('xmpp:')) leaf(out, 'JABBERID', uri.slice(5));
          else dropped.push('impp');
          break;
        }
        case 'url':
          leaf(out, 'URL', childText(prop, 'uri'));
          break;
        case 'note':
          leaf(out, 'NOTE', childText(prop, 'text'));
          break;
        case 'title':
          leaf(out, 'TITLE', childText(prop, 'text'));
          break;
        case 'role':
          leaf(out, 'ROLE', childText(prop, 'text'));
          break;
        case 'org': {
          const names = texts(prop, 'text');
          if (!names.length) break;
          const org = out.c('ORG');
          org.c('ORGNAME').t(names[0]!);
          for (const unit of names.slice(1)) org.c('ORGUNIT').t(unit);
          break;
        }
        case 'categories': {
          const words = texts(prop, 'text');
          if (!words.length) break;
          const cat = out.c('CATEGORIES');
          for (const w of words) cat.c('KEYWORD').t(w);
          break;
        }
        case 'tz':
          leaf(out, 'TZ', childText(prop, 'text') ?? childText(prop, 'utc-offset') ?? childText(prop, 'uri'));
          break;
        case 'geo': {
          const m = /^geo:(-?[\d.]+),(-?[\d.]+)/.exec(childText(prop, 'uri') ?? '');
          if (!m) break;
          const geo = out.c('GEO');
          geo.c('LAT').t(m[1]!);
          geo.c('LON').t(m[2]!);
          break;
        }
        case 'photo': {
          const uri = childText(prop, 'uri');
          if (uri === undefined || photo) break;
          const p = out.c('PHOTO');
          const data = dataUri(uri);
          if (data) {
            p.c('TYPE').t(data.type);
            p.c('BINVAL').t(data.data);
          } else {
            p.c('EXTVAL').t(uri);
          }
          photo = true;
          break;
        }
        default:
          dropped.push(prop.getName());
      }
    }
  }
  // The PEP avatar is what clients show; it wins over a photo in the vCard4.
  const avatarPhoto = avatar ? avatarToPhoto(avatar) : undefined;
  if (avatarPhoto) {
    const old = out.getChild('PHOTO');
    if (old) out.remove(old);
    out.cnode(avatarPhoto);
  }
  if (out.getChildElements().length === 0) return undefined;
  return { vcard: out, dropped: [...new Set(dropped)] };
}

function avatarToPhoto(avatar: Avatar): Element | undefined {
  for (const info of avatar.metadata?.getChildren('info') ?? []) {
    const { id, type, url } = info.attrs as Record<string, string | undefined>;
    const data = id !== undefined ? avatar.data.get(id) : undefined;
    if (data === undefined && url === undefined) continue;
    const photo = new Element('PHOTO');
    if (type) photo.c('TYPE').t(type);
    if (data !== undefined) photo.c('BINVAL').t(data.replace(/\s+/g, ''));
    else photo.c('EXTVAL').t(url!);
    return photo;
  }
  return undefined;
}

export interface Bookmark2 {
  /** The item id: the room's JID. */
  id: string;
  /** <conference xmlns='urn:xmpp:bookmarks:1'/>. */
  conference: Element;
}

/** XEP-0048 <storage/> holding the XEP-0402 bookmarks (XEP-0402 §5.3); undefined for none. */
export function bookmarks2ToStorage(items: readonly Bookmark2[]): Element | undefined {
  if (!items.length) return undefined;
  const storage = new Element('storage', { xmlns: NS_BOOKMARKS });
  for (const { id, conference } of items) {
    const autojoin = conference.attrs.autojoin === 'true' || conference.attrs.autojoin === '1';
    const attrs: Record<string, string> = { jid: id, autojoin: autojoin ? 'true' : 'false' };
    if (typeof conference.attrs.name === 'string') attrs.name = conference.attrs.name;
    const c = storage.c('conference', attrs);
    leaf(c, 'nick', childText(conference, 'nick'));
    leaf(c, 'password', childText(conference, 'password'));
  }
  return storage;
}

/** What a user's PEP holds that has a legacy form. */
export interface PepLegacy {
  vcard4?: Element;
  avatarMetadata?: Element;
  avatarData: Map<string, string>;
  bookmarks2: Bookmark2[];
  pepBookmarks?: Element;
}

/** PEP profile and bookmarks in their legacy forms, where the user has no legacy data of their own. */
export function fromPep(user: PortableUser, pep: PepLegacy, note: Note): void {
  if (!user.vcard && (pep.vcard4 || pep.avatarMetadata)) {
    const converted = vcard4ToVcardTemp(pep.vcard4, { metadata: pep.avatarMetadata, data: pep.avatarData });
    if (converted && setVcard(user, converted.vcard, note)) {
      note('info', `vCard converted from PEP (vCard4${pep.avatarMetadata ? ' and avatar' : ''})${converted.dropped.length ? `; without ${converted.dropped.join(', ')}` : ''}`);
    }
  }
  const hasBookmarks = user.privateXml.some((f) => privateKey(f) === `{${NS_BOOKMARKS}}storage`);
  if (!hasBookmarks) {
    const storage = bookmarks2ToStorage(pep.bookmarks2) ?? pep.pepBookmarks;
    if (storage && addPrivate(user, storage, note)) note('info', `bookmarks converted from PEP (${pep.bookmarks2.length ? 'XEP-0402' : 'XEP-0048 in PEP'}) to private XML storage`);
  }
}
