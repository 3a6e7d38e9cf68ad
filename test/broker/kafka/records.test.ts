import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { compressSync as snappyCompressSync } from 'snappy';
import { crc32c } from '../../../src/common/crc.js';
import { ErrorCode } from '../../../src/broker/kafka/protocol/errors.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import {
  COMPRESSIONS,
  CorruptRecordError,
  DecompressedTooLargeError,
  UnsupportedCompressionError,
  compress,
  compressionCode,
  compressionFromCode,
  decodeRecords,
  decompress,
  encodeMessageSet,
  encodeRecordBatch,
  isRecordsError,
  type Compression,
  type EncodableRecord,
  type KafkaRecord,
  type RecordBatch,
} from '../../../src/broker/kafka/records/index.js';

const require = createRequire(import.meta.url);

// ---- kafkajs internals -------------------------------------------------------

interface KjsEncoder {
  buffer: Buffer;
}
interface KjsCodec {
  compress(encoder: KjsEncoder): Promise<Buffer>;
  decompress(buf: Buffer): Promise<Buffer>;
}
type KjsLong = { value: bigint };
const KjsLongCls = require('kafkajs/src/utils/long.js') as { fromValue(v: bigint | number | string): KjsLong };
const KjsDecoder = require('kafkajs/src/protocol/decoder.js') as new (buf: Buffer) => unknown;
const { RecordBatch: kjsRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch(opts: Record<string, unknown>): Promise<KjsEncoder>;
};
const kjsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (opts: Record<string, unknown>) => KjsEncoder;
const kjsDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: unknown) => Promise<KjsDecodedBatch>;
const kjsMessageSet = require('kafkajs/src/protocol/messageSet/index.js') as (opts: Record<string, unknown>) => KjsEncoder & { size(): number };
const kjsDecodeMessageSet = require('kafkajs/src/protocol/messageSet/decoder.js') as (d: unknown, size: number) => Promise<KjsMessage[]>;
const kjsCompression = require('kafkajs/src/protocol/message/compression/index.js') as {
  Types: Record<string, number>;
  Codecs: Record<number, () => KjsCodec>;
  lookupCodec(type: number): KjsCodec;
};

interface KjsDecodedRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[] | null>;
}
interface KjsDecodedBatch {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  partitionLeaderEpoch: number;
  inTransaction: boolean;
  records: KjsDecodedRecord[];
}
interface KjsMessage {
  offset: string;
  magicByte: number;
  attributes: number;
  timestamp?: string;
  key: Buffer | null;
  value: Buffer | null;
}

// kafkajs ships gzip only: plug ours in for the others (both directions go through our codecs,
// but the batch framing around them is kafkajs's).
for (const c of ['snappy', 'lz4', 'zstd'] as const) {
  kjsCompression.Codecs[compressionCode(c)] = () => ({
    compress: async (encoder: KjsEncoder) => compress(c, encoder.buffer),
    decompress: async (buf: Buffer) => decompress(c, buf),
  });
}

// ---- helpers -----------------------------------------------------------------

/** Deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

const T0 = 1_700_000_000_000;

/** A varied set of records: nulls, headers (unicode keys, null values), timestamps going backwards and far apart, offset gaps. */
function sampleRecords(n: number, seed = 1, base = 100n): KafkaRecord[] {
  const rand = rng(seed);
  const out: KafkaRecord[] = [];
  let offset = base;
  for (let i = 0; i < n; i++) {
    const kind = i % 7;
    const ts =
      kind === 3
        ? T0 - 5_000 // negative delta
        : kind === 5
          ? T0 + 40 * 86_400_000 // delta beyond 2^27 ms (bigint-free varlong path)
          : T0 + Math.floor(rand() * 1000);
    out.push({
      offset,
      timestamp: ts,
      key: kind === 1 ? null : bytes(rand, Math.floor(rand() * 20)),
      value: kind === 2 ? null : bytes(rand, Math.floor(rand() * 300)),
      headers:
        kind === 4
          ? [
              { key: 'trace-id', value: bytes(rand, 16) },
              { key: 'ключ-🔑', value: Buffer.from('ü') },
              { key: '', value: Buffer.alloc(0) },
              { key: 'nullable', value: null },
            ]
          : kind === 6
            ? [{ key: 'h', value: Buffer.from('v') }]
            : [],
    });
    offset += i % 11 === 10 ? 3n : 1n; // occasional gaps (compacted log)
  }
  return out;
}

function encodeV2(records: readonly EncodableRecord[], compression: Compression = 'none', extra: Record<string, unknown> = {}): Buffer {
  const w = new KafkaWriter(16);
  encodeRecordBatch(w, { baseOffset: records[0]!.offset, records, compression, ...extra });
  return w.toBuffer();
}

function encodeLegacy(magic: 0 | 1, records: readonly EncodableRecord[], compression: Compression = 'none'): Buffer {
  const w = new KafkaWriter(16);
  encodeMessageSet(w, magic, records, compression);
  return w.toBuffer();
}

function allRecords(batches: RecordBatch[]): KafkaRecord[] {
  return batches.flatMap((b) => b.records);
}

/** What a legacy format keeps of a record. */
function legacyView(magic: 0 | 1, r: KafkaRecord): KafkaRecord {
  return { offset: r.offset, timestamp: magic === 0 ? -1 : r.timestamp, key: r.key, value: r.value, headers: [] };
}

/** Recompute a v2 batch's CRC after editing it (so the edit reaches the parser). */
function fixCrc(batch: Buffer, start = 0): Buffer {
  const len = batch.readInt32BE(start + 8);
  batch.writeUInt32BE(crc32c(batch.subarray(start + 21, start + 12 + len)), start + 17);
  return batch;
}

function expectRecordsError(fn: () => unknown, cls: new (...args: never[]) => Error, code: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.ok(isRecordsError(err));
    assert.equal((err as { errorCode: number }).errorCode, code);
    return true;
  });
}

const CODECS: Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

// ---- tests -------------------------------------------------------------------

describe('kafka records: compression', () => {
  it('maps attribute codes both ways and rejects unknown codes with UNSUPPORTED_COMPRESSION_TYPE', () => {
    assert.deepEqual(COMPRESSIONS, CODECS);
    for (const c of CODECS) assert.equal(compressionFromCode(compressionCode(c)), c);
    for (const code of [5, 6, 7]) expectRecordsError(() => compressionFromCode(code), UnsupportedCompressionError, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
  });

  for (const c of CODECS) {
    it(`${c}: round trips empty, small and 1 MiB inputs`, () => {
      for (const input of [Buffer.alloc(0), Buffer.from('hello hello hello'), bytes(rng(7), 1 << 20)]) {
        const z = compress(c, input);
        assert.deepEqual(decompress(c, z), input);
      }
    });

    if (c !== 'none') {
      it(`${c}: bounds the decompressed size`, () => {
        const z = compress(c, Buffer.alloc(200_000, 0x61));
        assert.equal(decompress(c, z, 200_000).length, 200_000);
        expectRecordsError(() => decompress(c, z, 100_000), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
      });

      it(`${c}: garbage is CORRUPT_MESSAGE`, () => {
        for (const junk of [Buffer.alloc(0), Buffer.from([1, 2, 3]), bytes(rng(3), 500)]) {
          assert.throws(
            () => decompress(c, junk),
            (err: unknown) => err instanceof CorruptRecordError || err instanceof DecompressedTooLargeError,
          );
        }
      });
    }
  }

  it('snappy: reads the xerial (snappy-java) framing, one or many chunks', () => {
    const data = bytes(rng(11), 100_000);
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const parts: Buffer[] = [header];
    for (let i = 0; i < data.length; i += 32 * 1024) {
      const chunk = snappyCompressSync(data.subarray(i, i + 32 * 1024));
      const len = Buffer.alloc(4);
      len.writeInt32BE(chunk.length);
      parts.push(len, chunk);
    }
    const framed = Buffer.concat(parts);
    assert.deepEqual(decompress('snappy', framed), data);
    // one chunk
    const one = snappyCompressSync(Buffer.from('kafka'));
    const len = Buffer.alloc(4);
    len.writeInt32BE(one.length);
    assert.equal(decompress('snappy', Buffer.concat([header, len, one])).toString(), 'kafka');
    // the bound covers the chunks together
    expectRecordsError(() => decompress('snappy', framed, 50_000), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
    // truncated chunk
    assert.throws(() => decompress('snappy', framed.subarray(0, framed.length - 10)), CorruptRecordError);
    // and a v2 batch whose payload is xerial-framed decodes
    const records = sampleRecords(50, 5);
    const raw = encodeV2(records, 'none');
    const recordsBytes = raw.subarray(61);
    const chunk = snappyCompressSync(recordsBytes);
    const clen = Buffer.alloc(4);
    clen.writeInt32BE(chunk.length);
    const batch = Buffer.concat([raw.subarray(0, 61), header, clen, chunk]);
    batch.writeInt32BE(batch.length - 12, 8);
    batch.writeInt16BE(compressionCode('snappy'), 21);
    fixCrc(batch);
    const [decoded] = decodeRecords(batch);
    assert.equal(decoded!.compression, 'snappy');
    assert.deepEqual(decoded!.records, records);
  });

  it('zstd: a frame without a content size (streamed) is bounded too', async () => {
    const { CompressStream } = (await import('zstd-napi')) as typeof import('zstd-napi');
    const input = Buffer.alloc(300_000, 0x42);
    const stream = new CompressStream();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise((resolve) => stream.on('end', resolve));
    stream.end(input);
    await done;
    const z = Buffer.concat(chunks);
    assert.deepEqual(decompress('zstd', z), input);
    expectRecordsError(() => decompress('zstd', z, 100_000), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
    assert.throws(() => decompress('zstd', z.subarray(0, z.length - 3)), CorruptRecordError);
  });

  it('zstd: a frame claiming a huge content size is refused before allocating', () => {
    const z = compress('zstd', Buffer.alloc(1000));
    // Frame header: magic (4), FHD, [window], FCS. Rewrite to declare 2^40 bytes via an 8-byte FCS.
    const fake = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, ...z.subarray(z.length - 8)]);
    assert.throws(
      () => decompress('zstd', fake),
      (err: unknown) => err instanceof DecompressedTooLargeError || err instanceof CorruptRecordError,
    );
  });

  it('gzip: concatenated members and a 64 MiB default bound', () => {
    const z = Buffer.concat([compress('gzip', Buffer.from('ab')), compress('gzip', Buffer.from('cd'))]);
    assert.equal(decompress('gzip', z).toString(), 'abcd');
    const bomb = compress('gzip', Buffer.alloc(65 * 1024 * 1024));
    expectRecordsError(() => decompress('gzip', bomb), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
  });
});

describe('kafka records: record batches (magic 2)', () => {
  for (const c of CODECS) {
    it(`${c}: round trips records with nulls, headers, backwards and far timestamps, offset gaps`, () => {
      const records = sampleRecords(200, 2);
      const buf = encodeV2(records, c, { producerId: 4242n, producerEpoch: 3, baseSequence: 17, partitionLeaderEpoch: 9, isTransactional: true });
      const batches = decodeRecords(buf);
      assert.equal(batches.length, 1);
      const b = batches[0]!;
      assert.deepEqual(b.records, records);
      assert.equal(b.magic, 2);
      assert.equal(b.compression, c);
      assert.equal(b.baseOffset, records[0]!.offset);
      assert.equal(b.lastOffsetDelta, Number(records.at(-1)!.offset - records[0]!.offset));
      assert.equal(b.baseTimestamp, records[0]!.timestamp);
      assert.equal(b.maxTimestamp, Math.max(...records.map((r) => r.timestamp)));
      assert.equal(b.producerId, 4242n);
      assert.equal(b.producerEpoch, 3);
      assert.equal(b.baseSequence, 17);
      assert.equal(b.partitionLeaderEpoch, 9);
      assert.equal(b.isTransactional, true);
      assert.equal(b.isControl, false);
      assert.equal(b.timestampType, 0);
      // the header's length field counts everything after itself
      assert.equal(buf.readInt32BE(8), buf.length - 12);
    });

    it(`${c}: a large batch (5000 records, 1 KiB values)`, () => {
      const rand = rng(99);
      const records: KafkaRecord[] = Array.from({ length: 5000 }, (_, i) => ({
        offset: 1_000_000n + BigInt(i),
        timestamp: T0 + i,
        key: Buffer.from(`key-${i}`),
        value: bytes(rand, 1024),
        headers: [],
      }));
      const [b] = decodeRecords(encodeV2(records, c));
      assert.equal(b!.records.length, 5000);
      assert.deepEqual(b!.records, records);
      assert.equal(b!.lastOffsetDelta, 4999);
    });
  }

  it('defaults: no producer id, epoch -1, sequence -1, CreateTime', () => {
    const [b] = decodeRecords(encodeV2(sampleRecords(3)));
    assert.equal(b!.producerId, -1n);
    assert.equal(b!.producerEpoch, -1);
    assert.equal(b!.baseSequence, -1);
    assert.equal(b!.partitionLeaderEpoch, 0);
    assert.equal(b!.isTransactional, false);
  });

  it('LogAppendTime batches give every record the max timestamp; control flag is kept', () => {
    const records = sampleRecords(5);
    const [b] = decodeRecords(encodeV2(records, 'none', { timestampType: 1, isControl: true }));
    assert.equal(b!.timestampType, 1);
    assert.equal(b!.isControl, true);
    for (const r of b!.records) assert.equal(r.timestamp, b!.maxTimestamp);
  });

  it('decodes several concatenated batches, including mixed codecs', () => {
    const w = new KafkaWriter(64);
    const a = sampleRecords(10, 1, 0n);
    const b = sampleRecords(10, 2, 20n);
    const c = sampleRecords(10, 3, 40n);
    encodeRecordBatch(w, { baseOffset: 0n, records: a, compression: 'none' });
    encodeRecordBatch(w, { baseOffset: 20n, records: b, compression: 'zstd' });
    encodeRecordBatch(w, { baseOffset: 40n, records: c, compression: 'lz4' });
    const batches = decodeRecords(w.toBuffer());
    assert.deepEqual(
      batches.map((x) => x.compression),
      ['none', 'zstd', 'lz4'],
    );
    assert.deepEqual(allRecords(batches), [...a, ...b, ...c]);
  });

  it('encodes nothing for no records; decodes an empty buffer as no batches', () => {
    const w = new KafkaWriter(8);
    assert.equal(encodeRecordBatch(w, { baseOffset: 0n, records: [] }), 0);
    assert.equal(w.pos, 0);
    assert.deepEqual(decodeRecords(Buffer.alloc(0)), []);
  });

  it('keys and values are views into the input (no copy) when uncompressed', () => {
    const buf = encodeV2([{ offset: 0n, timestamp: T0, key: Buffer.from('k'), value: Buffer.from('value'), headers: [] }]);
    const [b] = decodeRecords(buf);
    assert.equal(b!.records[0]!.value!.buffer, buf.buffer);
  });

  it('writes at the writer position after earlier content, growing the writer', () => {
    const w = new KafkaWriter(4);
    w.int32(0x01020304);
    const records = sampleRecords(100);
    const n = encodeRecordBatch(w, { baseOffset: 100n, records, compression: 'gzip' });
    assert.equal(w.pos, 4 + n);
    assert.deepEqual(decodeRecords(w.toBuffer().subarray(4))[0]!.records, records);
  });
});

describe('kafka records: errors', () => {
  it('a flipped bit anywhere after the CRC field is CORRUPT_MESSAGE', () => {
    for (const c of CODECS) {
      const buf = encodeV2(sampleRecords(20), c);
      for (const at of [21, 30, 61, buf.length - 1]) {
        const bad = Buffer.from(buf);
        bad[at]! ^= 0x10;
        expectRecordsError(() => decodeRecords(bad), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
      }
    }
  });

  it('verifyCrc: false skips the check', () => {
    const buf = encodeV2(sampleRecords(3));
    buf.writeUInt32BE(0, 17);
    expectRecordsError(() => decodeRecords(buf), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
    assert.equal(decodeRecords(buf, { verifyCrc: false })[0]!.records.length, 3);
  });

  it('a partial trailing batch is corrupt in a Produce request, skipped with allowPartial', () => {
    const w = new KafkaWriter(64);
    encodeRecordBatch(w, { baseOffset: 0n, records: sampleRecords(5, 1, 0n) });
    const first = w.pos;
    encodeRecordBatch(w, { baseOffset: 5n, records: sampleRecords(5, 2, 5n) });
    const full = w.toBuffer();
    for (const cut of [first + 5, first + 20, full.length - 1]) {
      const part = full.subarray(0, cut);
      expectRecordsError(() => decodeRecords(part), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
      assert.equal(decodeRecords(part, { allowPartial: true }).length, 1);
    }
  });

  it('unknown codec (5-7) is UNSUPPORTED_COMPRESSION_TYPE', () => {
    for (const code of [5, 6, 7]) {
      const buf = encodeV2(sampleRecords(3));
      buf.writeInt16BE(code, 21);
      fixCrc(buf);
      expectRecordsError(() => decodeRecords(buf), UnsupportedCompressionError, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
    }
  });

  it('unknown magic, negative lengths, wrong counts and bad record lengths are CORRUPT_MESSAGE (with a valid CRC)', () => {
    const base = encodeV2(sampleRecords(4));
    const cases: Array<(b: Buffer) => void> = [
      (b) => (b[16] = 3),
      (b) => b.writeInt32BE(-5, 8),
      (b) => b.writeInt32BE(30, 8),
      (b) => fixCrc((b.writeInt32BE(5, 57), b)),
      (b) => fixCrc((b.writeInt32BE(3, 57), b)),
      (b) => fixCrc((b.writeInt32BE(-1, 57), b)),
      (b) => fixCrc((b.writeInt32BE(0x7fffffff, 57), b)),
      (b) => fixCrc(((b[61] = 0x7e), b)), // first record's length varint
      (b) => fixCrc(((b[61] = 0x01), b)), // length -1
    ];
    for (const edit of cases) {
      const b = Buffer.from(base);
      edit(b);
      expectRecordsError(() => decodeRecords(b), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
    }
    expectRecordsError(() => decodeRecords(Buffer.from([0, 0, 0])), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
  });

  it('a batch whose decompressed records exceed maxDecompressedBytes is MESSAGE_TOO_LARGE', () => {
    const records = [{ offset: 0n, timestamp: T0, key: null, value: Buffer.alloc(100_000), headers: [] }];
    for (const c of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      const buf = encodeV2(records, c);
      assert.equal(decodeRecords(buf, { maxDecompressedBytes: 200_000 })[0]!.records.length, 1);
      expectRecordsError(() => decodeRecords(buf, { maxDecompressedBytes: 50_000 }), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
      // the bound is per call, across batches
      const two = Buffer.concat([buf, buf]);
      expectRecordsError(() => decodeRecords(two, { maxDecompressedBytes: 150_000 }), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
      const legacy = encodeLegacy(1, records, c);
      expectRecordsError(() => decodeRecords(legacy, { maxDecompressedBytes: 50_000 }), DecompressedTooLargeError, ErrorCode.MESSAGE_TOO_LARGE);
    }
  });
});

describe('kafka records: legacy message sets (magic 0/1)', () => {
  for (const magic of [0, 1] as const) {
    for (const c of CODECS) {
      it(`v${magic} ${c}: round trips (headers dropped${magic === 0 ? ', no timestamps' : ''})`, () => {
        const records = sampleRecords(60, 4, 500n);
        const batches = decodeRecords(encodeLegacy(magic, records, c));
        assert.equal(batches.length, 1);
        const b = batches[0]!;
        assert.equal(b.magic, magic);
        assert.equal(b.compression, c);
        assert.equal(b.producerId, -1n);
        assert.deepEqual(
          b.records,
          records.map((r) => legacyView(magic, r)),
        );
        assert.equal(b.baseOffset, 500n);
        assert.equal(b.lastOffsetDelta, Number(records.at(-1)!.offset - 500n));
      });
    }
  }

  it('v1 compressed: inner offsets are relative, the wrapper carries the last absolute offset', () => {
    const records = sampleRecords(5, 1, 1000n); // offsets 1000..1004
    const buf = encodeLegacy(1, records, 'gzip');
    assert.equal(buf.readBigInt64BE(0), 1004n);
    const inner = decompress('gzip', buf.subarray(12 + 4 + 1 + 1 + 8 + 4 + 4));
    assert.equal(inner.readBigInt64BE(0), 0n);
    const v0 = encodeLegacy(0, records, 'gzip');
    const inner0 = decompress('gzip', v0.subarray(12 + 4 + 1 + 1 + 4 + 4));
    assert.equal(inner0.readBigInt64BE(0), 1000n);
  });

  it('legacy CRC-32 mismatch is CORRUPT_MESSAGE', () => {
    for (const magic of [0, 1] as const) {
      for (const c of ['none', 'snappy'] as const) {
        const buf = encodeLegacy(magic, sampleRecords(3), c);
        buf[buf.length - 1]! ^= 1;
        expectRecordsError(() => decodeRecords(buf), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
      }
    }
  });

  it('mixes of v0, v1 and v2 entries decode in order, uncompressed runs grouped', () => {
    const a = sampleRecords(3, 1, 0n);
    const b = sampleRecords(3, 2, 3n);
    const c = sampleRecords(3, 3, 6n);
    const d = sampleRecords(3, 4, 9n);
    const buf = Buffer.concat([encodeLegacy(0, a), encodeLegacy(1, b), encodeLegacy(1, c), encodeV2(d), encodeLegacy(1, d, 'lz4')]);
    const batches = decodeRecords(buf);
    assert.deepEqual(
      batches.map((x) => [x.magic, x.compression, x.records.length]),
      [
        [0, 'none', 3],
        [1, 'none', 6],
        [2, 'none', 3],
        [1, 'lz4', 3],
      ],
    );
  });

  it('rejects nested compression and magic mismatch inside a wrapper', () => {
    // wrapper (v1, gzip) whose inner set is itself a compressed wrapper
    const innerWrapper = encodeLegacy(1, sampleRecords(2), 'snappy');
    const wrap = (inner: Buffer, magic: 0 | 1) => {
      // by hand: offset, size, crc, magic, attributes (gzip), [timestamp], key, value
      const tmp = new KafkaWriter(64);
      const value = compress('gzip', inner);
      const size = (magic === 1 ? 22 : 14) + value.length;
      tmp.int64(0n);
      tmp.int32(size);
      const crcAt = tmp.reserveInt32();
      tmp.int8(magic);
      tmp.int8(1);
      if (magic === 1) tmp.int64(BigInt(T0));
      tmp.int32(-1);
      tmp.bytes(value);
      const out = tmp.toBuffer();
      out.writeUInt32BE(((require('@node-rs/crc32') as { crc32(b: Buffer): number }).crc32(out.subarray(crcAt + 4)) >>> 0), crcAt);
      return out;
    };
    expectRecordsError(() => decodeRecords(wrap(innerWrapper, 1)), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
    expectRecordsError(() => decodeRecords(wrap(encodeLegacy(0, sampleRecords(2)), 1)), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
    expectRecordsError(() => decodeRecords(wrap(Buffer.alloc(0), 1)), CorruptRecordError, ErrorCode.CORRUPT_MESSAGE);
    // and the hand-built wrapper itself is fine with a valid inner set
    assert.equal(decodeRecords(wrap(encodeLegacy(1, sampleRecords(2)), 1))[0]!.records.length, 2);
  });
});

describe('kafka records: cross-checks with kafkajs', () => {
  function kjsRecords(records: KafkaRecord[]): { encoders: KjsEncoder[]; first: KafkaRecord } {
    const first = records[0]!;
    const encoders = records.map((r) =>
      kjsRecord({
        offsetDelta: Number(r.offset - first.offset),
        timestampDelta: r.timestamp - first.timestamp,
        key: r.key,
        value: r.value,
        headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value ?? Buffer.alloc(0)])),
      }),
    );
    return { encoders, first };
  }

  /** kafkajs cannot encode null header values: swap them for empty ones. */
  function kjsCompatible(records: KafkaRecord[]): KafkaRecord[] {
    return records.map((r) => ({ ...r, headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? Buffer.alloc(0) })) }));
  }

  it('uncompressed: our v2 batch is byte-identical to kafkajs\'s (header, varints, CRC-32C)', async () => {
    const records = kjsCompatible(sampleRecords(300, 12, 9000n));
    const { encoders, first } = kjsRecords(records);
    const theirs = await kjsRecordBatch({
      compression: 0,
      firstOffset: KjsLongCls.fromValue(first.offset),
      firstTimestamp: first.timestamp,
      maxTimestamp: Math.max(...records.map((r) => r.timestamp)),
      lastOffsetDelta: Number(records.at(-1)!.offset - first.offset),
      producerId: KjsLongCls.fromValue(77n),
      producerEpoch: 5,
      firstSequence: 1234,
      partitionLeaderEpoch: 3,
      transactional: true,
      records: encoders,
    });
    const ours = encodeV2(records, 'none', { producerId: 77n, producerEpoch: 5, baseSequence: 1234, partitionLeaderEpoch: 3, isTransactional: true });
    assert.equal(ours.toString('hex'), theirs.buffer.toString('hex'));
  });

  for (const c of CODECS) {
    it(`${c}: kafkajs-encoded v2 batch decodes with ours`, async () => {
      const records = kjsCompatible(sampleRecords(120, 8, 77n));
      const { encoders, first } = kjsRecords(records);
      const enc = await kjsRecordBatch({
        compression: compressionCode(c),
        firstOffset: KjsLongCls.fromValue(first.offset),
        firstTimestamp: first.timestamp,
        maxTimestamp: Math.max(...records.map((r) => r.timestamp)),
        lastOffsetDelta: Number(records.at(-1)!.offset - first.offset),
        producerId: KjsLongCls.fromValue(31n),
        producerEpoch: 2,
        firstSequence: 40,
        partitionLeaderEpoch: 6,
        records: encoders,
      });
      const [b] = decodeRecords(enc.buffer);
      assert.equal(b!.compression, c);
      assert.deepEqual(b!.records, records);
      assert.equal(b!.producerId, 31n);
      assert.equal(b!.producerEpoch, 2);
      assert.equal(b!.baseSequence, 40);
      assert.equal(b!.partitionLeaderEpoch, 6);
    });

    it(`${c}: our v2 batch decodes with kafkajs`, async () => {
      const records = sampleRecords(120, 9, 5000n);
      const buf = encodeV2(records, c, { producerId: 12n, producerEpoch: 1, baseSequence: 3, partitionLeaderEpoch: 4 });
      const b = await kjsDecodeBatch(new KjsDecoder(buf));
      assert.equal(b.firstOffset, '5000');
      assert.equal(b.producerId, '12');
      assert.equal(b.producerEpoch, 1);
      assert.equal(b.firstSequence, 3);
      assert.equal(b.partitionLeaderEpoch, 4);
      assert.equal(b.lastOffsetDelta, Number(records.at(-1)!.offset - 5000n));
      assert.equal(b.maxTimestamp, String(Math.max(...records.map((r) => r.timestamp))));
      assert.equal(b.records.length, records.length);
      b.records.forEach((got, i) => {
        const want = records[i]!;
        assert.equal(got.offset, String(want.offset));
        assert.equal(got.timestamp, String(want.timestamp));
        assert.deepEqual(got.key, want.key);
        assert.deepEqual(got.value, want.value);
        const headers: Record<string, Buffer | null> = {};
        for (const h of want.headers) headers[h.key] = h.value;
        assert.deepEqual(got.headers, headers);
      });
    });
  }

  async function kjsLegacy(magic: 0 | 1, c: Compression, records: KafkaRecord[]): Promise<Buffer> {
    const entries = records.map((r) => ({ key: r.key, value: r.value, timestamp: r.timestamp }));
    if (c === 'none') return kjsMessageSet({ messageVersion: magic, compression: 0, entries }).buffer;
    // as kafkajs's Produce v0-2 does: an inner set (offsets 0..n-1), compressed, in a wrapper message
    const inner = kjsMessageSet({ messageVersion: magic, compression: compressionCode(c), entries });
    const value = await kjsCompression.lookupCodec(compressionCode(c)).compress(inner);
    return kjsMessageSet({ messageVersion: magic, entries: [{ compression: compressionCode(c), timestamp: records[0]!.timestamp, value }] }).buffer;
  }

  for (const magic of [0, 1] as const) {
    for (const c of CODECS) {
      it(`v${magic} ${c}: kafkajs message set decodes with ours`, async () => {
        const records = sampleRecords(40, 10, 0n).map((r, i) => ({ ...r, offset: BigInt(i) }));
        const buf = await kjsLegacy(magic, c, records);
        const batches = decodeRecords(buf);
        const got = allRecords(batches);
        assert.equal(got.length, records.length);
        got.forEach((r, i) => {
          const want = records[i]!;
          assert.deepEqual(r.key, want.key);
          assert.deepEqual(r.value, want.value);
          assert.equal(r.timestamp, magic === 0 ? -1 : want.timestamp);
        });
        if (c !== 'none') {
          assert.equal(batches.length, 1);
          assert.equal(batches[0]!.compression, c);
          // v0 inner offsets are absolute; v1 inner offsets are relative to the wrapper's (the last one's absolute offset)
          const wrapperOffset = buf.readBigInt64BE(0);
          if (magic === 0) assert.deepEqual(got.map((r) => r.offset), records.map((r) => r.offset));
          else assert.deepEqual(got.map((r) => r.offset), records.map((_, i) => wrapperOffset - BigInt(records.length - 1 - i)));
        }
      });

      if (c === 'none') {
        it(`v${magic} none: our message set is byte-identical to kafkajs's (CRC-32)`, () => {
          const records = sampleRecords(30, 13, 0n);
          const theirs = kjsMessageSet({ messageVersion: magic, compression: 0, entries: records.map((r) => ({ key: r.key, value: r.value, timestamp: r.timestamp })) }).buffer;
          // kafkajs writes offset -1 in uncompressed sets (the broker assigns offsets)
          const ours = encodeLegacy(magic, records.map((r) => ({ ...r, offset: -1n })));
          assert.equal(ours.toString('hex'), theirs.toString('hex'));
        });
      }

      it(`v${magic} ${c}: our message set decodes with kafkajs`, async () => {
        const records = sampleRecords(40, 11, 300n);
        const buf = encodeLegacy(magic, records, c);
        const msgs = await kjsDecodeMessageSet(new KjsDecoder(buf), buf.length);
        assert.equal(msgs.length, records.length);
        msgs.forEach((m, i) => {
          const want = records[i]!;
          assert.equal(m.magicByte, magic);
          assert.equal(m.offset, String(want.offset));
          assert.deepEqual(m.key, want.key);
          assert.deepEqual(m.value, want.value);
          if (magic === 1) assert.equal(m.timestamp, String(want.timestamp));
        });
      });
    }
  }
});
