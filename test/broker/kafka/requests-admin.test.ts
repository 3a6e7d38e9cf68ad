/**
 * Group, SASL and admin API specs (JoinGroup, Heartbeat, LeaveGroup, SyncGroup,
 * DescribeGroups, ListGroups, SaslHandshake, CreateTopics, DeleteTopics,
 * DescribeConfigs, AlterConfigs, SaslAuthenticate, CreatePartitions,
 * DeleteGroups): every version round trips through our codecs, and wherever
 * kafkajs speaks the version, what kafkajs sends decodes with our request codec
 * (every byte consumed, and re-encoding gives kafkajs's bytes back) and what we
 * answer decodes with kafkajs's response decoder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KafkaReader } from '../../../src/broker/kafka/protocol/reader.js';
import { alterConfigsRequest, alterConfigsResponse, type AlterConfigsRequest, type AlterConfigsResponse } from '../../../src/broker/kafka/protocol/requests/alter-configs.js';
import { createPartitionsRequest, createPartitionsResponse, type CreatePartitionsRequest, type CreatePartitionsResponse } from '../../../src/broker/kafka/protocol/requests/create-partitions.js';
import { createTopicsRequest, createTopicsResponse, type CreateTopicsRequest, type CreateTopicsResponse } from '../../../src/broker/kafka/protocol/requests/create-topics.js';
import { deleteGroupsRequest, deleteGroupsResponse, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../../../src/broker/kafka/protocol/requests/delete-groups.js';
import { deleteTopicsRequest, deleteTopicsResponse, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../../src/broker/kafka/protocol/requests/delete-topics.js';
import { describeConfigsRequest, describeConfigsResponse, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../../src/broker/kafka/protocol/requests/describe-configs.js';
import { AUTHORIZED_OPERATIONS_OMITTED, describeGroupsRequest, describeGroupsResponse, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../../src/broker/kafka/protocol/requests/describe-groups.js';
import { heartbeatRequest, heartbeatResponse, type HeartbeatRequest, type HeartbeatResponse } from '../../../src/broker/kafka/protocol/requests/heartbeat.js';
import { joinGroupRequest, joinGroupResponse, type JoinGroupRequest, type JoinGroupResponse } from '../../../src/broker/kafka/protocol/requests/join-group.js';
import { leaveGroupRequest, leaveGroupResponse, type LeaveGroupRequest, type LeaveGroupResponse } from '../../../src/broker/kafka/protocol/requests/leave-group.js';
import { listGroupsRequest, listGroupsResponse, type ListGroupsRequest, type ListGroupsResponse } from '../../../src/broker/kafka/protocol/requests/list-groups.js';
import { saslAuthenticateRequest, saslAuthenticateResponse, type SaslAuthenticateRequest, type SaslAuthenticateResponse } from '../../../src/broker/kafka/protocol/requests/sasl-authenticate.js';
import { saslHandshakeRequest, saslHandshakeResponse, type SaslHandshakeRequest, type SaslHandshakeResponse } from '../../../src/broker/kafka/protocol/requests/sasl-handshake.js';
import { syncGroupRequest, syncGroupResponse, type SyncGroupRequest, type SyncGroupResponse } from '../../../src/broker/kafka/protocol/requests/sync-group.js';
import { compileMessage, inVersions, parseVersions, type MessageSpec } from '../../../src/broker/kafka/protocol/schema.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { kafkajsRequestBody, kafkajsResponse } from '../../support/kafkajs-protocol.js';

type Obj = Record<string, unknown>;

function encode(spec: MessageSpec, version: number, value: object): Buffer {
  const w = new KafkaWriter(16);
  compileMessage(spec, version).encode(w, value);
  return w.toBuffer();
}

function decodeAll(spec: MessageSpec, version: number, bytes: Buffer): Obj {
  const r = new KafkaReader(bytes);
  const out = compileMessage<Obj>(spec, version).decode(r);
  assert.equal(r.remaining, 0, `${spec.name} v${version}: every byte consumed`);
  return out;
}

/** Encode, decode, and check that re-encoding the decoded value gives the same bytes. */
function roundTrip(spec: MessageSpec, version: number, value: object): Obj {
  const bytes = encode(spec, version, value);
  const out = decodeAll(spec, version, bytes);
  assert.deepEqual(encode(spec, version, out), bytes, `${spec.name} v${version}: re-encoding is stable`);
  return out;
}

const buf = (...b: number[]): Buffer => Buffer.from(b);
const str = (s: string): Buffer => Buffer.from(s, 'utf8');
/** kafkajs throttle fields: v < from: absent; from: reported as is; later: moved to clientSideThrottleTime (KIP-219). */
function kjsThrottle(v: number, ms: number, reportedFrom: number, clientSideFrom: number): Obj {
  if (v < reportedFrom) return {};
  if (v < clientSideFrom) return { throttleTime: ms };
  return { throttleTime: 0, clientSideThrottleTime: ms };
}

interface ApiCase {
  name: string;
  request: MessageSpec;
  response: MessageSpec;
  /** What we encode as a request, and what each version decodes it to. */
  requestIn: object;
  requestOut(v: number): object;
  /** What we encode as a response, and what each version decodes it to. */
  responseIn: object;
  responseOut(v: number): object;
  kafkajs: {
    api: string;
    versions: number[];
    /** kafkajs's request arguments, and what our codec should decode from its bytes. */
    requestArgs(v: number): unknown[];
    requestOut(v: number): object;
    /** What kafkajs's response decoder should give for responseIn. */
    responseOut(v: number): object;
  };
}

// ---------------------------------------------------------------- JoinGroup

const joinReq: JoinGroupRequest = {
  groupId: 'g1',
  sessionTimeoutMs: 30000,
  rebalanceTimeoutMs: 60000,
  memberId: 'm-1',
  groupInstanceId: 'inst-1',
  protocolType: 'consumer',
  protocols: [
    { name: 'range', metadata: buf(0, 1, 2) },
    { name: 'roundrobin', metadata: Buffer.alloc(0) },
  ],
};
const joinRes: JoinGroupResponse = {
  throttleTimeMs: 7,
  errorCode: 0,
  generationId: 3,
  protocolName: 'range',
  leader: 'm-1',
  memberId: 'm-2',
  members: [
    { memberId: 'm-1', groupInstanceId: 'inst-1', metadata: str('abc') },
    { memberId: 'm-2', groupInstanceId: null, metadata: Buffer.alloc(0) },
  ],
};
const joinReqOut = (v: number): JoinGroupRequest => ({ ...joinReq, rebalanceTimeoutMs: v >= 1 ? 60000 : -1, groupInstanceId: v >= 5 ? 'inst-1' : null });

const joinGroup: ApiCase = {
  name: 'JoinGroup',
  request: joinGroupRequest,
  response: joinGroupResponse,
  requestIn: joinReq,
  requestOut: joinReqOut,
  responseIn: joinRes,
  responseOut: (v) => ({ ...joinRes, throttleTimeMs: v >= 2 ? 7 : 0, members: joinRes.members.map((m) => ({ ...m, groupInstanceId: v >= 5 ? m.groupInstanceId : null })) }),
  kafkajs: {
    api: 'joinGroup',
    versions: [0, 1, 2, 3, 4, 5],
    requestArgs: () => [
      {
        groupId: 'g1',
        sessionTimeout: 30000,
        rebalanceTimeout: 60000,
        memberId: 'm-1',
        groupInstanceId: 'inst-1',
        protocolType: 'consumer',
        groupProtocols: joinReq.protocols,
      },
    ],
    requestOut: joinReqOut,
    responseOut: (v) => ({
      ...kjsThrottle(v, 7, 2, 3),
      errorCode: 0,
      generationId: 3,
      groupProtocol: 'range',
      leaderId: 'm-1',
      memberId: 'm-2',
      members: joinRes.members.map((m) => (v >= 5 ? { memberId: m.memberId, groupInstanceId: m.groupInstanceId, memberMetadata: m.metadata } : { memberId: m.memberId, memberMetadata: m.metadata })),
    }),
  },
};

// ---------------------------------------------------------------- Heartbeat

const hbReq: HeartbeatRequest = { groupId: 'g1', generationId: 4, memberId: 'm-1', groupInstanceId: 'inst-1' };
const hbRes: HeartbeatResponse = { throttleTimeMs: 11, errorCode: 27 };
const hbReqOut = (v: number): HeartbeatRequest => ({ ...hbReq, groupInstanceId: v >= 3 ? 'inst-1' : null });

const heartbeat: ApiCase = {
  name: 'Heartbeat',
  request: heartbeatRequest,
  response: heartbeatResponse,
  requestIn: hbReq,
  requestOut: hbReqOut,
  responseIn: hbRes,
  responseOut: (v) => ({ errorCode: 27, throttleTimeMs: v >= 1 ? 11 : 0 }),
  kafkajs: {
    api: 'heartbeat',
    versions: [0, 1, 2, 3],
    requestArgs: () => [{ groupId: 'g1', groupGenerationId: 4, memberId: 'm-1', groupInstanceId: 'inst-1' }],
    requestOut: hbReqOut,
    responseOut: (v) => ({ ...kjsThrottle(v, 11, 1, 2), errorCode: 27 }),
  },
};

// ---------------------------------------------------------------- LeaveGroup

const leaveMembers = [
  { memberId: 'm-1', groupInstanceId: 'inst-1' },
  { memberId: 'm-2', groupInstanceId: null },
];
const leaveReq: LeaveGroupRequest = { groupId: 'g1', memberId: 'm-1', members: leaveMembers };
const leaveRes: LeaveGroupResponse = {
  throttleTimeMs: 5,
  errorCode: 0,
  members: [
    { memberId: 'm-1', groupInstanceId: 'inst-1', errorCode: 0 },
    { memberId: 'm-2', groupInstanceId: null, errorCode: 25 },
  ],
};
const leaveReqOut = (v: number): LeaveGroupRequest => (v >= 3 ? { groupId: 'g1', memberId: '', members: leaveMembers } : { groupId: 'g1', memberId: 'm-1', members: [] });

const leaveGroup: ApiCase = {
  name: 'LeaveGroup',
  request: leaveGroupRequest,
  response: leaveGroupResponse,
  requestIn: leaveReq,
  requestOut: leaveReqOut,
  responseIn: leaveRes,
  responseOut: (v) => ({ throttleTimeMs: v >= 1 ? 5 : 0, errorCode: 0, members: v >= 3 ? leaveRes.members : [] }),
  kafkajs: {
    api: 'leaveGroup',
    versions: [0, 1, 2, 3],
    requestArgs: (v) => [v >= 3 ? { groupId: 'g1', members: leaveMembers } : { groupId: 'g1', memberId: 'm-1' }],
    requestOut: leaveReqOut,
    responseOut: (v) => ({ ...kjsThrottle(v, 5, 1, 2), errorCode: 0, ...(v >= 3 ? { members: leaveRes.members } : {}) }),
  },
};

// ---------------------------------------------------------------- SyncGroup

const syncReq: SyncGroupRequest = {
  groupId: 'g1',
  generationId: 4,
  memberId: 'm-1',
  groupInstanceId: 'inst-1',
  assignments: [
    { memberId: 'm-1', assignment: buf(0, 1) },
    { memberId: 'm-2', assignment: buf(2) },
  ],
};
const syncRes: SyncGroupResponse = { throttleTimeMs: 9, errorCode: 0, assignment: buf(0, 1, 0, 0) };
const syncReqOut = (v: number): SyncGroupRequest => ({ ...syncReq, groupInstanceId: v >= 3 ? 'inst-1' : null });

const syncGroup: ApiCase = {
  name: 'SyncGroup',
  request: syncGroupRequest,
  response: syncGroupResponse,
  requestIn: syncReq,
  requestOut: syncReqOut,
  responseIn: syncRes,
  responseOut: (v) => ({ ...syncRes, throttleTimeMs: v >= 1 ? 9 : 0 }),
  kafkajs: {
    api: 'syncGroup',
    versions: [0, 1, 2, 3],
    requestArgs: () => [
      {
        groupId: 'g1',
        generationId: 4,
        memberId: 'm-1',
        groupInstanceId: 'inst-1',
        groupAssignment: syncReq.assignments.map((a) => ({ memberId: a.memberId, memberAssignment: a.assignment })),
      },
    ],
    requestOut: syncReqOut,
    responseOut: (v) => ({ ...kjsThrottle(v, 9, 1, 2), errorCode: 0, memberAssignment: syncRes.assignment }),
  },
};

// ---------------------------------------------------------------- DescribeGroups

const dgReq: DescribeGroupsRequest = { groups: ['g1', 'g2'], includeAuthorizedOperations: true };
const dgRes: DescribeGroupsResponse = {
  throttleTimeMs: 3,
  groups: [
    {
      errorCode: 0,
      groupId: 'g1',
      groupState: 'Stable',
      protocolType: 'consumer',
      protocolData: 'range',
      members: [{ memberId: 'm-1', groupInstanceId: 'inst-1', clientId: 'c1', clientHost: '/127.0.0.1', memberMetadata: buf(1), memberAssignment: buf(2, 3) }],
      authorizedOperations: 0xf8,
    },
    { errorCode: 16, groupId: 'g2', groupState: 'Dead', protocolType: '', protocolData: '', members: [], authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED },
  ],
};

const describeGroups: ApiCase = {
  name: 'DescribeGroups',
  request: describeGroupsRequest,
  response: describeGroupsResponse,
  requestIn: dgReq,
  requestOut: (v) => ({ groups: ['g1', 'g2'], includeAuthorizedOperations: v >= 3 }),
  responseIn: dgRes,
  responseOut: (v) => ({
    throttleTimeMs: v >= 1 ? 3 : 0,
    groups: dgRes.groups.map((g) => ({
      ...g,
      authorizedOperations: v >= 3 ? g.authorizedOperations : AUTHORIZED_OPERATIONS_OMITTED,
      members: g.members.map((m) => ({ ...m, groupInstanceId: v >= 4 ? m.groupInstanceId : null })),
    })),
  }),
  kafkajs: {
    api: 'describeGroups',
    versions: [0, 1, 2],
    requestArgs: () => [{ groupIds: ['g1', 'g2'] }],
    requestOut: () => ({ groups: ['g1', 'g2'], includeAuthorizedOperations: false }),
    responseOut: (v) => ({
      ...kjsThrottle(v, 3, 1, 2),
      groups: dgRes.groups.map((g) => ({
        errorCode: g.errorCode,
        groupId: g.groupId,
        state: g.groupState,
        protocolType: g.protocolType,
        protocol: g.protocolData,
        members: g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost, memberMetadata: m.memberMetadata, memberAssignment: m.memberAssignment })),
      })),
    }),
  },
};

// ---------------------------------------------------------------- ListGroups

const lgReq: ListGroupsRequest = {};
const lgRes: ListGroupsResponse = {
  throttleTimeMs: 2,
  errorCode: 0,
  groups: [
    { groupId: 'g1', protocolType: 'consumer' },
    { groupId: 'g2', protocolType: '' },
  ],
};

const listGroups: ApiCase = {
  name: 'ListGroups',
  request: listGroupsRequest,
  response: listGroupsResponse,
  requestIn: lgReq,
  requestOut: () => ({}),
  responseIn: lgRes,
  responseOut: (v) => ({ ...lgRes, throttleTimeMs: v >= 1 ? 2 : 0 }),
  kafkajs: {
    api: 'listGroups',
    versions: [0, 1, 2],
    requestArgs: () => [],
    requestOut: () => ({}),
    responseOut: (v) => ({ ...kjsThrottle(v, 2, 1, 2), errorCode: 0, groups: lgRes.groups }),
  },
};

// ---------------------------------------------------------------- SaslHandshake

const shReq: SaslHandshakeRequest = { mechanism: 'PLAIN' };
const shRes: SaslHandshakeResponse = { errorCode: 33, mechanisms: ['PLAIN', 'SCRAM-SHA-256'] };

const saslHandshake: ApiCase = {
  name: 'SaslHandshake',
  request: saslHandshakeRequest,
  response: saslHandshakeResponse,
  requestIn: shReq,
  requestOut: () => shReq,
  responseIn: shRes,
  responseOut: () => shRes,
  kafkajs: {
    api: 'saslHandshake',
    versions: [0, 1],
    requestArgs: () => [{ mechanism: 'PLAIN' }],
    requestOut: () => shReq,
    responseOut: () => ({ errorCode: 33, enabledMechanisms: shRes.mechanisms }),
  },
};

// ---------------------------------------------------------------- CreateTopics

const ctReq: CreateTopicsRequest = {
  topics: [
    {
      name: 'a',
      numPartitions: 3,
      replicationFactor: 1,
      assignments: [],
      configs: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'retention.ms', value: null },
      ],
    },
    {
      name: 'b',
      numPartitions: -1,
      replicationFactor: -1,
      assignments: [
        { partitionIndex: 0, brokerIds: [1, 2] },
        { partitionIndex: 1, brokerIds: [2, 3] },
      ],
      configs: [],
    },
  ],
  timeoutMs: 5000,
  validateOnly: true,
};
const ctRes: CreateTopicsResponse = {
  throttleTimeMs: 4,
  topics: [
    { name: 'a', errorCode: 0, errorMessage: null },
    { name: 'b', errorCode: 36, errorMessage: "Topic 'b' already exists." },
  ],
};
const ctReqOut = (v: number): CreateTopicsRequest => ({ ...ctReq, validateOnly: v >= 1 });

const createTopics: ApiCase = {
  name: 'CreateTopics',
  request: createTopicsRequest,
  response: createTopicsResponse,
  requestIn: ctReq,
  requestOut: ctReqOut,
  responseIn: ctRes,
  // v0 has no error message: absent, it decodes as Kafka's string default ''.
  responseOut: (v) => ({ throttleTimeMs: v >= 2 ? 4 : 0, topics: ctRes.topics.map((t) => ({ ...t, errorMessage: v >= 1 ? t.errorMessage : '' })) }),
  kafkajs: {
    api: 'createTopics',
    versions: [0, 1, 2, 3],
    requestArgs: () => [
      {
        topics: [
          { topic: 'a', numPartitions: 3, replicationFactor: 1, configEntries: ctReq.topics[0]!.configs },
          {
            topic: 'b',
            replicaAssignment: [
              { partition: 0, replicas: [1, 2] },
              { partition: 1, replicas: [2, 3] },
            ],
          },
        ],
        timeout: 5000,
        validateOnly: true,
      },
    ],
    requestOut: ctReqOut,
    responseOut: (v) => ({
      ...kjsThrottle(v, 4, 2, 3),
      topicErrors: ctRes.topics.map((t) => (v >= 1 ? { topic: t.name, errorCode: t.errorCode, errorMessage: t.errorMessage } : { topic: t.name, errorCode: t.errorCode })),
    }),
  },
};

// ---------------------------------------------------------------- DeleteTopics

const dtReq: DeleteTopicsRequest = { topicNames: ['a', 'b'], timeoutMs: 5000 };
const dtRes: DeleteTopicsResponse = {
  throttleTimeMs: 1,
  responses: [
    { name: 'a', errorCode: 0 },
    { name: 'b', errorCode: 3 },
  ],
};

const deleteTopics: ApiCase = {
  name: 'DeleteTopics',
  request: deleteTopicsRequest,
  response: deleteTopicsResponse,
  requestIn: dtReq,
  requestOut: () => dtReq,
  responseIn: dtRes,
  responseOut: (v) => ({ ...dtRes, throttleTimeMs: v >= 1 ? 1 : 0 }),
  kafkajs: {
    api: 'deleteTopics',
    versions: [0, 1],
    requestArgs: () => [{ topics: ['a', 'b'], timeout: 5000 }],
    requestOut: () => dtReq,
    // kafkajs v1 already treats the throttle time as client-side.
    responseOut: (v) => ({ ...kjsThrottle(v, 1, 1, 1), topicErrors: dtRes.responses.map((r) => ({ topic: r.name, errorCode: r.errorCode })) }),
  },
};

// ---------------------------------------------------------------- DescribeConfigs

const dcReq: DescribeConfigsRequest = {
  resources: [
    { resourceType: 2, resourceName: 'a', configurationKeys: ['cleanup.policy'] },
    { resourceType: 4, resourceName: '1', configurationKeys: null },
  ],
  includeSynonyms: true,
};
const dcRes: DescribeConfigsResponse = {
  throttleTimeMs: 6,
  results: [
    {
      errorCode: 0,
      errorMessage: null,
      resourceType: 2,
      resourceName: 'a',
      configs: [
        {
          name: 'cleanup.policy',
          value: 'compact',
          readOnly: false,
          isDefault: false,
          configSource: 1,
          isSensitive: false,
          synonyms: [
            { name: 'cleanup.policy', value: 'compact', source: 1 },
            { name: 'log.cleanup.policy', value: 'delete', source: 5 },
          ],
        },
        { name: 'secret', value: null, readOnly: true, isDefault: true, configSource: 5, isSensitive: true, synonyms: [] },
      ],
    },
    { errorCode: 3, errorMessage: 'unknown topic', resourceType: 2, resourceName: 'zz', configs: [] },
  ],
};
const dcReqOut = (v: number): DescribeConfigsRequest => ({ ...dcReq, includeSynonyms: v >= 1 });

const describeConfigs: ApiCase = {
  name: 'DescribeConfigs',
  request: describeConfigsRequest,
  response: describeConfigsResponse,
  requestIn: dcReq,
  requestOut: dcReqOut,
  responseIn: dcRes,
  responseOut: (v) => ({
    throttleTimeMs: 6,
    results: dcRes.results.map((r) => ({
      ...r,
      configs: r.configs.map((c) => (v === 0 ? { ...c, configSource: -1, synonyms: [] } : { ...c, isDefault: false })),
    })),
  }),
  kafkajs: {
    api: 'describeConfigs',
    versions: [0, 1, 2],
    requestArgs: () => [
      {
        resources: [
          { type: 2, name: 'a', configNames: ['cleanup.policy'] },
          // kafkajs sends an empty key list as a null array: "every config".
          { type: 4, name: '1', configNames: [] },
        ],
        includeSynonyms: true,
      },
    ],
    requestOut: dcReqOut,
    responseOut: (v) => ({
      ...(v >= 2 ? { throttleTime: 0, clientSideThrottleTime: 6 } : { throttleTime: 6 }),
      resources: dcRes.results.map((r) => ({
        errorCode: r.errorCode,
        errorMessage: r.errorMessage,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        configEntries: r.configs.map((c) =>
          v === 0
            ? // kafkajs derives a config source for v0 from isDefault and the resource type (topic => TOPIC_CONFIG).
              { configName: c.name, configValue: c.value, readOnly: c.readOnly, isDefault: c.isDefault, configSource: c.isDefault ? 5 : 1, isSensitive: c.isSensitive }
            : {
                configName: c.name,
                configValue: c.value,
                readOnly: c.readOnly,
                isDefault: c.configSource === 5,
                configSource: c.configSource,
                isSensitive: c.isSensitive,
                configSynonyms: (c.synonyms ?? []).map((s) => ({ configName: s.name, configValue: s.value, configSource: s.source })),
              },
        ),
      })),
    }),
  },
};

// ---------------------------------------------------------------- AlterConfigs

const acReq: AlterConfigsRequest = {
  resources: [
    {
      resourceType: 2,
      resourceName: 'a',
      configs: [
        { name: 'retention.ms', value: '1000' },
        { name: 'cleanup.policy', value: null },
      ],
    },
    { resourceType: 4, resourceName: '1', configs: [] },
  ],
  validateOnly: true,
};
const acRes: AlterConfigsResponse = {
  throttleTimeMs: 8,
  responses: [
    { errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 'a' },
    { errorCode: 40, errorMessage: 'invalid config', resourceType: 4, resourceName: '1' },
  ],
};

const alterConfigs: ApiCase = {
  name: 'AlterConfigs',
  request: alterConfigsRequest,
  response: alterConfigsResponse,
  requestIn: acReq,
  requestOut: () => acReq,
  responseIn: acRes,
  responseOut: () => acRes,
  kafkajs: {
    api: 'alterConfigs',
    versions: [0, 1],
    requestArgs: () => [{ resources: acReq.resources.map((r) => ({ type: r.resourceType, name: r.resourceName, configEntries: r.configs })), validateOnly: true }],
    requestOut: () => acReq,
    responseOut: (v) => ({ ...kjsThrottle(v, 8, 0, 1), resources: acRes.responses }),
  },
};

// ---------------------------------------------------------------- SaslAuthenticate

const token = str('\0user\0pass');
const sizePrefixed = (b: Buffer): Buffer => {
  const len = Buffer.alloc(4);
  len.writeInt32BE(b.length);
  return Buffer.concat([len, b]);
};
const saReq: SaslAuthenticateRequest = { authBytes: token };
const saRes: SaslAuthenticateResponse = { errorCode: 0, errorMessage: null, authBytes: str('server-final'), sessionLifetimeMs: 3_600_000n };

const saslAuthenticate: ApiCase = {
  name: 'SaslAuthenticate',
  request: saslAuthenticateRequest,
  response: saslAuthenticateResponse,
  requestIn: saReq,
  requestOut: () => saReq,
  responseIn: saRes,
  responseOut: (v) => ({ ...saRes, sessionLifetimeMs: v >= 1 ? 3_600_000n : 0n }),
  kafkajs: {
    api: 'saslAuthenticate',
    versions: [0, 1],
    // kafkajs's SASL mechanisms hand over the token already size-prefixed (writeBuffer, raw).
    requestArgs: () => [{ authBytes: sizePrefixed(token) }],
    requestOut: () => saReq,
    // ... and kafkajs gives the server's bytes back size-prefixed too; the lifetime as a string.
    responseOut: (v) => ({ errorCode: 0, errorMessage: null, authBytes: sizePrefixed(saRes.authBytes), ...(v >= 1 ? { sessionLifetimeMs: '3600000' } : {}) }),
  },
};

// ---------------------------------------------------------------- CreatePartitions

const cpReq: CreatePartitionsRequest = {
  topics: [
    { name: 'a', count: 6, assignments: [{ brokerIds: [1, 2] }, { brokerIds: [2, 3] }] },
    { name: 'b', count: 2, assignments: null },
  ],
  timeoutMs: 5000,
  validateOnly: false,
};
const cpRes: CreatePartitionsResponse = {
  throttleTimeMs: 2,
  results: [
    { name: 'a', errorCode: 0, errorMessage: null },
    { name: 'b', errorCode: 37, errorMessage: 'Topic already has 4 partitions.' },
  ],
};

const createPartitions: ApiCase = {
  name: 'CreatePartitions',
  request: createPartitionsRequest,
  response: createPartitionsResponse,
  requestIn: cpReq,
  requestOut: () => cpReq,
  responseIn: cpRes,
  responseOut: () => cpRes,
  kafkajs: {
    api: 'createPartitions',
    versions: [0, 1],
    requestArgs: () => [
      {
        topicPartitions: [
          { topic: 'a', count: 6, assignments: [[1, 2], [2, 3]] },
          // no assignments: kafkajs sends a null array.
          { topic: 'b', count: 2 },
        ],
        timeout: 5000,
        validateOnly: false,
      },
    ],
    requestOut: () => cpReq,
    responseOut: (v) => ({ ...kjsThrottle(v, 2, 0, 1), topicErrors: cpRes.results.map((r) => ({ topic: r.name, errorCode: r.errorCode, errorMessage: r.errorMessage })) }),
  },
};

// ---------------------------------------------------------------- DeleteGroups

const dlgReq: DeleteGroupsRequest = { groupsNames: ['g1', 'g2'] };
const dlgRes: DeleteGroupsResponse = {
  throttleTimeMs: 3,
  results: [
    { groupId: 'g1', errorCode: 0 },
    { groupId: 'g2', errorCode: 0 },
  ],
};

const deleteGroups: ApiCase = {
  name: 'DeleteGroups',
  request: deleteGroupsRequest,
  response: deleteGroupsResponse,
  requestIn: dlgReq,
  requestOut: () => dlgReq,
  responseIn: dlgRes,
  responseOut: () => dlgRes,
  kafkajs: {
    api: 'deleteGroups',
    versions: [0, 1],
    requestArgs: () => [['g1', 'g2']],
    requestOut: () => dlgReq,
    // kafkajs's v1 decoder looks for `throttleTime` where v0 decoded `throttleTimeMs`, so its client-side time is undefined.
    responseOut: (v) => ({ throttleTimeMs: 3, results: dlgRes.results, ...(v >= 1 ? { throttleTime: 0, clientSideThrottleTime: undefined } : {}) }),
  },
};

const cases: ApiCase[] = [joinGroup, heartbeat, leaveGroup, syncGroup, describeGroups, listGroups, saslHandshake, createTopics, deleteTopics, describeConfigs, alterConfigs, saslAuthenticate, createPartitions, deleteGroups];

const expectedVersions: Record<string, { key: number; max: number; flexible: string }> = {
  JoinGroup: { key: 11, max: 5, flexible: '6+' },
  Heartbeat: { key: 12, max: 3, flexible: '4+' },
  LeaveGroup: { key: 13, max: 3, flexible: '4+' },
  SyncGroup: { key: 14, max: 3, flexible: '4+' },
  DescribeGroups: { key: 15, max: 4, flexible: '5+' },
  ListGroups: { key: 16, max: 2, flexible: '3+' },
  SaslHandshake: { key: 17, max: 1, flexible: 'none' },
  CreateTopics: { key: 19, max: 4, flexible: '5+' },
  DeleteTopics: { key: 20, max: 3, flexible: '4+' },
  DescribeConfigs: { key: 32, max: 2, flexible: '4+' },
  AlterConfigs: { key: 33, max: 1, flexible: '2+' },
  SaslAuthenticate: { key: 36, max: 1, flexible: '2+' },
  CreatePartitions: { key: 37, max: 1, flexible: '2+' },
  DeleteGroups: { key: 42, max: 1, flexible: '2+' },
};

for (const c of cases) {
  describe(`${c.name} spec`, () => {
    const exp = expectedVersions[c.name]!;
    const max = parseVersions(c.request.validVersions)!.max;

    it('has the API key, version range and flexible versions of Kafka', () => {
      for (const spec of [c.request, c.response]) {
        assert.equal(spec.apiKey, exp.key);
        assert.equal(spec.validVersions, `0-${exp.max}`);
        assert.equal(spec.flexibleVersions, exp.flexible);
      }
      assert.equal(c.request.type, 'request');
      assert.equal(c.response.type, 'response');
      for (let v = 0; v <= max; v++) assert.equal(compileMessage(c.request, v).flexible, inVersions(exp.flexible, v));
    });

    for (let v = 0; v <= max; v++) {
      it(`request v${v} round trips`, () => {
        assert.deepEqual(roundTrip(c.request, v, c.requestIn), c.requestOut(v));
      });
      it(`response v${v} round trips`, () => {
        assert.deepEqual(roundTrip(c.response, v, c.responseIn), c.responseOut(v));
      });
    }

    for (const v of c.kafkajs.versions) {
      it(`request v${v} sent by kafkajs decodes`, async () => {
        const bytes = await kafkajsRequestBody(c.kafkajs.api, v, ...c.kafkajs.requestArgs(v));
        const decoded = decodeAll(c.request, v, bytes);
        assert.deepEqual(decoded, c.kafkajs.requestOut(v));
        assert.deepEqual(encode(c.request, v, decoded), bytes, 'we encode the same bytes kafkajs sent');
      });
      it(`response v${v} decodes in kafkajs`, async () => {
        const bytes = encode(c.response, v, c.responseIn);
        const decoded = await kafkajsResponse(c.kafkajs.api, v).decode(bytes);
        assert.deepEqual(decoded, c.kafkajs.responseOut(v));
      });
    }
  });
}

describe('admin specs: details', () => {
  it('JoinGroup v0 leaves the rebalance timeout at -1 and v1 carries it', () => {
    const v0 = encode(joinGroupRequest, 0, joinReq);
    const v1 = encode(joinGroupRequest, 1, joinReq);
    assert.equal(v1.length - v0.length, 4);
    assert.equal(decodeAll(joinGroupRequest, 0, v0)['rebalanceTimeoutMs'], -1);
  });

  it('a null group instance id travels as a null string (v5 JoinGroup, v3 Heartbeat)', () => {
    assert.equal(roundTrip(joinGroupRequest, 5, { ...joinReq, groupInstanceId: null })['groupInstanceId'], null);
    const hb = encode(heartbeatRequest, 3, { ...hbReq, groupInstanceId: null });
    assert.equal(hb.readInt16BE(hb.length - 2), -1);
  });

  it('DescribeConfigs keeps a null key list apart from an empty one', () => {
    const empty = roundTrip(describeConfigsRequest, 1, { resources: [{ resourceType: 2, resourceName: 'a', configurationKeys: [] }], includeSynonyms: false });
    assert.deepEqual((empty['resources'] as Obj[])[0]!['configurationKeys'], []);
    const all = roundTrip(describeConfigsRequest, 1, { resources: [{ resourceType: 2, resourceName: 'a', configurationKeys: null }], includeSynonyms: false });
    assert.equal((all['resources'] as Obj[])[0]!['configurationKeys'], null);
  });

  it('CreateTopics fills absent request fields with the spec defaults', () => {
    const w = new KafkaWriter();
    w.int32(0); // no topics
    w.int32(1234); // timeoutMs; v0 has no validateOnly
    assert.deepEqual(decodeAll(createTopicsRequest, 0, w.toBuffer()), { topics: [], timeoutMs: 1234, validateOnly: false });
  });

  it('CreatePartitions refuses a null broker id list (not nullable in the spec)', () => {
    const w = new KafkaWriter();
    w.int32(1); // one topic
    w.string('a');
    w.int32(2);
    w.int32(1); // one assignment
    w.int32(-1); // null brokerIds
    w.int32(5000);
    w.bool(false);
    assert.throws(() => decodeAll(createPartitionsRequest, 0, w.toBuffer()));
  });

  it('DescribeGroups answers INT32_MIN authorized operations by default from v3', () => {
    const out = roundTrip(describeGroupsResponse, 3, { throttleTimeMs: 0, groups: [{ errorCode: 0, groupId: 'g', groupState: 'Empty', protocolType: '', protocolData: '', members: [] }] });
    assert.equal((out['groups'] as Obj[])[0]!['authorizedOperations'], -2147483648);
  });

  it('SaslAuthenticate v1 response ends with the int64 session lifetime', () => {
    const bytes = encode(saslAuthenticateResponse, 1, saRes);
    assert.equal(bytes.readBigInt64BE(bytes.length - 8), 3_600_000n);
    assert.equal(encode(saslAuthenticateResponse, 0, saRes).length, bytes.length - 8);
  });
});
