/**
 * Fetch (key 1), versions 0-11; none of them flexible (Kafka's spec makes 12+
 * flexible). Written from Kafka 3.x's FetchRequest/FetchResponse message specs.
 * Fields that only exist past v11 (ClusterId, ReplicaState, topic ids,
 * LastFetchedEpoch, the tagged DivergingEpoch/CurrentLeader/SnapshotId,
 * NodeEndpoints) are left out.
 *
 * v7 brought incremental fetch sessions (SessionId/SessionEpoch,
 * ForgottenTopicsData), v11 the consumer's rack and the preferred read
 * replica. `records` is raw record-set bytes, nullable on the wire; answer a
 * partition with no data with an empty buffer rather than null: kafkajs's
 * Fetch v0-3 decoder reads a null (size -1) record set by stepping back a
 * byte and garbles the rest of the response.
 */
import type { MessageSpec } from '../schema.js';

export interface FetchRequestPartition {
  partition: number;
  /** v9+; -1 when the client does not know it. */
  currentLeaderEpoch: number;
  fetchOffset: bigint;
  /** v5+; only followers set it, -1 for consumers. */
  logStartOffset: bigint;
  partitionMaxBytes: number;
}

export interface FetchRequestTopic {
  topic: string;
  partitions: FetchRequestPartition[];
}

export interface FetchRequestForgottenTopic {
  topic: string;
  partitions: number[];
}

export interface FetchRequest {
  /** -1 for consumers; a broker id for followers. */
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  /** v3+; 0x7fffffff (no limit) before v3. */
  maxBytes: number;
  /** v4+; 0 read uncommitted, 1 read committed. */
  isolationLevel: number;
  /** v7+; 0 when not using a fetch session. */
  sessionId: number;
  /** v7+; -1 for a full fetch without a session. */
  sessionEpoch: number;
  topics: FetchRequestTopic[];
  /** v7+ */
  forgottenTopicsData: FetchRequestForgottenTopic[];
  /** v11+ */
  rackId: string;
}

export interface FetchResponseAbortedTransaction {
  producerId: bigint;
  firstOffset: bigint;
}

export interface FetchResponsePartition {
  partitionIndex: number;
  errorCode: number;
  highWatermark: bigint;
  /** v4+; default -1. */
  lastStableOffset?: bigint;
  /** v5+; default -1. */
  logStartOffset?: bigint;
  /** v4+; null means none (nullable on the wire). */
  abortedTransactions?: FetchResponseAbortedTransaction[] | null;
  /** v11+; -1 when the consumer should keep fetching from the leader. */
  preferredReadReplica?: number;
  records: Buffer | null;
}

export interface FetchResponseTopic {
  topic: string;
  partitions: FetchResponsePartition[];
}

export interface FetchResponse {
  /** v1+ */
  throttleTimeMs?: number;
  /** v7+; top-level (session) error. */
  errorCode?: number;
  /** v7+; 0 when there is no fetch session. */
  sessionId?: number;
  responses: FetchResponseTopic[];
}

export const fetchRequest: MessageSpec = {
  name: 'FetchRequest',
  apiKey: 1,
  type: 'request',
  validVersions: '0-11',
  flexibleVersions: '12+',
  fields: [
    { name: 'replicaId', type: 'int32', versions: '0-14', default: -1 },
    { name: 'maxWaitMs', type: 'int32', versions: '0+' },
    { name: 'minBytes', type: 'int32', versions: '0+' },
    { name: 'maxBytes', type: 'int32', versions: '3+', default: 0x7fffffff },
    { name: 'isolationLevel', type: 'int8', versions: '4+', default: 0 },
    { name: 'sessionId', type: 'int32', versions: '7+', default: 0 },
    { name: 'sessionEpoch', type: 'int32', versions: '7+', default: -1 },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'topic', type: 'string', versions: '0-12' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'partition', type: 'int32', versions: '0+' },
            { name: 'currentLeaderEpoch', type: 'int32', versions: '9+', default: -1 },
            { name: 'fetchOffset', type: 'int64', versions: '0+' },
            { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1 },
            { name: 'partitionMaxBytes', type: 'int32', versions: '0+' },
          ],
        },
      ],
    },
    {
      name: 'forgottenTopicsData',
      type: '[]',
      versions: '7+',
      fields: [
        { name: 'topic', type: 'string', versions: '7-12' },
        { name: 'partitions', type: '[]int32', versions: '7+' },
      ],
    },
    { name: 'rackId', type: 'string', versions: '11+', default: '' },
  ],
};

export const fetchResponse: MessageSpec = {
  name: 'FetchResponse',
  apiKey: 1,
  type: 'response',
  validVersions: '0-11',
  flexibleVersions: '12+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '7+' },
    { name: 'sessionId', type: 'int32', versions: '7+', default: 0 },
    {
      name: 'responses',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'topic', type: 'string', versions: '0-12' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'highWatermark', type: 'int64', versions: '0+' },
            { name: 'lastStableOffset', type: 'int64', versions: '4+', default: -1 },
            { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1 },
            {
              name: 'abortedTransactions',
              type: '[]',
              versions: '4+',
              nullableVersions: '4+',
              fields: [
                { name: 'producerId', type: 'int64', versions: '4+' },
                { name: 'firstOffset', type: 'int64', versions: '4+' },
              ],
            },
            { name: 'preferredReadReplica', type: 'int32', versions: '11+', default: -1 },
            { name: 'records', type: 'records', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
};
