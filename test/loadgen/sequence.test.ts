import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SequenceTracker } from '../../src/loadgen/sequence.js';

describe('sequence tracking', () => {
  it('counts in-order messages as new', () => {
    const t = new SequenceTracker(true);
    for (let i = 0; i < 10; i++) assert.equal(t.record(7, i), true);
    assert.deepEqual([t.holes, t.duplicates, t.outOfOrder, t.publishers], [0, 0, 0, 1]);
  });

  it('tells duplicates from late arrivals', () => {
    const t = new SequenceTracker(true);
    t.record(1, 0);
    t.record(1, 3); // 1 and 2 missing
    assert.equal(t.holes, 2);
    assert.equal(t.record(1, 2), true); // late
    assert.equal(t.record(1, 2), false); // now a duplicate
    assert.equal(t.record(1, 3), false);
    assert.deepEqual([t.holes, t.duplicates, t.outOfOrder], [1, 2, 1]);
  });

  it('keeps publishers apart', () => {
    const t = new SequenceTracker(true);
    t.record(1, 0);
    t.record(2, 0);
    t.record(1, 1);
    t.record(2, 1);
    assert.deepEqual([t.holes, t.duplicates, t.publishers], [0, 0, 2]);
  });

  it('with a known start, numbers before the first seen are missing', () => {
    const known = new SequenceTracker(true);
    known.record(1, 5);
    assert.equal(known.holes, 5);
    const unknown = new SequenceTracker(false);
    unknown.record(1, 5);
    unknown.record(1, 6);
    assert.equal(unknown.holes, 0);
  });

  it('bounds the memory of holes', () => {
    const t = new SequenceTracker(true, 10);
    t.record(1, 0);
    t.record(1, 100); // 99 holes: more than remembered
    assert.equal(t.overflowed, true);
    assert.equal(t.holes, 99);
    assert.equal(t.record(1, 50), true); // late, counted as out of order
    assert.deepEqual([t.holes, t.outOfOrder, t.duplicates], [98, 1, 0]);
  });
});
