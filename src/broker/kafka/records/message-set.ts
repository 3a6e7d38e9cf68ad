/**
 * Legacy message sets (magic 0 and 1, Kafka before 0.11): what Produce v0-2
 * sends and Fetch v0-3 answers.
 *
 *   MessageSet => [offset int64 | messageSize int32 | Message]   (no count)
 *   Message v0 => crc uint32 | magic int8 | attributes int8 | key bytes | value bytes
 *   Message v1 => crc uint32 | magic int8 | attributes int8 | timestamp int64 | key bytes | value bytes
 *
 * The CRC is CRC-32 (IEEE) over magic..end. Attributes bits 0-2 are the
 * compression codec, bit 3 (v1) the timestamp type. A compressed message is a
 * wrapper: its value is a whole message set, compressed. Inside a v1 wrapper
 * the inner offsets are relative (0..n-1) and the wrapper carries the
 * absolute offset of the last inner message; inside a v0 wrapper they are
 * absolute. Legacy messages have no headers.
 */
import { crc32 } from '@node-rs/crc32';
import { KafkaReader } from '../protocol/reader.js';
import type { KafkaWriter } from '../protocol/writer.js';
import { compress, compressionCode, compressionFromCode, decompress, type Compression } from './compression.js';
import { getInt64, offsetDelta, putInt64, scratchWriter } from './encoding.js';
import { CorruptRecordError } from './errors.js';
import type { DecodeState, EncodableRecord, KafkaRecord, RecordBatch } from './record-batch.js';

const LOG_OVERHEAD = 12;
/** crc + magic + attributes + key length + value length (+ timestamp for v1). */
const MIN_MESSAGE_V0 = 14;
const MIN_MESSAGE_V1 = 22;
const ATTR_COMPRESSION = 0x07;
const ATTR_TIMESTAMP_TYPE = 0x08;

/** Consecutive uncompressed legacy messages are gathered into one RecordBatch. */
export interface LegacyRun {
  batch: RecordBatch;
  magic: 0 | 1;
  timestampType: 0 | 1;
}

interface LegacyMessage {
  offset: bigint;
  attributes: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
}

/** One message at buf[start, end) (offset and size included; `end` already bounds-checked). */
function parseMessage(buf: Buffer, start: number, end: number, magic: 0 | 1, verifyCrc: boolean): LegacyMessage {
  const size = end - start - LOG_OVERHEAD;
  if (size < (magic === 0 ? MIN_MESSAGE_V0 : MIN_MESSAGE_V1)) throw new CorruptRecordError(`message of ${size} bytes is shorter than its header`);
  const msg = start + LOG_OVERHEAD;
  if (verifyCrc) {
    const stored = buf.readUInt32BE(msg);
    const actual = crc32(buf.subarray(msg + 4, end)) >>> 0;
    if (stored !== actual) throw new CorruptRecordError(`CRC-32 mismatch (stored ${stored}, computed ${actual})`);
  }
  const attributes = buf[msg + 5]!;
  let p = msg + 6;
  let timestamp = -1;
  if (magic === 1) {
    timestamp = getInt64(buf, p);
    p += 8;
  }
  const r = new KafkaReader(buf, p, end);
  const key = r.nullableBytes();
  const value = r.nullableBytes();
  if (r.pos !== end) throw new CorruptRecordError(`message declared ${size} bytes but its fields take ${size + r.pos - end}`);
  return { offset: buf.readBigInt64BE(start), attributes, timestamp, key, value };
}

function lastDelta(records: KafkaRecord[]): number {
  return Number(BigInt.asIntN(32, records[records.length - 1]!.offset - records[0]!.offset));
}

function legacyBatch(magic: 0 | 1, compression: Compression, timestampType: 0 | 1, records: KafkaRecord[]): RecordBatch {
  let maxTimestamp = records[0]!.timestamp;
  for (const r of records) if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
  return {
    baseOffset: records[0]!.offset,
    partitionLeaderEpoch: -1,
    magic,
    compression,
    timestampType,
    isTransactional: false,
    isControl: false,
    lastOffsetDelta: lastDelta(records),
    baseTimestamp: records[0]!.timestamp,
    maxTimestamp,
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    records,
  };
}

/**
 * Decodes the legacy entry buf[start, end) (called by decodeRecords). An
 * uncompressed message joins `run` when it continues it, or starts a new
 * batch; a compressed wrapper becomes a batch of its own. Returns the run
 * the next entry may continue.
 */
export function decodeLegacyEntry(buf: Buffer, start: number, end: number, magic: 0 | 1, state: DecodeState, run: LegacyRun | null, out: RecordBatch[]): LegacyRun | null {
  const m = parseMessage(buf, start, end, magic, state.verifyCrc);
  const compression = compressionFromCode(m.attributes & ATTR_COMPRESSION);
  const timestampType: 0 | 1 = magic === 1 && m.attributes & ATTR_TIMESTAMP_TYPE ? 1 : 0;

  if (compression === 'none') {
    const rec: KafkaRecord = { offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers: [] };
    if (run && run.magic === magic && run.timestampType === timestampType) {
      const b = run.batch;
      b.records.push(rec);
      b.lastOffsetDelta = lastDelta(b.records);
      if (rec.timestamp > b.maxTimestamp) b.maxTimestamp = rec.timestamp;
      return run;
    }
    const batch = legacyBatch(magic, 'none', timestampType, [rec]);
    out.push(batch);
    return { batch, magic, timestampType };
  }

  if (m.value === null) throw new CorruptRecordError('compressed wrapper message with a null value');
  const data = decompress(compression, m.value, state.budget);
  state.budget -= data.length;
  const inner: KafkaRecord[] = [];
  let p = 0;
  while (p < data.length) {
    if (data.length - p < LOG_OVERHEAD + 5) throw new CorruptRecordError('truncated message inside a compressed wrapper');
    const size = data.readInt32BE(p + 8);
    const e = p + LOG_OVERHEAD + size;
    if (size < 0 || e > data.length) throw new CorruptRecordError(`inner message of ${size} bytes, ${data.length - p - LOG_OVERHEAD} left`);
    if (data[p + 16] !== magic) throw new CorruptRecordError(`inner message magic ${data[p + 16]} in a magic ${magic} wrapper`);
    const im = parseMessage(data, p, e, magic, state.verifyCrc);
    if ((im.attributes & ATTR_COMPRESSION) !== 0) throw new CorruptRecordError('compressed message inside a compressed wrapper');
    inner.push({ offset: im.offset, timestamp: timestampType === 1 ? m.timestamp : im.timestamp, key: im.key, value: im.value, headers: [] });
    p = e;
  }
  if (inner.length === 0) throw new CorruptRecordError('compressed wrapper with no inner messages');
  if (magic === 1) {
    // Inner offsets are relative; the wrapper holds the absolute offset of the last one.
    const shift = m.offset - inner[inner.length - 1]!.offset;
    if (shift !== 0n) for (const r of inner) r.offset += shift;
  }
  out.push(legacyBatch(magic, compression, timestampType, inner));
  return null;
}

// ---- encoding --------------------------------------------------------------

function writeMessage(w: KafkaWriter, offset: bigint | number, magic: 0 | 1, attributes: number, timestamp: number, key: Buffer | null, value: Buffer | null): void {
  const size = (magic === 0 ? MIN_MESSAGE_V0 : MIN_MESSAGE_V1) + (key?.length ?? 0) + (value?.length ?? 0);
  w.ensure(LOG_OVERHEAD + size);
  const buf = w.buf;
  const start = w.pos;
  if (typeof offset === 'number') putInt64(buf, start, offset);
  else buf.writeBigInt64BE(offset, start);
  buf.writeInt32BE(size, start + 8);
  const crcAt = start + LOG_OVERHEAD;
  let p = crcAt + 4;
  buf[p++] = magic;
  buf[p++] = attributes;
  if (magic === 1) p = putInt64(buf, p, timestamp);
  if (key === null) {
    buf.writeInt32BE(-1, p);
    p += 4;
  } else {
    buf.writeInt32BE(key.length, p);
    buf.set(key, p + 4);
    p += 4 + key.length;
  }
  if (value === null) {
    buf.writeInt32BE(-1, p);
    p += 4;
  } else {
    buf.writeInt32BE(value.length, p);
    buf.set(value, p + 4);
    p += 4 + value.length;
  }
  buf.writeUInt32BE(crc32(buf.subarray(crcAt + 4, p)) >>> 0, crcAt);
  w.pos = p;
}

/**
 * Appends `records` to `w` as a magic 0 or 1 message set (for Fetch v0-3);
 * headers are dropped (the format has none), v0 drops timestamps too. With a
 * codec the records go into one compressed wrapper message (inner offsets
 * relative for v1, absolute for v0). Returns the bytes written.
 */
export function encodeMessageSet(w: KafkaWriter, magic: 0 | 1, records: readonly EncodableRecord[], compression: Compression = 'none'): number {
  const n = records.length;
  if (n === 0) return 0;
  const start = w.pos;
  if (compression === 'none') {
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      writeMessage(w, r.offset, magic, 0, r.timestamp, r.key, r.value);
    }
    return w.pos - start;
  }
  const inner = scratchWriter();
  const first = records[0]!.offset;
  let maxTimestamp = records[0]!.timestamp;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
    writeMessage(inner, magic === 1 ? offsetDelta(r.offset, first) : r.offset, magic, 0, r.timestamp, r.key, r.value);
  }
  const compressed = compress(compression, inner.view());
  writeMessage(w, records[n - 1]!.offset, magic, compressionCode(compression), maxTimestamp, null, compressed);
  return w.pos - start;
}
