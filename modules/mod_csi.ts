//% requires_core_features: sessions-v1, stanza-events-v1, session-filters, module-session-state, module-exports
// Client State Indication (XEP-0352, urn:xmpp:csi:0): a client in the background says
// <inactive/>, and until it says <active/> the server holds back what it does not need at once —
// presence updates (only the latest per sender is kept) and chat state notifications (XEP-0085,
// the latest per sender) — and sends them when the client becomes active again or right before
// something important: a message with a body (or a carbon/forward of one), an iq, a presence
// subscription request or answer. The `stanzas/out` filter does it (above stream management's, so
// SM counts only what is actually written). Held and flushed counts per session are exported for
// the admin shell's `session list`. Also inline in Bind2 (XEP-0386): <inactive/> inside <bind/>.
import { attrsOf, defineModule, type Session, type Stanza } from '../core/api.ts';

const NS_CSI = 'urn:xmpp:csi:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
/** Wrappers whose inner message decides (carbons, forwarded messages). */
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
/** Presence types a user must see at once (RFC 6121 §3: subscription management). */
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);
/** Elements a message may carry besides a chat state and still be only a chat state notification. */
const HINTS_AND_IDS = new Set(['urn:xmpp:hints', 'urn:xmpp:sid:0', NS_CHATSTATES]);

const options = {
  maxHeld: { type: 'integer', description: 'Most stanzas held for an inactive client; one more flushes them', default: 100, min: 1 },
} as const;

interface CsiState {
  /** Held stanzas by what they replace: `p <from>` (presence), `c <from>` (chat state). */
  held: Map<string, Stanza>;
  /** Stanzas held since the session started (replaced ones included). */
  heldTotal: number;
  /** Held stanzas sent since the session started. */
  flushedTotal: number;
  flushing: boolean;
}

/** The message inside a carbon or forward wrapper, or the message itself. */
function innerMessage(stanza: Stanza): Stanza {
  for (const child of stanza.getChildElements()) {
    const ns = attrsOf(child).xmlns;
    if (ns === NS_CARBONS && (child.name === 'received' || child.name === 'sent')) {
      const inner = child.getChild('forwarded', NS_FORWARD)?.getChild('message');
      if (inner) return inner as Stanza;
    }
  }
  return stanza;
}

/** What to do with a stanza for an inactive client: hold it (under a key) or send it now. */
function classify(stanza: Stanza): { hold: string } | { important: boolean } {
  const from = stanza.attrs.from ?? '';
  if (stanza.name === 'presence') {
    if (SUBSCRIPTION_TYPES.has(stanza.attrs.type ?? '')) return { important: true };
    if (stanza.attrs.type === 'error') return { important: false };
    return { hold: `p ${from}` };
  }
  if (stanza.name === 'message') {
    const message = innerMessage(stanza);
    if (message.getChild('body') !== undefined) return { important: true };
    const children = message.getChildElements();
    const onlyChatState = children.length > 0
      && children.some((c) => attrsOf(c).xmlns === NS_CHATSTATES)
      && children.every((c) => HINTS_AND_IDS.has(attrsOf(c).xmlns ?? '') || c.name === 'thread');
    if (onlyChatState && message === stanza) return { hold: `c ${from}` };
    return { important: false };
  }
  return { important: true }; // an iq for the client
}

export default defineModule({
  description: 'Client State Indication (XEP-0352): hold presence and chat states while the client is inactive',
  options,
  load(module) {
    const stateOf = (session: Session) => module.state<CsiState>(session, () => ({ held: new Map(), heldTotal: 0, flushedTotal: 0, flushing: false }));

    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type === 'c2s') features.c('csi', { xmlns: NS_CSI });
    });
    module.hook('bind2-inline-features', ({ inline }) => {
      inline.c('feature', { var: NS_CSI });
    });

    /** Send what is held, in the order it was held. */
    const flush = (session: Session, why: string) => {
      const st = module.peekState<CsiState>(session);
      if (!st || st.held.size === 0 || st.flushing) return;
      const held = [...st.held.values()];
      st.held.clear();
      st.flushing = true;
      try {
        for (const stanza of held) session.send(stanza);
      } finally {
        st.flushing = false;
      }
      st.flushedTotal += held.length;
      module.log('%s: flushed %d held stanza(s) (%s)', session.full_jid ?? session.id, held.length, why);
    };

    const setState = (session: Session, state: 'active' | 'inactive') => {
      session.clientState = state;
      if (state === 'active') flush(session, 'active');
    };

    for (const state of ['active', 'inactive'] as const) {
      module.hook(`stream-element/${NS_CSI}:${state}`, ({ origin }) => {
        if (origin.type !== 'c2s') return undefined; // before authentication: not offered
        setState(origin, state);
        return true;
      });
      module.hook(`bind2-inline/${NS_CSI}:${state}`, ({ session }) => {
        setState(session, state);
        return true;
      });
    }

    module.filter('stanzas/out', (stanza, session) => {
      if (session.clientState !== 'inactive') return stanza;
      const st = stateOf(session);
      if (st.flushing) return stanza;
      const what = classify(stanza);
      if ('hold' in what) {
        st.held.delete(what.hold); // the newer one takes the end of the line
        st.held.set(what.hold, stanza);
        st.heldTotal++;
        if (st.held.size > module.option('maxHeld')) flush(session, 'too many held');
        return undefined;
      }
      if (what.important) flush(session, `important ${stanza.name}`);
      return stanza;
    }, 100);

    module.export('counts', () => {
      const out: Record<string, { held: number; heldTotal: number; flushed: number }> = {};
      for (const session of module.sessions.boundSessions(module.host)) {
        const st = module.peekState<CsiState>(session);
        if (st) out[session.id] = { held: st.held.size, heldTotal: st.heldTotal, flushed: st.flushedTotal };
      }
      return out;
    }, 'Per session id: stanzas held now, held in all, flushed in all');
  },
});
