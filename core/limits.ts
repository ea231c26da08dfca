// Resource limits of client connections (the `limits` option, globally and per virtual host):
// inbound rate shaping, connections per source address, sessions per account, and how many
// stanzas may wait for a recipient that does not read. Each field left out keeps the value of
// the level above it: host → global → DEFAULT_LIMITS.

export interface Limits {
  /** Bytes per second an authenticated client stream is read at, sustained (0: unlimited). */
  rate: number;
  /** Bytes an authenticated stream may send at once before shaping starts (its bucket's size). */
  burst: number;
  /** The same two for a stream that has not authenticated yet. */
  unauthenticatedRate: number;
  unauthenticatedBurst: number;
  /** Open client connections from one address (IPv6: one /64), 0: unlimited. */
  connectionsPerAddress: number;
  /** Connected resources of one account, 0: unlimited. */
  sessionsPerAccount: number;
  /**
   * Stanzas waiting for a recipient whose connection does not take them (its socket buffer is
   * full); past it the session is closed with policy-violation and the stanzas are routed as to
   * an unavailable resource (offline storage for messages, error replies for iqs).
   */
  sendQueue: number;
}

/**
 * Around 10 KiB/s sustained, as Prosody's mod_limits suggests; the authenticated burst lets one
 * stanza of the largest allowed size (c2s stanzaSizeLimit, 256 KiB) through unshaped.
 */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  rate: 10 * 1024,
  burst: 256 * 1024,
  unauthenticatedRate: 2 * 1024,
  unauthenticatedBurst: 16 * 1024,
  connectionsPerAddress: 32,
  sessionsPerAccount: 16,
  sendQueue: 1000,
});

export const LIMIT_FIELDS: readonly (keyof Limits)[] = Object.keys(DEFAULT_LIMITS) as (keyof Limits)[];

/** A `limits` value's problem, or undefined when valid. */
export function checkLimits(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `must be { ${LIMIT_FIELDS.join(', ')} }`;
  for (const [k, x] of Object.entries(v)) {
    if (!LIMIT_FIELDS.includes(k as keyof Limits)) return `has unknown field '${k}' (expected ${LIMIT_FIELDS.join(', ')})`;
    if (!Number.isInteger(x) || (x as number) < 0) return `.${k} must be an integer ≥ 0`;
  }
  return undefined;
}

/** What limitsFor reads of the configuration (core/config.ts's Config; structural, as config.ts imports this file). */
export interface LimitsConfig {
  get<T>(host: string | undefined, key: string): T | undefined;
  hostEntry(host: string): { options: { limits?: unknown } } | undefined;
}

/** The limits in force for `host` (undefined or '*': the global ones). */
export function limitsFor(config: LimitsConfig, host: string | undefined): Limits {
  const global = config.get<Partial<Limits>>(undefined, 'limits') ?? {};
  const own = host && host !== '*' ? (config.hostEntry(host)?.options.limits as Partial<Limits> | undefined) ?? {} : {};
  return { ...DEFAULT_LIMITS, ...global, ...own };
}

// ---- limits hit (read by mod_metrics; doc/metrics.md) ---------------------------------------------

/** Which limit refused or slowed something. */
export type LimitHitKind = 'rate' | 'connectionsPerAddress' | 'sessionsPerAccount' | 'sendQueue';

/**
 * Times each limit was hit since the process started: plain counters, so the places that enforce
 * a limit pay one increment and need no event bus (the rate limit is hit on the read path).
 */
export const limitsHit: Record<LimitHitKind, number> = { rate: 0, connectionsPerAddress: 0, sessionsPerAccount: 0, sendQueue: 0 };
