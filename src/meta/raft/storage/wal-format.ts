/**
 * WAL segment record encoding. See raft-log-store.ts for the full format description.
 *
 * Every record: [u32 len][u32 crc][u8 type][payload], little-endian, where
 * `len` = 1 + payload length (the bytes after the crc field) and `crc` = CRC32C
 * of those same `len` bytes.
 */
import { crc32c } from '../../../common/crc.js';
import type { Entry, EntryType, HardState } from '../core/types.js';

export const WAL_FORMAT_VERSION = 1;

/** len + crc. */
export const FRAME_BYTES = 8;

export const RecordType = {
  /** First record of every segment: format version, segment sequence, hard state at creation. */
  Header: 1,
  Entry: 2,
  HardState: 3,
  /** A snapshot was installed through persist(); see the replay rules. */
  Snapshot: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Payload sizes (excluding the type byte). */
const HEADER_PAYLOAD = 4 + 8 + 8 + 8 + 8;
const ENTRY_FIXED_PAYLOAD = 8 + 8 + 1;
const HARDSTATE_PAYLOAD = 8 + 8 + 8;
const SNAPSHOT_PAYLOAD = 8 + 8;

export const HEADER_RECORD_BYTES = FRAME_BYTES + 1 + HEADER_PAYLOAD;
export const HARDSTATE_RECORD_BYTES = FRAME_BYTES + 1 + HARDSTATE_PAYLOAD;
export const SNAPSHOT_RECORD_BYTES = FRAME_BYTES + 1 + SNAPSHOT_PAYLOAD;
export function entryRecordBytes(dataLength: number): number {
  return FRAME_BYTES + 1 + ENTRY_FIXED_PAYLOAD + dataLength;
}

const TWO_32 = 0x1_0000_0000;

export function writeU64(buf: Buffer, value: number, off: number): void {
  buf.writeUInt32LE(value % TWO_32, off);
  buf.writeUInt32LE(Math.floor(value / TWO_32), off + 4);
}

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_32;
}

function entryTypeCode(type: EntryType): number {
  return type === 'conf' ? 1 : 0;
}

export type WalRecord =
  | { type: typeof RecordType.Header; version: number; seq: number; hardState: HardState }
  | { type: typeof RecordType.Entry; entry: Entry }
  | { type: typeof RecordType.HardState; hardState: HardState }
  | { type: typeof RecordType.Snapshot; index: number; term: number };

/**
 * Builds a batch of records into one Buffer (one write, one checksum pass per record).
 * Call the add* methods, then `finish()`.
 */
export class RecordWriter {
  private readonly buf: Buffer;
  private off = 0;

  constructor(totalBytes: number) {
    this.buf = Buffer.allocUnsafe(totalBytes);
  }

  private begin(type: RecordType, payloadBytes: number): number {
    const start = this.off;
    this.buf.writeUInt32LE(1 + payloadBytes, start);
    this.buf.writeUInt8(type, start + FRAME_BYTES);
    this.off = start + FRAME_BYTES + 1;
    return start;
  }

  private end(start: number): void {
    const len = this.buf.readUInt32LE(start);
    const crc = crc32c(this.buf.subarray(start + FRAME_BYTES, start + FRAME_BYTES + len));
    this.buf.writeUInt32LE(crc, start + 4);
  }

  addHeader(seq: number, hs: HardState): void {
    const s = this.begin(RecordType.Header, HEADER_PAYLOAD);
    this.buf.writeUInt32LE(WAL_FORMAT_VERSION, this.off);
    writeU64(this.buf, seq, this.off + 4);
    writeU64(this.buf, hs.term, this.off + 12);
    writeU64(this.buf, hs.vote, this.off + 20);
    writeU64(this.buf, hs.commit, this.off + 28);
    this.off += HEADER_PAYLOAD;
    this.end(s);
  }

  addEntry(e: Entry): void {
    const s = this.begin(RecordType.Entry, ENTRY_FIXED_PAYLOAD + e.data.length);
    writeU64(this.buf, e.index, this.off);
    writeU64(this.buf, e.term, this.off + 8);
    this.buf.writeUInt8(entryTypeCode(e.type), this.off + 16);
    this.off += ENTRY_FIXED_PAYLOAD;
    this.buf.set(e.data, this.off);
    this.off += e.data.length;
    this.end(s);
  }

  addHardState(hs: HardState): void {
    const s = this.begin(RecordType.HardState, HARDSTATE_PAYLOAD);
    writeU64(this.buf, hs.term, this.off);
    writeU64(this.buf, hs.vote, this.off + 8);
    writeU64(this.buf, hs.commit, this.off + 16);
    this.off += HARDSTATE_PAYLOAD;
    this.end(s);
  }

  addSnapshot(index: number, term: number): void {
    const s = this.begin(RecordType.Snapshot, SNAPSHOT_PAYLOAD);
    writeU64(this.buf, index, this.off);
    writeU64(this.buf, term, this.off + 8);
    this.off += SNAPSHOT_PAYLOAD;
    this.end(s);
  }

  finish(): Buffer {
    if (this.off !== this.buf.length) throw new Error(`RecordWriter: wrote ${this.off} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

export function encodeHeader(seq: number, hs: HardState): Buffer {
  const w = new RecordWriter(HEADER_RECORD_BYTES);
  w.addHeader(seq, hs);
  return w.finish();
}

/** Why parsing stopped before the end of the segment. */
export type StopReason = 'torn' | 'crc' | 'bad_length' | 'bad_header';

/** A record whose checksum is valid but which this version cannot interpret: never silently cut. */
export class UnreadableRecord extends Error {
  constructor(
    readonly offset: number,
    detail: string,
  ) {
    super(detail);
  }
}

export interface ParsedSegment {
  records: { offset: number; record: WalRecord }[];
  /** Bytes from the start of the file that hold valid records. */
  validBytes: number;
  /** Set when parsing stopped before the end of the buffer. */
  stop?: { offset: number; reason: StopReason };
}

function copyBytes(buf: Buffer, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

/**
 * Parses one segment file's bytes. Stops at the first record that runs past the
 * end of the buffer (torn), fails its CRC, has an impossible length, or (for the
 * first record) is not a valid header for `expectedSeq`. Throws UnreadableRecord
 * for a checksum-valid record this version does not understand.
 */
export function parseSegment(buf: Buffer, expectedSeq: number): ParsedSegment {
  const records: ParsedSegment['records'] = [];
  let off = 0;
  const stopAt = (reason: StopReason): ParsedSegment => ({ records, validBytes: off, stop: { offset: off, reason } });
  while (off < buf.length) {
    if (buf.length - off < FRAME_BYTES) return stopAt('torn');
    const len = buf.readUInt32LE(off);
    if (len === 0) return stopAt('bad_length');
    if (len > buf.length - off - FRAME_BYTES) return stopAt('torn');
    const body = buf.subarray(off + FRAME_BYTES, off + FRAME_BYTES + len);
    if (crc32c(body) !== buf.readUInt32LE(off + 4)) return stopAt('crc');
    const type = body[0] as number;
    const p = off + FRAME_BYTES + 1;
    const payloadLen = len - 1;
    let record: WalRecord;
    switch (type) {
      case RecordType.Header: {
        if (payloadLen !== HEADER_PAYLOAD || off !== 0) return stopAt('bad_header');
        const version = buf.readUInt32LE(p);
        if (version !== WAL_FORMAT_VERSION) throw new UnreadableRecord(off, `unsupported WAL format version ${version}`);
        const seq = readU64(buf, p + 4);
        if (seq !== expectedSeq) return stopAt('bad_header');
        record = {
          type: RecordType.Header,
          version,
          seq,
          hardState: { term: readU64(buf, p + 12), vote: readU64(buf, p + 20), commit: readU64(buf, p + 28) },
        };
        break;
      }
      case RecordType.Entry: {
        if (payloadLen < ENTRY_FIXED_PAYLOAD) throw new UnreadableRecord(off, `entry record too short (${payloadLen} bytes)`);
        const code = buf.readUInt8(p + 16);
        if (code !== 0 && code !== 1) throw new UnreadableRecord(off, `unknown entry type ${code}`);
        record = {
          type: RecordType.Entry,
          entry: {
            index: readU64(buf, p),
            term: readU64(buf, p + 8),
            type: code === 1 ? 'conf' : 'normal',
            data: copyBytes(buf, p + ENTRY_FIXED_PAYLOAD, off + FRAME_BYTES + len),
          },
        };
        break;
      }
      case RecordType.HardState:
        if (payloadLen !== HARDSTATE_PAYLOAD) throw new UnreadableRecord(off, `hard state record has ${payloadLen} bytes`);
        record = { type: RecordType.HardState, hardState: { term: readU64(buf, p), vote: readU64(buf, p + 8), commit: readU64(buf, p + 16) } };
        break;
      case RecordType.Snapshot:
        if (payloadLen !== SNAPSHOT_PAYLOAD) throw new UnreadableRecord(off, `snapshot record has ${payloadLen} bytes`);
        record = { type: RecordType.Snapshot, index: readU64(buf, p), term: readU64(buf, p + 8) };
        break;
      default:
        throw new UnreadableRecord(off, `unknown record type ${type}`);
    }
    if (off === 0 && record.type !== RecordType.Header) return stopAt('bad_header');
    records.push({ offset: off, record });
    off += FRAME_BYTES + len;
  }
  return { records, validBytes: off };
}
