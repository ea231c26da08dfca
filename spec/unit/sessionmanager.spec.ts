import assert from 'node:assert/strict';
import net from 'node:net';
import { Element } from '@xmpp/xml';
import { Connection } from '../../core/net/connection.ts';
import type { Server } from '../../core/server.ts';
import type { CloseReason, Session } from '../../core/session.ts';
import { makeServer } from '../helpers/core.ts';

describe('session manager', function () {
  let server: Server;
  const sockets: net.Socket[] = [];

  const newSession = (closed: CloseReason[] = []): Session => {
    const socket = new net.Socket();
    sockets.push(socket);
    const conn = new Connection(socket, 'test', 0);
    const session: Session = server.sessions.create('c2s_unauthed', conn, {
      send: () => true,
      close: (reason) => {
        if (reason) closed.push(reason);
        server.sessions.destroy(session, reason);
      },
    });
    session.host = 'example.org';
    return session;
  };

  beforeEach(function () {
    server = makeServer({ log: { level: 'error' } });
  });
  afterEach(async function () {
    for (const s of sockets.splice(0)) s.destroy();
    await server.storage.close();
  });

  it('goes c2s_unauthed → c2s (authenticated) → connected resource, with the seed fields', async function () {
    const s = newSession();
    assert.equal(s.type, 'c2s_unauthed');
    assert.equal(s.notopen, true);
    assert.equal(s.username, undefined);
    assert.equal(s.full_jid, undefined);
    assert.equal(s.priority, 0);
    assert.equal(s.presence, undefined);
    assert.equal(s.interested, undefined);

    server.sessions.makeAuthenticated(s, 'alice');
    assert.equal(s.type, 'c2s');
    assert.equal(s.username, 'alice');
    assert.equal(s.isConnectedResource, false, 'authenticated but not bound');

    const r = await server.sessions.bind(s, 'laptop');
    assert.deepEqual(r, { ok: true, resource: 'laptop' });
    assert.equal(s.resource, 'laptop');
    assert.equal(s.full_jid, 'alice@example.org/laptop');
    assert.ok(s.roster, 'roster loaded at bind');
    assert.equal(s.isConnectedResource, true);
  });

  it('defines available and interested resources as subsets of connected ones', async function () {
    const a = newSession();
    const b = newSession();
    for (const s of [a, b]) server.sessions.makeAuthenticated(s, 'alice');
    await server.sessions.bind(a, 'a');
    await server.sessions.bind(b, 'b');
    assert.equal(a.isAvailable, false);
    a.presence = new Element('presence');
    b.interested = true;
    assert.deepEqual(server.sessions.availableSessions('example.org', 'alice'), [a]);
    assert.deepEqual(server.sessions.interestedSessions('example.org', 'alice'), [b]);
    assert.equal(a.roster, b.roster, 'one roster per user');
    server.sessions.destroy(a);
    assert.equal(a.isAvailable, false, 'a destroyed session is no longer available');
    assert.equal(a.isConnectedResource, false);
    assert.deepEqual(server.sessions.sessionsOf('example.org', 'alice'), [b]);
  });

  it('picks the most available resources: non-negative, highest priority, all of a tie', async function () {
    const [a, b, c, d] = [newSession(), newSession(), newSession(), newSession()];
    for (const [s, r, prio] of [[a, 'a', 5], [b, 'b', 5], [c, 'c', 1], [d, 'd', -1]] as const) {
      server.sessions.makeAuthenticated(s, 'frank');
      await server.sessions.bind(s, r);
      s.presence = new Element('presence');
      s.priority = prio;
    }
    assert.deepEqual(server.sessions.mostAvailableSessions('example.org', 'frank'), [a, b]);
    a.presence = undefined;
    b.priority = 0;
    assert.deepEqual(server.sessions.mostAvailableSessions('example.org', 'frank'), [c]);
    c.presence = undefined;
    b.presence = undefined;
    assert.deepEqual(server.sessions.mostAvailableSessions('example.org', 'frank'), [], 'negative priority only: none');
  });

  it('fires resource-bind and resource-unbind (unbind while the session is still intact)', async function () {
    const events: string[] = [];
    server.events.on('resource-bind', ({ session }: { session: Session }) => {
      events.push(`bind ${session.full_jid}`);
    });
    server.events.on('resource-unbind', ({ session }: { session: Session }) => {
      events.push(`unbind ${session.full_jid}`);
    });
    const s = newSession();
    server.sessions.makeAuthenticated(s, 'bob');
    await server.sessions.bind(s, 'r');
    server.sessions.destroy(s);
    server.sessions.destroy(s); // idempotent
    assert.deepEqual(events, ['bind bob@example.org/r', 'unbind bob@example.org/r']);
  });

  it('generates a resource when none is requested', async function () {
    const s = newSession();
    server.sessions.makeAuthenticated(s, 'carol');
    const r = await server.sessions.bind(s, undefined);
    assert.ok(r.ok && r.resource.length > 8);
  });

  it('resolves a resource conflict by closing the old session with <conflict/> (default policy)', async function () {
    const closed: CloseReason[] = [];
    const old = newSession(closed);
    const fresh = newSession();
    for (const s of [old, fresh]) server.sessions.makeAuthenticated(s, 'dave');
    await server.sessions.bind(old, 'same');
    const r = await server.sessions.bind(fresh, 'same');
    assert.equal(r.ok, true);
    assert.deepEqual(closed.map((c) => c.condition), ['conflict']);
    assert.equal(server.sessions.getByFullJid('example.org', 'dave', 'same'), fresh);
  });

  it('can refuse the new session instead (resourceConflict: kick_new)', async function () {
    server = makeServer({ resourceConflict: 'kick_new', log: { level: 'error' } });
    const old = newSession();
    const fresh = newSession();
    for (const s of [old, fresh]) server.sessions.makeAuthenticated(s, 'erin');
    await server.sessions.bind(old, 'same');
    assert.deepEqual(await server.sessions.bind(fresh, 'same'), { ok: false, condition: 'conflict' });
    assert.equal(server.sessions.getByFullJid('example.org', 'erin', 'same'), old);
  });

  it('refuses to bind an unauthenticated session', async function () {
    const s = newSession();
    assert.deepEqual(await server.sessions.bind(s, 'x'), { ok: false, condition: 'not-allowed' });
  });
});
