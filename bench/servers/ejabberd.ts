// ejabberd (Debian package) under test: `ejabberdctl --config-dir DIR … foreground` with a private
// ejabberd.yml and ejabberdctl.cfg, Mnesia spool and logs in DIR, its own node name and a fixed
// Erlang distribution port on 127.0.0.1 (ERL_DIST_PORT: no epmd is started or used), c2s on
// 127.0.0.1 only.
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Target } from '../lib/client.ts';
import { findDescendant, sleep } from '../lib/proc.ts';
import { pkgVersion, run, spawnUntilXmpp, terminate, type CliCommand, type ServerDriver, type ServerSetup } from './types.ts';

const MODULES = ['mod_roster', 'mod_disco', 'mod_ping', 'mod_bosh', 'mod_stream_mgmt'];

export class EjabberdServer implements ServerDriver {
  readonly name = 'ejabberd';
  private proc: ChildProcess | undefined;
  private beamPid = 0;
  private setup!: ServerSetup;
  private created = '';
  output = '';
  private readonly node: string;
  private readonly cookie: string;

  constructor(private readonly distPort: number) {
    this.node = `cadencebench${process.pid}@localhost`;
    this.cookie = `bench${Math.random().toString(36).slice(2)}`;
  }

  version(): string {
    return pkgVersion('ejabberd');
  }

  describe(): string {
    return `modules ${MODULES.join(', ')}; internal auth, SCRAM-SHA-1 stored (auth_password_format: scram), Mnesia; no shaper; backlog 511; default schedulers (one per core)`;
  }

  notes(): string[] {
    return ['the VM runs as the invoking user (EXEC_CMD=as_current_user in the private ejabberdctl.cfg) so that it inherits the raised open-file limit', `accounts: first with ejabberdctl register, the rest ejabberd_auth:try_register of its #scram{} record over one Erlang RPC connection (${this.created})`];
  }

  private ctl(...args: string[]): string[] {
    const d = this.setup.dir;
    return ['--config-dir', d, '--ctl-config', path.join(d, 'ejabberdctl.cfg'), '--spool', path.join(d, 'spool'), '--logs', path.join(d, 'logs'), ...args];
  }

  async prepare(s: ServerSetup): Promise<void> {
    this.setup = s;
    const d = s.dir;
    mkdirSync(path.join(d, 'spool'), { recursive: true });
    mkdirSync(path.join(d, 'logs'), { recursive: true });
    const pem = path.join(d, 'bench.pem');
    writeFileSync(pem, readFileSync(s.certFile, 'utf8') + readFileSync(s.keyFile, 'utf8'));
    if (existsSync('/etc/ejabberd/inetrc')) copyFileSync('/etc/ejabberd/inetrc', path.join(d, 'inetrc'));
    else writeFileSync(path.join(d, 'inetrc'), '');
    writeFileSync(
      path.join(d, 'ejabberd.yml'),
      `hosts:
  - ${JSON.stringify(s.domain)}
loglevel: warning
certfiles:
  - ${JSON.stringify(pem)}
listen:
  -
    port: ${s.port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 511
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: true
  -
    port: ${s.httpPort}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /xmpp-websocket: ejabberd_http_ws
      /http-bind: mod_bosh
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
${MODULES.map((m) => `  ${m}: {}`).join('\n')}
  mod_muc:
    host: "conference.@HOST@"
    max_users: 1000
    default_room_options:
      max_users: 1000
`,
    );
    writeFileSync(
      path.join(d, 'ejabberdctl.cfg'),
      `ERLANG_NODE=${this.node}
ERL_DIST_PORT=${this.distPort}
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -setcookie ${this.cookie}"
EJABBERD_PID_PATH=${path.join(d, 'ejabberd.pid')}
EJABBERD_BYPASS_WARNINGS=true
# Run the VM as the invoking user instead of through su to the ejabberd user: su's PAM session
# (pam_limits) lowers the open-file soft limit to 1024, which stalls logins at ~1,000 sessions.
EXEC_CMD=as_current_user
`,
    );
    // Accounts need the node running.
    await this.start();
    try {
      const t0 = performance.now();
      const [first, ...rest] = s.users;
      if (first) {
        await run('ejabberdctl', this.ctl('register', first, s.domain, s.password));
        for (let i = 0; i < rest.length; i += 2000) {
          const names = rest.slice(i, i + 2000).map((u) => `<<"${u}">>`).join(',');
          await this.rpcEval(
            `P = rpc:call(N, ejabberd_auth, get_password, [<<"${first}">>, H]), ` +
              `R = [rpc:call(N, ejabberd_auth, try_register, [U, H, P]) || U <- [${names}]], ` +
              `Bad = [X || X <- R, X =/= ok, X =/= {error, exists}], ` +
              `io:format("~p~n", [{length(R), Bad}])`,
          );
        }
      }
      this.created = `${s.users.length} accounts in ${Math.round(performance.now() - t0)} ms`;
      s.log(`ejabberd: ${this.created}`);
    } finally {
      await this.stop();
    }
  }

  /** Evaluate Erlang on the running node, with N bound to the node and H to the domain. */
  private async rpcEval(body: string): Promise<string> {
    const expr = `N = '${this.node}', H = <<"${this.setup.domain}">>, ${body}, init:stop().`;
    const out = await run('erl', [
      '-sname', `benchctl${process.pid}`, '-hidden', '-noinput', '-setcookie', this.cookie,
      '-erl_epmd_port', String(this.distPort), '-start_epmd', 'false', '-dist_listen', 'false',
      '-eval', expr,
    ], { timeoutMs: 600_000 });
    if (/badrpc|error/.test(out) && !/\{\d+,\[\]\}/.test(out)) throw new Error(`ejabberd rpc failed: ${out}`);
    return out;
  }

  async start(): Promise<void> {
    const proc = await spawnUntilXmpp('ejabberdctl', this.ctl('foreground'), this.setup.dir, this.target(), 90_000, this);
    this.proc = proc;
    for (let i = 0; i < 20 && !this.beamPid; i++) {
      this.beamPid = findDescendant(proc.pid!, /^beam/) ?? 0;
      if (!this.beamPid) await sleep(100);
    }
    if (!this.beamPid) throw new Error('cannot find the beam.smp process of ejabberd');
  }

  pid(): number {
    return this.beamPid;
  }

  configLabel(): string {
    return 'ejabberd.yml';
  }

  cliCommands(): CliCommand[] {
    return [
      { label: 'status', argv: ['ejabberdctl', ...this.ctl('status')] },
      { label: 'user list', argv: ['ejabberdctl', ...this.ctl('registered_users', this.setup.domain)] },
    ];
  }

  async stop(): Promise<void> {
    // SIGTERM to the VM itself (OTP: init:stop()); the ejabberdctl/su wrapper exits with it.
    await terminate(this.proc, 30_000, this.beamPid || undefined);
    this.proc = undefined;
    this.beamPid = 0;
  }

  wsTarget(): Target {
    return { ...this.target(), wsUrl: `ws://127.0.0.1:${this.setup.httpPort}/xmpp-websocket` };
  }

  target(): Target {
    return { host: '127.0.0.1', port: this.setup.port, domain: this.setup.domain };
  }
}
