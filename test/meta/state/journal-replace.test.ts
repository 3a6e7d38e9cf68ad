import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetaStateMachine } from '../../../src/meta/state/default-records.js';
import { Harness } from './support.js';

const create = { kind: 'journal.segment.create', shard: 'orders-0', segment: 0, ensemble: [1, 2, 3], writeQuorum: 3, ackQuorum: 2, epoch: 4 } as const;
const seal = { kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 99 } as const;
const replace = { kind: 'journal.segment.replace', shard: 'orders-0', segment: 0, from: 2, to: 5 } as const;

describe('journal.segment.replace', () => {
  it('swaps one node of a sealed segment in place, keeping epoch, quorums, offsets and the other nodes', () => {
    const h = new Harness();
    h.ok(create);
    h.ok(seal);
    const since = h.changes.length;
    h.ok(replace);
    const s = h.view.journalSegments.get('orders-0', 0);
    assert.deepEqual(s, { shard: 'orders-0', segment: 0, ensemble: [1, 5, 3], writeQuorum: 3, ackQuorum: 2, epoch: 4, startOffset: 0, state: 'sealed', lastEntry: 99 });
    assert.deepEqual(h.eventTypes(since), ['journal.segment.replaced']);
    const ev = h.changes.at(-1)?.event;
    assert.ok(ev?.type === 'journal.segment.replaced');
    assert.deepEqual([ev.from, ev.to, [...ev.previous.ensemble], [...ev.segment.ensemble]], [2, 5, [1, 2, 3], [1, 5, 3]]);
    assert.deepEqual(h.view.journalSegments.onNode(2), []);
    assert.deepEqual(h.view.journalSegments.onNode(5).map((x) => x.segment), [0]);
    // Again, one at a time: the first node too.
    h.ok({ ...replace, from: 1, to: 2 });
    assert.deepEqual(h.view.journalSegments.get('orders-0', 0)?.ensemble, [2, 5, 3]);
  });

  it('refuses an open segment, a missing one, a node not in the ensemble and one already in it', () => {
    const h = new Harness();
    h.fails(replace, 'not_found');
    h.ok(create);
    h.fails(replace, 'conflict', /open/);
    h.ok(seal);
    h.fails({ ...replace, segment: 1 }, 'not_found');
    h.fails({ ...replace, shard: 'other-0' }, 'not_found');
    h.fails({ ...replace, from: 4 }, 'conflict', /node 4 is not in its ensemble/);
    h.fails({ ...replace, to: 3 }, 'conflict', /node 3 is already in its ensemble/);
    assert.deepEqual(h.view.journalSegments.get('orders-0', 0)?.ensemble, [1, 2, 3]);
  });

  it('validates its fields', () => {
    const h = new Harness();
    h.ok(create);
    h.ok(seal);
    h.fails({ ...replace, to: 2 }, 'invalid', /same node/);
    h.fails({ ...replace, from: 0 }, 'invalid');
    h.fails({ ...replace, to: -1 }, 'invalid');
    h.fails({ ...replace, to: 1.5 }, 'invalid');
    h.fails({ ...replace, segment: -1 }, 'invalid');
    h.fails({ kind: 'journal.segment.replace', shard: 'orders-0', segment: 0, from: 2 }, 'invalid');
    h.fails({ kind: 'journal.segment.replace', segment: 0, from: 2, to: 5 }, 'invalid');
  });

  it('the replaced ensemble survives a snapshot and restore; a restored machine applies replace the same way', () => {
    const h = new Harness();
    h.ok(create);
    h.ok(seal);
    h.ok({ ...create, segment: 1, startOffset: 100 });
    h.ok(replace);
    const copy = createMetaStateMachine();
    copy.restore(h.machine.snapshot());
    assert.deepEqual(copy.snapshot(), h.machine.snapshot());
    assert.deepEqual(copy.view.journalSegments.get('orders-0', 0)?.ensemble, [1, 5, 3]);
    assert.equal(copy.view.journalSegments.get('orders-0', 1)?.state, 'open');
    const hc = new Harness(copy);
    hc.ok({ ...replace, from: 5, to: 6 });
    hc.fails({ ...replace, segment: 1 }, 'conflict', /open/);
    assert.deepEqual(copy.view.journalSegments.get('orders-0', 0)?.ensemble, [1, 6, 3]);
  });

  it('an open segment still changes its ensemble by update only; a sealed one by replace only', () => {
    const h = new Harness();
    h.ok(create);
    h.ok({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 4, 3], epoch: 5 });
    h.ok(seal);
    h.fails({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 4, 6], epoch: 6 }, 'conflict', /sealed/);
    h.ok({ ...replace, from: 4, to: 6 });
    const s = h.view.journalSegments.get('orders-0', 0);
    assert.deepEqual([s?.ensemble, s?.epoch], [[1, 6, 3], 5]);
  });
});
