// Interop with a real external component (XEP-0114): slixmpp 1.8.3's ComponentXMPP (Debian's
// python3-slixmpp, run by the system Python) connects to mod_component with the shared secret and
// echoes the messages a client sends to its domain; a wrong secret is refused; a second
// connection for a connected component is refused with conflict; killing the process is a
// non-graceful disconnect, the script's own </stream:stream> a graceful one (both logged by the
// server). While the component is offline, iq and messages to it get service-unavailable. The
// driver script prints one `EVENT …` line per thing that happened (spec/interop/slixmpp_component.py).
// A few protocol details slixmpp cannot be made to get wrong are checked over a raw socket.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { RawClient, login, stanzaErrorCondition, streamErrorCondition, xml, type Element, type TestClient } from '../helpers/client.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'spec', 'interop', 'slixmpp_component.py');
const DOMAIN = 'echo.localhost';
const SECRET = 's3cret';
const NS_COMPONENT = 'jabber:component:accept';
const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

interface RunOptions {
  secret?: string;
  maxEcho?: number;
  linger?: number;
  timeout?: number;
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: string[];
}

/** A running slixmpp component: its output so far, a wait for a given event line, and its exit. */
class SlixComponent {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Result>;
  private waiters: { re: RegExp; resolve: () => void }[] = [];

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (c: Buffer) => {
      this.stdout += c.toString();
      this.waiters = this.waiters.filter((w) => {
        const hit = w.re.test(this.stdout);
        if (hit) w.resolve();
        return !hit;
      });
    });
    proc.stderr!.on('data', (c: Buffer) => {
      this.stderr += c.toString();
    });
    this.exited = new Promise((resolve) => {
      proc.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, events: this.events() }));
    });
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  events(): string[] {
    return this.stdout.split('\n').filter((l) => l.startsWith('EVENT ') || l.startsWith('FAIL '));
  }

  /** Resolves when a line matching `re` has been printed; rejects on exit or timeout. */
  waitFor(re: RegExp, ms = 20_000): Promise<void> {
    const rx = new RegExp(re.source, re.flags.includes('m') ? re.flags : `${re.flags}m`);
    if (rx.test(this.stdout)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`component: ${re} not printed within ${ms} ms:\n${this.stdout}\n${this.stderr}`)), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        if (rx.test(this.stdout)) resolve();
        else reject(new Error(`component exited without printing ${re}:\n${this.stdout}\n${this.stderr}`));
      });
      this.waiters.push({
        re: rx,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

describe('interop: slixmpp external component (XEP-0114)', function () {
  let server: TestServer;
  const running: SlixComponent[] = [];
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  const run = (opts: RunOptions = {}): SlixComponent => {
    const args = [
      SCRIPT,
      '--jid', DOMAIN,
      '--secret', opts.secret ?? SECRET,
      '--port', String(server.componentPort),
      '--max-echo', String(opts.maxEcho ?? 0),
      '--linger', String(opts.linger ?? 0),
      '--timeout', String(opts.timeout ?? 30),
    ];
    const proc = spawn(PYTHON, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    const c = new SlixComponent(proc);
    running.push(c);
    return c;
  };

  /** A component that has completed its handshake. */
  const connected = async (opts: RunOptions = {}): Promise<SlixComponent> => {
    const c = run(opts);
    await c.waitFor(new RegExp(`^EVENT session_start jid=${DOMAIN}$`));
    return c;
  };

  const romeo = async (): Promise<TestClient> => {
    const c = await login(server, 'romeo', 'r0meo-pass', { resource: 'balcony' });
    clients.push(c);
    return c;
  };

  const count = (needle: string, text = server.output) => text.split(needle).length - 1;

  /** Resolves when the server's output (from `from` on) contains `needle`. */
  const serverLogged = async (needle: string, from = 0, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!server.output.slice(from).includes(needle)) {
      if (Date.now() > deadline) throw new Error(`server did not log "${needle}":\n${server.output.slice(from).slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const explain = (r: Result) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- server\n${server.output.slice(-4000)}`;

  const discoInfo = (to: string) => xml('iq', { type: 'get', to }, xml('query', { xmlns: NS_DISCO_INFO }));

  before(async function () {
    const probe = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'from slixmpp import ComponentXMPP'], { encoding: 'utf8' }) : undefined;
    // python3-slixmpp is installed by .ci/run (apt-get); without it this suite fails rather than skips.
    assert.equal(probe?.status, 0, `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    server = await startServer({
      users: { romeo: 'r0meo-pass' },
      config: {
        componentPorts: [0],
        components: { [DOMAIN]: { secret: SECRET } },
      },
    });
    assert.ok(server.componentPort > 0, `no component listener in: ${server.addresses.join(' ')}`);
  });
  afterEach(async function () {
    for (const c of raws.splice(0)) c.close();
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(running.splice(0).map(async (c) => {
      if (c.running) c.proc.kill('SIGKILL');
      await c.exited;
    }));
    // The next test may connect the component again: wait until the server has let it go.
    const deadline = Date.now() + 10_000;
    while (count(`component ${DOMAIN} connected`) > count(`component ${DOMAIN} disconnected`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async function () {
    await server?.destroy();
  });

  it('answers iq and messages to an offline component with service-unavailable', async function () {
    const c = await romeo();
    const iq = await c.iqRaw(discoInfo(DOMAIN));
    assert.equal(iq.attrs.type, 'error', iq.toString());
    assert.equal(stanzaErrorCondition(iq), 'service-unavailable', iq.toString());

    const bounced = c.expect((el) => el.name === 'message' && el.attrs.type === 'error');
    await c.send(xml('message', { to: `bot@${DOMAIN}`, type: 'chat', id: 'm-offline' }, xml('body', {}, 'anyone?')));
    const m = await bounced;
    assert.equal(m.attrs.from, `bot@${DOMAIN}`);
    assert.equal(stanzaErrorCondition(m), 'service-unavailable', m.toString());
    // Presence to it is dropped, never bounced.
    await c.send(xml('presence', { to: DOMAIN, type: 'probe' }));
    await c.expectNothing((el) => el.name === 'presence', 300);
  });

  it('accepts the component with the right secret', async function () {
    const from = server.output.length;
    const comp = await connected();
    await serverLogged(`component ${DOMAIN} connected`, from);
    assert.ok(comp.running, `the component stays connected:\n${comp.stdout}\n${comp.stderr}`);
  });

  it('routes a client message to the component and the echo back to the client', async function () {
    await connected();
    const c = await romeo();

    const echo = c.expect((el) => el.name === 'message' && el.getChildText('body') === 'echo: hello');
    await c.send(xml('message', { to: DOMAIN, type: 'chat' }, xml('body', {}, 'hello')));
    const m = await echo;
    assert.equal(m.attrs.from, DOMAIN);
    assert.equal(m.attrs.to, c.jid);

    // Any address at the component's domain reaches it, and it may answer from that address.
    const echo2 = c.expect((el) => el.name === 'message' && el.getChildText('body') === 'echo: hi bot');
    await c.send(xml('message', { to: `bot@${DOMAIN}/x`, type: 'chat' }, xml('body', {}, 'hi bot')));
    const m2 = await echo2;
    assert.equal(m2.attrs.from, `bot@${DOMAIN}/x`);

    // iq requests reach it too (the echo bot answers every get/set with a result).
    const iq = await c.iqRaw(discoInfo(DOMAIN));
    assert.equal(iq.attrs.type, 'result', iq.toString());
    assert.equal(iq.attrs.from, DOMAIN);
  });

  it('refuses a wrong secret with not-authorized', async function () {
    const r = await run({ secret: 'not-the-secret' }).exited;
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT stream_error condition=not-authorized'), explain(r));
    assert.ok(!r.events.some((e) => e.startsWith('EVENT session_start')), explain(r));
    assert.match(server.output, /not-authorized \(Handshake failed\)/);
  });

  it('refuses a second connection for a connected component with conflict, keeping the first', async function () {
    const first = await connected();
    const r = await run().exited;
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT stream_error condition=conflict'), explain(r));
    assert.ok(first.running, 'the first component is still connected');
    const c = await romeo();
    const echo = c.expect((el) => el.name === 'message' && el.getChildText('body') === 'echo: still there?');
    await c.send(xml('message', { to: DOMAIN, type: 'chat' }, xml('body', {}, 'still there?')));
    await echo;
  });

  it('reports a killed component as a non-graceful disconnect, then bounces again', async function () {
    const comp = await connected();
    const from = server.output.length;
    comp.proc.kill('SIGKILL');
    await comp.exited;
    await serverLogged(`component ${DOMAIN} disconnected (not graceful)`, from);
    assert.ok(!server.output.slice(from).includes(`component ${DOMAIN} disconnected (graceful)`));

    const c = await romeo();
    const iq = await c.iqRaw(discoInfo(DOMAIN));
    assert.equal(stanzaErrorCondition(iq), 'service-unavailable', iq.toString());
  });

  it("reports the component's own stream close as a graceful disconnect", async function () {
    const comp = await connected({ maxEcho: 1 });
    const from = server.output.length;
    const c = await romeo();
    const echo = c.expect((el) => el.name === 'message' && el.getChildText('body') === 'echo: bye');
    await c.send(xml('message', { to: DOMAIN, type: 'chat' }, xml('body', {}, 'bye')));
    await echo;
    const r = await comp.exited;
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.events.includes('EVENT closed'), explain(r));
    await serverLogged(`component ${DOMAIN} disconnected (graceful)`, from);
    assert.ok(!server.output.slice(from).includes(`component ${DOMAIN} disconnected (not graceful)`));
  });

  describe('raw protocol', function () {
    const open = async (to: string): Promise<RawClient> => {
      const c = await RawClient.connect(server.componentPort);
      raws.push(c);
      c.write(`<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='${NS_STREAMS}' to='${to}'>`);
      return c;
    };
    const header = async (c: RawClient): Promise<Record<string, string>> => {
      const deadline = Date.now() + 5000;
      while (!c.streamAttrs) {
        if (Date.now() > deadline) throw new Error(`no stream header; received: ${c.received}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return c.streamAttrs;
    };
    const streamError = (c: RawClient): Promise<Element> => c.expect((el) => el.name === 'stream:error');

    it('answers the header with the domain and an id, and the handshake with an empty <handshake/>', async function () {
      const c = await open(DOMAIN);
      const attrs = await header(c);
      assert.equal(attrs.xmlns, NS_COMPONENT);
      assert.equal(attrs.from, DOMAIN);
      assert.ok(attrs.id);
      c.write(`<handshake>${createHash('sha1').update(attrs.id + SECRET).digest('hex')}</handshake>`);
      const hs = await c.expect((el) => el.name === 'handshake');
      assert.equal(hs.children.length, 0);
      // Sending from an address outside its domain closes the stream with invalid-from.
      c.write(`<message from='romeo@localhost' to='romeo@localhost'><body>spoof</body></message>`);
      assert.equal(streamErrorCondition(await streamError(c)), 'invalid-from');
      await c.waitClosed();
    });

    it('refuses a stream to a domain that is not an external component with host-unknown', async function () {
      const c = await open('nope.localhost');
      assert.equal(streamErrorCondition(await streamError(c)), 'host-unknown');
      await c.waitClosed();
    });

    it('refuses stanzas before the handshake with not-authorized', async function () {
      const c = await open(DOMAIN);
      await header(c);
      c.write(`<message from='${DOMAIN}' to='romeo@localhost'><body>early</body></message>`);
      assert.equal(streamErrorCondition(await streamError(c)), 'not-authorized');
      await c.waitClosed();
    });
  });

  describe('shutdown (stops the server: keep last)', function () {
    it('closes the component stream with system-shutdown when the server stops', async function () {
      const comp = await connected();
      const from = server.output.length;
      assert.equal(await server.stop(), 0);
      const r = await comp.exited;
      assert.ok(r.events.includes('EVENT stream_error condition=system-shutdown'), explain(r));
      assert.ok(server.output.slice(from).includes(`component ${DOMAIN} disconnected (graceful)`), server.output.slice(from));
    });
  });
});
