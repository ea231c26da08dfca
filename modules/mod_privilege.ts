//% requires_core_features: stanza-events-v1, events-async, connection-events
// Privileged entities (XEP-0356 0.4.1) and namespace delegation in admin mode (XEP-0355 0.5) for
// external components (XEP-0114): the operator grants a component, per virtual host, access to
// the users' rosters (get and set), sending messages on behalf of the server and its users, the
// presence of the users and of their contacts, iqs of given namespaces on behalf of users, and
// the namespaces delegated to it. The grants are advertised to the component when it connects
// (again when a config reload changes them) and every stanza it sends is checked against the
// grants in force (mod_component's `component-stanza` event) before it is routed.
// Decisions and bookkeeping: core/util/privilege.ts; doc/remote-admin.md describes the glue.
//
// Roster sets run in mod_roster (`roster-set-privileged`), pushes come from its `roster-pushed`.
// Delegated namespaces' features are asked of the managing entity when it connects and nested
// into the host's and the accounts' disco#info (XEP-0355 §7.2).
import {
  NS,
  StanzaError,
  defineModule,
  errorReply,
  iqResult,
  prep,
  privilege as P,
  split,
  xml,
  type Element,
  type Roster,
  type Session,
  type Stanza,
  type StanzaEvent,
} from '../core/api.ts';

const options = {
  entities: { type: 'object', description: "Privileged components: { 'component.domain': { roster, message, presence, iq } } (XEP-0356)", default: {} },
  delegations: { type: 'object', description: "Delegated namespaces: { 'namespace': { jid: 'component.domain', filtering?: ['attr'] } } (XEP-0355 admin mode)", default: {} },
} as const;

/** The grants and delegations in force, as read from the options. */
interface Config {
  /** component domain → grant. */
  grants: Map<string, P.EffectiveGrant>;
  delegations: P.DelegationConfig;
  /** To see whether a reload changed anything. */
  signature: string;
}

/** Contacts' presences kept for components connecting later (business rule 1), at most. */
const MAX_CONTACT_PRESENCES = 100_000;

/** disco#info queries for nesting waiting for the managing entity's answer: id → what was asked. */
interface PendingDisco {
  component: string;
  node: string;
  asked: number;
}

export default defineModule({
  description: 'Privileged components (XEP-0356) and namespace delegation (XEP-0355)',
  options,
  load(module) {
    const host = module.host;
    const read = (): Config => {
      const entities = module.option('entities') as P.PrivilegeConfig;
      const delegations = module.option('delegations') as P.DelegationConfig;
      const problems = [...P.checkPrivilegeConfig(entities), ...P.checkDelegationConfig(delegations)];
      if (problems.length) throw new Error(`privilege: ${problems.join('; ')}`);
      return {
        grants: new Map(Object.entries(entities).map(([jid, g]) => [split(jid).host ?? jid, P.effectiveGrant(g)])),
        delegations,
        signature: JSON.stringify([entities, delegations]),
      };
    };
    let config = read();
    const NO_GRANT = P.effectiveGrant(undefined);
    const grantOf = (component: string) => config.grants.get(component) ?? NO_GRANT;
    const iqs = new P.PrivilegedIqs();
    const delegated = new P.Delegations();
    const relays = new Map<string, P.PresenceRelay>();
    const relay = (component: string) => relays.get(component) ?? relays.set(component, new P.PresenceRelay()).get(component)!;
    const connected = (component: string) => module.sessions.getComponent(component) !== undefined;
    const send = (stanza: Element) => module.send(stanza);
    /** Contacts' last available presence to the managed entities (full JID → stanza), for rule 1. */
    const contactPresence = new Map<string, Element>();
    /** Nested disco#info answers of managing entities: component → node → its query. */
    const nested = new Map<string, Map<string, Element>>();
    const pendingDisco = new Map<string, PendingDisco>();
    let discoSeq = 0;

    module.addFeature(P.NS_DELEGATION);

    // ---- at connect: the grants, the delegations, then the presences it may see (business rule 1) --
    const advertise = (component: string) => {
      const grant = config.grants.get(component);
      if (grant) {
        send(P.privilegeAdvertisement(host, component, grant));
        module.log.info('privileges advertised to %s: roster %s, message %s, presence %s, iq %s', component, grant.roster, grant.message, grant.presence, [...grant.iq.keys()].join(' ') || 'none');
      }
      const d = P.delegationAdvertisement(host, component, config.delegations);
      if (d) send(d);
      askNested(component);
      if (grant && grant.presence !== 'none') {
        for (const s of module.sessions.boundSessions(host)) {
          const p = presenceOf(s);
          if (p) relayPresence(component, p, 'managed-entity');
        }
        if (grant.presence === 'roster') for (const p of contactPresence.values()) relayPresence(component, p, 'roster-contact');
      }
    };
    module.hookGlobal('component-connected', ({ host: component }) => advertise(component));
    module.hookGlobal('component-disconnected', ({ host: component }) => {
      iqs.forget(component);
      for (const r of delegated.drop(component)) send(r);
      relays.get(component)?.reset();
      nested.delete(component);
      for (const [id, asked] of pendingDisco) if (asked.component === component) pendingDisco.delete(id);
    });

    // A reload that changes the grants or delegations: advertised again to the connected
    // components concerned; what was withdrawn stops at once (every stanza and presence reads `config`).
    module.hookGlobal('config-reloaded', () => {
      let next: Config;
      try {
        next = read();
      } catch (err) {
        module.log.error('%s; the previous grants stay in force', (err as Error).message);
        return;
      }
      if (next.signature === config.signature) return;
      const before = config;
      config = next;
      const components = new Set([...before.grants.keys(), ...next.grants.keys(), ...Object.values(before.delegations).map((d) => d.jid), ...Object.values(next.delegations).map((d) => d.jid)]);
      for (const component of components) {
        if (!connected(component)) continue;
        const was = JSON.stringify([P.privilegeAdvertisement(host, component, before.grants.get(component) ?? NO_GRANT, '').toString(), P.delegationAdvertisement(host, component, before.delegations, '')?.toString()]);
        const is = JSON.stringify([P.privilegeAdvertisement(host, component, grantOf(component), '').toString(), P.delegationAdvertisement(host, component, next.delegations, '')?.toString()]);
        if (was === is) continue;
        if (grantOf(component).presence === 'none') relays.get(component)?.reset();
        if (!next.grants.has(component)) send(P.privilegeAdvertisement(host, component, NO_GRANT)); // all withdrawn: say so
        nested.delete(component);
        advertise(component);
      }
    });

    // ---- every stanza a component sends to this host or its users ----------------------------------
    module.hookGlobal('component-stanza', ({ host: component, stanza }) => {
      const to = stanza.attrs.to;
      if (to === undefined || split(to).host !== host) return undefined;
      if (stanza.name === 'iq' && (stanza.attrs.type === 'result' || stanza.attrs.type === 'error') && to === host) {
        // An answer to a disco#info query for nesting.
        const asked = pendingDisco.get(stanza.attrs.id ?? '');
        if (asked && asked.component === component) {
          pendingDisco.delete(stanza.attrs.id!);
          const query = stanza.attrs.type === 'result' ? stanza.getChild('query', NS.discoInfo) : undefined;
          if (query) nestedOf(component).set(asked.node, query);
          return true;
        }
        // An answer to an iq delegated to it.
        const r = delegated.reply(stanza);
        if (r) {
          if (r.misbehaved) module.log.warn('%s answered a delegated iq wrongly: the requester gets service-unavailable', component);
          send(r.to);
          return true;
        }
      }
      let decision: P.PrivilegeDecision;
      try {
        decision = P.checkComponentStanza(stanza, grantOf(component), host);
      } catch (err) {
        module.log.error('checking a stanza of %s: %s', component, err);
        return undefined;
      }
      switch (decision.kind) {
        case 'none':
          return undefined;
        case 'refuse':
          module.log('%s refused: %s', component, decision.error.text);
          send(errorReply(stanza, decision.error.type, decision.error.condition, decision.error.text));
          return true;
        case 'roster':
          // One managed entity's roster requests in the order the component sent them.
          void module.serial(`roster:${decision.managed}`, () => (decision.op === 'get' ? rosterGet : rosterSet)(component, stanza, decision.managed));
          return true;
        case 'message':
          module.log('%s sends a message as %s', component, decision.message.attrs.from);
          send(decision.message);
          return true;
        case 'iq': {
          const r = iqs.send(component, stanza, decision);
          if (r.ok) send(r.stanza);
          else send(errorReply(stanza, r.error.type, r.error.condition, r.error.text));
          return true;
        }
      }
    });

    /** §4.3: the managed entity's roster, answered from its bare JID. */
    const rosterGet = async (component: string, stanza: Stanza, managed: string) => {
      const username = split(managed).node ?? '';
      try {
        if (!(await module.users.exists(host, username))) {
          send(errorReply(stanza, 'auth', 'forbidden', 'No such user'));
          return;
        }
        const roster = module.sessions.roster(host, username) ?? (await module.rosters.load(host, username));
        const reply = iqResult(stanza, rosterQuery(roster));
        reply.attrs.from = managed;
        send(reply);
        module.log('%s read the roster of %s', component, managed);
      } catch (err) {
        module.log.error('roster of %s for %s: %s', managed, component, err);
        send(errorReply(stanza, 'wait', 'internal-server-error'));
      }
    };

    /**
     * §4.3: a roster set on behalf of the managed entity, with the rules of the user's own set
     * (RFC 6121 §2.3: one item, a bare JID, not the user's own, a 'subscription' other than
     * "remove" ignored — the component cannot do what the user could not, security rule 4);
     * answered from the user's bare JID, then pushed to the user's interested resources (and to
     * components with pushes) by mod_roster.
     */
    const rosterSet = async (component: string, stanza: Stanza, managed: string) => {
      const username = split(managed).node ?? '';
      try {
        if (!(await module.users.exists(host, username))) {
          send(errorReply(stanza, 'auth', 'forbidden', 'No such user'));
          return;
        }
        const query = stanza.getChild('query', NS.roster)!;
        const answer = () => {
          const reply = iqResult(stanza);
          reply.attrs.from = managed;
          send(reply);
        };
        const handled = await module.fire('roster-set-privileged', { host, username, query, answer });
        if (handled === undefined) send(errorReply(stanza, 'cancel', 'service-unavailable', 'Rosters are not served here'));
        else module.log('%s changed the roster of %s', component, managed);
      } catch (err) {
        if (err instanceof StanzaError) {
          send(errorReply(stanza, err.type, err.condition, err.text));
          return;
        }
        module.log.error('roster set of %s for %s: %s', managed, component, err);
        send(errorReply(stanza, 'wait', 'internal-server-error'));
      }
    };

    // ---- responses to privileged iqs (§6.3) and delegated requests (XEP-0355 §4.3) -----------------
    const toUsers = (event: { stanza: Stanza; origin: unknown }) => {
      const { stanza } = event;
      const type = stanza.attrs.type;
      if (type === 'result' || type === 'error') {
        const r = iqs.response(stanza);
        if (r) {
          send(r);
          return true;
        }
        return undefined;
      }
      return delegate(stanza);
    };
    const delegate = (stanza: Stanza) => {
      const match = P.matchDelegation(stanza, config.delegations, host) ?? clients.match(stanza, host);
      if (!match) return undefined;
      // A managing entity served here (a component) must be connected; a remote one is tried (timeouts answer).
      const domain = split(match.component).host ?? match.component;
      if (module.hosts.has(domain) && !connected(domain)) {
        send(P.Delegations.unavailable(stanza));
        return true;
      }
      const r = delegated.forward(stanza, match, host);
      send(r.ok ? r.stanza : r.reply);
      return true;
    };
    module.hook('iq/bare', toUsers, 10);
    module.hook('iq/host', ({ stanza }) => {
      if (stanza.attrs.type === 'get' || stanza.attrs.type === 'set') return delegate(stanza);
      // A remote managing entity's answers (a component's come through component-stanza).
      const asked = pendingDisco.get(stanza.attrs.id ?? '');
      if (asked && stanza.attrs.from !== undefined && prep(stanza.attrs.from) === asked.component) {
        pendingDisco.delete(stanza.attrs.id!);
        const query = stanza.attrs.type === 'result' ? stanza.getChild('query', NS.discoInfo) : undefined;
        if (query) nestedOf(asked.component).set(asked.node, query);
        return true;
      }
      const r = delegated.reply(stanza);
      if (!r) return undefined;
      if (r.misbehaved) module.log.warn('%s answered a delegated iq wrongly: the requester gets service-unavailable', stanza.attrs.from);
      send(r.to);
      return true;
    }, 10);
    module.hook('iq/self', ({ stanza }) => (stanza.attrs.type === 'get' || stanza.attrs.type === 'set' ? delegate(stanza) : undefined), 10);
    module.setInterval(() => {
      for (const e of iqs.expire()) send(e);
      for (const e of delegated.expire()) send(e);
      for (const [id, p] of pendingDisco) if (p.asked < Date.now() - 60_000) pendingDisco.delete(id); // never answered
    }, 10_000);

    // ---- client mode (XEP-0355 §5): a user delegates namespaces of its own, for its session ---------
    const clients = new P.ClientDelegations();
    const tell = (managing: string, user: string) => send(P.clientDelegationNotice(host, managing, user, clients.delegatedTo(user, managing)));
    const requestDelegation = ({ stanza }: StanzaEvent) => {
      const req = P.parseClientDelegationRequest(stanza, host);
      if ('condition' in req) throw new StanzaError(req.type, req.condition, req.text);
      const admin = req.namespaces.find((ns) => config.delegations[ns] !== undefined);
      if (admin) throw new StanzaError('cancel', 'not-allowed', `${admin} is delegated by the administrator`);
      const resources = module.sessions.availableSessions(host, split(req.user).node ?? '');
      // Only the user can allow it, now: nobody to ask, no delegation (nothing is kept across sessions).
      if (!resources.length) throw new StanzaError('wait', 'recipient-unavailable', 'The user is not online to allow it');
      const challenge = clients.ask(req);
      if (challenge === undefined) throw new StanzaError('wait', 'resource-constraint', 'Too many delegation requests waiting');
      for (const s of resources) send(P.clientDelegationForm(host, s.full_jid, req, challenge));
      module.log('%s asks %s to delegate %s', req.managing, req.user, req.namespaces.join(' '));
      send(iqResult(stanza));
      return true;
    };
    module.hook(`iq-get/host/${P.NS_DELEGATION}:query`, requestDelegation);
    module.hook(`iq-set/host/${P.NS_DELEGATION}:query`, requestDelegation);
    // The user's answer: a submitted (or cancelled) form with the challenge, to the server.
    module.hook('message/host', ({ origin, stanza }) => {
      const from = stanza.attrs.from;
      if (!from || origin.type !== 'c2s' || !origin.full_jid) return undefined;
      const submitted = P.parseClientDelegationAnswer(stanza);
      if (!submitted) return undefined;
      const r = clients.answer(origin.full_jid, submitted.challenge, submitted.allowed);
      if (!r) {
        if (!submitted.ours) return undefined; // someone else's form after all
        send(errorReply(stanza, 'modify', 'not-acceptable', 'Unknown or expired delegation request'));
        return true;
      }
      module.log.info('%s delegates %s to %s', r.request.user, r.granted.join(' ') || 'nothing', r.request.managing);
      for (const t of r.revoked) tell(t.managing, t.user);
      tell(r.request.managing, r.request.user);
      for (const ns of r.granted) askDisco(r.request.managing, P.delegationDiscoNode(ns, true));
      return true;
    }, 10);
    module.hook('resource-unbind', ({ session }) => {
      if (session.full_jid) for (const t of clients.sessionEnded(session.full_jid)) tell(t.managing, t.user);
    });

    // ---- disco nesting (XEP-0355 §7.2) ---------------------------------------------------------------
    const nestedOf = (component: string) => nested.get(component) ?? nested.set(component, new Map()).get(component)!;
    /** Ask a managing entity for the features of each namespace delegated to it (host and bare JID nodes). */
    const askNested = (component: string) => {
      for (const [ns, d] of Object.entries(config.delegations)) {
        if (split(d.jid).host !== component || ns.startsWith(`${P.NS_DELEGATION}:`)) continue;
        for (const node of [P.delegationDiscoNode(ns), P.delegationDiscoNode(ns, true)]) askDisco(component, node);
      }
    };
    /** disco#info of `node` at a managing entity (a component's domain, or any JID in client mode). */
    const askDisco = (managing: string, node: string) => {
      const id = `nest-${++discoSeq}`;
      pendingDisco.set(id, { component: managing, node, asked: Date.now() });
      send(xml('iq', { type: 'get', from: host, to: managing, id }, xml('query', { xmlns: NS.discoInfo, node })));
    };
    const nestInto = (query: Element, bareJid: boolean) => {
      for (const [ns, d] of Object.entries(config.delegations)) {
        if (ns.startsWith(`${P.NS_DELEGATION}:`)) continue; // the special disco namespaces are forwarded, not nested
        const component = split(d.jid).host ?? d.jid;
        P.nestDiscoInfo(query, ns, nested.get(component)?.get(P.delegationDiscoNode(ns, bareJid)));
      }
    };
    // §7.2.3–7.2.4: disco#info on an account node the server does not serve, and disco#items on
    // an account (no node: the managing entity's items only, not nested with the server's; a
    // node the server does not serve), delegated under the special namespaces.
    module.hook('account-disco-unserved', ({ stanza, kind }) => {
      const special = `${P.NS_DELEGATION}:bare:disco#${kind}:*`;
      const d = config.delegations[special];
      if (!d) return undefined;
      const component = split(d.jid).host ?? d.jid;
      if (!connected(component)) {
        send(P.Delegations.unavailable(stanza));
        return true;
      }
      const r = delegated.forward(stanza, { namespace: special, component }, host);
      send(r.ok ? r.stanza : r.reply);
      return true;
    });
    module.hook('host-disco-info', ({ query }) => {
      nestInto(query, false);
    });
    module.hook('account-disco-info', ({ query, username }) => {
      nestInto(query, true);
      // Client mode: what this user delegates (asked when the user allowed it, Implementation Note 2).
      for (const [ns, managing] of clients.grantsOf(`${username}@${host}`)) P.nestDiscoInfo(query, ns, nested.get(managing)?.get(P.delegationDiscoNode(ns, true)));
    });

    // ---- roster pushes (§4.4), from the managed entity's bare JID -------------------------------------
    module.hook('roster-pushed', ({ username, item }) => {
      for (const [component, grant] of config.grants) {
        if (!connected(component)) continue;
        const push = P.rosterPushFor(grant, `${username}@${host}`, component, item);
        if (push) send(push);
      }
    });

    // ---- presence of the managed entities (§7.1) and of their contacts (§7.4) ------------------------
    const relayPresence = (component: string, presence: Element, source: 'managed-entity' | 'roster-contact') => {
      const copy = P.presenceFor(grantOf(component), presence, source, component);
      if (copy && relay(component).offer(copy)) send(copy);
    };
    const toComponents = (presence: Element, source: 'managed-entity' | 'roster-contact') => {
      for (const component of config.grants.keys()) if (connected(component)) relayPresence(component, presence, source);
    };
    /** A resource's current available presence, from its full JID; undefined when unavailable. */
    const presenceOf = (session: Session): Element | undefined => {
      if (!session.presence || !session.full_jid) return undefined;
      const copy = xml('presence', { from: session.full_jid });
      for (const c of session.presence.children) if (typeof c !== 'string') copy.cnode(c);
      return copy;
    };
    module.hook('resource-available', ({ session }) => {
      const p = presenceOf(session);
      if (p) toComponents(p, 'managed-entity');
    });
    // Unavailable: a resource that says so and stays connected, or one that goes away.
    const unavailable = (session: Session) => {
      if (session.full_jid) toComponents(xml('presence', { from: session.full_jid, type: 'unavailable' }), 'managed-entity');
    };
    const broadcastUnavailable = ({ origin, stanza, to }: StanzaEvent) => {
      if (to === undefined && stanza.attrs.type === 'unavailable' && origin.presence) unavailable(origin);
      return undefined;
    };
    module.hook('pre-presence/host', broadcastUnavailable, 10);
    module.hook('pre-presence/bare', broadcastUnavailable, 10);
    module.hook('pre-presence/full', broadcastUnavailable, 10);
    module.hook('resource-unbind', ({ session }) => unavailable(session));

    /**
     * Presence a managed entity receives from a contact it is subscribed to (to/both), from
     * another domain (this host's users are managed entities: their presence is relayed above),
     * whether or not the managed entity is online (§7.4). Kept for components connecting later.
     */
    const contactPresenceIn = ({ stanza, toNode }: StanzaEvent) => {
      const type = stanza.attrs.type;
      const from = stanza.attrs.from;
      if (!toNode || !from || (type !== undefined && type !== 'unavailable')) return undefined;
      const contact = split(from);
      if (contact.host === host || contact.host === undefined) return undefined;
      if (![...config.grants.values()].some((g) => g.presence === 'roster')) return undefined;
      const contactBare = contact.node === undefined ? contact.host : `${contact.node}@${contact.host}`;
      const subscribed = (roster: Roster) => {
        const sub = roster.items.get(contactBare)?.subscription;
        return sub === 'to' || sub === 'both';
      };
      const relayIt = () => {
        contactPresence.delete(from); // re-inserted last: the oldest go first when the cap is reached
        if (type !== 'unavailable') contactPresence.set(from, stanza);
        // A contact whose unavailable never comes (a dropped s2s link) must not grow it without end.
        if (contactPresence.size > MAX_CONTACT_PRESENCES) contactPresence.delete(contactPresence.keys().next().value!);
        toComponents(stanza, 'roster-contact');
      };
      // In order per contact; at once when the user's roster is live.
      void module.serial(`contact:${from}`, () => {
        const live = module.sessions.roster(host, toNode);
        if (live) {
          if (subscribed(live)) relayIt();
          return undefined;
        }
        return module.rosters.load(host, toNode).then(
          (r) => (subscribed(r) ? relayIt() : undefined),
          (err: unknown) => module.log.error('roster of %s@%s: %s', toNode, host, err),
        );
      });
      return undefined;
    };
    module.hook('presence/bare', contactPresenceIn, 10);
    module.hook('presence/full', contactPresenceIn, 10);

    // Loaded while a component is connected: it learns its grants now.
    const managing = new Set([...config.grants.keys(), ...Object.values(config.delegations).map((d) => split(d.jid).host ?? d.jid)]);
    for (const component of managing) if (connected(component)) advertise(component);
  },
});

function rosterQuery(roster: Roster): Element {
  const q = xml('query', { xmlns: NS.roster, ver: String(roster.version) });
  for (const [jid, item] of roster.items) {
    const el = q.c('item', { jid, subscription: item.subscription, ...(item.name ? { name: item.name } : {}), ...(item.ask ? { ask: item.ask } : {}) });
    for (const g of item.groups) el.c('group').t(g);
  }
  return q;
}
