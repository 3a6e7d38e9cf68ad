/**
 * The queue an offset-based request names. Pop consumption (ReceiveMessage)
 * lets the broker pick among its queues, but PullMessage and the offset RPCs
 * act on one queue, named by its real number (the shard) in
 * `message_queue.id` — `robust-ctl rocketmq topicRoute` lists them with the
 * broker that serves each.
 */
import { shardId } from '../../meta/state/records/shards.js';
import { RocketmqError } from './errors.js';
import type { RocketmqDeps, RocketmqTopic } from './ports.js';
import type { MessageQueue } from './proto.js';
import { topicName } from './validate.js';

export interface QueueRef {
  topic: RocketmqTopic;
  queue: number;
  shard: string;
}

/** The topic and queue of a request; TOPIC_NOT_FOUND for an unknown topic, BAD_REQUEST for a queue it does not have. */
export function queueOf(deps: RocketmqDeps, mq: MessageQueue | undefined): QueueRef {
  const name = topicName(mq?.topic);
  const topic = deps.meta.topic(name);
  if (!topic) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${name}" does not exist`);
  const queue = mq?.id ?? 0;
  if (!Number.isInteger(queue) || queue < 0 || queue >= topic.queues) {
    throw new RocketmqError('BAD_REQUEST', `topic "${name}" has queues 0..${topic.queues - 1}, not ${queue}`);
  }
  return { topic, queue, shard: shardId(name, queue) };
}

/** Like queueOf, for requests that read the queue's storage: the queue must be one this broker serves. */
export function servedQueueOf(deps: RocketmqDeps, mq: MessageQueue | undefined): QueueRef {
  const ref = queueOf(deps, mq);
  if (!deps.meta.servedQueues(ref.topic.name).includes(ref.queue)) {
    throw new RocketmqError('NOT_FOUND', `queue ${ref.queue} of topic "${ref.topic.name}" is not served by broker ${deps.meta.nodeId}; send this request to the broker that leads it`);
  }
  return ref;
}
