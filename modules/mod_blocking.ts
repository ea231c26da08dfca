//% requires_core_features: sessions-v1, stanza-events-v1, storage-map, module-session-state, user-deleted-event, events-async, module-serial
// Blocking Command (XEP-0191). Each user's blocklist is a map store (user → blocked JID → true),
// written durably before the result, then pushed to every resource of the user that retrieved
// the blocklist. Matching follows XEP-0191 §6: an item user@domain/resource matches only that
// address, user@domain any of its resources, domain/resource only that address, domain the domain
// itself and every address at it. A user's own JIDs and the user's own server are never blocked.
//
// Effects, hooked above mod_message / mod_presence / mod_iq so blocked stanzas never reach them:
//  - outbound (pre-<kind>/<dest> on the user's host): a message or iq get/set to a blocked JID gets
//    not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>; presence is dropped, except
//    unsubscribe/unsubscribed so the user can still end a subscription with a blocked contact;
//  - inbound (<kind>/<bare|full> on the user's host): presence from a blocked JID is dropped,
//    message and iq get/set are answered service-unavailable, iq result/error dropped: the user
//    looks offline. Stanzas the server sends on behalf of a local user (presence broadcasts,
//    probe answers) are checked against that user's blocklist here too;
//  - blocking sends unavailable presence from each available resource to the newly blocked
//    contacts that receive the user's presence, and (for local contacts the user is subscribed
//    to) unavailable from their resources to the user's; unblocking sends the current presence
//    again and probes the contact.
// Blocklists are cached: loaded when a user authenticates, or on demand (the handler returns a
// Promise: the stanza waits for the load, then goes on or is refused), at most `cacheSize` of
// users without a connected resource. One user's blocklist changes run in order (module.serial).
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { attrsOf, bare as bareOf, defineModule, errorReply, iqPayload, iqResult, isBound, mustNotReplyWithError, prep, split, StanzaError, type BoundSession, type MapStore, type ModuleApi, type Session, type Stanza, type StanzaEvent } from '../core/api.ts';

const NS = 'urn:xmpp:blocking';
const NS_ERRORS = 'urn:xmpp:blocking:errors';
/** Above mod_presence (0), mod_message and mod_iq (-10). */
const PRIORITY = 100;
/** Asked on the sender's host: does the local user `username` block `to`? (true, or undefined). */
const OUTBOUND_CHECK = 'blocking/outbound-blocked';

declare module '../core/api.ts' {
  interface HostEvents {
    /** Asked on the sender's host: does the local user `username` block `to`? (true, or undefined). */
    'blocking/outbound-blocked': OutboundCheckEvent;
  }
}

const options = {
  maxItems: { type: 'integer', description: 'Most JIDs a blocklist may hold', default: 1000, min: 1 },
  cacheSize: { type: 'integer', description: 'Blocklists kept in memory for users without a connected resource', default: 1000, min: 0 },
} as const;
type Options = typeof options;

export interface OutboundCheckEvent {
  username: string;
  to: string;
}

interface BlockingState {
  /** The resource retrieved the blocklist: it gets pushes. */
  requested: boolean;
}

// ---- JID matching (XEP-0191 §6) --------------------------------------------------------------------

/** The blocklist items that match the (prepared) address `jid`. */
function matchingItems(jid: string): string[] {
  const { node, host, resource } = split(jid);
  const items: string[] = [];
  if (!host) return items;
  if (node && resource) items.push(`${node}@${host}/${resource}`);
  if (node) items.push(`${node}@${host}`);
  if (!node && resource) items.push(`${host}/${resource}`);
  items.push(host);
  return items;
}

function isBlocked(list: ReadonlySet<string>, jid: string): boolean {
  if (list.size === 0) return false;
  for (const item of matchingItems(jid)) if (list.has(item)) return true;
  return false;
}

// ---- the cache of blocklists ---------------------------------------------------------------------------

class Blocklists {
  private readonly lists = new Map<string, Set<string>>();
  private readonly loading = new Map<string, Promise<Set<string>>>();

  constructor(
    private readonly store: MapStore,
    /** Users whose list stays cached (they have a connected resource). */
    private readonly pinned: (username: string) => boolean,
    private readonly limit: () => number,
  ) {}

  peek(username: string): Set<string> | undefined {
    return this.lists.get(username);
  }

  load(username: string): Promise<Set<string>> {
    const cached = this.lists.get(username);
    if (cached) return Promise.resolve(cached);
    let p = this.loading.get(username);
    if (!p) {
      p = this.store.getAll<boolean>(username).then(
        (entries) => {
          this.loading.delete(username);
          // A write or a deletion may have settled the list meanwhile.
          const now = this.lists.get(username);
          if (now) return now;
          const list = new Set(entries.keys());
          this.lists.set(username, list);
          this.evict();
          return list;
        },
        (err: unknown) => {
          this.loading.delete(username);
          throw err;
        },
      );
      this.loading.set(username, p);
    }
    return p;
  }

  drop(username: string): void {
    this.lists.delete(username);
  }

  private evict(): void {
    if (this.lists.size <= this.limit()) return;
    let unpinned = 0;
    for (const u of this.lists.keys()) if (!this.pinned(u)) unpinned++;
    const excess = unpinned - this.limit();
    if (excess <= 0) return;
    let n = 0;
    for (const u of [...this.lists.keys()]) {
      if (n >= excess) break;
      if (this.pinned(u)) continue;
      this.lists.delete(u);
      n++;
    }
  }
}

function isSubscriptionEnd(stanza: Element): boolean {
  const type = attrsOf(stanza).type;
  return stanza.name === 'presence' && (type === 'unsubscribe' || type === 'unsubscribed');
}

/** XEP-0191 §3.3: not-acceptable with the blocked application condition. */
function blockedError(stanza: Element): Element {
  const reply = errorReply(stanza, 'cancel', 'not-acceptable');
  reply.getChild('error')!.cnode(new Element('blocked', { xmlns: NS_ERRORS }));
  return reply;
}

type ParsedItems = { jids: string[] } | { condition: 'bad-request' | 'jid-malformed' | 'not-acceptable'; text: string };

/** The items of a block (at least one, never the user's own JID) or unblock (none: everyone). */
function parseItems(payload: Element, ownBare: string, block: boolean): ParsedItems {
  const jids: string[] = [];
  for (const child of payload.children) {
    if (typeof child === 'string' || child.name !== 'item') continue;
    const raw = attrsOf(child).jid;
    if (raw === undefined) return { condition: 'bad-request', text: "An item has no 'jid'" };
    const jid = prep(raw);
    if (jid === null) return { condition: 'jid-malformed', text: `Invalid JID '${raw}'` };
    if (block && bareOf(jid) === ownBare) return { condition: 'not-acceptable', text: 'You cannot block yourself' };
    if (!jids.includes(jid)) jids.push(jid);
  }
  if (block && jids.length === 0) return { condition: 'bad-request', text: 'Give at least one <item/>' };
  return { jids };
}

export default defineModule({
  description: 'Blocking Command (XEP-0191)',
  options,
  load(module: ModuleApi<Options>) {
    const host = module.host;
    const store = module.storage.map();
    const lists = new Blocklists(store, (u) => module.sessions.sessionsOf(host, u).length > 0, () => module.option('cacheSize'));
    const state = (session: Session) => module.state<BlockingState>(session, () => ({ requested: false }));
    /** Presence this module sends on a block (from the user to the newly blocked contact). */
    const ownNotices = new WeakSet<Element>();

    module.addFeature(NS);

    // Load the list as soon as the user authenticates: stanzas then never wait for it.
    module.hook('authentication-success', ({ session }) => {
      if (session.host !== host || !session.username) return;
      lists.load(session.username).catch((err: unknown) => module.log.error('cannot load the blocklist of %s@%s: %s', session.username, host, err));
    });

    // For other modules (offline delivery, archives, MUC…): does `username` block `jid`?
    module.export('isBlocked', async (username: string, jid: string): Promise<boolean> => {
      const p = prep(jid);
      return p !== null && isBlocked(await lists.load(username), p);
    }, 'Whether USER blocks JID (XEP-0191 matching)');

    // Messages stored before the sender was blocked are not delivered afterwards.
    module.hook('offline-message/deliver', async ({ username, stanza }) => {
      const from = prep(stanza.attrs.from ?? '');
      return from !== null && isBlocked(await lists.load(username), from) ? true : undefined;
    });

    module.hook(OUTBOUND_CHECK, ({ username, to }) => {
      const list = lists.peek(username);
      return list && isBlocked(list, to) ? true : undefined;
    });

    // -- protocol --------------------------------------------------------------------------------------

    const own = (origin: Session): origin is BoundSession => isBound(origin) && origin.host === host;

    module.hook(`iq-get/self/${NS}:blocklist`, async ({ origin, stanza }) => {
      if (!own(origin)) return undefined;
      const list = await lists.load(origin.username);
      const el = new Element('blocklist', { xmlns: NS });
      for (const jid of list) el.c('item', { jid });
      state(origin).requested = true;
      origin.send(iqResult(stanza, el));
      return true;
    });

    const push = (username: string, command: 'block' | 'unblock', jids: string[] | 'all') => {
      for (const s of module.sessions.sessionsOf(host, username)) {
        if (!module.peekState<BlockingState>(s)?.requested) continue;
        const el = new Element(command, { xmlns: NS });
        if (jids !== 'all') for (const jid of jids) el.c('item', { jid });
        const iq = new Element('iq', { type: 'set', id: `block-push-${Math.random().toString(36).slice(2, 10)}`, to: s.full_jid });
        iq.cnode(el);
        s.send(iq);
      }
    };

    module.hook(`iq-set/self/${NS}:block`, ({ origin, stanza }) => {
      if (!own(origin)) return undefined;
      const username = origin.username;
      const parsed = parseItems(iqPayload(stanza)!, `${username}@${host}`, true);
      if ('condition' in parsed) throw new StanzaError('modify', parsed.condition, parsed.text);
      return module.serial(username, async () => {
        const list = await lists.load(username);
        const added = parsed.jids.filter((j) => !list.has(j));
        if (list.size + added.length > module.option('maxItems')) {
          throw new StanzaError('wait', 'resource-constraint', `A blocklist holds at most ${module.option('maxItems')} JIDs`);
        }
        const before = new Set(list);
        if (added.length) await store.setKeys(username, Object.fromEntries(added.map((j) => [j, true])));
        for (const j of added) list.add(j);
        origin.send(iqResult(stanza));
        if (!added.length) return true;
        module.log('%s@%s blocked %s', username, host, added.join(', '));
        push(username, 'block', added);
        onBlock(username, added, before);
        return true;
      });
    });

    module.hook(`iq-set/self/${NS}:unblock`, ({ origin, stanza }) => {
      if (!own(origin)) return undefined;
      const username = origin.username;
      const parsed = parseItems(iqPayload(stanza)!, `${username}@${host}`, false);
      if ('condition' in parsed) throw new StanzaError('modify', parsed.condition, parsed.text);
      const all = parsed.jids.length === 0;
      return module.serial(username, async () => {
        const list = await lists.load(username);
        const removed = all ? [...list] : parsed.jids.filter((j) => list.has(j));
        if (all && removed.length) await store.clear(username);
        else if (removed.length) await store.setKeys(username, Object.fromEntries(removed.map((j) => [j, undefined])));
        for (const j of removed) list.delete(j);
        origin.send(iqResult(stanza));
        if (!removed.length) return true;
        module.log('%s@%s unblocked %s', username, host, all ? 'everyone' : removed.join(', '));
        push(username, 'unblock', all ? 'all' : removed);
        onUnblock(username, removed, list);
        return true;
      });
    });

    // -- presence effects of (un)blocking (XEP-0191 §3.3, §3.4) -----------------------------------------

    /** Roster contacts (bare JIDs, or the blocked full JID itself) an item covers, with the item's subscription. */
    const coveredContacts = (username: string, items: string[]): { target: string; contact: string; subscription: string }[] => {
      const roster = module.sessions.roster(host, username);
      if (!roster) return [];
      const out: { target: string; contact: string; subscription: string }[] = [];
      const seen = new Set<string>();
      for (const item of items) {
        const single = new Set([item]);
        const itemBare = bareOf(item);
        for (const [contact, ri] of roster.items) {
          let target: string | undefined;
          if (isBlocked(single, contact)) target = contact;
          else if (itemBare === contact && item.includes('/')) target = item; // a full JID of the contact
          if (target === undefined || seen.has(target)) continue;
          seen.add(target);
          out.push({ target, contact, subscription: ri.subscription });
        }
      }
      return out;
    };

    const onBlock = (username: string, added: string[], before: ReadonlySet<string>) => {
      const available = module.sessions.availableSessions(host, username);
      if (!available.length) return;
      const addedSet = new Set(added);
      for (const { target, contact, subscription } of coveredContacts(username, added)) {
        if (isBlocked(before, target)) continue; // it already saw the user offline
        if (subscription === 'from' || subscription === 'both') {
          for (const r of available) {
            const p = new Element('presence', { from: r.full_jid, to: target, type: 'unavailable' });
            ownNotices.add(p);
            module.send(p);
          }
        }
        if (subscription === 'to' || subscription === 'both') {
          // The user stops seeing the contact: unavailable from its (local) resources, if any.
          const { node, host: cHost } = split(contact);
          if (!node || !cHost) continue;
          for (const s of module.sessions.availableSessions(cHost, node)) {
            if (!isBlocked(addedSet, s.full_jid)) continue;
            for (const r of available) r.send(new Element('presence', { from: s.full_jid, to: r.full_jid, type: 'unavailable' }));
          }
        }
      }
    };

    const onUnblock = (username: string, removed: string[], after: ReadonlySet<string>) => {
      const available = module.sessions.availableSessions(host, username);
      if (!available.length) return;
      const userBare = `${username}@${host}`;
      for (const { target, contact, subscription } of coveredContacts(username, removed)) {
        if (isBlocked(after, target)) continue; // still blocked by another item
        if (subscription === 'from' || subscription === 'both') {
          for (const r of available) {
            if (!r.presence) continue;
            const p = clone(r.presence) as Element;
            attrsOf(p).from = r.full_jid;
            attrsOf(p).to = target;
            module.send(p);
          }
        }
        if ((subscription === 'to' || subscription === 'both') && !isBlocked(after, contact)) {
          module.send(new Element('presence', { from: userBare, to: contact, type: 'probe' }));
        }
      }
    };

    // -- enforcement ------------------------------------------------------------------------------------

    // Each check answers synchronously when the blocklist is in memory (the usual case: it is
    // loaded when the user authenticates). Otherwise the handler returns a Promise: the stanza
    // waits for the list (its sender's later stanzas wait behind it) and then goes on to the
    // next handlers, or is refused.

    /** A stanza from the user to a blocked JID: not-acceptable with <blocked/> (§3.3); presence dropped. */
    const refuseOutbound = (origin: Session, stanza: Stanza): true => {
      if (stanza.name !== 'presence' && !mustNotReplyWithError(stanza) && origin.type !== 'local') origin.send(blockedError(stanza));
      return true;
    };

    /** A stanza from a blocked JID to the user: presence dropped, others service-unavailable (§3.3). */
    const refuseInbound = (stanza: Stanza): true => {
      if (stanza.name === 'presence') return true;
      throw new StanzaError('cancel', 'service-unavailable');
    };

    const sameAccount = (a: string, bareJid: string) => bareOf(a) === bareJid;

    const outbound = (event: StanzaEvent): unknown => {
      const { origin, stanza, to } = event;
      if (to === undefined || !own(origin)) return undefined;
      const username = origin.username;
      if (sameAccount(to, `${username}@${host}`) || to === host || isSubscriptionEnd(stanza)) return undefined;
      const list = lists.peek(username);
      if (list) return isBlocked(list, to) ? refuseOutbound(origin, stanza) : undefined;
      return lists.load(username).then((loaded) => (isBlocked(loaded, to) ? refuseOutbound(origin, stanza) : undefined));
    };

    /** Whether a local sender (this host or another of this server) blocks `to`. */
    const senderBlocks = (from: string, to: string): boolean => {
      const { node, host: fromHost } = split(from);
      if (!node || !fromHost) return false;
      if (fromHost === host) {
        const list = lists.peek(node);
        return list !== undefined && isBlocked(list, to);
      }
      if (!module.hosts.has(fromHost)) return false;
      return module.fireOnHost(fromHost, OUTBOUND_CHECK, { username: node, to } satisfies OutboundCheckEvent) === true;
    };

    const inbound = (event: StanzaEvent): unknown => {
      const { origin, stanza, toNode, to } = event;
      const rawFrom = stanza.attrs.from;
      if (!toNode || !to || rawFrom === undefined) return undefined;
      const from = prep(rawFrom) ?? rawFrom;
      const userBare = `${toNode}@${host}`;
      if (sameAccount(from, userBare) || from === host) return undefined;
      // Stanzas the server sends on behalf of a local user obey that user's blocklist too.
      if (!ownNotices.has(stanza) && !isSubscriptionEnd(stanza) && senderBlocks(from, to)) return refuseOutbound(origin, stanza);
      const list = lists.peek(toNode);
      if (list) return isBlocked(list, from) ? refuseInbound(stanza) : undefined;
      const decided = lists.load(toNode).then((loaded) => (isBlocked(loaded, from) ? refuseInbound(stanza) : undefined));
      if (stanza.name !== 'presence') return decided;
      // Presence is never answered with an error: when the list cannot be read, it is dropped.
      return decided.catch((err: unknown) => {
        module.log.error('cannot load the blocklist of %s: %s', userBare, err);
        return true;
      });
    };

    for (const kind of ['message', 'presence', 'iq'] as const) {
      for (const dest of ['bare', 'full', 'host'] as const) module.hook(`pre-${kind}/${dest}`, outbound, PRIORITY);
      for (const dest of ['bare', 'full'] as const) module.hook(`${kind}/${dest}`, inbound, PRIORITY);
    }

    // Stanzas the server sends on behalf of a user of this host to another server (presence
    // broadcasts, probes' answers, PEP notifications…) never reach a local `<kind>/<dest>` hook:
    // they are checked against the user's blocklist on their way out, before mod_s2s takes them.
    // (What the user's own client sends was refused by `outbound` already.)
    module.hookGlobal('route/remote', (event: StanzaEvent): unknown => {
      const { stanza, to } = event;
      const rawFrom = stanza.attrs.from;
      // Errors leave: refusing a blocked entity's stanza answers it with one (§3.3).
      if (!to || rawFrom === undefined || stanza.attrs.type === 'error' || ownNotices.has(stanza) || isSubscriptionEnd(stanza)) return undefined;
      const { node, host: fromHost } = split(prep(rawFrom) ?? rawFrom);
      if (!node || fromHost !== host) return undefined;
      const list = lists.peek(node);
      if (list) return isBlocked(list, to) ? true : undefined;
      return lists.load(node).then(
        (loaded) => (isBlocked(loaded, to) ? true : undefined),
        (err: unknown) => {
          // Unknown blocklist: nothing leaves for another server on the user's behalf.
          module.log.error('cannot load the blocklist of %s@%s: %s', node, host, err);
          return true;
        },
      );
    }, PRIORITY);

    // -- account deletion -------------------------------------------------------------------------------

    module.hook('user-deleted', async ({ host: h, username }) => {
      if (h !== host) return undefined;
      await module.serial(username, async () => {
        lists.drop(username);
        await store.clear(username);
        lists.drop(username); // in case a load was under way
      });
      return undefined;
    });
  },

  // A reload keeps which resources get pushes.
  save(module) {
    const requested: Session[] = [];
    for (const s of module.sessions.boundSessions(module.host)) {
      if (module.peekState<BlockingState>(s)?.requested) requested.push(s);
    }
    return requested;
  },
  restore(module, saved) {
    if (!Array.isArray(saved)) return;
    for (const s of saved as Session[]) {
      if (!s.destroyed && s.full_jid) module.state<BlockingState>(s, () => ({ requested: true }));
    }
  },
});
