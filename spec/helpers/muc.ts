// A MUC service with a controllable clock, predictable ids and recording persistence/archive
// callbacks, plus stanza builders and readers for the mod_muc engine's unit tests.
import assert from 'node:assert/strict';
import { Element } from '@xmpp/xml';
import { submit } from '../../core/util/dataforms.ts';
import type { ArchivedMessage, Retraction } from '../../modules/mod_muc/room.ts';
import { MucService, type MucServiceOptions } from '../../modules/mod_muc/service.ts';
import type { RoomSnapshot } from '../../modules/mod_muc/snapshot.ts';

export const HOST = 'conference.example.org';
export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_USER = 'http://jabber.org/protocol/muc#user';
export const NS_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_OWNER = 'http://jabber.org/protocol/muc#owner';
export const ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';

export interface Harness {
  muc: MucService;
  /** The clock (ms); tests move it forward. */
  clock: { now: number };
  /** What the persistence callback stored, by room JID. */
  stored: Map<string, RoomSnapshot>;
  persistCalls: { room: string; snapshot: RoomSnapshot | null }[];
  /** Make the next persistence call fail. */
  failNextPersist(): void;
  archived: ArchivedMessage[];
  retracted: Retraction[];
  /** Send one stanza to the service; returns what it sends. */
  send(stanza: Element): Promise<Element[]>;
}

export function harness(opts: Partial<MucServiceOptions> = {}, archiveHas: (r: Retraction) => boolean = () => false): Harness {
  const clock = { now: Date.parse('2026-01-01T12:00:00Z') };
  let n = 0;
  let fail = false;
  let secrets = 0;
  const stored = new Map<string, RoomSnapshot>();
  const persistCalls: Harness['persistCalls'] = [];
  const archived: ArchivedMessage[] = [];
  const retracted: Retraction[] = [];
  const muc = new MucService({ host: HOST, ...opts }, {
    now: () => clock.now,
    newId: () => `id${++n}`,
    newSecret: () => Buffer.alloc(32, ++secrets).toString('base64'),
    persist: async (room, snapshot) => {
      if (fail) {
        fail = false;
        throw new Error('disk full');
      }
      persistCalls.push({ room, snapshot });
      if (snapshot) stored.set(room, JSON.parse(JSON.stringify(snapshot)) as RoomSnapshot);
      else stored.delete(room);
    },
    archive: {
      store: (e) => void archived.push(e),
      retract: (r) => {
        retracted.push(r);
        return archiveHas(r);
      },
    },
  });
  return {
    muc, clock, stored, persistCalls, archived, retracted,
    failNextPersist: () => void (fail = true),
    send: (stanza) => muc.handle(stanza),
  };
}

// ---- builders -----------------------------------------------------------------------------------

export function room(name: string, nick?: string): string {
  return nick === undefined ? `${name}@${HOST}` : `${name}@${HOST}/${nick}`;
}

export function join(from: string, to: string, o: { password?: string; history?: Record<string, string>; id?: string; show?: string; noX?: boolean } = {}): Element {
  const p = new Element('presence', { from, to, ...(o.id ? { id: o.id } : {}) });
  if (o.show) p.c('show').t(o.show);
  if (!o.noX) {
    const x = p.c('x', { xmlns: NS_MUC });
    if (o.password !== undefined) x.c('password').t(o.password);
    if (o.history) x.c('history', o.history);
  }
  return p;
}

export function presence(from: string, to: string, type?: string, children: Element[] = []): Element {
  const p = new Element('presence', { from, to, ...(type ? { type } : {}) });
  for (const c of children) p.cnode(c);
  return p;
}

export function message(from: string, to: string, o: { type?: string; body?: string; subject?: string; id?: string; children?: Element[] } = {}): Element {
  const m = new Element('message', { from, to, ...(o.type ? { type: o.type } : {}), ...(o.id ? { id: o.id } : {}) });
  if (o.subject !== undefined) m.c('subject').t(o.subject);
  if (o.body !== undefined) m.c('body').t(o.body);
  for (const c of o.children ?? []) m.cnode(c);
  return m;
}

export function groupchat(from: string, roomJid: string, body: string, id?: string): Element {
  return message(from, roomJid, { type: 'groupchat', body, id });
}

export function iq(from: string, to: string, type: 'get' | 'set', payload: Element, id = 'q1'): Element {
  const el = new Element('iq', { from, to, type, id });
  el.cnode(payload);
  return el;
}

export function query(xmlns: string, items: Record<string, string>[] = [], reasons: (string | undefined)[] = []): Element {
  const q = new Element('query', { xmlns });
  items.forEach((attrs, i) => {
    const it = q.c('item', attrs);
    if (reasons[i]) it.c('reason').t(reasons[i]!);
  });
  return q;
}

export function adminSet(from: string, roomJid: string, items: Record<string, string>[], reasons: (string | undefined)[] = []): Element {
  return iq(from, roomJid, 'set', query(NS_ADMIN, items, reasons));
}

export function adminGet(from: string, roomJid: string, item: Record<string, string>): Element {
  return iq(from, roomJid, 'get', query(NS_ADMIN, [item]));
}

export function configure(from: string, roomJid: string, values: Record<string, string | string[] | boolean> = {}): Element {
  const q = new Element('query', { xmlns: NS_OWNER });
  q.cnode(Object.keys(values).length ? submit(ROOMCONFIG, values) : new Element('x', { xmlns: 'jabber:x:data', type: 'submit' }));
  return iq(from, roomJid, 'set', q, 'cfg');
}

/** Create and unlock a room: join as `owner`, then submit `config` (instant room when empty). */
export async function createRoom(h: Harness, name: string, owner: string, nick: string, config: Record<string, string | string[] | boolean> = {}): Promise<void> {
  const out = await h.send(join(owner, room(name, nick)));
  assert.ok(codes(out.find((e) => e.name === 'presence' && e.attrs.to === owner)!).includes(201), 'room created');
  const r = await h.send(configure(owner, room(name), config));
  assert.equal(r[0]?.attrs.type, 'result', `configuration accepted: ${r[0]?.toString()}`);
}

// ---- readers ------------------------------------------------------------------------------------

export function to(out: Element[], jid: string): Element[] {
  return out.filter((e) => e.attrs.to === jid);
}

export function only(out: Element[], jid: string, name?: string): Element {
  const els = to(out, jid).filter((e) => name === undefined || e.name === name);
  const [el, ...more] = els;
  assert.ok(el && more.length === 0, `exactly one ${name ?? 'stanza'} to ${jid}, got ${els.map((e) => e.toString()).join('\n')}`);
  return el;
}

/** The one presence to `jid` carrying status 110 (its self-presence). */
export function selfPresence(out: Element[], jid: string): Element {
  const [el, ...more] = to(out, jid).filter((e) => e.name === 'presence' && codes(e).includes(110));
  assert.ok(el && more.length === 0, `one self-presence to ${jid}: ${to(out, jid).map((e) => e.toString()).join('\n')}`);
  return el;
}

export function userX(el: Element): Element | undefined {
  return el.getChild('x', NS_USER);
}

export function codes(el: Element): number[] {
  return (userX(el)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code));
}

export function item(el: Element): Record<string, string> {
  return (userX(el)?.getChild('item')?.attrs ?? {}) as Record<string, string>;
}

export function errorOf(el: Element): { type: string; condition: string } | undefined {
  const e = el.getChild('error');
  if (!e || el.attrs.type !== 'error') return undefined;
  const cond = e.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text');
  return { type: e.attrs.type as string, condition: cond?.name ?? '' };
}

export function assertError(out: Element[], jid: string, condition: string, type?: string): Element {
  const els = to(out, jid);
  const [reply, ...more] = els;
  assert.ok(reply && more.length === 0, `one reply to ${jid}: ${els.map((e) => e.toString()).join('\n')}`);
  const e = errorOf(reply);
  assert.ok(e, `an error: ${reply.toString()}`);
  assert.equal(e.condition, condition, reply.toString());
  if (type) assert.equal(e.type, type);
  return reply;
}
