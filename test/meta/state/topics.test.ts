import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseShardId, shardId } from '../../../src/meta/state/records/shards.js';
import { Harness, T0 } from './support.js';

describe('topics record', () => {
  it('creates a topic with its settings; its id is the creating index', () => {
    const h = new Harness();
    h.ok({ kind: 'node.register', nodeId: 1, roles: ['broker'], grpcAddr: 'a:1', nowMs: T0 });
    const value = h.ok({
      kind: 'topic.create',
      name: 'orders.v1',
      shards: 3,
      engine: 'journal',
      retentionMs: 86_400_000,
      retentionBytes: -1,
      config: { 'cleanup.policy': 'delete', 'a.b': '' },
      protocol: 'kafka',
      nowMs: T0,
    });
    const t = h.view.topics.get('orders.v1');
    assert.deepEqual(value, t);
    assert.deepEqual(t, {
      id: 2,
      name: 'orders.v1',
      shards: 3,
      engine: 'journal',
      retentionMs: 86_400_000,
      retentionBytes: -1,
      config: { 'a.b': '', 'cleanup.policy': 'delete' },
      protocol: 'kafka',
      createdAtMs: T0,
    });
    assert.deepEqual(h.view.topics.names(), ['orders.v1']);
  });

  it('applies Kafka topic-name rules', () => {
    const h = new Harness();
    const base = { kind: 'topic.create', shards: 1, engine: 'memory', nowMs: T0 };
    for (const name of ['', '.', '..', 'a/b', 'a b', 'ü', 'x'.repeat(250), '$SYS']) h.fails({ ...base, name }, 'invalid');
    for (const name of ['a', 'A-b_c.d', 'x'.repeat(249), '...']) h.ok({ kind: 'topic.create', name, shards: 1, engine: 'memory', nowMs: T0 });
  });

  it('bounds the shard count and rejects a second create', () => {
    const h = new Harness();
    const base = { kind: 'topic.create', name: 't', engine: 'memory', nowMs: T0 };
    h.fails({ ...base, shards: 0 }, 'invalid');
    h.fails({ ...base, shards: 10_001 }, 'invalid');
    h.ok({ kind: 'topic.create', name: 't', shards: 10_000, engine: 'memory', nowMs: T0 });
    assert.equal(h.view.shards.forTopic('t').length, 10_000);
    h.fails({ ...base, shards: 1 }, 'already_exists');
  });

  it('deletes a topic and its shards; a re-created topic gets a new id', () => {
    const h = new Harness();
    h.fails({ kind: 'topic.delete', name: 't' }, 'not_found');
    h.ok({ kind: 'topic.create', name: 't', shards: 2, engine: 'file', nowMs: T0 });
    h.ok({ kind: 'topic.delete', name: 't' });
    assert.equal(h.view.topics.get('t'), undefined);
    assert.deepEqual(h.view.shards.forTopic('t'), []);
    h.ok({ kind: 'topic.create', name: 't', shards: 1, engine: 'file', nowMs: T0 });
    assert.equal(h.view.topics.get('t')?.id, 4);
    assert.equal(h.view.shards.get('t', 0)?.topicId, 4);
  });

  it('updates config with set and unset, publishing only a real change', () => {
    const h = new Harness();
    h.fails({ kind: 'topic.updateConfig', name: 't', set: {}, unset: [] }, 'not_found');
    h.ok({ kind: 'topic.create', name: 't', shards: 1, engine: 'file', config: { a: '1', b: '2' }, nowMs: T0 });
    h.ok({ kind: 'topic.updateConfig', name: 't', set: { c: '3', a: '9' }, unset: ['b', 'zz'] });
    assert.deepEqual(h.view.topics.get('t')?.config, { a: '9', c: '3' });
    const n = h.changes.length;
    h.ok({ kind: 'topic.updateConfig', name: 't', set: { a: '9' }, unset: [] });
    assert.equal(h.changes.length, n);
    h.fails({ kind: 'topic.updateConfig', name: 't', set: { a: '1' }, unset: ['a'] }, 'invalid', /both set and unset/);
    h.fails({ kind: 'topic.updateConfig', name: 't', set: { a: 1 }, unset: [] }, 'invalid');
    h.fails({ kind: 'topic.updateConfig', name: 't', set: { 'bad key': 'x' }, unset: [] }, 'invalid');
    const last = h.changes.at(-1)?.event;
    assert.ok(last?.type === 'topic.configUpdated' && last.previous.config['b'] === '2');
  });

  it('keeps "__proto__" config keys as data', () => {
    const h = new Harness();
    h.raw({ kind: 'topic.create', name: 't', shards: 1, engine: 'file', nowMs: T0 });
    const r = h.raw(JSON.parse('{"kind":"topic.updateConfig","name":"t","set":{"__proto__":"x"},"unset":[]}') as object);
    assert.equal(r.ok, true);
    const config = h.view.topics.get('t')?.config ?? {};
    assert.equal(Object.getPrototypeOf(config), Object.prototype);
    assert.ok(Object.hasOwn(config, '__proto__'));
  });

  it('adds shards only upward', () => {
    const h = new Harness();
    h.fails({ kind: 'topic.addShards', name: 't', shards: 3 }, 'not_found');
    h.ok({ kind: 'topic.create', name: 't', shards: 2, engine: 'file', nowMs: T0 });
    h.ok({ kind: 'shard.assign', topic: 't', shard: 1, leader: 5, replicas: [5] });
    h.fails({ kind: 'topic.addShards', name: 't', shards: 2 }, 'invalid', /must be larger/);
    h.fails({ kind: 'topic.addShards', name: 't', shards: 1 }, 'invalid');
    const since = h.changes.length;
    h.ok({ kind: 'topic.addShards', name: 't', shards: 4 });
    assert.equal(h.view.topics.get('t')?.shards, 4);
    assert.deepEqual(h.view.shards.forTopic('t').map((s) => [s.id, s.leader, s.epoch]), [
      ['t-0', 0, 0],
      ['t-1', 5, 1],
      ['t-2', 0, 0],
      ['t-3', 0, 0],
    ]);
    assert.deepEqual(h.eventTypes(since), ['topic.shardsAdded', 'shard.created']);
    const created = h.changes.at(-1)?.event;
    assert.ok(created?.type === 'shard.created' && created.shards.map((s) => s.shard).join() === '2,3');
  });
});

describe('shards record', () => {
  it('creates unplaced shards with the topic and assigns them, bumping the epoch', () => {
    const h = new Harness();
    h.ok({ kind: 'topic.create', name: 'a-1', shards: 2, engine: 'file', nowMs: T0 });
    assert.deepEqual(h.view.shards.get('a-1', 0), { id: 'a-1-0', topic: 'a-1', topicId: 1, shard: 0, leader: 0, replicas: [], epoch: 0 });
    h.ok({ kind: 'shard.assign', topic: 'a-1', shard: 0, leader: 2, replicas: [2, 3, 1] });
    h.ok({ kind: 'shard.assign', topic: 'a-1', shard: 0, leader: 3, replicas: [2, 3, 1] });
    const s = h.view.shards.byId('a-1-0');
    assert.equal(s?.leader, 3);
    assert.deepEqual(s?.replicas, [2, 3, 1], 'replica order is preference order and is kept');
    assert.equal(s?.epoch, 2);
    assert.deepEqual(h.view.shards.onNode(1).map((x) => x.id), ['a-1-0']);
    assert.deepEqual(h.view.shards.onNode(9), []);
    const last = h.changes.at(-1)?.event;
    assert.ok(last?.type === 'shard.assigned' && last.previous.leader === 2 && last.shard.epoch === 2);
  });

  it('supports compare-and-set on the epoch and leaderless placements', () => {
    const h = new Harness();
    h.ok({ kind: 'topic.create', name: 't', shards: 1, engine: 'file', nowMs: T0 });
    h.ok({ kind: 'shard.assign', topic: 't', shard: 0, leader: 1, replicas: [1, 2], expectedEpoch: 0 });
    h.fails({ kind: 'shard.assign', topic: 't', shard: 0, leader: 2, replicas: [1, 2], expectedEpoch: 0 }, 'conflict', /epoch 1/);
    h.ok({ kind: 'shard.assign', topic: 't', shard: 0, leader: 0, replicas: [1, 2], expectedEpoch: 1 });
    assert.equal(h.view.shards.get('t', 0)?.leader, 0);
  });

  it('rejects unknown shards and a leader outside the replicas', () => {
    const h = new Harness();
    h.fails({ kind: 'shard.assign', topic: 't', shard: 0, leader: 1, replicas: [1] }, 'not_found');
    h.ok({ kind: 'topic.create', name: 't', shards: 1, engine: 'file', nowMs: T0 });
    h.fails({ kind: 'shard.assign', topic: 't', shard: 1, leader: 1, replicas: [1] }, 'not_found');
    h.fails({ kind: 'shard.assign', topic: 't', shard: 0, leader: 4, replicas: [1, 2] }, 'invalid', /not one of the replicas/);
    h.fails({ kind: 'shard.assign', topic: 't', shard: -1, leader: 1, replicas: [1] }, 'invalid');
    h.fails({ kind: 'shard.assign', topic: 't', shard: 0, leader: 1, replicas: Array.from({ length: 17 }, (_, i) => i + 1) }, 'invalid');
  });

  it('names shards `${topic}-${n}` unambiguously', () => {
    assert.equal(shardId('a-1', 10), 'a-1-10');
    assert.deepEqual(parseShardId('a-1-10'), { topic: 'a-1', shard: 10 });
    assert.deepEqual(parseShardId('a-10'), { topic: 'a', shard: 10 });
    for (const bad of ['a', '-1', 'a-', 'a-01', 'a-x']) assert.equal(parseShardId(bad), undefined, bad);
  });
});
