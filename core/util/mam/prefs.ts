// Archiving preferences (XEP-0441, in the urn:xmpp:mam:2 namespace): reading and writing
// <prefs/>, and the decision "is a message with this contact archived?".
//
// XEP-0441 §2.3 matching: the target JID is the message's 'to' for outgoing messages and 'from'
// for incoming ones. A listed JID with a resource is compared with the target as it is; a bare
// listed JID with the target's bare JID. default='roster' compares the target's bare JID with the
// roster. The XEP does not say what wins when a JID matches both lists; here the more specific
// entry (a full JID over a bare one) wins, and between equals 'never' wins — the privacy-safe
// choice, and a <prefs/> set with a JID in both lists is stored with it in 'never' only.
import { Element } from '@xmpp/xml';
import { StanzaError } from '../errors.ts';
import { bare, prep } from '../jid.ts';
import { NS_MAM } from './query.ts';

export type ArchiveDefault = 'always' | 'never' | 'roster';

/** A user's preferences; JSON-safe, so it can be kept as is in a keyval store. */
export interface ArchivePrefs {
  default: ArchiveDefault;
  always: string[];
  never: string[];
}

const DEFAULTS: readonly string[] = ['always', 'never', 'roster'];

export function isArchiveDefault(v: unknown): v is ArchiveDefault {
  return typeof v === 'string' && DEFAULTS.includes(v);
}

/** Preferences nobody has set yet: the deployment's default, empty lists. */
export function defaultPrefs(def: ArchiveDefault = 'always'): ArchivePrefs {
  return { default: def, always: [], never: [] };
}

/** Deduplicated lists, with a JID in both kept in 'never' only. */
function normalise(p: ArchivePrefs): ArchivePrefs {
  const never = [...new Set(p.never)];
  const neverSet = new Set(never);
  const always = [...new Set(p.always)].filter((j) => !neverSet.has(j));
  return { default: p.default, always, never };
}

/**
 * Reads a <prefs/> from an iq set. Throws bad-request when 'default' is missing or unknown,
 * jid-malformed for a <jid/> that is not a JID. The result is normalised (see above).
 */
export function parsePrefs(el: Element, prepJid: (jid: string) => string | null = prep): ArchivePrefs {
  if (el.name !== 'prefs' || el.attrs.xmlns !== NS_MAM) {
    throw new StanzaError('modify', 'bad-request', `Expected <prefs xmlns='${NS_MAM}'/>`);
  }
  const def = el.attrs.default as string | undefined;
  if (!isArchiveDefault(def)) {
    throw new StanzaError('modify', 'bad-request', `'default' must be always, never or roster, got ${JSON.stringify(def ?? null)}`);
  }
  const list = (name: 'always' | 'never'): string[] => {
    const out: string[] = [];
    for (const holder of el.getChildren(name)) {
      for (const j of holder.getChildren('jid')) {
        const text = j.text().trim();
        const p = prepJid(text);
        if (!p) throw new StanzaError('modify', 'jid-malformed', `Invalid JID in <${name}/>: ${JSON.stringify(text)}`);
        out.push(p);
      }
    }
    return out;
  };
  return normalise({ default: def, always: list('always'), never: list('never') });
}

/** The <prefs/> element of a result: default, and <always/> and <never/> even when empty (§2.1). */
export function prefsElement(p: ArchivePrefs): Element {
  const el = new Element('prefs', { xmlns: NS_MAM, default: p.default });
  const always = el.c('always');
  for (const j of p.always) always.c('jid').t(j);
  const never = el.c('never');
  for (const j of p.never) never.c('jid').t(j);
  return el;
}

/** Preferences read back from storage; anything unusable gives the deployment's default. */
export function storedPrefs(value: unknown, def: ArchiveDefault = 'always'): ArchivePrefs {
  if (typeof value !== 'object' || value === null) return defaultPrefs(def);
  const v = value as Record<string, unknown>;
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  return normalise({ default: isArchiveDefault(v.default) ? v.default : def, always: strings(v.always), never: strings(v.never) });
}

/**
 * What the preferences say for a target JID (normalised): 'always' or 'never' from the lists or
 * the default, or 'roster' — then it is archived exactly when the target's bare JID is in the
 * user's roster, which the caller looks up only in that case.
 */
export function archivePolicy(p: ArchivePrefs, target: string): ArchiveDefault {
  const targetBare = bare(target) ?? target;
  const hasResource = targetBare !== target;
  const full = (list: string[]) => hasResource && list.includes(target);
  // A bare entry matches any target with that bare JID; a full entry only that full JID.
  const bareMatch = (list: string[]) => list.some((j) => !j.includes('/') && j === targetBare);
  if (full(p.never)) return 'never';
  if (full(p.always)) return 'always';
  if (bareMatch(p.never)) return 'never';
  if (bareMatch(p.always)) return 'always';
  return p.default;
}

/** Whether a message with `target` is archived, given whether its bare JID is in the roster. */
export function shouldArchive(p: ArchivePrefs, target: string, inRoster: boolean): boolean {
  const policy = archivePolicy(p, target);
  return policy === 'always' || (policy === 'roster' && inRoster);
}
