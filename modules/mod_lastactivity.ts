//% requires_core_features: sessions-v1, stanza-events-v1, storage-keyval, user-deleted-event, module-session-state, events-async, module-serial
// Last Activity (XEP-0012).
//
//  - to the server's domain (§6): `seconds` is the server's uptime, no text;
//  - to an account's bare JID (§4), answered by the server on the user's behalf:
//      * only to entities allowed to see the user's presence — the user's roster holds the
//        requester with subscription 'from' or 'both' (the user themselves always may); anyone
//        else gets forbidden (§4, §9);
//      * no such account: service-unavailable (RFC 6121 §8.5.1);
//      * the user has an available resource: seconds='0', empty (§4);
//      * otherwise: the seconds since the user's last logout (or unavailable presence), with the
//        <status/> text of the last unavailable presence, if it had one; item-not-found when the
//        user has never logged out since this module was enabled.
//  - to a full JID the query goes to that client (§5), not to this module.
//
// Recorded in the 'lastactivity' keyval store as { when (ms), status }: on a broadcast unavailable
// presence from a client, and when a resource is unbound (the status of that session's last
// unavailable presence is kept).
import type { Element } from '@xmpp/xml';
import { bare as bareOf, defineModule, isBound, StanzaError, xml, type Json, type StanzaEvent } from '../core/api.ts';

export const NS_LAST = 'jabber:iq:last';

interface LastRecord {
  /** ms since the epoch */
  when: number;
  status?: string;
}

interface SessionLast {
  /** Status text of the session's last unavailable presence, if any. */
  status?: string;
}

/** The <status/> text of a presence: the one without xml:lang first, else the first. */
function statusOf(presence: Element): string | undefined {
  const all = presence.children.filter((c): c is Element => typeof c !== 'string' && c.name === 'status');
  const chosen = all.find((s) => s.attrs['xml:lang'] === undefined) ?? all[0];
  const text = chosen?.text();
  return text ? text : undefined;
}

function isRecord(v: unknown): v is LastRecord {
  return typeof v === 'object' && v !== null && typeof (v as LastRecord).when === 'number';
}

export default defineModule({
  description: 'Last Activity (XEP-0012)',
  load(module) {
    module.addFeature(NS_LAST);
    const host = module.host;
    const store = module.storage.keyval('lastactivity');

    const record = (username: string, rec: LastRecord) => {
      const value: Record<string, Json> = { when: rec.when };
      if (rec.status !== undefined) value.status = rec.status;
      // In the background (unload waits for it), one user's records in order. A session can
      // outlive its deleted account: nothing is written for a user that is gone.
      module.task(async () => {
        await module.serial(username, async () => {
          if (await module.users.exists(host, username)) await store.set(username, value);
        });
      });
    };

    const answer = (stanza: Element, seconds: number, text?: string) => {
      const q = xml('query', { xmlns: NS_LAST, seconds: String(Math.max(0, Math.floor(seconds))) });
      if (text) q.t(text);
      return module.iqResult(stanza, q);
    };

    // -- the server's uptime ----------------------------------------------------------------------

    module.hook(`iq-get/host/${NS_LAST}:query`, ({ origin, stanza }) => {
      origin.send(answer(stanza, (Date.now() - module.serverInfo.started) / 1000));
      return true;
    });

    // -- an account ---------------------------------------------------------------------------------

    /** Whether `requester` (a JID) may see the presence of `username` (subscription from/both). */
    const mayView = async (username: string, requester: string | undefined): Promise<boolean> => {
      const requesterBare = requester ? bareOf(requester) : undefined;
      if (!requesterBare) return false;
      if (requesterBare === `${username}@${host}`) return true;
      const roster = await module.rosters.load(host, username);
      const sub = roster.items.get(requesterBare)?.subscription;
      return sub === 'from' || sub === 'both';
    };

    const query = async ({ origin, stanza, toNode }: StanzaEvent): Promise<true> => {
      const username = toNode ?? '';
      if (!(await module.users.exists(host, username))) throw new StanzaError('cancel', 'service-unavailable');
      if (!(await mayView(username, stanza.attrs.from))) throw new StanzaError('auth', 'forbidden', "You are not subscribed to this user's presence");
      if (module.sessions.availableSessions(host, username).length > 0) {
        origin.send(answer(stanza, 0));
        return true;
      }
      const rec = await store.get<Json>(username);
      if (!isRecord(rec)) throw new StanzaError('cancel', 'item-not-found', 'No last activity is known');
      origin.send(answer(stanza, (Date.now() - rec.when) / 1000, rec.status));
      return true;
    };
    module.hook(`iq-get/bare/${NS_LAST}:query`, query);
    module.hook(`iq-get/self/${NS_LAST}:query`, query);

    // -- recording ------------------------------------------------------------------------------------

    // A client's broadcast presence has no 'to'; mod_presence handles it at priority 0.
    module.hook('pre-presence/bare', ({ origin, stanza }) => {
      if (stanza.attrs.to !== undefined || !isBound(origin)) return undefined;
      const type = stanza.attrs.type;
      if (type === undefined) {
        // Available again: a later logout has no unavailable status (unless it sends one).
        const s = module.peekState<SessionLast>(origin);
        if (s) s.status = undefined;
        return undefined;
      }
      if (type !== 'unavailable') return undefined;
      const status = statusOf(stanza);
      module.state<SessionLast>(origin, () => ({})).status = status;
      record(origin.username, { when: Date.now(), status });
      return undefined;
    }, 10);

    module.hook('resource-unbind', ({ session }) => {
      if (!isBound(session)) return;
      const status = module.peekState<SessionLast>(session)?.status;
      module.dropState(session);
      record(session.username, { when: Date.now(), status });
    });

    module.hook('user-deleted', async ({ host: h, username }) => {
      if (h === host) await store.set(username, undefined);
      return undefined;
    });
  },
});
