/**
 * DeleteRecords (key 21), versions 0-1; neither flexible (Kafka's spec makes
 * 2+ flexible). Written from Kafka 3.x's DeleteRecordsRequest/
 * DeleteRecordsResponse message specs. v1 is identical to v0 on the wire.
 *
 * Deletes every record before the given offset (-1: up to the high
 * watermark); the answer is each partition's new low watermark.
 */
import type { MessageSpec } from '../schema.js';

export interface DeleteRecordsRequestPartition {
  partitionIndex: number;
  /** Delete records before this offset; -1 for the high watermark. */
  offset: bigint;
}

export interface DeleteRecordsRequestTopic {
  name: string;
  partitions: DeleteRecordsRequestPartition[];
}

export interface DeleteRecordsRequest {
  topics: DeleteRecordsRequestTopic[];
  timeoutMs: number;
}

export interface DeleteRecordsResponsePartition {
  partitionIndex: number;
  lowWatermark: bigint;
  errorCode: number;
}

export interface DeleteRecordsResponseTopic {
  name: string;
  partitions: DeleteRecordsResponsePartition[];
}

export interface DeleteRecordsResponse {
  throttleTimeMs: number;
  topics: DeleteRecordsResponseTopic[];
}

export const deleteRecordsRequest: MessageSpec = {
  name: 'DeleteRecordsRequest',
  apiKey: 21,
  type: 'request',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [
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
            { name: 'offset', type: 'int64', versions: '0+' },
          ],
        },
      ],
    },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
  ],
};

export const deleteRecordsResponse: MessageSpec = {
  name: 'DeleteRecordsResponse',
  apiKey: 21,
  type: 'response',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
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
            { name: 'lowWatermark', type: 'int64', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
          ],
        },
      ],
    },
  ],
};
