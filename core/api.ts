// The public surface for modules: everything a module may import from Cadence, and nothing else
// (eslint.config.js refuses any other import from core/ in modules/, and any import of another
// module). A module talks to the core through the `module` object it is given; this file adds the
// types of that object and of the events, and the pure helpers a module needs to build stanzas
// and handle addresses.
//
// Events of a module's own are declared by declaration merging on this file:
//   declare module '../core/api.ts' { interface HostEvents { 'my-event': MyPayload } }

// ---- defining a module and the `module` object ----------------------------------------------------
export { defineModule } from './moduleapi.ts';
export { CAPABILITIES } from './moduleapi.ts';
export type { Capability, ExportItem, GlobalModuleApi, HostsView, ModuleApi, ModuleHttp, ModuleDefinition, ModuleScope, PrivilegedServices, ScopeEvents, OptionSpec, OptionSpecs, OptionType, OptionValues } from './moduleapi.ts';
export type { Logger } from './util/log.ts';

// ---- events -----------------------------------------------------------------------------------------
export type {
  AuthenticationFailureEvent,
  Bind2InlineEvent,
  Bind2InlineFeaturesEvent,
  ComponentConnectedEvent,
  ConnectionLostEvent,
  UndeliveredEvent,
  SessionResumedEvent,
  ComponentStanzaEvent,
  ComponentDisconnectedEvent,
  ConnectionMethodsEvent,
  DestType,
  AccountDiscoEvent,
  DiscoInfoNodeEvent,
  DiscoItemsNodeEvent,
  EntityCapsEvent,
  GlobalEvents,
  HostEvents,
  ItemEvent,
  ModuleEvent,
  OfflineDeliverEvent,
  CarbonForwardEvent,
  OfflineEvent,
  ResourceAvailableEvent,
  RosterPushEvent,
  RosterPushedEvent,
  Sasl2InlineFeaturesEvent,
  Sasl2SuccessEvent,
  SessionEvent,
  StanzaEvent,
  StreamElementEvent,
  StreamFeaturesEvent,
  UnauthenticatedStanzaEvent,
  UserEvent,
  VcardLoadEvent,
  VcardStoreEvent,
  VcardUpdatedEvent,
  PrivilegedRosterSetEvent,
  HostDiscoInfoEvent,
  AccountDiscoUnservedEvent,
} from './event-types.ts';

// ---- sessions and rosters -----------------------------------------------------------------------------
export { isBound } from './session.ts';
export type { BoundSession, CloseReason, FilterKind, Session, SessionType, StanzaFilter, StreamOps } from './session.ts';
export type { BindResult, SessionControl, SessionRegistry } from './sessionmanager.ts';
export type { Roster, RosterItem, SubscriptionState } from './rostermanager.ts';
export type { HostKind } from './hostmanager.ts';

// ---- routing ------------------------------------------------------------------------------------------------
export type { Routing } from './router.ts';

// ---- stanzas and XML ------------------------------------------------------------------------------------
export { Element, NS, attrsOf, errorReply, iqPayload, iqResult, isStanzaKind, mustNotReplyWithError, parseXml, reply, xml } from './util/stanza.ts';
// Stream management's journal and the client stream's write share one serialisation of a stanza
// (the web transports frame it with jabber:client declared).
export { serialiseOutgoing, stanzaWithClientNs } from './util/stanza.ts';
export type { Stanza, StanzaAttrs, StanzaKind } from './util/stanza.ts';

// ---- addresses (RFC 7622) and nicknames (RFC 8266) -------------------------------------------------------------
export { bare, compareBare, isBare, isFull, join, nameprep, nodeprep, prep, resourceprep, split } from './util/jid.ts';
export type { JidParts } from './util/jid.ts';
// A nickname enforced (`nickname`: as others see it) or in comparison form (`nicknameKey`: for uniqueness); null when invalid.
export { nickname, nicknameKey } from './util/precis.ts';

// ---- data forms (XEP-0004, XEP-0122 validation) ------------------------------------------------------------------
// Forms are built from a FormSpec (`form` to fill in, `resultForm` to show); a submission is found
// with `findForm`, read with `parseForm` and checked against the spec with `readSubmission`.
export { NS_DATA, findForm, form, parseBoolean, parseForm, readSubmission, result as resultForm } from './util/dataforms.ts';
export type { FieldSpec, FieldType, FieldValidation, FormSpec, FormType, ParsedField, ParsedForm, SubmissionResult } from './util/dataforms.ts';

// ---- errors (doc/errors.md) ---------------------------------------------------------------------------------
export { CoreError, StanzaError, StreamError } from './util/errors.ts';
export type { CoreErrorCode, StanzaErrorCondition, StanzaErrorExtra, StanzaErrorType, StreamErrorCondition } from './util/errors.ts';

// ---- storage ---------------------------------------------------------------------------------------------------
export type { ArchiveItem, ArchiveQuery, ArchiveStore, Json, KeyValStore, MapStore } from './storage/contracts.ts';

// ---- authentication (SASL profiles and mechanisms; doc/authentication.md) ----------------------------------------
export { advertisedChannelBindings, decodeSaslPayload, encodeSaslPayload } from './sasl.ts';
export type { AdmitUser, SaslCondition, SaslContext, SaslExchange, SaslMechanism, SaslProfile, SaslStep, UserAgent } from './sasl.ts';
export { DEFAULT_ITERATIONS, SCRAM_HASHES, credentialsFromSaltedPassword, hashLength, saslPrep } from './util/scram.ts';
export type { ScramCredentials, ScramHash } from './util/scram.ts';
export type { AccountRecord } from './usermanager.ts';

// ---- streams and connections (stream modules: mod_c2s, mod_component, mod_websocket, mod_bosh) -------------------
export { STALL_MS, STREAM_OPTIONS, XmlStream, startKeepalives, streamLimits } from './net/stream.ts';
export type { XmlStreamOptions } from './net/stream.ts';
// The XMPP stream parser, for framings that carry stanzas without a TCP stream (RFC 7395 WebSocket, XEP-0206 BOSH).
export { XmppStreamParser } from './util/stream-parser.ts';
export type { StreamLimits } from './util/stream-parser.ts';
export { streamErrorElement } from './util/stanza.ts';
export type { Connection } from './net/connection.ts';
// Channel binding (RFC 5929, RFC 9266) of a TLS connection this server terminated: HTTP transports.
export { tlsChannelBinding, tlsChannelBindingTypes } from './net/connection.ts';
// What a session's stream runs on (`session.conn`): TCP, WebSocket or BOSH.
export type { StreamTransport } from './net/transport.ts';
// Client connections of every transport (mod_c2s, mod_websocket, mod_bosh): header checks, features,
// element dispatch, limits, stream resumption hand-over, shutdown. Transports only frame.
export { ClientStreams } from './net/c2s.ts';
export type { ClientStream, ClientStreamIo, ClientStreamModule, ClientStreamsOptions } from './net/c2s.ts';
// Inbound rate shaping (limits rate/burst) for a transport that reads its own bytes.
export { ReadShaper } from './net/shaper.ts';
export type { ShapedReader } from './net/shaper.ts';
export type { Listener, ListenerSpec } from './net/portmanager.ts';

// ---- configuration ------------------------------------------------------------------------------------------------
export type { CoreOptions } from './config.ts';
// Connection and session limits (`limits`, per host): `module.limits(host)` reads them.
export type { Limits, LimitHitKind } from './limits.ts';
// Times each limit was hit (read-only counters, for metrics).
export { limitsHit } from './limits.ts';
// Timing observers of the router and the event buses (mod_metrics; unset costs nothing measurable).
export { observers, type Observers } from './util/observe.ts';
// The unit connections and failures are counted by per address (IPv6: its /64).
export { addressKey } from './sasl.ts';
export type { CoreOptionValue } from './moduleapi.ts';

// ---- HTTP (module.http; doc/web.md) -------------------------------------------------------------------------------
// Throw HttpError(status, text) from a handler to answer with that status.
export { HttpError } from './net/http.ts';
// Address lists ('127.0.0.1', '10.0.0.0/8', '::1'), as trustedProxies reads them (mod_metrics' allow list).
export { normaliseIp, parseAddressList } from './net/http.ts';
export type { ClientInfo, CorsOptions, HttpHandler, HttpReply, HttpRequest, RouteOptions, WebSocketContext, WebSocketHandler, WebSocketRouteOptions } from './net/http.ts';
// ---- message archives (XEP-0313 with XEP-0059, XEP-0359, XEP-0441; doc/mam.md) --------------------------------------
// The MAM engine for the user archive (mod_mam) and room archives (mod_muc); the time format of XEP-0082.
export {
  NS_MAM, NS_SID, addStanzaId, answerMamIq, archivePolicy, archivedPayload, expireArchive, mamFeatures, parseExpiry,
  shouldArchive, storedMessage, storedPrefs, stanzaIdOf, stripStanzaIds, userArchiveDecision,
} from './util/mam.ts';
export type { ArchiveDefault, ArchivePrefs, MamIqContext, MamOptions } from './util/mam.ts';
export { formatDateTime, parseDateTime } from './util/datetime.ts';
// ---- publish-subscribe (XEP-0060, XEP-0163 and the translators on top; doc/pubsub.md) ---------------------------
// The engine shared by mod_pep and mod_pubsub, as one namespace: `pubsub.PubSubService`, `pubsub.NS_PUBSUB`, …
export * as pubsub from './util/pubsub/index.ts';
// ---- remote administration (doc/remote-admin.md): ad-hoc commands, typed exports, XEP-0133, Jabber-RPC, privileged components ----
export { AdhocEngine, CommandError, NS_COMMANDS, adhocError, adhocErrorReply, adhocResultReply } from './util/adhoc.ts';
export type { AdhocError, CommandContext, CommandDefinition, CommandOutcome, CommandStage, Note } from './util/adhoc.ts';
export { argsFromForm, argsFromRpc, formForParams, resultPayload, rpcSignature } from './util/export-forms.ts';
export type { ArgsOf, CommandAccess, ExportOptions, ParamSpec, ParamTypeName } from './util/export-forms.ts';
export * as adminCommands from './util/admin-commands.ts';
export * as xmlrpc from './util/xmlrpc.ts';
export * as privilege from './util/privilege.ts';
// ---- server-to-server (mod_s2s; doc/federation.md) ------------------------------------------------------------------
// DNS (SRV, addresses, TLSA with the AD bit), static routes, Happy Eyeballs connection attempts,
// certificate names (RFC 6125), DANE, dialback keys and their replay guard.
export { Resolver, parseDnsServer, parseS2sRoutes, resolveS2sTargets } from './net/dns.ts';
export type { AddressLookup, S2sResolution, S2sRoute, S2sTarget } from './net/dns.ts';
export { connectHappyEyeballs, expandTargets, peerCertificateChain } from './net/connect.ts';
export type { Candidate, ConnectResult } from './net/connect.ts';
export { verifyCertificateName } from './util/cert-names.ts';
export type { NameCheck } from './util/cert-names.ts';
export { daneVerify } from './util/dane.ts';
export type { DaneResult } from './util/dane.ts';
export { DialbackRequests, IssuedKeys, NS_DIALBACK, NS_DIALBACK_FEATURE, newDialbackSecret } from './util/dialback.ts';
export { streamHeader } from './util/stream-parser.ts';
export { toAsciiDomain } from './util/domain.ts';
