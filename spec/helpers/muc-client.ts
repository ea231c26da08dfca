// Multi-User Chat from a test client's side (the e2e tests of mod_muc): entering and leaving
// rooms, reading muc#user items and status codes, owner and admin requests.
import assert from 'node:assert/strict';
import { xml, type Element, type TestClient } from './client.ts';

export const MUC = 'conference.localhost';
export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_USER = 'http://jabber.org/protocol/muc#user';
export const NS_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_OWNER = 'http://jabber.org/protocol/muc#owner';
export const NS_DATA = 'jabber:x:data';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';

/** Status codes of a presence's or message's muc#user element, ascending. */
export function statuses(el: Element): number[] {
  return (el.getChild('x', NS_USER)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code)).sort((a, b) => a - b);
}

/** The muc#user item of a presence. */
export function item(el: Element): Record<string, string> {
  const i = el.getChild('x', NS_USER)?.getChild('item');
  assert.ok(i, `no muc#user item in ${el.toString()}`);
  return i.attrs as Record<string, string>;
}

export const presenceFrom = (from: string, type?: string) => (el: Element) =>
  el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;

export const isSelfPresence = (from: string, type?: string) => (el: Element) => presenceFrom(from, type)(el) && statuses(el).includes(110);

/** Enter a room (presence with the MUC element) and wait for the self-presence (110). */
export async function join(c: TestClient, occupant: string, opts: { password?: string; history?: Record<string, string>; extra?: Element[] } = {}): Promise<Element> {
  const x = xml('x', { xmlns: NS_MUC });
  if (opts.password !== undefined) x.c('password').t(opts.password);
  if (opts.history) x.c('history', opts.history);
  const self = c.expect((el) => el.name === 'presence' && el.attrs.from === occupant && (statuses(el).includes(110) || el.attrs.type === 'error'));
  await c.send(xml('presence', { to: occupant }, x, ...(opts.extra ?? [])));
  return self;
}

/** Enter and expect success. */
export async function enter(c: TestClient, occupant: string, opts: Parameters<typeof join>[2] = {}): Promise<Element> {
  const p = await join(c, occupant, opts);
  assert.equal(p.attrs.type, undefined, `joining ${occupant} failed: ${p.toString()}`);
  return p;
}

/** Enter and collect the bodies of the history the room sends, up to its subject (which ends it, §7.2.15). */
export async function enterForHistory(c: TestClient, occupant: string, opts: Parameters<typeof join>[2] = {}): Promise<string[]> {
  const got: string[] = [];
  const subject = c.expect((el) => {
    if (el.name === 'message' && el.getChild('body')) got.push(el.getChildText('body')!);
    return el.name === 'message' && el.getChild('subject') !== undefined;
  });
  await enter(c, occupant, opts);
  await subject;
  return got;
}

/** Create a room as an instant room (§10.1.2): join, then submit an empty form. */
export async function createInstant(c: TestClient, room: string, nick: string): Promise<Element> {
  const p = await enter(c, `${room}/${nick}`);
  assert.ok(statuses(p).includes(201), `room ${room} was not created: ${p.toString()}`);
  await c.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS_OWNER }, xml('x', { xmlns: NS_DATA, type: 'submit' }))));
  return p;
}

/** Submit a muc#roomconfig form with the given fields (values as strings or lists). */
export function configure(c: TestClient, room: string, fields: Record<string, string | string[]>): Promise<Element> {
  const x = xml('x', { xmlns: NS_DATA, type: 'submit' }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, ROOMCONFIG)));
  for (const [v, value] of Object.entries(fields)) {
    x.cnode(xml('field', { var: v }, ...(Array.isArray(value) ? value : [value]).map((s) => xml('value', {}, s))));
  }
  return c.iqRaw(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS_OWNER }, x)));
}

/** A muc#admin set with one item. */
export function adminSet(c: TestClient, room: string, attrs: Record<string, string>, reason?: string): Promise<Element> {
  const i = xml('item', attrs);
  if (reason !== undefined) i.c('reason').t(reason);
  return c.iqRaw(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS_ADMIN }, i)));
}

/** A muc#admin list (§9.5, §10.5 …) as attribute maps. */
export async function adminList(c: TestClient, room: string, attrs: Record<string, string>): Promise<Record<string, string>[]> {
  const r = await c.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS_ADMIN }, xml('item', attrs))));
  return (r.getChild('query', NS_ADMIN)?.getChildren('item') ?? []).map((i) => i.attrs as Record<string, string>);
}

export function groupchat(c: TestClient, room: string, body: string, id?: string): Promise<void> {
  return c.send(xml('message', { to: room, type: 'groupchat', ...(id ? { id } : {}) }, xml('body', {}, body)));
}

export const isGroupchat = (body: string) => (el: Element) => el.name === 'message' && el.attrs.type === 'groupchat' && el.getChildText('body') === body;

export function errorCondition(el: Element): string | undefined {
  const e = el.getChild('error');
  return e?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')?.name;
}
