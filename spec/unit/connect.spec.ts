// Outgoing connection attempts, Happy Eyeballs style (RFC 8305 §4, §5), with STARTTLS and direct
// TLS (XEP-0368) candidates; real listeners on loopback addresses (127.0.0.0/8 and ::1).
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { Resolver } from '../../core/net/dns.ts';
import { connectHappyEyeballs, expandTargets, interleaveFamilies, type Candidate } from '../../core/net/connect.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { S2sTestPki, type IssuedCert } from '../helpers/testca-s2s.ts';

interface Listener {
  port: number;
  accepted: net.Socket[];
  /** Resolves with the next accepted socket's 'close'. */
  closed(index: number): Promise<void>;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];

async function listen(server: net.Server, host: string): Promise<Listener> {
  const accepted: net.Socket[] = [];
  const closedPromises: Promise<void>[] = [];
  server.on('connection', (s: net.Socket) => {
    accepted.push(s);
    s.on('error', () => {});
    closedPromises.push(new Promise((resolve) => s.once('close', () => resolve())));
    // A TLS server reads the socket itself; a plain one must read to notice the peer closing.
    if (!(server instanceof tls.Server)) s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  const l: Listener = {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    closed: async (i) => {
      while (!closedPromises[i]) await new Promise((r) => setTimeout(r, 5));
      return closedPromises[i];
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of accepted) s.destroy();
      server.close(() => resolve());
    }),
  };
  cleanups.push(() => l.close());
  return l;
}

/** A listener that accepts TCP and then says nothing (a TLS handshake to it never completes). */
const silent = (host = '127.0.0.2') => listen(net.createServer(), host);
const plain = (host = '127.0.0.2') => listen(net.createServer(), host);

/** A port on `host` where nothing listens (connections are refused). */
async function refusedPort(host = '127.0.0.2'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, () => resolve()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const candidate = (address: string, port: number, extra: Partial<Candidate> = {}): Candidate => ({
  address, family: net.isIPv6(address) ? 6 : 4, port, directTls: false, host: 'peer.example', secure: false, ...extra,
});

describe('connection attempts (RFC 8305, XEP-0368)', () => {
  let pki: S2sTestPki;
  let peerCert: IssuedCert;
  before(() => {
    pki = S2sTestPki.create();
    peerCert = pki.issue({ dns: ['peer.example'] });
  });
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  type Seen = { servername?: string; alpn?: string | false | null };
  async function tlsPeer(host: string, onSecure?: (s: Seen) => void): Promise<Listener> {
    const server = tls.createServer({
      cert: peerCert.cert,
      key: peerCert.key,
      ALPNProtocols: ['xmpp-server'],
    });
    server.on('secureConnection', (s: tls.TLSSocket) => {
      s.on('error', () => {});
      const entry = { servername: (s as tls.TLSSocket & { servername?: string }).servername, alpn: s.alpnProtocol };
      onSecure?.(entry);
    });
    server.on('tlsClientError', () => {});
    return listen(server, host);
  }

  it('interleaves address families, the first family first (RFC 8305 §4)', () => {
    const a = (address: string) => ({ address, family: (net.isIPv6(address) ? 6 : 4) as 4 | 6 });
    const list = [a('2001:db8::1'), a('2001:db8::2'), a('2001:db8::3'), a('192.0.2.1'), a('192.0.2.2')];
    assert.deepEqual(interleaveFamilies(list).map((x) => x.address), ['2001:db8::1', '192.0.2.1', '2001:db8::2', '192.0.2.2', '2001:db8::3']);
    assert.deepEqual(interleaveFamilies(list, 2).map((x) => x.address), ['2001:db8::1', '2001:db8::2', '192.0.2.1', '2001:db8::3', '192.0.2.2']);
    assert.deepEqual(interleaveFamilies([a('192.0.2.1'), a('2001:db8::1'), a('192.0.2.2')]).map((x) => x.address), ['192.0.2.1', '2001:db8::1', '192.0.2.2']);
    assert.deepEqual(interleaveFamilies([]), []);
  });

  it('connects to the first candidate and does not start the others', async () => {
    const first = await plain('127.0.0.2');
    const second = await plain('127.0.0.3');
    const r = await connectHappyEyeballs([candidate('127.0.0.2', first.port), candidate('127.0.0.3', second.port)], { attemptDelayMs: 2000 });
    assert.ok(r.ok);
    assert.equal(r.candidate.address, '127.0.0.2');
    assert.equal(r.socket.remoteAddress, '127.0.0.2');
    assert.deepEqual(r.attempts.map((a) => a.outcome), ['connected']);
    assert.equal(second.accepted.length, 0);
    r.socket.destroy();
  });

  it('starts the next candidate at once when one is refused', async () => {
    const port = await refusedPort('127.0.0.2');
    const ok = await plain('127.0.0.3');
    const r = await connectHappyEyeballs([candidate('127.0.0.2', port), candidate('127.0.0.3', ok.port)], { attemptDelayMs: 2000 });
    assert.ok(r.ok);
    assert.equal(r.candidate.address, '127.0.0.3');
    assert.equal(r.attempts[0]!.outcome, 'failed');
    assert.match(r.attempts[0]!.detail!, /ECONNREFUSED/);
    r.socket.destroy();
  });

  it('starts the next candidate after the attempt delay while one hangs, and closes the loser', async () => {
    const hanging = await silent('127.0.0.2');
    const peer = await tlsPeer('127.0.0.3');
    const r = await connectHappyEyeballs([
      candidate('127.0.0.2', hanging.port, { directTls: true }),
      candidate('127.0.0.3', peer.port, { directTls: true }),
    ], { attemptDelayMs: 50, tlsOptions: () => ({ servername: 'peer.example' }) });
    assert.ok(r.ok);
    assert.equal(r.candidate.address, '127.0.0.3');
    assert.deepEqual(r.attempts.map((a) => a.outcome), ['cancelled', 'connected']);
    // The hanging attempt's socket is closed.
    assert.equal(hanging.accepted.length, 1);
    await hanging.closed(0);
    r.socket.destroy();
  });

  it('completes direct TLS with SNI set to the domain and ALPN xmpp-server; the certificate is the caller\'s to judge', async () => {
    let serverSide!: Promise<Seen>;
    const peer = await new Promise<Listener>((ready) => {
      serverSide = new Promise((resolve) => void tlsPeer('127.0.0.3', resolve).then(ready));
    });
    const r = await connectHappyEyeballs([candidate('127.0.0.3', peer.port, { directTls: true })], { tlsOptions: () => ({ servername: 'peer.example' }) });
    assert.ok(r.ok);
    const socket = r.socket as tls.TLSSocket;
    assert.ok(socket instanceof tls.TLSSocket);
    assert.equal(socket.alpnProtocol, 'xmpp-server');
    assert.equal(socket.authorized, false); // the test CA is not trusted here
    assert.ok(socket.getPeerCertificate().raw.equals(peerCert.der));
    // The server completes its side of the handshake after the client (TLS 1.3).
    assert.deepEqual(await serverSide, { servername: 'peer.example', alpn: 'xmpp-server' });
    socket.destroy();
    const trusted = await connectHappyEyeballs([candidate('127.0.0.3', peer.port, { directTls: true })], { tlsOptions: () => ({ servername: 'peer.example', ca: pki.root.cert }) });
    assert.ok(trusted.ok);
    assert.equal((trusted.socket as tls.TLSSocket).authorized, true);
    trusted.socket.destroy();
  });

  it('counts a failed TLS handshake as a failed attempt and goes on', async () => {
    const rude = await listen(net.createServer((s) => s.end('not TLS\r\n')), '127.0.0.2');
    const ok = await plain('127.0.0.3');
    const r = await connectHappyEyeballs([candidate('127.0.0.2', rude.port, { directTls: true }), candidate('127.0.0.3', ok.port)], { attemptDelayMs: 2000 });
    assert.ok(r.ok);
    assert.equal(r.candidate.address, '127.0.0.3');
    assert.equal(r.attempts[0]!.outcome, 'failed');
    r.socket.destroy();
  });

  it('reports every failure when no candidate connects', async () => {
    const p1 = await refusedPort('127.0.0.2');
    const p2 = await refusedPort('127.0.0.3');
    const r = await connectHappyEyeballs([candidate('127.0.0.2', p1), candidate('127.0.0.3', p2)]);
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.error, 'unreachable');
    assert.deepEqual(r.attempts.map((a) => a.outcome), ['failed', 'failed']);
    assert.match(r.detail, /127\.0\.0\.2:\d+: ECONNREFUSED.*127\.0\.0\.3:\d+: ECONNREFUSED/);
    const none = await connectHappyEyeballs([]);
    assert.equal(!none.ok && none.error, 'no-candidates');
  });

  it('gives up after the overall timeout and closes every attempt', async () => {
    const a = await silent('127.0.0.2');
    const b = await silent('127.0.0.3');
    const r = await connectHappyEyeballs([candidate('127.0.0.2', a.port, { directTls: true }), candidate('127.0.0.3', b.port, { directTls: true })], { attemptDelayMs: 20, timeoutMs: 300 });
    assert.equal(!r.ok && r.error, 'timeout');
    assert.deepEqual(r.attempts.map((x) => x.outcome), ['cancelled', 'cancelled']);
    await a.closed(0);
    await b.closed(0);
  });

  it('stops when aborted', async () => {
    const a = await silent('127.0.0.2');
    const controller = new AbortController();
    const pending = connectHappyEyeballs([candidate('127.0.0.2', a.port, { directTls: true })], { signal: controller.signal });
    while (a.accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const r = await pending;
    assert.equal(!r.ok && r.error, 'aborted');
    await a.closed(0);
    const already = await connectHappyEyeballs([candidate('127.0.0.2', a.port)], { signal: AbortSignal.abort() });
    assert.equal(!already.ok && already.error, 'aborted');
  });

  it('binds to the configured source address and skips families without one (s2sInterfaces)', async () => {
    const v6 = await plain('::1');
    const v4 = await plain('127.0.0.2');
    const r = await connectHappyEyeballs([candidate('::1', v6.port), candidate('127.0.0.2', v4.port)], { localAddress: { 4: '127.0.0.9' } });
    assert.ok(r.ok);
    assert.equal(r.candidate.family, 4);
    assert.equal(r.attempts[0]!.outcome, 'skipped');
    assert.equal(v6.accepted.length, 0);
    assert.equal(v4.accepted[0]!.remoteAddress, '127.0.0.9');
    r.socket.destroy();
  });

  it('connects over IPv6', async () => {
    const v6 = await plain('::1');
    const r = await connectHappyEyeballs([candidate('::1', v6.port)]);
    assert.ok(r.ok);
    assert.equal(r.socket.remoteFamily, 'IPv6');
    r.socket.destroy();
  });

  it('pulls candidates only as attempts start', async () => {
    const ok = await plain('127.0.0.2');
    let pulled = 0;
    async function* source(): AsyncGenerator<Candidate> {
      for (let i = 0; i < 5; i++) {
        pulled++;
        yield candidate('127.0.0.2', ok.port);
      }
    }
    const r = await connectHappyEyeballs(source(), { attemptDelayMs: 2000 });
    assert.ok(r.ok);
    assert.equal(pulled, 1);
    r.socket.destroy();
  });

  it('expands targets lazily into candidates: SRV order kept, families interleaved, duplicates dropped', async () => {
    const dns = await startDnsServer();
    cleanups.push(() => dns.close());
    dns.set('a.example', [{ type: 'AAAA', address: '2001:db8::a1' }, { type: 'AAAA', address: '2001:db8::a2' }, { type: 'A', address: '192.0.2.1' }], { secure: true });
    dns.set('b.example', [{ type: 'A', address: '192.0.2.1' }, { type: 'A', address: '192.0.2.2' }]);
    const resolver = new Resolver({ servers: [dns.address], hostsFile: false, timeoutMs: 300, attempts: 1 });
    const failures: string[] = [];
    const out: Candidate[] = [];
    for await (const c of expandTargets([
      { host: 'a.example', port: 5269, directTls: false, source: 'srv', secure: true },
      { host: 'missing.example', port: 5269, directTls: false, source: 'srv', secure: true },
      { host: 'b.example', port: 5269, directTls: false, source: 'srv', secure: true },
      { host: 'b.example', port: 5270, directTls: true, source: 'srv', secure: false },
    ], (h) => resolver.addresses(h), (t) => failures.push(t.host))) out.push(c);
    assert.deepEqual(out.map((c) => `${c.address} ${c.port}${c.directTls ? ' tls' : ''} ${c.secure}`), [
      '2001:db8::a1 5269 true',
      '192.0.2.1 5269 true',
      '2001:db8::a2 5269 true',
      '192.0.2.2 5269 false',
      '192.0.2.1 5270 tls false',
      '192.0.2.2 5270 tls false',
    ]);
    assert.deepEqual(failures, ['missing.example']);
  });
});
