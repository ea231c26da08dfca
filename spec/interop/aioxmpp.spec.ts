// Interop with a second real third-party client library: aioxmpp 0.13.3 (Debian's python3-aioxmpp,
// with aiosasl 0.5 and aioopenssl/pyOpenSSL, run by the system Python), alone and against
// slixmpp 1.8.3, both with their default settings (certificate verification against the test CA).
// aioxmpp logs in over STARTTLS with SCRAM-SHA-256 (its PasswordSASLProvider only does non-PLUS
// SCRAM, the strongest hash offered, then PLAIN), manages its roster through RosterClient (set_entry / remove_entry, which
// only update the local roster from the server's pushes) and keeps it across logins with roster
// versioning, subscribes to and approves slixmpp users and chats with them, and receives messages
// stored offline, in order and with a <delay/> stamp — and slixmpp receives the ones aioxmpp sent.
// The driver scripts print one `EVENT …` line per thing that happened (see
// spec/interop/aioxmpp_client.py and spec/interop/slixmpp_client.py).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import { assertFirstAttemptLogin } from '../helpers/sasl-log.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PYTHON, PyClient, printedMessages, printedRoster, pythonModuleVersion, type Result } from './pyclient.ts';

const AIOXMPP = path.join(ROOT, 'spec', 'interop', 'aioxmpp_client.py');
const SLIXMPP = path.join(ROOT, 'spec', 'interop', 'slixmpp_client.py');
const NS_ROSTER = 'jabber:iq:roster';

const USERS = {
  romeo: 'r0meo-pass',
  juliet: 'jul1et-pass',
  benvolio: 'benv0lio-pass',
  mercutio: 'merc-pass',
  paris: 'par1s-pass',
  tybalt: 'tyb4lt-pass',
  nurse: 'nurse-pass',
  friar: 'fr1ar-pass',
  balthasar: 'balth-pass',
  lawrence: 'l4wrence-pass',
};
type User = keyof typeof USERS;

interface AioOptions {
  action?: 'login' | 'roster-get' | 'roster-set' | 'roster-remove' | 'chat' | 'send' | 'receive';
  password?: string;
  peer?: string;
  name?: string;
  groups?: string[];
  subscribe?: boolean;
  send?: string[];
  expect?: number;
  echo?: boolean;
  collect?: number;
  rosterCache?: string;
  timeout?: number;
}

interface SlixOptions {
  action?: 'chat' | 'send' | 'receive-offline' | 'roster-get';
  peer?: string;
  subscribe?: boolean;
  send?: string[];
  echo?: boolean;
  expect?: number;
  collect?: number;
  timeout?: number;
}

interface ServerItem {
  jid: string;
  name: string | undefined;
  groups: string[];
  subscription: string;
}

function serverItems(query: Element | undefined): ServerItem[] {
  return (query?.getChildren('item') ?? []).map((i) => ({
    jid: String(i.attrs.jid),
    name: i.attrs.name as string | undefined,
    groups: i.getChildren('group').map((g) => g.getText()).sort(),
    subscription: String(i.attrs.subscription ?? 'none'),
  }));
}

/** A roster push for `jid` received by a TestClient, as an item. */
function pushFor(jid: string) {
  return (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.jid === jid;
}

describe('interop: aioxmpp (Python) client', function () {
  let server: TestServer;
  let tmp: string;
  const running: PyClient[] = [];
  const clients: TestClient[] = [];

  const aio = (user: User, resource: string, opts: AioOptions = {}): PyClient => {
    const args = [
      '--jid', `${user}@localhost/${resource}`,
      '--password', opts.password ?? USERS[user],
      '--port', String(server.c2sPort),
      '--action', opts.action ?? 'login',
      '--timeout', String(opts.timeout ?? 20),
    ];
    if (opts.peer) args.push('--peer', opts.peer);
    if (opts.name !== undefined) args.push('--name', opts.name);
    for (const g of opts.groups ?? []) args.push('--group', g);
    if (opts.subscribe) args.push('--subscribe');
    for (const b of opts.send ?? []) args.push('--send', b);
    if (opts.expect !== undefined) args.push('--expect', String(opts.expect));
    if (opts.echo) args.push('--echo');
    if (opts.collect !== undefined) args.push('--collect', String(opts.collect));
    if (opts.rosterCache) args.push('--roster-cache', opts.rosterCache);
    const p = PyClient.spawn(AIOXMPP, args, `aioxmpp ${user}`);
    running.push(p);
    return p;
  };

  const slix = (user: User, resource: string, opts: SlixOptions = {}): PyClient => {
    const args = [
      '--jid', `${user}@localhost/${resource}`,
      '--password', USERS[user],
      '--port', String(server.c2sPort),
      '--action', opts.action ?? 'chat',
      '--timeout', String(opts.timeout ?? 20),
    ];
    if (opts.peer) args.push('--peer', opts.peer);
    if (opts.subscribe) args.push('--subscribe');
    for (const b of opts.send ?? []) args.push('--send', b);
    if (opts.echo) args.push('--echo');
    if (opts.expect !== undefined) args.push('--expect', String(opts.expect));
    if (opts.collect !== undefined) args.push('--collect', String(opts.collect));
    const p = PyClient.spawn(SLIXMPP, args, `slixmpp ${user}`);
    running.push(p);
    return p;
  };

  const loginUser = async (user: User, resource: string): Promise<TestClient> => {
    const c = await login(server, user, USERS[user], { resource });
    clients.push(c);
    return c;
  };

  const rosterGet = async (c: TestClient): Promise<ServerItem[]> => {
    const r = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
    return serverItems(r.getChild('query', NS_ROSTER));
  };

  const explain = (r: Result, label = '') =>
    `${label}exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-4000)}`;

  /** Run to completion and require success. */
  const ok = async (p: PyClient): Promise<Result> => {
    const r = await p.exited;
    assert.equal(r.code, 0, explain(r, `${p.label}: `));
    assert.ok(r.events.includes('EVENT done'), explain(r));
    return r;
  };

  before(async function () {
    // python3-aioxmpp and python3-slixmpp are installed by .ci/run (apt-get); without them this
    // suite fails rather than skips.
    assert.ok(pythonModuleVersion('aioxmpp'), `aioxmpp is not importable by ${PYTHON}: apt-get install python3-aioxmpp`);
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    tmp = mkdtempSync(path.join(tmpdir(), 'cadence-aioxmpp-'));
    server = await startServer({ users: USERS, config: { tls: testCa().serverTls } });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('logs in over STARTTLS (TLS 1.3) with SCRAM-SHA-256 and binds its resource', async function () {
    const from = server.output.length;
    const r = await ok(aio('romeo', 'aio'));
    // aiosasl picks the strongest non-PLUS SCRAM offered; aioxmpp never tries -PLUS.
    await assertFirstAttemptLogin(server, 'romeo@localhost', from, /^SCRAM-SHA-256$/);
    assert.ok(r.events.includes('EVENT tls version=TLSv1.3'), explain(r));
    assert.ok(r.events.includes('EVENT session_start jid=romeo@localhost/aio'), explain(r));
    // RosterClient fetched the roster on login; the server announces versioning, so it has a version.
    assert.ok(r.events.some((e) => /^EVENT roster_fetch mode=full ver_sent=- ver=\S+$/.test(e) && !e.endsWith('ver=-')), explain(r));
    assert.ok(r.events.includes('EVENT closed'), explain(r));
  });

  it('is refused a wrong password', async function () {
    const r = await aio('romeo', 'bad', { password: 'wrong-pass' }).exited;
    assert.equal(r.code, 1, explain(r));
    assert.ok(r.events.some((e) => e.startsWith('EVENT failed_auth')), explain(r));
    assert.ok(!r.events.some((e) => e.startsWith('EVENT session_start')), explain(r));
    assert.match(server.output, /authentication failure/);
  });

  it('adds a roster item with a name and a group, renames and regroups it, removes it — pushed and stored', async function () {
    // Another resource of the same user, interested in the roster, sees every push too.
    const watcher = await loginUser('benvolio', 'watcher');
    assert.deepEqual(await rosterGet(watcher), []);
    const cache = path.join(tmp, 'benvolio-roster.json');

    // Add.
    const added = await ok(aio('benvolio', 'aio', { action: 'roster-set', peer: 'rosaline@localhost', name: 'Rosaline', groups: ['Capulets'], rosterCache: cache }));
    assert.ok(added.events.includes('EVENT set_result jid=rosaline@localhost'), explain(added));
    assert.ok(added.events.includes('EVENT roster_push added jid=rosaline@localhost name=Rosaline groups=Capulets subscription=none ask='), explain(added));
    assert.deepEqual(printedRoster(added.events)?.items, [{ jid: 'rosaline@localhost', name: 'Rosaline', groups: ['Capulets'], subscription: 'none', ask: '' }]);
    await watcher.expect(pushFor('rosaline@localhost'));
    assert.deepEqual(await rosterGet(watcher), [{ jid: 'rosaline@localhost', name: 'Rosaline', groups: ['Capulets'], subscription: 'none' }]);
    // A second aioxmpp login, without the cache, gets the item with the roster.
    const fresh = await ok(aio('benvolio', 'other', { action: 'roster-get' }));
    assert.ok(fresh.events.includes('EVENT roster_fetched added jid=rosaline@localhost name=Rosaline groups=Capulets subscription=none ask='), explain(fresh));
    assert.deepEqual(printedRoster(fresh.events)?.items.map((i) => i.jid), ['rosaline@localhost']);

    // Rename and move to two other groups.
    const updated = await ok(aio('benvolio', 'aio', { action: 'roster-set', peer: 'rosaline@localhost', name: 'Fair Rosaline', groups: ['Verona', 'Unrequited'], rosterCache: cache }));
    assert.ok(updated.events.includes('EVENT roster_push name jid=rosaline@localhost name=Fair Rosaline'), explain(updated));
    assert.ok(updated.events.includes('EVENT roster_push group_added jid=rosaline@localhost group=Verona'), explain(updated));
    assert.ok(updated.events.includes('EVENT roster_push group_added jid=rosaline@localhost group=Unrequited'), explain(updated));
    assert.ok(updated.events.includes('EVENT roster_push group_removed jid=rosaline@localhost group=Capulets'), explain(updated));
    assert.deepEqual(printedRoster(updated.events)?.items, [{ jid: 'rosaline@localhost', name: 'Fair Rosaline', groups: ['Unrequited', 'Verona'], subscription: 'none', ask: '' }]);
    const push = await watcher.expect((el) => pushFor('rosaline@localhost')(el) && el.getChild('query')?.getChild('item')?.attrs.name === 'Fair Rosaline');
    assert.deepEqual(serverItems(push.getChild('query', NS_ROSTER))[0]?.groups, ['Unrequited', 'Verona']);
    assert.deepEqual(await rosterGet(watcher), [{ jid: 'rosaline@localhost', name: 'Fair Rosaline', groups: ['Unrequited', 'Verona'], subscription: 'none' }]);

    // Remove.
    const removed = await ok(aio('benvolio', 'aio', { action: 'roster-remove', peer: 'rosaline@localhost', rosterCache: cache }));
    assert.ok(removed.events.includes('EVENT remove_result jid=rosaline@localhost'), explain(removed));
    assert.ok(removed.events.includes('EVENT roster_push removed jid=rosaline@localhost'), explain(removed));
    assert.deepEqual(printedRoster(removed.events)?.items, []);
    await watcher.expect((el) => pushFor('rosaline@localhost')(el) && el.getChild('query')?.getChild('item')?.attrs.subscription === 'remove');
    assert.deepEqual(await rosterGet(watcher), []);
    // And slixmpp, another library, reads the same (empty) roster.
    const other = await ok(slix('benvolio', 'slix', { action: 'roster-get' }));
    assert.deepEqual(printedRoster(other.events)?.items, []);
  });

  it('keeps its roster across logins with roster versioning: empty result when unchanged, full roster when changed', async function () {
    const cache = path.join(tmp, 'mercutio-roster.json');
    const first = await ok(aio('mercutio', 'aio', { action: 'roster-set', peer: 'queen-mab@localhost', name: 'Mab', groups: ['Dreams'], rosterCache: cache }));
    const ver1 = printedRoster(first.events)!.ver;

    // Unchanged: the cached version is sent and the server answers with an empty result.
    const again = await ok(aio('mercutio', 'aio', { action: 'roster-get', rosterCache: cache }));
    assert.ok(again.events.includes(`EVENT roster_fetch mode=incremental ver_sent=${ver1} ver=${ver1}`), explain(again));
    assert.deepEqual(printedRoster(again.events)?.items.map((i) => i.jid), ['queen-mab@localhost']);

    // Changed meanwhile by another client: the stale version gets the whole roster, and
    // aioxmpp drops what is gone and adds what is new.
    const other = await loginUser('mercutio', 'other');
    await rosterGet(other);
    await other.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'queen-mab@localhost', subscription: 'remove' }))));
    await other.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'romeo@localhost', name: 'Romeo' }, xml('group', {}, 'Montagues')))));
    const stale = await ok(aio('mercutio', 'aio', { action: 'roster-get', rosterCache: cache }));
    const fetch = stale.events.find((e) => e.startsWith('EVENT roster_fetch '));
    assert.match(fetch ?? '', new RegExp(`^EVENT roster_fetch mode=full ver_sent=${ver1} ver=(?!${ver1}$)\\S+$`), explain(stale));
    assert.ok(stale.events.includes('EVENT roster_fetched removed jid=queen-mab@localhost'), explain(stale));
    assert.ok(stale.events.includes('EVENT roster_fetched added jid=romeo@localhost name=Romeo groups=Montagues subscription=none ask='), explain(stale));
    assert.deepEqual(printedRoster(stale.events)?.items, [{ jid: 'romeo@localhost', name: 'Romeo', groups: ['Montagues'], subscription: 'none', ask: '' }]);
  });

  it('subscribes to a slixmpp user (who approves and asks back) and exchanges a message each way', async function () {
    // slixmpp (Juliet) is online first; its auto_authorize/auto_subscribe answer the request, and
    // it echoes the first message. aioxmpp (Romeo) approves Juliet's request back.
    const juliet = slix('juliet', 'garden', { peer: 'romeo@localhost', echo: true, timeout: 30 });
    await juliet.waitFor(/^EVENT sent_presence$/);
    const romeo = aio('romeo', 'balcony', { action: 'chat', peer: 'juliet@localhost', subscribe: true, send: ['But soft!'], expect: 1, timeout: 30 });
    const [r, j] = await Promise.all([romeo.exited, juliet.exited]);
    assert.equal(r.code, 0, `romeo: ${explain(r)}\njuliet: ${explain(j)}`);
    assert.equal(j.code, 0, `juliet: ${explain(j)}\nromeo: ${explain(r)}`);

    // aioxmpp: ask, pending push, subscribed, Juliet's request approved, 'both'.
    assert.ok(r.events.includes('EVENT sent subscribe to=juliet@localhost'), explain(r));
    assert.ok(r.events.includes('EVENT roster_push added jid=juliet@localhost name= groups= subscription=none ask=subscribe'), explain(r));
    assert.ok(r.events.includes('EVENT subscribed from=juliet@localhost'), explain(r));
    assert.ok(r.events.includes('EVENT subscribe from=juliet@localhost'), explain(r));
    assert.ok(r.events.includes('EVENT approved to=juliet@localhost'), explain(r));
    assert.ok(r.events.includes('EVENT roster_push subscription jid=juliet@localhost subscription=both ask='), explain(r));
    assert.ok(r.events.includes('EVENT presence from=juliet@localhost/garden type=available'), explain(r));
    // slixmpp: the request, then 'both' once aioxmpp approved.
    assert.ok(j.events.includes('EVENT subscribe from=romeo@localhost'), explain(j));
    assert.ok(j.events.includes('EVENT subscribed from=romeo@localhost'), explain(j));
    assert.ok(j.events.includes('EVENT roster_push jid=romeo@localhost subscription=both ask='), explain(j));
    // The messages, with the sender's full JID and no delay (delivered live).
    assert.ok(j.events.includes('EVENT message from=romeo@localhost/balcony type=chat body=But soft!'), explain(j));
    assert.ok(r.events.includes('EVENT message from=juliet@localhost/garden type=chat body=echo: But soft! delay=none delay_from='), explain(r));
  });

  it("approves a slixmpp user's subscription request, asks back, and exchanges a message each way", async function () {
    const paris = aio('paris', 'church', { action: 'chat', peer: 'tybalt@localhost', echo: true, timeout: 30 });
    await paris.waitFor(/^EVENT session_start /);
    const tybalt = slix('tybalt', 'street', { peer: 'paris@localhost', subscribe: true, send: ['Thou wretched boy'], timeout: 30 });
    const [p, t] = await Promise.all([paris.exited, tybalt.exited]);
    assert.equal(p.code, 0, `paris: ${explain(p)}\ntybalt: ${explain(t)}`);
    assert.equal(t.code, 0, `tybalt: ${explain(t)}\nparis: ${explain(p)}`);

    assert.ok(p.events.includes('EVENT subscribe from=tybalt@localhost'), explain(p));
    assert.ok(p.events.includes('EVENT approved to=tybalt@localhost'), explain(p));
    assert.ok(p.events.includes('EVENT sent subscribe to=tybalt@localhost'), explain(p));
    assert.ok(p.events.includes('EVENT subscribed from=tybalt@localhost'), explain(p));
    assert.ok(p.events.includes('EVENT roster_push subscription jid=tybalt@localhost subscription=both ask='), explain(p));
    assert.ok(t.events.includes('EVENT subscribed from=paris@localhost'), explain(t));
    assert.ok(t.events.includes('EVENT subscribe from=paris@localhost'), explain(t));
    assert.ok(t.events.includes('EVENT roster_push jid=paris@localhost subscription=both ask='), explain(t));
    assert.ok(t.events.some((e) => e.startsWith('EVENT presence from=paris@localhost/church type=available')), explain(t));
    assert.ok(p.events.includes('EVENT message from=tybalt@localhost/street type=chat body=Thou wretched boy delay=none delay_from='), explain(p));
    assert.ok(t.events.includes('EVENT message from=paris@localhost/church type=chat body=echo: Thou wretched boy'), explain(t));
  });

  it('receives, on login, the messages slixmpp sent while it was offline: in order, with a delay stamp', async function () {
    const since = Date.now() - 1000;
    await ok(slix('friar', 'cell', { action: 'send', peer: 'nurse@localhost', send: ['Hie you to church', 'Two lines,\nin one message'] }));
    const nurse = await ok(aio('nurse', 'aio', { action: 'receive', expect: 2, collect: 1 }));
    const got = printedMessages(nurse.events);
    assert.deepEqual(got.map((m) => [m.from, m.type, m.body]), [
      ['friar@localhost/cell', 'chat', 'Hie you to church'],
      ['friar@localhost/cell', 'chat', 'Two lines,\\nin one message'],
    ], explain(nurse));
    for (const m of got) {
      assert.ok(m.delay, `no <delay/> on ${m.body}: ${explain(nurse)}`);
      const stamp = Date.parse(m.delay);
      assert.ok(stamp >= since && stamp <= Date.now(), `stamp ${m.delay} out of range`);
      assert.equal(m.delayFrom, 'localhost');
    }
    assert.ok(Date.parse(got[0]!.delay!) <= Date.parse(got[1]!.delay!), explain(nurse));
    assert.ok(nurse.events.includes('EVENT received count=2'), explain(nurse));

    // Delivered once: the next login finds nothing stored.
    const again = await ok(aio('nurse', 'aio', { action: 'receive', collect: 1 }));
    assert.deepEqual(printedMessages(again.events), [], explain(again));
  });

  it('sends messages that slixmpp, offline, receives on login: in order, with a delay stamp', async function () {
    const since = Date.now() - 1000;
    await ok(aio('lawrence', 'aio', { action: 'send', peer: 'balthasar@localhost', send: ['Go hence', 'Stay at Mantua'] }));
    const b = await ok(slix('balthasar', 'slix', { action: 'receive-offline', expect: 2, collect: 1 }));
    const got = printedMessages(b.events);
    assert.deepEqual(got.map((m) => [m.from, m.type, m.body]), [
      ['lawrence@localhost/aio', 'chat', 'Go hence'],
      ['lawrence@localhost/aio', 'chat', 'Stay at Mantua'],
    ], explain(b));
    for (const m of got) {
      // slixmpp prints the stamp as the server wrote it: XEP-0082 UTC, with milliseconds.
      assert.match(m.delay ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, explain(b));
      const stamp = Date.parse(m.delay!);
      assert.ok(stamp >= since && stamp <= Date.now(), `stamp ${m.delay} out of range`);
      assert.equal(m.delayFrom, 'localhost');
    }
    assert.ok(b.events.includes('EVENT received count=2'), explain(b));
  });
});
