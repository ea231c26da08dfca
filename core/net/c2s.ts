// The client stream logic every client transport shares (RFC 6120 §4, RFC 7395 §3.3, XEP-0206):
// the checks on the client's stream header, our answer and the stream features, and what happens
// to each element — stanzas before authentication offered to the host (In-Band Registration),
// stanzas after it to the router in order, stream-level elements (SASL, bind, SM, …) to their
// `stream-element/<ns>:<name>` handlers. mod_c2s (TCP), mod_websocket and mod_bosh each read
// their framing and call these; so a session is the same session whatever carries it.
import { Element } from '@xmpp/xml';
import type { StreamElementEvent, StreamFeaturesEvent, UnauthenticatedStanzaEvent, HostEvents } from '../event-types.ts';
import type { HostKind } from '../hostmanager.ts';
import type { Routing } from '../router.ts';
import type { CloseReason, Session } from '../session.ts';
import type { EventName } from '../util/events.ts';
import { prep } from '../util/jid.ts';
import { isStanzaKind, type Stanza, type StanzaKind } from '../util/stanza.ts';

/** What the stream logic needs of the stream module's `module` object. */
export interface ClientStreamModule {
  hosts: { kind(name: string): HostKind | undefined };
  fireOnHost<K extends EventName<HostEvents>>(host: string, event: K, data: HostEvents[K]): unknown;
  emitOnHost<K extends EventName<HostEvents>>(host: string, event: K, data: HostEvents[K]): void;
  privileged: { routing: Routing };
}

/** What the stream logic needs of the transport's framing. */
export interface ClientStreamIo {
  /** Answer a valid client header with ours (TCP header, WebSocket `<open/>`); returns the stream id. */
  sendHeader(clientAttrs: Record<string, string | undefined>): string;
  /** Close the stream with a stream error. */
  close(reason: CloseReason): void;
}

export interface ClientStream {
  /** The client opened (or reopened, after a restart) the stream with these header attributes. */
  streamStart(attrs: Record<string, string | undefined>): void;
  /** One top-level element the client sent (stanzas in jabber:client without their xmlns). */
  element(el: Element): void;
}

export function clientStream(module: ClientStreamModule, session: Session, io: ClientStreamIo): ClientStream {
  const routing = module.privileged.routing;
  const close = (reason: CloseReason) => io.close(reason);

  /**
   * Offer an element to the host's handlers; `unclaimed` runs when none returns a value. A
   * handler that fails closes the stream (its error is logged by the event bus).
   */
  const offer = (claimed: () => unknown, unclaimed: () => void): unknown => {
    const fail = () => close({ condition: 'internal-server-error', text: 'The server failed to process that element' });
    let r: unknown;
    try {
      r = claimed();
    } catch {
      fail();
      return undefined;
    }
    if (r instanceof Promise) {
      return r.then((v) => {
        if (v === undefined || v === false) unclaimed();
      }, fail);
    }
    if (r === undefined || r === false) unclaimed();
    return undefined;
  };

  return {
    streamStart(attrs) {
      const to = attrs.to !== undefined ? prep(attrs.to) : undefined;
      if (!to || module.hosts.kind(to) !== 'virtualhost' || (session.host && session.host !== to)) {
        close({ condition: 'host-unknown', text: to ? `This server does not serve ${to}` : "The stream header has no 'to'" });
        return;
      }
      session.host = to;
      if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) {
        close({ condition: 'unsupported-version', text: 'Only XMPP 1.0 streams are supported' });
        return;
      }
      session.notopen = false;
      if (attrs['xml:lang']) session.lang = attrs['xml:lang'];
      session.streamId = io.sendHeader(attrs);
      const features = new Element('stream:features');
      module.emitOnHost(to, 'stream-features', { origin: session, features } satisfies StreamFeaturesEvent);
      session.send(features);
    },

    element(el) {
      const host = session.host;
      if (session.notopen || !host) return;
      const ns = (el as Stanza).attrs.xmlns;
      if (ns === undefined && isStanzaKind(el.name)) {
        const stanza = el as Stanza;
        if (session.type !== 'c2s') {
          // Never routed: offered to the host (In-Band Registration), else the stream ends.
          offer(
            () => module.fireOnHost(host, `unauthenticated-stanza/${stanza.name as StanzaKind}`, { origin: session, stanza } satisfies UnauthenticatedStanzaEvent),
            () => close({ condition: 'not-authorized', text: 'Authenticate before sending stanzas' }),
          );
          return;
        }
        // In order with the session's other stanzas; the router closes the stream on a violation.
        routing.fromClient(session, stanza);
        return;
      }
      const element = () =>
        offer(
          () => (ns === undefined ? undefined : module.fireOnHost(host, `stream-element/${ns}:${el.name}`, { origin: session, element: el } satisfies StreamElementEvent)),
          () => close({ condition: 'unsupported-stanza-type', text: `Unexpected <${el.name}/>${ns ? ` in ${ns}` : ''}` }),
        );
      // Once authenticated, stream elements (stream management's <r/>, …) take their turn behind
      // the stanzas before them; before that, the authentication exchanges keep their own order.
      if (session.type === 'c2s') routing.inOrder(session, element);
      else element();
    },
  };
}
