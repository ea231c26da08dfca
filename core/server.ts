// The server: wires the core managers together, starts hosts and modules, and stops cleanly.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AdminApi, type CertListEntry } from './admin.ts';
import { CertManager } from './net/certmanager.ts';
import { certificatePaths } from './net/cert-files.ts';
import { Config, loadConfig, DEFAULTS, CORE_OPTION_NAMES, type AcmeConfig } from './config.ts';
import type { AcmeHostStatus, AcmeManager, AcmeOptions, Http01Responder } from './net/acme.ts';
import { CoreError } from './util/errors.ts';
import { EventBus } from './util/events.ts';
import type { GlobalEvents } from './event-types.ts';
import { HostManager, type Host } from './hostmanager.ts';
import { limitsFor } from './limits.ts';
import { VERSION } from './package.ts';
import { getLogger, setLogLevel } from './util/log.ts';
import { ModuleManager } from './modulemanager.ts';
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

export { ROOT_DIR, VERSION } from './package.ts';
export { loadConfig } from './config.ts';

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
  /** The settings the ACME manager runs with (JSON; '' when off): a reload restarts it when they change. */
  private acmeSetup = '';
  /** HTTP-01: the responder behind GET /.well-known/acme-challenge/:token, and the route's remover. */
  private acmeHttp01: { responder: Http01Responder; remove: () => void } | undefined;
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
      certificates: () => this.certificateList(),
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
    log.info('reloading the configuration from %s', file);
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
    // ACME follows its section: hosts added get certificates, hosts left out stop renewing.
    if (this.started_ && !this.stopping) {
      try {
        const acme = await this.applyAcme();
        if (acme) changes.push(acme);
      } catch (err) {
        this.acmeSetup = ''; // the next reload tries again
        changes.push(`acme not restarted: ${(err as Error).message}`);
        log.error('config reload: acme: %s', err);
      }
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

  /** Per host, the certificate served and where it comes from (`shell cert list`). */
  certificateList(): CertListEntry[] {
    const acme = new Map(this.acmeStatus().map((s) => [s.host, s]));
    const out: CertListEntry[] = [];
    for (const host of this.certs.hosts()) {
      const info = this.certs.info(host);
      if (!info) continue;
      const managed = acme.get(host);
      const configured = certificatePaths(this.config, host).configured;
      const source = configured ? 'file' : info.selfSigned ? 'self-signed' : managed && managed.state !== 'skipped' ? 'acme' : 'file';
      const dns = (info.subjectAltName ?? '').split(/,\s*/).filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4));
      const field = (dn: string, key: string) => dn.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
      out.push({
        host,
        names: dns.length ? dns : [field(info.subject, 'CN') ?? info.subject],
        issuer: field(info.issuer, 'CN') ?? field(info.issuer, 'O') ?? info.issuer.replace(/\n/g, ', '),
        notAfter: info.notAfter,
        source,
        certFile: info.certFile,
        acme: managed && managed.state !== 'skipped' ? { state: managed.state, nextAt: managed.nextAt, lastError: managed.lastError } : undefined,
      });
    }
    return out;
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
    if (!opts.offline) await this.applyAcme();
    this.started_ = true;
    this.events.emit('server-started', {});
    return [
      ...this.ports.all().flatMap((l) => l.addresses.map((a) => `${l.name}=${a}`)),
      ...this.http.addresses().map((a) => `${a.secure ? 'https' : 'http'}=${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`),
    ];
  }

  /** The hosts ACME manages under `config` and the settings it runs with; undefined when `acme` is off. */
  private acmeSettings(config: Config): { cfg: AcmeConfig; hosts: string[] } | undefined {
    const cfg = config.get<AcmeConfig | false>(undefined, 'acme');
    if (!cfg) return undefined;
    return { cfg, hosts: config.hosts.filter((h) => config.get(h.name, 'acme') !== false).map((h) => h.name) };
  }

  /** The running ACME manager's status per host (empty when ACME is off). */
  acmeStatus(): AcmeHostStatus[] {
    return this.acme?.hosts() ?? [];
  }

  /**
   * ACME (RFC 8555) when the config has `acme`: each host whose `tls` option is not set and whose
   * `acme` is not false gets its certificate from the CA and renewed before expiry, proven with
   * TLS-ALPN-01 on the direct-TLS listeners or HTTP-01 on the plain HTTP listeners
   * (doc/certificates.md). Run at start and by every config reload: when the `acme` section or
   * the hosts it covers changed, the manager is stopped (no more renewals for hosts left out) and
   * a new one started (hosts now covered get their certificate). Returns the reload summary line,
   * or undefined when nothing changed.
   */
  private async applyAcme(): Promise<string | undefined> {
    const settings = this.acmeSettings(this.config);
    const setup = settings ? JSON.stringify(settings) : '';
    if (setup === this.acmeSetup) return undefined;
    const previous = this.acmeSetup ? (JSON.parse(this.acmeSetup) as { hosts: string[] }).hosts : [];
    this.acmeSetup = setup;
    const wasRunning = this.acme !== undefined;
    // An order under way finishes (its files and reload included); the next manager starts after it.
    const previousIdle = this.acme?.stop() ?? Promise.resolve();
    this.acme = undefined;
    if (settings?.cfg.challenge !== 'http-01') {
      this.acmeHttp01?.remove();
      this.acmeHttp01 = undefined;
    }
    const dropped = previous.filter((h) => !settings?.hosts.includes(h));
    if (dropped.length) log.info('acme: no longer renewing the certificates of %s', dropped.join(', '));
    if (!settings) return wasRunning ? 'acme stopped: certificates are no longer renewed' : undefined;
    const { cfg, hosts } = settings;
    const challenge = cfg.challenge ?? 'tls-alpn-01';
    if (challenge === 'tls-alpn-01' && !this.ports.all().some((l) => l.name === 'c2s_direct_tls')) {
      log.error('acme: TLS-ALPN-01 needs a direct-TLS port (c2sDirectTlsPorts, reachable on 443): no certificates are ordered');
      return 'acme not started: TLS-ALPN-01 needs a direct-TLS port';
    }
    if (challenge === 'http-01' && !this.config.global('httpPorts').length) {
      log.error('acme: HTTP-01 needs a plain HTTP port (httpPorts, reachable on 80): no certificates are ordered');
      return 'acme not started: HTTP-01 needs a plain HTTP port';
    }
    const acmeModule = await import('./net/acme.ts');
    const { AcmeManager, TlsAlpn01Responder } = acmeModule;
    const acmeClient = await import('acme-client');
    const directory = cfg.directory ?? 'letsencrypt';
    const directoryUrl = directory === 'letsencrypt' ? acmeClient.directory.letsencrypt.production
      : directory === 'letsencrypt-staging' ? acmeClient.directory.letsencrypt.staging : directory;
    const directoryCa = cfg.directoryCa ? readFileSync(path.resolve(this.config.baseDir, cfg.directoryCa), 'utf8') : undefined;
    const responders: AcmeOptions['responders'] = {};
    if (challenge === 'http-01') {
      // Answered for the names being validated on every plain HTTP listener, whether or not a
      // module serves anything over HTTP: the listeners start here when nothing else wanted them.
      // One responder for the server's life: a restarted manager's order and one finishing share it.
      if (!this.acmeHttp01) {
        const responder = new acmeModule.Http01Responder();
        this.acmeHttp01 = { responder, remove: responder.route(this.http) };
      }
      responders['http-01'] = this.acmeHttp01.responder;
      if (!this.http.listening) await this.http.listen();
    } else {
      responders['tls-alpn-01'] = new TlsAlpn01Responder(this.certs);
    }
    const acme = new AcmeManager({
      directoryUrl,
      directoryCa,
      email: cfg.email,
      dataDir: this.config.dataDir,
      challenge,
      renewBeforeDays: cfg.renewBeforeDays,
      responders,
      certificatePaths: (h) => certificatePaths(this.config, h),
      reload: (h) => this.certs.reload(h),
    });
    this.acme = acme;
    log.info('acme: managing the certificates of %s through %s (%s)', hosts.join(', '), directoryUrl, challenge);
    void previousIdle.then(() => {
      if (this.acme === acme) acme.start(hosts);
    });
    return wasRunning ? `acme restarted: managing ${hosts.join(', ') || 'no host'} (${challenge})` : `acme started: managing ${hosts.join(', ') || 'no host'} (${challenge})`;
  }

  /** Close every stream cleanly, unload modules in reverse order, close storage. */
  stop(reason = 'Server is shutting down'): Promise<void> {
    this.stopping ??= (async () => {
      log.info('shutting down: %s', reason);
      void this.acme?.stop();
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
