// Stanza helpers: building replies and errors. Stanzas are @xmpp/xml (ltx) Elements; top-level
// stanzas carry no xmlns of their own (the stream's content namespace applies).
import xml, { Element } from '@xmpp/xml';
import { clone, parse } from 'ltx';
import type { StanzaErrorCondition, StanzaErrorExtra, StanzaErrorType } from './errors.ts';

export { Element, xml };

export const NS = {
  client: 'jabber:client',
  server: 'jabber:server',
  component: 'jabber:component:accept',
  streams: 'http://etherx.jabber.org/streams',
  xmppStreams: 'urn:ietf:params:xml:ns:xmpp-streams',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  roster: 'jabber:iq:roster',
  rosterver: 'urn:xmpp:features:rosterver',
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  ping: 'urn:xmpp:ping',
  delay: 'urn:xmpp:delay',
} as const;

export type StanzaKind = 'message' | 'presence' | 'iq';

/** Attributes of a stanza: every value is a string or absent. */
export interface StanzaAttrs {
  to?: string;
  from?: string;
  type?: string;
  id?: string;
  xmlns?: string;
  'xml:lang'?: string;
  [name: string]: string | undefined;
}

/** A top-level stanza (message, presence, iq) with typed attributes. */
export interface Stanza extends Element {
  attrs: StanzaAttrs;
}

const NO_ATTRS: StanzaAttrs = Object.freeze({});

/** An element's attributes, typed for reading and stamping (none for a missing element). */
/**
 * Parse stored XML (an archived message, a PEP item, an offline stanza) into the Element class
 * every other stanza has. ltx's `parse` alone builds its ES-module copy of the class while
 * @xmpp/xml uses the CommonJS one, so `instanceof Element` would fail on what it returns.
 */
export function parseXml(text: string): Element {
  return parse(text, { Element }) as Element;
}

export function attrsOf(el: Element | undefined): StanzaAttrs {
  return el === undefined ? NO_ATTRS : (el.attrs as StanzaAttrs);
}

export function isStanzaKind(name: string): name is StanzaKind {
  return name === 'message' || name === 'presence' || name === 'iq';
}

/** Swap from/to, keep id; for iq the type becomes result. Children are not copied. */
export function reply(stanza: Element, type?: string): Element {
  const attrs: Record<string, string> = {};
  const { from, to, id, type: ownType } = attrsOf(stanza);
  if (to) attrs.from = to;
  if (from) attrs.to = from;
  if (id !== undefined) attrs.id = id;
  const t = type ?? (stanza.name === 'iq' ? 'result' : ownType);
  if (t) attrs.type = t;
  return new Element(stanza.name, attrs);
}

/** True when an error must not be answered with an error (RFC 6120 §8.3.1). */
export function mustNotReplyWithError(stanza: Element): boolean {
  const type = attrsOf(stanza).type;
  return type === 'error' || (stanza.name === 'iq' && type === 'result');
}

/**
 * Build the error reply for `stanza` (RFC 6120 §8.3). The original payload is not echoed,
 * except the first child of an iq, which clients use to match the error.
 */
export function errorReply(
  stanza: Element,
  type: StanzaErrorType,
  condition: StanzaErrorCondition,
  text?: string,
  by?: string,
  extra?: StanzaErrorExtra,
): Element {
  const r = reply(stanza, 'error');
  if (stanza.name === 'iq') {
    const payload = stanza.children.find((c): c is Element => typeof c !== 'string');
    if (payload) r.cnode(clone(payload));
  }
  const err = new Element('error', by ? { type, by } : { type });
  const cond = new Element(condition, { xmlns: NS.stanzas });
  if (extra?.conditionText) cond.t(extra.conditionText);
  err.cnode(cond);
  if (text) err.cnode(new Element('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }).t(text));
  // RFC 6120 §8.3.2: the application-specific condition follows the defined one (and the text).
  if (extra?.application) err.cnode(clone(extra.application));
  r.cnode(err);
  return r;
}

export function iqResult(stanza: Element, payload?: Element): Element {
  const r = reply(stanza, 'result');
  if (payload) r.cnode(payload);
  return r;
}

/** The first element child of an iq (its payload), if any. */
export function iqPayload(stanza: Element): Element | undefined {
  for (const c of stanza.children) if (typeof c !== 'string') return c;
  return undefined;
}

/** `<stream:error>` element for a condition. */
export function streamErrorElement(condition: string, text?: string): Element {
  const e = new Element('stream:error');
  e.cnode(new Element(condition, { xmlns: NS.xmppStreams }));
  if (text) e.cnode(new Element('text', { xmlns: NS.xmppStreams, 'xml:lang': 'en' }).t(text));
  return e;
}

// ---- one serialisation per written stanza ---------------------------------------------------------
// A `stanzas/out` filter that needs a stanza's XML (stream management keeps it for resumption)
// serialises it with serialiseOutgoing(); the client stream's write takes that string
// (takeSerialised) instead of serialising the same stanza again. One slot: Session.send runs its
// filters and then its write synchronously, so the write is the next to look, and it always
// empties the slot.
let outgoing: Element | undefined;
let outgoingXml = '';

/** `stanza.toString()`, kept for the write of this same stanza that follows (see takeSerialised). */
export function serialiseOutgoing(stanza: Element): string {
  outgoing = stanza;
  outgoingXml = stanza.toString();
  return outgoingXml;
}

/** For a stream's write: the serialisation of `el` made by serialiseOutgoing() during this send, if any. */
export function takeSerialised(el: Element): string | undefined {
  const hit = outgoing === el ? outgoingXml : undefined;
  outgoing = undefined;
  outgoingXml = '';
  return hit;
}

/**
 * A stanza's XML with `xmlns='jabber:client'` declared (written first, after the name) unless it
 * carries its own: what the transports whose frames stand alone send (WebSocket, RFC 7395
 * §3.3.3; BOSH bodies, XEP-0206). `serialised` is `el.toString()` when stream management already
 * made it (see serialiseOutgoing): the declaration is then inserted into that string — the same
 * text, without serialising twice.
 */
export function stanzaWithClientNs(el: Element, serialised?: string): string {
  const xml = serialised !== undefined && startsWithTag(serialised, el.name) ? serialised : el.toString();
  return el.attrs.xmlns != null ? xml : `<${el.name}${CLIENT_NS_ATTR}${xml.slice(el.name.length + 1)}`;
}

/** The declaration as the element serialiser (ltx) writes attributes: double quotes. */
const CLIENT_NS_ATTR = ` xmlns="${NS.client}"`;

/** True when `xml` is the start of an element named `name` (so what follows the name is its attributes or the tag's end). */
function startsWithTag(xml: string, name: string): boolean {
  const next = xml.charCodeAt(name.length + 1);
  // ' ', '/', '>' (attribute values escape '>' and quotes, so the name ends at the first of these)
  return xml.startsWith(`<${name}`) && (next === 0x20 || next === 0x2f || next === 0x3e);
}
