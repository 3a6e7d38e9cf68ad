/**
 * QueryAssignment: which queues a push consumer should receive from. Push
 * consumers receive pop-style, like simple consumers, and pop lets every
 * consumer of a group share every queue (the broker hands each message to one
 * of them), so each consumer is assigned every broker that serves the topic —
 * the queues QueryRoute lists — rather than a slice of the queues.
 */
import { RocketmqError } from './errors.js';
import type { RocketmqDeps } from './ports.js';
import { ok, type Endpoints, type MessageQueue, type Resource, type Status } from './proto.js';
import { queryRoute } from './route.js';
import { groupName, topicName } from './validate.js';

export interface QueryAssignmentRequest {
  topic?: Resource;
  group?: Resource;
  endpoints?: Endpoints;
}

export interface QueryAssignmentResponse {
  status: Status;
  assignments: Array<{ messageQueue: MessageQueue }>;
}

export async function queryAssignment(deps: RocketmqDeps, req: QueryAssignmentRequest): Promise<QueryAssignmentResponse> {
  groupName(req.group);
  const name = topicName(req.topic);
  // Unlike a route query, an assignment does not create the topic: a consumer subscribing to a typo should hear of it.
  if (!deps.meta.topic(name)) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${name}" does not exist`);
  const route = await queryRoute(deps, { topic: req.topic ?? { name } });
  return { status: ok(), assignments: (route.messageQueues ?? []).map((messageQueue) => ({ messageQueue })) };
}
