// The event catalogue: every event of a host's bus (HostEvents) and of the server's bus
// (GlobalEvents), with the type of its payload. `module.hook`, `fire`, `emit` and `fireAsync` are
// typed by it, so a misspelt event or a wrong payload is a compile error. Families of events are
// template-literal keys (`iq-get/host/${string}:${string}`): the event name is the routing table.
//
// The contract between two modules (one fires, the other hooks) lives here, in core, so that no
// module imports another. A drop-in module declares its own events by declaration merging:
//   declare module '../core/api.ts' { interface HostEvents { 'my-event': MyPayload } }
import type { Element } from '@xmpp/xml';
import type { SaslCondition, UserAgent } from './sasl.ts';
import type { CloseReason, Session } from './session.ts';
import type { Stanza, StanzaKind } from './util/stanza.ts';

export type { StanzaKind };

/** Where a routed stanza is addressed: the domain itself, an account, a resource, or one's own account (iq without 'to'). */
export type DestType = 'host' | 'bare' | 'full' | 'self';

// ---- stanzas --------------------------------------------------------------------------------------

/** A routed stanza (`<kind>/<dest>`, `pre-<kind>/<dest>`, `iq-<type>/<dest>/…`). */
export interface StanzaEvent {
  /** The session the stanza came from (a host's local session for server-generated ones). */
  origin: Session;
  stanza: Stanza;
  /** Prepared destination JID (undefined when the stanza had no 'to'). */
  to: string | undefined;
  toNode: string | undefined;
  toHost: string;
  toResource: string | undefined;
  destType: DestType;
}

/**
 * `message/offline/handle` on the recipient's host (mod_message → mod_offline): a chat or normal
 * message for an existing account with no suitable resource. A handler that stores it returns a
 * value; unhandled, the sender gets service-unavailable. A handler may throw a StanzaError.
 */
export interface OfflineEvent {
  username: string;
  host: string;
  stanza: Stanza;
  origin: Session;
}

/**
 * `offline-message/deliver` (awaited, mod_offline): a stored message is about to be handed to
 * `session`; a handler that returns a value withholds it (it is deleted all the same).
 */
export interface OfflineDeliverEvent {
  session: Session;
  username: string;
  stanza: Stanza;
}

// ---- streams (fired by the client connections of every transport, core/net/c2s.ts) ----------------------------------------------

/** `stream-features`: add feature elements to `features`. Handlers return nothing. */
export interface StreamFeaturesEvent {
  origin: Session;
  features: Element;
}

/** `stream-element/<ns>:<name>`: a top-level element that is not a stanza (`<starttls/>`, `<auth/>`…). */
export interface StreamElementEvent {
  origin: Session;
  element: Element;
}

/**
 * `unauthenticated-stanza/<kind>`: a stanza from a client that has not authenticated yet
 * (In-Band Registration, XEP-0077). A handler that returns a value has answered it; otherwise
 * the stream is closed with not-authorized. Such stanzas are never routed.
 */
export interface UnauthenticatedStanzaEvent {
  origin: Session;
  stanza: Stanza;
}

// ---- authentication (SASL2, Bind2: doc/authentication.md) -----------------------------------------

/** `authentication-failure` on the host, from either SASL profile. */
export interface AuthenticationFailureEvent {
  session: Session;
  condition: SaslCondition;
}

/**
 * `sasl2-inline-features`, while the stream features are built: add the feature elements that may
 * be negotiated inside <authenticate/> (XEP-0386 <bind/>, XEP-0484 <fast/>) to `inline`.
 */
export interface Sasl2InlineFeaturesEvent {
  origin: Session;
  inline: Element;
}

/**
 * `sasl2-success`, awaited handler by handler in priority order (stream resumption > 50, Bind2 =
 * 50, the rest 0), once the client has fully authenticated and before <success/> is sent. The
 * session is authenticated (type c2s), not yet bound. Each module processes its own children of
 * `request` and adds its results to `success`. One that fails is logged; the others still run.
 */
export interface Sasl2SuccessEvent {
  session: Session;
  /** The client's <authenticate/> element. */
  request: Element;
  userAgent: UserAgent | undefined;
  /** The SASL mechanism the client authenticated with. */
  mechanism: string;
  /** The <success/> element being built. */
  success: Element;
  /**
   * Set by stream management (XEP-0198 inline <resume/>) when `session`'s connection now carries
   * an earlier session it resumed: <success/> is sent on that one, without stream features.
   */
  resumed?: Session;
}

/** `bind2-inline-features`: add `<feature var='…'/>` for each session feature a module enables inside <bind/>. */
export interface Bind2InlineFeaturesEvent {
  origin: Session;
  /** The <inline/> element of Bind2's feature. */
  inline: Element;
}

/**
 * `bind2-inline/<ns>:<name>`, awaited, for each child of the client's <bind/> (other than <tag/>),
 * right after the resource is bound: enable the feature for `session`, add any result to `bound`
 * (XEP-0386 §3.2), and return a value to say it was handled.
 */
export interface Bind2InlineEvent {
  /** The newly bound session. */
  session: Session;
  /** The child element of <bind/>, e.g. <enable xmlns='urn:xmpp:carbons:2'/>. */
  element: Element;
  /** The <bound/> element of the <success/>. */
  bound: Element;
}

// ---- stream management (XEP-0198: mod_smacks, with the stream modules) ------------------------------

/**
 * `c2s-connection-lost` on the session's host (core/net/c2s.ts, for TCP, WebSocket and BOSH): the
 * connection of an authenticated client ended without a stream close (dropped, timed out; a BOSH
 * session without requests for `inactivity` seconds). A handler that returns a value keeps the
 * session (it hibernates, waiting for resumption) instead of it being destroyed; that handler then
 * destroys it itself when the wait ends.
 */
export interface ConnectionLostEvent {
  session: Session;
  reason: CloseReason | undefined;
}

/**
 * `c2s-undelivered` on the session's host (core/net/c2s.ts, limits.sendQueue): the client stopped
 * reading (or a BOSH session was dropped holding them) and its session is ending; `stanzas` never
 * reached it. A handler that returns a value routes
 * them itself (mod_smacks: they are among its unacknowledged stanzas); otherwise the core routes
 * them as to an unavailable resource. Fired before the session is destroyed.
 */
export interface UndeliveredEvent {
  session: Session;
  stanzas: Stanza[];
}

/**
 * `session-resumed` on the server's bus (SessionControl.resume): `session` now runs on the
 * connection of `carrier`, which is retired. The client connections (core/net/c2s.ts) hand
 * `carrier`'s stream to `session` and close the stream `session` had before, if it is still open —
 * whichever transports the two are.
 */
export interface SessionResumedEvent {
  session: Session;
  carrier: Session;
}

// ---- presence, roster, disco ----------------------------------------------------------------------

/**
 * `resource-available` on the host (mod_presence), after a resource's available presence was
 * broadcast: `initial` for the session's first available presence (RFC 6121 §4.2).
 */
export interface ResourceAvailableEvent {
  session: Session;
  initial: boolean;
  previousPriority: number;
}

/** `roster-push` (mod_presence → mod_roster): push the current state of `jid` to the user's interested resources. */
export interface RosterPushEvent {
  host: string;
  username: string;
  jid: string;
}

/**
 * `disco-info-node/<node>` (mod_disco): a disco#info query to the domain with a node; the handler
 * fills `query` and returns a value, else the query gets item-not-found.
 */
export interface DiscoInfoNodeEvent {
  origin: Session;
  stanza: Stanza;
  query: Element;
}

/**
 * `disco-items-node/<node>` (mod_disco): a disco#items query to the domain with a node (e.g. the
 * ad-hoc commands node); the handler fills `query` and returns a value, else item-not-found.
 */
export type DiscoItemsNodeEvent = DiscoInfoNodeEvent;

/**
 * disco queries to an account's bare JID (mod_disco), for services an account hosts (PEP):
 * `account-disco-info-node/<node>` and `account-disco-items-node/<node>` are answered by the
 * module owning the node (fill `query`, return a value; else item-not-found);
 * `account-disco-items` (no node) and `account-disco-info` (no node) let every module add to
 * `query` (handlers return nothing; they may be async and are awaited in turn). `username` is the
 * account asked about; `origin`/`stanza` tell who asks.
 */
export interface AccountDiscoEvent {
  origin: Session;
  stanza: Stanza;
  username: string;
  query: Element;
}

/**
 * `account-disco-unserved` (host bus, mod_disco): a disco query to an account that the server has
 * no answer of its own for — a node no module serves (info or items) — or disco#items without a
 * node (asked before the server's own items). A handler that returns a value took the query over
 * and answers it itself (mod_privilege: XEP-0355 §7.2 `urn:xmpp:delegation:2:bare:disco#…:*`).
 */
export interface AccountDiscoUnservedEvent extends AccountDiscoEvent {
  kind: 'info' | 'items';
  node: string | undefined;
}

/** `item-added/<key>`, `item-removed/<key>`: a host item (disco feature, identity, form…) changed. */
export interface ItemEvent {
  key: string;
  module: string;
  value: unknown;
}

// ---- entity capabilities of other entities (mod_caps → mod_pep; XEP-0115) --------------------------

/**
 * `entity-caps` on the host of `owner` (mod_caps): an entity whose presence the local account
 * `owner` receives — one of its own resources, a contact, or a sender of directed presence — became
 * available, changed its capabilities, or went away. mod_caps resolves and verifies the caps
 * (disco#info to the entity, cached by verification string) before firing. Handlers return nothing.
 */
export interface EntityCapsEvent {
  /** The local account (bare JID) that receives the entity's presence. */
  owner: string;
  /** The entity's full JID. */
  jid: string;
  /** Its disco#info features ([] without caps or when they could not be resolved); undefined when it went unavailable. */
  features: readonly string[] | undefined;
  /** The entity's first available presence to `owner` (or the first after it went unavailable). */
  initial: boolean;
}

// ---- vCards (mod_vcard ⇄ mod_pep: XEP-0398 avatars, XEP-0292 vCard4) ------------------------------

/** `vcard/updated` (mod_vcard, after the change is durable): an account's vcard-temp changed; undefined when removed. */
export interface VcardUpdatedEvent {
  username: string;
  vcard: Element | undefined;
  /** Who changed it: 'client' for a vcard-temp set, else the `source` of the `vcard/store` request. */
  source: string;
}

/** `vcard/load` (awaited; mod_vcard answers): the handler sets `vcard` to the stored card (left undefined when none) and returns true. */
export interface VcardLoadEvent {
  username: string;
  vcard?: Element;
}

/** `vcard/store` (awaited; mod_vcard answers): store `vcard` (undefined: remove), durably, then fire `vcard/updated` with `source`. */
export interface VcardStoreEvent {
  username: string;
  vcard: Element | undefined;
  source: string;
}

// ---- lifecycle ------------------------------------------------------------------------------------

export interface SessionEvent {
  session: Session;
}

/** `user-created`, `user-password-changed`, `user-deleted` (awaited: wipe the user's data). */
export interface UserEvent {
  host: string;
  username: string;
}

export interface ComponentConnectedEvent {
  host: string;
}

export interface ComponentDisconnectedEvent {
  host: string;
  /** True when the stream was closed (by either side), false when the connection just dropped. */
  graceful: boolean;
}

// ---- remote administration (issue 13: mod_component → mod_privilege) -----------------------------

/**
 * `component-stanza` (global bus, mod_component): a stanza an external component sent, after its
 * 'from' was checked and before it is routed. A handler that returns a value has taken it over
 * (mod_privilege: XEP-0356 requests and refusals); handlers must decide synchronously, so the
 * component's stanzas stay in order.
 */
export interface ComponentStanzaEvent {
  /** The component's domain. */
  host: string;
  stanza: Stanza;
}

/**
 * `roster-pushed` (host bus, mod_roster): an item of a user's roster changed and was pushed to the
 * user's interested resources (also when none is interested); `item` is the pushed `<item/>`.
 * mod_privilege copies it to privileged components with roster pushes (XEP-0356 §4.4).
 */
export interface RosterPushedEvent {
  host: string;
  username: string;
  item: Element;
}

/**
 * `roster-set-privileged` (host bus, mod_privilege → mod_roster): a privileged component's roster
 * set on behalf of `username` (XEP-0356 §4.3), `query` the `<query xmlns='jabber:iq:roster'/>`.
 * mod_roster validates and applies it as the user's own roster set, saves it, calls `answer()`,
 * then pushes the item; it throws a StanzaError for a set the user could not make either.
 * Returns true when handled.
 */
export interface PrivilegedRosterSetEvent {
  host: string;
  username: string;
  query: Element;
  answer: () => void;
}

/**
 * `host-disco-info` (host bus, mod_disco): the host's disco#info answer without a node, built from
 * the features and identities modules added; handlers may edit `query` before it is sent
 * (mod_privilege: features nested from a managing entity, XEP-0355 §7.2). Handlers return
 * nothing (a value would stop the others); one returning a Promise is awaited.
 */
export interface HostDiscoInfoEvent {
  origin: Session;
  stanza: Stanza;
  query: Element;
}

export interface ModuleEvent {
  module: string;
  /** The host, or '*' for a global module. */
  host: string;
}

/** Fired on the server's bus and, once the session has one, on its host's bus. */
interface SessionLifecycleEvents {
  'authentication-success': SessionEvent;
  'resource-bind': SessionEvent;
  'resource-unbind': SessionEvent;
  'session-added': SessionEvent;
  'session-removed': SessionEvent;
  'connection-removed': SessionEvent;
  'user-created': UserEvent;
  'user-password-changed': UserEvent;
  'user-deleted': UserEvent;
}

type RoutedStanzaEvents = { [K in `${StanzaKind}/${DestType}` | `pre-${StanzaKind}/${DestType}`]: StanzaEvent };
type UnauthenticatedStanzaEvents = { [K in `unauthenticated-stanza/${StanzaKind}`]: UnauthenticatedStanzaEvent };

// ---- carbons, archive, push (issue 15: doc/mam.md, doc/mobile.md) ---------------------------------

/**
 * `carbons/forward` (mod_carbons, emitted synchronously): a carbon copy of `stanza` is about to be
 * forwarded to the user's other resources. A handler may replace `message`, the copy that goes
 * inside <forwarded/> (mod_mam adds the sender's archive id to sent carbons, XEP-0313 §3.5).
 */
export interface CarbonForwardEvent {
  direction: 'sent' | 'received';
  host: string;
  username: string;
  stanza: Stanza;
  message: Element;
}

// ---- the catalogue --------------------------------------------------------------------------------

/** Events of a host's bus (`module.hook` in a host module). */
export interface HostEvents extends RoutedStanzaEvents, UnauthenticatedStanzaEvents, SessionLifecycleEvents {
  /** iq requests by payload (mod_iq): `iq-get/host/urn:xmpp:ping:ping`. */
  [name: `iq-${'get' | 'set'}/${DestType}/${string}:${string}`]: StanzaEvent;
  /** iq responses by id (mod_iq): `iq-result/host/<id>`. */
  [name: `iq-${'result' | 'error'}/${DestType}/${string}`]: StanzaEvent;
  [name: `stream-element/${string}:${string}`]: StreamElementEvent;
  [name: `bind2-inline/${string}:${string}`]: Bind2InlineEvent;
  [name: `disco-info-node/${string}`]: DiscoInfoNodeEvent;
  [name: `disco-items-node/${string}`]: DiscoItemsNodeEvent;
  [name: `account-disco-info-node/${string}`]: AccountDiscoEvent;
  [name: `account-disco-items-node/${string}`]: AccountDiscoEvent;
  'account-disco-info': AccountDiscoEvent;
  'account-disco-items': AccountDiscoEvent;
  'account-disco-unserved': AccountDiscoUnservedEvent;
  [name: `item-added/${string}`]: ItemEvent;
  [name: `item-removed/${string}`]: ItemEvent;
  'stream-features': StreamFeaturesEvent;
  'authentication-failure': AuthenticationFailureEvent;
  'sasl2-inline-features': Sasl2InlineFeaturesEvent;
  'sasl2-success': Sasl2SuccessEvent;
  'bind2-inline-features': Bind2InlineFeaturesEvent;
  'resource-available': ResourceAvailableEvent;
  'roster-push': RosterPushEvent;
  'roster-pushed': RosterPushedEvent;
  'roster-set-privileged': PrivilegedRosterSetEvent;
  'host-disco-info': HostDiscoInfoEvent;
  'message/offline/handle': OfflineEvent;
  'offline-message/deliver': OfflineDeliverEvent;
  // stream management (XEP-0198)
  'c2s-connection-lost': ConnectionLostEvent;
  'c2s-undelivered': UndeliveredEvent;
  'carbons/forward': CarbonForwardEvent;
  'entity-caps': EntityCapsEvent;
  'vcard/updated': VcardUpdatedEvent;
  'vcard/load': VcardLoadEvent;
  'vcard/store': VcardStoreEvent;
}

/** Events of the server's bus (`module.hookGlobal`, and `module.hook` in a global module). */
export interface GlobalEvents extends SessionLifecycleEvents {
  'connection-added': SessionEvent;
  /** A stanza for a domain this server does not serve (a server-to-server module claims it). */
  'route/remote': StanzaEvent;
  'component-connected': ComponentConnectedEvent;
  'component-disconnected': ComponentDisconnectedEvent;
  'component-stanza': ComponentStanzaEvent;
  'host-activated': { host: string };
  'module-loaded': ModuleEvent;
  'module-unloaded': ModuleEvent;
  'server-started': Record<string, never>;
  /** The config file was re-read (SIGHUP, admin shell); `changes` as logged. Options read at load may have changed. */
  'config-reloaded': { changes: string[] };
  'server-stopping': { reason: string };
  'server-stop-requested': { reason?: string };
  // stream management (XEP-0198)
  'session-resumed': SessionResumedEvent;
  /** The web (doc/web.md): which connection endpoints a host has (XEP-0156 host-meta asks). */
  'connection-methods': ConnectionMethodsEvent;
}

// ---- the web (issue 11; doc/web.md) -------------------------------------------------------------

/**
 * `connection-methods` (emitted on the global bus): each transport module (mod_websocket,
 * mod_bosh) adds its endpoint for `host`, an absolute URL built on `base` (`https://host:port`,
 * or `httpExternalUrl`), for XEP-0156 host-meta.
 */
export interface ConnectionMethodsEvent {
  host: string;
  /** The HTTP base URL clients use, without a trailing slash. */
  base: string;
  /** Filled by the handlers: XEP-0156 link relations and their URLs. */
  methods: { rel: string; href: string }[];
}
