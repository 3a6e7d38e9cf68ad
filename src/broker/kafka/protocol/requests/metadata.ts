/**
 * Metadata (key 3), versions 0-8; none of them flexible (Kafka's spec makes 9+
 * flexible). Written from Kafka 3.x's MetadataRequest/MetadataResponse message
 * specs. Topic ids (v10+) are left out.
 *
 * Asking for all topics: an empty list at v0, a null list from v1 (where an
 * empty list means "no topics", just brokers and controller).
 */
import type { MessageSpec } from '../schema.js';

export interface MetadataRequestTopic {
  name: string;
}

export interface MetadataRequest {
  /** Null (v1+) for all topics. */
  topics: MetadataRequestTopic[] | null;
  /** v4+; true before v4 (broker-side auto-creation policy applies). */
  allowAutoTopicCreation: boolean;
  /** v8-10 */
  includeClusterAuthorizedOperations: boolean;
  /** v8+ */
  includeTopicAuthorizedOperations: boolean;
}

export interface MetadataResponseBroker {
  nodeId: number;
  host: string;
  port: number;
  /** v1+; nullable. */
  rack?: string | null;
}

export interface MetadataResponsePartition {
  errorCode: number;
  partitionIndex: number;
  leaderId: number;
  /** v7+; default -1. */
  leaderEpoch?: number;
  replicaNodes: number[];
  isrNodes: number[];
  /** v5+ */
  offlineReplicas?: number[];
}

export interface MetadataResponseTopic {
  errorCode: number;
  name: string;
  /** v1+ */
  isInternal?: boolean;
  partitions: MetadataResponsePartition[];
  /** v8+; INT32_MIN when not requested. */
  topicAuthorizedOperations?: number;
}

export interface MetadataResponse {
  /** v3+ */
  throttleTimeMs?: number;
  brokers: MetadataResponseBroker[];
  /** v2+; nullable. */
  clusterId?: string | null;
  /** v1+; default -1. */
  controllerId?: number;
  topics: MetadataResponseTopic[];
  /** v8-10; INT32_MIN when not requested. */
  clusterAuthorizedOperations?: number;
}

/** "Not requested" value of the authorized-operations bit fields. */
export const AUTHORIZED_OPERATIONS_OMITTED = -2147483648;

export const metadataRequest: MessageSpec = {
  name: 'MetadataRequest',
  apiKey: 3,
  type: 'request',
  validVersions: '0-8',
  flexibleVersions: '9+',
  fields: [
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      nullableVersions: '1+',
      fields: [{ name: 'name', type: 'string', versions: '0+', nullableVersions: '10+' }],
    },
    { name: 'allowAutoTopicCreation', type: 'bool', versions: '4+', default: true },
    { name: 'includeClusterAuthorizedOperations', type: 'bool', versions: '8-10' },
    { name: 'includeTopicAuthorizedOperations', type: 'bool', versions: '8+' },
  ],
};

export const metadataResponse: MessageSpec = {
  name: 'MetadataResponse',
  apiKey: 3,
  type: 'response',
  validVersions: '0-8',
  flexibleVersions: '9+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '3+' },
    {
      name: 'brokers',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'nodeId', type: 'int32', versions: '0+' },
        { name: 'host', type: 'string', versions: '0+' },
        { name: 'port', type: 'int32', versions: '0+' },
        { name: 'rack', type: 'string', versions: '1+', nullableVersions: '1+', default: null },
      ],
    },
    { name: 'clusterId', type: 'string', versions: '2+', nullableVersions: '2+', default: null },
    { name: 'controllerId', type: 'int32', versions: '1+', default: -1 },
    {
      name: 'topics',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'name', type: 'string', versions: '0+', nullableVersions: '12+' },
        { name: 'isInternal', type: 'bool', versions: '1+', default: false },
        {
          name: 'partitions',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'leaderId', type: 'int32', versions: '0+' },
            { name: 'leaderEpoch', type: 'int32', versions: '7+', default: -1 },
            { name: 'replicaNodes', type: '[]int32', versions: '0+' },
            { name: 'isrNodes', type: '[]int32', versions: '0+' },
            { name: 'offlineReplicas', type: '[]int32', versions: '5+' },
          ],
        },
        { name: 'topicAuthorizedOperations', type: 'int32', versions: '8+', default: AUTHORIZED_OPERATIONS_OMITTED },
      ],
    },
    { name: 'clusterAuthorizedOperations', type: 'int32', versions: '8-10', default: AUTHORIZED_OPERATIONS_OMITTED },
  ],
};
