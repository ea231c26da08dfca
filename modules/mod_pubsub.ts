//% requires_core_features: stanza-events-v1, events-async, storage-map, storage-archive, user-deleted-event
// A Publish-Subscribe service (XEP-0060) on an internal component, configured as Prosody does:
// `components: { 'pubsub.example.org': { module: 'pubsub' } }`. The engine is core/util/pubsub
// (doc/pubsub.md); this file routes what is addressed to the component domain into it:
//  - pubsub and pubsub#owner iq (nodes, items, subscriptions with options, affiliations);
//  - disco#info and disco#items, with and without a node (identity pubsub/service);
//  - messages carrying an owner's subscription authorization (§8.6) and bounced notifications
//    (§12.4: an error to a notification ends that subscription);
//  - account deletion on a local host: the account's subscriptions and affiliations go, nodes it
//    alone owned are deleted (subscribers told).
// Node owners that are local accounts have their roster consulted for the presence and roster
// access models. Data: the 'pubsub_nodes' map and 'pubsub_items' archive of the component host.
import {
  attrsOf, bare, defineModule, iqPayload, iqResult, NS, pubsub, split, StanzaError, type ModuleApi, type StanzaEvent,
} from '../core/api.ts';

const options = {
  maxItems: { type: 'integer', description: "Most items a node keeps; what pubsub#max_items 'max' means", default: 256, min: 1 },
  defaultMaxItems: { type: 'integer', description: 'pubsub#max_items of a new node', default: 20, min: 1 },
  maxPayloadSize: { type: 'integer', description: 'Largest item payload (bytes of its XML)', default: 256 * 1024, min: 1 },
  maxNodes: { type: 'integer', description: 'Most nodes the service holds', default: 10_000, min: 1 },
  maxSubscriptions: { type: 'integer', description: 'Most subscriptions one entity may hold', default: 1000, min: 1 },
  autoCreate: { type: 'boolean', description: 'A publish to a missing node creates it (XEP-0060 §7.1.4)', default: true },
  multiSubscribe: { type: 'boolean', description: 'An entity may subscribe to a node several times (§6.1.6)', default: false },
  mayCreate: {
    type: 'string',
    description: "Who may create nodes: 'local' (accounts of this server's hosts), 'everyone' or 'admins'",
    default: 'local',
    allowed: ['local', 'everyone', 'admins'],
  },
  name: { type: 'string', description: 'Name of the service in its disco identity', default: 'Publish-Subscribe' },
} as const;

export default defineModule({
  description: 'Publish-Subscribe service (XEP-0060) on a component',
  options,
  load(module: ModuleApi<typeof options>) {
    const host = module.host;
    const admins = new Set((module.config('admins') ?? []).map((a) => bare(a) ?? a));
    const isLocal = (jid: string) => {
      const domain = split(jid).host;
      return domain !== undefined && module.hosts.kind(domain) === 'virtualhost';
    };
    const mayCreate = module.option('mayCreate');

    const relationships: pubsub.RelationshipResolver = {
      async relationship(owner, contact) {
        const { node: user, host: h } = split(owner);
        if (!user || !h || module.hosts.kind(h) !== 'virtualhost') return pubsub.NO_RELATIONSHIP;
        const item = (await module.rosters.load(h, user)).items.get(contact);
        return item ? { subscription: item.subscription, groups: item.groups } : pubsub.NO_RELATIONSHIP;
      },
      async rosterGroups(owner) {
        const { node: user, host: h } = split(owner);
        if (!user || !h || module.hosts.kind(h) !== 'virtualhost') return [];
        const groups = new Set<string>();
        for (const item of (await module.rosters.load(h, user)).items.values()) for (const g of item.groups) groups.add(g);
        return [...groups];
      },
    };

    const service = new pubsub.PubSubService({
      jid: host,
      kind: 'service',
      store: pubsub.storagePubSubStore({ nodes: module.storage.map('pubsub_nodes'), items: module.storage.archive('pubsub_items') }, null),
      send: (stanza) => module.send(stanza),
      relationships,
      limits: { maxItems: module.option('maxItems'), maxPayloadSize: module.option('maxPayloadSize') },
      defaults: { max_items: Math.min(module.option('defaultMaxItems'), module.option('maxItems')) },
      autoCreate: module.option('autoCreate'),
      multiSubscribe: module.option('multiSubscribe'),
      maxNodes: module.option('maxNodes'),
      maxSubscriptions: module.option('maxSubscriptions'),
      isAdmin: (jid) => admins.has(jid),
      mayCreate: (jid) => mayCreate === 'everyone' || (mayCreate === 'local' && isLocal(jid)) || admins.has(jid),
      log: module.log,
    });

    const answer = async (stanza: StanzaEvent['stanza'], work: () => Promise<ReturnType<typeof iqResult> | undefined>): Promise<void> => {
      try {
        module.send(iqResult(stanza, await work()));
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        module.send(pubsub.errorReplyFor(stanza, err));
      }
    };

    const iq = async ({ stanza }: StanzaEvent): Promise<true> => {
      const type = stanza.attrs.type;
      if (type === 'result' || type === 'error') return true; // nothing is awaited here
      const payload = iqPayload(stanza);
      const from = stanza.attrs.from;
      if (!payload || typeof from !== 'string') throw new StanzaError('modify', 'bad-request');
      const ns = attrsOf(payload).xmlns;
      const node = attrsOf(payload).node;
      if (type === 'get' && ns === NS.discoInfo && payload.name === 'query') {
        await answer(stanza, async () => {
          const q = pubsub.discoInfoElement(await service.discoInfo(from, node), node);
          if (!node) {
            q.getChildren('identity').forEach((i) => (i.attrs.name = module.option('name')));
            q.c('feature', { var: NS.discoInfo });
            q.c('feature', { var: NS.discoItems });
          }
          return q;
        });
        return true;
      }
      if (type === 'get' && ns === NS.discoItems && payload.name === 'query') {
        await answer(stanza, async () => pubsub.discoItemsElement(await service.discoItems(from, node), node));
        return true;
      }
      if (payload.name === 'pubsub' && (ns === pubsub.NS_PUBSUB || ns === pubsub.NS_PUBSUB_OWNER)) {
        await answer(stanza, () => pubsub.handlePubSubIq(service, stanza, from));
        return true;
      }
      if (payload.name === 'ping' && ns === 'urn:xmpp:ping') {
        module.send(iqResult(stanza));
        return true;
      }
      throw new StanzaError('cancel', 'service-unavailable');
    };

    const message = async ({ stanza }: StanzaEvent): Promise<true> => {
      const from = stanza.attrs.from;
      const id = stanza.attrs.id;
      if (typeof from !== 'string') return true;
      if (stanza.attrs.type === 'error') {
        if (typeof id === 'string' && id.startsWith(pubsub.NOTIFICATION_ID_PREFIX)) {
          const error = stanza.getChild('error');
          const condition = error?.getChildElements().find((c) => attrsOf(c).xmlns === NS.stanzas)?.name ?? 'undefined-condition';
          await service.notificationBounced(from, attrsOf(error).type ?? 'cancel', condition);
        }
        return true;
      }
      try {
        await pubsub.handlePubSubMessage(service, stanza, from);
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        module.send(pubsub.errorReplyFor(stanza, err));
      }
      return true;
    };

    for (const dest of ['host', 'bare', 'full'] as const) {
      module.hook(`iq/${dest}`, (e) => (e.destType === 'host' ? iq(e) : Promise.reject(new StanzaError('cancel', 'service-unavailable'))));
      module.hook(`message/${dest}`, message);
      // Presence to the service is not used (no presence-based delivery on a component, doc/pubsub.md).
      module.hook(`presence/${dest}`, () => true);
    }

    // An account deleted on any host of this server leaves the service.
    module.hookEachHost('user-deleted', async ({ host: h, username }) => {
      if (module.hosts.kind(h) !== 'virtualhost') return undefined;
      await service.removeEntity(`${username}@${h}`);
      return undefined;
    });
  },
});
