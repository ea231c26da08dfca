// An XML stream on a connection (RFC 6120 §4): the parser, our header, stream errors and the
// closing tag, the unauthenticated-connection timer and whitespace keepalives. Shared by the
// stream modules (mod_c2s, mod_component); they add what is particular to their protocol.
//
// State changes discard what the peer pipelined behind them (doc/architecture.md, "Stream state
// changes"): reset() (restart after STARTTLS or SASL), authenticated() and close() each cut the
// parser off from input received before them; after close() nothing from the connection is parsed.
import type { Element } from '@xmpp/xml';
import { randomUUID } from 'node:crypto';
import type { Connection } from './connection.ts';
import type { Logger } from '../util/log.ts';
import type { CloseReason } from '../session.ts';
import { isStanzaKind, streamErrorElement, type Stanza } from '../util/stanza.ts';
import { XmppStreamParser, streamHeader, type StreamLimits } from '../util/stream-parser.ts';

export interface XmlStreamOptions {
  conn: Connection;
  limits: StreamLimits;
  /** Close with connection-timeout unless authenticated() is called within this time (none: the owner times it). */
  unauthenticatedTimeoutMs?: number;
  /** Attributes of our stream header (the id is added). */
  headerAttrs(): Record<string, string | undefined>;
  /** How to write an element (default: toString). */
  serialise?(el: Element): string;
  /** Who is on the other end, for log lines. */
  describe(): string;
  log: Logger;
  /** The stream ended: graceful when closed with </stream:stream> by either side. */
  onEnd(graceful: boolean, reason?: CloseReason): void;
  /**
   * The peer sent </stream:stream>: run `close` once what it sent before has been handled (an
   * owner whose elements are processed asynchronously queues it behind them). Default: at once.
   */
  onPeerClose?(close: () => void): void;
  /**
   * How many elements may wait in memory while the connection's socket buffer is full (the peer
   * does not read); past it `onSendQueueFull` runs. Without it, writes are never held back.
   */
  sendQueueLimit?(): number;
  onSendQueueFull?(): void;
}

/** How long a peer with more than `sendQueueLimit()` elements waiting may take nothing before it is given up. */
export const STALL_MS = 5000;

export class XmlStream {
  readonly parser: XmppStreamParser;
  streamId: string | undefined;
  private headerSent = false;
  private closing = false;
  private authTimer: NodeJS.Timeout | undefined;
  /** Written while the socket buffer was full: waiting for 'drain', in order. */
  private waiting: { data: string; stanza: Stanza | undefined }[] = [];
  /** Stanzas handed to the socket whose bytes have not left for the kernel yet. */
  private readonly unflushed = new Set<Stanza>();
  /** When the peer last took data (a drain), or when data began to wait. */
  private lastProgress = 0;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: XmlStreamOptions) {
    const { conn } = opts;
    if (opts.sendQueueLimit) conn.onDrain(() => this.flushWaiting());
    this.parser = new XmppStreamParser(opts.limits);
    if (opts.unauthenticatedTimeoutMs !== undefined) {
      this.authTimer = setTimeout(() => this.close({ condition: 'connection-timeout', text: 'Not authenticated in time' }), opts.unauthenticatedTimeoutMs);
      this.authTimer.unref();
    }
    conn.onData((chunk) => this.parser.write(chunk));
    conn.onClose((hadError) => {
      if (this.closing) return;
      this.closing = true;
      opts.log('connection of %s from %s %s without a stream close', opts.describe(), conn.ip, hadError ? 'dropped with an error' : 'closed');
      this.end(false, { condition: 'connection-timeout', text: hadError ? 'Connection dropped' : 'Connection closed' });
    });
    this.parser.on('error', (condition, text) => this.close({ condition, text }));
    this.parser.on('streamEnd', () => (opts.onPeerClose ? opts.onPeerClose(() => this.close()) : this.close()));
    this.parser.on('discarded', (bytes, whitespaceOnly) => {
      // Whitespace (go-sendxmpp's newline after <starttls/>) is harmless; anything else is a
      // client that does not wait for our answer, or an injection attempt.
      const line = whitespaceOnly ? opts.log : opts.log.warn;
      line('discarded %d bytes %s from %s sent ahead of a stream state change (never processed)', bytes, whitespaceOnly ? 'of whitespace' : 'of XML', conn.ip);
    });
  }

  /** The TCP connection the stream runs on. */
  get conn(): Connection {
    return this.opts.conn;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Write an element or prepared text; `serialised`: the element's toString(), already made (stream management's). */
  send(x: Element | string, serialised?: string): boolean {
    if (this.closing) return false;
    const data = typeof x === 'string' ? x : this.opts.serialise ? this.opts.serialise(x) : (serialised ?? x.toString());
    const { conn, sendQueueLimit } = this.opts;
    if (sendQueueLimit === undefined) return conn.write(data);
    const stanza = typeof x !== 'string' && isStanzaKind(x.name) ? (x as Stanza) : undefined;
    if (this.waiting.length > 0 || conn.needsDrain) {
      if (this.waiting.length === 0) this.lastProgress = Date.now();
      this.waiting.push({ data, stanza });
      const limit = sendQueueLimit();
      // Past the bound the peer gets STALL_MS to take something: a burst the server itself makes
      // (offline messages, the presence of a large roster) is not a stalled reader.
      if (this.waiting.length > limit) this.watchStall(limit);
      return false;
    }
    return this.write(data, stanza);
  }

  /** Elements waiting for the peer to read (its socket buffer is full). */
  get queued(): number {
    return this.waiting.length;
  }

  private write(data: string, stanza: Stanza | undefined): boolean {
    if (stanza === undefined) return this.opts.conn.write(data);
    this.unflushed.add(stanza);
    return this.opts.conn.write(data, () => this.unflushed.delete(stanza));
  }

  private watchStall(limit: number): void {
    if (this.stallTimer !== undefined) return;
    const since = Date.now() - this.lastProgress;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.closing || this.waiting.length <= limit) return;
      if (Date.now() - this.lastProgress >= STALL_MS) this.opts.onSendQueueFull?.();
      else this.watchStall(limit);
    }, Math.max(STALL_MS - since, 10));
    this.stallTimer.unref();
  }

  private flushWaiting(): void {
    this.lastProgress = Date.now();
    while (this.waiting.length > 0 && !this.opts.conn.needsDrain && !this.closing) {
      const next = this.waiting.shift()!;
      this.write(next.data, next.stanza);
    }
  }

  /**
   * Give up on a peer that does not read: the stream ends with `reason` at once (the error would
   * wait behind what the peer does not read), and the stanzas it never received are returned —
   * those waiting here and those whose bytes had not reached the kernel — for the caller to
   * route elsewhere (`beforeEnd` gets them before the stream's end is reported). What the kernel
   * holds already still reaches the peer if it reads.
   */
  abandon(reason: CloseReason, beforeEnd?: (undelivered: Stanza[]) => void): Stanza[] {
    if (this.closing) return [];
    const undelivered = [...this.unflushed];
    for (const w of this.waiting) if (w.stanza !== undefined) undelivered.push(w.stanza);
    const waiting = this.waiting.length;
    this.waiting = [];
    this.unflushed.clear();
    this.closing = true;
    this.opts.log.warn('closing stream of %s from %s: %s (%s; %d elements waiting)', this.opts.describe(), this.opts.conn.ip, reason.condition, reason.text ?? '', waiting);
    this.parser.stop();
    this.opts.conn.destroy();
    // While the session still exists (its owner may want to look at it).
    beforeEnd?.(undelivered);
    this.end(true, reason);
    return undelivered;
  }

  /** Send our header (with a fresh stream id, returned). */
  sendHeader(): string {
    this.headerSent = true;
    this.streamId = randomUUID();
    this.opts.conn.write(streamHeader({ ...this.opts.headerAttrs(), id: this.streamId }));
    return this.streamId;
  }

  /**
   * Authenticated: no timeout any more, and the given (larger) limits. What the peer pipelined
   * behind the element that authenticated it is dropped, not processed as authenticated.
   */
  authenticated(limits: StreamLimits): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.parser.setLimits(limits);
    this.parser.discardPipelined();
  }

  /** Stream restart (RFC 6120 §4.3.3): expect a new header; nothing received before it is parsed. */
  reset(): void {
    this.parser.reset();
    this.headerSent = false;
  }

  /** Close: a stream error if a reason is given, then </stream:stream>, then the connection. */
  close(reason?: CloseReason): void {
    if (this.closing) return;
    const { conn, log } = this.opts;
    let tail = '';
    if (reason) {
      if (!this.headerSent) this.sendHeader();
      tail = streamErrorElement(reason.condition, reason.text).toString();
      const quiet = reason.condition === 'system-shutdown' || reason.condition === 'conflict';
      log[quiet ? 'info' : 'warn']('closing stream of %s from %s: %s%s', this.opts.describe(), conn.ip, reason.condition, reason.text ? ` (${reason.text})` : '');
    }
    // The error and the closing tag in one write (one TLS record): some clients stop reading
    // after the error.
    if (this.headerSent) tail += '</stream:stream>';
    // What waits for the socket goes first (closing flushes the socket's buffer).
    for (const w of this.waiting.splice(0)) conn.write(w.data);
    if (tail) conn.write(tail);
    this.closing = true;
    // Nothing the peer sent after what made us close reaches a handler, even from the same read.
    this.parser.stop();
    conn.close();
    this.end(true, reason);
  }

  private end(graceful: boolean, reason?: CloseReason): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.parser.stop();
    this.opts.onEnd(graceful, reason);
  }
}

/**
 * The options every stream module declares (mod_c2s as `c2s: { … }`, mod_component as
 * `component: { … }`): limits, the unauthenticated timeout and whitespace keepalives.
 */
export const STREAM_OPTIONS = {
  stanzaSizeLimit: { type: 'integer', description: 'Largest top-level element accepted once authenticated, in bytes', default: 256 * 1024, min: 1 },
  preauthStanzaSizeLimit: { type: 'integer', description: 'Largest top-level element accepted before authentication, in bytes', default: 10 * 1024, min: 1 },
  maxDepth: { type: 'integer', description: 'Deepest element nesting accepted below the stream root', default: 64, min: 1 },
  unauthenticatedTimeout: { type: 'integer', description: 'Seconds a connection may stay unauthenticated', default: 60, min: 1 },
  keepaliveInterval: { type: 'integer', description: 'Seconds of silence before a whitespace keepalive is sent (0: never)', default: 300, min: 0 },
} as const;

/** Stanza size and depth limits of a stream (the smaller size before authentication). */
export function streamLimits(o: { stanzaSizeLimit: number; preauthStanzaSizeLimit: number; maxDepth: number }, authenticated: boolean): StreamLimits {
  return { maxStanzaSize: authenticated ? o.stanzaSizeLimit : o.preauthStanzaSizeLimit, maxDepth: o.maxDepth };
}

/** Send a whitespace keepalive on every stream idle for `intervalMs`; returns the timer. */
export function startKeepalives(conns: () => Iterable<Connection>, intervalMs: number, every: (fn: () => void, ms: number) => NodeJS.Timeout): NodeJS.Timeout {
  return every(() => {
    const now = Date.now();
    for (const conn of conns()) if (now - conn.lastActivity >= intervalMs) conn.write(' ');
  }, Math.min(intervalMs, 30_000));
}
