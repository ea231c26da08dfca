import assert from 'node:assert/strict';
import { SerialQueues } from '../../core/util/serial.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('serial queues (core/util/serial.ts)', function () {
  it('runs a task at once when its key is idle, returning a synchronous value as is', function () {
    const q = new SerialQueues();
    const seen: string[] = [];
    const r = q.run('alice', () => {
      seen.push('ran');
      return 42;
    });
    assert.equal(r, 42);
    assert.deepEqual(seen, ['ran']);
    assert.equal(q.busy('alice'), false);
  });

  it('runs tasks of one key one after another, in order, while others run alongside', async function () {
    const q = new SerialQueues();
    const seen: string[] = [];
    let release!: () => void;
    const first = q.run('alice', async () => {
      seen.push('alice 1 start');
      await new Promise<void>((r) => (release = r));
      seen.push('alice 1 end');
      return 1;
    });
    const second = q.run('alice', () => {
      seen.push('alice 2');
      return 2;
    });
    const third = q.run('alice', async () => {
      seen.push('alice 3');
      return 3;
    });
    q.run('bob', () => void seen.push('bob'));
    assert.ok(second instanceof Promise, 'a queued task is answered with a Promise');
    await tick();
    assert.deepEqual(seen, ['alice 1 start', 'bob']);
    release();
    assert.deepEqual(await Promise.all([first, second, third]), [1, 2, 3]);
    assert.deepEqual(seen, ['alice 1 start', 'bob', 'alice 1 end', 'alice 2', 'alice 3']);
    assert.equal(q.busy('alice'), false);
  });

  it('keeps going after a failing task; the error goes to that task’s caller', async function () {
    const q = new SerialQueues();
    const a = q.run('k', async () => {
      await tick();
      throw new Error('first');
    });
    const b = q.run('k', () => {
      throw new Error('second');
    });
    const c = q.run('k', () => 'third');
    await assert.rejects(a as Promise<unknown>, /first/);
    await assert.rejects(b as Promise<unknown>, /second/);
    assert.equal(await c, 'third');
    assert.throws(() => q.run('idle', () => {
      throw new Error('sync');
    }), /sync/);
    assert.equal(q.busy('idle'), false);
  });

  it('queues a task added while one of the same key is starting (no overtaking)', async function () {
    const q = new SerialQueues();
    const seen: number[] = [];
    let inner: unknown;
    const outer = q.run('k', async () => {
      // Queued behind this task (a task must not await one of its own key: it would wait forever).
      inner = q.run('k', () => void seen.push(2));
      seen.push(1);
      await tick();
      seen.push(1.5);
    });
    await outer;
    await inner;
    assert.deepEqual(seen, [1, 1.5, 2]);
  });

  it('drains a long run of queued synchronous tasks without deep recursion', async function () {
    const q = new SerialQueues();
    let release!: () => void;
    const gate = q.run('k', () => new Promise<void>((r) => (release = r)));
    let n = 0;
    const all: unknown[] = [];
    for (let i = 0; i < 20_000; i++) all.push(q.run('k', () => ++n));
    release();
    await gate;
    await Promise.all(all);
    assert.equal(n, 20_000);
  });
});
