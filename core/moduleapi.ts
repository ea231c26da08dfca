// The object each module gets (`module`): everything a module may do goes through it and is
// recorded, so unloading removes every hook, item, timer, listener and export it made.
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import type { AdminApi } from './admin.ts';
import { DEFAULTS, type Config, type CoreOptions } from './config.ts';
import { limitsFor, type Limits } from './limits.ts';
import type { CertManager } from './net/certmanager.ts';
import type { Roster, RosterManager } from './rostermanager.ts';
import type { Routing } from './router.ts';
import type { SessionControl, SessionManager, SessionRegistry } from './sessionmanager.ts';
import type { StorageManager } from './storage/manager.ts';
import type { UserManager } from './usermanager.ts';
import type { EventBus, EventName, Handler } from './util/events.ts';
import type { GlobalEvents, HostEvents } from './event-types.ts';
import { CoreError, StanzaError, type StanzaErrorCondition, type StanzaErrorExtra, type StanzaErrorType } from './util/errors.ts';
import { errorReply, iqResult, xml, type Stanza } from './util/stanza.ts';
import type { Host, HostKind, HostManager } from './hostmanager.ts';
import { getLogger, type Logger } from './util/log.ts';
import type { ModuleHeader } from './module-header.ts';
import type { SaslManager, SaslMechanism } from './sasl.ts';
import type { SecureContext } from 'node:tls';
import type { FilterKind, Session, StanzaFilter } from './session.ts';
import { SerialQueues } from './util/serial.ts';
import type { ArchiveStore, KeyValStore, MapStore } from './storage/manager.ts';
import type { ListenerSpec, Listener, PortManager } from './net/portmanager.ts';
import type { HttpHandler, HttpServer, RouteOptions, WebSocketHandler, WebSocketRouteOptions } from './net/http.ts';
import { checkExportOptions, type ArgsOf, type ExportOptions, type ParamSpec } from './util/export-forms.ts';
import { isAdmin as isAdminOf } from './util/admin-commands.ts';
import type { CommandDefinition } from './util/adhoc.ts';

// ---- typed options -------------------------------------------------------------------------

export type OptionType = 'string' | 'number' | 'integer' | 'boolean' | 'string[]' | 'number[]' | 'object' | 'object[]';

export interface OptionSpec {
  type: OptionType;
  description: string;
  default?: unknown;
  /** Allowed values (for string/number options, or the elements of arrays). */
  allowed?: readonly (string | number)[];
  min?: number;
  max?: number;
}

export type OptionSpecs = Record<string, OptionSpec>;

type TypeOf<T extends OptionType> = T extends 'string' ? string
  : T extends 'number' | 'integer' ? number
  : T extends 'boolean' ? boolean
  : T extends 'string[]' ? string[]
  : T extends 'number[]' ? number[]
  : T extends 'object[]' ? Record<string, unknown>[]
  : Record<string, unknown>;

export type OptionValues<O extends OptionSpecs> = { [K in keyof O]: TypeOf<O[K]['type']> };

/** Check one option value against its spec; returns a message, or undefined when valid. */
export function checkOption(spec: OptionSpec, value: unknown): string | undefined {
  const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const inRange = (v: number) =>
    (spec.min !== undefined && v < spec.min) ? `must be ≥ ${spec.min}` : (spec.max !== undefined && v > spec.max) ? `must be ≤ ${spec.max}` : undefined;
  const inAllowed = (v: string | number) =>
    spec.allowed && !spec.allowed.includes(v) ? `must be one of ${spec.allowed.map((a) => JSON.stringify(a)).join(', ')}` : undefined;
  switch (spec.type) {
    case 'string':
      return typeof value === 'string' ? inAllowed(value) : 'must be a string';
    case 'number':
      return isNum(value) ? inRange(value as number) ?? inAllowed(value as number) : 'must be a number';
    case 'integer':
      return Number.isInteger(value) ? inRange(value as number) ?? inAllowed(value as number) : 'must be an integer';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'string[]':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return 'must be an array of strings';
      for (const v of value as string[]) { const e = inAllowed(v); if (e) return `element ${JSON.stringify(v)} ${e}`; }
      return undefined;
    case 'number[]':
      return Array.isArray(value) && value.every(isNum) ? undefined : 'must be an array of numbers';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'must be an object';
    case 'object[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'object' && v !== null && !Array.isArray(v)) ? undefined : 'must be an array of objects';
  }
}

/** A core option's value as `module.config()` returns it: with the core default when there is one. */
export type CoreOptionValue<K extends keyof CoreOptions> = K extends keyof typeof DEFAULTS ? (typeof DEFAULTS)[K] : CoreOptions[K];

// ---- module definition -----------------------------------------------------------------------

/**
 * What a module may do beyond the public API, when it declares it (`capabilities: [...]` in its
 * definition); `module.privileged.<name>` throws MODULE_CAPABILITY_MISSING otherwise:
 *  - 'sessions': create, authenticate, bind and destroy sessions (stream and SASL modules);
 *  - 'routing': hand client and component stanzas to the router (stream modules);
 *  - 'network': open listening ports;
 *  - 'tls': the certificates' TLS contexts (STARTTLS);
 *  - 'users': account administration (create, delete, passwords, credentials);
 *  - 'rosters': save rosters (roster and presence modules);
 *  - 'admin': module load/unload/reload and the server operations of the admin shell.
 */
export type Capability = 'sessions' | 'routing' | 'network' | 'tls' | 'users' | 'rosters' | 'admin';

export const CAPABILITIES: readonly Capability[] = ['sessions', 'routing', 'network', 'tls', 'users', 'rosters', 'admin'];

/** The privileged services, by capability. */
export interface PrivilegedServices {
  sessions: SessionControl;
  routing: Routing;
  network: { listen(spec: ListenerSpec): Promise<Listener> };
  tls: {
    context(host: string | undefined): SecureContext | undefined;
    /** The PEM certificate and key `host` presents (parent domains as context()), for TLS contexts of a module's own (s2s). */
    pem(host: string | undefined): { cert: string; key: string } | undefined;
  };
  users: Pick<UserManager, 'create' | 'delete' | 'setPassword' | 'getRecord' | 'addScramCredentials' | 'setDisabled'>;
  rosters: Pick<RosterManager, 'save'>;
  admin: AdminApi;
}

/** Hosts served by this server, read-only (`module.hosts`). */
export interface HostsView {
  names(): string[];
  has(name: string): boolean;
  /** 'virtualhost' or 'component'; undefined for a host not served here. */
  kind(name: string): HostKind | undefined;
}

/** A module runs once per host ('host', the default) or once for the whole server ('global'). */
export type ModuleScope = 'host' | 'global';

/** The catalogue of a module's own bus: its host's events, or the server's for a global module. */
export type ScopeEvents<S extends ModuleScope> = S extends 'global' ? GlobalEvents : HostEvents;

export interface ModuleDefinition<O extends OptionSpecs = OptionSpecs, S extends ModuleScope = 'host'> {
  /** Loaded once for the whole server ('global') or once per host ('host', the default). */
  scope?: S;
  /** Modules loaded (on the same host, or globally) before this one; their exports are callable in load(). */
  depends?: string[];
  /** Privileged services the module uses (`module.privileged.<capability>`); see Capability. */
  capabilities?: readonly Capability[];
  description?: string;
  options?: O;
  /** Set up: hooks, items, listeners. May throw (or reject) to refuse loading. */
  load(module: ModuleApi<O, S>): void | Promise<void>;
  /** Called after every module of the host is loaded (and after a runtime load). */
  ready?(module: ModuleApi<O, S>): void | Promise<void>;
  /** Release what load() made beyond what the module API tracks. Always called, even after a failed load. */
  unload?(module: ModuleApi<O, S>): void | Promise<void>;
  /** Reload: state handed from the old instance to the new one. */
  save?(module: ModuleApi<O, S>): unknown;
  restore?(module: ModuleApi<O, S>, state: unknown): void | Promise<void>;
}

/** Type a module definition: its options, and its scope (which decides the events `module.hook` knows). */
/** Any module's definition and `module` object, as the module manager holds them. */
export type AnyModuleDefinition = ModuleDefinition<OptionSpecs, ModuleScope>;
export type AnyModuleApi = ModuleApi<OptionSpecs, ModuleScope>;

/** The `module` object of a global module (`scope: 'global'`), for helper functions' parameters. */
export type GlobalModuleApi<O extends OptionSpecs = OptionSpecs> = ModuleApi<O, 'global'>;

export function defineModule<O extends OptionSpecs = Record<never, OptionSpec>, S extends ModuleScope = 'host'>(def: ModuleDefinition<O, S>): ModuleDefinition<O, S> {
  return def;
}

export interface ExportedMethod {
  description: string;
  fn: (...args: unknown[]) => unknown;
  /** The typed declaration, when the export gave one (`module.export(name, fn, { params, … })`). */
  options?: ExportOptions;
}

/**
 * The host item `export` (key 'export') that `module.export` adds for a method declared with
 * `params`: how mod_adhoc offers it as a command and mod_rpc over Jabber-RPC, without reading
 * another module's exports. Removed on unload (`item-removed/export`).
 */
export interface ExportItem {
  module: string;
  /** The host of the exporting module, or '*' for a global one. */
  host: string;
  name: string;
  description: string;
  options: ExportOptions;
  call(...args: unknown[]): Promise<unknown>;
}

// ---- what the module API needs of the server ------------------------------------------------------

/** The services behind the `module` object (the server provides them; core/server.ts). */
export interface ModuleContext {
  readonly version: string;
  readonly started: number;
  /** The configuration in force (replaced on reload). */
  readonly config: Config;
  readonly events: EventBus<GlobalEvents>;
  readonly hosts: HostManager;
  readonly sessions: SessionManager;
  readonly users: UserManager;
  readonly rosters: RosterManager;
  readonly routing: Routing;
  readonly storage: StorageManager;
  readonly sasl: SaslManager;
  readonly certs: CertManager;
  readonly ports: PortManager;
  readonly admin: AdminApi;
  /** The process's HTTP(S) server (core/net/http.ts). */
  readonly http: HttpServer;
  /** A route was registered: the server starts its HTTP listeners if it has not yet (after start). */
  httpRouteAdded(): void;
  /** A module option's configured value: the host's, else the global one; undefined when unset. */
  moduleOptionValue(host: string, module: string, option: string): unknown;
  /** Call a method another module exported (module.call). */
  callExport(host: string, module: string, method: string, args: unknown[]): Promise<unknown>;
}

/**
 * `module.http`: routes on the module's host ('*' — every host without a route of its own — for a
 * global module), removed on unload. Errors: CoreError HTTP_ROUTE_INVALID. doc/web.md.
 */
export interface ModuleHttp {
  route(method: string, pattern: string, handler: HttpHandler, opts?: RouteOptions): () => void;
  websocket(pattern: string, handler: WebSocketHandler, opts?: WebSocketRouteOptions): () => void;
  /**
   * The URL clients use for `path` on `host` (default: the module's host): `httpExternalUrl` when
   * configured, else https on the first HTTPS port (http when no HTTPS listener is bound).
   */
  url(path: string, host?: string): string;
}

// ---- the API -----------------------------------------------------------------------------------

export class ModuleApi<O extends OptionSpecs = OptionSpecs, S extends ModuleScope = 'host'> {
  readonly log: Logger;
  /** Fires when the module is unloaded: tie long-lived work to it. */
  readonly signal: AbortSignal;
  private readonly abort = new AbortController();
  private readonly cleanups: (() => void)[] = [];
  private readonly tasks = new Set<Promise<unknown>>();
  readonly exports = new Map<string, ExportedMethod>();
  private sessionState = new WeakMap<Session, unknown>();
  private readonly queues = new SerialQueues();
  private privilegedServices: PrivilegedServices | undefined;

  constructor(
    readonly name: string,
    /** The host this instance serves, or '*' for a global module. */
    readonly host: string,
    readonly file: string,
    readonly header: ModuleHeader,
    readonly definition: ModuleDefinition<O, S>,
    private readonly server: ModuleContext,
  ) {
    this.log = getLogger(host === '*' ? `mod:${name}` : `mod:${name}:${host}`);
    this.signal = this.abort.signal;
  }

  get isGlobal(): boolean {
    return this.host === '*';
  }

  /** The event bus of this module's host (the global bus for global modules), untyped inside. */
  private get bus(): EventBus {
    if (this.isGlobal) return this.server.events as unknown as EventBus;
    const h = this.server.hosts.get(this.host);
    if (!h) throw new CoreError('HOST_UNKNOWN', `host ${this.host} is not active`);
    return h.events as unknown as EventBus;
  }

  private get hostObj(): Host | undefined {
    return this.isGlobal ? undefined : this.server.hosts.get(this.host);
  }

  // -- events (typed by core/event-types.ts: a misspelt event or a wrong payload does not compile)

  /** Hook an event on this module's bus: its host's (the server's for a global module). Higher priority runs first. */
  hook<K extends EventName<ScopeEvents<S>>>(event: K, handler: Handler<ScopeEvents<S>[K]>, priority = 0): void {
    this.cleanups.push(this.bus.on(event, handler as Handler, priority, this.name));
  }

  /** HTTP routes and WebSocket endpoints on this module's host (doc/web.md). */
  get http(): ModuleHttp {
    const server = this.server;
    const host = this.host;
    const track = (off: () => void) => {
      this.cleanups.push(off);
      server.httpRouteAdded();
      return off;
    };
    return {
      route: (method, pattern, handler, opts) => track(server.http.route(host, method, pattern, handler, opts)),
      websocket: (pattern, handler, opts) => track(server.http.websocket(host, pattern, handler, opts)),
      url: (path, forHost) => {
        const name = forHost ?? (host === '*' ? server.hosts.names()[0] ?? 'localhost' : host);
        const external = server.config.raw.httpExternalUrl;
        const rel = path.replace(/^\/+/, '');
        if (external) return `${external.replace(/\/+$/, '')}/${rel}`;
        const bound = server.http.addresses();
        const a = bound.find((b) => b.secure) ?? bound[0];
        const scheme = a?.secure === false ? 'http' : 'https';
        return `${scheme}://${name}${a ? `:${a.port}` : ''}/${rel}`;
      },
    };
  }

  /** Hook an event on the server-wide bus. */
  hookGlobal<K extends EventName<GlobalEvents>>(event: K, handler: Handler<GlobalEvents[K]>, priority = 0): void {
    this.cleanups.push(this.server.events.on(event, handler, priority, this.name));
  }

  /** Hook an event on every host's bus, including hosts activated later. */
  hookEachHost<K extends EventName<HostEvents>>(event: K, handler: Handler<HostEvents[K]>, priority = 0): void {
    for (const h of this.server.hosts.all()) this.cleanups.push(h.events.on(event, handler, priority, this.name));
    this.hookGlobal('host-activated', ({ host }) => {
      const h = this.server.hosts.get(host);
      if (h) this.cleanups.push(h.events.on(event, handler, priority, this.name));
    });
  }

  /** Dispatch on this module's bus: the first handler that returns a value has handled it (its value is returned). */
  fire<K extends EventName<ScopeEvents<S>>>(event: K, data: ScopeEvents<S>[K]): unknown {
    return this.bus.fire(event, data);
  }

  /** Notify every handler on this module's bus. */
  emit<K extends EventName<ScopeEvents<S>>>(event: K, data: ScopeEvents<S>[K]): void {
    this.bus.emit(event, data);
  }

  /** Await every handler in turn (lifecycle events); a failing one is logged and the next runs. */
  fireAsync<K extends EventName<ScopeEvents<S>>>(event: K, data: ScopeEvents<S>[K]): Promise<unknown> {
    return this.bus.fireAsync(event, data);
  }

  /** Fire on the given host's bus (global modules acting for a host, e.g. mod_c2s). */
  fireOnHost<K extends EventName<HostEvents>>(host: string, event: K, data: HostEvents[K]): unknown {
    return this.server.hosts.get(host)?.events.fire(event, data);
  }

  emitOnHost<K extends EventName<HostEvents>>(host: string, event: K, data: HostEvents[K]): void {
    this.server.hosts.get(host)?.events.emit(event, data);
  }

  // -- items (disco features, identities, …)

  addItem(key: string, value: unknown): void {
    const host = this.hostObj;
    const hosts = host ? [host] : this.server.hosts.all();
    for (const h of hosts) h.addItem(key, this.name, value);
    this.cleanups.push(() => {
      for (const h of hosts) h.removeItem(key, this.name, value);
    });
  }

  getItems<T = unknown>(key: string): T[] {
    return this.hostObj?.getItems<T>(key) ?? [];
  }

  /** Advertise a disco#info feature (XEP-0030) on this host. */
  addFeature(ns: string): void {
    this.addItem('feature', ns);
  }

  addIdentity(category: string, type: string, name?: string): void {
    this.addItem('identity', { category, type, name });
  }

  // -- options

  /** A declared option's value: host setting, else global setting, else declared default. */
  option<K extends keyof O & string>(name: K): OptionValues<O>[K] {
    const spec = this.definition.options?.[name];
    if (!spec) throw new CoreError('MODULE_OPTION_INVALID', `module ${this.name} reads undeclared option '${name}'`);
    const v = this.server.moduleOptionValue(this.host, this.name, name);
    return (v === undefined ? spec.default : v) as OptionValues<O>[K];
  }

  /** Untyped lookup of an option under this module's name, with a default (Prosody's get_option). */
  getOption<T>(name: string, fallback: T): T {
    const v = this.server.moduleOptionValue(this.host, this.name, name);
    return v === undefined ? fallback : (v as T);
  }

  /**
   * A core (top-level) option for this host — its own value, else the global one, else the core
   * default — e.g. 'c2sRequireEncryption'. `host`: another host's value (a global module applying
   * per-host options, such as mod_s2s for the local end of a stream).
   */
  config<K extends keyof CoreOptions>(key: K, host: string | undefined = this.isGlobal ? undefined : this.host): CoreOptionValue<K> {
    const v = this.server.config.get<CoreOptions[K]>(host, key);
    if (v !== undefined) return v as CoreOptionValue<K>;
    return (key in DEFAULTS ? DEFAULTS[key as keyof typeof DEFAULTS] : undefined) as CoreOptionValue<K>;
  }

  /** The connection and session limits in force for `host` (default: this module's host; core/limits.ts). */
  limits(host: string | undefined = this.host): Limits {
    return limitsFor(this.server.config, host);
  }

  /** The server's data directory (absolute). */
  get dataDir(): string {
    return this.server.config.dataDir;
  }

  /** A path from the config, resolved against the config file's directory. */
  resolvePath(p: string): string {
    return path.resolve(this.server.config.baseDir, p);
  }

  // -- storage (store names default to the module's name)

  get storage(): { keyval(store?: string): KeyValStore; map(store?: string): MapStore; archive(store?: string): ArchiveStore } {
    const host = this.host;
    const sm = this.server.storage;
    return {
      keyval: (store = this.name) => sm.keyval(host, store),
      map: (store = this.name) => sm.map(host, store),
      archive: (store = this.name) => sm.archive(host, store),
    };
  }

  // -- stanza helpers (so a module dropped anywhere needs no runtime import from Cadence)

  /** Build an element: module.xml('query', { xmlns }, child, 'text'). */
  readonly xml = xml;

  /** The iq result for a request, with an optional payload. */
  iqResult(stanza: Element, payload?: Element): Element {
    return iqResult(stanza, payload);
  }

  /**
   * Answer a stanza with an error, to whoever sent it (never for errors and iq results). Inside a
   * handler, throwing `new StanzaError(type, condition, text)` does the same.
   */
  replyError(event: { origin: Session; stanza: Stanza }, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string, extra?: StanzaErrorExtra): void {
    this.server.routing.bounce(event.origin, event.stanza, type, condition, text, extra);
  }

  /**
   * A StanzaError to throw from a handler (`throw module.stanzaError('cancel', 'item-not-found')`):
   * the router answers the stanza with it. The same as `new StanzaError(…)` from core/api.ts, for
   * modules dropped outside the tree that import only types.
   */
  stanzaError(type: StanzaErrorType, condition: StanzaErrorCondition, text?: string, extra?: StanzaErrorExtra): StanzaError {
    return new StanzaError(type, condition, text, extra);
  }

  /** The error reply for a stanza (RFC 6120 §8.3). */
  errorReply(stanza: Element, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string, extra?: StanzaErrorExtra): Element {
    return errorReply(stanza, type, condition, text, undefined, extra);
  }

  // -- core services, read-only (every module)

  /** Session lookups (core/sessionmanager.ts SessionRegistry); nothing here changes a session's state. */
  get sessions(): SessionRegistry {
    return this.server.sessions.view();
  }

  /** Accounts, read-only (they are administered with capability 'users'): existence, the list, disabled ones (XEP-0133). */
  get users(): {
    exists(host: string, username: string): Promise<boolean>;
    list(host: string): Promise<string[]>;
    isDisabled(host: string, username: string): Promise<boolean>;
    listDisabled(host: string): Promise<string[]>;
  } {
    const users = this.server.users;
    return {
      exists: (host, username) => users.exists(host, username),
      list: (host) => users.list(host),
      isDisabled: (host, username) => users.isDisabled(host, username),
      listDisabled: (host) => users.listDisabled(host),
    };
  }

  /** A user's roster: the live one when a resource is connected, else read (saved with capability 'rosters'). */
  get rosters(): { load(host: string, username: string): Promise<Roster> } {
    const rosters = this.server.rosters;
    return { load: (host, username) => rosters.load(host, username) };
  }

  get hosts(): HostsView {
    const hosts = this.server.hosts;
    return {
      names: () => hosts.names(),
      has: (name) => hosts.has(name),
      kind: (name) => hosts.get(name)?.kind,
    };
  }

  /**
   * The network listeners bound now, read-only: service name ('c2s', 'c2s_direct_tls', …),
   * address and port — what a module announces to clients (XEP-0156/XEP-0487 host-meta).
   */
  listeners(): { name: string; address: string; port: number }[] {
    return this.server.ports.all().flatMap((l) => l.addresses.map((a) => {
      const colon = a.lastIndexOf(':');
      return { name: l.name, address: a.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(a.slice(colon + 1)) };
    }));
  }

  /** The services of the capabilities this module declares (see Capability). */
  get privileged(): PrivilegedServices {
    return (this.privilegedServices ??= this.makePrivileged());
  }

  private makePrivileged(): PrivilegedServices {
    const declared = new Set(this.definition.capabilities ?? []);
    const s = this.server;
    const services: { [C in Capability]: () => PrivilegedServices[C] } = {
      sessions: () => s.sessions.control(),
      routing: () => s.routing,
      network: () => ({
        listen: async (spec) => {
          const listener = await s.ports.listen(spec);
          this.cleanups.push(() => void listener.close());
          return listener;
        },
      }),
      tls: () => ({ context: (host) => s.certs.context(host), pem: (host) => s.certs.pem(host) }),
      users: () => {
        const u = s.users;
        return {
          create: (h, n, p) => u.create(h, n, p),
          delete: (h, n) => u.delete(h, n),
          setPassword: (h, n, p) => u.setPassword(h, n, p),
          getRecord: (h, n) => u.getRecord(h, n),
          addScramCredentials: (h, n, hash, creds) => u.addScramCredentials(h, n, hash, creds),
          setDisabled: (h, n, d) => u.setDisabled(h, n, d),
        };
      },
      rosters: () => ({ save: (h, n, roster, changed) => s.rosters.save(h, n, roster, changed) }),
      admin: () => s.admin,
    };
    const out = {} as PrivilegedServices;
    for (const cap of CAPABILITIES) {
      let made: unknown;
      Object.defineProperty(out, cap, {
        enumerable: true,
        get: () => {
          if (!declared.has(cap)) {
            throw new CoreError('MODULE_CAPABILITY_MISSING', `module ${this.name} uses module.privileged.${cap} without declaring capabilities: ['${cap}']`);
          }
          return (made ??= services[cap]());
        },
      });
    }
    return Object.freeze(out);
  }

  /**
   * SASL mechanisms: offer and run them (SASL profiles), register more (tracked: removed on
   * unload). A host module's mechanisms exist on its host only; a global module's on every host.
   */
  get sasl(): Pick<SaslManager, 'offer' | 'start'> & { get(name: string): SaslMechanism | undefined; register(mechanism: SaslMechanism): void } {
    const sm = this.server.sasl;
    const host = this.isGlobal ? undefined : this.host;
    return {
      offer: (ctx, enabled) => sm.offer(ctx, enabled),
      start: (name, ctx) => sm.start(name, ctx),
      get: (name) => sm.get(name, host),
      register: (mechanism) => void this.cleanups.push(sm.register(mechanism, host)),
    };
  }

  get serverInfo(): { version: string; started: number } {
    return { version: this.server.version, started: this.server.started };
  }

  /** Route a stanza from this host (server-generated: from must be set by the caller or defaults to the host). */
  send(stanza: Stanza): void {
    const host = this.hostObj;
    if (!host) throw new CoreError('HOST_UNKNOWN', `global module ${this.name} must use sendFrom(host, stanza)`);
    stanza.attrs.from ??= this.host;
    this.server.routing.route(host.session, stanza);
  }

  sendFrom(host: string, stanza: Stanza): void {
    const h = this.server.hosts.get(host);
    if (!h) throw new CoreError('HOST_UNKNOWN', `unknown host ${host}`);
    stanza.attrs.from ??= host;
    this.server.routing.route(h.session, stanza);
  }

  // -- ordering and filters

  /**
   * Run `task` after every earlier task of this module queued under the same `key` (e.g. a user's
   * bare JID: one user's changes in order). An idle key runs the task at once; a synchronous
   * result is then returned as is, otherwise a Promise of it. A task must not await another task
   * of its own key.
   */
  serial<T>(key: string, task: () => T | Promise<T>): T | Promise<T> {
    return this.queues.run(key, task);
  }

  /**
   * Add a session filter (Prosody's `stanzas/in`, `stanzas/out`) for every session of this
   * module's host (of every host for a global module); removed on unload. `stanzas/out` sees each
   * stanza written to a session, `stanzas/in` each stanza a client sends, before it is stamped
   * and routed. Return the stanza (or a changed copy) to go on, or undefined to drop it.
   */
  filter(kind: FilterKind, fn: StanzaFilter, priority = 0): void {
    this.cleanups.push(this.server.sessions.filters.add(kind, this.host, fn, priority, this.name));
  }

  // -- timers and tasks

  /**
   * The module's live timers, cleared on unload. A timeout leaves the set when it fires, so a
   * module making many short timers holds only the pending ones.
   */
  private timers: Set<NodeJS.Timeout> | undefined;

  private trackTimer(t: NodeJS.Timeout): void {
    t.unref();
    if (!this.timers) {
      const timers = (this.timers = new Set());
      this.cleanups.push(() => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
      });
    }
    this.timers.add(t);
  }

  setTimeout(fn: () => void, ms: number): NodeJS.Timeout {
    const t: NodeJS.Timeout = setTimeout(() => {
      this.timers?.delete(t);
      fn();
    }, ms);
    this.trackTimer(t);
    return t;
  }

  setInterval(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setInterval(fn, ms);
    this.trackTimer(t);
    return t;
  }

  /** Cancel a timer made by `setTimeout`/`setInterval` before it fires (or between runs). */
  clearTimer(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers?.delete(t);
  }

  /** Run long-lived work tied to `signal`; unload waits for it (within the shutdown time limit). */
  task(fn: (signal: AbortSignal) => Promise<void>): void {
    const p = fn(this.signal).catch((err: unknown) => {
      if (!this.signal.aborted) this.log.error('task failed: %s', err);
    });
    this.tasks.add(p);
    void p.finally(() => this.tasks.delete(p));
  }

  // -- per-session state

  /** This module's state slot on a session, created on demand; dropped with the session or the module. */
  state<T>(session: Session, init: () => T): T {
    let v = this.sessionState.get(session) as T | undefined;
    if (v === undefined) {
      v = init();
      this.sessionState.set(session, v);
    }
    return v;
  }

  peekState<T>(session: Session): T | undefined {
    return this.sessionState.get(session) as T | undefined;
  }

  dropState(session: Session): void {
    this.sessionState.delete(session);
  }

  // -- connection and session hooks (told about existing ones at once, and of their removal on unload)

  /** Bound c2s sessions of this host (all hosts for a global module): added now and later, removed later and on unload. */
  onSessions(handlers: { added?(session: Session): void; removed?(session: Session): void }): void {
    this.track(handlers, 'session-added', 'session-removed', () => [...this.server.sessions.boundSessions()]);
  }

  /**
   * Connections (sessions of any type, until closed), as onSessions. A global module hears of a
   * connection when it is accepted; a host module once it has authenticated to its host.
   */
  onConnections(handlers: { added?(session: Session): void; removed?(session: Session): void }): void {
    this.track(handlers, 'connection-added', 'connection-removed', () => [...this.server.sessions.all], 'authentication-success');
  }

  private track(
    handlers: { added?(session: Session): void; removed?(session: Session): void },
    addedEvent: 'session-added' | 'connection-added',
    removedEvent: 'session-removed' | 'connection-removed',
    existing: () => Session[],
    alsoAddedOn?: 'authentication-success',
  ): void {
    const mine = (s: Session) => this.isGlobal || s.host === this.host;
    const safe = (fn: ((s: Session) => void) | undefined, s: Session) => {
      try {
        fn?.(s);
      } catch (err) {
        this.log.error('%s handler failed: %s', fn === handlers.added ? addedEvent : removedEvent, err);
      }
    };
    const live = new Set<Session>();
    for (const s of existing()) {
      if (!mine(s)) continue;
      live.add(s);
      safe(handlers.added, s);
    }
    const onAdded = ({ session }: { session: Session }) => {
      if (!mine(session) || live.has(session)) return;
      live.add(session);
      safe(handlers.added, session);
    };
    this.hookGlobal(addedEvent, onAdded);
    if (alsoAddedOn && !this.isGlobal) this.hookGlobal(alsoAddedOn, onAdded);
    this.hookGlobal(removedEvent, ({ session }) => {
      if (!live.delete(session)) return;
      safe(handlers.removed, session);
    });
    this.cleanups.push(() => {
      for (const s of live) safe(handlers.removed, s);
      live.clear();
    });
  }

  // -- exported methods

  /**
   * Export a method other modules (module.call) and the admin shell can call. With typed
   * `params` (ExportOptions, doc/remote-admin.md) it may also be offered as an ad-hoc command
   * (`command`, mod_adhoc) and over Jabber-RPC (`rpc`, mod_rpc); a declaration with problems is
   * refused (CoreError MODULE_INVALID).
   */
  export<const P extends readonly ParamSpec[]>(name: string, fn: (...args: ArgsOf<P>) => unknown, options: ExportOptions<P>): void;
  export(name: string, fn: (...args: never[]) => unknown, description?: string): void;
  export(name: string, fn: (...args: never[]) => unknown, options: string | ExportOptions = ''): void {
    const call = fn as (...args: unknown[]) => unknown;
    if (typeof options === 'string') {
      this.exports.set(name, { description: options, fn: call });
      return;
    }
    const problems = checkExportOptions(name, options);
    if (problems.length) throw new CoreError('MODULE_INVALID', `module ${this.name}: export ${name}: ${problems.join('; ')}`);
    const description = options.description ?? '';
    this.exports.set(name, { description, fn: call, options });
    if (options.params) {
      const item: ExportItem = { module: this.name, host: this.host, name, description, options, call: async (...args) => call(...args) };
      this.addItem('export', item);
    }
  }

  // -- remote administration

  /**
   * Whether `jid` (any resource) administers `host` (this module's host by default): its bare
   * JID is in the global `admins` or in that host's `admins`.
   */
  isAdmin(jid: string, host: string = this.host): boolean {
    const global = this.server.config.get<string[]>(undefined, 'admins') ?? [];
    const own = host === '*' ? [] : this.server.config.hostEntry(host)?.options.admins ?? [];
    return isAdminOf({ global, hosts: { [host]: own } }, jid, host);
  }

  /**
   * Declare an ad-hoc command (XEP-0050; mod_adhoc offers it on this host, or on every host for a
   * global module): the host item 'adhoc-command', removed on unload (its open sessions end).
   */
  command(def: CommandDefinition): void {
    this.addItem('adhoc-command', def);
  }

  /**
   * Resolve true when an external component (XEP-0114) for `host` is connected — at once if it
   * already is — and false after `timeoutMs`, or when this module unloads (Go's `WaitFor`).
   */
  waitFor(host: string, timeoutMs: number): Promise<boolean> {
    if (this.server.sessions.view().getComponent(host)) return Promise.resolve(true);
    if (this.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        off();
        this.signal.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      timer.unref();
      const off = this.server.events.on('component-connected', (e) => {
        if (e.host === host) finish(true);
      }, 0, this.name);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Call a method exported by another module (on this host, or global). */
  call<T = unknown>(module: string, method: string, ...args: unknown[]): Promise<T> {
    return this.server.callExport(this.host, module, method, args) as Promise<T>;
  }

  // -- used by the module manager

  /** @internal */
  async dispose(timeoutMs: number): Promise<void> {
    this.abort.abort();
    for (const c of this.cleanups.splice(0).reverse()) {
      try {
        c();
      } catch (err) {
        this.log.error('cleanup failed: %s', err);
      }
    }
    this.exports.clear();
    this.sessionState = new WeakMap();
    if (this.tasks.size) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.tasks]),
        new Promise((r) => {
          timer = setTimeout(r, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
  }
}
