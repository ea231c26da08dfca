// MAM queries for e2e tests (XEP-0313): send a query, collect the result messages that carry its
// queryid, and return them with the <fin/> of the iq result.
import type { Element, TestClient } from './client.ts';
import { xml } from './client.ts';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_RSM = 'http://jabber.org/protocol/rsm';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const NS_SID = 'urn:xmpp:sid:0';

export interface MamResult {
  /** Archive ids of the results, in the order received. */
  ids: string[];
  /** The forwarded messages, in the order received. */
  messages: Element[];
  results: Element[];
  fin: Element;
  /** The iq reply (result or error). */
  reply: Element;
}

let queryCounter = 0;

/** A submitted MAM form with these fields (values: string or string[]). */
export function mamForm(fields: Record<string, string | string[]>): Element {
  const x = xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_MAM)));
  for (const [name, value] of Object.entries(fields)) {
    const f = xml('field', { var: name });
    for (const v of Array.isArray(value) ? value : [value]) f.append(xml('value', {}, v));
    x.append(f);
  }
  return x;
}

/** Run one MAM query: `children` go inside <query/> (a form, an RSM <set/>, <flip-page/>). */
export async function mamQuery(c: TestClient, children: Element[] = [], to?: string): Promise<MamResult> {
  const queryid = `q${++queryCounter}`;
  const reply = await c.iqRaw(xml('iq', { type: 'set', ...(to ? { to } : {}) }, xml('query', { xmlns: NS_MAM, queryid }, ...children)));
  // The results arrive before the iq result (§4.2); other stanzas stay in the inbox.
  const ours = (s: Element) => s.name === 'message' && s.getChild('result', NS_MAM)?.attrs.queryid === queryid;
  const queued = c.inbox.drain();
  const results = queued.filter(ours);
  for (const s of queued) if (!ours(s)) c.inbox.push(s);
  const items = results.map((m) => m.getChild('result', NS_MAM)!);
  return {
    ids: items.map((r) => String(r.attrs.id)),
    messages: items.map((r) => r.getChild('forwarded', NS_FORWARD)!.getChild('message')!),
    results,
    fin: reply.getChild('fin', NS_MAM) ?? xml('none'),
    reply,
  };
}

export function rsm(children: Record<string, string | undefined>): Element {
  const set = xml('set', { xmlns: NS_RSM });
  for (const [name, value] of Object.entries(children)) set.append(value === undefined ? xml(name) : xml(name, {}, value));
  return set;
}

/** The stanza id `by` put on a delivered message. */
export function stanzaId(m: Element, by: string): string | undefined {
  return m.getChildren('stanza-id', NS_SID).find((s) => s.attrs.by === by)?.attrs.id as string | undefined;
}
