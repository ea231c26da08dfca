// What goes into an archive, in what form, under which 'with' — and what leaves it again
// (retention). XEP-0313 §5.1 (storage rules), XEP-0334 (hints), §3.2 (retention).
import type { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import type { MamArchive } from './archive.ts';
import { bare } from '../jid.ts';
import { stripStanzaIds } from './stanza-id.ts';

const NS_CLIENT = 'jabber:client';
const NS_HINTS = 'urn:xmpp:hints';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

export interface ArchiveDecision {
  archive: boolean;
  /** Why (for the debug log). */
  reason: string;
}

const has = (m: Element, name: string, ns: string) => m.getChild(name, ns) !== undefined;
const hasNs = (m: Element, ns: string) => m.children.some((c) => typeof c !== 'string' && c.attrs.xmlns === ns);
const hasBody = (m: Element) => m.children.some((c) => typeof c !== 'string' && c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS_CLIENT));
const hasSubject = (m: Element) => m.children.some((c) => typeof c !== 'string' && c.name === 'subject' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS_CLIENT));

// Payloads that carry a conversation without a <body/> (or whose <body/> is only a fallback), so
// that another device of the user learns of them from the archive. Each is a namespace whose
// presence as a direct child makes the message worth archiving.
const CONTENT_WITHOUT_BODY: readonly [string, string][] = [
  ['urn:xmpp:eme:0', 'encrypted (XEP-0380)'],
  ['eu.siacs.conversations.axolotl', 'encrypted (OMEMO)'],
  ['urn:xmpp:omemo:2', 'encrypted (OMEMO 2)'],
  ['urn:xmpp:openpgp:0', 'encrypted (XEP-0373)'],
  ['jabber:x:conference', 'invitation (XEP-0249)'],
  ['urn:xmpp:jingle-message:0', 'call (XEP-0353)'],
  ['urn:xmpp:jingle-message:1', 'call (XEP-0353)'],
  ['urn:xmpp:receipts', 'delivery receipt (XEP-0184)'],
  ['urn:xmpp:chat-markers:0', 'chat marker (XEP-0333)'],
  ['urn:xmpp:reactions:0', 'reaction (XEP-0444)'],
  ['urn:xmpp:message-retract:1', 'retraction (XEP-0424)'],
  ['urn:xmpp:message-correct:0', 'correction (XEP-0308)'],
];

/**
 * Whether a one-to-one message goes into a user's archive (XEP-0313 §5.1.1): 'normal' and
 * 'chat' messages with a body — and with the payloads above — unless hinted <no-store/> or
 * <no-permanent-store/> (XEP-0334); anything but an error when hinted <store/>. Never errors,
 * headlines (ephemeral), groupchat messages (the room archives those; this archive then holds
 * none, which is what 'include-groupchat' reports), carbon copies and MAM results (copies of
 * something archived once already, §5.1.1 "only once").
 */
export function userArchiveDecision(message: Element): ArchiveDecision {
  const type = (message.attrs.type as string | undefined) ?? 'normal';
  if (type === 'error') return { archive: false, reason: 'error' };
  if (type === 'headline') return { archive: false, reason: 'headline' };
  if (type === 'groupchat') return { archive: false, reason: 'groupchat (archived by the room)' };
  if (type !== 'normal' && type !== 'chat') return { archive: false, reason: `unknown type ${type}` };
  if (hasNs(message, 'urn:xmpp:carbons:2')) return { archive: false, reason: 'carbon copy' };
  if (has(message, 'result', 'urn:xmpp:mam:2') || has(message, 'result', 'urn:xmpp:mam:1')) return { archive: false, reason: 'archive result' };
  if (has(message, 'no-store', NS_HINTS) || has(message, 'no-permanent-store', NS_HINTS)) return { archive: false, reason: 'hint: not to be stored' };
  if (has(message, 'store', NS_HINTS)) return { archive: true, reason: 'hint: store' };
  if (hasBody(message)) return { archive: true, reason: 'body' };
  if (hasSubject(message)) return { archive: true, reason: 'subject' };
  for (const [ns, reason] of CONTENT_WITHOUT_BODY) if (hasNs(message, ns)) return { archive: true, reason };
  const invite = message.getChild('x', NS_MUC_USER)?.getChild('invite');
  if (invite) return { archive: true, reason: 'invitation (XEP-0045)' };
  return { archive: false, reason: 'no content worth keeping' };
}

/**
 * Whether a message the room broadcasts goes into the room's archive (§5.1.2): groupchat messages
 * with a body or a subject (a subject change, even to empty), or hinted <store/>, or encrypted;
 * never with <no-store/>/<no-permanent-store/>, never private messages (they are type chat).
 */
export function roomArchiveDecision(message: Element): ArchiveDecision {
  const type = message.attrs.type as string | undefined;
  if (type !== 'groupchat') return { archive: false, reason: `type ${type ?? 'normal'} (only groupchat is archived)` };
  if (has(message, 'no-store', NS_HINTS) || has(message, 'no-permanent-store', NS_HINTS)) return { archive: false, reason: 'hint: not to be stored' };
  if (has(message, 'store', NS_HINTS)) return { archive: true, reason: 'hint: store' };
  if (hasBody(message)) return { archive: true, reason: 'body' };
  if (hasSubject(message)) return { archive: true, reason: 'subject' };
  for (const [ns, reason] of CONTENT_WITHOUT_BODY.slice(0, 4)) if (hasNs(message, ns)) return { archive: true, reason };
  return { archive: false, reason: 'no content worth keeping' };
}

/**
 * The text to store for an archived message: the stanza as routed, in jabber:client, without
 * any <stanza-id/> claiming the archive's JID (the archive's own id is the item's id and is
 * added on delivery, not stored). For a room (`room: true`) also without 'to' (§5.1.2: results
 * carry none) and without <x xmlns='…muc#user'/> (§8.4: senders can forge it; the room's render
 * adds the real JID per requester).
 */
export function archivedPayload(message: Element, archiveJid: string, opts: { room?: boolean } = {}): string {
  let m = stripStanzaIds(message, archiveJid);
  if (m === message) m = clone(message) as Element;
  m.attrs.xmlns = NS_CLIENT;
  if (opts.room) {
    delete m.attrs.to;
    m.children = m.children.filter((c) => typeof c === 'string' || !(c.name === 'x' && c.attrs.xmlns === NS_MUC_USER));
  }
  return m.toString();
}

/**
 * The archives a one-to-one message goes to, by direction, with each one's 'with' (§3: the
 * remote JID — 'to' for outgoing, 'from' for incoming — as given, so a full JID query can match
 * it exactly and a bare one matches it through its bare part). A message to oneself is archived
 * once, as outgoing, with 'with' = the account (§4.1.1: querying with = own JID finds them).
 * The caller keeps only the archives of local accounts.
 */
export function archiveTargets(message: Element): { owner: string; direction: 'outgoing' | 'incoming'; with: string }[] {
  const from = message.attrs.from as string | undefined;
  const to = message.attrs.to as string | undefined;
  if (!from || !to) return [];
  const fromBare = bare(from);
  const toBare = bare(to);
  if (!fromBare || !toBare) return [];
  const out: { owner: string; direction: 'outgoing' | 'incoming'; with: string }[] = [{ owner: fromBare, direction: 'outgoing', with: to }];
  if (toBare !== fromBare) out.push({ owner: toBare, direction: 'incoming', with: from });
  return out;
}

/**
 * Reads a retention setting (`mam.archiveExpiresAfter`): a number of seconds, or a string of a
 * number and a unit — s, m (minutes), h, d, w, y (365 days) — or 'never'. Returns milliseconds,
 * undefined for never, or throws RangeError for anything else.
 */
export function parseExpiry(value: string | number | null | undefined): number | undefined {
  if (value === undefined || value === null || value === 'never') return undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`archive expiry must be a positive number of seconds, got ${value}`);
    return value * 1000;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$/.exec(value);
  if (!m || Number(m[1]) <= 0) throw new RangeError(`archive expiry must look like 3600, '12h', '7d', '4w', '1y' or 'never', got ${JSON.stringify(value)}`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w' | 'y'];
  return Number(m[1]) * unit * 1000;
}

/**
 * Removes the items archived at or before `cutoff` (ms) from one archive — from its oldest
 * item up to the first that is newer, so the archive never gets a hole (§3.2: deleted messages
 * MUST be the oldest) even if its times are not in order. Deletes in batches (one transaction
 * each), yielding in between; resolves to how many were removed.
 */
export async function expireArchive(store: MamArchive, user: string | null, cutoff: number, batch = 1000): Promise<number> {
  const [firstKept] = await store.find(user, { start: cutoff + 1, limit: 1 });
  let removed = 0;
  for (;;) {
    const n = await store.delete(user, firstKept ? { before: firstKept.id, limit: batch } : { limit: batch });
    removed += n;
    if (n < batch) return removed;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
