/**
 * ListGroups (key 16), versions 0-2, all classic (Kafka makes v3+ flexible).
 * Written from Kafka's ListGroupsRequest/ListGroupsResponse message specs
 * (3.x). The request has no fields below v4 (states filter); v1 adds the
 * throttle time to the response.
 */
import type { MessageSpec } from '../schema.js';

/** No fields in v0-2. */
export type ListGroupsRequest = Record<string, never>;

export interface ListedGroup {
  groupId: string;
  protocolType: string;
}

export interface ListGroupsResponse {
  /** v1+. */
  throttleTimeMs?: number;
  errorCode: number;
  groups: ListedGroup[];
}

export const listGroupsRequest: MessageSpec = {
  name: 'ListGroupsRequest',
  apiKey: 16,
  type: 'request',
  validVersions: '0-2',
  flexibleVersions: '3+',
  fields: [],
};

export const listGroupsResponse: MessageSpec = {
  name: 'ListGroupsResponse',
  apiKey: 16,
  type: 'response',
  validVersions: '0-2',
  flexibleVersions: '3+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    {
      name: 'groups',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'groupId', type: 'string', versions: '0+' },
        { name: 'protocolType', type: 'string', versions: '0+' },
      ],
    },
  ],
};
