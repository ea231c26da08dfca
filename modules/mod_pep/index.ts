//% requires_core_features: stanza-events-v1, storage-map, storage-archive, user-deleted-event, events-async
// Personal Eventing Protocol (XEP-0163): every account is a pubsub service (XEP-0060) at its bare
// JID. The engine is core/util/pubsub (doc/pubsub.md); this module is its glue:
//  - one PubSubService per account, created on first use, over the 'pubsub_nodes' map and the
//    'pubsub_items' archive of the host (durable before each result);
//  - pubsub and pubsub#owner iq to an account's bare JID (or to oneself), answered with the
//    engine's errors (application conditions included);
//  - who gets notifications: the account's own resources and the entities whose presence it
//    receives, with the features mod_caps resolved from their entity capabilities (`entity-caps`
//    event) — `<node>+notify` asks for a node; the engine applies the node's access model;
//  - the last item of each node to a resource that becomes available or gains `+notify`
//    (XEP-0163 §4.3.4, send_last_published_item on_sub_and_presence);
//  - a stanza the service sends (notifications, last items, subscription notices) to an entity
//    the account blocks (XEP-0191, asked of mod_blocking's `isBlocked` with the full address) is
//    dropped: explicit subscribers and remote contacts included, whom mod_blocking's delivery
//    checks do not see;
//  - roster changes re-check subscriptions (§8.1); bounced notifications end subscriptions
//    (XEP-0060 §12.4); account deletion removes the account's nodes and items;
//  - vCard4 in an iq (XEP-0292 0.11 §4.1, vcard4.ts) read from and written to the urn:xmpp:vcard4 node;
//  - disco: the pubsub/pep identity and the engine's features on every account, the account's
//    nodes in disco#items, a node's meta-data with disco#info and a node.
import type { Element } from '@xmpp/xml';
import {
  attrsOf, bare, CoreError, defineModule, iqPayload, iqResult, isBound, NS, parseForm, pubsub, split, StanzaError, type ModuleApi, type StanzaEvent,
} from '../../core/api.ts';
import { avatarSync } from './avatars.ts';
import { bookmarksSync } from './bookmarks.ts';
import { vcard4Iq } from './vcard4.ts';

const options = {
  maxItems: {
    type: 'integer',
    description: "Most items a node keeps; what pubsub#max_items 'max' means",
    default: 256,
    min: 1,
  },
  maxPayloadSize: {
    type: 'integer',
    description: 'Largest item payload (bytes of its XML)',
    default: 256 * 1024,
    min: 1,
  },
  maxNodes: {
    type: 'integer',
    description: 'Most nodes one account may hold',
    default: 1000,
    min: 1,
  },
  maxSubscriptions: {
    type: 'integer',
    description: 'Most subscriptions one entity may hold at one account',
    default: 1000,
    min: 1,
  },
  cachedServices: {
    type: 'integer',
    description: 'Accounts whose pubsub service (node records) is kept in memory',
    default: 1000,
    min: 1,
  },
} as const;

type Options = typeof options;

/** PEP access models (XEP-0163 §4.1, XEP-0060 §4.5): all five, authorize with the account approving requests (§8.6). */
const PEP_ACCESS_MODELS: readonly pubsub.AccessModel[] = ['open', 'presence', 'roster', 'whitelist', 'authorize'];

export default defineModule({
  description: 'Personal Eventing Protocol (XEP-0163): a pubsub service on every account',
  depends: ['caps'],
  options,
  load(module: ModuleApi<Options>) {
    const host = module.host;
    const nodes = module.storage.map('pubsub_nodes');
    const items = module.storage.archive('pubsub_items');

    // -- who hears whom: owner bare JID → entity full JID → its features -----------------------------
    const heard = new Map<string, Map<string, ReadonlySet<string>>>();

    const interest: pubsub.InterestResolver = {
      async interestedResources(owner, node) {
        const want = pubsub.notifyFeature(node);
        const out: string[] = [];
        for (const [jid, features] of heard.get(owner) ?? []) if (features.has(want)) out.push(jid);
        return out;
      },
    };

    const relationships: pubsub.RelationshipResolver = {
      async relationship(owner, contact) {
        const { node: user, host: h } = split(owner);
        if (!user || h !== host) return pubsub.NO_RELATIONSHIP;
        const item = (await module.rosters.load(host, user)).items.get(contact);
        if (!item) return pubsub.NO_RELATIONSHIP;
        return { subscription: item.subscription, groups: item.groups };
      },
      async rosterGroups(owner) {
        const { node: user } = split(owner);
        if (!user) return [];
        const groups = new Set<string>();
        for (const item of (await module.rosters.load(host, user)).items.values()) for (const g of item.groups) groups.add(g);
        return [...groups];
      },
    };

    // -- XEP-0191: nothing from the account to an entity it blocks ---------------------------------------
    /** Whether `username` blocks `to` (false without mod_blocking); throws when the blocklist cannot be read. */
    const blocks = async (username: string, to: string): Promise<boolean> => {
      try {
        return (await module.call<boolean>('blocking', 'isBlocked', username, to)) === true;
      } catch (err) {
        if (err instanceof CoreError && err.code === 'MODULE_NOT_LOADED') return false;
        throw err;
      }
    };
    /** Send for the service of `username`: in order, after the blocklist check (a blocklist that cannot be read sends nothing). */
    const sendFor = (username: string) => (stanza: Element): void => {
      const to = stanza.attrs.to;
      const own = `${username}@${host}`;
      void module.serial(`pep-send ${own}`, async () => {
        let blocked: boolean;
        try {
          blocked = typeof to === 'string' && bare(to) !== own && (await blocks(username, to));
        } catch (err) {
          module.log.error('the blocklist of %s cannot be read: %s to %s not sent: %s', own, stanza.name, to, err);
          return;
        }
        if (blocked) {
          module.log('%s blocks %s: %s not sent', own, to, stanza.name);
          return;
        }
        try {
          module.send(stanza);
        } catch (err) {
          module.log.error('sending %s to %s failed: %s', stanza.name, to, err);
        }
      });
    };

    // -- one service per account (most recently used kept) ----------------------------------------------
    const services = new Map<string, pubsub.PubSubService>();
    const newService = (username: string): pubsub.PubSubService =>
      new pubsub.PubSubService({
        jid: `${username}@${host}`,
        kind: 'pep',
        store: pubsub.storagePubSubStore({ nodes, items }, username),
        send: sendFor(username),
        relationships,
        interest,
        limits: { maxItems: module.option('maxItems'), maxPayloadSize: module.option('maxPayloadSize') },
        accessModels: PEP_ACCESS_MODELS,
        maxNodes: module.option('maxNodes'),
        maxSubscriptions: module.option('maxSubscriptions'),
        log: module.log,
      });
    const serviceOf = (username: string): pubsub.PubSubService => {
      let s = services.get(username);
      if (s) services.delete(username);
      else s = newService(username);
      services.set(username, s);
      // An evicted service only loses its cache: its data is in storage.
      while (services.size > module.option('cachedServices')) services.delete(services.keys().next().value!);
      return s;
    };

    const bookmarks = bookmarksSync({ module: module as unknown as ModuleApi, serviceOf });
    const avatars = avatarSync({ module: module as unknown as ModuleApi, serviceOf });
    vcard4Iq({ module: module as unknown as ModuleApi, serviceOf, changed: (username) => avatars.changed(username, pubsub.VCARD4_NODE) });

    // -- disco ------------------------------------------------------------------------------------------
    const features = newService('').features();
    module.addItem('account-identity', { category: 'pubsub', type: 'pep' });
    for (const f of [...features, pubsub.FEATURE_PUBSUB_ON_A_JID]) module.addItem('account-feature', f);
    // XEP-0402 §4 (the server keeps XEP-0048 in sync), XEP-0411 §2.
    for (const f of [pubsub.FEATURE_BOOKMARKS_COMPAT, pubsub.FEATURE_BOOKMARKS_COMPAT_PEP, pubsub.FEATURE_BOOKMARKS_CONVERSION]) module.addItem('account-feature', f);
    // XEP-0398 §2 (vCard ⇄ PEP avatars), XEP-0292 §3 (vCard4 over PEP).
    for (const f of [pubsub.FEATURE_PEP_VCARD_CONVERSION, pubsub.NS_VCARD4]) module.addItem('account-feature', f);
    // XEP-0223 §6 and XEP-0163 §8: the server says it offers PEP with publish-options.
    module.addIdentity('pubsub', 'pep');
    module.addFeature(pubsub.NS_PUBSUB);
    module.addFeature(pubsub.pubsubFeature('publish-options'));

    module.hook('account-disco-items', async ({ stanza, username, query }) => {
      const from = stanza.attrs.from ?? `${username}@${host}`;
      for (const item of await serviceOf(username).discoItems(from)) {
        query.c('item', { jid: item.jid, ...(item.node !== undefined ? { node: item.node } : {}), ...(item.name !== undefined ? { name: item.name } : {}) });
      }
    });

    // Queries with a node to an account: the node's meta-data (info) or its items.
    const nodeQuery = (kind: 'info' | 'items') => async ({ origin, stanza, toNode }: StanzaEvent): Promise<true | undefined> => {
      const query = iqPayload(stanza);
      const node = query ? attrsOf(query).node : undefined;
      if (!node || !toNode || !(await module.users.exists(host, toNode))) return undefined;
      const service = serviceOf(toNode);
      if (!(await service.nodeConfig(node))) return undefined; // not ours: mod_disco asks the other modules
      const from = stanza.attrs.from ?? `${toNode}@${host}`;
      try {
        const answer = kind === 'info'
          ? pubsub.discoInfoElement(await service.discoInfo(from, node), node)
          : pubsub.discoItemsElement(await service.discoItems(from, node), node);
        origin.send(iqResult(stanza, answer));
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        origin.send(pubsub.errorReplyFor(stanza, err));
      }
      return true;
    };
    for (const dest of ['bare', 'self'] as const) {
      module.hook(`iq-get/${dest}/${NS.discoInfo}:query`, nodeQuery('info'), 10);
      module.hook(`iq-get/${dest}/${NS.discoItems}:query`, nodeQuery('items'), 10);
    }

    // -- pubsub requests --------------------------------------------------------------------------------
    const request = async ({ origin, stanza, toNode, destType }: StanzaEvent): Promise<true> => {
      const username = toNode ?? '';
      if (!username || (destType === 'bare' && !(await module.users.exists(host, username)))) {
        throw new StanzaError('cancel', 'service-unavailable');
      }
      const from = stanza.attrs.from ?? `${username}@${host}`;
      const own = bare(from) === `${username}@${host}`;
      if (own) await bookmarks.migrate(username);
      const service = serviceOf(username);
      try {
        const payload = await pubsub.handlePubSubIq(service, stanza, from);
        origin.send(iqResult(stanza, payload));
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        origin.send(pubsub.errorReplyFor(stanza, err));
        return true;
      }
      const node = changedNode(stanza);
      if (own && node !== undefined) {
        // Views of what changed (XEP-0411, XEP-0398, XEP-0292), after the result: they are the server's own publishes.
        try {
          await bookmarks.changed(username, node);
          await avatars.changed(username, node);
        } catch (err) {
          module.log.error('translating %s of %s: %s', node, username, err);
        }
      }
      return true;
    };
    for (const type of ['get', 'set'] as const) {
      for (const dest of ['bare', 'self'] as const) {
        module.hook(`iq-${type}/${dest}/${pubsub.NS_PUBSUB}:pubsub`, request);
        module.hook(`iq-${type}/${dest}/${pubsub.NS_PUBSUB_OWNER}:pubsub`, request);
      }
    }

    // -- messages to the service: bounced notifications, authorization answers ---------------------------
    module.hook('message/bare', async ({ origin, stanza, toNode }) => {
      if (!toNode) return undefined;
      const from = stanza.attrs.from;
      const id = stanza.attrs.id;
      if (stanza.attrs.type === 'error' && typeof id === 'string' && id.startsWith(pubsub.NOTIFICATION_ID_PREFIX) && typeof from === 'string') {
        const error = stanza.getChild('error');
        const condition = error?.getChildElements().find((c) => attrsOf(c).xmlns === NS.stanzas)?.name ?? 'undefined-condition';
        await serviceOf(toNode).notificationBounced(from, attrsOf(error).type ?? 'cancel', condition);
        return true; // not for the user's clients
      }
      // The account answers an authorization request (XEP-0060 §8.6) from one of its resources:
      // a submitted (or cancelled) subscribe_authorization form to its own bare JID. The request
      // itself (a form of type 'form', from the service) goes on to the account's clients.
      if (isBound(origin) && origin.host === host && origin.username === toNode && isAuthorizationAnswer(stanza)) {
        try {
          await pubsub.handlePubSubMessage(serviceOf(toNode), stanza, origin.full_jid);
        } catch (err) {
          if (!(err instanceof StanzaError)) throw err;
          origin.send(pubsub.errorReplyFor(stanza, err));
        }
        return true;
      }
      return undefined;
    }, 10);

    // -- presence and capabilities ------------------------------------------------------------------------
    module.hook('entity-caps', async ({ owner, jid, features, initial }) => {
      const { node: user, host: h } = split(owner);
      if (!user || h !== host) return;
      let entities = heard.get(owner);
      const before = entities?.get(jid);
      if (features === undefined) {
        entities?.delete(jid);
        if (entities?.size === 0) heard.delete(owner);
        return;
      }
      const now = new Set(features);
      if (!entities) heard.set(owner, (entities = new Map()));
      entities.set(jid, now);
      // The last items: on its first presence every node it wants (and those it subscribed to);
      // on a caps change only the nodes it newly wants.
      const wanted: string[] = [];
      for (const f of now) {
        const node = pubsub.nodeOfNotifyFeature(f);
        if (node !== undefined && (initial || !before?.has(f))) wanted.push(node);
      }
      if (!initial && wanted.length === 0) return;
      if (!(await module.users.exists(host, user))) return;
      try {
        await serviceOf(user).sendLastItems(jid, wanted);
      } catch (err) {
        module.log.error('last items of %s to %s: %s', owner, jid, err);
      }
    });

    // -- roster changes (XEP-0163 §8.1) ---------------------------------------------------------------------
    module.hook('roster-push', async ({ host: h, username, jid }) => {
      if (h !== host) return;
      try {
        await serviceOf(username).relationshipChanged(bare(jid) ?? jid);
      } catch (err) {
        module.log.error('re-checking the subscriptions of %s at %s@%s: %s', jid, username, host, err);
      }
    });

    // -- account removal ----------------------------------------------------------------------------------
    module.hook('user-deleted', async ({ host: h, username }) => {
      if (h !== host) return undefined;
      await serviceOf(username).clear();
      services.delete(username);
      const gone = `${username}@${host}`;
      heard.delete(gone);
      for (const [, s] of services) await s.removeEntity(gone);
      return undefined;
    });
  },
});


/** The node a successful set changed (publish, retract, purge, delete), if any. */
function changedNode(iq: Element): string | undefined {
  if (iq.attrs.type !== 'set') return undefined;
  const ps = iq.getChildElements()[0];
  const op = ps?.getChildElements().find((c) => ['publish', 'retract', 'purge', 'delete'].includes(c.name));
  const node = op?.attrs.node;
  return typeof node === 'string' ? node : undefined;
}

/** A submitted or cancelled subscribe_authorization form (an owner's answer, XEP-0060 §8.6). */
function isAuthorizationAnswer(message: Element): boolean {
  return message.getChildren('x', 'jabber:x:data').some((x) => {
    const f = parseForm(x);
    return f?.formType === pubsub.FORM_SUBSCRIBE_AUTHORIZATION && (f.type === 'submit' || f.type === 'cancel');
  });
}
