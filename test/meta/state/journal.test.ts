import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Harness } from './support.js';

const create = { kind: 'journal.segment.create', shard: 'orders-0', segment: 0, ensemble: [1, 2, 3], writeQuorum: 3, ackQuorum: 2, epoch: 1 } as const;

describe('journal segments record', () => {
  it('creates an open segment, seals it, then allows the next one', () => {
    const h = new Harness();
    h.ok(create);
    assert.deepEqual(h.view.journalSegments.get('orders-0', 0), { shard: 'orders-0', segment: 0, ensemble: [1, 2, 3], writeQuorum: 3, ackQuorum: 2, epoch: 1, startOffset: 0, state: 'open' });
    assert.equal(h.view.journalSegments.open('orders-0')?.segment, 0);
    h.fails({ ...create, segment: 1 }, 'conflict', /still has open segment 0/);
    h.fails(create, 'already_exists');
    h.ok({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 999 });
    h.ok({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 999 }); // idempotent
    h.fails({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 1000 }, 'conflict', /already sealed/);
    assert.equal(h.view.journalSegments.open('orders-0'), undefined);
    h.fails({ ...create, segment: 1, ensemble: [2, 3, 4], startOffset: 999 }, 'conflict', /must start at offset 1000/);
    h.ok({ ...create, segment: 1, ensemble: [2, 3, 4], startOffset: 1000 });
    assert.equal(h.view.journalSegments.get('orders-0', 1)?.startOffset, 1000);
    assert.deepEqual(h.view.journalSegments.forShard('orders-0').map((s) => [s.segment, s.state, s.lastEntry]), [
      [0, 'sealed', 999],
      [1, 'open', undefined],
    ]);
    assert.deepEqual(h.view.journalSegments.onNode(1).map((s) => s.segment), [0]);
    assert.deepEqual(h.view.journalSegments.shards(), ['orders-0']);
    assert.deepEqual(h.eventTypes(), ['journal.segment.created', 'journal.segment.sealed', 'journal.segment.created']);
  });

  it('requires segment numbers to grow', () => {
    const h = new Harness();
    h.ok({ ...create, segment: 5 });
    h.ok({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 5, lastEntry: -1 });
    h.fails({ ...create, segment: 4 }, 'conflict', /must grow/);
  });

  it('replaces the ensemble of an open segment only with a larger epoch', () => {
    const h = new Harness();
    h.ok(create);
    h.ok({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 4, 3], epoch: 2 });
    const s = h.view.journalSegments.get('orders-0', 0);
    assert.deepEqual([s?.ensemble, s?.epoch, s?.writeQuorum, s?.ackQuorum], [[1, 4, 3], 2, 3, 2]);
    h.fails({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 5, 3], epoch: 2 }, 'conflict', /larger epoch/);
    h.fails({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 5], epoch: 3 }, 'invalid', /ensemble size/);
    h.ok({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 5], epoch: 3, writeQuorum: 2, ackQuorum: 2 });
    h.fails({ kind: 'journal.segment.update', shard: 'orders-0', segment: 9, ensemble: [1], epoch: 9 }, 'not_found');
    h.ok({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 3 });
    h.fails({ kind: 'journal.segment.update', shard: 'orders-0', segment: 0, ensemble: [1, 6], epoch: 4 }, 'conflict', /sealed/);
    const upd = h.changes.find((c) => c.event.type === 'journal.segment.updated')?.event;
    assert.ok(upd?.type === 'journal.segment.updated' && upd.previous.epoch === 1);
  });

  it('deletes sealed segments, or all of a shard', () => {
    const h = new Harness();
    h.fails({ kind: 'journal.segment.delete', shard: 'orders-0', segment: 0 }, 'not_found');
    h.ok(create);
    h.fails({ kind: 'journal.segment.delete', shard: 'orders-0', segment: 0 }, 'conflict', /seal it/);
    h.ok({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 5 });
    h.ok({ ...create, segment: 1, startOffset: 6 });
    h.ok({ kind: 'journal.segment.delete', shard: 'orders-0', segment: 0 });
    assert.deepEqual(h.view.journalSegments.forShard('orders-0').map((s) => s.segment), [1]);
    h.ok({ kind: 'journal.segment.delete', shard: 'orders-0' });
    assert.deepEqual(h.view.journalSegments.shards(), []);
  });

  it('validates quorums and ensembles', () => {
    const h = new Harness();
    h.fails({ ...create, ackQuorum: 4 }, 'invalid');
    h.fails({ ...create, writeQuorum: 4 }, 'invalid');
    h.fails({ ...create, ackQuorum: 0 }, 'invalid');
    h.fails({ ...create, ensemble: [] }, 'invalid');
    h.fails({ ...create, ensemble: [1, 1, 2] }, 'invalid', /twice/);
    h.fails({ kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: -2 }, 'invalid');
  });
});
