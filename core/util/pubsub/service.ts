// The pubsub engine (XEP-0060) shared by PEP (XEP-0163: one service per account, at its bare JID)
// and a pubsub service component: nodes, items, subscriptions, affiliations, access models,
// publish-options, and who receives which notification. Pure logic over injected parts:
//   - a PubSubStore for durability (writes are awaited before a result is returned);
//   - `send` for the stanzas the service originates (delivering them is the caller's job);
//   - a RelationshipResolver for rosters (access models 'presence' and 'roster', blocking);
//   - for PEP, an InterestResolver: the available resources sharing presence with the account
//     that advertise `<node>+notify` through entity capabilities (XEP-0115), which the glue
//     resolves and caches.
// Operations of one service run one at a time, in call order, so concurrent requests never
// interleave their read-modify-write of a node.
//
// Errors are thrown as PubSubError (a StanzaError with the pubsub#errors condition).
import type { Element } from '@xmpp/xml';
import { randomBytes, randomUUID } from 'node:crypto';
import type { ParsedForm } from '../dataforms.ts';
import { parseBoolean } from '../dataforms.ts';
import { bare as bareOf, prep } from '../jid.ts';
import { getLogger, type Logger } from '../log.ts';
import {
  accessError, canPublishByAffiliation, isAffiliation, NO_RELATIONSHIP, sharesPresence,
  type Affiliation, type Relationship, type RelationshipResolver,
} from './access.ts';
import {
  ACCESS_MODELS, applyConfigForm, applySubscribeOptions, configSubmission, configWithPreconditions, defaultConfig, DEFAULT_SUBSCRIPTION_OPTIONS,
  effectiveMaxItems, metadataForm, nodeConfigForm, nodeConfigResult, readPublishOptions, subscribeOptionsForm, subscribeOptionsResult,
  unmetPrecondition, type AccessModel, type ApplyContext, type ConfigLimits, type NodeConfig, type Preconditions, type ServiceKind,
  type SubscriptionOptions,
} from './config.ts';
import { errors, PubSubError } from './errors.ts';
import {
  authorizationRequest, configurationEvent, deleteEvent, emptyItemsEvent, itemsEvent, notificationMessage, purgeEvent, retractEvent,
  subscriptionEvent, type MessageExtras,
} from './notify.ts';
import { NS_PUBSUB, pubsubFeature } from './ns.ts';
import { parseXml } from '../stanza.ts';
import {
  isTombstone, upgradeRecord, type NodeRecord, type PubSubStore, type StoredItem, type SubscriptionRecord, type SubscriptionState,
  type Tombstone,
} from './store.ts';

/** PEP: who wants notifications of a node, from presence and entity capabilities (XEP-0163 §4, XEP-0060 §9.2). */
export interface InterestResolver {
  /**
   * Full JIDs of the available resources that share presence with the account `owner` — its own
   * resources, its contacts' (presence the account receives) and entities that sent it directed
   * presence — and advertise `<node>+notify` in their entity capabilities. The engine applies
   * the node's access model to them.
   */
  interestedResources(owner: string, node: string): Promise<string[]>;
}

export interface ServiceOptions {
  /** The service's address: the account's bare JID for PEP, the component's domain otherwise. */
  jid: string;
  kind: ServiceKind;
  store: PubSubStore;
  /** Sends a stanza the service originates (notifications, authorization requests). */
  send: (stanza: Element) => void;
  relationships?: RelationshipResolver;
  /** PEP only: interested resources (filtered notifications). */
  interest?: InterestResolver;
  limits?: Partial<ConfigLimits>;
  /** Overrides of the kind's default node configuration. */
  defaults?: Partial<NodeConfig>;
  /** Access models offered (default: all five; without a RelationshipResolver, 'presence' and 'roster' are left out). */
  accessModels?: readonly AccessModel[];
  /** A component: may this bare JID create nodes? (default: anyone). PEP: only the account. */
  mayCreate?: (jid: string) => boolean | Promise<boolean>;
  /** Service-wide administrators: owner rights on every node; may subscribe others (trusted proxies, §6.1.3.1). */
  isAdmin?: (jid: string) => boolean;
  /** A component: create nodes on publish (§7.1.4; PEP always does, XEP-0163 §3). Default true. */
  autoCreate?: boolean;
  /** Several subscriptions per JID to one node, told apart by SubID (§6.1.6). Default false. */
  multiSubscribe?: boolean;
  /** Subscriptions one bare JID may hold at this service (§6.1.3.9). Default 1000. */
  maxSubscriptions?: number;
  /** Nodes this service may hold (create beyond it: not-allowed + max-nodes-exceeded). Default 1000. */
  maxNodes?: number;
  now?: () => number;
  newId?: () => string;
  log?: Logger;
}

export interface Subscription {
  node: string;
  jid: string;
  subid: string;
  subscription: SubscriptionState;
}

/** An item as returned by retrieval or sent in a notification. */
export interface ResultItem {
  id: string;
  publisher?: string;
  payload?: Element;
}

/** XEP-0059 request: `before: true` is an empty <before/> (the last page). */
export interface RsmRequest {
  max?: number;
  after?: string;
  before?: string | true;
  index?: number;
}

export interface RsmResult {
  count: number;
  first?: string;
  firstIndex?: number;
  last?: string;
}

export interface ItemsQuery {
  ids?: readonly string[];
  maxItems?: number;
  subid?: string;
  rsm?: RsmRequest;
}

export interface ItemsResult {
  items: ResultItem[];
  rsm?: RsmResult;
}

export interface PublishResult {
  node: string;
  itemId: string | undefined;
}

export interface SubscriptionChange {
  jid: string;
  subscription?: string;
  subid?: string;
}

export interface AffiliationChange {
  jid: string;
  affiliation?: string;
}

export interface DiscoInfo {
  identities: { category: string; type: string }[];
  features: string[];
  forms: Element[];
}

export interface DiscoItem {
  jid: string;
  node?: string;
  name?: string;
}

/** A recipient of one notification: the address, and the SubIDs to notate (§12.8). */
interface Recipient {
  to: string;
  subids: string[];
  /** Shares presence with the owner (PEP replyto, XEP-0163 §4.3.1). */
  contact: boolean;
}

/**
 * Every stanza the service sends has an id starting with this, so the glue can tell a bounced
 * notification (an error message to the service's address, §12.4, XEP-0163 §4.3.1) from other
 * errors and hand it to `notificationBounced`.
 */
export const NOTIFICATION_ID_PREFIX = 'pubsub-';

const DEFAULT_LIMITS: ConfigLimits = { maxItems: 256, maxPayloadSize: 256 * 1024 };
/** NodeIDs: non-empty, bounded, no control characters. */
const MAX_NODE_BYTES = 1023;
// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

export class PubSubService {
  readonly jid: string;
  readonly kind: ServiceKind;
  readonly limits: ConfigLimits;
  readonly accessModels: readonly AccessModel[];
  readonly #o: ServiceOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #newId: () => string;
  #nodes: Map<string, NodeRecord | Tombstone> | undefined;
  /** The last item of transient nodes (persist_items false), which XEP-0060 §12.16 lets us keep. */
  readonly #lastItems = new Map<string, StoredItem>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ServiceOptions) {
    this.#o = options;
    this.jid = options.jid;
    this.kind = options.kind;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    const offered = options.accessModels ?? ACCESS_MODELS;
    this.accessModels = options.relationships ? offered : offered.filter((m) => m !== 'presence' && m !== 'roster');
    this.#log = options.log ?? getLogger(`cadence:pubsub:${options.jid}`);
    this.#now = options.now ?? Date.now;
    this.#newId = options.newId ?? (() => randomUUID());
  }

  // ---- service description ----------------------------------------------------------------------

  /** The default configuration of a new node. */
  get defaults(): NodeConfig {
    const d = { ...defaultConfig(this.kind, this.limits), ...this.#o.defaults };
    if (!this.accessModels.includes(d.access_model)) d.access_model = this.accessModels.includes('whitelist') ? 'whitelist' : this.accessModels[0]!;
    return d;
  }

  get #ctx(): ApplyContext {
    return { kind: this.kind, limits: this.limits, accessModels: this.accessModels };
  }

  get #autoCreate(): boolean {
    return this.kind === 'pep' || this.#o.autoCreate !== false;
  }

  /**
   * The disco#info features of the service (§10). Every access model the service offers is
   * advertised, as XEP-0163 (Determining Support) asks for "all supported XEP-0060 features", so a
   * client can tell which models it may configure. (§10 words access-* as "the default access
   * model is …"; the default itself is told by <default/> and the node_config form.)
   */
  features(): string[] {
    const pep = this.kind === 'pep';
    const names = [
      ...[...this.accessModels].sort().map((m) => `access-${m}`),
      ...(this.#autoCreate ? ['auto-create'] : []),
      ...(pep ? ['auto-subscribe', 'filtered-notifications', 'last-published', 'presence-notifications', 'presence-subscribe'] : []),
      'config-node', 'create-and-configure', 'create-nodes', 'delete-items', 'delete-nodes', 'instant-nodes', 'item-ids',
      'manage-subscriptions', 'member-affiliation', 'meta-data', 'modify-affiliations', 'multi-items',
      ...(this.#o.multiSubscribe ? ['multi-subscribe'] : []),
      'outcast-affiliation', 'persistent-items', 'publish', 'publish-options', 'publish-node-full',
      ...(pep ? [] : ['publish-only-affiliation', 'publisher-affiliation']),
      'purge-nodes', 'retract-items', 'retrieve-affiliations', 'retrieve-default', 'retrieve-default-sub', 'retrieve-items',
      'retrieve-subscriptions', 'rsm', 'subscribe', 'subscription-notifications', 'subscription-options',
    ];
    return [NS_PUBSUB, ...names.map(pubsubFeature)];
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** Run `task` after every earlier operation of this service. */
  #run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(task, task);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #all(): Promise<Map<string, NodeRecord | Tombstone>> {
    if (!this.#nodes) {
      const loaded = await this.#o.store.loadNodes();
      const defaults = this.defaults;
      for (const [k, v] of loaded) if (!isTombstone(v)) loaded.set(k, upgradeRecord(v, defaults));
      this.#nodes = loaded;
    }
    return this.#nodes;
  }

  /** The node's record; item-not-found (or gone, for a node deleted with a redirect). */
  async #node(node: string | undefined): Promise<NodeRecord> {
    if (node === undefined || node === '') throw errors.badRequest('nodeid-required', 'A node is required');
    const r = (await this.#all()).get(node);
    if (r === undefined) throw errors.nodeNotFound();
    if (isTombstone(r)) throw errors.gone(r.gone);
    return r;
  }

  async #save(node: string, record: NodeRecord | Tombstone | undefined): Promise<void> {
    await this.#o.store.saveNode(node, record);
    const all = await this.#all();
    if (record === undefined) all.delete(node);
    else all.set(node, record);
  }

  #bare(jid: string): string {
    return bareOf(jid) ?? jid;
  }

  #isAdmin(bare: string): boolean {
    return this.#o.isAdmin?.(bare) ?? false;
  }

  #affiliation(r: NodeRecord, bare: string): Affiliation {
    if (this.kind === 'pep' && bare === this.jid) return 'owner';
    if (this.#isAdmin(bare)) return 'owner';
    return r.affiliations[bare] ?? 'none';
  }

  #owners(r: NodeRecord): string[] {
    if (this.kind === 'pep') return [this.jid];
    return Object.entries(r.affiliations).filter(([, a]) => a === 'owner').map(([j]) => j);
  }

  /** A memoized lookup of `bare` in the owners' rosters (the best relationship any owner has with it). */
  #relationship(r: NodeRecord, bare: string): () => Promise<Relationship> {
    let memo: Promise<Relationship> | undefined;
    return () => {
      memo ??= (async () => {
        const resolver = this.#o.relationships;
        if (!resolver) return NO_RELATIONSHIP;
        let best: Relationship = NO_RELATIONSHIP;
        const groups = new Set<string>();
        for (const owner of this.#owners(r)) {
          if (owner === bare) continue;
          const rel = await resolver.relationship(owner, bare);
          if (sharesPresence(rel)) {
            best = { subscription: rel.subscription, groups: [] };
            for (const g of rel.groups) groups.add(g);
          }
        }
        return sharesPresence(best) ? { subscription: best.subscription, groups: [...groups] } : best;
      })();
      return memo;
    };
  }

  #subscribed(r: NodeRecord, bare: string): boolean {
    return r.subscriptions.some((s) => s.state === 'subscribed' && this.#bare(s.jid) === bare);
  }

  async #accessError(r: NodeRecord, bare: string, purpose: 'subscribe' | 'retrieve'): Promise<PubSubError | undefined> {
    return accessError(r.config, this.#affiliation(r, bare), this.#relationship(r, bare), purpose, this.#subscribed(r, bare));
  }

  /** May `bare` see the node at all (disco): retrieve, or at least ask to subscribe. */
  async #visible(r: NodeRecord, bare: string): Promise<boolean> {
    if (!(await this.#accessError(r, bare, 'retrieve'))) return true;
    return r.config.subscribe && !(await this.#accessError(r, bare, 'subscribe'));
  }

  #requireOwner(r: NodeRecord, bare: string): void {
    if (this.#affiliation(r, bare) !== 'owner') throw errors.forbidden('Only owners of the node may do this');
  }

  #messageId(): string {
    return `${NOTIFICATION_ID_PREFIX}${randomBytes(9).toString('base64url')}`;
  }

  #emit(stanza: Element): void {
    try {
      this.#o.send(stanza);
    } catch (err) {
      this.#log.error('sending %s to %s failed: %s', stanza.name, String(stanza.attrs.to), err instanceof Error ? err.message : String(err));
    }
  }

  #payloadElement(s: StoredItem): Element | undefined {
    if (s.payload === undefined) return undefined;
    try {
      return parseXml(s.payload) as Element;
    } catch (err) {
      this.#log.warn('a stored item of %s does not parse (%s); sent without payload', this.jid, err instanceof Error ? err.message : String(err));
      return undefined;
    }
  }

  #resultItem(r: NodeRecord, s: StoredItem, withPayload = true): ResultItem {
    const out: ResultItem = { id: s.id };
    if (r.config.itemreply === 'publisher' && s.publisher) out.publisher = s.publisher;
    if (withPayload) {
      const p = this.#payloadElement(s);
      if (p) out.payload = p;
    }
    return out;
  }

  async #lastItem(node: string, r: NodeRecord): Promise<StoredItem | undefined> {
    if (!r.config.persist_items) return this.#lastItems.get(node);
    const [last] = await this.#o.store.getItems(node, { reverse: true, limit: 1 });
    return last;
  }

  // ---- recipients --------------------------------------------------------------------------------

  /**
   * Who receives a notification about `node` (XEP-0060 §7.1.2, XEP-0163 §4.3): approved
   * subscribers with delivery on (and pending ones with `pending`, for deletions), and for PEP the
   * interested resources of the owner and of contacts the access model admits — one notification
   * per address, with the SubIDs of its subscriptions when it has several.
   */
  async #recipients(node: string, r: NodeRecord, opts: { pending?: boolean } = {}): Promise<Recipient[]> {
    const out = new Map<string, Recipient>();
    const contactMemo = new Map<string, Promise<boolean>>();
    const isContact = (bare: string): Promise<boolean> => {
      let p = contactMemo.get(bare);
      if (!p) {
        p = bare === this.jid ? Promise.resolve(true) : this.#relationship(r, bare)().then(sharesPresence);
        contactMemo.set(bare, p);
      }
      return p;
    };
    const blocked = async (bare: string): Promise<boolean> => {
      const resolver = this.#o.relationships;
      if (this.kind !== 'pep' || !resolver?.blocked || bare === this.jid) return false;
      return resolver.blocked(this.jid, bare);
    };
    const add = async (to: string, subid: string | undefined): Promise<void> => {
      const cur = out.get(to);
      if (cur) {
        if (subid) cur.subids.push(subid);
        return;
      }
      // Only PEP uses it (replyto), so a component does not look rosters up for every subscriber.
      out.set(to, { to, subids: subid ? [subid] : [], contact: this.kind === 'pep' && (await isContact(this.#bare(to))) });
    };
    const interested = this.kind === 'pep' && this.#o.interest ? await this.#o.interest.interestedResources(this.jid, node) : [];
    const allowedCache = new Map<string, boolean>();
    const allowed = async (bare: string): Promise<boolean> => {
      let ok = allowedCache.get(bare);
      if (ok === undefined) {
        ok = !(await blocked(bare)) && !(await this.#accessError(r, bare, 'retrieve'));
        allowedCache.set(bare, ok);
      }
      return ok;
    };

    for (const s of r.subscriptions) {
      if (s.state === 'pending' ? !opts.pending : !s.deliver) continue;
      const bare = this.#bare(s.jid);
      if (s.state === 'subscribed' && !(await allowed(bare))) continue;
      if (this.kind === 'pep' && s.jid === bare) {
        // XEP-0163 §4.3.2: a bare-JID subscriber with interested resources gets one notification
        // per such resource; without presence information, one to the bare JID.
        const resources = interested.filter((j) => this.#bare(j) === bare);
        if (resources.length > 0) for (const j of resources) await add(j, s.subid);
        else await add(s.jid, s.subid);
      } else {
        await add(s.jid, s.subid);
      }
    }
    for (const j of interested) {
      if (out.has(j)) continue;
      if (await allowed(this.#bare(j))) await add(j, undefined);
    }
    for (const rec of out.values()) if (rec.subids.length < 2) rec.subids = [];
    return [...out.values()];
  }

  #notify(recipients: readonly Recipient[], r: NodeRecord, event: () => Element, extras: (rec: Recipient) => MessageExtras = () => ({})): void {
    for (const rec of recipients) {
      const type = this.kind === 'pep' ? 'headline' : r.config.notification_type;
      this.#emit(notificationMessage(this.jid, rec.to, this.#messageId(), type, event(), { ...extras(rec), subids: rec.subids }));
    }
  }

  /** Subscription state change notification to the subscriber (§12.6), and to owners when notify_sub is set. */
  #subscriptionNotice(node: string, r: NodeRecord, s: { jid: string; subid: string }, state: SubscriptionState, owners: boolean): void {
    this.#emit(notificationMessage(this.jid, s.jid, this.#messageId(), undefined, subscriptionEvent(node, s.jid, state, s.subid)));
    if (owners && r.config.notify_sub) {
      for (const o of this.#owners(r)) {
        if (o === this.#bare(s.jid)) continue;
        this.#emit(notificationMessage(this.jid, o, this.#messageId(), undefined, subscriptionEvent(node, s.jid, state, s.subid)));
      }
    }
  }

  /** The last item to a new subscriber (§6.1.7, XEP-0163 §6.1.2), delayed to its publication time. */
  async #sendLast(node: string, r: NodeRecord, to: readonly string[], known?: StoredItem): Promise<void> {
    if (!r.config.deliver_notifications || to.length === 0) return;
    const last = known ?? (await this.#lastItem(node, r));
    if (!last) return;
    for (const j of to) {
      const item = this.#resultItem(r, last, r.config.deliver_payloads);
      this.#emit(notificationMessage(this.jid, j, this.#messageId(), this.kind === 'pep' ? 'headline' : r.config.notification_type,
        itemsEvent(node, [item]), { delayedSince: last.when }));
    }
  }

  // ---- owner use cases: nodes --------------------------------------------------------------------

  /** Create a node (§8.1), with a configuration form (§8.1.3). Resolves to the NodeID (generated for an instant node). */
  createNode(requester: string, node: string | undefined, configure?: ParsedForm): Promise<string> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      await this.#mayCreate(bare);
      const all = await this.#all();
      let id = node;
      if (id === undefined || id === '') {
        do id = this.#newId(); while (all.has(id) && !isTombstone(all.get(id)));
      } else {
        this.#checkNodeId(id);
        const existing = all.get(id);
        if (existing && !isTombstone(existing)) throw errors.conflict(undefined, 'A node with this NodeID already exists');
      }
      this.#checkNodeCount(all);
      const config = configure && configure.type !== 'cancel' ? applyConfigForm(this.defaults, configure, this.#ctx) : this.defaults;
      await this.#save(id, this.#newRecord(bare, config));
      this.#lastItems.delete(id);
      this.#log('%s created node %s', bare, id);
      return id;
    });
  }

  async #mayCreate(bare: string): Promise<void> {
    if (this.kind === 'pep') {
      if (bare !== this.jid) throw errors.forbidden('Only the account may create nodes of its own service');
      return;
    }
    if (this.#isAdmin(bare)) return;
    if (this.#o.mayCreate && !(await this.#o.mayCreate(bare))) throw errors.forbidden('You may not create nodes here');
  }

  #checkNodeId(node: string): void {
    if (Buffer.byteLength(node, 'utf8') > MAX_NODE_BYTES || CONTROL.test(node)) {
      throw errors.notAcceptable(undefined, 'Invalid NodeID');
    }
  }

  #checkNodeCount(all: Map<string, NodeRecord | Tombstone>): void {
    let n = 0;
    for (const v of all.values()) if (!isTombstone(v)) n++;
    if (n >= (this.#o.maxNodes ?? 1000)) throw errors.notAllowed('max-nodes-exceeded', 'This service holds as many nodes as it may');
  }

  #newRecord(creator: string, config: NodeConfig): NodeRecord {
    return {
      config,
      creator,
      created: this.#now(),
      affiliations: this.kind === 'pep' ? {} : { [creator]: 'owner' },
      subscriptions: [],
    };
  }

  /** The configuration form of a node (§8.2.1): owners only. */
  configurationForm(requester: string, node: string): Promise<Element> {
    return this.#run(async () => {
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      return nodeConfigForm(r.config, { accessModels: this.accessModels, rosterGroups: await this.#rosterGroups(r) });
    });
  }

  async #rosterGroups(r: NodeRecord): Promise<string[]> {
    const resolver = this.#o.relationships;
    if (!resolver?.rosterGroups) return [];
    const groups = new Set<string>();
    for (const o of this.#owners(r)) for (const g of await resolver.rosterGroups(o)) groups.add(g);
    return [...groups];
  }

  /** The default node configuration form (§8.3). */
  defaultConfigurationForm(): Element {
    return nodeConfigForm(this.defaults, { accessModels: this.accessModels });
  }

  /** The node's configuration (for the glue, e.g. XEP-0398's access-model check). */
  nodeConfig(node: string): Promise<NodeConfig | undefined> {
    return this.#run(async () => {
      const r = (await this.#all()).get(node);
      return r && !isTombstone(r) ? { ...r.config } : undefined;
    });
  }

  /** Submit a configuration form (§8.2.4); a cancelled form changes nothing. */
  configure(requester: string, node: string, x: ParsedForm): Promise<void> {
    return this.#run(async () => {
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      if (x.type === 'cancel') return;
      await this.#reconfigure(node, r, applyConfigForm(r.config, x, this.#ctx));
    });
  }

  /**
   * Change some configuration fields (the server acting for the owner, e.g. XEP-0411 making the
   * bookmarks node private), checked like a submitted form.
   */
  configureValues(requester: string, node: string, values: Partial<NodeConfig>): Promise<void> {
    return this.#run(async () => {
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      await this.#reconfigure(node, r, applyConfigForm(r.config, configSubmission(values), this.#ctx));
    });
  }

  async #reconfigure(node: string, r: NodeRecord, config: NodeConfig): Promise<void> {
    const before = r.config;
    const next: NodeRecord = { ...r, config };
    await this.#save(node, next);
    if (before.persist_items && !config.persist_items) {
      // Transient from now on: keep only the last item, in memory.
      const last = await this.#lastItem(node, r);
      await this.#o.store.deleteItems(node);
      if (last) this.#lastItems.set(node, last);
    } else if (!before.persist_items && config.persist_items) {
      this.#lastItems.delete(node);
    }
    if (config.persist_items) await this.#trim(node, next);
    if (before.access_model !== config.access_model || before.roster_groups_allowed.join('\n') !== config.roster_groups_allowed.join('\n')) {
      await this.#recheckSubscriptions(node, next, undefined);
    }
    if (config.notify_config && config.deliver_notifications) {
      const recipients = await this.#recipients(node, next);
      this.#notify(recipients, next, () => configurationEvent(node, config.deliver_payloads ? nodeConfigResult(config) : undefined));
    }
  }

  /** Keep at most max_items (oldest first out); resolves to the ids removed. */
  async #trim(node: string, r: NodeRecord): Promise<string[]> {
    const max = effectiveMaxItems(r.config, this.limits);
    const count = await this.#o.store.countItems(node);
    if (count <= max) return [];
    const oldest = await this.#o.store.getItems(node, { limit: count - max });
    return this.#o.store.deleteItems(node, oldest.map((i) => i.id));
  }

  /**
   * Cancel subscriptions that lost access (XEP-0163 §8.1 after a roster change; also after the
   * access model changed), telling each former subscriber (§12.6). Only `contact`'s when given.
   */
  async #recheckSubscriptions(node: string, r: NodeRecord, contact: string | undefined): Promise<void> {
    const lost: SubscriptionRecord[] = [];
    for (const s of r.subscriptions) {
      if (s.state !== 'subscribed') continue;
      const bare = this.#bare(s.jid);
      if (contact !== undefined && bare !== contact) continue;
      const aff = this.#affiliation(r, bare);
      if (await accessError(r.config, aff, this.#relationship(r, bare), 'subscribe', false)) lost.push(s);
    }
    if (lost.length === 0) return;
    const next: NodeRecord = { ...r, subscriptions: r.subscriptions.filter((s) => !lost.includes(s)) };
    await this.#save(node, next);
    for (const s of lost) this.#subscriptionNotice(node, next, s, 'none', true);
  }

  /** Delete a node (§8.4), telling subscribers (pending ones included) when notify_delete is set. */
  deleteNode(requester: string, node: string, redirect?: string): Promise<void> {
    return this.#run(async () => {
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      await this.#deleteNode(node, r, redirect);
    });
  }

  async #deleteNode(node: string, r: NodeRecord, redirect: string | undefined): Promise<void> {
    const recipients = r.config.notify_delete && r.config.deliver_notifications ? await this.#recipients(node, r, { pending: true }) : [];
    await this.#o.store.deleteItems(node);
    await this.#save(node, redirect ? { gone: redirect } : undefined);
    this.#lastItems.delete(node);
    this.#notify(recipients, r, () => deleteEvent(node, redirect));
    this.#log('node %s of %s deleted', node, this.jid);
  }

  /** Remove every item of a node (§8.5): owners and publishers; one purge notification. */
  purge(requester: string, node: string): Promise<void> {
    return this.#run(async () => {
      const r = await this.#node(node);
      const aff = this.#affiliation(r, this.#bare(requester));
      if (aff !== 'owner' && aff !== 'publisher') throw errors.forbidden('Only owners and publishers may purge the node');
      if (!r.config.persist_items) throw errors.unsupported('persistent-items', 'The node does not keep items');
      await this.#o.store.deleteItems(node);
      this.#lastItems.delete(node);
      if (r.config.notify_retract && r.config.deliver_notifications) this.#notify(await this.#recipients(node, r), r, () => purgeEvent(node));
    });
  }

  // ---- publisher use cases -----------------------------------------------------------------------

  /**
   * Publish (§7.1): `item` is the <item/> element, or undefined for a publish without one.
   * `options` are publish-options preconditions (§7.1.5): a submitted form, or already read.
   * A missing node is created (PEP always, XEP-0163 §3; a component when auto-create is on), with
   * the preconditions as its configuration; an existing node must meet them (conflict +
   * precondition-not-met otherwise).
   */
  publish(
    requester: string,
    node: string | undefined,
    itemOrItems: Element | readonly Element[] | undefined,
    options?: ParsedForm | Preconditions,
  ): Promise<PublishResult> {
    return this.#run(async () => {
      if (node === undefined || node === '') throw errors.badRequest('nodeid-required', 'A node is required');
      const many = Array.isArray(itemOrItems) ? itemOrItems : undefined;
      const item = many ? many[0] : (itemOrItems as Element | undefined);
      if (many && many.length > 1) {
        // Batch publishing was removed in version 1.13; §12.19's error still names the case
        // where the batch would not even fit the node.
        const r = (await this.#all()).get(node);
        const max = r && !isTombstone(r) ? effectiveMaxItems(r.config, this.limits) : effectiveMaxItems(this.defaults, this.limits);
        if (many.length > max) throw errors.notAllowed('max-items-exceeded', `The node keeps at most ${max} items`);
        throw errors.badRequest(undefined, 'Publish one item per request');
      }
      const bare = this.#bare(requester);
      const pre = options === undefined ? undefined : 'fields' in options ? readPublishOptions(options, this.#ctx) : options;
      const all = await this.#all();
      let r = all.get(node);
      let created = false;
      if (r === undefined || isTombstone(r)) {
        if (!this.#autoCreate) {
          if (isTombstone(r)) throw errors.gone(r.gone);
          throw errors.nodeNotFound();
        }
        await this.#mayCreate(bare);
        this.#checkNodeId(node);
        this.#checkNodeCount(all);
        const config = pre ? configWithPreconditions(this.defaults, pre, this.kind) : this.defaults;
        r = this.#newRecord(bare, config);
        created = true;
      } else if (pre) {
        const unmet = unmetPrecondition(r.config, pre, this.kind);
        if (unmet) throw errors.conflict('precondition-not-met', `The node's ${unmet} differs from the precondition`);
      }
      const record = r;
      const aff = this.#affiliation(record, bare);
      if (!this.#mayPublish(record, aff, bare)) throw errors.forbidden('You may not publish to this node');

      const c = record.config;
      if (item === undefined) {
        if (c.persist_items) throw errors.badRequest('item-required', 'This node keeps items: publish an item');
        if (c.deliver_payloads) throw errors.badRequest('payload-required', 'This node delivers payloads: publish an item with one');
      } else if (!c.persist_items && !c.deliver_payloads) {
        throw errors.badRequest('item-forbidden', 'This node is transient and notification-only: publish without an item');
      }
      const payload = item ? this.#checkPayload(item, c) : undefined;
      const itemId = item ? (typeof item.attrs.id === 'string' && item.attrs.id !== '' ? item.attrs.id : this.#newId()) : undefined;

      if (item && c.persist_items && c.publish_node_full === 'reject') {
        const count = await this.#o.store.countItems(node);
        const exists = !created && (await this.#o.store.getItems(node, { ids: [itemId!] })).length > 0;
        if (!exists && count >= effectiveMaxItems(c, this.limits)) throw errors.conflict('node-full', 'The node is full');
      }
      if (created) {
        await this.#save(node, record);
        this.#log('%s auto-created node %s', bare, node);
      }
      let stored: StoredItem | undefined;
      let evicted: string[] = [];
      if (item) {
        stored = { id: itemId!, publisher: bare, payload: payload?.toString(), when: this.#now() };
        if (c.persist_items) {
          await this.#o.store.putItem(node, stored);
          evicted = await this.#trim(node, record);
        } else {
          this.#lastItems.set(node, stored);
        }
      }
      if (c.deliver_notifications) {
        const recipients = await this.#recipients(node, record);
        const event = (): Element => stored ? itemsEvent(node, [this.#resultItem(record, stored, c.deliver_payloads)]) : emptyItemsEvent(node);
        const replyto = this.kind === 'pep' && requester.includes('/') ? requester : undefined;
        this.#notify(recipients, record, event, (rec) => (replyto && rec.contact ? { replyto } : {}));
        // §7.1.2.5 retract-oldest: subscribers keeping several items learn which one went. On a
        // singleton node (max_items 1) the new item replaces the old one by definition (§12.20).
        if (evicted.length > 0 && c.publish_node_full === 'retract-oldest' && c.notify_retract && effectiveMaxItems(c, this.limits) > 1) {
          this.#notify(recipients, record, () => retractEvent(node, evicted));
        }
      }
      return { node, itemId };
    });
  }

  #mayPublish(r: NodeRecord, aff: Affiliation, bare: string): boolean {
    if (aff === 'outcast') return false;
    if (canPublishByAffiliation(aff)) return true;
    if (r.config.publish_model === 'open') return true;
    return r.config.publish_model === 'subscribers' && this.#subscribed(r, bare);
  }

  /** The item's payload, checked (§7.1.3.5, §7.1.3.6), as a standalone element with its namespace. */
  #checkPayload(item: Element, c: NodeConfig): Element | undefined {
    const elements = item.getChildElements();
    const text = item.children.filter((ch): ch is string => typeof ch === 'string').join('');
    if (elements.length > 1 || text.trim() !== '') throw errors.badRequest('invalid-payload', 'An item holds exactly one payload element');
    const el = elements[0];
    if (!el) {
      if (c.deliver_payloads) throw errors.badRequest('payload-required', 'This node delivers payloads: the item needs one');
      return undefined;
    }
    const ns = el.getNS();
    if (!ns || ns === NS_PUBSUB) throw errors.badRequest('invalid-payload', 'The payload needs a namespace of its own');
    const standalone = parseXml(el.toString()) as Element;
    if (standalone.attrs.xmlns === undefined) standalone.attrs.xmlns = ns;
    const max = Math.min(c.max_payload_size, this.limits.maxPayloadSize);
    if (Buffer.byteLength(standalone.toString(), 'utf8') > max) {
      throw errors.notAcceptable('payload-too-big', `The payload is larger than ${max} bytes`);
    }
    return standalone;
  }

  /**
   * Retract items (§7.2). `notify`: the request's notify attribute (undefined: the node's
   * notify_retract decides). All ids must exist, or nothing is retracted.
   */
  retract(requester: string, node: string | undefined, ids: readonly string[], notify?: boolean): Promise<void> {
    return this.#run(async () => {
      if (node === undefined || node === '') throw errors.badRequest('nodeid-required', 'A node is required');
      if (ids.length === 0 || ids.some((i) => i === '')) throw errors.badRequest('item-required', 'Name the item to retract');
      const r = await this.#node(node);
      if (!r.config.persist_items) throw errors.unsupported('persistent-items', 'The node does not keep items');
      const bare = this.#bare(requester);
      const aff = this.#affiliation(r, bare);
      const found = await this.#o.store.getItems(node, { ids });
      if (found.length !== new Set(ids).size) {
        if (!this.#mayPublish(r, aff, bare)) throw errors.forbidden('You may not retract items of this node');
        throw errors.itemNotFound();
      }
      const anyItem = aff === 'owner' || aff === 'publisher';
      if (!anyItem && !(this.#mayPublish(r, aff, bare) && found.every((i) => i.publisher === bare))) {
        throw errors.forbidden('You may retract only items you published');
      }
      const removed = await this.#o.store.deleteItems(node, ids);
      if ((notify ?? r.config.notify_retract) && r.config.deliver_notifications && removed.length > 0) {
        this.#notify(await this.#recipients(node, r), r, () => retractEvent(node, removed));
      }
    });
  }

  // ---- subscriber use cases ----------------------------------------------------------------------

  /** Retrieve items (§6.5): all, by id, the most recent max_items, or a page (XEP-0059). */
  items(requester: string, node: string | undefined, q: ItemsQuery = {}): Promise<ItemsResult> {
    return this.#run(async () => {
      const r = await this.#node(node);
      const id = node!;
      const bare = this.#bare(requester);
      const denied = await this.#accessError(r, bare, 'retrieve');
      if (denied) throw denied;
      const mine = r.subscriptions.filter((s) => s.state === 'subscribed' && this.#bare(s.jid) === bare);
      if (q.subid !== undefined) {
        if (!mine.some((s) => s.subid === q.subid)) throw errors.notAcceptable('invalid-subid', 'No such subscription');
      } else if (mine.length > 1 && (r.config.access_model === 'authorize' || r.config.access_model === 'whitelist') && this.#affiliation(r, bare) === 'none') {
        throw errors.badRequest('subid-required', 'You have several subscriptions: name one');
      }
      if (!r.config.persist_items) {
        const last = this.#lastItems.get(id);
        const wanted = last && (!q.ids || q.ids.includes(last.id));
        return { items: wanted ? [this.#resultItem(r, last)] : [] };
      }
      const store = this.#o.store;
      if (q.ids) {
        return { items: (await store.getItems(id, { ids: q.ids })).map((s) => this.#resultItem(r, s)) };
      }
      if (q.rsm) return this.#page(id, r, q.rsm, q.maxItems);
      const stored = q.maxItems !== undefined
        ? (await store.getItems(id, { reverse: true, limit: q.maxItems })).reverse()
        : await store.getItems(id);
      return { items: stored.map((s) => this.#resultItem(r, s)) };
    });
  }

  async #page(node: string, r: NodeRecord, rsm: RsmRequest, maxItems: number | undefined): Promise<ItemsResult> {
    const store = this.#o.store;
    const max = Math.min(rsm.max ?? this.limits.maxItems, this.limits.maxItems);
    let all: StoredItem[] | undefined;
    if (maxItems !== undefined) all = (await store.getItems(node, { reverse: true, limit: maxItems })).reverse();
    const count = all ? all.length : await store.countItems(node);
    let page: StoredItem[];
    let firstIndex: number;
    if (all) {
      let start = 0;
      let end = all.length;
      if (rsm.after !== undefined) {
        const at = all.findIndex((i) => i.id === rsm.after);
        if (at < 0) throw errors.itemNotFound('No item with that id in this result set');
        start = at + 1;
      }
      if (typeof rsm.before === 'string') {
        const at = all.findIndex((i) => i.id === rsm.before);
        if (at < 0) throw errors.itemNotFound('No item with that id in this result set');
        end = at;
      }
      if (rsm.index !== undefined) start = rsm.index;
      if (rsm.before !== undefined && rsm.after === undefined && rsm.index === undefined) start = Math.max(start, end - max);
      page = all.slice(start, Math.min(end, start + max));
      firstIndex = start;
    } else if (rsm.before !== undefined && rsm.after === undefined) {
      page = (await store.getItems(node, { ...(rsm.before === true ? {} : { before: rsm.before }), reverse: true, limit: max })).reverse();
      firstIndex = page[0] ? await store.countItems(node, { before: page[0].id }) : 0;
    } else if (rsm.index !== undefined && rsm.after === undefined) {
      page = (await store.getItems(node, { limit: rsm.index + max })).slice(rsm.index);
      firstIndex = rsm.index;
    } else {
      page = await store.getItems(node, { ...(rsm.after !== undefined ? { after: rsm.after } : {}), limit: max });
      firstIndex = page[0] ? await store.countItems(node, { before: page[0].id }) : 0;
    }
    const res: RsmResult = { count };
    if (page.length > 0) {
      res.first = page[0]!.id;
      res.firstIndex = firstIndex;
      res.last = page[page.length - 1]!.id;
    }
    return { items: page.map((s) => this.#resultItem(r, s)), rsm: res };
  }

  /**
   * Subscribe `jid` (§6.1), optionally with subscription options (§6.3.7). Resolves to the
   * subscription ('pending' under the authorize model) and, with options, the resulting form.
   */
  subscribe(requester: string, node: string | undefined, jid: string | undefined, options?: ParsedForm): Promise<Subscription & { options?: Element }> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      if (jid === undefined || jid === '') throw errors.badRequest('jid-required', 'Name the JID to subscribe');
      const subscriber = prep(jid);
      if (subscriber === null) throw errors.badRequest('invalid-jid', 'Invalid JID');
      const subscriberBare = this.#bare(subscriber);
      if (subscriberBare !== bare && !this.#isAdmin(bare)) throw errors.badRequest('invalid-jid', "You may subscribe only your own JIDs");
      const r = await this.#node(node);
      const id = node!;
      if (!r.config.subscribe) throw errors.unsupported('subscribe', 'This node does not allow subscriptions');
      const aff = this.#affiliation(r, subscriberBare);
      const existing = r.subscriptions.filter((s) => s.jid === subscriber);
      if (existing.some((s) => s.state === 'pending')) throw errors.notAuthorized('pending-subscription', 'Your subscription request is pending');
      const denied = await accessError(r.config, aff, this.#relationship(r, subscriberBare), 'subscribe', false);
      if (denied) throw denied;
      const opts = options ? applySubscribeOptions(DEFAULT_SUBSCRIPTION_OPTIONS, options) : undefined;
      const current = existing[0];
      if (current && !this.#o.multiSubscribe) {
        // §6.1.6: without multi-subscribe, answer with the current subscription.
        let rec = current;
        if (opts) {
          rec = { ...current, deliver: opts.deliver };
          await this.#save(id, { ...r, subscriptions: r.subscriptions.map((s) => (s === current ? rec : s)) });
        }
        return { node: id, jid: subscriber, subid: rec.subid, subscription: 'subscribed', ...(opts ? { options: subscribeOptionsResult(opts) } : {}) };
      }
      const mine = [...(await this.#all()).values()].reduce(
        (n, v) => n + (isTombstone(v) ? 0 : v.subscriptions.filter((s) => this.#bare(s.jid) === subscriberBare).length), 0);
      if (mine >= (this.#o.maxSubscriptions ?? 1000)) throw errors.tooManySubscriptions();
      const pending = r.config.access_model === 'authorize' && aff === 'none';
      const rec: SubscriptionRecord = {
        jid: subscriber,
        subid: this.#newId(),
        state: pending ? 'pending' : 'subscribed',
        deliver: (opts ?? DEFAULT_SUBSCRIPTION_OPTIONS).deliver,
      };
      const next: NodeRecord = { ...r, subscriptions: [...r.subscriptions, rec] };
      await this.#save(id, next);
      if (pending) {
        this.#askOwners(id, next, rec);
      } else {
        if (next.config.notify_sub) {
          for (const o of this.#owners(next)) {
            if (o !== subscriberBare) this.#emit(notificationMessage(this.jid, o, this.#messageId(), undefined, subscriptionEvent(id, rec.jid, 'subscribed', rec.subid)));
          }
        }
        if (next.config.send_last_published_item !== 'never' && rec.deliver) await this.#sendLast(id, next, await this.#addresses(id, rec));
      }
      return { node: id, jid: subscriber, subid: rec.subid, subscription: rec.state, ...(opts ? { options: subscribeOptionsResult(opts) } : {}) };
    });
  }

  /** Where notifications for one subscription go (XEP-0163 §4.3.2 for PEP bare JIDs). */
  async #addresses(node: string, s: SubscriptionRecord): Promise<string[]> {
    const bare = this.#bare(s.jid);
    if (this.kind !== 'pep' || s.jid !== bare || !this.#o.interest) return [s.jid];
    const resources = (await this.#o.interest.interestedResources(this.jid, node)).filter((j) => this.#bare(j) === bare);
    return resources.length > 0 ? resources : [s.jid];
  }

  #askOwners(node: string, r: NodeRecord, s: SubscriptionRecord): void {
    for (const o of this.#owners(r)) {
      this.#emit(authorizationRequest(this.jid, o, this.#messageId(), { node, subscriber: s.jid, subid: s.subid }));
    }
  }

  /** Unsubscribe (§6.2). */
  unsubscribe(requester: string, node: string | undefined, jid: string | undefined, subid?: string): Promise<Subscription> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      if (jid === undefined || jid === '') throw errors.badRequest('jid-required', 'Name the subscribed JID');
      const subscriber = prep(jid);
      if (subscriber === null) throw errors.badRequest('invalid-jid', 'Invalid JID');
      const r = await this.#node(node);
      const id = node!;
      if (this.#bare(subscriber) !== bare && !this.#isAdmin(bare)) throw errors.forbidden('You may not unsubscribe another entity');
      const s = this.#pickSubscription(r, subscriber, subid, 'cancel');
      const next: NodeRecord = { ...r, subscriptions: r.subscriptions.filter((x) => x !== s) };
      await this.#save(id, next);
      if (next.config.notify_sub && s.state === 'subscribed') {
        for (const o of this.#owners(next)) {
          if (o !== this.#bare(subscriber)) this.#emit(notificationMessage(this.jid, o, this.#messageId(), undefined, subscriptionEvent(id, s.jid, 'none', s.subid)));
        }
      }
      return { node: id, jid: subscriber, subid: s.subid, subscription: 'none' };
    });
  }

  /** The one subscription of `jid` a request names (§6.2.3 and §6.3.4 errors). */
  #pickSubscription(r: NodeRecord, jid: string, subid: string | undefined, notSubscribedType: 'cancel' | 'modify'): SubscriptionRecord {
    const subs = r.subscriptions.filter((s) => s.jid === jid);
    if (subs.length === 0) throw errors.notSubscribed(notSubscribedType);
    if (subid !== undefined && subid !== '') {
      const s = subs.find((x) => x.subid === subid);
      if (!s) throw errors.notAcceptable('invalid-subid', 'No subscription with that SubID');
      return s;
    }
    if (subs.length > 1) throw errors.badRequest('subid-required', 'Several subscriptions: name one by SubID');
    return subs[0]!;
  }

  #optionsTarget(requester: string, jid: string | undefined): string {
    if (jid === undefined || jid === '') throw errors.badRequest('jid-required', 'Name the subscribed JID');
    const subscriber = prep(jid);
    if (subscriber === null) throw errors.badRequest('invalid-jid', 'Invalid JID');
    const bare = this.#bare(requester);
    if (this.#bare(subscriber) !== bare && !this.#isAdmin(bare)) throw errors.forbidden("You may not see another entity's options");
    return subscriber;
  }

  /** The subscription options form (§6.3.2). */
  subscriptionOptions(requester: string, node: string | undefined, jid: string | undefined, subid?: string): Promise<Element> {
    return this.#run(async () => {
      const subscriber = this.#optionsTarget(requester, jid);
      const r = await this.#node(node);
      const s = this.#pickSubscription(r, subscriber, subid, 'modify');
      return subscribeOptionsForm({ deliver: s.deliver });
    });
  }

  /** Submit subscription options (§6.3.5). */
  setSubscriptionOptions(requester: string, node: string | undefined, jid: string | undefined, x: ParsedForm, subid?: string): Promise<void> {
    return this.#run(async () => {
      const subscriber = this.#optionsTarget(requester, jid);
      const r = await this.#node(node);
      const s = this.#pickSubscription(r, subscriber, subid, 'modify');
      if (x.type === 'cancel') return;
      const o: SubscriptionOptions = applySubscribeOptions({ deliver: s.deliver }, x);
      await this.#save(node!, { ...r, subscriptions: r.subscriptions.map((v) => (v === s ? { ...s, deliver: o.deliver } : v)) });
    });
  }

  /** Default subscription options (§6.4), of the service or of an existing node. */
  defaultSubscriptionOptions(node?: string): Promise<Element> {
    return this.#run(async () => {
      if (node !== undefined && node !== '') await this.#node(node);
      return subscribeOptionsForm(DEFAULT_SUBSCRIPTION_OPTIONS);
    });
  }

  // ---- entity use cases --------------------------------------------------------------------------

  /** The requester's subscriptions (§5.6), at one node or all. */
  subscriptionsOf(requester: string, node?: string): Promise<Subscription[]> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      const out: Subscription[] = [];
      const visit = (id: string, r: NodeRecord): void => {
        for (const s of r.subscriptions) {
          if (this.#bare(s.jid) === bare) out.push({ node: id, jid: s.jid, subid: s.subid, subscription: s.state });
        }
      };
      if (node !== undefined && node !== '') visit(node, await this.#node(node));
      else for (const [id, r] of await this.#all()) if (!isTombstone(r)) visit(id, r);
      return out;
    });
  }

  /** The requester's affiliations (§5.7), at one node or all; 'none' is not listed. */
  affiliationsOf(requester: string, node?: string): Promise<{ node: string; affiliation: Affiliation }[]> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      const out: { node: string; affiliation: Affiliation }[] = [];
      const visit = (id: string, r: NodeRecord): void => {
        const a = this.#affiliation(r, bare);
        if (a !== 'none') out.push({ node: id, affiliation: a });
      };
      if (node !== undefined && node !== '') visit(node, await this.#node(node));
      else for (const [id, r] of await this.#all()) if (!isTombstone(r)) visit(id, r);
      return out;
    });
  }

  // ---- owner use cases: subscriptions and affiliations (§8.8, §8.9) -----------------------------

  /** The node's subscriptions (§8.8.1): approved ones, not pending. */
  nodeSubscriptions(requester: string, node: string | undefined): Promise<Subscription[]> {
    return this.#run(async () => {
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      return r.subscriptions.filter((s) => s.state === 'subscribed').map((s) => ({ node: node!, jid: s.jid, subid: s.subid, subscription: s.state }));
    });
  }

  /**
   * Modify subscriptions (§8.8.2): a delta. Valid entries are applied; the invalid ones come back
   * with their unchanged state (the caller answers not-acceptable with them, §8.8.2.4).
   */
  modifySubscriptions(requester: string, node: string | undefined, changes: readonly SubscriptionChange[]): Promise<Subscription[]> {
    return this.#run(async () => {
      const r = await this.#node(node);
      const id = node!;
      this.#requireOwner(r, this.#bare(requester));
      let subs = [...r.subscriptions];
      const failed: Subscription[] = [];
      const notices: { s: SubscriptionRecord; state: SubscriptionState }[] = [];
      const newlySubscribed: SubscriptionRecord[] = [];
      for (const ch of changes) {
        const jid = prep(ch.jid);
        const current = jid === null ? [] : subs.filter((s) => s.jid === jid && (ch.subid === undefined || s.subid === ch.subid));
        const fail = (): void => {
          failed.push({ node: id, jid: ch.jid, subid: current[0]?.subid ?? ch.subid ?? '', subscription: current[0]?.state ?? 'none' });
        };
        if (jid === null) { fail(); continue; }
        if (ch.subscription === undefined) continue;
        if (ch.subscription === 'none') {
          if (current.length === 0) continue;
          subs = subs.filter((s) => !current.includes(s));
          for (const s of current) notices.push({ s, state: 'none' });
        } else if (ch.subscription === 'subscribed') {
          if (this.#affiliation(r, this.#bare(jid)) === 'outcast') { fail(); continue; }
          if (current.length === 0) {
            const rec: SubscriptionRecord = { jid, subid: ch.subid ?? this.#newId(), state: 'subscribed', deliver: true };
            subs.push(rec);
            notices.push({ s: rec, state: 'subscribed' });
            newlySubscribed.push(rec);
          } else {
            subs = subs.map((s) => {
              if (!current.includes(s) || s.state === 'subscribed') return s;
              const approved: SubscriptionRecord = { ...s, state: 'subscribed' };
              notices.push({ s: approved, state: 'subscribed' });
              newlySubscribed.push(approved);
              return approved;
            });
          }
        } else {
          fail();
        }
      }
      const next: NodeRecord = { ...r, subscriptions: subs };
      await this.#save(id, next);
      for (const n of notices) this.#subscriptionNotice(id, next, n.s, n.state, false);
      if (next.config.send_last_published_item !== 'never') {
        for (const s of newlySubscribed) await this.#sendLast(id, next, await this.#addresses(id, s));
      }
      return failed;
    });
  }

  /** The node's affiliations (§8.9.1): everything but 'none'. */
  nodeAffiliations(requester: string, node: string | undefined): Promise<{ jid: string; affiliation: Affiliation }[]> {
    return this.#run(async () => {
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      const list = Object.entries(r.affiliations).map(([jid, affiliation]) => ({ jid, affiliation }));
      return this.kind === 'pep' ? [{ jid: this.jid, affiliation: 'owner' as Affiliation }, ...list] : list;
    });
  }

  /**
   * Modify affiliations (§8.9.2), following the state chart of §4.1: the node keeps at least one
   * owner (PEP: the account stays its owner). Valid entries are applied; failed ones come back
   * with their unchanged affiliation. Outcasts lose their subscriptions; pending requests of new
   * owners and publishers are approved, of outcasts denied (§8.7).
   */
  modifyAffiliations(requester: string, node: string | undefined, changes: readonly AffiliationChange[]): Promise<{ jid: string; affiliation: Affiliation }[]> {
    return this.#run(async () => {
      const r = await this.#node(node);
      const id = node!;
      this.#requireOwner(r, this.#bare(requester));
      const seen = new Set<string>();
      for (const ch of changes) {
        const j = prep(ch.jid) ?? ch.jid;
        if (seen.has(j)) throw errors.badRequest(undefined, 'An entity appears twice in the request');
        seen.add(j);
        if (ch.affiliation !== undefined && !isAffiliation(ch.affiliation)) throw errors.badRequest(undefined, `Unknown affiliation '${ch.affiliation}'`);
        if (this.kind === 'pep' && (ch.affiliation === 'publisher' || ch.affiliation === 'publish-only')) {
          throw errors.unsupported(`${ch.affiliation}-affiliation`, 'A personal eventing node has one publisher: its account');
        }
      }
      const affs: Record<string, Affiliation> = { ...r.affiliations };
      const failed: { jid: string; affiliation: Affiliation }[] = [];
      for (const ch of changes) {
        const jid = prep(ch.jid);
        const bare = jid === null ? undefined : bareOf(jid);
        if (jid === null || bare !== jid) { failed.push({ jid: ch.jid, affiliation: 'none' }); continue; }
        if (ch.affiliation === undefined) continue;
        const want = ch.affiliation as Affiliation;
        const was = this.kind === 'pep' && jid === this.jid ? 'owner' : affs[jid] ?? 'none';
        if (this.kind === 'pep' && jid === this.jid) {
          if (want !== 'owner') failed.push({ jid, affiliation: 'owner' });
          continue;
        }
        if (was === 'owner' && want !== 'owner' && Object.values(affs).filter((a) => a === 'owner').length <= 1) {
          failed.push({ jid, affiliation: 'owner' });
          continue;
        }
        if (want === 'none') delete affs[jid];
        else affs[jid] = want;
      }
      let subs = r.subscriptions;
      const notices: { s: SubscriptionRecord; state: SubscriptionState }[] = [];
      for (const [jid, a] of Object.entries(affs)) {
        if (r.affiliations[jid] === a) continue;
        if (a === 'outcast') {
          for (const s of subs) if (this.#bare(s.jid) === jid) notices.push({ s, state: 'none' });
          subs = subs.filter((s) => this.#bare(s.jid) !== jid);
        } else if (a === 'owner' || a === 'publisher') {
          subs = subs.map((s) => {
            if (s.state !== 'pending' || this.#bare(s.jid) !== jid) return s;
            const approved: SubscriptionRecord = { ...s, state: 'subscribed' };
            notices.push({ s: approved, state: 'subscribed' });
            return approved;
          });
        }
      }
      const next: NodeRecord = { ...r, affiliations: affs, subscriptions: subs };
      await this.#save(id, next);
      for (const n of notices) this.#subscriptionNotice(id, next, n.s, n.state, false);
      return failed;
    });
  }

  // ---- pending subscriptions (§8.6, §8.7) ---------------------------------------------------------

  /**
   * An owner's answer to an authorization request (§8.6): a submitted pubsub#subscribe_authorization
   * form. A cancelled form leaves the request pending.
   */
  authorize(requester: string, x: ParsedForm): Promise<void> {
    return this.#run(async () => {
      if (x.type === 'cancel') return;
      const value = (v: string): string | undefined => x.fields.get(v)?.values[0];
      const node = value('pubsub#node');
      const jid = value('pubsub#subscriber_jid');
      const allow = parseBoolean(value('pubsub#allow'));
      if (!node || !jid || allow === undefined) throw errors.badRequest(undefined, 'The form needs pubsub#node, pubsub#subscriber_jid and pubsub#allow');
      const r = await this.#node(node);
      this.#requireOwner(r, this.#bare(requester));
      const subscriber = prep(jid) ?? jid;
      const subid = value('pubsub#subid');
      const s = r.subscriptions.find((v) => v.state === 'pending' && v.jid === subscriber && (subid === undefined || v.subid === subid));
      if (!s) throw errors.itemNotFound('No such pending subscription');
      if (allow) {
        const approved: SubscriptionRecord = { ...s, state: 'subscribed' };
        const next: NodeRecord = { ...r, subscriptions: r.subscriptions.map((v) => (v === s ? approved : v)) };
        await this.#save(node, next);
        this.#subscriptionNotice(node, next, approved, 'subscribed', true);
        if (next.config.send_last_published_item !== 'never') await this.#sendLast(node, next, await this.#addresses(node, approved));
      } else {
        const next: NodeRecord = { ...r, subscriptions: r.subscriptions.filter((v) => v !== s) };
        await this.#save(node, next);
        this.#subscriptionNotice(node, next, s, 'none', false);
      }
    });
  }

  /** Nodes the requester owns that have pending requests (§8.7, the get-pending command's form). */
  pendingNodes(requester: string): Promise<string[]> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      const out: string[] = [];
      for (const [id, r] of await this.#all()) {
        if (!isTombstone(r) && this.#affiliation(r, bare) === 'owner' && r.subscriptions.some((s) => s.state === 'pending')) out.push(id);
      }
      return out;
    });
  }

  /** Send the owner one authorization request per pending subscription of `node` (§8.7.4). */
  resendPending(requester: string, node: string): Promise<number> {
    return this.#run(async () => {
      const r = await this.#node(node);
      const bare = this.#bare(requester);
      this.#requireOwner(r, bare);
      const pending = r.subscriptions.filter((s) => s.state === 'pending');
      for (const s of pending) this.#emit(authorizationRequest(this.jid, bare, this.#messageId(), { node, subscriber: s.jid, subid: s.subid }));
      return pending.length;
    });
  }

  // ---- presence and roster integration -----------------------------------------------------------

  /**
   * A resource became available or gained interest (XEP-0163 §4.3.3 item 2, §4.3.4; XEP-0060
   * §12.3 triggers 3): send it the last item of each node configured on_sub_and_presence that it
   * is subscribed to or, for PEP, interested in (`interestedNodes`: nodes from its "+notify"
   * features; only the newly interesting ones when its caps changed) and allowed to see. The glue
   * calls this on initial available presence, not on later presence of the same session. Resolves
   * to the number of items sent.
   */
  sendLastItems(recipient: string, interestedNodes: Iterable<string> = []): Promise<number> {
    return this.#run(async () => {
      const wanted = new Set(interestedNodes);
      const bare = this.#bare(recipient);
      let sent = 0;
      for (const [node, r] of await this.#all()) {
        if (isTombstone(r) || r.config.send_last_published_item !== 'on_sub_and_presence' || !r.config.deliver_notifications) continue;
        const explicit = r.subscriptions.some((s) => s.state === 'subscribed' && s.deliver && (s.jid === recipient || (s.jid === bare && this.kind !== 'pep')));
        let eligible = explicit;
        if (!eligible && this.kind === 'pep' && wanted.has(node)) {
          eligible = !(await this.#accessError(r, bare, 'retrieve'));
          if (eligible && bare !== this.jid && this.#o.relationships?.blocked) eligible = !(await this.#o.relationships.blocked(this.jid, bare));
        }
        if (!eligible) continue;
        const last = await this.#lastItem(node, r);
        if (!last) continue;
        await this.#sendLast(node, r, [recipient], last);
        sent++;
      }
      return sent;
    });
  }

  /**
   * The owner's roster entry for `contact` changed (XEP-0163 §8.1): subscriptions that lost access
   * under the 'presence' and 'roster' models are cancelled and their subscriber told.
   */
  relationshipChanged(contact: string): Promise<void> {
    return this.#run(async () => {
      const bare = this.#bare(contact);
      for (const [node, r] of [...(await this.#all())]) {
        if (isTombstone(r) || (r.config.access_model !== 'presence' && r.config.access_model !== 'roster')) continue;
        await this.#recheckSubscriptions(node, r, bare);
      }
    });
  }

  /**
   * A notification bounced (§12.4): errors of type cancel, and <gone/>, end the subscriptions
   * addressed to exactly that JID.
   */
  notificationBounced(from: string, errorType: string, condition: string): Promise<number> {
    return this.#run(async () => {
      if (errorType !== 'cancel' && condition !== 'gone') return 0;
      const jid = prep(from) ?? from;
      let removed = 0;
      for (const [node, r] of [...(await this.#all())]) {
        if (isTombstone(r)) continue;
        const keep = r.subscriptions.filter((s) => s.jid !== jid);
        if (keep.length === r.subscriptions.length) continue;
        removed += r.subscriptions.length - keep.length;
        await this.#save(node, { ...r, subscriptions: keep });
      }
      if (removed > 0) this.#log('%s: %d subscription(s) of %s ended after a bounced notification', this.jid, removed, jid);
      return removed;
    });
  }

  /**
   * An account was deleted: its subscriptions and affiliations here go; nodes it was the only
   * owner of are deleted (subscribers are told, per notify_delete).
   */
  removeEntity(jid: string): Promise<void> {
    return this.#run(async () => {
      const bare = this.#bare(prep(jid) ?? jid);
      for (const [node, r] of [...(await this.#all())]) {
        if (isTombstone(r)) continue;
        const owners = this.#owners(r);
        if (this.kind === 'service' && owners.length === 1 && owners[0] === bare) {
          await this.#deleteNode(node, r, undefined);
          continue;
        }
        const affiliations = { ...r.affiliations };
        delete affiliations[bare];
        const subscriptions = r.subscriptions.filter((s) => this.#bare(s.jid) !== bare);
        if (subscriptions.length !== r.subscriptions.length || bare in r.affiliations) await this.#save(node, { ...r, affiliations, subscriptions });
      }
    });
  }

  /** Remove all of this service's data (PEP: the account is deleted). */
  clear(): Promise<void> {
    return this.#run(async () => {
      await this.#o.store.clear();
      this.#nodes = new Map();
      this.#lastItems.clear();
    });
  }

  // ---- discovery (§5) ----------------------------------------------------------------------------

  /** disco#info of the service (no node) or of a node the requester may see (identity pubsub/leaf and metadata). */
  discoInfo(requester: string, node?: string): Promise<DiscoInfo> {
    return this.#run(async () => {
      if (node === undefined || node === '') {
        return { identities: [{ category: 'pubsub', type: this.kind === 'pep' ? 'pep' : 'service' }], features: this.features(), forms: [] };
      }
      const r = await this.#node(node);
      if (!(await this.#visible(r, this.#bare(requester)))) throw errors.nodeNotFound();
      const owners = this.#owners(r);
      const publishers = Object.entries(r.affiliations).filter(([, a]) => a === 'publisher').map(([j]) => j);
      return {
        identities: [{ category: 'pubsub', type: 'leaf' }],
        features: [NS_PUBSUB],
        forms: [metadataForm({
          config: r.config,
          creator: r.creator,
          created: r.created,
          owners,
          publishers,
          subscribers: r.subscriptions.filter((s) => s.state === 'subscribed').length,
        })],
      };
    });
  }

  /**
   * disco#items: the nodes the requester may see (§5.2; XEP-0163 §9.2 only those it may subscribe
   * to or retrieve from), or a node's items by ItemID (§5.5).
   */
  discoItems(requester: string, node?: string): Promise<DiscoItem[]> {
    return this.#run(async () => {
      const bare = this.#bare(requester);
      if (node === undefined || node === '') {
        const out: DiscoItem[] = [];
        for (const [id, r] of await this.#all()) {
          if (isTombstone(r) || !(await this.#visible(r, bare))) continue;
          out.push(r.config.title ? { jid: this.jid, node: id, name: r.config.title } : { jid: this.jid, node: id });
        }
        return out;
      }
      const r = await this.#node(node);
      if (!(await this.#visible(r, bare))) throw errors.nodeNotFound();
      const denied = await this.#accessError(r, bare, 'retrieve');
      if (denied) throw denied;
      const ids = r.config.persist_items
        ? (await this.#o.store.getItems(node)).map((i) => i.id)
        : [...(this.#lastItems.has(node) ? [this.#lastItems.get(node)!.id] : [])];
      return ids.map((name) => ({ jid: this.jid, name }));
    });
  }
}

