/**
 * The pure parts of `robust-bench kafka`: option parsing, the pre-encoded Produce request
 * templates (decoded back with the broker's codecs: CRCs, stamps, sequences), the record
 * walker of Fetch answers, and how records and partitions are split over clients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiKey, APIS } from '../../src/broker/kafka/protocol/apis.js';
import { KafkaReader } from '../../src/broker/kafka/protocol/reader.js';
import type { ProduceRequest } from '../../src/broker/kafka/protocol/requests/produce.js';
import { KafkaWriter } from '../../src/broker/kafka/protocol/writer.js';
import { decodeRecords, encodeRecordBatch, type Compression } from '../../src/broker/kafka/records/index.js';
import { UsageError } from '../../src/loadgen/errors.js';
import { CompressedProducer, ProduceTemplate, nextOffsetOf, walkBatches, type ProduceShape } from '../../src/loadgen/kafka/batch.js';
import { defaultBatchSize, parseBroker, type KafkaBenchOptions } from '../../src/loadgen/kafka/options.js';
import { planLanes, split } from '../../src/loadgen/kafka/run.js';
import { parseCommand } from '../../src/loadgen/options.js';
import { readStamp } from '../../src/loadgen/payload.js';

function kafka(...argv: string[]): KafkaBenchOptions {
  const c = parseCommand(['kafka', ...argv]);
  assert.equal(c.kind, 'run-kafka');
  return (c as { options: KafkaBenchOptions }).options;
}

function usage(argv: string[], pattern: RegExp): void {
  assert.throws(
    () => parseCommand(['kafka', ...argv]),
    (err: unknown) => err instanceof UsageError && pattern.test(err.message),
    `expected a UsageError matching ${pattern} for ${argv.join(' ')}`,
  );
}

/** Decodes a Produce frame (size prefix, header v1, body) with the broker's codec. */
function decodeProduce(frame: Buffer, version: number): { corr: number; req: ProduceRequest } {
  assert.equal(frame.readInt32BE(0), frame.length - 4, 'size prefix');
  const r = new KafkaReader(frame, 4);
  assert.equal(r.int16(), ApiKey.Produce);
  assert.equal(r.int16(), version);
  const corr = r.int32();
  assert.equal(r.nullableString(), 'robust-bench');
  const req = APIS.get(ApiKey.Produce)!.request[version]!.decode(r) as ProduceRequest;
  assert.equal(r.pos, frame.length, 'nothing after the body');
  return { corr, req };
}

const shape = (o: Partial<ProduceShape> = {}): ProduceShape => ({
  version: 7,
  acks: 1,
  timeoutMs: 30_000,
  clientId: 'robust-bench',
  topic: 'bench-t',
  partitions: [0, 1],
  records: 5,
  recordSize: 40,
  compression: 'none',
  ...o,
});

function checkRequest(frame: Buffer, s: ProduceShape, corr: number, sendNs: number, nowMs: number, key: number, firstSeqs: number[]): void {
  const { corr: c, req } = decodeProduce(frame, s.version);
  assert.equal(c, corr);
  assert.equal(req.acks, s.acks);
  assert.equal(req.transactionalId, null);
  assert.equal(req.topicData.length, 1);
  assert.equal(req.topicData[0]!.name, s.topic);
  const pd = req.topicData[0]!.partitionData;
  assert.deepEqual(
    pd.map((p) => p.index),
    s.partitions,
  );
  pd.forEach((p, slot) => {
    const batches = decodeRecords(p.records!); // verifies the CRC-32C
    assert.equal(batches.length, 1);
    const b = batches[0]!;
    assert.equal(b.magic, 2);
    assert.equal(b.compression, s.compression);
    assert.equal(b.records.length, s.records);
    assert.equal(b.baseTimestamp, nowMs);
    assert.equal(b.maxTimestamp, nowMs);
    b.records.forEach((rec, i) => {
      assert.equal(rec.offset, BigInt(i));
      assert.equal(rec.timestamp, nowMs);
      assert.equal(rec.key, null);
      assert.equal(rec.value!.length, s.recordSize);
      const st = readStamp(rec.value!)!;
      assert.equal(st.timeNs, sendNs);
      assert.equal((st.runTag << 16) | st.publisher, key);
      assert.equal(st.seq, firstSeqs[slot]! + i);
      assert.ok(rec.value!.subarray(16).every((x) => x === 0x61), 'filler');
    });
  });
}

describe('robust-bench kafka options', () => {
  it('has the documented defaults', () => {
    const o = kafka('produce');
    assert.deepEqual(o.brokers, [{ host: '127.0.0.1', port: 9092 }]);
    assert.equal(o.topic, 'robust-bench');
    assert.equal(o.partitions, undefined);
    assert.equal(o.records, undefined);
    assert.equal(o.durationS, 10);
    assert.equal(o.warmupS, 1);
    assert.equal(o.recordSize, 100);
    assert.equal(o.batchSize, 1000);
    assert.equal(o.acks, 1);
    assert.equal(o.compression, 'none');
    assert.equal(o.producers, 1);
    assert.equal(o.inFlight, 5);
    assert.equal(o.rate, 0);
    assert.equal(o.output, 'table');
    assert.equal(kafka('consume').from, 'earliest');
    assert.equal(kafka('produce', '--record-size', '1024').batchSize, defaultBatchSize(1024));
    assert.ok(defaultBatchSize(1024) * 1036 <= 256 * 1024);
  });

  it('reads every option', () => {
    const o = kafka('produce', '--brokers', 'a:1,[::1]:2,b', '--topic', 'x.y-z', '--partitions', '4', '--records', '1_000', '--record-size', '64', '--batch-size', '7', '--acks', 'all', '--compression', 'zstd', '--producers', '3', '--in-flight', '9', '--rate', '500', '--output', 'json', '--broker-pid', '12');
    assert.deepEqual(o.brokers, [{ host: 'a', port: 1 }, { host: '::1', port: 2 }, { host: 'b', port: 9092 }]);
    assert.deepEqual([o.topic, o.partitions, o.records, o.recordSize, o.batchSize, o.acks, o.compression, o.producers, o.inFlight, o.rate, o.output, o.brokerPid], ['x.y-z', 4, 1000, 64, 7, -1, 'zstd', 3, 9, 500, 'json', 12]);
    assert.equal(o.warmupS, 0, 'no warm-up with --records');
    const c = kafka('consume', '--consumers', '2', '--from', 'latest', '--fetch-min-bytes', '100', '--fetch-max-wait', '50', '--fetch-max-bytes', '1000', '--duration', '3', '--warmup', '0.5');
    assert.deepEqual([c.consumers, c.from, c.fetchMinBytes, c.fetchMaxWaitMs, c.fetchMaxBytes, c.durationS, c.warmupS], [2, 'latest', 100, 50, 1000, 3, 0.5]);
    assert.equal(kafka('produce', '--acks', '0').acks, 0);
    assert.equal(kafka('produce', '--acks=-1').acks, -1);
  });

  it('refuses bad input with one line', () => {
    usage(['produce', '--acks', 'some'], /--acks must be 0, 1 or all/);
    usage(['produce', '--compression', 'brotli'], /--compression must be one of none, gzip, snappy, lz4, zstd/);
    usage(['produce', '--record-size', '15'], /--record-size 15 is too small/);
    usage(['produce', '--records', '0'], /--records must be at least 1/);
    usage(['produce', '--records', '5', '--duration', '1'], /not both/);
    usage(['produce', '--records', '5', '--warmup', '1'], /--warmup applies with --duration/);
    usage(['produce', '--topic', 'a/b'], /not a valid Kafka topic name/);
    usage(['produce', '--brokers', 'h:0'], /--brokers must be at least 1/);
    usage(['produce', '--from', 'latest'], /--from applies to consume, not produce/);
    usage(['consume', '--acks', '1'], /--acks applies to produce, not consume/);
    usage(['consume', '--from', 'middle'], /--from must be earliest or latest/);
    usage(['produce', '--replication-factor', '0'], /--replication-factor must be -1/);
    usage([], /missing workload: produce, consume/);
    usage(['produce', 'extra'], /unexpected argument "extra"/);
    usage(['produce', '--bogus'], /unknown option --bogus/);
    assert.deepEqual(parseCommand(['kafka', '--help']), { kind: 'help', protocol: 'kafka' });
    assert.deepEqual(parseBroker('[fe80::1]'), { host: 'fe80::1', port: 9092 });
  });
});

describe('robust-bench kafka produce templates', () => {
  it('ProduceTemplate: a patched copy decodes with the broker codecs (CRC, timestamps, stamps, sequences)', () => {
    const s = shape();
    const t = new ProduceTemplate(s);
    assert.equal(t.payloadBytes, 2 * 5 * 40);
    const seqs = new Float64Array([0, 1000]);
    const key = (0x1234 << 16) | 7;
    const f1 = t.acquire();
    t.fill(f1, 42, 1_700_000_000_123, 123_456_789_012_345, key, seqs);
    checkRequest(f1, s, 42, 123_456_789_012_345, 1_700_000_000_123, key, [0, 1000]);
    assert.deepEqual([...seqs], [5, 1005], 'sequences advanced per partition');
    // A second send on another copy, then the first copy reused after release.
    const f2 = t.acquire();
    assert.notEqual(f2, f1);
    t.fill(f2, 43, 1_700_000_000_999, 223_456_789_012_345, key, seqs);
    checkRequest(f2, s, 43, 223_456_789_012_345, 1_700_000_000_999, key, [5, 1005]);
    t.release(f1);
    assert.equal(t.acquire(), f1);
  });

  it('ProduceTemplate with many records (two-byte offset deltas) and Produce v3', () => {
    const s = shape({ version: 3, partitions: [2], records: 300, recordSize: 16 });
    const t = new ProduceTemplate(s);
    const seqs = new Float64Array([0x1_0000_0000 - 2]); // the stamp's sequence wraps at 2^32
    const f = t.acquire();
    t.fill(f, 1, 5, 9, 1, seqs);
    const { req } = decodeProduce(f, 3);
    const recs = decodeRecords(req.topicData[0]!.partitionData[0]!.records!)[0]!.records;
    assert.equal(recs.length, 300);
    assert.deepEqual(
      recs.slice(0, 3).map((r) => readStamp(r.value!)!.seq),
      [0xfffffffe, 0xffffffff, 0],
    );
  });

  for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as Compression[]) {
    it(`CompressedProducer (${compression}) builds requests the broker codecs read back`, () => {
      const s = shape({ compression, records: 20, partitions: [3, 1, 0] });
      const p = new CompressedProducer(s);
      const seqs = new Float64Array([10, 20, 30]);
      const f = p.build(7, 1_700_000_000_000, 99_000_000_000, 5, seqs);
      checkRequest(f, s, 7, 99_000_000_000, 1_700_000_000_000, 5, [10, 20, 30]);
      assert.deepEqual([...seqs], [30, 40, 50]);
    });
  }
});

describe('robust-bench kafka record walker', () => {
  function batches(compression: Compression): Buffer {
    const w = new KafkaWriter();
    for (const base of [100n, 103n]) {
      encodeRecordBatch(w, {
        baseOffset: base,
        compression,
        records: [0, 1, 2].map((i) => ({ offset: base + BigInt(i), timestamp: 1000 + i, key: i === 1 ? Buffer.from('key') : null, value: i === 2 ? null : Buffer.from(`value-${base}-${i}`), headers: i === 0 ? [{ key: 'h', value: Buffer.from('v') }] : [] })),
      });
    }
    return w.buf.subarray(0, w.pos);
  }

  for (const compression of ['none', 'lz4'] as Compression[]) {
    it(`visits every value of complete batches (${compression}), stops at a truncated one`, () => {
      const buf = batches(compression);
      const seen: Array<string | null> = [];
      const w = walkBatches(buf, (d, at, len) => seen.push(len < 0 ? null : d.toString('utf8', at, at + len)));
      assert.deepEqual(seen, ['value-100-0', 'value-100-1', null, 'value-103-0', 'value-103-1', null]);
      assert.deepEqual([w.records, w.nextOffset, w.bytes], [6, 106, buf.length]);
      assert.equal(nextOffsetOf(buf), 106);
      const cut = buf.subarray(0, buf.length - 3);
      const seen2: number[] = [];
      const w2 = walkBatches(cut, (_d, _at, len) => seen2.push(len));
      assert.deepEqual([w2.records, w2.nextOffset, seen2.length], [3, 103, 3]);
      assert.equal(nextOffsetOf(cut), 103);
      assert.equal(nextOffsetOf(Buffer.alloc(0)), -1);
    });
  }
});

describe('robust-bench kafka plan', () => {
  it('splits records near-evenly', () => {
    assert.deepEqual(split(10, 3), [4, 3, 3]);
    assert.deepEqual(split(2, 4), [1, 1, 0, 0]);
  });

  it('producers write every partition, a lane per leader; --records spread over producers and partitions', () => {
    const parts = [0, 1, 2].map((p) => ({ partition: p, leaderId: p === 2 ? 2 : 1, host: p === 2 ? 'b' : 'a', port: 9092 }));
    const o = kafka('produce', '--records', '11', '--producers', '2');
    const plan = planLanes(o, parts);
    assert.equal(plan.length, 2);
    assert.deepEqual(plan[0]!.lanes, [
      { host: 'a', port: 9092, partitions: [0, 1], quota: 4 },
      { host: 'b', port: 9092, partitions: [2], quota: 2 },
    ]);
    assert.deepEqual(
      plan[1]!.lanes.map((l) => l.quota),
      [4, 1],
    );
    const total = plan.flatMap((c) => c.lanes).reduce((a, l) => a + (l.quota ?? 0), 0);
    assert.equal(total, 11);
    assert.equal(planLanes(kafka('produce'), parts)[0]!.lanes[0]!.quota, undefined, 'no quota with --duration');
  });

  it('consumers share the partitions (p % consumers), with their start offsets', () => {
    const parts = [0, 1, 2].map((p) => ({ partition: p, leaderId: 1, host: 'a', port: 1 }));
    const plan = planLanes(kafka('consume', '--consumers', '2'), parts, new Map([[0, 5], [1, 6], [2, 7]]));
    assert.deepEqual(plan, [
      { index: 0, lanes: [{ host: 'a', port: 1, partitions: [0, 2], offsets: [5, 7] }] },
      { index: 1, lanes: [{ host: 'a', port: 1, partitions: [1], offsets: [6] }] },
    ]);
  });
});
