// Debian's `pebble` (Let's Encrypt's ACME test server) on 127.0.0.1 for ACME tests. Its own HTTPS
// certificate comes from a CA made here with openssl (the tests trust that CA for the directory);
// it issues from a root it makes at every start. It validates for real: names resolve through the
// test DNS server given (`-dnsserver`), HTTP-01 is fetched from `httpPort` and TLS-ALPN-01
// handshakes go to `tlsPort` — the ports the code under test listens on. PEBBLE_VA_NOSLEEP=1 only
// drops pebble's random 0–15 s pause before each validation; PEBBLE_AUTHZREUSE=0 makes every order
// validate again (pebble otherwise reuses valid authorizations half of the time).
// Pebble listens on port 0; the port it got is read from /proc (its only listening socket).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Pebble {
  directoryUrl: string;
  /** The CA of pebble's own HTTPS certificate (PEM): what the ACME client trusts for the directory. */
  directoryCa: string;
  /** Everything pebble printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Where pebble fetches http://<name>:<httpPort>/.well-known/acme-challenge/… */
  httpPort: number;
  /** Where pebble makes TLS-ALPN-01 handshakes. */
  tlsPort: number;
  /** `127.0.0.1:<port>` of the DNS server pebble resolves names with. */
  dnsServer: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cadence-pebble-'));
  const file = (n: string) => path.join(dir, n);
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=Pebble directory test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', file('ca.key'), '-out', file('ca.pem')]);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr')]);
  writeFileSync(file('server.ext'), 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-days', '2', '-set_serial', `0x${Date.now().toString(16)}`,
    '-extfile', file('server.ext'), '-out', file('server.pem')]);
  writeFileSync(file('pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: '127.0.0.1:0',
      managementListenAddress: '',
      certificate: file('server.pem'),
      privateKey: file('server.key'),
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  }));

  let out = '';
  const child: ChildProcess = spawn('pebble', ['-config', file('pebble.json'), '-dnsserver', opts.dnsServer], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d.toString();
        if (/Listening on: /.test(out)) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`pebble exited (${code}) before listening:\n${out}`)));
    });
    const port = await listeningPort(child.pid!);
    return { directoryUrl: `https://127.0.0.1:${port}/dir`, directoryCa: readFileSync(file('ca.pem'), 'utf8'), output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The TCP port a process listens on: the socket inodes among its open files, matched against
 * the LISTEN entries of /proc/<pid>/net/tcp. Pebble logs "Listening on" just before it binds,
 * so the socket may take a moment to appear: looked for again on each turn of the event loop,
 * for at most 5 s.
 */
async function listeningPort(pid: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
    for (const line of readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address rem_address st … inode (index 9); st 0A = LISTEN
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) return parseInt(f[1]!.split(':')[1]!, 16);
    }
    if (Date.now() > deadline) throw new Error('pebble: no listening socket found');
    await new Promise((r) => setImmediate(r));
  }
}
