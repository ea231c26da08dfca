// Priority event bus. Handlers run highest priority first, ties in registration order. The first
// handler that returns something other than `undefined` stops the dispatch and its value is the
// result ("handled"). A handler that returns a Promise has therefore handled the event; a
// rejected Promise is reported through `onAsyncError`. A handler that throws is logged and
// skipped: one broken module never stops the others.
//
// A bus is typed by a catalogue (an interface from event name to payload type, such as
// core/event-types.ts's HostEvents): `on`, `fire`, `emit` and `fireAsync` accept only its names
// and payloads. The default catalogue accepts any name with an unknown payload.
import { getLogger, type Logger } from './log.ts';

export type Handler<E = unknown> = (event: E) => unknown;

/** The names of a catalogue. */
export type EventName<C> = keyof C & string;

interface Entry {
  handler: Handler<never>;
  priority: number;
  seq: number;
  owner: string;
}

/** Returned by fire() when no handler handled the event but at least one threw. */
export const HANDLER_ERROR: unique symbol = Symbol('cadence.handler-error');

let seqCounter = 0;

export class EventBus<C extends object = Record<string, unknown>> {
  private readonly handlers = new Map<string, Entry[]>();
  private readonly log: Logger;
  /** Called when an async handler's Promise rejects. */
  onAsyncError: (name: string, event: unknown, err: unknown, owner: string) => void;

  constructor(readonly label: string) {
    this.log = getLogger(`core:events:${label}`);
    this.onAsyncError = (name, _event, err, owner) =>
      this.log.error('async handler of %s (%s) failed: %s', name, owner, err);
  }

  /** Add a handler; returns a function that removes it. */
  on<K extends EventName<C>>(name: K, handler: Handler<C[K]>, priority = 0, owner = 'core'): () => void {
    const list = this.handlers.get(name) ?? [];
    const entry: Entry = { handler: handler as Handler<never>, priority, seq: seqCounter++, owner };
    // Keep the list sorted so fire() is a plain loop.
    let i = list.length;
    while (i > 0 && list[i - 1]!.priority < priority) i--;
    const next = list.slice();
    next.splice(i, 0, entry);
    this.handlers.set(name, next);
    return () => this.off(name, handler);
  }

  off<K extends EventName<C>>(name: K, handler: Handler<C[K]>): void {
    const list = this.handlers.get(name);
    if (!list) return;
    const next = list.filter((e) => e.handler !== (handler as Handler<never>));
    if (next.length) this.handlers.set(name, next);
    else this.handlers.delete(name);
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  count(name: string): number {
    return this.handlers.get(name)?.length ?? 0;
  }

  names(): string[] {
    return [...this.handlers.keys()];
  }

  /** Synchronous dispatch (stanzas and other hot paths). */
  fire<K extends EventName<C>>(name: K, event: C[K]): unknown {
    const list = this.handlers.get(name);
    if (!list) return undefined;
    let errored = false;
    // `list` is replaced, never mutated, so handlers may add/remove handlers safely.
    for (const entry of list) {
      let result: unknown;
      try {
        result = (entry.handler as Handler<unknown>)(event);
      } catch (err) {
        errored = true;
        this.log.error('handler of %s (%s) threw: %s', name, entry.owner, err);
        continue;
      }
      if (result !== undefined) {
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.onAsyncError(name, event, err, entry.owner));
        }
        return result;
      }
    }
    return errored ? HANDLER_ERROR : undefined;
  }

  /**
   * Notification: every handler runs whatever the others return (resource-bind, session-added…).
   * Async handlers are not awaited; their failures are logged.
   */
  emit<K extends EventName<C>>(name: K, event: C[K]): void {
    const list = this.handlers.get(name);
    if (!list) return;
    for (const entry of list) {
      try {
        const result = (entry.handler as Handler<unknown>)(event);
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.onAsyncError(name, event, err, entry.owner));
        }
      } catch (err) {
        this.log.error('handler of %s (%s) threw: %s', name, entry.owner, err);
      }
    }
  }

  /**
   * Awaiting dispatch for lifecycle events (user-deleted, shutdown, …): each handler is awaited
   * in order; a handler resolving to something other than undefined stops the chain.
   */
  async fireAsync<K extends EventName<C>>(name: K, event: C[K]): Promise<unknown> {
    const list = this.handlers.get(name);
    if (!list) return undefined;
    let errored = false;
    for (const entry of list) {
      try {
        const result = await (entry.handler as Handler<unknown>)(event);
        if (result !== undefined) return result;
      } catch (err) {
        errored = true;
        this.log.error('handler of %s (%s) failed: %s', name, entry.owner, err);
      }
    }
    return errored ? HANDLER_ERROR : undefined;
  }
}
