// Message Archive Management queries (XEP-0313, urn:xmpp:mam:2 and urn:xmpp:mam:2#extended) over
// an archive: the query form, reading a query (form + RSM + flip-page), running it as one
// page, and the result messages, <fin/> and archive metadata as Elements. Shared by the user
// archive (mod_mam) and the room archive (MUC). See doc/mam.md.
//
// Pure: storage comes in as a MamArchive (core/storage's ArchiveStore fits it), sending as a
// callback; nothing here keeps state.
import { Element } from '@xmpp/xml';
import type { ArchiveItem, ArchiveQuery, MamArchive } from './archive.ts';
import { type FieldSpec, type FormSpec, findForm, form, parseForm, readSubmission } from '../dataforms.ts';
import { formatDateTime, parseDateTime } from '../datetime.ts';
import { StanzaError } from '../errors.ts';
import { prep } from '../jid.ts';
import { NS_RSM, type RsmRequest, parseRsm, pageSize, rsmElement, rsmResponse } from '../rsm.ts';
import { parseXml } from '../stanza.ts';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
/** Advertised when the include-groupchat field is understood (XEP-0313 §7). */
export const NS_MAM_GROUPCHAT_FIELD = 'urn:xmpp:mam:2#groupchat-field';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const NS_DELAY = 'urn:xmpp:delay';
const NS_CLIENT = 'jabber:client';

export interface MamOptions {
  /** Page size when the query has no RSM <max/>. Default 50. */
  defaultMax?: number;
  /** Largest page; a larger <max/> is cut to this, and the page is then not complete. Default 250. */
  maxMax?: number;
  /** Include the RSM <count/> and <first index=''/>. Default true. */
  count?: boolean;
  /**
   * Which pages get <first index=''/>: 'all' (default), or 'ends' — only a page that starts or
   * ends the result set, where the index needs no counting. Elsewhere the index is one more
   * count, as long as the distance to the nearer end of the archive (~30 ms per 500,000 items on
   * SQLite); XEP-0313 §4.3.2 makes the index optional and clients must not depend on it.
   */
  index?: 'all' | 'ends';
  /**
   * RSM <index/> paging reads the items before the page; beyond this many the query gets
   * feature-not-implemented (XEP-0059 §2.6 allows it when that is too costly). Default 10,000.
   */
  maxIndexSkip?: number;
  /**
   * Understand the 'include-groupchat' field (advertise NS_MAM_GROUPCHAT_FIELD). The value
   * changes nothing: an archive using this option holds no groupchat messages. Default false,
   * and then the field is refused like any unknown one.
   */
  groupchatField?: boolean;
  /** Normalises a JID (stringprep); null when invalid. Default core/util/jid.ts prep. */
  prepJid?: (jid: string) => string | null;
}

const DEFAULTS = { defaultMax: 50, maxMax: 250, count: true, index: 'all', maxIndexSkip: 10_000, groupchatField: false };

/** The filters of a query's form (XEP-0313 §4.1), read and checked. */
export interface MamFilter {
  /** Normalised JID: bare matches its full JIDs too (§4.1.1). */
  with?: string;
  /** ms since the epoch, inclusive. */
  start?: number;
  end?: number;
  afterId?: string;
  beforeId?: string;
  ids?: string[];
  includeGroupchat?: boolean;
}

export interface MamQuery {
  queryId?: string;
  filter: MamFilter;
  rsm: RsmRequest;
  /** <flip-page/>: send the page's results newest first (§4.3.5). */
  flip: boolean;
}

/** One page of results, in archive order, with what the <fin/> says about it. */
export interface MamPage {
  items: ArchiveItem[];
  /** No more items in the direction of paging: <fin complete='true'/>. */
  complete: boolean;
  /** Size of the whole result set (RSM <count/>), when counted. */
  count?: number;
  /** Position of the page's first item in the result set (RSM <first index=''/>), when known. */
  firstIndex?: number;
  flip: boolean;
}

/** The form fields this archive understands (XEP-0313 §4.1.5 and the registry in §10). */
export function mamFormSpec(opts: MamOptions = {}): FormSpec {
  const fields: FieldSpec[] = [
    { var: 'with', type: 'jid-single', label: 'Messages to or from this JID' },
    { var: 'start', type: 'text-single', label: 'Messages at or after this time (XEP-0082)' },
    { var: 'end', type: 'text-single', label: 'Messages at or before this time (XEP-0082)' },
    { var: 'before-id', type: 'text-single', label: 'Messages before this archive id' },
    { var: 'after-id', type: 'text-single', label: 'Messages after this archive id' },
    // list-multi with an open list: the ids cannot be offered as options (§4.1.5).
    { var: 'ids', type: 'list-multi', label: 'Only these archive ids', validate: { datatype: 'xs:string', open: true } },
  ];
  if (opts.groupchatField ?? DEFAULTS.groupchatField) {
    fields.push({ var: 'include-groupchat', type: 'boolean', label: 'Include groupchat messages' });
  }
  return { formType: NS_MAM, fields };
}

/** Reply payload for `<iq type='get'><query xmlns='urn:xmpp:mam:2'/></iq>`: the query form. */
export function queryFormElement(opts: MamOptions = {}): Element {
  const q = new Element('query', { xmlns: NS_MAM });
  q.cnode(form(mamFormSpec(opts)));
  return q;
}

/** The disco#info features of an archive (on the user's bare JID, or the room's). */
export function mamFeatures(opts: MamOptions = {}): string[] {
  const features = [NS_MAM, NS_MAM_EXTENDED];
  if (opts.groupchatField ?? DEFAULTS.groupchatField) features.push(NS_MAM_GROUPCHAT_FIELD);
  return features;
}

const bad = (text: string) => new StanzaError('modify', 'bad-request', text);

/**
 * Reads a `<query xmlns='urn:xmpp:mam:2'>` of an iq set. Throws StanzaError: bad-request for a
 * malformed form, timestamp or RSM; jid-malformed for an invalid 'with'; feature-not-implemented
 * for a field this archive does not know (§4.1.5) or a pubsub 'node' (XEP-0442).
 */
export function parseQuery(query: Element, opts: MamOptions = {}): MamQuery {
  if (query.name !== 'query' || query.attrs.xmlns !== NS_MAM) throw bad(`Expected <query xmlns='${NS_MAM}'/>`);
  if (query.attrs.node !== undefined) {
    throw new StanzaError('cancel', 'feature-not-implemented', 'Pubsub node archives (XEP-0442) are not served here');
  }
  const queryId = query.attrs.queryid as string | undefined;
  const filter: MamFilter = {};
  const x = findForm(query);
  if (x) {
    const parsed = parseForm(x);
    if (!parsed) throw bad('Malformed data form');
    // §4.1 requires FORM_TYPE; a form without one is still read as ours, another one is refused.
    if (parsed.formType !== undefined && parsed.formType !== NS_MAM) throw bad(`Unexpected FORM_TYPE, expected '${NS_MAM}'`);
    const spec = mamFormSpec(opts);
    const known = new Set(spec.fields.map((f) => f.var));
    for (const name of parsed.fields.keys()) {
      if (name !== 'FORM_TYPE' && !known.has(name)) {
        throw new StanzaError('cancel', 'feature-not-implemented', `Unsupported query field '${name}'`);
      }
    }
    const read = readSubmission(parsed, spec);
    if (!read.ok) throw bad(read.text);
    const one = (name: string): string | undefined => read.values.get(name)?.[0];
    const jid = one('with');
    if (jid !== undefined) {
      const p = (opts.prepJid ?? prep)(jid);
      if (!p) throw new StanzaError('modify', 'jid-malformed', `Invalid JID in 'with': ${JSON.stringify(jid)}`);
      filter.with = p;
    }
    for (const [name, round] of [['start', 'ceil'], ['end', 'floor']] as const) {
      const text = one(name);
      if (text === undefined) continue;
      const t = parseDateTime(text, round);
      if (t === undefined) throw bad(`Invalid timestamp in '${name}' (expected XEP-0082 DateTime): ${JSON.stringify(text)}`);
      filter[name] = t;
    }
    for (const [name, key] of [['after-id', 'afterId'], ['before-id', 'beforeId']] as const) {
      const id = one(name);
      if (id === undefined) continue;
      if (id === '') throw bad(`Empty '${name}'`);
      filter[key] = id;
    }
    const ids = read.values.get('ids');
    if (ids && ids.length > 0) {
      if (ids.includes('')) throw bad(`Empty id in 'ids'`);
      filter.ids = [...new Set(ids)];
    }
    const gc = one('include-groupchat');
    if (gc !== undefined) filter.includeGroupchat = gc === '1';
  }
  const set = query.getChild('set', NS_RSM);
  return {
    ...(queryId !== undefined ? { queryId } : {}),
    filter,
    rsm: set ? parseRsm(set) : {},
    flip: query.getChild('flip-page') !== undefined,
  };
}

/** Of two exclusive id bounds on the same side, the one that admits fewer items. */
async function tighter(store: MamArchive, user: string | null, side: 'after' | 'before', a: string | undefined, b: string | undefined): Promise<string | undefined> {
  if (a === undefined || b === undefined || a === b) return a ?? b;
  // Is b beyond a (later for 'after', earlier for 'before')? Rejects when a is unknown.
  if ((await store.count(user, { [side]: a, ids: [b] })) === 1) return b;
  if ((await store.count(user, { ids: [b] })) === 0) {
    throw new StanzaError('cancel', 'item-not-found', `No archive item with id ${JSON.stringify(b)}`);
  }
  return a;
}

/**
 * Runs a query as one page (XEP-0313 §4.3 with XEP-0059). Unknown ids in before-id, after-id,
 * ids or RSM after/before reject with item-not-found (the store's ArchiveIdNotFoundError is a
 * StanzaError too).
 */
export async function runQuery(store: MamArchive, user: string | null, q: MamQuery, opts: MamOptions = {}): Promise<MamPage> {
  const o = { ...DEFAULTS, ...opts };
  const f = q.filter;
  const { rsm } = q;
  if (f.ids) {
    const present = await store.count(user, { ids: f.ids });
    if (present !== f.ids.length) throw new StanzaError('cancel', 'item-not-found', 'Some of the requested ids are not in the archive');
  }
  // The whole result set: the form's filters. The page: that set narrowed by RSM after/before.
  const set: ArchiveQuery = {
    ...(f.with !== undefined ? { with: f.with } : {}),
    ...(f.start !== undefined ? { start: f.start } : {}),
    ...(f.end !== undefined ? { end: f.end } : {}),
    ...(f.ids ? { ids: f.ids } : {}),
  };
  const setAfter = f.afterId;
  const setBefore = f.beforeId;
  if (setAfter !== undefined) set.after = setAfter;
  if (setBefore !== undefined) set.before = setBefore;
  const rsmBefore = rsm.before !== undefined && rsm.before !== '' ? rsm.before : undefined;
  const after = await tighter(store, user, 'after', setAfter, rsm.after);
  const before = await tighter(store, user, 'before', setBefore, rsmBefore);
  const window: ArchiveQuery = { ...set };
  if (after !== undefined) window.after = after;
  if (before !== undefined) window.before = before;

  const max = pageSize(rsm, o);
  const backwards = rsm.before !== undefined;
  const wantCount = o.count || rsm.index !== undefined;
  const count = wantCount ? await store.count(user, set) : undefined;

  let items: ArchiveItem[];
  let complete: boolean;
  let firstIndex: number | undefined;
  if (rsm.index !== undefined) {
    const total = count!;
    const i = Math.min(rsm.index, total);
    const n = Math.min(max, total - i);
    if (Math.min(i, total - i - n) > o.maxIndexSkip) {
      throw new StanzaError('cancel', 'feature-not-implemented', `RSM <index/> deeper than ${o.maxIndexSkip} items into the result set; page with <after/>/<before/>`);
    }
    if (n === 0) {
      items = [];
    } else if (i <= total - i - n) {
      items = (await store.find(user, { ...set, limit: i + n })).slice(i);
    } else {
      items = (await store.find(user, { ...set, limit: total - i, reverse: true })).slice(total - i - n).reverse();
    }
    complete = i + n >= total;
    firstIndex = i;
  } else {
    const got = await store.find(user, { ...window, limit: max + 1, reverse: backwards });
    complete = got.length <= max;
    items = got.slice(0, max);
    if (backwards) items.reverse();
    if (count !== undefined && items.length > 0) {
      if (backwards ? complete && rsm.after === undefined : rsm.after === undefined) {
        firstIndex = 0; // the page starts the set
      } else if (backwards ? rsm.before === '' : complete) {
        firstIndex = count - items.length; // the page ends the set
      } else if (o.index === 'all') {
        firstIndex = await store.count(user, { ...set, before: items[0]!.id });
      }
    }
  }
  // An <index/> request gets both even without counting: its answer is only meaningful with them.
  const report = o.count || rsm.index !== undefined;
  return {
    items,
    complete,
    ...(report && count !== undefined ? { count } : {}),
    ...(report && firstIndex !== undefined && items.length > 0 ? { firstIndex } : {}),
    flip: q.flip,
  };
}

/**
 * The <fin/> for a page (XEP-0313 §4.3): complete='true' on the last page in the direction of
 * paging, the RSM <set/> with first/last in archive order (flip-page changes only the order the
 * results are sent in), and <count/>. Results of this store are always stable, so there is no
 * 'stable' attribute (§4.3.3: absent means stable).
 */
export function finElement(page: MamPage): Element {
  const fin = new Element('fin', { xmlns: NS_MAM, ...(page.complete ? { complete: 'true' } : {}) });
  fin.cnode(rsmElement(rsmResponse(page.items.map((i) => i.id), {
    ...(page.firstIndex !== undefined ? { firstIndex: page.firstIndex } : {}),
    ...(page.count !== undefined ? { count: page.count } : {}),
  })));
  return fin;
}

/** The stored message of an archive item as an Element in jabber:client, or undefined if unreadable. */
export function storedMessage(item: ArchiveItem): Element | undefined {
  let el: Element;
  try {
    el = parseXml(item.payload) as Element;
  } catch {
    return undefined;
  }
  if (!(el instanceof Element) || el.name !== 'message') return undefined;
  if (el.attrs.xmlns === undefined) el.attrs.xmlns = NS_CLIENT;
  return el;
}

export interface ResultAddressing {
  /** The requester's full JID (the iq's 'from'). */
  to: string;
  /** The archive's JID (user's bare JID, or the room's). */
  from: string;
  queryId?: string;
  /**
   * Adjusts (or replaces) the forwarded message per requester, e.g. the MUC archive adding the
   * sender's real JID for those allowed to see it. Gets a fresh copy it may change.
   */
  render?: (item: ArchiveItem, message: Element) => Element;
}

/**
 * One result message (§4.2): <result queryid id><forwarded><delay stamp/>message</forwarded>.
 * The delay stamp is the time the message was archived. An item whose payload cannot be read is
 * sent without its message (the placeholder §3.2 allows), keeping id and time.
 */
export function resultMessage(item: ArchiveItem, a: ResultAddressing): Element {
  const msg = new Element('message', { to: a.to, from: a.from });
  const result = msg.c('result', { xmlns: NS_MAM, ...(a.queryId !== undefined ? { queryid: a.queryId } : {}), id: item.id });
  const fwd = result.c('forwarded', { xmlns: NS_FORWARD });
  fwd.c('delay', { xmlns: NS_DELAY, stamp: formatDateTime(item.when) });
  let stored = storedMessage(item);
  if (stored && a.render) stored = a.render(item, stored);
  if (stored) fwd.cnode(stored);
  return msg;
}

/**
 * Archive metadata (§5, required by #extended): <metadata> with <start/> and <end/> (id and
 * XEP-0082 timestamp of the first and last items), or an empty <metadata/> for an empty archive.
 */
export async function metadataElement(store: MamArchive, user: string | null): Promise<Element> {
  const md = new Element('metadata', { xmlns: NS_MAM });
  const [first] = await store.find(user, { limit: 1 });
  const [last] = await store.find(user, { limit: 1, reverse: true });
  if (first && last) {
    md.c('start', { id: first.id, timestamp: formatDateTime(first.when) });
    md.c('end', { id: last.id, timestamp: formatDateTime(last.when) });
  }
  return md;
}
