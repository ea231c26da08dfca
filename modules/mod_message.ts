//% requires_core_features: sessions-v1, stanza-events-v1, events-async
// Message delivery to local users (RFC 6121 §8.5.2–8.5.3):
//  - to a full JID: that resource; if it is not connected, chat/normal fall back to the bare JID,
//    groupchat gets service-unavailable, headline/error are dropped;
//  - to a bare JID: chat and normal go to the highest-priority non-negative available
//    resource(s), headline to all non-negative ones, groupchat is refused, error is ignored; with
//    no such resource, chat/normal are offered to offline storage (`message/offline/handle`,
//    e.g. mod_offline) or bounced with service-unavailable.
//  - to an account that does not exist: service-unavailable (never silence, never a leak).
import { defineModule, StanzaError, type ModuleApi, type StanzaEvent } from '../core/api.ts';

export default defineModule({
  description: 'Message delivery (RFC 6121 §8.5)',
  load(module) {
    module.hook('message/full', (event) => {
      const { stanza, toNode, toHost, toResource } = event;
      const target = toNode && toResource ? module.sessions.getByFullJid(toHost, toNode, toResource) : undefined;
      if (target) {
        target.send(stanza);
        return true;
      }
      const type = stanza.attrs.type ?? 'normal';
      if (type === 'chat' || type === 'normal') return deliverToBare(module, event);
      if (type === 'groupchat') throw new StanzaError('cancel', 'service-unavailable');
      return true;
    }, -10);

    module.hook('message/bare', (event) => deliverToBare(module, event), -10);
  },
});

/** Deliver to the account: synchronously to its resources, else (a Promise) to offline storage. */
function deliverToBare(module: ModuleApi, event: StanzaEvent): true | Promise<true> {
  const { stanza, toNode, toHost } = event;
  const type = stanza.attrs.type ?? 'normal';
  if (!toNode) return true;
  // RFC 6121 §8.5.2.1.1 and §8.5.2.2.1: an error to a bare JID is silently ignored.
  if (type === 'error') return true;
  if (type === 'groupchat') throw new StanzaError('cancel', 'service-unavailable');
  const targets = type === 'headline'
    ? module.sessions.availableSessions(toHost, toNode).filter((s) => s.priority >= 0)
    : module.sessions.mostAvailableSessions(toHost, toNode);
  if (targets.length) {
    for (const s of targets) s.send(stanza);
    return true;
  }
  if (type === 'headline') return true;
  return offline(module, event, toNode);
}

/** No suitable resource: offline storage takes it, or the sender learns it was not delivered. */
async function offline(module: ModuleApi, event: StanzaEvent, username: string): Promise<true> {
  const { stanza, toHost, origin } = event;
  if (!(await module.users.exists(toHost, username))) throw new StanzaError('cancel', 'service-unavailable');
  // A StanzaError of the offline store (it is full) reaches the sender as it is.
  const stored = await module.fire('message/offline/handle', { username, host: toHost, stanza, origin });
  if (stored === undefined) throw new StanzaError('cancel', 'service-unavailable');
  return true;
}
