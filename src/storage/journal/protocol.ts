/**
 * The journal data path: the frames a writer (the journal engine on a broker)
 * and a journal node exchange over `[journal] tcp_port`.
 *
 * A segment replica is a sequence of *entries*, one per record offset, numbered
 * from 0 within the segment (entry id = shard offset - segment start offset). A
 * stored Kafka batch is one *unit* that covers `count` consecutive entries; a
 * single record is a unit of one entry.
 *
 * STRIPING (ensemble E larger than write quorum Qw): each append goes to the Qw
 * replicas of its write set; the others get a *hole* unit in its place, which
 * says "these entries are not held here". Every replica still sees every entry
 * id in order (data or hole), so the in-order add checks stay as they are, and
 * a reader that meets a hole asks another replica.
 *
 * Frame: u32 length of the rest | u8 type | u32 correlation id | body.
 * Every request is answered by one response frame carrying the same correlation
 * id and the request's type with the high bit set; a connection may have many
 * requests in flight and answers may come back in any order.
 *
 * Strings: u16 length + UTF-8. Integers are big-endian; entry ids are i64 carried
 * as JavaScript numbers (below 2^53).
 */
import type { AppendBatch, AppendRecord, RecordHeader, StoredRecord } from '../types.js';

export const FRAME_HEADER_BYTES = 9; // u32 length + u8 type + u32 correlation id
/** Largest frame either side accepts (a batch of units; the writer splits bigger appends). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
export const RESPONSE_BIT = 0x80;
/** `segment` value of a DELETE that removes every segment replica of the shard. */
export const ALL_SEGMENTS = 0xffffffff;

export const enum Op {
  /** Append units to a segment replica (writer, or recovery copying a tail). */
  Add = 1,
  /** Read units of a segment replica. */
  Read = 2,
  /** Refuse adds below an epoch from now on; answers the replica's end. */
  Fence = 3,
  /** Drop one segment replica, or all of a shard's (ALL_SEGMENTS). */
  Delete = 4,
  /** The replica's end, known last-add-confirmed and fence epoch, without fencing. */
  Info = 5,
  /** Every segment replica this node holds (re-replication, operator views). */
  List = 6,
}

export const enum Status {
  Ok = 0,
  /** The segment was fenced at a larger epoch: this writer is stale. */
  Fenced = 1,
  /** No replica of that segment here. */
  NotFound = 2,
  /** The add does not continue the replica (its first entry is past the replica's end). */
  Gap = 3,
  IoError = 4,
  BadRequest = 5,
  /** The journal node's disk is full. */
  Full = 6,
}

export const STATUS_NAMES: Record<Status, string> = {
  [Status.Ok]: 'ok',
  [Status.Fenced]: 'fenced',
  [Status.NotFound]: 'not_found',
  [Status.Gap]: 'gap',
  [Status.IoError]: 'io_error',
  [Status.BadRequest]: 'bad_request',
  [Status.Full]: 'storage_full',
};

/** One unit of a segment: a stored batch (covers `count` entries) or one record. */
export type Unit =
  | { kind: 'batch'; batch: AppendBatch }
  | { kind: 'record'; record: AppendRecord }
  | { kind: 'hole'; count: number };

/** A unit that carries entries: what an append is made of (holes exist only on the wire and in replicas). */
export type EntryUnit = Exclude<Unit, { kind: 'hole' }>;

/** A unit read back: its first entry id within the segment. */
export type ReadUnit =
  | { kind: 'batch'; entry: number; count: number; bytes: Buffer }
  | { kind: 'record'; entry: number; record: Omit<StoredRecord, 'offset'> }
  | { kind: 'hole'; entry: number; count: number };

export interface SegmentRef {
  shard: string;
  segment: number;
}

export interface AddRequest extends SegmentRef {
  op: Op.Add;
  epoch: number;
  /** fdatasync before answering. */
  sync: boolean;
  /** The writer's last add confirmed (entry id, -1 for none): a replica may serve reads up to it. */
  lac: number;
  /** Entry id of the first unit's first entry. */
  firstEntry: number;
  units: Unit[];
}

export interface ReadRequest extends SegmentRef {
  op: Op.Read;
  fromEntry: number;
  maxEntries: number;
  maxBytes: number;
}

export interface FenceRequest extends SegmentRef {
  op: Op.Fence;
  epoch: number;
}

export interface DeleteRequest extends SegmentRef {
  op: Op.Delete;
}

export interface InfoRequest extends SegmentRef {
  op: Op.Info;
}

export interface ListRequest {
  op: Op.List;
}

export type Request = AddRequest | ReadRequest | FenceRequest | DeleteRequest | InfoRequest | ListRequest;

/** What a replica knows about itself: its next entry id, its known last add confirmed, its fence epoch. */
export interface ReplicaState {
  /** Entries held: ids 0..end-1. */
  end: number;
  /** Last add confirmed the writer told it (-1 none). */
  lac: number;
  /** Adds below this epoch are refused (0 = never fenced). */
  fencedEpoch: number;
}

export type Response =
  | { op: Op.Add; status: Status; message: string; state: ReplicaState }
  | { op: Op.Read; status: Status; message: string; state: ReplicaState; units: ReadUnit[] }
  | { op: Op.Fence | Op.Info; status: Status; message: string; state: ReplicaState }
  | { op: Op.Delete; status: Status; message: string }
  | { op: Op.List; status: Status; message: string; replicas: Array<SegmentRef & ReplicaState> };

/** A frame that cannot be decoded; the receiver closes the connection. */
export class JournalProtocolError extends Error {
  constructor(message: string) {
    super(`journal protocol: ${message}`);
    this.name = 'JournalProtocolError';
  }
}

// ---------------------------------------------------------------- writing

/** Appends big-endian fields to a growing buffer; one allocation per frame in the common case. */
export class FrameWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.need(1);
    this.buf[this.pos++] = v;
    return this;
  }
  u16(v: number): this {
    this.need(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.need(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }
  i32(v: number): this {
    this.need(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }
  i64(v: number): this {
    this.need(8);
    this.buf.writeBigInt64BE(BigInt(v), this.pos);
    this.pos += 8;
    return this;
  }
  str(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 0xffff) throw new RangeError(`string of ${n} bytes is too long for a journal frame`);
    this.u16(n);
    this.need(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    return this;
  }
  /** i32 length (-1 for null) + bytes. */
  bytes(b: Buffer | null): this {
    if (b === null) return this.i32(-1);
    this.i32(b.length);
    this.need(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    return this;
  }

  /** The frame so far, with its length prefix filled in (the caller began with frameStart). */
  finish(): Buffer {
    this.buf.writeUInt32BE(this.pos - 4, 0);
    return this.buf.subarray(0, this.pos);
  }
}

function frameStart(type: number, correlationId: number, sizeHint = 256): FrameWriter {
  return new FrameWriter(sizeHint).u32(0).u8(type).u32(correlationId);
}

function writeRecordBody(w: FrameWriter, r: Omit<StoredRecord, 'offset'>): void {
  w.i64(r.timestamp);
  if (r.tag === undefined) w.i32(-1);
  else w.bytes(Buffer.from(r.tag, 'utf8'));
  w.bytes(r.key).bytes(r.value);
  w.u16(r.headers.length);
  for (const h of r.headers) w.str(h.key).bytes(h.value);
}

const UNIT_BATCH = 1;
const UNIT_RECORD = 2;
const UNIT_HOLE = 3;

function unitsSizeHint(units: readonly Unit[]): number {
  let n = 64;
  for (const u of units) {
    if (u.kind === 'batch') n += u.batch.bytes.length + 32;
    else if (u.kind === 'hole') n += 8;
    else n += (u.record.value?.length ?? 0) + (u.record.key?.length ?? 0) + 64;
  }
  return n;
}

export function encodeRequest(correlationId: number, req: Request): Buffer {
  switch (req.op) {
    case Op.Add: {
      const w = frameStart(Op.Add, correlationId, unitsSizeHint(req.units));
      w.str(req.shard).u32(req.segment).u32(req.epoch).u8(req.sync ? 1 : 0).i64(req.lac).i64(req.firstEntry).u32(req.units.length);
      for (const u of req.units) {
        if (u.kind === 'batch') {
          w.u8(UNIT_BATCH).u32(u.batch.count).i64(u.batch.firstTimestamp).i64(u.batch.maxTimestamp).bytes(u.batch.bytes);
        } else if (u.kind === 'hole') {
          w.u8(UNIT_HOLE).u32(u.count);
        } else {
          w.u8(UNIT_RECORD);
          writeRecordBody(w, u.record);
        }
      }
      return w.finish();
    }
    case Op.Read:
      return frameStart(Op.Read, correlationId).str(req.shard).u32(req.segment).i64(req.fromEntry).u32(req.maxEntries).u32(req.maxBytes).finish();
    case Op.Fence:
      return frameStart(Op.Fence, correlationId).str(req.shard).u32(req.segment).u32(req.epoch).finish();
    case Op.Delete:
    case Op.Info:
      return frameStart(req.op, correlationId).str(req.shard).u32(req.segment).finish();
    case Op.List:
      return frameStart(Op.List, correlationId).finish();
  }
}

function writeState(w: FrameWriter, s: ReplicaState): void {
  w.i64(s.end).i64(s.lac).u32(s.fencedEpoch);
}

export function encodeResponse(correlationId: number, res: Response): Buffer {
  const hint = res.op === Op.Read ? res.units.reduce((n, u) => n + (u.kind === 'batch' ? u.bytes.length + 24 : u.kind === 'hole' ? 16 : (u.record.value?.length ?? 0) + (u.record.key?.length ?? 0) + 64), 64) : 128;
  const w = frameStart(res.op | RESPONSE_BIT, correlationId, hint);
  w.u8(res.status).str(res.message.length > 1000 ? res.message.slice(0, 1000) : res.message);
  switch (res.op) {
    case Op.Add:
    case Op.Fence:
    case Op.Info:
      writeState(w, res.state);
      break;
    case Op.Read:
      writeState(w, res.state);
      w.u32(res.units.length);
      for (const u of res.units) {
        if (u.kind === 'batch') w.u8(UNIT_BATCH).i64(u.entry).u32(u.count).bytes(u.bytes);
        else if (u.kind === 'hole') w.u8(UNIT_HOLE).i64(u.entry).u32(u.count);
        else {
          w.u8(UNIT_RECORD).i64(u.entry);
          writeRecordBody(w, u.record);
        }
      }
      break;
    case Op.Delete:
      break;
    case Op.List:
      w.u32(res.replicas.length);
      for (const r of res.replicas) {
        w.str(r.shard).u32(r.segment);
        writeState(w, r);
      }
      break;
  }
  return w.finish();
}

// ---------------------------------------------------------------- reading

/** Reads fields of one frame body; every read checks bounds and throws JournalProtocolError. */
export class FrameReader {
  pos: number;

  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  private take(n: number, what: string): number {
    if (n < 0 || this.pos + n > this.end) throw new JournalProtocolError(`frame ends inside ${what}`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(what: string): number {
    return this.buf[this.take(1, what)]!;
  }
  u16(what: string): number {
    return this.buf.readUInt16BE(this.take(2, what));
  }
  u32(what: string): number {
    return this.buf.readUInt32BE(this.take(4, what));
  }
  i32(what: string): number {
    return this.buf.readInt32BE(this.take(4, what));
  }
  i64(what: string): number {
    const v = this.buf.readBigInt64BE(this.take(8, what));
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new JournalProtocolError(`${what} ${v} is out of range`);
    return Number(v);
  }
  str(what: string): string {
    const n = this.u16(what);
    const at = this.take(n, what);
    return this.buf.toString('utf8', at, at + n);
  }
  /** A view (no copy) of the bytes; null for length -1. */
  bytes(what: string): Buffer | null {
    const n = this.i32(what);
    if (n === -1) return null;
    if (n < -1) throw new JournalProtocolError(`${what} has negative length ${n}`);
    const at = this.take(n, what);
    return this.buf.subarray(at, at + n);
  }
  done(what: string): void {
    if (this.pos !== this.end) throw new JournalProtocolError(`${this.end - this.pos} unexpected bytes after ${what}`);
  }
}

function readRecordBody(r: FrameReader): Omit<StoredRecord, 'offset'> {
  const timestamp = r.i64('record timestamp');
  const tag = r.bytes('record tag');
  const key = r.bytes('record key');
  const value = r.bytes('record value');
  const n = r.u16('header count');
  const headers: RecordHeader[] = [];
  for (let i = 0; i < n; i++) {
    const hk = r.str('header key');
    const hv = r.bytes('header value');
    if (hv === null) throw new JournalProtocolError('header value is null');
    headers.push({ key: hk, value: hv });
  }
  return { timestamp, key, value, headers, ...(tag !== null ? { tag: tag.toString('utf8') } : {}) };
}

function readState(r: FrameReader): ReplicaState {
  return { end: r.i64('end'), lac: r.i64('lac'), fencedEpoch: r.u32('fenced epoch') };
}

export interface FrameHead {
  type: number;
  correlationId: number;
  /** Body from `start` to `end` in the buffer the head was read from. */
  start: number;
  end: number;
}

/**
 * The frame at `at` in `buf`, or undefined when the buffer does not hold it
 * whole yet. Throws on a length that is too small or too large.
 */
export function frameAt(buf: Buffer, at: number): FrameHead | undefined {
  if (buf.length - at < 4) return undefined;
  const len = buf.readUInt32BE(at);
  if (len < FRAME_HEADER_BYTES - 4) throw new JournalProtocolError(`frame length ${len} is too small`);
  if (len > MAX_FRAME_BYTES) throw new JournalProtocolError(`frame of ${len} bytes exceeds the limit of ${MAX_FRAME_BYTES}`);
  if (buf.length - at < 4 + len) return undefined;
  return { type: buf[at + 4]!, correlationId: buf.readUInt32BE(at + 5), start: at + FRAME_HEADER_BYTES, end: at + 4 + len };
}

/** Decodes a request body. Byte fields are views into `buf`: copy them if they must outlive it. */
export function decodeRequest(buf: Buffer, head: FrameHead): Request {
  const r = new FrameReader(buf, head.start, head.end);
  let req: Request;
  switch (head.type) {
    case Op.Add: {
      const shard = r.str('shard');
      const segment = r.u32('segment');
      const epoch = r.u32('epoch');
      const sync = r.u8('sync') === 1;
      const lac = r.i64('lac');
      const firstEntry = r.i64('first entry');
      if (firstEntry < 0) throw new JournalProtocolError(`first entry ${firstEntry} is negative`);
      const n = r.u32('unit count');
      const units: Unit[] = [];
      for (let i = 0; i < n; i++) {
        const kind = r.u8('unit kind');
        if (kind === UNIT_BATCH) {
          const count = r.u32('batch count');
          const firstTimestamp = r.i64('batch first timestamp');
          const maxTimestamp = r.i64('batch max timestamp');
          const bytes = r.bytes('batch bytes');
          if (bytes === null || count < 1) throw new JournalProtocolError('batch unit without bytes or records');
          units.push({ kind: 'batch', batch: { bytes, count, firstTimestamp, maxTimestamp } });
        } else if (kind === UNIT_RECORD) {
          units.push({ kind: 'record', record: readRecordBody(r) });
        } else if (kind === UNIT_HOLE) {
          const count = r.u32('hole count');
          if (count < 1) throw new JournalProtocolError('hole unit of no entries');
          units.push({ kind: 'hole', count });
        } else throw new JournalProtocolError(`unknown unit kind ${kind}`);
      }
      req = { op: Op.Add, shard, segment, epoch, sync, lac, firstEntry, units };
      break;
    }
    case Op.Read:
      req = { op: Op.Read, shard: r.str('shard'), segment: r.u32('segment'), fromEntry: r.i64('from entry'), maxEntries: r.u32('max entries'), maxBytes: r.u32('max bytes') };
      break;
    case Op.Fence:
      req = { op: Op.Fence, shard: r.str('shard'), segment: r.u32('segment'), epoch: r.u32('epoch') };
      break;
    case Op.Delete:
    case Op.Info:
      req = { op: head.type, shard: r.str('shard'), segment: r.u32('segment') };
      break;
    case Op.List:
      req = { op: Op.List };
      break;
    default:
      throw new JournalProtocolError(`unknown request type ${head.type}`);
  }
  r.done('the request');
  return req;
}

/** Decodes a response body. Byte fields are views into `buf`. */
export function decodeResponse(buf: Buffer, head: FrameHead): Response {
  const op = head.type & ~RESPONSE_BIT;
  if ((head.type & RESPONSE_BIT) === 0) throw new JournalProtocolError(`frame type ${head.type} is not a response`);
  const r = new FrameReader(buf, head.start, head.end);
  const status = r.u8('status') as Status;
  if (!(status in STATUS_NAMES)) throw new JournalProtocolError(`unknown status ${status}`);
  const message = r.str('message');
  let res: Response;
  switch (op) {
    case Op.Add:
    case Op.Fence:
    case Op.Info:
      res = { op, status, message, state: readState(r) };
      break;
    case Op.Read: {
      const state = readState(r);
      const n = r.u32('unit count');
      const units: ReadUnit[] = [];
      for (let i = 0; i < n; i++) {
        const kind = r.u8('unit kind');
        if (kind === UNIT_BATCH) {
          const entry = r.i64('unit entry');
          const count = r.u32('batch count');
          const bytes = r.bytes('batch bytes');
          if (bytes === null) throw new JournalProtocolError('batch unit without bytes');
          units.push({ kind: 'batch', entry, count, bytes });
        } else if (kind === UNIT_RECORD) {
          const entry = r.i64('unit entry');
          units.push({ kind: 'record', entry, record: readRecordBody(r) });
        } else if (kind === UNIT_HOLE) {
          const entry = r.i64('unit entry');
          const count = r.u32('hole count');
          if (count < 1) throw new JournalProtocolError('hole unit of no entries');
          units.push({ kind: 'hole', entry, count });
        } else throw new JournalProtocolError(`unknown unit kind ${kind}`);
      }
      res = { op, status, message, state, units };
      break;
    }
    case Op.Delete:
      res = { op, status, message };
      break;
    case Op.List: {
      const n = r.u32('replica count');
      const replicas: Array<SegmentRef & ReplicaState> = [];
      for (let i = 0; i < n; i++) replicas.push({ shard: r.str('shard'), segment: r.u32('segment'), ...readState(r) });
      res = { op, status, message, replicas };
      break;
    }
    default:
      throw new JournalProtocolError(`unknown response type ${head.type}`);
  }
  r.done('the response');
  return res;
}

/** Entries a unit covers. */
export function unitEntries(u: Unit | ReadUnit): number {
  if (u.kind === 'record') return 1;
  if (u.kind === 'hole') return u.count;
  return 'batch' in u ? u.batch.count : u.count;
}
