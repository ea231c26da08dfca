// Interop with a real third-party client library: slixmpp 1.8.3 (Debian's python3-slixmpp, run by
// the system Python) with its default settings — certificate verification against the test CA,
// no TLS version cap, its own SASL mechanism choice (how it logs in, on the first attempt, is
// spec/interop/first-login.spec.ts) — is refused a wrong password, and two slixmpp clients
// subscribe to each other, see each other's presence and exchange messages. It manages its roster with its own
// update_roster / del_roster_item (checked against the roster a second client, @xmpp/client,
// reads and is pushed), and receives on login, in order and with a <delay/> stamp, the messages
// another slixmpp client sent while it was offline. The driver script prints one `EVENT …` line
// per thing that happened (see spec/interop/slixmpp_client.py).
import assert from 'node:assert/strict';
import path from 'node:path';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa } from '../helpers/testca.ts';
import { PYTHON, PyClient, printedMessages, printedRoster, pythonModuleVersion, type Result } from './pyclient.ts';

const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_client.py');
const NS_ROSTER = 'jabber:iq:roster';

interface RunOptions {
  jid: string;
  password: string;
  action?: 'login' | 'chat' | 'send' | 'receive-offline' | 'roster-get' | 'roster-set' | 'roster-remove';
  peer?: string;
  subscribe?: boolean;
  /** Message bodies, sent in order. */
  send?: string | string[];
  echo?: boolean;
  expect?: number;
  collect?: number;
  name?: string;
  groups?: string[];
  timeout?: number;
}

describe('interop: slixmpp (Python) client', function () {
  let server: TestServer;
  const running: PyClient[] = [];
  const clients: TestClient[] = [];

  const run = (opts: RunOptions): PyClient => {
    const args = [
      '--jid', opts.jid,
      '--password', opts.password,
      '--port', String(server.c2sPort),
      '--action', opts.action ?? 'login',
      '--timeout', String(opts.timeout ?? 20),
    ];
    if (opts.peer) args.push('--peer', opts.peer);
    if (opts.subscribe) args.push('--subscribe');
    for (const body of opts.send === undefined ? [] : [opts.send].flat()) args.push('--send', body);
    if (opts.echo) args.push('--echo');
    if (opts.expect !== undefined) args.push('--expect', String(opts.expect));
    if (opts.collect !== undefined) args.push('--collect', String(opts.collect));
    if (opts.name !== undefined) args.push('--name', opts.name);
    for (const g of opts.groups ?? []) args.push('--group', g);
    const slix = PyClient.spawn(SCRIPT, args, `slixmpp ${opts.jid}`);
    running.push(slix);
    return slix;
  };

  const loginUser = async (user: string, password: string, resource: string): Promise<TestClient> => {
    const c = await login(server, user, password, { resource });
    clients.push(c);
    return c;
  };

  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-4000)}`;

  before(async function () {
    // python3-slixmpp is installed by .ci/run (apt-get); without it this suite fails rather than skips.
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({
      users: { romeo: 'r0meo-pass', juliet: 'jul1et-pass', nurse: 'nurse-pass', friar: 'fr1ar-pass', balthasar: 'balth-pass' },
      config: { tls: testCa().serverTls },
    });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((s) => s.kill()));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async function () {
    await server?.destroy();
  });

  it('refuses a wrong password with not-authorized', async function () {
    const r = await run({ jid: 'romeo@localhost/bad', password: 'wrong-pass' }).exited;
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.events.some((e) => e.startsWith('EVENT failed_auth condition=not-authorized')), explain(r));
    assert.ok(!r.events.includes('EVENT auth_success'), explain(r));
    assert.ok(!r.events.some((e) => e.startsWith('EVENT session_start')), explain(r));
    assert.match(server.output, /authentication failure/);
  });

  it('subscribes both ways, shares presence and exchanges a message each way', async function () {
    // Juliet comes online first and answers Romeo's first message; slixmpp's auto_authorize and
    // auto_subscribe accept Romeo's request and ask back.
    const juliet = run({ jid: 'juliet@localhost/garden', password: 'jul1et-pass', action: 'chat', peer: 'romeo@localhost', echo: true, timeout: 30 });
    await juliet.waitFor(/^EVENT sent_presence$/);
    const romeo = run({ jid: 'romeo@localhost/balcony', password: 'r0meo-pass', action: 'chat', peer: 'juliet@localhost', subscribe: true, send: 'But soft!', timeout: 30 });

    const [j, r] = await Promise.all([juliet.exited, romeo.exited]);
    assert.equal(r.code, 0, `romeo: ${explain(r)}\njuliet: ${explain(j)}`);
    assert.equal(j.code, 0, `juliet: ${explain(j)}\nromeo: ${explain(r)}`);

    // The subscription handshake both ways, with roster pushes ending in 'both'.
    assert.ok(j.events.includes('EVENT subscribe from=romeo@localhost'), explain(j));
    assert.ok(r.events.includes('EVENT subscribed from=juliet@localhost'), explain(r));
    assert.ok(r.events.includes('EVENT subscribe from=juliet@localhost'), explain(r));
    assert.ok(j.events.includes('EVENT subscribed from=romeo@localhost'), explain(j));
    assert.ok(r.events.includes('EVENT roster_push jid=juliet@localhost subscription=both ask='), explain(r));
    assert.ok(j.events.includes('EVENT roster_push jid=romeo@localhost subscription=both ask='), explain(j));
    // Each sees the other's available presence.
    assert.ok(r.events.some((e) => e.startsWith('EVENT presence from=juliet@localhost/garden type=available')), explain(r));
    assert.ok(j.events.some((e) => e.startsWith('EVENT presence from=romeo@localhost/balcony type=available')), explain(j));
    // A message each way, with the sender's full JID stamped.
    assert.ok(j.events.includes('EVENT message from=romeo@localhost/balcony type=chat body=But soft!'), explain(j));
    assert.ok(r.events.includes('EVENT message from=juliet@localhost/garden type=chat body=echo: But soft!'), explain(r));
  });
  it('manages its roster with update_roster and del_roster_item: pushed, and stored on the server', async function () {
    // slixmpp's update_roster always sends the item's current subscription (subscription='none'
    // for a new item, 'both' for a mutual contact); RFC 6121 §2.1.2.5 has the server ignore any
    // value but 'remove' in a roster set, so this is an ordinary add/update.
    const roster = async (c: TestClient) => {
      const r = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
      return (r.getChild('query', NS_ROSTER)?.getChildren('item') ?? []).map((i) => ({
        jid: i.attrs.jid as string,
        name: i.attrs.name as string | undefined,
        groups: i.getChildren('group').map((g) => g.getText()).sort(),
        subscription: i.attrs.subscription as string,
      }));
    };
    const pushed = (watcher: TestClient, what: (item: Element) => boolean) =>
      watcher.expect((el) => {
        const item = el.name === 'iq' && el.attrs.type === 'set' ? el.getChild('query', NS_ROSTER)?.getChild('item') : undefined;
        return item !== undefined && item.attrs.jid === 'juliet@localhost' && what(item);
      });
    // Another resource of the same user, interested in the roster, sees every push too.
    const watcher = await loginUser('nurse', 'nurse-pass', 'watcher');
    assert.deepEqual(await roster(watcher), []);

    const add = await run({ jid: 'nurse@localhost/slix', password: 'nurse-pass', action: 'roster-set', peer: 'juliet@localhost', name: 'The Lady', groups: ['Capulets'] }).exited;
    assert.equal(add.code, 0, explain(add));
    assert.ok(add.events.includes('EVENT set_result jid=juliet@localhost'), explain(add));
    assert.ok(add.events.includes('EVENT roster_push_item jid=juliet@localhost name=The Lady groups=Capulets subscription=none ask='), explain(add));
    assert.deepEqual(printedRoster(add.events)?.items, [{ jid: 'juliet@localhost', name: 'The Lady', groups: ['Capulets'], subscription: 'none', ask: '' }]);
    await pushed(watcher, (i) => i.attrs.name === 'The Lady');
    assert.deepEqual(await roster(watcher), [{ jid: 'juliet@localhost', name: 'The Lady', groups: ['Capulets'], subscription: 'none' }]);

    const update = await run({ jid: 'nurse@localhost/slix', password: 'nurse-pass', action: 'roster-set', peer: 'juliet@localhost', name: 'Juliet', groups: ['Capulets', 'Wards'] }).exited;
    assert.equal(update.code, 0, explain(update));
    assert.ok(update.events.includes('EVENT roster_push_item jid=juliet@localhost name=Juliet groups=Capulets|Wards subscription=none ask='), explain(update));
    assert.deepEqual(printedRoster(update.events)?.items, [{ jid: 'juliet@localhost', name: 'Juliet', groups: ['Capulets', 'Wards'], subscription: 'none', ask: '' }]);
    await pushed(watcher, (i) => i.attrs.name === 'Juliet');
    assert.deepEqual(await roster(watcher), [{ jid: 'juliet@localhost', name: 'Juliet', groups: ['Capulets', 'Wards'], subscription: 'none' }]);

    const remove = await run({ jid: 'nurse@localhost/slix', password: 'nurse-pass', action: 'roster-remove', peer: 'juliet@localhost' }).exited;
    assert.equal(remove.code, 0, explain(remove));
    assert.ok(remove.events.includes('EVENT remove_result jid=juliet@localhost'), explain(remove));
    assert.ok(remove.events.includes('EVENT roster_push_item jid=juliet@localhost name= groups= subscription=remove ask='), explain(remove));
    assert.deepEqual(printedRoster(remove.events)?.items, []);
    await pushed(watcher, (i) => i.attrs.subscription === 'remove');
    assert.deepEqual(await roster(watcher), []);
  });

  it('receives on login the messages sent while it was offline: in order, with a delay stamp, once', async function () {
    const since = Date.now() - 1000;
    const sent = await run({ jid: 'friar@localhost/cell', password: 'fr1ar-pass', action: 'send', peer: 'balthasar@localhost', send: ['Hie to Mantua', 'With this letter'] }).exited;
    assert.equal(sent.code, 0, explain(sent));

    const r = await run({ jid: 'balthasar@localhost/slix', password: 'balth-pass', action: 'receive-offline', expect: 2, collect: 1 }).exited;
    assert.equal(r.code, 0, explain(r));
    const got = printedMessages(r.events);
    assert.deepEqual(got.map((m) => [m.from, m.type, m.body]), [
      ['friar@localhost/cell', 'chat', 'Hie to Mantua'],
      ['friar@localhost/cell', 'chat', 'With this letter'],
    ], explain(r));
    for (const m of got) {
      // The stamp as the server wrote it: XEP-0082 UTC with milliseconds, from the server's domain.
      assert.match(m.delay ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, explain(r));
      const stamp = Date.parse(m.delay!);
      assert.ok(stamp >= since && stamp <= Date.now(), `stamp ${m.delay} out of range`);
      assert.equal(m.delayFrom, 'localhost');
    }
    assert.ok(Date.parse(got[0]!.delay!) <= Date.parse(got[1]!.delay!), explain(r));
    assert.ok(r.events.includes('EVENT received count=2'), explain(r));

    // Delivered once: the next login finds nothing stored.
    const again = await run({ jid: 'balthasar@localhost/slix', password: 'balth-pass', action: 'receive-offline', collect: 1 }).exited;
    assert.equal(again.code, 0, explain(again));
    assert.deepEqual(printedMessages(again.events), [], explain(again));
  });
});
