// `cadence shell`: the admin shell client. Connects to the running server's UNIX socket
// (mod_admin_shell). With a command it runs it and exits (non-zero on failure); without, it is
// interactive with `help` and tab completion. Passwords for `user create|password` are asked
// for (or read from stdin), never needed on the command line.
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig, type Config } from '../config.ts';
import { CoreError } from '../util/errors.ts';

interface Reply {
  ok?: boolean;
  output?: string;
  error?: string;
  completions?: string[];
}

class ShellConnection {
  private buffer = '';
  private waiting: ((r: Reply) => void)[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        this.waiting.shift()?.(JSON.parse(line) as Reply);
      }
    });
  }

  static connect(socketPath: string): Promise<ShellConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(new ShellConnection(s)));
      s.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new CoreError('SERVER_NOT_RUNNING', `no server is running for this config (nothing listens on ${socketPath}); start it with 'cadence start', or check that mod_admin_shell is enabled`)
          : new CoreError('SERVER_NOT_RUNNING', `cannot reach the server on ${socketPath}: ${err.message}`)),
      );
    });
  }

  request(req: Record<string, string>): Promise<Reply> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(`${JSON.stringify(req)}\n`);
    });
  }

  close(): void {
    this.socket.end();
  }
}

async function readSecret(promptText: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  process.stdout.write(promptText);
  process.stdin.setRawMode(true);
  return new Promise((resolve) => {
    let value = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString()) {
        if (ch === '\r' || ch === '\n') {
          process.stdin.setRawMode(false);
          process.stdin.off('data', onData);
          process.stdin.pause();
          process.stdout.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        value = ch === '\u007f' ? value.slice(0, -1) : value + ch;
      }
    };
    process.stdin.on('data', onData);
    process.stdin.resume();
  });
}

/** Add the password to `user create|password JID` when it was left out. */
async function withPassword(words: string[]): Promise<string[]> {
  if (words[0] === 'user' && (words[1] === 'create' || words[1] === 'password') && words.length === 3) {
    return [...words, await readSecret('Password: ')];
  }
  return words;
}

const quote = (w: string) => (/^[^\s"']+$/.test(w) ? w : JSON.stringify(w));

export function adminSocketPath(config: Config): string {
  return config.raw.adminSocket ? path.resolve(config.baseDir, config.raw.adminSocket) : path.join(config.dataDir, 'cadence.sock');
}

/**
 * Run one shell command on the running server, if one is reachable: undefined when no server
 * listens (the caller then works offline), else the reply.
 */
export async function tryRunningServer(config: Config, words: string[]): Promise<{ ok: boolean; text: string } | undefined> {
  let conn: ShellConnection;
  try {
    conn = await ShellConnection.connect(adminSocketPath(config));
  } catch {
    return undefined;
  }
  try {
    const r = await conn.request({ line: words.map(quote).join(' ') });
    return { ok: r.ok === true, text: (r.ok ? r.output : r.error) ?? '' };
  } finally {
    conn.close();
  }
}

export async function runShell(configFile: string, words: string[]): Promise<number> {
  const config = await loadConfig(configFile);
  const conn = await ShellConnection.connect(adminSocketPath(config));
  try {
    if (words.length) {
      const line = (await withPassword(words)).map(quote).join(' ');
      const r = await conn.request({ line });
      if (r.ok) {
        if (r.output) process.stdout.write(`${r.output}\n`);
        return 0;
      }
      process.stderr.write(`cadence shell: ${r.error}\n`);
      return 1;
    }
    return await interactive(conn);
  } finally {
    conn.close();
  }
}

async function interactive(conn: ShellConnection): Promise<number> {
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: 'cadence> ',
    completer: (line: string, cb: (err: null, result: [string[], string]) => void) => {
      void conn.request({ complete: line }).then((r) => cb(null, [r.completions ?? [], line]));
    },
  });
  process.stdout.write("Cadence admin shell. 'help' lists commands, 'quit' leaves.\n");
  rl.prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === 'quit' || line === 'exit') break;
    if (line) {
      const r = await conn.request({ line });
      process.stdout.write(`${r.ok ? r.output ?? '' : `error: ${r.error}`}\n`);
    }
    rl.prompt();
  }
  rl.close();
  return 0;
}
