// Priority event bus. Handlers run highest priority first, ties in registration order.
//
// A bus is typed by a catalogue (an interface from event name to payload type, such as
// core/event-types.ts's HostEvents): `on`, `fire`, `emit` and `fireAsync` accept only its names
// and payloads. The default catalogue accepts any name with an unknown payload.
//
// Three ways to dispatch:
//  - fire(): the first handler whose result is not `undefined` has handled the event, and that
//    result is returned. A handler may return a Promise: its resolved value decides in the same way
//    (`undefined` passes the event on to the next handler), so fire() then returns a Promise. As
//    long as no handler returns a Promise, fire() is synchronous and allocates nothing. A handler
//    that throws or rejects ends the dispatch: the error propagates to the caller (the router turns
//    it into an error reply), after a log line naming the event and the handler's owner.
//  - emit(): a notification, every handler runs; one that throws or rejects is logged and skipped.
//  - fireAsync(): lifecycle events (user-deleted, server-stopping…): each handler is awaited in
//    turn, a value stops the chain, one that fails is logged and the next runs.
import { StanzaError } from './errors.ts';
import { getLogger, type Logger } from './log.ts';
import { observers } from './observe.ts';

export type Handler<E = unknown> = (event: E) => unknown;

/** The names of a catalogue. */
export type EventName<C> = keyof C & string;

interface Entry {
  handler: Handler<never>;
  priority: number;
  seq: number;
  owner: string;
}

let seqCounter = 0;

/** Errors already logged by a bus, so that one passed up through nested dispatches is logged once. */
const logged = new WeakSet<object>();

export class EventBus<C extends object = Record<string, unknown>> {
  private readonly handlers = new Map<string, Entry[]>();
  private readonly log: Logger;

  constructor(readonly label: string) {
    this.log = getLogger(`core:events:${label}`);
  }

  /** Add a handler; returns a function that removes it. */
  on<K extends EventName<C>>(name: K, handler: Handler<C[K]>, priority = 0, owner = 'core'): () => void {
    const list = this.handlers.get(name) ?? [];
    const entry: Entry = { handler: handler as Handler<never>, priority, seq: seqCounter++, owner };
    // Keep the list sorted so dispatch is a plain loop.
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

  /**
   * Dispatch to the first handler that handles the event: its result (or a Promise of it), or
   * undefined when nobody did. Throws (or rejects with) the error of a failing handler.
   */
  fire<K extends EventName<C>>(name: K, event: C[K]): unknown {
    // `list` is replaced, never mutated, so handlers may add/remove handlers safely.
    const list = this.handlers.get(name);
    if (!list) return undefined;
    const timing = observers.handler;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      let result: unknown;
      const start = timing ? performance.now() : 0;
      try {
        result = (entry.handler as Handler<unknown>)(event);
      } catch (err) {
        throw this.failed(name, entry, err);
      } finally {
        if (timing) timed(timing, name, entry.owner, start, result);
      }
      if (result === undefined) continue;
      if (result instanceof Promise) return this.continueAsync(name, event, list, i, result);
      return result;
    }
    return undefined;
  }

  /** fire() once a handler returned a Promise: await it, then go on with the next handlers if it resolves to undefined. */
  private async continueAsync(name: string, event: unknown, list: Entry[], i: number, pending: Promise<unknown>): Promise<unknown> {
    let result: unknown;
    try {
      result = await pending;
    } catch (err) {
      throw this.failed(name, list[i]!, err);
    }
    for (i++; result === undefined && i < list.length; i++) {
      const entry = list[i]!;
      const timing = observers.handler;
      const start = timing ? performance.now() : 0;
      try {
        result = await (entry.handler as Handler<unknown>)(event);
      } catch (err) {
        throw this.failed(name, entry, err);
      } finally {
        if (timing) timed(timing, name, entry.owner, start, undefined);
      }
    }
    return result;
  }

  /** Log a handler's failure (once, however many dispatches it passes through) and return it. */
  private failed(name: string, entry: Entry, err: unknown): unknown {
    if (typeof err === 'object' && err !== null) {
      if (logged.has(err)) return err;
      logged.add(err);
    }
    if (err instanceof StanzaError) this.log('handler of %s (%s) answered %s', name, entry.owner, err.condition);
    else this.log.error('handler of %s (%s) failed: %s', name, entry.owner, err);
    return err;
  }

  /**
   * Notification: every handler runs whatever the others return (resource-bind, session-added…).
   * Async handlers are not awaited; their failures are logged.
   */
  emit<K extends EventName<C>>(name: K, event: C[K]): void {
    const list = this.handlers.get(name);
    if (!list) return;
    const timing = observers.handler;
    for (const entry of list) {
      const start = timing ? performance.now() : 0;
      try {
        const result = (entry.handler as Handler<unknown>)(event);
        if (timing) timed(timing, name, entry.owner, start, result);
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.log.error('async handler of %s (%s) failed: %s', name, entry.owner, err));
        }
      } catch (err) {
        this.log.error('handler of %s (%s) threw: %s', name, entry.owner, err);
      }
    }
  }

  /**
   * Awaiting dispatch for lifecycle events (user-deleted, shutdown, …): each handler is awaited
   * in order; a handler resolving to something other than undefined stops the chain. A failing
   * handler is logged and the next one runs.
   */
  async fireAsync<K extends EventName<C>>(name: K, event: C[K]): Promise<unknown> {
    const list = this.handlers.get(name);
    if (!list) return undefined;
    for (const entry of list) {
      try {
        const result = await (entry.handler as Handler<unknown>)(event);
        if (result !== undefined) return result;
      } catch (err) {
        this.log.error('handler of %s (%s) failed: %s', name, entry.owner, err);
      }
    }
    return undefined;
  }
}

/** Report a handler's time to observers.handler: now, or when its Promise settles. */
function timed(report: NonNullable<typeof observers.handler>, name: string, owner: string, start: number, result: unknown): void {
  const done = () => report(name, owner, (performance.now() - start) / 1000);
  if (result instanceof Promise) result.then(done, done);
  else done();
}
