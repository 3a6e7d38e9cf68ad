/**
 * Kafka record batches (magic 2, Kafka 0.11+) and the entry point that
 * decodes a Produce request's `records` field whatever its format.
 *
 *   RecordBatch =>
 *     baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
 *     magic int8 (=2) | crc uint32 (CRC-32C of attributes..end) |
 *     attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 |
 *     maxTimestamp int64 | producerId int64 | producerEpoch int16 |
 *     baseSequence int32 | records [Record] (int32 count; the records
 *     themselves compressed when attributes bits 0-2 say so)
 *   Record =>
 *     length varint | attributes int8 | timestampDelta varlong |
 *     offsetDelta varint | key varint-bytes | value varint-bytes |
 *     headers [varint count] (key varint-string, value varint-bytes)
 *
 * Attributes: bits 0-2 compression, bit 3 timestamp type (1 = LogAppendTime),
 * bit 4 transactional, bit 5 control batch.
 *
 * Decoded keys, values and header values are views into the input buffer (or
 * into the decompressed buffer): no copies.
 */
import { crc32c } from '../../../common/crc.js';
import { KafkaDecodeError } from '../protocol/errors.js';
import { KafkaReader } from '../protocol/reader.js';
import type { KafkaWriter } from '../protocol/writer.js';
import { compress, compressionCode, compressionFromCode, decompress, DEFAULT_MAX_DECOMPRESSED_BYTES, type Compression } from './compression.js';
import {
  getInt64,
  offsetDelta,
  putInt64,
  putVarBytes,
  putVarint,
  putVarlong,
  scratchWriter,
  varBytesSize,
  varintSize,
  varlongSize,
} from './encoding.js';
import { CorruptRecordError } from './errors.js';
import { decodeLegacyEntry, type LegacyRun } from './message-set.js';

export interface KafkaRecordHeader {
  key: string;
  value: Buffer | null;
}

export interface KafkaRecord {
  offset: bigint;
  /** Milliseconds since the epoch; -1 when the format has none (magic 0). */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkaRecordHeader[];
}

/**
 * A decoded batch. Legacy message sets (magic 0/1) come back in the same
 * shape: each compressed wrapper message is one batch, and each run of
 * consecutive uncompressed messages is one batch (producerId -1,
 * partitionLeaderEpoch -1).
 */
export interface RecordBatch {
  baseOffset: bigint;
  partitionLeaderEpoch: number;
  magic: 0 | 1 | 2;
  compression: Compression;
  /** 0 = CreateTime, 1 = LogAppendTime. */
  timestampType: 0 | 1;
  isTransactional: boolean;
  isControl: boolean;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  records: KafkaRecord[];
}

/** What the encoders take: StoredRecord and KafkaRecord both fit. */
export interface EncodableRecord {
  offset: bigint;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: readonly { key: string; value: Buffer | null }[];
}

export interface DecodeRecordsOptions {
  /** Bound on the bytes all decompressions of this call may produce (default 64 MiB). */
  maxDecompressedBytes?: number;
  /** Check CRCs (CRC-32C for v2, CRC-32 for v0/v1); default true. */
  verifyCrc?: boolean;
  /**
   * Stop silently at a truncated trailing batch, as a Fetch response may end
   * (default false: in a Produce request a partial batch is corrupt).
   */
  allowPartial?: boolean;
  /**
   * Compute each v2 record's absolute offset (default true). Produce passes
   * false: the broker assigns offsets, and a bigint per record is garbage on
   * the hottest path. Records then carry offset -1n.
   */
  offsets?: boolean;
}

/** Internal decoding state shared with the legacy decoder. */
export interface DecodeState {
  /** Decompressed bytes this call may still produce. */
  budget: number;
  readonly verifyCrc: boolean;
  readonly offsets: boolean;
}

/** Shared by every record without headers (decoded records are read-only). */
const NO_HEADERS: KafkaRecordHeader[] = Object.freeze([]) as unknown as KafkaRecordHeader[];

/** Offset of the magic byte in every format (after offset int64 and length int32, plus 4 bytes of epoch or CRC). */
const MAGIC_OFFSET = 16;
/** Bytes before the records of a v2 batch (through the record count). */
export const RECORD_BATCH_OVERHEAD = 61;
const LOG_OVERHEAD = 12;
/** A record is at least 7 bytes: length, attributes, timestamp delta, offset delta, key, value, header count. */
const MIN_RECORD_SIZE = 7;

const ATTR_COMPRESSION = 0x07;
const ATTR_TIMESTAMP_TYPE = 0x08;
const ATTR_TRANSACTIONAL = 0x10;
const ATTR_CONTROL = 0x20;

/** What a v2 batch's header says, read without touching its records. */
export interface BatchHeader {
  /** The batch is buf[start, end). */
  start: number;
  end: number;
  compression: Compression;
  timestampType: 0 | 1;
  isTransactional: boolean;
  isControl: boolean;
  count: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

/**
 * The headers of a Produce `records` field made only of v2 batches, each one's
 * CRC-32C checked (so its records are intact) but none of them decoded; null
 * when any batch is in a legacy format. Throws CorruptRecordError on a torn,
 * mis-sized or corrupt batch.
 */
export function readBatchHeaders(buf: Buffer): BatchHeader[] | null {
  const out: BatchHeader[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < RECORD_BATCH_OVERHEAD) {
      if (buf.length - pos > MAGIC_OFFSET && buf[pos + MAGIC_OFFSET] !== 2) return null;
      throw new CorruptRecordError(`${buf.length - pos} trailing bytes are not a batch`);
    }
    if (buf[pos + MAGIC_OFFSET] !== 2) return null;
    const size = buf.readInt32BE(pos + 8);
    const end = pos + LOG_OVERHEAD + size;
    if (size < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD || end > buf.length) throw new CorruptRecordError(`batch at ${pos} declares ${size} bytes, ${buf.length - pos - LOG_OVERHEAD} left`);
    const attrsAt = pos + 21;
    if (crc32c(buf.subarray(attrsAt, end)) !== buf.readUInt32BE(pos + 17)) throw new CorruptRecordError('CRC-32C mismatch');
    const attributes = buf.readInt16BE(attrsAt);
    const count = buf.readInt32BE(pos + 57);
    const lastOffsetDelta = buf.readInt32BE(pos + 23);
    if (count < 0 || (count > 0 && lastOffsetDelta !== count - 1)) throw new CorruptRecordError(`batch of ${count} records with last offset delta ${lastOffsetDelta}`);
    out.push({
      start: pos,
      end,
      compression: compressionFromCode(attributes & ATTR_COMPRESSION),
      timestampType: attributes & ATTR_TIMESTAMP_TYPE ? 1 : 0,
      isTransactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
      isControl: (attributes & ATTR_CONTROL) !== 0,
      count,
      lastOffsetDelta,
      baseTimestamp: getInt64(buf, pos + 27),
      maxTimestamp: getInt64(buf, pos + 35),
      producerId: buf.readBigInt64BE(pos + 43),
      producerEpoch: buf.readInt16BE(pos + 51),
      baseSequence: buf.readInt32BE(pos + 53),
    });
    pos = end;
  }
  return out;
}

/**
 * Walks a v2 batch's records without building them: each record's framing must
 * fit and its offset delta must be its index (what lets a stored batch be read
 * by offset). Compressed batches are decompressed to check (Kafka does the same).
 */
export function checkBatchRecords(buf: Buffer, h: BatchHeader, maxDecompressedBytes = DEFAULT_MAX_DECOMPRESSED_BYTES): void {
  let data = buf;
  let start = h.start + RECORD_BATCH_OVERHEAD;
  let end = h.end;
  if (h.compression !== 'none') {
    data = decompress(h.compression, buf.subarray(start, end), maxDecompressedBytes);
    start = 0;
    end = data.length;
  }
  const r = new KafkaReader(data, start, end);
  try {
    for (let i = 0; i < h.count; i++) {
      const len = r.varint();
      const recordEnd = r.pos + len;
      if (len < MIN_RECORD_SIZE - 1 || recordEnd > end) throw new CorruptRecordError(`record ${i}: length ${len} with ${end - r.pos} bytes left`);
      r.pos++; // attributes
      r.varlongNumber(); // timestamp delta
      const delta = r.varint();
      if (delta !== i) throw new CorruptRecordError(`record ${i} has offset delta ${delta}`);
      r.pos = recordEnd;
    }
  } catch (err) {
    if (err instanceof KafkaDecodeError) throw new CorruptRecordError(err.message.replace(/^malformed Kafka request: /, ''));
    throw err;
  }
  if (r.pos !== end) throw new CorruptRecordError(`${end - r.pos} bytes after the last of ${h.count} records`);
}

/**
 * Decodes a Produce `records` field (or a Fetch response's, with allowPartial):
 * one or more concatenated batches of any magic. Throws only the errors of
 * ./errors.ts (CorruptRecordError, UnsupportedCompressionError,
 * DecompressedTooLargeError).
 */
export function decodeRecords(buf: Buffer, opts: DecodeRecordsOptions = {}): RecordBatch[] {
  const limit = opts.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const state: DecodeState = { budget: limit, verifyCrc: opts.verifyCrc !== false, offsets: opts.offsets !== false };
  const out: RecordBatch[] = [];
  let run: LegacyRun | null = null;
  let pos = 0;
  try {
    while (pos < buf.length) {
      const left = buf.length - pos;
      if (left < MAGIC_OFFSET + 1) {
        if (opts.allowPartial) break;
        throw new CorruptRecordError(`${left} trailing bytes are not a batch`);
      }
      const size = buf.readInt32BE(pos + 8);
      const magic = buf[pos + MAGIC_OFFSET]!;
      if (size < 0) throw new CorruptRecordError(`negative batch length ${size} at ${pos}`);
      const end = pos + LOG_OVERHEAD + size;
      if (end > buf.length) {
        if (opts.allowPartial) break;
        throw new CorruptRecordError(`batch at ${pos} needs ${LOG_OVERHEAD + size} bytes, ${left} left`);
      }
      if (magic === 2) {
        run = null;
        out.push(decodeBatchV2(buf, pos, end, state));
      } else if (magic === 0 || magic === 1) {
        run = decodeLegacyEntry(buf, pos, end, magic, state, run, out);
      } else {
        throw new CorruptRecordError(`unknown magic ${magic} at ${pos}`);
      }
      pos = end;
    }
  } catch (err) {
    // A field ran past its record or batch (the reader's bounds checks): the batch is corrupt, the frame is fine.
    if (err instanceof KafkaDecodeError) throw new CorruptRecordError(err.message.replace(/^malformed Kafka request: /, ''));
    throw err;
  }
  return out;
}

function decodeBatchV2(buf: Buffer, start: number, end: number, state: DecodeState): RecordBatch {
  if (end - start < RECORD_BATCH_OVERHEAD) throw new CorruptRecordError(`batch of ${end - start} bytes is shorter than its header`);
  const attrsAt = start + 21;
  if (state.verifyCrc) {
    const stored = buf.readUInt32BE(start + 17);
    const actual = crc32c(buf.subarray(attrsAt, end));
    if (stored !== actual) throw new CorruptRecordError(`CRC-32C mismatch (stored ${stored}, computed ${actual})`);
  }
  const attributes = buf.readInt16BE(attrsAt);
  const compression = compressionFromCode(attributes & ATTR_COMPRESSION);
  const baseOffset = buf.readBigInt64BE(start);
  const timestampType: 0 | 1 = attributes & ATTR_TIMESTAMP_TYPE ? 1 : 0;
  const baseTimestamp = getInt64(buf, start + 27);
  const maxTimestamp = getInt64(buf, start + 35);
  const count = buf.readInt32BE(start + 57);
  if (count < 0) throw new CorruptRecordError(`negative record count ${count}`);

  let data = buf;
  let dataStart = start + RECORD_BATCH_OVERHEAD;
  let dataEnd = end;
  if (compression !== 'none') {
    data = decompress(compression, buf.subarray(dataStart, end), state.budget);
    state.budget -= data.length;
    dataStart = 0;
    dataEnd = data.length;
  }
  if (count > (dataEnd - dataStart) / MIN_RECORD_SIZE) throw new CorruptRecordError(`${count} records cannot fit in ${dataEnd - dataStart} bytes`);

  const records: KafkaRecord[] = new Array<KafkaRecord>(count);
  const r = new KafkaReader(data, dataStart, dataEnd);
  const appendTime = timestampType === 1 ? maxTimestamp : null;
  for (let i = 0; i < count; i++) records[i] = decodeRecord(r, baseOffset, baseTimestamp, appendTime, state.offsets);
  if (r.pos !== dataEnd) throw new CorruptRecordError(`${dataEnd - r.pos} bytes after the last of ${count} records`);

  return {
    baseOffset,
    partitionLeaderEpoch: buf.readInt32BE(start + 12),
    magic: 2,
    compression,
    timestampType,
    isTransactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
    isControl: (attributes & ATTR_CONTROL) !== 0,
    lastOffsetDelta: buf.readInt32BE(start + 23),
    baseTimestamp,
    maxTimestamp,
    producerId: buf.readBigInt64BE(start + 43),
    producerEpoch: buf.readInt16BE(start + 51),
    baseSequence: buf.readInt32BE(start + 53),
    records,
  };
}

function varBytes(r: KafkaReader): Buffer | null {
  const len = r.varint();
  if (len >= 0) return r.raw(len);
  if (len === -1) return null;
  throw new CorruptRecordError(`negative length ${len}`);
}

function decodeRecord(r: KafkaReader, baseOffset: bigint, baseTimestamp: number, appendTime: number | null, withOffset: boolean): KafkaRecord {
  const len = r.varint();
  const end = r.pos + len;
  if (len < MIN_RECORD_SIZE - 1 || end > r.end) throw new CorruptRecordError(`record length ${len} with ${r.remaining} bytes left`);
  r.pos++; // attributes: unused
  const timestampDelta = r.varlongNumber();
  const delta = r.varint();
  const key = varBytes(r);
  const value = varBytes(r);
  const headerCount = r.varint();
  if (headerCount < 0 || headerCount > (end - r.pos) / 2) throw new CorruptRecordError(`${headerCount} headers in a record of ${len} bytes`);
  const headers: KafkaRecordHeader[] = headerCount === 0 ? NO_HEADERS : [];
  for (let i = 0; i < headerCount; i++) {
    const klen = r.varint();
    if (klen < 0) throw new CorruptRecordError(`header key length ${klen}`);
    const k = r.raw(klen).toString('utf8');
    headers.push({ key: k, value: varBytes(r) });
  }
  if (r.pos !== end) throw new CorruptRecordError(`record declared ${len} bytes but its fields take ${len + r.pos - end}`);
  return {
    offset: withOffset ? baseOffset + BigInt(delta) : -1n,
    timestamp: appendTime ?? baseTimestamp + timestampDelta,
    key,
    value,
    headers,
  };
}

// ---- encoding --------------------------------------------------------------

export interface EncodeRecordBatchOptions {
  /** Offset deltas are taken from this (normally records[0].offset). */
  baseOffset: bigint;
  records: readonly EncodableRecord[];
  compression?: Compression;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
  isTransactional?: boolean;
  isControl?: boolean;
  /** 0 = CreateTime (default), 1 = LogAppendTime. */
  timestampType?: 0 | 1;
}

/** Size of a record's body (what its length varint counts). */
function recordBodySize(rec: EncodableRecord, timestampDelta: number, delta: number): number {
  let size = 1 + varlongSize(timestampDelta) + varintSize(delta) + varBytesSize(rec.key) + varBytesSize(rec.value);
  const headers = rec.headers;
  size += varintSize(headers.length);
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const klen = Buffer.byteLength(h.key, 'utf8');
    size += varintSize(klen) + klen + varBytesSize(h.value);
  }
  return size;
}

function writeRecords(w: KafkaWriter, records: readonly EncodableRecord[], baseOffset: bigint, baseTimestamp: number): void {
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    const timestampDelta = rec.timestamp - baseTimestamp;
    const delta = offsetDelta(rec.offset, baseOffset);
    const body = recordBodySize(rec, timestampDelta, delta);
    w.ensure(varintSize(body) + body);
    const buf = w.buf;
    let p = putVarint(buf, w.pos, body);
    buf[p++] = 0; // attributes
    p = putVarlong(buf, p, timestampDelta);
    p = putVarint(buf, p, delta);
    p = putVarBytes(buf, p, rec.key);
    p = putVarBytes(buf, p, rec.value);
    const headers = rec.headers;
    p = putVarint(buf, p, headers.length);
    for (let j = 0; j < headers.length; j++) {
      const h = headers[j]!;
      const klen = Buffer.byteLength(h.key, 'utf8');
      p = putVarint(buf, p, klen);
      p += buf.write(h.key, p, klen, 'utf8');
      p = putVarBytes(buf, p, h.value);
    }
    w.pos = p;
  }
}

/**
 * Appends one v2 record batch holding `records` to `w`; returns the bytes
 * written (0 for no records: Kafka has no empty batches to send).
 */
export function encodeRecordBatch(w: KafkaWriter, opts: EncodeRecordBatchOptions): number {
  const records = opts.records;
  const n = records.length;
  if (n === 0) return 0;
  const compression = opts.compression ?? 'none';
  const baseOffset = opts.baseOffset;
  const baseTimestamp = records[0]!.timestamp;
  let maxTimestamp = baseTimestamp;
  for (let i = 1; i < n; i++) {
    const t = records[i]!.timestamp;
    if (t > maxTimestamp) maxTimestamp = t;
  }
  const attributes =
    compressionCode(compression) |
    (opts.timestampType === 1 ? ATTR_TIMESTAMP_TYPE : 0) |
    (opts.isTransactional ? ATTR_TRANSACTIONAL : 0) |
    (opts.isControl ? ATTR_CONTROL : 0);

  const lastOffsetDelta = offsetDelta(records[n - 1]!.offset, baseOffset);
  if (!(lastOffsetDelta >= 0 && lastOffsetDelta <= 0x7fffffff)) throw new RangeError(`record batch: offsets must ascend from baseOffset ${baseOffset} by less than 2^31`);

  const start = w.pos;
  w.ensure(RECORD_BATCH_OVERHEAD);
  const buf = w.buf;
  buf.writeBigInt64BE(baseOffset, start);
  // batchLength (start + 8) and crc (start + 17) are patched at the end
  buf.writeInt32BE(opts.partitionLeaderEpoch ?? 0, start + 12);
  buf[start + 16] = 2;
  buf.writeInt16BE(attributes, start + 21);
  buf.writeInt32BE(lastOffsetDelta, start + 23);
  putInt64(buf, start + 27, baseTimestamp);
  putInt64(buf, start + 35, maxTimestamp);
  buf.writeBigInt64BE(opts.producerId ?? -1n, start + 43);
  buf.writeInt16BE(opts.producerEpoch ?? -1, start + 51);
  buf.writeInt32BE(opts.baseSequence ?? -1, start + 53);
  buf.writeInt32BE(n, start + 57);
  w.pos = start + RECORD_BATCH_OVERHEAD;

  if (compression === 'none') {
    writeRecords(w, records, baseOffset, baseTimestamp);
  } else {
    const scratch = scratchWriter();
    writeRecords(scratch, records, baseOffset, baseTimestamp);
    w.raw(compress(compression, scratch.view()));
  }

  const total = w.pos - start;
  w.buf.writeInt32BE(total - LOG_OVERHEAD, start + 8);
  w.buf.writeUInt32BE(crc32c(w.buf.subarray(start + 21, w.pos)), start + 17);
  return total;
}
