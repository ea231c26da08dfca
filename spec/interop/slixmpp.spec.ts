// Interop with a real third-party client library: slixmpp 1.8.3 (Debian's python3-slixmpp, run by
// the system Python) logs in over STARTTLS with SCRAM-SHA-256, with SCRAM-SHA-256-PLUS bound to
// tls-unique over TLS 1.2, is refused a wrong password, and two slixmpp clients subscribe to each
// other, see each other's presence and exchange messages. The driver script prints one
// `EVENT …` line per thing that happened (see spec/interop/slixmpp_client.py).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_client.py');

interface RunOptions {
  jid: string;
  password: string;
  mech?: string;
  /** Keep slixmpp's own GS2 flag for a non-PLUS SCRAM (see the script). */
  gs2y?: boolean;
  tlsMax?: '1.2' | '1.3';
  action?: 'login' | 'chat';
  peer?: string;
  subscribe?: boolean;
  send?: string;
  echo?: boolean;
  timeout?: number;
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: string[];
}

/** A running slixmpp client: its output so far, a wait for a given event line, and its exit. */
class Slix {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Result>;
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (c: Buffer) => {
      this.stdout += c.toString();
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(this.stdout);
        if (m) w.resolve(m);
        return !m;
      });
    });
    proc.stderr!.on('data', (c: Buffer) => {
      this.stderr += c.toString();
    });
    this.exited = new Promise((resolve) => {
      proc.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, events: this.events() }));
    });
  }

  events(): string[] {
    return this.stdout.split('\n').filter((l) => l.startsWith('EVENT ') || l.startsWith('FAIL '));
  }

  /** Resolves when a line matching `re` (multiline) has been printed; rejects on exit/timeout. */
  waitFor(re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
    const rx = new RegExp(re.source, re.flags.includes('m') ? re.flags : `${re.flags}m`);
    const m = rx.exec(this.stdout);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`slixmpp: ${re} not printed within ${ms} ms:\n${this.stdout}\n${this.stderr}`)), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        const late = rx.exec(this.stdout);
        if (late) resolve(late);
        else reject(new Error(`slixmpp exited without printing ${re}:\n${this.stdout}\n${this.stderr}`));
      });
      this.waiters.push({
        re: rx,
        resolve: (found) => {
          clearTimeout(timer);
          resolve(found);
        },
      });
    });
  }
}

describe('interop: slixmpp (Python) client', function () {
  let server: TestServer;
  const running: Slix[] = [];

  const run = (opts: RunOptions): Slix => {
    const args = [
      SCRIPT,
      '--jid', opts.jid,
      '--password', opts.password,
      '--port', String(server.c2sPort),
      '--tls-max', opts.tlsMax ?? '1.3',
      '--action', opts.action ?? 'login',
      '--timeout', String(opts.timeout ?? 20),
    ];
    if (opts.mech) args.push('--mech', opts.mech);
    if (opts.peer) args.push('--peer', opts.peer);
    if (opts.subscribe) args.push('--subscribe');
    if (opts.send !== undefined) args.push('--send', opts.send);
    if (opts.echo) args.push('--echo');
    if (opts.gs2y) args.push('--gs2-y');
    // The system Python with Debian's slixmpp: keep another Python's settings out of it.
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    const proc = spawn(PYTHON, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
    const slix = new Slix(proc);
    running.push(slix);
    return slix;
  };

  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-4000)}`;

  before(async function () {
    const probe = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import slixmpp; print(slixmpp.__version__)'], { encoding: 'utf8' }) : undefined;
    // python3-slixmpp is installed by .ci/run (apt-get); without it this suite fails rather than skips.
    assert.equal(probe?.status, 0, `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({ users: { romeo: 'r0meo-pass', juliet: 'jul1et-pass' } });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map(async (s) => {
      if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
      await s.exited;
    }));
  });
  after(async function () {
    await server?.destroy();
  });

  it('logs in with SCRAM-SHA-256 over STARTTLS (TLS 1.3)', async function () {
    const r = await run({ jid: 'romeo@localhost/slix', password: 'r0meo-pass', mech: 'SCRAM-SHA-256' }).exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT tls version=TLSv1.3'), explain(r));
    assert.ok(r.events.includes('EVENT mechanism SCRAM-SHA-256'), explain(r));
    assert.ok(r.events.includes('EVENT auth_success'), explain(r));
    assert.ok(r.events.includes('EVENT session_start jid=romeo@localhost/slix'), explain(r));
    assert.ok(r.events.includes('EVENT done'), explain(r));
  });

  it('logs in with SCRAM-SHA-256-PLUS bound to tls-unique (TLS 1.2)', async function () {
    const r = await run({ jid: 'juliet@localhost/plus', password: 'jul1et-pass', mech: 'SCRAM-SHA-256-PLUS', tlsMax: '1.2' }).exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT tls version=TLSv1.2'), explain(r));
    assert.ok(r.events.includes('EVENT mechanism SCRAM-SHA-256-PLUS'), explain(r));
    assert.ok(r.events.includes('EVENT channel_binding gs2=p=tls-unique,,'), explain(r));
    assert.ok(r.events.includes('EVENT session_start jid=juliet@localhost/plus'), explain(r));
    assert.ok(r.events.includes('EVENT done'), explain(r));
  });

  it('logs in with SCRAM-SHA-1-PLUS bound to tls-unique (TLS 1.2)', async function () {
    const r = await run({ jid: 'romeo@localhost/plus1', password: 'r0meo-pass', mech: 'SCRAM-SHA-1-PLUS', tlsMax: '1.2' }).exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT mechanism SCRAM-SHA-1-PLUS'), explain(r));
    assert.ok(r.events.includes('EVENT session_start jid=romeo@localhost/plus1'), explain(r));
  });

  it('picks SCRAM-SHA-256-PLUS by itself over TLS 1.2', async function () {
    const r = await run({ jid: 'romeo@localhost/auto12', password: 'r0meo-pass', tlsMax: '1.2' }).exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT mechanism SCRAM-SHA-256-PLUS'), explain(r));
    assert.ok(!r.events.some((e) => e.startsWith('EVENT failed_auth')), explain(r));
  });

  it("refuses slixmpp's GS2 'y' flag as a downgrade when -PLUS was offered", async function () {
    // slixmpp 1.8.3 sends 'y' for a plain SCRAM whenever the socket yields tls-unique data (Python
    // returns it even for TLS 1.3), although the server offered -PLUS: RFC 5802 §6 requires
    // failing that exchange.
    const r = await run({ jid: 'romeo@localhost/y', password: 'r0meo-pass', mech: 'SCRAM-SHA-256', gs2y: true, tlsMax: '1.2' }).exited;
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.events.some((e) => e.startsWith('EVENT failed_auth condition=not-authorized')), explain(r));
    assert.ok(!r.events.includes('EVENT auth_success'), explain(r));
  });

  it('logs in with its own mechanism choice over TLS 1.3', async function () {
    // slixmpp's preference order over TLS 1.3: SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS (tls-unique,
    // not defined for TLS 1.3, so refused), SCRAM-SHA-256 and SCRAM-SHA-1 (GS2 'y', refused as a
    // downgrade), then PLAIN: four failures stay under the server's maxFailures (5), so an
    // unconfigured slixmpp still gets in.
    const r = await run({ jid: 'romeo@localhost/auto13', password: 'r0meo-pass' }).exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.some((e) => e.startsWith('EVENT mechanism ')), explain(r));
    assert.ok(r.events.includes('EVENT session_start jid=romeo@localhost/auto13'), explain(r));
  });

  it('refuses a wrong password with not-authorized', async function () {
    const r = await run({ jid: 'romeo@localhost/bad', password: 'wrong-pass', mech: 'SCRAM-SHA-256' }).exited;
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.events.some((e) => e.startsWith('EVENT failed_auth condition=not-authorized')), explain(r));
    assert.ok(!r.events.includes('EVENT auth_success'), explain(r));
    assert.ok(!r.events.some((e) => e.startsWith('EVENT session_start')), explain(r));
    assert.match(server.output, /authentication failure/);
  });

  it('subscribes both ways, shares presence and exchanges a message each way', async function () {
    // Juliet comes online first and answers Romeo's first message; slixmpp's auto_authorize and
    // auto_subscribe accept Romeo's request and ask back.
    const juliet = run({ jid: 'juliet@localhost/garden', password: 'jul1et-pass', mech: 'SCRAM-SHA-256', action: 'chat', peer: 'romeo@localhost', echo: true, timeout: 30 });
    await juliet.waitFor(/^EVENT sent_presence$/);
    const romeo = run({ jid: 'romeo@localhost/balcony', password: 'r0meo-pass', mech: 'SCRAM-SHA-256', action: 'chat', peer: 'juliet@localhost', subscribe: true, send: 'But soft!', timeout: 30 });

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
});
