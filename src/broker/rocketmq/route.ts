/**
 * QueryRoute, and the topic lookup (with auto-creation) every RPC shares.
 *
 * RocketMQ clients pick a MessageQueue from the route and send or receive
 * there; the Node client only uses queue id 0. So the route lists one
 * READ_WRITE queue 0 per broker that serves the topic (leads one of its
 * shards), at the address clients can reach — as a RocketMQ proxy in Local
 * mode does — and the broker chooses the real shard itself.
 */
import { errorMessage } from '../../common/errors.js';
import { RocketmqError } from './errors.js';
import { acceptedMessageTypes, topicMessageType } from './message-type.js';
import type { RocketmqDeps, RocketmqTopic } from './ports.js';
import { endpointsOf, ok, type MessageQueue, type QueryRouteRequest, type QueryRouteResponse } from './proto.js';
import { topicName } from './validate.js';

/** How long a request that created a topic waits for its queues to be placed. */
const PLACEMENT_WAIT_MS = 5000;

/** The topic, created first when it does not exist and `create` and the config allow it; TOPIC_NOT_FOUND otherwise. */
export async function ensureTopic(deps: RocketmqDeps, name: string, create: boolean): Promise<RocketmqTopic> {
  const existing = deps.meta.topic(name);
  if (existing) return existing;
  if (!create || !deps.settings.autoCreateTopics) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${name}" does not exist`);
  try {
    await deps.meta.createTopic(name, deps.settings.defaultQueues, {});
    deps.log.info({ topic: name, queues: deps.settings.defaultQueues }, `rocketmq: auto-created topic ${name}`);
  } catch (err) {
    throw new RocketmqError('INTERNAL_ERROR', `could not create topic "${name}": ${errorMessage(err)}`, { cause: err });
  }
  await deps.meta.waitForQueues(name, PLACEMENT_WAIT_MS);
  const created = deps.meta.topic(name);
  if (!created) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${name}" does not exist`);
  return created;
}

export async function queryRoute(deps: RocketmqDeps, req: QueryRouteRequest): Promise<QueryRouteResponse> {
  const name = topicName(req.topic);
  const topic = await ensureTopic(deps, name, true);
  let brokers = deps.meta.routeBrokers(name);
  if (brokers.length === 0) {
    // Placement has not run for a topic made a moment ago (by another node or protocol).
    await deps.meta.waitForQueues(name, PLACEMENT_WAIT_MS);
    brokers = deps.meta.routeBrokers(name);
  }
  if (brokers.length === 0) brokers = [{ nodeId: deps.meta.nodeId, ...deps.advertised() }];
  const accepted = acceptedMessageTypes(topicMessageType(topic.config));
  const messageQueues: MessageQueue[] = brokers.map((b) => ({
    topic: { name, resourceNamespace: req.topic?.resourceNamespace ?? '' },
    id: 0,
    permission: 'READ_WRITE',
    broker: { name: `broker-${b.nodeId}`, id: 0, endpoints: endpointsOf(b.host, b.port) },
    acceptMessageTypes: accepted,
  }));
  return { status: ok(), messageQueues };
}
