// vCard ⇄ PEP (XEP-0398 avatars, XEP-0292 vCard4), and the avatar hash in presence (XEP-0153):
//  - a vcard-temp change (mod_vcard's `vcard/updated`) publishes its photo to
//    urn:xmpp:avatar:data and urn:xmpp:avatar:metadata (both at ItemID = the SHA-1, §3.2) and the
//    card as vCard4 to urn:xmpp:vcard4 (XEP-0292 §4), when they differ from what is there;
//  - a publish of avatar metadata (whose data is in the data node) or of a vCard4 by the account
//    is stored into its vcard-temp (`vcard/store`, source 'pep', which is not translated back);
//  - the account's available presence (directed presence included) carries
//    <x xmlns='vcard-temp:x:update'><photo>hash</photo></x> (XEP-0398 §4, XEP-0153 §4).
// New nodes made by a conversion are open, like the vCard they come from.
import type { Element } from '@xmpp/xml';
import { isBound, pubsub, xml, type ModuleApi, type VcardLoadEvent } from '../../core/api.ts';

const SOURCE = 'pep';

export interface AvatarSync {
  /** The account changed `node` through a pubsub request. */
  changed(username: string, node: string): Promise<void>;
}

export function avatarSync({ module, serviceOf }: { module: ModuleApi; serviceOf(username: string): pubsub.PubSubService }): AvatarSync {
  const host = module.host;
  const jidOf = (username: string) => `${username}@${host}`;
  /** The XEP-0153 hash of each account's vCard photo, once known. */
  const hashes = new Map<string, string | undefined>();

  const loadVcard = async (username: string): Promise<Element | undefined> => {
    const request: VcardLoadEvent = { username };
    await module.fireAsync('vcard/load', request);
    return request.vcard;
  };

  const lastItem = async (username: string, node: string, id?: string): Promise<pubsub.ResultItem | undefined> => {
    const service = serviceOf(username);
    if (!(await service.nodeConfig(node))) return undefined;
    const { items } = await service.items(jidOf(username), node, id ? { ids: [id] } : { maxItems: 1 }).catch(() => ({ items: [] as pubsub.ResultItem[] }));
    return items[items.length - 1];
  };

  /** Publish as the account; a node that does not exist yet is created open. */
  const publishAs = async (username: string, node: string, id: string, payload: Element): Promise<void> => {
    const service = serviceOf(username);
    const exists = await service.nodeConfig(node);
    await service.publish(jidOf(username), node, xml('item', { id }, payload), exists ? undefined : { values: { access_model: 'open' }, fixed: new Map() });
  };

  const storeVcard = async (username: string, vcard: Element): Promise<void> => {
    await module.fireAsync('vcard/store', { username, vcard, source: SOURCE });
  };

  // vcard-temp → PEP
  module.hook('vcard/updated', async ({ username, vcard, source }) => {
    hashes.set(username, pubsub.vcardPhotoHash(vcard));
    if (source === SOURCE) return;
    await module.serial(`avatar ${username}`, async () => {
      try {
        const avatar = vcard ? pubsub.avatarFromVcard(vcard) : undefined;
        const meta = await lastItem(username, pubsub.NS_AVATAR_METADATA);
        const currentId = meta?.payload ? pubsub.readAvatarMetadata(meta.payload)[0]?.id : undefined;
        if (avatar && currentId !== avatar.image.id) {
          await publishAs(username, pubsub.NS_AVATAR_DATA, avatar.image.id, avatar.data);
          await publishAs(username, pubsub.NS_AVATAR_METADATA, avatar.image.id, avatar.metadata);
        } else if (!avatar && currentId !== undefined) {
          // The photo was removed: the avatar is disabled (XEP-0084 §4.6, an empty <metadata/>).
          await publishAs(username, pubsub.NS_AVATAR_METADATA, 'current', xml('metadata', { xmlns: pubsub.NS_AVATAR_METADATA }));
        }
        if (vcard) {
          const previous = (await lastItem(username, pubsub.VCARD4_NODE))?.payload;
          const v4 = pubsub.vcard4FromVcardTemp(vcard, previous);
          if (previous?.toString() !== v4.toString()) await publishAs(username, pubsub.VCARD4_NODE, 'current', v4);
        }
      } catch (err) {
        module.log.error('publishing the vCard of %s to PEP: %s', username, err);
      }
    });
  });

  // The hash in presence: known from the account's first resource on.
  module.hook('resource-bind', async ({ session }) => {
    if (!isBound(session) || hashes.has(session.username)) return;
    const vcard = await loadVcard(session.username);
    if (!hashes.has(session.username)) hashes.set(session.username, pubsub.vcardPhotoHash(vcard));
  });
  module.filter('stanzas/in', (stanza, session) => {
    if (stanza.name !== 'presence' || stanza.attrs.type !== undefined || !isBound(session)) return stanza;
    return pubsub.stampPresencePhoto(stanza, hashes.get(session.username));
  });

  return {
    async changed(username, node) {
      if (node !== pubsub.NS_AVATAR_METADATA && node !== pubsub.VCARD4_NODE) return;
      await module.serial(`avatar ${username}`, async () => {
        const item = await lastItem(username, node);
        if (!item?.payload) return;
        const current = await loadVcard(username);
        if (node === pubsub.VCARD4_NODE) {
          await storeVcard(username, pubsub.vcardTempFromVcard4(item.payload, current));
          return;
        }
        // XEP-0398 §3.1: only an avatar whose data anyone may read goes into the (public) vCard.
        if ((await serviceOf(username).nodeConfig(pubsub.NS_AVATAR_DATA))?.access_model !== 'open' && item.payload.getChildElements().length > 0) return;
        const image = await pubsub.avatarFromPep(item.payload, async (id) => (await lastItem(username, pubsub.NS_AVATAR_DATA, id))?.payload);
        if (image === undefined) return;
        await storeVcard(username, pubsub.withVcardPhoto(current, image));
      });
    },
  };
}
