//% requires_core_features: module-reload, module-exports, module-capabilities
// The admin shell's server side: a UNIX socket (mode 0600, default <dataDir>/cadence.sock) that
// `cadence shell` connects to. One JSON object per line each way:
//   → { "line": "module reload hello localhost" }   ← { "ok": true, "output": "…" } | { "ok": false, "error": "…" }
//   → { "complete": "module re" }                   ← { "completions": ["module reload"] }
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { defineModule, split, type GlobalModuleApi } from '../core/api.ts';

type Command = { usage: string; help: string; run(args: string[]): Promise<string> | string };

export default defineModule({
  scope: 'global',
  description: 'Admin shell over a local UNIX socket',
  capabilities: ['admin'],
  async load(module) {
    const configured = module.config('adminSocket');
    const socketPath = configured ? module.resolvePath(configured) : path.join(module.dataDir, 'cadence.sock');
    const commands = makeCommands(module);

    if (existsSync(socketPath)) {
      const alive = await new Promise<boolean>((resolve) => {
        const probe = net.connect(socketPath, () => {
          probe.destroy();
          resolve(true);
        });
        probe.on('error', () => resolve(false));
      });
      if (alive) throw new Error(`another server is listening on ${socketPath}`);
      unlinkSync(socketPath);
    }

    const server = net.createServer((socket) => {
      const rl = createInterface({ input: socket });
      rl.on('line', (raw) => {
        void handle(raw).then((reply) => socket.write(`${JSON.stringify(reply)}\n`));
      });
      socket.on('error', () => undefined);
    });
    const handle = async (raw: string): Promise<Record<string, unknown>> => {
      let req: { line?: unknown; complete?: unknown };
      try {
        req = JSON.parse(raw) as typeof req;
      } catch {
        return { ok: false, error: 'bad request' };
      }
      if (typeof req.complete === 'string') return { completions: complete(commands, req.complete) };
      if (typeof req.line !== 'string') return { ok: false, error: 'bad request' };
      try {
        return { ok: true, output: await runLine(commands, req.line) };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    };

    // 0600 from the start: no window in which others could connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => resolve());
      });
    } catch (err) {
      // The server runs fine without its shell (e.g. a data directory path too long for a socket).
      module.log.error('admin shell disabled: cannot listen on %s: %s', socketPath, (err as Error).message);
      return;
    } finally {
      process.umask(umask);
    }
    chmodSync(socketPath, 0o600);
    module.log('admin shell listening on %s', socketPath);
    module.task(async (signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await new Promise((r) => server.close(r));
      if (existsSync(socketPath)) unlinkSync(socketPath);
    });
  },
});

function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]!));
  return out;
}

async function runLine(commands: Map<string, Command>, line: string): Promise<string> {
  const words = tokenize(line);
  if (!words.length) return '';
  for (const n of [2, 1]) {
    const cmd = commands.get(words.slice(0, n).join(' '));
    if (cmd) return cmd.run(words.slice(n));
  }
  throw new Error(`unknown command '${words.slice(0, 2).join(' ')}' (try 'help')`);
}

function complete(commands: Map<string, Command>, prefix: string): string[] {
  return [...commands.keys(), 'help'].filter((c) => c.startsWith(prefix)).sort();
}

function userArg(jid: string | undefined): { host: string; user: string } {
  const p = jid ? split(jid) : undefined;
  if (!p?.node || !p.host) throw new Error('expected a user JID (user@host)');
  return { host: p.host, user: p.node };
}

function parseArg(a: string): unknown {
  try {
    return JSON.parse(a) as unknown;
  } catch {
    return a;
  }
}

function table(rows: string[][]): string {
  if (!rows.length) return '(none)';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function makeCommands(module: GlobalModuleApi): Map<string, Command> {
  const a = module.privileged.admin;
  const list: [string, Command][] = [
    ['module list', { usage: 'module list [HOST]', help: 'loaded modules', run: ([host]) => table(a.listModules(host).map((m) => [m.host, m.name, m.file])) }],
    ['module load', {
      usage: 'module load NAME [HOST]', help: 'load a module (on every host if none given)',
      run: async ([name, host]) => {
        if (!name) throw new Error('usage: module load NAME [HOST]');
        const r = await a.loadModule(name, host);
        return r.length ? r.map((m) => `loaded ${m.name} on ${m.host}`).join('\n') : `${name} is loaded globally`;
      },
    }],
    ['module unload', {
      usage: 'module unload NAME [HOST]', help: 'unload a module',
      run: async ([name, host]) => {
        if (!name) throw new Error('usage: module unload NAME [HOST]');
        return (await a.unloadModule(name, host)).map((h) => `unloaded ${name} from ${h}`).join('\n');
      },
    }],
    ['module reload', {
      usage: 'module reload NAME [HOST]', help: 'reload a module (keeps sessions; stanzas wait during the swap)',
      run: async ([name, host]) => {
        if (!name) throw new Error('usage: module reload NAME [HOST]');
        return (await a.reloadModule(name, host)).map((h) => `reloaded ${name} on ${h}`).join('\n');
      },
    }],
    ['module exports', { usage: 'module exports [HOST]', help: "modules' exported methods", run: ([host]) => table(a.listExports(host).map((e) => [e.host, `${e.module}.${e.method}`, e.description])) }],
    ['module call', {
      usage: 'module call NAME[@HOST] METHOD [ARG…]', help: 'call an exported method (arguments as JSON or strings)',
      run: async ([target, method, ...args]) => {
        if (!target || !method) throw new Error('usage: module call NAME[@HOST] METHOD [ARG…]');
        const [name, host] = target.split('@') as [string, string | undefined];
        const h = host ?? a.listModules().find((m) => m.name === name)?.host ?? '*';
        const result = await a.callExport(h, name, method, args.map(parseArg));
        return typeof result === 'string' ? result : JSON.stringify(result, null, 2) ?? 'undefined';
      },
    }],
    ['session list', {
      usage: 'session list', help: 'client and component sessions, with their limits (inbound rate, stanzas waiting to be read) and state',
      run: async () => {
        // Client state (XEP-0352) with mod_csi's held/flushed counts; stream management's hibernation.
        const csi = new Map<string, { held: number; heldTotal: number; flushed: number }>();
        for (const m of a.listModules().filter((x) => x.name === 'csi')) {
          const counts = await a.callExport(m.host, 'csi', 'counts', []).catch(() => ({}));
          for (const [id, c] of Object.entries(counts as Record<string, { held: number; heldTotal: number; flushed: number }>)) csi.set(id, c);
        }
        return table(a.listSessions().map((s) => {
          const c = csi.get(s.id);
          const state = [s.hibernating ? 'hibernating' : '', s.clientState === 'inactive' ? 'inactive' : '', c ? `held ${c.held} (${c.heldTotal} in all) flushed ${c.flushed}` : ''].filter(Boolean).join(' ');
          return [
            s.type, s.jid || '-', s.ip, s.tls, `${s.ageSeconds}s`,
            `rate=${s.rate ? `${s.rate}B/s` : 'unlimited'}${s.shaped ? ' (held)' : ''}`, `throttled=${s.throttled}`,
            `queued=${s.queued}/${s.sendQueue || 'unlimited'}`,
            ...(state ? [state] : []),
          ];
        }));
      },
    }],
    ['user create', {
      usage: 'user create JID PASSWORD', help: 'create an account',
      run: async ([jid, password]) => {
        const { host, user } = userArg(jid);
        if (!password) throw new Error('a password is needed');
        await a.createUser(host, user, password);
        return `created ${user}@${host}`;
      },
    }],
    ['user delete', {
      usage: 'user delete JID', help: 'delete an account and its data',
      run: async ([jid]) => {
        const { host, user } = userArg(jid);
        await a.deleteUser(host, user);
        return `deleted ${user}@${host}`;
      },
    }],
    ['user password', {
      usage: 'user password JID PASSWORD', help: "change an account's password",
      run: async ([jid, password]) => {
        const { host, user } = userArg(jid);
        if (!password) throw new Error('a password is needed');
        await a.setPassword(host, user, password);
        return `changed the password of ${user}@${host}`;
      },
    }],
    ['server info', {
      usage: 'server info', help: 'version, uptime, memory, sessions, code (build or sources), TypeScript compiled at run time',
      run: () => {
        const i = a.serverInfo();
        return `Cadence ${i.version} on Node.js ${i.node}\nuptime ${i.uptimeSeconds}s\nmemory rss ${(i.rssBytes / 1048576).toFixed(1)} MiB, heap ${(i.heapUsedBytes / 1048576).toFixed(1)} MiB\nsessions ${i.sessions}`
          + `\ncode ${i.codeDir} (${i.compiled ? 'compiled JavaScript' : 'TypeScript sources'})\nnode flags ${i.nodeFlags.join(' ') || 'none'}`
          + `\nTypeScript compiled at run time: ${i.typescriptFiles.join(', ') || 'none'}`;
      },
    }],
    ['server uptime', { usage: 'server uptime', help: 'seconds since start', run: () => `${a.serverInfo().uptimeSeconds}s` }],
    ['server memory', { usage: 'server memory', help: 'process memory', run: () => `rss ${(a.serverInfo().rssBytes / 1048576).toFixed(1)} MiB` }],
    ['server version', { usage: 'server version', help: 'Cadence version', run: () => a.serverInfo().version }],
    ['config reload', {
      usage: 'config reload', help: 're-read the config file (like SIGHUP)',
      run: async () => (await a.reloadConfig()).join('\n') || 'no changes',
    }],
    ['cert reload', {
      usage: 'cert reload', help: 're-read every host\'s certificate and key (new connections get them; sessions stay)',
      run: async () => (await a.reloadCertificates()).join('\n') || 'no certificates',
    }],
    ['cert list', {
      usage: 'cert list', help: 'per host, the certificate served: names, issuer, expiry, source (file, acme, self-signed)',
      run: () => table(a.listCertificates().map((c) => [
        c.host, c.names.join(','), `issuer=${c.issuer}`, `notAfter=${c.notAfter.toISOString()}`, c.source,
        ...(c.acme ? [`acme ${c.acme.state}${c.acme.nextAt ? ` next ${c.acme.nextAt.toISOString()}` : ''}${c.acme.lastError ? ` (${c.acme.lastError})` : ''}`] : []),
      ])),
    }],
    // Federation (mod_s2s's exports 'list' and 'close').
    ['s2s list', {
      usage: 's2s list', help: 'server-to-server streams: direction, domains, authentication, TLS, age',
      run: async () => {
        const rows = (await a.callExport('*', 's2s', 'list', [])) as { direction: string; local: string; remote: string; auth: string; tls: string; ageSeconds: number; state: string; queued?: number; bidi?: boolean }[];
        return table(rows.map((r) => [r.direction, r.local, r.remote, r.auth, r.tls, `${r.ageSeconds}s`, r.state, r.queued === undefined ? '' : `queued ${r.queued}`, r.bidi ? 'bidi' : '']));
      },
    }],
    ['s2s close', {
      usage: 's2s close DOMAIN', help: 'close every server-to-server stream with DOMAIN',
      run: async ([domain]) => {
        if (!domain) throw new Error('usage: s2s close DOMAIN');
        const n = (await a.callExport('*', 's2s', 'close', [domain])) as number;
        return `closed ${n} stream${n === 1 ? '' : 's'} with ${domain}`;
      },
    }],
  ];
  const commands = new Map(list);
  commands.set('help', { usage: 'help', help: 'this list', run: () => list.map(([, c]) => `${c.usage.padEnd(40)} ${c.help}`).join('\n') });
  return commands;
}
