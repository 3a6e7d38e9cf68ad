import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../../src/broker/kafka/protocol/errors.js';
import { ProducerIdAllocator, ProducerStateTable } from '../../../src/broker/kafka/producer-state.js';

describe('idempotent producer state', () => {
  it('accepts consecutive batches and answers a retried one with its first offset', () => {
    const t = new ProducerStateTable();
    assert.deepEqual(t.check('s-0', 7n, 0, 0, 5), { kind: 'append' });
    t.appended('s-0', 7n, 0, 0, 5, 100n, 1);
    assert.deepEqual(t.check('s-0', 7n, 0, 5, 3), { kind: 'append' });
    t.appended('s-0', 7n, 0, 5, 3, 105n, 2);
    assert.deepEqual(t.check('s-0', 7n, 0, 0, 5), { kind: 'duplicate', baseOffset: 100n });
    assert.deepEqual(t.check('s-0', 7n, 0, 5, 3), { kind: 'duplicate', baseOffset: 105n });
  });

  it('refuses a gap in the sequence and an old epoch, and a new epoch must start at 0', () => {
    const t = new ProducerStateTable();
    t.appended('s-0', 7n, 1, 0, 2, 0n, 1);
    const gap = t.check('s-0', 7n, 1, 5, 1);
    assert.equal(gap.kind === 'error' && gap.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const old = t.check('s-0', 7n, 0, 2, 1);
    assert.equal(old.kind === 'error' && old.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
    const badNew = t.check('s-0', 7n, 2, 3, 1);
    assert.equal(badNew.kind === 'error' && badNew.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.deepEqual(t.check('s-0', 7n, 2, 0, 1), { kind: 'append' });
  });

  it('keeps the last five batches only, per partition, and wraps sequences at 2^31-1', () => {
    const t = new ProducerStateTable();
    for (let i = 0; i < 7; i++) t.appended('s-0', 1n, 0, i, 1, BigInt(i), 1);
    assert.deepEqual(t.check('s-0', 1n, 0, 6, 1), { kind: 'duplicate', baseOffset: 6n });
    // Batch 1 fell out of the cache: it is now a sequence error, not a duplicate.
    assert.equal(t.check('s-0', 1n, 0, 1, 1).kind, 'error');
    // Another partition is independent.
    assert.deepEqual(t.check('s-1', 1n, 0, 1, 1), { kind: 'append' });
    t.appended('s-2', 1n, 0, 0x7ffffffe, 2, 0n, 1);
    assert.deepEqual(t.check('s-2', 1n, 0, 0, 1), { kind: 'append' });
  });

  it('expires silent producers', () => {
    const t = new ProducerStateTable(1000);
    t.appended('s-0', 1n, 0, 0, 1, 0n, 0);
    t.appended('s-0', 2n, 0, 0, 1, 1n, 900);
    assert.equal(t.expire(1500), 1);
    assert.equal(t.size, 1);
  });

  it('hands out distinct producer ids, distinct across nodes and restarts', () => {
    let clock = 1_700_000_000_000;
    const a = new ProducerIdAllocator(1, () => clock);
    const ids = new Set([a.allocate(), a.allocate(), a.allocate()]);
    clock += 1;
    const restarted = new ProducerIdAllocator(1, () => clock);
    ids.add(restarted.allocate());
    ids.add(new ProducerIdAllocator(2, () => clock).allocate());
    assert.equal(ids.size, 5);
    for (const id of ids) assert.ok(id > 0n && id < 2n ** 63n);
  });
});
