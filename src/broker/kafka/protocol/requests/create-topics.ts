/**
 * CreateTopics (key 19), versions 0-4, all classic (Kafka makes v5+ flexible).
 * Written from Kafka's CreateTopicsRequest/CreateTopicsResponse message specs
 * (3.x). v1 adds validateOnly and per-topic error messages, v2 the throttle
 * time. v0-4 answer only name/error per topic: the partition count, replication
 * factor and configs of the result (and the config error code, a tagged field)
 * start at v5 and are not carried here.
 */
import type { MessageSpec } from '../schema.js';

export interface CreatableReplicaAssignment {
  partitionIndex: number;
  brokerIds: number[];
}

export interface CreatableTopicConfig {
  name: string;
  value: string | null;
}

export interface CreatableTopic {
  name: string;
  /** -1: the broker default (then assignments must be empty). */
  numPartitions: number;
  /** -1: the broker default. */
  replicationFactor: number;
  assignments: CreatableReplicaAssignment[];
  configs: CreatableTopicConfig[];
}

/** As decoded: fields a version does not carry hold their defaults. */
export interface CreateTopicsRequest {
  topics: CreatableTopic[];
  timeoutMs: number;
  /** v1+; false before. */
  validateOnly: boolean;
}

export interface CreatableTopicResult {
  name: string;
  errorCode: number;
  /** v1+. */
  errorMessage?: string | null;
}

export interface CreateTopicsResponse {
  /** v2+. */
  throttleTimeMs?: number;
  topics: CreatableTopicResult[];
}

export const createTopicsRequest: MessageSpec = {
  name: 'CreateTopicsRequest',
  apiKey: 19,
  type: 'request',
  validVersions: '0-4',
  flexibleVersions: '5+',
  fields: [
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        { name: 'numPartitions', type: 'int32', versions: '0+' },
        { name: 'replicationFactor', type: 'int16', versions: '0+' },
        {
          name: 'assignments',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'brokerIds', type: '[]int32', versions: '0+' },
          ],
        },
        {
          name: 'configs',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'name', type: 'string', versions: '0+' },
            { name: 'value', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
    { name: 'timeoutMs', type: 'int32', versions: '0+', default: 60000 },
    { name: 'validateOnly', type: 'bool', versions: '1+', default: false },
  ],
};

export const createTopicsResponse: MessageSpec = {
  name: 'CreateTopicsResponse',
  apiKey: 19,
  type: 'response',
  validVersions: '0-4',
  flexibleVersions: '5+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+' },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        { name: 'errorCode', type: 'int16', versions: '0+' },
        // Kafka's spec says versions 1+, nullableVersions 0+: nullable wherever present.
        { name: 'errorMessage', type: 'string', versions: '1+', nullableVersions: '0+' },
      ],
    },
  ],
};
