// Configuration: `prosody-like.cfg.ts` default-exports a plain object (defineConfig only types it).
// Global options, per-host overrides under `virtualHosts`, components, and per-module options
// under the module's name. Unknown fields are rejected so typos never pass silently.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CoreError } from './util/errors.ts';
import { prep as prepJid } from './util/jid.ts';
import { importDefault } from './loader.ts';
import { availableModules, BUILTIN_MODULE_DIR } from './module-files.ts';
import type { AuthThrottleOptions } from './sasl.ts';
import { checkLimits, type Limits } from './limits.ts';
import type { ChannelBindingPolicy } from './util/scram.ts';

export type StorageDriverName = 'sqlite' | 'memory';
export type ResourceConflictPolicy = 'kick_old' | 'kick_new' | 'random';

/** Core options that may be set globally and overridden per virtual host. */
export interface CoreHostOptions {
  modulesEnabled?: string[];
  modulesDisabled?: string[];
  admins?: string[];
  tls?: { certificate?: string; key?: string };
  c2sRequireEncryption?: boolean;
  allowUnencryptedPlainAuth?: boolean;
  /** Which SCRAM channel-binding flags are accepted (doc/authentication.md). */
  channelBindingPolicy?: ChannelBindingPolicy;
  /** Brute-force throttling of authentication; `false` turns it off. */
  authThrottle?: false | Partial<AuthThrottleOptions>;
  /** Connection and session limits (core/limits.ts); each field falls back to the global value, then the default. */
  limits?: Partial<Limits>;
  /** ACME (RFC 8555) certificates: globally the account and CA; `false` on a host keeps it out. */
  acme?: AcmeConfig | false;
  // ---- s2s policy per host (mod_s2s applies the local end's: incoming `to`, outgoing `from`) ----
  s2sRequireEncryption?: boolean;
  s2sSecureAuth?: boolean;
  s2sSecureDomains?: string[];
  s2sInsecureDomains?: string[];
  s2sBlocklist?: string[];
  s2sAllowlist?: string[];
}

/** The `acme` option (doc/certificates.md). */
export interface AcmeConfig {
  /** Contact for the account (expiry mail). */
  email?: string;
  /** 'letsencrypt', 'letsencrypt-staging' or a directory URL. */
  directory?: string;
  /** How control of the name is proven: TLS-ALPN-01 on the direct-TLS port (default), or HTTP-01 on the plain HTTP port. */
  challenge?: 'tls-alpn-01' | 'http-01';
  /** Renew this many days before expiry (default: at 2/3 of the lifetime). */
  renewBeforeDays?: number;
  /** A PEM file with an extra CA to trust for the directory's HTTPS (a private CA). */
  directoryCa?: string;
}

/** Options that may be set globally and overridden per virtual host, module options included. */
export interface HostOptions extends CoreHostOptions {
  /** Module options: `{ ping: {...}, roster: {...} }` — checked against each module's declared options. */
  [moduleName: string]: unknown;
}

export interface VirtualHostConfig extends HostOptions {
  enabled?: boolean;
}

export interface ComponentConfig extends HostOptions {
  /** Internal component run by a module (e.g. 'muc'). */
  module?: string;
  /** Shared secret of an external XEP-0114 component. */
  secret?: string;
}

/** Every core (non-module) option; `module.config(key)` reads them. */
export interface CoreOptions extends CoreHostOptions {
  dataDir?: string;
  storage?: StorageDriverName;
  c2sPorts?: number[];
  c2sDirectTlsPorts?: number[];
  componentPorts?: number[];
  httpPorts?: number[];
  interfaces?: string[];
  // ---- HTTP (core/net/http.ts, doc/web.md) ----
  /** HTTPS ports (the hosts' certificates via SNI); [] for none. */
  httpsPorts?: number[];
  /** Addresses the HTTP(S) listeners bind (default: `interfaces`). */
  httpInterfaces?: string[];
  /** Reverse proxies (addresses, CIDR blocks) whose X-Forwarded-For/-Proto/-Host are believed. */
  trustedProxies?: string[];
  /** The base URL clients see when behind a proxy (`https://chat.example.org/`). */
  httpExternalUrl?: string;
  /** Largest request body, in bytes, of routes that set none. */
  httpMaxBodySize?: number;
  pluginPaths?: string[];
  virtualHosts?: Record<string, VirtualHostConfig>;
  components?: Record<string, ComponentConfig>;
  /** `level` ('debug' turns on every cadence:* debug namespace); `file`: append there, reopened on SIGHUP. */
  log?: { level?: 'debug' | 'info' | 'warn' | 'error'; file?: string };
  /** What to do when a client binds a resource that is already connected. */
  resourceConflict?: ResourceConflictPolicy;
  /** Admin shell UNIX socket path (default: <dataDir>/cadence.sock). */
  adminSocket?: string;
  /** Seconds each module gets to unload at shutdown. */
  shutdownTimeout?: number;
  // ---- server-to-server (mod_s2s, doc/federation.md) ----
  s2sPorts?: number[];
  s2sDirectTlsPorts?: number[];
  /** Listen and source addresses for s2s (default: `interfaces`). */
  s2sInterfaces?: string[];
  s2sRequireEncryption?: boolean;
  /** Peers must authenticate with a certificate (no dialback). */
  s2sSecureAuth?: boolean;
  /** PEM file of CA certificates trusted for s2s besides the system store. */
  s2sCaFile?: string;
  /** Static routes: domain → 'host[:port]' | { host, port, directTls } | a list of those. */
  s2sRoutes?: Record<string, unknown>;
  /** Remote domains refused; when s2sAllowlist is set, the only ones accepted. */
  s2sBlocklist?: string[];
  s2sAllowlist?: string[];
  /** Stanzas waiting per outgoing route at most. */
  s2sQueueLimit?: number;
  s2sConnectTimeout?: number;
  s2sIdleTimeout?: number;
  /** Resolver addresses ('127.0.0.1', '127.0.0.1:5353', '[::1]:53'); [] for no DNS; unset: the system's. */
  dnsServers?: string[];
  /** The XEP-0185 dialback secret (random per process when unset). */
  dialbackSecret?: string;
  /** Use DNSSEC-validated TLSA records for outgoing s2s streams (RFC 7673). */
  dane?: boolean;
  /** Bidirectional s2s streams (XEP-0288): offered on incoming streams, asked for on outgoing ones. */
  s2sBidi?: boolean;
  /** Seconds stanzas wait for an outgoing stream (connection attempts repeat until then) before they bounce. */
  s2sQueueTimeout?: number;
  /** Remote domains that must authenticate with a certificate although s2sSecureAuth is off. */
  s2sSecureDomains?: string[];
  /** Remote domains allowed dialback although s2sSecureAuth is on. */
  s2sInsecureDomains?: string[];
  /** Seconds after an outgoing route failed during which stanzas to that domain bounce at once (0: off). */
  s2sFailureMemory?: number;
}

/** The configuration file's object: core options, virtual hosts, components and module options. */
export interface CadenceConfig extends CoreOptions, HostOptions {}

export function defineConfig<T extends CadenceConfig>(config: T): T {
  return config;
}

/** Core option names and their runtime checks; everything else must be a module name. */
type Check = (v: unknown) => string | undefined;
const isStrArr: Check = (v) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : 'must be an array of strings');
const isPortArr: Check = (v) =>
  Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 65535) ? undefined : 'must be an array of port numbers (0–65535)';
const isBool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const isStr: Check = (v) => (typeof v === 'string' && v !== '' ? undefined : 'must be a non-empty string');
const isPosInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 ? undefined : 'must be a positive integer');
const isNonNegInt: Check = (v) => (Number.isInteger(v) && (v as number) >= 0 ? undefined : 'must be an integer ≥ 0');
const oneOf = (...allowed: string[]): Check => (v) =>
  typeof v === 'string' && allowed.includes(v) ? undefined : `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
const isTls: Check = (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be { certificate, key }';
  for (const [k, x] of Object.entries(v)) {
    if (k !== 'certificate' && k !== 'key') return `has unknown field '${k}' (expected certificate, key)`;
    if (typeof x !== 'string') return `.${k} must be a file path`;
  }
  const o = v as { certificate?: string; key?: string };
  if (!!o.certificate !== !!o.key) return 'needs both certificate and key';
  return undefined;
};

const THROTTLE_FIELDS: Record<keyof AuthThrottleOptions, Check> = {
  addressDelayAfter: isPosInt,
  addressLockAfter: isNonNegInt,
  accountDelayAfter: isPosInt,
  accountLockAfter: isNonNegInt,
  delay: (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : 'must be a number of seconds ≥ 0'),
  lockout: isPosInt,
  window: isPosInt,
};
const isThrottle: Check = (v) => {
  if (v === false) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `must be false or { ${Object.keys(THROTTLE_FIELDS).join(', ')} }`;
  for (const [k, x] of Object.entries(v)) {
    const check = THROTTLE_FIELDS[k as keyof AuthThrottleOptions];
    if (!check) return `has unknown field '${k}' (expected ${Object.keys(THROTTLE_FIELDS).join(', ')})`;
    const e = check(x);
    if (e) return `.${k} ${e}`;
  }
  return undefined;
};

const ACME_FIELDS: Record<keyof AcmeConfig, Check> = {
  email: isStr,
  directory: isStr,
  challenge: (v) => (v === 'tls-alpn-01' || v === 'http-01' ? undefined : "must be 'tls-alpn-01' or 'http-01'"),
  renewBeforeDays: isPosInt,
  directoryCa: isStr,
};
function checkAcme(v: unknown): string | undefined {
  if (v === false) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `must be false or { ${Object.keys(ACME_FIELDS).join(', ')} }`;
  for (const [k, x] of Object.entries(v)) {
    const check = ACME_FIELDS[k as keyof AcmeConfig];
    if (!check) return `has unknown field '${k}' (expected ${Object.keys(ACME_FIELDS).join(', ')})`;
    const e = check(x);
    if (e) return `.${k} ${e}`;
  }
  return undefined;
}

const hostChecks: Record<string, Check> = {
  modulesEnabled: isStrArr,
  modulesDisabled: isStrArr,
  admins: isStrArr,
  tls: isTls,
  c2sRequireEncryption: isBool,
  allowUnencryptedPlainAuth: isBool,
  channelBindingPolicy: oneOf('compatible', 'strict'),
  authThrottle: isThrottle,
  limits: checkLimits,
  acme: checkAcme,
  s2sRequireEncryption: isBool,
  s2sSecureAuth: isBool,
  s2sSecureDomains: isStrArr,
  s2sInsecureDomains: isStrArr,
  s2sBlocklist: isStrArr,
  s2sAllowlist: isStrArr,
};

const globalChecks: Record<string, Check> = {
  ...hostChecks,
  dataDir: isStr,
  storage: oneOf('sqlite', 'memory'),
  c2sPorts: isPortArr,
  c2sDirectTlsPorts: isPortArr,
  componentPorts: isPortArr,
  httpPorts: isPortArr,
  interfaces: isStrArr,
  httpsPorts: isPortArr,
  httpInterfaces: isStrArr,
  trustedProxies: isStrArr,
  httpExternalUrl: (v) => (typeof v === 'string' && /^https?:\/\/[^/]+/.test(v) ? undefined : 'must be an http:// or https:// URL'),
  httpMaxBodySize: isPosInt,
  pluginPaths: isStrArr,
  virtualHosts: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? undefined : 'must be an object { host: { …options } }'),
  components: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? undefined : 'must be an object { host: { module | secret } }'),
  log: (v) => {
    if (typeof v !== 'object' || v === null) return 'must be { level, file }';
    for (const [k, x] of Object.entries(v)) {
      if (k !== 'level' && k !== 'file') return `has unknown field '${k}' (expected level, file)`;
      const e = k === 'level' ? oneOf('debug', 'info', 'warn', 'error')(x) : isStr(x);
      if (e) return `.${k} ${e}`;
    }
    return undefined;
  },
  resourceConflict: oneOf('kick_old', 'kick_new', 'random'),
  adminSocket: isStr,
  shutdownTimeout: isPosInt,
  s2sPorts: isPortArr,
  s2sDirectTlsPorts: isPortArr,
  s2sInterfaces: isStrArr,
  s2sRequireEncryption: isBool,
  s2sSecureAuth: isBool,
  s2sCaFile: isStr,
  s2sRoutes: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? undefined : "must be an object { 'domain': 'host:port' }"),
  s2sBlocklist: isStrArr,
  s2sAllowlist: isStrArr,
  s2sQueueLimit: isPosInt,
  s2sConnectTimeout: isPosInt,
  s2sIdleTimeout: isPosInt,
  s2sBidi: isBool,
  s2sQueueTimeout: isPosInt,
  s2sSecureDomains: isStrArr,
  s2sInsecureDomains: isStrArr,
  s2sFailureMemory: isNonNegInt,
  dnsServers: isStrArr,
  dialbackSecret: isStr,
  dane: isBool,
};

export const CORE_OPTION_NAMES: ReadonlySet<string> = new Set(Object.keys(globalChecks));

/** Options that became module options: refused where they used to be, with their new place. */
const MOVED_OPTIONS: Readonly<Record<string, string>> = {
  c2sStanzaSizeLimit: 'c2s: { stanzaSizeLimit }',
  c2sPreauthStanzaSizeLimit: 'c2s: { preauthStanzaSizeLimit }',
  c2sMaxDepth: 'c2s: { maxDepth }',
  c2sUnauthenticatedTimeout: 'c2s: { unauthenticatedTimeout }',
  c2sKeepaliveInterval: 'c2s: { keepaliveInterval }',
};

export const DEFAULTS = {
  dataDir: './data',
  storage: 'sqlite' as StorageDriverName,
  c2sPorts: [5222],
  c2sDirectTlsPorts: [5223],
  componentPorts: [5347],
  httpPorts: [5280],
  httpsPorts: [5281],
  trustedProxies: ['127.0.0.1', '::1'],
  httpMaxBodySize: 1024 * 1024,
  c2sRequireEncryption: true,
  allowUnencryptedPlainAuth: false,
  channelBindingPolicy: 'compatible' as ChannelBindingPolicy,
  /** A client trying its mechanisms in turn fails at most 4 times: never delayed (doc/authentication.md). */
  authThrottle: {
    addressDelayAfter: 5,
    addressLockAfter: 8,
    accountDelayAfter: 10,
    accountLockAfter: 20,
    delay: 1,
    lockout: 900,
    window: 3600,
  } satisfies AuthThrottleOptions as AuthThrottleOptions,
  resourceConflict: 'kick_old' as ResourceConflictPolicy,
  shutdownTimeout: 5,
  s2sPorts: [5269],
  s2sDirectTlsPorts: [] as number[],
  s2sRequireEncryption: true,
  s2sSecureAuth: false,
  s2sQueueLimit: 500,
  s2sConnectTimeout: 30,
  s2sIdleTimeout: 300,
  s2sBidi: true,
  s2sQueueTimeout: 60,
  s2sFailureMemory: 30,
  dane: true,
  /** Always loaded unless listed in modulesDisabled (like Prosody's autoload). */
  autoloadModules: ['c2s', 'iq', 'presence', 'message'],
  /** Used when the config has no modulesEnabled at all. */
  modulesEnabled: ['tls', 'saslauth', 'sasl2', 'bind', 'bind2', 'fast', 'roster', 'disco', 'ping', 'offline', 'vcard', 'private', 'version', 'time', 'lastactivity', 'caps', 'server_contact_info', 'blocking', 'register', 'admin_shell', 'smacks', 'csi', 'carbons', 'mam', 'pep', 'adhoc', 'admin_adhoc', 'websocket', 'host_meta', 'bosh'],
  /**
   * Used when the config has no `components` at all: a Multi-User Chat service (mod_muc) and an
   * HTTP File Upload service (mod_http_file_share, issue 11) for `localhost`, served when
   * `localhost` is a virtual host. `components: {}` turns them off.
   */
  components: { 'conference.localhost': { module: 'muc' }, 'upload.localhost': { module: 'http_file_share' } } as Record<string, ComponentConfig>,
};

export interface HostEntry {
  name: string;
  kind: 'virtualhost' | 'component';
  options: VirtualHostConfig | ComponentConfig;
}

/** The validated, loaded configuration, with host → global option lookup. */
export class Config {
  readonly hosts: HostEntry[];
  readonly dataDir: string;

  constructor(readonly raw: CadenceConfig, readonly file: string | undefined) {
    const base = file ? path.dirname(file) : process.cwd();
    this.dataDir = path.resolve(base, raw.dataDir ?? DEFAULTS.dataDir);
    const hosts: HostEntry[] = [];
    for (const [name, options] of Object.entries(raw.virtualHosts ?? {})) {
      if (options.enabled === false) continue;
      hosts.push({ name, kind: 'virtualhost', options });
    }
    for (const [name, options] of Object.entries(raw.components ?? defaultComponents(hosts))) {
      hosts.push({ name, kind: 'component', options });
    }
    this.hosts = hosts;
  }

  get baseDir(): string {
    return this.file ? path.dirname(this.file) : process.cwd();
  }

  /** Option lookup: the host's value if it sets one, else the global value. */
  get<T = unknown>(host: string | undefined, key: string): T | undefined {
    if (host && host !== '*') {
      const entry = this.hosts.find((h) => h.name === host);
      if (entry && key in entry.options) return entry.options[key] as T;
    }
    return this.raw[key] as T | undefined;
  }

  global<K extends keyof typeof DEFAULTS>(key: K): (typeof DEFAULTS)[K] {
    return (this.raw[key] as (typeof DEFAULTS)[K] | undefined) ?? DEFAULTS[key];
  }

  pluginPaths(): string[] {
    const paths = Array.isArray(this.raw.pluginPaths) ? this.raw.pluginPaths : [];
    return paths.filter((p) => typeof p === 'string').map((p) => path.resolve(this.baseDir, p));
  }

  hostEntry(host: string): HostEntry | undefined {
    return this.hosts.find((h) => h.name === host);
  }
}

/** The embedded default components whose parent domain is one of `hosts` (virtual hosts). */
function defaultComponents(hosts: readonly HostEntry[]): Record<string, ComponentConfig> {
  const names = new Set(hosts.map((h) => h.name));
  return Object.fromEntries(Object.entries(DEFAULTS.components).filter(([name]) => names.has(name.slice(name.indexOf('.') + 1))));
}

/**
 * Validate a raw config object. `isModuleName` tells whether a key names an available module
 * (its options then sit under that key). Throws CoreError CONFIG_INVALID naming the field.
 */
export function validateConfig(raw: unknown, isModuleName: (name: string) => boolean): CadenceConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CoreError('CONFIG_INVALID', 'config: the default export must be an object (use defineConfig({...}))');
  }
  const cfg = raw as Record<string, unknown>;
  checkFields('', cfg, globalChecks, isModuleName);
  const vhosts = (cfg.virtualHosts ?? {}) as Record<string, unknown>;
  for (const [host, opts] of Object.entries(vhosts)) {
    checkHostName(`virtualHosts['${host}']`, host);
    if (typeof opts !== 'object' || opts === null) throw invalid(`virtualHosts['${host}']`, 'must be an object');
    checkFields(`virtualHosts['${host}'].`, opts as Record<string, unknown>, { ...hostChecks, enabled: isBool }, isModuleName);
  }
  const comps = (cfg.components ?? {}) as Record<string, unknown>;
  for (const [host, opts] of Object.entries(comps)) {
    checkHostName(`components['${host}']`, host);
    if (host in vhosts) throw invalid(`components['${host}']`, 'is also a virtual host');
    if (typeof opts !== 'object' || opts === null) throw invalid(`components['${host}']`, 'must be an object');
    const o = opts as Record<string, unknown>;
    checkFields(`components['${host}'].`, o, { ...hostChecks, module: isStr, secret: isStr }, isModuleName);
    if (!o.module && !o.secret) throw invalid(`components['${host}']`, "needs either module (internal) or secret (external XEP-0114)");
    if (o.module && !isModuleName(o.module as string)) throw invalid(`components['${host}'].module`, `names no known module '${String(o.module)}'`);
  }
  if (Object.keys(vhosts).length === 0 && Object.keys(comps).length === 0) {
    throw invalid('virtualHosts', 'must define at least one host');
  }
  return cfg as CadenceConfig;
}

function checkHostName(field: string, host: string): void {
  const p = prepJid(host);
  if (!p || p.includes('@') || p.includes('/') || p !== host) throw invalid(field, 'is not a valid, normalised domain name');
}

function checkFields(prefix: string, obj: Record<string, unknown>, checks: Record<string, Check>, isModuleName: (n: string) => boolean): void {
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    const check = checks[key];
    if (check) {
      const err = check(value);
      if (err) throw invalid(prefix + key, err);
    } else if (MOVED_OPTIONS[key] !== undefined) {
      throw invalid(prefix + key, `is now an option of its module: set ${MOVED_OPTIONS[key]} (doc/configuration.md)`);
    } else if (isModuleName(key)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw invalid(prefix + key, `holds options of module '${key}' and must be an object`);
      }
    } else {
      throw invalid(prefix + key, 'is not a known option (and no module of that name exists)');
    }
  }
}

function invalid(field: string, message: string): CoreError {
  return new CoreError('CONFIG_INVALID', `config: '${field}' ${message}`);
}

/** Import a config file (.ts or .js) and return its default export. */
export async function importConfigFile(file: string): Promise<unknown> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new CoreError('CONFIG_NOT_FOUND', `config file not found: ${abs}`);
  let value: unknown;
  try {
    value = await importDefault(abs);
  } catch (err) {
    throw new CoreError('CONFIG_INVALID', `config: cannot load ${abs}: ${(err as Error).message}`);
  }
  if (value === undefined) throw new CoreError('CONFIG_INVALID', `config: ${abs} has no default export`);
  return value;
}

/** Load and validate a config file; module names are checked against the module search paths. */
export async function loadConfig(file: string): Promise<Config> {
  const raw = await importConfigFile(file);
  const probe = new Config({ ...(raw as CadenceConfig), virtualHosts: {}, components: {} }, path.resolve(file));
  const available = new Set(availableModules([...probe.pluginPaths(), BUILTIN_MODULE_DIR]));
  const cfg = validateConfig(raw, (name) => available.has(name) && !CORE_OPTION_NAMES.has(name));
  return new Config(cfg, path.resolve(file));
}
