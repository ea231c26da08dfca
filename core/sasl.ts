// SASL mechanisms (RFC 4422), shared by every SASL profile: RFC 6120 §6 (mod_saslauth) and the
// Extensible SASL Profile, XEP-0388 (mod_sasl2). The profiles own the wire format (elements,
// base64, stream restarts); this file owns what a mechanism is, which ones a stream may be
// offered, and running an exchange. Built-in: SCRAM-SHA-*(-PLUS) and PLAIN. Modules register more
// (FAST's HT-* mechanisms) through `module.sasl.register()`.
import type { Connection } from './connection.ts';
import { nodeprep, prep } from './jid.ts';
import { ScramServer, saslPrep, type ScramHash } from './scram.ts';
import type { UserManager } from './usermanager.ts';

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
  conn: Connection | undefined;
  profile: SaslProfile;
  /** Mechanism names offered on this stream, in offer order. */
  offered: readonly string[];
  /** Channel-binding types advertised on this stream (XEP-0440), best first. */
  channelBindings: readonly string[];
}

export type SaslStep =
  | { status: 'challenge'; data: Buffer }
  | { status: 'success'; data: Buffer; username: string }
  | { status: 'failure'; condition: SaslCondition; text: string };

/** One authentication exchange, started by a client's <auth/> or <authenticate/>. */
export interface SaslExchange {
  /** Feed the client's next message (the initial response first; empty when there was none). */
  step(data: Buffer): Promise<SaslStep>;
  /** The user the client claims to be, once known: for log lines and throttling, never trusted. */
  readonly claimedUser: string | undefined;
}

export interface SaslMechanism {
  readonly name: string;
  /** Offer order: higher first. */
  readonly preference: number;
  /** Whether this mechanism may be offered on the stream (e.g. -PLUS needs channel binding). */
  available(ctx: SaslContext): boolean;
  start(ctx: SaslContext): SaslExchange;
}

/** Options of the built-in mechanisms that come from the configuration. */
export interface SaslPolicy {
  /** PLAIN offered on unencrypted streams (allowUnencryptedPlainAuth). */
  allowUnencryptedPlain(host: string): boolean;
}

/** The mechanism registry and the built-in mechanisms. */
export class SaslManager {
  private readonly mechanisms = new Map<string, SaslMechanism>();

  constructor(private readonly users: UserManager, private readonly policy: SaslPolicy) {
    for (const m of this.builtins()) this.mechanisms.set(m.name, m);
  }

  /** Add a mechanism; returns the function that removes it. */
  register(mechanism: SaslMechanism): () => void {
    if (this.mechanisms.has(mechanism.name)) throw new Error(`SASL mechanism ${mechanism.name} is already registered`);
    this.mechanisms.set(mechanism.name, mechanism);
    return () => {
      if (this.mechanisms.get(mechanism.name) === mechanism) this.mechanisms.delete(mechanism.name);
    };
  }

  get(name: string): SaslMechanism | undefined {
    return this.mechanisms.get(name);
  }

  /**
   * The mechanisms to offer on a stream, best first: those in `enabled` (all when undefined) that
   * are available on it. `ctx.offered` is ignored (it is what this computes).
   */
  offer(ctx: Omit<SaslContext, 'offered'>, enabled?: ReadonlySet<string>): string[] {
    const full: SaslContext = { ...ctx, offered: [] };
    return [...this.mechanisms.values()]
      .filter((m) => (!enabled || enabled.has(m.name)) && m.available(full))
      .sort((a, b) => b.preference - a.preference)
      .map((m) => m.name);
  }

  /** Start an exchange with an offered mechanism; undefined when it is not offered. */
  start(name: string, ctx: SaslContext): SaslExchange | undefined {
    if (!ctx.offered.includes(name)) return undefined;
    return this.mechanisms.get(name)?.start(ctx);
  }

  private builtins(): SaslMechanism[] {
    const scram = (hash: ScramHash, plus: boolean, preference: number): SaslMechanism => ({
      name: `SCRAM-${hash}${plus ? '-PLUS' : ''}`,
      preference,
      // -PLUS needs a TLS channel to bind to.
      available: (ctx) => !plus || ((ctx.conn?.secure ?? false) && ctx.channelBindings.length > 0),
      start: (ctx) => scramExchange(this.users, ctx, hash, plus),
    });
    return [
      scram('SHA-256', true, 40),
      scram('SHA-1', true, 30),
      scram('SHA-256', false, 20),
      scram('SHA-1', false, 10),
      {
        name: 'PLAIN',
        preference: 0,
        available: (ctx) => (ctx.conn?.secure ?? false) || this.policy.allowUnencryptedPlain(ctx.host),
        start: (ctx) => plainExchange(this.users, ctx),
      },
    ];
  }
}

function scramExchange(users: UserManager, ctx: SaslContext, hash: ScramHash, plus: boolean): SaslExchange {
  const conn = ctx.conn;
  let claimedUser: string | undefined;
  const scram = new ScramServer({
    hash,
    plus,
    serverSupportsPlus: ctx.offered.some((m) => m.endsWith('-PLUS')),
    channelBinding: (type) => conn?.channelBinding(type),
    lookup: async (username) => {
      claimedUser = printable(username);
      const node = nodeprep(username);
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

function plainExchange(users: UserManager, ctx: SaslContext): SaslExchange {
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
      claimedUser = printable(authcid);
      let node: string | null;
      try {
        node = nodeprep(saslPrep(authcid));
      } catch {
        node = null;
      }
      if (!node || !password) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username or password' };
      if (authzid && prep(authzid) !== `${node}@${ctx.host}`) return { status: 'failure', condition: 'invalid-authzid', text: 'Cannot act as another user' };
      const ok = await users.checkPassword(ctx.host, node, password);
      if (!ok) return { status: 'failure', condition: 'not-authorized', text: 'Invalid username or password' };
      return { status: 'success', data: Buffer.alloc(0), username: node };
    },
  };
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
