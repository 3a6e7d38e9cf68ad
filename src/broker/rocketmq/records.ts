/**
 * RocketMQ messages as stored records, and back. A topic is shared by every
 * protocol, so the mapping keeps records readable by the others: the body is
 * the record value, the tag the record's tag (storage indexes its hash), user
 * properties are plain headers (what Kafka headers and MQTT user properties
 * are too), and RocketMQ's system properties are headers under the reserved
 * prefix `rmq.`. The record key is the message group (FIFO) or the first
 * message key, so Kafka consumers see a meaningful key.
 *
 * A record written by another protocol has none of the `rmq.` headers: it
 * reads as a NORMAL message whose id derives from its shard and offset (the
 * same on every delivery) and whose key, if any, is its message key.
 */
import { createHash } from 'node:crypto';
import type { AppendRecord, RecordHeader, StoredRecord } from '../../storage/types.js';
import type { Message, MessageType } from './proto.js';
import { toDuration, toTimestamp } from './proto.js';

export const SYSTEM_HEADER_PREFIX = 'rmq.';
const H_ID = 'rmq.id';
const H_KEY = 'rmq.key';
const H_GROUP = 'rmq.group';
const H_DELIVER_AT = 'rmq.deliver_at';
const H_BORN = 'rmq.born';
const H_BORN_HOST = 'rmq.born_host';
const H_TYPE = 'rmq.type';
const H_TRACE = 'rmq.trace';

/** A message as the send path has checked it. */
export interface OutgoingMessage {
  messageId: string;
  type: MessageType;
  body: Buffer;
  tag: string | undefined;
  keys: string[];
  messageGroup: string | undefined;
  deliverAt: number | undefined;
  bornAt: number | undefined;
  bornHost: string | undefined;
  traceContext: string | undefined;
  properties: Record<string, string>;
}

const text = (key: string, value: string): RecordHeader => ({ key, value: Buffer.from(value, 'utf8') });

export function toAppendRecord(m: OutgoingMessage, now: number): AppendRecord {
  const headers: RecordHeader[] = [text(H_ID, m.messageId), text(H_TYPE, m.type)];
  for (const k of m.keys) headers.push(text(H_KEY, k));
  if (m.messageGroup !== undefined) headers.push(text(H_GROUP, m.messageGroup));
  if (m.deliverAt !== undefined) headers.push(text(H_DELIVER_AT, String(m.deliverAt)));
  if (m.bornAt !== undefined) headers.push(text(H_BORN, String(m.bornAt)));
  if (m.bornHost !== undefined && m.bornHost !== '') headers.push(text(H_BORN_HOST, m.bornHost));
  if (m.traceContext !== undefined && m.traceContext !== '') headers.push(text(H_TRACE, m.traceContext));
  for (const [k, v] of Object.entries(m.properties)) headers.push(text(k, v));
  const key = m.messageGroup ?? m.keys[0];
  return { timestamp: now, key: key !== undefined ? Buffer.from(key, 'utf8') : null, value: m.body, headers, ...(m.tag !== undefined ? { tag: m.tag } : {}) };
}

/** What the pop state needs to know of a record before it is delivered. */
export interface RecordRouting {
  messageGroup: string | undefined;
  deliverAt: number | undefined;
}

function header(r: StoredRecord, key: string): string | undefined {
  for (const h of r.headers) if (h.key === key) return h.value.toString('utf8');
  return undefined;
}

function intHeader(r: StoredRecord, key: string): number | undefined {
  const v = header(r, key);
  return v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : undefined;
}

export function recordRouting(r: StoredRecord): RecordRouting {
  return { messageGroup: header(r, H_GROUP), deliverAt: intHeader(r, H_DELIVER_AT) };
}

/** The message id a record was sent with (undefined for a record another protocol wrote). */
export function sentMessageId(r: StoredRecord): string | undefined {
  return header(r, H_ID);
}

/** A stable id for a record another protocol wrote: 17 bytes like RocketMQ's ids, from the shard and offset. */
export function derivedMessageId(shard: string, offset: bigint): string {
  return `00${createHash('md5').update(`${shard}@${offset}`).digest('hex').toUpperCase()}`;
}

export function bodyDigest(body: Buffer): string {
  return createHash('md5').update(body).digest('hex').toUpperCase();
}

export interface DeliveryInfo {
  topic: string;
  queue: number;
  shard: string;
  receiptHandle: string;
  attempt: number;
  invisibleMs: number;
  storeHost: string;
}

/** A stored record as the Message a consumer receives. */
export function toMessage(r: StoredRecord, d: DeliveryInfo): Message {
  const properties: Record<string, string> = {};
  const keys: string[] = [];
  let native = false;
  for (const h of r.headers) {
    if (h.key === H_KEY) keys.push(h.value.toString('utf8'));
    else if (h.key.startsWith(SYSTEM_HEADER_PREFIX)) native = true;
    else properties[h.key] = h.value.toString('utf8');
  }
  if (!native && keys.length === 0 && r.key !== null) keys.push(r.key.toString('utf8'));
  const body = r.value ?? Buffer.alloc(0);
  const group = header(r, H_GROUP);
  const deliverAt = intHeader(r, H_DELIVER_AT);
  const storedType = header(r, H_TYPE);
  const type: MessageType = storedType === 'FIFO' || storedType === 'DELAY' || storedType === 'TRANSACTION' || storedType === 'NORMAL' ? storedType : group !== undefined ? 'FIFO' : deliverAt !== undefined ? 'DELAY' : 'NORMAL';
  const trace = header(r, H_TRACE);
  return {
    topic: { name: d.topic },
    userProperties: properties,
    body,
    systemProperties: {
      ...(r.tag !== undefined ? { tag: r.tag } : {}),
      keys,
      messageId: header(r, H_ID) ?? derivedMessageId(d.shard, r.offset),
      bodyDigest: { type: 'MD5', checksum: bodyDigest(body) },
      bodyEncoding: 'IDENTITY',
      messageType: type,
      bornTimestamp: toTimestamp(intHeader(r, H_BORN) ?? r.timestamp),
      bornHost: header(r, H_BORN_HOST) ?? '',
      storeTimestamp: toTimestamp(r.timestamp),
      storeHost: d.storeHost,
      ...(deliverAt !== undefined ? { deliveryTimestamp: toTimestamp(deliverAt) } : {}),
      receiptHandle: d.receiptHandle,
      queueId: d.queue,
      queueOffset: Number(r.offset),
      invisibleDuration: toDuration(d.invisibleMs),
      deliveryAttempt: d.attempt,
      ...(group !== undefined ? { messageGroup: group } : {}),
      ...(trace !== undefined ? { traceContext: trace } : {}),
    },
  };
}
