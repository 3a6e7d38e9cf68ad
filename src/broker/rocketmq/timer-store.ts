/**
 * Delay (timer) messages: kept out of their topic until due, in a timer log
 * of this node (`__rmq.timer.n<node>`), and appended to the topic when their
 * delivery time comes, where consumers then get them like any message. So a
 * message due in three days costs consumer groups nothing meanwhile (no slot
 * in their in-flight state, no committed offset held back), survives
 * restarts, and can be recalled until it is due.
 *
 * The log holds a timer record per message (the message as it will be
 * stored, plus its topic) and a done record when it was released or
 * recalled; the replay at start keeps the timers without a done record. Only
 * the offsets and due times stay in memory; the messages are read back from
 * the log when due. Released at the start of the second after the delivery
 * time (1 s precision, never early). A release that is cut short by a crash
 * before its done record is written is released again after the restart (at
 * least once, as everything here).
 */
import { errorMessage } from '../../common/errors.js';
import type { AppendRecord, StoredRecord } from '../../storage/types.js';
import { RocketmqError } from './errors.js';
import { InternalLog, asTopicRecord, headerText, textHeader } from './internal-log.js';
import type { RocketmqDeps } from './ports.js';
import { recordRouting, sentMessageId } from './records.js';
import { TimerWheel } from './timer-wheel.js';
import type { TopicWriter } from './topic-writer.js';

const H_KIND = 'rmq.x.kind';
const H_TOPIC = 'rmq.x.topic';
const H_REF = 'rmq.x.ref';
const H_WHY = 'rmq.x.why';
const KIND_TIMER = 'timer';
const KIND_DONE = 'done';

/** A release that failed for a reason that may pass (no queue served yet, storage busy) is tried again this much later. */
const RETRY_MS = 2000;
/** Messages released per append to their topic. */
const RELEASE_CHUNK = 256;
const COMPACT_MS = 10_000;

type DoneReason = 'released' | 'recalled' | 'dropped';

interface PendingTimer {
  readonly topic: string;
  readonly messageId: string;
  readonly deliverAt: number;
  releasing: boolean;
}

/** A timer just stored, as SendMessage answers it. */
export interface ScheduledTimer {
  /** Where the timer is in this node's log: what its recall handle names. */
  offset: number;
  deliverAt: number;
}

export class TimerStore {
  private log: InternalLog | undefined;
  private readonly pending = new Map<number, PendingTimer>();
  private wheel: TimerWheel<number>;
  private ticker: NodeJS.Timeout | undefined;
  private compactor: NodeJS.Timeout | undefined;
  private releasing: Promise<void> | undefined;
  private finishedSinceCompact = false;
  private stopped = false;

  constructor(
    private readonly deps: RocketmqDeps,
    private readonly writer: TopicWriter,
  ) {
    this.wheel = new TimerWheel(deps.now());
  }

  /** Timers waiting for their time. */
  get size(): number {
    return this.pending.size;
  }

  /** Opens this node's timer log and takes back the timers it holds. */
  async open(): Promise<void> {
    this.log = await InternalLog.open(this.deps, `__rmq.timer.n${this.deps.meta.nodeId}`);
    await this.log.replay((r) => this.replayRecord(r));
    this.wheel = new TimerWheel(this.deps.now());
    for (const [offset, t] of this.pending) this.wheel.add(offset, t.deliverAt);
    if (this.pending.size > 0) this.deps.log.info({ timers: this.pending.size }, `rocketmq: ${this.pending.size} delay message(s) waiting in the timer log`);
  }

  start(): void {
    this.stopped = false;
    this.armTick();
    this.compactor = setInterval(() => void this.compact(), COMPACT_MS);
    this.compactor.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearTimeout(this.ticker);
    if (this.compactor) clearInterval(this.compactor);
    await this.releasing;
  }

  /**
   * Stores delay messages (records as toAppendRecord made them, each with its
   * delivery time) for `topic`; resolves once they are durable.
   */
  async schedule(topic: string, messages: Array<{ record: AppendRecord; messageId: string; deliverAt: number }>): Promise<ScheduledTimer[]> {
    const log = this.openLog();
    const records = messages.map((m) => ({ ...m.record, headers: [...m.record.headers, textHeader(H_KIND, KIND_TIMER), textHeader(H_TOPIC, topic)] }));
    const offsets = await log.append(records);
    return offsets.map((offset, i) => {
      const m = messages[i]!;
      this.pending.set(offset, { topic, messageId: m.messageId, deliverAt: m.deliverAt, releasing: false });
      this.wheel.add(offset, m.deliverAt);
      return { offset, deliverAt: m.deliverAt };
    });
  }

  /** Cancels the timer of message `messageId` not yet released; resolves with the message id. */
  async recall(topic: string, offset: number, messageId: string): Promise<string> {
    const t = this.pending.get(offset);
    if (!t || t.topic !== topic || t.messageId !== messageId) throw new RocketmqError('NOT_FOUND', `no delay message of topic "${topic}" waits under this recall handle: it was delivered or recalled already`);
    if (t.releasing) throw new RocketmqError('NOT_FOUND', `the delay message ${t.messageId} is being delivered`);
    this.pending.delete(offset);
    this.wheel.remove(offset);
    try {
      await this.openLog().append([doneRecord(offset, 'recalled', this.deps.now())]);
    } catch (err) {
      this.pending.set(offset, t);
      this.wheel.add(offset, t.deliverAt);
      throw err;
    }
    this.finishedSinceCompact = true;
    this.deps.log.info({ topic, messageId: t.messageId }, 'rocketmq: delay message recalled');
    return t.messageId;
  }

  private openLog(): InternalLog {
    if (!this.log) throw new RocketmqError('INTERNAL_ERROR', 'the timer store is not open');
    return this.log;
  }

  private replayRecord(r: StoredRecord): void {
    const kind = headerText(r, H_KIND);
    if (kind === KIND_TIMER) {
      const topic = headerText(r, H_TOPIC);
      const deliverAt = recordRouting(r).deliverAt;
      if (topic === undefined || deliverAt === undefined) {
        this.deps.log.warn({ offset: String(r.offset) }, 'rocketmq: a timer record without topic or delivery time was skipped');
        return;
      }
      this.pending.set(Number(r.offset), { topic, messageId: sentMessageId(r) ?? '', deliverAt, releasing: false });
    } else if (kind === KIND_DONE) {
      const ref = headerText(r, H_REF);
      if (ref !== undefined) this.pending.delete(Number(ref));
    }
  }

  /** Ticks just after each second begins, while the store runs. */
  private armTick(): void {
    if (this.stopped) return;
    const now = this.deps.now();
    this.ticker = setTimeout(() => this.tick(), 1000 - (now % 1000) + 5);
    this.ticker.unref();
  }

  private tick(): void {
    if (!this.releasing) {
      const due = this.wheel.advance(this.deps.now());
      if (due.length > 0) {
        this.releasing = this.release(due)
          .catch((err: unknown) => this.deps.log.error({ err: errorMessage(err) }, 'rocketmq: releasing delay messages failed'))
          .finally(() => (this.releasing = undefined));
      }
    }
    this.armTick();
  }

  /** Appends the due messages to their topics, then records them done; a slice at a time, so a backlog is never all in memory. */
  private async release(offsets: number[]): Promise<void> {
    for (let i = 0; i < offsets.length && !this.stopped; i += RELEASE_CHUNK) await this.releaseSlice(offsets.slice(i, i + RELEASE_CHUNK));
    // Left by a stop: released by the next run (they are still in the log).
    for (const offset of offsets) {
      const t = this.pending.get(offset);
      if (t && !t.releasing && !this.wheel.has(offset)) this.wheel.add(offset, t.deliverAt);
    }
  }

  private async releaseSlice(offsets: number[]): Promise<void> {
    const log = this.openLog();
    const byTopic = new Map<string, Array<{ offset: number; record: StoredRecord }>>();
    for (const offset of offsets) {
      const t = this.pending.get(offset);
      if (!t) continue; // recalled meanwhile
      t.releasing = true;
      try {
        const record = await log.readOne(offset);
        let list = byTopic.get(t.topic);
        if (!list) byTopic.set(t.topic, (list = []));
        list.push({ offset, record });
      } catch (err) {
        this.retryLater(offset, t, err);
      }
    }
    const done: AppendRecord[] = [];
    for (const [topic, list] of byTopic) {
      const outcome = await this.releaseChunk(topic, list.map((c) => c.record));
      for (const { offset } of list) {
        const t = this.pending.get(offset)!;
        if (outcome === 'retry') {
          this.retryLater(offset, t);
          continue;
        }
        this.pending.delete(offset);
        done.push(doneRecord(offset, outcome, this.deps.now()));
      }
    }
    if (done.length === 0) return;
    this.finishedSinceCompact = true;
    try {
      await log.append(done);
    } catch (err) {
      // Delivered, but a restart before the next successful write delivers them again.
      this.deps.log.warn({ n: done.length, err: errorMessage(err) }, 'rocketmq: could not record released delay messages as done');
    }
  }

  private async releaseChunk(topic: string, records: StoredRecord[]): Promise<'released' | 'dropped' | 'retry'> {
    const now = this.deps.now();
    try {
      await this.writer.write(topic, records.map((r) => asTopicRecord(r, now)), undefined);
      return 'released';
    } catch (err) {
      if (err instanceof RocketmqError && err.status === 'TOPIC_NOT_FOUND') {
        this.deps.log.warn({ topic, n: records.length }, `rocketmq: delay messages for topic ${topic} were dropped: the topic no longer exists`);
        return 'dropped';
      }
      this.deps.log.warn({ topic, n: records.length, err: errorMessage(err) }, 'rocketmq: could not release delay messages; will retry');
      return 'retry';
    }
  }

  private retryLater(offset: number, t: PendingTimer, err?: unknown): void {
    if (err !== undefined) this.deps.log.warn({ offset, err: errorMessage(err) }, 'rocketmq: could not read a due delay message; will retry');
    t.releasing = false;
    this.wheel.add(offset, this.deps.now() + RETRY_MS);
  }

  private async compact(): Promise<void> {
    if (!this.log || !this.finishedSinceCompact) return;
    let min: number | undefined;
    for (const offset of this.pending.keys()) if (min === undefined || offset < min) min = offset;
    this.finishedSinceCompact = false;
    if (!(await this.log.compactTo(min))) this.finishedSinceCompact = true;
  }
}

function doneRecord(offset: number, why: DoneReason, now: number): AppendRecord {
  return { timestamp: now, key: null, value: null, headers: [textHeader(H_KIND, KIND_DONE), textHeader(H_REF, String(offset)), textHeader(H_WHY, why)] };
}
