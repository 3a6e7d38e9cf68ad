/**
 * The `file` storage engine (DESIGN.md §5): local persistence in the RocketMQ
 * layout, under `dir`:
 *
 *   commitlog/<20-digit start position>       one log shared by every shard (commitlog.ts)
 *   consumequeue/<shard dir>/<20-digit offset> per-shard offset index (consume-queue.ts)
 *   index/<shard dir>/<20-digit offset>        per-shard time/size index (time-index.ts)
 *   meta/<shard dir>.json                      per-shard spec and startOffset (meta.ts)
 *   checkpoint                                 how far the indexes are durable (meta.ts)
 *
 * WRITE PATH: append() validates and sizes the batch and queues it. One writer
 * drains the queue in arrival order: it takes every queued batch that fits the
 * active segment (group write), assigns offsets, encodes them into one Buffer
 * (a reused buffer, key/value copied once), and writes it with one positioned
 * write; while that write runs, the next group is encoded. Then, synchronously,
 * the ConsumeQueue entries (in memory, written to disk in batches) and time index
 * are updated, endOffset advances, and waiters are woken. A failed write is
 * truncated away and its offsets are not consumed (the group encoded behind it is
 * queued again).
 *
 * FLUSH: `sync` (engine default or the shard's spec.flush) acknowledges after an
 * fdatasync covering the write, with group commit (CommitLog.waitDurable);
 * `async` acknowledges after the write, and an unref'd timer fdatasyncs every
 * flushIntervalMs; under heavy writes an fdatasync also starts whenever flushBytes
 * were written since the last one began (one at a time), like RocketMQ's
 * flushLeastPages or Kafka's flush.messages, so that writeback to the disk runs
 * alongside the appends rather than all at once behind them. A failed fdatasync
 * makes every later append fail (the page cache can no longer be trusted); reads
 * keep working; reopen to recover.
 * Records become readable once written (before their fdatasync).
 *
 * CHECKPOINT (every checkpointIntervalMs, and on close): pending ConsumeQueue and
 * time-index entries are written and fdatasynced, the CommitLog is fdatasynced up
 * to the published tail, then the checkpoint file records that position.
 *
 * RECOVERY (open): shard metadata and ConsumeQueues are loaded (torn entries cut);
 * the CommitLog is scanned from the checkpoint (further back for a shard whose
 * queue lost entries, from the start if the checkpoint is unusable), validating
 * every record; the log is cut at the first torn/corrupt record (at the start of
 * its batch, so a batch is all or nothing); missing or mismatching queue entries
 * are rebuilt from the scanned records and entries pointing past the valid log
 * are dropped; the time indexes are reloaded and completed from the records. The
 * result is in `recovery` and logged.
 *
 * RETENTION (every retentionCheckIntervalMs, or enforceRetention()): per shard by
 * time (whole time-index intervals whose newest record is older than now -
 * retentionMs) and by bytes (the oldest records until the shard holds at most
 * retentionBytes); startOffset is persisted, then CommitLog segments that hold no
 * live record of any shard, and queue/index files wholly below startOffset, are
 * deleted.
 *
 * BYTES: a record is accounted for recordBytes() (its encoded size minus the shard
 * name), in ReadLimits.maxBytes, ShardInfo.bytes and retentionBytes.
 *
 * OWNERSHIP: append() copies keys, values and headers when its group is encoded,
 * which may be after append() returned its promise: do not mutate them until it
 * settles. read() returns Buffers that are views of one read buffer (which a small
 * cache of recently read ranges may hand to other readers): treat them as read-only.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  OffsetOutOfRangeError,
  RecordTooLargeError,
  ShardNotFoundError,
  StorageClosedError,
  StorageError,
  StorageIOError,
  ioError,
} from '../errors.js';
import { StorageMetrics } from '../metrics.js';
import type { AppendBatch, AppendOptions, AppendRecord, BatchDecoder, EngineName, FlushMode, ReadLimits, ShardInfo, ShardSpec, StorageEngine, StoredEntry, StoredRecord } from '../types.js';
import {
  CommitLog,
  BATCH_ENTRY_FIXED_BYTES,
  EncodeScratch,
  MIN_BATCH_BYTES,
  RECORD_FIXED_BYTES,
  TYPE_BATCH,
  decodeBatchEntry,
  encodeBatchEntry,
  decodeRecord,
  defaultCommitLogIO,
  encodeBatch,
  recordBytes,
  type CommitLogIO,
  type ScannedRecord,
} from './commitlog.js';
import { BATCH_MARK, CQ_ENTRY_BYTES, ConsumeQueue, entryAcct, entryBatchCount, entryPos, entrySize } from './consume-queue.js';
import { HandleCache } from './handle-cache.js';
import { deleteShardMeta, readCheckpoint, readShardMetas, shardDirName, writeCheckpoint, writeShardMeta, type ShardMeta } from './meta.js';
import { TimeIndex } from './time-index.js';

export { recordBytes } from './commitlog.js';

export interface FileEngineLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FileEngineOptions {
  /** The engine's own directory (e.g. data_dir/storage/file). */
  dir: string;
  /** CommitLog segment size; a batch must fit in one (minus 20 bytes). */
  segmentBytes: number;
  /** Default flush mode (a shard's spec.flush overrides it). */
  flush: FlushMode;
  /** async mode: fdatasync period. */
  flushIntervalMs: number;
  /**
   * async mode: also start an fdatasync as soon as this many bytes were written
   * since the last one began (0 = only the timer). Keeps the disk writing while
   * appends run instead of leaving a backlog of dirty pages for the next flush.
   * Default 8 MiB.
   */
  flushBytes?: number;
  /** Default time retention (ms; negative = forever). */
  retentionMs: number;
  /** Default byte retention per shard (negative = unbounded). */
  retentionBytes: number;
  metrics?: StorageMetrics;
  /** Clock for time retention (ms since the epoch). Default Date.now. */
  now?: () => number;
  log?: FileEngineLog;
  /** ConsumeQueue entries per file (a multiple of timeIndexInterval). Default 262 144 (5 MiB files). */
  cqEntriesPerFile?: number;
  /** Records per time-index interval. Default 128. */
  timeIndexInterval?: number;
  /** Period of the checkpoint (index flush); 0 = only at open and close. Default 1000. */
  checkpointIntervalMs?: number;
  /** Period of retention enforcement; 0 = only enforceRetention(). Default 30 000. */
  retentionCheckIntervalMs?: number;
  /** Recently read CommitLog bytes kept in memory (for consumers reading the same range). Default 16 MiB. */
  cacheBytes?: number;
  /** Open read handles kept (segments and queue files). Default 128. */
  maxOpenFiles?: number;
  /** Replaces the CommitLog's write/fdatasync calls (fault injection in tests). */
  io?: Partial<CommitLogIO>;
  /** Turns a batch entry into records for read() (the node passes the Kafka v2 decoder). Without it, reading a batch entry fails. */
  batchDecoder?: BatchDecoder;
}

/** What open() found and repaired. */
export interface FileRecoveryReport {
  /** CommitLog bytes cut off (torn/corrupt tail and later segments). */
  truncatedBytes: number;
  /** Records dropped: intact records of an incomplete batch, plus ConsumeQueue entries that pointed past the valid log. */
  droppedRecords: number;
  /** ConsumeQueue entries (re)built from the CommitLog. */
  rebuiltIndexEntries: number;
  /** Time-index intervals recomputed from the records. */
  rebuiltTimeIndexEntries: number;
  /** CommitLog segment files after recovery. */
  segments: number;
  ms: number;
  /** Why the checkpoint was not used ('ok' when it was). */
  checkpoint: string;
  /** Where the scan started, and whether that was the start of the log. */
  scannedFrom: number;
  fullScan: boolean;
  scannedBytes: number;
  /** Where the CommitLog was cut, and why. */
  cut?: { segment: string; position: number; reason: string };
  deletedSegments: string[];
  /** Bytes of torn ConsumeQueue entries cut, and queue/index files deleted as unusable. */
  cqCutBytes: number;
  cqDeletedFiles: number;
  /** Shard metadata files that could not be read (renamed *.corrupt). */
  corruptMeta: string[];
  shards: number;
}

const ENGINE = 'file';
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * A group write stops growing at this size (a single bigger batch still goes alone).
 * Small enough that the writer's pipeline has something to encode while a write
 * runs: with 8 MiB every queued batch went into one write and encoding and writing
 * alternated (bench:storage 0.51-0.56 of raw); 512 KiB overlaps them (0.61-0.65).
 */
const MAX_GROUP_BYTES = 512 * 1024;
/** Async flush size trigger default (FileEngineOptions.flushBytes). */
export const DEFAULT_FLUSH_BYTES = 8 * 1024 * 1024;
/** Encodes batch entries for offsets from base on, noting one queue entry per record (all pointing at their batch's entry). */
function encodeBatchEntries(buf: Buffer, off: number, name: Buffer, base: number, batches: readonly AppendBatch[], sc: EncodeScratch): number {
  let o = base;
  for (const b of batches) {
    const start = off;
    off = encodeBatchEntry(buf, off, name, o, b);
    for (let i = 0; i < b.count; i++) sc.note(start, off - start, i === 0 ? b.firstTimestamp : b.maxTimestamp, b.count, BATCH_MARK);
    o += b.count;
  }
  return off;
}

/** Pending ConsumeQueue entries that trigger a background write of the shard's queue. */
const CQ_FLUSH_ENTRIES = 4096;
/** ConsumeQueue entries read at a time. */
const READ_CHUNK_ENTRIES = 1024;
/** Records closer than this in the log are fetched with one read. */
const READ_GAP_BYTES = 64 * 1024;
const READ_RANGE_MAX = 8 * 1024 * 1024;

interface Waiter {
  from: number;
  resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

interface Shard {
  name: string;
  enc: string;
  nameBuf: Buffer;
  spec: ShardSpec;
  createdAt: number;
  start: number;
  /** Published end (next offset readers see). */
  end: number;
  /** Next offset to assign (= end between groups). */
  next: number;
  /** Accounted bytes of records [start, end). */
  bytes: number;
  cq: ConsumeQueue;
  idx: TimeIndex;
  /** CommitLog position of record `start` (cache). */
  startPos: number | undefined;
  waiters: Waiter[];
  deleted: boolean;
}

interface AppendReq {
  shard: Shard;
  records: AppendRecord[];
  /** Set for appendBatches (then records is empty): each becomes one batch entry. */
  batches: AppendBatch[] | undefined;
  /** Offsets the request takes. */
  count: number;
  /** Encoded bytes. */
  size: number;
  /** Accounted bytes. */
  acct: number;
  sync: boolean;
  t0: number;
  base: number;
  resolve: (v: { baseOffset: bigint }) => void;
  reject: (err: unknown) => void;
}

/** An encoded group of batches: one write. */
interface Group {
  reqs: AppendReq[];
  total: number;
  /** The encoded bytes: mem[0, total). */
  buf: Buffer;
  mem: Buffer;
  sc: EncodeScratch;
  settled: Promise<void>;
  settle: () => void;
}

interface RecoverState {
  lastSeen: number;
  firstChanged: number;
  vFrom: number;
  vBuf: Buffer | undefined;
  gaps: number;
  startMoved: boolean;
}

type LabelledCounter = { inc(v?: number): void };
type LabelledHistogram = { observe(v: number): void };

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < items.length) await fn(items[i++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function toError(path: string, op: string, err: unknown): StorageError {
  return err instanceof StorageError ? err : ioError(path, op, err);
}

export class FileEngine implements StorageEngine {
  readonly name: EngineName = 'file';
  readonly metrics: StorageMetrics;
  /** Set by open(). */
  recovery!: FileRecoveryReport;
  readonly dir: string;

  private readonly opts: FileEngineOptions;
  private readonly now: () => number;
  private readonly K: number;
  private readonly perFile: number;
  private readonly handles: HandleCache;
  private readonly log: CommitLog;
  private readonly shards = new Map<string, Shard>();
  private readonly metaDir: string;
  private readonly cqDir: string;
  private readonly indexDir: string;
  private readonly checkpointPath: string;
  /** Encode scratch areas not in use (one per group in the pipeline). */
  private readonly scratch: EncodeScratch[] = [new EncodeScratch(), new EncodeScratch()];
  /** Group buffers not in use. */
  private readonly buffers: Buffer[] = [];
  /** Groups encoded and not yet written, published or failed. */
  private readonly groups = new Set<Group>();

  private queue: AppendReq[] = [];
  private writing = false;
  private writerDone: Promise<void> = Promise.resolve();
  /** CommitLog position up to which every record is published (ConsumeQueue entries in memory). */
  private publishedTail = 0;
  private adminChain: Promise<unknown> = Promise.resolve();
  private checkpointDirty = true;
  private checkpointQueued = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];

  private readonly mAppendBytes: LabelledCounter;
  private readonly mAppendRecords: LabelledCounter;
  private readonly mAppendSync: LabelledHistogram;
  private readonly mAppendAsync: LabelledHistogram;
  private readonly mDroppedRetention: LabelledCounter;

  private constructor(opts: FileEngineOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? new StorageMetrics();
    this.K = opts.timeIndexInterval ?? 128;
    this.perFile = opts.cqEntriesPerFile ?? 262_144;
    this.handles = new HandleCache(opts.maxOpenFiles ?? 128);
    const fsync = this.metrics.fsyncSeconds.labels({ engine: ENGINE });
    this.log = new CommitLog({
      dir: join(opts.dir, 'commitlog'),
      segmentBytes: opts.segmentBytes,
      io: { ...defaultCommitLogIO, ...opts.io },
      handles: this.handles,
      onFsync: (s) => fsync.observe(s),
      cacheBytes: opts.cacheBytes ?? 16 * 1024 * 1024,
    });
    this.metaDir = join(opts.dir, 'meta');
    this.cqDir = join(opts.dir, 'consumequeue');
    this.indexDir = join(opts.dir, 'index');
    this.checkpointPath = join(opts.dir, 'checkpoint');
    this.mAppendBytes = this.metrics.appendBytes.labels({ engine: ENGINE });
    this.mAppendRecords = this.metrics.appendRecords.labels({ engine: ENGINE });
    this.mAppendSync = this.metrics.appendSeconds.labels({ engine: ENGINE, flush: 'sync' });
    this.mAppendAsync = this.metrics.appendSeconds.labels({ engine: ENGINE, flush: 'async' });
    this.mDroppedRetention = this.metrics.droppedRecords.labels({ engine: ENGINE, reason: 'retention' });
  }

  /** Opens (creating, or recovering) the engine in opts.dir. */
  static async open(opts: FileEngineOptions): Promise<FileEngine> {
    const K = opts.timeIndexInterval ?? 128;
    const perFile = opts.cqEntriesPerFile ?? 262_144;
    const bad = (what: string): never => {
      throw new TypeError(`FileEngine: ${what}`);
    };
    if (typeof opts.dir !== 'string' || opts.dir === '') bad('dir is required');
    if (!Number.isSafeInteger(opts.segmentBytes) || opts.segmentBytes < 4096) bad(`segmentBytes must be an integer >= 4096, got ${opts.segmentBytes}`);
    if (opts.flush !== 'sync' && opts.flush !== 'async') bad(`flush must be 'sync' or 'async', got ${String(opts.flush)}`);
    if (!Number.isSafeInteger(K) || K < 1) bad(`timeIndexInterval must be a positive integer, got ${K}`);
    if (!Number.isSafeInteger(perFile) || perFile < K || perFile % K !== 0) bad(`cqEntriesPerFile must be a positive multiple of timeIndexInterval, got ${perFile}`);
    const engine = new FileEngine(opts);
    try {
      await engine.recover();
    } catch (err) {
      await engine.log.close().catch(() => undefined);
      engine.handles.closeAll();
      throw err;
    }
    engine.metrics.reportShardBytesFrom(() =>
      engine.closed ? [] : [...engine.shards.values()].map((s) => ({ shard: s.name, engine: ENGINE, bytes: s.bytes })),
    );
    engine.startTimers();
    return engine;
  }

  /** fdatasync calls of the CommitLog so far (group commit makes this much smaller than the number of sync appends). */
  get fsyncCount(): number {
    return this.log.fsyncs;
  }

  // =================================================================== shards

  async createShard(spec: ShardSpec): Promise<void> {
    this.checkOpen();
    if (typeof spec?.shard !== 'string' || spec.shard === '') throw new TypeError('ShardSpec.shard must be a non-empty string');
    if (Buffer.byteLength(spec.shard, 'utf8') > 0xffff) throw new TypeError('ShardSpec.shard is too long');
    return this.admin(async () => {
      const existing = this.shards.get(spec.shard);
      if (existing) {
        if (JSON.stringify(existing.spec) === JSON.stringify(spec)) return;
        const next = { ...spec };
        await writeShardMeta(this.metaDir, this.metaOf(existing, existing.start, next));
        existing.spec = next;
        return;
      }
      const enc = shardDirName(spec.shard);
      // Records of an earlier shard with this id all lie before the tail (deleteShard waited for its in-flight writes).
      const createdAt = this.log.tail;
      const s: Shard = {
        name: spec.shard,
        enc,
        nameBuf: Buffer.from(spec.shard, 'utf8'),
        spec: { ...spec },
        createdAt,
        start: 0,
        end: 0,
        next: 0,
        bytes: 0,
        cq: ConsumeQueue.empty(join(this.cqDir, enc), this.perFile, this.handles, 0),
        idx: TimeIndex.empty(join(this.indexDir, enc), this.K, this.perFile, 0),
        startPos: undefined,
        waiters: [],
        deleted: false,
      };
      // Leftovers of an earlier shard with this id whose deletion was interrupted.
      await rm(s.cq.dir, { recursive: true, force: true }).catch(() => undefined);
      await rm(s.idx.dir, { recursive: true, force: true }).catch(() => undefined);
      await writeShardMeta(this.metaDir, this.metaOf(s, 0));
      this.shards.set(s.name, s);
      this.checkpointDirty = true;
    });
  }

  async deleteShard(shard: string): Promise<void> {
    this.checkOpen();
    return this.admin(async () => {
      const s = this.shards.get(shard);
      if (!s) return;
      s.deleted = true;
      this.shards.delete(shard);
      this.wakeAll(s);
      this.checkpointDirty = true;
      // No record of this shard may be written after this (a re-created shard's createdAt relies on it).
      await this.writeBarrier();
      await deleteShardMeta(this.metaDir, shard);
      await s.cq.destroy();
      await s.idx.destroy();
    });
  }

  listShards(): string[] {
    this.checkOpen();
    return [...this.shards.keys()];
  }

  async shardInfo(shard: string): Promise<ShardInfo> {
    this.checkOpen();
    const s = this.get(shard);
    return { shard, engine: 'file', startOffset: BigInt(s.start), endOffset: BigInt(s.end), bytes: s.bytes };
  }

  // =================================================================== append

  async append(shard: string, records: AppendRecord[], _opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    const t0 = performance.now();
    this.checkOpen();
    const s = this.get(shard);
    if (!Array.isArray(records)) throw new TypeError('records must be an array');
    if (records.length === 0) return { baseOffset: BigInt(s.next) };
    let acct = 0;
    for (let i = 0; i < records.length; i++) acct += recordBytes(records[i] as AppendRecord);
    const size = acct + records.length * s.nameBuf.length;
    if (size > this.log.maxWriteBytes) throw new RecordTooLargeError(size, this.log.maxWriteBytes);
    const sync = (s.spec.flush ?? this.opts.flush) === 'sync';
    return new Promise((resolve, reject) => {
      this.queue.push({ shard: s, records, batches: undefined, count: records.length, size, acct, sync, t0, base: 0, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        this.writerDone = this.runWriter();
      }
    });
  }

  /**
   * Appends Kafka-layout batches, each stored whole as one CommitLog entry (no
   * record objects, no re-encoding, no second checksum of the records).
   */
  async appendBatches(shard: string, batches: AppendBatch[], _opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    const t0 = performance.now();
    this.checkOpen();
    const s = this.get(shard);
    if (!Array.isArray(batches)) throw new TypeError('batches must be an array');
    const nameLen = s.nameBuf.length;
    let size = 0;
    let acct = 0;
    let count = 0;
    for (const b of batches) {
      if (!(b?.bytes instanceof Uint8Array) || b.bytes.length < MIN_BATCH_BYTES) throw new TypeError(`a batch must be a Buffer of at least ${MIN_BATCH_BYTES} bytes`);
      if (b.bytes[16] !== 2) throw new TypeError(`a batch must be in the v2 layout (magic 2), got magic ${b.bytes[16]}`);
      if (b.bytes.readInt32BE(8) !== b.bytes.length - 12) throw new TypeError('batch length field does not match its bytes');
      if (!Number.isInteger(b.count) || b.count < 1 || b.count > 0x7fffffff) throw new TypeError(`a batch holds 1.. records, got ${b.count}`);
      for (const t of [b.firstTimestamp, b.maxTimestamp]) if (typeof t !== 'number' || !Number.isFinite(t)) throw new TypeError(`batch timestamps must be finite numbers, got ${String(t)}`);
      const entry = BATCH_ENTRY_FIXED_BYTES + nameLen + b.bytes.length;
      size += entry;
      acct += b.count * Math.ceil((entry - nameLen) / b.count);
      count += b.count;
    }
    if (count === 0) return { baseOffset: BigInt(s.next) };
    if (size > this.log.maxWriteBytes) throw new RecordTooLargeError(size, this.log.maxWriteBytes);
    const sync = (s.spec.flush ?? this.opts.flush) === 'sync';
    return new Promise((resolve, reject) => {
      this.queue.push({ shard: s, records: [], batches, count, size, acct, sync, t0, base: 0, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        this.writerDone = this.runWriter();
      }
    });
  }

  /**
   * The writer: a two-stage pipeline. While one group's write runs, the next group
   * is taken from the queue and encoded (offsets assigned as if the write
   * succeeds); it is written once the first one completed. If a write fails, its
   * appends are rejected and the group encoded behind it goes back to the queue.
   */
  private async runWriter(): Promise<void> {
    let cur: Group | undefined;
    try {
      for (;;) {
        if (!cur) {
          const p = this.prepare(this.log.room());
          if (p === undefined) break;
          if (p === 'retry') continue;
          if (p === 'roll') {
            try {
              await this.log.roll();
            } catch (err) {
              const first = this.queue.shift();
              first?.reject(toError(this.log.dir, 'roll segment', err));
            }
            continue;
          }
          cur = p;
        }
        const writing = this.log.append(cur.buf);
        // Let the appenders whose acknowledgements were just published queue their next
        // batches (microtasks), then encode them while the write runs.
        writing.catch(() => undefined);
        await new Promise<void>((resolve) => setImmediate(resolve));
        let next: Group | undefined;
        if (this.queue.length > 0) {
          const p = this.prepare(this.log.room() - cur.total);
          if (typeof p === 'object') next = p;
        }
        let pos: number;
        try {
          pos = await writing;
        } catch (err) {
          this.failGroup(cur, toError(this.log.dir, 'write', err));
          if (next) this.requeue(next);
          cur = undefined;
          continue;
        }
        this.publish(cur, pos);
        this.flushIfManyDirty();
        cur = next;
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * Takes the next group from the queue (every queued batch, in order, that fits in
   * `room` bytes) and encodes it. 'roll': the first batch needs a new segment;
   * 'retry': the batches taken could not be encoded (rejected); undefined: queue empty.
   */
  private prepare(room: number): Group | 'roll' | 'retry' | undefined {
    const q = this.queue;
    while (q.length > 0 && (q[0] as AppendReq).shard.deleted) {
      const r = q.shift() as AppendReq;
      r.reject(new ShardNotFoundError(r.shard.name));
    }
    const first = q[0];
    if (!first) return undefined;
    if (first.size > room) return 'roll';
    const limit = Math.min(room, Math.max(MAX_GROUP_BYTES, first.size));
    const reqs: AppendReq[] = [];
    let total = 0;
    let records = 0;
    let k = 0;
    for (; k < q.length; k++) {
      const r = q[k] as AppendReq;
      if (r.shard.deleted) {
        r.reject(new ShardNotFoundError(r.shard.name));
        continue;
      }
      if (total + r.size > limit) break;
      reqs.push(r);
      total += r.size;
      records += r.count;
    }
    this.queue = k === q.length ? [] : q.slice(k);
    const sc = this.scratch.pop() ?? new EncodeScratch();
    sc.reset(records);
    const mem = this.takeBuffer(total);
    const buf = mem.subarray(0, total);
    let off = 0;
    let assigned = 0;
    try {
      for (const r of reqs) {
        const s = r.shard;
        r.base = s.next;
        s.next += r.count;
        assigned++;
        if (r.batches) off = encodeBatchEntries(buf, off, s.nameBuf, r.base, r.batches, sc);
        else off = encodeBatch(buf, off, s.nameBuf, r.base, r.records, sc);
      }
      if (off !== total) throw new Error(`encoded ${off} bytes, expected ${total}`);
    } catch (err) {
      // A record changed between append() and now (or a bug): nothing is written.
      this.scratch.push(sc);
      this.buffers.push(mem);
      for (let i = 0; i < assigned; i++) {
        const r = reqs[i] as AppendReq;
        r.shard.next -= r.count;
      }
      const e = err instanceof StorageError || err instanceof TypeError || err instanceof RangeError ? err : new StorageIOError(this.log.dir, 'encode', err);
      for (const r of reqs) r.reject(e);
      return 'retry';
    }
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const g: Group = { reqs, total, buf, mem, sc, settled, settle };
    this.groups.add(g);
    return g;
  }

  /**
   * A buffer of at least `n` bytes for a group. Group buffers are reused (nothing
   * keeps a reference once the group is written): no per-write allocation of
   * external memory, which would otherwise drive the garbage collector.
   */
  private takeBuffer(n: number): Buffer {
    const b = this.buffers.pop();
    if (b && b.length >= n) return b;
    let cap = Math.max(b?.length ?? 0, 256 * 1024);
    while (cap < n) cap *= 2;
    return Buffer.allocUnsafeSlow(cap);
  }

  private release(g: Group): void {
    this.scratch.push(g.sc);
    if (this.buffers.length < 2) this.buffers.push(g.mem);
    this.groups.delete(g);
    g.settle();
  }

  /** Offsets are handed back by subtraction: groups are undone newest first or together, so shard.next ends at shard.end. */
  private failGroup(g: Group, err: StorageError): void {
    for (const r of g.reqs) r.shard.next -= r.count;
    for (const r of g.reqs) r.reject(err);
    this.release(g);
  }

  /** Puts an encoded but unwritten group back at the head of the queue (its offsets are assigned again). */
  private requeue(g: Group): void {
    for (const r of g.reqs) r.shard.next -= r.count;
    this.queue = g.reqs.concat(this.queue);
    this.release(g);
  }

  /** Resolves once every group encoded so far is written (or failed). */
  private async writeBarrier(): Promise<void> {
    await Promise.all([...this.groups].map((g) => g.settled));
  }

  /** Makes a written group visible: queue entries, time index, endOffset, waiters, acknowledgements. */
  private publish(g: Group, pos: number): void {
    const sc = g.sc;
    const target = pos + g.total;
    let syncReqs: AppendReq[] | undefined;
    let k = 0;
    for (const r of g.reqs) {
      const s = r.shard;
      const n = r.count;
      if (s.deleted) {
        k += n;
        r.reject(new ShardNotFoundError(s.name));
        continue;
      }
      const nameLen = s.nameBuf.length;
      const cq = s.cq;
      const idx = s.idx;
      for (let i = 0; i < n; i++, k++) {
        const size = sc.size[k] as number;
        const tagLo = sc.tagLo[k] as number;
        const tagHi = sc.tagHi[k] as number;
        cq.append(pos + (sc.pos[k] as number), size, tagLo, tagHi);
        idx.add(r.base + i, sc.ts[k] as number, tagHi === BATCH_MARK ? Math.ceil((size - nameLen) / tagLo) : size - nameLen);
      }
      s.end = r.base + n;
      s.bytes += r.acct;
      if (s.waiters.length > 0) this.wake(s);
      if (cq.pending >= CQ_FLUSH_ENTRIES && !cq.flushing) this.flushQueueInBackground(s);
      this.mAppendBytes.inc(r.acct);
      this.mAppendRecords.inc(n);
      if (r.sync) (syncReqs ??= []).push(r);
      else {
        this.mAppendAsync.observe((performance.now() - r.t0) / 1000);
        r.resolve({ baseOffset: BigInt(r.base) });
      }
    }
    this.publishedTail = target;
    this.checkpointDirty = true;
    this.release(g);
    if (syncReqs) {
      const reqs = syncReqs;
      this.log.waitDurable(target).then(
        () => {
          for (const r of reqs) {
            this.mAppendSync.observe((performance.now() - r.t0) / 1000);
            r.resolve({ baseOffset: BigInt(r.base) });
          }
        },
        (err: unknown) => {
          const e = toError(this.log.dir, 'fdatasync', err);
          for (const r of reqs) r.reject(e);
        },
      );
    }
  }

  private flushQueueInBackground(s: Shard): void {
    s.cq.flushing = true;
    s.cq
      .flush(false)
      .catch((err: unknown) => this.opts.log?.warn({ err, shard: s.name }, 'file storage: writing a consume queue failed (kept in memory, retried later)'))
      .finally(() => {
        s.cq.flushing = false;
      });
  }

  // =================================================================== read

  async read(shard: string, from: bigint, limits: ReadLimits): Promise<StoredRecord[]> {
    this.checkOpen();
    const s = this.get(shard);
    if (typeof from !== 'bigint') throw new TypeError('from must be a bigint');
    if (from < BigInt(s.start) || from > BigInt(s.end)) throw new OffsetOutOfRangeError(shard, from, BigInt(s.start), BigInt(s.end));
    const f = Number(from);
    if (f === s.end) return [];
    const mr = limits.maxRecords;
    const maxRecords = Number.isFinite(mr) ? Math.max(1, Math.floor(mr)) : mr > 0 ? Infinity : 1;
    try {
      return await this.readRecords(s, f, maxRecords, limits.maxBytes);
    } catch (err) {
      // The shard was deleted, or retention (or truncateBefore) moved past `from`, while reading.
      if (s.deleted) throw new ShardNotFoundError(shard);
      if (f < s.start) throw new OffsetOutOfRangeError(shard, from, BigInt(s.start), BigInt(s.end));
      throw err;
    }
  }

  /** Records [from, ...) up to maxRecords / maxBytes (at least one when from < end). */
  private async readRecords(s: Shard, from: number, maxRecords: number, maxBytes: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    const nameLen = s.nameBuf.length;
    let o = from;
    let bytes = 0;
    while (out.length < maxRecords) {
      const end = s.end;
      if (o >= end) break;
      const want = Math.min(maxRecords - out.length, end - o, READ_CHUNK_ENTRIES);
      const ents = await s.cq.read(o, want);
      let n = 0;
      for (; n < want; n++) {
        const acct = entryAcct(ents, n, nameLen);
        if (out.length + n > 0 && bytes + acct > maxBytes) break;
        bytes += acct;
      }
      if (n === 0) break;
      await this.fetch(s, o, ents, n, out);
      o += n;
      if (n < want) break;
    }
    return out;
  }

  /**
   * Reads the CommitLog bytes behind n queue entries (offsets from, from+1, ...),
   * in as few positioned reads as it can, and hands each entry to `visit` with the
   * buffer holding it. Entries of records stored in one batch entry point at the
   * same bytes; they are read once and visited one by one.
   */
  private async readEntriesOf(s: Shard, ents: Buffer, n: number, visit: (i: number, buf: Buffer, at: number, size: number) => void): Promise<void> {
    const ranges: Array<{ i: number; j: number; start: number; end: number }> = [];
    const segs = this.log.segments;
    for (let i = 0; i < n; ) {
      const start = entryPos(ents, i);
      let end = start + entrySize(ents, i);
      const si = this.log.segmentAt(start);
      const segLimit = segs[si + 1]?.start ?? Infinity;
      let j = i + 1;
      for (; j < n; j++) {
        const p = entryPos(ents, j);
        if (p === entryPos(ents, j - 1) && entryBatchCount(ents, j) > 0) continue; // the same batch entry
        const e = p + entrySize(ents, j);
        if (p < end || p - end > READ_GAP_BYTES || e - start > READ_RANGE_MAX || p >= segLimit) break;
        end = e;
      }
      ranges.push({ i, j, start, end });
      i = j;
    }
    const bufs = await Promise.all(ranges.map((r) => this.log.readRange(r.start, r.end - r.start)));
    for (let r = 0; r < ranges.length; r++) {
      const range = ranges[r] as (typeof ranges)[0];
      const buf = bufs[r] as Buffer;
      for (let i = range.i; i < range.j; i++) visit(i, buf, entryPos(ents, i) - range.start, entrySize(ents, i));
    }
  }

  private corrupt(s: Shard, pos: number, offset: number, why: string): StorageIOError {
    return new StorageIOError(this.log.pathOf(pos), 'read', new Error(`record at position ${pos} (shard ${s.name} offset ${offset}) is corrupt: ${why}`));
  }

  /** A batch entry's records (decoded with the node's decoder); throws StorageIOError when it is corrupt. */
  private batchRecords(s: Shard, buf: Buffer, at: number, size: number, pos: number, offset: number): { base: number; records: StoredRecord[] } {
    const b = decodeBatchEntry(buf, at, size, s.nameBuf, offset);
    if (typeof b === 'string') throw this.corrupt(s, pos, offset, b);
    const decode = this.opts.batchDecoder;
    if (!decode) throw this.corrupt(s, pos, offset, 'a batch entry, and this engine has no batch decoder');
    let records: StoredRecord[];
    try {
      records = decode(b.bytes, BigInt(b.base));
    } catch (err) {
      throw this.corrupt(s, pos, offset, `batch does not decode: ${(err as Error).message}`);
    }
    if (records.length !== b.count) throw this.corrupt(s, pos, offset, `batch decodes to ${records.length} records, its entry says ${b.count}`);
    return { base: b.base, records };
  }

  /** Reads and decodes the n records whose queue entries are ents (offsets from, from+1, ...), appending them to out. */
  private async fetch(s: Shard, from: number, ents: Buffer, n: number, out: StoredRecord[]): Promise<void> {
    let batchPos = -1;
    let batch: { base: number; records: StoredRecord[] } | undefined;
    await this.readEntriesOf(s, ents, n, (i, buf, at, size) => {
      const pos = entryPos(ents, i);
      const offset = from + i;
      if (entryBatchCount(ents, i) > 0 || buf[at + 8] === TYPE_BATCH) {
        if (pos !== batchPos || !batch) {
          batch = this.batchRecords(s, buf, at, size, pos, offset);
          batchPos = pos;
        }
        const rec = batch.records[offset - batch.base];
        if (!rec) throw this.corrupt(s, pos, offset, 'offset outside its batch');
        out.push(rec);
        return;
      }
      const rec = decodeRecord(buf, at, size, s.nameBuf, offset);
      if (typeof rec === 'string') throw this.corrupt(s, pos, offset, rec);
      out.push(rec);
    });
  }

  async readEntries(shard: string, from: bigint, limits: ReadLimits): Promise<StoredEntry[]> {
    this.checkOpen();
    const s = this.get(shard);
    if (typeof from !== 'bigint') throw new TypeError('from must be a bigint');
    if (from < BigInt(s.start) || from > BigInt(s.end)) throw new OffsetOutOfRangeError(shard, from, BigInt(s.start), BigInt(s.end));
    const f = Number(from);
    if (f === s.end) return [];
    const mr = limits.maxRecords;
    const maxRecords = Number.isFinite(mr) ? Math.max(1, Math.floor(mr)) : mr > 0 ? Infinity : 1;
    const nameLen = s.nameBuf.length;
    const out: StoredEntry[] = [];
    try {
      let o = f;
      let bytes = 0;
      let records = 0;
      let lastPos = -1;
      while (records < maxRecords && o < s.end) {
        const want = Math.min(maxRecords - records, s.end - o, READ_CHUNK_ENTRIES);
        const ents = await s.cq.read(o, want);
        let n = 0;
        for (; n < want; n++) {
          const acct = entryAcct(ents, n, nameLen);
          if (records + n > 0 && bytes + acct > limits.maxBytes) break;
          bytes += acct;
        }
        if (n === 0) break;
        // A batch is handed out whole: take the rest of a batch the limit cut into.
        while (n < want && entryBatchCount(ents, n) > 0 && entryPos(ents, n) === entryPos(ents, n - 1)) n++;
        await this.readEntriesOf(s, ents, n, (i, buf, at, size) => {
          const pos = entryPos(ents, i);
          const offset = o + i;
          if (entryBatchCount(ents, i) > 0 || buf[at + 8] === TYPE_BATCH) {
            if (pos === lastPos) return;
            lastPos = pos;
            const b = decodeBatchEntry(buf, at, size, s.nameBuf, offset);
            if (typeof b === 'string') throw this.corrupt(s, pos, offset, b);
            out.push({ kind: 'batch', baseOffset: BigInt(b.base), count: b.count, bytes: b.bytes });
            return;
          }
          const rec = decodeRecord(buf, at, size, s.nameBuf, offset);
          if (typeof rec === 'string') throw this.corrupt(s, pos, offset, rec);
          out.push({ kind: 'record', record: rec });
        });
        records += n;
        o += n;
        if (n < want) break;
      }
    } catch (err) {
      if (s.deleted) throw new ShardNotFoundError(shard);
      if (f < s.start) throw new OffsetOutOfRangeError(shard, from, BigInt(s.start), BigInt(s.end));
      throw err;
    }
    return out;
  }

  async waitForData(shard: string, from: bigint, timeoutMs: number): Promise<void> {
    this.checkOpen();
    const s = this.get(shard);
    if (from < BigInt(s.end)) return;
    if (!(timeoutMs > 0)) return;
    return new Promise<void>((resolve) => {
      const w: Waiter = { from: Number(from), resolve, timer: undefined };
      w.timer = setTimeout(() => {
        const i = s.waiters.indexOf(w);
        if (i >= 0) s.waiters.splice(i, 1);
        resolve();
      }, Math.min(timeoutMs, MAX_TIMER_MS));
      s.waiters.push(w);
    });
  }

  private wake(s: Shard): void {
    const end = s.end;
    const keep: Waiter[] = [];
    for (const w of s.waiters) {
      if (w.from < end) {
        clearTimeout(w.timer);
        w.resolve();
      } else keep.push(w);
    }
    s.waiters = keep;
  }

  private wakeAll(s: Shard): void {
    const ws = s.waiters;
    s.waiters = [];
    for (const w of ws) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  async offsetForTime(shard: string, timestampMs: number): Promise<bigint> {
    this.checkOpen();
    const s = this.get(shard);
    const K = this.K;
    for (let j = Math.floor(s.start / K); j <= s.idx.cur; j++) {
      if (!(s.idx.intervalMax(j) >= timestampMs)) continue;
      const a = Math.max(j * K, s.start);
      const b = Math.min((j + 1) * K, s.end);
      if (a >= b) continue;
      const recs = await this.readRecords(s, a, b - a, Infinity);
      for (const r of recs) if (r.timestamp >= timestampMs) return r.offset;
    }
    return BigInt(s.end);
  }

  // =================================================================== truncate / retention

  async truncateBefore(shard: string, offset: bigint): Promise<void> {
    this.checkOpen();
    this.get(shard);
    return this.admin(async () => {
      const s = this.get(shard);
      if (offset > BigInt(s.end)) throw new OffsetOutOfRangeError(shard, offset, BigInt(s.start), BigInt(s.end));
      if (offset <= BigInt(s.start)) return;
      await this.setStart(s, Number(offset));
    });
  }

  /** Applies time and byte retention to every shard now, then deletes the files no shard needs. */
  async enforceRetention(): Promise<void> {
    this.checkOpen();
    return this.admin(() => this.doRetention());
  }

  /** Writes the ConsumeQueues/time indexes, fdatasyncs, and writes the checkpoint now. */
  async flush(): Promise<void> {
    this.checkOpen();
    return this.admin(() => this.checkpoint(true));
  }

  private async doRetention(): Promise<void> {
    const now = this.now();
    for (const s of [...this.shards.values()]) {
      if (s.deleted) continue;
      const to = await this.retentionStart(s, now);
      if (to > s.start && !s.deleted) {
        const n = await this.setStart(s, to);
        if (n > 0) this.mDroppedRetention.inc(n);
      }
    }
    await this.reclaim();
  }

  private async retentionStart(s: Shard, now: number): Promise<number> {
    let to = s.start;
    const K = this.K;
    const rms = s.spec.retentionMs ?? this.opts.retentionMs;
    if (rms >= 0) {
      const cutoff = now - rms;
      for (let j = Math.floor(s.start / K); to < s.end; j++) {
        if (!(s.idx.intervalMax(j) < cutoff)) break;
        to = Math.min(s.end, (j + 1) * K);
      }
    }
    const rb = s.spec.retentionBytes ?? this.opts.retentionBytes;
    if (rb >= 0 && s.bytes > rb) to = Math.max(to, await this.bytesRetentionStart(s, rb));
    return to;
  }

  /** The smallest start that leaves at most `limit` accounted bytes. */
  private async bytesRetentionStart(s: Shard, limit: number): Promise<number> {
    const K = this.K;
    const nameLen = s.nameBuf.length;
    let excess = s.bytes - limit;
    let o = s.start;
    while (excess > 0 && o < s.end) {
      const j = Math.floor(o / K);
      if (o === j * K && j < s.idx.cur) {
        const ib = s.idx.intervalBytes(j);
        if (ib <= excess) {
          excess -= ib;
          o += K;
          continue;
        }
      }
      const b = Math.min((j + 1) * K, s.end);
      const ents = await s.cq.read(o, b - o);
      let i = 0;
      while (i < b - o && excess > 0) {
        excess -= entryAcct(ents, i, nameLen);
        i++;
      }
      o += i;
    }
    return o;
  }

  /** Moves startOffset to `to` (persisted first). Returns the number of records that became unreadable. */
  private async setStart(s: Shard, to: number): Promise<number> {
    if (to <= s.start) return 0;
    const removed = await this.sumBytes(s, s.start, to);
    await writeShardMeta(this.metaDir, this.metaOf(s, to));
    if (s.deleted || to <= s.start) return 0;
    const n = to - s.start;
    s.start = to;
    s.bytes = Math.max(0, s.bytes - removed);
    s.startPos = undefined;
    s.idx.dropBelow(to);
    this.checkpointDirty = true;
    return n;
  }

  /** Accounted bytes of records [a, b) (a >= start, b <= end). */
  private async sumBytes(s: Shard, a: number, b: number): Promise<number> {
    if (b <= a) return 0;
    const K = this.K;
    const ja = Math.ceil(a / K);
    const jb = Math.floor(b / K);
    if (ja >= jb) return this.queueBytes(s, a, b);
    let sum = await this.queueBytes(s, a, ja * K);
    for (let j = ja; j < jb; j++) sum += s.idx.intervalBytes(j);
    sum += await this.queueBytes(s, jb * K, b);
    return sum;
  }

  private async queueBytes(s: Shard, a: number, b: number): Promise<number> {
    const nameLen = s.nameBuf.length;
    let sum = 0;
    for (let o = a; o < b; ) {
      const n = Math.min(4096, b - o);
      const ents = await s.cq.read(o, n);
      for (let i = 0; i < n; i++) sum += entryAcct(ents, i, nameLen);
      o += n;
    }
    return sum;
  }

  private async startPosition(s: Shard): Promise<number> {
    if (s.startPos !== undefined) return s.startPos;
    const start = s.start;
    const e = await s.cq.read(start, 1);
    const p = entryPos(e, 0);
    if (s.start === start) s.startPos = p;
    return p;
  }

  /** Deletes CommitLog segments without live records, and queue/index files below each startOffset. */
  private async reclaim(): Promise<void> {
    let minLive = Infinity;
    for (const s of [...this.shards.values()]) {
      if (s.start >= s.end) continue;
      const p = await this.startPosition(s);
      if (p < minLive) minLive = p;
    }
    if (minLive === Infinity) minLive = this.publishedTail;
    const deleted = await this.log.deleteBefore(minLive);
    if (deleted.length > 0) this.opts.log?.info({ segments: deleted }, 'file storage: deleted commit log segments no shard needs');
    for (const s of [...this.shards.values()]) {
      if (s.deleted) continue;
      await s.cq.deleteBelow(s.start);
      await s.idx.deleteBelow(s.start);
    }
  }

  // =================================================================== checkpoint, timers, close

  private admin<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.adminChain.then(fn);
    this.adminChain = p.catch(() => undefined);
    return p;
  }

  private async checkpoint(force = false): Promise<void> {
    if (!this.checkpointDirty && !force) return;
    this.checkpointDirty = false;
    const position = this.publishedTail;
    const list = [...this.shards.values()];
    const shards = new Map<string, { end: number; createdAt: number }>();
    for (const s of list) shards.set(s.name, { end: s.cq.end, createdAt: s.createdAt });
    try {
      await forEachLimit(list, 8, async (s) => {
        if (s.deleted) return;
        await s.cq.flush(true);
        await s.idx.persist(true);
      });
      await this.log.waitDurable(position);
      await writeCheckpoint(this.checkpointPath, { position, shards });
    } catch (err) {
      this.checkpointDirty = true;
      throw err;
    }
  }

  /** The size trigger of async flush (see FLUSH above). */
  private flushIfManyDirty(): void {
    const limit = this.opts.flushBytes ?? DEFAULT_FLUSH_BYTES;
    if (limit > 0 && !this.log.syncInProgress && this.log.unsyncedBytes >= limit) this.flushInBackground();
  }

  /** Async flush, by the timer or the size trigger; a failure is logged (appends then fail on their own). */
  private flushInBackground(): void {
    if (this.closed || !this.log.dirty || this.log.failure) return;
    this.log.flush().catch((err: unknown) => this.opts.log?.warn({ err }, 'file storage: background fdatasync failed; appends are refused until a restart'));
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void): void => {
      if (!(ms > 0)) return;
      const t = setInterval(fn, Math.min(ms, MAX_TIMER_MS));
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.flushIntervalMs, () => this.flushInBackground());
    every(this.opts.checkpointIntervalMs ?? 1000, () => {
      if (this.closed || this.checkpointQueued || !this.checkpointDirty) return;
      this.checkpointQueued = true;
      this.admin(() => {
        this.checkpointQueued = false;
        return this.closed ? Promise.resolve() : this.checkpoint();
      }).catch((err: unknown) => this.opts.log?.warn({ err }, 'file storage: checkpoint failed'));
    });
    every(this.opts.retentionCheckIntervalMs ?? 30_000, () => {
      if (this.closed) return;
      this.enforceRetention().catch((err: unknown) => this.opts.log?.warn({ err }, 'file storage: retention failed'));
    });
  }

  /** Finishes queued appends, flushes, writes the checkpoint and closes every file. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      for (const t of this.timers) clearInterval(t);
      this.timers = [];
      while (this.writing) await this.writerDone;
      for (const s of this.shards.values()) this.wakeAll(s);
      await this.adminChain;
      try {
        await this.checkpoint(true);
      } catch (err) {
        this.opts.log?.warn({ err }, 'file storage: final checkpoint failed (the next open rebuilds the indexes)');
      }
      try {
        await this.log.close();
      } catch (err) {
        this.opts.log?.warn({ err }, 'file storage: closing the commit log failed');
      }
      for (const s of this.shards.values()) {
        await s.cq.idle();
        await s.idx.idle();
      }
      this.handles.closeAll();
    })();
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageClosedError();
  }

  private get(shard: string): Shard {
    const s = this.shards.get(shard);
    if (!s) throw new ShardNotFoundError(shard);
    return s;
  }

  private metaOf(s: Shard, startOffset: number, spec: ShardSpec = s.spec): ShardMeta {
    return { version: 1, shard: s.name, spec, startOffset, createdAt: s.createdAt };
  }

  // =================================================================== recovery

  private async recover(): Promise<void> {
    const t0 = performance.now();
    const report: FileRecoveryReport = {
      truncatedBytes: 0,
      droppedRecords: 0,
      rebuiltIndexEntries: 0,
      rebuiltTimeIndexEntries: 0,
      segments: 0,
      ms: 0,
      checkpoint: 'ok',
      scannedFrom: 0,
      fullScan: false,
      scannedBytes: 0,
      deletedSegments: [],
      cqCutBytes: 0,
      cqDeletedFiles: 0,
      corruptMeta: [],
      shards: 0,
    };
    for (const d of [this.dir, this.metaDir, this.cqDir, this.indexDir]) {
      try {
        await mkdir(d, { recursive: true });
      } catch (err) {
        throw ioError(d, 'create directory', err);
      }
    }

    // 1. Shards, their queues; the CommitLog's segments; the checkpoint.
    const { metas, corrupt } = await readShardMetas(this.metaDir);
    report.corruptMeta = corrupt;
    await this.log.load();
    const ck = await readCheckpoint(this.checkpointPath);
    for (const m of metas) {
      const enc = shardDirName(m.shard);
      const { cq, report: r } = await ConsumeQueue.load(join(this.cqDir, enc), this.perFile, this.handles, m.startOffset);
      report.cqCutBytes += r.cutBytes;
      report.cqDeletedFiles += r.deletedFiles;
      this.shards.set(m.shard, {
        name: m.shard,
        enc,
        nameBuf: Buffer.from(m.shard, 'utf8'),
        spec: m.spec,
        createdAt: m.createdAt,
        start: m.startOffset,
        end: cq.end,
        next: cq.end,
        bytes: 0,
        cq,
        idx: TimeIndex.empty(join(this.indexDir, enc), this.K, this.perFile, m.startOffset),
        startPos: undefined,
        waiters: [],
        deleted: false,
      });
    }
    const known = new Set([...this.shards.values()].map((s) => s.enc));
    for (const d of [this.cqDir, this.indexDir]) {
      for (const name of await readdir(d).catch(() => [] as string[])) {
        if (!known.has(name)) await rm(join(d, name), { recursive: true, force: true }).catch(() => undefined);
      }
    }

    // 2. Where the scan starts.
    const firstStart = this.log.firstStart;
    let scanFrom = firstStart;
    if (typeof ck === 'string') {
      report.checkpoint = ck;
    } else if (!this.isBoundary(ck.position)) {
      report.checkpoint = `position ${ck.position} is not in the commit log`;
    } else {
      scanFrom = Math.max(ck.position, firstStart);
      for (const s of this.shards.values()) {
        const c = ck.shards.get(s.name);
        let lower: number;
        if (!c || c.createdAt !== s.createdAt) lower = Math.max(firstStart, Math.min(scanFrom, s.createdAt));
        else if (s.cq.end < c.end) lower = (await this.queueTailBoundary(s)) ?? firstStart;
        else continue;
        if (lower < scanFrom) scanFrom = lower;
      }
    }
    report.scannedFrom = scanFrom;
    report.fullScan = scanFrom <= firstStart;

    // 3. Scan, rebuilding queue entries; cut the log's bad tail.
    const states = new Map<Shard, RecoverState>();
    const res = await this.log.scan(scanFrom, (r) => this.recoverRecord(r, states, report));
    report.scannedBytes = res.scannedBytes;
    report.droppedRecords += res.droppedRecords;
    if (res.cut) {
      const seg = this.log.segments[res.cut.segment];
      report.cut = { segment: seg?.name ?? '?', position: res.cut.at, reason: res.cut.reason };
      const t = await this.log.truncate(res.cut);
      report.truncatedBytes = t.bytes;
      report.deletedSegments = t.deleted;
    }

    // 4. Queue entries past what the scan saw point at nothing valid.
    for (const s of this.shards.values()) {
      const st = states.get(s);
      let end = s.cq.end;
      if (st && st.lastSeen >= 0) {
        end = Math.min(end, st.lastSeen + 1);
      } else {
        while (end > s.start) {
          const k = Math.min(1024, end - s.start);
          const ents = await s.cq.read(end - k, k);
          let i = k;
          while (i > 0 && entryPos(ents, i - 1) >= scanFrom) i--;
          end = end - k + i;
          if (i > 0) break;
        }
      }
      if (end < s.cq.end) {
        report.droppedRecords += s.cq.end - end;
        await s.cq.truncateTo(end);
      }
      if (s.cq.end < s.start) s.cq.rebase(s.start);
      s.end = s.next = s.cq.end;
      if (st?.startMoved) await writeShardMeta(this.metaDir, this.metaOf(s, s.start));
      if (st && st.gaps > 0) {
        this.opts.log?.warn({ shard: s.name, records: st.gaps, end: s.end }, 'file storage recovery: ignored records that do not follow the shard end (missing log data)');
      }
    }

    // 5. Time indexes: trusted up to where the queue was rebuilt, completed from the records.
    for (const s of this.shards.values()) {
      const st = states.get(s);
      const changedFrom = Math.min(st?.firstChanged ?? Infinity, s.end);
      s.idx = await TimeIndex.load(join(this.indexDir, s.enc), this.K, this.perFile, s.start, Math.floor(changedFrom / this.K));
      report.rebuiltTimeIndexEntries += await this.rebuildTimeIndex(s);
      s.bytes = await this.sumBytes(s, s.start, s.end);
    }

    // 6. Ready to write; make the repaired state durable.
    await this.log.openWriter();
    this.publishedTail = this.log.recordEnd;
    report.segments = this.log.segments.length;
    report.shards = this.shards.size;
    await this.checkpoint(true);
    report.ms = performance.now() - t0;
    this.recovery = report;
    this.metrics.recoverySeconds.set({ engine: ENGINE }, report.ms / 1000);
    if (report.droppedRecords > 0) this.metrics.droppedRecords.inc({ engine: ENGINE, reason: 'recovery' }, report.droppedRecords);
    if (report.truncatedBytes > 0 || report.droppedRecords > 0 || report.cqCutBytes > 0 || report.corruptMeta.length > 0) {
      this.opts.log?.warn({ dir: this.dir, ...report }, 'file storage recovery dropped a torn or corrupt tail and rebuilt the indexes');
    } else {
      this.opts.log?.info(
        { dir: this.dir, shards: report.shards, segments: report.segments, ms: Math.round(report.ms), scannedBytes: report.scannedBytes, rebuiltIndexEntries: report.rebuiltIndexEntries },
        'file storage recovered',
      );
    }
  }

  /** `pos` lies within the data of a segment (a possible record boundary). */
  private isBoundary(pos: number): boolean {
    if (pos < this.log.firstStart) return true;
    const seg = this.log.segments[this.log.segmentAt(pos)];
    return seg !== undefined && pos - seg.start <= seg.size;
  }

  /** The position after the shard's last queue entry, if that entry is a valid record of the shard. */
  private async queueTailBoundary(s: Shard): Promise<number | undefined> {
    if (s.cq.end <= s.start) return undefined;
    try {
      const e = await s.cq.read(s.cq.end - 1, 1);
      const pos = entryPos(e, 0);
      const size = entrySize(e, 0);
      if (size < RECORD_FIXED_BYTES) return undefined;
      const buf = await this.log.readRange(pos, size);
      const valid = entryBatchCount(e, 0) > 0 ? decodeBatchEntry(buf, 0, size, s.nameBuf, s.cq.end - 1) : decodeRecord(buf, 0, size, s.nameBuf, s.cq.end - 1);
      return typeof valid === 'string' ? undefined : pos + size;
    } catch {
      return undefined;
    }
  }

  private recoverRecord(r: ScannedRecord, states: Map<Shard, RecoverState>, report: FileRecoveryReport): void | Promise<void> {
    const s = this.shards.get(r.shard);
    if (!s || r.pos < s.createdAt || r.offset < s.start) return;
    let st = states.get(s);
    if (!st) {
      st = { lastSeen: -1, firstChanged: Infinity, vFrom: 0, vBuf: undefined, gaps: 0, startMoved: false };
      states.set(s, st);
    }
    if (r.offset < s.cq.end) return this.verifyEntry(s, st, r, report);
    return this.addEntry(s, st, r, report);
  }

  private addEntry(s: Shard, st: RecoverState, r: ScannedRecord, report: FileRecoveryReport): void | Promise<void> {
    if (r.offset > s.cq.end) {
      if (s.cq.end !== s.start) {
        st.gaps++;
        return;
      }
      // Nothing of the shard before this record survives: it starts here.
      s.start = r.offset;
      st.startMoved = true;
      s.cq.rebase(r.offset);
    }
    s.cq.append(r.pos, r.size, r.tagLo, r.tagHi);
    st.lastSeen = r.offset;
    if (r.offset < st.firstChanged) st.firstChanged = r.offset;
    report.rebuiltIndexEntries++;
    if (s.cq.pending >= 65_536) return s.cq.flush(false);
  }

  private async verifyEntry(s: Shard, st: RecoverState, r: ScannedRecord, report: FileRecoveryReport): Promise<void> {
    if (!st.vBuf || r.offset < st.vFrom || r.offset >= st.vFrom + st.vBuf.length / CQ_ENTRY_BYTES) {
      st.vFrom = r.offset;
      st.vBuf = await s.cq.read(r.offset, Math.min(4096, s.cq.end - r.offset));
    }
    const i = r.offset - st.vFrom;
    if (entryPos(st.vBuf, i) === r.pos && entrySize(st.vBuf, i) === r.size) {
      st.lastSeen = r.offset;
      return;
    }
    // The queue disagrees with the log from here on: rebuild it.
    st.vBuf = undefined;
    await s.cq.truncateTo(r.offset);
    const p = this.addEntry(s, st, r, report);
    if (p) await p;
  }

  /** Adds the records after the loaded time-index intervals. Returns the number of intervals completed. */
  private async rebuildTimeIndex(s: Shard): Promise<number> {
    const idx = s.idx;
    const before = idx.cur;
    const nameLen = s.nameBuf.length;
    let o = Math.max(idx.cur * this.K, s.start);
    while (o < s.end) {
      const n = Math.min(READ_CHUNK_ENTRIES, s.end - o);
      const ents = Buffer.from(await s.cq.read(o, n));
      const recs: StoredRecord[] = [];
      try {
        await this.fetch(s, o, ents, n, recs);
      } catch (err) {
        // Record by record, skipping unreadable ones (reads of them fail with StorageIOError).
        this.opts.log?.warn({ err, shard: s.name, from: o }, 'file storage recovery: unreadable records while rebuilding the time index');
        recs.length = 0;
        for (let i = 0; i < n; i++) {
          const one: StoredRecord[] = [];
          try {
            await this.fetch(s, o + i, ents.subarray(i * CQ_ENTRY_BYTES, (i + 1) * CQ_ENTRY_BYTES), 1, one);
          } catch {
            idx.add(o + i, -Infinity, entryAcct(ents, i, nameLen));
            continue;
          }
          idx.add(o + i, (one[0] as StoredRecord).timestamp, entryAcct(ents, i, nameLen));
        }
        o += n;
        continue;
      }
      for (let i = 0; i < n; i++) idx.add(o + i, (recs[i] as StoredRecord).timestamp, entryAcct(ents, i, nameLen));
      o += n;
    }
    return idx.cur - before;
  }
}

export type { CommitLogIO } from './commitlog.js';
