/**
 * SyncGroup (key 14), versions 0-3, all classic (Kafka makes v4+ flexible).
 * Written from Kafka's SyncGroupRequest/SyncGroupResponse message specs (3.x).
 * v1 adds the throttle time, v3 the group instance id. The protocol type and
 * name (v5) are not carried here.
 */
import type { MessageSpec } from '../schema.js';

export interface SyncGroupRequestAssignment {
  memberId: string;
  assignment: Buffer;
}

/** As decoded: fields a version does not carry hold their defaults. */
export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  /** v3+; null before. */
  groupInstanceId: string | null;
  /** Filled by the leader only; empty from followers. */
  assignments: SyncGroupRequestAssignment[];
}

export interface SyncGroupResponse {
  /** v1+. */
  throttleTimeMs?: number;
  errorCode: number;
  assignment: Buffer;
}

export const syncGroupRequest: MessageSpec = {
  name: 'SyncGroupRequest',
  apiKey: 14,
  type: 'request',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'generationId', type: 'int32', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0+' },
    { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
    {
      name: 'assignments',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'memberId', type: 'string', versions: '0+' },
        { name: 'assignment', type: 'bytes', versions: '0+' },
      ],
    },
  ],
};

export const syncGroupResponse: MessageSpec = {
  name: 'SyncGroupResponse',
  apiKey: 14,
  type: 'response',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'assignment', type: 'bytes', versions: '0+' },
  ],
};
