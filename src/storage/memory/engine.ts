/**
 * The `memory` storage engine (DESIGN.md §5): per shard a ring of records bounded
 * by bytes. For big volume and low latency; everything is lost when the process
 * exits.
 *
 * Ownership: records are NOT copied. append() stores a new record object that
 * references the caller's key/value Buffers and headers array as given, and read()
 * returns the stored record objects themselves. Callers must not mutate a Buffer
 * (or headers array) after passing it to append(), and readers must treat what
 * read() returns as read-only.
 *
 * Bounds: a shard holds at most min(maxBytesPerShard, retentionBytes) bytes of
 * records (retentionBytes from the ShardSpec, else the engine default; -1, or any
 * negative, = no bound). An append that would exceed the bound first drops the
 * oldest records (startOffset advances; robust_storage_dropped_records_total
 * {engine="memory",reason="memory_bound"}). A batch larger than the bound on its
 * own is refused with RecordTooLargeError (appends are all or nothing).
 *
 * Time retention: records older than retentionMs (spec, else engine default; -1 =
 * forever), judged by their timestamp against `now()`, are dropped from the head of
 * the shard, oldest first, up to the first record that is still young (so with
 * non-monotonic timestamps an old record behind a young one survives until the young
 * one expires, as with Kafka segments). Enforced before every append, by
 * enforceRetention(), and by an unref'd timer every retentionCheckIntervalMs
 * (reason="retention").
 *
 * Byte accounting (shardInfo().bytes, the bounds, ReadLimits.maxBytes): see
 * recordBytes().
 */
import { performance } from 'node:perf_hooks';
import { OffsetOutOfRangeError, RecordTooLargeError, ShardNotFoundError, StorageClosedError } from '../errors.js';
import { StorageMetrics } from '../metrics.js';
import type { AppendOptions, AppendRecord, EngineName, ReadLimits, ShardInfo, ShardSpec, StorageEngine, StoredRecord } from '../types.js';
import { RecordRing } from './ring.js';

/** Fixed per-record overhead counted on top of key, value, headers and tag. */

/** Buffers backed by at most this much (Node's small-buffer pool, a caller's own buffer) are kept as they are. */
const SHARED_BACKING_BYTES = 64 * 1024;
export const RECORD_OVERHEAD_BYTES = 32;

/** The longest delay setTimeout accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Bytes a record is accounted for: key + value + every header's key (UTF-8) and
 * value + tag (UTF-8) + RECORD_OVERHEAD_BYTES.
 */
export function recordBytes(r: AppendRecord): number {
  let n = RECORD_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) n += Buffer.byteLength(h.key, 'utf8') + h.value.length;
  if (r.tag !== undefined) n += Buffer.byteLength(r.tag, 'utf8');
  return n;
}

export interface MemoryEngineOptions {
  /** Hard bound of bytes held per shard (negative or Infinity = unbounded). */
  maxBytesPerShard: number;
  /** Default time retention for shards whose spec has none (ms; -1 = forever). */
  retentionMs: number;
  /** Default byte retention for shards whose spec has none (-1 = unbounded). */
  retentionBytes: number;
  metrics?: StorageMetrics;
  /** Clock for time retention (ms since the epoch); Date.now by default. */
  now?: () => number;
  /** How often an unref'd timer runs enforceRetention(); 0 = never (only on append and explicit calls). Default 30 000. */
  retentionCheckIntervalMs?: number;
}

interface Waiter {
  from: bigint;
  resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

interface MemShard {
  spec: ShardSpec;
  ring: RecordRing;
  /** Offset of ring.at(0); endOffset = startOffset + ring.length. */
  startOffset: bigint;
  /** True while every record held was appended with a timestamp >= the one before it. */
  monotonic: boolean;
  lastTimestamp: number;
  waiters: Set<Waiter>;
}

export class MemoryEngine implements StorageEngine {
  readonly name: EngineName = 'memory';
  readonly metrics: StorageMetrics;
  private readonly shards = new Map<string, MemShard>();
  private readonly now: () => number;
  private readonly retentionTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: MemoryEngineOptions) {
    this.metrics = opts.metrics ?? new StorageMetrics();
    this.now = opts.now ?? Date.now;
    this.metrics.reportShardBytesFrom(() => this.shardBytes());
    const every = opts.retentionCheckIntervalMs ?? 30_000;
    if (every > 0) {
      this.retentionTimer = setInterval(() => this.enforceRetention(), Math.min(every, MAX_TIMER_MS));
      this.retentionTimer.unref();
    }
  }

  async createShard(spec: ShardSpec): Promise<void> {
    this.checkOpen();
    const existing = this.shards.get(spec.shard);
    if (existing) {
      existing.spec = { ...spec };
      // A tighter bound or retention applies at once.
      this.enforceTime(existing);
      this.enforceBound(existing, 0);
      return;
    }
    this.shards.set(spec.shard, {
      spec: { ...spec },
      ring: new RecordRing(),
      startOffset: 0n,
      monotonic: true,
      lastTimestamp: -Infinity,
      waiters: new Set(),
    });
  }

  async deleteShard(shard: string): Promise<void> {
    this.checkOpen();
    const s = this.shards.get(shard);
    if (!s) return;
    this.shards.delete(shard);
    s.ring.clear();
    // Long polls on a deleted shard return; their next read says the shard is gone.
    this.wakeAll(s);
  }

  async append(shard: string, records: AppendRecord[], _opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    const t0 = performance.now();
    this.checkOpen();
    const s = this.shard(shard);
    const baseOffset = s.startOffset + BigInt(s.ring.length);
    if (records.length === 0) return { baseOffset };

    const sizes = new Array<number>(records.length);
    let total = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      // Checked up front so a bad record refuses the whole batch (all or nothing).
      if (typeof r.timestamp !== 'number' || !Number.isFinite(r.timestamp)) throw new TypeError(`record timestamp must be a finite number of ms, got ${String(r.timestamp)}`);
      const n = recordBytes(r);
      sizes[i] = n;
      total += n;
    }
    const limit = this.byteBound(s);
    if (total > limit) throw new RecordTooLargeError(total, limit);

    this.enforceTime(s);
    this.enforceBound(s, total);

    // Records are kept as given (no copy), unless their bytes are views into a much larger
    // buffer (a protocol frame carrying other data): the ring would keep all of it alive
    // behind the byte bound it enforces, so such a batch is copied into a buffer of its own.
    let payload = 0;
    let backing = 0;
    for (const r of records) {
      for (const b of [r.key, r.value]) {
        if (b === null) continue;
        payload += b.length;
        if (b.buffer.byteLength > backing) backing = b.buffer.byteLength;
      }
      for (const h of r.headers) {
        payload += h.value.length;
        if (h.value.buffer.byteLength > backing) backing = h.value.buffer.byteLength;
      }
    }
    let own = (b: Buffer): Buffer => b;
    const copying = backing > Math.max(SHARED_BACKING_BYTES, 2 * payload);
    if (copying) {
      const slab = Buffer.allocUnsafeSlow(payload);
      let at = 0;
      own = (b: Buffer): Buffer => {
        const view = slab.subarray(at, at + b.length);
        b.copy(slab, at);
        at += b.length;
        return view;
      };
    }

    let offset = baseOffset;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const headers = copying && r.headers.length > 0 ? r.headers.map((h) => ({ key: h.key, value: own(h.value) })) : r.headers;
      const stored: StoredRecord = { offset, timestamp: r.timestamp, key: r.key === null ? null : own(r.key), value: r.value === null ? null : own(r.value), headers };
      if (r.tag !== undefined) stored.tag = r.tag;
      if (s.ring.length === 0) {
        s.monotonic = true;
        s.lastTimestamp = -Infinity;
      }
      if (r.timestamp < s.lastTimestamp) s.monotonic = false;
      s.lastTimestamp = r.timestamp;
      s.ring.push(stored, sizes[i]!);
      offset++;
    }

    if (s.waiters.size > 0) this.wake(s, offset);
    this.metrics.appendBytes.inc({ engine: 'memory' }, total);
    this.metrics.appendRecords.inc({ engine: 'memory' }, records.length);
    this.metrics.appendSeconds.observe({ engine: 'memory', flush: 'none' }, (performance.now() - t0) / 1000);
    return { baseOffset };
  }

  async read(shard: string, from: bigint, limits: ReadLimits): Promise<StoredRecord[]> {
    this.checkOpen();
    const s = this.shard(shard);
    const end = s.startOffset + BigInt(s.ring.length);
    if (from < s.startOffset || from > end) throw new OffsetOutOfRangeError(shard, from, s.startOffset, end);
    const first = Number(from - s.startOffset);
    const available = s.ring.length - first;
    // At least one record if one exists, even for maxRecords < 1 or a tiny maxBytes.
    const maxRecords = Math.min(available, Math.max(1, Math.floor(limits.maxRecords)));
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (let i = 0; i < maxRecords; i++) {
      const size = s.ring.sizeAt(first + i);
      if (out.length > 0 && bytes + size > limits.maxBytes) break;
      bytes += size;
      out.push(s.ring.at(first + i)!);
    }
    return out;
  }

  async waitForData(shard: string, from: bigint, timeoutMs: number): Promise<void> {
    this.checkOpen();
    const s = this.shard(shard);
    if (from < s.startOffset + BigInt(s.ring.length)) return;
    if (!(timeoutMs > 0)) return;
    return new Promise<void>((resolve) => {
      const w: Waiter = { from, resolve, timer: undefined };
      w.timer = setTimeout(() => {
        s.waiters.delete(w);
        resolve();
      }, Math.min(timeoutMs, MAX_TIMER_MS));
      s.waiters.add(w);
    });
  }

  /**
   * The first readable offset whose timestamp is >= timestampMs, else endOffset.
   * Binary search while the shard's timestamps are non-decreasing (the usual case:
   * append time, or one producer's clock); a linear scan from startOffset once any
   * record was appended with a timestamp smaller than the one before it (until the
   * shard is empty again).
   */
  async offsetForTime(shard: string, timestampMs: number): Promise<bigint> {
    this.checkOpen();
    const s = this.shard(shard);
    const n = s.ring.length;
    let idx = n;
    if (s.monotonic) {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (s.ring.at(mid)!.timestamp >= timestampMs) hi = mid;
        else lo = mid + 1;
      }
      idx = lo;
    } else {
      for (let i = 0; i < n; i++) {
        if (s.ring.at(i)!.timestamp >= timestampMs) {
          idx = i;
          break;
        }
      }
    }
    return s.startOffset + BigInt(idx);
  }

  /**
   * startOffset = offset. An offset at or before startOffset is a no-op; past
   * endOffset throws OffsetOutOfRangeError; endOffset empties the shard (the next
   * append still gets endOffset).
   */
  async truncateBefore(shard: string, offset: bigint): Promise<void> {
    this.checkOpen();
    const s = this.shard(shard);
    const end = s.startOffset + BigInt(s.ring.length);
    if (offset > end) throw new OffsetOutOfRangeError(shard, offset, s.startOffset, end);
    if (offset <= s.startOffset) return;
    this.dropHead(s, Number(offset - s.startOffset));
  }

  async shardInfo(shard: string): Promise<ShardInfo> {
    this.checkOpen();
    const s = this.shard(shard);
    return {
      shard,
      engine: 'memory',
      startOffset: s.startOffset,
      endOffset: s.startOffset + BigInt(s.ring.length),
      bytes: s.ring.bytes,
    };
  }

  listShards(): string[] {
    this.checkOpen();
    return [...this.shards.keys()];
  }

  /** Drops records past their shard's time retention now; returns how many were dropped. */
  enforceRetention(): number {
    if (this.closed) return 0;
    let dropped = 0;
    for (const s of this.shards.values()) dropped += this.enforceTime(s);
    return dropped;
  }

  /** Resolves every pending waitForData, stops the retention timer and frees all records. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    for (const s of this.shards.values()) {
      this.wakeAll(s);
      s.ring.clear();
    }
    this.shards.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageClosedError();
  }

  private shard(shard: string): MemShard {
    const s = this.shards.get(shard);
    if (!s) throw new ShardNotFoundError(shard);
    return s;
  }

  private byteBound(s: MemShard): number {
    const max = this.opts.maxBytesPerShard >= 0 ? this.opts.maxBytesPerShard : Infinity;
    const retention = s.spec.retentionBytes ?? this.opts.retentionBytes;
    return retention >= 0 ? Math.min(max, retention) : max;
  }

  /** Drops the oldest records until `incoming` more bytes fit the shard's bound. */
  private enforceBound(s: MemShard, incoming: number): number {
    const limit = this.byteBound(s);
    let held = s.ring.bytes;
    let n = 0;
    while (n < s.ring.length && held + incoming > limit) held -= s.ring.sizeAt(n++);
    if (n === 0) return 0;
    this.dropHead(s, n);
    this.metrics.droppedRecords.inc({ engine: 'memory', reason: 'memory_bound' }, n);
    return n;
  }

  /** Drops head records older than the shard's time retention. */
  private enforceTime(s: MemShard): number {
    const retentionMs = s.spec.retentionMs ?? this.opts.retentionMs;
    if (!(retentionMs >= 0) || s.ring.length === 0) return 0;
    const cutoff = this.now() - retentionMs;
    let n = 0;
    while (n < s.ring.length && s.ring.at(n)!.timestamp < cutoff) n++;
    if (n === 0) return 0;
    this.dropHead(s, n);
    this.metrics.droppedRecords.inc({ engine: 'memory', reason: 'retention' }, n);
    return n;
  }

  private dropHead(s: MemShard, n: number): void {
    const k = s.ring.dropHead(n);
    s.startOffset += BigInt(k);
  }

  /** Resolves the waiters whose `from` is now below endOffset. */
  private wake(s: MemShard, end: bigint): void {
    for (const w of s.waiters) {
      if (w.from < end) {
        s.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  private wakeAll(s: MemShard): void {
    for (const w of s.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    s.waiters.clear();
  }

  private shardBytes(): Array<{ shard: string; engine: string; bytes: number }> {
    const out: Array<{ shard: string; engine: string; bytes: number }> = [];
    for (const [shard, s] of this.shards) out.push({ shard, engine: 'memory', bytes: s.ring.bytes });
    return out;
  }
}
