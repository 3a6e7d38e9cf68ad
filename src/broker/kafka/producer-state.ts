/**
 * Idempotent producers (KIP-98): producer ids handed out by InitProducerId,
 * and per (producer, partition) the epoch and the sequence numbers of the last
 * five batches, so a retried batch is answered with its first offset instead
 * of being appended twice, and a gap in the sequence is refused.
 *
 * The state lives in the partition leader's memory. A leader that has not
 * built it for the partition's current leader epoch (it just started, or it
 * just became leader) rebuilds it from the tail of the log first
 * (producer-state-log.ts), so a retry sent to the new leader is still answered
 * with its first offset. A producer whose batches are older than that tail
 * starts its sequence afresh (Kafka, since 2.5, does the same for a producer
 * whose state expired).
 */
import { ErrorCode } from './protocol/errors.js';

/** Kafka keeps the last five batches per producer and partition; clients keep at most five in flight. */
const CACHED_BATCHES = 5;
const INT32_MAX = 0x7fffffff;

interface CachedBatch {
  firstSeq: number;
  lastSeq: number;
  /** Known once the append completed; until then `pending` resolves to it. */
  baseOffset: bigint;
  pending: Promise<bigint> | undefined;
}

/** A batch whose sequence is taken while its append runs (pipelined requests check against it). */
export interface SequenceReservation {
  complete(baseOffset: bigint): void;
  /** The append failed: the sequence is given back (if nothing was reserved after it). */
  abort(): void;
}

interface PartitionProducer {
  epoch: number;
  batches: CachedBatch[];
  lastSeenMs: number;
}

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: bigint | Promise<bigint> }
  | { kind: 'error'; errorCode: number; message: string };

export class ProducerIdAllocator {
  private next: bigint;

  /** Ids are unique per node (node id in the top bits) and across restarts (clock-based low bits). */
  constructor(nodeId: number, now: () => number = Date.now) {
    this.next = (BigInt(nodeId & 0x7fff) << 48n) | (BigInt(now()) << 4n);
  }

  allocate(): bigint {
    const id = this.next;
    this.next += 1n;
    return id;
  }
}

function nextSeq(seq: number, count: number): number {
  // Sequences wrap from INT32_MAX to 0.
  const n = seq + count;
  return n > INT32_MAX ? n - INT32_MAX - 1 : n;
}

export class ProducerStateTable {
  private readonly state = new Map<string, PartitionProducer>();
  /** Per shard: the leader epoch the state was built for. */
  private readonly builtFor = new Map<string, number>();
  private readonly building = new Map<string, { leaderEpoch: number; done: Promise<void> }>();

  constructor(private readonly expireAfterMs = 7 * 24 * 3600 * 1000) {}

  private key(shard: string, producerId: bigint): string {
    return `${producerId}\u0000${shard}`;
  }

  /** Decides what to do with a batch before it is appended. */
  check(shard: string, producerId: bigint, epoch: number, firstSeq: number, count: number): SequenceCheck {
    const p = this.state.get(this.key(shard, producerId));
    const lastSeq = nextSeq(firstSeq, count - 1);
    if (!p) return { kind: 'append' };
    if (epoch < p.epoch) return { kind: 'error', errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, message: `producer ${producerId} epoch ${epoch} is older than ${p.epoch}` };
    if (epoch > p.epoch) {
      if (firstSeq !== 0) return { kind: 'error', errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message: `producer ${producerId} new epoch ${epoch} must start at sequence 0, got ${firstSeq}` };
      return { kind: 'append' };
    }
    for (const b of p.batches) {
      if (b.firstSeq === firstSeq && b.lastSeq === lastSeq) return { kind: 'duplicate', baseOffset: b.pending ?? b.baseOffset };
    }
    const last = p.batches[p.batches.length - 1];
    if (last && firstSeq !== nextSeq(last.lastSeq, 1)) {
      return { kind: 'error', errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message: `producer ${producerId} sent sequence ${firstSeq}, expected ${nextSeq(last.lastSeq, 1)}` };
    }
    return { kind: 'append' };
  }

  /**
   * Takes a checked batch's sequence before its append completes, so the next
   * pipelined batch of the producer is checked against it; a retry arriving
   * meanwhile is answered with the same offset once known.
   */
  reserve(shard: string, producerId: bigint, epoch: number, firstSeq: number, count: number, nowMs: number): SequenceReservation {
    const key = this.key(shard, producerId);
    let p = this.state.get(key);
    if (!p || p.epoch !== epoch) {
      p = { epoch, batches: [], lastSeenMs: nowMs };
      this.state.set(key, p);
    }
    p.lastSeenMs = nowMs;
    let settle!: (offset: bigint) => void;
    let fail!: (err: Error) => void;
    const pending = new Promise<bigint>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    pending.catch(() => undefined);
    const batch: CachedBatch = { firstSeq, lastSeq: nextSeq(firstSeq, count - 1), baseOffset: -1n, pending };
    p.batches.push(batch);
    if (p.batches.length > CACHED_BATCHES) p.batches.shift();
    const owner = p;
    return {
      complete(baseOffset) {
        batch.baseOffset = baseOffset;
        batch.pending = undefined;
        settle(baseOffset);
      },
      abort: () => {
        const i = owner.batches.indexOf(batch);
        if (i >= 0) owner.batches.splice(i, 1);
        if (owner.batches.length === 0 && this.state.get(key) === owner) this.state.delete(key);
        fail(new Error('the append of the original batch failed'));
      },
    };
  }

  /** Records an appended batch (reserve + complete in one step). */
  appended(shard: string, producerId: bigint, epoch: number, firstSeq: number, count: number, baseOffset: bigint, nowMs: number): void {
    this.reserve(shard, producerId, epoch, firstSeq, count, nowMs).complete(baseOffset);
  }

  /** Forgets producers silent for longer than the expiry (Kafka's transactional.id.expiration / producer id expiration). */
  expire(nowMs: number): number {
    let n = 0;
    for (const [k, p] of this.state) {
      if (nowMs - p.lastSeenMs > this.expireAfterMs) {
        this.state.delete(k);
        n++;
      }
    }
    return n;
  }

  dropShard(shard: string): void {
    for (const k of this.state.keys()) if (k.endsWith(`\u0000${shard}`)) this.state.delete(k);
    this.builtFor.delete(shard);
  }

  /**
   * True when the shard's state is built for this leader epoch; otherwise a
   * promise that settles once it is (`restore` fills it, from the log). Batches
   * of the shard wait on it in arrival order.
   */
  readyFor(shard: string, leaderEpoch: number, restore: () => Promise<unknown>): true | Promise<void> {
    if (this.builtFor.get(shard) === leaderEpoch) return true;
    const b = this.building.get(shard);
    if (b && b.leaderEpoch === leaderEpoch) return b.done;
    // What this node knew of the shard is stale: another leader may have appended since.
    for (const k of this.state.keys()) if (k.endsWith(`\u0000${shard}`)) this.state.delete(k);
    const done = restore().then(
      () => {
        if (this.building.get(shard)?.done === done) {
          this.building.delete(shard);
          this.builtFor.set(shard, leaderEpoch);
        }
      },
      (err: unknown) => {
        if (this.building.get(shard)?.done === done) this.building.delete(shard);
        throw err;
      },
    );
    this.building.set(shard, { leaderEpoch, done });
    return done;
  }

  get size(): number {
    return this.state.size;
  }
}
