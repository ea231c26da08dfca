// The server: wires the core managers together, starts hosts and modules, and stops cleanly.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminApi } from './admin.ts';
import { CertManager } from './net/certmanager.ts';
import { Config, importConfigFile, validateConfig, DEFAULTS, CORE_OPTION_NAMES, type AcmeConfig, type CadenceConfig } from './config.ts';
import type { AcmeManager } from './net/acme.ts';
import { CoreError } from './util/errors.ts';
import { EventBus } from './util/events.ts';
import type { GlobalEvents } from './event-types.ts';
import { HostManager, type Host } from './hostmanager.ts';
import { limitsFor } from './limits.ts';
import { getLogger, setLogLevel } from './util/log.ts';
import { availableModules, BUILTIN_MODULE_DIR, ModuleManager } from './modulemanager.ts';
import { ModuleApi, type ModuleContext } from './moduleapi.ts';
import { PortManager } from './net/portmanager.ts';
import { HttpServer } from './net/http.ts';
import { RosterManager } from './rostermanager.ts';
import { SaslManager, type AuthThrottleOptions } from './sasl.ts';
import type { ChannelBindingPolicy } from './util/scram.ts';
import { SessionManager } from './sessionmanager.ts';
import { StanzaRouter } from './router.ts';
import { StorageManager } from './storage/manager.ts';
import { UserManager } from './usermanager.ts';

const log = getLogger('core:server');

/** Options read once when the listeners are bound. */
const LISTENER_OPTIONS = ['c2sPorts', 'c2sDirectTlsPorts', 'componentPorts', 'httpPorts', 'interfaces'] as const;

export const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VERSION: string = (JSON.parse(readFileSync(path.join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string }).version;

/** Load and validate a config file; module names are checked against the module search paths. */
export async function loadConfig(file: string): Promise<Config> {
  const raw = await importConfigFile(file);
  const probe = new Config({ ...(raw as CadenceConfig), virtualHosts: {}, components: {} }, path.resolve(file));
  const available = new Set(availableModules([...probe.pluginPaths(), BUILTIN_MODULE_DIR]));
  const cfg = validateConfig(raw, (name) => available.has(name) && !CORE_OPTION_NAMES.has(name));
  return new Config(cfg, path.resolve(file));
}

export class Server {
  readonly version = VERSION;
  readonly started = Date.now();
  readonly events = new EventBus<GlobalEvents>('global');
  readonly storage: StorageManager;
  readonly hosts: HostManager;
  readonly rosters: RosterManager;
  readonly sessions: SessionManager;
  readonly users: UserManager;
  readonly sasl: SaslManager;
  readonly router: StanzaRouter;
  readonly certs: CertManager;
  readonly ports: PortManager;
  /** The HTTP(S) server: it listens once a module has registered a route (doc/web.md). */
  readonly http: HttpServer;
  private started_ = false;
  readonly modules: ModuleManager;
  readonly admin: AdminApi;
  /** Certificates from an ACME CA, when configured. */
  private acme: AcmeManager | undefined;
  private stopping: Promise<void> | undefined;
  private apiContext: ModuleContext | undefined;
  private currentConfig: Config;

  constructor(config: Config, overrides: { storage?: 'memory' } = {}) {
    this.currentConfig = config;
    const level = config.raw.log?.level;
    if (level) setLogLevel(level);
    this.storage = new StorageManager({ driver: overrides.storage ?? config.global('storage'), dataDir: config.dataDir });
    this.hosts = new HostManager((origin, stanza) => this.router.route(origin, stanza));
    const hostEvents = (h: string) => this.hosts.get(h)?.events;
    this.rosters = new RosterManager(this.storage);
    this.sessions = new SessionManager(this.events, hostEvents, this.rosters, () => this.config.global('resourceConflict'), (host) => limitsFor(this.config, host).sessionsPerAccount);
    this.users = new UserManager(this.storage, this.events, hostEvents, (host, username) => {
      for (const s of [...this.sessions.all]) {
        if (s.host === host && s.username === username && s.type === 'c2s') s.close({ condition: 'not-authorized', text: 'Account removed' });
      }
    });
    this.sasl = new SaslManager(
      this.users,
      {
        allowUnencryptedPlain: (host) => this.config.get<boolean>(host, 'allowUnencryptedPlainAuth') ?? DEFAULTS.allowUnencryptedPlainAuth,
        channelBindingPolicy: (host) => this.config.get<ChannelBindingPolicy>(host, 'channelBindingPolicy') ?? DEFAULTS.channelBindingPolicy,
        authThrottle: (host) => {
          const o = this.config.get<false | Partial<AuthThrottleOptions>>(host, 'authThrottle');
          return o === false ? undefined : { ...DEFAULTS.authThrottle, ...o };
        },
      },
      this.storage,
    );
    this.router = new StanzaRouter(this.hosts, this.events, this.sessions.filters);
    // A getter: reload() follows config reloads (a changed `tls` path).
    this.certs = new CertManager(() => this.config);
    this.ports = new PortManager(this.certs, () => this.config.raw.interfaces);
    const certs = this.certs;
    this.http = new HttpServer({
      httpPorts: config.global('httpPorts'),
      httpsPorts: config.global('httpsPorts'),
      interfaces: config.raw.httpInterfaces ?? config.raw.interfaces,
      tls: {
        sni: certs.sni,
        get fallback() {
          return certs.fallback;
        },
      },
      trustedProxies: config.global('trustedProxies'),
      maxBodyBytes: config.global('httpMaxBodySize'),
    });
    // A reloaded certificate is what clients without SNI get from then on.
    this.certs.onChange(() => this.http.refreshTls());
    this.modules = new ModuleManager({
      events: this.events,
      searchPaths: () => this.config.pluginPaths(),
      moduleOptions: (host, name) => this.moduleOptions(host, name),
      shutdownTimeout: () => this.config.global('shutdownTimeout'),
      holdRouting: () => this.router.hold(),
      makeApi: (name, host, file, header, definition) => new ModuleApi(name, host, file, header, definition, this.moduleContext()),
    });
    this.admin = new AdminApi({
      version: this.version,
      started: this.started,
      modules: this.modules,
      sessions: this.sessions,
      users: this.users,
      hostNames: () => this.hosts.names(),
      virtualHostNames: () => this.config.hosts.filter((h) => h.kind === 'virtualhost').map((h) => h.name),
      reloadConfig: () => this.reloadConfig(),
      limits: (host) => limitsFor(this.config, host),
      reloadCertificates: () => this.reloadCertificates(),
    });
  }

  /** The services the `module` objects use (made once, on the first module load). */
  private moduleContext(): ModuleContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const server = this;
    return (this.apiContext ??= {
      version: this.version,
      started: this.started,
      get config() {
        return server.config;
      },
      events: this.events,
      hosts: this.hosts,
      sessions: this.sessions,
      users: this.users,
      rosters: this.rosters,
      routing: this.router,
      storage: this.storage,
      sasl: this.sasl,
      certs: this.certs,
      ports: this.ports,
      http: this.http,
      httpRouteAdded: () => {
        // Routes registered while starting are served from start(); later ones (a module loaded
        // at run time) start the listeners now.
        if (this.started_ && !this.http.listening && !this.stopping) {
          this.http.listen().catch((err: unknown) => log.error('HTTP listeners failed to start: %s', err));
        }
      },
      admin: this.admin,
      moduleOptionValue: (host, module, option) => this.moduleOptionValue(host, module, option),
      callExport: (host, module, method, args) => this.modules.call(host, module, method, args),
    });
  }

  /** The configuration in force (replaced by reloadConfig). */
  get config(): Config {
    return this.currentConfig;
  }

  /**
   * Re-read the config file (SIGHUP, admin shell): new options apply, and each host's module set
   * is diffed — modules no longer configured are unloaded, new ones loaded. Host additions and
   * removals need a restart. Returns a summary, one line per change.
   */
  async reloadConfig(): Promise<string[]> {
    const file = this.currentConfig.file;
    if (!file) throw new CoreError('CONFIG_NOT_FOUND', 'the server was not started from a config file');
    const next = await loadConfig(file);
    const hostNames = this.currentConfig.hosts.map((h) => h.name);
    const before = new Map(hostNames.map((h) => [h, new Set(this.modulesFor(h))]));
    const previous = this.currentConfig;
    this.currentConfig = next;
    const changes: string[] = [];
    // Listeners are bound once: a changed port or interface takes a restart.
    for (const key of LISTENER_OPTIONS) {
      const was = JSON.stringify(previous.raw[key] ?? null);
      const is = JSON.stringify(next.raw[key] ?? null);
      if (was !== is) changes.push(`${key} changed (${was} → ${is}): restart needed`);
    }
    for (const h of next.hosts.map((x) => x.name)) if (!before.has(h)) changes.push(`host ${h} added: restart to activate it`);
    for (const [host, old] of before) {
      if (!next.hostEntry(host)) {
        changes.push(`host ${host} removed: restart to deactivate it`);
        continue;
      }
      const now = new Set(this.modulesFor(host));
      for (const name of old) {
        if (now.has(name) || !this.modules.isLoaded(host, name)) continue;
        const entry = this.modules.get(host, name);
        if (entry?.host === '*') continue; // global modules stay while any host wants them
        await this.modules.unload(host, name);
        changes.push(`unloaded ${name} from ${host}`);
      }
      for (const name of now) {
        if (old.has(name) || this.modules.isLoaded(host, name)) continue;
        try {
          await this.modules.load(host, name, { ready: true });
          changes.push(`loaded ${name} on ${host}`);
        } catch (err) {
          changes.push(`failed to load ${name} on ${host}: ${(err as Error).message}`);
          log.error('config reload: %s', err);
        }
      }
    }
    // Certificates are re-read too (a `tls` path may have changed, or the files on disk).
    for (const r of await this.certs.reload()) {
      if (r.status === 'updated') changes.push(`certificate of ${r.host} reloaded from ${r.certFile}`);
      if (r.status === 'failed') changes.push(`certificate of ${r.host} not reloaded: ${r.error ?? r.problem ?? 'failed'}`);
    }
    log.info('configuration reloaded%s', changes.length ? `: ${changes.join('; ')}` : ' (no changes)');
    // Modules that keep state derived from their options re-read them (mod_privilege's grants).
    this.events.emit('config-reloaded', { changes });
    return changes;
  }

  /** Re-read every host's certificate and key (SIGHUP does it with the config); sessions stay. */
  async reloadCertificates(): Promise<string[]> {
    return (await this.certs.reload()).map((r) => {
      const until = r.notAfter ? `, valid until ${r.notAfter.toISOString()}` : '';
      if (r.status === 'failed') return `${r.host}: not reloaded: ${r.error ?? r.problem ?? 'failed'} (the previous certificate stays)`;
      return `${r.host}: ${r.status} (${r.certFile}${until})`;
    });
  }

  /** The options object configured for module `name`: global (host undefined) or the host's own. */
  moduleOptions(host: string | undefined, name: string): Record<string, unknown> | undefined {
    // A core option of the same name (`tls`) is not the module's (mod_tls) options.
    if (CORE_OPTION_NAMES.has(name)) return undefined;
    if (host === undefined) return this.config.raw[name] as Record<string, unknown> | undefined;
    return this.config.hostEntry(host)?.options[name] as Record<string, unknown> | undefined;
  }

  moduleOptionValue(host: string, module: string, option: string): unknown {
    if (host !== '*') {
      const h = this.moduleOptions(host, module);
      if (h && option in h) return h[option];
    }
    return this.moduleOptions(undefined, module)?.[option];
  }

  /** The modules configured for a host (Prosody semantics: host lists add to the global list). */
  modulesFor(host: string): string[] {
    const entry = this.config.hostEntry(host);
    if (!entry) return [];
    const disabled = new Set([...(this.config.raw.modulesDisabled ?? []), ...(entry.options.modulesDisabled ?? [])]);
    let names: string[];
    if (entry.kind === 'component') {
      const c = entry.options as { module?: string; secret?: string };
      // An external component (secret) is served by mod_component; an internal one by its module.
      names = [...(c.module ? [c.module] : []), ...(c.secret ? ['component'] : []), ...(entry.options.modulesEnabled ?? [])];
    } else {
      names = [
        ...DEFAULTS.autoloadModules,
        ...(this.config.raw.modulesEnabled ?? DEFAULTS.modulesEnabled),
        ...(entry.options.modulesEnabled ?? []),
      ];
    }
    return [...new Set(names)].filter((n) => !disabled.has(n));
  }

  activateHost(name: string): Host {
    const entry = this.config.hostEntry(name);
    if (!entry) throw new CoreError('HOST_UNKNOWN', `host ${name} is not configured`);
    const host = this.hosts.activate(entry);
    this.events.emit('host-activated', { host: host.name });
    return host;
  }

  /**
   * Start: hosts, certificates, modules (each host's, then ready()), then `ready` is logged.
   * Offline (the CLI's account commands): host modules only — no listeners, no global modules —
   * so that events such as user-deleted reach every module that keeps user data.
   */
  async start(opts: { offline?: boolean } = {}): Promise<string[]> {
    const names = this.config.hosts.map((h) => h.name);
    this.modules.hostModulesOnly = opts.offline ?? false;
    if (!opts.offline) await this.certs.init(names);
    for (const name of names) this.activateHost(name);
    // Which SCRAM hashes every account has (SCRAM-SHA-512 is offered only then).
    if (!opts.offline) for (const h of this.config.hosts) if (h.kind === 'virtualhost') await this.users.countCredentials(h.name);
    for (const name of names) {
      const loaded = [];
      for (const mod of this.modulesFor(name)) {
        try {
          loaded.push(await this.modules.load(name, mod));
        } catch (err) {
          if (err instanceof CoreError && (err.code === 'MODULE_FILTERED' || err.code === 'MODULE_ALREADY_LOADED' || err.code === 'MODULE_SKIPPED')) {
            if (err.code === 'MODULE_FILTERED') log.warn('%s', err.message);
            continue;
          }
          throw err;
        }
      }
      for (const entry of loaded) await this.modules.ready(entry);
    }
    // HTTP listens only when a module serves something over it.
    if (!opts.offline && this.http.hasRoutes) await this.http.listen();
    if (!opts.offline) await this.startAcme();
    this.started_ = true;
    this.events.emit('server-started', {});
    return [
      ...this.ports.all().flatMap((l) => l.addresses.map((a) => `${l.name}=${a}`)),
      ...this.http.addresses().map((a) => `${a.secure ? 'https' : 'http'}=${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`),
    ];
  }

  /**
   * ACME (RFC 8555) when the config has `acme`: each host whose `tls` option is not set and whose
   * `acme` is not false gets its certificate from the CA and renewed before expiry, proven with
   * TLS-ALPN-01 on the direct-TLS listeners (doc/certificates.md).
   */
  private async startAcme(): Promise<void> {
    const cfg = this.config.get<AcmeConfig | false>(undefined, 'acme');
    if (!cfg) return;
    if (!this.ports.all().some((l) => l.name === 'c2s_direct_tls')) {
      log.error('acme: TLS-ALPN-01 needs a direct-TLS port (c2sDirectTlsPorts, reachable on 443): no certificates are ordered');
      return;
    }
    const { AcmeManager, TlsAlpn01Responder } = await import('./net/acme.ts');
    const { certificatePaths } = await import('./net/cert-files.ts');
    const acmeClient = await import('acme-client');
    const directory = cfg.directory ?? 'letsencrypt';
    const directoryUrl = directory === 'letsencrypt' ? acmeClient.directory.letsencrypt.production
      : directory === 'letsencrypt-staging' ? acmeClient.directory.letsencrypt.staging : directory;
    const directoryCa = cfg.directoryCa ? readFileSync(path.resolve(this.config.baseDir, cfg.directoryCa), 'utf8') : undefined;
    this.acme = new AcmeManager({
      directoryUrl,
      directoryCa,
      email: cfg.email,
      dataDir: this.config.dataDir,
      challenge: 'tls-alpn-01',
      renewBeforeDays: cfg.renewBeforeDays,
      responders: { 'tls-alpn-01': new TlsAlpn01Responder(this.certs) },
      certificatePaths: (h) => certificatePaths(this.config, h),
      reload: (hosts) => this.certs.reload(hosts),
    });
    const hosts = this.config.hosts.filter((h) => this.config.get(h.name, 'acme') !== false).map((h) => h.name);
    log.info('acme: managing the certificates of %s through %s', hosts.join(', '), directoryUrl);
    this.acme.start(hosts);
  }

  /** Close every stream cleanly, unload modules in reverse order, close storage. */
  stop(reason = 'Server is shutting down'): Promise<void> {
    this.stopping ??= (async () => {
      log.info('shutting down: %s', reason);
      this.acme?.stop();
      await this.events.fireAsync('server-stopping', { reason });
      await this.ports.closeAll();
      for (const s of [...this.sessions.all]) s.close({ condition: 'system-shutdown', text: reason });
      await this.modules.unloadAll();
      await this.http.close(this.config.global('shutdownTimeout') * 1000);
      await this.storage.close();
      log.info('stopped');
    })();
    return this.stopping;
  }
}
