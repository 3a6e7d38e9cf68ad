/**
 * SendMessage: check each message (ids, tag, keys, properties, size, type
 * against the topic's type) and store it where its type says: a plain (or
 * already due) message in one of the topic's queues at once — in one atomic
 * append per request — a delay message in the timer store until it is due,
 * a transactional one as a half message until its transaction ends.
 */
import { gunzipSync } from 'node:zlib';
import { RocketmqError } from './errors.js';
import { checkTopicAccepts, messageTypeOf, topicMessageType } from './message-type.js';
import type { RocketmqDeps } from './ports.js';
import { ok, timestampMs, type Message, type SendMessageRequest, type SendMessageResponse, type SendResultEntry } from './proto.js';
import { encodeRecallHandle } from './recall.js';
import { SYSTEM_HEADER_PREFIX, toAppendRecord, type OutgoingMessage } from './records.js';
import { ensureTopic } from './route.js';
import type { TimerStore } from './timer-store.js';
import type { TopicWriter } from './topic-writer.js';
import type { Transactions } from './transactions.js';
import { topicName } from './validate.js';

/** RocketMQ's limits: delay up to 3 days, message group and property sizes as its broker defaults. */
const MAX_DELAY_MS = 3 * 24 * 3600 * 1000;
const MAX_MESSAGE_GROUP_LENGTH = 64;
const MAX_PROPERTIES_BYTES = 16 * 1024;
const MAX_PROPERTIES = 128;

function checkMessage(m: Message, now: number, maxBodyBytes: number): OutgoingMessage {
  const p = m.systemProperties ?? {};
  const messageId = p.messageId ?? '';
  if (messageId === '' || messageId.length > 128) throw new RocketmqError('ILLEGAL_MESSAGE_ID', 'message id is missing or longer than 128 characters');
  let body = m.body ?? Buffer.alloc(0);
  if (p.bodyEncoding === 'GZIP') {
    try {
      body = gunzipSync(body, { maxOutputLength: maxBodyBytes + 1 });
    } catch (err) {
      throw new RocketmqError('MESSAGE_CORRUPTED', `message ${messageId}: body is not valid gzip or inflates beyond ${maxBodyBytes} bytes`, { cause: err });
    }
  }
  if (body.length === 0) throw new RocketmqError('MESSAGE_BODY_EMPTY', `message ${messageId} has an empty body`);
  if (body.length > maxBodyBytes) throw new RocketmqError('MESSAGE_BODY_TOO_LARGE', `message ${messageId}: body of ${body.length} bytes exceeds ${maxBodyBytes}`);
  const tag = p.tag;
  if (tag !== undefined && (tag.trim() === '' || tag.includes('|'))) throw new RocketmqError('ILLEGAL_MESSAGE_TAG', `message ${messageId}: tag "${tag}" is blank or contains "|"`);
  const keys = p.keys ?? [];
  for (const k of keys) if (k.trim() === '') throw new RocketmqError('ILLEGAL_MESSAGE_KEY', `message ${messageId}: a key is blank`);
  const messageGroup = p.messageGroup;
  if (messageGroup !== undefined && (messageGroup === '' || messageGroup.length > MAX_MESSAGE_GROUP_LENGTH)) {
    throw new RocketmqError('ILLEGAL_MESSAGE_GROUP', `message ${messageId}: message group must be 1..${MAX_MESSAGE_GROUP_LENGTH} characters`);
  }
  const deliverAt = timestampMs(p.deliveryTimestamp);
  if (deliverAt !== undefined && deliverAt > now + MAX_DELAY_MS) throw new RocketmqError('ILLEGAL_DELIVERY_TIME', `message ${messageId}: delivery time is more than 3 days ahead`);
  const properties = m.userProperties ?? {};
  const entries = Object.entries(properties);
  let bytes = 0;
  for (const [k, v] of entries) {
    if (k === '' || k.startsWith(SYSTEM_HEADER_PREFIX)) throw new RocketmqError('ILLEGAL_MESSAGE_PROPERTY_KEY', `message ${messageId}: property key "${k}" is empty or uses the reserved prefix "${SYSTEM_HEADER_PREFIX}"`);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (entries.length > MAX_PROPERTIES || bytes > MAX_PROPERTIES_BYTES) throw new RocketmqError('MESSAGE_PROPERTIES_TOO_LARGE', `message ${messageId}: at most ${MAX_PROPERTIES} properties of ${MAX_PROPERTIES_BYTES} bytes in all`);
  const type = messageTypeOf(p.messageType, messageGroup !== undefined, deliverAt !== undefined);
  return {
    messageId,
    type,
    body,
    tag,
    keys,
    messageGroup,
    deliverAt,
    bornAt: timestampMs(p.bornTimestamp),
    bornHost: p.bornHost,
    traceContext: p.traceContext,
    properties,
  };
}

export class Sender {
  constructor(
    private readonly deps: RocketmqDeps,
    private readonly writer: TopicWriter,
    private readonly timers: TimerStore,
    private readonly transactions: Transactions,
  ) {}

  /** Serves one SendMessage of client `clientId` (the producer a transaction check goes to). */
  async send(req: SendMessageRequest, clientId?: string): Promise<SendMessageResponse> {
    const deps = this.deps;
    const messages = req.messages ?? [];
    if (messages.length === 0) throw new RocketmqError('BAD_REQUEST', 'SendMessage carries no message');
    const name = topicName(messages[0]!.topic);
    for (const m of messages) if (topicName(m.topic) !== name) throw new RocketmqError('BAD_REQUEST', 'the messages of one SendMessage must share a topic');
    const topic = await ensureTopic(deps, name, true);
    const now = deps.now();
    const outgoing = messages.map((m) => checkMessage(m, now, deps.settings.maxBodyBytes));
    const topicType = topicMessageType(topic.config);
    for (const o of outgoing) checkTopicAccepts(name, topicType, o.type);
    const records = outgoing.map((o) => toAppendRecord(o, now));
    const entries: SendResultEntry[] = outgoing.map((o) => ({ status: ok(), messageId: o.messageId, transactionId: '', offset: 0, recallHandle: '' }));
    const half: number[] = [];
    const timed: number[] = [];
    const direct: number[] = [];
    for (const [i, o] of outgoing.entries()) {
      if (o.type === 'TRANSACTION') half.push(i);
      else if (o.deliverAt !== undefined && o.deliverAt > now) timed.push(i);
      else direct.push(i);
    }
    if (direct.length > 0) {
      const { baseOffset } = await this.writer.write(name, direct.map((i) => records[i]!), outgoing[direct[0]!]!.messageGroup);
      direct.forEach((i, k) => (entries[i]!.offset = Number(baseOffset) + k));
    }
    if (timed.length > 0) {
      const scheduled = await this.timers.schedule(name, timed.map((i) => ({ record: records[i]!, messageId: outgoing[i]!.messageId, deliverAt: outgoing[i]!.deliverAt! })));
      timed.forEach((i, k) => {
        const t = scheduled[k]!;
        entries[i]!.recallHandle = encodeRecallHandle({ nodeId: deps.meta.nodeId, offset: t.offset, deliverAt: t.deliverAt, messageId: outgoing[i]!.messageId });
      });
    }
    if (half.length > 0) {
      const ids = await this.transactions.prepare(name, half.map((i) => ({ record: records[i]!, messageId: outgoing[i]!.messageId })), clientId);
      half.forEach((i, k) => (entries[i]!.transactionId = ids[k]!));
    }
    deps.metrics.sent(name, records.length);
    return { status: ok(), entries };
  }
}
