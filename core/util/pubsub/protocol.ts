// The wire format of XEP-0060: an iq's <pubsub/> (or pubsub#owner) payload read into a
// PubSubService call, and the result written back (§5–§8 request and result syntax, with the
// pubsub schema's element combinations). The glue hands each pubsub iq addressed to a service to
// `handlePubSubIq` and answers with `iqResult(iq, payload)`, or, when it throws a StanzaError,
// with `errorReplyFor(iq, err)` (errors.ts), which carries the pubsub#errors condition.
import { Element } from '@xmpp/xml';
import { parseBoolean, parseForm, type ParsedForm } from '../dataforms.ts';
import { errors, PubSubError } from './errors.ts';
import {
  FORM_SUBSCRIBE_AUTHORIZATION, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PUBSUB, NS_PUBSUB_OWNER, NS_RSM,
} from './ns.ts';
import type { DiscoInfo, DiscoItem, ItemsResult, PubSubService, ResultItem, RsmRequest, Subscription } from './service.ts';

function attr(el: Element, name: string): string | undefined {
  const v = el.attrs[name] as unknown;
  return typeof v === 'string' ? v : undefined;
}

function elements(el: Element): Element[] {
  return el.getChildElements();
}

/** The data form inside `el`, if any (parsed); bad-request when it is not a usable form. */
function formIn(el: Element | undefined): ParsedForm | undefined {
  const x = el?.getChild('x', 'jabber:x:data');
  if (!x) return undefined;
  const f = parseForm(x);
  if (!f) throw errors.badRequest(undefined, 'Invalid data form');
  return f;
}

function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw errors.badRequest(undefined, `${what} must be a positive integer`);
  return Number(v);
}

function readRsm(set: Element | undefined): RsmRequest | undefined {
  if (!set) return undefined;
  const rsm: RsmRequest = {};
  const max = set.getChildText('max');
  if (max !== null) {
    if (!/^\d+$/.test(max.trim())) throw errors.badRequest(undefined, 'RSM <max/> must be a non-negative integer');
    rsm.max = Number(max.trim());
  }
  const after = set.getChild('after');
  if (after) rsm.after = after.text();
  const before = set.getChild('before');
  if (before) rsm.before = before.text() === '' ? true : before.text();
  const index = set.getChildText('index');
  if (index !== null) {
    if (!/^\d+$/.test(index.trim())) throw errors.badRequest(undefined, 'RSM <index/> must be a non-negative integer');
    rsm.index = Number(index.trim());
  }
  return rsm;
}

function rsmElement(r: NonNullable<ItemsResult['rsm']>): Element {
  const set = new Element('set', { xmlns: NS_RSM });
  if (r.first !== undefined) set.c('first', { index: String(r.firstIndex ?? 0) }).t(r.first);
  if (r.last !== undefined) set.c('last').t(r.last);
  set.c('count').t(String(r.count));
  return set;
}

function itemElement(it: ResultItem): Element {
  const el = new Element('item', it.publisher ? { id: it.id, publisher: it.publisher } : { id: it.id });
  if (it.payload) el.cnode(it.payload);
  return el;
}

function subscriptionElement(s: Subscription, withNode: boolean): Element {
  return new Element('subscription', {
    ...(withNode ? { node: s.node } : {}),
    jid: s.jid,
    subscription: s.subscription,
    ...(s.subid ? { subid: s.subid } : {}),
  });
}

function wrap(parent: Element, child: Element): Element {
  parent.cnode(child);
  return parent;
}

function pubsub(ns: string, ...children: Element[]): Element {
  const el = new Element('pubsub', { xmlns: ns });
  for (const c of children) el.cnode(c);
  return el;
}

/**
 * Handle an iq get/set whose payload is <pubsub/> in the pubsub or pubsub#owner namespace, from
 * `from` (the requester, as stamped by the server). Resolves to the result's payload (undefined
 * for an empty result); throws PubSubError.
 */
export async function handlePubSubIq(service: PubSubService, iq: Element, from: string): Promise<Element | undefined> {
  const type = attr(iq, 'type');
  const ps = elements(iq)[0];
  if (!ps || ps.name !== 'pubsub' || (type !== 'get' && type !== 'set')) throw errors.badRequest(undefined, 'Not a pubsub request');
  const ns = attr(ps, 'xmlns');
  if (ns === NS_PUBSUB_OWNER) return owner(service, type, ps, from);
  if (ns !== NS_PUBSUB) throw errors.badRequest(undefined, 'Not a pubsub request');
  const children = elements(ps).filter((c) => !(c.name === 'set' && attr(c, 'xmlns') === NS_RSM));
  const rsm = readRsm(ps.getChild('set', NS_RSM));
  const [first, second, ...rest] = children;
  if (!first) throw errors.badRequest(undefined, 'Empty pubsub request');
  const only = (): void => {
    if (second || rest.length > 0) throw errors.badRequest(undefined, `<${first.name}/> takes no sibling here`);
  };
  const wantType = (t: 'get' | 'set'): void => {
    if (type !== t) throw errors.badRequest(undefined, `<${first.name}/> goes in an iq of type ${t}`);
  };
  const node = attr(first, 'node');

  switch (first.name) {
    case 'create': {
      wantType('set');
      if (rest.length > 0 || (second && second.name !== 'configure')) throw errors.badRequest(undefined, 'Only <configure/> may follow <create/>');
      if (second && attr(second, 'node') !== undefined) throw errors.badRequest(undefined, '<configure/> after <create/> takes no node attribute');
      const id = await service.createNode(from, node, formIn(second));
      return node === undefined || node === '' ? pubsub(NS_PUBSUB, new Element('create', { node: id })) : undefined;
    }
    case 'publish': {
      wantType('set');
      if (rest.length > 0 || (second && second.name !== 'publish-options')) throw errors.badRequest(undefined, 'Only <publish-options/> may follow <publish/>');
      const items = elements(first).filter((c) => c.name === 'item');
      let options: ParsedForm | undefined;
      if (second) {
        options = formIn(second);
        if (!options) throw errors.badRequest(undefined, '<publish-options/> needs a data form');
      }
      const res = await service.publish(from, node, items, options);
      const publish = new Element('publish', { node: res.node });
      if (res.itemId !== undefined) publish.c('item', { id: res.itemId });
      return pubsub(NS_PUBSUB, publish);
    }
    case 'subscribe': {
      wantType('set');
      if (rest.length > 0 || (second && second.name !== 'options')) throw errors.badRequest(undefined, 'Only <options/> may follow <subscribe/>');
      if (second && (attr(second, 'node') !== undefined || attr(second, 'jid') !== undefined)) {
        throw errors.badRequest(undefined, '<options/> after <subscribe/> takes no node or jid attribute');
      }
      const sub = await service.subscribe(from, node, attr(first, 'jid'), formIn(second));
      const out = pubsub(NS_PUBSUB, subscriptionElement(sub, true));
      if (sub.options) out.c('options').cnode(sub.options);
      return out;
    }
    case 'unsubscribe': {
      wantType('set');
      only();
      const sub = await service.unsubscribe(from, node, attr(first, 'jid'), attr(first, 'subid'));
      return pubsub(NS_PUBSUB, subscriptionElement(sub, true));
    }
    case 'retract': {
      wantType('set');
      only();
      const notifyAttr = attr(first, 'notify');
      const notify = notifyAttr === undefined ? undefined : parseBoolean(notifyAttr);
      if (notifyAttr !== undefined && notify === undefined) throw errors.badRequest(undefined, "notify must be a boolean");
      const ids = elements(first).filter((c) => c.name === 'item').map((c) => attr(c, 'id') ?? '');
      await service.retract(from, node, ids, notify);
      return undefined;
    }
    case 'items': {
      wantType('get');
      only();
      const requested = elements(first).filter((c) => c.name === 'item');
      const ids = requested.map((c) => attr(c, 'id'));
      if (ids.some((i) => i === undefined || i === '')) throw errors.badRequest('item-required', 'Each requested item needs an id');
      const maxItems = positiveInt(attr(first, 'max_items'), 'max_items');
      const subid = attr(first, 'subid');
      const res = await service.items(from, node, {
        ...(requested.length > 0 ? { ids: ids as string[] } : {}),
        ...(maxItems !== undefined ? { maxItems } : {}),
        ...(subid !== undefined ? { subid } : {}),
        ...(rsm && requested.length === 0 ? { rsm } : {}),
      });
      const list = new Element('items', { node: node! });
      for (const it of res.items) list.cnode(itemElement(it));
      const out = pubsub(NS_PUBSUB, list);
      if (res.rsm) out.cnode(rsmElement(res.rsm));
      return out;
    }
    case 'subscriptions': {
      wantType('get');
      only();
      const subs = await service.subscriptionsOf(from, node);
      const list = new Element('subscriptions', node !== undefined ? { node } : {});
      for (const s of subs) list.cnode(subscriptionElement(s, true));
      return pubsub(NS_PUBSUB, list);
    }
    case 'affiliations': {
      wantType('get');
      only();
      const affs = await service.affiliationsOf(from, node);
      const list = new Element('affiliations', node !== undefined ? { node } : {});
      for (const a of affs) list.c('affiliation', { node: a.node, affiliation: a.affiliation });
      return pubsub(NS_PUBSUB, list);
    }
    case 'options': {
      only();
      const jid = attr(first, 'jid');
      const subid = attr(first, 'subid');
      if (type === 'get') {
        const x = await service.subscriptionOptions(from, node, jid, subid);
        const opts = new Element('options', { ...(node !== undefined ? { node } : {}), ...(jid !== undefined ? { jid } : {}), ...(subid !== undefined ? { subid } : {}) });
        return pubsub(NS_PUBSUB, wrap(opts, x));
      }
      const x = formIn(first);
      if (!x) throw errors.badRequest('invalid-options', 'Submit the options as a data form');
      await service.setSubscriptionOptions(from, node, jid, x, subid);
      return undefined;
    }
    case 'default': {
      wantType('get');
      only();
      const x = await service.defaultSubscriptionOptions(node);
      return pubsub(NS_PUBSUB, wrap(new Element('default', node !== undefined ? { node } : {}), x));
    }
    case 'configure':
      throw errors.badRequest(undefined, 'Configure a node in the pubsub#owner namespace');
    default:
      throw errors.badRequest(undefined, `Unknown pubsub request <${first.name}/>`);
  }
}

async function owner(service: PubSubService, type: 'get' | 'set', ps: Element, from: string): Promise<Element | undefined> {
  const [first, ...rest] = elements(ps);
  if (!first) throw errors.badRequest(undefined, 'Empty pubsub#owner request');
  if (rest.length > 0) throw errors.badRequest(undefined, `<${first.name}/> takes no sibling`);
  const node = attr(first, 'node');
  const wantType = (t: 'get' | 'set'): void => {
    if (type !== t) throw errors.badRequest(undefined, `<${first.name}/> goes in an iq of type ${t}`);
  };
  const needNode = (): string => {
    if (node === undefined || node === '') throw errors.badRequest('nodeid-required', 'A node is required');
    return node;
  };
  switch (first.name) {
    case 'configure': {
      const id = needNode();
      if (type === 'get') {
        const x = await service.configurationForm(from, id);
        return pubsub(NS_PUBSUB_OWNER, wrap(new Element('configure', { node: id }), x));
      }
      const x = formIn(first);
      if (!x) throw errors.badRequest(undefined, 'Submit the configuration as a data form');
      await service.configure(from, id, x);
      return undefined;
    }
    case 'default': {
      wantType('get');
      const t = attr(first, 'type');
      if (t !== undefined && t !== 'leaf') throw errors.unsupported('collections', 'Only leaf nodes exist here');
      return pubsub(NS_PUBSUB_OWNER, wrap(new Element('default'), service.defaultConfigurationForm()));
    }
    case 'delete': {
      wantType('set');
      const redirect = first.getChild('redirect');
      const uri = redirect ? attr(redirect, 'uri') : undefined;
      if (redirect && !uri) throw errors.badRequest(undefined, '<redirect/> needs a uri');
      await service.deleteNode(from, needNode(), uri);
      return undefined;
    }
    case 'purge': {
      wantType('set');
      await service.purge(from, needNode());
      return undefined;
    }
    case 'subscriptions': {
      const id = needNode();
      if (type === 'get') {
        const subs = await service.nodeSubscriptions(from, id);
        const list = new Element('subscriptions', { node: id });
        for (const s of subs) list.cnode(subscriptionElement(s, false));
        return pubsub(NS_PUBSUB_OWNER, list);
      }
      const changes = elements(first).filter((c) => c.name === 'subscription').map((c) => {
        const jid = attr(c, 'jid');
        if (!jid) throw errors.badRequest('jid-required', 'Each subscription needs a jid');
        const subscription = attr(c, 'subscription');
        const subid = attr(c, 'subid');
        return { jid, ...(subscription !== undefined ? { subscription } : {}), ...(subid !== undefined ? { subid } : {}) };
      });
      const failed = await service.modifySubscriptions(from, id, changes);
      if (failed.length > 0) {
        const list = new Element('subscriptions', { node: id });
        for (const s of failed) list.cnode(subscriptionElement(s, false));
        throw new PubSubError('modify', 'not-acceptable', undefined, 'Some subscriptions could not be changed', { payload: pubsub(NS_PUBSUB_OWNER, list) });
      }
      return undefined;
    }
    case 'affiliations': {
      const id = needNode();
      if (type === 'get') {
        const affs = await service.nodeAffiliations(from, id);
        const list = new Element('affiliations', { node: id });
        for (const a of affs) list.c('affiliation', { jid: a.jid, affiliation: a.affiliation });
        return pubsub(NS_PUBSUB_OWNER, list);
      }
      const changes = elements(first).filter((c) => c.name === 'affiliation').map((c) => {
        const jid = attr(c, 'jid');
        if (!jid) throw errors.badRequest('jid-required', 'Each affiliation needs a jid');
        const affiliation = attr(c, 'affiliation');
        return { jid, ...(affiliation !== undefined ? { affiliation } : {}) };
      });
      const failed = await service.modifyAffiliations(from, id, changes);
      if (failed.length > 0) {
        const list = new Element('affiliations', { node: id });
        for (const a of failed) list.c('affiliation', { jid: a.jid, affiliation: a.affiliation });
        throw new PubSubError('modify', 'not-acceptable', undefined, 'Some affiliations could not be changed', { payload: pubsub(NS_PUBSUB_OWNER, list) });
      }
      return undefined;
    }
    default:
      throw errors.badRequest(undefined, `Unknown pubsub#owner request <${first.name}/>`);
  }
}

/**
 * A message to the service carrying an owner's answer to an authorization request (§8.6).
 * Resolves to true when it was one (and was handled); throws PubSubError for a bad answer.
 */
export async function handlePubSubMessage(service: PubSubService, message: Element, from: string): Promise<boolean> {
  for (const x of message.getChildren('x', 'jabber:x:data')) {
    const f = parseForm(x);
    if (f?.formType === FORM_SUBSCRIBE_AUTHORIZATION) {
      await service.authorize(from, f);
      return true;
    }
  }
  return false;
}

/** A disco#info <query/> for the service or a node. */
export function discoInfoElement(info: DiscoInfo, node?: string): Element {
  const q = new Element('query', node ? { xmlns: NS_DISCO_INFO, node } : { xmlns: NS_DISCO_INFO });
  for (const i of info.identities) q.c('identity', { category: i.category, type: i.type });
  for (const f of info.features) q.c('feature', { var: f });
  for (const x of info.forms) q.cnode(x);
  return q;
}

/** A disco#items <query/> for the service or a node. */
export function discoItemsElement(items: readonly DiscoItem[], node?: string): Element {
  const q = new Element('query', node ? { xmlns: NS_DISCO_ITEMS, node } : { xmlns: NS_DISCO_ITEMS });
  for (const i of items) q.c('item', { jid: i.jid, ...(i.node !== undefined ? { node: i.node } : {}), ...(i.name !== undefined ? { name: i.name } : {}) });
  return q;
}
