/**
 * The offset RPCs of offset-based consumers: UpdateOffset and GetOffset
 * write and read a group's committed offset of one queue — the same offsets
 * pop consumption commits, kept in the metadata — and QueryOffset finds an
 * offset of a queue by position (BEGINNING, END) or time (TIMESTAMP: the
 * first message stored at or after it).
 *
 * A committed offset is the next one to consume, as with Kafka groups.
 */
import type { Consumption } from './consumption.js';
import { RocketmqError } from './errors.js';
import type { RocketmqDeps } from './ports.js';
import { ok, timestampMs, type MessageQueue, type Resource, type Status, type Timestamp } from './proto.js';
import { queueOf, servedQueueOf } from './queue-ref.js';
import { groupName } from './validate.js';

export interface UpdateOffsetRequest {
  group?: Resource;
  messageQueue?: MessageQueue;
  offset?: number;
}

export interface GetOffsetRequest {
  group?: Resource;
  messageQueue?: MessageQueue;
}

export type QueryOffsetPolicy = 'BEGINNING' | 'END' | 'TIMESTAMP';

export interface QueryOffsetRequest {
  messageQueue?: MessageQueue;
  queryOffsetPolicy?: QueryOffsetPolicy;
  timestamp?: Timestamp;
}

export interface OffsetResponse {
  status: Status;
  offset?: number;
}

export async function updateOffset(deps: RocketmqDeps, consumption: Consumption, req: UpdateOffsetRequest): Promise<{ status: Status }> {
  const group = groupName(req.group);
  const { topic, queue, shard } = queueOf(deps, req.messageQueue);
  const offset = req.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RocketmqError('ILLEGAL_OFFSET', `offset ${offset} is not an integer >= 0`);
  if (deps.meta.servedQueues(topic.name).includes(queue)) {
    // Past the end there is nothing to resume from; RocketMQ refuses it too. (A queue served elsewhere is not checked.)
    const { endOffset } = await deps.storage().shardInfo(shard);
    if (BigInt(offset) > endOffset) throw new RocketmqError('ILLEGAL_OFFSET', `offset ${offset} is past the end of queue ${queue} of topic "${topic.name}" (${endOffset})`);
  }
  await consumption.reposition(group, topic.name, queue, () => deps.meta.commitOffsets(group, [{ topic: topic.name, queue, offset }]));
  return { status: ok() };
}

export function getOffset(deps: RocketmqDeps, req: GetOffsetRequest): OffsetResponse {
  const group = groupName(req.group);
  const { topic, queue } = queueOf(deps, req.messageQueue);
  const offset = deps.meta.committed(group, topic.name, queue);
  if (offset === undefined) throw new RocketmqError('OFFSET_NOT_FOUND', `consumer group "${group}" has no committed offset on queue ${queue} of topic "${topic.name}"`);
  return { status: ok(), offset };
}

export async function queryOffset(deps: RocketmqDeps, req: QueryOffsetRequest): Promise<OffsetResponse> {
  const { shard } = servedQueueOf(deps, req.messageQueue);
  const storage = deps.storage();
  // proto3 leaves the zero value (BEGINNING) out of the message.
  const policy = req.queryOffsetPolicy ?? 'BEGINNING';
  switch (policy) {
    case 'BEGINNING':
      return { status: ok(), offset: Number((await storage.shardInfo(shard)).startOffset) };
    case 'END':
      return { status: ok(), offset: Number((await storage.shardInfo(shard)).endOffset) };
    case 'TIMESTAMP': {
      const at = timestampMs(req.timestamp);
      if (at === undefined) throw new RocketmqError('BAD_REQUEST', 'query offset policy TIMESTAMP needs a timestamp');
      return { status: ok(), offset: Number(await storage.offsetForTime(shard, at)) };
    }
    default:
      throw new RocketmqError('BAD_REQUEST', `unknown query offset policy ${String(policy)}`);
  }
}
