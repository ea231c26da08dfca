// The iq interface of vCard4 (XEP-0292 version 0.11 §4.1; version 0.12.0 removed it in favour of
// PEP alone, which mod_pep serves as well): <vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/> in
// an iq, mapped onto the account's 'urn:xmpp:vcard4' PEP node, so clients of either version see
// one card.
//  - get to an account (its bare JID, or one's own): the node's last item, read as the requester
//    under the node's access model (its errors as PEP answers them); no card: an empty <vcard/>
//    (§4.1.1);
//  - set to one's own account: the whole card published to the node as the account (item
//    'current', a new node open like vcard-temp), notified as any publish, then kept in step
//    with vcard-temp; set to another account: forbidden.
import type { Element } from '@xmpp/xml';
import { bare, iqResult, pubsub, StanzaError, xml, type ModuleApi, type StanzaEvent } from '../../core/api.ts';

export interface Vcard4IqOptions {
  module: ModuleApi;
  serviceOf(username: string): pubsub.PubSubService;
  /** After the account's card changed through the iq (the vcard-temp view). */
  changed(username: string): Promise<void>;
}

const ITEM_ID = 'current';

export function vcard4Iq({ module, serviceOf, changed }: Vcard4IqOptions): void {
  const host = module.host;

  const get = async ({ origin, stanza, toNode, destType }: StanzaEvent): Promise<true> => {
    const username = toNode ?? '';
    if (!username || (destType === 'bare' && !(await module.users.exists(host, username)))) {
      throw new StanzaError('cancel', 'service-unavailable');
    }
    const from = stanza.attrs.from ?? `${username}@${host}`;
    const service = serviceOf(username);
    let card: Element | undefined;
    if (await service.nodeConfig(pubsub.VCARD4_NODE)) {
      try {
        const { items } = await service.items(from, pubsub.VCARD4_NODE, { maxItems: 1 });
        card = items[items.length - 1]?.payload;
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        origin.send(pubsub.errorReplyFor(stanza, err));
        return true;
      }
    }
    const answer = card?.is('vcard', pubsub.NS_VCARD4) ? card : xml('vcard', { xmlns: pubsub.NS_VCARD4 });
    origin.send(iqResult(stanza, answer));
    return true;
  };

  const set = async ({ origin, stanza, toNode }: StanzaEvent): Promise<true> => {
    const username = toNode ?? '';
    const from = stanza.attrs.from;
    if (!username || typeof from !== 'string' || bare(from) !== `${username}@${host}`) {
      throw new StanzaError('cancel', 'forbidden', 'Only the account publishes its vCard');
    }
    const card = stanza.getChild('vcard', pubsub.NS_VCARD4);
    if (!card) throw new StanzaError('modify', 'bad-request', 'A <vcard/> is required');
    const service = serviceOf(username);
    const exists = await service.nodeConfig(pubsub.VCARD4_NODE);
    try {
      await service.publish(`${username}@${host}`, pubsub.VCARD4_NODE, xml('item', { id: ITEM_ID }, card),
        exists ? undefined : { values: { access_model: 'open' }, fixed: new Map() });
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      origin.send(pubsub.errorReplyFor(stanza, err));
      return true;
    }
    origin.send(iqResult(stanza));
    try {
      await changed(username);
    } catch (err) {
      module.log.error('translating the vCard4 of %s: %s', username, err);
    }
    return true;
  };

  for (const dest of ['bare', 'self'] as const) module.hook(`iq-get/${dest}/${pubsub.NS_VCARD4}:vcard`, get);
  module.hook(`iq-set/self/${pubsub.NS_VCARD4}:vcard`, set);
  module.hook(`iq-set/bare/${pubsub.NS_VCARD4}:vcard`, set);
}
