/**
 * Fuzzing the record decoder: any bytes give batches or one of the records
 * errors (CorruptRecordError, UnsupportedCompressionError,
 * DecompressedTooLargeError) — never a RangeError or anything else. Damage
 * goes in at every depth: the batch framing, past a recomputed CRC, and
 * inside the compressed payload and after decompression. Plus: arbitrary
 * records survive encode → decode in every magic and codec.
 *
 * KAFKA_RECORDS_RUNS=<factor> multiplies the run counts (default 1).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from '@node-rs/crc32';
import fc from 'fast-check';
import { crc32c } from '../../../src/common/crc.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import {
  compress,
  compressionCode,
  decodeRecords,
  encodeMessageSet,
  encodeRecordBatch,
  isRecordsError,
  type Compression,
  type DecodeRecordsOptions,
  type KafkaRecord,
  type RecordBatch,
} from '../../../src/broker/kafka/records/index.js';

const factor = Number(process.env.KAFKA_RECORDS_RUNS) > 0 ? Number(process.env.KAFKA_RECORDS_RUNS) : 1;
const runs = (n: number): number => Math.max(1, Math.round(n * factor));

const CODECS: Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
/** Small, so that a decompression bomb among the inputs is cheap to refuse. */
const LIMIT = 1 << 20;

/** Decodes; the only acceptable failure is a records error. */
function safeDecode(buf: Buffer, opts: DecodeRecordsOptions = {}): RecordBatch[] | Error {
  try {
    const batches = decodeRecords(buf, { maxDecompressedBytes: LIMIT, ...opts });
    for (const b of batches) {
      assert.ok(Array.isArray(b.records));
      assert.ok(b.magic === 0 || b.magic === 1 || b.magic === 2);
    }
    return batches;
  } catch (err) {
    if (!isRecordsError(err)) throw err;
    assert.ok([2, 10, 76].includes(err.errorCode), `error code ${err.errorCode}`);
    return err;
  }
}

function allWays(buf: Buffer): void {
  safeDecode(buf);
  safeDecode(buf, { verifyCrc: false });
  safeDecode(buf, { verifyCrc: false, allowPartial: true });
}

const arbBytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a.buffer, a.byteOffset, a.length));

const arbRecords: fc.Arbitrary<KafkaRecord[]> = fc
  .record({
    base: fc.bigInt({ min: 0n, max: 1n << 50n }),
    items: fc.array(
      fc.record({
        gap: fc.integer({ min: 1, max: 3 }),
        timestamp: fc.integer({ min: -(2 ** 44), max: 2 ** 44 }),
        key: fc.option(arbBytes(40), { nil: null }),
        value: fc.option(arbBytes(200), { nil: null }),
        headers: fc.array(fc.record({ key: fc.string({ unit: 'grapheme', maxLength: 8 }), value: fc.option(arbBytes(20), { nil: null }) }), { maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 25 },
    ),
  })
  .map(({ base, items }) => {
    let offset = base;
    return items.map((it) => {
      const r: KafkaRecord = { offset, timestamp: it.timestamp, key: it.key, value: it.value, headers: it.headers.map((h) => ({ key: h.key, value: h.value })) };
      offset += BigInt(it.gap);
      return r;
    });
  });

const arbCodec = fc.constantFrom(...CODECS);
const arbMagic = fc.constantFrom<0 | 1 | 2>(0, 1, 2);

function encode(magic: 0 | 1 | 2, records: KafkaRecord[], codec: Compression): Buffer {
  const w = new KafkaWriter(64);
  if (magic === 2) encodeRecordBatch(w, { baseOffset: records[0]!.offset, records, compression: codec });
  else encodeMessageSet(w, magic, records, codec);
  return w.toBuffer();
}

const arbMutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('bit' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
);
type Mutation = typeof arbMutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(buf: Buffer, muts: Mutation[], from = 0): Buffer {
  let b = Buffer.from(buf);
  for (const m of muts) {
    const span = b.length - from;
    if (span <= 0) break;
    const at = from + (m.at % span);
    switch (m.kind) {
      case 'set':
        b[at] = m.value;
        break;
      case 'bit':
        b[at]! ^= 1 << m.value;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.value]), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

/** Recomputes the checksum of the first entry (v2: CRC-32C; v0/v1: CRC-32) so damage reaches the parser. */
function fixFirstCrc(b: Buffer): Buffer {
  if (b.length < 17) return b;
  const size = b.readInt32BE(8);
  const end = 12 + size;
  if (size < 0 || end > b.length) return b;
  if (b[16] === 2) {
    if (end >= 21) b.writeUInt32BE(crc32c(b.subarray(21, end)), 17);
  } else if (end >= 16) {
    b.writeUInt32BE(crc32(b.subarray(16, end)) >>> 0, 12);
  }
  return b;
}

describe('kafka records fuzz', () => {
  it('arbitrary bytes never throw anything but records errors', () => {
    fc.assert(
      fc.property(arbBytes(300), (buf) => allWays(buf)),
      { numRuns: runs(5000) },
    );
  });

  it('plausible headers with random bodies (CRC fixed) never throw anything but records errors', () => {
    fc.assert(
      fc.property(
        fc.record({
          magic: fc.integer({ min: 0, max: 3 }),
          attrs: fc.integer({ min: 0, max: 0x7f }),
          count: fc.integer({ min: -2, max: 40 }),
          body: arbBytes(300),
          slack: fc.integer({ min: -3, max: 3 }),
        }),
        ({ magic, attrs, count, body, slack }) => {
          const head = Buffer.alloc(magic === 2 ? 61 : 18);
          head.writeBigInt64BE(7n, 0);
          head[16] = magic;
          if (magic === 2) {
            head.writeInt16BE(attrs, 21);
            head.writeInt32BE(count, 57);
          } else {
            head[17] = attrs & 0x0f;
          }
          const b = Buffer.concat([head, body]);
          b.writeInt32BE(b.length - 12 + slack, 8);
          allWays(fixFirstCrc(b));
        },
      ),
      { numRuns: runs(4000) },
    );
  });

  it('damaged valid batches (every magic and codec) never throw anything but records errors', () => {
    fc.assert(
      fc.property(arbMagic, arbCodec, arbRecords, fc.array(arbMutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (magic, codec, records, muts, fix) => {
        const buf = encode(magic, records, codec);
        const bad = mutate(buf, muts);
        allWays(fix ? fixFirstCrc(bad) : bad);
      }),
      { numRuns: runs(3000) },
    );
  });

  it('damaged records under intact compression (CRC fixed) never throw anything but records errors', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Compression>('gzip', 'snappy', 'lz4', 'zstd'),
        arbRecords,
        fc.array(arbMutation, { minLength: 1, maxLength: 3 }),
        (codec, records, muts) => {
          const plain = encode(2, records, 'none');
          const recordsBytes = mutate(plain.subarray(61), muts);
          const b = Buffer.concat([plain.subarray(0, 61), compress(codec, recordsBytes)]);
          b.writeInt32BE(b.length - 12, 8);
          b.writeInt16BE(compressionCode(codec), 21);
          b.writeUInt32BE(crc32c(b.subarray(21)), 17);
          safeDecode(b);
        },
      ),
      { numRuns: runs(1500) },
    );
  });

  it('arbitrary records round trip through every magic and codec', () => {
    fc.assert(
      fc.property(arbMagic, arbCodec, arbRecords, (magic, codec, records) => {
        const batches = decodeRecords(encode(magic, records, codec));
        const got = batches.flatMap((b) => b.records);
        const want =
          magic === 2 ? records : records.map((r) => ({ offset: r.offset, timestamp: magic === 0 ? -1 : r.timestamp, key: r.key, value: r.value, headers: [] }));
        assert.deepEqual(got, want);
        assert.ok(batches.every((b) => b.compression === codec));
      }),
      { numRuns: runs(1000) },
    );
  });
});
