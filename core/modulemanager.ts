// Finds, filters, loads, unloads and reloads modules.
// Search order: the config's pluginPaths (user modules first), then the built-in modules/.
// Candidates per path: mod_<name>.ts, mod_<name>.js, mod_<name>/index.ts, mod_<name>/index.js.
// The `//%` header is read from the source *before* import; a module whose required core
// features are missing (or whose conflicting ones are present) is skipped with a warning naming
// the file and the features, and the search goes on in the next path.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { importDefault } from './loader.ts';
import { availableModules, BUILTIN_MODULE_DIR } from './module-files.ts';
import { CoreError } from './util/errors.ts';
import { coreFeatures } from './features.ts';
import { getLogger } from './util/log.ts';
import { checkCoreFeatures, describeFeatureCheck, parseModuleHeader, type ModuleHeader } from './module-header.ts';
import { checkOption, type AnyModuleApi, type AnyModuleDefinition, type OptionSpecs } from './moduleapi.ts';
import type { EventBus } from './util/events.ts';
import type { GlobalEvents } from './event-types.ts';

export { BUILTIN_MODULE_DIR, availableModules } from './module-files.ts';

/** Names the core uses for itself; no module may take them. */
export const RESERVED_MODULE_NAMES: ReadonlySet<string> = new Set([
  'core', 'config', 'global', 'server', 'host', 'hosts', 'sessions', 'session', 'router', 'storage',
  'users', 'modules', 'features', 'events', 'admin', 'cadence',
]);

const NAME_RE = /^[a-z][a-z0-9_]*$/;
const log = getLogger('core:modulemanager');

export interface ModuleCandidate {
  file: string;
  header: ModuleHeader;
}

export interface ResolveResult {
  /** The accepted file, if any. */
  found?: ModuleCandidate;
  /** Files that were found but refused by their header, with the reason. */
  filtered: { file: string; reason: string }[];
}

/** What the module manager needs of the server (core/server.ts wires it). */
export interface ModuleManagerContext {
  /** The server's bus (module-loaded, module-unloaded). */
  readonly events: EventBus<GlobalEvents>;
  /** Search paths of the configuration in force (pluginPaths), before the built-in modules/. */
  searchPaths(): string[];
  /** The options object configured for module `name`: global (host undefined) or the host's own. */
  moduleOptions(host: string | undefined, name: string): Record<string, unknown> | undefined;
  /** Seconds each module gets to unload. */
  shutdownTimeout(): number;
  /** Hold routing while a module is swapped; returns the release function. */
  holdRouting(): () => void;
  /** Make the `module` object of one module instance. */
  makeApi(name: string, host: string, file: string, header: ModuleHeader, definition: AnyModuleDefinition): AnyModuleApi;
}

export interface LoadedModule {
  name: string;
  host: string;
  api: AnyModuleApi;
  definition: AnyModuleDefinition;
  file: string;
  loadedAt: number;
}


export class ModuleManager {
  /** host ('*' for global) → name → loaded module, in load order. */
  private readonly loaded = new Map<string, Map<string, LoadedModule>>();
  /** name → scope learned from the definition, so host loads of global modules go to '*'. */
  private readonly scopes = new Map<string, 'host' | 'global'>();
  /** Offline server (CLI account commands): global modules (listeners, shells) are not loaded. */
  hostModulesOnly = false;

  constructor(private readonly ctx: ModuleManagerContext) {}

  paths(): string[] {
    return [...this.ctx.searchPaths(), BUILTIN_MODULE_DIR];
  }

  /** Find a module file for `name`, applying the header filter. */
  resolve(name: string): ResolveResult {
    const filtered: ResolveResult['filtered'] = [];
    for (const dir of this.paths()) {
      for (const rel of [`mod_${name}.ts`, `mod_${name}.js`, `mod_${name}/index.ts`, `mod_${name}/index.js`]) {
        const file = path.join(dir, rel);
        if (!existsSync(file)) continue;
        const header = parseModuleHeader(readFileSync(file, 'utf8'));
        const check = checkCoreFeatures(header, coreFeatures);
        if (!check.ok) {
          filtered.push({ file, reason: describeFeatureCheck(check) });
          break; // this path's copy is refused: try the next path
        }
        return { found: { file, header }, filtered };
      }
    }
    return { filtered };
  }

  /** Names of every module file on the search paths (for config validation and `check`). */
  available(): string[] {
    return availableModules(this.paths());
  }

  isLoaded(host: string, name: string): boolean {
    return this.get(host, name) !== undefined;
  }

  get(host: string, name: string): LoadedModule | undefined {
    return this.loaded.get(host)?.get(name) ?? this.loaded.get('*')?.get(name);
  }

  list(host?: string): LoadedModule[] {
    const out: LoadedModule[] = [];
    for (const [h, mods] of this.loaded) if (!host || h === host || h === '*') out.push(...mods.values());
    return out;
  }

  private async importDefinition(file: string): Promise<AnyModuleDefinition> {
    const def = (await importDefault(file)) as AnyModuleDefinition | undefined;
    if (!def || typeof def !== 'object' || typeof def.load !== 'function') {
      throw new CoreError('MODULE_INVALID', `${file} must export default defineModule({ load(module) { … } })`);
    }
    return def;
  }

  /** Validate the options configured for `name` on `host` against its declared options. */
  checkOptions(host: string, name: string, def: AnyModuleDefinition): string[] {
    const problems: string[] = [];
    const specs: OptionSpecs = def.options ?? {};
    for (const scope of host === '*' ? [undefined] : [undefined, host]) {
      const values = this.ctx.moduleOptions(scope, name);
      if (!values) continue;
      const where = scope ? `virtualHosts['${scope}'].${name}` : name;
      for (const [key, value] of Object.entries(values)) {
        const spec = specs[key];
        if (!spec) {
          problems.push(`module '${name}': unknown option '${key}' (in ${where})`);
          continue;
        }
        const err = checkOption(spec, value);
        if (err) problems.push(`module '${name}': option '${key}' ${err} (in ${where})`);
      }
    }
    return problems;
  }

  /**
   * Load `name` on `host`. Throws CoreError (MODULE_NOT_FOUND, MODULE_FILTERED,
   * MODULE_ALREADY_LOADED, MODULE_NAME_RESERVED, MODULE_OPTION_INVALID, MODULE_LOAD_FAILED).
   */
  async load(host: string, name: string, opts: { ready?: boolean; state?: unknown; imported?: { file: string; def: AnyModuleDefinition } } = {}): Promise<LoadedModule> {
    if (!NAME_RE.test(name)) throw new CoreError('MODULE_INVALID', `invalid module name '${name}'`);
    if (RESERVED_MODULE_NAMES.has(name)) throw new CoreError('MODULE_NAME_RESERVED', `'${name}' is a reserved name and cannot be a module`);
    if (host !== '*' && this.scopes.get(name) === 'global') return this.load('*', name, opts);
    const existing = this.loaded.get(host)?.get(name) ?? this.loaded.get('*')?.get(name);
    if (existing) throw new CoreError('MODULE_ALREADY_LOADED', `module '${name}' is already loaded on ${existing.host === '*' ? 'the server (global)' : existing.host}`);

    const { found, filtered } = this.resolve(name);
    for (const f of filtered) log.warn('module %s: skipping %s: %s', name, f.file, f.reason);
    if (!found) {
      if (filtered.length) {
        throw new CoreError('MODULE_FILTERED', `module '${name}' not loaded: ${filtered.map((f) => `${f.file} ${f.reason}`).join('; ')}`);
      }
      throw new CoreError('MODULE_NOT_FOUND', `module '${name}' not found in ${this.paths().join(', ')}`);
    }

    let def: AnyModuleDefinition;
    try {
      // A global module asked for on a host is imported once, then loaded on '*' (below).
      def = opts.imported?.file === found.file ? opts.imported.def : await this.importDefinition(found.file);
    } catch (err) {
      if (err instanceof CoreError) throw err;
      throw new CoreError('MODULE_LOAD_FAILED', `module '${name}' (${found.file}) failed to import: ${(err as Error).message}`);
    }
    const scope = def.scope ?? 'host';
    this.scopes.set(name, scope);
    if (scope === 'global' && this.hostModulesOnly) throw new CoreError('MODULE_SKIPPED', `global module '${name}' is not loaded offline`);
    if (scope === 'global' && host !== '*') return this.load('*', name, { ...opts, imported: { file: found.file, def } });

    const problems = this.checkOptions(host, name, def);
    if (problems.length) throw new CoreError('MODULE_OPTION_INVALID', problems.join('; '));
    for (const dep of def.depends ?? []) {
      if (this.get(host, dep)) continue;
      try {
        await this.load(host, dep, { ready: opts.ready });
      } catch (err) {
        throw new CoreError('MODULE_DEPENDENCY', `module '${name}' depends on '${dep}', which cannot be loaded: ${(err as Error).message}`);
      }
    }

    const api = this.ctx.makeApi(name, host, found.file, found.header, def);
    const entry: LoadedModule = { name, host, api, definition: def, file: found.file, loadedAt: Date.now() };
    try {
      await def.load(api);
      if (opts.state !== undefined && def.restore) await def.restore(api, opts.state);
    } catch (err) {
      // unload is always called so a half-made module releases what it made.
      await this.runUnload(entry);
      throw new CoreError('MODULE_LOAD_FAILED', `module '${name}' failed to load on ${host === '*' ? 'the server' : host}: ${(err as Error).message}`);
    }
    let mods = this.loaded.get(host);
    if (!mods) this.loaded.set(host, (mods = new Map()));
    mods.set(name, entry);
    log('loaded %s on %s from %s', name, host, found.file);
    this.ctx.events.emit('module-loaded', { module: name, host });
    if (opts.ready) await this.ready(entry);
    return entry;
  }

  async ready(entry: LoadedModule): Promise<void> {
    try {
      await entry.definition.ready?.(entry.api);
    } catch (err) {
      log.error('module %s on %s failed in ready(): %s', entry.name, entry.host, err);
    }
  }

  private async runUnload(entry: LoadedModule): Promise<void> {
    const timeout = this.ctx.shutdownTimeout() * 1000;
    try {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.resolve(entry.definition.unload?.(entry.api)),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`unload took longer than ${timeout} ms`)), timeout);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (err) {
      log.error('module %s on %s: unload failed: %s', entry.name, entry.host, err);
    }
    await entry.api.dispose(timeout);
  }

  async unload(host: string, name: string): Promise<void> {
    const entry = this.loaded.get(host)?.get(name) ?? this.loaded.get('*')?.get(name);
    if (!entry) throw new CoreError('MODULE_NOT_LOADED', `module '${name}' is not loaded on ${host}`);
    await this.runUnload(entry);
    this.loaded.get(entry.host)?.delete(name);
    log('unloaded %s from %s', name, entry.host);
    this.ctx.events.emit('module-unloaded', { module: name, host: entry.host });
  }

  /**
   * Reload: import the new code first (a syntax error leaves the old module running), then
   * save → unload → load → restore.
   */
  async reload(host: string, name: string): Promise<LoadedModule> {
    const entry = this.loaded.get(host)?.get(name) ?? this.loaded.get('*')?.get(name);
    if (!entry) throw new CoreError('MODULE_NOT_LOADED', `module '${name}' is not loaded on ${host}`);
    const { found } = this.resolve(name);
    if (!found) throw new CoreError('MODULE_NOT_FOUND', `module '${name}' no longer found`);
    try {
      await this.importDefinition(found.file);
    } catch (err) {
      throw new CoreError('MODULE_LOAD_FAILED', `module '${name}' not reloaded, the new code fails: ${(err as Error).message}`);
    }
    let state: unknown;
    try {
      state = entry.definition.save?.(entry.api);
    } catch (err) {
      log.error('module %s: save() failed: %s', name, err);
    }
    // Stanzas arriving during the swap wait and are then routed to the new code.
    log.info('reloading %s on %s', name, entry.host === '*' ? 'the server' : entry.host);
    const release = this.ctx.holdRouting();
    try {
      await this.unload(entry.host, name);
      return await this.load(entry.host, name, { ready: true, state });
    } finally {
      release();
    }
  }

  /** Unload everything in reverse load order (hosts first, then global modules). */
  async unloadAll(): Promise<void> {
    const hosts = [...this.loaded.keys()].filter((h) => h !== '*');
    for (const host of [...hosts, '*']) {
      const mods = [...(this.loaded.get(host)?.keys() ?? [])].reverse();
      for (const name of mods) await this.unload(host, name).catch((err: unknown) => log.error('%s', err));
    }
  }

  /** Call an exported method: the module on `host`, else the global one. */
  async call(host: string, module: string, method: string, args: unknown[]): Promise<unknown> {
    const entry = this.get(host, module);
    if (!entry) throw new CoreError('MODULE_NOT_LOADED', `module '${module}' is not loaded on ${host}`);
    const m = entry.api.exports.get(method);
    if (!m) throw new CoreError('METHOD_NOT_FOUND', `module '${module}' exports no method '${method}'`);
    return m.fn(...args);
  }
}
