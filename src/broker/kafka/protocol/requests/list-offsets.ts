/**
 * ListOffsets (key 2), versions 0-5; none of them flexible (Kafka's spec makes
 * 6+ flexible). Written from Kafka 3.x's ListOffsetsRequest/ListOffsetsResponse
 * message specs.
 *
 * v0 is the old "offsets before timestamp" form: the request asks for up to
 * MaxNumOffsets offsets and the answer is a list (OldStyleOffsets); from v1
 * the answer is one timestamp/offset pair. Timestamp -1 asks for the latest
 * offset, -2 for the earliest.
 */
import type { MessageSpec } from '../schema.js';

export interface ListOffsetsRequestPartition {
  partitionIndex: number;
  /** v4+; -1 when unknown. */
  currentLeaderEpoch: number;
  timestamp: bigint;
  /** v0 only; 1 in later versions. */
  maxNumOffsets: number;
}

export interface ListOffsetsRequestTopic {
  name: string;
  partitions: ListOffsetsRequestPartition[];
}

export interface ListOffsetsRequest {
  /** -1 for consumers. */
  replicaId: number;
  /** v2+; 0 read uncommitted, 1 read committed. */
  isolationLevel: number;
  topics: ListOffsetsRequestTopic[];
}

export interface ListOffsetsResponsePartition {
  partitionIndex: number;
  errorCode: number;
  /** v0 only. */
  oldStyleOffsets?: bigint[];
  /** v1+; default -1. */
  timestamp?: bigint;
  /** v1+; default -1. */
  offset?: bigint;
  /** v4+; default -1. */
  leaderEpoch?: number;
}

export interface ListOffsetsResponseTopic {
  name: string;
  partitions: ListOffsetsResponsePartition[];
}

export interface ListOffsetsResponse {
  /** v2+ */
  throttleTimeMs?: number;
  topics: ListOffsetsResponseTopic[];
}

export const listOffsetsRequest: MessageSpec = {
  name: 'ListOffsetsRequest',
  apiKey: 2,
  type: 'request',
  validVersions: '0-5',
  flexibleVersions: '6+',
  fields: [
    { name: 'replicaId', type: 'int32', versions: '0+' },
    { name: 'isolationLevel', type: 'int8', versions: '2+' },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'currentLeaderEpoch', type: 'int32', versions: '4+', default: -1 },
            { name: 'timestamp', type: 'int64', versions: '0+' },
            { name: 'maxNumOffsets', type: 'int32', versions: '0', default: 1 },
          ],
        },
      ],
    },
  ],
};

export const listOffsetsResponse: MessageSpec = {
  name: 'ListOffsetsResponse',
  apiKey: 2,
  type: 'response',
  validVersions: '0-5',
  flexibleVersions: '6+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+' },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'oldStyleOffsets', type: '[]int64', versions: '0' },
            { name: 'timestamp', type: 'int64', versions: '1+', default: -1 },
            { name: 'offset', type: 'int64', versions: '1+', default: -1 },
            { name: 'leaderEpoch', type: 'int32', versions: '4+', default: -1 },
          ],
        },
      ],
    },
  ],
};
