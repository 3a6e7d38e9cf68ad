/**
 * Dead letters: a message a consumer group has been given its maximum number
 * of times without acking it leaves the group's queue state and is appended
 * to the group's `%DLQ%{group}` topic (created on first use), where any
 * consumer of that topic can read it. Receives divert such a message instead
 * of delivering it again; ForwardMessageToDeadLetterQueue does the same on a
 * client's request (push consumers, whose retries run in the client).
 *
 * The dead letter keeps the message's id, body, tag, keys and properties, and
 * gains the user properties DLQ_ORIGIN_TOPIC and DLQ_ORIGIN_MESSAGE_ID.
 */
import { errorMessage } from '../../common/errors.js';
import type { StoredRecord } from '../../storage/types.js';
import type { Consumption, QueueState } from './consumption.js';
import { deadLetterTopic, exceedsMaxAttempts, maxDeliveryAttempts } from './dead-letter-policy.js';
import { RocketmqError } from './errors.js';
import { textHeader } from './internal-log.js';
import type { Delivery } from './pop-queue.js';
import type { RocketmqDeps } from './ports.js';
import { ok, type Resource, type StatusOnlyResponse } from './proto.js';
import { decodeReceiptHandle } from './receipt-handle.js';
import { derivedMessageId, recordRouting, sentMessageId } from './records.js';
import type { TopicWriter } from './topic-writer.js';
import { groupName, topicName } from './validate.js';

export const ORIGIN_TOPIC_PROPERTY = 'DLQ_ORIGIN_TOPIC';
export const ORIGIN_MESSAGE_ID_PROPERTY = 'DLQ_ORIGIN_MESSAGE_ID';

export interface ForwardMessageToDeadLetterQueueRequest {
  group?: Resource;
  topic?: Resource;
  receiptHandle?: string;
  messageId?: string;
  deliveryAttempt?: number;
  maxDeliveryAttempts?: number;
}

export class DeadLetters {
  constructor(
    private readonly deps: RocketmqDeps,
    private readonly writer: TopicWriter,
  ) {}

  /** The group's maximum delivery attempts. */
  maxAttempts(group: string): number {
    return maxDeliveryAttempts(group, this.deps.settings.groupMaxDeliveryAttempts, this.deps.settings.maxDeliveryAttempts);
  }

  /**
   * Whether a delivery just taken from a queue state must not reach the
   * consumer because it is past the group's maximum; it is then moved to the
   * DLQ. When the move fails the message stays in flight and comes back at
   * its invisible deadline, to be tried again.
   */
  async divert(s: QueueState, d: Delivery<StoredRecord>, record: StoredRecord): Promise<boolean> {
    if (!exceedsMaxAttempts(d.attempt, this.maxAttempts(s.group))) return false;
    // A group reading its own DLQ would append each failure to the topic it reads: it keeps getting it instead.
    if (s.topic === deadLetterTopic(s.group)) return false;
    try {
      await this.move(s.group, s.topic, s.shard, record);
      s.pop.drop(d.offset);
    } catch (err) {
      this.deps.log.warn({ group: s.group, shard: s.shard, offset: String(d.offset), err: errorMessage(err) }, 'rocketmq: could not move a message to its dead-letter topic; will retry');
    }
    return true;
  }

  /** Appends the record to the group's dead-letter topic; resolves with that topic's name. */
  async move(group: string, sourceTopic: string, sourceShard: string, record: StoredRecord): Promise<string> {
    const dlq = deadLetterTopic(group);
    if (!this.deps.meta.topic(dlq)) {
      await this.deps.meta.createTopic(dlq, this.deps.settings.defaultQueues, {});
      this.deps.log.info({ topic: dlq, group }, `rocketmq: created dead-letter topic ${dlq}`);
    }
    const messageId = sentMessageId(record) ?? derivedMessageId(sourceShard, record.offset);
    const headers = record.headers.filter((h) => h.key !== ORIGIN_TOPIC_PROPERTY && h.key !== ORIGIN_MESSAGE_ID_PROPERTY);
    // A message another protocol wrote has a derived id: keep it, so the dead letter shows the id the group saw.
    if (sentMessageId(record) === undefined) headers.push(textHeader('rmq.id', messageId));
    headers.push(textHeader(ORIGIN_TOPIC_PROPERTY, sourceTopic), textHeader(ORIGIN_MESSAGE_ID_PROPERTY, messageId));
    await this.writer.write(dlq, [{ timestamp: this.deps.now(), key: record.key, value: record.value, headers, ...(record.tag !== undefined ? { tag: record.tag } : {}) }], recordRouting(record).messageGroup);
    this.deps.log.info({ group, topic: sourceTopic, messageId, dlq }, `rocketmq: message ${messageId} moved to ${dlq}`);
    this.deps.metrics.deadLettered(group);
    return dlq;
  }
}

/** ForwardMessageToDeadLetterQueue: moves the message a receipt handle names to the group's DLQ, now. */
export async function forwardToDeadLetterQueue(deps: RocketmqDeps, consumption: Consumption, deadLetters: DeadLetters, req: ForwardMessageToDeadLetterQueueRequest): Promise<StatusOnlyResponse> {
  const group = groupName(req.group);
  const name = topicName(req.topic);
  const topic = deps.meta.topic(name);
  if (!topic) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${name}" does not exist`);
  const h = decodeReceiptHandle(req.receiptHandle ?? '');
  const s = consumption.find(group, topic, h.queue);
  // An expired handle is accepted: the push consumer retried the message locally for longer than its invisible time.
  const check = s ? s.pop.check(h.offset, h.nonce, deps.now()) : 'unknown';
  if (!s || (check !== 'ok' && check !== 'expired')) {
    throw new RocketmqError('INVALID_RECEIPT_HANDLE', `receipt handle is no longer valid: the message was acked, delivered again or forwarded since (${check})`);
  }
  const record = await consumption.reread(s, h.offset);
  if (record) {
    await deadLetters.move(group, topic.name, s.shard, record);
    s.pop.drop(h.offset);
  }
  consumption.notify(group);
  return { status: ok() };
}
