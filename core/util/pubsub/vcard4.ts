// vCard4 over PEP (XEP-0292: the 'urn:xmpp:vcard4' node holds one <vcard/> in RFC 6351's XML
// format) and vcard-temp (XEP-0054), mapped into each other for the fields both have (XEP-0292
// §8: FN, N, NICKNAME, PHOTO, BDAY, ADR, TEL, EMAIL, JABBERID/IMPP, TZ, GEO, TITLE, ROLE, LOGO,
// ORG, CATEGORIES, NOTE/DESC, PRODID, REV, UID, URL). Fields only one side has are carried over
// from that side's previous card, so a round trip loses nothing. Pure functions; the glue keeps
// the two stores in step (doc/pubsub.md).
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';

export const NS_VCARD4 = 'urn:ietf:params:xml:ns:vcard-4.0';
export const VCARD4_NODE = 'urn:xmpp:vcard4';

type Mutable = Element;

function child(el: Element, name: string): Element | undefined {
  return el.getChild(name);
}

function textOf(el: Element | undefined): string | undefined {
  return el ? el.text() : undefined;
}

/** The value of a vCard4 property: the text of its first value element (<text/>, <uri/>, <date/>, …). */
function value4(prop: Element, ...kinds: string[]): string | undefined {
  for (const k of kinds) {
    const v = prop.getChild(k);
    if (v) return v.text();
  }
  return undefined;
}

/** vCard4 <parameters><type><text>…</text></type><pref>…</pref></parameters>. */
function params4(prop: Element): { types: string[]; pref: boolean } {
  const p = prop.getChild('parameters');
  const types = p?.getChild('type')?.getChildren('text').map((t) => t.text().toLowerCase()) ?? [];
  const pref = p?.getChild('pref') !== undefined;
  return { types, pref };
}

function setParams4(prop: Mutable, types: readonly string[], pref: boolean): void {
  if (types.length === 0 && !pref) return;
  const p = prop.c('parameters');
  if (types.length > 0) {
    const t = p.c('type');
    for (const x of types) t.c('text').t(x);
  }
  if (pref) p.c('pref').c('integer').t('1');
}

function textProp(name: string, value: string): Element {
  const e = new Element(name);
  e.c('text').t(value);
  return e;
}

function uriProp(name: string, value: string): Element {
  const e = new Element(name);
  e.c('uri').t(value);
  return e;
}

/** RFC 2397 data: URI of an image. */
function dataUri(type: string | undefined, base64: string): string {
  return `data:${type || 'application/octet-stream'};base64,${base64.replace(/\s+/g, '')}`;
}

function parseDataUri(uri: string): { type: string | undefined; base64: string } | undefined {
  const m = /^data:([^;,]*)(;[^,]*)?,(.*)$/s.exec(uri.trim());
  if (!m || !(m[2] ?? '').split(';').includes('base64')) return undefined;
  return { type: m[1] || undefined, base64: m[3]! };
}

/** The vcard-temp elements this mapping covers; the rest is carried over from the previous vcard-temp. */
const TEMP_MAPPED = new Set(['FN', 'N', 'NICKNAME', 'PHOTO', 'BDAY', 'ADR', 'TEL', 'EMAIL', 'JABBERID', 'TZ', 'GEO', 'TITLE', 'ROLE', 'LOGO', 'ORG', 'CATEGORIES', 'NOTE', 'DESC', 'PRODID', 'REV', 'UID', 'URL']);
/** The vCard4 properties this mapping covers; the rest is carried over from the previous vCard4. */
const V4_MAPPED = new Set(['fn', 'n', 'nickname', 'photo', 'bday', 'adr', 'tel', 'email', 'impp', 'tz', 'geo', 'title', 'role', 'logo', 'org', 'categories', 'note', 'prodid', 'rev', 'uid', 'url']);

const ADR_PARTS: [string, string][] = [['POBOX', 'pobox'], ['EXTADD', 'ext'], ['STREET', 'street'], ['LOCALITY', 'locality'], ['REGION', 'region'], ['PCODE', 'code'], ['CTRY', 'country']];
const N_PARTS: [string, string][] = [['FAMILY', 'surname'], ['GIVEN', 'given'], ['MIDDLE', 'additional'], ['PREFIX', 'prefix'], ['SUFFIX', 'suffix']];
const TEL_TYPES = ['HOME', 'WORK', 'TEXT', 'VOICE', 'FAX', 'CELL', 'VIDEO', 'PAGER', 'TEXTPHONE'];

function imageTo4(name: string, el: Element): Element | undefined {
  const ext = textOf(child(el, 'EXTVAL'));
  if (ext) return uriProp(name, ext.trim());
  const bin = textOf(child(el, 'BINVAL'));
  if (bin && bin.trim() !== '') return uriProp(name, dataUri(textOf(child(el, 'TYPE'))?.trim(), bin));
  return undefined;
}

function imageToTemp(name: string, prop: Element): Element | undefined {
  const uri = value4(prop, 'uri');
  if (!uri) return undefined;
  const out = new Element(name);
  const data = parseDataUri(uri);
  if (data) {
    if (data.type) out.c('TYPE').t(data.type);
    out.c('BINVAL').t(data.base64);
  } else {
    out.c('EXTVAL').t(uri.trim());
  }
  return out;
}

/**
 * vcard-temp → vCard4 (XEP-0292 §8): a <vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/> with
 * the mapped fields of `temp`, followed by the properties of `previous` (the vCard4 before) that
 * vcard-temp cannot express (kind, gender, lang, …).
 */
export function vcard4FromVcardTemp(temp: Element, previous?: Element): Element {
  const out = new Element('vcard', { xmlns: NS_VCARD4 });
  for (const el of temp.getChildElements()) {
    switch (el.name) {
      case 'FN':
        out.cnode(textProp('fn', el.text()));
        break;
      case 'N': {
        const n = out.c('n');
        for (const [t, v] of N_PARTS) n.c(v).t(textOf(child(el, t)) ?? '');
        break;
      }
      case 'NICKNAME':
        if (el.text() !== '') out.cnode(textProp('nickname', el.text()));
        break;
      case 'PHOTO':
      case 'LOGO': {
        const p = imageTo4(el.name.toLowerCase(), el);
        if (p) out.cnode(p);
        break;
      }
      case 'BDAY': {
        const b = out.c('bday');
        b.c(/^\d{4}-\d\d-\d\d$/.test(el.text().trim()) ? 'date' : 'text').t(el.text().trim());
        break;
      }
      case 'ADR': {
        const a = out.c('adr');
        setParams4(a, ['HOME', 'WORK'].filter((t) => child(el, t)).map((t) => t.toLowerCase()), child(el, 'PREF') !== undefined);
        for (const [t, v] of ADR_PARTS) a.c(v).t(textOf(child(el, t)) ?? '');
        break;
      }
      case 'TEL': {
        const number = textOf(child(el, 'NUMBER'))?.trim();
        if (!number) break;
        const t = out.c('tel');
        setParams4(t, TEL_TYPES.filter((x) => child(el, x)).map((x) => x.toLowerCase()), child(el, 'PREF') !== undefined);
        t.c('uri').t(`tel:${number}`);
        break;
      }
      case 'EMAIL': {
        const userid = textOf(child(el, 'USERID'))?.trim();
        if (!userid) break;
        const e = out.c('email');
        setParams4(e, ['HOME', 'WORK'].filter((x) => child(el, x)).map((x) => x.toLowerCase()), child(el, 'PREF') !== undefined);
        e.c('text').t(userid);
        break;
      }
      case 'JABBERID':
        if (el.text().trim() !== '') out.cnode(uriProp('impp', `xmpp:${el.text().trim()}`));
        break;
      case 'GEO': {
        const lat = textOf(child(el, 'LAT'))?.trim();
        const lon = textOf(child(el, 'LON'))?.trim();
        if (lat && lon) out.cnode(uriProp('geo', `geo:${lat},${lon}`));
        break;
      }
      case 'TZ':
      case 'TITLE':
      case 'ROLE':
      case 'PRODID':
        if (el.text() !== '') out.cnode(textProp(el.name.toLowerCase(), el.text()));
        break;
      case 'NOTE':
      case 'DESC':
        if (el.text() !== '') out.cnode(textProp('note', el.text()));
        break;
      case 'ORG': {
        const parts = [textOf(child(el, 'ORGNAME')) ?? '', ...el.getChildren('ORGUNIT').map((u) => u.text())];
        if (parts.some((p) => p !== '')) {
          const o = out.c('org');
          for (const p of parts) o.c('text').t(p);
        }
        break;
      }
      case 'CATEGORIES': {
        const words = el.getChildren('KEYWORD').map((k) => k.text()).filter((k) => k !== '');
        if (words.length > 0) {
          const c = out.c('categories');
          for (const w of words) c.c('text').t(w);
        }
        break;
      }
      case 'REV':
        if (el.text() !== '') out.c('rev').c('timestamp').t(el.text());
        break;
      case 'UID':
        if (el.text() !== '') out.cnode(textProp('uid', el.text()));
        break;
      case 'URL':
        if (el.text().trim() !== '') out.cnode(uriProp('url', el.text().trim()));
        break;
      default:
        break;
    }
  }
  for (const p of previous?.getChildElements() ?? []) if (!V4_MAPPED.has(p.name)) out.cnode(clone(p) as unknown as Element);
  return out;
}

/**
 * vCard4 → vcard-temp (XEP-0292 §8): a <vCard xmlns='vcard-temp'/> with the mapped properties of
 * `v4`, then the elements of `previous` (the vcard-temp before) that vCard4 does not carry (LABEL,
 * MAILER, KEY, …). A previous PHOTO is kept when the vCard4 has no photo: avatars travel through
 * XEP-0084 and XEP-0398, not through vCard4.
 */
export function vcardTempFromVcard4(v4: Element, previous?: Element): Element {
  const out = new Element('vCard', { xmlns: 'vcard-temp' });
  let notes = 0;
  let photo = false;
  for (const p of v4.getChildElements()) {
    switch (p.name) {
      case 'fn': {
        const v = value4(p, 'text');
        if (v !== undefined) out.c('FN').t(v);
        break;
      }
      case 'n': {
        const n = out.c('N');
        for (const [t, v] of N_PARTS) {
          const part = p.getChildren(v).map((x) => x.text()).filter((x) => x !== '').join(' ');
          if (part !== '') n.c(t).t(part);
        }
        break;
      }
      case 'nickname':
        for (const t of p.getChildren('text')) if (t.text() !== '') out.c('NICKNAME').t(t.text());
        break;
      case 'photo':
      case 'logo': {
        const img = imageToTemp(p.name.toUpperCase(), p);
        if (img) {
          out.cnode(img);
          if (p.name === 'photo') photo = true;
        }
        break;
      }
      case 'bday': {
        const v = value4(p, 'date', 'date-time', 'date-and-or-time', 'text');
        if (v !== undefined) out.c('BDAY').t(v);
        break;
      }
      case 'adr': {
        const { types, pref } = params4(p);
        const a = out.c('ADR');
        for (const t of types) if (t === 'home' || t === 'work') a.c(t.toUpperCase());
        if (pref) a.c('PREF');
        for (const [t, v] of ADR_PARTS) {
          const part = p.getChildren(v).map((x) => x.text()).filter((x) => x !== '').join(', ');
          if (part !== '') a.c(t).t(part);
        }
        break;
      }
      case 'tel': {
        const v = value4(p, 'uri', 'text');
        if (!v) break;
        const { types, pref } = params4(p);
        const t = out.c('TEL');
        for (const x of types) if (TEL_TYPES.includes(x.toUpperCase())) t.c(x.toUpperCase());
        if (pref) t.c('PREF');
        t.c('NUMBER').t(v.replace(/^tel:/i, ''));
        break;
      }
      case 'email': {
        const v = value4(p, 'text');
        if (!v) break;
        const { types, pref } = params4(p);
        const e = out.c('EMAIL');
        for (const x of types) if (x === 'home' || x === 'work') e.c(x.toUpperCase());
        e.c('INTERNET');
        if (pref) e.c('PREF');
        e.c('USERID').t(v);
        break;
      }
      case 'impp': {
        const v = value4(p, 'uri');
        if (v && /^xmpp:/i.test(v)) out.c('JABBERID').t(v.replace(/^xmpp:/i, '').replace(/\?.*$/, ''));
        break;
      }
      case 'geo': {
        const m = /^geo:([^,;]+),([^,;]+)/i.exec(value4(p, 'uri') ?? '');
        if (m) {
          const g = out.c('GEO');
          g.c('LAT').t(m[1]!);
          g.c('LON').t(m[2]!);
        }
        break;
      }
      case 'tz':
      case 'title':
      case 'role':
      case 'prodid': {
        const v = value4(p, 'text', 'uri', 'utc-offset');
        if (v !== undefined) out.c(p.name.toUpperCase()).t(v);
        break;
      }
      case 'note': {
        const v = value4(p, 'text');
        if (v !== undefined) out.c(notes++ === 0 ? 'DESC' : 'NOTE').t(v);
        break;
      }
      case 'org': {
        const parts = p.getChildren('text').map((t) => t.text());
        if (parts.length === 0) break;
        const o = out.c('ORG');
        o.c('ORGNAME').t(parts[0]!);
        for (const u of parts.slice(1)) o.c('ORGUNIT').t(u);
        break;
      }
      case 'categories': {
        const words = p.getChildren('text').map((t) => t.text());
        if (words.length === 0) break;
        const c = out.c('CATEGORIES');
        for (const w of words) c.c('KEYWORD').t(w);
        break;
      }
      case 'rev': {
        const v = value4(p, 'timestamp', 'text');
        if (v !== undefined) out.c('REV').t(v);
        break;
      }
      case 'uid':
      case 'url': {
        const v = value4(p, 'uri', 'text');
        if (v !== undefined) out.c(p.name.toUpperCase()).t(v);
        break;
      }
      default:
        break;
    }
  }
  for (const e of previous?.getChildElements() ?? []) {
    if (!TEMP_MAPPED.has(e.name) || (e.name === 'PHOTO' && !photo)) out.cnode(clone(e) as unknown as Element);
  }
  return out;
}
