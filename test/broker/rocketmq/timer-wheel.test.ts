/**
 * The timer wheel: keys come out in the second they are due, rounded up (never
 * early), each once; late additions go out on the next tick; removal works.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel } from '../../../src/broker/rocketmq/timer-wheel.js';

const T0 = 1_700_000_000_000; // a whole second

describe('TimerWheel', () => {
  it('hands a key out once its second has begun, never before its due time', () => {
    const w = new TimerWheel<string>(T0);
    w.add('a', T0 + 1500);
    w.add('b', T0 + 2000);
    w.add('c', T0 + 2001);
    assert.deepEqual(w.advance(T0 + 1999), [], 'a is due at 1.5 s: its second (rounded up) begins at 2 s');
    assert.deepEqual(w.advance(T0 + 2000).sort(), ['a', 'b']);
    assert.deepEqual(w.advance(T0 + 2999), []);
    assert.deepEqual(w.advance(T0 + 3000), ['c']);
    assert.equal(w.size, 0);
  });

  it('a key due in the past (a replayed timer) goes out on the next tick; ticks skipped over are caught up in order', () => {
    const w = new TimerWheel<number>(T0 + 10_000);
    w.add(1, T0);
    w.add(2, T0 + 12_000);
    w.add(3, T0 + 11_000);
    assert.deepEqual(w.advance(T0 + 10_000), [1]);
    assert.deepEqual(w.advance(T0 + 60_000), [3, 2], 'seconds walked in order');
  });

  it('removes and moves keys; nextDueMs reports the earliest', () => {
    const w = new TimerWheel<string>(T0);
    w.add('x', T0 + 5000);
    w.add('y', T0 + 7000);
    assert.equal(w.nextDueMs(), T0 + 5000);
    assert.ok(w.remove('x'));
    assert.ok(!w.remove('x'));
    assert.equal(w.nextDueMs(), T0 + 7000);
    w.add('y', T0 + 3000);
    assert.equal(w.size, 1);
    assert.deepEqual(w.advance(T0 + 3000), ['y']);
    assert.equal(w.nextDueMs(), undefined);
  });

  it('an idle wheel jumps its cursor instead of walking every second it slept through', () => {
    const w = new TimerWheel<string>(T0);
    assert.deepEqual(w.advance(T0 + 3 * 86_400_000), []);
    w.add('z', T0);
    assert.deepEqual(w.advance(T0 + 3 * 86_400_000 + 1000), ['z']);
  });
});
