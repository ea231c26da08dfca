// Driving Profanity (Debian's, on libstrophe) as its users do: in a terminal — here a detached tmux
// session on a private tmux socket — typing commands and reading the screen (send-keys /
// capture-pane). Profanity runs with a private HOME (no config, no accounts, no trusted
// certificates of its own) and the test CA in SSL_CERT_FILE, which libstrophe's OpenSSL reads as
// the system trust store. `-l DEBUG` writes Profanity's log (libstrophe's stanzas included) to a
// file in that HOME, shown when a step fails; it changes nothing in what is sent.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { trustingEnv } from '../helpers/testca.ts';

const run = promisify(execFile);

/** Whether the `profanity` and `tmux` commands exist. */
export function profanityInstalled(): boolean {
  return ['profanity', 'tmux'].every((cmd) => spawnSync(cmd, ['-V'], { stdio: 'ignore' }).error === undefined);
}

export class Profanity {
  private constructor(readonly dir: string, private readonly env: NodeJS.ProcessEnv) {}

  static async start(): Promise<Profanity> {
    const dir = mkdtempSync(path.join(tmpdir(), 'cadence-profanity-'));
    const home = path.join(dir, 'home');
    const env = trustingEnv({
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      LANG: process.env.LANG || 'C.UTF-8',
    });
    delete env.TMUX;
    const p = new Profanity(dir, env);
    await p.tmux('-f', '/dev/null', 'new-session', '-d', '-x', '200', '-y', '50', 'profanity -l DEBUG');
    await p.waitForScreen(/Logging to:/);
    return p;
  }

  private tmux(...args: string[]): Promise<{ stdout: string }> {
    return run('tmux', ['-S', path.join(this.dir, 'tmux.sock'), ...args], { env: this.env, encoding: 'utf8' });
  }

  /** What the terminal shows now. */
  async screen(): Promise<string> {
    return (await this.tmux('capture-pane', '-p', '-J')).stdout;
  }

  /** Profanity's own log so far. */
  log(): string {
    const file = path.join(this.dir, 'home', '.local', 'share', 'profanity', 'logs', 'profanity.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '(no profanity log)';
  }

  /** Resolves with the match once the screen shows `re`; rejects with the screen after `ms`. */
  async waitForScreen(re: RegExp, ms = 15_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const shown = await this.screen().catch((err: unknown) => `(tmux: ${String(err)})`);
      const m = re.exec(shown);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`profanity: ${re} not on screen within ${ms} ms:\n${shown}\n--- profanity log (tail)\n${this.log().slice(-6000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Type a line and press Enter. */
  async type(line: string): Promise<void> {
    await this.tmux('send-keys', '-l', line);
    await this.tmux('send-keys', 'Enter');
  }

  /**
   * `/connect` as the help shows it, with the address and port of the test server (`tls legacy`
   * is Profanity's name for direct TLS), answer the password prompt, and return the bound full
   * JID once Profanity says it is logged in.
   */
  async connect(jid: string, password: string, port: number, directTls: boolean): Promise<string> {
    await this.type(`/connect ${jid} server 127.0.0.1 port ${port}${directTls ? ' tls legacy' : ''}`);
    await this.waitForScreen(/Enter password:/);
    await this.type(password);
    const m = await this.waitForScreen(/(\S+) logged in successfully|Login failed\.|Connection failed|disconnected/i);
    if (!m[1]) throw new Error(`profanity did not log in: ${m[0]}\n${await this.screen()}\n--- profanity log (tail)\n${this.log().slice(-6000)}`);
    return m[1];
  }

  /** `/quit` and wait for Profanity (and with it the tmux session) to end. */
  async quit(): Promise<void> {
    await this.type('/quit');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const alive = await this.tmux('has-session').then(() => true, () => false);
      if (!alive) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('profanity did not exit after /quit');
  }

  /** End the tmux server (and Profanity, if still running) and remove the private HOME. */
  async destroy(): Promise<void> {
    await this.tmux('kill-server').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
