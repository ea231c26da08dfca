// Server Dialback keys (XEP-0185, as XEP-0220 §2.1.1 uses them) and the bookkeeping that makes
// dialback safe against replayed keys and unsolicited answers (XEP-0220 §3.1, XEP-0288 §4).
//
//   key = HMAC-SHA256(hex(SHA256(secret)), receiving + ' ' + originating + ' ' + streamId)
//
// Replay guard (doc/federation.md, "Dialback"):
//   1. A key is bound to one stream: the HMAC covers the Receiving Server's stream id, and stream
//      ids are 128-bit random values never reused (`newStreamId`; a new one on every restart).
//      A key seen on one stream is worthless on any other, because the Receiving Server verifies
//      it with the id of the stream it arrived on.
//   2. As Authoritative Server, Cadence answers `valid` only for keys it issued itself
//      (`IssuedKeys`): for that stream id, that domain pair, within a lifetime, and once. A key
//      replayed after its verification, or presented for a stream id Cadence never saw, is
//      `invalid` even though its HMAC would check (a peer that reuses stream ids gains nothing).
//      Deployments where another node of the same network issues keys can fall back to the bare
//      HMAC check (`verifyDialbackKey`), which XEP-0185 §2 allows.
//   3. Answers are accepted only for requests sent on the same stream (`DialbackRequests`): an
//      unsolicited <db:result type='valid'/> or <db:verify type='valid'/> authorises nothing.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NS_DIALBACK = 'jabber:server:dialback';
/** XEP-0220 §2.4.2: the stream feature announcing dialback with error handling. */
export const NS_DIALBACK_FEATURE = 'urn:xmpp:features:dialback';

/** A new random secret for a server process (XEP-0185 §2 item 3). */
export function newDialbackSecret(): Buffer {
  return randomBytes(32);
}

/** A stream id: 128 random bits in hex (an NMTOKEN, as db:verify's schema requires). */
export function newStreamId(): string {
  return randomBytes(16).toString('hex');
}

/** XEP-0185 §2: the dialback key (lowercase hex). */
export function dialbackKey(secret: string | Buffer, receiving: string, originating: string, streamId: string): string {
  // The secret is hashed first and its hex form is the HMAC key (XEP-0185 §2 items 2 and 4).
  const hmacKey = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', hmacKey).update(`${receiving} ${originating} ${streamId}`).digest('hex');
}

/** Constant-time comparison of a presented key (whitespace around it ignored) with the expected one. */
export function keysEqual(expected: string, presented: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(presented.trim(), 'utf8');
  if (a.length !== b.length) {
    // Compare anyway so a wrong length costs the same time as a wrong key.
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** The bare HMAC check of XEP-0185 (no issuance record). */
export function verifyDialbackKey(secret: string | Buffer, receiving: string, originating: string, streamId: string, presented: string): boolean {
  return keysEqual(dialbackKey(secret, receiving, originating, streamId), presented);
}

export type KeyCheck = 'valid' | 'invalid' | 'replayed' | 'unknown-stream' | 'expired';

interface Issued {
  receiving: string;
  originating: string;
  key: string;
  expires: number;
  used: boolean;
}

export interface IssuedKeysOptions {
  secret: string | Buffer;
  /** How long an issued key can be verified (default 5 minutes; XEP-0220 allows a timeout). */
  lifetimeMs?: number;
  /** Upper bound on remembered keys; the oldest are forgotten first (default 10000). */
  maxEntries?: number;
  now?: () => number;
}

/**
 * Keys this server issued as Initiating Server, so that as Authoritative Server it confirms
 * only those, each once (replay guard 2 above).
 */
export class IssuedKeys {
  /** Stream id → domain pair ('receiving originating') → key: several pairs share a stream (multiplexing). */
  private readonly byStream = new Map<string, Map<string, Issued>>();
  private count = 0;
  private readonly secret: string | Buffer;
  private readonly lifetimeMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: IssuedKeysOptions) {
    this.secret = options.secret;
    this.lifetimeMs = options.lifetimeMs ?? 5 * 60_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The key to send in <db:result/> on an outgoing stream whose current id (the Receiving
   * Server's, from its latest stream header) is `streamId`; one per domain pair on the stream
   * (further domains of ours multiplexed onto it, XEP-0220 "Multiplexing").
   */
  issue(receiving: string, originating: string, streamId: string): string {
    const key = dialbackKey(this.secret, receiving, originating, streamId);
    let pairs = this.byStream.get(streamId);
    if (pairs) this.byStream.delete(streamId); // re-inserted below: the newest stream is last
    else pairs = new Map();
    const pair = `${receiving} ${originating}`;
    if (!pairs.delete(pair)) this.count++;
    pairs.set(pair, { receiving, originating, key, expires: this.now() + this.lifetimeMs, used: false });
    this.byStream.set(streamId, pairs);
    while (this.count > this.maxEntries) {
      const [oldestId, oldest] = this.byStream.entries().next().value!;
      oldest.delete(oldest.keys().next().value!);
      this.count--;
      if (oldest.size === 0) this.byStream.delete(oldestId);
    }
    return key;
  }

  /**
   * Answers a <db:verify/> received as Authoritative Server: `from` is the Receiving Server
   * (receiving), `to` is our domain (originating), `id` the stream id. Only 'valid' may be
   * answered with type='valid'; every other result is answered with type='invalid'.
   */
  check(receiving: string, originating: string, streamId: string, presented: string): KeyCheck {
    const pairs = this.byStream.get(streamId);
    // Compute the HMAC in every case, so the answer's timing says nothing about our records.
    const hmacOk = verifyDialbackKey(this.secret, receiving, originating, streamId, presented);
    if (!pairs) return 'unknown-stream';
    const entry = pairs.get(`${receiving} ${originating}`);
    if (!entry || !hmacOk) return 'invalid';
    if (entry.used) return 'replayed';
    if (this.now() > entry.expires) {
      this.drop(streamId, pairs, `${receiving} ${originating}`);
      return 'expired';
    }
    entry.used = true;
    return 'valid';
  }

  /** Forgets what was issued on a stream (it closed). */
  forget(streamId: string): void {
    const pairs = this.byStream.get(streamId);
    if (!pairs) return;
    this.count -= pairs.size;
    this.byStream.delete(streamId);
  }

  /** Drops expired entries; call from a periodic timer. */
  sweep(): void {
    const now = this.now();
    for (const [id, pairs] of this.byStream) for (const [pair, e] of pairs) if (now > e.expires) this.drop(id, pairs, pair);
  }

  private drop(streamId: string, pairs: Map<string, Issued>, pair: string): void {
    if (pairs.delete(pair)) this.count--;
    if (pairs.size === 0) this.byStream.delete(streamId);
  }

  get size(): number {
    return this.count;
  }
}

/**
 * A dialback request sent on a stream and waiting for its answer (XEP-0220 §2.1): 'result' is
 * our <db:result/> as Initiating Server, 'verify' our <db:verify/> as Receiving Server.
 */
export interface DialbackRequest<T = unknown> {
  kind: 'result' | 'verify';
  /** The stream the request went out on (the glue's own id for it). */
  stream: string;
  /** 'from' and 'to' as we sent them. */
  from: string;
  to: string;
  /** 'verify' only: the stream id the key is checked against. */
  id?: string;
  sent: number;
  /** What the glue needs when the answer arrives (the incoming stream to answer, say). */
  context: T;
}

/**
 * The requests waiting for answers, keyed by stream and attributes (replay guard 3). An answer
 * must come back on the stream the request went out on, with 'from' and 'to' swapped and the
 * same 'id'; anything else is unsolicited and must be dropped (and logged).
 */
export class DialbackRequests<T = unknown> {
  private readonly pending = new Map<string, DialbackRequest<T>>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  private static key(kind: string, stream: string, from: string, to: string, id: string | undefined): string {
    return JSON.stringify([kind, stream, from, to, id ?? null]);
  }

  /**
   * Records a request. Returns false when an identical one is already waiting: XEP-0220 allows
   * one negotiation per domain pair at a time, so the caller must not send another.
   */
  sent(kind: 'result' | 'verify', stream: string, from: string, to: string, id: string | undefined, context: T): boolean {
    const k = DialbackRequests.key(kind, stream, from, to, id);
    if (this.pending.has(k)) return false;
    this.pending.set(k, { kind, stream, from, to, id, sent: this.now(), context });
    return true;
  }

  /**
   * Matches an answer received on `stream` (its own 'from'/'to'/'id' as received) and removes
   * the request; undefined means unsolicited.
   */
  answered(kind: 'result' | 'verify', stream: string, from: string, to: string, id?: string): DialbackRequest<T> | undefined {
    const k = DialbackRequests.key(kind, stream, to, from, id);
    const request = this.pending.get(k);
    if (request) this.pending.delete(k);
    return request;
  }

  /** True while a request with these attributes is waiting. */
  isPending(kind: 'result' | 'verify', stream: string, from: string, to: string, id?: string): boolean {
    return this.pending.has(DialbackRequests.key(kind, stream, from, to, id));
  }

  /** Removes and returns every request of a stream that closed (they count as failed). */
  dropStream(stream: string): DialbackRequest<T>[] {
    const out: DialbackRequest<T>[] = [];
    for (const [k, r] of this.pending) {
      if (r.stream === stream) {
        this.pending.delete(k);
        out.push(r);
      }
    }
    return out;
  }

  /** Removes and returns requests older than `timeoutMs` (they count as failed). */
  expire(timeoutMs: number): DialbackRequest<T>[] {
    const limit = this.now() - timeoutMs;
    const out: DialbackRequest<T>[] = [];
    for (const [k, r] of this.pending) {
      if (r.sent <= limit) {
        this.pending.delete(k);
        out.push(r);
      }
    }
    return out;
  }

  get size(): number {
    return this.pending.size;
  }
}
