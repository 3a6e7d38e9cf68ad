import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetaStateMachine } from '../../../src/meta/state/default-records.js';
import { Harness } from './support.js';

const create = { kind: 'journal.segment.create', shard: 'orders-0', segment: 0, ensemble: [1, 2, 3], writeQuorum: 3, ackQuorum: 2, epoch: 1 } as const;
const trim = { kind: 'journal.segment.trim', shard: 'orders-0', segment: 0, offset: 40 } as const;

describe('journal.segment.trim', () => {
  it('records where a segment\'s records start after a delete inside it, only forward, open or sealed', () => {
    const h = new Harness();
    h.fails(trim, 'not_found');
    h.ok(create);
    const since = h.changes.length;
    h.ok(trim);
    assert.equal(h.view.journalSegments.get('orders-0', 0)?.trimmedTo, 40);
    assert.deepEqual(h.eventTypes(since), ['journal.segment.trimmed']);
    // Backwards or equal: a no-op, no event.
    const before = h.changes.length;
    h.ok({ ...trim, offset: 10 });
    h.ok(trim);
    assert.equal(h.changes.length, before);
    assert.equal(h.view.journalSegments.get('orders-0', 0)?.trimmedTo, 40);
    h.ok({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 99 });
    assert.equal(h.view.journalSegments.get('orders-0', 0)?.trimmedTo, 40, 'sealing keeps it');
    h.ok({ ...trim, offset: 100 }); // the segment's end: every record deleted
    h.fails({ ...trim, offset: 101 }, 'invalid', /ends at offset 100/);
    h.fails({ ...trim, offset: -1 }, 'invalid');
    h.fails({ kind: 'journal.segment.trim', shard: 'orders-0', segment: 0 }, 'invalid');
  });

  it('survives a snapshot and restore', () => {
    const h = new Harness();
    h.ok(create);
    h.ok(trim);
    const copy = createMetaStateMachine();
    copy.restore(h.machine.snapshot());
    assert.deepEqual(copy.snapshot(), h.machine.snapshot());
    assert.equal(copy.view.journalSegments.get('orders-0', 0)?.trimmedTo, 40);
  });
});
