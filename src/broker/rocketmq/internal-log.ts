/**
 * A log of the broker's own on an internal one-queue topic (`__rmq.*.n<node>`):
 * where the transaction and timer stores keep what must survive a restart.
 * Per node, because on replicated storage every node can read every shard,
 * and a shared log would release each timer (or check each transaction) once
 * per node.
 *
 * The log is replayed whole at start; its owner moves the start forward past
 * records no longer needed (`compactTo`), never past one it has not yet seen
 * the offset of, so a record whose append is still settling is never cut.
 */
import { errorMessage } from '../../common/errors.js';
import { shardId } from '../../meta/state/records/shards.js';
import type { AppendRecord, StoredRecord } from '../../storage/types.js';
import { RocketmqError } from './errors.js';
import type { RocketmqDeps } from './ports.js';

const READ_BATCH = { maxRecords: 2000, maxBytes: 16 * 1024 * 1024 };
const PLACEMENT_WAIT_MS = 15_000;

export class InternalLog {
  /** One past the highest offset an append or the replay returned. */
  private seenEnd = 0;
  private appending = 0;
  private truncatedTo = 0;

  private constructor(
    private readonly deps: RocketmqDeps,
    readonly shard: string,
  ) {}

  /** Opens (creating if needed) the internal topic `topic` of this node. */
  static async open(deps: RocketmqDeps, topic: string): Promise<InternalLog> {
    let shard: string;
    if (deps.meta.ensureInternalShard) {
      shard = await deps.meta.ensureInternalShard(topic);
    } else {
      await deps.meta.createTopic(topic, 1, {});
      await deps.meta.waitForQueues(topic, PLACEMENT_WAIT_MS);
      shard = shardId(topic, 0);
    }
    return new InternalLog(deps, shard);
  }

  /** Appends records atomically; resolves with the offset of each. */
  async append(records: AppendRecord[]): Promise<number[]> {
    this.appending++;
    try {
      const { baseOffset } = await this.deps.storage().append(this.shard, records);
      const base = Number(baseOffset);
      this.seenEnd = Math.max(this.seenEnd, base + records.length);
      return records.map((_, i) => base + i);
    } finally {
      this.appending--;
    }
  }

  /** Visits every record from the log's start to its end. */
  async replay(visit: (r: StoredRecord) => void): Promise<void> {
    const storage = this.deps.storage();
    const info = await storage.shardInfo(this.shard);
    let from = info.startOffset;
    this.truncatedTo = Number(info.startOffset);
    while (from < info.endOffset) {
      const batch = await storage.read(this.shard, from, READ_BATCH);
      if (batch.length === 0) break;
      for (const r of batch) visit(r);
      from = batch[batch.length - 1]!.offset + 1n;
    }
    this.seenEnd = Math.max(this.seenEnd, Number(from));
  }

  /** The record at `offset`, which must not have been compacted away. */
  async readOne(offset: number): Promise<StoredRecord> {
    const [r] = await this.deps.storage().read(this.shard, BigInt(offset), { maxRecords: 1, maxBytes: 1 });
    if (!r || r.offset !== BigInt(offset)) throw new RocketmqError('INTERNAL_ERROR', `internal log ${this.shard} has no record at offset ${offset}`);
    return r;
  }

  /**
   * Drops the records before `firstNeeded` (undefined: every record seen so
   * far). Skipped while an append is settling (its record may be unseen yet);
   * false when it did not happen, so the caller tries again later.
   */
  async compactTo(firstNeeded: number | undefined): Promise<boolean> {
    if (this.appending > 0) return false;
    const to = Math.min(firstNeeded ?? this.seenEnd, this.seenEnd);
    if (to <= this.truncatedTo) return true;
    try {
      await this.deps.storage().truncateBefore(this.shard, BigInt(to));
      this.truncatedTo = to;
      return true;
    } catch (err) {
      this.deps.log.warn({ shard: this.shard, err: errorMessage(err) }, 'rocketmq: could not compact an internal log; will retry');
      return false;
    }
  }
}

/** Headers the stores add to a message in their logs (under RocketMQ's reserved `rmq.` prefix, so clients never set them). */
export const INTERNAL_HEADER_PREFIX = 'rmq.x.';

/** A message kept in an internal log as its topic stores it: the log's own headers dropped, stored `now`. */
export function asTopicRecord(r: StoredRecord, now: number): AppendRecord {
  return {
    timestamp: now,
    key: r.key,
    value: r.value,
    headers: r.headers.filter((h) => !h.key.startsWith(INTERNAL_HEADER_PREFIX)),
    ...(r.tag !== undefined ? { tag: r.tag } : {}),
  };
}

/** A text header of an internal record. */
export function textHeader(key: string, value: string): { key: string; value: Buffer } {
  return { key, value: Buffer.from(value, 'utf8') };
}

export function headerText(r: StoredRecord, key: string): string | undefined {
  for (const h of r.headers) if (h.key === key) return h.value.toString('utf8');
  return undefined;
}
