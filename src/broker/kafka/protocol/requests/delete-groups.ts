/**
 * DeleteGroups (key 42), versions 0-1, all classic (Kafka makes v2+ flexible).
 * Written from Kafka's DeleteGroupsRequest/DeleteGroupsResponse message specs
 * (3.x). v1 changes nothing on the wire. (Kafka spells the request field
 * "GroupsNames".)
 */
import type { MessageSpec } from '../schema.js';

export interface DeleteGroupsRequest {
  groupsNames: string[];
}

export interface DeletableGroupResult {
  groupId: string;
  errorCode: number;
}

export interface DeleteGroupsResponse {
  throttleTimeMs: number;
  results: DeletableGroupResult[];
}

export const deleteGroupsRequest: MessageSpec = {
  name: 'DeleteGroupsRequest',
  apiKey: 42,
  type: 'request',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [{ name: 'groupsNames', type: '[]string', versions: '0+' }],
};

export const deleteGroupsResponse: MessageSpec = {
  name: 'DeleteGroupsResponse',
  apiKey: 42,
  type: 'response',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
    {
      name: 'results',
      type: '[]',
      versions: '0+',
      fields: [
        { name: 'groupId', type: 'string', versions: '0+' },
        { name: 'errorCode', type: 'int16', versions: '0+' },
      ],
    },
  ],
};
