/**
 * Topic lookups shared by the handlers: auto-creation (Metadata, Produce) and
 * the per-partition leadership check every data request makes.
 */
import { errorMessage } from '../../../common/errors.js';
import { isValidTopicName } from '../../../meta/state/records/topics.js';
import type { KafkaDeps } from '../deps.js';
import { ErrorCode, KafkaProtocolError } from '../protocol/errors.js';

/** How long a request that auto-created a topic waits for its partitions to get leaders. */
const LEADER_WAIT_MS = 5000;

/** undefined when the topic exists (creating it first if allowed); otherwise the error code to answer. */
export async function ensureTopic(deps: KafkaDeps, name: string, allowAutoCreate: boolean): Promise<number | undefined> {
  if (deps.meta.topic(name)) return undefined;
  if (!isValidTopicName(name)) return ErrorCode.INVALID_TOPIC_EXCEPTION;
  if (!allowAutoCreate || !deps.settings.autoCreateTopics) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  try {
    await deps.meta.createTopic(name, deps.settings.numPartitions, {});
    deps.log.info({ topic: name, partitions: deps.settings.numPartitions }, `kafka: auto-created topic ${name}`);
  } catch (err) {
    if (!(err instanceof KafkaProtocolError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS)) {
      deps.log.warn({ topic: name, err: errorMessage(err) }, 'kafka: could not auto-create topic');
      return err instanceof KafkaProtocolError ? err.errorCode : ErrorCode.LEADER_NOT_AVAILABLE;
    }
  }
  await deps.meta.waitForLeaders(name, LEADER_WAIT_MS);
  return undefined;
}

/** undefined when this node coordinates the group; otherwise the error code to answer (clients then look again). */
export function coordinatorError(deps: KafkaDeps, groupId: string): number | undefined {
  if (groupId === '') return ErrorCode.INVALID_GROUP_ID;
  const c = deps.meta.coordinatorFor(groupId);
  if (!c) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  if (c.nodeId !== deps.meta.nodeId) return ErrorCode.NOT_COORDINATOR;
  return undefined;
}

/** undefined when this node leads the partition; otherwise the error code to answer. */
export function partitionLeader(deps: KafkaDeps, topic: string, partition: number): number | undefined {
  const t = deps.meta.topic(topic);
  if (!t) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  const p = t.partitions[partition];
  if (!p) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  if (p.leader < 0) return ErrorCode.LEADER_NOT_AVAILABLE;
  if (p.leader !== deps.meta.nodeId) return ErrorCode.NOT_LEADER_OR_FOLLOWER;
  return undefined;
}
