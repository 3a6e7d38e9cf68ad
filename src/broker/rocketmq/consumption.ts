/**
 * Pop consumption state of this broker: one PopQueue per (consumer group,
 * topic, queue) it serves, started at the group's committed offset from the
 * metadata (the offsets Kafka groups commit too), filled from storage as
 * receivers ask, and committed back periodically as acks move the acked
 * offset forward.
 *
 * In-flight deliveries live in memory only: after a restart of this broker
 * every message from the committed offset on is delivered again (at least
 * once), and receipt handles issued before are unknown.
 */
import { errorMessage } from '../../common/errors.js';
import { shardId } from '../../meta/state/records/shards.js';
import { OffsetOutOfRangeError } from '../../storage/errors.js';
import type { StoredRecord } from '../../storage/types.js';
import { PopQueue } from './pop-queue.js';
import type { RocketmqDeps, RocketmqTopic } from './ports.js';
import { recordRouting } from './records.js';
import type { MessageFilter } from './filter.js';

/** Records read per storage call while filling a queue. */
const READ_CHUNK = 256;
const READ_MAX_BYTES = 8 * 1024 * 1024;
/** A queue state nobody used for this long, with nothing in flight and everything committed, is dropped. */
const IDLE_MS = 10 * 60 * 1000;

export interface QueueState {
  readonly group: string;
  readonly topic: string;
  readonly topicId: number;
  readonly queue: number;
  readonly shard: string;
  readonly pop: PopQueue<StoredRecord>;
  /** The offset last committed to the metadata. */
  committed: number | undefined;
  lastUsedMs: number;
  filling: Promise<number> | undefined;
}

const keyOf = (group: string, topic: string, queue: number): string => `${group}\u0000${topic}\u0000${queue}`;

export class Consumption {
  private readonly states = new Map<string, QueueState>();
  private readonly loading = new Map<string, Promise<QueueState>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private timer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;

  constructor(private readonly deps: RocketmqDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.commit(), this.deps.settings.offsetCommitIntervalMs);
    this.timer.unref();
  }

  /** Stops the periodic commit after one last one. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.commit();
  }

  /** The queue's state, loaded from the committed offset on first use. */
  async state(group: string, topic: RocketmqTopic, queue: number): Promise<QueueState> {
    const key = keyOf(group, topic.name, queue);
    const existing = this.states.get(key);
    if (existing && existing.topicId === topic.id) {
      existing.lastUsedMs = this.deps.now();
      return existing;
    }
    // A topic deleted and created again: its old state (and committed offset) mean nothing now.
    if (existing) this.states.delete(key);
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.load(group, topic, queue).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  /** The state if it is loaded (acks only touch states that handed out the handle). */
  find(group: string, topic: RocketmqTopic, queue: number): QueueState | undefined {
    const s = this.states.get(keyOf(group, topic.name, queue));
    return s && s.topicId === topic.id ? s : undefined;
  }

  /**
   * Reads the next records of the queue into its state (those `matches`
   * refuses are skipped for good: the group does not subscribe to them).
   * Returns how many offsets it moved past; 0 when there was nothing new, the
   * state is full, or another receiver was filling it at the time.
   */
  async fill(s: QueueState, matches: MessageFilter): Promise<number> {
    if (s.filling) {
      await s.filling.catch(() => 0);
      return 0;
    }
    s.filling = this.fillOnce(s, matches).finally(() => (s.filling = undefined));
    return s.filling;
  }

  /** Reads one record again (later deliveries); undefined when retention removed it, and it is then forgotten. */
  async reread(s: QueueState, offset: bigint): Promise<StoredRecord | undefined> {
    try {
      const [r] = await this.deps.storage().read(s.shard, offset, { maxRecords: 1, maxBytes: 1 });
      if (r && r.offset === offset) return r;
    } catch (err) {
      if (!(err instanceof OffsetOutOfRangeError)) throw err;
    }
    this.deps.log.warn({ group: s.group, shard: s.shard, offset: String(offset) }, 'rocketmq: an unacked message was removed by retention before it was acked');
    s.pop.drop(offset);
    return undefined;
  }

  /** Resolves at the next ack in the group (it may unblock a FIFO message group); `cancel` releases it. */
  changed(group: string): { promise: Promise<void>; cancel: () => void } {
    let set = this.waiters.get(group);
    if (!set) this.waiters.set(group, (set = new Set()));
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    set.add(wake);
    return {
      promise,
      cancel: () => {
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(group) === set) this.waiters.delete(group);
      },
    };
  }

  notify(group: string): void {
    const set = this.waiters.get(group);
    if (!set) return;
    this.waiters.delete(group);
    for (const wake of set) wake();
  }

  /**
   * Moves a group's offset on a queue to what `commit` writes to the metadata
   * (UpdateOffset). The queue's pop state is dropped so the next receive starts
   * from the new offset; the periodic commit in flight, which may still carry
   * the old offset, finishes first so it cannot land after the new one.
   * Deliveries in flight on that queue are forgotten (their handles become invalid).
   */
  async reposition(group: string, topic: string, queue: number, commit: () => Promise<void>): Promise<void> {
    const key = keyOf(group, topic, queue);
    this.states.delete(key);
    await this.commit();
    await commit();
    // A receive may have loaded the state from the old offset in the meantime.
    this.states.delete(key);
    this.notify(group);
  }

  inflightTotal(): number {
    let n = 0;
    for (const s of this.states.values()) n += s.pop.inflightCount;
    return n;
  }

  /** Commits every state whose acked offset moved, one meta command per group; drops idle states. */
  commit(): Promise<void> {
    if (!this.committing) this.committing = this.commitOnce().finally(() => (this.committing = undefined));
    return this.committing;
  }

  private async commitOnce(): Promise<void> {
    const byGroup = new Map<string, Array<{ s: QueueState; offset: number }>>();
    for (const s of this.states.values()) {
      const offset = Number(s.pop.ackedOffset);
      if (offset === s.committed) continue;
      let list = byGroup.get(s.group);
      if (!list) byGroup.set(s.group, (list = []));
      list.push({ s, offset });
    }
    for (const [group, list] of byGroup) {
      try {
        await this.deps.meta.commitOffsets(
          group,
          list.map(({ s, offset }) => ({ topic: s.topic, queue: s.queue, offset })),
        );
        for (const { s, offset } of list) s.committed = offset;
      } catch (err) {
        this.deps.log.warn({ group, err: errorMessage(err) }, 'rocketmq: could not commit consumer group offsets; will retry');
      }
    }
    const now = this.deps.now();
    for (const [key, s] of this.states) {
      if (now - s.lastUsedMs > IDLE_MS && s.pop.size === 0 && s.committed === Number(s.pop.ackedOffset)) this.states.delete(key);
    }
  }

  private async load(group: string, topic: RocketmqTopic, queue: number): Promise<QueueState> {
    const shard = shardId(topic.name, queue);
    const committed = this.deps.meta.committed(group, topic.name, queue);
    const start = committed !== undefined ? BigInt(committed) : await this.initialOffset(shard);
    const s: QueueState = { group, topic: topic.name, topicId: topic.id, queue, shard, pop: new PopQueue(start), committed, lastUsedMs: this.deps.now(), filling: undefined };
    this.states.set(keyOf(group, topic.name, queue), s);
    return s;
  }

  private async initialOffset(shard: string): Promise<bigint> {
    const info = await this.deps.storage().shardInfo(shard);
    return this.deps.settings.consumeFrom === 'first' ? info.startOffset : info.endOffset;
  }

  private async fillOnce(s: QueueState, matches: MessageFilter): Promise<number> {
    const room = this.deps.settings.maxInflightPerQueue - s.pop.size;
    if (room <= 0) return 0;
    const from = s.pop.readOffset;
    let records: StoredRecord[];
    try {
      records = await this.deps.storage().read(s.shard, from, { maxRecords: Math.min(room, READ_CHUNK), maxBytes: READ_MAX_BYTES });
    } catch (err) {
      if (!(err instanceof OffsetOutOfRangeError)) throw err;
      // Before the start: retention removed what the group had not read. Past the end: the shard lost
      // its tail (memory engine restart), so the group starts over as a new one would.
      const to = from < err.startOffset || this.deps.settings.consumeFrom === 'first' ? err.startOffset : err.endOffset;
      this.deps.log.warn({ group: s.group, shard: s.shard, from: String(from), to: String(to) }, 'rocketmq: consumer group offset is outside the queue; moved');
      s.pop.moveReadOffset(to);
      return 1;
    }
    for (const r of records) {
      if (r.offset < s.pop.readOffset) continue;
      if (r.offset > s.pop.readOffset) s.pop.moveReadOffset(r.offset);
      if (matches(r)) s.pop.admit(r.offset, recordRouting(r), r);
      else s.pop.skip(r.offset);
    }
    return records.length;
  }
}
