//% requires_core_features: stanza-events-v1, events-async, storage-keyval, module-lifecycle-v1
// Multi-User Chat (XEP-0045) on an internal component: `components: { 'conference.example.org':
// { module: 'muc' } }`. The engine (service.ts, room.ts, …) decides everything; this file routes
// every stanza addressed to the component domain, a room or an occupant JID into it, sends what it
// answers, stores room snapshots in the keyval store `muc_rooms` (user = the room's localpart)
// and runs the lock-timeout sweep. See doc/muc.md (Glue).
import type { Element } from '@xmpp/xml';
import { bare, defineModule, iqPayload, iqResult, mamFeatures, NS_MAM, split, StanzaError, type StanzaEvent } from '../../core/api.ts';
import { RoomArchive } from './archive.ts';
import { checkStoredConfig, DEFAULT_CONFIG, type RoomConfig } from './config.ts';
import { FEATURE_RETRACT_TOMBSTONE, NS_RETRACT } from './ns.ts';
import { MucService, type MucLog } from './service.ts';

const STORE = 'muc_rooms';
const ARCHIVE = 'muc_log';
/** Rooms that may have an archive in ARCHIVE (see archive.ts). */
const ARCHIVED_ROOMS = 'muc_log_rooms';
const SWEEP_INTERVAL_MS = 60_000;

const options = {
  name: { type: 'string', description: 'Name of the service in its disco identity', default: 'Chatrooms' },
  lockRooms: { type: 'boolean', description: 'New rooms stay locked until their owner configures them (XEP-0045 §10.1.1)', default: true },
  lockTimeout: { type: 'integer', description: 'Seconds a new room may stay locked before it is destroyed', default: 300, min: 1 },
  maxHistory: { type: 'integer', description: 'Messages of history kept per room (upper bound of muc#maxhistoryfetch)', default: 100, min: 0 },
  maxUsers: { type: 'integer', description: 'Upper bound of muc#roomconfig_maxusers; 0 for none', default: 0, min: 0 },
  defaultConfig: { type: 'object', description: 'Settings of new rooms, e.g. { persistent: true, public: false } (doc/muc.md)', default: {} },
  allowRegistration: { type: 'boolean', description: 'Users may register with open rooms (§7.10)', default: true },
  archive: { type: 'boolean', description: 'Archive room messages and answer XEP-0313 queries on rooms', default: true },
  restrictRoomCreation: {
    type: 'string',
    description: "Who may create rooms: 'everyone', 'local' (accounts of this server's hosts) or 'admins'",
    default: 'everyone',
    allowed: ['everyone', 'local', 'admins'],
  },
} as const;

/** The module option `defaultConfig` over the engine's defaults, checked like a stored one. */
function defaultRoomConfig(raw: Record<string, unknown>): Partial<RoomConfig> {
  const merged = { ...DEFAULT_CONFIG, ...raw };
  const unknown = Object.keys(raw).filter((k) => !(k in DEFAULT_CONFIG));
  if (unknown.length) throw new Error(`muc.defaultConfig: unknown field(s) ${unknown.join(', ')} (expected ${Object.keys(DEFAULT_CONFIG).join(', ')})`);
  const error = checkStoredConfig(merged);
  if (error) throw new Error(`muc.defaultConfig: ${error.replace(/^config\./, '')}`);
  return raw as Partial<RoomConfig>;
}

export default defineModule({
  description: 'Multi-User Chat (XEP-0045) on a component domain',
  options,
  async load(module) {
    const host = module.host;
    const store = module.storage.keyval(STORE);
    const archive = module.option('archive') ? new RoomArchive(module.storage.archive(ARCHIVE), module.storage.keyval(ARCHIVED_ROOMS)) : undefined;
    const admins = new Set((module.config('admins') ?? []).map((a) => bare(a) ?? a));
    const isServiceAdmin = (jid: string) => admins.has(jid);
    const restrict = module.option('restrictRoomCreation');
    const canCreateRoom = (jid: string): boolean => {
      if (restrict === 'everyone') return true;
      if (restrict === 'admins') return false; // admins pass before this is asked
      const h = split(jid).host;
      return h !== undefined && module.hosts.kind(h) === 'virtualhost';
    };
    const log: MucLog = Object.assign((fmt: string, ...args: unknown[]) => module.log(fmt, ...args), {
      warn: (fmt: string, ...args: unknown[]) => module.log.warn(fmt, ...args),
      error: (fmt: string, ...args: unknown[]) => module.log.error(fmt, ...args),
    });

    const muc = new MucService({
      host,
      name: module.option('name'),
      lockRooms: module.option('lockRooms'),
      lockTimeoutMs: module.option('lockTimeout') * 1000,
      maxHistory: module.option('maxHistory'),
      maxUsers: module.option('maxUsers') || null,
      defaultConfig: defaultRoomConfig(module.option('defaultConfig') as Record<string, unknown>),
      allowRegistration: module.option('allowRegistration'),
      canCreateRoom,
      isServiceAdmin,
      // XEP-0424 §2: a service that archives retractions advertises them, and its tombstones.
      roomFeatures: archive ? [...mamFeatures(), NS_RETRACT, FEATURE_RETRACT_TOMBSTONE] : [],
    }, {
      persist: (roomJid, snapshot) => store.set(split(roomJid).node ?? roomJid, snapshot === null ? undefined : JSON.parse(JSON.stringify(snapshot))),
      log,
      ...(archive ? { archive } : {}),
    });

    // Persistent rooms come back as they were stored.
    const names = await store.users();
    const values = await Promise.all(names.map((n) => store.get(n)));
    const { restored, skipped } = muc.restore(values);
    if (restored.length || skipped.length) module.log.info('restored %d room(s) on %s, skipped %d', restored.length, host, skipped.length);
    // Archives of temporary rooms the last run did not see through (a crash) are deleted.
    if (archive) {
      const dropped = await archive.dropOrphans(new Set(names));
      if (dropped.length) module.log.info('deleted the archives of %d temporary room(s) of the last run on %s', dropped.length, host);
    }
    // Persistent rooms' history comes back from their archives.
    if (archive) for (const jid of restored) muc.seedHistory(jid, await archive.history(jid, module.option('maxHistory')));

    const send = (stanzas: readonly Element[]) => {
      for (const s of stanzas) module.send(s);
    };

    /** XEP-0313 on a room (reads only, so not queued behind the room's other stanzas). */
    const archiveQuery = async (event: StanzaEvent): Promise<true | undefined> => {
      const { stanza, toNode, toResource } = event;
      if (!archive || stanza.name !== 'iq' || !toNode || toResource !== undefined) return undefined;
      const type = stanza.attrs.type;
      if ((type !== 'get' && type !== 'set') || iqPayload(stanza)?.attrs.xmlns !== NS_MAM) return undefined;
      const room = muc.room(`${toNode}@${host}`);
      if (!room || room.locked) throw new StanzaError('cancel', 'item-not-found', 'No such room');
      const payload = await archive.answer(stanza, room, (m) => module.send(m));
      module.send(iqResult(stanza, payload));
      return true;
    };

    const handle = async (event: StanzaEvent): Promise<true> => {
      const { stanza } = event;
      if (await archiveQuery(event)) return true;
      const roomJid = event.toNode ? `${event.toNode}@${host}` : undefined;
      const existed = roomJid !== undefined && muc.room(roomJid) !== undefined;
      let out: Element[];
      try {
        // A presence to an occupant JID of no room may create one: whatever archive its name still
        // has (data from before the marks of archive.ts) must not become the new room's.
        if (archive && roomJid && !existed && stanza.name === 'presence' && event.toResource !== undefined && stanza.attrs.type === undefined) {
          await archive.drop(roomJid);
        }
        out = await muc.handle(stanza);
        // A room that is gone (destroyed, or temporary and empty) takes its archive with it.
        if (archive && existed && !muc.room(roomJid)) await archive.drop(roomJid).catch((err: unknown) => module.log.error('deleting the archive of %s failed: %s', roomJid, err));
      } catch (err) {
        module.log.error('handling %s to %s failed: %s', stanza.name, stanza.attrs.to, (err as Error).stack ?? err);
        throw new StanzaError('wait', 'internal-server-error');
      }
      send(out);
      return true;
    };
    for (const kind of ['message', 'presence', 'iq'] as const) {
      for (const dest of ['host', 'bare', 'full'] as const) module.hook(`${kind}/${dest}`, handle);
    }

    module.setInterval(() => {
      void muc.sweep().then(send, (err: unknown) => module.log.error('sweeping locked rooms failed: %s', err));
    }, SWEEP_INTERVAL_MS);

    // §11.2: occupants learn of the shutdown (332) while their streams are still open.
    let shutDown = false;
    const shutdown = () => {
      if (shutDown) return;
      shutDown = true;
      send(muc.shutdown());
    };
    module.hookGlobal('server-stopping', shutdown);
    module.signal.addEventListener('abort', shutdown);
    module.export('rooms', () => muc.allRooms().map((r) => ({ jid: r.jid, occupants: r.occupantCount, persistent: r.config.persistent, locked: r.locked })), 'The rooms of this service');
  },
});
