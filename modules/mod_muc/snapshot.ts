// The durable state of a room as one JSON-serialisable value: configuration, affiliations with
// reserved nicks and ban reasons, the subject, persisted voice (XEP-0045 §5.1: roles SHOULD persist
// in moderated rooms) and the occupant-id secret. The glue stores it whenever the engine reports a
// durable change, and a restart rebuilds the room from it (`parseSnapshot` checks what it reads).
import { checkStoredConfig, type RoomConfig } from './config.ts';
import { isAffiliation, type Affiliation } from './roles.ts';

export const SNAPSHOT_VERSION = 1;

export interface AffiliationEntry {
  affiliation: Exclude<Affiliation, 'none'>;
  /** Reserved roomnick (members, admins, owners; §7.10, §9.3). */
  nick?: string;
  /** Reason given with the change (shown in the ban list, §9.2). */
  reason?: string;
}

export interface SubjectState {
  text: string;
  /** Roomnick of who set it (the subject is then sent from that occupant JID), if any. */
  nick?: string;
  /** XEP-0421 occupant id of who set it. */
  occupantId?: string;
  /** When it was set or cleared (ms since the epoch). */
  time: number;
}

export interface RoomSnapshot {
  version: typeof SNAPSHOT_VERSION;
  /** The room's bare JID. */
  jid: string;
  /** When the room was created (ms since the epoch). */
  created: number;
  config: RoomConfig;
  /** Bare JID (or domain) → affiliation; users without an entry have 'none'. */
  affiliations: Record<string, AffiliationEntry>;
  /** Absent when no subject was ever set. */
  subject?: SubjectState;
  /** Bare JID → role given by a moderator in a moderated room, applied when the user enters again. */
  voice: Record<string, 'participant' | 'visitor'>;
  /** Key of the XEP-0421 occupant ids (base64). */
  secret: string;
}

export type SnapshotResult = { ok: true; snapshot: RoomSnapshot } | { ok: false; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Check a stored value (already JSON-parsed) before rebuilding a room from it. */
export function parseSnapshot(value: unknown): SnapshotResult {
  const fail = (error: string): SnapshotResult => ({ ok: false, error });
  if (!isObject(value)) return fail('not an object');
  if (value.version !== SNAPSHOT_VERSION) return fail(`unknown version ${String(value.version)}`);
  if (typeof value.jid !== 'string' || !value.jid.includes('@') || value.jid.includes('/')) return fail('jid is not a room JID');
  if (typeof value.created !== 'number' || !Number.isFinite(value.created)) return fail('created is not a time');
  const configError = checkStoredConfig(value.config);
  if (configError) return fail(configError);
  if (!isObject(value.affiliations)) return fail('affiliations is not an object');
  for (const [jid, e] of Object.entries(value.affiliations)) {
    if (!isObject(e) || !isAffiliation(e.affiliation as string) || e.affiliation === 'none') return fail(`affiliation of ${jid} is invalid`);
    if (e.nick !== undefined && typeof e.nick !== 'string') return fail(`nick of ${jid} is invalid`);
    if (e.reason !== undefined && typeof e.reason !== 'string') return fail(`reason of ${jid} is invalid`);
  }
  if (!Object.values(value.affiliations).some((e) => (e as AffiliationEntry).affiliation === 'owner')) return fail('the room has no owner');
  if (value.subject !== undefined) {
    const s = value.subject;
    if (!isObject(s) || typeof s.text !== 'string' || typeof s.time !== 'number' || (s.nick !== undefined && typeof s.nick !== 'string')
      || (s.occupantId !== undefined && typeof s.occupantId !== 'string')) {
      return fail('subject is invalid');
    }
  }
  if (!isObject(value.voice) || !Object.values(value.voice).every((r) => r === 'participant' || r === 'visitor')) return fail('voice is invalid');
  if (typeof value.secret !== 'string' || value.secret.length < 16) return fail('secret is invalid');
  return { ok: true, snapshot: value as unknown as RoomSnapshot };
}
