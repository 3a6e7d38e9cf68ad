/**
 * DeleteTopics (key 20), versions 0-3, all classic (Kafka makes v4+ flexible).
 * Written from Kafka's DeleteTopicsRequest/DeleteTopicsResponse message specs
 * (3.x). v1 adds the throttle time; v2 and v3 change nothing on the wire.
 * Error messages (v5) and deletion by topic id (v6) are not carried here.
 */
import type { MessageSpec } from '../schema.js';

export interface DeleteTopicsRequest {
  topicNames: string[];
  timeoutMs: number;
}

export interface DeletableTopicResult {
  name: string;
  errorCode: number;
}

export interface DeleteTopicsResponse {
  /** v1+. */
  throttleTimeMs?: number;
  responses: DeletableTopicResult[];
}

export const deleteTopicsRequest: MessageSpec = {
  name: 'DeleteTopicsRequest',
  apiKey: 20,
  type: 'request',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    // Kafka: versions 0-5 (v6 replaces it with a topics array of name/id).
    { name: 'topicNames', type: '[]string', versions: '0-5' },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
  ],
};

export const deleteTopicsResponse: MessageSpec = {
  name: 'DeleteTopicsResponse',
  apiKey: 20,
  type: 'response',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    {
      name: 'responses',
      type: '[]',
      versions: '0+',
      fields: [
        // Nullable only from v6 (outside this range).
        { name: 'name', type: 'string', versions: '0+', nullableVersions: '6+' },
        { name: 'errorCode', type: 'int16', versions: '0+' },
      ],
    },
  ],
};
