// Administration operations over the running server, for admin modules (mod_admin_shell) and
// signal handlers: module load/unload/reload, exported methods, sessions, users, server facts.
import type { Limits } from './limits.ts';
import type { Session } from './session.ts';
import { typescriptFiles } from './loader.ts';
import { CODE_DIR, COMPILED } from './package.ts';

export interface ModuleInfo {
  name: string;
  host: string;
  file: string;
  loadedAt: number;
  exports: string[];
}

export interface SessionInfo {
  id: string;
  type: string;
  jid: string;
  ip: string;
  tls: string;
  ageSeconds: number;
  available: boolean;
  /** Waiting for stream resumption (XEP-0198). */
  hibernating: boolean;
  /** Client State Indication (XEP-0352). */
  clientState: 'active' | 'inactive';
  /** Inbound bytes per second the connection is shaped to (0: unshaped), and whether it is held now. */
  rate: number;
  shaped: boolean;
  /** Times reading was paused by the rate limit. */
  throttled: number;
  /** Stanzas waiting for the client to read, and the host's bound on them (0: unbounded). */
  queued: number;
  sendQueue: number;
}

/** What a host presents to new TLS connections (`shell cert list`). */
export interface CertListEntry {
  host: string;
  /** The names the certificate is for: its dNSName subjectAltNames, else its subject CN. */
  names: string[];
  /** The issuer's common name (or organisation, or the whole issuer). */
  issuer: string;
  notAfter: Date;
  /** file: named by `tls` or put in <dataDir>/certs/ (cert import); acme: obtained and renewed by ACME; self-signed. */
  source: 'file' | 'acme' | 'self-signed';
  certFile: string;
  /** For hosts ACME manages: its state and when it orders next. */
  acme?: { state: string; nextAt?: Date; lastError?: string };
}

export interface ExportInfo {
  module: string;
  host: string;
  method: string;
  description: string;
}

/** A loaded module as the administration sees it (core/modulemanager.ts's LoadedModule). */
interface LoadedModuleView {
  name: string;
  host: string;
  file: string;
  loadedAt: number;
  api: { readonly exports: ReadonlyMap<string, { description: string }> };
}

/** What the administration operations need of the server (core/server.ts wires it). */
export interface AdminContext {
  readonly version: string;
  readonly started: number;
  modules: {
    list(host?: string): LoadedModuleView[];
    get(host: string, name: string): LoadedModuleView | undefined;
    load(host: string, name: string, opts: { ready: boolean }): Promise<LoadedModuleView>;
    unload(host: string, name: string): Promise<void>;
    reload(host: string, name: string): Promise<unknown>;
    call(host: string, module: string, method: string, args: unknown[]): Promise<unknown>;
  };
  sessions: { readonly all: ReadonlySet<Session> };
  users: {
    create(host: string, username: string, password: string): Promise<void>;
    delete(host: string, username: string): Promise<void>;
    setPassword(host: string, username: string, password: string): Promise<void>;
  };
  /** Active hosts (virtual hosts and components). */
  hostNames(): string[];
  /** Re-read the certificates; one line per host. */
  reloadCertificates(): Promise<string[]>;
  /** What each host presents now. */
  certificates(): CertListEntry[];
  /** The limits in force for a host (core/limits.ts). */
  limits(host: string | undefined): Limits;
  /** Configured virtual hosts. */
  virtualHostNames(): string[];
  reloadConfig(): Promise<string[]>;
}

function info(m: LoadedModuleView): ModuleInfo {
  return { name: m.name, host: m.host, file: m.file, loadedAt: m.loadedAt, exports: [...m.api.exports.keys()] };
}

export class AdminApi {
  constructor(private readonly server: AdminContext) {}

  /** Virtual hosts and components currently active. */
  hosts(): string[] {
    return this.server.hostNames();
  }

  listModules(host?: string): ModuleInfo[] {
    return this.server.modules.list(host).map(info);
  }

  /** Load on one host, or on every host when none is given (a global module loads once). */
  async loadModule(name: string, host?: string): Promise<ModuleInfo[]> {
    const hosts = host ? [host] : this.server.virtualHostNames();
    const out: ModuleInfo[] = [];
    for (const h of hosts) {
      if (this.server.modules.get(h, name)?.host === '*') break;
      out.push(info(await this.server.modules.load(h, name, { ready: true })));
    }
    return out;
  }

  async unloadModule(name: string, host?: string): Promise<string[]> {
    const targets = this.server.modules.list(host).filter((m) => m.name === name);
    if (!targets.length) throw new Error(`module '${name}' is not loaded${host ? ` on ${host}` : ''}`);
    for (const m of targets) await this.server.modules.unload(m.host, name);
    return targets.map((m) => m.host);
  }

  async reloadModule(name: string, host?: string): Promise<string[]> {
    const targets = this.server.modules.list(host).filter((m) => m.name === name);
    if (!targets.length) throw new Error(`module '${name}' is not loaded${host ? ` on ${host}` : ''}`);
    for (const m of targets) await this.server.modules.reload(m.host, name);
    return targets.map((m) => m.host);
  }

  listExports(host?: string): ExportInfo[] {
    const out: ExportInfo[] = [];
    for (const m of this.server.modules.list(host)) {
      for (const [method, e] of m.api.exports) out.push({ module: m.name, host: m.host, method, description: e.description });
    }
    return out;
  }

  callExport(host: string, module: string, method: string, args: unknown[]): Promise<unknown> {
    return this.server.modules.call(host, module, method, args);
  }

  listSessions(): SessionInfo[] {
    const now = Date.now();
    return [...this.server.sessions.all].map((s) => ({
      id: s.id,
      type: s.type,
      jid: s.full_jid ?? (s.username ? `${s.username}@${s.host}` : s.host ?? ''),
      ip: s.conn?.ip ?? '',
      tls: s.conn?.tlsInfo?.protocol ?? 'none',
      ageSeconds: Math.round((now - s.created) / 1000),
      available: s.presence !== undefined,
      hibernating: s.hibernating,
      clientState: s.clientState,
      rate: s.conn?.readRate ?? 0,
      shaped: s.conn?.shaped ?? false,
      throttled: s.conn?.throttled ?? 0,
      queued: s.queued,
      sendQueue: this.server.limits(s.host).sendQueue,
    }));
  }

  createUser(host: string, username: string, password: string): Promise<void> {
    return this.server.users.create(host, username, password);
  }

  deleteUser(host: string, username: string): Promise<void> {
    return this.server.users.delete(host, username);
  }

  setPassword(host: string, username: string, password: string): Promise<void> {
    return this.server.users.setPassword(host, username, password);
  }

  serverInfo(): { version: string; uptimeSeconds: number; rssBytes: number; heapUsedBytes: number; sessions: number; node: string; nodeFlags: string[]; codeDir: string; compiled: boolean; typescriptFiles: readonly string[] } {
    const mem = process.memoryUsage();
    return {
      version: this.server.version,
      uptimeSeconds: Math.round((Date.now() - this.server.started) / 1000),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      sessions: this.server.sessions.all.size,
      node: process.version,
      nodeFlags: process.execArgv,
      // Where the running core is (dist/ for the build) and the operator's .ts files compiled by tsx.
      codeDir: CODE_DIR,
      compiled: COMPILED,
      typescriptFiles: typescriptFiles(),
    };
  }

  reloadConfig(): Promise<string[]> {
    return this.server.reloadConfig();
  }

  reloadCertificates(): Promise<string[]> {
    return this.server.reloadCertificates();
  }

  listCertificates(): CertListEntry[] {
    return this.server.certificates();
  }
}
