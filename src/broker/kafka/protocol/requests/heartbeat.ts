/**
 * Heartbeat (key 12), versions 0-3, all classic (Kafka makes v4+ flexible).
 * Written from Kafka's HeartbeatRequest/HeartbeatResponse message specs (3.x).
 * v1 adds the throttle time, v3 the group instance id (static membership).
 */
import type { MessageSpec } from '../schema.js';

/** As decoded: fields a version does not carry hold their defaults. */
export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  /** v3+; null before. */
  groupInstanceId: string | null;
}

export interface HeartbeatResponse {
  /** v1+. */
  throttleTimeMs?: number;
  errorCode: number;
}

export const heartbeatRequest: MessageSpec = {
  name: 'HeartbeatRequest',
  apiKey: 12,
  type: 'request',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'generationId', type: 'int32', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0+' },
    { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
  ],
};

export const heartbeatResponse: MessageSpec = {
  name: 'HeartbeatResponse',
  apiKey: 12,
  type: 'response',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
  ],
};
