/**
 * OffsetFetch (key 9), versions 0-5; none of them flexible (Kafka's spec makes
 * 6+ flexible). Written from Kafka 3.x's OffsetFetchRequest/OffsetFetchResponse
 * message specs. The multi-group form (Groups, v8+) and RequireStable (v7+)
 * are left out.
 *
 * v0 reads offsets from ZooKeeper, v1+ from the broker's offsets topic. From
 * v2 a null topic list asks for every partition the group has committed, and
 * the response carries a top-level error code.
 */
import type { MessageSpec } from '../schema.js';

export interface OffsetFetchRequestTopic {
  name: string;
  partitionIndexes: number[];
}

export interface OffsetFetchRequest {
  groupId: string;
  /** Null (v2+) for all of the group's committed partitions. */
  topics: OffsetFetchRequestTopic[] | null;
}

export interface OffsetFetchResponsePartition {
  partitionIndex: number;
  /** -1 when the group has no committed offset for the partition. */
  committedOffset: bigint;
  /** v5+; default -1. */
  committedLeaderEpoch?: number;
  metadata: string | null;
  errorCode: number;
}

export interface OffsetFetchResponseTopic {
  name: string;
  partitions: OffsetFetchResponsePartition[];
}

export interface OffsetFetchResponse {
  /** v3+ */
  throttleTimeMs?: number;
  topics: OffsetFetchResponseTopic[];
  /** v2+; top-level error, default 0. */
  errorCode?: number;
}

export const offsetFetchRequest: MessageSpec = {
  name: 'OffsetFetchRequest',
  apiKey: 9,
  type: 'request',
  validVersions: '0-5',
  flexibleVersions: '6+',
  fields: [
    { name: 'groupId', type: 'string', versions: '0-7' },
    {
      name: 'topics',
      type: '[]',
      versions: '0-7',
      nullableVersions: '2-7',
      fields: [
        { name: 'name', type: 'string', versions: '0-7' },
        { name: 'partitionIndexes', type: '[]int32', versions: '0-7' },
      ],
    },
  ],
};

export const offsetFetchResponse: MessageSpec = {
  name: 'OffsetFetchResponse',
  apiKey: 9,
  type: 'response',
  validVersions: '0-5',
  flexibleVersions: '6+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '3+' },
    {
      name: 'topics',
      type: '[]',
      versions: '0-7',
      fields: [
        { name: 'name', type: 'string', versions: '0-7' },
        {
          name: 'partitions',
          type: '[]',
          versions: '0-7',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0-7' },
            { name: 'committedOffset', type: 'int64', versions: '0-7' },
            { name: 'committedLeaderEpoch', type: 'int32', versions: '5-7', default: -1 },
            { name: 'metadata', type: 'string', versions: '0-7', nullableVersions: '0-7' },
            { name: 'errorCode', type: 'int16', versions: '0-7' },
          ],
        },
      ],
    },
    { name: 'errorCode', type: 'int16', versions: '2-7', default: 0 },
  ],
};
