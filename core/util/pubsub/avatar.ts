// Avatars in their two homes, converted as XEP-0398 describes: User Avatar over PEP (XEP-0084: a
// data node with the base64 image, a metadata node with its SHA-1, size and type) and the
// vcard-temp PHOTO whose hash clients announce in presence (XEP-0153). Pure functions: the glue
// reads and writes the nodes and the vCard store, and stamps presence (doc/pubsub.md).
import { createHash } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';

export const NS_AVATAR_DATA = 'urn:xmpp:avatar:data';
export const NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata';
export const NS_VCARD_TEMP = 'vcard-temp';
export const NS_VCARD_UPDATE = 'vcard-temp:x:update';
/** XEP-0398 §2: announced on the account when the server converts. */
export const FEATURE_PEP_VCARD_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0';

/** One <info/> of avatar metadata (XEP-0084 §4.2.1). */
export interface AvatarInfo {
  /** SHA-1 of the image bytes, hex. */
  id: string;
  bytes: number;
  type: string;
  width?: number;
  height?: number;
  url?: string;
}

export interface AvatarImage {
  /** SHA-1 of the bytes, lowercase hex (the XEP-0084 ItemID and the XEP-0153 photo hash). */
  id: string;
  type: string;
  bytes: Buffer;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decode base64 ignoring whitespace (XEP-0153 §5.5, XEP-0084 §4.1); undefined when it is not base64. */
export function decodeBase64(s: string): Buffer | undefined {
  const compact = s.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

export function sha1Hex(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** The image type its bytes show (XEP-0153 §6: the data wins over the declared TYPE), if recognised. */
export function sniffImageType(b: Buffer): string | undefined {
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'image/png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) return 'image/gif';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

/** Width and height where the format makes them cheap to read (PNG's IHDR, GIF's screen descriptor). */
export function imageSize(b: Buffer, type: string): { width: number; height: number } | undefined {
  if (type === 'image/png' && b.length >= 24 && b.toString('latin1', 12, 16) === 'IHDR') return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (type === 'image/gif' && b.length >= 10) return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
  return undefined;
}

/** The <info/> elements of a XEP-0084 <metadata/> payload; an empty list means "avatar disabled" (§4.4). */
export function readAvatarMetadata(metadata: Element): AvatarInfo[] {
  const out: AvatarInfo[] = [];
  for (const info of metadata.getChildren('info')) {
    const a = info.attrs as Record<string, string | undefined>;
    const bytes = Number(a.bytes);
    if (!a.id || !a.type || !Number.isSafeInteger(bytes) || bytes < 0) continue;
    const i: AvatarInfo = { id: a.id.toLowerCase(), bytes, type: a.type };
    if (a.width !== undefined && /^\d+$/.test(a.width)) i.width = Number(a.width);
    if (a.height !== undefined && /^\d+$/.test(a.height)) i.height = Number(a.height);
    if (a.url !== undefined) i.url = a.url;
    out.push(i);
  }
  return out;
}

/**
 * PEP → vCard (XEP-0398 §3.1): the image a metadata item announces, from the data node. Takes the
 * first <info/> without a url (preferring image/png), fetches its data item through `data`
 * (ItemID → the <data/> payload), and checks the SHA-1. Resolves to the image, null when the
 * avatar is disabled (empty metadata), or undefined when nothing usable is there (no data item,
 * bad base64, a hash mismatch, only external URLs).
 */
export async function avatarFromPep(metadata: Element, data: (id: string) => Promise<Element | undefined>): Promise<AvatarImage | null | undefined> {
  const infos = readAvatarMetadata(metadata);
  if (metadata.getChildElements().length === 0) return null;
  const local = infos.filter((i) => i.url === undefined);
  const pick = local.find((i) => i.type === 'image/png') ?? local[0];
  if (!pick) return undefined;
  const payload = await data(pick.id);
  if (!payload) return undefined;
  const bytes = decodeBase64(payload.text());
  if (!bytes || sha1Hex(bytes) !== pick.id) return undefined;
  return { id: pick.id, type: pick.type, bytes };
}

/**
 * vCard → PEP (XEP-0398 §3.2): the image in a vcard-temp PHOTO (BINVAL), with the two payloads to
 * publish — <data/> at ItemID `id` in urn:xmpp:avatar:data, then <metadata/> at the same ItemID in
 * urn:xmpp:avatar:metadata. Undefined when the vCard has no inline photo.
 */
export function avatarFromVcard(vcard: Element): { image: AvatarImage; data: Element; metadata: Element } | undefined {
  const photo = vcard.getChild('PHOTO');
  const binval = photo?.getChild('BINVAL');
  if (!photo || !binval) return undefined;
  const bytes = decodeBase64(binval.text());
  if (!bytes || bytes.length === 0) return undefined;
  const declared = photo.getChildText('TYPE')?.trim() || undefined;
  const type = sniffImageType(bytes) ?? declared ?? 'image/png';
  const image: AvatarImage = { id: sha1Hex(bytes), type, bytes };
  return { image, data: avatarDataPayload(image), metadata: avatarMetadataPayload(image) };
}

export function avatarDataPayload(image: AvatarImage): Element {
  return new Element('data', { xmlns: NS_AVATAR_DATA }).t(image.bytes.toString('base64'));
}

export function avatarMetadataPayload(image: AvatarImage): Element {
  const size = imageSize(image.bytes, image.type);
  const metadata = new Element('metadata', { xmlns: NS_AVATAR_METADATA });
  metadata.c('info', {
    bytes: String(image.bytes.length),
    id: image.id,
    type: image.type,
    ...(size ? { width: String(size.width), height: String(size.height) } : {}),
  });
  return metadata;
}

/**
 * A vcard-temp <vCard/> with its PHOTO replaced by `image` (or removed, for null), every other
 * field kept. `vcard` undefined starts from an empty card.
 */
export function withVcardPhoto(vcard: Element | undefined, image: AvatarImage | null): Element {
  const out = new Element('vCard', { xmlns: NS_VCARD_TEMP });
  for (const c of vcard?.getChildElements() ?? []) if (c.name !== 'PHOTO') out.cnode(clone(c) as unknown as Element);
  if (image) {
    const photo = out.c('PHOTO');
    photo.c('TYPE').t(image.type);
    photo.c('BINVAL').t(image.bytes.toString('base64'));
  }
  return out;
}

/**
 * The XEP-0153 hash of a vCard's photo: the SHA-1 of the BINVAL bytes, '' when the card has no
 * inline photo (announced as an empty <photo/>), undefined when the BINVAL is not base64.
 */
export function vcardPhotoHash(vcard: Element | undefined): string | undefined {
  const binval = vcard?.getChild('PHOTO')?.getChild('BINVAL');
  if (!binval) return '';
  const bytes = decodeBase64(binval.text());
  if (!bytes) return undefined;
  return bytes.length === 0 ? '' : sha1Hex(bytes);
}

/**
 * XEP-0398 §4: the server puts the avatar hash into the user's available presence. An empty
 * <photo/> from the client is left alone (it means "no avatar"); an <x/> without <photo/>, or no
 * <x/> at all, gets the hash; a different hash is replaced. Unavailable and other typed presence
 * is returned as it is. `hash` '' announces "no avatar"; undefined changes nothing. Returns a copy.
 */
export function stampPresencePhoto(presence: Element, hash: string | undefined): Element {
  if (hash === undefined || presence.name !== 'presence' || presence.attrs.type !== undefined) return presence;
  const out = clone(presence) as unknown as Element;
  let x = out.getChild('x', NS_VCARD_UPDATE);
  const photo = x?.getChild('photo');
  if (photo && photo.text().trim() === '') return presence;
  if (photo && photo.text().trim().toLowerCase() === hash) return presence;
  if (!x) x = out.c('x', { xmlns: NS_VCARD_UPDATE });
  if (photo) x.remove('photo');
  const el = x.c('photo');
  if (hash !== '') el.t(hash);
  return out;
}
