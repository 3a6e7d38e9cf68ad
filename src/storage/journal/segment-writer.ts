/**
 * The one writer of an open segment (BookKeeper's ledger handle): assigns entry
 * ids, sends every unit to each replica of the ensemble, and acknowledges
 * appends in entry order once enough replicas hold them — the ack quorum, or the
 * whole write set for appends that ask for `all` (Kafka acks=all).
 *
 * Appends made in one tick leave as one Add frame per replica. A replica that
 * fails (connection lost, I/O error) breaks the writer: it stops taking appends,
 * lets the adds in flight settle, and reports what was acknowledged; the engine
 * seals the segment there and resends the rest in a new one. A replica that
 * answers "fenced" means another writer took over: nothing more is acknowledged.
 *
 * Striping (ensemble E larger than write quorum Qw): appends go to a write set
 * of Qw consecutive ensemble members, starting at the current stripe; the stripe
 * moves on after `stripeBytes` of appends, so writes spread evenly over the
 * ensemble while a reader still finds long runs of data on one replica. The
 * members outside an append's write set get a hole in its place (protocol.ts),
 * and only answers from the write set count toward its acks.
 */
import type { FlushMode } from '../types.js';
import type { JournalClientPool } from './client.js';
import type { SegmentInfo } from './meta-port.js';
import { Op, Status, type AddRequest, type EntryUnit, type Response, type Unit } from './protocol.js';

export interface PendingAppend {
  units: EntryUnit[];
  count: number;
  bytes: number;
  /** Wait for every replica of the write set, not just the ack quorum. */
  needAll: boolean;
  resolve(baseOffset: bigint): void;
  reject(err: Error): void;
}

interface InFlight {
  p: PendingAppend;
  first: number;
  /** Ensemble index where its write set starts. */
  stripe: number;
  acks: number;
  /** Views of the units' bytes inside the sent frame, for the tail cache. */
  sent: EntryUnit[];
}

/** An acknowledged unit kept for reads of the tail (Kafka consumers and MQTT readers tail the log). */
export interface CachedUnit {
  entry: number;
  count: number;
  unit: EntryUnit;
  bytes: number;
}

export type WriterBreak = { kind: 'fenced'; by: number } | { kind: 'replica'; nodeId: number; why: string } | { kind: 'roll' };

export interface SegmentWriterOptions {
  segment: SegmentInfo;
  pool: JournalClientPool;
  addrOf(nodeId: number): string | undefined;
  flush: FlushMode;
  /** Roll to a new segment past this many bytes. */
  segmentBytes: number;
  /** Bytes of acknowledged units kept for tail reads. */
  cacheBytes: number;
  /** Striped segments: bytes appended to one write set before the next one takes over (default 64 KiB). */
  stripeBytes?: number;
  /** Called once when the writer stops taking appends. */
  onBreak(why: WriterBreak): void;
  /** Called after the last add confirmed moved forward. */
  onAck(lac: number): void;
}

const MAX_ADD_FRAME_BYTES = 8 * 1024 * 1024;
const LAC_IDLE_MS = 5;
const DEFAULT_STRIPE_BYTES = 64 * 1024;

export class SegmentWriter {
  readonly segment: SegmentInfo;
  /** Next entry id to assign. */
  private nextEntry = 0;
  /** Last add confirmed: every entry up to it is acknowledged. */
  lac = -1;
  /** Bytes of every append taken (acknowledged or not: an upper bound for retention). */
  bytes = 0;
  /** The greatest record timestamp of every append taken (-1 for none). */
  maxTimestamp = -1;
  private readonly inFlight: InFlight[] = [];
  private outbox: InFlight[] = [];
  private flushScheduled = false;
  private requestsOut = 0;
  private broken: WriterBreak | undefined;
  private settledWaiters: Array<() => void> = [];
  private readonly cache: CachedUnit[] = [];
  /** The last add confirmed the replicas were told (it rides on adds; an idle writer sends it alone). */
  private sentLac = -1;
  private lacTimer: NodeJS.Timeout | undefined;
  private cacheSize = 0;
  /** Replicas each append goes to (the whole ensemble unless striped). */
  private readonly writeQuorum: number;
  private readonly striped: boolean;
  private stripe = 0;
  private stripeFill = 0;

  constructor(private readonly opts: SegmentWriterOptions) {
    this.segment = opts.segment;
    const e = opts.segment.ensemble.length;
    this.writeQuorum = Math.max(1, Math.min(opts.segment.writeQuorum, e));
    this.striped = this.writeQuorum < e;
  }

  /** Whether ensemble member `index` is in the write set of an append made on `stripe`. */
  private holds(stripe: number, index: number): boolean {
    const e = this.segment.ensemble.length;
    return (index - stripe + e) % e < this.writeQuorum;
  }

  get accepting(): boolean {
    return this.broken === undefined;
  }

  get breakReason(): WriterBreak | undefined {
    return this.broken;
  }

  /** Shard offset of the next entry once everything in flight is acknowledged. */
  get startOffset(): number {
    return this.segment.startOffset;
  }

  append(p: PendingAppend): void {
    if (this.broken) throw new Error('segment writer is not taking appends');
    const f: InFlight = { p, first: this.nextEntry, stripe: this.stripe, acks: 0, sent: p.units };
    if (this.striped) {
      this.stripeFill += p.bytes;
      if (this.stripeFill >= (this.opts.stripeBytes ?? DEFAULT_STRIPE_BYTES)) {
        this.stripe = (this.stripe + 1) % this.segment.ensemble.length;
        this.stripeFill = 0;
      }
    }
    this.nextEntry += p.count;
    this.bytes += p.bytes;
    for (const u of p.units) {
      const t = u.kind === 'batch' ? u.batch.maxTimestamp : u.record.timestamp;
      if (t > this.maxTimestamp) this.maxTimestamp = t;
    }
    this.inFlight.push(f);
    this.outbox.push(f);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flushOutbox());
    }
    if (this.bytes >= this.opts.segmentBytes) this.breakWith({ kind: 'roll' });
  }

  /** Stop taking appends (the engine rolls to a new segment). */
  stop(): void {
    this.breakWith({ kind: 'roll' });
    if (this.lacTimer) clearTimeout(this.lacTimer);
    this.lacTimer = undefined;
  }

  /** Resolves when no add is in flight any more (after a break: what was acknowledged is final). */
  settled(): Promise<void> {
    if (this.requestsOut === 0 && !this.flushScheduled) return Promise.resolve();
    return new Promise((r) => this.settledWaiters.push(r));
  }

  /** Appends not acknowledged, in order (to resend in the next segment after a break). */
  takeUnacknowledged(): PendingAppend[] {
    const out = this.inFlight.map((f) => f.p);
    this.inFlight.length = 0;
    this.outbox = [];
    return out;
  }

  /** Acknowledged units from entry `from` on, if the cache still holds it. */
  cached(from: number): CachedUnit[] | undefined {
    const first = this.cache[0];
    if (!first || from < first.entry || from > this.lac) return undefined;
    // Binary search for the unit holding `from`.
    let lo = 0;
    let hi = this.cache.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.cache[mid]!.entry <= from) lo = mid;
      else hi = mid - 1;
    }
    return this.cache.slice(lo);
  }

  private flushOutbox(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0) {
      this.maybeSettled();
      return;
    }
    if (this.broken && this.broken.kind !== 'roll') {
      this.outbox = [];
      this.maybeSettled();
      return;
    }
    while (this.outbox.length > 0) {
      // One frame per replica for as many appends as fit.
      let size = 0;
      let n = 0;
      while (n < this.outbox.length && (n === 0 || size + this.outbox[n]!.p.bytes <= MAX_ADD_FRAME_BYTES)) size += this.outbox[n++]!.p.bytes;
      const group = this.outbox.splice(0, n);
      this.sendGroup(group);
    }
  }

  private sendGroup(group: InFlight[]): void {
    const units: Unit[] = [];
    for (const f of group) for (const u of f.p.units) units.push(u);
    const base: AddRequest = {
      op: Op.Add,
      shard: this.segment.shard,
      segment: this.segment.segment,
      epoch: this.segment.epoch,
      sync: this.opts.flush === 'sync',
      lac: this.lac,
      firstEntry: group[0]!.first,
      units,
    };
    this.sentLac = this.lac;
    this.segment.ensemble.forEach((nodeId, index) => {
      const addr = this.opts.addrOf(nodeId);
      if (!addr) {
        this.breakWith({ kind: 'replica', nodeId, why: 'no journal address known' });
        return;
      }
      const req = this.striped ? { ...base, units: this.unitsFor(index, group) } : base;
      this.requestsOut++;
      this.opts.pool
        .get(nodeId, addr)
        .request(req)
        .then(
          (res) => this.onAnswer(nodeId, index, group, res),
          (err: unknown) => this.breakWith({ kind: 'replica', nodeId, why: (err as Error).message }),
        )
        .finally(() => {
          this.requestsOut--;
          this.maybeSettled();
        });
    });
  }

  /** A striped group as ensemble member `index` gets it: its appends' units, holes for the others. */
  private unitsFor(index: number, group: InFlight[]): Unit[] {
    const out: Unit[] = [];
    let hole: { kind: 'hole'; count: number } | undefined;
    for (const f of group) {
      if (this.holds(f.stripe, index)) {
        hole = undefined;
        for (const u of f.p.units) out.push(u);
      } else if (hole) hole.count += f.p.count;
      else {
        hole = { kind: 'hole', count: f.p.count };
        out.push(hole);
      }
    }
    return out;
  }

  private onAnswer(nodeId: number, index: number, group: InFlight[], res: Response): void {
    if (res.status === Status.Fenced) {
      this.breakWith({ kind: 'fenced', by: res.op === Op.Add ? res.state.fencedEpoch : 0 });
      return;
    }
    if (res.status !== Status.Ok) {
      this.breakWith({ kind: 'replica', nodeId, why: res.message });
      return;
    }
    for (const f of group) if (!this.striped || this.holds(f.stripe, index)) f.acks++;
    this.advance();
  }

  /** Acknowledge, in entry order, every append that has its acks. */
  private advance(): void {
    if (this.broken?.kind === 'fenced') return;
    const quorum = this.segment.ackQuorum;
    const all = this.writeQuorum;
    let moved = false;
    while (this.inFlight.length > 0) {
      const f = this.inFlight[0]!;
      if (f.acks < (f.p.needAll ? all : quorum)) break;
      this.inFlight.shift();
      this.lac = f.first + f.p.count - 1;
      moved = true;
      this.remember(f);
      f.p.resolve(BigInt(this.segment.startOffset + f.first));
    }
    if (moved) {
      this.opts.onAck(this.lac);
      this.lacTimer ??= setTimeout(() => this.sendLac(), LAC_IDLE_MS);
    }
  }

  /** Tells the replicas the last add confirmed when no add carried it, so readers on other nodes see the tail. */
  private sendLac(): void {
    this.lacTimer = undefined;
    if (this.broken?.kind === 'fenced' || this.lac <= this.sentLac || this.outbox.length > 0) return;
    this.sentLac = this.lac;
    const req: AddRequest = { op: Op.Add, shard: this.segment.shard, segment: this.segment.segment, epoch: this.segment.epoch, sync: false, lac: this.lac, firstEntry: this.nextEntry, units: [] };
    for (const nodeId of this.segment.ensemble) {
      const addr = this.opts.addrOf(nodeId);
      if (addr) this.opts.pool.get(nodeId, addr).request(req).catch(() => undefined); // a failed replica shows on the next real add
    }
  }

  private remember(f: InFlight): void {
    if (this.opts.cacheBytes <= 0) return;
    let entry = f.first;
    for (const unit of f.sent) {
      const count = unit.kind === 'batch' ? unit.batch.count : 1;
      // Batch bytes belong to the caller, who reuses them once the append settles: keep a copy.
      const kept: EntryUnit = unit.kind === 'batch' ? { kind: 'batch', batch: { ...unit.batch, bytes: Buffer.from(unit.batch.bytes) } } : unit;
      const bytes = unit.kind === 'batch' ? unit.batch.bytes.length : (unit.record.value?.length ?? 0) + (unit.record.key?.length ?? 0) + 32;
      this.cache.push({ entry, count, unit: kept, bytes });
      this.cacheSize += bytes;
      entry += count;
    }
    while (this.cacheSize > this.opts.cacheBytes && this.cache.length > 1) this.cacheSize -= this.cache.shift()!.bytes;
  }

  private breakWith(why: WriterBreak): void {
    if (this.broken) {
      // A fence seen later still wins: nothing more may be acknowledged.
      if (why.kind === 'fenced' && this.broken.kind !== 'fenced') this.broken = why;
      return;
    }
    this.broken = why;
    this.opts.onBreak(why);
  }

  private maybeSettled(): void {
    if (this.requestsOut !== 0 || this.flushScheduled) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const w of waiters) w();
  }
}
