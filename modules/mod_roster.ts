//% requires_core_features: sessions-v1, stanza-events-v1, events-async, module-capabilities
// Roster management (RFC 6121 §2) with roster versioning (XEP-0237, RFC 6121 §2.6).
// Roster get marks the resource interested; roster sets and removals are saved durably, then
// answered, then pushed to every interested resource. Subscription state itself is owned by
// mod_presence, which fires `roster-push` ({ host, username, jid }) after changing an item.
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { attrsOf, defineModule, iqPayload, iqResult, isBound, NS, prep, StanzaError, type BoundSession, type Roster, type RosterItem, type Stanza } from '../core/api.ts';

/** Longest accepted item name or group name, in characters (RFC 6121 §2.3.3 not-acceptable). */
const MAX_TEXT_LENGTH = 1024;

function itemElement(jid: string, item: RosterItem | undefined): Element {
  if (!item) return new Element('item', { jid, subscription: 'remove' });
  const attrs: Record<string, string> = { jid, subscription: item.subscription };
  if (item.name !== undefined) attrs.name = item.name;
  if (item.ask) attrs.ask = item.ask;
  if (item.approved) attrs.approved = 'true';
  const el = new Element('item', attrs);
  for (const g of item.groups) el.c('group').t(g);
  return el;
}

type SetError = { type: 'modify' | 'cancel'; condition: 'bad-request' | 'jid-malformed' | 'not-allowed' | 'not-acceptable'; text: string };

interface ParsedSet {
  jid: string;
  remove: boolean;
  name: string | undefined;
  groups: string[];
}

/** Validate a roster set (RFC 6121 §2.3.2, §2.3.3, §2.5). */
function parseSet(query: Element, ownBare: string): ParsedSet | SetError {
  const elements = query.children.filter((c): c is Element => typeof c !== 'string');
  const items = elements.filter((c) => c.name === 'item');
  if (items.length !== 1 || elements.length !== 1) {
    return { type: 'modify', condition: 'bad-request', text: 'A roster set must contain exactly one item' };
  }
  const item = items[0]!;
  const attrs = attrsOf(item);
  if (attrs.jid === undefined) return { type: 'modify', condition: 'bad-request', text: 'The item has no jid' };
  const jid = prep(attrs.jid);
  if (jid === null || jid.includes('/')) return { type: 'modify', condition: 'jid-malformed', text: 'The item jid is not a valid bare JID' };
  if (jid === ownBare) return { type: 'cancel', condition: 'not-allowed', text: 'Your own JID cannot be in your roster' };
  // RFC 6121 §2.1.2.5: in a roster set, any subscription value other than "remove" is ignored
  // (clients such as slixmpp echo the item's current state).
  const sub = attrs.subscription;
  const name = attrs.name === undefined || attrs.name === '' ? undefined : attrs.name;
  if (name !== undefined && name.length > MAX_TEXT_LENGTH) return { type: 'modify', condition: 'not-acceptable', text: 'The item name is too long' };
  const groups: string[] = [];
  for (const child of item.children) {
    if (typeof child === 'string' || child.name !== 'group') continue;
    const g = child.getText();
    if (g.trim() === '') return { type: 'modify', condition: 'bad-request', text: 'Empty group name' };
    if (g.length > MAX_TEXT_LENGTH) return { type: 'modify', condition: 'not-acceptable', text: 'A group name is too long' };
    if (groups.includes(g)) return { type: 'modify', condition: 'bad-request', text: `Duplicate group '${g}'` };
    groups.push(g);
  }
  return { jid, remove: sub === 'remove', name, groups };
}

export default defineModule({
  description: 'Roster management (RFC 6121 §2) and roster versioning (XEP-0237)',
  capabilities: ['rosters'],
  load(module) {
    const host = module.host;

    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type === 'c2s') features.c('ver', { xmlns: NS.rosterver });
    });

    /**
     * Push the current state of `jid` to every interested resource of the user (§2.1.6). `roster`
     * is the user's live one, or the one just changed for a user who is offline.
     */
    const push = (username: string, jid: string, roster: Roster | undefined = module.sessions.roster(host, username)) => {
      if (!roster) return;
      const item = roster.items.get(jid);
      for (const session of module.sessions.interestedSessions(host, username)) {
        const iq = new Element('iq', { type: 'set', id: `push-${randomBytes(6).toString('hex')}`, to: session.full_jid });
        iq.c('query', { xmlns: NS.roster, ver: String(roster.version) }).cnode(itemElement(jid, item));
        session.send(iq);
      }
      module.emit('roster-pushed', { host, username, item: itemElement(jid, item) }); // privileged components (mod_privilege)
    };

    module.hook('roster-push', ({ host: h, username, jid }) => {
      if (h !== host) return;
      if (module.sessions.roster(host, username)) push(username, jid);
      // An offline user's change still reaches privileged components (roster-pushed, XEP-0356 §4.4).
      else void module.rosters.load(host, username).then((r) => push(username, jid, r), (err: unknown) => module.log.error('roster of %s@%s: %s', username, host, err));
    });

    // -- roster get (§2.2, XEP-0237) ----------------------------------------------------------------

    module.hook(`iq-get/self/${NS.roster}:query`, ({ origin, stanza }) => {
      if (!isBound(origin)) throw new StanzaError('cancel', 'not-allowed', 'Bind a resource first');
      const roster = origin.roster;
      origin.interested = true;
      const ver = String(roster.version);
      const requested = attrsOf(iqPayload(stanza)).ver;
      if (requested !== undefined && requested === ver) {
        // Nothing changed since the client's copy: an empty result, pushes follow (XEP-0237 §2.3).
        origin.send(iqResult(stanza));
        return true;
      }
      const query = new Element('query', { xmlns: NS.roster, ver });
      for (const [jid, item] of roster.items) query.cnode(itemElement(jid, item));
      origin.send(iqResult(stanza, query));
      return true;
    });

    // -- roster set and remove (§2.3, §2.5) ---------------------------------------------------------

    const sendFrom = (from: string, to: string, type: string) => {
      module.send(new Element('presence', { from, to, type }));
    };

    const save = (username: string, roster: Roster, jid: string) => module.privileged.rosters.save(host, username, roster, [jid]);

    const handleSet = (origin: BoundSession, stanza: Stanza): Promise<true> =>
      applySet(origin.username, origin.roster, iqPayload(stanza)!, () => origin.send(iqResult(stanza)));

    /** A roster set of the user's (§2.3, §2.5): validated, saved durably, answered, then pushed. */
    const applySet = async (username: string, roster: Roster, query: Element, answer: () => void): Promise<true> => {
      const ownBare = `${username}@${host}`;
      const parsed = parseSet(query, ownBare);
      if ('condition' in parsed) throw new StanzaError(parsed.type, parsed.condition, parsed.text);
      const { jid } = parsed;

      if (parsed.remove) {
        const item = roster.items.get(jid);
        if (!item) throw new StanzaError('cancel', 'item-not-found', 'No such roster item');
        const pendingIn = roster.pending.has(jid);
        roster.items.delete(jid);
        roster.pending.delete(jid);
        await save(username, roster, jid);
        answer();
        push(username, jid, roster);
        // §2.5.2: cancel both directions of the subscription (and anything pending).
        const sub = item.subscription;
        if (sub === 'to' || sub === 'both' || item.ask) sendFrom(ownBare, jid, 'unsubscribe');
        if (sub === 'from' || sub === 'both') {
          // The contact stops receiving our presence: it gets unavailable from each resource first.
          for (const s of module.sessions.availableSessions(host, username)) sendFrom(s.full_jid, jid, 'unavailable');
        }
        if (sub === 'from' || sub === 'both' || pendingIn) sendFrom(ownBare, jid, 'unsubscribed');
        return true;
      }

      const existing = roster.items.get(jid);
      const item: RosterItem = existing ? { ...existing, groups: parsed.groups } : { subscription: 'none', groups: parsed.groups };
      if (parsed.name === undefined) delete item.name;
      else item.name = parsed.name;
      roster.items.set(jid, item);
      await save(username, roster, jid);
      answer();
      push(username, jid, roster);
      return true;
    };

    // Saved durably, then answered, then pushed; a failure to save is answered internal-server-error.
    module.hook(`iq-set/self/${NS.roster}:query`, ({ origin, stanza }) => {
      if (!isBound(origin)) throw new StanzaError('cancel', 'not-allowed', 'Bind a resource first');
      return handleSet(origin, stanza);
    });

    // A privileged component's roster set on behalf of the user (XEP-0356 §4.3, from mod_privilege):
    // the same rules as the user's own set; the live roster when the user is online.
    module.hook('roster-set-privileged', async ({ host: h, username, query, answer }) => {
      if (h !== host) return undefined;
      const roster = module.sessions.roster(host, username) ?? (await module.rosters.load(host, username));
      return applySet(username, roster, query, answer);
    });

    // §2.3.3 / §2.1.5: nobody but the user may see or change the user's roster.
    const forbidden = (): never => {
      throw new StanzaError('auth', 'forbidden', "You cannot access another entity's roster");
    };
    module.hook(`iq-get/bare/${NS.roster}:query`, forbidden);
    module.hook(`iq-set/bare/${NS.roster}:query`, forbidden);

    // -- account removal -----------------------------------------------------------------------------

    module.hook('user-deleted', async ({ host: h, username }) => {
      if (h !== host) return undefined;
      const roster = await module.rosters.load(host, username);
      const ownBare = `${username}@${host}`;
      const contacts = new Set<string>([...roster.items.keys(), ...roster.pending.keys()]);
      for (const jid of contacts) {
        const item = roster.items.get(jid);
        const sub = item?.subscription ?? 'none';
        if (sub === 'to' || sub === 'both' || item?.ask) sendFrom(ownBare, jid, 'unsubscribe');
        if (sub === 'from' || sub === 'both' || roster.pending.has(jid)) sendFrom(ownBare, jid, 'unsubscribed');
      }
      return undefined;
    });
  },
});
