//% requires_core_features: stanza-events-v1, sessions-v1, events-async, module-session-state
// Message Carbons (XEP-0280 1.0.1, urn:xmpp:carbons:2) with the hints of XEP-0334.
//
// A session enables carbons with an iq set <enable/> (or inline in Bind2, XEP-0386) and disables
// them with <disable/>; repeating either is answered with a result (§7.1). Then:
//  - received (§6, "Receiving Messages"): a message for the account, delivered by mod_message to
//    the resources RFC 6121 chooses, is copied — wrapped in <received><forwarded/> — to every
//    carbons-enabled resource that did not get it. When no resource gets it (it goes to offline
//    storage, and the archive), every enabled resource gets the copy.
//  - sent (§6, "Sending Messages"): a message a client sends is copied — wrapped in
//    <sent><forwarded/> — to the sender's other enabled resources, whether the sender enabled
//    carbons or not. A message to one's own account is copied on the receiving side only.
//
// Eligible (§5, the suggested rules, the way Prosody and ejabberd read them): chat messages;
// normal messages with a body or an IM payload without body (receipts, markers, encryption,
// reactions, corrections, calls, invitations); errors (to a resource that is online). Never:
// groupchat, headline, messages carrying <private xmlns='urn:xmpp:carbons:2'/> (removed before
// delivery to the recipient, §8) or the XEP-0334 hint <no-copy/>, carbons and archive results
// themselves, and private messages a room sends to the one client that joined it (a muc#user
// <x/> addressed to a full JID: the other clients are not in the room). A private message a
// client sends to a room occupant (XEP-0045 §7.5 marks it with muc#user <x/>) is copied.
import { defineModule, xml, type BoundSession, type CarbonForwardEvent, type Element, type Session, type Stanza, type StanzaEvent } from '../core/api.ts';
import { clone } from 'ltx';

const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_HINTS = 'urn:xmpp:hints';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_CLIENT = 'jabber:client';

// Payloads that make a message without <body/> part of a conversation (XEP-0280 §5 "payloads used for IM").
const IM_PAYLOADS = new Set([
  'urn:xmpp:receipts', 'urn:xmpp:chat-markers:0', 'urn:xmpp:eme:0', 'eu.siacs.conversations.axolotl', 'urn:xmpp:omemo:2',
  'urn:xmpp:openpgp:0', 'jabber:x:conference', 'urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1',
  'urn:xmpp:reactions:0', 'urn:xmpp:message-retract:1', 'urn:xmpp:message-correct:0',
]);

// Above mod_message (-10), below mod_blocking (100) and mod_mam (50): copies are made of what is
// actually delivered, with its archive id.
const PRIORITY = -5;

interface CarbonsState {
  enabled: boolean;
}

const child = (m: Element, name: string, ns: string) => m.getChild(name, ns) !== undefined;
const hasBody = (m: Element) => m.children.some((c) => typeof c !== 'string' && c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS_CLIENT));

/** Whether a message may be copied at all (§5, §8, XEP-0334 §4). */
function eligible(m: Stanza, direction: 'sent' | 'received'): boolean {
  if (child(m, 'private', NS_CARBONS) || child(m, 'no-copy', NS_HINTS)) return false;
  if (child(m, 'sent', NS_CARBONS) || child(m, 'received', NS_CARBONS) || child(m, 'result', 'urn:xmpp:mam:2')) return false;
  const type = m.attrs.type ?? 'normal';
  if (type === 'groupchat' || type === 'headline') return false;
  // A room's private message reaches the one client that joined the room (its full JID).
  if (direction === 'received' && m.attrs.to?.includes('/') && child(m, 'x', NS_MUC_USER)) return false;
  if (type === 'chat' || type === 'error') return true;
  if (type !== 'normal') return false;
  return hasBody(m) || m.children.some((c) => typeof c !== 'string' && IM_PAYLOADS.has(c.attrs.xmlns as string));
}

/** The message without <private/> (§8: removed before delivery to the recipient). */
function withoutPrivate(m: Stanza): Stanza {
  const copy = clone(m) as Stanza;
  copy.children = copy.children.filter((c) => typeof c === 'string' || !(c.name === 'private' && c.attrs.xmlns === NS_CARBONS));
  return copy;
}

export default defineModule({
  description: 'Message Carbons (XEP-0280): copies of messages to all of a user\'s carbons-enabled resources',
  load(module) {
    module.addFeature(NS_CARBONS);
    const host = module.host;
    const isEnabled = (s: Session) => module.peekState<CarbonsState>(s)?.enabled === true;

    // -- enable / disable (§4, §7.1) ----------------------------------------------------------------

    const toggle = (enabled: boolean) => ({ origin, stanza }: StanzaEvent) => {
      module.state<CarbonsState>(origin, () => ({ enabled: false })).enabled = enabled;
      module.log('carbons %s for %s', enabled ? 'enabled' : 'disabled', origin.full_jid);
      origin.send(module.iqResult(stanza));
      return true;
    };
    for (const dest of ['self', 'host'] as const) {
      module.hook(`iq-set/${dest}/${NS_CARBONS}:enable`, toggle(true));
      module.hook(`iq-set/${dest}/${NS_CARBONS}:disable`, toggle(false));
    }
    // Bind2 (XEP-0386 §2.4): <enable xmlns='urn:xmpp:carbons:2'/> inside <bind/>.
    module.hook('bind2-inline-features', ({ inline }) => {
      inline.cnode(xml('feature', { var: NS_CARBONS }));
    });
    module.hook(`bind2-inline/${NS_CARBONS}:enable`, ({ session }) => {
      module.state<CarbonsState>(session, () => ({ enabled: false })).enabled = true;
      return true;
    });

    // -- copies ------------------------------------------------------------------------------------

    const forward = (direction: 'sent' | 'received', username: string, stanza: Stanza, to: BoundSession[]) => {
      if (!to.length) return;
      const event: CarbonForwardEvent = { direction, host, username, stanza, message: stanza };
      module.emit('carbons/forward', event);
      const inner = clone(event.message) as Element;
      inner.attrs.xmlns = NS_CLIENT;
      const bareJid = `${username}@${host}`;
      const type = stanza.attrs.type ?? 'normal';
      for (const s of to) {
        s.send(xml('message', { from: bareJid, to: s.full_jid, type },
          xml(direction, { xmlns: NS_CARBONS }, xml('forwarded', { xmlns: NS_FORWARD }, inner))));
      }
      module.log('%s carbon of a %s message to %d resource(s) of %s', direction, type, to.length, bareJid);
    };

    // A message for a local account, about to be delivered by mod_message.
    const received = (event: StanzaEvent) => {
      const { toNode, toHost, toResource, origin } = event;
      if (!toNode || toHost !== host) return undefined;
      if (child(event.stanza, 'private', NS_CARBONS)) {
        event.stanza = withoutPrivate(event.stanza);
        return undefined;
      }
      const stanza = event.stanza;
      if (!eligible(stanza, 'received')) return undefined;
      const enabled = module.sessions.sessionsOf(host, toNode).filter(isEnabled);
      if (!enabled.length) return undefined;
      const direct = toResource !== undefined ? module.sessions.getByFullJid(host, toNode, toResource) : undefined;
      const type = stanza.attrs.type ?? 'normal';
      let receivers: readonly Session[];
      if (direct) receivers = [direct];
      else if (type === 'error') return undefined; // RFC 6121 §8.5.2: not delivered at all, so not copied
      else receivers = module.sessions.mostAvailableSessions(host, toNode);
      // A message from one of the user's own resources: that one has it already.
      const copies = enabled.filter((s) => !receivers.includes(s) && s !== origin);
      forward('received', toNode, stanza, copies);
      return undefined;
    };

    // A message a local client sends (before routing).
    const sent = (event: StanzaEvent) => {
      const { origin, stanza, toNode, toHost } = event;
      const username = origin.username;
      if (origin.type !== 'c2s' || username === undefined || origin.host !== host) return undefined;
      if (toNode === username && toHost === host) return undefined; // to oneself: copied as received
      if (!eligible(stanza, 'sent')) return undefined;
      const copies = module.sessions.sessionsOf(host, username).filter((s) => s !== origin && isEnabled(s));
      forward('sent', username, stanza, copies);
      return undefined;
    };

    for (const dest of ['bare', 'full'] as const) {
      module.hook(`message/${dest}`, received, PRIORITY);
      module.hook(`pre-message/${dest}`, sent, PRIORITY);
    }
  },
});
