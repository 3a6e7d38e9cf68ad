import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dueBy, staggeredStart, tickMs, toSend } from '../../src/loadgen/pacing.js';

describe('rate pacing', () => {
  it('counts the messages due since the start', () => {
    assert.equal(dueBy(1000, 999, 100), 0, 'nothing before the start');
    assert.equal(dueBy(1000, 1000, 100), 1, 'the first at the start');
    assert.equal(dueBy(0, 9_999_999, 100), 1, 'the second after 10 ms at 100/s');
    assert.equal(dueBy(0, 10_000_000, 100), 2);
    assert.equal(dueBy(0, 1e9, 10_000), 10_001);
    assert.equal(dueBy(0, 0.5e9, 0.5), 1, 'fractional rates');
    assert.equal(dueBy(0, 2e9, 0.5), 2);
  });

  it('sends the backlog, never a negative count', () => {
    assert.equal(toSend(0, 1e9, 1000, 0), 1001);
    assert.equal(toSend(0, 1e9, 1000, 990), 11);
    assert.equal(toSend(0, 1e9, 1000, 5000), 0);
  });

  it('keeps the total rate over many ticks', () => {
    let sent = 0;
    for (let t = 0; t <= 2e9; t += 1.1e6) sent += toSend(0, t, 12_345, sent); // ticks of 1.1 ms
    assert.ok(Math.abs(sent - 2 * 12_345) <= 2, `sent ${sent}`);
  });

  it('staggers publishers across one interval', () => {
    assert.equal(staggeredStart(0, 0, 4, 1000), 0);
    assert.equal(staggeredStart(0, 1, 4, 1000), 250_000);
    assert.equal(staggeredStart(0, 3, 4, 1000), 750_000);
    assert.equal(staggeredStart(5, 3, 1, 1000), 5);
    assert.equal(staggeredStart(5, 3, 4, 0), 5, 'unpaced');
  });

  it('ticks slower for many publishers', () => {
    assert.equal(tickMs(1), 1);
    assert.equal(tickMs(1000), 5);
    assert.equal(tickMs(1_000_000), 20);
  });
});
