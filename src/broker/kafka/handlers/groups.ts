/**
 * Consumer groups on the wire: JoinGroup (v0-5), SyncGroup (v0-3), Heartbeat
 * (v0-3), LeaveGroup (v0-3), DescribeGroups (v0-4), ListGroups (v0-2),
 * DeleteGroups (v0-1), translated to and from the protocol-independent
 * coordinator in ../group/. A group is served by the broker FindCoordinator
 * names; others answer NOT_COORDINATOR so clients look again.
 */
import type { KafkaClientContext } from '../connection.js';
import type { KafkaDeps } from '../deps.js';
import { ErrorCode } from '../protocol/errors.js';
import { AUTHORIZED_OPERATIONS_OMITTED } from '../protocol/requests/describe-groups.js';
import type { DeleteGroupsRequest, DeleteGroupsResponse } from '../protocol/requests/delete-groups.js';
import type { DescribeGroupsRequest, DescribeGroupsResponse } from '../protocol/requests/describe-groups.js';
import type { HeartbeatRequest, HeartbeatResponse } from '../protocol/requests/heartbeat.js';
import type { JoinGroupRequest, JoinGroupResponse } from '../protocol/requests/join-group.js';
import type { LeaveGroupRequest, LeaveGroupResponse } from '../protocol/requests/leave-group.js';
import type { ListGroupsResponse } from '../protocol/requests/list-groups.js';
import type { SyncGroupRequest, SyncGroupResponse } from '../protocol/requests/sync-group.js';
import { coordinatorError } from './topics.js';


export async function handleJoinGroup(deps: KafkaDeps, ctx: KafkaClientContext, version: number, req: JoinGroupRequest): Promise<JoinGroupResponse> {
  const refused = coordinatorError(deps, req.groupId);
  if (refused !== undefined) return { throttleTimeMs: 0, errorCode: refused, generationId: -1, protocolName: '', leader: '', memberId: req.memberId, members: [] };
  const r = await deps.groups.joinGroup({
    groupId: req.groupId,
    sessionTimeoutMs: req.sessionTimeoutMs,
    rebalanceTimeoutMs: version >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
    memberId: req.memberId,
    groupInstanceId: version >= 5 ? req.groupInstanceId : null,
    protocolType: req.protocolType,
    protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
    clientId: ctx.clientId,
    clientHost: `/${ctx.remoteAddress}`,
    requireKnownMemberId: version >= 4,
  });
  if (r.errorCode !== ErrorCode.NONE && r.errorCode !== ErrorCode.MEMBER_ID_REQUIRED) deps.metrics.errorAnswered('JoinGroup');
  return {
    throttleTimeMs: 0,
    errorCode: r.errorCode,
    generationId: r.generationId,
    protocolName: r.protocolName,
    leader: r.leader,
    memberId: r.memberId,
    members: r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata: m.metadata })),
  };
}

export async function handleSyncGroup(deps: KafkaDeps, req: SyncGroupRequest): Promise<SyncGroupResponse> {
  const refused = coordinatorError(deps, req.groupId);
  if (refused !== undefined) return { throttleTimeMs: 0, errorCode: refused, assignment: Buffer.alloc(0) };
  const r = await deps.groups.syncGroup({ groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, groupInstanceId: req.groupInstanceId, assignments: req.assignments });
  if (r.errorCode !== ErrorCode.NONE) deps.metrics.errorAnswered('SyncGroup');
  return { throttleTimeMs: 0, errorCode: r.errorCode, assignment: r.assignment };
}

export async function handleHeartbeat(deps: KafkaDeps, req: HeartbeatRequest): Promise<HeartbeatResponse> {
  const refused = coordinatorError(deps, req.groupId);
  if (refused !== undefined) return { throttleTimeMs: 0, errorCode: refused };
  const r = await deps.groups.heartbeat({ groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, groupInstanceId: req.groupInstanceId });
  return { throttleTimeMs: 0, errorCode: r.errorCode };
}

export async function handleLeaveGroup(deps: KafkaDeps, version: number, req: LeaveGroupRequest): Promise<LeaveGroupResponse> {
  const refused = coordinatorError(deps, req.groupId);
  if (refused !== undefined) return { throttleTimeMs: 0, errorCode: refused, members: [] };
  const members = version >= 3 ? req.members : [{ memberId: req.memberId, groupInstanceId: null }];
  const r = await deps.groups.leaveGroup({ groupId: req.groupId, members });
  // Before v3 there is one member and one error code to tell it.
  const errorCode = version >= 3 || r.errorCode !== ErrorCode.NONE ? r.errorCode : (r.members[0]?.errorCode ?? ErrorCode.NONE);
  return { throttleTimeMs: 0, errorCode, members: r.members };
}

export function handleDescribeGroups(deps: KafkaDeps, req: DescribeGroupsRequest): DescribeGroupsResponse {
  return {
    throttleTimeMs: 0,
    groups: req.groups.map((groupId) => {
      const refused = coordinatorError(deps, groupId);
      if (refused !== undefined) return { errorCode: refused, groupId, groupState: '', protocolType: '', protocolData: '', members: [], authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED };
      const g = deps.groups.describeGroup(groupId);
      return { ...g, groupState: g.groupState === '' ? 'Dead' : g.groupState, authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED };
    }),
  };
}

export function handleListGroups(deps: KafkaDeps): ListGroupsResponse {
  const r = deps.groups.listGroups();
  // Groups led by other brokers' coordinators are theirs to list (clients ask every broker).
  const mine = r.groups.filter((g) => deps.meta.coordinatorFor(g.groupId)?.nodeId === deps.meta.nodeId);
  return { throttleTimeMs: 0, errorCode: r.errorCode, groups: mine.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType })) };
}

export async function handleDeleteGroups(deps: KafkaDeps, req: DeleteGroupsRequest): Promise<DeleteGroupsResponse> {
  const local: string[] = [];
  const results: DeleteGroupsResponse['results'] = [];
  for (const groupId of req.groupsNames) {
    const refused = coordinatorError(deps, groupId);
    if (refused !== undefined) results.push({ groupId, errorCode: refused });
    else local.push(groupId);
  }
  if (local.length > 0) results.push(...(await deps.groups.deleteGroups(local)));
  return { throttleTimeMs: 0, results };
}
