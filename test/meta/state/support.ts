/** Shared helpers for the meta state machine tests. */
import assert from 'node:assert/strict';
import { encodeCommand, type MetaCommand } from '../../../src/meta/state/commands.js';
import { createMetaStateMachine, type DefaultMetaStateMachine, type MetaEvent } from '../../../src/meta/state/default-records.js';
import type { MetaChange } from '../../../src/meta/state/machine.js';
import type { ApplyResult } from '../../../src/meta/state/result.js';

/** A machine plus a log cursor, so tests just say what to apply. */
export class Harness {
  readonly machine: DefaultMetaStateMachine;
  readonly changes: MetaChange<MetaEvent>[] = [];
  index = 0;

  constructor(machine: DefaultMetaStateMachine = createMetaStateMachine()) {
    this.machine = machine;
    this.index = machine.appliedIndex;
    machine.subscribe((c) => this.changes.push(c));
  }

  get view(): DefaultMetaStateMachine['view'] {
    return this.machine.view;
  }

  run(cmd: MetaCommand): ApplyResult {
    return this.machine.apply(++this.index, encodeCommand(cmd));
  }

  /** Apply raw bytes or an arbitrary (untyped) object, for malformed-input tests. */
  raw(data: Uint8Array | object): ApplyResult {
    const bytes = data instanceof Uint8Array ? data : new TextEncoder().encode(JSON.stringify(data));
    return this.machine.apply(++this.index, bytes);
  }

  /** Applies and asserts success, returning the result's value. */
  ok(cmd: MetaCommand): unknown {
    const r = this.run(cmd);
    if (!r.ok) assert.fail(`${cmd.kind} failed: ${r.code}: ${r.message}`);
    return r.value;
  }

  /** Applies and asserts the given error code; also asserts state did not change and no event was published. */
  fails(cmd: MetaCommand | object, code: string, message?: RegExp): string {
    const before = stateBytes(this.machine);
    const events = this.changes.length;
    const r = this.raw(cmd);
    if (r.ok) assert.fail(`expected ${code}, got ok`);
    assert.equal(r.code, code, r.message);
    if (message) assert.match(r.message, message);
    assert.equal(stateBytes(this.machine), before, 'a rejected command must not change state');
    assert.equal(this.changes.length, events, 'a rejected command must not publish events');
    return r.message;
  }

  /** Event types published since the given change count. */
  eventTypes(since = 0): string[] {
    return this.changes.slice(since).map((c) => c.event.type);
  }
}

/** The snapshot without appliedIndex: "did state change?" ignoring the log position. */
export function stateBytes(machine: DefaultMetaStateMachine): string {
  const doc = JSON.parse(new TextDecoder().decode(machine.snapshot())) as { appliedIndex?: number };
  delete doc.appliedIndex;
  return JSON.stringify(doc);
}

export const T0 = 1_700_000_000_000;

/** A history touching every record type, including rejected commands and a delete. */
export function sampleHistory(): MetaCommand[] {
  return [
    { kind: 'node.register', nodeId: 2, roles: ['broker', 'journal'], grpcAddr: 'n2:1228', httpAddr: 'n2:58080', nowMs: T0 },
    { kind: 'node.register', nodeId: 1, roles: ['meta', 'broker'], grpcAddr: 'n1:1228', listeners: [{ name: 'kafka', protocol: 'kafka', address: 'n1:9092' }], nowMs: T0 },
    { kind: 'node.setState', nodeId: 2, state: 'suspect', nowMs: T0 + 3000 },
    { kind: 'topic.create', name: 'orders', shards: 3, engine: 'journal', config: { z: '1', a: '2' }, nowMs: T0 },
    { kind: 'topic.create', name: 'orders', shards: 3, engine: 'journal', nowMs: T0 }, // rejected
    { kind: 'topic.create', name: 'tmp', shards: 1, engine: 'memory', retentionMs: 1000, protocol: 'mqtt', nowMs: T0 },
    { kind: 'shard.assign', topic: 'orders', shard: 2, leader: 1, replicas: [1, 2] },
    { kind: 'topic.addShards', name: 'orders', shards: 4 },
    { kind: 'group.commitOffsets', group: 'g1', offsets: [{ topic: 'orders', shard: 0, offset: 5, metadata: 'x' }, { topic: 'tmp', shard: 0, offset: 1 }], nowMs: T0 },
    { kind: 'topic.delete', name: 'tmp' },
    { kind: 'user.create', username: 'alice', passwordHash: 'hash', superuser: false },
    { kind: 'acl.add', principal: 'alice', resourceType: 'topic', pattern: 'ord', patternType: 'prefix', operation: 'read', permission: 'allow' },
    { kind: 'config.set', key: 'mqtt.max_qos', value: '1' },
    { kind: 'mqtt.session.put', clientId: 'c1', expiryIntervalSec: 60, nodeId: 1, connected: true, lastSeenMs: T0, subscriptions: [{ filter: 'a/#', qos: 1 }] },
    { kind: 'mqtt.retained.set', topic: 'a/b', shard: '$retained-0', offset: 3, nowMs: T0 },
    { kind: 'journal.segment.create', shard: 'orders-0', segment: 0, ensemble: [1, 2], writeQuorum: 2, ackQuorum: 1, epoch: 1 },
    { kind: 'journal.segment.seal', shard: 'orders-0', segment: 0, lastEntry: 41 },
    { kind: 'journal.segment.create', shard: 'orders-0', segment: 1, ensemble: [2, 1], writeQuorum: 2, ackQuorum: 2, epoch: 1, startOffset: 42 },
  ];
}

export function replay(h: Harness, cmds: readonly MetaCommand[]): ApplyResult[] {
  return cmds.map((c) => h.run(c));
}
