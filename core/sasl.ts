// SASL mechanisms (RFC 4422), shared by every SASL profile: RFC 6120 §6 (mod_saslauth) and the
// Extensible SASL Profile, XEP-0388 (mod_sasl2). The profiles own the wire format (elements,
// base64, stream restarts); this file owns what a mechanism is, which ones a stream may be
// offered, and running an exchange — with what every profile needs around it: the
// channel-binding policy, XEP-0474 downgrade protection, credential upgrades on PLAIN, and
// brute-force throttling (AuthThrottle). Built-in: SCRAM-SHA-*(-PLUS) and PLAIN. Modules register
// more (FAST's HT-* mechanisms) through `module.sasl.register()`. See doc/authentication.md.
import { isIPv6 } from 'node:net';
import type { Element } from '@xmpp/xml';
import type { StreamTransport } from './net/transport.ts';
import { nodeprep, prep } from './util/jid.ts';
import { getLogger } from './util/log.ts';
import { ScramServer, saslPrep, type ChannelBindingPolicy, type ScramCredentials, type ScramHash } from './util/scram.ts';
import type { Json, MapStore, StorageManager } from './storage/manager.ts';

const log = getLogger('core:sasl');

/** The SASL profile a stream authenticates with. */
export type SaslProfile = 'SASL1' | 'SASL2';

/** RFC 6120 §6.5 failure conditions (also used by XEP-0388). */
export type SaslCondition =
  | 'aborted' | 'account-disabled' | 'credentials-expired' | 'encryption-required'
  | 'incorrect-encoding' | 'invalid-authzid' | 'invalid-mechanism' | 'malformed-request'
  | 'mechanism-too-weak' | 'not-authorized' | 'temporary-auth-failure';

/** What a mechanism may know about the stream it runs on. */
export interface SaslContext {
  /** The virtual host the client authenticates to. */
  host: string;
  /** The client's connection: TLS state, channel-binding data, address. */
  conn: StreamTransport | undefined;
  profile: SaslProfile;
  /** Mechanism names offered on this stream, in offer order. */
  offered: readonly string[];
  /**
   * Channel-binding types the connection provides as their RFCs define them, best first
   * (`conn.channelBindingTypes()`); advertised with XEP-0440 when a -PLUS mechanism is offered.
   */
  channelBindings: readonly string[];
  /**
   * SASL2 only, once the client has sent <authenticate/> (absent while offering): the request,
   * where mechanisms find their parameters (FAST's <fast/>), and the client's user agent.
   */
  sasl2?: { request: Element; userAgent: UserAgent | undefined };
}

/** The client installation a SASL2 client names in <user-agent/> (XEP-0388 §2.3). */
export interface UserAgent {
  /** Stable id of the installation (a UUID, lower case). */
  id?: string;
  software?: string;
  device?: string;
}

/** The XEP-0440 list a profile advertises next to its mechanisms: only together with -PLUS ones. */
export function advertisedChannelBindings(ctx: Pick<SaslContext, 'offered' | 'channelBindings'>): readonly string[] {
  return ctx.offered.some(isPlus) ? ctx.channelBindings : [];
}

function isPlus(mechanism: string): boolean {
  return mechanism.endsWith('-PLUS');
}

export type SaslFailure = {
  status: 'failure';
  condition: SaslCondition;
  text: string;
  /** The client's credentials were checked and are wrong: a failed guess, counted by the throttle. */
  wrongCredentials?: boolean;
};

export type SaslStep =
  | { status: 'challenge'; data: Buffer }
  | { status: 'success'; data: Buffer; username: string }
  | SaslFailure;

/**
 * Given to a mechanism when it starts: call it with the claimed username as soon as it is known
 * and before checking credentials; a failure means the attempt is refused (throttled) and must be
 * returned as the step's result. Mechanisms that only learn the user in a step that checks nothing
 * (SCRAM's first message) may skip it: the exchange calls it after that step anyway.
 */
export type AdmitUser = (username: string) => Promise<SaslFailure | undefined>;

/** One authentication exchange, started by a client's <auth/> or <authenticate/>. */
export interface SaslExchange {
  /** Feed the client's next message (the initial response first; empty when there was none). */
  step(data: Buffer): Promise<SaslStep>;
  /**
   * The user the client claims to be, once known: for log lines and throttling, never trusted.
   * The prepared localpart when it is a valid one, else the name made printable.
   */
  readonly claimedUser: string | undefined;
}

export interface SaslMechanism {
  readonly name: string;
  /** Offer order: higher first. */
  readonly preference: number;
  /** Whether this mechanism may be offered on the stream (e.g. -PLUS needs channel binding). */
  available(ctx: SaslContext): boolean;
  start(ctx: SaslContext, admit: AdmitUser): SaslExchange;
}

/** Brute-force throttling (core option `authThrottle`); counts are of failed guesses. */
export interface AuthThrottleOptions {
  /** Failures from one address after which its next attempts are delayed. */
  addressDelayAfter: number;
  /** Failures from one address after which it is refused (temporary-auth-failure) for `lockout` seconds. */
  addressLockAfter: number;
  /** Failures on one account after which wrong guesses on it are answered late. */
  accountDelayAfter: number;
  /** Failures on one account after which addresses that failed on it are refused for `lockout` seconds. */
  accountLockAfter: number;
  /** First delay in seconds; it doubles with each further failure, up to 30 s. */
  delay: number;
  /** Seconds a lock lasts. */
  lockout: number;
  /** Seconds without a failure after which a count starts again from zero. */
  window: number;
}

/** What the built-in mechanisms need of the accounts (core/usermanager.ts). */
export interface SaslAccounts {
  getScram(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined>;
  checkPassword(host: string, username: string, password: string): Promise<boolean>;
  upgradeCredentials(host: string, username: string, password: string): Promise<ScramHash[]>;
  hasEveryAccount(host: string, hash: ScramHash): boolean;
  /** A disabled account (XEP-0133) is refused with account-disabled once its credentials are proven. */
  isDisabled?(host: string, username: string): Promise<boolean>;
}

/** Options of the built-in mechanisms and of the throttle that come from the configuration. */
export interface SaslPolicy {
  /** PLAIN offered on unencrypted streams (allowUnencryptedPlainAuth). */
  allowUnencryptedPlain(host: string): boolean;
  /** Which GS2 channel-binding flags SCRAM accepts (channelBindingPolicy). */
  channelBindingPolicy(host: string): ChannelBindingPolicy;
  /** Brute-force throttling of the host; undefined when turned off (authThrottle: false). */
  authThrottle(host: string): AuthThrottleOptions | undefined;
}

/** The mechanism registry and the built-in mechanisms. */
export class SaslManager {
  private readonly mechanisms = new Map<string, SaslMechanism>();
  /** Mechanisms registered by host modules: host → name → mechanism (one instance per host). */
  private readonly hostMechanisms = new Map<string, Map<string, SaslMechanism>>();
  private readonly throttle: AuthThrottle;

  constructor(private readonly users: SaslAccounts, private readonly policy: SaslPolicy, storage: StorageManager) {
    for (const m of this.builtins()) this.mechanisms.set(m.name, m);
    this.throttle = new AuthThrottle(storage, (host) => policy.authThrottle(host));
  }

  /**
   * Add a mechanism, for every host or (from a host module) for one host; returns the function
   * that removes it.
   */
  register(mechanism: SaslMechanism, host?: string): () => void {
    let map = this.mechanisms;
    if (host !== undefined) {
      map = this.hostMechanisms.get(host) ?? new Map<string, SaslMechanism>();
      this.hostMechanisms.set(host, map);
    }
    if (this.mechanisms.has(mechanism.name) || map.has(mechanism.name)) throw new Error(`SASL mechanism ${mechanism.name} is already registered`);
    map.set(mechanism.name, mechanism);
    return () => {
      if (map.get(mechanism.name) === mechanism) map.delete(mechanism.name);
    };
  }

  /** The mechanism of that name on a host (a host's own, else a server-wide one). */
  get(name: string, host?: string): SaslMechanism | undefined {
    return (host !== undefined ? this.hostMechanisms.get(host)?.get(name) : undefined) ?? this.mechanisms.get(name);
  }

  /**
   * The mechanisms to offer on a stream, best first: those in `enabled` (all when undefined) that
   * are available on it. `ctx.offered` is ignored (it is what this computes).
   */
  offer(ctx: Omit<SaslContext, 'offered'>, enabled?: ReadonlySet<string>): string[] {
    const full: SaslContext = { ...ctx, offered: [] };
    return [...this.mechanisms.values(), ...(this.hostMechanisms.get(ctx.host)?.values() ?? [])]
      .filter((m) => (!enabled || enabled.has(m.name)) && m.available(full))
      .sort((a, b) => b.preference - a.preference)
      .map((m) => m.name);
  }

  /**
   * Start an exchange with an offered mechanism; undefined when it is not offered. The exchange is
   * throttled: an address or account with too many failed guesses is delayed, then refused.
   */
  start(name: string, ctx: SaslContext): SaslExchange | undefined {
    if (!ctx.offered.includes(name)) return undefined;
    const mechanism = this.get(name, ctx.host);
    if (!mechanism) return undefined;
    const attempt = this.throttle.attempt(ctx.host, ctx.conn?.ip);
    const exchange = attempt.run(mechanism.start(ctx, (username) => attempt.admit(username)));
    const users = this.users;
    return {
      get claimedUser() {
        return exchange.claimedUser;
      },
      // Checked after the credentials, so only the account's owner learns that it is disabled.
      step: async (data) => {
        const r = await exchange.step(data);
        if (r.status === 'success' && (await users.isDisabled?.(ctx.host, r.username))) {
          return { status: 'failure', condition: 'account-disabled', text: 'This account is disabled' };
        }
        return r;
      },
    };
  }

  private builtins(): SaslMechanism[] {
    const scram = (hash: ScramHash, plus: boolean, preference: number): SaslMechanism => ({
      name: `SCRAM-${hash}${plus ? '-PLUS' : ''}`,
      preference,
      available: (ctx) =>
        // -PLUS needs a TLS channel to bind to.
        (!plus || ((ctx.conn?.secure ?? false) && ctx.channelBindings.length > 0)) &&
        // A hash is offered only while every account of the host has its credentials, so that no
        // client picks it and fails for an account that cannot do it yet (SHA-512 came later;
        // accounts imported from Prosody have SHA-1 only until their next PLAIN login).
        this.users.hasEveryAccount(ctx.host, hash),
      start: (ctx) => scramExchange(this.users, ctx, hash, plus, this.policy.channelBindingPolicy(ctx.host)),
    });
    return [
      scram('SHA-512', true, 50),
      scram('SHA-256', true, 40),
      scram('SHA-1', true, 30),
      scram('SHA-512', false, 25),
      scram('SHA-256', false, 20),
      scram('SHA-1', false, 10),
      {
        name: 'PLAIN',
        preference: 0,
        available: (ctx) => (ctx.conn?.secure ?? false) || this.policy.allowUnencryptedPlain(ctx.host),
        start: (ctx, admit) => plainExchange(this.users, ctx, admit),
      },
    ];
  }
}

function scramExchange(users: SaslAccounts, ctx: SaslContext, hash: ScramHash, plus: boolean, policy: ChannelBindingPolicy): SaslExchange {
  const conn = ctx.conn;
  let claimedUser: string | undefined;
  const scram = new ScramServer({
    hash,
    plus,
    offeredPlus: ctx.offered.some(isPlus),
    offeredUnbound: ctx.offered.includes(`SCRAM-${hash}`),
    channelBindingTypes: ctx.channelBindings,
    policy,
    channelBinding: (type) => conn?.channelBinding(type),
    // XEP-0474: the mechanisms of this profile and the XEP-0440 list, as advertised.
    downgradeProtection: { mechanisms: ctx.offered, channelBindings: advertisedChannelBindings(ctx) },
    lookup: async (username) => {
      const node = nodeprep(username);
      claimedUser = node ?? printable(username);
      return node ? users.getScram(ctx.host, node, hash) : undefined;
    },
  });
  return {
    get claimedUser() {
      return claimedUser;
    },
    async step(data) {
      const r = await scram.step(data);
      if (r.status !== 'success') return r;
      const node = nodeprep(r.username);
      if (!node) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username' };
      // Only authorization as oneself (bare JID) is allowed.
      if (r.authzid !== undefined && prep(r.authzid) !== `${node}@${ctx.host}`) {
        return { status: 'failure', condition: 'invalid-authzid', text: 'Cannot act as another user' };
      }
      return { status: 'success', data: r.data, username: node };
    },
  };
}

function plainExchange(users: SaslAccounts, ctx: SaslContext, admit: AdmitUser): SaslExchange {
  let claimedUser: string | undefined;
  let done = false;
  return {
    get claimedUser() {
      return claimedUser;
    },
    async step(data) {
      if (done) return { status: 'failure', condition: 'malformed-request', text: 'PLAIN takes one message' };
      done = true;
      const parts = data.toString('utf8').split('\u0000');
      if (parts.length !== 3) return { status: 'failure', condition: 'malformed-request', text: 'Malformed PLAIN message' };
      const [authzid, authcid, password] = parts as [string, string, string];
      let node: string | null;
      try {
        node = nodeprep(saslPrep(authcid));
      } catch {
        node = null;
      }
      claimedUser = node ?? printable(authcid);
      if (!node || !password) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username or password', wrongCredentials: true };
      if (authzid && prep(authzid) !== `${node}@${ctx.host}`) return { status: 'failure', condition: 'invalid-authzid', text: 'Cannot act as another user' };
      const refused = await admit(node);
      if (refused) return refused;
      const ok = await users.checkPassword(ctx.host, node, password);
      if (!ok) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username or password', wrongCredentials: true };
      // The password is known now: store the credentials of any hash the account lacks.
      try {
        await users.upgradeCredentials(ctx.host, node, password);
      } catch (err) {
        log.error('could not add SCRAM credentials to %s@%s: %s', node, ctx.host, err);
      }
      return { status: 'success', data: Buffer.alloc(0), username: node };
    },
  };
}

// ---------------------------------------------------------------------------
// Brute-force throttling

/** A failure count, as stored (map store `auth_throttle`, keys `address:<addr>` / `account:<user>`). */
interface FailureRecord {
  /** Failed guesses since the count (re)started. */
  n: number;
  /** Time of the last failure (ms). */
  last: number;
  /** Refused until then (ms), once the count reached the lock threshold. */
  until?: number;
}

const MAX_DELAY_MS = 30_000;
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Counts failed guesses per source address and per account, durably (a restart resets nothing),
 * and throttles: an address is delayed, then refused; an account under attack answers wrong
 * guesses late, then refuses addresses that guessed wrong on it, while an address with a clean
 * record (the owner's) still logs in at once. The reasoning and defaults: doc/authentication.md.
 */
export class AuthThrottle {
  /** Attempts under way per host and address: parallel connections cannot outrun the count. */
  private readonly inflight = new Map<string, number>();
  private lastPrune = new Map<string, number>();

  constructor(private readonly storage: StorageManager, private readonly options: (host: string) => AuthThrottleOptions | undefined, private readonly now: () => number = Date.now) {}

  private store(host: string): MapStore {
    return this.storage.map(host, 'auth_throttle');
  }

  attempt(host: string, ip: string | undefined): ThrottledAttempt {
    return new ThrottledAttempt(this, host, ip === undefined ? undefined : addressKey(ip));
  }

  /** @internal */
  async read(host: string, key: string, o: AuthThrottleOptions): Promise<FailureRecord> {
    const r = await this.store(host).get<FailureRecord & Json>(null, key);
    // A count without a failure for `window` seconds starts again (a running lock is kept).
    if (!r || (this.now() - r.last > o.window * 1000 && !(r.until && r.until > this.now()))) return { n: 0, last: 0 };
    return r;
  }

  /** @internal */
  async write(host: string, key: string, record: FailureRecord | undefined): Promise<void> {
    await this.store(host).set(null, key, record as (FailureRecord & Json) | undefined);
  }

  /** @internal */
  inflightCount(host: string, address: string, delta = 0): number {
    const k = `${host}\u0000${address}`;
    const n = (this.inflight.get(k) ?? 0) + delta;
    if (n > 0) this.inflight.set(k, n);
    else this.inflight.delete(k);
    return n;
  }

  /** @internal */
  config(host: string): AuthThrottleOptions | undefined {
    return this.options(host);
  }

  /** @internal */
  time(): number {
    return this.now();
  }

  /** Forget expired counts (at most every ten minutes per host, on a failure). */
  async prune(host: string, o: AuthThrottleOptions): Promise<void> {
    const now = this.now();
    if (now - (this.lastPrune.get(host) ?? 0) < PRUNE_EVERY_MS) return;
    this.lastPrune.set(host, now);
    const all = await this.store(host).getAll<FailureRecord & Json>(null);
    const expired: Record<string, undefined> = {};
    for (const [key, r] of all) if (now - r.last > o.window * 1000 && !(r.until && r.until > now)) expired[key] = undefined;
    if (Object.keys(expired).length) await this.store(host).setKeys(null, expired);
  }
}

/** One exchange's passage through the throttle. */
class ThrottledAttempt {
  private admitted: string | undefined;
  private addressFailures = 0;

  constructor(private readonly t: AuthThrottle, private readonly host: string, private readonly address: string | undefined) {}

  /** Wrap a mechanism's exchange: the address check before its first step, counting after each. */
  run(inner: SaslExchange): SaslExchange {
    let first = true;
    return {
      get claimedUser() {
        return inner.claimedUser;
      },
      step: async (data) => {
        if (first) {
          first = false;
          const refused = await this.begin();
          if (refused) return refused;
        }
        let r: SaslStep;
        try {
          r = await inner.step(data);
        } catch (err) {
          this.end();
          throw err;
        }
        const claimed = inner.claimedUser === undefined ? null : nodeprep(inner.claimedUser);
        if (r.status === 'challenge' && claimed) r = (await this.admit(claimed)) ?? r;
        if (r.status === 'failure' && r.wrongCredentials) await this.failed(claimed);
        else if (r.status === 'success') await this.succeeded(r.username);
        if (r.status !== 'challenge') this.end();
        return r;
      },
    };
  }

  /** While this attempt is under way it counts against its address (released at the latest after a minute). */
  private release: (() => void) | undefined;

  private end(): void {
    this.release?.();
    this.release = undefined;
  }

  /** Before the first step: a locked address is refused, one with failures waits. */
  private async begin(): Promise<SaslFailure | undefined> {
    const o = this.t.config(this.host);
    if (!o || this.address === undefined) return undefined;
    const address = this.address;
    const others = this.t.inflightCount(this.host, address);
    this.t.inflightCount(this.host, address, +1);
    const timer = setTimeout(() => this.end(), 60_000);
    timer.unref();
    this.release = () => {
      clearTimeout(timer);
      this.t.inflightCount(this.host, address, -1);
    };
    const key = `address:${address}`;
    const r = await this.t.read(this.host, key, o);
    this.addressFailures = r.n;
    if (this.locked(r)) return this.refuseAddress(r);
    // Attempts already under way count too once the address has failed: parallel connections
    // cannot outrun the count (a busy NAT with a clean record is not slowed).
    const n = r.n > 0 ? r.n + others : 0;
    if (n >= o.addressDelayAfter) {
      const ms = delayMs(o, n - o.addressDelayAfter);
      log.warn('authentication from %s delayed %d ms: %d failed attempts from this address%s', address, ms, r.n, others ? `, ${others} more under way` : '');
      await sleep(ms);
      // Failures that ended during the wait may have locked the address.
      const after = await this.t.read(this.host, key, o);
      if (this.locked(after)) return this.refuseAddress(after);
    }
    return undefined;
  }

  private locked(r: FailureRecord): boolean {
    return r.until !== undefined && r.until > this.t.time();
  }

  private refuseAddress(r: FailureRecord): SaslFailure {
    this.end();
    log.warn('authentication from %s refused: %d failed attempts, address locked for %d s more', this.address, r.n, Math.ceil((r.until! - this.t.time()) / 1000));
    return refusal();
  }

  /** Once the claimed user is known: refused while the account is locked, unless this address never failed. */
  async admit(username: string): Promise<SaslFailure | undefined> {
    const o = this.t.config(this.host);
    if (!o || this.address === undefined || this.admitted === username) return undefined;
    this.admitted = username;
    const r = await this.t.read(this.host, `account:${username}`, o);
    if (this.locked(r) && this.addressFailures > 0) {
      log.warn('authentication for %s@%s from %s refused: account locked for %d s more after %d failed attempts, and this address failed before', username, this.host, this.address, Math.ceil((r.until! - this.t.time()) / 1000), r.n);
      return refusal();
    }
    return undefined;
  }

  private async failed(user: string | null): Promise<void> {
    const o = this.t.config(this.host);
    if (!o || this.address === undefined) return;
    const addr = await this.bump(`address:${this.address}`, o, o.addressLockAfter);
    if (addr.locked) log.warn('address %s locked out of authentication on %s for %d s after %d failed attempts', this.address, this.host, o.lockout, addr.n);
    if (user) {
      const acc = await this.bump(`account:${user}`, o, o.accountLockAfter);
      if (acc.locked) log.warn('account %s@%s locked for %d s against addresses with failures, after %d failed attempts', user, this.host, o.lockout, acc.n);
      if (acc.n > o.accountDelayAfter) {
        const ms = delayMs(o, acc.n - o.accountDelayAfter - 1);
        log.warn('failed authentication for %s@%s from %s answered after %d ms: %d failed attempts on this account', user, this.host, this.address, ms, acc.n);
        await sleep(ms);
      }
    }
    await this.t.prune(this.host, o).catch((err: unknown) => log.error('pruning authentication failure counts: %s', err));
  }

  /** Count one more failure; `locked` when this one started a lock. */
  private async bump(key: string, o: AuthThrottleOptions, lockAfter: number): Promise<{ n: number; locked: boolean }> {
    const now = this.t.time();
    const r = await this.t.read(this.host, key, o);
    const next: FailureRecord = { n: r.n + 1, last: now };
    let locked = false;
    if (r.until && r.until > now) next.until = r.until;
    else if (lockAfter > 0 && next.n >= lockAfter) {
      next.until = now + o.lockout * 1000;
      locked = true;
    }
    await this.t.write(this.host, key, next);
    return { n: next.n, locked };
  }

  /** A login clears the account's count (not a running lock, nor the address's count). */
  private async succeeded(username: string): Promise<void> {
    const o = this.t.config(this.host);
    if (!o || this.address === undefined) return;
    const key = `account:${username}`;
    const r = await this.t.read(this.host, key, o);
    if (r.n > 0 && !this.locked(r)) await this.t.write(this.host, key, undefined);
  }
}

function refusal(): SaslFailure {
  return { status: 'failure', condition: 'temporary-auth-failure', text: 'Too many failed authentication attempts; try again later' };
}

function delayMs(o: AuthThrottleOptions, extra: number): number {
  return Math.min(MAX_DELAY_MS, Math.round(o.delay * 1000 * 2 ** Math.min(extra, 16)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The unit an address is counted by: IPv4 as is, IPv6 by its /64 (one host's usual allocation). */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/** A claimed name made safe for a log line. */
function printable(name: string): string | undefined {
  return name ? name.replace(/[^\x21-\x7e]/g, '?').slice(0, 64) : undefined;
}

/** Strict base64 of a SASL element's text ('=' or empty is an empty message); undefined when invalid. */
export function decodeSaslPayload(text: string): Buffer | undefined {
  const t = text.trim();
  if (t === '' || t === '=') return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) return undefined;
  return Buffer.from(t, 'base64');
}

/** Base64 for a SASL element ('=' for an empty message, RFC 6120 §6.4.2). */
export function encodeSaslPayload(data: Buffer): string {
  return data.length ? data.toString('base64') : '=';
}
