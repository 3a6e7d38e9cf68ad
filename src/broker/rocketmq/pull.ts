/**
 * PullMessage: read one queue from an offset, for consumers that keep their
 * own position (and store it with UpdateOffset). Nothing is locked or made
 * invisible, nothing is acked: the answer is a Status, the messages the
 * filter lets through, and the offset to pull from next.
 *
 * With nothing at the offset the call long-polls (woken by new data, the end
 * of the poll, the client going away or the server stopping) and then answers
 * MESSAGE_NOT_FOUND with the same next offset. Messages the filter refuses are
 * passed over, so the next offset moves even when none is returned. An offset
 * outside the queue gets ILLEGAL_OFFSET with the nearest valid next offset.
 *
 * A delay message is only handed out once due: a pull stops before one that is
 * not, and waits for it when it is first — offsets are read in order.
 */
import type * as grpc from '@grpc/grpc-js';
import { OffsetOutOfRangeError } from '../../storage/errors.js';
import type { StoredRecord } from '../../storage/types.js';
import { RocketmqError } from './errors.js';
import { filterMatcher, type MessageFilter } from './filter.js';
import type { RocketmqDeps } from './ports.js';
import { durationMs, ok, type Duration, type FilterExpression, type Message, type MessageQueue, type Resource, type Status } from './proto.js';
import { servedQueueOf, type QueueRef } from './queue-ref.js';
import { recordRouting, toMessage } from './records.js';
import { groupName } from './validate.js';

export interface PullMessageRequest {
  group?: Resource;
  messageQueue?: MessageQueue;
  offset?: number;
  batchSize?: number;
  filterExpression?: FilterExpression;
  longPollingTimeout?: Duration;
}

export type PullMessageResponse = { status: Status } | { message: Message } | { nextOffset: number };

type PullCall = grpc.ServerWritableStream<PullMessageRequest, PullMessageResponse>;

const MAX_BATCH = 1024;
const READ_MAX_BYTES = 8 * 1024 * 1024;
/** Reads per attempt past messages the filter refuses before answering with what there is (or waiting). */
const FILTER_ROUNDS = 8;

interface Pull {
  ref: QueueRef;
  from: bigint;
  batch: number;
  matches: MessageFilter;
  deadline: number;
}

type Outcome = { code: 'OK'; messages: StoredRecord[]; next: bigint } | { code: 'MESSAGE_NOT_FOUND'; next: bigint } | { code: 'ILLEGAL_OFFSET'; message: string; next: bigint };

export class Puller {
  /** Wakes the pulls waiting now (the server stops); a set, not one long-lived promise every pull would hang a reaction on. */
  private readonly waiting = new Set<() => void>();
  private stopped = false;

  constructor(private readonly deps: RocketmqDeps) {}

  /** Serves one PullMessage; resolves with the status code it answered. */
  async pull(req: PullMessageRequest, call: PullCall): Promise<string> {
    const p = this.parse(req);
    let wake!: () => void;
    const interrupted = new Promise<void>((resolve) => (wake = resolve));
    this.waiting.add(wake);
    call.once('cancelled', wake);
    let outcome: Outcome;
    try {
      outcome = await this.read(p, interrupted, () => call.cancelled || this.stopped);
    } finally {
      this.waiting.delete(wake);
      call.removeListener('cancelled', wake);
    }
    if (call.cancelled) return outcome.code;
    if (outcome.code === 'OK') {
      call.write({ status: ok() });
      const { host, port } = this.deps.advertised();
      for (const r of outcome.messages) call.write({ message: this.message(p.ref, r, `${host}:${port}`) });
      this.deps.metrics.delivered(p.ref.topic.name, outcome.messages.length, 0);
    } else {
      call.write({ status: { code: outcome.code, message: outcome.code === 'ILLEGAL_OFFSET' ? outcome.message : 'no new message' } });
    }
    call.write({ nextOffset: Number(outcome.next) });
    call.end();
    return outcome.code;
  }

  /** Waiting pulls answer now, and new ones do not wait. */
  stop(): void {
    this.stopped = true;
    for (const wake of this.waiting) wake();
  }

  private parse(req: PullMessageRequest): Pull {
    const s = this.deps.settings;
    groupName(req.group);
    const ref = servedQueueOf(this.deps, req.messageQueue);
    const offset = req.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RocketmqError('ILLEGAL_OFFSET', `offset ${offset} is not an integer >= 0`);
    const batch = req.batchSize ?? s.receiveBatchSize;
    if (!Number.isInteger(batch) || batch <= 0 || batch > MAX_BATCH) throw new RocketmqError('BAD_REQUEST', `batch size ${batch} is out of range: 1..${MAX_BATCH}`);
    const asked = durationMs(req.longPollingTimeout) ?? s.longPollingTimeoutMs;
    if (asked < 0) throw new RocketmqError('ILLEGAL_POLLING_TIME', `long polling timeout of ${asked} ms is negative`);
    const matches = filterMatcher(req.filterExpression);
    return { ref, from: BigInt(offset), batch, matches, deadline: this.deps.now() + Math.min(asked, s.longPollingTimeoutMs) };
  }

  private async read(p: Pull, interrupted: Promise<void>, gone: () => boolean): Promise<Outcome> {
    const storage = this.deps.storage();
    let next = p.from;
    for (;;) {
      const out: StoredRecord[] = [];
      let dueAt: number | undefined;
      for (let round = 0; round < FILTER_ROUNDS && out.length < p.batch && dueAt === undefined; round++) {
        let records: StoredRecord[];
        try {
          records = await storage.read(p.ref.shard, next, { maxRecords: p.batch - out.length, maxBytes: READ_MAX_BYTES });
        } catch (err) {
          if (!(err instanceof OffsetOutOfRangeError)) throw err;
          if (out.length > 0) break;
          const before = next < err.startOffset;
          return {
            code: 'ILLEGAL_OFFSET',
            message: `offset ${next} is ${before ? 'before the first' : 'past the end of'} queue ${p.ref.queue} of topic "${p.ref.topic.name}" (offsets ${err.startOffset}..${err.endOffset})`,
            next: before ? err.startOffset : err.endOffset,
          };
        }
        if (records.length === 0) break;
        const now = this.deps.now();
        for (const r of records) {
          const deliverAt = recordRouting(r).deliverAt;
          if (deliverAt !== undefined && deliverAt > now) {
            dueAt = deliverAt;
            break;
          }
          if (p.matches(r)) out.push(r);
          next = r.offset + 1n;
        }
      }
      if (out.length > 0) return { code: 'OK', messages: out, next };
      const now = this.deps.now();
      if (now >= p.deadline || gone()) return { code: 'MESSAGE_NOT_FOUND', next };
      const remaining = Math.min(p.deadline, dueAt ?? Infinity) - now;
      // Only a new record or the due time of the one we stopped at can change the answer.
      let timer: NodeJS.Timeout | undefined;
      const waits: Array<Promise<unknown>> = [interrupted, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, remaining))))];
      if (dueAt === undefined) waits.push(storage.waitForData(p.ref.shard, next, remaining));
      try {
        await Promise.race(waits);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  private message(ref: QueueRef, r: StoredRecord, storeHost: string): Message {
    return toMessage(r, { topic: ref.topic.name, queue: ref.queue, shard: ref.shard, receiptHandle: '', attempt: 1, invisibleMs: 0, storeHost });
  }
}
