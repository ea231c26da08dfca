// Module lifecycle and the module API, in-process: ready, tasks and their signal, timers,
// per-session state, session replay on load/unload, exports and depends, shutdown order.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { Element } from '@xmpp/xml';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '../../core/net/connection.ts';
import type { Server } from '../../core/server.ts';
import type { Session } from '../../core/session.ts';
import { makeServer } from '../helpers/core.ts';

const API = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'core', 'api.ts');

interface Probe {
  log: string[];
  ticks: number;
  state?: (s: Session) => unknown;
}
const probe = (): Probe => (globalThis as unknown as { __probe: Probe }).__probe;

describe('module API and lifecycle', function () {
  let dir: string;
  let server: Server;
  const sockets: net.Socket[] = [];

  const write = (name: string, body: string) =>
    writeFileSync(path.join(dir, `mod_${name}.ts`), `import { defineModule } from '${API}';\nconst P = (globalThis as any).__probe;\nexport default defineModule(${body});\n`);

  const bound = async (user: string, written: unknown[] = []): Promise<Session> => {
    const socket = new net.Socket();
    sockets.push(socket);
    const s: Session = server.sessions.create('c2s_unauthed', new Connection(socket, 'test', 0), {
      send: (x) => {
        written.push(x);
        return true;
      },
      close: () => server.sessions.destroy(s),
    });
    s.host = 'example.org';
    server.sessions.makeAuthenticated(s, user);
    await server.sessions.bind(s, 'r');
    return s;
  };

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'cadence-api-'));
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
    (globalThis as unknown as { __probe: Probe }).__probe = { log: [], ticks: 0 };
    server = makeServer({ pluginPaths: [dir], log: { level: 'error' } });
  });
  afterEach(async function () {
    for (const s of sockets.splice(0)) s.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls ready() after load, runs tasks until the unload signal, clears timers', async function () {
    write('life', `{
      load(module) {
        P.log.push('load');
        module.setInterval(() => { P.ticks++; }, 5);
        module.task(async (signal) => {
          P.log.push('task started');
          await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
          P.log.push('task saw abort');
        });
      },
      ready() { P.log.push('ready'); },
      unload() { P.log.push('unload'); },
    }`);
    await server.modules.load('example.org', 'life', { ready: true });
    await new Promise((r) => setTimeout(r, 40));
    assert.ok(probe().ticks > 0, 'the interval ran');
    await server.modules.unload('example.org', 'life');
    const ticks = probe().ticks;
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(probe().ticks, ticks, 'the interval was cleared on unload');
    assert.deepEqual(probe().log, ['load', 'task started', 'ready', 'unload', 'task saw abort']);
  });

  it('holds only pending timers: fired and cleared timeouts are let go, the rest cleared on unload', async function () {
    write('timers', `{
      load(module) {
        P.fired = 0;
        P.late = 0;
        for (let i = 0; i < 200; i++) module.setTimeout(() => { P.fired++; }, 1);
        const cancelled = module.setTimeout(() => { P.late++; }, 5);
        module.clearTimer(cancelled);
        module.setTimeout(() => { P.late++; }, 60);
        P.pending = () => module.timers.size;
      },
    }`);
    await server.modules.load('example.org', 'timers', { ready: true });
    const p = probe() as Probe & { fired: number; late: number; pending: () => number };
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(p.fired, 200);
    assert.equal(p.pending(), 1, 'only the 60 ms timeout is still held');
    await server.modules.unload('example.org', 'timers');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(p.late, 0, 'the cancelled timeout never ran and the pending one was cleared on unload');
  });

  it('replays existing sessions on load and reports them removed on unload', async function () {
    write('watch', `{
      load(module) {
        module.onSessions({ added: (s) => P.log.push('added ' + s.full_jid), removed: (s) => P.log.push('removed ' + s.full_jid) });
        module.onConnections({ added: (s) => P.log.push('conn+ ' + s.username) });
      },
    }`);
    await bound('early');
    await server.modules.load('example.org', 'watch');
    const late = await bound('late');
    server.sessions.destroy(late);
    await server.modules.unload('example.org', 'watch');
    assert.deepEqual(probe().log, [
      'added early@example.org/r', 'conn+ early', 'conn+ late', 'added late@example.org/r', 'removed late@example.org/r', 'removed early@example.org/r',
    ]);
  });

  it('keeps typed per-session state that is dropped with the module', async function () {
    write('slot', `{
      load(module) {
        P.state = (s) => module.state(s, () => ({ count: 0 }));
        module.export('peek', (s) => module.peekState(s));
      },
    }`);
    await server.modules.load('example.org', 'slot');
    const s = await bound('slotty');
    (probe().state!(s) as { count: number }).count++;
    assert.deepEqual(probe().state!(s), { count: 1 }, 'same slot on the next call');
    assert.deepEqual(await server.modules.call('example.org', 'slot', 'peek', [s]), { count: 1 });
    await server.modules.unload('example.org', 'slot');
    await server.modules.load('example.org', 'slot');
    assert.equal(await server.modules.call('example.org', 'slot', 'peek', [s]), undefined, 'a new instance starts empty');
  });

  it('loads dependencies first and lets modules call each other’s exports', async function () {
    write('base', `{ load(module) { P.log.push('base'); module.export('double', (n) => n * 2, 'twice n'); } }`);
    write('user', `{ depends: ['base'], async load(module) { P.log.push('user ' + (await module.call('base', 'double', 21))); } }`);
    await server.modules.load('example.org', 'user');
    assert.deepEqual(probe().log, ['base', 'user 42']);
    assert.deepEqual(server.admin.listExports('example.org').map((e) => `${e.module}.${e.method}: ${e.description}`), ['base.double: twice n']);
  });

  it('keeps state across reload with save/restore', async function () {
    write('counter', `{
      load(module) { let n = 0; module.export('inc', () => ++n); P.get = () => n; P.set = (v) => { n = v; }; },
      save() { return P.get(); },
      restore(_m, state) { P.set(state); },
    }`);
    await server.modules.load('example.org', 'counter');
    await server.modules.call('example.org', 'counter', 'inc', []);
    await server.modules.call('example.org', 'counter', 'inc', []);
    await server.modules.reload('example.org', 'counter');
    assert.equal(await server.modules.call('example.org', 'counter', 'inc', []), 3);
  });

  it('unloads everything at shutdown in reverse load order, each within the time limit', async function () {
    server = makeServer({ pluginPaths: [dir], shutdownTimeout: 1, log: { level: 'error' } });
    write('first', `{ load() {}, unload() { P.log.push('first'); } }`);
    write('second', `{ load() {}, unload() { P.log.push('second'); return new Promise(() => {}); } }`);
    write('third', `{ load() {}, unload() { P.log.push('third'); throw new Error('best effort'); } }`);
    for (const m of ['first', 'second', 'third']) await server.modules.load('example.org', m);
    const t0 = Date.now();
    await server.stop();
    assert.deepEqual(probe().log, ['third', 'second', 'first']);
    assert.ok(Date.now() - t0 < 3000, 'a hanging unload is cut off by shutdownTimeout');
  });

  it('runs serial tasks of one key in order, other keys alongside', async function () {
    write('serial', `{
      load(module) {
        P.run = (key, label, ms) => module.serial(key, async () => {
          P.log.push('start ' + label);
          await new Promise((r) => setTimeout(r, ms));
          P.log.push('end ' + label);
        });
      },
    }`);
    await server.modules.load('example.org', 'serial');
    const run = (probe() as unknown as { run: (k: string, l: string, ms: number) => Promise<void> }).run;
    await Promise.all([run('alice', 'a1', 30), run('alice', 'a2', 1), run('bob', 'b1', 1)]);
    assert.deepEqual(probe().log, ['start a1', 'start b1', 'end b1', 'end a1', 'start a2', 'end a2']);
  });

  it('filters what is sent to its host\'s sessions until it is unloaded', async function () {
    write('outfilter', `{
      load(module) {
        module.filter('stanzas/out', (stanza) => stanza.attrs.type === 'secret' ? undefined : stanza);
      },
    }`);
    const written: unknown[] = [];
    const s = await bound('filtered', written);
    await server.modules.load('example.org', 'outfilter');
    s.send(new Element('message', { type: 'secret' }));
    s.send(new Element('message', { type: 'chat' }));
    s.send('<r/>');
    assert.deepEqual(written.map((x) => (typeof x === 'string' ? x : (x as Element).attrs.type)), ['chat', '<r/>']);
    await server.modules.unload('example.org', 'outfilter');
    s.send(new Element('message', { type: 'secret' }));
    assert.equal((written.at(-1) as Element).attrs.type, 'secret', 'removed on unload');
  });

  it('gives privileged services only to modules that declare the capability', async function () {
    write('sneaky', `{ load(module) { module.privileged.sessions.destroy; } }`);
    await assert.rejects(server.modules.load('example.org', 'sneaky'), (err: Error) => /MODULE_CAPABILITY_MISSING|without declaring capabilities: \['sessions'\]/.test(`${(err as { code?: string }).code} ${err.message}`));
    write('declared', `{ capabilities: ['sessions'], load(module) { P.log.push(typeof module.privileged.sessions.destroy); P.log.push(Object.keys(module.sessions).sort().join(',')); } }`);
    await server.modules.load('example.org', 'declared');
    assert.equal(probe().log[0], 'function');
    assert.equal(probe().log[1], 'availableSessions,boundSessions,getByFullJid,getComponent,interestedSessions,mostAvailableSessions,roster,sessionsOf', 'module.sessions only looks up');
  });
});
