// Every real client, as its users run it — default settings, certificate verification on against a
// CA the system trusts (spec/helpers/testca.ts), no TLS version cap, no patched SASL callback —
// logs in on its first SASL attempt, over STARTTLS and over direct TLS (XEP-0368), binds, and
// exchanges a message each way with a second party (a TestClient). "First attempt" is counted from
// the server's log: exactly one SASL outcome line for the account, a success (spec/helpers/sasl-log.ts).
//
// Not here: StanzaJS (`stanza` on npm) — it only has WebSocket and BOSH transports: it is tested
// with @xmpp/client over WebSocket in spec/interop/websocket-login.spec.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { login, xml, type Element, type TestClient } from '../helpers/client.ts';
import { assertFirstAttemptLogin, attemptsFor, describeAttempts } from '../helpers/sasl-log.ts';
import { ROOT, startServer, type TestServer } from '../helpers/server.ts';
import { testCa, trustingEnv, untrustingEnv } from '../helpers/testca.ts';
import { Profanity, profanityInstalled } from './profanity.ts';
import { PYTHON, PyClient, pythonEnv, pythonModuleVersion, type Result } from './pyclient.ts';

const SLIXMPP = path.join(ROOT, 'spec', 'interop', 'slixmpp_client.py');
const AIOXMPP = path.join(ROOT, 'spec', 'interop', 'aioxmpp_client.py');
const XMPPJS = path.join(ROOT, 'spec', 'interop', 'xmppjs_client.ts');
const HOST = 'localhost';

/** One account per client, so each test's count is about one client only. */
const USERS = {
  peer: 'peer-pass',
  slix: 'sl1x-pass',
  aio: 'a1o-pass',
  xmppjs: 'xmppjs-pass',
  prof: 'pr0f-pass',
  gosend: 'g0send-pass',
  sendxmpp: 'sendxmpp-pass',
} as const;
type User = keyof typeof USERS;
const bare = (user: User) => `${user}@${HOST}`;

interface Transport {
  name: string;
  directTls: boolean;
  port: (s: TestServer) => number;
}
const TRANSPORTS: Transport[] = [
  { name: 'STARTTLS', directTls: false, port: (s) => s.c2sPort },
  { name: 'direct TLS (XEP-0368)', directTls: true, port: (s) => s.directTlsPort },
];

/** A promise's outcome, so that a side waiting in the background never rejects unobserved. */
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}

function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

describe('interop: every client logs in on its first SASL attempt with its default settings', function () {
  let server: TestServer;
  let peer: TestClient;
  let home: string;
  const running: PyClient[] = [];
  const profanities: Profanity[] = [];

  const explain = (r: Result, user: User, from: number) =>
    `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- ${describeAttempts(server, bare(user), from)}\n--- server (tail)\n${server.output.slice(from).slice(-3000)}`;

  const track = (p: PyClient): PyClient => {
    running.push(p);
    return p;
  };

  /**
   * The peer's side of the exchange, in the background: wait for `body` from `user`, answer the
   * sender's full JID with `reply`. Resolves with the message received.
   */
  const answer = (user: User, body: string, reply: string): Promise<Settled<Element>> =>
    settle((async () => {
      const m = await peer.expect((el) => el.name === 'message' && String(el.attrs.from).split('/')[0] === bare(user) && el.getChildText('body') === body, 30_000);
      await peer.send(xml('message', { to: String(m.attrs.from), type: 'chat' }, xml('body', {}, reply)));
      return m;
    })());

  /** The message the peer got, or the reason it did not (with what the client printed). */
  const received = (s: Settled<Element>, why: string): Element => {
    if (!s.ok) assert.fail(`the peer got no message: ${String(s.error)}\n${why}`);
    return s.value;
  };

  before(async function () {
    // Installed by .ci/run (apt-get); a missing one fails the suite rather than skipping it.
    assert.ok(pythonModuleVersion('slixmpp'), `slixmpp is not importable by ${PYTHON}: apt-get install python3-slixmpp`);
    assert.ok(pythonModuleVersion('aioxmpp'), `aioxmpp is not importable by ${PYTHON}: apt-get install python3-aioxmpp`);
    assert.ok(profanityInstalled(), 'apt-get install profanity tmux');
    for (const cmd of ['go-sendxmpp', 'sendxmpp']) assert.ok(commandExists(cmd), `apt-get install ${cmd}`);
    home = mkdtempSync(path.join(tmpdir(), 'cadence-cli-home-'));
    server = await startServer({ users: USERS, config: { tls: testCa().serverTls } });
    peer = await login(server, 'peer', USERS.peer, { resource: 'desk', presence: true });
  });
  afterEach(async function () {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    await Promise.all(profanities.splice(0).map((p) => p.destroy()));
    peer?.inbox.drain();
  });
  after(async function () {
    await peer?.stop();
    await server?.destroy();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  describe('certificate verification stays on', function () {
    // The same runs, trusting another CA: each client refuses the server before any SASL.
    const refused = async (user: User, start: () => PyClient, why: RegExp) => {
      const from = server.output.length;
      const r = await track(start()).exited;
      assert.notEqual(r.code, 0, explain(r, user, from));
      assert.match(`${r.stdout}\n${r.stderr}`, why, explain(r, user, from));
      assert.deepEqual(attemptsFor(server, bare(user), from), [], explain(r, user, from));
    };
    const py = (script: string, user: User, extra: string[] = []) =>
      PyClient.spawn(script, ['--jid', `${bare(user)}/untrusting`, '--password', USERS[user], '--port', String(server.c2sPort), '--timeout', '10', ...extra], `${user} untrusting`, pythonEnv(untrustingEnv()));

    it('slixmpp', async function () {
      await refused('slix', () => py(SLIXMPP, 'slix'), /CERTIFICATE_VERIFY_FAILED/);
    });
    it('aioxmpp', async function () {
      // aioxmpp's own report of the failure varies (the handshake error, or an InvalidStateError
      // from its teardown); its log says why, every time.
      await refused('aio', () => py(AIOXMPP, 'aio', ['--debug']), /aioxmpp\.security_layer: certificate verification failed/);
    });
    it('@xmpp/client', async function () {
      const args = ['--import', 'tsx', XMPPJS, '--service', `xmpps://${HOST}:${server.directTlsPort}`, '--domain', HOST, '--username', 'xmppjs', '--password', USERS.xmppjs, '--peer', peer.jid, '--timeout', '10'];
      await refused('xmppjs', () => PyClient.command(process.execPath, args, { env: untrustingEnv() }), /unable to verify the first certificate|self-signed|unable to get local issuer/);
    });
    it('go-sendxmpp', async function () {
      const args = ['-t', '-u', bare('gosend'), '-p', USERS.gosend, '-j', `${HOST}:${server.directTlsPort}`, peer.jid];
      await refused('gosend', () => PyClient.command('go-sendxmpp', args, { stdin: 'never sent\n', env: untrustingEnv({ ...process.env, HOME: home }) }), /certificate signed by unknown authority/);
    });
  });

  describe('slixmpp 1.8.3 (Debian python3-slixmpp)', function () {
    for (const t of TRANSPORTS) {
      for (const mech of [undefined, 'SCRAM-SHA-1', 'SCRAM-SHA-256']) {
        const how = mech ? `pinned to ${mech} (sasl_mech)` : 'choosing the mechanism itself';
        it(`${how}, over ${t.name}`, async function () {
          const resource = `${t.directTls ? 'tls' : 'starttls'}-${mech ?? 'auto'}`;
          const body = `slixmpp ${resource} says hello`;
          const from = server.output.length;
          const answered = answer('slix', body, `hello back, ${resource}`);
          const args = ['--jid', `${bare('slix')}/${resource}`, '--password', USERS.slix, '--port', String(t.port(server)), '--action', 'message', '--peer', peer.jid, '--send', body];
          if (mech) args.push('--mech', mech);
          if (t.directTls) args.push('--direct-tls');
          const r = await track(PyClient.spawn(SLIXMPP, args, `slixmpp ${resource}`)).exited;
          assert.equal(r.code, 0, explain(r, 'slix', from));

          const used = await assertFirstAttemptLogin(server, bare('slix'), from, mech ? new RegExp(`^${mech}$`) : /^SCRAM-/);
          assert.ok(r.events.includes(`EVENT mechanism ${used}`), explain(r, 'slix', from));
          assert.ok(r.events.includes(`EVENT session_start jid=${bare('slix')}/${resource}`), explain(r, 'slix', from));
          const m = received(await answered, explain(r, 'slix', from));
          assert.equal(m.attrs.from, `${bare('slix')}/${resource}`);
          assert.ok(r.events.includes(`EVENT message from=${peer.jid} type=chat body=hello back, ${resource}`), explain(r, 'slix', from));
        });
      }
    }
  });

  describe('aioxmpp 0.13 (Debian python3-aioxmpp), default security layer', function () {
    for (const t of TRANSPORTS) {
      it(`over ${t.name}`, async function () {
        const resource = t.directTls ? 'tls' : 'starttls';
        const body = `aioxmpp ${resource} says hello`;
        const from = server.output.length;
        const answered = answer('aio', body, `hello back, aioxmpp ${resource}`);
        const args = ['--jid', `${bare('aio')}/${resource}`, '--password', USERS.aio, '--port', String(t.port(server)), '--action', 'message', '--peer', peer.jid, '--send', body];
        if (t.directTls) args.push('--direct-tls');
        const r = await track(PyClient.spawn(AIOXMPP, args, `aioxmpp ${resource}`)).exited;
        assert.equal(r.code, 0, explain(r, 'aio', from));

        await assertFirstAttemptLogin(server, bare('aio'), from);
        assert.ok(r.events.includes(`EVENT session_start jid=${bare('aio')}/${resource}`), explain(r, 'aio', from));
        const m = received(await answered, explain(r, 'aio', from));
        assert.equal(m.attrs.from, `${bare('aio')}/${resource}`);
        assert.ok(r.events.some((e) => e.startsWith(`EVENT message from=${peer.jid} type=chat body=hello back, aioxmpp ${resource} `)), explain(r, 'aio', from));
      });
    }
  });

  describe('@xmpp/client (xmpp.js, npm) with its defaults', function () {
    for (const t of TRANSPORTS) {
      it(`over ${t.name}`, async function () {
        const scheme = t.directTls ? 'xmpps' : 'xmpp';
        const body = `xmpp.js ${scheme} says hello`;
        const from = server.output.length;
        const answered = answer('xmppjs', body, `hello back, xmpp.js ${scheme}`);
        const args = ['--import', 'tsx', XMPPJS, '--service', `${scheme}://${HOST}:${t.port(server)}`, '--domain', HOST, '--username', 'xmppjs', '--password', USERS.xmppjs, '--peer', peer.jid, '--send', body];
        const r = await track(PyClient.command(process.execPath, args, { label: `xmpp.js ${scheme}` })).exited;
        assert.equal(r.code, 0, explain(r, 'xmppjs', from));

        await assertFirstAttemptLogin(server, bare('xmppjs'), from);
        const online = /^EVENT online jid=(\S+)$/m.exec(r.stdout);
        assert.ok(online?.[1]?.startsWith(`${bare('xmppjs')}/`), explain(r, 'xmppjs', from));
        const m = received(await answered, explain(r, 'xmppjs', from));
        assert.equal(m.attrs.from, online?.[1]);
        assert.ok(r.events.includes(`EVENT message from=${peer.jid} type=chat body=hello back, xmpp.js ${scheme}`), explain(r, 'xmppjs', from));
      });
    }
  });

  describe('libstrophe 0.12 through Profanity (Debian), typed into a terminal', function () {
    for (const t of TRANSPORTS) {
      it(`over ${t.name}`, async function () {
        const prof = await Profanity.start();
        profanities.push(prof);
        const body = `profanity ${t.directTls ? 'tls' : 'starttls'} says hello`;
        const reply = `hello back, profanity ${t.directTls ? 'tls' : 'starttls'}`;
        const from = server.output.length;
        const answered = answer('prof', body, reply);
        const why = () => `--- ${describeAttempts(server, bare('prof'), from)}\n--- profanity log (tail)\n${prof.log().slice(-6000)}`;

        const jid = await prof.connect(bare('prof'), USERS.prof, t.port(server), t.directTls);
        assert.ok(jid.startsWith(`${bare('prof')}/`), jid);
        await assertFirstAttemptLogin(server, bare('prof'), from);

        // To the contact's bare JID, as a user types it; the server delivers it to the peer's resource.
        await prof.type(`/msg ${peer.bare} ${body}`);
        const m = received(await answered, why());
        assert.equal(m.attrs.from, jid);
        // The answer, from the peer's full JID, shows in the chat window /msg opened.
        await prof.waitForScreen(new RegExp(reply));
        await prof.quit();
      });
    }
  });

  describe('go-sendxmpp (Debian) from the command line', function () {
    // Debian 12's go-sendxmpp is built on go-xmpp of 2022-07, which has no SCRAM at all: it
    // authenticates with PLAIN (else DIGEST-MD5, X-OAUTH2, ANONYMOUS). What holds for it is one
    // attempt, with the strongest mechanism it has.
    for (const t of TRANSPORTS) {
      it(`sends a message and, with -l, receives one; over ${t.name}`, async function () {
        const tls = t.directTls ? ['-t'] : [];
        const env = trustingEnv({ ...process.env, HOME: home });
        const server_ = `${HOST}:${t.port(server)}`;
        const body = `go-sendxmpp ${t.directTls ? 'tls' : 'starttls'} says hello`;
        const reply = `hello back, go-sendxmpp ${t.directTls ? 'tls' : 'starttls'}`;

        // Send: the message on stdin, the recipient as argument.
        let from = server.output.length;
        const answered = settle(peer.expect((el) => el.name === 'message' && String(el.attrs.from).startsWith(`${bare('gosend')}/`) && el.getChildText('body')?.trim() === body, 30_000));
        const sent = await track(PyClient.command('go-sendxmpp', [...tls, '-u', bare('gosend'), '-p', USERS.gosend, '-j', server_, peer.jid], { stdin: `${body}\n`, env })).exited;
        assert.equal(sent.code, 0, explain(sent, 'gosend', from));
        await assertFirstAttemptLogin(server, bare('gosend'), from, /^PLAIN$/);
        received(await answered, explain(sent, 'gosend', from));

        // Receive: the answer waits offline; `go-sendxmpp -l` comes online and prints it.
        await peer.send(xml('message', { to: bare('gosend'), type: 'chat' }, xml('body', {}, reply)));
        from = server.output.length;
        const listener = track(PyClient.command('go-sendxmpp', [...tls, '-l', '-u', bare('gosend'), '-p', USERS.gosend, '-j', server_], { env, label: 'go-sendxmpp -l' }));
        await listener.waitFor(new RegExp(` ${peer.bare}: ${reply}$`)).catch(async (err: unknown) => {
          await listener.kill();
          assert.fail(`${String(err)}\n${explain(await listener.exited, 'gosend', from)}`);
        });
        await assertFirstAttemptLogin(server, bare('gosend'), from, /^PLAIN$/);
        listener.proc.kill('SIGINT');
        await listener.exited;
      });
    }
  });

  describe('sendxmpp (Debian, Perl Net::XMPP) from the command line', function () {
    // sendxmpp only sends. Net::XMPP authenticates through Authen::SASL, which with Debian's
    // dependencies (libauthen-sasl-perl, the pure-Perl plugin) knows ANONYMOUS, CRAM-MD5,
    // DIGEST-MD5, EXTERNAL, GSSAPI, LOGIN and PLAIN — no SCRAM — so PLAIN is what it can do.
    // It checks certificates against --tls-ca-path (its documented way to trust a CA; the
    // default, /etc/ssl/certs, does not read SSL_CERT_FILE). -t is STARTTLS, -e direct TLS.
    for (const t of TRANSPORTS) {
      it(`sends a message; over ${t.name}`, async function () {
        const body = `sendxmpp ${t.directTls ? 'tls' : 'starttls'} says hello`;
        const from = server.output.length;
        const answered = settle(peer.expect((el) => el.name === 'message' && String(el.attrs.from).startsWith(`${bare('sendxmpp')}/`) && el.getChildText('body')?.trim() === body, 30_000));
        const args = [t.directTls ? '-e' : '-t', '-a', testCa().caFile, '-u', 'sendxmpp', '-p', USERS.sendxmpp, '-j', `${HOST}:${t.port(server)}`, peer.jid];
        const r = await track(PyClient.command('sendxmpp', args, { stdin: `${body}\n`, env: trustingEnv({ ...process.env, HOME: home }) })).exited;
        assert.equal(r.code, 0, explain(r, 'sendxmpp', from));
        await assertFirstAttemptLogin(server, bare('sendxmpp'), from, /^PLAIN$/);
        const m = received(await answered, explain(r, 'sendxmpp', from));
        assert.equal(m.attrs.from, `${bare('sendxmpp')}/sendxmpp`);
      });
    }
  });
});
