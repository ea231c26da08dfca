// Keyed serial queues: tasks under one key run one after another, in the order they were
// queued; tasks under different keys run independently. A task queued under an idle key starts
// at once (synchronously); if it finishes synchronously its value is returned as is, so the
// common case — nothing pending for that key — costs no Promise. Otherwise the caller gets a
// Promise that settles with the task. A failing task never stops the queue: its error goes to
// its own caller and the next task runs. A task must not await another task of its own key
// (that one waits for it). Behind module.serial(key, task) (mod_presence,
// mod_blocking, mod_offline: one user's changes in order).

/** A queued task, started: true when it finished synchronously (the next one may start at once). */
type Task = () => boolean;

export class SerialQueues {
  /** key → tasks waiting behind the running one (present while a task of the key runs). */
  private readonly waiting = new Map<string, Task[]>();

  /** Whether a task of `key` is running or queued. */
  busy(key: string): boolean {
    return this.waiting.has(key);
  }

  run<T>(key: string, task: () => T | Promise<T>): T | Promise<T> {
    const queue = this.waiting.get(key);
    if (queue) {
      return new Promise<T>((resolve, reject) => {
        queue.push(() => this.start(key, task, resolve, reject));
      });
    }
    this.waiting.set(key, []);
    let result: T | Promise<T>;
    try {
      result = task();
    } catch (err) {
      this.next(key);
      throw err;
    }
    if (!(result instanceof Promise)) {
      this.next(key);
      return result;
    }
    return result.finally(() => this.next(key));
  }

  /** Run a queued task; returns whether it finished synchronously. */
  private start<T>(key: string, task: () => T | Promise<T>, resolve: (v: T) => void, reject: (e: unknown) => void): boolean {
    let result: T | Promise<T>;
    try {
      result = task();
    } catch (err) {
      reject(err);
      return true;
    }
    if (!(result instanceof Promise)) {
      resolve(result);
      return true;
    }
    result.then(resolve, reject).finally(() => this.next(key));
    return false;
  }

  /** The running task of `key` is done: start the next ones (a loop, so long synchronous runs use no stack). */
  private next(key: string): void {
    const queue = this.waiting.get(key);
    if (!queue) return;
    for (;;) {
      const task = queue.shift();
      if (!task) {
        this.waiting.delete(key);
        return;
      }
      // An asynchronous task calls next() again when it settles.
      if (!task()) return;
    }
  }
}
