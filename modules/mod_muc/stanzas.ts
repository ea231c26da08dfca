// Building the stanzas a room sends: the muc#user extension (items, status codes, actor, reason,
// destroy), error replies carrying the room as 'by', and per-recipient copies of a broadcast.
import { Element } from '@xmpp/xml';
import { errorReply, type StanzaErrorCondition, type StanzaErrorType } from '../../core/api.ts';
import { NS_MUC, NS_MUC_USER, NS_OCCUPANT_ID, NS_SID } from './ns.ts';
import type { Affiliation, Role } from './roles.ts';

export interface ItemInfo {
  affiliation: Affiliation;
  role: Role;
  /** Real JID, when the recipient may see it. */
  jid?: string;
  /** New nick (status 303) or the nick in list results. */
  nick?: string;
  actor?: { nick?: string; jid?: string };
  reason?: string;
}

export interface DestroyInfo {
  jid?: string;
  reason?: string;
  password?: string;
}

/** <x xmlns='…muc#user'> with an item, status codes (ascending) and an optional <destroy/>. */
export function mucUserX(item: ItemInfo | undefined, statuses: readonly number[] = [], destroy?: DestroyInfo): Element {
  const x = new Element('x', { xmlns: NS_MUC_USER });
  if (item) x.cnode(itemElement(item));
  for (const code of [...new Set(statuses)].sort((a, b) => a - b)) x.c('status', { code: String(code) });
  if (destroy) x.cnode(destroyElement(destroy));
  return x;
}

export function itemElement(i: ItemInfo, name = 'item', xmlns?: string): Element {
  const attrs: Record<string, string> = { affiliation: i.affiliation, role: i.role };
  if (i.jid !== undefined) attrs.jid = i.jid;
  if (i.nick !== undefined) attrs.nick = i.nick;
  if (xmlns) attrs.xmlns = xmlns;
  const el = new Element(name, attrs);
  if (i.actor && (i.actor.nick !== undefined || i.actor.jid !== undefined)) {
    el.c('actor', { ...(i.actor.nick !== undefined ? { nick: i.actor.nick } : {}), ...(i.actor.jid !== undefined ? { jid: i.actor.jid } : {}) });
  }
  if (i.reason) el.c('reason').t(i.reason);
  return el;
}

export function destroyElement(d: DestroyInfo): Element {
  const el = new Element('destroy', d.jid ? { jid: d.jid } : {});
  if (d.reason) el.c('reason').t(d.reason);
  if (d.password) el.c('password').t(d.password);
  return el;
}

export function occupantIdElement(id: string): Element {
  return new Element('occupant-id', { xmlns: NS_OCCUPANT_ID, id });
}

export function stanzaIdElement(id: string, by: string): Element {
  return new Element('stanza-id', { xmlns: NS_SID, id, by });
}

/**
 * An error reply from the room (RFC 6120 §8.3, 'by' = the room JID as in XEP-0045's examples).
 * Presence errors carry the <x xmlns='…muc'/> of the request (§7.2.5 ff.).
 */
export function roomError(stanza: Element, roomJid: string, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string): Element {
  const err = errorReply(stanza, type, condition, text, roomJid);
  if (stanza.name === 'presence') err.children.unshift(new Element('x', { xmlns: NS_MUC }));
  return err;
}

/**
 * A copy of `template` addressed to `to`. Broadcasts to hundreds of occupants share the template's
 * child nodes (only the top element and its child list are new): outgoing stanzas must be
 * treated as immutable below the top level.
 */
export function addressedCopy(template: Element, to: string, extra?: readonly Element[]): Element {
  const el = new Element(template.name, { ...template.attrs, to });
  el.children = extra ? [...template.children, ...extra] : template.children.slice();
  return el;
}

/** The element children of `el` except those `drop` matches (text nodes are dropped too). */
export function childrenExcept(el: Element, drop: (c: Element) => boolean): Element[] {
  const out: Element[] = [];
  for (const c of el.children) if (typeof c !== 'string' && !drop(c)) out.push(c);
  return out;
}

/** Plain text of the first child `name` (any namespace of the stanza itself), or undefined. */
export function childText(el: Element, name: string, xmlns?: string): string | undefined {
  const c = xmlns === undefined ? el.getChild(name) : el.getChild(name, xmlns);
  return c ? c.text() : undefined;
}
