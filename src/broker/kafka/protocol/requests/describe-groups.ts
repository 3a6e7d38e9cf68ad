/**
 * DescribeGroups (key 15), versions 0-4, all classic (Kafka makes v5+ flexible).
 * Written from Kafka's DescribeGroupsRequest/DescribeGroupsResponse message
 * specs (3.x). v1 adds the throttle time, v3 authorized operations (asked for
 * by the request, answered per group), v4 members' group instance ids.
 */
import type { MessageSpec } from '../schema.js';

/** As decoded: fields a version does not carry hold their defaults. */
export interface DescribeGroupsRequest {
  groups: string[];
  /** v3+; false before. */
  includeAuthorizedOperations: boolean;
}

export interface DescribedGroupMember {
  memberId: string;
  /** v4+. */
  groupInstanceId?: string | null;
  clientId: string;
  clientHost: string;
  memberMetadata: Buffer;
  memberAssignment: Buffer;
}

export interface DescribedGroup {
  errorCode: number;
  groupId: string;
  groupState: string;
  protocolType: string;
  /** The chosen protocol (assignor) name. */
  protocolData: string;
  members: DescribedGroupMember[];
  /** v3+; a bit field of ACL operations, INT32_MIN when not asked for. */
  authorizedOperations?: number;
}

export interface DescribeGroupsResponse {
  /** v1+. */
  throttleTimeMs?: number;
  groups: DescribedGroup[];
}

/** The "not requested" value of authorizedOperations. */
export const AUTHORIZED_OPERATIONS_OMITTED = -2147483648;

export const describeGroupsRequest: MessageSpec = {
  name: 'DescribeGroupsRequest',
  apiKey: 15,
  type: 'request',
  validVersions: '0-4',
  flexibleVersions: '5+',
  fields: [
    { name: 'groups', type: '[]string', versions: '0+' },
    { name: 'includeAuthorizedOperations', type: 'bool', versions: '3+' },
  ],
};

export const describeGroupsResponse: MessageSpec = {
  name: 'DescribeGroupsResponse',
  apiKey: 15,
  type: 'response',
  validVersions: '0-4',
  flexibleVersions: '5+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    {
      name: 'groups',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'groupId', type: 'string', versions: '0+' },
        { name: 'groupState', type: 'string', versions: '0+' },
        { name: 'protocolType', type: 'string', versions: '0+' },
        { name: 'protocolData', type: 'string', versions: '0+' },
        {
          name: 'members',
          type: '[]',
          versions: '0+',
          fields: [
            { name: 'memberId', type: 'string', versions: '0+' },
            { name: 'groupInstanceId', type: 'string', versions: '4+', nullableVersions: '4+', default: null },
            { name: 'clientId', type: 'string', versions: '0+' },
            { name: 'clientHost', type: 'string', versions: '0+' },
            { name: 'memberMetadata', type: 'bytes', versions: '0+' },
            { name: 'memberAssignment', type: 'bytes', versions: '0+' },
          ],
        },
        { name: 'authorizedOperations', type: 'int32', versions: '3+', default: AUTHORIZED_OPERATIONS_OMITTED },
      ],
    },
  ],
};
