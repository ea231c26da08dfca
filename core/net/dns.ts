// DNS for server-to-server: a stub resolver that talks to the configured servers (`dnsServers`;
// the system's from resolv.conf when none are set) and reports whether each answer was
// DNSSEC-validated (the AD bit, trusted only from a resolver on loopback unless told otherwise),
// which DANE needs and node:dns does not expose. It resolves SRV (RFC 2782 ordering), A/AAAA
// (the hosts file first, as getaddrinfo would) and TLSA records, caches answers by TTL, and turns
// a remote XMPP domain into the ordered connection targets of RFC 6120 §3.2 and XEP-0368, with
// static routes (`s2sRoutes`) taking precedence. The wire format is core/util/dns-message.ts.
import { randomInt } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import { CLASS_IN, DnsFormatError, RCODE, RRTYPE, decodeMessage, encodeQuery, type DnsMessage, type ResourceRecord } from '../util/dns-message.ts';
import { ipLiteral, toAsciiDomain } from '../util/domain.ts';
import { getLogger } from '../util/log.ts';

const log = getLogger('core:dns');

// node:dgram and node:dns are loaded at first use (process.getBuiltinModule), not with the core:
// a server without server-to-server never loads them (~1 MiB of its idle RSS, bench/RESULTS.md).

export interface DnsServer {
  address: string;
  port: number;
  family: 4 | 6;
}

/** `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`; undefined if invalid. */
export function parseDnsServer(spec: string): DnsServer | undefined {
  const s = spec.trim();
  let host = s;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (net.isIPv4(s.split(':')[0]!) && s.includes(':')) {
    const [h, p] = s.split(':');
    host = h!;
    port = Number(p);
  }
  const family = net.isIP(host);
  if (family === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { address: family === 6 ? host.toLowerCase() : host, port, family: family as 4 | 6 };
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

export type QueryFailure = 'timeout' | 'servfail' | 'refused' | 'formerr' | 'notimp' | 'network' | 'malformed' | 'invalid-name';

export type QueryResult =
  | { ok: true; message: DnsMessage; secure: boolean; server: string; transport: 'udp' | 'tcp' }
  | { ok: false; error: QueryFailure; detail: string };

export interface DnsClientOptions {
  servers: readonly (string | DnsServer)[];
  /** Time to wait for one answer from one server (default 2000 ms). */
  timeoutMs?: number;
  /** Rounds over the server list (default 2). */
  attempts?: number;
  /**
   * Whose AD bit counts as DNSSEC validation: 'loopback' (default) trusts only a resolver on
   * this machine, since nothing protects the bit on the way from elsewhere (RFC 4035
   * §4.9.3); 'always' trusts any configured server; 'never' treats every answer as
   * unvalidated (no DANE).
   */
  trustAd?: 'loopback' | 'always' | 'never';
  /** Advertised UDP payload size (default 1232). */
  udpSize?: number;
}

type Exchange = { ok: true; message: DnsMessage; transport: 'udp' | 'tcp' } | { ok: false; error: QueryFailure; detail: string };

/** Sends queries to the configured servers over UDP, retrying over TCP when truncated. */
export class DnsClient {
  readonly servers: readonly DnsServer[];
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly trustAd: 'loopback' | 'always' | 'never';
  private readonly udpSize: number;

  constructor(options: DnsClientOptions) {
    const servers: DnsServer[] = [];
    for (const s of options.servers) {
      const parsed = typeof s === 'string' ? parseDnsServer(s) : s;
      if (!parsed) throw new TypeError(`invalid DNS server: ${String(s)}`);
      servers.push(parsed);
    }
    this.servers = servers;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.attempts = options.attempts ?? 2;
    this.trustAd = options.trustAd ?? 'loopback';
    this.udpSize = options.udpSize ?? 1232;
  }

  /** One question; NOERROR and NXDOMAIN answers are results, other codes failures. */
  async query(name: string, type: number): Promise<QueryResult> {
    const qname = name.toLowerCase().replace(/\.$/, '');
    if (this.servers.length === 0) return { ok: false, error: 'network', detail: 'no DNS servers configured' };
    let last: QueryResult = { ok: false, error: 'timeout', detail: 'no answer' };
    for (let round = 0; round < this.attempts; round++) {
      for (const server of this.servers) {
        let r: Exchange;
        try {
          r = await this.ask(server, qname, type, true);
          // RFC 6891 §7: a server that does not know EDNS answers FORMERR; ask it again plainly.
          if (r.ok && r.message.rcode === RCODE.FORMERR && !r.message.edns) r = await this.ask(server, qname, type, false);
        } catch (err) {
          if (err instanceof DnsFormatError) return { ok: false, error: 'invalid-name', detail: err.message };
          throw err;
        }
        const where = `${server.address}#${server.port}`;
        if (!r.ok) {
          last = { ok: false, error: r.error, detail: `${where}: ${r.detail}` };
          continue;
        }
        const rcode = r.message.rcode;
        if (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) {
          const secure = r.message.flags.ad && (this.trustAd === 'always' || (this.trustAd === 'loopback' && isLoopback(server.address)));
          return { ok: true, message: r.message, secure, server: where, transport: r.transport };
        }
        const error: QueryFailure = rcode === RCODE.SERVFAIL ? 'servfail' : rcode === RCODE.REFUSED ? 'refused' : rcode === RCODE.NOTIMP ? 'notimp' : 'formerr';
        last = { ok: false, error, detail: `${where}: rcode ${rcode}` };
      }
    }
    return last;
  }

  private async ask(server: DnsServer, name: string, type: number, edns: boolean): Promise<Exchange> {
    const id = randomInt(0, 0x10000);
    const query = encodeQuery({ id, name, type, edns, udpSize: this.udpSize });
    // Only the answer to this question, with this id, counts (RFC 5452 §4.1).
    const matches = (m: DnsMessage) =>
      m.id === id && m.flags.qr && m.flags.opcode === 0 && m.questions.length === 1 &&
      m.questions[0]!.name === name && m.questions[0]!.type === type && m.questions[0]!.class === CLASS_IN;
    const udp = await udpExchange(server, query, matches, this.timeoutMs);
    if (!udp.ok || !udp.message.flags.tc) return udp;
    return tcpExchange(server, query, matches, this.timeoutMs);
  }
}

function udpExchange(server: DnsServer, query: Buffer, matches: (m: DnsMessage) => boolean, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    // A socket per query: a fresh random source port each time (RFC 5452 §9.2).
    const socket = process.getBuiltinModule('node:dgram').createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let malformed = '';
    const finish = (r: Exchange) => {
      clearTimeout(timer);
      socket.removeAllListeners('message');
      socket.on('error', () => {});
      try {
        socket.close();
      } catch {
        /* already closed */
      }
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', detail: malformed || `no answer in ${timeoutMs} ms (udp)` }), timeoutMs);
    socket.on('message', (buf, rinfo) => {
      // Datagrams from anywhere else, or not answering our question, are ignored, not errors:
      // a forged answer must not end the wait for the real one.
      if (rinfo.address.toLowerCase() !== server.address || rinfo.port !== server.port) return;
      let message: DnsMessage;
      try {
        message = decodeMessage(buf);
      } catch (err) {
        malformed = `malformed answer: ${(err as Error).message}`;
        return;
      }
      if (matches(message)) finish({ ok: true, message, transport: 'udp' });
    });
    socket.on('error', (err) => finish({ ok: false, error: 'network', detail: err.message }));
    socket.send(query, server.port, server.address, (err) => {
      if (err) finish({ ok: false, error: 'network', detail: err.message });
    });
  });
}

function tcpExchange(server: DnsServer, query: Buffer, matches: (m: DnsMessage) => boolean, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: server.address, port: server.port, family: server.family });
    let buffered = Buffer.alloc(0);
    let done = false;
    const finish = (r: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', detail: `no answer in ${timeoutMs} ms (tcp)` }), timeoutMs);
    socket.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      socket.write(Buffer.concat([len, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) return;
      let message: DnsMessage;
      try {
        message = decodeMessage(buffered.subarray(2, 2 + len));
      } catch (err) {
        finish({ ok: false, error: 'malformed', detail: (err as Error).message });
        return;
      }
      if (matches(message)) finish({ ok: true, message, transport: 'tcp' });
      else finish({ ok: false, error: 'malformed', detail: 'tcp answer does not match the question' });
    });
    socket.on('error', (err) => finish({ ok: false, error: 'network', detail: err.message }));
    socket.on('close', () => finish({ ok: false, error: 'network', detail: 'connection closed before an answer (tcp)' }));
  });
}

// ---------------------------------------------------------------------------------------------

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  /** '.' means "no service here" (RFC 2782). */
  target: string;
}

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export interface Address {
  address: string;
  family: 4 | 6;
}

/** An answer: `records` empty with `nxdomain` false is NODATA. `secure`: DNSSEC-validated. */
export type Lookup<T> =
  | { ok: true; records: T[]; secure: boolean; nxdomain: boolean }
  | { ok: false; error: QueryFailure | 'cname-loop'; detail: string };

export type AddressLookup =
  | { ok: true; addresses: Address[]; secure: boolean; source: 'literal' | 'hosts' | 'dns' }
  | { ok: false; error: QueryFailure | 'cname-loop' | 'not-found'; detail: string };

export interface ResolverOptions extends Partial<DnsClientOptions> {
  /** `dnsServers`: undefined for the system's servers, [] for none. */
  servers?: readonly (string | DnsServer)[];
  /** The hosts file consulted for addresses before DNS (default /etc/hosts; false: none). */
  hostsFile?: string | false;
  /** Cached answers at most (default 2000); 0 disables the cache. */
  cacheEntries?: number;
  /** Longest time an answer is cached, whatever its TTL (default 3600 s). */
  maxTtlSeconds?: number;
  now?: () => number;
}

interface CacheEntry {
  expires: number;
  result: Lookup<ResourceRecord>;
}

const MAX_CNAME_HOPS = 8;

/** Record lookups over a DnsClient, with the hosts file for addresses and a TTL cache. */
export class Resolver {
  readonly client: DnsClient;
  private readonly hostsFile: string | false;
  private hosts: { mtimeMs: number; map: Map<string, Address[]> } | undefined;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Lookup<ResourceRecord>>>();
  private readonly cacheEntries: number;
  private readonly maxTtl: number;
  private readonly now: () => number;

  constructor(options: ResolverOptions = {}) {
    // No `servers`: the system's (resolv.conf). An empty list: no DNS at all (static routes and
    // the hosts file only), which tests use to be sure nothing is asked off the machine.
    const servers = options.servers ?? process.getBuiltinModule('node:dns').getServers();
    this.client = new DnsClient({ ...options, servers });
    this.hostsFile = options.hostsFile ?? '/etc/hosts';
    this.cacheEntries = options.cacheEntries ?? 2000;
    this.maxTtl = options.maxTtlSeconds ?? 3600;
    this.now = options.now ?? Date.now;
  }

  /**
   * Records of one type for a name, following a CNAME chain in the answer (and asking again
   * for its end when the answer stops at a CNAME). `secure` only if every step was.
   */
  async lookup(name: string, type: number): Promise<Lookup<ResourceRecord>> {
    let current = name.toLowerCase().replace(/\.$/, '');
    let secure = true;
    const seen = new Set<string>();
    for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
      seen.add(current);
      const r = await this.cached(current, type);
      if (!r.ok) return r;
      secure &&= r.secure;
      const records = r.records.filter((rr) => rr.type === type);
      if (records.length > 0 || type === RRTYPE.CNAME) return { ok: true, records, secure, nxdomain: r.nxdomain };
      // The answer may stop at a CNAME: ask again for the end of the chain it gave.
      let end = current;
      for (let step = r.records.find((rr) => rr.type === RRTYPE.CNAME && rr.name === end); step; step = r.records.find((rr) => rr.type === RRTYPE.CNAME && rr.name === end)) {
        const target = (step.data as { target: string }).target;
        if (seen.has(target)) return { ok: false, error: 'cname-loop', detail: `CNAME chain from ${name} loops` };
        seen.add(target);
        end = target;
      }
      if (end === current) return { ok: true, records, secure, nxdomain: r.nxdomain };
      current = end;
    }
    return { ok: false, error: 'cname-loop', detail: `CNAME chain from ${name} too long or looping` };
  }

  private cached(name: string, type: number): Promise<Lookup<ResourceRecord>> {
    const key = `${type} ${name}`;
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return Promise.resolve(hit.result);
    if (hit) this.cache.delete(key);
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.fetch(name, type, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetch(name: string, type: number, key: string): Promise<Lookup<ResourceRecord>> {
    const r = await this.client.query(name, type);
    if (!r.ok) {
      log('%s %s: %s (%s)', name, type, r.error, r.detail);
      return r;
    }
    // The records that answer this name: those owned by it and by the CNAMEs it leads to.
    const owners = new Set([name]);
    for (let i = 0; i < MAX_CNAME_HOPS; i++) {
      const step = r.message.answers.find((rr) => rr.type === RRTYPE.CNAME && owners.has(rr.name) && !owners.has((rr.data as { target: string }).target));
      if (!step) break;
      owners.add((step.data as { target: string }).target);
    }
    const records = r.message.answers.filter((rr) => rr.class === CLASS_IN && owners.has(rr.name));
    const result: Lookup<ResourceRecord> = { ok: true, records, secure: r.secure, nxdomain: r.message.rcode === RCODE.NXDOMAIN };
    this.store(key, result, r.message);
    return result;
  }

  private store(key: string, result: Lookup<ResourceRecord> & { ok: true }, message: DnsMessage): void {
    if (this.cacheEntries <= 0) return;
    let ttl: number | undefined;
    if (result.records.length > 0) {
      ttl = Math.min(...result.records.map((rr) => rr.ttl));
    } else {
      // RFC 2308 §5: a negative answer lives as long as its SOA's TTL and minimum allow.
      const soa = message.authorities.find((rr) => rr.type === RRTYPE.SOA);
      if (soa && soa.data.kind === 'SOA') ttl = Math.min(soa.ttl, soa.data.minimum);
    }
    if (!ttl || ttl <= 0) return;
    if (this.cache.size >= this.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { expires: this.now() + Math.min(ttl, this.maxTtl) * 1000, result });
  }

  /** SRV records of a name (`_xmpp-server._tcp.example.org`), unordered. */
  async srv(name: string): Promise<Lookup<SrvRecord>> {
    const r = await this.lookup(name, RRTYPE.SRV);
    if (!r.ok) return r;
    const records = r.records.flatMap((rr) => (rr.data.kind === 'SRV' ? [{ priority: rr.data.priority, weight: rr.data.weight, port: rr.data.port, target: rr.data.target }] : []));
    return { ok: true, records, secure: r.secure, nxdomain: r.nxdomain };
  }

  /** TLSA records for a service endpoint (`_<port>._<proto>.<host>`, RFC 6698 §3). */
  async tlsa(host: string, port: number, proto = 'tcp'): Promise<Lookup<TlsaRecord>> {
    const r = await this.lookup(`_${port}._${proto}.${host}`, RRTYPE.TLSA);
    if (!r.ok) return r;
    const records = r.records.flatMap((rr) => (rr.data.kind === 'TLSA' ? [{ usage: rr.data.usage, selector: rr.data.selector, matchingType: rr.data.matchingType, data: rr.data.data }] : []));
    return { ok: true, records, secure: r.secure, nxdomain: r.nxdomain };
  }

  /** IPv6 and IPv4 addresses of a host: an IP literal, the hosts file, then AAAA and A in parallel. */
  async addresses(host: string): Promise<AddressLookup> {
    const literal = ipLiteral(host);
    if (literal) return { ok: true, addresses: [{ address: literal, family: net.isIP(literal) as 4 | 6 }], secure: false, source: 'literal' };
    const name = host.toLowerCase().replace(/\.$/, '');
    const fromHosts = this.hostsEntries(name);
    if (fromHosts) return { ok: true, addresses: fromHosts, secure: false, source: 'hosts' };
    const [v6, v4] = await Promise.all([this.lookup(name, RRTYPE.AAAA), this.lookup(name, RRTYPE.A)]);
    const addresses: Address[] = [];
    for (const r of [v6, v4]) {
      if (!r.ok) continue;
      for (const rr of r.records) {
        if (rr.data.kind === 'AAAA') addresses.push({ address: rr.data.address, family: 6 });
        else if (rr.data.kind === 'A') addresses.push({ address: rr.data.address, family: 4 });
      }
    }
    if (addresses.length > 0) return { ok: true, addresses, secure: v6.ok && v4.ok && v6.secure && v4.secure, source: 'dns' };
    // 'not-found' is a definite answer (mod_s2s bounces at once on it): NXDOMAIN from either
    // question (the name does not exist), or both answered without records. A failed question
    // beside an empty answer may still hide an address: that is the failure.
    if ((v6.ok && v6.nxdomain) || (v4.ok && v4.nxdomain)) return { ok: false, error: 'not-found', detail: `${name} does not exist (NXDOMAIN)` };
    if (!v4.ok) return v4;
    if (!v6.ok) return v6;
    return { ok: false, error: 'not-found', detail: `${name} has no address records` };
  }

  private hostsEntries(name: string): Address[] | undefined {
    if (!this.hostsFile) return undefined;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.hostsFile).mtimeMs;
    } catch {
      return undefined;
    }
    if (!this.hosts || this.hosts.mtimeMs !== mtimeMs) {
      this.hosts = { mtimeMs, map: parseHosts(readFileSync(this.hostsFile, 'utf8')) };
    }
    return this.hosts.map.get(name);
  }
}

/** hosts(5): "address name [aliases…]" per line, '#' comments. */
export function parseHosts(text: string): Map<string, Address[]> {
  const map = new Map<string, Address[]>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [address, ...names] = line.split(/\s+/);
    const family = net.isIP(address!.replace(/%.*$/, ''));
    if (family === 0) continue;
    for (const n of names) {
      const key = n.toLowerCase().replace(/\.$/, '');
      const list = map.get(key) ?? [];
      if (!list.some((a) => a.address === address)) list.push({ address: address!, family: family as 4 | 6 });
      map.set(key, list);
    }
  }
  return map;
}

// ---------------------------------------------------------------------------------------------

/**
 * RFC 2782 target selection: ascending priority; within one priority, repeatedly pick a record
 * at random with probability proportional to its weight (weight-0 records first in the running
 * sum, so they are chosen only when the random number is 0 or all weights are 0).
 * `random` returns a number in [0, 1) (Math.random, or a seeded generator in tests).
 */
export function orderSrv<T extends { priority: number; weight: number }>(records: readonly T[], random: () => number = Math.random): T[] {
  const byPriority = new Map<number, T[]>();
  for (const r of records) {
    const list = byPriority.get(r.priority) ?? [];
    list.push(r);
    byPriority.set(r.priority, list);
  }
  const out: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const group = byPriority.get(priority)!;
    // Weight-0 records at the beginning, the others in the order they came.
    const remaining = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight !== 0)];
    while (remaining.length > 0) {
      const total = remaining.reduce((sum, r) => sum + r.weight, 0);
      const pick = Math.min(Math.floor(random() * (total + 1)), total);
      let running = 0;
      let index = remaining.length - 1;
      for (let i = 0; i < remaining.length; i++) {
        running += remaining[i]!.weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      out.push(remaining.splice(index, 1)[0]!);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Where to connect for a remote domain, in order. */
export interface S2sTarget {
  /** The host to resolve: an SRV target, the domain itself (fallback), or a route's host. */
  host: string;
  port: number;
  /** XEP-0368: TLS from the first byte (`_xmpps-server`), else STARTTLS. */
  directTls: boolean;
  source: 'route' | 'srv' | 'fallback';
  /**
   * The DNS answer that named this target was DNSSEC-validated: the SRV RRset for 'srv', the
   * proof that no SRV records exist for 'fallback'. DANE applies only to secure targets.
   */
  secure: boolean;
}

export type S2sResolution =
  /** `srvFailed`: the SRV questions got no answer, so the fallback target stands in for records that may exist. */
  | { ok: true; targets: S2sTarget[]; srvFailed?: boolean }
  | { ok: false; error: 'invalid-domain' | 'no-service' | 'dns-failure'; detail: string };

/** One static route (`s2sRoutes` value). */
export interface S2sRoute {
  host: string;
  port: number;
  directTls: boolean;
}

/** What the config may hold for one domain: 'host', 'host:port', '[v6]:port', or an object. */
export type S2sRouteSpec = string | { host: string; port?: number; directTls?: boolean };

/**
 * Validates `s2sRoutes` (domain → one route or a list tried in order). Domains are keyed by
 * their A-label form.
 */
export function parseS2sRoutes(config: unknown, defaultPort = 5269): { ok: true; routes: Map<string, S2sRoute[]> } | { ok: false; errors: string[] } {
  const routes = new Map<string, S2sRoute[]>();
  const errors: string[] = [];
  if (config === undefined || config === null) return { ok: true, routes };
  if (typeof config !== 'object' || Array.isArray(config)) return { ok: false, errors: ['s2sRoutes must be an object: { "domain": "host:port", … }'] };
  for (const [domain, value] of Object.entries(config as Record<string, unknown>)) {
    const key = toAsciiDomain(domain);
    if (key === null) {
      errors.push(`s2sRoutes: "${domain}" is not a valid domain`);
      continue;
    }
    const specs = Array.isArray(value) ? value : [value];
    const list: S2sRoute[] = [];
    for (const spec of specs) {
      const route = parseRoute(spec, defaultPort);
      if (route) list.push(route);
      else errors.push(`s2sRoutes["${domain}"]: ${JSON.stringify(spec)} is not "host", "host:port", "[IPv6]:port" or { host, port, directTls }`);
    }
    if (list.length === 0 && specs.length === 0) errors.push(`s2sRoutes["${domain}"]: no route`);
    routes.set(key, list);
  }
  return errors.length ? { ok: false, errors } : { ok: true, routes };
}

function parseRoute(spec: unknown, defaultPort: number): S2sRoute | undefined {
  let host: string;
  let port = defaultPort;
  let directTls = false;
  if (typeof spec === 'string') {
    const s = spec.trim();
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    if (bracketed) {
      host = bracketed[1]!;
      if (bracketed[2]) port = Number(bracketed[2]);
    } else if (net.isIPv6(s)) {
      host = s;
    } else {
      const m = /^([^:]+)(?::(\d+))?$/.exec(s);
      if (!m) return undefined;
      host = m[1]!;
      if (m[2]) port = Number(m[2]);
    }
  } else if (spec && typeof spec === 'object' && typeof (spec as { host?: unknown }).host === 'string') {
    const o = spec as { host: string; port?: unknown; directTls?: unknown };
    host = o.host;
    if (o.port !== undefined) {
      if (typeof o.port !== 'number') return undefined;
      port = o.port;
    }
    if (o.directTls !== undefined) {
      if (typeof o.directTls !== 'boolean') return undefined;
      directTls = o.directTls;
    }
  } else {
    return undefined;
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const ascii = toAsciiDomain(host);
  if (ascii === null) return undefined;
  return { host: ascii, port, directTls };
}

export interface S2sResolveOptions {
  resolver: Resolver;
  /** Parsed `s2sRoutes`. */
  routes?: ReadonlyMap<string, readonly S2sRoute[]>;
  /** Also look up `_xmpps-server._tcp` (XEP-0368; default true). */
  directTls?: boolean;
  /** Port of the A/AAAA fallback (RFC 6120 §3.2.2; default 5269). */
  fallbackPort?: number;
  random?: () => number;
}

type SrvOutcome = { kind: 'records'; records: SrvRecord[]; secure: boolean } | { kind: 'no-service'; secure: boolean } | { kind: 'none'; secure: boolean } | { kind: 'error'; detail: string };

function classify(r: Lookup<SrvRecord>): SrvOutcome {
  if (!r.ok) return { kind: 'error', detail: `${r.error}: ${r.detail}` };
  const usable = r.records.filter((rec) => rec.target !== '.');
  if (usable.length > 0) return { kind: 'records', records: usable, secure: r.secure };
  // RFC 2782: a single record with target "." says the service is decidedly not available.
  if (r.records.length === 1) return { kind: 'no-service', secure: r.secure };
  return { kind: 'none', secure: r.secure };
}

/**
 * The ordered targets for a remote XMPP domain (RFC 6120 §3.2.1, XEP-0368 §3):
 * 1. a static route, if configured, is used alone (RFC 6120 §3.2.3), without any DNS query;
 * 2. `_xmpp-server._tcp` and `_xmpps-server._tcp` records are merged and ordered together by
 *    priority and weight (RFC 2782), the latter as direct TLS;
 * 3. a lone "." record ends that service; when neither service has records and either said
 *    ".", there is no service at all (no fallback: RFC 6120 §3.2.1 step 3, XEP-0368 §5);
 * 4. otherwise, without SRV records (none published, or no answer at all, §3.2.1 step 9) the
 *    domain's own addresses on port 5269 with STARTTLS (§3.2.2).
 * Once SRV records exist, connection failures never lead to the fallback (§3.2.1 step 8).
 */
export async function resolveS2sTargets(domain: string, options: S2sResolveOptions): Promise<S2sResolution> {
  const ascii = toAsciiDomain(domain);
  if (ascii === null) return { ok: false, error: 'invalid-domain', detail: `${domain} is not a valid domain name` };
  const route = options.routes?.get(ascii);
  if (route) {
    if (route.length === 0) return { ok: false, error: 'no-service', detail: `the static route for ${ascii} is empty` };
    return { ok: true, targets: route.map((r) => ({ host: r.host, port: r.port, directTls: r.directTls, source: 'route', secure: false })) };
  }
  const fallbackPort = options.fallbackPort ?? 5269;
  if (ipLiteral(ascii)) return { ok: true, targets: [{ host: ascii, port: fallbackPort, directTls: false, source: 'fallback', secure: false }] };

  const [plain, direct] = await Promise.all([
    options.resolver.srv(`_xmpp-server._tcp.${ascii}`).then(classify),
    options.directTls === false ? Promise.resolve<SrvOutcome>({ kind: 'none', secure: false }) : options.resolver.srv(`_xmpps-server._tcp.${ascii}`).then(classify),
  ]);
  type Tagged = SrvRecord & { directTls: boolean; secure: boolean };
  const records: Tagged[] = [];
  if (plain.kind === 'records') records.push(...plain.records.map((r) => ({ ...r, directTls: false, secure: plain.secure })));
  if (direct.kind === 'records') records.push(...direct.records.map((r) => ({ ...r, directTls: true, secure: direct.secure })));
  if (records.length > 0) {
    const ordered = orderSrv(records, options.random);
    return { ok: true, targets: ordered.map((r) => ({ host: r.target, port: r.port, directTls: r.directTls, source: 'srv', secure: r.secure })) };
  }
  if (plain.kind === 'no-service' || direct.kind === 'no-service') {
    return { ok: false, error: 'no-service', detail: `${ascii} publishes no XMPP server-to-server service (SRV target ".")` };
  }
  // Both services answered "none" or did not answer: the fallback. It counts as secure only when
  // both answers were validated denials.
  const secure = plain.kind === 'none' && plain.secure && (options.directTls === false || (direct.kind === 'none' && direct.secure));
  const srvFailed = plain.kind === 'error' || direct.kind === 'error';
  if (plain.kind === 'error' && (direct.kind === 'error' || options.directTls === false)) log('SRV lookups for %s failed (%s); trying its address', ascii, plain.detail);
  return { ok: true, targets: [{ host: ascii, port: fallbackPort, directTls: false, source: 'fallback', secure }], ...(srvFailed ? { srvFailed } : {}) };
}
