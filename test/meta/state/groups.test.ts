import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Harness, T0 } from './support.js';

describe('groups record', () => {
  it('commits offsets and answers per (group, topic, shard)', () => {
    const h = new Harness();
    const n = h.ok({
      kind: 'group.commitOffsets',
      group: 'billing',
      offsets: [
        { topic: 'orders', shard: 1, offset: 42, metadata: 'm' },
        { topic: 'orders', shard: 0, offset: 7 },
        { topic: 'audit', shard: 0, offset: 0 },
      ],
      nowMs: T0,
    });
    assert.equal(n, 3);
    assert.deepEqual(h.view.groups.committed('billing', 'orders', 1), { offset: 42, metadata: 'm', commitTimeMs: T0 });
    assert.equal(h.view.groups.committed('billing', 'orders', 2), undefined);
    assert.equal(h.view.groups.committed('other', 'orders', 1), undefined);
    h.ok({ kind: 'group.commitOffsets', group: 'billing', offsets: [{ topic: 'orders', shard: 1, offset: 50 }], nowMs: T0 + 1 });
    assert.deepEqual(h.view.groups.committed('billing', 'orders', 1), { offset: 50, commitTimeMs: T0 + 1 });
    h.ok({ kind: 'group.commitOffsets', group: 'analytics', offsets: [{ topic: 'orders', shard: 0, offset: 1 }], nowMs: T0 });
    assert.deepEqual(h.view.groups.list(), ['analytics', 'billing']);
    assert.deepEqual(
      h.view.groups.offsets('billing').map((o) => `${o.topic}/${o.shard}=${o.offset}`),
      ['audit/0=0', 'orders/0=7', 'orders/1=50'],
    );
    const first = h.changes[0]?.event;
    assert.ok(first?.type === 'group.offsetsCommitted' && first.group === 'billing' && first.offsets.length === 3);
  });

  it('deletes a group; unknown groups are not_found', () => {
    const h = new Harness();
    h.fails({ kind: 'group.delete', group: 'g' }, 'not_found');
    h.ok({ kind: 'group.commitOffsets', group: 'g', offsets: [{ topic: 't', shard: 0, offset: 1 }], nowMs: T0 });
    h.ok({ kind: 'group.delete', group: 'g' });
    assert.equal(h.view.groups.has('g'), false);
    assert.deepEqual(h.view.groups.offsets('g'), []);
    assert.deepEqual(h.eventTypes(), ['group.offsetsCommitted', 'group.deleted']);
  });

  it('validates commits', () => {
    const h = new Harness();
    const base = { kind: 'group.commitOffsets', group: 'g', nowMs: T0 };
    h.fails({ ...base, offsets: [] }, 'invalid');
    h.fails({ ...base, offsets: [{ topic: 't', shard: 0, offset: -1 }] }, 'invalid');
    h.fails({ ...base, offsets: [{ topic: 'a/b', shard: 0, offset: 1 }] }, 'invalid');
    h.fails({ ...base, offsets: [{ topic: 't', shard: 0, offset: 1 }, { topic: 't', shard: 0, offset: 2 }] }, 'invalid', /twice/);
    h.fails({ ...base, group: '', offsets: [{ topic: 't', shard: 0, offset: 1 }] }, 'invalid');
    h.fails({ ...base, offsets: [{ topic: 't', shard: 0, offset: 2 ** 53 }] }, 'invalid');
  });

  it('drops a deleted topic’s offsets from every group', () => {
    const h = new Harness();
    h.ok({ kind: 'topic.create', name: 't', shards: 2, engine: 'file', nowMs: T0 });
    h.ok({ kind: 'group.commitOffsets', group: 'a', offsets: [{ topic: 't', shard: 0, offset: 5 }, { topic: 'u', shard: 0, offset: 1 }], nowMs: T0 });
    h.ok({ kind: 'group.commitOffsets', group: 'b', offsets: [{ topic: 't', shard: 1, offset: 9 }], nowMs: T0 });
    const since = h.changes.length;
    h.ok({ kind: 'topic.delete', name: 't' });
    assert.deepEqual(h.eventTypes(since), ['topic.deleted', 'shard.removed', 'group.offsetsDeleted', 'group.offsetsDeleted']);
    assert.equal(h.view.groups.committed('a', 't', 0), undefined);
    assert.equal(h.view.groups.committed('a', 'u', 0)?.offset, 1);
    assert.deepEqual(h.view.groups.list(), ['a', 'b'], 'the groups themselves remain');
  });
});
