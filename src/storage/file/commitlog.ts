/**
 * The CommitLog of the `file` engine: one per engine, shared by every shard
 * (RocketMQ layout, DESIGN.md §5).
 *
 * FILES: `commitlog/<20-digit decimal start position>`. A position is a global byte
 * address in the log; a segment holds positions [start, start + used). A segment
 * is filled up to `segmentBytes` (the files are not preallocated: a file's length
 * is its used length). The next segment starts at start + max(segmentBytes, used).
 *
 * RECORD (all integers little-endian; u64 values are < 2^53):
 *
 *   off  size
 *    0   u32  totalSize        bytes of the whole record, this field included
 *    4   u32  crc32c           CRC32C of bytes [8, totalSize)
 *    8   u8   type             1 = record (format version 1), 2 = end-of-segment marker
 *    9   u8   flags            bit 0: last record of its append batch
 *   10   u16  shardLen
 *   12        shard            UTF-8, shardLen bytes
 *        u64  offset           the record's offset in its shard
 *        i64  timestamp        ms since the epoch
 *        u16  tagLen           0xFFFF = no tag
 *             tag              UTF-8, tagLen bytes
 *        i32  keyLen           -1 = null key
 *             key
 *        i32  valueLen         -1 = null value
 *             value
 *        u16  headerCount
 *             headerCount x { u16 keyLen, key (UTF-8), u32 valueLen, value }
 *
 *   Fixed overhead: RECORD_FIXED_BYTES (40) + shardLen. The tag sits before the
 *   key so that a reader can find it (and its hash) without walking the record.
 *
 * END-OF-SEGMENT MARKER (20 bytes): [u32 20][u32 crc32c of bytes 8..20][u8 2][u8 0]
 * [u16 0][u64 position of the marker]. Written when the next batch does not fit;
 * the rest of the segment is unused and writing continues in the next file. Every
 * segment but the last ends with one; EOS_BYTES are always kept free for it.
 *
 * BATCHES: the records of one append() are contiguous and never span segments;
 * only the last carries the end-of-batch flag. A batch is visible after recovery
 * only if all of its records are intact (all or nothing).
 *
 * WRITES: the engine encodes a whole group of batches into one Buffer and calls
 * append(), one positioned write at the tail. A failed write is truncated away
 * (ftruncate to the old tail) before the next write is allowed. Durability: the
 * group commit in waitDurable() — every waiter present when an fdatasync starts is
 * covered by it; waiters that arrive meanwhile share the next one.
 *
 * RECOVERY (scan): from a position known to be a record boundary, records are
 * validated (sane size, CRC, layout) in order; the first torn or corrupt record —
 * or a segment that ends without its marker while later segments exist — ends the
 * log, at the start of the batch it belongs to. truncate() then cuts that segment
 * and deletes the later ones.
 */
import { mkdir, open, readdir, stat, truncate as truncateFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crc32c } from '../../common/crc.js';
import { BATCH_MARK } from './consume-queue.js';
import { RecordTooLargeError, StorageIOError, ioError, type StorageError } from '../errors.js';
import type { AppendBatch, AppendRecord, RecordHeader, StoredRecord } from '../types.js';
import { NUMBER_NAME_RE, fsyncDir, isNotFound, numberName, readFully, writeAll } from './fs-util.js';
import type { HandleCache } from './handle-cache.js';

export const TYPE_RECORD = 1;
export const TYPE_EOS = 2;
/** A whole record batch in Kafka's v2 layout, one entry for many offsets. */
export const TYPE_BATCH = 3;
/** Bytes of a batch entry besides its shard name and the batch itself. */
export const BATCH_ENTRY_FIXED_BYTES = 40;
/** A Kafka v2 batch is at least its 61-byte header. */
export const MIN_BATCH_BYTES = 61;
export const FLAG_END_OF_BATCH = 1;
/** Bytes of a record besides its shard name, key, value, header keys/values and tag. */
export const RECORD_FIXED_BYTES = 40;
export const EOS_BYTES = 20;
const NO_TAG = 0xffff;
const TWO_32 = 0x1_0000_0000;
const MAX_U16 = 0xffff;
/** Recovery reads segments in chunks of this size. */
const SCAN_CHUNK = 4 * 1024 * 1024;

// ----------------------------------------------------------------------------- integers

export function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / TWO_32), off + 4);
}

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_32;
}

export function writeI64(buf: Buffer, off: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  buf.writeUInt32LE(v - hi * TWO_32, off);
  buf.writeInt32LE(hi, off + 4);
}

export function readI64(buf: Buffer, off: number): number {
  return buf.readInt32LE(off + 4) * TWO_32 + buf.readUInt32LE(off);
}

// ----------------------------------------------------------------------------- sizing

/**
 * Bytes a record is accounted for (ReadLimits.maxBytes, ShardInfo.bytes, retention):
 * its encoded size minus its shard name, i.e. RECORD_FIXED_BYTES + key + value +
 * per header (6 + key UTF-8 + value) + tag UTF-8. Validates the record.
 */
export function recordBytes(r: AppendRecord): number {
  if (r === null || typeof r !== 'object') throw new TypeError('a record must be an object');
  const ts = r.timestamp;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || Math.abs(ts) > Number.MAX_SAFE_INTEGER) {
    throw new TypeError(`record timestamp must be a finite number of ms, got ${String(ts)}`);
  }
  let n = RECORD_FIXED_BYTES;
  const { key, value, headers, tag } = r;
  if (key !== null) {
    if (!(key instanceof Uint8Array)) throw new TypeError('record key must be a Buffer or null');
    n += key.length;
  }
  if (value !== null) {
    if (!(value instanceof Uint8Array)) throw new TypeError('record value must be a Buffer or null');
    n += value.length;
  }
  if (headers !== undefined && headers !== null) {
    if (!Array.isArray(headers)) throw new TypeError('record headers must be an array');
    if (headers.length > MAX_U16) throw new RecordTooLargeError(headers.length, MAX_U16);
    for (const h of headers as RecordHeader[]) {
      if (typeof h?.key !== 'string' || !(h.value instanceof Uint8Array)) throw new TypeError('a header needs a string key and a Buffer value');
      const kl = Buffer.byteLength(h.key, 'utf8');
      if (kl > MAX_U16) throw new RecordTooLargeError(kl, MAX_U16);
      n += 6 + kl + h.value.length;
    }
  }
  if (tag !== undefined) {
    if (typeof tag !== 'string') throw new TypeError('record tag must be a string');
    const tl = Buffer.byteLength(tag, 'utf8');
    if (tl >= NO_TAG) throw new RecordTooLargeError(tl, NO_TAG - 1);
    n += tl;
  }
  return n;
}

// ----------------------------------------------------------------------------- encoding

/**
 * Per-record facts collected while encoding a group (reused between groups, no
 * per-record allocation): position inside the group buffer, size, timestamp, tag hash.
 */
export class EncodeScratch {
  n = 0;
  pos = new Float64Array(1024);
  size = new Uint32Array(1024);
  ts = new Float64Array(1024);
  tagLo = new Uint32Array(1024);
  tagHi = new Uint32Array(1024);
  private lastTag: string | undefined;
  private lastTagLo = 0;

  reset(records: number): void {
    this.n = 0;
    if (records > this.pos.length) {
      let cap = this.pos.length;
      while (cap < records) cap *= 2;
      this.pos = new Float64Array(cap);
      this.size = new Uint32Array(cap);
      this.ts = new Float64Array(cap);
      this.tagLo = new Uint32Array(cap);
      this.tagHi = new Uint32Array(cap);
    }
  }

  /** Notes one record's facts (position in the group, size, timestamp, tag words). */
  note(pos: number, size: number, ts: number, tagLo: number, tagHi: number): void {
    const k = this.n++;
    this.pos[k] = pos;
    this.size[k] = size;
    this.ts[k] = ts;
    this.tagLo[k] = tagLo;
    this.tagHi[k] = tagHi;
  }

  /** CRC32C of the tag bytes just written at buf[at, at+len) (cached for runs of the same tag). */
  tagHash(tag: string, buf: Buffer, at: number, len: number): number {
    if (tag !== this.lastTag) {
      this.lastTag = tag;
      this.lastTagLo = crc32c(buf.subarray(at, at + len));
    }
    return this.lastTagLo;
  }
}

/**
 * Encodes `records` (already validated by recordBytes) at buf[off...] with offsets
 * base, base+1, ...; appends their facts to `scratch`. Returns the end offset in buf.
 */
export function encodeBatch(buf: Buffer, off: number, name: Buffer, base: number, records: readonly AppendRecord[], scratch: EncodeScratch): number {
  // DataView stores and plain Uint8Array views: measurably cheaper per record than Buffer's methods and subarray().
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const ab = buf.buffer;
  const bo = buf.byteOffset;
  const n = records.length;
  const nameLen = name.length;
  for (let i = 0; i < n; i++) {
    const r = records[i] as AppendRecord;
    const start = off;
    buf[start + 8] = TYPE_RECORD;
    buf[start + 9] = i === n - 1 ? FLAG_END_OF_BATCH : 0;
    dv.setUint16(start + 10, nameLen, true);
    off = start + 12;
    if (nameLen <= 32) {
      for (let k = 0; k < nameLen; k++) buf[off + k] = name[k] as number;
    } else buf.set(name, off);
    off += nameLen;
    const o = base + i;
    dv.setUint32(off, o >>> 0, true);
    dv.setUint32(off + 4, Math.floor(o / TWO_32), true);
    const ts = Math.trunc(r.timestamp);
    const hi = Math.floor(ts / TWO_32);
    dv.setUint32(off + 8, ts - hi * TWO_32, true);
    dv.setInt32(off + 12, hi, true);
    off += 16;
    let tagLo = 0;
    let tagHi = 0;
    const tag = r.tag;
    if (tag === undefined) {
      dv.setUint16(off, NO_TAG, true);
      off += 2;
    } else {
      const tl = tag.length === 0 ? 0 : buf.write(tag, off + 2, 'utf8');
      dv.setUint16(off, tl, true);
      tagLo = scratch.tagHash(tag, buf, off + 2, tl);
      tagHi = tl + 1;
      off += 2 + tl;
    }
    const key = r.key;
    if (key === null) {
      dv.setInt32(off, -1, true);
      off += 4;
    } else {
      const kl = key.length;
      dv.setInt32(off, kl, true);
      off += 4;
      if (kl <= 32) {
        for (let k = 0; k < kl; k++) buf[off + k] = key[k] as number;
      } else buf.set(key, off);
      off += kl;
    }
    const value = r.value;
    if (value === null) {
      dv.setInt32(off, -1, true);
      off += 4;
    } else {
      const vl = value.length;
      dv.setInt32(off, vl, true);
      off += 4;
      if (vl <= 32) {
        for (let k = 0; k < vl; k++) buf[off + k] = value[k] as number;
      } else buf.set(value, off);
      off += vl;
    }
    const headers = r.headers;
    const hc = headers ? headers.length : 0;
    dv.setUint16(off, hc, true);
    off += 2;
    for (let h = 0; h < hc; h++) {
      const hd = (headers as RecordHeader[])[h] as RecordHeader;
      const kl = hd.key.length === 0 ? 0 : buf.write(hd.key, off + 2, 'utf8');
      dv.setUint16(off, kl, true);
      off += 2 + kl;
      const v = hd.value;
      dv.setUint32(off, v.length, true);
      buf.set(v, off + 4);
      off += 4 + v.length;
    }
    const size = off - start;
    dv.setUint32(start, size, true);
    dv.setUint32(start + 4, crc32c(new Uint8Array(ab, bo + start + 8, size - 8)), true);
    const k = scratch.n++;
    scratch.pos[k] = start;
    scratch.size[k] = size;
    scratch.ts[k] = ts;
    scratch.tagLo[k] = tagLo;
    scratch.tagHi[k] = tagHi;
  }
  return off;
}

/**
 * Encodes a batch entry at buf[off...] for offsets base .. base+count-1:
 *
 *    0  u32 size   4  u32 crc32c of [8, batchStart + 21)   8  u8 type = 3   9  u8 flags (end of batch)
 *   10  u16 name length   12  name   then u64 base offset, u32 count, i64 first timestamp,
 *   i64 max timestamp, and the batch in Kafka's v2 layout with its base offset set to base.
 *
 * The entry's CRC covers its header and the batch fields Kafka's own CRC-32C does not
 * (base offset, length, leader epoch, magic, CRC); Kafka's covers the rest, so the
 * batch body is checksummed once, by the producer. Returns the end offset in buf.
 */
export function encodeBatchEntry(buf: Buffer, off: number, name: Buffer, base: number, batch: AppendBatch): number {
  const start = off;
  const nameLen = name.length;
  buf[start + 8] = TYPE_BATCH;
  buf[start + 9] = FLAG_END_OF_BATCH;
  buf.writeUInt16LE(nameLen, start + 10);
  name.copy(buf, start + 12);
  let p = start + 12 + nameLen;
  writeU64(buf, p, base);
  buf.writeUInt32LE(batch.count, p + 8);
  writeI64(buf, p + 12, batch.firstTimestamp);
  writeI64(buf, p + 20, batch.maxTimestamp);
  p += 28;
  batch.bytes.copy(buf, p);
  buf.writeBigInt64BE(BigInt(base), p);
  const end = p + batch.bytes.length;
  buf.writeUInt32LE(end - start, start);
  buf.writeUInt32LE(crc32c(buf.subarray(start + 8, p + 21)), start + 4);
  return end;
}

/** Where a batch entry's parts are, once its layout and checksums are verified; or why it is bad. */
function checkBatchEntry(buf: Buffer, at: number, size: number): { shardAt: number; shardEnd: number; base: number; count: number; firstTs: number; maxTs: number; batchAt: number } | string {
  const end = at + size;
  const nl = buf.readUInt16LE(at + 10);
  const shardAt = at + 12;
  const p = shardAt + nl;
  if (size < BATCH_ENTRY_FIXED_BYTES + nl + MIN_BATCH_BYTES || end > buf.length) return `impossible batch entry size ${size}`;
  const batchAt = p + 28;
  if (crc32c(buf.subarray(at + 8, batchAt + 21)) !== buf.readUInt32LE(at + 4)) return 'CRC mismatch';
  const base = readU64(buf, p);
  const count = buf.readUInt32LE(p + 8);
  if (count < 1) return `batch entry of ${count} records`;
  if (buf[batchAt + 16] !== 2) return `batch magic ${buf[batchAt + 16]}`;
  if (buf.readInt32BE(batchAt + 8) !== end - batchAt - 12) return 'batch length does not match the entry';
  if (buf.readBigInt64BE(batchAt) !== BigInt(base)) return 'batch base offset does not match the entry';
  if (crc32c(buf.subarray(batchAt + 21, end)) !== buf.readUInt32BE(batchAt + 17)) return 'batch CRC mismatch';
  return { shardAt, shardEnd: p, base, count, firstTs: readI64(buf, p + 12), maxTs: readI64(buf, p + 20), batchAt };
}

/**
 * The batch entry of `size` bytes at buf[at] that must hold `offset` of the shard
 * named `name`: its base offset, record count and batch bytes (a view of buf).
 */
export function decodeBatchEntry(buf: Buffer, at: number, size: number, name: Buffer, offset: number): { base: number; count: number; bytes: Buffer } | string {
  if (size < BATCH_ENTRY_FIXED_BYTES + MIN_BATCH_BYTES || at + size > buf.length) return `impossible size ${size}`;
  if (buf.readUInt32LE(at) !== size) return `size field ${buf.readUInt32LE(at)} != index size ${size}`;
  if (buf[at + 8] !== TYPE_BATCH) return `record type ${buf[at + 8]} where a batch entry was expected`;
  const c = checkBatchEntry(buf, at, size);
  if (typeof c === 'string') return c;
  if (c.shardEnd - c.shardAt !== name.length || name.compare(buf, c.shardAt, c.shardEnd) !== 0) return 'batch entry belongs to another shard';
  if (offset < c.base || offset >= c.base + c.count) return `batch entry holds offsets ${c.base}..${c.base + c.count - 1}, not ${offset}`;
  return { base: c.base, count: c.count, bytes: buf.subarray(c.batchAt, at + size) };
}

export function encodeEos(position: number): Buffer {
  const b = Buffer.alloc(EOS_BYTES);
  b.writeUInt32LE(EOS_BYTES, 0);
  b[8] = TYPE_EOS;
  writeU64(b, 12, position);
  b.writeUInt32LE(crc32c(b.subarray(8)), 4);
  return b;
}

// ----------------------------------------------------------------------------- decoding

/**
 * Decodes the record of `size` bytes at buf[at] that must be `offset` of the shard
 * whose UTF-8 name is `name`. Key, value and header values are subarrays of buf.
 * Returns the reason as a string when the bytes are not that record.
 */
export function decodeRecord(buf: Buffer, at: number, size: number, name: Buffer, offset: number): StoredRecord | string {
  const end = at + size;
  if (size < RECORD_FIXED_BYTES || end > buf.length) return `impossible size ${size}`;
  if (buf.readUInt32LE(at) !== size) return `size field ${buf.readUInt32LE(at)} != index size ${size}`;
  if (buf[at + 8] !== TYPE_RECORD) return `unknown record type ${buf[at + 8]}`;
  if (crc32c(buf.subarray(at + 8, end)) !== buf.readUInt32LE(at + 4)) return 'CRC mismatch';
  const nl = buf.readUInt16LE(at + 10);
  let p = at + 12;
  if (nl !== name.length || (nl > 0 && name.compare(buf, p, p + nl) !== 0)) return 'record belongs to another shard';
  p += nl;
  if (readU64(buf, p) !== offset) return `record has offset ${readU64(buf, p)}`;
  const timestamp = readI64(buf, p + 8);
  p += 16;
  const tl = buf.readUInt16LE(p);
  p += 2;
  let tag: string | undefined;
  if (tl !== NO_TAG) {
    if (p + tl > end) return 'tag runs past the record';
    tag = buf.toString('utf8', p, p + tl);
    p += tl;
  }
  if (p + 4 > end) return 'truncated record';
  const kl = buf.readInt32LE(p);
  p += 4;
  let key: Buffer | null = null;
  if (kl >= 0) {
    if (p + kl > end) return 'key runs past the record';
    key = buf.subarray(p, p + kl);
    p += kl;
  } else if (kl !== -1) return `bad key length ${kl}`;
  if (p + 4 > end) return 'truncated record';
  const vl = buf.readInt32LE(p);
  p += 4;
  let value: Buffer | null = null;
  if (vl >= 0) {
    if (p + vl > end) return 'value runs past the record';
    value = buf.subarray(p, p + vl);
    p += vl;
  } else if (vl !== -1) return `bad value length ${vl}`;
  if (p + 2 > end) return 'truncated record';
  const hc = buf.readUInt16LE(p);
  p += 2;
  const headers: RecordHeader[] = [];
  for (let h = 0; h < hc; h++) {
    if (p + 2 > end) return 'truncated header';
    const hkl = buf.readUInt16LE(p);
    p += 2;
    if (p + hkl + 4 > end) return 'header runs past the record';
    const hkey = buf.toString('utf8', p, p + hkl);
    p += hkl;
    const hvl = buf.readUInt32LE(p);
    p += 4;
    if (p + hvl > end) return 'header runs past the record';
    headers.push({ key: hkey, value: buf.subarray(p, p + hvl) });
    p += hvl;
  }
  if (p !== end) return 'trailing bytes in record';
  const rec: StoredRecord = { offset: BigInt(offset), timestamp, key, value, headers };
  if (tag !== undefined) rec.tag = tag;
  return rec;
}

/** What recovery needs of a record. */
export interface ScannedRecord {
  /** Position of the record in the log. */
  pos: number;
  size: number;
  shard: string;
  offset: number;
  timestamp: number;
  tagLo: number;
  tagHi: number;
}

/** Validates the record at buf[at, at+size) (CRC + layout). Returns its facts, or the reason it is bad. */
function scanRecord(buf: Buffer, at: number, size: number, pos: number): { rec: ScannedRecord; last: boolean } | string {
  const end = at + size;
  if (crc32c(buf.subarray(at + 8, end)) !== buf.readUInt32LE(at + 4)) return 'CRC mismatch';
  const flags = buf[at + 9] as number;
  const nl = buf.readUInt16LE(at + 10);
  let p = at + 12 + nl;
  if (p + 18 > end) return 'bad shard name length';
  const shard = buf.toString('utf8', at + 12, p);
  const offset = readU64(buf, p);
  const timestamp = readI64(buf, p + 8);
  p += 16;
  const tl = buf.readUInt16LE(p);
  p += 2;
  let tagLo = 0;
  let tagHi = 0;
  if (tl !== NO_TAG) {
    if (p + tl > end) return 'tag runs past the record';
    tagLo = crc32c(buf.subarray(p, p + tl));
    tagHi = tl + 1;
    p += tl;
  }
  for (let k = 0; k < 2; k++) {
    if (p + 4 > end) return 'truncated record';
    const l = buf.readInt32LE(p);
    p += 4;
    if (l < -1) return `bad length ${l}`;
    if (l > 0) p += l;
  }
  if (p + 2 > end) return 'truncated record';
  const hc = buf.readUInt16LE(p);
  p += 2;
  for (let h = 0; h < hc; h++) {
    if (p + 2 > end) return 'truncated header';
    p += 2 + buf.readUInt16LE(p);
    if (p + 4 > end) return 'truncated header';
    p += 4 + buf.readUInt32LE(p);
  }
  if (p !== end) return 'bad record layout';
  return { rec: { pos, size, shard, offset, timestamp, tagLo, tagHi }, last: (flags & FLAG_END_OF_BATCH) !== 0 };
}

// ----------------------------------------------------------------------------- the log

/** The file operations the CommitLog's write path uses; replaceable to inject faults in tests. */
export interface CommitLogIO {
  write(fh: FileHandle, buf: Buffer, position: number, path: string): Promise<void>;
  datasync(fh: FileHandle, path: string): Promise<void>;
}

export const defaultCommitLogIO: CommitLogIO = {
  write: (fh, buf, position) => writeAll(fh, buf, position),
  datasync: (fh) => fh.datasync(),
};

export interface Segment {
  start: number;
  name: string;
  path: string;
  /** Bytes used (= the file's length). */
  size: number;
  /** Ends with an end-of-segment marker: nothing more goes in. */
  sealed: boolean;
}

interface Writer {
  seg: Segment;
  fh: FileHandle;
  /** Written since the last fdatasync started. */
  dirty: boolean;
  /** No longer the active segment: closed once clean. */
  retired: boolean;
}

interface SyncWaiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface ScanCut {
  /** Where the log now ends (start of the batch holding the first bad record). */
  pos: number;
  segment: number;
  reason: string;
  /** Where the bad record (or missing marker) was. */
  at: number;
}

export interface ScanResult {
  /** End of the valid log. */
  end: number;
  cut: ScanCut | undefined;
  /** Intact records dropped because their batch was incomplete. */
  droppedRecords: number;
  scannedBytes: number;
}

export interface CommitLogOptions {
  dir: string;
  segmentBytes: number;
  io: CommitLogIO;
  handles: HandleCache;
  onFsync: (seconds: number) => void;
  /** Bytes of recently read log kept in memory (several consumers reading the same range). */
  cacheBytes: number;
}

interface CacheEntry {
  pos: number;
  buf: Buffer;
}

export class CommitLog {
  readonly dir: string;
  readonly segmentBytes: number;
  segments: Segment[] = [];
  /** Position after the last successful write (where the next record goes). */
  tail = 0;
  /** Everything before this position is fdatasynced. */
  durable = 0;
  /** fdatasync calls made so far. */
  fsyncs = 0;
  private readonly io: CommitLogIO;
  private readonly handles: HandleCache;
  private readonly onFsync: (seconds: number) => void;
  private active: Writer | undefined;
  private writers: Writer[] = [];
  private syncWaiters: SyncWaiter[] = [];
  private syncing = false;
  /** The tail the running fdatasync covers. */
  private syncTarget = 0;
  /** Set after a failed fdatasync: the page cache can no longer be trusted, writes are refused. */
  private failed: StorageError | undefined;
  /** A failed write whose bytes could not be truncated yet. */
  private pendingTruncate: { w: Writer; at: number } | undefined;
  private readonly cacheLimit: number;
  /** Recently read ranges, oldest first. Written bytes are not cached: group buffers are reused. */
  private readCache: CacheEntry[] = [];
  private readCacheBytes = 0;

  constructor(opts: CommitLogOptions) {
    this.dir = opts.dir;
    this.segmentBytes = opts.segmentBytes;
    this.io = opts.io;
    this.handles = opts.handles;
    this.onFsync = opts.onFsync;
    this.cacheLimit = opts.cacheBytes;
  }

  /** Largest group (or batch) that fits in an empty segment. */
  get maxWriteBytes(): number {
    return this.segmentBytes - EOS_BYTES;
  }

  get firstStart(): number {
    return this.segments[0]?.start ?? 0;
  }

  get failure(): StorageError | undefined {
    return this.failed;
  }

  // ------------------------------------------------------------------- open / recovery

  /** Lists the segment files (nothing is opened for writing yet). */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true }).catch((err: unknown) => {
      throw ioError(this.dir, 'create directory', err);
    });
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw ioError(this.dir, 'list directory', err);
    }
    const segs: Segment[] = [];
    for (const name of names) {
      if (!NUMBER_NAME_RE.test(name)) continue;
      const path = join(this.dir, name);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (err) {
        throw ioError(path, 'stat segment', err);
      }
      segs.push({ start: Number(name), name, path, size, sealed: false });
    }
    segs.sort((a, b) => a.start - b.start);
    this.segments = segs;
    const last = segs[segs.length - 1];
    this.tail = last ? last.start + last.size : 0;
    this.durable = this.tail;
  }

  /** End of the data on disk. */
  get end(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? last.start + last.size : 0;
  }

  /** Index of the segment holding `pos` (start <= pos), or -1. */
  segmentAt(pos: number): number {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((segs[mid] as Segment).start <= pos) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * Validates the log from `from` (a record boundary) to its end, calling `visit`
   * for every record of every complete batch, in log order. Changes nothing on disk.
   */
  async scan(from: number, visit: (r: ScannedRecord) => void | Promise<void>): Promise<ScanResult> {
    const segs = this.segments;
    const result: ScanResult = { end: from, cut: undefined, droppedRecords: 0, scannedBytes: 0 };
    if (segs.length === 0) return result;
    let i = this.segmentAt(from);
    let pos = from;
    if (i < 0) {
      i = 0;
      pos = (segs[0] as Segment).start;
    }
    // A start right after a segment's end marker (the tail of a sealed segment) continues in the next segment.
    const s0 = segs[i] as Segment;
    if (i < segs.length - 1 && pos - s0.start === s0.size && (await this.endsWithEos(s0))) {
      i++;
      pos = (segs[i] as Segment).start;
    }
    let batchStart = pos;
    const pending: ScannedRecord[] = [];
    const cutAt = (seg: number, at: number, reason: string): void => {
      result.cut = { pos: batchStart, segment: seg, reason, at };
      result.droppedRecords = pending.length;
    };
    outer: for (; i < segs.length; i++) {
      const seg = segs[i] as Segment;
      if (pos < seg.start) pos = batchStart = seg.start;
      const fileSize = seg.size;
      let local = pos - seg.start;
      if (local > fileSize) {
        // A boundary past the data: the log lost bytes before it.
        result.cut = { pos: seg.start + fileSize, segment: i, reason: 'scan start beyond the end of the segment', at: pos };
        pos = seg.start + fileSize;
        break;
      }
      let fh: FileHandle;
      try {
        fh = await open(seg.path, 'r');
      } catch (err) {
        throw ioError(seg.path, 'open segment', err);
      }
      try {
        let buf = Buffer.alloc(0);
        let bufAt = local;
        // Makes buf cover file bytes [local, local + n) if the file has them.
        const ensure = async (n: number): Promise<boolean> => {
          if (local - bufAt + n <= buf.length) return true;
          const len = Math.min(fileSize - local, Math.max(SCAN_CHUNK, n));
          if (len < n) return false;
          const b = Buffer.allocUnsafe(len);
          let got: number;
          try {
            got = await readFully(fh, b, local);
          } catch (err) {
            throw ioError(seg.path, 'read segment', err);
          }
          buf = b.subarray(0, got);
          bufAt = local;
          return got >= n;
        };
        for (;;) {
          if (local >= fileSize) {
            if (i === segs.length - 1) {
              if (pending.length > 0) cutAt(i, seg.start + local, 'incomplete batch at the end of the log');
            } else {
              cutAt(i, seg.start + local, 'segment ends without an end-of-segment marker');
            }
            break outer;
          }
          if (!(await ensure(12))) {
            cutAt(i, seg.start + local, 'torn record header');
            break outer;
          }
          const o = local - bufAt;
          const size = buf.readUInt32LE(o);
          const type = buf[o + 8];
          if (type === TYPE_EOS) {
            if (size !== EOS_BYTES || !(await ensure(EOS_BYTES))) {
              cutAt(i, seg.start + local, 'torn end-of-segment marker');
              break outer;
            }
            const m = local - bufAt;
            if (crc32c(buf.subarray(m + 8, m + EOS_BYTES)) !== buf.readUInt32LE(m + 4) || readU64(buf, m + 12) !== seg.start + local) {
              cutAt(i, seg.start + local, 'corrupt end-of-segment marker');
              break outer;
            }
            if (pending.length > 0) {
              cutAt(i, seg.start + local, 'batch runs into an end-of-segment marker');
              break outer;
            }
            result.scannedBytes += EOS_BYTES;
            pos = seg.start + local + EOS_BYTES;
            const next = segs[i + 1];
            if (!next) break outer;
            pos = batchStart = next.start;
            continue outer;
          }
          if (type === TYPE_BATCH) {
            if (pending.length > 0) {
              cutAt(i, seg.start + local, 'batch entry inside an unfinished batch');
              break outer;
            }
            if (size < BATCH_ENTRY_FIXED_BYTES + MIN_BATCH_BYTES) {
              cutAt(i, seg.start + local, `impossible batch entry size ${size}`);
              break outer;
            }
            if (size > fileSize - local || !(await ensure(size))) {
              cutAt(i, seg.start + local, 'torn batch entry');
              break outer;
            }
            const at = local - bufAt;
            const c = checkBatchEntry(buf, at, size);
            if (typeof c === 'string') {
              cutAt(i, seg.start + local, c);
              break outer;
            }
            const shard = buf.toString('utf8', c.shardAt, c.shardEnd);
            const entryPos = seg.start + local;
            local += size;
            pos = seg.start + local;
            result.scannedBytes += size;
            for (let k = 0; k < c.count; k++) {
              const p = visit({ pos: entryPos, size, shard, offset: c.base + k, timestamp: k === 0 ? c.firstTs : c.maxTs, tagLo: c.count, tagHi: BATCH_MARK });
              if (p) await p;
            }
            batchStart = pos;
            continue;
          }
          if (type !== TYPE_RECORD) {
            cutAt(i, seg.start + local, `unknown record type ${type}`);
            break outer;
          }
          if (size < RECORD_FIXED_BYTES) {
            cutAt(i, seg.start + local, `impossible record size ${size}`);
            break outer;
          }
          if (size > fileSize - local || !(await ensure(size))) {
            cutAt(i, seg.start + local, 'torn record');
            break outer;
          }
          const r = scanRecord(buf, local - bufAt, size, seg.start + local);
          if (typeof r === 'string') {
            cutAt(i, seg.start + local, r);
            break outer;
          }
          pending.push(r.rec);
          local += size;
          pos = seg.start + local;
          result.scannedBytes += size;
          if (r.last) {
            for (const rec of pending) {
              const p = visit(rec);
              if (p) await p;
            }
            pending.length = 0;
            batchStart = pos;
          }
        }
      } finally {
        await fh.close().catch(() => undefined);
      }
    }
    result.end = result.cut ? result.cut.pos : pos;
    return result;
  }

  /** Cuts the log at cut.pos: truncates that segment, deletes every later one. Returns the bytes removed. */
  async truncate(cut: ScanCut): Promise<{ bytes: number; deleted: string[] }> {
    let bytes = 0;
    const deleted: string[] = [];
    while (this.segments.length - 1 > cut.segment) {
      const seg = this.segments.pop() as Segment;
      try {
        await unlink(seg.path);
      } catch (err) {
        if (!isNotFound(err)) throw ioError(seg.path, 'delete segment', err);
      }
      bytes += seg.size;
      deleted.unshift(seg.name);
    }
    const seg = this.segments[cut.segment];
    if (seg) {
      const local = cut.pos - seg.start;
      if (seg.size > local) {
        try {
          await truncateFile(seg.path, local);
        } catch (err) {
          throw ioError(seg.path, 'truncate segment', err);
        }
        bytes += seg.size - local;
        seg.size = local;
      }
      seg.sealed = false;
    }
    try {
      await fsyncDir(this.dir);
    } catch (err) {
      throw ioError(this.dir, 'fsync directory', err);
    }
    this.tail = this.end;
    this.durable = this.tail;
    this.dropReadCacheBelow(Infinity);
    return { bytes, deleted };
  }

  /** Opens the last segment for appending (creating the first one when there is none). */
  async openWriter(): Promise<void> {
    let seg = this.segments[this.segments.length - 1];
    if (!seg) {
      seg = { start: 0, name: numberName(0), path: join(this.dir, numberName(0)), size: 0, sealed: false };
      this.segments.push(seg);
    }
    const s = seg;
    let fh: FileHandle;
    try {
      fh = await open(s.path, s.size === 0 ? 'w+' : 'r+');
      if (s.size === 0) await fsyncDir(this.dir);
    } catch (err) {
      throw ioError(s.path, 'open segment', err);
    }
    // The last segment may have been sealed (crash between the marker and the next file).
    if (await this.endsWithEos(s)) s.sealed = true;
    const w: Writer = { seg: s, fh, dirty: false, retired: false };
    this.active = w;
    this.writers.push(w);
    this.tail = s.start + s.size;
    this.durable = this.tail;
  }

  /** The segment's last bytes are its end-of-segment marker. */
  private async endsWithEos(seg: Segment): Promise<boolean> {
    if (seg.size < EOS_BYTES) return false;
    const b = Buffer.alloc(EOS_BYTES);
    let n = 0;
    try {
      const fh = await open(seg.path, 'r');
      try {
        n = await readFully(fh, b, seg.size - EOS_BYTES);
      } finally {
        await fh.close();
      }
    } catch {
      return false;
    }
    return (
      n === EOS_BYTES &&
      b.readUInt32LE(0) === EOS_BYTES &&
      b[8] === TYPE_EOS &&
      readU64(b, 12) === seg.start + seg.size - EOS_BYTES &&
      crc32c(b.subarray(8)) === b.readUInt32LE(4)
    );
  }

  /** Position after the last record (before the active segment's end marker, if it is sealed). */
  get recordEnd(): number {
    const w = this.active;
    if (!w) return this.end;
    return w.seg.start + w.seg.size - (w.seg.sealed ? EOS_BYTES : 0);
  }

  // ------------------------------------------------------------------- writes

  /** Bytes a group can still take in the active segment. */
  room(): number {
    const w = this.active;
    if (!w || w.seg.sealed) return 0;
    return Math.max(0, this.segmentBytes - EOS_BYTES - w.seg.size);
  }

  /** Throws when writes are refused (after a failed fdatasync, or a failed write that could not be undone yet). */
  private async checkWritable(): Promise<Writer> {
    if (this.failed) throw this.failed;
    const pt = this.pendingTruncate;
    if (pt) {
      try {
        await pt.w.fh.truncate(pt.at);
      } catch (err) {
        throw ioError(pt.w.seg.path, 'truncate after a failed write', err);
      }
      this.pendingTruncate = undefined;
    }
    const w = this.active;
    if (!w) throw new StorageIOError(this.dir, 'write', new Error('commit log is not open for writing'));
    return w;
  }

  private async undo(w: Writer, at: number): Promise<void> {
    try {
      await w.fh.truncate(at);
    } catch {
      this.pendingTruncate = { w, at };
    }
  }

  /**
   * Writes `buf` at the tail of the active segment (the caller checked room()).
   * Returns its position. The write is issued before this returns (the caller may
   * encode the next group meanwhile).
   */
  append(buf: Buffer): Promise<number> {
    const w = this.active;
    if (this.failed || this.pendingTruncate || !w) return this.checkWritable().then((ww) => this.writeAt(ww, buf));
    return this.writeAt(w, buf);
  }

  private async writeAt(w: Writer, buf: Buffer): Promise<number> {
    const seg = w.seg;
    const at = seg.size;
    const pos = seg.start + at;
    try {
      await this.io.write(w.fh, buf, at, seg.path);
    } catch (err) {
      await this.undo(w, at);
      throw ioError(seg.path, 'write', err);
    }
    seg.size = at + buf.length;
    this.tail = seg.start + seg.size;
    w.dirty = true;
    return pos;
  }

  /** Seals the active segment with an end marker and starts the next one. */
  async roll(): Promise<void> {
    const w = await this.checkWritable();
    const seg = w.seg;
    if (!seg.sealed) {
      const at = seg.size;
      try {
        await this.io.write(w.fh, encodeEos(seg.start + at), at, seg.path);
      } catch (err) {
        await this.undo(w, at);
        throw ioError(seg.path, 'write end-of-segment marker', err);
      }
      seg.size = at + EOS_BYTES;
      seg.sealed = true;
      w.dirty = true;
    }
    const start = seg.start + Math.max(this.segmentBytes, seg.size);
    const name = numberName(start);
    const path = join(this.dir, name);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'w+');
      await fsyncDir(this.dir);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      throw ioError(path, 'create segment', err);
    }
    const ns: Segment = { start, name, path, size: 0, sealed: false };
    this.segments.push(ns);
    const nw: Writer = { seg: ns, fh, dirty: false, retired: false };
    this.writers.push(nw);
    this.active = nw;
    w.retired = true;
    if (!w.dirty) this.closeWriter(w);
    this.tail = start;
  }

  private closeWriter(w: Writer): void {
    const i = this.writers.indexOf(w);
    if (i >= 0) this.writers.splice(i, 1);
    w.fh.close().catch(() => undefined);
  }

  // ------------------------------------------------------------------- durability

  /** Resolves once everything before `target` is fdatasynced (group commit). */
  waitDurable(target: number): Promise<void> {
    if (target <= this.durable) return Promise.resolve();
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ target, resolve, reject });
      if (!this.syncing) void this.syncLoop();
    });
  }

  /** fdatasyncs everything written so far. */
  flush(): Promise<void> {
    return this.waitDurable(this.tail);
  }

  get dirty(): boolean {
    return this.tail > this.durable;
  }

  /** An fdatasync is running. */
  get syncInProgress(): boolean {
    return this.syncing;
  }

  /** Bytes written since the last fdatasync began (or completed, when none runs). */
  get unsyncedBytes(): number {
    return this.tail - (this.syncing ? this.syncTarget : this.durable);
  }

  private async syncLoop(): Promise<void> {
    this.syncing = true;
    try {
      while (this.syncWaiters.length > 0) {
        const target = this.tail;
        this.syncTarget = target;
        const dirty: Writer[] = [];
        for (const w of this.writers) {
          if (w.dirty) {
            w.dirty = false;
            dirty.push(w);
          }
        }
        try {
          await Promise.all(dirty.map((w) => this.datasync(w)));
        } catch (err) {
          for (const w of dirty) w.dirty = true;
          const e = ioError(this.dir, 'fdatasync', err);
          this.failed ??= e;
          const ws = this.syncWaiters;
          this.syncWaiters = [];
          for (const x of ws) x.reject(e);
          break;
        }
        if (target > this.durable) this.durable = target;
        const ws = this.syncWaiters;
        const rest: SyncWaiter[] = [];
        const done: SyncWaiter[] = [];
        for (const x of ws) (x.target <= this.durable ? done : rest).push(x);
        this.syncWaiters = rest;
        for (const x of done) x.resolve();
        for (const w of [...this.writers]) if (w.retired && !w.dirty) this.closeWriter(w);
      }
    } finally {
      this.syncing = false;
    }
  }

  private async datasync(w: Writer): Promise<void> {
    const t0 = performance.now();
    await this.io.datasync(w.fh, w.seg.path);
    this.fsyncs++;
    this.onFsync((performance.now() - t0) / 1000);
  }

  // ------------------------------------------------------------------- reads

  private cached(pos: number, len: number): Buffer | undefined {
    const c = this.readCache;
    for (let i = c.length - 1; i >= 0; i--) {
      const e = c[i] as CacheEntry;
      if (e.pos <= pos && pos + len <= e.pos + e.buf.length) return e.buf.subarray(pos - e.pos, pos - e.pos + len);
    }
    return undefined;
  }

  private rememberRead(pos: number, buf: Buffer): void {
    if (buf.length > this.cacheLimit / 4) return;
    this.readCache.push({ pos, buf });
    this.readCacheBytes += buf.length;
    while (this.readCacheBytes > this.cacheLimit || this.readCache.length > 16) {
      const e = this.readCache.shift() as CacheEntry;
      this.readCacheBytes -= e.buf.length;
    }
  }

  /** Bytes [pos, pos + len) of the log (one segment), from the cache or one positioned read. */
  async readRange(pos: number, len: number): Promise<Buffer> {
    const hit = this.cached(pos, len);
    if (hit) return hit;
    const seg = this.segments[this.segmentAt(pos)];
    if (!seg) throw new StorageIOError(this.dir, 'read', new Error(`position ${pos} is not in the commit log`));
    const local = pos - seg.start;
    if (local + len > seg.size) throw new StorageIOError(seg.path, 'read', new Error(`bytes ${pos}..${pos + len} are beyond the end of the segment`));
    const buf = Buffer.allocUnsafe(len);
    let n: number;
    try {
      n = await this.handles.use(seg.path, (fh) => readFully(fh, buf, local));
    } catch (err) {
      throw ioError(seg.path, 'read', err);
    }
    if (n < len) throw new StorageIOError(seg.path, 'read', new Error(`short read at ${pos}: ${n} of ${len} bytes`));
    this.rememberRead(pos, buf);
    return buf;
  }

  private dropReadCacheBelow(pos: number): void {
    this.readCache = this.readCache.filter((e) => e.pos >= pos);
    this.readCacheBytes = this.readCache.reduce((n, e) => n + e.buf.length, 0);
  }

  /** The path of the segment holding `pos` (for error messages). */
  pathOf(pos: number): string {
    return this.segments[this.segmentAt(pos)]?.path ?? this.dir;
  }

  // ------------------------------------------------------------------- reclaiming

  /** Deletes whole segments (never the active one) whose data all lies before `minLive`. Returns their names. */
  async deleteBefore(minLive: number): Promise<string[]> {
    const deleted: string[] = [];
    while (this.segments.length > 1) {
      const s0 = this.segments[0] as Segment;
      const s1 = this.segments[1] as Segment;
      if (s1.start > minLive) break;
      if (this.writers.some((w) => w.seg === s0)) {
        // A retired segment still waiting for its fdatasync: sync (which closes it), then delete.
        if (this.failed || this.active?.seg === s0) break;
        await this.flush();
        if (this.writers.some((w) => w.seg === s0)) break;
        continue;
      }
      this.segments.shift();
      this.handles.evict(s0.path);
      this.dropReadCacheBelow(s1.start);
      try {
        await unlink(s0.path);
      } catch (err) {
        if (!isNotFound(err)) {
          this.segments.unshift(s0);
          throw ioError(s0.path, 'delete segment', err);
        }
      }
      deleted.push(s0.name);
    }
    if (deleted.length > 0) await fsyncDir(this.dir).catch(() => undefined);
    return deleted;
  }

  /** Flushes (unless writes failed) and closes the write handles. */
  async close(): Promise<void> {
    let err: unknown;
    if (!this.failed && this.dirty) {
      try {
        await this.flush();
      } catch (e) {
        err = e;
      }
    }
    for (const w of this.writers) await w.fh.close().catch(() => undefined);
    this.writers = [];
    this.active = undefined;
    this.readCache = [];
    this.readCacheBytes = 0;
    if (err) throw err;
  }
}
