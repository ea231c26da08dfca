// Result Set Management (XEP-0059): reading a request's <set/>, writing a response's <set/>, and
// paging an in-memory list by those rules (for disco#items, room lists and the like; MAM pages
// its archive store with the same request and response types, core/util/mam/query.ts).
//
// The rules this follows (XEP-0059 §2):
//  - <max/> limits the page; <max>0</max> asks only for the <count/>.
//  - <after>UID</after> pages forwards: the page starts just after that item. No <after/> means
//    "before the first item". An empty <after/> is read the same way (the XEP gives it no meaning).
//  - <before>UID</before> pages backwards: the page ends just before that item; an empty
//    <before/> asks for the last page. Items within a page are always in result-set order.
//  - <index>n</index> asks for the page starting at position n (only without after/before);
//    n >= count gives an empty page.
//  - A UID that is not in the set is item-not-found (§2.5: we neither derive the next item from a
//    UID nor remember deleted positions). Malformed numbers are bad-request.
//  - The response carries <first index='i'/> and <last/> of the page (none for an empty page:
//    §2.2 "MUST NOT be included") and the <count/> of the whole set.
import { Element } from '@xmpp/xml';
import { StanzaError } from './errors.ts';

export const NS_RSM = 'http://jabber.org/protocol/rsm';

/** A request's <set/>. `before === ''` is the empty <before/>: the last page. */
export interface RsmRequest {
  max?: number;
  after?: string;
  before?: string;
  index?: number;
}

/** A response's <set/>. `first`/`last` are UIDs of the page's first and last items. */
export interface RsmResponse {
  first?: string;
  /** Position of `first` in the whole result set (the 'index' attribute of <first/>). */
  firstIndex?: number;
  last?: string;
  count?: number;
}

const XS_INT_MAX = 2147483647;

function readCount(el: Element, what: string): number {
  const text = el.text().trim();
  if (!/^\+?\d+$/.test(text) || Number(text) > XS_INT_MAX) {
    throw new StanzaError('modify', 'bad-request', `RSM <${what}/> must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Reads an RSM <set/> element (XEP-0059); throws a bad-request StanzaError when it is malformed. */
export function parseRsm(set: Element): RsmRequest {
  const req: RsmRequest = {};
  const seen = new Set<string>();
  for (const child of set.children) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns as string | undefined;
    if (ns !== undefined && ns !== NS_RSM) continue;
    if (seen.has(child.name) && ['max', 'after', 'before', 'index'].includes(child.name)) {
      throw new StanzaError('modify', 'bad-request', `RSM <${child.name}/> given twice`);
    }
    seen.add(child.name);
    switch (child.name) {
      case 'max':
        req.max = readCount(child, 'max');
        break;
      case 'index':
        req.index = readCount(child, 'index');
        break;
      case 'after': {
        const id = child.text();
        if (id !== '') req.after = id;
        break;
      }
      case 'before':
        req.before = child.text();
        break;
      default: // <count/>, <first/>, <last/> belong to responses; ignored in a request
    }
  }
  if (req.index !== undefined && (req.after !== undefined || req.before !== undefined)) {
    throw new StanzaError('modify', 'bad-request', 'RSM <index/> cannot be combined with <after/> or <before/>');
  }
  return req;
}

/** The RSM request in `parent` (its <set xmlns='http://jabber.org/protocol/rsm'/> child), if any. */
export function findRsm(parent: Element): RsmRequest | undefined {
  const set = parent.getChild('set', NS_RSM);
  return set ? parseRsm(set) : undefined;
}

/** The response <set/> element. */
export function rsmElement(r: RsmResponse): Element {
  const set = new Element('set', { xmlns: NS_RSM });
  if (r.first !== undefined) {
    set.c('first', r.firstIndex !== undefined ? { index: String(r.firstIndex) } : {}).t(r.first);
  }
  if (r.last !== undefined) set.c('last').t(r.last);
  if (r.count !== undefined) set.c('count').t(String(r.count));
  return set;
}

/** The response for a page of UIDs: first/last only when the page has items (XEP-0059 §2.2). */
export function rsmResponse(pageIds: readonly string[], extra: { firstIndex?: number; count?: number } = {}): RsmResponse {
  const r: RsmResponse = {};
  if (pageIds.length > 0) {
    r.first = pageIds[0];
    if (extra.firstIndex !== undefined) r.firstIndex = extra.firstIndex;
    r.last = pageIds[pageIds.length - 1];
  }
  if (extra.count !== undefined) r.count = extra.count;
  return r;
}

export interface PageLimits {
  /** Page size when the request has no <max/> (or no <set/>). Default 50. */
  defaultMax?: number;
  /** Largest page; a larger <max/> is cut to this. Default: no limit. */
  maxMax?: number;
}

/** How many items a page may hold for this request. */
export function pageSize(req: RsmRequest | undefined, limits: PageLimits = {}): number {
  const wanted = req?.max ?? limits.defaultMax ?? 50;
  return Math.min(wanted, limits.maxMax ?? Infinity);
}

export interface Page<T> {
  items: T[];
  rsm: RsmResponse;
  /** No more items in the direction of paging (forwards: after the page; backwards: before it). */
  complete: boolean;
}

/**
 * One page of `items` (the whole result set, in order) for an RSM request. `idOf` gives each
 * item's UID. Unknown <after/>/<before/> UIDs throw item-not-found.
 */
export function pageList<T>(items: readonly T[], req: RsmRequest | undefined, idOf: (item: T) => string, limits: PageLimits = {}): Page<T> {
  const max = pageSize(req, limits);
  const count = items.length;
  const position = (id: string): number => {
    const i = items.findIndex((it) => idOf(it) === id);
    if (i < 0) throw new StanzaError('cancel', 'item-not-found', `No item with id ${JSON.stringify(id)} in this result set`);
    return i;
  };
  let lo = 0;
  let hi = count; // window [lo, hi)
  if (req?.after !== undefined) lo = position(req.after) + 1;
  if (req?.before !== undefined && req.before !== '') hi = position(req.before);
  if (req?.index !== undefined) lo = Math.min(req.index, count);
  hi = Math.max(lo, hi);
  let start: number;
  let end: number;
  let complete: boolean;
  if (req?.before !== undefined) {
    end = hi;
    start = Math.max(lo, hi - max);
    complete = start === lo;
  } else {
    start = lo;
    end = Math.min(hi, lo + max);
    complete = end === hi;
  }
  const page = items.slice(start, end);
  return { items: page, rsm: rsmResponse(page.map(idOf), { firstIndex: start, count }), complete };
}
