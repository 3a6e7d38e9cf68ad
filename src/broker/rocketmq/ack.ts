/**
 * AckMessage and ChangeInvisibleDuration: both act on one delivery, named by
 * its receipt handle. A handle whose delivery is over — acked, past its
 * invisible deadline, or superseded by a later delivery or a changed invisible
 * time — gets INVALID_RECEIPT_HANDLE, as RocketMQ answers expired handles.
 */
import type { Consumption, QueueState } from './consumption.js';
import { RocketmqError, statusOf } from './errors.js';
import type { RocketmqDeps, RocketmqTopic } from './ports.js';
import {
  durationMs,
  ok,
  type AckMessageRequest,
  type AckMessageResponse,
  type AckMessageResultEntry,
  type ChangeInvisibleDurationRequest,
  type ChangeInvisibleDurationResponse,
  type Status,
} from './proto.js';
import { decodeReceiptHandle, encodeReceiptHandle, type ReceiptHandle } from './receipt-handle.js';
import type { HandleCheck } from './pop-queue.js';
import { boundedMs, groupName, topicName } from './validate.js';

const WHY: Record<Exclude<HandleCheck, 'ok'>, string> = {
  unknown: 'the message is not in flight (already acked, or delivered by an earlier run of this broker)',
  stale: 'the message was delivered again, or its invisible time changed, since this handle was issued',
  expired: "the message's invisible time has passed",
};

function rejected(check: Exclude<HandleCheck, 'ok'>): RocketmqError {
  return new RocketmqError('INVALID_RECEIPT_HANDLE', `receipt handle is no longer valid: ${WHY[check]}`);
}

function topicOf(deps: RocketmqDeps, req: { topic?: { name?: string; resourceNamespace?: string } }): RocketmqTopic {
  const name = topicName(req.topic);
  const topic = deps.meta.topic(name);
  if (!topic) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${name}" does not exist`);
  return topic;
}

function stateFor(consumption: Consumption, group: string, topic: RocketmqTopic, h: ReceiptHandle): QueueState {
  const s = consumption.find(group, topic, h.queue);
  if (!s) throw rejected('unknown');
  return s;
}

/** One status for the whole answer: the common one, or MULTIPLE_RESULTS when entries differ. */
function overall(entries: AckMessageResultEntry[]): Status {
  const codes = new Set(entries.map((e) => e.status.code));
  if (codes.size === 1) return entries[0]!.status.code === 'OK' ? ok() : entries[0]!.status;
  return { code: 'MULTIPLE_RESULTS', message: 'entries have different results' };
}

export function ackMessage(deps: RocketmqDeps, consumption: Consumption, req: AckMessageRequest): AckMessageResponse {
  const group = groupName(req.group);
  const topic = topicOf(deps, req);
  const entries = req.entries ?? [];
  if (entries.length === 0) throw new RocketmqError('BAD_REQUEST', 'AckMessage carries no entry');
  const now = deps.now();
  let acked = 0;
  const results = entries.map((e): AckMessageResultEntry => {
    const base = { messageId: e.messageId ?? '', receiptHandle: e.receiptHandle ?? '' };
    try {
      const h = decodeReceiptHandle(e.receiptHandle ?? '');
      const check = stateFor(consumption, group, topic, h).pop.ack(h.offset, h.nonce, now);
      if (check !== 'ok') throw rejected(check);
      acked++;
      return { ...base, status: ok() };
    } catch (err) {
      return { ...base, status: statusOf(err) };
    }
  });
  if (acked > 0) {
    deps.metrics.acked(topic.name, acked);
    consumption.notify(group);
  }
  return { status: overall(results), entries: results };
}

export function changeInvisibleDuration(deps: RocketmqDeps, consumption: Consumption, req: ChangeInvisibleDurationRequest): ChangeInvisibleDurationResponse {
  const group = groupName(req.group);
  const topic = topicOf(deps, req);
  const h = decodeReceiptHandle(req.receiptHandle ?? '');
  // Zero is allowed here: it makes the message visible again at once (a negative acknowledgement).
  const invisibleMs = boundedMs(durationMs(req.invisibleDuration), -1, 0, deps.settings.maxInvisibleMs, 'invisible duration', 'ILLEGAL_INVISIBLE_TIME');
  const s = stateFor(consumption, group, topic, h);
  const renewed = s.pop.renew(h.offset, h.nonce, deps.now(), invisibleMs);
  if (typeof renewed === 'string') throw rejected(renewed);
  if (invisibleMs === 0) consumption.notify(group);
  return { status: ok(), receiptHandle: encodeReceiptHandle({ queue: h.queue, offset: h.offset, attempt: renewed.attempt, deadline: renewed.deadline, nonce: renewed.nonce }) };
}
