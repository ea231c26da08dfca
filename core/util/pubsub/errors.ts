// PubSub errors (XEP-0060 §14 and the pubsub#errors schema): a stanza error with, most of the
// time, an application-specific condition qualified by 'http://jabber.org/protocol/pubsub#errors'
// (RFC 6120 §8.3.4), e.g. <conflict/> + <precondition-not-met/>, or <feature-not-implemented/>
// + <unsupported feature='…'/>. PubSubError extends the core StanzaError so code that only knows
// StanzaError still answers with the right defined condition; `errorReplyFor` builds the full
// reply, application condition included.
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { StanzaError, type StanzaErrorCondition, type StanzaErrorType } from '../errors.ts';
import { NS, reply } from '../stanza.ts';
import { NS_PUBSUB_ERRORS } from './ns.ts';

/** Application-specific conditions of the pubsub#errors namespace (XEP-0060 §16.2, and §7.1.3.4's node-full). */
export type PubSubAppCondition =
  | 'closed-node' | 'configuration-required' | 'invalid-jid' | 'invalid-options' | 'invalid-payload'
  | 'invalid-subid' | 'item-forbidden' | 'item-required' | 'jid-required' | 'max-items-exceeded'
  | 'max-nodes-exceeded' | 'node-full' | 'nodeid-required' | 'not-in-roster-group' | 'not-subscribed'
  | 'payload-too-big' | 'payload-required' | 'pending-subscription' | 'precondition-not-met'
  | 'presence-subscription-required' | 'subid-required' | 'too-many-subscriptions' | 'unsupported'
  | 'unsupported-access-model';

/** Feature names an <unsupported/> condition may carry (the schema's enumeration). */
export type PubSubFeatureName =
  | 'access-authorize' | 'access-open' | 'access-presence' | 'access-roster' | 'access-whitelist'
  | 'auto-create' | 'auto-subscribe' | 'collections' | 'config-node' | 'create-and-configure'
  | 'create-nodes' | 'delete-items' | 'delete-nodes' | 'filtered-notifications' | 'get-pending'
  | 'instant-nodes' | 'item-ids' | 'last-published' | 'leased-subscription' | 'manage-subscriptions'
  | 'member-affiliation' | 'meta-data' | 'modify-affiliations' | 'multi-collection' | 'multi-items'
  | 'multi-subscribe' | 'outcast-affiliation' | 'persistent-items' | 'presence-notifications'
  | 'presence-subscribe' | 'publish' | 'publish-options' | 'publish-only-affiliation'
  | 'publisher-affiliation' | 'purge-nodes' | 'retract-items' | 'retrieve-affiliations'
  | 'retrieve-default' | 'retrieve-default-sub' | 'retrieve-items' | 'retrieve-subscriptions'
  | 'subscribe' | 'subscription-options' | 'subscription-notifications';

export class PubSubError extends StanzaError {
  constructor(
    type: StanzaErrorType,
    condition: StanzaErrorCondition,
    readonly app?: PubSubAppCondition,
    text?: string,
    readonly details: {
      /** <unsupported feature='…'/> */
      feature?: PubSubFeatureName;
      /** Character data of the defined condition: the new address for <gone/> and <redirect/>. */
      conditionText?: string;
      /** Sent back instead of the request's payload (§8.8.2.4 and §8.9.2.4 return the failed entries). */
      payload?: Element;
    } = {},
  ) {
    // The core router answers a thrown StanzaError with these too (application condition, gone's address).
    super(type, condition, text, {
      application: app ? new Element(app, details.feature ? { xmlns: NS_PUBSUB_ERRORS, feature: details.feature } : { xmlns: NS_PUBSUB_ERRORS }) : undefined,
      conditionText: details.conditionText,
    });
    this.name = 'PubSubError';
  }
}

/** The errors XEP-0060 names, one constructor each, so call sites read like the specification. */
export const errors = {
  /** The node does not exist (cancel, item-not-found). */
  nodeNotFound: (text = 'No such node') => new PubSubError('cancel', 'item-not-found', undefined, text),
  itemNotFound: (text = 'No such item') => new PubSubError('cancel', 'item-not-found', undefined, text),
  /** Insufficient privileges, another entity's subscription, or an outcast (auth, forbidden). */
  forbidden: (text?: string) => new PubSubError('auth', 'forbidden', undefined, text),
  /** The service or node does not do this (cancel, feature-not-implemented + <unsupported feature/>). */
  unsupported: (feature: PubSubFeatureName, text?: string) =>
    new PubSubError('cancel', 'feature-not-implemented', 'unsupported', text, { feature }),
  badRequest: (app?: PubSubAppCondition, text?: string) => new PubSubError('modify', 'bad-request', app, text),
  notAcceptable: (app?: PubSubAppCondition, text?: string) => new PubSubError('modify', 'not-acceptable', app, text),
  notAuthorized: (app: PubSubAppCondition, text?: string) => new PubSubError('auth', 'not-authorized', app, text),
  notAllowed: (app?: PubSubAppCondition, text?: string) => new PubSubError('cancel', 'not-allowed', app, text),
  conflict: (app?: PubSubAppCondition, text?: string) => new PubSubError('cancel', 'conflict', app, text),
  notSubscribed: (type: StanzaErrorType, text = 'Not subscribed') =>
    new PubSubError(type, 'unexpected-request', 'not-subscribed', text),
  tooManySubscriptions: () =>
    new PubSubError('wait', 'policy-violation', 'too-many-subscriptions', 'Too many subscriptions'),
  /** The node was deleted with a redirect (RFC 6120 §8.3.3.5: gone carries the new address). */
  gone: (uri: string) => new PubSubError('cancel', 'gone', undefined, 'The node has moved', { conditionText: uri }),
} as const;

/** The <error/> element of RFC 6120 §8.3.2: defined condition, text, then the pubsub condition. */
export function errorElement(err: StanzaError, by?: string): Element {
  const el = new Element('error', by ? { type: err.type, by } : { type: err.type });
  const cond = new Element(err.condition, { xmlns: NS.stanzas });
  const extra = err instanceof PubSubError ? err.details : {};
  if (extra.conditionText) cond.t(extra.conditionText);
  el.cnode(cond);
  if (err.text) el.cnode(new Element('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }).t(err.text));
  if (err instanceof PubSubError && err.app) {
    el.cnode(new Element(err.app, extra.feature ? { xmlns: NS_PUBSUB_ERRORS, feature: extra.feature } : { xmlns: NS_PUBSUB_ERRORS }));
  }
  return el;
}

/**
 * The error reply to an iq (or message) for `err`: the request's payload is echoed (clients match
 * errors by it) unless the error carries its own payload, then the <error/> element.
 */
export function errorReplyFor(stanza: Element, err: StanzaError, by?: string): Element {
  const r = reply(stanza, 'error');
  const own = err instanceof PubSubError ? err.details.payload : undefined;
  if (own) r.cnode(own);
  else if (stanza.name === 'iq') {
    const payload = stanza.children.find((c): c is Element => typeof c !== 'string');
    if (payload) r.cnode(clone(payload));
  }
  r.cnode(errorElement(err, by));
  return r;
}
