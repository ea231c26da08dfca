/**
 * Server side of SCRAM-SHA-1 / -256 / -512 (RFC 5802, RFC 7677, draft-melnikov-scram-sha-512),
 * including the channel-binding "-PLUS" variants (RFC 5929 tls-unique / tls-server-end-point,
 * RFC 9266 tls-exporter), the server's channel-binding policy (which GS2 flags it accepts; see
 * doc/authentication.md) and XEP-0474 downgrade protection (the `h` attribute).
 *
 * Pure logic: no I/O besides the injected credential lookup and channel-binding
 * provider. Never logs or returns passwords, proofs or keys.
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';

// The saslprep package is loaded at the first use: its tables (six bit fields, ~2 MiB of heap)
// are not needed by a server that no one has logged in to yet (idle RSS, bench/RESULTS.md).
let saslprep: typeof import('saslprep').default | undefined;

export type ScramHash = 'SHA-1' | 'SHA-256' | 'SHA-512';

/** Every hash Cadence implements, weakest first. */
export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

export interface ScramCredentials {
  iterations: number;
  /** base64 */
  salt: string;
  /** base64 */
  storedKey: string;
  /** base64 */
  serverKey: string;
}

/** Returns the channel-binding data for the given type, undefined when not available. */
export interface ChannelBindingProvider {
  (type: string): Buffer | undefined;
}

export interface ScramServerOptions {
  hash: ScramHash;
  /** mechanism name ends with -PLUS */
  plus: boolean;
  /** whether the server offered any -PLUS mechanism on this stream (for the 'y' downgrade check) */
  offeredPlus: boolean;
  /** For a -PLUS mechanism: whether the same mechanism without -PLUS was offered on this stream too. */
  offeredUnbound?: boolean;
  /** Channel-binding types the connection provides as their RFCs define them, best first. */
  channelBindingTypes: readonly string[];
  /** Which GS2 flags the server accepts (see channelBindingDecision). */
  policy: ChannelBindingPolicy;
  channelBinding: ChannelBindingProvider;
  /**
   * XEP-0474: what the server advertised on this stream (mechanisms of the profile in use, and the
   * XEP-0440 channel-binding types if it sent that feature); its hash goes into the `h` attribute.
   */
  downgradeProtection?: { mechanisms: readonly string[]; channelBindings: readonly string[] };
  /** username already saslprepped & unescaped (=2C → ',', =3D → '=') */
  lookup: (username: string) => Promise<ScramCredentials | undefined>;
  /** server nonce part, for tests; default random base64 of 18 bytes */
  nonce?: string;
}

export type ScramFailureCondition =
  | 'not-authorized'
  | 'malformed-request'
  | 'invalid-authzid'
  | 'temporary-auth-failure'
  | 'encryption-required';

export type ScramStep =
  | { status: 'challenge'; data: Buffer }
  | { status: 'success'; data: Buffer; username: string; authzid?: string }
  /** `wrongCredentials`: the client's proof was checked and is wrong (a password guess failed). */
  | { status: 'failure'; condition: ScramFailureCondition; text: string; wrongCredentials?: boolean };

/** Minimum iteration count accepted by deriveCredentials (RFC 5802 §5.1 / RFC 7677 §4). */
export const MIN_ITERATIONS = 4096;

/** Iterations of new credentials: RFC 5802's and RFC 7677's minimum for SHA-1; at least 10000 (draft-melnikov-scram-sha-512 asks that much of SHA-512) for the SHA-2 family. */
export const DEFAULT_ITERATIONS: Readonly<Record<ScramHash, number>> = {
  'SHA-1': 4096,
  'SHA-256': 10000,
  'SHA-512': 10000,
};

/** Upper bound on a single client SCRAM message; real messages are a few hundred bytes. */
const MAX_MESSAGE_BYTES = 8192;

const SALT_BYTES = 16;
const NONCE_BYTES = 18;

interface HashInfo {
  node: string;
  length: number;
}

const HASHES: Readonly<Record<ScramHash, HashInfo>> = {
  'SHA-1': { node: 'sha1', length: 20 },
  'SHA-256': { node: 'sha256', length: 32 },
  'SHA-512': { node: 'sha512', length: 64 },
};

// ---------------------------------------------------------------------------
// Primitives

function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(HASHES[hash].node, key).update(data).digest();
}

function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(HASHES[hash].node).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ (b[i] ?? 0);
  return out;
}

/** Length in bytes of the hash output (and thus of keys, proofs and signatures). */
export function hashLength(hash: ScramHash): number {
  return HASHES[hash].length;
}

/**
 * SASLprep (RFC 4013) in "query" mode: unassigned code points are let through, so
 * that passwords/usernames using characters newer than Unicode 3.2 (e.g. emoji)
 * keep working and match what clients compute. Throws on prohibited characters.
 */
export function saslPrep(s: string): string {
  saslprep ??= createRequire(import.meta.url)('saslprep') as typeof import('saslprep').default;
  return saslprep(s, { allowUnassigned: true });
}

/** SaltedPassword := Hi(Normalize(password), salt, i) */
export function saltPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, HASHES[hash].length, HASHES[hash].node);
}

/** SaltedPassword computed on libuv's thread pool, so logins with PLAIN don't block the server. */
export function saltPasswordAsync(hash: ScramHash, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const prepared = Buffer.from(saslPrep(password), 'utf8');
  return new Promise((resolve, reject) => {
    pbkdf2(prepared, salt, iterations, HASHES[hash].length, HASHES[hash].node, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function checkDerivation(hash: ScramHash, opts: { salt?: Buffer; iterations?: number }): { salt: Buffer; iterations: number } {
  if (!(hash in HASHES)) throw new TypeError(`unsupported SCRAM hash: ${String(hash)}`);
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS[hash];
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS) {
    throw new RangeError(`SCRAM iteration count must be an integer >= ${MIN_ITERATIONS}`);
  }
  const salt = opts.salt ?? randomBytes(SALT_BYTES);
  if (salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  return { salt, iterations };
}

/**
 * The stored credentials (StoredKey, ServerKey) for a SaltedPassword: what a server keeps, and what
 * an XEP-0480 upgrade computes from the SaltedPassword the client sends.
 */
export function credentialsFromSaltedPassword(hash: ScramHash, salted: Buffer, salt: Buffer, iterations: number): ScramCredentials {
  if (salted.length !== HASHES[hash].length) throw new RangeError(`SaltedPassword for SCRAM-${hash} must be ${HASHES[hash].length} bytes`);
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    iterations,
    salt: salt.toString('base64'),
    storedKey: digest(hash, clientKey).toString('base64'),
    serverKey: hmac(hash, salted, 'Server Key').toString('base64'),
  };
}

/**
 * Derive the stored SCRAM credentials for a password. The password is SASLprepped
 * (throws if it contains prohibited characters).
 */
export function deriveCredentials(
  hash: ScramHash,
  password: string,
  opts: { salt?: Buffer; iterations?: number } = {},
): ScramCredentials {
  const { salt, iterations } = checkDerivation(hash, opts);
  return credentialsFromSaltedPassword(hash, saltPassword(hash, password, salt, iterations), salt, iterations);
}

/** deriveCredentials with the key stretching on libuv's thread pool (account creation at run time). */
export async function deriveCredentialsAsync(
  hash: ScramHash,
  password: string,
  opts: { salt?: Buffer; iterations?: number } = {},
): Promise<ScramCredentials> {
  const { salt, iterations } = checkDerivation(hash, opts);
  return credentialsFromSaltedPassword(hash, await saltPasswordAsync(hash, password, salt, iterations), salt, iterations);
}

/** What is wrong with credentials for `hash` (undefined when they are well-formed). */
export function credentialsProblem(hash: ScramHash, creds: ScramCredentials): string | undefined {
  if (!Number.isSafeInteger(creds.iterations) || creds.iterations < MIN_ITERATIONS) return `iteration count must be an integer >= ${MIN_ITERATIONS}`;
  if (!decodeBase64(creds.salt)?.length) return 'salt must be non-empty base64';
  for (const key of [creds.storedKey, creds.serverKey]) {
    if (decodeBase64(key)?.length !== HASHES[hash].length) return `keys must be ${HASHES[hash].length} bytes of base64`;
  }
  return undefined;
}

/** Whether `password` matches stored credentials (SASL PLAIN against SCRAM keys). */
export async function verifyPassword(hash: ScramHash, creds: ScramCredentials, password: string): Promise<boolean> {
  const salt = decodeBase64(creds.salt);
  const expected = decodeBase64(creds.storedKey);
  if (!salt || !expected || expected.length !== HASHES[hash].length || !Number.isSafeInteger(creds.iterations) || creds.iterations < 1) return false;
  let salted: Buffer;
  try {
    salted = await saltPasswordAsync(hash, password, salt, creds.iterations);
  } catch {
    return false;
  }
  return timingSafeEqual(digest(hash, hmac(hash, salted, 'Client Key')), expected);
}

// ---------------------------------------------------------------------------
// Channel-binding policy (doc/authentication.md)

/**
 * `compatible` (default): also accepts what deployed clients send where RFC 5802's literal rule
 * would lock them out; `strict`: RFC 5802 §6 and RFC 5929/9266 to the letter.
 */
export type ChannelBindingPolicy = 'compatible' | 'strict';

/** The GS2 channel-binding flag of a client-first-message: `n`, `y` or `p=<type>`. */
export type Gs2Flag = { kind: 'n' } | { kind: 'y' } | { kind: 'p'; type: string };

export interface ChannelBindingCase {
  flag: Gs2Flag;
  /** The mechanism in use is a -PLUS one. */
  plus: boolean;
  /** The server offered a -PLUS mechanism on this stream. */
  offeredPlus: boolean;
  /** For a -PLUS mechanism: the same mechanism without -PLUS was offered too (absent: assumed so). */
  offeredUnbound?: boolean;
  /** Channel-binding types the connection provides as their RFCs define them (XEP-0440's list). */
  connectionTypes: readonly string[];
  policy: ChannelBindingPolicy;
}

export type ChannelBindingDecision =
  | { accept: true; /** the type whose data goes into c=, when binding */ type?: string }
  | { accept: false; condition: 'malformed-request' | 'not-authorized'; text: string };

/**
 * The server's whole channel-binding policy as one pure function: may this client-first-message
 * go on, and with which binding type? The reasoning for each row is in doc/authentication.md.
 */
export function channelBindingDecision(c: ChannelBindingCase): ChannelBindingDecision {
  const { flag, plus, offeredPlus, connectionTypes, policy } = c;
  switch (flag.kind) {
    case 'n':
      // The client does not do channel binding: fine, except that -PLUS is channel binding.
      if (!plus) return { accept: true };
      // StanzaJS picks a -PLUS mechanism whenever one is offered and, having no binding data (a
      // browser or its WebSocket/BOSH transport cannot read any), sends 'n'. The flag is covered
      // by the client proof (c=), so nobody can turn a client's 'p=' into this: it is exactly
      // the unbound SCRAM offered on the same stream (doc/authentication.md) — and only where that
      // is offered: an operator who offers -PLUS alone requires channel binding.
      if (policy === 'compatible' && c.offeredUnbound !== false) return { accept: true };
      return { accept: false, condition: 'malformed-request', text: 'channel binding required by -PLUS mechanism' };
    case 'y':
      if (plus) return { accept: false, condition: 'malformed-request', text: 'channel binding required by -PLUS mechanism' };
      // 'y': the client could bind but believes the server cannot.
      if (!offeredPlus) return { accept: true };
      if (policy === 'strict') return { accept: false, condition: 'not-authorized', text: 'channel binding downgrade detected' };
      // Legacy clients know only tls-unique (RFC 5802's default type). Where the connection has it
      // (TLS <= 1.2) such a client could have bound: its 'y' means the -PLUS list was stripped.
      if (connectionTypes.includes('tls-unique')) return { accept: false, condition: 'not-authorized', text: 'channel binding downgrade detected' };
      return { accept: true };
    case 'p':
      if (!plus) return { accept: false, condition: 'malformed-request', text: 'channel binding requested with a non-PLUS mechanism' };
      if (connectionTypes.includes(flag.type)) return { accept: true, type: flag.type };
      // Deployed OpenSSL-based clients bind TLS 1.3 with tls-unique, computed over the first
      // Finished message as RFC 5929 §3.1 describes; that value is still unique to the connection.
      if (policy === 'compatible' && flag.type === 'tls-unique') return { accept: true, type: flag.type };
      return { accept: false, condition: 'not-authorized', text: `unsupported channel binding type: ${flag.type}` };
  }
}

// ---------------------------------------------------------------------------
// XEP-0474: SASL SCRAM Downgrade Protection (version 0.5.0)

/**
 * The `h` attribute's value: the SCRAM hash of the advertised mechanisms (sorted by octet,
 * joined by U+001E) and, when XEP-0440 was used, U+001F and the sorted channel-binding types.
 */
export function downgradeProtectionHash(hash: ScramHash, mechanisms: readonly string[], channelBindings: readonly string[]): string {
  const octetSort = (xs: readonly string[]) => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let s = octetSort(mechanisms).join('\x1e');
  if (channelBindings.length) s += `\x1f${octetSort(channelBindings).join('\x1e')}`;
  return digest(hash, Buffer.from(s, 'utf8')).toString('base64');
}

// ---------------------------------------------------------------------------
// Syntax helpers (RFC 5802 §7)

/** Escape a (prepared) name for use as saslname: ',' → =2C, '=' → =3D. */
export function escapeSaslname(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Unescape a saslname; returns undefined when it is malformed. */
export function unescapeSaslname(s: string): string | undefined {
  if (s.length === 0) return undefined;
  // value-safe-char excludes NUL, '=' and ','; '=' only as =2C / =3D.
  if (/\0|,/.test(s)) return undefined;
  if (/=(?!2C|3D)/.test(s)) return undefined;
  return s.replace(/=2C|=3D/g, (m) => (m === '=2C' ? ',' : '='));
}

/** printable = %x21-2B / %x2D-7E (printable ASCII except ',') */
function isPrintableNonce(s: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]+$/.test(s);
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 decode (padding required); undefined when malformed. */
function decodeBase64(s: string): Buffer | undefined {
  if (!BASE64_RE.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

interface Attr {
  name: string;
  value: string;
}

/** Split "a=x,b=y" into attributes; undefined if any part is not ALPHA "=" value. */
function parseAttrs(s: string): Attr[] | undefined {
  const out: Attr[] = [];
  for (const part of s.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m) return undefined;
    out.push({ name: m[1]!, value: m[2]! });
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(b: Buffer): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Fake credentials for unknown users (no user enumeration)

const FAKE_SECRET = randomBytes(32);

function fakeSalt(hash: ScramHash, username: string): Buffer {
  return createHmac('sha256', FAKE_SECRET).update(`${hash}\0${username}`).digest().subarray(0, SALT_BYTES);
}

// ---------------------------------------------------------------------------
// Server

type Failure = Extract<ScramStep, { status: 'failure' }>;

function fail(condition: ScramFailureCondition, text: string): Failure {
  return { status: 'failure', condition, text };
}

interface FirstState {
  gs2Header: string;
  cbindData: Buffer | undefined;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  username: string;
  authzid: string | undefined;
  /** undefined for unknown users: the exchange then fails at the final step */
  storedKey: Buffer | undefined;
  serverKey: Buffer | undefined;
}

export class ScramServer {
  private readonly opts: ScramServerOptions;
  private readonly serverNonce: string;
  private state: 'initial' | 'first' | 'done' = 'initial';
  private first: FirstState | undefined;

  constructor(opts: ScramServerOptions) {
    if (!(opts.hash in HASHES)) throw new TypeError(`unsupported SCRAM hash: ${String(opts.hash)}`);
    this.opts = opts;
    const nonce = opts.nonce ?? randomBytes(NONCE_BYTES).toString('base64');
    if (!isPrintableNonce(nonce)) throw new TypeError('SCRAM server nonce must be printable ASCII without ","');
    this.serverNonce = nonce;
  }

  async step(message: Buffer): Promise<ScramStep> {
    switch (this.state) {
      case 'initial': {
        this.state = 'done';
        const r = await this.clientFirst(message);
        if (r.status === 'challenge') this.state = 'first';
        return r;
      }
      case 'first': {
        this.state = 'done';
        const r = this.clientFinal(message);
        this.first = undefined;
        return r;
      }
      default:
        return fail('malformed-request', 'SCRAM exchange already finished');
    }
  }

  private async clientFirst(message: Buffer): Promise<ScramStep> {
    const { hash, plus, offeredPlus, offeredUnbound, channelBindingTypes, policy } = this.opts;
    if (message.length === 0) return fail('malformed-request', 'empty initial response');
    if (message.length > MAX_MESSAGE_BYTES) return fail('malformed-request', 'message too long');
    const text = decodeUtf8(message);
    if (text === undefined || text.includes('\0')) return fail('malformed-request', 'invalid UTF-8');

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const c1 = text.indexOf(',');
    const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1);
    if (c2 < 0) return fail('malformed-request', 'malformed GS2 header');
    const flag = text.slice(0, c1);
    const authzPart = text.slice(c1 + 1, c2);
    const gs2Header = text.slice(0, c2 + 1);
    const clientFirstBare = text.slice(c2 + 1);

    let gs2: Gs2Flag;
    if (flag === 'n' || flag === 'y') gs2 = { kind: flag };
    else if (flag.startsWith('p=')) {
      const type = flag.slice(2);
      if (!/^[A-Za-z0-9.-]+$/.test(type)) return fail('malformed-request', 'malformed channel binding name');
      gs2 = { kind: 'p', type };
    } else return fail('malformed-request', 'malformed GS2 channel binding flag');
    const decision = channelBindingDecision({ flag: gs2, plus, offeredPlus, offeredUnbound, connectionTypes: channelBindingTypes, policy });
    if (!decision.accept) return fail(decision.condition, decision.text);
    let cbindData: Buffer | undefined;
    if (decision.type !== undefined) {
      cbindData = this.opts.channelBinding(decision.type);
      if (cbindData === undefined) return fail('not-authorized', `unsupported channel binding type: ${decision.type}`);
    }

    let authzid: string | undefined;
    if (authzPart !== '') {
      if (!authzPart.startsWith('a=')) return fail('malformed-request', 'malformed GS2 authzid');
      authzid = unescapeSaslname(authzPart.slice(2));
      if (authzid === undefined) return fail('invalid-authzid', 'malformed authzid');
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attrs = parseAttrs(clientFirstBare);
    if (!attrs) return fail('malformed-request', 'malformed client-first-message');
    if (attrs.some((a) => a.name === 'm')) return fail('malformed-request', 'unsupported mandatory extension');
    const [nAttr, rAttr] = attrs;
    if (!nAttr || nAttr.name !== 'n' || !rAttr || rAttr.name !== 'r') {
      return fail('malformed-request', 'malformed client-first-message');
    }
    const rawName = unescapeSaslname(nAttr.value);
    if (rawName === undefined) return fail('malformed-request', 'malformed username');
    let username: string;
    try {
      username = saslPrep(rawName);
    } catch {
      return fail('malformed-request', 'username fails SASLprep');
    }
    if (username === '') return fail('malformed-request', 'empty username');
    const clientNonce = rAttr.value;
    if (!isPrintableNonce(clientNonce)) return fail('malformed-request', 'malformed client nonce');
    // Further attributes are extensions; unknown ones are ignored.

    let creds: ScramCredentials | undefined;
    try {
      creds = await this.opts.lookup(username);
    } catch {
      return fail('temporary-auth-failure', 'credential lookup failed');
    }

    let salt: string;
    let iterations: number;
    let storedKey: Buffer | undefined;
    let serverKey: Buffer | undefined;
    if (creds) {
      const len = HASHES[hash].length;
      const s = decodeBase64(creds.salt);
      storedKey = decodeBase64(creds.storedKey);
      serverKey = decodeBase64(creds.serverKey);
      if (
        !s ||
        s.length === 0 ||
        storedKey?.length !== len ||
        serverKey?.length !== len ||
        !Number.isSafeInteger(creds.iterations) ||
        creds.iterations < 1
      ) {
        return fail('temporary-auth-failure', 'stored credentials are unusable');
      }
      salt = creds.salt;
      iterations = creds.iterations;
    } else {
      // Unknown user: answer like for a real one, fail at the final step.
      salt = fakeSalt(hash, username).toString('base64');
      iterations = DEFAULT_ITERATIONS[hash];
    }

    const nonce = clientNonce + this.serverNonce;
    let serverFirst = `r=${nonce},s=${salt},i=${iterations}`;
    const dp = this.opts.downgradeProtection;
    if (dp) serverFirst += `,h=${downgradeProtectionHash(hash, dp.mechanisms, dp.channelBindings)}`;
    this.first = {
      gs2Header,
      cbindData,
      clientFirstBare,
      serverFirst,
      nonce,
      username,
      authzid,
      storedKey,
      serverKey,
    };
    return { status: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  private clientFinal(message: Buffer): ScramStep {
    const first = this.first;
    if (!first) return fail('malformed-request', 'unexpected SCRAM message');
    const { hash } = this.opts;
    if (message.length > MAX_MESSAGE_BYTES) return fail('malformed-request', 'message too long');
    const text = decodeUtf8(message);
    if (text === undefined || text.includes('\0')) return fail('malformed-request', 'invalid UTF-8');

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const attrs = parseAttrs(text);
    if (!attrs || attrs.length < 3) return fail('malformed-request', 'malformed client-final-message');
    if (attrs.some((a) => a.name === 'm')) return fail('malformed-request', 'unsupported mandatory extension');
    const cAttr = attrs[0];
    const rAttr = attrs[1];
    const pAttr = attrs[attrs.length - 1];
    if (!cAttr || !rAttr || !pAttr || cAttr.name !== 'c' || rAttr.name !== 'r' || pAttr.name !== 'p') {
      return fail('malformed-request', 'malformed client-final-message');
    }
    const withoutProof = text.slice(0, text.length - pAttr.value.length - 3);

    const cb = decodeBase64(cAttr.value);
    if (!cb) return fail('malformed-request', 'malformed channel binding attribute');
    const proof = decodeBase64(pAttr.value);
    if (!proof) return fail('malformed-request', 'malformed client proof');

    const expectedCb = Buffer.concat([Buffer.from(first.gs2Header, 'utf8'), first.cbindData ?? Buffer.alloc(0)]);
    if (cb.length !== expectedCb.length || !timingSafeEqual(cb, expectedCb)) {
      return fail('not-authorized', 'channel bindings do not match');
    }
    if (rAttr.value !== first.nonce) return fail('not-authorized', 'nonce mismatch');

    const len = HASHES[hash].length;
    if (proof.length !== len) return fail('not-authorized', 'invalid client proof');

    const authMessage = `${first.clientFirstBare},${first.serverFirst},${withoutProof}`;
    // For unknown users compute against a throw-away key so the work is comparable.
    const storedKey = first.storedKey ?? randomBytes(len);
    const clientSignature = hmac(hash, storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const ok = timingSafeEqual(digest(hash, clientKey), storedKey);
    if (!ok || !first.storedKey || !first.serverKey) {
      return { ...fail('not-authorized', 'authentication failed'), wrongCredentials: true };
    }

    const serverSignature = hmac(hash, first.serverKey, authMessage);
    const result: ScramStep = {
      status: 'success',
      data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'),
      username: first.username,
    };
    if (first.authzid !== undefined) result.authzid = first.authzid;
    return result;
  }
}
