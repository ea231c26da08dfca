// Inbound rate shaping (core/limits.ts `rate`/`burst`): a token bucket over the bytes a client
// sends. Each transport reports what it read with take(); past the allowance the shaper pauses the
// transport's reading (TCP: the socket, so TCP slows the peer down; WebSocket: the socket under
// it) until the bucket has refilled. The chunk in hand is still processed: it is the debt.
import { limitsHit } from '../limits.ts';

export interface ShapedReader {
  /** Stop reading from the peer. */
  pause(): void;
  /** Read again (called when the bucket has refilled); the reader decides if its owner still holds it. */
  resume(): void;
}

export class ReadShaper {
  private bucket: { rate: number; burst: number; tokens: number; stamp: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Times reading was paused by the rate limit (shown in `shell session list`). */
  throttled = 0;

  constructor(private readonly reader: ShapedReader) {}

  /** `rate` bytes per second sustained, `burst` bytes at once; rate 0: unlimited. */
  set(rate: number, burst: number): void {
    if (rate <= 0) {
      this.bucket = undefined;
      if (this.timer) this.refilled();
      return;
    }
    const size = Math.max(burst, 1);
    const tokens = this.bucket ? Math.min(this.bucket.tokens, size) : size;
    this.bucket = { rate, burst: size, tokens, stamp: Date.now() };
  }

  /** The rate in force (bytes/s), 0 when unshaped. */
  get rate(): number {
    return this.bucket?.rate ?? 0;
  }

  /** Whether reading is paused by the rate limit right now. */
  get shaped(): boolean {
    return this.timer !== undefined;
  }

  /** `bytes` were read. */
  take(bytes: number): void {
    const b = this.bucket;
    if (b === undefined) return;
    const now = Date.now();
    b.tokens = Math.min(b.burst, b.tokens + ((now - b.stamp) * b.rate) / 1000);
    b.stamp = now;
    b.tokens -= bytes;
    if (b.tokens >= 0 || this.timer !== undefined) return;
    this.throttled++;
    limitsHit.rate++;
    this.reader.pause();
    this.timer = setTimeout(() => this.refilled(), Math.ceil((-b.tokens * 1000) / b.rate));
  }

  /** No more reading (the connection is gone). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private refilled(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.reader.resume();
  }
}
