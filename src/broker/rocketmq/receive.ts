/**
 * ReceiveMessage (a server stream): take up to a batch of visible messages
 * from the queues of the topic this broker serves, round robin across queues,
 * filling each group's queue state from storage; answer a Status OK and then
 * one response per message. With nothing to deliver, long-poll — woken by new
 * data, an ack in the group, the next invisible deadline or delay, the end of
 * the poll, the client going away, or the server stopping — and answer a
 * single MESSAGE_NOT_FOUND when the poll ends empty.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Consumption, QueueState } from './consumption.js';
import type { DeadLetters } from './dead-letter.js';
import { RocketmqError } from './errors.js';
import type { RocketmqDeps, RocketmqTopic } from './ports.js';
import { durationMs, ok, type Message, type ReceiveMessageRequest, type ReceiveMessageResponse } from './proto.js';
import { encodeReceiptHandle } from './receipt-handle.js';
import { toMessage } from './records.js';
import { ensureTopic } from './route.js';
import { filterMatcher, type MessageFilter } from './filter.js';
import { boundedMs, groupName, topicName } from './validate.js';

type ReceiveCall = grpc.ServerWritableStream<ReceiveMessageRequest, ReceiveMessageResponse>;

const MAX_BATCH = 1024;
/** Invisible time of a request that names none (push consumers with auto-renew). */
const DEFAULT_INVISIBLE_MS = 30_000;
/** Fill-and-take rounds per queue per attempt: enough to get past a run of filtered-out records without starving other queues. */
const FILL_ROUNDS = 8;
/** A waiting receive looks again at least this often (leadership and topics change without an event here). */
const RECHECK_MS = 1000;

interface Request {
  group: string;
  topic: RocketmqTopic;
  matches: MessageFilter;
  batch: number;
  invisibleMs: number;
  deadline: number;
}

export class Receiver {
  private next = 0;
  private stopped = false;

  constructor(
    private readonly deps: RocketmqDeps,
    private readonly consumption: Consumption,
    /** Resolves when the server stops: waiting receives answer at once. */
    private readonly stopping: Promise<void>,
    /** Takes the messages past the group's max delivery attempts instead of the consumer. */
    private readonly deadLetters?: DeadLetters,
  ) {}

  /** Serves one ReceiveMessage; resolves with the status code it answered. */
  async receive(req: ReceiveMessageRequest, call: ReceiveCall): Promise<'OK' | 'MESSAGE_NOT_FOUND'> {
    const r = await this.parse(req);
    const cancelled = new Promise<void>((resolve) => call.once('cancelled', () => resolve()));
    const waits = new Map<number, Promise<void>>();
    for (;;) {
      const messages = await this.collect(r);
      if (messages.length > 0) {
        if (!call.cancelled) {
          call.write({ status: ok() });
          for (const message of messages) call.write({ message });
          call.end();
        }
        return 'OK';
      }
      const now = this.deps.now();
      if (now >= r.deadline || call.cancelled || this.stopped) {
        if (!call.cancelled) {
          call.write({ status: { code: 'MESSAGE_NOT_FOUND', message: 'no new message' } });
          call.end();
        }
        return 'MESSAGE_NOT_FOUND';
      }
      await this.wait(r, waits, cancelled);
    }
  }

  /** Marks the receiver stopped (the server's stop); waiting receives see it when `stopping` resolves. */
  stop(): void {
    this.stopped = true;
  }

  private async parse(req: ReceiveMessageRequest): Promise<Request> {
    const s = this.deps.settings;
    const group = groupName(req.group);
    const name = topicName(req.messageQueue?.topic);
    const matches = filterMatcher(req.filterExpression);
    const batch = req.batchSize ?? s.receiveBatchSize;
    if (!Number.isInteger(batch) || batch <= 0 || batch > MAX_BATCH) throw new RocketmqError('BAD_REQUEST', `batch size ${batch} is out of range: 1..${MAX_BATCH}`);
    const invisibleMs = boundedMs(durationMs(req.invisibleDuration), DEFAULT_INVISIBLE_MS, s.minInvisibleMs, s.maxInvisibleMs, 'invisible duration', 'ILLEGAL_INVISIBLE_TIME');
    const asked = durationMs(req.longPollingTimeout) ?? s.longPollingTimeoutMs;
    if (asked < 0) throw new RocketmqError('ILLEGAL_POLLING_TIME', `long polling timeout of ${asked} ms is negative`);
    const topic = await ensureTopic(this.deps, name, false);
    return { group, topic, matches, batch, invisibleMs, deadline: this.deps.now() + Math.min(asked, s.longPollingTimeoutMs) };
  }

  private async collect(r: Request): Promise<Message[]> {
    const queues = this.deps.meta.servedQueues(r.topic.name);
    const out: Message[] = [];
    const first = this.next++;
    for (let i = 0; i < queues.length && out.length < r.batch; i++) {
      const s = await this.consumption.state(r.group, r.topic, queues[(first + i) % queues.length]!);
      for (let round = 0; round < FILL_ROUNDS && out.length < r.batch; round++) {
        await this.takeFrom(s, r, out);
        if (out.length >= r.batch) break;
        if ((await this.consumption.fill(s, r.matches)) === 0) {
          await this.takeFrom(s, r, out); // another receiver may have just filled it
          break;
        }
      }
    }
    return out;
  }

  private async takeFrom(s: QueueState, r: Request, out: Message[]): Promise<void> {
    const taken = s.pop.take(this.deps.now(), r.batch - out.length, r.invisibleMs);
    let redelivered = 0;
    const before = out.length;
    const { host, port } = this.deps.advertised();
    for (const d of taken) {
      const record = d.payload ?? (await this.consumption.reread(s, d.offset));
      if (!record) continue;
      if (this.deadLetters && (await this.deadLetters.divert(s, d, record))) continue;
      if (d.attempt > 1) redelivered++;
      out.push(
        toMessage(record, {
          topic: s.topic,
          queue: s.queue,
          shard: s.shard,
          receiptHandle: encodeReceiptHandle({ queue: s.queue, offset: d.offset, attempt: d.attempt, deadline: d.deadline, nonce: d.nonce }),
          attempt: d.attempt,
          invisibleMs: r.invisibleMs,
          storeHost: `${host}:${port}`,
        }),
      );
    }
    if (out.length > before) this.deps.metrics.delivered(s.topic, out.length - before, redelivered);
  }

  /** Until something may have made a message deliverable (or the poll is over). */
  private async wait(r: Request, waits: Map<number, Promise<void>>, cancelled: Promise<void>): Promise<void> {
    const now = this.deps.now();
    let wakeAt = Math.min(r.deadline, now + RECHECK_MS);
    const storage = this.deps.storage();
    for (const queue of this.deps.meta.servedQueues(r.topic.name)) {
      const s = this.consumption.find(r.group, r.topic, queue);
      if (!s) continue;
      const visible = s.pop.nextVisibleAt(now);
      if (visible !== undefined && visible < wakeAt) wakeAt = visible;
      // A full queue state reads nothing more, so new data would not help (and would wake us at once).
      if (s.pop.size < this.deps.settings.maxInflightPerQueue && !waits.has(queue)) {
        const done = (): void => void waits.delete(queue);
        waits.set(queue, storage.waitForData(s.shard, s.pop.readOffset, Math.max(0, r.deadline - now)).then(done, done));
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const sleep = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, wakeAt - now))));
    const acked = this.consumption.changed(r.group);
    try {
      await Promise.race([sleep, acked.promise, cancelled, this.stopping, ...waits.values()]);
    } finally {
      clearTimeout(timer);
      acked.cancel();
    }
  }
}
