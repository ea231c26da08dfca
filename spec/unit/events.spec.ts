import assert from 'node:assert/strict';
import { EventBus, HANDLER_ERROR } from '../../core/util/events.ts';
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

  it('isolates a throwing handler and reports HANDLER_ERROR when nobody handled', function () {
    const bus = new EventBus('t');
    bus.on('e', () => {
      throw new Error('boom');
    }, 5);
    assert.equal(bus.fire('e', {}), HANDLER_ERROR);
    bus.on('e', () => true);
    assert.equal(bus.fire('e', {}), true);
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
