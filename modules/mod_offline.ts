//% requires_core_features: storage-archive, stanza-events-v1, sessions-v1, user-deleted-event, events-async, module-serial
// Offline messages (XEP-0160, RFC 6121 §8.5.2.2.1): chat and normal messages for an existing
// account with no available resource of non-negative priority are stored — durably, before the
// `message/offline/handle` handler resolves — stamped with a Delayed Delivery element (XEP-0203,
// XEP-0082 time with milliseconds, UTC). When one of the user's resources next becomes available
// with a non-negative priority, the stored messages are sent to it in order and only then deleted.
//
// What is stored: mod_message only offers chat/normal messages (never error, groupchat or
// headline). Of those, a message carrying `<no-store xmlns='urn:xmpp:hints'/>` (XEP-0334) is
// refused, so mod_message answers service-unavailable: it was neither delivered nor stored, and
// the sender must not believe otherwise. A message without content worth keeping — only chat
// state notifications (XEP-0085; XEP-0160 §3 says they SHOULD NOT be stored), thread, ids or
// hints — is dropped silently, as a typing notification must not come back as an error.
// `<store xmlns='urn:xmpp:hints'/>` forces storage of such a message.
//
// Full storage: when the user already has `limit` messages stored, the message is bounced with
// <service-unavailable/> (type cancel) and a text saying the offline storage is full. That is the
// condition XEP-0160 §2 (step 3: "if not (e.g., because the recipient's offline message queue is
// full), the server returns a <service-unavailable/> error to the sender") and RFC 6121
// §8.5.2.2.1 (chat/normal that are not stored offline get service-unavailable) name;
// <resource-constraint/> would describe the server, not the recipient, and invite a retry.
//
// Delivery follows mod_presence's `resource-available` (a resource became available with a
// non-negative priority: XEP-0160 §2 step 5, which includes the initial presence). Storing and
// delivering for one user run in one serial queue, and a message that finds a suitable resource
// by the time its turn comes is delivered to it instead of being stored, so nothing is left
// behind in the store while the user is online.
import { Element } from '@xmpp/xml';
import { clone } from 'ltx';
import { attrsOf, defineModule, parseXml, StanzaError, type OfflineDeliverEvent, type OfflineEvent, type Session } from '../core/api.ts';

const NS_DELAY = 'urn:xmpp:delay';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_SID = 'urn:xmpp:sid:0';
const STORE = 'offline';

const options = {
  limit: { type: 'integer', description: 'Most messages stored per user; more are bounced with service-unavailable', default: 100, min: 0 },
} as const;

function hasHint(stanza: Element, hint: string): boolean {
  return stanza.getChild(hint, NS_HINTS) !== undefined;
}

/** Whether the message carries something a user wants later (not only chat states, ids, hints). */
function worthStoring(stanza: Element): boolean {
  if (hasHint(stanza, 'store')) return true;
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    const ns = attrsOf(child).xmlns;
    if (ns === NS_CHATSTATES || ns === NS_HINTS || ns === NS_SID) continue;
    if (child.name === 'thread' && (ns === undefined || ns === 'jabber:client')) continue;
    return true;
  }
  return false;
}

export default defineModule({
  description: 'Offline message storage (XEP-0160) with delayed delivery stamps (XEP-0203)',
  options,
  load(module) {
    const host = module.host;
    const archive = module.storage.archive(STORE);

    module.addFeature('msgoffline');

    // -- storing ----------------------------------------------------------------------------------

    const store = (event: OfflineEvent): Promise<true | undefined> | true | undefined => {
      const { username, stanza } = event;
      return module.serial(username, async () => {
        // A resource may have become available since mod_message looked: deliver, do not store.
        const targets = module.sessions.mostAvailableSessions(host, username);
        if (targets.length) {
          for (const s of targets) s.send(stanza);
          return true;
        }
        if (!(await module.users.exists(host, username))) return undefined;
        if (hasHint(stanza, 'no-store')) return undefined; // not stored: mod_message bounces it
        if (!worthStoring(stanza)) return true; // chat states and the like: dropped silently
        const limit = module.option('limit');
        if ((await archive.count(username)) >= limit) {
          throw new StanzaError('cancel', 'service-unavailable', 'The recipient\'s offline message storage is full');
        }
        const copy = clone(stanza) as Element;
        attrsOf(copy).to ??= `${username}@${host}`;
        const now = Date.now();
        // One stamp per delaying entity (XEP-0203 §4): a message this server already held (stream
        // management re-routing what a dropped session never acknowledged) keeps its first stamp.
        if (!copy.getChildren('delay', NS_DELAY).some((d) => d.attrs.from === host)) {
          copy.cnode(new Element('delay', { xmlns: NS_DELAY, from: host, stamp: new Date(now).toISOString() }));
        }
        const from = attrsOf(copy).from;
        await archive.append(username, { when: now, ...(from ? { with: from } : {}), payload: copy.toString() });
        module.log('stored a message for %s@%s', username, host);
        return true;
      });
    };

    module.hook('message/offline/handle', (event) => {
      if (event.host !== host) return undefined;
      return store(event);
    });

    // -- delivering -------------------------------------------------------------------------------

    const deliver = (session: Session, username: string) =>
      module.serial(username, async () => {
        const items = await archive.find(username);
        if (!items.length) return;
        const done: string[] = [];
        for (const item of items) {
          if (session.destroyed) break;
          let message: Element;
          try {
            message = parseXml(item.payload) as Element;
          } catch (err) {
            module.log.error('dropping an unreadable offline message %s of %s@%s: %s', item.id, username, host, err);
            done.push(item.id);
            continue;
          }
          // Modules may withhold a stored message (mod_blocking: the sender is now blocked).
          const withheld = await module.fireAsync('offline-message/deliver', { session, username, stanza: message } satisfies OfflineDeliverEvent);
          if (withheld === undefined) session.send(message);
          done.push(item.id);
        }
        // Deleted only once handed to the resource's stream.
        if (done.length) await archive.delete(username, { ids: done });
        module.log('delivered %d offline message(s) to %s', done.length, session.full_jid);
      });

    // XEP-0160 §2 step 5: delivered when the resource becomes available with a non-negative
    // priority (its initial presence, or a negative priority raised).
    module.hook('resource-available', ({ session, initial, previousPriority }) => {
      if (session.host !== host || !session.username || session.priority < 0) return;
      if (!initial && previousPriority >= 0) return;
      // A failure is logged by the event bus; the messages stay stored for the next time.
      return deliver(session, session.username);
    });

    // -- account removal --------------------------------------------------------------------------

    module.hook('user-deleted', async ({ host: h, username }) => {
      if (h !== host) return undefined;
      await module.serial(username, () => archive.delete(username));
      return undefined; // let every other module clean up too
    });
  },
});
