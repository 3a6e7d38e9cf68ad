import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../../src/broker/kafka/protocol/errors.js';
import { ProducerIdAllocator, ProducerStateTable } from '../../../src/broker/kafka/producer-state.js';
import { restoreProducerState } from '../../../src/broker/kafka/producer-state-log.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { encodeRecordBatch } from '../../../src/broker/kafka/records/index.js';
import { after } from 'node:test';
import { makeRoot, openEngine, spec } from '../../storage/file/support.js';

const { newDir, cleanup } = makeRoot('robust-producer-state-');
after(cleanup);

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

  it('is rebuilt from the log for a new leader epoch; batches wait for it in order', async () => {
    const t = new ProducerStateTable();
    let restores = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = t.readyFor('s-0', 1, async () => {
      restores++;
      await gate;
      t.appended('s-0', 7n, 0, 0, 5, 100n, 1);
    });
    assert.notEqual(first, true, 'not ready before the log was read');
    assert.equal(t.readyFor('s-0', 1, async () => restores++), first, 'a second batch waits on the same read');
    release();
    await first;
    assert.equal(restores, 1);
    assert.equal(t.readyFor('s-0', 1, async () => restores++), true);
    assert.deepEqual(t.check('s-0', 7n, 0, 0, 5), { kind: 'duplicate', baseOffset: 100n }, 'what the log held is known');
    // Leadership moved and came back: what this node knew is stale and read again.
    const again = t.readyFor('s-0', 2, async () => restores++);
    assert.notEqual(again, true);
    assert.deepEqual(t.check('s-0', 7n, 0, 0, 5), { kind: 'append' }, 'the stale state is gone');
    await again;
    assert.equal(restores, 2);
  });

  it('restoreProducerState reads the producers\' last batches from the stored batch headers', async () => {
    const engine = await openEngine(newDir());
    await engine.createShard(spec('p-0'));
    const batch = (producerId: bigint, baseSequence: number, n: number) => {
      const w = new KafkaWriter();
      const records = Array.from({ length: n }, (_, i) => ({ offset: BigInt(i), timestamp: 1, key: null, value: Buffer.from(`v${baseSequence + i}`), headers: [] }));
      encodeRecordBatch(w, { baseOffset: 0n, compression: 'none', records, producerId, producerEpoch: 3, baseSequence });
      return { bytes: w.toBuffer(), count: n, firstTimestamp: 1, maxTimestamp: 1 };
    };
    await engine.appendBatches('p-0', [batch(7n, 0, 4)]);
    await engine.appendBatches('p-0', [batch(-1n, -1, 2)]); // not idempotent: nothing to remember
    await engine.appendBatches('p-0', [batch(7n, 4, 3), batch(9n, 0, 1)]);
    const t = new ProducerStateTable();
    assert.equal(await restoreProducerState(t, engine, 'p-0', 1), 3);
    assert.deepEqual(t.check('p-0', 7n, 3, 0, 4), { kind: 'duplicate', baseOffset: 0n });
    assert.deepEqual(t.check('p-0', 7n, 3, 4, 3), { kind: 'duplicate', baseOffset: 6n });
    assert.deepEqual(t.check('p-0', 9n, 3, 0, 1), { kind: 'duplicate', baseOffset: 9n });
    assert.deepEqual(t.check('p-0', 7n, 3, 7, 1), { kind: 'append' });
    assert.equal(t.check('p-0', 7n, 3, 9, 1).kind, 'error', 'a gap after what the log held');
    await engine.close();
  });
});
