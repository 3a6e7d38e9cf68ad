/**
 * The hot-path data of the Kafka load generator.
 *
 * Produce: a Produce request is encoded ONCE per (records per partition, partitions)
 * shape, with the broker's own codecs (APIS Produce request codec, encodeRecordBatch), into
 * a complete frame; decoding that frame back with the same codec gives the exact position
 * of every partition's record batch (the codec's byte fields are views into the frame),
 * and walking one batch gives the position of every record's value. Each send then takes
 * a copy of the frame from a free list and patches only what must vary: the correlation
 * id, the batches' base/max timestamps, the 16-byte stamp at the start of each value
 * (send time, run tag, producer, sequence — see ../payload.ts) and each batch's CRC-32C.
 * A frame goes back to the free list when its response arrived (acks=0: when written).
 *
 * With compression the records are compressed, so nothing can be patched in place: each
 * request is encoded anew (records → encodeRecordBatch with the codec → the request codec).
 *
 * Fetch: `walkBatches` reads v2 record batches without building record objects: per
 * record it finds the value and hands its position to the caller.
 */
import { crc32c } from '../../common/crc.js';
import { ApiKey, APIS } from '../../broker/kafka/protocol/apis.js';
import { KafkaReader } from '../../broker/kafka/protocol/reader.js';
import type { ProduceRequest } from '../../broker/kafka/protocol/requests/produce.js';
import { KafkaWriter } from '../../broker/kafka/protocol/writer.js';
import { compressionFromCode, decompress, encodeRecordBatch, type Compression, type EncodableRecord } from '../../broker/kafka/records/index.js';
import { writeRequestHeader } from './client.js';

const TWO_32 = 0x1_0000_0000;
/** Byte offsets inside a v2 record batch. */
const BATCH_LENGTH_AT = 8;
const MAGIC_AT = 16;
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
const LAST_OFFSET_DELTA_AT = 23;
const BASE_TIMESTAMP_AT = 27;
const MAX_TIMESTAMP_AT = 35;
const COUNT_AT = 57;
const RECORDS_AT = 61;

export interface ProduceShape {
  version: number;
  acks: number;
  timeoutMs: number;
  clientId: string;
  topic: string;
  /** Partitions in the request, in order. */
  partitions: readonly number[];
  /** Records per partition. */
  records: number;
  recordSize: number;
  compression: Compression;
}

function produceBody(s: ProduceShape, batchFor: (partitionSlot: number) => Buffer): ProduceRequest {
  return {
    transactionalId: null,
    acks: s.acks,
    timeoutMs: s.timeoutMs,
    topicData: [{ name: s.topic, partitionData: s.partitions.map((p, i) => ({ index: p, records: batchFor(i) })) }],
  };
}

/** Encodes a whole Produce frame (size prefix, header v1, body) with correlation id `corr`. */
function encodeProduceFrame(w: KafkaWriter, s: ProduceShape, corr: number, batchFor: (partitionSlot: number) => Buffer): { corrAt: number; bodyAt: number } {
  const codec = APIS.get(ApiKey.Produce)!.request[s.version]!;
  w.reset();
  const sizeAt = w.reserveInt32();
  const corrAt = w.pos + 4;
  writeRequestHeader(w, ApiKey.Produce, s.version, corr, s.clientId, codec.flexible);
  const bodyAt = w.pos;
  codec.encode(w, produceBody(s, batchFor));
  w.patchInt32(sizeAt, w.pos - 4);
  return { corrAt, bodyAt };
}

/** Values (filler 'a') of `n` records, each at its own offset: what a batch is encoded from. */
function fillerRecords(n: number, size: number, timestamp: number): EncodableRecord[] {
  const value = Buffer.alloc(size, 0x61);
  const out: EncodableRecord[] = new Array<EncodableRecord>(n);
  for (let i = 0; i < n; i++) out[i] = { offset: BigInt(i), timestamp, key: null, value, headers: [] };
  return out;
}

/** A pre-encoded Produce request for one shape (uncompressed records), with the free list of its frame copies. */
export class ProduceTemplate {
  readonly frame: Buffer;
  readonly corrAt: number;
  /** Start of each partition's batch in the frame, and its end. */
  readonly batchAt: Int32Array;
  readonly batchEnd: Int32Array;
  /** Offset of each record's value from the start of its batch (the same in every batch). */
  readonly valueAt: Int32Array;
  readonly recordsPerPartition: number;
  readonly partitions: readonly number[];
  /** Record value bytes in one request. */
  readonly payloadBytes: number;
  private readonly free: Buffer[] = [];

  constructor(s: ProduceShape) {
    if (s.compression !== 'none') throw new Error('ProduceTemplate is for uncompressed records');
    this.partitions = s.partitions;
    this.recordsPerPartition = s.records;
    this.payloadBytes = s.records * s.recordSize * s.partitions.length;
    const bw = new KafkaWriter(Math.max(1024, s.records * (s.recordSize + 16) + 128));
    encodeRecordBatch(bw, { baseOffset: 0n, records: fillerRecords(s.records, s.recordSize, Date.now()) });
    const batch = bw.buf.subarray(0, bw.pos);
    const w = new KafkaWriter(batch.length * s.partitions.length + 256 + s.topic.length);
    const { corrAt, bodyAt } = encodeProduceFrame(w, s, 0, () => batch);
    this.frame = w.toBuffer();
    this.corrAt = corrAt;
    // Where the codec put each batch: decode the frame back; byte fields are views into it.
    const decoded = APIS.get(ApiKey.Produce)!.request[s.version]!.decode(new KafkaReader(this.frame, bodyAt)) as ProduceRequest;
    const pd = decoded.topicData[0]!.partitionData;
    this.batchAt = new Int32Array(pd.length);
    this.batchEnd = new Int32Array(pd.length);
    pd.forEach((p, i) => {
      const r = p.records!;
      this.batchAt[i] = r.byteOffset - this.frame.byteOffset;
      this.batchEnd[i] = this.batchAt[i]! + r.length;
      if (r.length !== batch.length || !r.equals(batch)) throw new Error('produce template: batch not found where the codec put it');
    });
    const values: number[] = [];
    walkRecords(batch, RECORDS_AT, batch.length, s.records, (_d, at, len) => {
      if (len !== s.recordSize) throw new Error(`produce template: value of ${len} bytes, expected ${s.recordSize}`);
      values.push(at);
    });
    if (values.length !== s.records) throw new Error(`produce template: ${values.length} records walked, expected ${s.records}`);
    this.valueAt = Int32Array.from(values);
  }

  /** A frame copy to fill and send (return it with release() once the broker answered it). */
  acquire(): Buffer {
    return this.free.pop() ?? Buffer.from(this.frame);
  }

  release(frame: Buffer): void {
    if (this.free.length < 64) this.free.push(frame);
  }

  /**
   * Patches `frame` for one send: correlation id, timestamps, value stamps (sequence
   * numbers from `seqs`, one per partition slot, advanced) and CRCs.
   */
  fill(frame: Buffer, corr: number, nowMs: number, sendNs: number, publisherKey: number, seqs: Float64Array): void {
    frame.writeInt32BE(corr, this.corrAt);
    const hi = Math.floor(sendNs / TWO_32) >>> 0;
    const lo = (sendNs - hi * TWO_32) >>> 0;
    const msHi = Math.floor(nowMs / TWO_32);
    const msLo = (nowMs - msHi * TWO_32) >>> 0;
    const valueAt = this.valueAt;
    const n = valueAt.length;
    for (let b = 0; b < this.batchAt.length; b++) {
      const at = this.batchAt[b]!;
      frame.writeInt32BE(msHi, at + BASE_TIMESTAMP_AT);
      frame.writeUInt32BE(msLo, at + BASE_TIMESTAMP_AT + 4);
      frame.writeInt32BE(msHi, at + MAX_TIMESTAMP_AT);
      frame.writeUInt32BE(msLo, at + MAX_TIMESTAMP_AT + 4);
      let seq = seqs[b]!;
      for (let i = 0; i < n; i++) {
        const o = at + valueAt[i]!;
        frame.writeUInt32BE(hi, o);
        frame.writeUInt32BE(lo, o + 4);
        frame.writeUInt32BE(publisherKey, o + 8);
        frame.writeUInt32BE(seq % TWO_32, o + 12);
        seq++;
      }
      seqs[b] = seq;
      frame.writeUInt32BE(crc32c(frame.subarray(at + ATTRIBUTES_AT, this.batchEnd[b]!)), at + CRC_AT);
    }
  }
}

/**
 * Compressed requests: encoded per send. One values buffer per shape holds the records'
 * values; stamps are written into it before each partition's batch is encoded.
 */
export class CompressedProducer {
  private readonly values: Buffer;
  private readonly records: EncodableRecord[];
  private readonly batchWriter = new KafkaWriter(64 * 1024);
  private readonly frameWriter = new KafkaWriter(64 * 1024);
  readonly payloadBytes: number;

  constructor(private readonly s: ProduceShape) {
    this.values = Buffer.alloc(s.records * s.recordSize, 0x61);
    this.records = new Array<EncodableRecord>(s.records);
    for (let i = 0; i < s.records; i++) this.records[i] = { offset: BigInt(i), timestamp: 0, key: null, value: this.values.subarray(i * s.recordSize, (i + 1) * s.recordSize), headers: [] };
    this.payloadBytes = s.records * s.recordSize * s.partitions.length;
  }

  /** A new frame for one send (the caller owns it). */
  build(corr: number, nowMs: number, sendNs: number, publisherKey: number, seqs: Float64Array): Buffer {
    const s = this.s;
    const hi = Math.floor(sendNs / TWO_32) >>> 0;
    const lo = (sendNs - hi * TWO_32) >>> 0;
    const batches: Buffer[] = [];
    for (let b = 0; b < s.partitions.length; b++) {
      let seq = seqs[b]!;
      for (let i = 0; i < s.records; i++) {
        const o = i * s.recordSize;
        this.values.writeUInt32BE(hi, o);
        this.values.writeUInt32BE(lo, o + 4);
        this.values.writeUInt32BE(publisherKey, o + 8);
        this.values.writeUInt32BE(seq % TWO_32, o + 12);
        this.records[i]!.timestamp = nowMs;
        seq++;
      }
      seqs[b] = seq;
      const bw = this.batchWriter;
      bw.reset();
      encodeRecordBatch(bw, { baseOffset: 0n, records: this.records, compression: s.compression });
      batches.push(bw.toBuffer());
    }
    encodeProduceFrame(this.frameWriter, s, corr, (i) => batches[i]!);
    return this.frameWriter.toBuffer();
  }
}

// ---------------------------------------------------------------------------------------
// Reading record batches (Fetch responses).

let vpos = 0;

/** Zig-zag varint at vpos (advances vpos). */
function readVarint(b: Buffer): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    const x = b[vpos++]!;
    result |= (x & 0x7f) << shift;
    if ((x & 0x80) === 0) break;
    shift += 7;
    if (shift > 28) throw new Error('varint longer than 5 bytes');
  }
  return (result >>> 1) ^ -(result & 1);
}

function skipVarlong(b: Buffer): void {
  for (let i = 0; i < 10; i++) if ((b[vpos++]! & 0x80) === 0) return;
  throw new Error('varlong longer than 10 bytes');
}

/** Visits `count` records at data[start, end): onValue(data, valueAt, valueLength) (length -1: null value). */
export function walkRecords(data: Buffer, start: number, end: number, count: number, onValue: (data: Buffer, at: number, len: number) => void): void {
  vpos = start;
  for (let i = 0; i < count; i++) {
    if (vpos >= end) throw new Error(`record ${i} of ${count} starts past the batch end`);
    const len = readVarint(data);
    const recEnd = vpos + len;
    if (len < 6 || recEnd > end) throw new Error(`record length ${len} with ${end - vpos} bytes left`);
    vpos++; // attributes
    skipVarlong(data); // timestamp delta
    readVarint(data); // offset delta
    const keyLen = readVarint(data);
    if (keyLen > 0) vpos += keyLen;
    const valueLen = readVarint(data);
    const at = vpos;
    if (valueLen > 0 && at + valueLen > recEnd) throw new Error(`value of ${valueLen} bytes overruns its record`);
    onValue(data, at, valueLen);
    vpos = recEnd;
  }
}

export interface WalkResult {
  /** Data records visited (control batches are skipped). */
  records: number;
  /** Offset after the last complete batch (-1: no complete batch). */
  nextOffset: number;
  /** Bytes of complete batches. */
  bytes: number;
}

/**
 * Walks the v2 record batches of a Fetch partition's `records`, visiting each record's
 * value; a truncated trailing batch (a Fetch answer may end in one) is left for the next
 * fetch. CRCs are not checked (the broker checked them on produce).
 */
export function walkBatches(buf: Buffer, onValue: (data: Buffer, at: number, len: number) => void): WalkResult {
  let pos = 0;
  let records = 0;
  let nextOffset = -1;
  while (buf.length - pos >= RECORDS_AT) {
    const size = buf.readInt32BE(pos + BATCH_LENGTH_AT);
    const end = pos + 12 + size;
    if (size < RECORDS_AT - 12 || end > buf.length) break;
    const magic = buf[pos + MAGIC_AT];
    if (magic !== 2) throw new Error(`record batch of magic ${magic} (Fetch v4+ answers magic 2)`);
    const baseOffset = buf.readInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
    const attributes = buf.readInt16BE(pos + ATTRIBUTES_AT);
    const lastOffsetDelta = buf.readInt32BE(pos + LAST_OFFSET_DELTA_AT);
    const count = buf.readInt32BE(pos + COUNT_AT);
    if ((attributes & 0x20) === 0 && count > 0) {
      const codec = attributes & 0x07;
      if (codec === 0) walkRecords(buf, pos + RECORDS_AT, end, count, onValue);
      else {
        const data = decompress(compressionFromCode(codec), buf.subarray(pos + RECORDS_AT, end));
        walkRecords(data, 0, data.length, count, onValue);
      }
      records += count;
    }
    nextOffset = baseOffset + lastOffsetDelta + 1;
    pos = end;
  }
  return { records, nextOffset, bytes: pos };
}

/** Offset after the last complete batch of a Fetch partition's records, without visiting records (-1: none). */
export function nextOffsetOf(buf: Buffer): number {
  let pos = 0;
  let next = -1;
  while (buf.length - pos >= RECORDS_AT) {
    const size = buf.readInt32BE(pos + BATCH_LENGTH_AT);
    const end = pos + 12 + size;
    if (size < RECORDS_AT - 12 || end > buf.length) break;
    next = buf.readInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4) + buf.readInt32BE(pos + LAST_OFFSET_DELTA_AT) + 1;
    pos = end;
  }
  return next;
}
