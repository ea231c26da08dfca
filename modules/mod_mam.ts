//% requires_core_features: storage-archive, storage-keyval, stanza-events-v1, sessions-v1, user-deleted-event, events-async, module-serial
// Message Archive Management for accounts (XEP-0313 1.1.3, urn:xmpp:mam:2 and #extended) with
// Unique and Stable Stanza IDs (XEP-0359) and archiving preferences (XEP-0441). The engine is
// core/util/mam (doc/mam.md); this module wires it, as that document's "Glue: mod_mam" says:
//
//  - outgoing (a local client's message, before routing): <stanza-id/>s claiming the sender's
//    bare JID are removed; an archivable message (userArchiveDecision, the sender's preferences
//    for 'to') is appended to the sender's archive — awaited, so it is durable before anything
//    is delivered; the recipient does not see the sender's id, the sent carbons do.
//  - incoming (a message for a local account, after mod_blocking): forged <stanza-id/>s claiming
//    the recipient are removed (always); an archivable message (preferences for 'from') is
//    appended to the recipient's archive, and from then on the delivered message — to the
//    resources, in received carbons, to offline storage — carries <stanza-id by=bare id/>.
//    A message to oneself is archived once (outgoing) and delivered with that id. A message the
//    server routes again (mod_smacks after a restart) with the id it was archived under is not
//    archived a second time.
//  - iqs in urn:xmpp:mam:2 to one's own account: query, form, metadata, prefs (others: forbidden).
//  - retention: with `archiveExpiresAfter`, every `cleanupInterval` seconds the items older than
//    that are removed, account by account. Account deletion removes the archive and the
//    preferences with the rest of the account's data (the storage's purgeUser).
import {
  NS_MAM, NS_SID, StanzaError, addStanzaId, answerMamIq, archivePolicy, archivedPayload, bare, defineModule, expireArchive,
  mamFeatures, parseExpiry, shouldArchive, storedPrefs, stripStanzaIds, userArchiveDecision,
  type ArchivePrefs, type Json, type MamOptions, type Stanza, type StanzaEvent,
} from '../core/api.ts';

const options = {
  defaultPolicy: { type: 'string', description: 'What is archived for accounts that set no preferences: always, roster (contacts in the roster) or never', default: 'always', allowed: ['always', 'roster', 'never'] },
  archiveExpiresAfter: { type: 'string', description: 'Remove archived messages older than this: seconds, or 30m, 12h, 7d, 4w, 1y; never keeps them', default: 'never' },
  cleanupInterval: { type: 'integer', description: 'Seconds between two removals of expired messages (with archiveExpiresAfter)', default: 3600, min: 1 },
  defaultPage: { type: 'integer', description: 'Results per page when a query does not say (RSM <max/>)', default: 50, min: 1 },
  maxPage: { type: 'integer', description: 'Most results per page; a larger <max/> is cut to this', default: 250, min: 1 },
  count: { type: 'boolean', description: 'Include the RSM <count/> and index in query results', default: true },
  rsmIndex: { type: 'string', description: 'Which pages carry <first index/>: all, or ends (no counting in the middle of large archives)', default: 'all', allowed: ['all', 'ends'] },
} as const;

// Below mod_blocking (100): blocked messages are neither archived nor delivered; above
// mod_carbons (-5), mod_push and mod_message (-10): they see the message with its id.
const PRIORITY = 50;

export default defineModule({
  description: 'Message Archive Management (XEP-0313) with stanza ids (XEP-0359) and preferences (XEP-0441)',
  options,
  load(module) {
    const host = module.host;
    const store = module.storage.archive('archive');
    const prefsStore = module.storage.keyval('archive_prefs');
    const defaultPolicy = module.option('defaultPolicy') as ArchivePrefs['default'];
    const expiresAfter = module.option('archiveExpiresAfter');
    // Milliseconds, or undefined for never; a bad value refuses loading (RangeError).
    const expiry = parseExpiry(/^\d+$/.test(expiresAfter) ? Number(expiresAfter) : expiresAfter);
    const opts: MamOptions = {
      defaultMax: module.option('defaultPage'),
      maxMax: module.option('maxPage'),
      count: module.option('count'),
      index: module.option('rsmIndex') as 'all' | 'ends',
    };

    for (const f of [...mamFeatures(opts), NS_SID]) module.addItem('account-feature', f);

    // -- preferences (XEP-0441), cached per account --------------------------------------------------

    const prefsCache = new Map<string, ArchivePrefs>();
    const getPrefs = async (user: string): Promise<ArchivePrefs> => {
      const cached = prefsCache.get(user);
      if (cached) return cached;
      const p = storedPrefs(await prefsStore.get(user), defaultPolicy);
      prefsCache.set(user, p);
      return p;
    };
    const setPrefs = async (user: string, p: ArchivePrefs): Promise<ArchivePrefs> => module.serial(user, async () => {
      await prefsStore.set(user, p as unknown as Json);
      prefsCache.set(user, p);
      return p;
    });

    // -- archiving --------------------------------------------------------------------------------

    /** The archive id of a message this module archived on its way out (for the self copy and sent carbons). */
    const sentIds = new WeakMap<Stanza, string>();

    /** Append `message` to `user`'s archive if the preferences allow it for `peer`; the id, or undefined. */
    const archive = async (user: string, peer: string, message: Stanza): Promise<string | undefined> => {
      const prefs = await getPrefs(user);
      let inRoster = false;
      if (archivePolicy(prefs, peer) === 'roster') {
        const roster = await module.rosters.load(host, user);
        inRoster = roster.items.has(bare(peer) ?? peer);
      }
      if (!shouldArchive(prefs, peer, inRoster)) return undefined;
      const ownBare = `${user}@${host}`;
      const id = await store.append(user, { with: peer, payload: archivedPayload(message, ownBare) });
      module.log('archived a message for %s (%s)', ownBare, id);
      return id;
    };

    /**
     * The server routes a message again that it delivered before (mod_smacks, after a restart:
     * what an unresumed session of the previous run never acknowledged): it carries the
     * <stanza-id/> it was archived with. That id, if the item is in `user`'s archive from the same
     * sender (so a relayed stanza-id cannot suppress archiving); else undefined. Only for
     * server-generated stanzas: a client's are stripped as forged.
     */
    const archivedBefore = async (user: string, message: Stanza, from: string): Promise<string | undefined> => {
      const ownBare = `${user}@${host}`;
      const sid = message.getChildren('stanza-id', NS_SID).find((el) => el.attrs.by === ownBare);
      const id = sid?.attrs.id as string | undefined;
      if (!id) return undefined;
      const [item] = await store.find(user, { ids: [id] });
      return item !== undefined && item.with === from ? id : undefined;
    };

    const outgoing = (event: StanzaEvent): Promise<undefined> | undefined => {
      const { origin } = event;
      const user = origin.username;
      if (origin.type !== 'c2s' || user === undefined || origin.host !== host) return undefined;
      const ownBare = `${user}@${host}`;
      const stanza = stripStanzaIds(event.stanza, ownBare);
      event.stanza = stanza;
      if (!userArchiveDecision(stanza).archive) return undefined;
      const peer = stanza.attrs.to ?? ownBare;
      return archive(user, peer, stanza).then((id) => {
        if (id !== undefined) sentIds.set(stanza, id);
        return undefined;
      });
    };

    const incoming = (event: StanzaEvent): Promise<undefined> | undefined => {
      const { toNode, toHost } = event;
      if (!toNode || toHost !== host) return undefined;
      const ownBare = `${toNode}@${host}`;
      const original = event.stanza;
      // XEP-0359 §3: a stanza id claiming the recipient's archive can only be forged.
      const stanza = stripStanzaIds(original, ownBare);
      event.stanza = stanza;
      const from = stanza.attrs.from;
      if (from !== undefined && bare(from) === ownBare) {
        // To oneself: archived once on the way out; delivered with that id.
        const id = sentIds.get(original);
        if (id !== undefined) event.stanza = addStanzaId(stanza, ownBare, id);
        return undefined;
      }
      if (from === undefined || !userArchiveDecision(stanza).archive) return undefined;
      return (async () => {
        // Only for accounts that exist (a message for another is bounced by mod_message).
        if (!module.sessions.sessionsOf(host, toNode).length && !(await module.users.exists(host, toNode))) return undefined;
        if (event.origin.type === 'local') {
          const again = await archivedBefore(toNode, original, from);
          if (again !== undefined) {
            event.stanza = addStanzaId(stanza, ownBare, again);
            return undefined;
          }
        }
        const id = await archive(toNode, from, stanza);
        if (id !== undefined) event.stanza = addStanzaId(stanza, ownBare, id);
        return undefined;
      })();
    };

    for (const dest of ['bare', 'full'] as const) {
      module.hook(`pre-message/${dest}`, outgoing, PRIORITY);
      module.hook(`message/${dest}`, incoming, PRIORITY);
    }

    // Sent carbons carry the sender's archive id inside the forwarded message (XEP-0313 §3.5).
    module.hook('carbons/forward', (event) => {
      if (event.direction !== 'sent' || event.host !== host) return;
      const id = sentIds.get(event.stanza);
      if (id !== undefined) event.message = addStanzaId(event.message, `${event.username}@${host}`, id);
    });

    // -- queries, metadata, preferences -----------------------------------------------------------

    const answer = async ({ origin, stanza }: StanzaEvent) => {
      const user = origin.username;
      if (origin.type !== 'c2s' || user === undefined || origin.host !== host) {
        throw new StanzaError('cancel', 'forbidden', 'Only the account may read its archive');
      }
      const payload = await answerMamIq(stanza, {
        store,
        user,
        archiveJid: `${user}@${host}`,
        send: (m) => void origin.send(m),
        prefs: { get: () => getPrefs(user), set: (p) => setPrefs(user, p) },
      }, opts);
      origin.send(module.iqResult(stanza, payload));
      return true;
    };
    const refuse = () => {
      // §8.1: another account's archive is not for the asking.
      throw new StanzaError('cancel', 'forbidden', 'Only the account may read its archive');
    };
    for (const type of ['get', 'set'] as const) {
      for (const name of ['query', 'metadata', 'prefs']) {
        module.hook(`iq-${type}/self/${NS_MAM}:${name}`, answer);
        module.hook(`iq-${type}/bare/${NS_MAM}:${name}`, refuse);
      }
    }

    // -- retention and account removal ------------------------------------------------------------

    if (expiry !== undefined) {
      const accounts = module.storage.keyval('accounts');
      const cleanup = async () => {
        const cutoff = Date.now() - expiry;
        let removed = 0;
        for (const user of await accounts.users()) {
          if (module.signal.aborted) return;
          removed += await module.serial(user, () => expireArchive(store, user, cutoff));
        }
        if (removed) module.log.info('archive cleanup on %s removed %d expired message(s)', host, removed);
        else module.log('archive cleanup on %s: nothing expired', host);
      };
      const run = () => module.task(cleanup); // a failure is logged; the next run tries again
      run();
      module.setInterval(run, module.option('cleanupInterval') * 1000);
    }

    module.hook('user-deleted', ({ host: h, username }) => {
      if (h === host) prefsCache.delete(username); // the storage purges the archive and the prefs
      return undefined;
    });
  },
});
