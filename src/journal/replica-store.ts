/**
 * The segment replicas one journal node holds (DESIGN.md §6).
 *
 * LAYOUT under `dir`:
 *
 *   segments/      one `file` engine; each segment replica is one of its shards,
 *                  named `${shard}#${segment}`; entry id = the shard's offset
 *   fences.json    the fence epoch of every fenced segment (written atomically)
 *
 * Replicas are kept until the writer deletes them (no retention).
 *
 * ADD PATH: add() checks the fence, the entry ids (against `expectedEnd`, the
 * replica's end counting adds accepted but not yet written) and the units, all
 * synchronously, then queues the units on the replica. Each replica has one pump
 * that hands its queue to the engine one call at a time, in arrival order,
 * merging consecutive units of the same kind (records / batches) and flush mode
 * across adds (so pipelined adds share a write and, with sync flush, an
 * fdatasync). One call at a time matters: the engine numbers entries itself, and
 * a failed write behind which another call was already queued would let that
 * call take the failed one's entry ids. An add is answered once every entry it
 * covers is written (after fdatasync for sync adds); a resend of entries still
 * being written is answered when they are. A failed engine call fails every add
 * queued on the replica and resets `expectedEnd` from the engine's real end.
 *
 * FENCING: fence() raises the epoch in memory at once (later lower-epoch adds are
 * refused, and queued ones not yet handed to the engine are dropped), persists
 * it, waits for the engine call in flight, and answers the replica's end: no add
 * below the epoch lands after that.
 *
 * Known last-add-confirmed (lac) is kept in memory only: after a restart it is
 * -1 until the writer sends one.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { isNotFound, writeFileAtomic } from '../common/fs-util.js';
import { RecordTooLargeError, ShardNotFoundError, StorageError, StorageFullError } from '../storage/errors.js';
import { BATCH_ENTRY_FIXED_BYTES, EOS_BYTES, MIN_BATCH_BYTES, recordBytes } from '../storage/file/commitlog.js';
import { FileEngine, type FileEngineLog, type FileEngineOptions } from '../storage/file/engine.js';
import { ALL_SEGMENTS, MAX_FRAME_BYTES, Status, unitEntries, type AddRequest, type EntryUnit, type ReadRequest, type ReadUnit, type ReplicaState, type SegmentRef, type Unit } from '../storage/journal/protocol.js';
import type { AppendBatch, AppendRecord, ShardSpec, StoredRecord } from '../storage/types.js';
import { holeBatch, isHoleBatch } from './hole-marker.js';

/** A unit as the engine stores it: a hole becomes a marker batch (hole-marker.ts). */
type StoredUnit = EntryUnit;

function toStored(units: Unit[]): StoredUnit[] {
  if (!units.some((u) => u.kind === 'hole')) return units as StoredUnit[];
  return units.map((u) => (u.kind === 'hole' ? { kind: 'batch', batch: holeBatch(u.count) } : u));
}

export interface ReplicaStoreOptions {
  /** The store's directory (e.g. data_dir/journal). */
  dir: string;
  log: FileEngineLog;
  /** fdatasync period for async adds. */
  flushIntervalMs: number;
  /** Async adds: also fdatasync once this many bytes were written since the last one began (FileEngineOptions.flushBytes). */
  flushBytes?: number;
  /** Size of one CommitLog file of the engine (a unit must fit in one). */
  segmentBytes: number;
  /** Registers robust_journal_replicas here. */
  registry?: Registry;
  /** Replaces the engine's write/fdatasync calls (fault injection in tests). */
  io?: FileEngineOptions['io'];
}

export interface StoreResult {
  status: Status;
  message: string;
  state: ReplicaState;
}

export interface ReadResult extends StoreResult {
  units: ReadUnit[];
}

export interface DeleteResult {
  status: Status;
  message: string;
}

export type ReplicaInfo = SegmentRef & ReplicaState;

/** A queued add: its units not yet written, from `next` on. */
interface PendingAdd {
  units: StoredUnit[];
  epoch: number;
  sync: boolean;
  /** Units [0, next) are written. */
  next: number;
  /** Units [next, issued) are in the engine call in flight. */
  issued: number;
  done: boolean;
  resolve: (r: StoreResult) => void;
}

interface Replica {
  ref: SegmentRef;
  name: string;
  /** Entries written (readable): ids 0..end-1. */
  end: number;
  /** end + entries queued or in flight: where the next add must start. */
  expectedEnd: number;
  lac: number;
  /** The engine shard exists. */
  created: boolean;
  /** Flush mode of the engine shard's spec (undefined: not known, e.g. after a restart). */
  sync: boolean | undefined;
  queue: PendingAdd[];
  /** The pump runs (set and cleared synchronously), and its promise (for close). */
  running: boolean;
  pumping: Promise<void> | undefined;
  /** The engine call in flight, and how many entries it writes. */
  call: Promise<unknown> | undefined;
  inflight: number;
  /** A failed call's aftermath: the real end is being read. */
  endUnknown: boolean;
  deleted: boolean;
}

interface FencesFile {
  version: 1;
  fences: Array<{ shard: string; segment: number; epoch: number }>;
}

const FENCES_FILE = 'fences.json';
/** Bytes handed to the engine in one call at most (a single bigger unit goes alone). */
const MERGE_BYTES = 4 * 1024 * 1024;
/** A read answers at most this many bytes of entries (plus at least one unit). */
const MAX_READ_BYTES = Math.floor(MAX_FRAME_BYTES / 2);

/**
 * Replicas are only ever read as whole entries (readEntries); the one thing that
 * looks inside a stored batch is recovery rebuilding the engine's time index. It
 * gets each record's place and a timestamp from the v2 batch header (first record:
 * the first timestamp, the rest: the greatest), without decoding the records.
 */
function batchTimestamps(bytes: Buffer, baseOffset: bigint): StoredRecord[] {
  if (bytes.length < 61) throw new Error(`stored batch of ${bytes.length} bytes is shorter than a batch header`);
  const count = bytes.readInt32BE(23) + 1;
  const first = Number(bytes.readBigInt64BE(27));
  const max = Number(bytes.readBigInt64BE(35));
  const out: StoredRecord[] = [];
  for (let i = 0; i < count; i++) out.push({ offset: baseOffset + BigInt(i), timestamp: i === 0 ? first : max, key: null, value: null, headers: [] });
  return out;
}

/** A replica's bookkeeping: recovered from the engine (`created`) or new on its first add. */
function newReplica(ref: SegmentRef, name: string, end: number, created: boolean): Replica {
  return { ref, name, end, expectedEnd: end, lac: -1, created, sync: undefined, queue: [], running: false, pumping: undefined, call: undefined, inflight: 0, endUnknown: false, deleted: false };
}

export function replicaName(ref: SegmentRef): string {
  return `${ref.shard}#${ref.segment}`;
}

/** The segment ref of an engine shard name (split at the last '#'); undefined for a name that is not one. */
export function parseReplicaName(name: string): SegmentRef | undefined {
  const i = name.lastIndexOf('#');
  if (i < 0) return undefined;
  const seg = name.slice(i + 1);
  if (!/^\d{1,10}$/.test(seg)) return undefined;
  const segment = Number(seg);
  if (segment >= ALL_SEGMENTS) return undefined;
  return { shard: name.slice(0, i), segment };
}

function refText(ref: SegmentRef): string {
  return `${ref.shard} segment ${ref.segment}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Engine failure -> status. */
function statusOf(err: unknown): Status {
  if (err instanceof StorageFullError) return Status.Full;
  if (err instanceof RecordTooLargeError || err instanceof TypeError) return Status.BadRequest;
  if (err instanceof ShardNotFoundError) return Status.NotFound;
  return Status.IoError;
}

/** Per registry: the replicas gauge, summed over the stores open on it. */
const gauges = new WeakMap<Registry, Set<ReplicaStore>>();

function registerGauge(registry: Registry, store: ReplicaStore): void {
  let stores = gauges.get(registry);
  if (!stores) {
    const set = new Set<ReplicaStore>();
    stores = set;
    gauges.set(registry, set);
    new Gauge({
      name: 'robust_journal_replicas',
      help: 'Segment replicas this journal node holds',
      registers: [registry],
      collect() {
        let n = 0;
        for (const s of set) n += s.replicaCount;
        this.set(n);
      },
    });
  }
  stores.add(store);
}

export class ReplicaStore {
  private readonly replicas = new Map<string, Replica>();
  /** Fence epoch per replica name (also for segments with no replica yet). */
  private readonly fences = new Map<string, number>();
  private fenceVersion = 0;
  private durableFenceVersion = 0;
  private fenceChain: Promise<void> = Promise.resolve();
  private pendingFenceWrite: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly maxUnitBytes: number;
  private readonly mergeBytes: number;

  private constructor(
    private readonly opts: ReplicaStoreOptions,
    private readonly engine: FileEngine,
  ) {
    this.maxUnitBytes = opts.segmentBytes - EOS_BYTES;
    this.mergeBytes = Math.min(MERGE_BYTES, this.maxUnitBytes);
  }

  /** Opens (creating, or recovering) the store in opts.dir. */
  static async open(opts: ReplicaStoreOptions): Promise<ReplicaStore> {
    await mkdir(opts.dir, { recursive: true });
    const fences = await readFences(join(opts.dir, FENCES_FILE));
    const engine = await FileEngine.open({
      dir: join(opts.dir, 'segments'),
      segmentBytes: opts.segmentBytes,
      flush: 'async',
      flushIntervalMs: opts.flushIntervalMs,
      ...(opts.flushBytes !== undefined ? { flushBytes: opts.flushBytes } : {}),
      retentionMs: -1,
      retentionBytes: -1,
      retentionCheckIntervalMs: 0,
      log: opts.log,
      batchDecoder: batchTimestamps,
      ...(opts.io ? { io: opts.io } : {}),
    });
    const store = new ReplicaStore(opts, engine);
    try {
      for (const f of fences.fences) store.fences.set(replicaName(f), f.epoch);
      for (const name of engine.listShards()) {
        const ref = parseReplicaName(name);
        if (!ref) {
          opts.log.warn({ shard: name }, 'journal: the segment store holds a shard that is not a segment replica; ignored');
          continue;
        }
        const info = await engine.shardInfo(name);
        const end = Number(info.endOffset);
        store.replicas.set(name, newReplica(ref, name, end, true));
      }
    } catch (err) {
      await engine.close().catch(() => undefined);
      throw err;
    }
    if (opts.registry) registerGauge(opts.registry, store);
    opts.log.info({ replicas: store.replicas.size, fences: store.fences.size, recovery: engine.recovery }, `journal: segment store open with ${store.replicas.size} replicas`);
    return store;
  }

  get dir(): string {
    return this.opts.dir;
  }

  get replicaCount(): number {
    return this.replicas.size;
  }

  /** fdatasync calls of the engine's CommitLog so far. */
  get fsyncCount(): number {
    return this.engine.fsyncCount;
  }

  // =================================================================== add

  /**
   * Appends the request's units. Everything that orders adds happens before this
   * returns its promise: adds to one replica reach the engine in call order.
   */
  add(req: AddRequest): Promise<StoreResult> {
    const done = (status: Status, message: string, r?: Replica): Promise<StoreResult> => Promise.resolve({ status, message, state: this.stateOf(req, r) });
    if (this.closing) return done(Status.IoError, 'the journal store is closing');
    if (req.segment === ALL_SEGMENTS) return done(Status.BadRequest, `segment ${ALL_SEGMENTS} is reserved`);
    const name = replicaName(req);
    const fenced = this.fences.get(name) ?? 0;
    let r = this.replicas.get(name);
    if (fenced > req.epoch) return done(Status.Fenced, `${refText(req)} is fenced at epoch ${fenced}; this add has epoch ${req.epoch}`, r);
    if (r?.endUnknown) return done(Status.IoError, `${refText(req)}: a write just failed; retry`, r);
    const expected = r ? r.expectedEnd : 0;
    if (req.firstEntry > expected) return done(Status.Gap, `${refText(req)}: add starts at entry ${req.firstEntry}, the replica ends at ${expected}`, r);

    // A hole of no entries would pass for a resent unit below: refuse it first.
    if (req.units.some((u) => u.kind === 'hole' && !(Number.isInteger(u.count) && u.count >= 1))) return done(Status.BadRequest, `${refText(req)}: a hole covers 1.. entries`, r);
    // Units wholly below expectedEnd were accepted before: skip them (entries are immutable).
    let entry = req.firstEntry;
    let i = 0;
    for (; i < req.units.length; i++) {
      const n = unitEntries(req.units[i]!);
      if (entry + n > expected) break;
      entry += n;
    }
    if (i < req.units.length && entry < expected) {
      return done(Status.BadRequest, `${refText(req)}: a unit covers entries ${entry}..${entry + unitEntries(req.units[i]!) - 1}, across the replica's end ${expected}`, r);
    }
    const units = i === 0 ? req.units : req.units.slice(i);
    let count = 0;
    const nameLen = Buffer.byteLength(name, 'utf8');
    for (const u of units) {
      const bad = this.checkUnit(u, nameLen);
      if (bad !== undefined) return done(Status.BadRequest, `${refText(req)}: ${bad}`, r);
      count += unitEntries(u);
    }

    if (!r && units.length === 0) return done(Status.Ok, ''); // an empty add creates no replica
    if (!r) {
      r = newReplica({ shard: req.shard, segment: req.segment }, name, 0, false);
      this.replicas.set(name, r);
    }
    if (req.lac > r.lac) r.lac = req.lac;
    // Nothing new, and nothing of what it covers still being written: answer now.
    if (units.length === 0 && r.queue.length === 0 && r.inflight === 0) return done(Status.Ok, '', r);
    r.expectedEnd += count;
    const replica = r;
    return new Promise<StoreResult>((resolve) => {
      replica.queue.push({ units: toStored(units), epoch: req.epoch, sync: req.sync, next: 0, issued: 0, done: false, resolve });
      if (!replica.running) {
        replica.running = true;
        replica.pumping = this.pump(replica);
      }
    });
  }

  /** Why the engine would refuse this unit (checked before anything of the add is queued), or undefined. */
  private checkUnit(u: Unit, nameLen: number): string | undefined {
    let size: number;
    if (u.kind === 'hole') {
      if (!Number.isInteger(u.count) || u.count < 1 || u.count > 0x7fffffff) return `a hole covers 1.. entries, got ${u.count}`;
      size = BATCH_ENTRY_FIXED_BYTES + nameLen + MIN_BATCH_BYTES;
    } else if (u.kind === 'batch') {
      const b = u.batch;
      if (b.bytes.length < MIN_BATCH_BYTES) return `a batch must be at least ${MIN_BATCH_BYTES} bytes, got ${b.bytes.length}`;
      if (b.bytes[16] !== 2) return `a batch must be in the v2 layout (magic 2), got magic ${b.bytes[16]}`;
      if (b.bytes.readInt32BE(8) !== b.bytes.length - 12) return 'a batch length field does not match its bytes';
      if (!Number.isInteger(b.count) || b.count < 1 || b.count > 0x7fffffff) return `a batch holds 1.. records, got ${b.count}`;
      if (isHoleBatch(b.bytes)) return 'a batch must not have a negative record count (it is how holes are stored)';
      size = BATCH_ENTRY_FIXED_BYTES + nameLen + b.bytes.length;
    } else {
      try {
        size = recordBytes(u.record) + nameLen;
      } catch (err) {
        return errorText(err);
      }
    }
    if (size > this.maxUnitBytes) return `a unit of ${size} bytes exceeds the limit of ${this.maxUnitBytes} bytes`;
    return undefined;
  }

  /** Hands the replica's queue to the engine, one call at a time, until it is empty. */
  private async pump(r: Replica): Promise<void> {
    try {
      for (;;) {
        // Answer the adds at the head whose every unit is written.
        while (r.queue.length > 0 && r.queue[0]!.next >= r.queue[0]!.units.length) this.finish(r, r.queue.shift()!, Status.Ok, '');
        if (r.queue.length === 0 || r.deleted) return;
        if (this.closing) {
          this.failQueue(r, Status.IoError, 'the journal store is closing');
          return;
        }
        const head = r.queue[0]!;
        const kind = head.units[head.next]!.kind;
        const sync = head.sync;
        const records: AppendRecord[] = [];
        const batches: AppendBatch[] = [];
        const taken: PendingAdd[] = [];
        let bytes = 0;
        let count = 0;
        for (const a of r.queue) {
          if (a.next < a.units.length && a.sync !== sync) break;
          let i = a.next;
          for (; i < a.units.length; i++) {
            const u = a.units[i]!;
            if (u.kind !== kind) break;
            const size = u.kind === 'batch' ? u.batch.bytes.length + BATCH_ENTRY_FIXED_BYTES : recordBytes(u.record);
            if (count > 0 && bytes + size > this.mergeBytes) break;
            bytes += size;
            if (u.kind === 'batch') {
              batches.push(u.batch);
              count += u.batch.count;
            } else {
              records.push(u.record);
              count += 1;
            }
          }
          a.issued = i;
          taken.push(a);
          if (i < a.units.length) break;
        }
        r.inflight = count;
        const call = this.write(r, kind, sync, records, batches);
        r.call = call;
        try {
          const base = await call;
          if (base !== r.end) {
            this.opts.log.warn({ replica: r.name, expected: r.end, got: base }, 'journal: the engine stored entries at unexpected ids');
            throw new Error(`the engine stored the entries at ${base}, expected ${r.end}`);
          }
          r.end += count;
          r.inflight = 0;
          r.call = undefined;
          for (const a of taken) a.next = a.issued;
        } catch (err) {
          r.call = undefined;
          await this.afterFailure(r, err);
        }
      }
    } finally {
      r.running = false;
    }
  }

  /** One engine call (creating or re-specifying the shard first when needed); resolves with the first entry id. */
  private async write(r: Replica, kind: Unit['kind'], sync: boolean, records: AppendRecord[], batches: AppendBatch[]): Promise<number> {
    if (!r.created || r.sync !== sync) {
      await this.engine.createShard(this.specOf(r, sync));
      r.created = true;
      r.sync = sync;
    }
    if (r.deleted) throw new ShardNotFoundError(r.name);
    const { baseOffset } = kind === 'batch' ? await this.engine.appendBatches(r.name, batches) : await this.engine.append(r.name, records);
    return Number(baseOffset);
  }

  private specOf(r: Replica, sync: boolean): ShardSpec {
    return { shard: r.name, topic: r.ref.shard, engine: 'file', flush: sync ? 'sync' : 'async', retentionMs: -1, retentionBytes: -1 };
  }

  /** A call failed: fail every queued add, then take the end from the engine. */
  private async afterFailure(r: Replica, err: unknown): Promise<void> {
    const status = statusOf(err);
    const message = `${refText(r.ref)}: ${status === Status.Full ? 'disk full: ' : 'write failed: '}${errorText(err)}`;
    if (!r.deleted) this.opts.log.warn({ replica: r.name, err: errorText(err) }, 'journal: add failed');
    r.endUnknown = true;
    r.inflight = 0;
    const queued = r.queue;
    r.queue = [];
    let end = r.end;
    try {
      end = Number((await this.engine.shardInfo(r.name)).endOffset);
    } catch (e) {
      if (e instanceof ShardNotFoundError) {
        end = 0;
        r.created = false;
      }
    }
    r.end = end;
    r.expectedEnd = end;
    r.endUnknown = false;
    if (!r.created && !r.deleted && this.replicas.get(r.name) === r) this.replicas.delete(r.name);
    for (const a of queued) this.finish(r, a, r.deleted ? Status.NotFound : status, r.deleted ? `${refText(r.ref)} was deleted` : message);
  }

  private finish(r: Replica, a: PendingAdd, status: Status, message: string): void {
    if (a.done) return;
    a.done = true;
    a.resolve({ status, message, state: this.stateOf(r.ref, r) });
  }

  /** Fails every queued add and puts expectedEnd back to what is written or in flight. */
  private failQueue(r: Replica, status: Status, message: string): void {
    const queued = r.queue;
    r.queue = [];
    for (const a of queued) this.finish(r, a, status, message);
    r.expectedEnd = r.end + r.inflight;
  }

  // =================================================================== read

  async read(req: ReadRequest): Promise<ReadResult> {
    const name = replicaName(req);
    const r = this.replicas.get(name);
    const answer = (status: Status, message: string, units: ReadUnit[] = []): ReadResult => ({ status, message, state: this.stateOf(req, r), units });
    if (this.closing) return answer(Status.IoError, 'the journal store is closing');
    if (!r) return answer(Status.NotFound, `no replica of ${refText(req)} here`);
    if (req.fromEntry >= r.end) return answer(Status.Ok, '');
    try {
      const entries = await this.engine.readEntries(name, BigInt(req.fromEntry), {
        maxRecords: Math.min(req.maxEntries, r.end - req.fromEntry),
        maxBytes: Math.min(req.maxBytes, MAX_READ_BYTES),
      });
      const units: ReadUnit[] = [];
      for (const e of entries) {
        if (e.kind === 'batch') {
          if (isHoleBatch(e.bytes)) units.push({ kind: 'hole', entry: Number(e.baseOffset), count: e.count });
          else units.push({ kind: 'batch', entry: Number(e.baseOffset), count: e.count, bytes: e.bytes });
        }
        else {
          const { offset, ...record } = e.record;
          units.push({ kind: 'record', entry: Number(offset), record });
        }
      }
      return answer(Status.Ok, '', units);
    } catch (err) {
      if (err instanceof ShardNotFoundError || r.deleted) return answer(Status.NotFound, `no replica of ${refText(req)} here`);
      return answer(statusOf(err), `${refText(req)}: read failed: ${errorText(err)}`);
    }
  }

  // =================================================================== fence, info, delete, list

  /**
   * Refuses adds below `epoch` from now on (also for a replica that does not exist
   * yet), persisted before this resolves; answers the replica's end once the
   * engine call in flight settled.
   */
  async fence(ref: SegmentRef, epoch: number): Promise<StoreResult> {
    if (this.closing) return { status: Status.IoError, message: 'the journal store is closing', state: this.stateOf(ref, this.replicas.get(replicaName(ref))) };
    if (ref.segment === ALL_SEGMENTS) return { status: Status.BadRequest, message: `segment ${ALL_SEGMENTS} is reserved`, state: this.stateOf(ref, undefined) };
    const name = replicaName(ref);
    const current = this.fences.get(name) ?? 0;
    if (epoch > current) {
      this.fences.set(name, epoch);
      this.fenceVersion++;
    }
    const fenced = Math.max(current, epoch);
    const r = this.replicas.get(name);
    if (r && r.queue.some((a) => a.epoch < fenced)) this.dropFenced(r, fenced);
    try {
      if (this.durableFenceVersion < this.fenceVersion) await this.persistFences();
    } catch (err) {
      return { status: Status.IoError, message: `${refText(ref)}: could not persist the fence: ${errorText(err)}`, state: this.stateOf(ref, r) };
    }
    if (r?.call) await r.call.catch(() => undefined);
    return { status: Status.Ok, message: '', state: this.stateOf(ref, this.replicas.get(name)) };
  }

  /**
   * Drops the queued adds below the fence epoch that are not wholly in the engine
   * call in flight, and every add queued behind the first one dropped (their entry
   * ids count on it). An add wholly in flight keeps its outcome (the fence answers
   * an end that includes it); one partly in flight is answered now and stays
   * queued, cut to those units, until the call settles.
   */
  private dropFenced(r: Replica, fenced: number): void {
    const keep: PendingAdd[] = [];
    let dropping = false;
    let unissued = 0;
    for (const a of r.queue) {
      const inFlight = a.issued >= a.units.length;
      if (!dropping && (a.epoch >= fenced || inFlight)) {
        keep.push(a);
        for (let i = a.issued; i < a.units.length; i++) unissued += unitEntries(a.units[i]!);
        continue;
      }
      if (a.epoch < fenced) this.finish(r, a, Status.Fenced, `${refText(r.ref)} was fenced at epoch ${fenced}`);
      else this.finish(r, a, Status.Gap, `${refText(r.ref)}: an add before this one was refused (fenced at epoch ${fenced})`);
      dropping = true;
      if (a.issued > a.next) {
        a.units = a.units.slice(0, a.issued);
        keep.push(a);
      }
    }
    r.queue = keep;
    r.expectedEnd = r.end + r.inflight + unissued;
  }

  info(ref: SegmentRef): Promise<StoreResult> {
    const r = this.replicas.get(replicaName(ref));
    if (!r) return Promise.resolve({ status: Status.NotFound, message: `no replica of ${refText(ref)} here`, state: this.stateOf(ref, undefined) });
    return Promise.resolve({ status: Status.Ok, message: '', state: this.stateOf(ref, r) });
  }

  /** Drops a segment replica (ALL_SEGMENTS: every one of the shard) and its fence. */
  async delete(ref: SegmentRef): Promise<DeleteResult> {
    if (this.closing) return { status: Status.IoError, message: 'the journal store is closing' };
    const all = ref.segment === ALL_SEGMENTS;
    const victims: Replica[] = [];
    if (all) {
      for (const r of this.replicas.values()) if (r.ref.shard === ref.shard) victims.push(r);
    } else {
      const r = this.replicas.get(replicaName(ref));
      if (r) victims.push(r);
    }
    let fencesRemoved = 0;
    for (const name of [...this.fences.keys()]) {
      const f = parseReplicaName(name);
      if (f && f.shard === ref.shard && (all || f.segment === ref.segment)) {
        this.fences.delete(name);
        fencesRemoved++;
      }
    }
    if (fencesRemoved > 0) this.fenceVersion++;
    for (const r of victims) {
      r.deleted = true;
      this.replicas.delete(r.name);
      this.failQueue(r, Status.NotFound, `${refText(r.ref)} was deleted`);
    }
    try {
      for (const r of victims) await this.engine.deleteShard(r.name);
      if (this.durableFenceVersion < this.fenceVersion) await this.persistFences();
    } catch (err) {
      return { status: statusOf(err) === Status.Full ? Status.Full : Status.IoError, message: `${refText(ref)}: delete failed: ${errorText(err)}` };
    }
    if (!all && victims.length === 0 && fencesRemoved === 0) return { status: Status.NotFound, message: `no replica of ${refText(ref)} here` };
    return { status: Status.Ok, message: '' };
  }

  /** Every segment replica held, by shard then segment. */
  list(): ReplicaInfo[] {
    const out: ReplicaInfo[] = [];
    for (const r of this.replicas.values()) out.push({ shard: r.ref.shard, segment: r.ref.segment, ...this.stateOf(r.ref, r) });
    out.sort((a, b) => (a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : a.segment - b.segment));
    return out;
  }

  private stateOf(ref: SegmentRef, r: Replica | undefined): ReplicaState {
    const fencedEpoch = ref.segment === ALL_SEGMENTS ? 0 : (this.fences.get(replicaName(ref)) ?? 0);
    return { end: r?.end ?? 0, lac: r?.lac ?? -1, fencedEpoch };
  }

  // =================================================================== fences file

  /** Writes fences.json; concurrent callers share a write that has not started yet. */
  private persistFences(): Promise<void> {
    if (this.pendingFenceWrite) return this.pendingFenceWrite;
    const p = this.fenceChain.then(async () => {
      this.pendingFenceWrite = undefined;
      const version = this.fenceVersion;
      const file: FencesFile = { version: 1, fences: [] };
      for (const [name, epoch] of this.fences) {
        const ref = parseReplicaName(name);
        if (ref) file.fences.push({ ...ref, epoch });
      }
      await writeFileAtomic(join(this.opts.dir, FENCES_FILE), Buffer.from(JSON.stringify(file)), this.opts.dir);
      if (version > this.durableFenceVersion) this.durableFenceVersion = version;
    });
    this.pendingFenceWrite = p;
    this.fenceChain = p.catch(() => undefined);
    return p;
  }

  // =================================================================== close

  /** Fails queued adds, waits for the engine calls in flight and closes the engine. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (this.opts.registry) gauges.get(this.opts.registry)?.delete(this);
      const pumps: Promise<void>[] = [];
      for (const r of this.replicas.values()) {
        this.failQueue(r, Status.IoError, 'the journal store is closing');
        if (r.running && r.pumping) pumps.push(r.pumping);
      }
      await Promise.all(pumps);
      await this.fenceChain;
      await this.engine.close();
    })();
    return this.closing;
  }
}

async function readFences(path: string): Promise<FencesFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return { version: 1, fences: [] };
    throw new StorageError(`cannot read ${path}: ${errorText(err)}`, 'storage_io');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new StorageError(`${path} is not valid JSON (${errorText(err)}); refusing to start without the fence epochs it holds`, 'storage_io');
  }
  const f = parsed as FencesFile;
  const ok =
    f !== null &&
    typeof f === 'object' &&
    f.version === 1 &&
    Array.isArray(f.fences) &&
    f.fences.every((x) => typeof x?.shard === 'string' && Number.isInteger(x.segment) && x.segment >= 0 && x.segment < ALL_SEGMENTS && Number.isInteger(x.epoch) && x.epoch >= 0);
  if (!ok) throw new StorageError(`${path} does not hold fence epochs in the expected form; refusing to start without them`, 'storage_io');
  return f;
}
