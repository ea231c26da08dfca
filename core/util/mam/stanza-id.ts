// Unique and Stable Stanza IDs (XEP-0359) as an archive uses them (XEP-0313 §3.5): the archive
// adds <stanza-id by='archive JID' id='archive id'/> to what it archived, and removes any
// <stanza-id/> claiming its own 'by' from every message it sees, archived or not (§3 rule 2) —
// otherwise a sender could plant ids the recipient's client would trust.
//
// Elements passed in are not changed: the functions return the same element when nothing is to
// be done, and a copy otherwise (stanzas are shared between handlers while routed).
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { prep } from '../jid.ts';

export const NS_SID = 'urn:xmpp:sid:0';

/** Compares 'by' values as JIDs (stringprep'd), so a differently cased forgery is caught too. */
function sameJid(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = prep(a);
  return pa !== null && pa === prep(b);
}

function isStanzaIdBy(c: Element | string, by: string): c is Element {
  return typeof c !== 'string' && c.name === 'stanza-id' && c.attrs.xmlns === NS_SID && sameJid(String(c.attrs.by ?? ''), by);
}

/** `message` without the <stanza-id/> children whose 'by' is `by` (same element if there are none). */
export function stripStanzaIds(message: Element, by: string): Element {
  if (!message.children.some((c) => isStanzaIdBy(c, by))) return message;
  const copy = clone(message) as Element;
  copy.children = copy.children.filter((c) => !isStanzaIdBy(c, by));
  return copy;
}

/** A copy of `message` with exactly one <stanza-id by id/> for `by`: ours (§3 rule 4). */
export function addStanzaId(message: Element, by: string, id: string): Element {
  const copy = stripStanzaIds(message, by);
  const out = copy === message ? (clone(message) as Element) : copy;
  out.cnode(new Element('stanza-id', { xmlns: NS_SID, by, id }));
  return out;
}

/** The id of the <stanza-id/> with this 'by', if the message has one. */
export function stanzaIdOf(message: Element, by: string): string | undefined {
  const el = message.children.find((c) => isStanzaIdBy(c, by));
  const id = el?.attrs.id;
  return typeof id === 'string' ? id : undefined;
}

/** The client's own <origin-id/> (XEP-0359 §2.2), if any: spoofable, never used to reference stanzas. */
export function originIdOf(message: Element): string | undefined {
  const id = message.getChild('origin-id', NS_SID)?.attrs.id;
  return typeof id === 'string' ? id : undefined;
}
