/**
 * The APIs this broker speaks and the versions of each: what ApiVersions
 * advertises, and the per-version codecs the connection uses. One entry per
 * API; adding a version is raising `maxVersion` once the schema covers it.
 */
import { alterConfigsRequest, alterConfigsResponse } from './requests/alter-configs.js';
import { apiVersionsRequest, apiVersionsResponse } from './requests/api-versions.js';
import { createPartitionsRequest, createPartitionsResponse } from './requests/create-partitions.js';
import { createTopicsRequest, createTopicsResponse } from './requests/create-topics.js';
import { deleteGroupsRequest, deleteGroupsResponse } from './requests/delete-groups.js';
import { deleteRecordsRequest, deleteRecordsResponse } from './requests/delete-records.js';
import { deleteTopicsRequest, deleteTopicsResponse } from './requests/delete-topics.js';
import { describeConfigsRequest, describeConfigsResponse } from './requests/describe-configs.js';
import { describeGroupsRequest, describeGroupsResponse } from './requests/describe-groups.js';
import { fetchRequest, fetchResponse } from './requests/fetch.js';
import { findCoordinatorRequest, findCoordinatorResponse } from './requests/find-coordinator.js';
import { heartbeatRequest, heartbeatResponse } from './requests/heartbeat.js';
import { initProducerIdRequest, initProducerIdResponse } from './requests/init-producer-id.js';
import { joinGroupRequest, joinGroupResponse } from './requests/join-group.js';
import { leaveGroupRequest, leaveGroupResponse } from './requests/leave-group.js';
import { listGroupsRequest, listGroupsResponse } from './requests/list-groups.js';
import { listOffsetsRequest, listOffsetsResponse } from './requests/list-offsets.js';
import { metadataRequest, metadataResponse } from './requests/metadata.js';
import { offsetCommitRequest, offsetCommitResponse } from './requests/offset-commit.js';
import { offsetFetchRequest, offsetFetchResponse } from './requests/offset-fetch.js';
import { offsetForLeaderEpochRequest, offsetForLeaderEpochResponse } from './requests/offset-for-leader-epoch.js';
import { produceRequest, produceResponse } from './requests/produce.js';
import { saslAuthenticateRequest, saslAuthenticateResponse } from './requests/sasl-authenticate.js';
import { saslHandshakeRequest, saslHandshakeResponse } from './requests/sasl-handshake.js';
import { syncGroupRequest, syncGroupResponse } from './requests/sync-group.js';
import { compileAll, parseVersions, type MessageCodec, type MessageSpec } from './schema.js';

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  DeleteRecords: 21,
  InitProducerId: 22,
  OffsetForLeaderEpoch: 23,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  SaslAuthenticate: 36,
  CreatePartitions: 37,
  DeleteGroups: 42,
} as const;

export type ApiName = keyof typeof ApiKey;

export interface ApiDefinition {
  key: number;
  name: ApiName;
  minVersion: number;
  maxVersion: number;
  request: Array<MessageCodec<unknown>>;
  response: Array<MessageCodec<unknown>>;
}

const SPECS: Array<[ApiName, MessageSpec, MessageSpec]> = [
  ['Produce', produceRequest, produceResponse],
  ['Fetch', fetchRequest, fetchResponse],
  ['ListOffsets', listOffsetsRequest, listOffsetsResponse],
  ['Metadata', metadataRequest, metadataResponse],
  ['OffsetCommit', offsetCommitRequest, offsetCommitResponse],
  ['OffsetFetch', offsetFetchRequest, offsetFetchResponse],
  ['FindCoordinator', findCoordinatorRequest, findCoordinatorResponse],
  ['JoinGroup', joinGroupRequest, joinGroupResponse],
  ['Heartbeat', heartbeatRequest, heartbeatResponse],
  ['LeaveGroup', leaveGroupRequest, leaveGroupResponse],
  ['SyncGroup', syncGroupRequest, syncGroupResponse],
  ['DescribeGroups', describeGroupsRequest, describeGroupsResponse],
  ['ListGroups', listGroupsRequest, listGroupsResponse],
  ['SaslHandshake', saslHandshakeRequest, saslHandshakeResponse],
  ['ApiVersions', apiVersionsRequest, apiVersionsResponse],
  ['CreateTopics', createTopicsRequest, createTopicsResponse],
  ['DeleteTopics', deleteTopicsRequest, deleteTopicsResponse],
  ['DeleteRecords', deleteRecordsRequest, deleteRecordsResponse],
  ['InitProducerId', initProducerIdRequest, initProducerIdResponse],
  ['OffsetForLeaderEpoch', offsetForLeaderEpochRequest, offsetForLeaderEpochResponse],
  ['DescribeConfigs', describeConfigsRequest, describeConfigsResponse],
  ['AlterConfigs', alterConfigsRequest, alterConfigsResponse],
  ['SaslAuthenticate', saslAuthenticateRequest, saslAuthenticateResponse],
  ['CreatePartitions', createPartitionsRequest, createPartitionsResponse],
  ['DeleteGroups', deleteGroupsRequest, deleteGroupsResponse],
];

function define([name, request, response]: [ApiName, MessageSpec, MessageSpec]): ApiDefinition {
  const range = parseVersions(request.validVersions);
  if (!range) throw new Error(`${name}: no versions`);
  if (request.apiKey !== ApiKey[name] || response.apiKey !== ApiKey[name]) throw new Error(`${name}: spec api key ${request.apiKey}/${response.apiKey}, expected ${ApiKey[name]}`);
  return { key: ApiKey[name], name, minVersion: range.min, maxVersion: range.max, request: compileAll(request), response: compileAll(response) };
}

/** Every API, by key. Codecs are compiled once, at module load. */
export const APIS: ReadonlyMap<number, ApiDefinition> = new Map(SPECS.map((s) => [ApiKey[s[0]], define(s)]));

/** The ApiVersions answer: exactly what APIS implements. */
export function supportedApiVersions(): Array<{ apiKey: number; minVersion: number; maxVersion: number }> {
  return [...APIS.values()].sort((a, b) => a.key - b.key).map((a) => ({ apiKey: a.key, minVersion: a.minVersion, maxVersion: a.maxVersion }));
}
