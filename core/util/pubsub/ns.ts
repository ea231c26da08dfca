// Namespaces, FORM_TYPEs and feature names of Publish-Subscribe (XEP-0060) and the specifications
// built on it. One place, so the engine, the glue modules and the tests spell them alike.

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';

export const FORM_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const FORM_META_DATA = 'http://jabber.org/protocol/pubsub#meta-data';
export const FORM_SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';
export const FORM_SUBSCRIBE_AUTHORIZATION = 'http://jabber.org/protocol/pubsub#subscribe_authorization';
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

/** XEP-0059 Result Set Management. */
export const NS_RSM = 'http://jabber.org/protocol/rsm';
/** XEP-0131 Stanza Headers (SubID headers on notifications). */
export const NS_SHIM = 'http://jabber.org/protocol/shim';
/** XEP-0203 Delayed Delivery (the last published item sent later). */
export const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0033 Extended Stanza Addressing (PEP's replyto of the publishing resource). */
export const NS_ADDRESS = 'http://jabber.org/protocol/address';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** A feature of XEP-0060 §10 as advertised in disco#info ("http://jabber.org/protocol/pubsub#name"). */
export function pubsubFeature(name: string): string {
  return `${NS_PUBSUB}#${name}`;
}

/** XEP-0060 §9.1: the bare JID of an account that is a virtual pubsub service. */
export const FEATURE_PUBSUB_ON_A_JID = pubsubFeature('pubsub-on-a-jid');

/** The XEP-0115 feature by which a client asks for notifications of a node (XEP-0060 §9.2). */
export function notifyFeature(node: string): string {
  return `${node}+notify`;
}

/** The node a "+notify" feature asks for, or undefined when `feature` is not one. */
export function nodeOfNotifyFeature(feature: string): string | undefined {
  return feature.endsWith('+notify') && feature.length > '+notify'.length ? feature.slice(0, -'+notify'.length) : undefined;
}
