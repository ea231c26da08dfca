// Privileged entities (XEP-0356 0.4.1, urn:xmpp:privilege:2) and namespace delegation in admin
// and client mode (XEP-0355 0.5, urn:xmpp:delegation:2), without I/O: the grant model as
// configured per managed host and component, the advertisements sent to a component when it
// connects, the check of every stanza a component sends (allowed, and what to do, or the error
// the XEP names), roster pushes and presence copies for the component, the bookkeeping of
// privileged iqs and delegated iqs in flight, disco nesting, and client-mode requests and grants.
// mod_privilege (doc/remote-admin.md) routes what this file decides.
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import type { StanzaErrorCondition, StanzaErrorType } from './errors.ts';
import { prep, split } from './jid.ts';
import { errorReply, NS } from './stanza.ts';

export const NS_PRIVILEGE = 'urn:xmpp:privilege:2';
export const NS_DELEGATION = 'urn:xmpp:delegation:2';
export const NS_FORWARD = 'urn:xmpp:forward:0';

/** roster and iq access (§4.1, §6.1). */
export type AccessType = 'none' | 'get' | 'set' | 'both';
export type MessageAccess = 'none' | 'outgoing';
export type PresenceAccess = 'none' | 'managed_entity' | 'roster';

/** What one component may do on behalf of one managed host, as configured. */
export interface PrivilegeGrant {
  roster?: AccessType;
  /** Roster pushes to the component (§4.4); default true with roster get/both, never otherwise. */
  rosterPush?: boolean;
  message?: MessageAccess;
  presence?: PresenceAccess;
  /** Namespaces of iq payloads the component may send on behalf of users (§6). */
  iq?: Readonly<Record<string, AccessType>>;
}

/** `privilegedEntities` under a virtual host: component JID → grant. */
export type PrivilegeConfig = Readonly<Record<string, PrivilegeGrant>>;

/** `delegations` under a virtual host: namespace → managing entity and filtering attributes (XEP-0355 §4.1). */
export type DelegationConfig = Readonly<Record<string, { jid: string; filtering?: readonly string[] }>>;

export interface EffectiveGrant {
  roster: AccessType;
  rosterPush: boolean;
  message: MessageAccess;
  presence: PresenceAccess;
  iq: ReadonlyMap<string, AccessType>;
}

const ACCESS: ReadonlySet<string> = new Set<AccessType>(['none', 'get', 'set', 'both']);
const MESSAGE: ReadonlySet<string> = new Set<MessageAccess>(['none', 'outgoing']);
const PRESENCE: ReadonlySet<string> = new Set<PresenceAccess>(['none', 'managed_entity', 'roster']);
const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

const canGet = (a: AccessType) => a === 'get' || a === 'both';
const canSet = (a: AccessType) => a === 'set' || a === 'both';

/** Two JIDs equal once prepared; an invalid or missing one equals nothing. */
function sameJid(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const pa = prep(a);
  return pa !== null && pa === prep(b);
}

function isDomain(jid: string): boolean {
  const p = prep(jid);
  if (p === null) return false;
  const parts = split(p);
  return parts.node === undefined && parts.resource === undefined;
}

/** Problems with a host's privilegedEntities (empty when fine); start-up and `cadence check` list them. */
export function checkPrivilegeConfig(cfg: PrivilegeConfig): string[] {
  const problems: string[] = [];
  for (const [component, g] of Object.entries(cfg)) {
    const at = `privilegedEntities['${component}']`;
    if (!isDomain(component)) problems.push(`${at}: the key must be a component's domain`);
    if (g.roster !== undefined && !ACCESS.has(g.roster)) problems.push(`${at}.roster: one of none, get, set, both`);
    if (g.message !== undefined && !MESSAGE.has(g.message)) problems.push(`${at}.message: one of none, outgoing`);
    if (g.presence !== undefined && !PRESENCE.has(g.presence)) problems.push(`${at}.presence: one of none, managed_entity, roster`);
    if (g.rosterPush !== undefined && typeof g.rosterPush !== 'boolean') problems.push(`${at}.rosterPush: a boolean`);
    const roster = g.roster ?? 'none';
    // §4.4: pushes MUST NOT be sent with none or set, so asking for them is a contradiction.
    if (g.rosterPush === true && !canGet(roster)) problems.push(`${at}.rosterPush: roster pushes need roster get or both`);
    // §7.4: the server MUST reject roster presence without read access to the roster.
    if (g.presence === 'roster' && !canGet(roster)) problems.push(`${at}.presence: 'roster' needs roster get or both`);
    for (const [ns, type] of Object.entries(g.iq ?? {})) {
      if (!ACCESS.has(type)) problems.push(`${at}.iq['${ns}']: one of none, get, set, both`);
      if (ns === NS_PRIVILEGE || ns === NS_DELEGATION) problems.push(`${at}.iq['${ns}']: privileges themselves cannot be granted`);
      if (ns === '') problems.push(`${at}.iq: empty namespace`);
    }
  }
  return problems;
}

/** Problems with a host's delegations (empty when fine). */
export function checkDelegationConfig(cfg: DelegationConfig): string[] {
  const problems: string[] = [];
  for (const [ns, d] of Object.entries(cfg)) {
    const at = `delegations['${ns}']`;
    // XEP-0355 §8 rule 5: this namespace MUST NOT be delegated.
    if (ns === NS_DELEGATION) problems.push(`${at}: ${NS_DELEGATION} cannot be delegated`);
    if (ns === '') problems.push(`${at}: empty namespace`);
    if (typeof d.jid !== 'string' || !isDomain(d.jid)) problems.push(`${at}.jid: the managing component's domain`);
    for (const a of d.filtering ?? []) if (!XML_NAME.test(a)) problems.push(`${at}.filtering: '${a}' is not an attribute name`);
  }
  return problems;
}

/** The grant with defaults applied: nothing not configured, pushes per §4.1. */
export function effectiveGrant(g: PrivilegeGrant | undefined): EffectiveGrant {
  const roster = g?.roster ?? 'none';
  return {
    roster,
    rosterPush: canGet(roster) ? (g?.rosterPush ?? true) : false,
    message: g?.message ?? 'none',
    presence: g?.presence ?? 'none',
    iq: new Map(Object.entries(g?.iq ?? {}).filter(([, t]) => t !== 'none')),
  };
}

// ---- advertisements ----------------------------------------------------------------------------

const newId = () => randomBytes(9).toString('base64url');

/**
 * The `<message><privilege/></message>` sent to the component once its stream is authenticated
 * (§4.2, §5.2, §6.2, §7.2): one perm per access, none included, so the component knows where it
 * stands; the iq perm lists the granted namespaces.
 */
export function privilegeAdvertisement(host: string, component: string, grant: EffectiveGrant, id = newId()): Element {
  const m = new Element('message', { from: host, to: component, id });
  const p = m.c('privilege', { xmlns: NS_PRIVILEGE });
  p.c('perm', { access: 'roster', type: grant.roster, ...(canGet(grant.roster) ? { push: String(grant.rosterPush) } : {}) });
  p.c('perm', { access: 'message', type: grant.message });
  p.c('perm', { access: 'presence', type: grant.presence });
  if (grant.iq.size) {
    const iq = p.c('perm', { access: 'iq' });
    for (const [ns, type] of grant.iq) iq.c('namespace', { ns, type });
  }
  return m;
}

/** The namespaces delegated to `component` (XEP-0355 §4.2); undefined when it manages none. */
export function delegationAdvertisement(host: string, component: string, cfg: DelegationConfig, id = newId()): Element | undefined {
  const mine = Object.entries(cfg).filter(([, d]) => sameJid(d.jid, component));
  if (!mine.length) return undefined;
  const m = new Element('message', { from: host, to: component, id });
  const d = m.c('delegation', { xmlns: NS_DELEGATION });
  for (const [ns, spec] of mine) {
    const el = d.c('delegated', { namespace: ns });
    for (const a of spec.filtering ?? []) el.c('attribute', { name: a });
  }
  return m;
}

// ---- checking what a component sends -----------------------------------------------------------

export interface PrivilegeError {
  type: StanzaErrorType;
  condition: StanzaErrorCondition;
  text: string;
}

export type PrivilegeDecision =
  /** Not a privileged request: the component's stanza is routed as usual. */
  | { kind: 'none' }
  /** Refused: answer the stanza with this error (a message error for messages, §5.1). */
  | { kind: 'refuse'; error: PrivilegeError }
  /** A roster get or set on `managed`'s roster: run it as the user's own roster request, reply from the user's bare JID (§4.3). */
  | { kind: 'roster'; managed: string; op: 'get' | 'set' }
  /** A message to send on behalf of the server or a user: route `message` (from already checked, §5.3). */
  | { kind: 'message'; message: Element }
  /** An iq to send on behalf of `managed` (§6.3): pass to PrivilegedIqs.send. */
  | { kind: 'iq'; managed: string; iq: Element };

const forbidden = (text: string): PrivilegeDecision => ({ kind: 'refuse', error: { type: 'auth', condition: 'forbidden', text } });

function elementChildren(el: Element): Element[] {
  return el.children.filter((c): c is Element => typeof c !== 'string');
}

/** The one element of `list`; undefined when it holds none or several. */
function single(list: readonly Element[]): Element | undefined {
  return list.length === 1 ? list[0] : undefined;
}

/** `to` as a prepared bare JID of a user of `host`, else undefined. */
function managedEntity(to: string | undefined, host: string): string | undefined {
  if (to === undefined) return undefined;
  const p = prep(to);
  if (p === null) return undefined;
  const parts = split(p);
  if (parts.node === undefined || parts.resource !== undefined || parts.host !== prep(host)) return undefined;
  return p;
}

/**
 * Check a stanza a component sent, for the host it is privileged on. The glue calls it for every
 * stanza of a component with a grant on that host, before routing. Account existence is the
 * glue's to check (a request for no such user is refused with forbidden too).
 */
export function checkComponentStanza(stanza: Element, grant: EffectiveGrant, host: string): PrivilegeDecision {
  const attrs = stanza.attrs as Record<string, string | undefined>;
  if (stanza.name === 'iq' && (attrs.type === 'get' || attrs.type === 'set')) {
    const payload = single(elementChildren(stanza));
    if (payload === undefined) return { kind: 'none' };
    const op = attrs.type;
    const managed = managedEntity(attrs.to, host);
    const wrapped = payload.getName() === 'privileged_iq' && payload.getNS() === NS_PRIVILEGE;
    // §6.3: a privileged iq to anything but a managed entity's bare JID is refused, not routed.
    if (wrapped && managed === undefined) return forbidden('A privileged iq goes to the bare JID of a managed entity');
    if (managed === undefined) return { kind: 'none' };
    if (payload.getName() === 'query' && payload.getNS() === NS.roster) {
      // §4.3: the server MUST check the right to get or set the roster, forbidden otherwise.
      if (op === 'get' ? !canGet(grant.roster) : !canSet(grant.roster)) return forbidden(`No roster ${op} privilege`);
      return { kind: 'roster', managed, op };
    }
    if (wrapped) return checkPrivilegedIq(payload, grant, managed, op);
    return { kind: 'none' };
  }
  if (stanza.name === 'message') {
    const priv = stanza.getChild('privilege', NS_PRIVILEGE);
    if (!priv || !sameJid(attrs.to, host)) return { kind: 'none' };
    if (grant.message !== 'outgoing') return forbidden('No message privilege');
    const fwd = priv.getChild('forwarded', NS_FORWARD);
    const msg = fwd && single(elementChildren(fwd).filter((c) => c.getName() === 'message'));
    if (!msg) return { kind: 'refuse', error: { type: 'modify', condition: 'bad-request', text: 'Expected one forwarded message' } };
    const ns = msg.attrs.xmlns as string | undefined;
    if (ns !== undefined && ns !== NS.client && ns !== NS.component) return forbidden('The forwarded message is not a jabber:client message');
    // §5.1: the forwarded 'from' MUST be a bare JID of the server: the host, or a user of it.
    const from = prep((msg.attrs.from as string | undefined) ?? '');
    if (from === null || (from !== prep(host) && managedEntity(from, host) === undefined)) return forbidden("The forwarded message's from must be this server or one of its users (bare JID)");
    const to = msg.attrs.to as string | undefined;
    if (to === undefined || prep(to) === null) return { kind: 'refuse', error: { type: 'modify', condition: 'jid-malformed', text: 'The forwarded message needs a valid to' } };
    const out = clone(msg) as Element;
    delete out.attrs.xmlns;
    out.attrs.from = from;
    return { kind: 'message', message: out };
  }
  return { kind: 'none' };
}

function checkPrivilegedIq(wrapper: Element, grant: EffectiveGrant, managed: string, op: 'get' | 'set'): PrivilegeDecision {
  const iq = single(elementChildren(wrapper));
  if (iq === undefined || iq.getName() !== 'iq') return forbidden('privileged_iq holds one iq');
  const attrs = iq.attrs as Record<string, string | undefined>;
  // §6.3, each condition answered with forbidden:
  if (attrs.xmlns !== NS.client) return forbidden('The encapsulated iq must be in jabber:client');
  if (attrs.type !== op) return forbidden('The encapsulated iq must have the type of the top-level iq');
  if (attrs.from !== undefined && prep(attrs.from) !== managed) return forbidden("The encapsulated iq's from must be the managed entity's bare JID");
  const payload = single(elementChildren(iq));
  if (payload === undefined) return forbidden('The encapsulated iq must have one payload');
  const ns = payload.getNS();
  const allowed = ns === undefined ? undefined : grant.iq.get(ns);
  if (!allowed || (op === 'get' ? !canGet(allowed) : !canSet(allowed))) return forbidden(`No iq ${op} privilege for ${ns ?? 'this payload'}`);
  if (attrs.id === undefined || attrs.id === '') return { kind: 'refuse', error: { type: 'modify', condition: 'bad-request', text: 'The encapsulated iq needs an id' } };
  if (attrs.to !== undefined && prep(attrs.to) === null) return { kind: 'refuse', error: { type: 'modify', condition: 'jid-malformed', text: "The encapsulated iq's to is not a JID" } };
  const out = clone(iq) as Element;
  delete out.attrs.xmlns;
  out.attrs.from = managed;
  return { kind: 'iq', managed, iq: out };
}

// ---- what the component receives ---------------------------------------------------------------

/**
 * A roster push for the component (§4.4): from the managed entity's bare JID, when the grant
 * has pushes; `item` is the pushed `<item/>` as sent to the user's resources.
 */
export function rosterPushFor(grant: EffectiveGrant, managed: string, component: string, item: Element, id = newId()): Element | undefined {
  if (!grant.rosterPush) return undefined;
  const iq = new Element('iq', { type: 'set', from: managed, to: component, id });
  iq.c('query', { xmlns: NS.roster }).cnode(clone(item) as Element);
  return iq;
}

/**
 * The copy of a presence for the component (§7.1, §7.4): initial presence (no type) and
 * unavailable only; a managed entity's own presence with managed_entity or roster access, a
 * roster contact's presence (that the managed entity receives) with roster access.
 */
export function presenceFor(grant: EffectiveGrant, presence: Element, source: 'managed-entity' | 'roster-contact', component: string): Element | undefined {
  const type = presence.attrs.type as string | undefined;
  if (type !== undefined && type !== 'unavailable') return undefined;
  const ok = source === 'managed-entity' ? grant.presence !== 'none' : grant.presence === 'roster';
  if (!ok || presence.attrs.from === undefined) return undefined;
  const copy = clone(presence) as Element;
  delete copy.attrs.xmlns;
  copy.attrs.to = component;
  return copy;
}

/**
 * One component's presence copies, each sent once (business rule 2: a contact in several
 * managed rosters is seen once), and what a component connecting later must be sent (rule 1).
 */
export class PresenceRelay {
  /** full JID → the last available presence sent. */
  private readonly sent = new Map<string, string>();

  /** Whether to send this copy (from a full JID); unavailable is sent once after an available one. */
  offer(copy: Element): boolean {
    const from = copy.attrs.from as string;
    // The content decides, not the envelope: a contact's presence reaches each managed entity
    // with its own 'to' and often its own id, and is still one presence (rule 2).
    const key = copy.children.map((c) => c.toString()).join('');
    if (copy.attrs.type === 'unavailable') {
      return this.sent.delete(from);
    }
    if (this.sent.get(from) === key) return false;
    this.sent.set(from, key);
    return true;
  }

  /** Forget everything (the component disconnected: on reconnect it is sent the current presences again). */
  reset(): void {
    this.sent.clear();
  }
}

// ---- privileged iqs in flight (§6.3) -----------------------------------------------------------

interface PendingIq {
  component: string;
  outerId: string;
  managed: string;
  innerId: string;
  innerTo: string | undefined;
  expires: number;
}

/**
 * The iqs a component sent on behalf of users, waiting for their responses. The encapsulated iq
 * goes out with an id of the server's (responses addressed to the user's bare JID cannot then be
 * confused with the server's own iqs from that JID); the response goes back to the component
 * inside `<privilege><forwarded/></privilege>` with the component's id restored.
 */
export class PrivilegedIqs {
  private readonly pending = new Map<string, PendingIq>();

  constructor(private readonly opts: { now?: () => number; timeoutMs?: number; newId?: () => string; max?: number } = {}) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** The stanza to route for an accepted request, or a refusal when too many are in flight. */
  send(component: string, outer: Element, decision: Extract<PrivilegeDecision, { kind: 'iq' }>): { ok: true; stanza: Element } | { ok: false; error: PrivilegeError } {
    if (this.pending.size >= (this.opts.max ?? 1000)) return { ok: false, error: { type: 'wait', condition: 'resource-constraint', text: 'Too many privileged iqs in flight' } };
    let id = (this.opts.newId ?? newId)();
    while (this.pending.has(id)) id = (this.opts.newId ?? newId)();
    const out = clone(decision.iq) as Element;
    const innerId = out.attrs.id as string;
    out.attrs.id = id;
    this.pending.set(id, {
      component,
      outerId: (outer.attrs.id as string | undefined) ?? '',
      managed: decision.managed,
      innerId,
      innerTo: out.attrs.to as string | undefined,
      expires: this.now + (this.opts.timeoutMs ?? 60_000),
    });
    return { ok: true, stanza: out };
  }

  /**
   * A result or error addressed to a managed entity's bare JID: if it answers a privileged iq,
   * the reply for the component (the glue then does not process the response otherwise).
   */
  response(iq: Element): Element | undefined {
    const a = iq.attrs as Record<string, string | undefined>;
    if (iq.name !== 'iq' || (a.type !== 'result' && a.type !== 'error') || a.id === undefined) return undefined;
    const p = this.pending.get(a.id);
    if (!p || prep(a.to ?? '') !== p.managed) return undefined;
    // The response must come from where the request went (RFC 6120 §8.2.3); an iq to no 'to'
    // is answered by the account itself.
    const expectedFrom = prep(p.innerTo ?? p.managed);
    if (a.from !== undefined && prep(a.from) !== expectedFrom) return undefined;
    this.pending.delete(a.id);
    const copy = clone(iq) as Element;
    copy.attrs.id = p.innerId;
    copy.attrs.xmlns = NS.client;
    const reply = new Element('iq', { type: 'result', from: p.managed, to: p.component, id: p.outerId });
    reply.c('privilege', { xmlns: NS_PRIVILEGE }).c('forwarded', { xmlns: NS_FORWARD }).cnode(copy);
    return reply;
  }

  /** Requests that timed out: the errors to send to their components. */
  expire(): Element[] {
    const now = this.now;
    const out: Element[] = [];
    for (const [id, p] of this.pending) {
      if (p.expires > now) continue;
      this.pending.delete(id);
      const iq = new Element('iq', { type: 'error', from: p.managed, to: p.component, id: p.outerId });
      iq.c('error', { type: 'wait' }).c('remote-server-timeout', { xmlns: NS.stanzas });
      out.push(iq);
    }
    return out;
  }

  /** Drop a disconnected component's requests. */
  forget(component: string): void {
    for (const [id, p] of this.pending) if (p.component === component) this.pending.delete(id);
  }

  get size(): number {
    return this.pending.size;
  }
}

// ---- namespace delegation (XEP-0355 admin mode) ------------------------------------------------

export interface DelegationMatch {
  namespace: string;
  component: string;
}

/**
 * Whether an iq is delegated (§4.3): a get or set, to the host (or no 'to') or to a user's bare
 * JID of the host — never a full JID —, whose payload's namespace is delegated and carries every
 * filtering attribute, and not sent by the managing entity itself (§4.3.1). Otherwise the server
 * handles it as if nothing were delegated.
 */
export function matchDelegation(iq: Element, cfg: DelegationConfig, host: string): DelegationMatch | undefined {
  const a = iq.attrs as Record<string, string | undefined>;
  if (iq.name !== 'iq' || (a.type !== 'get' && a.type !== 'set')) return undefined;
  if (a.to !== undefined && !sameJid(a.to, host) && managedEntity(a.to, host) === undefined) return undefined;
  const payload = elementChildren(iq)[0];
  const ns = payload?.getNS();
  if (!payload || ns === undefined) return undefined;
  const d = cfg[ns];
  if (!d) return undefined;
  const fromDomain = a.from !== undefined ? split(prep(a.from) ?? '').host : undefined;
  if (fromDomain !== undefined && fromDomain === prep(d.jid)) return undefined;
  for (const attr of d.filtering ?? []) if (payload.attrs[attr] === undefined) return undefined;
  return { namespace: ns, component: prep(d.jid) as string };
}

/** The disco#info node under which a managing entity reports a delegated namespace's features (§7.2). */
export function delegationDiscoNode(namespace: string, forBareJid = false): string {
  return `${NS_DELEGATION}${forBareJid ? ':bare:' : '::'}${namespace}`;
}

/**
 * Nest a managing entity's disco#info answer for a delegated namespace (its `query` for the node
 * `delegationDiscoNode(namespace)`, or undefined when it has none or is away) into the server's
 * own answer (§7.2): the server's features of that namespace (`ns`, `ns#…`) give way, the
 * managing entity's identities, features and extension forms (XEP-0128) are added once each.
 */
export function nestDiscoInfo(query: Element, namespace: string, nested: Element | undefined): void {
  const internal = (c: Element | string) => typeof c !== 'string' && c.getName() === 'feature'
    && (c.attrs.var === namespace || String(c.attrs.var ?? '').startsWith(`${namespace}#`));
  query.children = query.children.filter((c) => !internal(c));
  if (!nested) return;
  const have = new Set(elementChildren(query).map(discoKey));
  for (const c of elementChildren(nested)) {
    const name = c.getName();
    const form = name === 'x' && c.getNS() === 'jabber:x:data';
    if (name !== 'identity' && name !== 'feature' && !form) continue;
    const key = discoKey(c);
    if (have.has(key)) continue;
    have.add(key);
    const copy = clone(c) as Element;
    copy.parent = query;
    query.children.push(copy);
  }
}

function discoKey(el: Element): string {
  const a = el.attrs as Record<string, string | undefined>;
  switch (el.getName()) {
    case 'feature':
      return `f ${a.var ?? ''}`;
    case 'identity':
      return `i ${a.category ?? ''}/${a.type ?? ''}/${a['xml:lang'] ?? ''}/${a.name ?? ''}`;
    default:
      return `x ${el.toString()}`;
  }
}

interface PendingDelegation {
  component: string;
  original: Element;
  expires: number;
}

/** Delegated iqs in flight: forwarding them to the managing entity and checking its answers. */
export class Delegations {
  private readonly pending = new Map<string, PendingDelegation>();

  constructor(private readonly opts: { now?: () => number; timeoutMs?: number; newId?: () => string; max?: number } = {}) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * The iq set to send to the managing entity (§4.3), or the error for the requester when too
   * many are in flight. When the component is not connected the glue answers service-unavailable
   * itself (§4.3 N.B.1) — `unavailable(iq)`.
   */
  forward(iq: Element, match: DelegationMatch, host: string): { ok: true; stanza: Element } | { ok: false; reply: Element } {
    if (this.pending.size >= (this.opts.max ?? 1000)) return { ok: false, reply: errorReply(iq, 'wait', 'resource-constraint') };
    let id = (this.opts.newId ?? newId)();
    while (this.pending.has(id)) id = (this.opts.newId ?? newId)();
    this.pending.set(id, { component: match.component, original: iq, expires: this.now + (this.opts.timeoutMs ?? 60_000) });
    const copy = clone(iq) as Element;
    copy.attrs.xmlns = NS.client;
    const out = new Element('iq', { type: 'set', from: host, to: match.component, id });
    out.c('delegation', { xmlns: NS_DELEGATION }).c('forwarded', { xmlns: NS_FORWARD }).cnode(copy);
    return { ok: true, stanza: out };
  }

  /** service-unavailable for a delegated request whose managing entity is away (§4.3 N.B.1). */
  static unavailable(iq: Element): Element {
    return errorReply(iq, 'cancel', 'service-unavailable');
  }

  /**
   * The managing entity's answer (an iq result or error to the host): the stanza for the original
   * requester — the decapsulated result, or service-unavailable when the answer is an error or
   * does not match (§4.3: wrong to, from, id or type). `misbehaved` says the answer was bad (the
   * glue MAY close the component's stream). undefined when the iq answers nothing pending.
   */
  reply(answer: Element): { to: Element; misbehaved: boolean } | undefined {
    const a = answer.attrs as Record<string, string | undefined>;
    if (answer.name !== 'iq' || (a.type !== 'result' && a.type !== 'error') || a.id === undefined) return undefined;
    const p = this.pending.get(a.id);
    if (!p || prep(a.from ?? '') !== p.component) return undefined;
    this.pending.delete(a.id);
    const orig = p.original.attrs as Record<string, string | undefined>;
    const unavailable = (misbehaved: boolean) => ({ to: Delegations.unavailable(p.original), misbehaved });
    if (a.type === 'error') return unavailable(false); // N.B.2
    const inner = answer.getChild('delegation', NS_DELEGATION)?.getChild('forwarded', NS_FORWARD);
    const iq = inner && single(elementChildren(inner).filter((c) => c.getName() === 'iq'));
    if (!iq) return unavailable(true);
    const r = iq.attrs as Record<string, string | undefined>;
    // The result answers as whom the request was addressed to: a user's bare JID, or the host
    // (a request without 'to', and the answer from the component went to the host).
    const replyFrom = orig.to ?? a.to ?? '';
    const ok = r.type === 'result'
      && r.id === orig.id
      && sameJid(r.to, orig.from)
      && (r.from === undefined || sameJid(r.from, replyFrom));
    if (!ok) return unavailable(true);
    const out = clone(iq) as Element;
    delete out.attrs.xmlns;
    out.attrs.to = orig.from as string;
    if (replyFrom) out.attrs.from = replyFrom;
    else delete out.attrs.from;
    return { to: out, misbehaved: false };
  }

  /** Requests the managing entity did not answer in time: service-unavailable to each requester. */
  expire(): Element[] {
    const now = this.now;
    const out: Element[] = [];
    for (const [id, p] of this.pending) {
      if (p.expires > now) continue;
      this.pending.delete(id);
      out.push(Delegations.unavailable(p.original));
    }
    return out;
  }

  /** The managing entity disconnected: service-unavailable for everything it had pending. */
  drop(component: string): Element[] {
    const out: Element[] = [];
    for (const [id, p] of this.pending) {
      if (p.component !== prep(component)) continue;
      this.pending.delete(id);
      out.push(Delegations.unavailable(p.original));
    }
    return out;
  }

  get size(): number {
    return this.pending.size;
  }
}

// ---- namespace delegation, client mode (XEP-0355 §5) -------------------------------------------

/** A managing entity's request to manage namespaces of one user (§5.1), as parsed. */
export interface ClientDelegationRequest {
  /** The managing entity (the request's 'from'). */
  managing: string;
  /** The managed entity's bare JID (the query's 'to'). */
  user: string;
  namespaces: string[];
}

/**
 * Read a client-mode delegation request (§5.1): `<query xmlns='urn:xmpp:delegation:2'
 * to='user@host'><delegate namespace='…'/>…</query>`, 'to' a bare JID of a user of `host`, at
 * least one namespace, never urn:xmpp:delegation:2 itself (business rule 5: forbidden).
 */
export function parseClientDelegationRequest(iq: Element, host: string): ClientDelegationRequest | PrivilegeError {
  const from = prep((iq.attrs.from as string | undefined) ?? '');
  const query = iq.getChild('query', NS_DELEGATION);
  if (!query || from === null) return { type: 'modify', condition: 'bad-request', text: 'Expected a delegation query from an entity' };
  const user = managedEntity(query.attrs.to as string | undefined, host);
  if (user === undefined) return { type: 'modify', condition: 'bad-request', text: "The query's 'to' must be the bare JID of a user of this server" };
  if (split(from).host === host && split(from).node !== undefined) return { type: 'cancel', condition: 'not-allowed', text: 'A user of this server cannot manage namespaces' };
  const namespaces: string[] = [];
  for (const d of query.getChildren('delegate')) {
    const ns = d.attrs.namespace as string | undefined;
    if (!ns) return { type: 'modify', condition: 'bad-request', text: 'A delegate element needs a namespace' };
    if (ns === NS_DELEGATION || ns.startsWith(`${NS_DELEGATION}:`)) return { type: 'auth', condition: 'forbidden', text: `${NS_DELEGATION} cannot be delegated` };
    if (ns === NS_PRIVILEGE) return { type: 'auth', condition: 'forbidden', text: `${NS_PRIVILEGE} cannot be delegated` };
    if (!namespaces.includes(ns)) namespaces.push(ns);
  }
  if (!namespaces.length) return { type: 'modify', condition: 'bad-request', text: 'No namespace requested' };
  return { managing: from, user, namespaces };
}

/**
 * The question to the user (§5.1): a message with a warning body and a form, FORM_TYPE
 * urn:xmpp:delegation:2, the server's challenge hidden, one list-single per namespace (its var
 * the namespace) defaulting to 0 (refused).
 */
export function clientDelegationForm(host: string, to: string, request: ClientDelegationRequest, challenge: string, id = newId()): Element {
  const m = new Element('message', { from: host, to, id });
  m.c('body').t(`${request.managing} wants to manage a feature normally managed by the server. Do you allow it to manage the following features?\n\n`
    + 'Be careful! Handing a feature to another entity is a serious thing: allow it only if you trust that entity.');
  const x = m.c('x', { xmlns: 'jabber:x:data', type: 'form' });
  x.c('title').t('Delegation request');
  x.c('instructions').t(`${request.managing} wants to manage the following features. Do you allow it?`);
  x.c('field', { type: 'hidden', var: 'FORM_TYPE' }).c('value').t(NS_DELEGATION);
  x.c('field', { type: 'hidden', var: 'challenge' }).c('value').t(challenge);
  for (const ns of request.namespaces) {
    const f = x.c('field', { type: 'list-single', var: ns, label: `Manage ${ns}` });
    f.c('value').t('0');
    f.c('option', { label: 'No' }).c('value').t('0');
    f.c('option', { label: 'Yes' }).c('value').t('1');
  }
  return m;
}

/** A user's answer to a delegation form (§5.1): its challenge and the namespaces allowed; undefined when the message holds none. */
export function parseClientDelegationAnswer(message: Element): { challenge: string; allowed: string[]; cancelled: boolean; ours: boolean } | undefined {
  for (const x of message.getChildren('x', 'jabber:x:data')) {
    const type = (x.attrs.type as string | undefined) ?? 'form';
    if (type !== 'submit' && type !== 'cancel') continue;
    const values = new Map<string, string[]>();
    for (const f of x.getChildren('field')) {
      const v = f.attrs.var as string | undefined;
      if (v !== undefined && !values.has(v)) values.set(v, f.getChildren('value').map((e) => e.getText()));
    }
    const challenge = values.get('challenge')?.[0];
    // Another form with a challenge (a CAPTCHA, XEP-0158) is not ours; §5.1's own example submits an empty FORM_TYPE.
    const formType = values.get('FORM_TYPE')?.[0] ?? '';
    if (challenge === undefined || (formType !== '' && formType !== NS_DELEGATION)) continue;
    const allowed = [...values].filter(([v, vals]) => v !== 'challenge' && v !== 'FORM_TYPE' && (vals[0] === '1' || vals[0] === 'true')).map(([v]) => v);
    return { challenge, allowed: type === 'cancel' ? [] : allowed, cancelled: type === 'cancel', ours: formType === NS_DELEGATION };
  }
  return undefined;
}

/** What the managing entity is told (§5.1, business rule 3): the namespaces `user` delegates to it now (possibly none). */
export function clientDelegationNotice(host: string, managing: string, user: string, namespaces: Iterable<string>, id = newId()): Element {
  const m = new Element('message', { from: host, to: managing, id });
  const d = m.c('delegation', { xmlns: NS_DELEGATION, to: user });
  for (const ns of namespaces) d.c('delegated', { namespace: ns });
  return m;
}

interface PendingClientRequest {
  request: ClientDelegationRequest;
  expires: number;
}

interface ClientGrant {
  managing: string;
  /** The user's session that allowed it: the grant ends with it (business rule 2, no ad-hoc configuration). */
  session: string;
}

/**
 * Client-mode delegations of one host: requests waiting for the user's answer (by challenge)
 * and the namespaces users delegated, each to one managing entity, for the session that
 * allowed it (the server offers no configuration command, so grants are not kept across
 * sessions, business rule 2).
 */
export class ClientDelegations {
  private readonly pending = new Map<string, PendingClientRequest>();
  /** user bare JID → namespace → grant. */
  private readonly grants = new Map<string, Map<string, ClientGrant>>();

  constructor(private readonly opts: { now?: () => number; timeoutMs?: number; newId?: () => string; max?: number } = {}) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Remember a request; the challenge to put in the form, or undefined when too many wait. */
  ask(request: ClientDelegationRequest): string | undefined {
    this.expire();
    if (this.pending.size >= (this.opts.max ?? 1000)) return undefined;
    let challenge = (this.opts.newId ?? newId)();
    while (this.pending.has(challenge)) challenge = (this.opts.newId ?? newId)();
    this.pending.set(challenge, { request, expires: this.now + (this.opts.timeoutMs ?? 10 * 60_000) });
    return challenge;
  }

  /**
   * The user's answer, from `fromFull` (one of the user's resources): the namespaces granted now
   * (only those requested), or undefined when the challenge is unknown, expired or not the
   * user's. A namespace the user had delegated elsewhere moves to this managing entity; the
   * previous one is returned in `revoked` to be told.
   */
  answer(fromFull: string, challenge: string, allowed: readonly string[]): { request: ClientDelegationRequest; granted: string[]; revoked: { managing: string; user: string }[] } | undefined {
    this.expire();
    const p = this.pending.get(challenge);
    const user = bareOf(fromFull);
    if (!p || user !== p.request.user) return undefined;
    this.pending.delete(challenge);
    const granted = p.request.namespaces.filter((ns) => allowed.includes(ns));
    const mine = this.grants.get(user) ?? new Map<string, ClientGrant>();
    const revoked = new Set<string>();
    for (const ns of granted) {
      const before = mine.get(ns);
      if (before && before.managing !== p.request.managing) revoked.add(before.managing);
      mine.set(ns, { managing: p.request.managing, session: fromFull });
    }
    if (mine.size) this.grants.set(user, mine);
    return { request: p.request, granted, revoked: [...revoked].map((managing) => ({ managing, user })) };
  }

  /** Everything `user` delegates: namespace → managing entity. */
  grantsOf(user: string): [string, string][] {
    return [...(this.grants.get(user) ?? [])].map(([ns, g]) => [ns, g.managing]);
  }

  /** The namespaces `user` delegates to `managing`. */
  delegatedTo(user: string, managing: string): string[] {
    return [...(this.grants.get(user) ?? [])].filter(([, g]) => g.managing === managing).map(([ns]) => ns);
  }

  /** The session `fullJid` ended: its grants end; the managing entities to tell, with their user. */
  sessionEnded(fullJid: string): { managing: string; user: string }[] {
    const user = bareOf(fullJid);
    const mine = this.grants.get(user);
    if (!mine) return [];
    const told = new Set<string>();
    for (const [ns, g] of mine) {
      if (g.session !== fullJid) continue;
      mine.delete(ns);
      told.add(g.managing);
    }
    if (!mine.size) this.grants.delete(user);
    return [...told].map((managing) => ({ managing, user }));
  }

  /**
   * Whether an iq is delegated in client mode (§5.2): to the server (no 'to' or the host) from
   * one of the managed entity's resources, or to the managed entity's bare JID from anyone but
   * the managing entity — its payload's namespace delegated by that user.
   */
  match(iq: Element, host: string): DelegationMatch | undefined {
    const a = iq.attrs as Record<string, string | undefined>;
    if (iq.name !== 'iq' || (a.type !== 'get' && a.type !== 'set')) return undefined;
    const ns = elementChildren(iq)[0]?.getNS();
    if (ns === undefined || a.from === undefined) return undefined;
    const from = prep(a.from);
    if (from === null) return undefined;
    let user: string | undefined;
    if (a.to === undefined || sameJid(a.to, host)) user = bareOf(from);
    else user = managedEntity(a.to, host);
    const g = user === undefined ? undefined : this.grants.get(user)?.get(ns);
    if (!g) return undefined;
    // To the server: only the managed entity's own requests; to its bare JID: anyone but the managing entity.
    if (a.to === undefined || sameJid(a.to, host)) return bareOf(from) === user ? { namespace: ns, component: g.managing } : undefined;
    return sameJid(bareOf(from), g.managing) || sameJid(from, g.managing) ? undefined : { namespace: ns, component: g.managing };
  }

  private expire(): void {
    const now = this.now;
    for (const [c, p] of this.pending) if (p.expires <= now) this.pending.delete(c);
  }
}

function bareOf(jid: string): string {
  const p = split(jid);
  return p.node === undefined ? (p.host ?? '') : `${p.node}@${p.host ?? ''}`;
}
