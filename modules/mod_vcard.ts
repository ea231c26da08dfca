//% requires_core_features: stanza-events-v1, storage-keyval, user-deleted-event, events-async
// vcard-temp (XEP-0054): a user stores and reads their own vCard; anyone may read it.
//
//  - get to oneself (no 'to', or one's bare JID): the stored vCard, or an empty <vCard/> when
//    none is stored (§3.1 allows either an empty result or an error; the empty result is what
//    clients handle best for their own card);
//  - get to another account's bare JID: the stored vCard; item-not-found when the account has
//    none (§3.3 requires an error there, item-not-found being one of the two it names);
//    service-unavailable when there is no such account (RFC 6121 §8.5.1, as mod_disco does);
//  - get to the server's domain: an empty <vCard/> (the server has no card of its own);
//  - set: only to oneself; to another account or to the domain, forbidden (§3.2 "SHOULD be
//    forbidden or not-allowed"). The card is stored as XML text in the 'vcard' keyval store and
//    is durable before the result is sent.
//
// Other modules (mod_pep: XEP-0398 avatars, XEP-0292 vCard4) read and write cards through the
// `vcard/load` and `vcard/store` events, and hear of every change through `vcard/updated`.
//
// Size limits: `maxPhotoBytes` bounds the decoded size of the PHOTO BINVAL data and `maxSize`
// the serialized vCard. Exceeding either is answered `not-acceptable` (type modify): RFC 6120
// §8.3.3.9 defines it as a request that "does not meet criteria defined by the recipient or
// server", and type modify tells the client that a smaller card would be accepted
// (policy-violation, §8.3.3.12, is meant for content the service prohibits, not for sizes).
// Note that a stanza larger than `c2s.stanzaSizeLimit` (default 256 KiB) closes the stream
// before it reaches this module.
import type { Element } from '@xmpp/xml';
import { parse } from 'ltx';
import { defineModule, iqPayload, StanzaError, xml, type VcardUpdatedEvent } from '../core/api.ts';

export const NS_VCARD = 'vcard-temp';

const options = {
  maxPhotoBytes: {
    type: 'integer',
    description: 'Largest accepted PHOTO image (decoded BINVAL bytes)',
    // Base64 grows it by a third: stays under the default c2s.stanzaSizeLimit (256 KiB).
    default: 128 * 1024,
    min: 0,
  },
  maxSize: {
    type: 'integer',
    description: 'Largest accepted vCard (bytes of its XML serialization)',
    default: 240 * 1024,
    min: 1,
  },
} as const;


/** Decoded size of base64 text (whitespace ignored), without decoding it. */
function base64DecodedLength(text: string): number {
  const s = text.replace(/\s+/g, '');
  if (s.length === 0) return 0;
  let pad = 0;
  if (s.endsWith('==')) pad = 2;
  else if (s.endsWith('=')) pad = 1;
  return Math.floor((s.length * 3) / 4) - pad;
}

/** Total decoded bytes of the card's PHOTO/BINVAL values. */
function photoBytes(vcard: Element): number {
  let n = 0;
  for (const photo of vcard.getChildren('PHOTO')) {
    for (const binval of photo.getChildren('BINVAL')) n += base64DecodedLength(binval.text());
  }
  return n;
}

function emptyVCard(): Element {
  return xml('vCard', { xmlns: NS_VCARD });
}

export default defineModule({
  description: 'vcard-temp (XEP-0054): user vCards',
  options,
  load(module) {
    module.addFeature(NS_VCARD);
    const store = module.storage.keyval('vcard');

    const load = async (username: string): Promise<Element | undefined> => {
      const text = await store.get<string>(username);
      if (typeof text !== 'string') return undefined;
      try {
        return parse(text) as unknown as Element;
      } catch (err) {
        module.log.error('stored vCard of %s@%s is unreadable: %s', username, module.host, err);
        return undefined;
      }
    };

    // -- get --------------------------------------------------------------------------------------

    module.hook(`iq-get/self/${NS_VCARD}:vCard`, async ({ origin, stanza, toNode }) => {
      origin.send(module.iqResult(stanza, (await load(toNode ?? '')) ?? emptyVCard()));
      return true;
    });

    module.hook(`iq-get/bare/${NS_VCARD}:vCard`, async ({ origin, stanza, toNode }) => {
      const username = toNode ?? '';
      const card = await load(username);
      if (card) {
        origin.send(module.iqResult(stanza, card));
        return true;
      }
      if (await module.users.exists(module.host, username)) throw new StanzaError('cancel', 'item-not-found');
      throw new StanzaError('cancel', 'service-unavailable');
    });

    module.hook(`iq-get/host/${NS_VCARD}:vCard`, ({ origin, stanza }) => {
      origin.send(module.iqResult(stanza, emptyVCard()));
      return true;
    });

    // -- set --------------------------------------------------------------------------------------

    module.hook(`iq-set/self/${NS_VCARD}:vCard`, async ({ origin, stanza, toNode }) => {
      const card = iqPayload(stanza);
      if (!card || !toNode) throw new StanzaError('modify', 'bad-request');
      const photo = photoBytes(card);
      const maxPhoto = module.option('maxPhotoBytes');
      if (photo > maxPhoto) throw new StanzaError('modify', 'not-acceptable', `The photo is too large (${photo} bytes, at most ${maxPhoto} allowed)`);
      const text = card.toString();
      const size = Buffer.byteLength(text, 'utf8');
      const maxSize = module.option('maxSize');
      if (size > maxSize) throw new StanzaError('modify', 'not-acceptable', `The vCard is too large (${size} bytes, at most ${maxSize} allowed)`);
      // An empty card is a deletion (there is nothing left to show).
      const empty = card.getChildElements().length === 0 && card.text().trim() === '';
      await store.set(toNode, empty ? undefined : text);
      origin.send(module.iqResult(stanza));
      module.emit('vcard/updated', { username: toNode, vcard: empty ? undefined : card, source: 'client' } satisfies VcardUpdatedEvent);
      return true;
    });

    // -- other modules ----------------------------------------------------------------------------

    module.hook('vcard/load', async (request) => {
      request.vcard = await load(request.username);
      return true;
    });
    module.hook('vcard/store', async ({ username, vcard, source }) => {
      await store.set(username, vcard ? vcard.toString() : undefined);
      module.emit('vcard/updated', { username, vcard, source } satisfies VcardUpdatedEvent);
      return true;
    });

    const forbidden = (): never => {
      throw new StanzaError('auth', 'forbidden', 'You can only change your own vCard');
    };
    module.hook(`iq-set/bare/${NS_VCARD}:vCard`, forbidden);
    module.hook(`iq-set/host/${NS_VCARD}:vCard`, forbidden);

    // -- account removal --------------------------------------------------------------------------

    module.hook('user-deleted', async ({ host, username }) => {
      if (host === module.host) await store.set(username, undefined);
      return undefined;
    });
  },
});
