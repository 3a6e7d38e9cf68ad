/**
 * LeaveGroup (key 13), versions 0-3, all classic (Kafka makes v4+ flexible).
 * Written from Kafka's LeaveGroupRequest/LeaveGroupResponse message specs (3.x).
 * v0-2 name one member; v3 (KIP-345) replaces it with a batch of members, each
 * with an optional group instance id, and answers per member. v1 adds the
 * throttle time. The per-member reason (v5) is not carried here.
 */
import type { MessageSpec } from '../schema.js';

export interface LeaveGroupMemberIdentity {
  memberId: string;
  groupInstanceId: string | null;
}

/** As decoded: fields a version does not carry hold their defaults. */
export interface LeaveGroupRequest {
  groupId: string;
  /** v0-2; '' from v3. */
  memberId: string;
  /** v3+; [] before. */
  members: LeaveGroupMemberIdentity[];
}

export interface LeaveGroupMemberResponse {
  memberId: string;
  groupInstanceId: string | null;
  errorCode: number;
}

export interface LeaveGroupResponse {
  /** v1+. */
  throttleTimeMs?: number;
  errorCode: number;
  /** v3+. */
  members?: LeaveGroupMemberResponse[];
}

export const leaveGroupRequest: MessageSpec = {
  name: 'LeaveGroupRequest',
  apiKey: 13,
  type: 'request',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0-2' },
    {
      name: 'members',
      type: '[]',
      versions: '3+',
      fields: [
        { name: 'memberId', type: 'string', versions: '3+' },
        { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
      ],
    },
  ],
};

export const leaveGroupResponse: MessageSpec = {
  name: 'LeaveGroupResponse',
  apiKey: 13,
  type: 'response',
  validVersions: '0-3',
  flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    {
      name: 'members',
      type: '[]',
      versions: '3+',
      fields: [
        { name: 'memberId', type: 'string', versions: '3+' },
        { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+' },
        { name: 'errorCode', type: 'int16', versions: '3+' },
      ],
    },
  ],
};
