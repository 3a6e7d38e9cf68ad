/**
 * When a message stops being redelivered and where it goes instead — pure.
 *
 * RocketMQ gives a consumer group a maximum number of delivery attempts (16
 * unless the group says otherwise); a message the group has received that
 * many times without acking it is not delivered again but moved to the
 * group's dead-letter topic `%DLQ%{group}`, where it waits for an operator
 * or a consumer of that topic.
 */
import { DLQ_PREFIX } from '../../meta/state/records/topics.js';

export const DEFAULT_MAX_DELIVERY_ATTEMPTS = 16;

/** Whether this delivery attempt is past the group's maximum (the message goes to the DLQ instead). */
export function exceedsMaxAttempts(attempt: number, maxAttempts: number): boolean {
  return attempt > maxAttempts;
}

/** The group's maximum: its own setting, else the broker's default, else RocketMQ's 16. */
export function maxDeliveryAttempts(group: string, perGroup: Readonly<Record<string, number>> | undefined, brokerDefault: number | undefined): number {
  return perGroup?.[group] ?? brokerDefault ?? DEFAULT_MAX_DELIVERY_ATTEMPTS;
}

/**
 * The dead-letter topic of a group. Group names may hold `%` and `|`, which
 * topic names may not (they become file and object names); those characters
 * become `_`, so such a group shares its DLQ with a group named like it.
 */
export function deadLetterTopic(group: string): string {
  let tail = group.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 249 - DLQ_PREFIX.length);
  if (tail === '.' || tail === '..') tail = tail.replace(/\./g, '_');
  return DLQ_PREFIX + tail;
}
