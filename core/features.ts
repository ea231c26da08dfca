// The core features registry: what this core provides, by capability name (never by version).
// Modules state `//% requires_core_features: a, b` and `//% conflicts_core_features: c` in
// their header; the module manager checks them before loading. Append-only: a feature, once
// published, keeps its meaning; a changed behaviour gets a new name.

export const coreFeatures: ReadonlyMap<string, string> = new Map([
  ['sessions-v1', 'Session model of doc/architecture.md: c2s_unauthed → c2s, connected/available/interested resources'],
  ['events-priority', 'Event bus with priorities; first non-undefined handler result stops dispatch'],
  ['stanza-events-v1', 'Stanza dispatch by event name: <kind>/<host|bare|full|self>, iq-<type>/<dest>/<ns>:<name>'],
  ['module-header-v1', '`//% key: value` module metadata read before a module is imported'],
  ['module-options-typed', 'Modules declare typed options (type, default, description, allowed values)'],
  ['module-lifecycle-v1', 'load / ready / unload hooks, AbortSignal for long-lived tasks, reverse-order shutdown'],
  ['module-reload', 'Modules can be loaded, unloaded and reloaded at run time, keeping state via save/restore'],
  ['module-session-state', 'Typed per-session and per-connection module state slots'],
  ['module-exports', 'Modules export named methods other modules and the admin shell can call'],
  ['connection-events', 'connection-added/-removed and session-added/-removed events, replayed on load'],
  ['storage-keyval', 'Key/value store per user'],
  ['storage-map', 'Map store per user (key → value), atomic multi-key set'],
  ['storage-archive', 'Append-only archive store with time/with/id queries'],
  ['storage-sqlite', 'Embedded SQLite storage driver'],
  ['scram-sha-1', 'Accounts carry SCRAM-SHA-1 credentials'],
  ['scram-sha-256', 'Accounts carry SCRAM-SHA-256 credentials'],
  ['scram-sha-512', 'Accounts carry SCRAM-SHA-512 credentials (older ones gain them on their next PLAIN login or password change); UserManager.addScramCredentials adds one hash'],
  ['tls-channel-binding', 'Connections expose tls-exporter and tls-server-end-point channel binding data'],
  ['user-deleted-event', 'user-deleted fires when an account is removed; modules wipe their data'],
  ['sasl-mechanisms', 'SASL mechanisms in core (module.sasl): offer, start exchanges, register more; shared by SASL profiles'],
  ['sasl-mechanisms-per-host', 'module.sasl.register() from a host module registers the mechanism for that host only (one instance per host)'],
  ['jid-precis', 'JIDs prepared per RFC 7622 (PRECIS)'],
  ['events-async', 'A handler may return a Promise: its value decides as a returned one (undefined passes on); a thrown or rejected StanzaError is the stanza\'s error reply, any other failure internal-server-error'],
  ['stanza-dispatch-ordered', 'A session\'s stanzas (and, once authenticated, stream elements) are handled in order while a handler awaits; stanzas pipelined behind the bind iq wait for it'],
  ['module-serial', 'module.serial(key, task): a module\'s tasks of one key run one after another'],
  ['session-filters', 'module.filter(\'stanzas/in\' | \'stanzas/out\'): see and change what enters and leaves a session'],
  ['module-capabilities', 'Privileged services (sessions, routing, network, tls, users, rosters, admin) through module.privileged, for modules declaring them in `capabilities`'],
  ['module-commands', 'module.command(def) declares XEP-0050 ad-hoc commands; module.export(name, fn, { params, command, rpc }) with typed parameters (items \'export\'); module.isAdmin(jid, host?)'],
  ['accounts-disabled', 'Accounts can be disabled (module.privileged.users.setDisabled, module.users.isDisabled/listDisabled); SASL refuses them with account-disabled'],
  ['module-waitfor', 'module.waitFor(host, timeoutMs): resolves true once an external component for host is connected'],
]);
