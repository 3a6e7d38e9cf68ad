/**
 * OffsetForLeaderEpoch (key 23), versions 0-3; none of them flexible (Kafka's
 * spec makes 4+ flexible). Written from Kafka 3.x's OffsetForLeaderEpochRequest/
 * OffsetForLeaderEpochResponse message specs.
 *
 * Asks, per partition, for the end offset of a leader epoch (used by
 * consumers to detect log truncation). v1 adds the epoch to the answer, v2
 * the current leader epoch to the request (fencing) and throttle time, v3 the
 * replica id (-2 for consumers, -1 "debug", a broker id for followers).
 */
import type { MessageSpec } from '../schema.js';

/** ReplicaId of a consumer (not a follower, not a debug client). */
export const CONSUMER_REPLICA_ID = -2;

export interface OffsetForLeaderEpochRequestPartition {
  partition: number;
  /** v2+; -1 when unknown. */
  currentLeaderEpoch: number;
  leaderEpoch: number;
}

export interface OffsetForLeaderEpochRequestTopic {
  topic: string;
  partitions: OffsetForLeaderEpochRequestPartition[];
}

export interface OffsetForLeaderEpochRequest {
  /** v3+; -2 (a consumer) before. */
  replicaId: number;
  topics: OffsetForLeaderEpochRequestTopic[];
}

export interface OffsetForLeaderEpochResponsePartition {
  errorCode: number;
  partition: number;
  /** v1+; default -1. */
  leaderEpoch?: number;
  /** Default -1. */
  endOffset: bigint;
}

export interface OffsetForLeaderEpochResponseTopic {
  topic: string;
  partitions: OffsetForLeaderEpochResponsePartition[];
}

export interface OffsetForLeaderEpochResponse {
  /** v2+ */
  throttleTimeMs?: number;
  topics: OffsetForLeaderEpochResponseTopic[];
}

export const offsetForLeaderEpochRequest: MessageSpec = {
  name: 'OffsetForLeaderEpochRequest',
  apiKey: 23,
  type: 'request',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'replicaId', type: 'int32', versions: '3+', default: CONSUMER_REPLICA_ID },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'topic', type: 'string', versions: '0+' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'partition', type: 'int32', versions: '0+' },
            { name: 'currentLeaderEpoch', type: 'int32', versions: '2+', default: -1 },
            { name: 'leaderEpoch', type: 'int32', versions: '0+' },
          ],
        },
      ],
    },
  ],
};

export const offsetForLeaderEpochResponse: MessageSpec = {
  name: 'OffsetForLeaderEpochResponse',
  apiKey: 23,
  type: 'response',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+' },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'topic', type: 'string', versions: '0+' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'partition', type: 'int32', versions: '0+' },
            { name: 'leaderEpoch', type: 'int32', versions: '1+', default: -1 },
            { name: 'endOffset', type: 'int64', versions: '0+', default: -1 },
          ],
        },
      ],
    },
  ],
};
