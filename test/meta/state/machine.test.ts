import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCommand } from '../../../src/meta/state/commands.js';
import { createMetaStateMachine, defaultRecords } from '../../../src/meta/state/default-records.js';
import { MetaStateMachine } from '../../../src/meta/state/machine.js';
import { nodesRecord } from '../../../src/meta/state/records/nodes.js';
import { defineRecord } from '../../../src/meta/state/registry.js';
import { Harness, T0, stateBytes } from './support.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('MetaStateMachine apply', () => {
  it('treats an empty entry as the leader no-op and records the applied index', () => {
    const m = createMetaStateMachine();
    assert.equal(m.appliedIndex, 0);
    assert.deepEqual(m.apply(1, new Uint8Array()), { ok: true });
    assert.equal(m.appliedIndex, 1);
    const r = m.apply(5, encodeCommand({ kind: 'config.set', key: 'a', value: 'b' }));
    assert.equal(r.ok, true);
    assert.equal(m.appliedIndex, 5, 'gaps are allowed (membership entries never reach the machine)');
  });

  it('rejects an index that is not above appliedIndex without changing anything', () => {
    const h = new Harness();
    h.ok({ kind: 'config.set', key: 'a', value: '1' });
    const before = stateBytes(h.machine);
    for (const index of [1, 0]) {
      const r = h.machine.apply(index, encodeCommand({ kind: 'config.set', key: 'a', value: '2' }));
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.code, index === 0 ? 'invalid' : 'stale_index');
    }
    for (const index of [-3, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2]) {
      const r = h.machine.apply(index, new Uint8Array());
      assert.equal(r.ok, false);
    }
    assert.equal(h.machine.appliedIndex, 1);
    assert.equal(stateBytes(h.machine), before);
    assert.equal(h.view.config.get('a'), '1');
  });

  it('turns garbage bytes, non-objects, missing kinds and unknown kinds into error results', () => {
    const h = new Harness();
    h.ok({ kind: 'topic.create', name: 'orders', shards: 2, engine: 'file', nowMs: T0 });
    const cases: [Uint8Array, string][] = [
      [new Uint8Array([0xff, 0xfe, 0x00, 0x81]), 'invalid'], // not UTF-8
      [bytes('{"kind":"topic.create"'), 'invalid'], // truncated JSON
      [bytes('null'), 'invalid'],
      [bytes('[1,2,3]'), 'invalid'],
      [bytes('"topic.create"'), 'invalid'],
      [bytes('{"name":"x"}'), 'invalid'],
      [bytes('{"kind":42}'), 'invalid'],
      [bytes('{"kind":""}'), 'invalid'],
      [bytes('{"kind":"topic.explode","name":"orders"}'), 'unknown_kind'],
      [bytes('{"kind":"__proto__"}'), 'unknown_kind'],
      [bytes('{"kind":"toString"}'), 'unknown_kind'],
      [bytes('['.repeat(100_000)), 'invalid'],
    ];
    const before = stateBytes(h.machine);
    for (const [data, code] of cases) {
      const r = h.machine.apply(++h.index, data);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.code, code, r.message);
    }
    assert.equal(stateBytes(h.machine), before);
    assert.equal(h.machine.appliedIndex, h.index, 'a rejected entry is still consumed');
  });

  it('rejects malformed fields of every kind with invalid, leaving state alone', () => {
    const h = new Harness();
    h.ok({ kind: 'topic.create', name: 'orders', shards: 2, engine: 'file', nowMs: T0 });
    h.fails({ kind: 'topic.create', name: 'x', shards: '3', engine: 'file', nowMs: T0 }, 'invalid', /'shards'/);
    h.fails({ kind: 'topic.create', name: 'x', shards: 3, engine: 'tape', nowMs: T0 }, 'invalid', /'engine'/);
    h.fails({ kind: 'topic.create', name: 'x', shards: 3, engine: 'file' }, 'invalid', /'nowMs'/);
    h.fails({ kind: 'topic.create', name: 'x', shards: 3.5, engine: 'file', nowMs: T0 }, 'invalid');
    h.fails({ kind: 'topic.create', name: 'x', shards: 2 ** 60, engine: 'file', nowMs: T0 }, 'invalid');
    h.fails({ kind: 'node.register', nodeId: 0, roles: ['broker'], grpcAddr: 'h:1', nowMs: T0 }, 'invalid', /'nodeId'/);
    h.fails({ kind: 'node.register', nodeId: 1, roles: 'broker', grpcAddr: 'h:1', nowMs: T0 }, 'invalid', /'roles'/);
    h.fails({ kind: 'group.commitOffsets', group: 'g', offsets: {}, nowMs: T0 }, 'invalid', /'offsets'/);
    h.fails({ kind: 'config.set', key: 'a', value: 7 }, 'invalid');
    h.fails({ kind: 'shard.assign', topic: 'orders', shard: 0, leader: 1, replicas: [1, 1] }, 'invalid', /twice/);
  });

  it('publishes events in apply order with the index of the entry that caused them', () => {
    const h = new Harness();
    h.ok({ kind: 'node.register', nodeId: 1, roles: ['broker'], grpcAddr: 'h1:1228', nowMs: T0 });
    h.run({ kind: 'node.remove', nodeId: 9 }); // rejected: no event
    h.ok({ kind: 'topic.create', name: 'orders', shards: 2, engine: 'memory', nowMs: T0 });
    h.ok({ kind: 'shard.assign', topic: 'orders', shard: 1, leader: 1, replicas: [1] });
    h.ok({ kind: 'topic.delete', name: 'orders' });
    assert.deepEqual(
      h.changes.map((c) => [c.index, c.event.type]),
      [
        [1, 'node.registered'],
        [3, 'topic.created'],
        [3, 'shard.created'],
        [4, 'shard.assigned'],
        [5, 'topic.deleted'],
        [5, 'shard.removed'],
      ],
    );
  });

  it('lets listeners read a consistent view and unsubscribe, and isolates a throwing listener', () => {
    const errors: string[] = [];
    const m = createMetaStateMachine({ onError: (_err, where) => errors.push(where) });
    const seen: number[] = [];
    m.subscribe(() => {
      throw new Error('listener bug');
    });
    const off = m.subscribe((c) => {
      if (c.event.type === 'topic.created') seen.push(m.view.shards.forTopic(c.event.topic.name).length);
    });
    const r = m.apply(1, encodeCommand({ kind: 'topic.create', name: 't', shards: 3, engine: 'file', nowMs: T0 }));
    assert.equal(r.ok, true);
    assert.deepEqual(seen, [3], 'shards exist by the time topic.created is delivered');
    assert.deepEqual(errors, ['listener for topic.created', 'listener for shard.created']);
    off();
    m.apply(2, encodeCommand({ kind: 'topic.create', name: 'u', shards: 1, engine: 'file', nowMs: T0 }));
    assert.deepEqual(seen, [3]);
  });

  it('refuses a record list with a duplicate name or a command kind claimed twice', () => {
    assert.throws(() => new MetaStateMachine([nodesRecord, nodesRecord]), /listed twice/);
    const thief = defineRecord({
      name: 'thief',
      commands: ['node.remove'],
      initial: () => 0,
      validate: () => ({ kind: 'node.remove' }),
      apply: () => ({ result: { ok: true }, events: [] }),
      snapshot: () => 0,
      restore: () => 0,
      query: () => ({}),
    });
    assert.throws(() => new MetaStateMachine([nodesRecord, thief]), /claimed by both 'nodes' and 'thief'/);
  });

  it('reports an exception thrown by a record type as an internal error instead of throwing', () => {
    const buggy = defineRecord({
      name: 'buggy',
      commands: ['buggy.do'],
      initial: () => ({ n: 0 }),
      validate: (raw: unknown) => {
        if (typeof raw === 'object' && raw !== null && 'boom' in raw) throw new TypeError('validator bug');
        return { kind: 'buggy.do' as const };
      },
      apply: (): never => {
        throw new RangeError('apply bug');
      },
      snapshot: (s: { n: number }) => s.n,
      restore: () => ({ n: 0 }),
      query: () => ({}),
    });
    const m = new MetaStateMachine([...defaultRecords, buggy]);
    for (const cmd of [{ kind: 'buggy.do', boom: 1 }, { kind: 'buggy.do' }]) {
      const r = m.apply(m.appliedIndex + 1, new TextEncoder().encode(JSON.stringify(cmd)));
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.code, 'internal');
        assert.match(r.message, /bug/);
      }
    }
  });

  it('lists every command kind of the default record types', () => {
    const kinds = createMetaStateMachine().commandKinds();
    assert.equal(new Set(kinds).size, kinds.length);
    for (const k of ['node.register', 'topic.create', 'shard.assign', 'group.commitOffsets', 'user.create', 'acl.add', 'config.set', 'mqtt.session.put', 'mqtt.retained.set', 'journal.segment.create']) {
      assert.ok(kinds.includes(k), k);
    }
  });
});

describe('typed commands and views', () => {
  it('encodes typed commands; the compiler rejects wrong ones', () => {
    const data = encodeCommand({ kind: 'shard.assign', topic: 't', shard: 0, leader: 1, replicas: [1] });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(data)), { kind: 'shard.assign', topic: 't', shard: 0, leader: 1, replicas: [1] });
    if (data.length < 0) {
      // Compile-time checks only (never run).
      // @ts-expect-error unknown kind
      encodeCommand({ kind: 'topic.explode', name: 'x' });
      // @ts-expect-error missing nowMs
      encodeCommand({ kind: 'topic.create', name: 'x', shards: 1, engine: 'file' });
      // @ts-expect-error wrong engine
      encodeCommand({ kind: 'topic.create', name: 'x', shards: 1, engine: 'tape', nowMs: 0 });
    }
  });

  it('hands out frozen records that readers cannot change', () => {
    const h = new Harness();
    h.ok({ kind: 'topic.create', name: 't', shards: 1, engine: 'file', config: { a: '1' }, nowMs: T0 });
    const t = h.view.topics.get('t');
    assert.ok(t);
    assert.throws(() => Object.assign(t, { shards: 9 }), TypeError);
    assert.throws(() => Object.assign(t.config, { a: '2' }), TypeError);
    const s = h.view.shards.get('t', 0);
    assert.ok(s);
    assert.throws(() => (s.replicas as number[]).push(3), TypeError);
    assert.equal(h.view.topics.get('t')?.shards, 1);
  });
});
