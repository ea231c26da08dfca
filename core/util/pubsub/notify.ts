// The stanzas a pubsub service sends on its own: event notifications (XEP-0060 §7.1.2, §7.2.2,
// §8.2.5.3, §8.4.2, §8.5.2, §12.5), the last published item with its delay (§6.1.7, XEP-0203),
// subscription state notifications (§12.6) and authorization requests to owners (§8.6). The
// engine decides who receives them; these functions only build them.
import { Element } from '@xmpp/xml';
import { form } from '../dataforms.ts';
import type { NotificationType } from './config.ts';
import { FORM_SUBSCRIBE_AUTHORIZATION, NS_ADDRESS, NS_DELAY, NS_PUBSUB_EVENT, NS_SHIM } from './ns.ts';

/** One item of an items event: a payload, or only its id (notification without payload). */
export interface EventItem {
  id: string;
  publisher?: string;
  payload?: Element;
}

export function itemsEvent(node: string, items: readonly EventItem[]): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  const list = event.c('items', { node });
  for (const it of items) {
    const el = list.c('item', it.publisher ? { id: it.id, publisher: it.publisher } : { id: it.id });
    if (it.payload) el.cnode(it.payload);
  }
  return event;
}

/** An items event with no item at all (a transient, notification-only node, §4.3). */
export function emptyItemsEvent(node: string): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  event.c('items', { node });
  return event;
}

export function retractEvent(node: string, ids: readonly string[]): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  const list = event.c('items', { node });
  for (const id of ids) list.c('retract', { id });
  return event;
}

export function purgeEvent(node: string): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  event.c('purge', { node });
  return event;
}

export function deleteEvent(node: string, redirect?: string): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  const del = event.c('delete', { node });
  if (redirect) del.c('redirect', { uri: redirect });
  return event;
}

export function configurationEvent(node: string, configForm?: Element): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  const c = event.c('configuration', { node });
  if (configForm) c.cnode(configForm);
  return event;
}

export function subscriptionEvent(node: string, jid: string, subscription: string, subid?: string): Element {
  const event = new Element('event', { xmlns: NS_PUBSUB_EVENT });
  event.c('subscription', { node, jid, subscription, ...(subid ? { subid } : {}) });
  return event;
}

export interface MessageExtras {
  /** SubIDs of the recipient's subscriptions that caused this notification (XEP-0131 headers, §12.8). */
  subids?: readonly string[];
  /** When the item was originally published: the last item sent later carries a delay (§6.1.7). */
  delayedSince?: number;
  /** PEP: the publishing resource, for contacts with a presence subscription (XEP-0163 §4.3.1, XEP-0033). */
  replyto?: string;
}

/** XEP-0082 DateTime in UTC, to the second. */
export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A notification message: the event, then SHIM headers, delay and addresses. */
export function notificationMessage(from: string, to: string, id: string, type: NotificationType | undefined, event: Element, extras: MessageExtras = {}): Element {
  const msg = new Element('message', type === 'headline' ? { from, to, type, id } : { from, to, id });
  msg.cnode(event);
  if (extras.subids && extras.subids.length > 0) {
    const headers = msg.c('headers', { xmlns: NS_SHIM });
    for (const s of extras.subids) headers.c('header', { name: 'SubID' }).t(s);
  }
  if (extras.delayedSince !== undefined) msg.c('delay', { xmlns: NS_DELAY, from, stamp: stamp(extras.delayedSince) });
  if (extras.replyto) msg.c('addresses', { xmlns: NS_ADDRESS }).c('address', { type: 'replyto', jid: extras.replyto });
  return msg;
}

/** The approval request an owner receives for a pending subscription (§8.6). */
export function authorizationRequest(from: string, to: string, id: string, r: { node: string; subscriber: string; subid: string }): Element {
  const msg = new Element('message', { from, to, id });
  msg.c('body').t(`${r.subscriber} asks to subscribe to the node '${r.node}'. Submit the form with pubsub#allow set to true to approve, or false to deny.`);
  msg.cnode(form({
    formType: FORM_SUBSCRIBE_AUTHORIZATION,
    title: 'PubSub subscriber request',
    instructions: 'Allow this address to subscribe to the node?',
    fields: [
      { var: 'pubsub#subid', type: 'hidden', values: [r.subid] },
      { var: 'pubsub#node', type: 'text-single', label: 'Node', values: [r.node] },
      { var: 'pubsub#subscriber_jid', type: 'jid-single', label: 'Subscriber', values: [r.subscriber] },
      { var: 'pubsub#allow', type: 'boolean', label: 'Allow this address to subscribe?', values: ['0'] },
    ],
  }));
  return msg;
}
