/**
 * Receipt handles: what a consumer hands back to ack a received message or
 * change its invisible time. The handle names the delivery, not just the
 * message: the queue and offset find the message; the nonce, drawn anew for
 * every delivery and every invisible-time change, tells this delivery from an
 * earlier one of the same message (whose handle is stale); the deadline and
 * attempt are carried for the operator's benefit and for checks that need no
 * state. Clients treat the handle as opaque text.
 */
import { RocketmqError } from './errors.js';

export interface ReceiptHandle {
  /** Shard number within the topic. */
  queue: number;
  offset: bigint;
  /** Delivery attempt this handle belongs to (1 = first delivery). */
  attempt: number;
  /** Invisible deadline, ms since the epoch. */
  deadline: number;
  nonce: number;
}

const VERSION = 'r1';
const PATTERN = /^r1\.(\d{1,5})\.(\d{1,19})\.(\d{1,9})\.(\d{1,16})\.(\d{1,10})$/;

export function encodeReceiptHandle(h: ReceiptHandle): string {
  return `${VERSION}.${h.queue}.${h.offset}.${h.attempt}.${h.deadline}.${h.nonce}`;
}

export function decodeReceiptHandle(text: string): ReceiptHandle {
  const m = PATTERN.exec(text);
  if (!m) throw new RocketmqError('INVALID_RECEIPT_HANDLE', `receipt handle "${text.slice(0, 80)}" is not one this broker issued`);
  return { queue: Number(m[1]), offset: BigInt(m[2]!), attempt: Number(m[3]), deadline: Number(m[4]), nonce: Number(m[5]) };
}
