// Outgoing connections over an ordered list of candidates, Happy Eyeballs style (RFC 8305 §5):
// attempts start one after another, each Connection Attempt Delay after the previous one or as
// soon as the previous one fails; the first to connect wins and every other attempt is closed;
// the whole race is bounded by one timeout. A STARTTLS candidate has connected when TCP has;
// a direct TLS candidate (XEP-0368) when its TLS handshake has completed. What the certificate
// is worth is not decided here: the caller checks names, chain and DANE on the winner.
// `expandTargets` turns S2S targets (core/net/dns.ts) into candidates lazily, target by target
// in their SRV order, each target's addresses interleaved by family (RFC 8305 §4).
import net from 'node:net';
import tls from 'node:tls';
import type { Address, AddressLookup, S2sTarget } from './dns.ts';

/** One address to try. */
export interface Candidate {
  address: string;
  family: 4 | 6;
  port: number;
  /** TLS from the first byte (XEP-0368), else a plain TCP connection for STARTTLS. */
  directTls: boolean;
  /** The host name this address came from (SRV target, domain, or route host). */
  host: string;
  /** Every DNS answer leading here was DNSSEC-validated (the SRV RRset and the addresses). */
  secure: boolean;
  /** The target the candidate was made from, for the caller's DANE lookup. */
  target?: S2sTarget;
}

export interface AttemptReport {
  candidate: Candidate;
  outcome: 'connected' | 'failed' | 'cancelled' | 'skipped';
  detail?: string;
}

export type ConnectResult =
  | { ok: true; socket: net.Socket | tls.TLSSocket; candidate: Candidate; attempts: AttemptReport[] }
  | { ok: false; error: 'no-candidates' | 'unreachable' | 'timeout' | 'aborted'; detail: string; attempts: AttemptReport[] };

export interface ConnectOptions {
  /** RFC 8305 §5 Connection Attempt Delay (default 250 ms; at least 10 ms). */
  attemptDelayMs?: number;
  /** Bound on the whole race (default 30 s). */
  timeoutMs?: number;
  /**
   * TLS options of a direct TLS candidate: `servername` (SNI: the remote domain, XEP-0368 §3),
   * `ALPNProtocols` (['xmpp-server']), the local certificate, CAs. Certificate errors do not fail
   * the attempt unless the options say `rejectUnauthorized: true`.
   */
  tlsOptions?: (candidate: Candidate) => tls.ConnectionOptions;
  /** Source address per family (`s2sInterfaces`); a family without one is skipped when set. */
  localAddress?: { 4?: string; 6?: string };
  signal?: AbortSignal;
}

type Source = Iterable<Candidate> | AsyncIterable<Candidate>;

interface Running {
  candidate: Candidate;
  /** The TLS socket of a direct TLS attempt, else the TCP socket. */
  socket: net.Socket;
  tcp: net.Socket;
  report: AttemptReport;
  /** Removes the listeners this module added (never the sockets' own internal ones). */
  detach(): void;
}

/** Races connection attempts over `candidates` (pulled only as attempts start). */
export function connectHappyEyeballs(candidates: Source, options: ConnectOptions = {}): Promise<ConnectResult> {
  const attemptDelay = Math.max(10, options.attemptDelayMs ?? 250);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const iterator = Symbol.asyncIterator in candidates
    ? (candidates as AsyncIterable<Candidate>)[Symbol.asyncIterator]()
    : (candidates as Iterable<Candidate>)[Symbol.iterator]();
  const reports: AttemptReport[] = [];
  const running = new Set<Running>();

  return new Promise<ConnectResult>((resolve) => {
    let settled = false;
    let exhausted = false;
    let pulling = false;
    let delayTimer: NodeJS.Timeout | undefined;

    const cleanup = () => {
      settled = true;
      clearTimeout(delayTimer);
      clearTimeout(overall);
      options.signal?.removeEventListener('abort', onAbort);
      void Promise.resolve(iterator.return?.()).catch(() => {});
    };
    const cancelAll = (except?: Running) => {
      for (const r of running) {
        if (r === except) continue;
        r.report.outcome = 'cancelled';
        r.detach();
        for (const s of new Set([r.socket, r.tcp])) {
          s.on('error', () => {});
          s.destroy();
        }
      }
      running.clear();
    };
    const fail = (error: 'no-candidates' | 'unreachable' | 'timeout' | 'aborted', detail: string) => {
      if (settled) return;
      cleanup();
      cancelAll();
      resolve({ ok: false, error, detail, attempts: reports });
    };
    const win = (r: Running) => {
      if (settled) return;
      cleanup();
      cancelAll(r);
      r.report.outcome = 'connected';
      // The caller attaches its own handlers right after the await.
      r.detach();
      resolve({ ok: true, socket: r.socket, candidate: r.candidate, attempts: reports });
    };
    const onAbort = () => fail('aborted', 'connection attempts aborted');
    const overall = setTimeout(() => fail('timeout', `no connection within ${timeoutMs} ms`), timeoutMs);
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort);

    const checkDone = () => {
      if (!settled && exhausted && running.size === 0 && !pulling) {
        if (reports.length === 0) fail('no-candidates', 'no address to connect to');
        else fail('unreachable', reports.map((r) => `${describe(r.candidate)}: ${r.detail ?? r.outcome}`).join('; '));
      }
    };

    const startNext = async (): Promise<void> => {
      if (settled || exhausted || pulling) return;
      clearTimeout(delayTimer);
      pulling = true;
      let next: IteratorResult<Candidate>;
      try {
        next = await iterator.next();
      } catch (err) {
        next = { done: true, value: undefined };
        reports.push({ candidate: { address: '?', family: 4, port: 0, directTls: false, host: '?', secure: false }, outcome: 'failed', detail: `candidate source failed: ${(err as Error).message}` });
      }
      pulling = false;
      if (settled) return;
      if (next.done) {
        exhausted = true;
        checkDone();
        return;
      }
      const candidate = next.value;
      const local = options.localAddress;
      if (local && !local[candidate.family]) {
        reports.push({ candidate, outcome: 'skipped', detail: `no local IPv${candidate.family} address configured` });
        return startNext();
      }
      start(candidate, local?.[candidate.family]);
      delayTimer = setTimeout(() => void startNext(), attemptDelay);
    };

    const start = (candidate: Candidate, localAddress: string | undefined) => {
      const report: AttemptReport = { candidate, outcome: 'failed' };
      reports.push(report);
      const tcp = net.connect({ host: candidate.address, port: candidate.port, family: candidate.family, localAddress });
      let socket: net.Socket = tcp;
      if (candidate.directTls) {
        const tlsOptions: tls.ConnectionOptions = { rejectUnauthorized: false, ALPNProtocols: ['xmpp-server'], ...options.tlsOptions?.(candidate), socket: tcp };
        socket = tls.connect(tlsOptions);
      }
      const onConnected = () => win(r);
      const onError = (err: NodeJS.ErrnoException) => failed(err.code ? `${err.code} ${err.message}` : err.message);
      const onClose = () => failed('closed before connecting');
      const connectEvent = candidate.directTls ? 'secureConnect' : 'connect';
      const r: Running = {
        candidate, socket, tcp, report,
        detach: () => {
          socket.off(connectEvent, onConnected);
          socket.off('error', onError);
          socket.off('close', onClose);
          if (tcp !== socket) tcp.off('error', onError);
        },
      };
      running.add(r);
      const failed = (detail: string) => {
        if (settled || !running.has(r)) return;
        running.delete(r);
        report.outcome = 'failed';
        report.detail = detail;
        r.detach();
        socket.on('error', () => {});
        socket.destroy();
        if (tcp !== socket) tcp.destroy();
        // RFC 8305 §5: a failed attempt lets the next one start at once.
        if (!exhausted) void startNext();
        else checkDone();
      };
      socket.once(connectEvent, onConnected);
      socket.on('error', onError);
      socket.on('close', onClose);
      if (socket !== tcp) tcp.on('error', onError);
    };

    void startNext();
  });
}

/**
 * The peer's certificate chain as DER, leaf first, for name checks and DANE: what the peer sent,
 * completed by OpenSSL with issuers it found (the trust anchor too, when the chain validated).
 */
export function peerCertificateChain(socket: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && chain.length < 16) {
    if (chain.some((c) => c.equals(cert!.raw))) break; // a self-signed root is its own issuer
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

function describe(c: Candidate): string {
  const addr = c.family === 6 ? `[${c.address}]` : c.address;
  return `${c.host} ${addr}:${c.port}${c.directTls ? ' (direct TLS)' : ''}`;
}

/**
 * RFC 8305 §4: alternate address families, starting with `firstFamilyCount` addresses of the
 * family of the first address (IPv6 when the list is AAAA first), keeping each family's order.
 */
export function interleaveFamilies<T extends { family: 4 | 6 }>(addresses: readonly T[], firstFamilyCount = 1): T[] {
  if (addresses.length === 0) return [];
  const first = addresses[0]!.family;
  const a = addresses.filter((x) => x.family === first);
  const b = addresses.filter((x) => x.family !== first);
  const out: T[] = a.splice(0, Math.max(1, firstFamilyCount));
  while (a.length || b.length) {
    if (b.length) out.push(b.shift()!);
    if (a.length) out.push(a.shift()!);
  }
  return out;
}

/**
 * Candidates for targets in order: each target's addresses are looked up only when the race
 * needs them, then interleaved by family; an address:port already offered is not offered again.
 * Lookup failures are skipped (reported through `onLookupFailure`).
 */
export async function* expandTargets(
  targets: readonly S2sTarget[],
  lookup: (host: string) => Promise<AddressLookup>,
  onLookupFailure?: (target: S2sTarget, detail: string) => void,
): AsyncGenerator<Candidate> {
  const offered = new Set<string>();
  for (const target of targets) {
    const r = await lookup(target.host);
    if (!r.ok) {
      onLookupFailure?.(target, `${r.error}: ${r.detail}`);
      continue;
    }
    for (const a of interleaveFamilies<Address>(r.addresses)) {
      const key = `${a.address}|${target.port}|${target.directTls}`;
      if (offered.has(key)) continue;
      offered.add(key);
      yield { address: a.address, family: a.family, port: target.port, directTls: target.directTls, host: target.host, secure: target.secure && r.secure, target };
    }
  }
}
