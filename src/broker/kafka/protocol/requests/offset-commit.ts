/**
 * OffsetCommit (key 8), versions 0-7; none of them flexible (Kafka's spec makes
 * 8+ flexible). Written from Kafka 3.x's OffsetCommitRequest/OffsetCommitResponse
 * message specs.
 *
 * v0 commits outside any group generation (ZooKeeper-era); v1 adds the
 * generation/member and a per-partition commit timestamp (v1 only); v2-4 carry
 * a retention time instead (-1: the broker's default); v5 drops it; v6 adds
 * the committed leader epoch; v7 the static member's group instance id.
 */
import type { MessageSpec } from '../schema.js';

export interface OffsetCommitRequestPartition {
  partitionIndex: number;
  committedOffset: bigint;
  /** v6+; -1 when unknown. */
  committedLeaderEpoch: number;
  /** v1 only; -1 otherwise. */
  commitTimestamp: bigint;
  committedMetadata: string | null;
}

export interface OffsetCommitRequestTopic {
  name: string;
  partitions: OffsetCommitRequestPartition[];
}

export interface OffsetCommitRequest {
  groupId: string;
  /** v1+; -1 for a commit outside a group generation (also what v0 means). */
  generationId: number;
  /** v1+; '' before. */
  memberId: string;
  /** v7+; null for dynamic members. */
  groupInstanceId: string | null;
  /** v2-4; -1 means the broker's retention setting. */
  retentionTimeMs: bigint;
  topics: OffsetCommitRequestTopic[];
}

export interface OffsetCommitResponsePartition {
  partitionIndex: number;
  errorCode: number;
}

export interface OffsetCommitResponseTopic {
  name: string;
  partitions: OffsetCommitResponsePartition[];
}

export interface OffsetCommitResponse {
  /** v3+ */
  throttleTimeMs?: number;
  topics: OffsetCommitResponseTopic[];
}

export const offsetCommitRequest: MessageSpec = {
  name: 'OffsetCommitRequest',
  apiKey: 8,
  type: 'request',
  validVersions: '0-7',
  flexibleVersions: '8+',
  fields: [
    { name: 'groupId', type: 'string', versions: '0+' },
    // Kafka 3.0-3.5 call it GenerationId; 3.6+ GenerationIdOrMemberEpoch (v9's consumer protocol).
    { name: 'generationId', type: 'int32', versions: '1+', default: -1 },
    { name: 'memberId', type: 'string', versions: '1+' },
    { name: 'groupInstanceId', type: 'string', versions: '7+', nullableVersions: '7+', default: null },
    { name: 'retentionTimeMs', type: 'int64', versions: '2-4', default: -1 },
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
            { name: 'committedOffset', type: 'int64', versions: '0+' },
            { name: 'committedLeaderEpoch', type: 'int32', versions: '6+', default: -1 },
            { name: 'commitTimestamp', type: 'int64', versions: '1', default: -1 },
            { name: 'committedMetadata', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
};

export const offsetCommitResponse: MessageSpec = {
  name: 'OffsetCommitResponse',
  apiKey: 8,
  type: 'response',
  validVersions: '0-7',
  flexibleVersions: '8+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '3+' },
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
          ],
        },
      ],
    },
  ],
};
