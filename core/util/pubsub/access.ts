// Affiliations and access models (XEP-0060 §4.1 and §4.5, XEP-0163 §4): who may subscribe,
// retrieve, publish, retract, purge and configure. The engine asks the injected
// RelationshipResolver about presence subscriptions and roster groups; everything else is decided
// here from the node's affiliations and configuration.
import type { AccessModel, NodeConfig } from './config.ts';
import { errors, type PubSubError } from './errors.ts';

export type Affiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'none' | 'outcast';
export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast'];

export function isAffiliation(s: string | undefined): s is Affiliation {
  return s !== undefined && (AFFILIATIONS as readonly string[]).includes(s);
}

/** RFC 6121 subscription state of a contact in the owner's roster. */
export type RosterSubscription = 'none' | 'to' | 'from' | 'both';

/** What the owner's roster says about a contact. */
export interface Relationship {
  subscription: RosterSubscription;
  groups: readonly string[];
}

export const NO_RELATIONSHIP: Relationship = { subscription: 'none', groups: [] };

/**
 * Roster and blocking lookups the glue provides (PEP: the account's roster; a service component:
 * the rosters of local node owners). All JIDs are bare.
 */
export interface RelationshipResolver {
  /** The contact's entry in the owner's roster (NO_RELATIONSHIP when none). */
  relationship(owner: string, contact: string): Promise<Relationship>;
  /** The owner's roster groups, offered as options of pubsub#roster_groups_allowed. */
  rosterGroups?(owner: string): Promise<string[]>;
  /** True when the owner blocks the contact (XEP-0191/XEP-0016): no notifications to it (XEP-0163 §4.3.3). */
  blocked?(owner: string, contact: string): Promise<boolean>;
}

/** True when a roster subscription lets the contact see the owner's presence (RFC 6121 'from'/'both'). */
export function sharesPresence(r: Relationship): boolean {
  return r.subscription === 'from' || r.subscription === 'both';
}

/** Affiliations that may publish (§4.1 table), before the publish model widens it. */
export function canPublishByAffiliation(a: Affiliation): boolean {
  return a === 'owner' || a === 'publisher' || a === 'publish-only';
}

/** Affiliations that retrieve items whatever the access model (§6.5.1: owners MUST, publishers SHOULD; members are whitelisted). */
export function retrievesByAffiliation(a: Affiliation): boolean {
  return a === 'owner' || a === 'publisher' || a === 'member';
}

/**
 * The access-model check for subscribing or retrieving items (§6.1.3, §6.5.1, §6.5.9):
 * undefined when allowed, or the PubSubError to answer. `relationship` is looked up only when the
 * model needs it. `subscribed` says whether the entity holds an approved subscription (the
 * 'authorize' and 'whitelist' models let subscribers retrieve).
 */
export async function accessError(
  config: NodeConfig,
  affiliation: Affiliation,
  relationship: () => Promise<Relationship>,
  purpose: 'subscribe' | 'retrieve',
  subscribed: boolean,
): Promise<PubSubError | undefined> {
  if (affiliation === 'outcast') return errors.forbidden('You are banned from this node');
  if (affiliation === 'publish-only') return errors.forbidden('Publish-only entities may not subscribe or retrieve items');
  if (retrievesByAffiliation(affiliation)) return undefined;
  return modelError(config.access_model, config, relationship, purpose, subscribed);
}

async function modelError(
  model: AccessModel,
  config: NodeConfig,
  relationship: () => Promise<Relationship>,
  purpose: 'subscribe' | 'retrieve',
  subscribed: boolean,
): Promise<PubSubError | undefined> {
  switch (model) {
    case 'open':
      return undefined;
    case 'presence':
      return sharesPresence(await relationship()) ? undefined : errors.notAuthorized('presence-subscription-required', 'Only contacts with a presence subscription may access this node');
    case 'roster': {
      const r = await relationship();
      const allowed = sharesPresence(r) && r.groups.some((g) => config.roster_groups_allowed.includes(g));
      return allowed ? undefined : errors.notAuthorized('not-in-roster-group', 'Only contacts in the allowed roster groups may access this node');
    }
    case 'whitelist':
      // Whitelisted entities are members or above, handled by the caller's affiliation check.
      return subscribed && purpose === 'retrieve' ? undefined : errors.notAllowed('closed-node', 'This node is whitelist-only');
    case 'authorize':
      // Anyone may ask to subscribe (the request is pending); only subscribers retrieve.
      if (purpose === 'subscribe') return undefined;
      return subscribed ? undefined : errors.notAuthorized('not-subscribed', 'Only subscribers may retrieve items of this node');
  }
}
