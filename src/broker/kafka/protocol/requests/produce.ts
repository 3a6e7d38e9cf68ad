/**
 * Produce (key 0), versions 0-7; none of them flexible (Kafka's spec makes 9+
 * flexible). Written from Kafka 3.x's ProduceRequest/ProduceResponse message
 * specs. Fields that only exist past v7 (RecordErrors, ErrorMessage from v8,
 * CurrentLeader/NodeEndpoints tagged from v10) are left out.
 *
 * `records` is the raw record set (a v0/v1 message set up to request v2, a v2
 * record batch from v3): the codec only frames it as nullable bytes.
 */
import type { MessageSpec } from '../schema.js';

export interface ProduceRequestPartition {
  index: number;
  records: Buffer | null;
}

export interface ProduceRequestTopic {
  name: string;
  partitionData: ProduceRequestPartition[];
}

export interface ProduceRequest {
  /** v3+; null for a non-transactional producer (and always null before v3). */
  transactionalId: string | null;
  /** 0: no response at all, 1: leader only, -1: all in-sync replicas. */
  acks: number;
  timeoutMs: number;
  topicData: ProduceRequestTopic[];
}

export interface ProduceResponsePartition {
  index: number;
  errorCode: number;
  baseOffset: bigint;
  /** v2+; -1 unless the topic uses LogAppendTime. */
  logAppendTimeMs?: bigint;
  /** v5+; default -1. */
  logStartOffset?: bigint;
}

export interface ProduceResponseTopic {
  name: string;
  partitionResponses: ProduceResponsePartition[];
}

export interface ProduceResponse {
  responses: ProduceResponseTopic[];
  /** v1+ */
  throttleTimeMs?: number;
}

export const produceRequest: MessageSpec = {
  name: 'ProduceRequest',
  apiKey: 0,
  type: 'request',
  validVersions: '0-7',
  flexibleVersions: '9+',
  fields: [
    { name: 'transactionalId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
    { name: 'acks', type: 'int16', versions: '0+' },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
    {
      name: 'topicData',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitionData',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'index', type: 'int32', versions: '0+' },
            { name: 'records', type: 'records', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
};

export const produceResponse: MessageSpec = {
  name: 'ProduceResponse',
  apiKey: 0,
  type: 'response',
  validVersions: '0-7',
  flexibleVersions: '9+',
  fields: [
    {
      name: 'responses',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitionResponses',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'index', type: 'int32', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'baseOffset', type: 'int64', versions: '0+' },
            { name: 'logAppendTimeMs', type: 'int64', versions: '2+', default: -1 },
            { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1 },
          ],
        },
      ],
    },
    // Note the order: unlike most responses, Produce puts the throttle time last.
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', default: 0 },
  ],
};
