import assert from 'node:assert/strict';
import { EventBus } from '../../core/util/events.ts';
import { StanzaError } from '../../core/util/errors.ts';
import { setLogLevel } from '../../core/util/log.ts';

describe('event bus', function () {
  before(() => setLogLevel('error'));
  after(() => setLogLevel('info'));

  it('runs handlers by priority (higher first), ties in registration order', function () {
    const bus = new EventBus('t');
    const order: string[] = [];
    bus.on('e', () => void order.push('low'), -5);
    bus.on('e', () => void order.push('a'));
    bus.on('e', () => void order.push('high'), 10);
    bus.on('e', () => void order.push('b'));
    assert.equal(bus.fire('e', {}), undefined);
    assert.deepEqual(order, ['high', 'a', 'b', 'low']);
  });

  it('stops at the first handler that returns a value (handled)', function () {
    const bus = new EventBus('t');
    let later = false;
    bus.on('e', () => 'mine', 5);
    bus.on('e', () => {
      later = true;
    });
    assert.equal(bus.fire('e', {}), 'mine');
    assert.equal(later, false);
  });

  it('fire(): a throwing handler ends the dispatch and its error reaches the caller', function () {
    const bus = new EventBus('t');
    let later = false;
    bus.on('e', () => {
      throw new StanzaError('modify', 'bad-request');
    }, 5);
    bus.on('e', () => {
      later = true;
      return true;
    });
    assert.throws(() => bus.fire('e', {}), (err: StanzaError) => err.condition === 'bad-request');
    assert.equal(later, false, 'no handler after the failing one runs');
  });

  it('fire() stays synchronous when no handler returns a Promise', function () {
    const bus = new EventBus('t');
    bus.on('e', () => undefined, 5);
    bus.on('e', () => 'sync');
    assert.equal(bus.fire('e', {}), 'sync');
  });

  it('fire(): a Promise resolving to undefined passes the event on; its value otherwise handles it', async function () {
    const bus = new EventBus('t');
    const seen: string[] = [];
    bus.on('e', async () => void seen.push('async pass'), 10);
    bus.on('e', () => void seen.push('sync pass'), 5);
    bus.on('e', async () => {
      seen.push('async handles');
      return 'done';
    }, 1);
    bus.on('e', () => {
      seen.push('never');
      return 'late';
    });
    const r = bus.fire('e', {});
    assert.ok(r instanceof Promise);
    assert.equal(await r, 'done');
    assert.deepEqual(seen, ['async pass', 'sync pass', 'async handles']);
  });

  it('fire(): a rejected handler rejects the dispatch; nobody handling resolves to undefined', async function () {
    const bus = new EventBus('t');
    bus.on('e', async () => {
      throw new Error('storage down');
    });
    await assert.rejects(bus.fire('e', {}) as Promise<unknown>, /storage down/);
    const quiet = new EventBus('t');
    quiet.on('e', async () => undefined);
    assert.equal(await quiet.fire('e', {}), undefined);
  });

  it('fireAsync() isolates a failing handler: the next one still runs', async function () {
    const bus = new EventBus('t');
    const seen: string[] = [];
    bus.on('e', async () => {
      throw new Error('boom');
    }, 5);
    bus.on('e', async () => void seen.push('next'));
    assert.equal(await bus.fireAsync('e', {}), undefined);
    assert.deepEqual(seen, ['next']);
  });

  it('emit() notifies every handler whatever they return', function () {
    const bus = new EventBus('t');
    const seen: number[] = [];
    bus.on('e', () => {
      seen.push(1);
      return true;
    });
    bus.on('e', () => void seen.push(2));
    bus.emit('e', {});
    assert.deepEqual(seen, [1, 2]);
  });

  it('fireAsync awaits handlers in order; off() removes one', async function () {
    const bus = new EventBus('t');
    const seen: string[] = [];
    const slow = async () => {
      await new Promise((r) => setTimeout(r, 10));
      seen.push('slow');
    };
    bus.on('e', slow, 1);
    const off = bus.on('e', async () => void seen.push('second'));
    await bus.fireAsync('e', {});
    assert.deepEqual(seen, ['slow', 'second']);
    off();
    bus.off('e', slow);
    assert.equal(bus.has('e'), false);
  });
});
