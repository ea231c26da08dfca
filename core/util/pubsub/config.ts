// Node configuration (XEP-0060 §8.2, the pubsub#node_config FORM_TYPE of §16.4.4), its defaults
// for PEP (XEP-0163 §7) and for a generic service, publish-options preconditions (§7.1.5, the
// XEP-0223 pattern), node metadata (pubsub#meta-data, §5.4) and subscription options
// (pubsub#subscribe_options, §6.3). Forms are built and checked with core/util/dataforms.ts.
//
// A NodeConfig is keyed by the form variables without their 'pubsub#' prefix, so a field, a
// precondition and a stored setting are the same name.
import type { Element } from '@xmpp/xml';
import { form, parseForm, readSubmission, result, parseBoolean, submit, type FieldSpec, type FormSpec, type ParsedForm } from '../dataforms.ts';
import { prep } from '../jid.ts';
import { errors } from './errors.ts';
import { FORM_META_DATA, FORM_NODE_CONFIG, FORM_PUBLISH_OPTIONS, FORM_SUBSCRIBE_OPTIONS } from './ns.ts';

export type AccessModel = 'open' | 'presence' | 'roster' | 'whitelist' | 'authorize';
export type PublishModel = 'publishers' | 'subscribers' | 'open';
export type SendLastPublishedItem = 'never' | 'on_sub' | 'on_sub_and_presence';
export type ItemReply = 'owner' | 'publisher' | 'none';
export type PublishNodeFull = 'retract-oldest' | 'discard-oldest' | 'reject';
export type NotificationType = 'normal' | 'headline';
/** pubsub#max_items: a count, or 'max' for the service's own limit (XEP-0060 §16.4.4, integer-or-max). */
export type MaxItems = number | 'max';

export const ACCESS_MODELS: readonly AccessModel[] = ['authorize', 'open', 'presence', 'roster', 'whitelist'];

export interface NodeConfig {
  title: string;
  description: string;
  /** Payload semantic type, usually the payload's namespace. */
  type: string;
  language: string;
  /** JIDs to contact with questions. */
  contact: string[];
  access_model: AccessModel;
  /** Roster groups of the owner allowed under the 'roster' access model. */
  roster_groups_allowed: string[];
  publish_model: PublishModel;
  max_items: MaxItems;
  persist_items: boolean;
  deliver_notifications: boolean;
  deliver_payloads: boolean;
  notify_config: boolean;
  notify_delete: boolean;
  notify_retract: boolean;
  /** Notify owners of new subscribers and unsubscribes. */
  notify_sub: boolean;
  send_last_published_item: SendLastPublishedItem;
  notification_type: NotificationType;
  /** 'publisher' stamps items with their publisher's bare JID (§12.13). */
  itemreply: ItemReply;
  /** Bytes of one serialized payload. */
  max_payload_size: number;
  /** Whether entities may subscribe at all. */
  subscribe: boolean;
  /** What a publish to a full node does (§7.1.2.5). */
  publish_node_full: PublishNodeFull;
  node_type: 'leaf';
}

/** The service's limits: what 'max' means and the bounds owners may configure within. */
export interface ConfigLimits {
  /** Items a node keeps at most; pubsub#max_items 'max' means this. */
  maxItems: number;
  /** Largest pubsub#max_payload_size an owner may set. */
  maxPayloadSize: number;
}

export type ServiceKind = 'pep' | 'service';

/**
 * Defaults per kind. PEP (XEP-0163 §7): access model 'presence', notifications with payloads,
 * last item on subscription and on presence, one item per node unless configured (XEP-0384
 * relies on that default and asks for 'max' through publish-options). A generic service: 'open'
 * (XEP-0060 §4.5 "SHOULD be the default"), several items, last item on subscription only (it sees
 * no presence), publishers stamped on items.
 */
export function defaultConfig(kind: ServiceKind, limits: ConfigLimits): NodeConfig {
  const pep = kind === 'pep';
  return {
    title: '',
    description: '',
    type: '',
    language: '',
    contact: [],
    access_model: pep ? 'presence' : 'open',
    roster_groups_allowed: [],
    publish_model: 'publishers',
    max_items: pep ? 1 : Math.min(20, limits.maxItems),
    persist_items: true,
    deliver_notifications: true,
    deliver_payloads: true,
    notify_config: false,
    notify_delete: true,
    notify_retract: true,
    notify_sub: false,
    send_last_published_item: pep ? 'on_sub_and_presence' : 'on_sub',
    notification_type: 'headline',
    itemreply: pep ? 'none' : 'publisher',
    max_payload_size: limits.maxPayloadSize,
    subscribe: true,
    publish_node_full: 'retract-oldest',
    node_type: 'leaf',
  };
}

/** The number of items a node keeps. */
export function effectiveMaxItems(config: NodeConfig, limits: ConfigLimits): number {
  return config.max_items === 'max' ? limits.maxItems : Math.min(config.max_items, limits.maxItems);
}

// ---- the field table ----------------------------------------------------------------------------

type FieldKind = 'boolean' | 'text' | 'list' | 'list-multi' | 'jid-multi' | 'int' | 'int-or-max';

interface FieldDef {
  key: keyof NodeConfig;
  kind: FieldKind;
  label: string;
  options?: readonly string[];
}

const FIELDS: readonly FieldDef[] = [
  { key: 'title', kind: 'text', label: 'A short name for the node' },
  { key: 'description', kind: 'text', label: 'A description of the node' },
  { key: 'type', kind: 'text', label: 'The semantic type of the payloads (usually their namespace)' },
  { key: 'language', kind: 'text', label: 'The default language of the node' },
  { key: 'contact', kind: 'jid-multi', label: 'Addresses to contact with questions' },
  { key: 'access_model', kind: 'list', label: 'Who may subscribe and retrieve items', options: ACCESS_MODELS },
  { key: 'roster_groups_allowed', kind: 'list-multi', label: 'Roster groups allowed to subscribe and retrieve items' },
  { key: 'publish_model', kind: 'list', label: 'Who may publish', options: ['publishers', 'subscribers', 'open'] },
  { key: 'max_items', kind: 'int-or-max', label: "Most items to keep ('max' for the service's limit)" },
  { key: 'persist_items', kind: 'boolean', label: 'Keep published items' },
  { key: 'deliver_notifications', kind: 'boolean', label: 'Send event notifications' },
  { key: 'deliver_payloads', kind: 'boolean', label: 'Include payloads in event notifications' },
  { key: 'notify_config', kind: 'boolean', label: 'Notify subscribers when the configuration changes' },
  { key: 'notify_delete', kind: 'boolean', label: 'Notify subscribers when the node is deleted' },
  { key: 'notify_retract', kind: 'boolean', label: 'Notify subscribers when items are removed' },
  { key: 'notify_sub', kind: 'boolean', label: 'Notify owners of new subscribers and unsubscribes' },
  {
    key: 'send_last_published_item', kind: 'list', label: 'When to send the last published item',
    options: ['never', 'on_sub', 'on_sub_and_presence'],
  },
  { key: 'notification_type', kind: 'list', label: 'Message type of notifications', options: ['normal', 'headline'] },
  { key: 'itemreply', kind: 'list', label: 'Whom replies to items go to (publisher: items carry their publisher)', options: ['owner', 'publisher', 'none'] },
  { key: 'max_payload_size', kind: 'int', label: 'Largest payload in bytes' },
  { key: 'subscribe', kind: 'boolean', label: 'Allow subscriptions' },
  { key: 'publish_node_full', kind: 'list', label: 'What publishing to a full node does', options: ['retract-oldest', 'discard-oldest', 'reject'] },
  { key: 'node_type', kind: 'list', label: 'Node type', options: ['leaf'] },
];

const FIELD_BY_VAR = new Map(FIELDS.map((f) => [`pubsub#${f.key}`, f]));

/**
 * Registered node_config fields Cadence does not make configurable but whose one behaviour it
 * has: accepted (as a submission or a precondition) with that value only.
 */
function fixedFields(kind: ServiceKind): Record<string, string> {
  return {
    'pubsub#purge_offline': '0',
    'pubsub#tempsub': '0',
    // PEP delivers only to available resources of interested contacts (XEP-0163 §4).
    'pubsub#presence_based_delivery': kind === 'pep' ? '1' : '0',
    'pubsub#item_expire': 'max',
  };
}

function isJid(s: string): boolean {
  return prep(s) !== null;
}

function fieldSpec(def: FieldDef, config: NodeConfig | undefined, extra: { accessModels: readonly AccessModel[]; rosterGroups: readonly string[] }): FieldSpec {
  const v = `pubsub#${def.key}`;
  const values = config ? serialize(def, config[def.key]) : undefined;
  switch (def.kind) {
    case 'boolean':
      return { var: v, type: 'boolean', label: def.label, values };
    case 'text':
      return { var: v, type: 'text-single', label: def.label, values };
    case 'jid-multi':
      return { var: v, type: 'jid-multi', label: def.label, values };
    case 'int':
      return { var: v, type: 'text-single', label: def.label, values, validate: { datatype: 'xs:integer', range: { min: '1' } } };
    case 'int-or-max':
      return { var: v, type: 'text-single', label: def.label, values, validate: { datatype: 'pubsub:integer-or-max', range: { min: '1' } } };
    case 'list': {
      const opts = def.key === 'access_model' ? extra.accessModels : def.options ?? [];
      return { var: v, type: 'list-single', label: def.label, values, options: opts.map((value) => ({ value })) };
    }
    case 'list-multi': {
      const groups = [...new Set([...extra.rosterGroups, ...(values ?? [])])];
      return { var: v, type: 'list-multi', label: def.label, values, options: groups.map((value) => ({ value })), validate: { open: true } };
    }
  }
}

function serialize(def: FieldDef, value: NodeConfig[keyof NodeConfig]): string[] {
  if (Array.isArray(value)) return [...value];
  if (typeof value === 'boolean') return [value ? '1' : '0'];
  if (def.kind === 'text' && value === '') return [];
  return [String(value)];
}

/** The node_config form (§8.2.1 with the current values; §8.3 with the defaults). */
export function nodeConfigForm(
  config: NodeConfig,
  extra: { accessModels: readonly AccessModel[]; rosterGroups?: readonly string[] },
): Element {
  const spec: FormSpec = {
    formType: FORM_NODE_CONFIG,
    title: 'Node configuration',
    fields: FIELDS.map((f) => fieldSpec(f, config, { accessModels: extra.accessModels, rosterGroups: extra.rosterGroups ?? [] })),
  };
  return form(spec);
}

/** The node configuration as a result form (configuration notifications with payload, §8.2.5.3). */
export function nodeConfigResult(config: NodeConfig): Element {
  return result({
    formType: FORM_NODE_CONFIG,
    fields: FIELDS.map((f) => ({ var: `pubsub#${f.key}`, values: serialize(f, config[f.key]) })),
  });
}

/** Parse one field's values for `def`; throws not-acceptable (or the access model's own condition). */
function parseValue(def: FieldDef, values: readonly string[], ctx: ApplyContext): NodeConfig[keyof NodeConfig] {
  const name = `pubsub#${def.key}`;
  const single = (): string => {
    if (values.length > 1) throw errors.notAcceptable(undefined, `${name} takes one value`);
    return values[0] ?? '';
  };
  switch (def.kind) {
    case 'boolean': {
      const b = parseBoolean(single());
      if (b === undefined) throw errors.notAcceptable(undefined, `${name} must be a boolean`);
      return b;
    }
    case 'text':
      return single();
    case 'jid-multi': {
      const out: string[] = [];
      for (const v of values) {
        const j = prep(v);
        if (j === null) throw errors.notAcceptable(undefined, `${name}: '${v}' is not a valid JID`);
        out.push(j);
      }
      return [...new Set(out)];
    }
    case 'list-multi':
      return [...new Set(values)];
    case 'int': {
      const s = single();
      if (!/^\d+$/.test(s) || Number(s) < 1) throw errors.notAcceptable(undefined, `${name} must be a positive integer`);
      const n = Number(s);
      if (def.key === 'max_payload_size' && n > ctx.limits.maxPayloadSize) {
        throw errors.notAcceptable(undefined, `${name} may be at most ${ctx.limits.maxPayloadSize}`);
      }
      return n;
    }
    case 'int-or-max': {
      const s = single();
      if (s === 'max') return 'max';
      if (!/^\d+$/.test(s) || Number(s) < 1) throw errors.notAcceptable(undefined, `${name} must be a positive integer or 'max'`);
      const n = Number(s);
      if (n > ctx.limits.maxItems) throw errors.notAcceptable(undefined, `${name} may be at most ${ctx.limits.maxItems} (or 'max')`);
      return n;
    }
    case 'list': {
      const s = single();
      if (def.key === 'access_model') {
        if (!ctx.accessModels.includes(s as AccessModel)) {
          throw errors.notAcceptable('unsupported-access-model', `Access model '${s}' is not supported here`);
        }
        return s;
      }
      if (def.key === 'node_type' && s === 'collection') throw errors.unsupported('collections', 'Collection nodes are not supported');
      if (!(def.options ?? []).includes(s)) throw errors.notAcceptable(undefined, `${name}: '${s}' is not one of ${(def.options ?? []).join(', ')}`);
      return s;
    }
  }
}

export interface ApplyContext {
  kind: ServiceKind;
  limits: ConfigLimits;
  accessModels: readonly AccessModel[];
}

/**
 * Apply a submitted node_config form to `current` and return the new configuration (§8.2.4,
 * XEP-0004's incomplete submissions: fields not submitted keep their value). Registered fields
 * Cadence does not offer are accepted only with the behaviour it has; other unknown fields are
 * ignored. Throws PubSubError: bad-request for a wrong FORM_TYPE or form type, not-acceptable for
 * invalid values, not-acceptable + unsupported-access-model, unsupported 'collections'.
 */
export function applyConfigForm(current: NodeConfig, x: ParsedForm, ctx: ApplyContext): NodeConfig {
  if (x.type !== 'submit') throw errors.badRequest(undefined, `Expected a submitted form, got '${x.type}'`);
  if (x.formType !== undefined && x.formType !== FORM_NODE_CONFIG) throw errors.badRequest(undefined, `Unexpected FORM_TYPE ${x.formType}`);
  // Specific conditions first (the generic check below would only say "not one of the options").
  const am = x.fields.get('pubsub#access_model');
  if (am) parseValue(FIELD_BY_VAR.get('pubsub#access_model')!, am.values, ctx);
  const nt = x.fields.get('pubsub#node_type');
  if (nt) parseValue(FIELD_BY_VAR.get('pubsub#node_type')!, nt.values, ctx);
  const spec: FormSpec = {
    formType: FORM_NODE_CONFIG,
    fields: FIELDS.map((f) => fieldSpec(f, undefined, { accessModels: ctx.accessModels, rosterGroups: [] })),
  };
  const checked = readSubmission(x, spec, { isJid, allowUnknown: true });
  if (!checked.ok) throw errors.notAcceptable(undefined, checked.text);
  const next: NodeConfig = { ...current, contact: [...current.contact], roster_groups_allowed: [...current.roster_groups_allowed] };
  const fixed = fixedFields(ctx.kind);
  for (const [name, values] of checked.values) {
    const def = FIELD_BY_VAR.get(name);
    if (def) {
      (next as unknown as Record<string, unknown>)[def.key] = parseValue(def, values, ctx);
    } else if (name in fixed && !sameFixed(values, fixed[name]!)) {
      throw errors.notAcceptable(undefined, `${name} can only be ${fixed[name]} here`);
    }
  }
  return next;
}

/** A submitted node_config form setting `values` (for the server's own changes, checked like a client's). */
export function configSubmission(values: Partial<NodeConfig>): ParsedForm {
  const fields: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(values) as [keyof NodeConfig, NodeConfig[keyof NodeConfig]][]) {
    const def = FIELD_BY_VAR.get(`pubsub#${key}`);
    if (def) fields[`pubsub#${key}`] = serialize(def, value);
  }
  return parseForm(submit(FORM_NODE_CONFIG, fields))!;
}

function sameFixed(values: readonly string[], fixed: string): boolean {
  if (values.length !== 1) return false;
  const v = values[0]!;
  const b = parseBoolean(v);
  const fb = parseBoolean(fixed);
  return b !== undefined && fb !== undefined ? b === fb : v === fixed;
}

// ---- publish-options (§7.1.5) -------------------------------------------------------------------

/** Preconditions of a publish request: typed values by config key, plus fixed-field checks. */
export interface Preconditions {
  values: Partial<NodeConfig>;
  /** Registered fields with a single behaviour here, as submitted. */
  fixed: Map<string, string[]>;
}

/**
 * Read a <publish-options/> form. FORM_TYPE must be pubsub#publish-options; every field is a
 * precondition on the node_config field of the same name (XEP-0060 §7.1.5, 1:1 with the node
 * configuration); an unknown field rejects the publication (bad-request), as does an invalid
 * value (not-acceptable, or unsupported-access-model).
 */
export function readPublishOptions(x: ParsedForm, ctx: ApplyContext): Preconditions {
  if (x.type !== 'submit') throw errors.badRequest(undefined, 'publish-options must be a submitted form');
  if (x.formType !== FORM_PUBLISH_OPTIONS) throw errors.badRequest(undefined, `publish-options needs FORM_TYPE ${FORM_PUBLISH_OPTIONS}`);
  const values: Partial<NodeConfig> = {};
  const fixed = new Map<string, string[]>();
  const fixedDefs = fixedFields(ctx.kind);
  for (const [name, field] of x.fields) {
    if (name === 'FORM_TYPE') continue;
    const def = FIELD_BY_VAR.get(name);
    if (def) (values as Record<string, unknown>)[def.key] = parseValue(def, field.values, ctx);
    else if (name in fixedDefs) fixed.set(name, field.values);
    else throw errors.badRequest(undefined, `Unknown publish option ${name}`);
  }
  return { values, fixed };
}

/** The first precondition `config` does not meet (its form variable), or undefined when all are met. */
export function unmetPrecondition(config: NodeConfig, pre: Preconditions, kind: ServiceKind): string | undefined {
  for (const [key, want] of Object.entries(pre.values) as [keyof NodeConfig, NodeConfig[keyof NodeConfig]][]) {
    const have = config[key];
    if (Array.isArray(want) && Array.isArray(have)) {
      const a = new Set<string>(want);
      const b = new Set<string>(have);
      if (a.size !== b.size || [...a].some((v) => !b.has(v))) return `pubsub#${key}`;
    } else if (want !== have) {
      return `pubsub#${key}`;
    }
  }
  const fixed = fixedFields(kind);
  for (const [name, values] of pre.fixed) if (!sameFixed(values, fixed[name]!)) return name;
  return undefined;
}

/** The configuration of a node auto-created by a publish with preconditions (§7.1.5 rule 3). */
export function configWithPreconditions(defaults: NodeConfig, pre: Preconditions, kind: ServiceKind): NodeConfig {
  const unmetFixed = unmetPrecondition({ ...defaults, ...pre.values }, { values: {}, fixed: pre.fixed }, kind);
  if (unmetFixed) throw errors.conflict('precondition-not-met', `${unmetFixed} cannot be set to that value here`);
  return { ...defaults, ...pre.values };
}

// ---- metadata (§5.4) ----------------------------------------------------------------------------

export interface NodeMetadata {
  config: NodeConfig;
  creator: string | undefined;
  /** ms since the epoch */
  created: number;
  owners: string[];
  publishers: string[];
  subscribers: number;
}

/** The pubsub#meta-data form of a node's disco#info (XEP-0128 extension). */
export function metadataForm(m: NodeMetadata): Element {
  const c = m.config;
  const text = (s: string): string[] => (s === '' ? [] : [s]);
  return result({
    formType: FORM_META_DATA,
    fields: [
      { var: 'pubsub#type', type: 'text-single', label: 'Payload type', values: text(c.type) },
      { var: 'pubsub#creator', type: 'jid-single', label: 'Node creator', values: m.creator ? [m.creator] : [] },
      { var: 'pubsub#creation_date', type: 'text-single', label: 'Creation date', values: [new Date(m.created).toISOString().replace(/\.\d{3}Z$/, 'Z')] },
      { var: 'pubsub#title', type: 'text-single', label: 'Name', values: text(c.title) },
      { var: 'pubsub#description', type: 'text-single', label: 'Description', values: text(c.description) },
      { var: 'pubsub#language', type: 'list-single', label: 'Default language', values: text(c.language) },
      { var: 'pubsub#contact', type: 'jid-multi', label: 'Contacts', values: c.contact },
      { var: 'pubsub#access_model', type: 'list-single', label: 'Access model', values: [c.access_model] },
      { var: 'pubsub#publish_model', type: 'list-single', label: 'Publish model', values: [c.publish_model] },
      { var: 'pubsub#max_items', type: 'text-single', label: 'Most items kept', values: [String(c.max_items)] },
      { var: 'pubsub#owner', type: 'jid-multi', label: 'Owners', values: m.owners },
      { var: 'pubsub#publisher', type: 'jid-multi', label: 'Publishers', values: m.publishers },
      { var: 'pubsub#num_subscribers', type: 'text-single', label: 'Subscribers', values: [String(m.subscribers)] },
    ],
  });
}

// ---- subscription options (§6.3) ----------------------------------------------------------------

export interface SubscriptionOptions {
  /** pubsub#deliver: receive notifications at all. */
  deliver: boolean;
}

export const DEFAULT_SUBSCRIPTION_OPTIONS: SubscriptionOptions = { deliver: true };

function subscribeOptionsSpec(o: SubscriptionOptions): FormSpec {
  return {
    formType: FORM_SUBSCRIBE_OPTIONS,
    fields: [
      { var: 'pubsub#deliver', type: 'boolean', label: 'Receive notifications', values: [o.deliver ? '1' : '0'] },
      { var: 'pubsub#digest', type: 'boolean', label: 'Receive digests instead of single notifications (not offered)', values: ['0'] },
      { var: 'pubsub#include_body', type: 'boolean', label: 'Receive a message body with payloads (not offered)', values: ['0'] },
    ],
  };
}

export function subscribeOptionsForm(o: SubscriptionOptions): Element {
  return form(subscribeOptionsSpec(o));
}

export function subscribeOptionsResult(o: SubscriptionOptions): Element {
  return result(subscribeOptionsSpec(o));
}

/**
 * Read submitted subscription options (§6.3.5). Options Cadence does not offer (digests, message
 * bodies, show values, leases) are refused unless set to their "off" value: bad-request +
 * invalid-options (§6.3.6).
 */
export function applySubscribeOptions(current: SubscriptionOptions, x: ParsedForm): SubscriptionOptions {
  if (x.type !== 'submit') throw errors.badRequest('invalid-options', 'Expected a submitted form');
  if (x.formType !== undefined && x.formType !== FORM_SUBSCRIBE_OPTIONS) throw errors.badRequest('invalid-options', `Unexpected FORM_TYPE ${x.formType}`);
  const next = { ...current };
  for (const [name, field] of x.fields) {
    if (name === 'FORM_TYPE') continue;
    const b = field.values.length === 1 ? parseBoolean(field.values[0]) : undefined;
    if (name === 'pubsub#deliver' && b !== undefined) next.deliver = b;
    else if ((name === 'pubsub#digest' || name === 'pubsub#include_body') && b === false) continue;
    else throw errors.badRequest('invalid-options', `Unsupported subscription option ${name}`);
  }
  return next;
}
