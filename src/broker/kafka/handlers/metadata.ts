/**
 * Metadata (v0-8), FindCoordinator (v0-2), ApiVersions (v0-3), InitProducerId
 * (v0-1): what a client asks before it produces or consumes.
 */
import type { KafkaDeps } from '../deps.js';
import { supportedApiVersions } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/errors.js';
import type { ApiVersionsResponse } from '../protocol/requests/api-versions.js';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../protocol/requests/find-coordinator.js';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../protocol/requests/init-producer-id.js';
import { AUTHORIZED_OPERATIONS_OMITTED, type MetadataRequest, type MetadataResponse, type MetadataResponseTopic } from '../protocol/requests/metadata.js';
import { ensureTopic } from './topics.js';

export function handleApiVersions(): ApiVersionsResponse {
  return { errorCode: ErrorCode.NONE, apiKeys: supportedApiVersions(), throttleTimeMs: 0 };
}

function describeTopic(deps: KafkaDeps, name: string, errorCode: number | undefined): MetadataResponseTopic {
  const t = errorCode === undefined ? deps.meta.topic(name) : undefined;
  if (!t) return { errorCode: errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, isInternal: false, partitions: [], topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED };
  return {
    errorCode: ErrorCode.NONE,
    name,
    isInternal: t.internal,
    partitions: t.partitions.map((p) => ({
      errorCode: p.leader < 0 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
      partitionIndex: p.partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: p.replicas,
      isrNodes: p.replicas,
      offlineReplicas: [],
    })),
    topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
  };
}

export async function handleMetadata(deps: KafkaDeps, listener: string, version: number, req: MetadataRequest): Promise<MetadataResponse> {
  // v0: an empty list means every topic; v1+: null means every topic, empty means none.
  const all = req.topics === null || (version === 0 && req.topics.length === 0);
  const allowAutoCreate = version < 4 ? true : req.allowAutoTopicCreation;
  let topics: MetadataResponseTopic[];
  if (all) {
    topics = deps.meta.topicNames().map((name) => describeTopic(deps, name, undefined));
  } else {
    topics = await Promise.all((req.topics ?? []).map(async (t) => describeTopic(deps, t.name, await ensureTopic(deps, t.name, allowAutoCreate))));
  }
  const brokers = deps.meta.brokers(listener);
  return {
    throttleTimeMs: 0,
    brokers: brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
    clusterId: deps.meta.clusterId,
    // There is no controller broker; the lowest live broker id stands in (clients send admin requests there).
    controllerId: brokers[0]?.nodeId ?? -1,
    topics,
    clusterAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
  };
}

export function handleFindCoordinator(deps: KafkaDeps, listener: string, req: FindCoordinatorRequest): FindCoordinatorResponse {
  if (req.keyType !== 0) {
    return { throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'transaction coordinators are not offered', nodeId: -1, host: '', port: -1 };
  }
  const b = deps.meta.coordinatorFor(req.key, listener);
  if (!b) return { throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'no live broker', nodeId: -1, host: '', port: -1 };
  return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: b.nodeId, host: b.host, port: b.port };
}

export function handleInitProducerId(deps: KafkaDeps, req: InitProducerIdRequest): InitProducerIdResponse {
  if (req.transactionalId !== null && req.transactionalId !== '') {
    return { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1n, producerEpoch: -1 };
  }
  return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: deps.producerIds.allocate(), producerEpoch: 0 };
}
