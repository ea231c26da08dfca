//% requires_core_features: stanza-events-v1, events-async, connection-events
// Privileged entities (XEP-0356 0.4.1) and namespace delegation in admin mode (XEP-0355 0.5) for
// external components (XEP-0114): the operator grants a component, per virtual host, access to
// the users' rosters, sending messages on behalf of the server and its users, the users'
// presence, iqs of given namespaces on behalf of users, and the namespaces delegated to it. The
// grants are advertised to the component when it connects and every stanza it sends is checked
// against them (mod_component's `component-stanza` event) before it is routed.
// Decisions and bookkeeping: core/util/privilege.ts; doc/remote-admin.md describes the glue.
//
// What this module does not do yet, so it is not advertised: roster *set* (a granted set is
// advertised as get / none) and contacts' presence (presence 'roster' is advertised as
// managed_entity). Roster pushes (§4.4) are copied from mod_roster's `roster-pushed`.
import {
  NS,
  defineModule,
  errorReply,
  iqResult,
  privilege as P,
  split,
  xml,
  type Element,
  type Roster,
  type Session,
  type Stanza,
} from '../core/api.ts';

const options = {
  entities: { type: 'object', description: "Privileged components: { 'component.domain': { roster, message, presence, iq } } (XEP-0356)", default: {} },
  delegations: { type: 'object', description: "Delegated namespaces: { 'namespace': { jid: 'component.domain', filtering?: ['attr'] } } (XEP-0355 admin mode)", default: {} },
} as const;

/** What this module implements of a grant (see the header): nothing is advertised that does not work. */
function supported(g: P.EffectiveGrant): P.EffectiveGrant {
  const roster = g.roster === 'both' || g.roster === 'get' ? 'get' : 'none';
  return { ...g, roster, rosterPush: roster === 'get' && g.rosterPush, presence: g.presence === 'roster' ? 'managed_entity' : g.presence };
}

export default defineModule({
  description: 'Privileged components (XEP-0356) and namespace delegation (XEP-0355)',
  options,
  load(module) {
    const host = module.host;
    const entities = module.option('entities') as P.PrivilegeConfig;
    const delegations = module.option('delegations') as P.DelegationConfig;
    const problems = [...P.checkPrivilegeConfig(entities), ...P.checkDelegationConfig(delegations)];
    if (problems.length) throw new Error(`privilege: ${problems.join('; ')}`);
    const grants = new Map(Object.entries(entities).map(([jid, g]) => [split(jid).host ?? jid, supported(P.effectiveGrant(g))]));
    const grantOf = (component: string) => grants.get(component) ?? supported(P.effectiveGrant(undefined));
    const iqs = new P.PrivilegedIqs();
    const delegated = new P.Delegations();
    const relays = new Map<string, P.PresenceRelay>();
    const relay = (component: string) => relays.get(component) ?? relays.set(component, new P.PresenceRelay()).get(component)!;
    const connected = (component: string) => module.sessions.getComponent(component) !== undefined;
    const send = (stanza: Element) => module.send(stanza);

    if (Object.keys(delegations).length) module.addFeature(P.NS_DELEGATION);

    // ---- at connect: the grants, then the presences it may see (business rule 1) -----------------
    const advertise = (component: string) => {
      const grant = grants.get(component);
      if (grant) {
        send(P.privilegeAdvertisement(host, component, grant));
        module.log.info('privileges advertised to %s: roster %s, message %s, presence %s, iq %s', component, grant.roster, grant.message, grant.presence, [...grant.iq.keys()].join(' ') || 'none');
      }
      const d = P.delegationAdvertisement(host, component, delegations);
      if (d) send(d);
      if (grant && grant.presence !== 'none') {
        for (const s of module.sessions.boundSessions(host)) {
          const p = presenceOf(s);
          if (p) relayPresence(component, p);
        }
      }
    };
    module.hookGlobal('component-connected', ({ host: component }) => advertise(component));
    module.hookGlobal('component-disconnected', ({ host: component }) => {
      iqs.forget(component);
      for (const r of delegated.drop(component)) send(r);
      relays.get(component)?.reset();
    });

    // ---- every stanza a component sends to this host or its users ----------------------------------
    module.hookGlobal('component-stanza', ({ host: component, stanza }) => {
      const to = stanza.attrs.to;
      if (to === undefined || split(to).host !== host) return undefined;
      // An answer to an iq delegated to it.
      if (stanza.name === 'iq' && (stanza.attrs.type === 'result' || stanza.attrs.type === 'error') && to === host) {
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
          void rosterGet(component, stanza, decision.managed);
          return true;
        case 'message':
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
        const reply = iqResult(stanza, rosterQuery(await module.rosters.load(host, username)));
        reply.attrs.from = managed;
        send(reply);
        module.log('%s read the roster of %s', component, managed);
      } catch (err) {
        module.log.error('roster of %s for %s: %s', managed, component, err);
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
      const match = P.matchDelegation(stanza, delegations, host);
      if (!match) return undefined;
      if (!connected(match.component)) {
        send(P.Delegations.unavailable(stanza));
        return true;
      }
      const r = delegated.forward(stanza, match, host);
      send(r.ok ? r.stanza : r.reply);
      return true;
    };
    module.hook('iq/bare', toUsers, 10);
    module.hook('iq/host', ({ stanza }) => (stanza.attrs.type === 'get' || stanza.attrs.type === 'set' ? delegate(stanza) : undefined), 10);
    module.hook('iq/self', ({ stanza }) => (stanza.attrs.type === 'get' || stanza.attrs.type === 'set' ? delegate(stanza) : undefined), 10);
    module.setInterval(() => {
      for (const e of iqs.expire()) send(e);
      for (const e of delegated.expire()) send(e);
    }, 10_000);

    // ---- roster pushes (§4.4), from the managed entity's bare JID -------------------------------------
    module.hook('roster-pushed', ({ username, item }) => {
      for (const [component, grant] of grants) {
        if (!connected(component)) continue;
        const push = P.rosterPushFor(grant, `${username}@${host}`, component, item);
        if (push) send(push);
      }
    });

    // ---- presence of the managed entities (§7) ------------------------------------------------------
    const relayPresence = (component: string, presence: Element) => {
      const copy = P.presenceFor(grantOf(component), presence, 'managed-entity', component);
      if (copy && relay(component).offer(copy)) send(copy);
    };
    const toComponents = (presence: Element) => {
      for (const component of grants.keys()) if (connected(component)) relayPresence(component, presence);
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
      if (p) toComponents(p);
    });
    module.hook('resource-unbind', ({ session }) => {
      if (session.full_jid) toComponents(xml('presence', { from: session.full_jid, type: 'unavailable' }));
    });

    // Loaded while a component is connected: it learns its grants now.
    for (const component of grants.keys()) if (connected(component)) advertise(component);
  },
});

function rosterQuery(roster: Roster): Element {
  const q = xml('query', { xmlns: NS.roster });
  for (const [jid, item] of roster.items) {
    const el = q.c('item', { jid, subscription: item.subscription, ...(item.name ? { name: item.name } : {}), ...(item.ask ? { ask: item.ask } : {}) });
    for (const g of item.groups) el.c('group').t(g);
  }
  return q;
}
