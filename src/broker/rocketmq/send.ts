/**
 * SendMessage: check each message (ids, tag, keys, properties, size, type
 * against the topic's type), choose one of the topic's queues this broker
 * serves — by message group for FIFO so a group stays in one queue and in
 * order, round robin otherwise — and append the request's messages there in
 * one atomic append. Other protocols' live subscribers (MQTT) get the
 * messages too, except delay messages, which are not due yet.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { shardId } from '../../meta/state/records/shards.js';
import { RocketmqError } from './errors.js';
import { checkTopicAccepts, messageTypeOf, topicMessageType } from './message-type.js';
import type { RocketmqDeps } from './ports.js';
import { ok, timestampMs, type Message, type SendMessageRequest, type SendMessageResponse } from './proto.js';
import { SYSTEM_HEADER_PREFIX, toAppendRecord, type OutgoingMessage } from './records.js';
import { ensureTopic } from './route.js';
import { topicName } from './validate.js';

/** RocketMQ's limits: delay up to 3 days, message group and property sizes as its broker defaults. */
const MAX_DELAY_MS = 3 * 24 * 3600 * 1000;
const MAX_MESSAGE_GROUP_LENGTH = 64;
const MAX_PROPERTIES_BYTES = 16 * 1024;
const MAX_PROPERTIES = 128;
const PLACEMENT_WAIT_MS = 5000;

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

function groupHash(group: string): number {
  return createHash('sha1').update(group).digest().readUInt32BE(0);
}

export class Sender {
  private readonly roundRobin = new Map<string, number>();

  constructor(private readonly deps: RocketmqDeps) {}

  async send(req: SendMessageRequest): Promise<SendMessageResponse> {
    const deps = this.deps;
    const messages = req.messages ?? [];
    if (messages.length === 0) throw new RocketmqError('BAD_REQUEST', 'SendMessage carries no message');
    const name = topicName(messages[0]!.topic);
    for (const m of messages) if (topicName(m.topic) !== name) throw new RocketmqError('BAD_REQUEST', 'the messages of one SendMessage must share a topic');
    const topic = await ensureTopic(deps, name, true);
    const now = deps.now();
    const outgoing = messages.map((m) => checkMessage(m, now, deps.settings.maxBodyBytes));
    const topicType = topicMessageType(topic.config);
    for (const o of outgoing) {
      checkTopicAccepts(name, topicType, o.type);
      if (o.type === 'TRANSACTION') throw new RocketmqError('NOT_IMPLEMENTED', 'transactional messages are not supported yet');
    }
    const queue = await this.pickQueue(name, outgoing[0]!.messageGroup);
    const records = outgoing.map((o) => toAppendRecord(o, now));
    const { baseOffset } = await deps.storage().append(shardId(name, queue), records);
    deps.metrics.sent(name, records.length);
    this.publishToOthers(name, outgoing, records);
    return {
      status: ok(),
      entries: outgoing.map((o, i) => ({ status: ok(), messageId: o.messageId, transactionId: '', offset: Number(baseOffset) + i, recallHandle: '' })),
    };
  }

  private async pickQueue(topic: string, messageGroup: string | undefined): Promise<number> {
    let queues = this.deps.meta.servedQueues(topic);
    if (queues.length === 0) {
      await this.deps.meta.waitForQueues(topic, PLACEMENT_WAIT_MS);
      queues = this.deps.meta.servedQueues(topic);
    }
    if (queues.length === 0) throw new RocketmqError('HA_NOT_AVAILABLE', `no queue of topic "${topic}" is served by broker ${this.deps.meta.nodeId} yet`);
    if (messageGroup !== undefined) return queues[groupHash(messageGroup) % queues.length]!;
    const n = this.roundRobin.get(topic) ?? 0;
    this.roundRobin.set(topic, (n + 1) % 1_000_000_007);
    return queues[n % queues.length]!;
  }

  private publishToOthers(topic: string, outgoing: OutgoingMessage[], records: ReturnType<typeof toAppendRecord>[]): void {
    const bus = this.deps.bus;
    if (!bus || !bus.interested(topic)) return;
    const due = records.filter((_, i) => outgoing[i]!.deliverAt === undefined);
    if (due.length === 0) return;
    bus.published(due.map((r) => ({ topic, key: r.key, value: r.value, headers: r.headers.filter((h) => !h.key.startsWith(SYSTEM_HEADER_PREFIX)), timestamp: r.timestamp })));
  }
}
