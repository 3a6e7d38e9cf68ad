import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCommand, type MetaCommand } from '../../../src/meta/state/commands.js';
import { createMetaStateMachine, type MetaEvent } from '../../../src/meta/state/default-records.js';
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type MetaChange } from '../../../src/meta/state/machine.js';
import { MetaSnapshotError } from '../../../src/meta/state/result.js';
import { Harness, T0, replay, sampleHistory } from './support.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function snapshotDoc(h: Harness): { format: string; version: number; appliedIndex: number; records: Record<string, unknown> } {
  return JSON.parse(text(h.machine.snapshot())) as { format: string; version: number; appliedIndex: number; records: Record<string, unknown> };
}

const more: MetaCommand[] = [
  { kind: 'shard.assign', topic: 'orders', shard: 3, leader: 2, replicas: [2] },
  { kind: 'topic.create', name: 'tmp', shards: 2, engine: 'file', nowMs: T0 + 9 },
  { kind: 'group.commitOffsets', group: 'g2', offsets: [{ topic: 'orders', shard: 1, offset: 8 }], nowMs: T0 + 9 },
  { kind: 'journal.segment.create', shard: 'orders-0', segment: 2, ensemble: [1], writeQuorum: 1, ackQuorum: 1, epoch: 1 }, // conflict: 1 is open
  { kind: 'node.remove', nodeId: 2 },
  { kind: 'acl.remove', principal: 'alice', resourceType: 'topic', pattern: 'ord', patternType: 'prefix', operation: 'read', permission: 'allow' },
];

describe('determinism and snapshots', () => {
  it('two machines fed the same entries produce byte-identical snapshots and results', () => {
    const a = new Harness();
    const b = new Harness();
    const ra = replay(a, sampleHistory());
    const rb = replay(b, sampleHistory());
    assert.deepEqual(ra, rb);
    assert.deepEqual(a.machine.snapshot(), b.machine.snapshot());
    assert.deepEqual(a.changes, b.changes);
  });

  it('writes the versioned format with canonical key order', () => {
    const h = new Harness();
    replay(h, sampleHistory());
    const doc = snapshotDoc(h);
    assert.equal(doc.format, SNAPSHOT_FORMAT);
    assert.equal(doc.version, SNAPSHOT_VERSION);
    assert.equal(doc.appliedIndex, sampleHistory().length);
    assert.deepEqual(Object.keys(doc.records), ['config', 'groups', 'journalSegments', 'mqttAcl', 'mqttRetained', 'mqttSessions', 'nodes', 'shards', 'topics', 'users']);
    assert.ok(text(h.machine.snapshot()).startsWith('{"appliedIndex":'), 'keys are sorted at every level');
  });

  it('restores to an identical state, and further applies behave the same', () => {
    const original = new Harness();
    replay(original, sampleHistory());
    const snap = original.machine.snapshot();

    const restored = new Harness();
    restored.machine.restore(snap);
    restored.index = restored.machine.appliedIndex;
    assert.equal(restored.machine.appliedIndex, original.machine.appliedIndex);
    assert.deepEqual(restored.machine.snapshot(), snap);
    assert.deepEqual(restored.view.topics.list(), original.view.topics.list());
    assert.deepEqual(restored.view.shards.forTopic('orders'), original.view.shards.forTopic('orders'));
    assert.deepEqual(restored.view.nodes.list(), original.view.nodes.list());
    assert.deepEqual(restored.view.groups.offsets('g1'), original.view.groups.offsets('g1'));
    assert.equal(restored.view.users.authorize('alice', 'topic', 'orders', 'read'), true);
    assert.deepEqual(restored.view.journalSegments.forShard('orders-0'), original.view.journalSegments.forShard('orders-0'));
    assert.deepEqual(restored.view.mqttSessions.list(), original.view.mqttSessions.list());
    assert.deepEqual(restored.view.mqttRetained.list(), original.view.mqttRetained.list());
    assert.deepEqual(restored.view.config.entries(), original.view.config.entries());

    const since = original.changes.length;
    assert.deepEqual(replay(restored, more), replay(original, more));
    assert.deepEqual(restored.machine.snapshot(), original.machine.snapshot());
    assert.deepEqual(
      restored.changes.filter((c) => c.event.type !== 'state.restored'),
      original.changes.slice(since),
    );
  });

  it('publishes state.restored so caches reload', () => {
    const src = new Harness();
    replay(src, sampleHistory());
    const m = createMetaStateMachine();
    const seen: MetaChange<MetaEvent>[] = [];
    m.subscribe((c) => seen.push(c));
    m.restore(src.machine.snapshot());
    assert.deepEqual(seen, [{ index: src.index, event: { type: 'state.restored', appliedIndex: src.index } }]);
  });

  it('rejects an unknown version, a foreign format, unknown record types and corrupt content, keeping state', () => {
    const h = new Harness();
    replay(h, sampleHistory());
    const before = h.machine.snapshot();
    const doc = snapshotDoc(h);
    const bad: [unknown, RegExp][] = [
      [{ ...doc, version: 2 }, /unsupported meta snapshot version 2: this build reads version 1/],
      [{ ...doc, version: undefined }, /unsupported meta snapshot version/],
      [{ ...doc, format: 'etcd' }, /not a meta snapshot/],
      [{ ...doc, appliedIndex: -1 }, /appliedIndex/],
      [{ ...doc, records: [] }, /'records'/],
      [{ ...doc, records: { ...doc.records, quotas: [] } }, /'quotas' that this build does not know/],
      [{ ...doc, records: { ...doc.records, topics: [{ name: 'x' }] } }, /record type 'topics'/],
      [{ ...doc, records: { ...doc.records, nodes: 'nope' } }, /record type 'nodes'/],
      [{ ...doc, records: { ...doc.records, users: { users: [], acls: [{ principal: 'a' }] } } }, /record type 'users'/],
    ];
    for (const [d, re] of bad) {
      assert.throws(() => h.machine.restore(bytes(JSON.stringify(d))), (err: unknown) => err instanceof MetaSnapshotError && re.test(err.message));
    }
    assert.throws(() => h.machine.restore(bytes('{')), MetaSnapshotError);
    assert.throws(() => h.machine.restore(new Uint8Array([0xff])), MetaSnapshotError);
    assert.deepEqual(h.machine.snapshot(), before, 'a failed restore leaves state untouched');
  });

  it('starts a record type missing from an older snapshot empty', () => {
    const h = new Harness();
    replay(h, sampleHistory());
    const doc = snapshotDoc(h);
    delete doc.records['mqttRetained'];
    const m = createMetaStateMachine();
    m.restore(bytes(JSON.stringify(doc)));
    assert.deepEqual(m.view.mqttRetained.list(), []);
    assert.equal(m.view.topics.get('orders')?.shards, 4);
  });

  it('an empty machine round-trips', () => {
    const a = createMetaStateMachine();
    const b = createMetaStateMachine();
    b.restore(a.snapshot());
    assert.deepEqual(b.snapshot(), a.snapshot());
    assert.equal(b.appliedIndex, 0);
    assert.equal(b.apply(1, encodeCommand({ kind: 'config.set', key: 'k', value: 'v' })).ok, true);
  });
});
