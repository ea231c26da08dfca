//% requires_core_features: sessions-v1, stanza-events-v1, events-async, module-serial, module-capabilities
// Presence (RFC 6121 §3–4): subscription management with the state tables of Appendix A,
// pre-approval (§3.4), availability broadcast, probes, directed presence and delivery of
// presence addressed to local accounts.
//
// Every change to a user's subscription state runs in that user's serial queue: it is saved
// durably, then the stanza is delivered or routed, then the roster item is pushed (through the
// `roster-push` event mod_roster handles). Plain presence delivered to a user whose queue is busy
// waits its turn, so a client sees `subscribed` and its roster push before the contact's presence.
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { attrsOf, bare as bareOf, defineModule, isBound, parseXml, prep, StanzaError, type BoundSession, type ResourceAvailableEvent, type Roster, type RosterItem, type RosterPushEvent, type Session, type StanzaEvent, type SubscriptionState } from '../core/api.ts';

const NS_PREAPPROVAL = 'urn:xmpp:features:pre-approval';

type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);
const VALID_TYPES: ReadonlySet<string> = new Set([...SUBSCRIPTION_TYPES, 'unavailable', 'probe', 'error']);

function isSubscriptionType(t: string | undefined): t is SubscriptionType {
  return t !== undefined && SUBSCRIPTION_TYPES.has(t);
}

/** A contact's subscription state as in RFC 6121 Appendix A ("None + Pending Out+In", …). */
interface SubState {
  to: boolean;
  from: boolean;
  pendingOut: boolean;
  pendingIn: boolean;
}

function stateOf(roster: Roster, jid: string): SubState {
  const item = roster.items.get(jid);
  const sub = item?.subscription ?? 'none';
  return {
    to: sub === 'to' || sub === 'both',
    from: sub === 'from' || sub === 'both',
    pendingOut: item?.ask === 'subscribe',
    pendingIn: roster.pending.has(jid),
  };
}

function subscriptionOf(s: SubState): SubscriptionState {
  return s.to ? (s.from ? 'both' : 'to') : s.from ? 'from' : 'none';
}

/** Outbound tables (A.2): whether the stanza is routed and the new state. */
function outboundTransition(type: SubscriptionType, s: SubState): { route: boolean; next: SubState } {
  switch (type) {
    case 'subscribe':
      return { route: true, next: { ...s, pendingOut: !s.to } };
    case 'unsubscribe':
      return { route: true, next: { ...s, to: false, pendingOut: false } };
    case 'subscribed':
      // Without a pending inbound request this is a pre-approval (§3.4), handled by the caller.
      return s.pendingIn ? { route: true, next: { ...s, from: true, pendingIn: false } } : { route: false, next: s };
    case 'unsubscribed':
      return s.from || s.pendingIn ? { route: true, next: { ...s, from: false, pendingIn: false } } : { route: false, next: s };
  }
}

/** Inbound tables (A.3): whether the stanza is delivered to the user and the new state. */
function inboundTransition(type: SubscriptionType, s: SubState): { deliver: boolean; next: SubState } {
  switch (type) {
    case 'subscribe':
      // From/Both are auto-replied, a request already pending is not delivered again.
      return s.from || s.pendingIn ? { deliver: false, next: s } : { deliver: true, next: { ...s, pendingIn: true } };
    case 'subscribed':
      return s.pendingOut && !s.to ? { deliver: true, next: { ...s, to: true, pendingOut: false } } : { deliver: false, next: s };
    case 'unsubscribe':
      return s.from || s.pendingIn ? { deliver: true, next: { ...s, from: false, pendingIn: false } } : { deliver: false, next: s };
    case 'unsubscribed':
      return s.to || s.pendingOut ? { deliver: true, next: { ...s, to: false, pendingOut: false } } : { deliver: false, next: s };
  }
}

function sameState(a: SubState, b: SubState): boolean {
  return a.to === b.to && a.from === b.from && a.pendingOut === b.pendingOut && a.pendingIn === b.pendingIn;
}

/**
 * Write `next` into the roster. Returns whether the roster item changed (→ roster push).
 * An item is created when the new state needs one; pending-in alone lives in `roster.pending`.
 */
function applyState(roster: Roster, jid: string, next: SubState, pendingStanza: string | undefined): boolean {
  if (next.pendingIn) {
    if (!roster.pending.has(jid)) roster.pending.set(jid, pendingStanza ?? '');
  } else {
    roster.pending.delete(jid);
  }
  let item = roster.items.get(jid);
  if (!item) {
    if (!next.to && !next.from && !next.pendingOut) return false;
    item = { subscription: 'none', groups: [] };
    roster.items.set(jid, item);
  }
  const before = JSON.stringify(item);
  item.subscription = subscriptionOf(next);
  if (next.pendingOut) item.ask = 'subscribe';
  else delete item.ask;
  // A pre-approval means nothing once the contact is subscribed.
  if (next.from) delete item.approved;
  return JSON.stringify(item) !== before;
}

function presence(attrs: Record<string, string>): Element {
  return new Element('presence', attrs);
}

/** A copy of `stanza` addressed from/to the given JIDs. */
function readdress(stanza: Element, from: string | undefined, to: string | undefined): Element {
  const c = clone(stanza) as Element;
  const a = attrsOf(c);
  if (from === undefined) delete a.from;
  else a.from = from;
  if (to === undefined) delete a.to;
  else a.to = to;
  return c;
}

/** RFC 6121 §4.7.2.3: an integer from -128 to 127, default 0 (out-of-range values are clamped). */
function parsePriority(stanza: Element): number {
  const text = stanza.getChildText('priority');
  if (text === null || text === undefined) return 0;
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) return 0;
  return Math.max(-128, Math.min(127, Number.parseInt(t, 10)));
}

export default defineModule({
  description: 'Presence and presence subscriptions (RFC 6121 §3–4)',
  capabilities: ['rosters'],
  load(module) {
    const host = module.host;
    /**
     * Run a task in the user's turn (module.serial) and report the stanza handled: at once when
     * nothing of the user's is pending and the task is synchronous. A failing task is logged and
     * answered by the router.
     */
    const inTurn = (userBare: string, task: () => void | Promise<void>): true | Promise<true> => {
      const r = module.serial(userBare, task);
      return r instanceof Promise ? r.then(() => true as const) : true;
    };
    const directed = (session: Session) => module.state(session, () => new Set<string>());

    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type === 'c2s') features.c('sub', { xmlns: NS_PREAPPROVAL });
    });

    // -- helpers ---------------------------------------------------------------------------------

    const pushItem = (username: string, jid: string) => {
      module.emit('roster-push', { host, username, jid } satisfies RosterPushEvent);
    };

    /** The user's roster: the live one when connected, else loaded; undefined for no such user. */
    const rosterOf = async (username: string): Promise<Roster | undefined> => {
      const live = module.sessions.roster(host, username);
      if (live) return live;
      if (!(await module.users.exists(host, username))) return undefined;
      const loaded = await module.rosters.load(host, username);
      return module.sessions.roster(host, username) ?? loaded;
    };

    const save = (username: string, roster: Roster, changed: string[]) => module.privileged.rosters.save(host, username, roster, changed);

    const available = (username: string) => module.sessions.availableSessions(host, username);
    const interested = (username: string) => module.sessions.interestedSessions(host, username);

    /** Send each available resource's current presence (or `type`) from `username` to `to`. */
    const sendPresenceOfResources = (username: string, to: string, type?: 'unavailable'): number => {
      let n = 0;
      for (const s of available(username)) {
        if (!type && !s.presence) continue;
        const p = type || !s.presence ? presence({ type: 'unavailable' }) : (clone(s.presence) as Element);
        attrsOf(p).from = s.full_jid;
        attrsOf(p).to = to;
        module.send(p);
        n++;
      }
      return n;
    };

    // -- outbound subscription stanzas (§3.1.2, §3.2.2, §3.3.2, §3.4; A.2) ------------------------

    const outboundSubscription = async (origin: BoundSession, stanza: Element, type: SubscriptionType, contact: string) => {
      const username = origin.username;
      const userBare = `${username}@${host}`;
      const roster = origin.roster;
      const s = stateOf(roster, contact);
      const item = roster.items.get(contact);
      const out = readdress(stanza, userBare, contact);

      if (type === 'subscribed' && !s.pendingIn) {
        // Pre-approval (§3.4): ignored in From states, otherwise noted and never routed.
        if (s.from || item?.approved) return;
        const it: RosterItem = item ?? { subscription: 'none', groups: [] };
        it.approved = true;
        roster.items.set(contact, it);
        await save(username, roster, [contact]);
        pushItem(username, contact);
        return;
      }
      if (type === 'unsubscribed' && !s.pendingIn && !s.from) {
        // Cancelling a pre-approval (§3.4): the stanza is not routed.
        if (item?.approved) {
          delete item.approved;
          await save(username, roster, [contact]);
          pushItem(username, contact);
        }
        return;
      }

      const { route, next } = outboundTransition(type, s);
      let dirty = false;
      let itemChanged = false;
      if (type === 'subscribe' && !item) {
        // §3.1.2: the contact is added to the roster if needed.
        roster.items.set(contact, { subscription: 'none', groups: [] });
        dirty = itemChanged = true;
      }
      if (!sameState(s, next)) {
        itemChanged = applyState(roster, contact, next, undefined) || itemChanged;
        dirty = true;
      }
      if (dirty) await save(username, roster, [contact]);
      if (itemChanged) pushItem(username, contact);
      if (!route) return;

      if (type === 'unsubscribed' && s.from) {
        // §3.2.2: while the contact is still subscribed, it gets unavailable from every resource.
        sendPresenceOfResources(username, contact, 'unavailable');
      }
      module.send(out);
      if (type === 'subscribed') {
        // §3.1.5: the newly subscribed contact receives our current presence.
        sendPresenceOfResources(username, contact);
      }
    };

    // -- inbound subscription stanzas (§3.1.3, §3.1.6, §3.2.3, §3.3.3, §3.4; A.3) -----------------

    const inboundSubscription = async (stanza: Element, type: SubscriptionType, username: string, contact: string) => {
      const roster = await rosterOf(username);
      if (!roster) return; // no such user: presence is silently dropped (§8.5.1)
      const userBare = `${username}@${host}`;
      if (contact === userBare) return;
      const s = stateOf(roster, contact);
      const item = roster.items.get(contact);
      const inbound = readdress(stanza, contact, userBare);

      if (type === 'subscribe') {
        if (s.from) {
          // Already subscribed: auto-reply on the user's behalf (§3.1.3 step 2).
          module.send(presence({ from: userBare, to: contact, type: 'subscribed' }));
          sendPresenceOfResources(username, contact);
          return;
        }
        if (item?.approved && !s.pendingIn) {
          // Pre-approved (§3.4): approve automatically, never deliver the request.
          const next = { ...s, from: true };
          applyState(roster, contact, next, undefined);
          await save(username, roster, [contact]);
          module.send(presence({ from: userBare, to: contact, type: 'subscribed' }));
          pushItem(username, contact);
          sendPresenceOfResources(username, contact);
          return;
        }
      }

      const { deliver, next } = inboundTransition(type, s);
      if (sameState(s, next)) return; // every "no state change" row is also "not delivered"
      const changed = applyState(roster, contact, next, type === 'subscribe' ? inbound.toString() : undefined);
      await save(username, roster, [contact]);
      if (deliver) {
        const targets = type === 'subscribe' ? available(username) : interested(username);
        for (const session of targets) session.send(readdress(inbound, contact, userBare));
      }
      if (changed) pushItem(username, contact);
      if (type === 'unsubscribe' && s.from) {
        // §3.3.3: the former subscriber gets unavailable from each of the user's resources.
        sendPresenceOfResources(username, contact, 'unavailable');
      }
    };

    // -- probes (§4.3.2) --------------------------------------------------------------------------

    const inboundProbe = async (stanza: Element, username: string) => {
      const prober = attrsOf(stanza).from;
      if (!prober) return;
      const proberBare = bareOf(prober);
      const roster = await rosterOf(username);
      if (!roster || !proberBare) return;
      const sub = roster.items.get(proberBare)?.subscription;
      if (sub !== 'from' && sub !== 'both') return; // not subscribed: reveal nothing
      if (sendPresenceOfResources(username, prober) === 0) {
        module.send(presence({ from: `${username}@${host}`, to: prober, type: 'unavailable' }));
      }
    };

    // -- availability (§4.2, §4.4, §4.5) ----------------------------------------------------------

    interface BroadcastTargets {
      /** Contacts with a subscription from/both. */
      contacts: boolean;
      /** The user's available resources (the implicit self-subscription); `self` adds the sender. */
      resources: boolean;
      self: boolean;
      /** Everyone the session sent directed presence to (then forgotten). */
      directed: boolean;
    }

    /** Send `stanza` from the session's full JID to the chosen targets. */
    const broadcast = (origin: BoundSession, stanza: Element, t: BroadcastTargets) => {
      const username = origin.username;
      const fullJid = origin.full_jid;
      const sent = new Set<string>();
      if (t.contacts) {
        for (const [jid, item] of origin.roster.items) {
          if (item.subscription === 'from' || item.subscription === 'both') {
            module.send(readdress(stanza, fullJid, jid));
            sent.add(jid);
          }
        }
      }
      if (t.resources) {
        // An entity is implicitly subscribed to its own presence (§4.2.2, §4.4.2).
        for (const s of available(username)) {
          if (s === origin && !t.self) continue;
          module.send(readdress(stanza, fullJid, s.full_jid));
        }
      }
      if (t.directed) {
        const set = module.peekState<Set<string>>(origin);
        if (set) {
          for (const to of set) if (!sent.has(to)) module.send(readdress(stanza, fullJid, to));
          set.clear();
        }
      }
    };

    const clientBroadcastPresence = (origin: BoundSession, stanza: Element) => {
      if (origin.destroyed || !isBound(origin)) return; // the session ended meanwhile
      const type = attrsOf(stanza).type;
      const username = origin.username;
      const p = readdress(stanza, origin.full_jid, undefined);
      if (type === 'unavailable') {
        // §4.5.2: subscribers and own resources only hear it when we were available.
        const wasAvailable = origin.presence !== undefined;
        broadcast(origin, p, { contacts: wasAvailable, resources: wasAvailable, self: true, directed: true });
        origin.presence = undefined;
        return;
      }
      const initial = !origin.presence;
      const previousPriority = origin.priority;
      origin.presence = p;
      origin.priority = parsePriority(stanza);
      broadcast(origin, p, { contacts: true, resources: true, self: true, directed: false });
      module.emit('resource-available', { session: origin, initial, previousPriority } satisfies ResourceAvailableEvent);
      if (!initial) return;
      const userBare = `${username}@${host}`;
      const roster = origin.roster;
      if (roster) {
        // Probe the contacts we are subscribed to (§4.3.1), from the bare JID.
        for (const [jid, item] of roster.items) {
          if (item.subscription === 'to' || item.subscription === 'both') {
            module.send(presence({ from: userBare, to: jid, type: 'probe' }));
          }
        }
      }
      // The user's other available resources' presence to the new one.
      for (const s of available(username)) {
        if (s === origin || !s.presence) continue;
        module.send(readdress(s.presence, s.full_jid, origin.full_jid));
      }
      // Pending inbound subscription requests are re-delivered until answered (§3.1.3 step 4).
      if (roster) {
        for (const [jid, xml] of roster.pending) {
          let request: Element;
          try {
            request = xml ? (parseXml(xml) as Element) : presence({ type: 'subscribe' });
          } catch {
            request = presence({ type: 'subscribe' });
          }
          attrsOf(request).type = 'subscribe';
          origin.send(readdress(request, jid, userBare));
        }
      }
    };

    // -- hooks: stanzas from local clients ---------------------------------------------------------

    const outbound = (event: StanzaEvent): unknown => {
      const { origin, stanza } = event;
      if (!isBound(origin)) return undefined;
      const type = stanza.attrs.type;
      if (type !== undefined && !VALID_TYPES.has(type)) throw new StanzaError('modify', 'bad-request', `Invalid presence type '${type}'`);
      const username = origin.username;
      const userBare = `${username}@${host}`;

      if (event.to === undefined) {
        // No 'to': broadcast presence (available/unavailable); anything else is meaningless here.
        if (type === undefined || type === 'unavailable') return inTurn(userBare, () => clientBroadcastPresence(origin, stanza));
        return true;
      }

      if (isSubscriptionType(type)) {
        const contact = bareOf(event.to);
        if (!contact || contact === userBare) return true; // no subscriptions to oneself
        return inTurn(userBare, () => outboundSubscription(origin, stanza, type, contact));
      }

      if (type === undefined || type === 'unavailable') {
        // Directed presence (§4.6): tracked when the target does not get our broadcasts anyway.
        const to = event.to;
        const toBare = bareOf(to);
        if (toBare !== userBare) {
          const sub = toBare ? origin.roster.items.get(toBare)?.subscription : undefined;
          const set = directed(origin);
          if (type === 'unavailable') set.delete(to);
          else if (sub !== 'from' && sub !== 'both') set.add(to);
        }
      }
      return undefined; // routed to its destination as usual
    };
    module.hook('pre-presence/bare', outbound);
    module.hook('pre-presence/full', outbound);
    module.hook('pre-presence/host', outbound);

    // -- hooks: presence to local accounts ---------------------------------------------------------

    const inbound = (event: StanzaEvent): unknown => {
      const { stanza, toNode, toResource } = event;
      if (!toNode) return undefined;
      const username = toNode;
      const userBare = `${username}@${host}`;
      const { type, from } = stanza.attrs;

      if (isSubscriptionType(type)) {
        const contact = from ? bareOf(from) : undefined;
        if (!contact || prep(contact) === null) return true;
        return inTurn(userBare, () => inboundSubscription(stanza, type, username, contact));
      }
      if (type === 'probe') return inTurn(userBare, () => inboundProbe(stanza, username));
      if (type !== undefined && type !== 'unavailable' && type !== 'error') return true; // invalid: dropped

      const deliver = () => {
        if (toResource) {
          module.sessions.getByFullJid(host, username, toResource)?.send(stanza);
        } else {
          // Each available resource gets its own copy, addressed to its full JID.
          for (const s of available(username)) s.send(readdress(stanza, from, s.full_jid));
        }
      };
      // Behind the user's pending subscription changes (a client sees `subscribed` and its roster
      // push before the contact's presence); at once when there are none.
      return inTurn(userBare, deliver);
    };
    module.hook('presence/bare', inbound);
    module.hook('presence/full', inbound);

    // -- session end (§4.5.2: unavailable on behalf of a vanished resource) -------------------------

    module.hook('resource-unbind', ({ session }) => {
      if (!isBound(session)) return;
      const wasAvailable = session.presence !== undefined;
      if (wasAvailable || module.peekState<Set<string>>(session)?.size) {
        const p = presence({ type: 'unavailable' });
        broadcast(session, p, { contacts: wasAvailable, resources: wasAvailable, self: false, directed: true });
      }
      session.presence = undefined;
      module.dropState(session);
    });
  },

  // A reload keeps the directed-presence lists of live sessions.
  save(module) {
    const lists: [Session, string[]][] = [];
    for (const s of module.sessions.boundSessions(module.host)) {
      const set = module.peekState<Set<string>>(s);
      if (set?.size) lists.push([s, [...set]]);
    }
    return lists;
  },
  restore(module, state) {
    if (!Array.isArray(state)) return;
    for (const entry of state as [Session, string[]][]) {
      const [session, list] = entry;
      if (!session.destroyed && session.full_jid) module.state(session, () => new Set(list));
    }
  },
});

