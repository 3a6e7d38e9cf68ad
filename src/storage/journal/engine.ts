/**
 * The `journal` storage engine: the client of the journal service (DESIGN.md §6).
 *
 * A shard is a chain of segments recorded in meta. The shard's leader broker is
 * its one writer: on taking a shard over it closes the previous writer's open
 * segment (recovery.ts) and opens a new one on live journal nodes; it keeps
 * writing there until the segment is full or a replica fails, then seals it at
 * the last acknowledged entry and opens the next, resending what was not yet
 * acknowledged. Reads go to any replica that holds the entry, this node first,
 * and never past what was acknowledged; the writer serves the recent tail from
 * memory.
 *
 * Entry ids are offsets within a segment; a Kafka batch is one unit covering
 * `count` entries, so every shard offset is one entry and offsets stay dense.
 */
import { StorageError, OffsetOutOfRangeError, ShardNotFoundError, StorageClosedError } from '../errors.js';
import type { AppendBatch, AppendOptions, AppendRecord, BatchDecoder, FlushMode, ReadLimits, ShardInfo, ShardSpec, StorageEngine, StoredEntry, StoredRecord } from '../types.js';
import { JournalClientPool } from './client.js';
import type { JournalMetaPort, JournalNode, SegmentInfo } from './meta-port.js';
import { MetaConflictError } from './meta-port.js';
import { Op, type EntryUnit, type Response, type Unit } from './protocol.js';
import { readUnion, type DataUnit } from './union-read.js';
import { NotEnoughReplicasError, recoverSegment } from './recovery.js';
import { SegmentWriter, type CachedUnit, type PendingAppend, type WriterBreak } from './segment-writer.js';

/** This node does not write the shard (another broker leads it). */
export class NotWriterError extends StorageError {
  constructor(
    readonly shard: string,
    readonly leader: number,
  ) {
    super(`this node does not write shard ${shard}${leader ? `; node ${leader} does` : '; it has no leader yet'}`, 'not_writer');
  }
}

export interface JournalLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface ReplicationDefaults {
  ensembleSize: number;
  writeQuorum: number;
  ackQuorum: number;
}

export interface JournalEngineOptions {
  meta: JournalMetaPort;
  defaults: ReplicationDefaults;
  flush: FlushMode;
  /** Roll a segment past this many bytes. */
  segmentBytes: number;
  batchDecoder?: BatchDecoder;
  log?: JournalLog;
  pool?: JournalClientPool;
  /** Bytes of acknowledged entries a writer keeps per shard for tail reads (default 8 MiB). */
  tailCacheBytes?: number;
  /** Striped segments (E > Qw): bytes appended to one write set before the next takes over (default 64 KiB). */
  stripeBytes?: number;
  /** Retention pass period (default 30 s; 0 = none, enforceRetention() by hand). */
  retentionCheckIntervalMs?: number;
  /** Retention of shards whose spec sets none ([storage] retention_ms / retention_bytes; -1 = none). */
  defaultRetentionMs?: number;
  defaultRetentionBytes?: number;
  /** How long an append waits for a writable segment before failing (default 15 s). */
  openTimeoutMs?: number;
  /** Source address of connections to journal nodes (the node's bind host, when it is a specific address). */
  localAddress?: string;
  /** Hands an append to the shard's leader (a broker that is not the writer); without it such appends fail with NotWriterError. */
  forward?: (leader: number, shard: string, units: Unit[], opts?: AppendOptions) => Promise<bigint>;
}

/** Per-topic overrides a shard spec may carry (topic config `replication.*`). */
export interface JournalShardSpec extends ShardSpec {
  replication?: Partial<ReplicationDefaults>;
}

interface Shard {
  spec: JournalShardSpec;
  writer: SegmentWriter | undefined;
  /** A takeover or roll in progress; appends wait on it. */
  opening: Promise<SegmentWriter> | undefined;
  /** Appends carried from a broken writer, resent first in the next segment. */
  carried: PendingAppend[];
  /** Logical start (truncateBefore), at least the first segment's start. */
  start: number;
  /** While a segment opens: the step it waits on (logged when it takes long). */
  openStep?: string | undefined;
  waiters: Set<{ from: number; resolve(): void; timer: NodeJS.Timeout }>;
}

const RETRY_MS = 250;
const SLOW_OPEN_LOG_MS = 5_000;
/** How long a journal node that failed a write stays out of new ensembles (meta marks a dead node well within this). */
const SUSPECT_MS = 10_000;

export class JournalEngine implements StorageEngine {
  readonly name = 'journal' as const;
  private readonly shards = new Map<string, Shard>();
  private readonly pool: JournalClientPool;
  private closed = false;
  private readonly unsubscribe: () => void;
  /** Journal nodes that failed a write recently, kept out of new ensembles until meta's liveness catches up. */
  private readonly suspects = new Map<number, number>();
  private retentionTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: JournalEngineOptions) {
    this.pool = opts.pool ?? new JournalClientPool(5000, opts.localAddress);
    // A shard whose leadership moved away must not keep a writer: the new one fences it anyway.
    this.unsubscribe = opts.meta.subscribe(() => this.onMetaChange());
    const every = opts.retentionCheckIntervalMs ?? 30_000;
    if (every > 0) {
      this.retentionTimer = setInterval(() => void this.enforceRetention().catch((err: unknown) => this.opts.log?.warn({ err: String(err) }, 'journal: retention pass failed')), every);
      this.retentionTimer.unref();
    }
  }

  /**
   * Retention of the shards this node writes, by whole sealed segments (as
   * Kafka deletes whole log segments): the oldest go while their newest record
   * is older than the topic's retention.ms, and while the shard without them
   * still holds at least retention.bytes. A segment whose writer died carries no
   * figures: its seal time stands for its newest record, and it counts no bytes.
   */
  async enforceRetention(now = Date.now()): Promise<void> {
    if (this.closed) return;
    for (const s of [...this.shards.values()]) {
      const shard = s.spec.shard;
      const retentionMs = s.spec.retentionMs ?? this.opts.defaultRetentionMs ?? -1;
      const retentionBytes = s.spec.retentionBytes ?? this.opts.defaultRetentionBytes ?? -1;
      if ((retentionMs < 0 && retentionBytes < 0) || !this.opts.meta.isWriter(shard)) continue;
      const segs = this.opts.meta.segments(shard);
      let total = s.writer?.accepting ? s.writer.bytes : 0;
      for (const seg of segs) if (seg.state === 'sealed') total += seg.bytes ?? 0;
      let cut = -1;
      for (const seg of segs) {
        if (seg.state !== 'sealed') break;
        const newest = seg.maxTimestamp !== undefined && seg.maxTimestamp >= 0 ? seg.maxTimestamp : seg.sealedAtMs;
        const expired = retentionMs >= 0 && newest !== undefined && newest < now - retentionMs;
        const oversize = retentionBytes >= 0 && total - (seg.bytes ?? 0) >= retentionBytes && (seg.bytes ?? 0) > 0;
        if (!expired && !oversize) break;
        total -= seg.bytes ?? 0;
        cut = seg.startOffset + (seg.lastEntry ?? -1) + 1;
      }
      if (cut > s.start) {
        this.opts.log?.info({ shard, before: cut }, 'journal: retention deletes segments');
        await this.truncateBefore(shard, BigInt(cut));
      }
    }
  }

  // ------------------------------------------------------------ lifecycle

  async createShard(spec: ShardSpec): Promise<void> {
    this.assertOpen();
    const s = this.shards.get(spec.shard);
    if (s) {
      s.spec = spec;
      return;
    }
    this.shards.set(spec.shard, { spec, writer: undefined, opening: undefined, carried: [], start: 0, waiters: new Set() });
  }

  async deleteShard(shard: string): Promise<void> {
    const s = this.shards.get(shard);
    if (!s) return;
    this.shards.delete(shard);
    s.writer?.stop();
    for (const w of s.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    // Every node that held the shard asks; meta and the journal nodes treat repeats as no-ops.
    const nodes = new Set<number>();
    for (const seg of this.opts.meta.segments(shard)) for (const n of seg.ensemble) nodes.add(n);
    await this.opts.meta.deleteSegments(shard).catch((err: unknown) => this.opts.log?.warn({ shard, err: String(err) }, 'journal: could not delete segment metadata'));
    await Promise.all(
      [...nodes].map(async (id) => {
        const addr = this.addrOf(id);
        if (!addr) return;
        await this.pool
          .get(id, addr)
          .request({ op: Op.Delete, shard, segment: 0xffffffff })
          .catch(() => undefined); // a node that is down drops the orphans when it finds no segment in meta (re-replication)
      }),
    );
  }

  listShards(): string[] {
    return [...this.shards.keys()].sort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    const writers: SegmentWriter[] = [];
    for (const s of this.shards.values()) {
      if (s.writer) {
        s.writer.stop();
        writers.push(s.writer);
      }
      this.failCarried(s, new StorageClosedError());
      for (const w of s.waiters) {
        clearTimeout(w.timer);
        w.resolve();
      }
    }
    this.pool.closeAll();
    // Appends still waiting for acks will not get them now: they fail (they were never acknowledged).
    await Promise.all(writers.map((w) => w.settled()));
    for (const w of writers) for (const p of w.takeUnacknowledged()) p.reject(new StorageClosedError());
  }

  // ------------------------------------------------------------ appends

  append(shard: string, records: AppendRecord[], opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    const units: EntryUnit[] = records.map((record) => ({ kind: 'record', record }));
    let bytes = 0;
    for (const r of records) bytes += (r.value?.length ?? 0) + (r.key?.length ?? 0) + 32;
    return this.appendUnits(shard, units, records.length, bytes, opts);
  }

  appendBatches(shard: string, batches: AppendBatch[], opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    const units: EntryUnit[] = batches.map((batch) => ({ kind: 'batch', batch }));
    let count = 0;
    let bytes = 0;
    for (const b of batches) {
      count += b.count;
      bytes += b.bytes.length;
    }
    return this.appendUnits(shard, units, count, bytes, opts);
  }

  private appendUnits(shard: string, units: EntryUnit[], count: number, bytes: number, opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    let s: Shard;
    try {
      s = this.shardOf(shard);
    } catch (err) {
      return Promise.reject(err);
    }
    if (count === 0) return this.endOffset(s).then((end) => ({ baseOffset: BigInt(end) }));
    const meta = this.opts.meta;
    if (!s.writer && !s.opening && this.opts.forward && !meta.isWriter(shard)) {
      const leader = meta.leaderOf(shard);
      if (leader !== 0) return this.opts.forward(leader, shard, units, opts).then((baseOffset) => ({ baseOffset }));
    }
    return new Promise<bigint>((resolve, reject) => {
      const p: PendingAppend = { units, count, bytes, needAll: opts?.acks === 'all', resolve, reject };
      const w = s.writer;
      // The common case stays synchronous, so appends keep their call order.
      if (w?.accepting && !s.opening && s.carried.length === 0) {
        w.append(p);
        return;
      }
      s.carried.push(p);
      void this.writerFor(s).catch((err: unknown) => this.failCarried(s, err));
    }).then((baseOffset) => ({ baseOffset }));
  }

  private failCarried(s: Shard, err: unknown): void {
    const pending = s.carried;
    s.carried = [];
    for (const p of pending) p.reject(err instanceof Error ? err : new Error(String(err)));
  }

  /** The shard's usable writer: takes the shard over, or rolls to a new segment, as needed. */
  private writerFor(s: Shard): Promise<SegmentWriter> {
    if (s.writer?.accepting && !s.opening) {
      this.drainCarried(s, s.writer);
      return Promise.resolve(s.writer);
    }
    if (!s.opening) {
      const opening = this.openWriter(s).finally(() => {
        if (s.opening === opening) s.opening = undefined;
      });
      s.opening = opening;
      opening.then(
        (w) => this.drainCarried(s, w),
        () => undefined,
      );
    }
    return s.opening;
  }

  private drainCarried(s: Shard, w: SegmentWriter): void {
    if (s.carried.length === 0) return;
    const pending = s.carried;
    s.carried = [];
    for (let i = 0; i < pending.length; i++) {
      if (!w.accepting) {
        // Broke again while draining: keep the rest for the next segment.
        s.carried.unshift(...pending.slice(i));
        void this.writerFor(s).catch((err: unknown) => this.failCarried(s, err));
        return;
      }
      w.append(pending[i]!);
    }
  }

  private async openWriter(s: Shard): Promise<SegmentWriter> {
    const deadline = Date.now() + (this.opts.openTimeoutMs ?? 15_000);
    const started = Date.now();
    // An opening that takes long says where it waits (every few seconds), so a stuck roll can be told apart.
    const slow = setInterval(() => {
      this.opts.log?.warn({ shard: s.spec.shard, step: s.openStep, ms: Date.now() - started }, `journal: opening the next segment of ${s.spec.shard} is taking long (${s.openStep ?? 'between attempts'})`);
    }, SLOW_OPEN_LOG_MS);
    slow.unref();
    try {
      return await this.openWriterLoop(s, deadline);
    } finally {
      clearInterval(slow);
      s.openStep = undefined;
    }
  }

  private async openWriterLoop(s: Shard, deadline: number): Promise<SegmentWriter> {
    for (;;) {
      this.assertOpen();
      if (this.shards.get(s.spec.shard) !== s) throw new ShardNotFoundError(s.spec.shard);
      const meta = this.opts.meta;
      if (!meta.isWriter(s.spec.shard)) throw new NotWriterError(s.spec.shard, meta.leaderOf(s.spec.shard));
      try {
        return await this.tryOpen(s);
      } catch (err) {
        // Meta elections, journal nodes restarting and recovery races pass; losing the shard does not.
        const final = err instanceof NotWriterError || err instanceof ShardNotFoundError || err instanceof StorageClosedError;
        if (final || Date.now() + RETRY_MS > deadline) throw err;
        this.opts.log?.debug?.({ shard: s.spec.shard, err: String(err) }, 'journal: cannot open a segment yet, retrying');
        s.openStep = `retrying after: ${String(err)}`;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  private async tryOpen(s: Shard): Promise<SegmentWriter> {
    const shard = s.spec.shard;
    const old = s.writer;
    if (old) {
      // Our own writer broke or is full: what it acknowledged is final; seal there. The writer stays
      // until the seal is recorded, so a retry seals it the same way (never by recovery, which could
      // keep unacknowledged entries that are also being resent).
      s.openStep = `waiting for segment ${old.segment.segment}'s writes in flight`;
      await old.settled();
      s.carried.unshift(...old.takeUnacknowledged());
      if (old.breakReason?.kind === 'fenced') {
        s.writer = undefined;
        throw new NotWriterError(shard, this.opts.meta.leaderOf(shard));
      }
      try {
        s.openStep = `sealing segment ${old.segment.segment} in meta`;
        await this.opts.meta.sealSegment(shard, old.segment.segment, old.lac, { bytes: old.bytes, maxTimestamp: old.maxTimestamp, nowMs: Date.now() });
      } catch (err) {
        if (!(err instanceof MetaConflictError)) throw err;
        // Another node recovered and sealed it first: it writes the shard now.
        s.writer = undefined;
        throw new NotWriterError(shard, this.opts.meta.leaderOf(shard));
      }
      s.writer = undefined;
    }
    let segs = this.opts.meta.segments(shard);
    let newest = segs.at(-1);
    if (newest?.state === 'open') {
      s.openStep = `recovering open segment ${newest.segment}`;
      await recoverSegment(this.recoveryContext(), newest, this.deadJournals());
      segs = this.opts.meta.segments(shard);
      newest = segs.at(-1);
    }
    const startOffset = newest ? newest.startOffset + (newest.lastEntry ?? -1) + 1 : 0;
    const number = newest ? newest.segment + 1 : 0;
    const r = this.replicationOf(s);
    const now = Date.now();
    const alive = this.opts.meta.journals().filter((j) => j.state === 'alive' && !this.isSuspect(j, now));
    const size = Math.min(r.ensembleSize, alive.length);
    if (size < r.ackQuorum) {
      const known = this.opts.meta.journals().map((j) => `${j.id} ${j.state}${this.isSuspect(j, now) ? ', failed a write lately' : ''}`);
      throw new NotEnoughReplicasError(shard, number, alive.length, r.ackQuorum, `shard ${shard}: a new segment needs ${r.ackQuorum} live journal node(s), ${alive.length} usable (journal nodes: ${known.join('; ') || 'none registered'})`);
    }
    const ensemble = this.chooseEnsemble(shard, number, alive.map((j) => j.id), size);
    // With fewer journals than E alive, the segment is striped less (or not at all), never over fewer than Qa nodes.
    const writeQuorum = Math.min(r.writeQuorum, ensemble.length);
    const seg: SegmentInfo = {
      shard,
      segment: number,
      ensemble,
      writeQuorum,
      ackQuorum: Math.min(r.ackQuorum, writeQuorum),
      epoch: 1,
      startOffset,
      state: 'open',
    };
    s.openStep = `creating segment ${number} in meta`;
    await this.opts.meta.createSegment({ shard, segment: number, ensemble, writeQuorum: seg.writeQuorum, ackQuorum: seg.ackQuorum, epoch: 1, startOffset });
    s.openStep = undefined;
    if (s.start < startOffset && segs.length === 0) s.start = startOffset;
    const w = new SegmentWriter({
      segment: seg,
      pool: this.pool,
      addrOf: (id) => this.addrOf(id),
      flush: s.spec.flush ?? this.opts.flush,
      segmentBytes: this.opts.segmentBytes,
      cacheBytes: this.opts.tailCacheBytes ?? 8 * 1024 * 1024,
      ...(this.opts.stripeBytes !== undefined ? { stripeBytes: this.opts.stripeBytes } : {}),
      onBreak: (why) => this.onWriterBreak(s, w, why),
      onAck: (lac) => this.wake(s, seg.startOffset + lac + 1),
    });
    s.writer = w;
    this.opts.log?.info({ shard, segment: number, ensemble, startOffset }, 'journal: opened a segment');
    return w;
  }

  /** A journal node that failed one of our writes lately, and has not registered again (restarted) since. */
  private isSuspect(j: JournalNode, now: number): boolean {
    const failedAt = this.suspects.get(j.id);
    if (failedAt === undefined || failedAt + SUSPECT_MS <= now) return false;
    return !(j.registeredAtMs !== undefined && j.registeredAtMs > failedAt);
  }

  private onWriterBreak(s: Shard, w: SegmentWriter, why: WriterBreak): void {
    if (why.kind === 'replica') this.suspects.set(why.nodeId, Date.now());
    if (why.kind !== 'roll') this.opts.log?.warn({ shard: s.spec.shard, segment: w.segment.segment, why }, 'journal: segment writer stopped; sealing it and opening the next');
    if (this.closed || this.shards.get(s.spec.shard) !== s) return;
    // Roll now: pending appends carry over, new ones queue behind the opening.
    void this.writerFor(s).catch((err: unknown) => {
      this.failCarried(s, err);
      this.opts.log?.warn({ shard: s.spec.shard, err: String(err) }, 'journal: could not open the next segment');
    });
  }

  private onMetaChange(): void {
    const now = Date.now();
    const usable = this.opts.meta.journals().filter((j) => j.state === 'alive' && !this.isSuspect(j, now)).length;
    for (const s of this.shards.values()) {
      const w = s.writer;
      // A segment opened on fewer journals than wanted (some were down) rolls once more are back,
      // so it does not keep taking appends with fewer copies than the topic asks for.
      if (w?.accepting && this.opts.meta.isWriter(s.spec.shard) && w.segment.ensemble.length < Math.min(this.replicationOf(s).ensembleSize, usable)) {
        this.opts.log?.info({ shard: s.spec.shard, segment: w.segment.segment, ensemble: w.segment.ensemble, usable }, 'journal: more journal nodes are back; rolling to a segment with the full ensemble');
        w.stop();
        void this.writerFor(s).catch((err: unknown) => this.failCarried(s, err));
        continue;
      }
      if (s.writer && !this.opts.meta.isWriter(s.spec.shard)) {
        // Leadership moved: stop writing; the new leader fences and seals our segment.
        const w = s.writer;
        s.writer = undefined;
        w.stop();
        void w.settled().then(() => {
          for (const p of w.takeUnacknowledged()) p.reject(new NotWriterError(s.spec.shard, this.opts.meta.leaderOf(s.spec.shard)));
        });
      }
    }
  }

  private replicationOf(s: Shard): ReplicationDefaults {
    const d = this.opts.defaults;
    const o = s.spec.replication ?? {};
    const ensembleSize = o.ensembleSize ?? d.ensembleSize;
    const writeQuorum = Math.min(o.writeQuorum ?? d.writeQuorum, ensembleSize);
    const ackQuorum = Math.min(o.ackQuorum ?? d.ackQuorum, writeQuorum);
    return { ensembleSize, writeQuorum, ackQuorum };
  }

  /** This node first when it is a journal (local reads and writes), then a rotation that spreads segments. */
  private chooseEnsemble(shard: string, segment: number, alive: number[], size: number): number[] {
    const sorted = [...alive].sort((a, b) => a - b);
    let h = segment;
    for (let i = 0; i < shard.length; i++) h = (h * 31 + shard.charCodeAt(i)) >>> 0;
    const rotated = sorted.map((_, i) => sorted[(i + h) % sorted.length]!);
    const self = this.opts.meta.nodeId;
    const ordered = rotated.includes(self) ? [self, ...rotated.filter((id) => id !== self)] : rotated;
    return ordered.slice(0, size);
  }

  private deadJournals(): Set<number> {
    return new Set(this.opts.meta.journals().filter((j) => j.state === 'dead').map((j) => j.id));
  }

  private recoveryContext() {
    return { meta: this.opts.meta, pool: this.pool, addrOf: (id: number) => this.addrOf(id), ...(this.opts.log ? { log: this.opts.log } : {}) };
  }

  private addrOf(nodeId: number): string | undefined {
    return this.opts.meta.journals().find((j) => j.id === nodeId)?.addr;
  }

  /** Where this node's writer of the shard stands: its open segment and acknowledged end (entries), if it writes it. */
  writerEnd(shard: string, segment: number): number | undefined {
    const w = this.shards.get(shard)?.writer;
    return w && w.segment.segment === segment ? w.lac + 1 : undefined;
  }

  // ------------------------------------------------------------ reads

  /** The shard's end: the writer's acknowledged end, or what the replicas report. */
  private async endOffset(s: Shard): Promise<number> {
    const shard = s.spec.shard;
    if (this.opts.meta.isWriter(shard)) {
      const w = s.writer?.accepting ? s.writer : await this.writerFor(s).catch(() => undefined);
      if (w) return w.segment.startOffset + w.lac + 1;
    }
    const segs = this.opts.meta.segments(shard);
    const last = segs.at(-1);
    if (!last) return s.start;
    if (last.state === 'sealed') return last.startOffset + (last.lastEntry ?? -1) + 1;
    return last.startOffset + (await this.openSegmentLac(last)) + 1;
  }

  /** For a segment someone else writes: the furthest last-add-confirmed a replica knows. */
  private async openSegmentLac(seg: SegmentInfo): Promise<number> {
    const answers = await Promise.allSettled(
      seg.ensemble.map((id) => {
        const addr = this.addrOf(id);
        if (!addr) return Promise.reject(new Error('no address'));
        return this.pool.get(id, addr).call<Extract<Response, { op: Op.Fence | Op.Info }>>({ op: Op.Info, shard: seg.shard, segment: seg.segment });
      }),
    );
    let lac = -1;
    for (const a of answers) if (a.status === 'fulfilled') lac = Math.max(lac, Math.min(a.value.state.lac, a.value.state.end - 1));
    return lac;
  }

  private startOf(s: Shard): number {
    const first = this.opts.meta.segments(s.spec.shard)[0];
    return Math.max(s.start, first?.startOffset ?? 0, first?.trimmedTo ?? 0);
  }

  async shardInfo(shard: string): Promise<ShardInfo> {
    const s = this.shardOf(shard);
    const end = await this.endOffset(s);
    return { shard, engine: 'journal', startOffset: BigInt(Math.min(this.startOf(s), end)), endOffset: BigInt(end), bytes: 0 };
  }

  async readEntries(shard: string, from: bigint, limits: ReadLimits): Promise<StoredEntry[]> {
    const s = this.shardOf(shard);
    const at = Number(from);
    const end = await this.endOffset(s);
    const start = Math.min(this.startOf(s), end);
    if (at < start || at > end) throw new OffsetOutOfRangeError(shard, from, BigInt(start), BigInt(end));
    if (at === end || limits.maxRecords <= 0) return [];
    const w = s.writer;
    if (w && at >= w.segment.startOffset) {
      const cached = w.cached(at - w.segment.startOffset);
      if (cached) return this.entriesFromCache(w.segment.startOffset, cached, at, end, limits);
    }
    const segs = this.opts.meta.segments(shard);
    const seg = segs.find((g) => at >= g.startOffset && (g.state === 'open' || at <= g.startOffset + (g.lastEntry ?? -1)));
    if (!seg) throw new OffsetOutOfRangeError(shard, from, BigInt(start), BigInt(end));
    const limit = Math.min(end, seg.state === 'sealed' ? seg.startOffset + (seg.lastEntry ?? -1) + 1 : end) - seg.startOffset;
    const units = await this.readReplica(seg, at - seg.startOffset, limit, limits);
    return this.toEntries(seg.startOffset, units, limit, limits);
  }

  private entriesFromCache(base: number, cached: CachedUnit[], at: number, end: number, limits: ReadLimits): StoredEntry[] {
    const out: StoredEntry[] = [];
    let records = 0;
    let bytes = 0;
    for (const c of cached) {
      const offset = base + c.entry;
      if (offset >= end) break;
      if (out.length > 0 && (records >= limits.maxRecords || bytes + c.bytes > limits.maxBytes)) break;
      if (c.unit.kind === 'batch') {
        const copy = Buffer.from(c.unit.batch.bytes);
        copy.writeBigInt64BE(BigInt(offset), 0);
        out.push({ kind: 'batch', baseOffset: BigInt(offset), count: c.count, bytes: copy });
      } else {
        if (offset < at) continue;
        out.push({ kind: 'record', record: { ...c.unit.record, offset: BigInt(offset) } });
      }
      records += c.count;
      bytes += c.bytes;
    }
    return out;
  }

  /**
   * Reads units of a segment from replicas that hold them: this node first, then
   * the others (with striping, a hole on one is read from the next).
   */
  private async readReplica(seg: SegmentInfo, fromEntry: number, limitEntry: number, limits: ReadLimits): Promise<DataUnit[]> {
    const self = this.opts.meta.nodeId;
    const order = seg.ensemble.includes(self) ? [self, ...seg.ensemble.filter((id) => id !== self)] : [...seg.ensemble];
    const got = await readUnion({ pool: this.pool, addrOf: (id) => this.addrOf(id) }, seg, order, fromEntry, {
      limitEntry,
      maxEntries: Math.max(1, limits.maxRecords),
      maxBytes: Math.max(1, Math.min(limits.maxBytes, 64 * 1024 * 1024)),
    });
    if (got.units.length > 0) return got.units;
    throw new StorageError(`no replica of segment ${seg.segment} of shard ${seg.shard} could serve entry ${fromEntry}: ${got.problems.join('; ') || 'none holds it'}`, 'journal_unavailable');
  }

  private toEntries(base: number, units: DataUnit[], limitEntry: number, limits: ReadLimits): StoredEntry[] {
    const out: StoredEntry[] = [];
    let records = 0;
    for (const u of units) {
      if (u.entry >= limitEntry) break;
      if (out.length > 0 && records >= limits.maxRecords) break;
      const offset = base + u.entry;
      if (u.kind === 'batch') {
        u.bytes.writeBigInt64BE(BigInt(offset), 0); // our own copy, from the socket
        out.push({ kind: 'batch', baseOffset: BigInt(offset), count: u.count, bytes: u.bytes });
        records += u.count;
      } else {
        out.push({ kind: 'record', record: { ...u.record, offset: BigInt(offset) } });
        records++;
      }
    }
    return out;
  }

  async read(shard: string, from: bigint, limits: ReadLimits): Promise<StoredRecord[]> {
    const entries = await this.readEntries(shard, from, limits);
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (const e of entries) {
      const records = e.kind === 'record' ? [e.record] : this.decode(e.bytes, e.baseOffset);
      for (const r of records) {
        if (r.offset < from) continue;
        const size = (r.value?.length ?? 0) + (r.key?.length ?? 0);
        if (out.length > 0 && (out.length >= limits.maxRecords || bytes + size > limits.maxBytes)) return out;
        out.push(r);
        bytes += size;
      }
    }
    return out;
  }

  private decode(bytes: Buffer, baseOffset: bigint): StoredRecord[] {
    if (!this.opts.batchDecoder) throw new StorageError('the journal engine was given no batch decoder, so it cannot read stored batches as records', 'storage_io');
    return this.opts.batchDecoder(bytes, baseOffset);
  }

  async waitForData(shard: string, from: bigint, timeoutMs: number): Promise<void> {
    const s = this.shards.get(shard);
    if (!s || this.closed) return;
    const at = Number(from);
    const w = s.writer;
    if (w && w.segment.startOffset + w.lac + 1 > at) return;
    if (!w && (await this.endOffset(s).catch(() => at)) > at) return;
    await new Promise<void>((resolve) => {
      const waiter = {
        from: at,
        resolve: () => {
          s.waiters.delete(waiter);
          resolve();
        },
        timer: setTimeout(() => waiter.resolve(), timeoutMs),
      };
      s.waiters.add(waiter);
      // A shard written elsewhere has no local ack to wake us: check again now and then.
      if (!this.opts.meta.isWriter(shard)) {
        const poll = setInterval(() => {
          if (!s.waiters.has(waiter)) return clearInterval(poll);
          void this.endOffset(s).then(
            (end) => {
              if (end > at) waiter.resolve();
            },
            () => undefined,
          );
        }, RETRY_MS);
        poll.unref();
      }
    });
  }

  private wake(s: Shard, end: number): void {
    for (const w of s.waiters) {
      if (end > w.from) {
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  async offsetForTime(shard: string, timestampMs: number): Promise<bigint> {
    const s = this.shardOf(shard);
    const end = await this.endOffset(s);
    let at = this.startOf(s);
    // Sealed segments whose newest record is older than the time asked for are skipped whole;
    // within the first one that may hold it, records are scanned (segments keep no time index).
    for (const seg of this.opts.meta.segments(shard)) {
      if (seg.state !== 'sealed' || seg.maxTimestamp === undefined || seg.maxTimestamp >= timestampMs) break;
      at = Math.max(at, seg.startOffset + (seg.lastEntry ?? -1) + 1);
    }
    while (at < end) {
      const records = await this.read(shard, BigInt(at), { maxRecords: 1000, maxBytes: 4 * 1024 * 1024 });
      if (records.length === 0) break;
      for (const r of records) if (r.timestamp >= timestampMs) return r.offset;
      at = Number(records.at(-1)!.offset) + 1;
    }
    return BigInt(end);
  }

  async truncateBefore(shard: string, offset: bigint): Promise<void> {
    const s = this.shardOf(shard);
    const end = await this.endOffset(s);
    const at = Number(offset);
    if (at > end) throw new OffsetOutOfRangeError(shard, offset, BigInt(this.startOf(s)), BigInt(end));
    s.start = Math.max(s.start, at);
    // Whole sealed segments below the new start go (meta first, then the replicas);
    // the segment the new start falls in keeps it in meta (restarts, a new leader).
    for (const seg of this.opts.meta.segments(shard)) {
      if (seg.state !== 'sealed' || seg.startOffset + (seg.lastEntry ?? -1) + 1 > at) {
        if (at > Math.max(seg.startOffset, seg.trimmedTo ?? 0)) await this.opts.meta.trimSegment(shard, seg.segment, at);
        break;
      }
      try {
        await this.opts.meta.deleteSegments(shard, seg.segment);
      } catch (err) {
        this.opts.log?.warn({ shard, segment: seg.segment, err: String(err) }, 'journal: could not delete a segment');
        break;
      }
      await Promise.all(
        seg.ensemble.map((id) => {
          const addr = this.addrOf(id);
          return addr ? this.pool.get(id, addr).request({ op: Op.Delete, shard, segment: seg.segment }).catch(() => undefined) : undefined;
        }),
      );
    }
  }

  // ------------------------------------------------------------ helpers

  private shardOf(shard: string): Shard {
    this.assertOpen();
    const s = this.shards.get(shard);
    if (!s) throw new ShardNotFoundError(shard);
    return s;
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageClosedError();
  }
}
