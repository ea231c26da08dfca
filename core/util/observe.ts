// Optional timing observers for metrics (mod_metrics, doc/metrics.md). Unset, the hot paths pay
// one property read per stanza or handler; set, they time with performance.now() and report.
// One observer per kind: the module that sets one clears it on unload.

export interface Observers {
  /** A client's stanza went through the router (filters, checks, every handler), in seconds. */
  routed?: (kind: string, seconds: number) => void;
  /** One event handler ran (until its Promise settled, for an async one), in seconds. */
  handler?: (event: string, owner: string, seconds: number) => void;
}

export const observers: Observers = {};
