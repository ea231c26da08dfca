// Driving the interop clients from mocha: the Python scripts (slixmpp_client.py,
// aioxmpp_client.py) under the system Python (Debian's, with Debian's python3-slixmpp /
// python3-aioxmpp), xmppjs_client.ts under Node, and command-line clients (go-sendxmpp, sendxmpp);
// one process per client run, trusting the test CA (spec/helpers/testca.ts), its `EVENT …` lines
// collected, waited for and parsed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from '../helpers/server.ts';
import { trustingEnv } from '../helpers/testca.ts';

/** Debian's Python: the `python3` on PATH may be another one, without Debian's packages. */
export const PYTHON = '/usr/bin/python3';

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: string[];
}

/** The version a Python module reports (`<module>.__version__`), or undefined if it does not import. */
export function pythonModuleVersion(module: string): string | undefined {
  if (!existsSync(PYTHON)) return undefined;
  const probe = spawnSync(PYTHON, ['-c', `import ${module}; print(${module}.__version__)`], { encoding: 'utf8', env: pythonEnv(process.env) });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

/** The environment for the system Python: `base` (trusting the test CA by default), unbuffered. */
export function pythonEnv(base: NodeJS.ProcessEnv = trustingEnv()): NodeJS.ProcessEnv {
  // Keep another Python's settings out of the system Python.
  const env: NodeJS.ProcessEnv = { ...base, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  return env;
}

/** A running client process: its output so far, a wait for a given line, and its exit. */
export class PyClient {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Result>;
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];

  constructor(readonly proc: ChildProcess, readonly label = 'python') {
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

  /** Start `script` with `args` under the system Python. */
  static spawn(script: string, args: string[], label?: string, env: NodeJS.ProcessEnv = pythonEnv()): PyClient {
    const proc = spawn(PYTHON, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
    return new PyClient(proc, label);
  }

  /**
   * Start a client command as its users run it, trusting the test CA; `stdin` is written to it
   * and closed (command-line senders read the message there).
   */
  static command(cmd: string, args: string[], opts: { label?: string; stdin?: string; env?: NodeJS.ProcessEnv } = {}): PyClient {
    const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? trustingEnv() });
    proc.stdin!.on('error', () => undefined);
    proc.stdin!.end(opts.stdin ?? '');
    return new PyClient(proc, opts.label ?? cmd);
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
      const timer = setTimeout(() => reject(new Error(`${this.label}: ${re} not printed within ${ms} ms:\n${this.stdout}\n${this.stderr}`)), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        const late = rx.exec(this.stdout);
        if (late) resolve(late);
        else reject(new Error(`${this.label} exited without printing ${re}:\n${this.stdout}\n${this.stderr}`));
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

  /** Kill the process if it still runs, and wait for it to go. */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** A roster item as the scripts print it (`EVENT roster_item jid=… name=… groups=a|b subscription=… ask=…`). */
export interface PrintedItem {
  jid: string;
  name: string;
  groups: string[];
  subscription: string;
  ask: string;
}

const ITEM_RE = /^jid=(\S+) name=(.*) groups=(.*) subscription=(\S*) ask=(\S*)$/;

export function parseItem(rest: string): PrintedItem {
  const m = ITEM_RE.exec(rest);
  if (!m) throw new Error(`not a roster item line: ${rest}`);
  return { jid: m[1]!, name: m[2]!, groups: m[3] ? m[3].split('|') : [], subscription: m[4]!, ask: m[5]! };
}

/** The last roster a script printed (`EVENT roster count=N ver=V` and its `roster_item` lines). */
export function printedRoster(events: string[]): { ver: string; items: PrintedItem[] } | undefined {
  let start = events.length - 1;
  while (start >= 0 && !events[start]!.startsWith('EVENT roster count=')) start--;
  if (start < 0) return undefined;
  const m = /^EVENT roster count=(\d+) ver=(\S+)$/.exec(events[start]!);
  const items: PrintedItem[] = [];
  for (const e of events.slice(start + 1)) {
    if (!e.startsWith('EVENT roster_item ')) break;
    items.push(parseItem(e.slice('EVENT roster_item '.length)));
  }
  if (!m || Number(m[1]) !== items.length) throw new Error(`roster count does not match its items: ${events.slice(start).join('\n')}`);
  return { ver: m[2]!, items };
}

/** A received message as the scripts print it with its delay (`EVENT message from=… type=… body=… delay=… delay_from=…`). */
export interface PrintedMessage {
  from: string;
  type: string;
  body: string;
  /** The XEP-0203 stamp, or undefined when the message had no <delay/>. */
  delay: string | undefined;
  delayFrom: string;
}

const MESSAGE_RE = /^EVENT message from=(\S+) type=(\S+) body=(.*) delay=(\S+) delay_from=(\S*)$/;

export function printedMessages(events: string[]): PrintedMessage[] {
  const out: PrintedMessage[] = [];
  for (const e of events) {
    const m = MESSAGE_RE.exec(e);
    if (m) out.push({ from: m[1]!, type: m[2]!, body: m[3]!, delay: m[4] === 'none' ? undefined : m[4]!, delayFrom: m[5]! });
  }
  return out;
}
