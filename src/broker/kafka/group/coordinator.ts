/**
 * The consumer-group coordinator: the membership half of Kafka's
 * GroupCoordinator (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
 * DescribeGroups, ListGroups, DeleteGroups and the membership check of offset
 * commits), independent of the wire protocol.
 *
 * Everything runs synchronously on the event loop, so each method is atomic
 * with respect to the others (Kafka's group lock). Parked requests (a
 * JoinGroup waiting for the join phase to end, a SyncGroup waiting for the
 * leader's assignment) are promises resolved by later calls or by timers. The
 * only clock is the injected TimerPort: session expirations, the join phase's
 * rebalance timeout, the initial rebalance delay, pending-member and
 * pending-sync expirations all go through it.
 *
 * Choices where Kafka has several behaviours:
 * - Kafka 3.x semantics: static members that do not rejoin within the
 *   rebalance timeout are kept (only their session timeout removes them);
 *   dynamic ones are removed. Members that do not send SyncGroup within the
 *   rebalance timeout after the join phase are removed (Kafka 3.1+).
 * - A static member rejoining with an unknown member id while the group is
 *   Stable replaces the old member without a rebalance when the selected
 *   protocol would not change: it gets the current generation (with the old
 *   leader id, so it never acts as leader) and its SyncGroup returns the old
 *   member's assignment. The old member id is then fenced (FENCED_INSTANCE_ID).
 *   In CompletingRebalance (or when the protocol would change) it triggers a
 *   rebalance, as Kafka 3.x does.
 * - Heartbeats answer REBALANCE_IN_PROGRESS in CompletingRebalance too (the
 *   older broker behaviour; Kafka 2.5+ answers NONE there, and current clients
 *   ignore the error while awaiting SyncGroup), and reset the session timer.
 * - The initial rebalance delay applies whenever a join phase starts from
 *   Empty, and is extended (once per expiry, up to the rebalance timeout) when
 *   other members joined meanwhile, as Kafka's InitialDelayedJoin.
 * - A member removed while it has a parked JoinGroup or SyncGroup gets
 *   UNKNOWN_MEMBER_ID (Kafka leaves the SyncGroup unanswered).
 * - A member re-sending JoinGroup (SyncGroup) while one is still parked: the
 *   older request is answered with REBALANCE_IN_PROGRESS.
 * - Protocol votes: ties go to the protocol that first reached the winning
 *   count in member (join) order.
 * - Static member ids are `${groupInstanceId}-${uuid}` (as Kafka), dynamic
 *   ones `${clientId}-${uuid}`.
 * - close() answers parked requests with NOT_COORDINATOR (as Kafka does when
 *   a group is unloaded); calls after close() get COORDINATOR_NOT_AVAILABLE.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../protocol/errors.js';
import { GroupMetadata, MemberMetadata, type JoinCallback, type SyncCallback } from './group.js';
import type {
  DeleteGroupResult,
  DescribeGroupResult,
  GroupCoordinatorOptions,
  GroupOffsetsPort,
  GroupSnapshot,
  GroupState,
  GroupStateChange,
  HeartbeatParams,
  HeartbeatResult,
  JoinGroupParams,
  JoinGroupResult,
  LeaveGroupParams,
  LeaveGroupResult,
  ListGroupsResult,
  ListedGroup,
  SyncGroupParams,
  SyncGroupResult,
  TimerPort,
  ValidateCommitParams,
} from './types.js';

const EMPTY = Buffer.alloc(0);

export const GROUP_DEFAULTS = {
  minSessionTimeoutMs: 6000,
  maxSessionTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 0,
  maxGroupSize: Number.MAX_SAFE_INTEGER,
  newMemberJoinTimeoutMs: 5 * 60 * 1000,
} as const;

const NO_OFFSETS: GroupOffsetsPort = {
  offsetsExist: () => false,
  deleteOffsets: async () => {},
};

function joinError(memberId: string, errorCode: number): JoinGroupResult {
  return { errorCode, generationId: -1, protocolType: '', protocolName: '', leader: '', memberId, members: [] };
}

function syncError(errorCode: number): SyncGroupResult {
  return { errorCode, assignment: EMPTY, protocolType: '', protocolName: '' };
}

export class GroupCoordinator {
  private readonly timer: TimerPort;
  private readonly offsets: GroupOffsetsPort;
  private readonly minSessionTimeoutMs: number;
  private readonly maxSessionTimeoutMs: number;
  private readonly initialRebalanceDelayMs: number;
  private readonly maxGroupSize: number;
  private readonly newMemberJoinTimeoutMs: number;
  private readonly generateId: () => string;
  private readonly onStateChange: ((change: GroupStateChange) => void) | undefined;
  private readonly groupsById = new Map<string, GroupMetadata>();
  private closed = false;
  /** Why the next transition happens (for onStateChange). */
  private reason = '';

  constructor(options: GroupCoordinatorOptions) {
    this.timer = options.timer;
    this.offsets = options.offsets ?? NO_OFFSETS;
    this.minSessionTimeoutMs = options.minSessionTimeoutMs ?? GROUP_DEFAULTS.minSessionTimeoutMs;
    this.maxSessionTimeoutMs = options.maxSessionTimeoutMs ?? GROUP_DEFAULTS.maxSessionTimeoutMs;
    this.initialRebalanceDelayMs = options.initialRebalanceDelayMs ?? GROUP_DEFAULTS.initialRebalanceDelayMs;
    this.maxGroupSize = options.maxGroupSize ?? GROUP_DEFAULTS.maxGroupSize;
    this.newMemberJoinTimeoutMs = options.newMemberJoinTimeoutMs ?? GROUP_DEFAULTS.newMemberJoinTimeoutMs;
    this.generateId = options.generateId ?? randomUUID;
    this.onStateChange = options.onStateChange;
  }

  // ---------------------------------------------------------------- JoinGroup

  joinGroup(params: JoinGroupParams): Promise<JoinGroupResult> {
    return new Promise((resolve) => this.handleJoinGroup(params, resolve));
  }

  private handleJoinGroup(p: JoinGroupParams, respond: JoinCallback): void {
    if (this.closed) return respond(joinError(p.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
    if (p.groupId === '') return respond(joinError(p.memberId, ErrorCode.INVALID_GROUP_ID));
    if (p.sessionTimeoutMs < this.minSessionTimeoutMs || p.sessionTimeoutMs > this.maxSessionTimeoutMs) {
      return respond(joinError(p.memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
    }
    const params: JoinGroupParams = p.rebalanceTimeoutMs > 0 ? p : { ...p, rebalanceTimeoutMs: p.sessionTimeoutMs };
    const isUnknownMember = params.memberId === '';
    let group = this.groupsById.get(params.groupId);
    if (!group) {
      // Only a new member creates a group; a member id for an unknown group is stale.
      if (!isUnknownMember) return respond(joinError(params.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      group = this.createGroup(params.groupId);
    }
    if (isUnknownMember) {
      const replacesStatic = group.staticMemberId(params.groupInstanceId) !== undefined;
      if (!replacesStatic && group.size + group.pendingMembers.size >= this.maxGroupSize) {
        respond(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
      } else {
        this.doNewMemberJoin(group, params, respond);
      }
    } else {
      this.doCurrentMemberJoin(group, params, respond);
    }
    if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
    this.dropIfUnused(group);
  }

  private doNewMemberJoin(group: GroupMetadata, p: JoinGroupParams, respond: JoinCallback): void {
    if (group.is('Dead')) return respond(joinError('', ErrorCode.COORDINATOR_NOT_AVAILABLE));
    // A restarted static member's old incarnation does not count: it is being replaced.
    if (!group.supportsProtocols(p.protocolType, p.protocols, group.staticMemberId(p.groupInstanceId))) {
      return respond(joinError('', ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    const newMemberId = `${p.groupInstanceId ?? p.clientId}-${this.generateId()}`;
    if (p.groupInstanceId !== null) {
      const oldMemberId = group.staticMemberId(p.groupInstanceId);
      if (oldMemberId !== undefined) {
        this.updateStaticMemberAndRebalance(group, oldMemberId, newMemberId, p, respond);
      } else {
        this.addMemberAndRebalance(group, newMemberId, p, respond);
      }
    } else if (p.requireKnownMemberId) {
      // Register the id and ask the client to come back with it (KIP-394).
      group.pendingMembers.set(
        newMemberId,
        this.timer.setTimeout(() => this.onPendingMemberExpired(group, newMemberId), p.sessionTimeoutMs),
      );
      respond(joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED));
    } else {
      this.addMemberAndRebalance(group, newMemberId, p, respond);
    }
  }

  private doCurrentMemberJoin(group: GroupMetadata, p: JoinGroupParams, respond: JoinCallback): void {
    const memberId = p.memberId;
    if (group.is('Dead')) return respond(joinError(memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
    if (!group.supportsProtocols(p.protocolType, p.protocols, memberId)) {
      return respond(joinError(memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    const pending = group.pendingMembers.get(memberId);
    if (pending) {
      pending.cancel();
      group.pendingMembers.delete(memberId);
      // Pending ids are only handed to dynamic members.
      if (p.groupInstanceId !== null) return respond(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      return this.addMemberAndRebalance(group, memberId, p, respond);
    }
    if (group.isStaticMemberFenced(memberId, p.groupInstanceId)) {
      return respond(joinError(memberId, ErrorCode.FENCED_INSTANCE_ID));
    }
    const member = group.get(memberId);
    const instanceUnknown = p.groupInstanceId !== null && group.staticMemberId(p.groupInstanceId) === undefined;
    if (!member || instanceUnknown) return respond(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));

    switch (group.state) {
      case 'PreparingRebalance':
        this.updateMember(group, member, p, respond);
        this.maybePrepareRebalance(group, `member ${memberId} rejoined`);
        return;
      case 'CompletingRebalance':
        if (member.matches(p.protocols)) {
          // It missed the JoinGroup answer: answer again for the current generation.
          this.scheduleSession(group, member);
          return respond(this.joinResult(group, member, group.isLeader(memberId)));
        }
        this.updateMember(group, member, p, respond);
        this.maybePrepareRebalance(group, `member ${memberId} changed its metadata`);
        return;
      case 'Stable':
        if (group.isLeader(memberId) || !member.matches(p.protocols)) {
          // The leader may rejoin to force a rebalance (e.g. topic metadata changes).
          this.updateMember(group, member, p, respond);
          this.maybePrepareRebalance(group, `member ${memberId} rejoined a stable group`);
          return;
        }
        this.scheduleSession(group, member);
        return respond(this.joinResult(group, member, false));
      case 'Empty':
      case 'Dead':
        return respond(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
    }
  }

  private joinResult(group: GroupMetadata, member: MemberMetadata, withMembers: boolean, leader?: string): JoinGroupResult {
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType ?? '',
      protocolName: group.protocolName ?? '',
      leader: leader ?? group.leaderId ?? '',
      memberId: member.memberId,
      members: withMembers ? group.currentMemberMetadata() : [],
    };
  }

  private addMemberAndRebalance(group: GroupMetadata, memberId: string, p: JoinGroupParams, respond: JoinCallback): void {
    const member = new MemberMetadata(
      memberId,
      p.groupInstanceId,
      p.clientId,
      p.clientHost,
      p.rebalanceTimeoutMs,
      p.sessionTimeoutMs,
      p.protocolType,
      p.protocols,
    );
    member.isNew = true;
    // A member joining during the initial delay extends it.
    if (group.is('PreparingRebalance') && group.generationId === 0) group.newMemberAdded = true;
    group.add(member);
    member.awaitingJoin = respond;
    // A new member cannot heartbeat while its JoinGroup is parked: bound its wait instead.
    this.scheduleExpiration(group, member, this.newMemberJoinTimeoutMs);
    this.maybePrepareRebalance(group, `new member ${memberId} joined`);
  }

  private updateMember(group: GroupMetadata, member: MemberMetadata, p: JoinGroupParams, respond: JoinCallback | null): void {
    member.protocols = p.protocols;
    member.protocolType = p.protocolType;
    if (group.size === 1) group.protocolType = p.protocolType;
    member.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    member.sessionTimeoutMs = p.sessionTimeoutMs;
    member.clientId = p.clientId;
    member.clientHost = p.clientHost;
    const superseded = member.awaitingJoin;
    member.awaitingJoin = respond;
    if (superseded && superseded !== respond) superseded(joinError(member.memberId, ErrorCode.REBALANCE_IN_PROGRESS));
  }

  private updateStaticMemberAndRebalance(
    group: GroupMetadata,
    oldMemberId: string,
    newMemberId: string,
    p: JoinGroupParams,
    respond: JoinCallback,
  ): void {
    const currentLeader = group.leaderId ?? '';
    const { member, oldJoin, oldSync } = group.replaceStaticMember(p.groupInstanceId!, oldMemberId, newMemberId);
    oldJoin?.(joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID));
    oldSync?.(syncError(ErrorCode.FENCED_INSTANCE_ID));
    this.updateMember(group, member, p, respond);
    this.scheduleSession(group, member);
    switch (group.state) {
      case 'Stable':
        if (group.selectProtocol() === group.protocolName) {
          // No rebalance: the new incarnation takes over the old one's assignment. The old
          // leader id is returned so that it never believes it is the leader.
          member.awaitingJoin = null;
          respond(this.joinResult(group, member, false, currentLeader));
        } else {
          this.maybePrepareRebalance(group, `static member ${p.groupInstanceId} rejoined with other protocols`);
        }
        return;
      case 'CompletingRebalance':
        this.maybePrepareRebalance(group, `static member ${p.groupInstanceId} rejoined during CompletingRebalance`);
        return;
      case 'PreparingRebalance':
        return; // the join phase completes with it
      case 'Empty':
      case 'Dead':
        throw new Error(`group ${group.groupId}: static member in state ${group.state}`);
    }
  }

  // ---------------------------------------------------------------- rebalance

  private maybePrepareRebalance(group: GroupMetadata, reason: string): void {
    if (group.canRebalance()) this.prepareRebalance(group, reason);
  }

  private prepareRebalance(group: GroupMetadata, reason: string): void {
    // Members awaiting the leader's assignment must rejoin.
    if (group.is('CompletingRebalance')) this.resetAndPropagateAssignmentError(group, ErrorCode.REBALANCE_IN_PROGRESS);
    this.cancelSyncTimer(group);
    group.pendingSyncMembers.clear();
    group.joinTimer?.cancel();
    const wasEmpty = group.is('Empty');
    this.transition(group, 'PreparingRebalance', reason);
    if (wasEmpty && this.initialRebalanceDelayMs > 0) {
      const remaining = Math.max(group.rebalanceTimeoutMs() - this.initialRebalanceDelayMs, 0);
      group.newMemberAdded = false;
      group.initialDelayActive = true;
      this.scheduleInitialDelay(group, this.initialRebalanceDelayMs, remaining);
    } else {
      group.initialDelayActive = false;
      this.scheduleJoinTimeout(group);
      this.tryCompleteJoin(group);
    }
  }

  /** Kafka's InitialDelayedJoin: waits `delay`, extended while new members keep arriving. */
  private scheduleInitialDelay(group: GroupMetadata, delayMs: number, remainingMs: number): void {
    group.joinTimer = this.timer.setTimeout(() => {
      group.joinTimer = null;
      if (!group.is('PreparingRebalance')) return;
      if (group.newMemberAdded && remainingMs > 0) {
        group.newMemberAdded = false;
        const delay = Math.min(this.initialRebalanceDelayMs, remainingMs);
        this.scheduleInitialDelay(group, delay, Math.max(remainingMs - this.initialRebalanceDelayMs, 0));
      } else {
        group.initialDelayActive = false;
        this.completeJoin(group);
      }
    }, delayMs);
  }

  /** Kafka's DelayedJoin: the join phase ends at the latest after the rebalance timeout. */
  private scheduleJoinTimeout(group: GroupMetadata): void {
    group.joinTimer?.cancel();
    group.joinTimer = this.timer.setTimeout(() => {
      group.joinTimer = null;
      if (group.is('PreparingRebalance')) this.completeJoin(group);
    }, group.rebalanceTimeoutMs());
  }

  private tryCompleteJoin(group: GroupMetadata): void {
    if (!group.is('PreparingRebalance') || group.initialDelayActive) return;
    if (group.hasAllMembersJoined()) this.completeJoin(group);
  }

  private completeJoin(group: GroupMetadata): void {
    group.joinTimer?.cancel();
    group.joinTimer = null;
    // Dynamic members that did not rejoin in time are removed; static ones stay until their session expires.
    for (const failed of group.notYetRejoinedMembers()) {
      if (failed.isStatic) continue;
      this.dropMember(group, failed, ErrorCode.UNKNOWN_MEMBER_ID);
    }
    if (group.is('Dead')) return;
    if (!group.maybeElectNewJoinedLeader() && group.size > 0) {
      // Only static members that did not rejoin: wait for them (or their session expiry).
      this.scheduleJoinTimeout(group);
      return;
    }
    this.reason = 'join phase completed';
    group.initNextGeneration();
    if (group.is('Empty')) return;
    const leaderMembers = group.currentMemberMetadata();
    for (const member of group.allMembers()) {
      const respond = member.awaitingJoin;
      member.awaitingJoin = null;
      const isLeader = group.isLeader(member.memberId);
      if (respond) respond({ ...this.joinResult(group, member, false), members: isLeader ? leaderMembers : [] });
      this.scheduleSession(group, member);
      member.isNew = false;
      group.pendingSyncMembers.add(member.memberId);
    }
    this.schedulePendingSync(group);
  }

  /** Members that do not send SyncGroup within the rebalance timeout are removed (Kafka 3.1+). */
  private schedulePendingSync(group: GroupMetadata): void {
    this.cancelSyncTimer(group);
    const generation = group.generationId;
    group.syncTimer = this.timer.setTimeout(() => {
      group.syncTimer = null;
      if (generation !== group.generationId) return;
      if (!group.is('CompletingRebalance') && !group.is('Stable')) return;
      if (group.pendingSyncMembers.size === 0) return;
      for (const memberId of [...group.pendingSyncMembers]) {
        const member = group.get(memberId);
        if (member) this.dropMember(group, member, ErrorCode.UNKNOWN_MEMBER_ID);
      }
      this.maybePrepareRebalance(group, 'members did not send SyncGroup in time');
    }, group.rebalanceTimeoutMs());
  }

  private cancelSyncTimer(group: GroupMetadata): void {
    group.syncTimer?.cancel();
    group.syncTimer = null;
  }

  private resetAndPropagateAssignmentError(group: GroupMetadata, errorCode: number): void {
    for (const member of group.allMembers()) member.assignment = EMPTY;
    this.propagateAssignment(group, errorCode);
  }

  private propagateAssignment(group: GroupMetadata, errorCode: number): void {
    for (const member of group.allMembers()) {
      const respond = member.awaitingSync;
      if (!respond) continue;
      member.awaitingSync = null;
      respond(
        errorCode === ErrorCode.NONE
          ? { errorCode, assignment: member.assignment, protocolType: group.protocolType ?? '', protocolName: group.protocolName ?? '' }
          : syncError(errorCode),
      );
      // Sessions do not run while a SyncGroup is parked: restart them now.
      this.scheduleSession(group, member);
    }
  }

  // ---------------------------------------------------------------- membership removal and timers

  /** Removes a member, answering its parked requests, and moves the group on. */
  private removeMemberAndUpdateGroup(group: GroupMetadata, member: MemberMetadata, reason: string): void {
    this.dropMember(group, member, ErrorCode.UNKNOWN_MEMBER_ID);
    switch (group.state) {
      case 'Stable':
      case 'CompletingRebalance':
        this.maybePrepareRebalance(group, reason);
        break;
      case 'PreparingRebalance':
        this.tryCompleteJoin(group);
        break;
      case 'Empty':
      case 'Dead':
        break;
    }
  }

  private dropMember(group: GroupMetadata, member: MemberMetadata, errorCode: number): void {
    member.cancelTimer();
    group.remove(member.memberId);
    const join = member.awaitingJoin;
    const sync = member.awaitingSync;
    member.awaitingJoin = null;
    member.awaitingSync = null;
    join?.(joinError('', errorCode));
    sync?.(syncError(errorCode));
  }

  private scheduleSession(group: GroupMetadata, member: MemberMetadata): void {
    this.scheduleExpiration(group, member, member.sessionTimeoutMs);
  }

  private scheduleExpiration(group: GroupMetadata, member: MemberMetadata, timeoutMs: number): void {
    member.cancelTimer();
    member.lastHeartbeatMs = this.timer.now();
    const deadline = member.lastHeartbeatMs + timeoutMs;
    member.timer = this.timer.setTimeout(() => {
      member.timer = null;
      this.onMemberExpired(group, member, deadline);
    }, timeoutMs);
  }

  private onMemberExpired(group: GroupMetadata, member: MemberMetadata, deadline: number): void {
    if (group.get(member.memberId) !== member) return; // removed or replaced meanwhile
    // Kafka's shouldKeepAlive: a parked JoinGroup keeps a known member alive (the join phase
    // ends by the rebalance timeout, then sessions restart), a parked SyncGroup too.
    if (member.awaitingJoin && !(member.isNew && member.lastHeartbeatMs + this.newMemberJoinTimeoutMs <= deadline)) return;
    if (member.awaitingSync) return;
    this.removeMemberAndUpdateGroup(group, member, `member ${member.memberId} session expired`);
    this.dropIfUnused(group);
  }

  private onPendingMemberExpired(group: GroupMetadata, memberId: string): void {
    if (!group.pendingMembers.delete(memberId)) return;
    if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
    this.dropIfUnused(group);
  }

  // ---------------------------------------------------------------- SyncGroup

  syncGroup(params: SyncGroupParams): Promise<SyncGroupResult> {
    return new Promise((resolve) => this.handleSyncGroup(params, resolve));
  }

  private handleSyncGroup(p: SyncGroupParams, respond: SyncCallback): void {
    if (this.closed) return respond(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
    if (p.groupId === '') return respond(syncError(ErrorCode.INVALID_GROUP_ID));
    const group = this.groupsById.get(p.groupId);
    if (!group) return respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    if (group.is('Dead')) return respond(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
    if (group.isStaticMemberFenced(p.memberId, p.groupInstanceId)) return respond(syncError(ErrorCode.FENCED_INSTANCE_ID));
    const member = group.get(p.memberId);
    if (!member) return respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    if (p.generationId !== group.generationId) return respond(syncError(ErrorCode.ILLEGAL_GENERATION));
    if (p.protocolType != null && p.protocolType !== group.protocolType) {
      return respond(syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    if (p.protocolName != null && p.protocolName !== group.protocolName) {
      return respond(syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    switch (group.state) {
      case 'Empty':
        return respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      case 'PreparingRebalance':
        return respond(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      case 'CompletingRebalance': {
        const superseded = member.awaitingSync;
        member.awaitingSync = respond;
        if (superseded) superseded(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
        this.removePendingSync(group, p.memberId);
        if (group.isLeader(p.memberId)) {
          // Members the leader left out get an empty assignment; unknown ids are ignored.
          const given = new Map(p.assignments.map((a) => [a.memberId, a.assignment]));
          for (const m of group.allMembers()) m.assignment = given.get(m.memberId) ?? EMPTY;
          this.transition(group, 'Stable', `leader ${p.memberId} sent the assignment`);
          this.propagateAssignment(group, ErrorCode.NONE);
        }
        return;
      }
      case 'Stable':
        this.removePendingSync(group, p.memberId);
        this.scheduleSession(group, member);
        return respond({
          errorCode: ErrorCode.NONE,
          assignment: member.assignment,
          protocolType: group.protocolType ?? '',
          protocolName: group.protocolName ?? '',
        });
      case 'Dead':
        return respond(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
    }
  }

  private removePendingSync(group: GroupMetadata, memberId: string): void {
    group.pendingSyncMembers.delete(memberId);
    if (group.pendingSyncMembers.size === 0) this.cancelSyncTimer(group);
  }

  // ---------------------------------------------------------------- Heartbeat

  async heartbeat(p: HeartbeatParams): Promise<HeartbeatResult> {
    return { errorCode: this.handleHeartbeat(p) };
  }

  private handleHeartbeat(p: HeartbeatParams): number {
    if (this.closed) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (p.groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const group = this.groupsById.get(p.groupId);
    if (!group) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (group.is('Dead')) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (group.isStaticMemberFenced(p.memberId, p.groupInstanceId)) return ErrorCode.FENCED_INSTANCE_ID;
    const member = group.get(p.memberId);
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (p.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    switch (group.state) {
      case 'Empty':
      case 'Dead':
        return ErrorCode.UNKNOWN_MEMBER_ID;
      case 'PreparingRebalance':
      case 'CompletingRebalance':
        this.scheduleSession(group, member);
        return ErrorCode.REBALANCE_IN_PROGRESS;
      case 'Stable':
        this.scheduleSession(group, member);
        return ErrorCode.NONE;
    }
  }

  // ---------------------------------------------------------------- LeaveGroup

  async leaveGroup(p: LeaveGroupParams): Promise<LeaveGroupResult> {
    if (this.closed) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
    if (p.groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, members: [] };
    const group = this.groupsById.get(p.groupId);
    if (!group) {
      return { errorCode: ErrorCode.NONE, members: p.members.map((m) => ({ ...m, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })) };
    }
    if (group.is('Dead')) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
    const members = p.members.map((m) => ({ ...m, errorCode: this.leaveOne(group, m.memberId, m.groupInstanceId) }));
    this.dropIfUnused(group);
    return { errorCode: ErrorCode.NONE, members };
  }

  private leaveOne(group: GroupMetadata, memberId: string, groupInstanceId: string | null): number {
    if (memberId !== '' && group.isStaticMemberFenced(memberId, groupInstanceId)) return ErrorCode.FENCED_INSTANCE_ID;
    const pending = group.pendingMembers.get(memberId);
    if (pending) {
      pending.cancel();
      group.pendingMembers.delete(memberId);
      if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
      return ErrorCode.NONE;
    }
    // By instance id (admin removal of static members sends memberId ''), else by member id.
    const staticId = group.staticMemberId(groupInstanceId);
    const member = group.get(staticId ?? memberId);
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.removeMemberAndUpdateGroup(group, member, `member ${member.memberId} left`);
    return ErrorCode.NONE;
  }

  // ---------------------------------------------------------------- offset commits

  /**
   * Whether an OffsetCommit (or TxnOffsetCommit) with this membership
   * information may be stored (Kafka's validateOffsetCommit plus the state
   * check of doCommitOffsets). A valid commit by a member counts as a heartbeat.
   */
  validateCommit(p: ValidateCommitParams): number {
    if (this.closed) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const hasMemberInfo = p.generationId >= 0 || p.memberId !== '' || p.groupInstanceId !== null;
    const group = this.groupsById.get(p.groupId);
    if (!group) {
      // A group not using group management, or a commit from a long-gone generation.
      if (p.generationId >= 0) return ErrorCode.ILLEGAL_GENERATION;
      if (hasMemberInfo) return ErrorCode.UNKNOWN_MEMBER_ID;
      this.createGroup(p.groupId); // it now exists (Empty), as in Kafka
      return ErrorCode.NONE;
    }
    if (group.is('Dead')) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (hasMemberInfo) {
      if (group.isStaticMemberFenced(p.memberId, p.groupInstanceId)) return ErrorCode.FENCED_INSTANCE_ID;
      const member = group.get(p.memberId);
      if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
      if (p.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
      if (p.transactional) return ErrorCode.NONE;
      switch (group.state) {
        case 'Stable':
        case 'PreparingRebalance':
          // The heartbeat answer tells the member about a rebalance; the commit is accepted.
          this.scheduleSession(group, member);
          return ErrorCode.NONE;
        case 'CompletingRebalance':
          return ErrorCode.REBALANCE_IN_PROGRESS;
        default:
          return ErrorCode.UNKNOWN_MEMBER_ID;
      }
    }
    // A standalone commit: only while nobody uses the group for membership.
    if (!p.transactional && !group.is('Empty')) return ErrorCode.UNKNOWN_MEMBER_ID;
    return ErrorCode.NONE;
  }

  // ---------------------------------------------------------------- admin

  /** DescribeGroups for one group (synchronous: a read of in-memory state). */
  describeGroup(groupId: string): DescribeGroupResult {
    const base = { groupId, protocolType: '', protocolData: '', members: [] };
    if (this.closed) return { ...base, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, groupState: '' };
    const group = this.groupsById.get(groupId);
    if (!group) {
      return { ...base, errorCode: ErrorCode.NONE, groupState: this.offsets.offsetsExist(groupId) ? 'Empty' : 'Dead' };
    }
    const stable = group.is('Stable');
    const protocol = group.protocolName ?? '';
    return {
      errorCode: ErrorCode.NONE,
      groupId,
      groupState: group.state,
      protocolType: group.protocolType ?? '',
      protocolData: stable ? protocol : '',
      members: group.allMembers().map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: stable ? m.metadataFor(protocol) : EMPTY,
        memberAssignment: stable ? m.assignment : EMPTY,
      })),
    };
  }

  /** ListGroups (synchronous); `statesFilter` (v4+) keeps groups in these states (case-insensitive), all when empty. */
  listGroups(statesFilter: readonly string[] = []): ListGroupsResult {
    if (this.closed) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, groups: [] };
    const listed = new Map<string, ListedGroup>();
    for (const g of this.groupsById.values()) {
      listed.set(g.groupId, { groupId: g.groupId, protocolType: g.protocolType ?? '', groupState: g.state });
    }
    for (const id of this.offsets.groupIdsWithOffsets?.() ?? []) {
      if (!listed.has(id)) listed.set(id, { groupId: id, protocolType: '', groupState: 'Empty' });
    }
    const wanted = new Set(statesFilter.map((s) => s.toLowerCase()));
    const groups = [...listed.values()].filter((g) => wanted.size === 0 || wanted.has(g.groupState.toLowerCase()));
    return { errorCode: ErrorCode.NONE, groups };
  }

  /** DeleteGroups: only Empty groups (or groups known only by their offsets); their offsets go too. */
  async deleteGroups(groupIds: readonly string[]): Promise<DeleteGroupResult[]> {
    const results: DeleteGroupResult[] = [];
    const toDelete: string[] = [];
    for (const groupId of groupIds) {
      if (this.closed) {
        results.push({ groupId, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE });
        continue;
      }
      const group = this.groupsById.get(groupId);
      if (!group || group.is('Dead')) {
        if (this.offsets.offsetsExist(groupId)) toDelete.push(groupId);
        else results.push({ groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND });
        continue;
      }
      if (!group.is('Empty')) {
        results.push({ groupId, errorCode: ErrorCode.NON_EMPTY_GROUP });
        continue;
      }
      // Synchronously, before any await: no join can slip in.
      this.transition(group, 'Dead', 'deleted');
      this.disposeGroup(group);
      toDelete.push(groupId);
    }
    for (const groupId of toDelete) {
      try {
        await this.offsets.deleteOffsets(groupId);
        results.push({ groupId, errorCode: ErrorCode.NONE });
      } catch {
        results.push({ groupId, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR });
      }
    }
    // Answer in request order.
    const order = new Map(groupIds.map((id, i) => [id, i]));
    return results.sort((a, b) => (order.get(a.groupId) ?? 0) - (order.get(b.groupId) ?? 0));
  }

  /** Forgets Empty groups that have no committed offsets (Kafka's group metadata expiration). */
  purgeEmptyGroups(): string[] {
    const purged: string[] = [];
    for (const group of [...this.groupsById.values()]) {
      if (group.is('Empty') && group.pendingMembers.size === 0 && !this.offsets.offsetsExist(group.groupId)) {
        this.transition(group, 'Dead', 'expired');
        this.disposeGroup(group);
        purged.push(group.groupId);
      }
    }
    return purged;
  }

  /** A snapshot of every group for the admin API and metrics. */
  groups(): GroupSnapshot[] {
    return [...this.groupsById.values()].map((g) => {
      const protocol = g.protocolName ?? '';
      return {
        groupId: g.groupId,
        state: g.state,
        protocolType: g.protocolType ?? '',
        protocolName: protocol,
        generationId: g.generationId,
        leader: g.leaderId ?? '',
        members: g.allMembers().map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          sessionTimeoutMs: m.sessionTimeoutMs,
          rebalanceTimeoutMs: m.rebalanceTimeoutMs,
          protocols: m.protocols.map((x) => x.name),
          metadataBytes: protocol === '' ? 0 : m.metadataFor(protocol).length,
          assignmentBytes: m.assignment.length,
          lastHeartbeatMs: m.lastHeartbeatMs,
          awaitingJoin: m.awaitingJoin !== null,
          awaitingSync: m.awaitingSync !== null,
          isLeader: g.leaderId === m.memberId,
        })),
        pendingMembers: [...g.pendingMembers.keys()],
      };
    });
  }

  /** Stops the coordinator: timers cancelled, parked requests answered with NOT_COORDINATOR. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const group of [...this.groupsById.values()]) {
      for (const member of group.allMembers()) {
        const join = member.awaitingJoin;
        const sync = member.awaitingSync;
        member.awaitingJoin = null;
        member.awaitingSync = null;
        join?.(joinError(member.memberId, ErrorCode.NOT_COORDINATOR));
        sync?.(syncError(ErrorCode.NOT_COORDINATOR));
      }
      this.disposeGroup(group);
    }
  }

  // ---------------------------------------------------------------- helpers

  private createGroup(groupId: string): GroupMetadata {
    const group = new GroupMetadata(groupId, (from, to) => {
      const reason = this.reason;
      this.reason = '';
      this.onStateChange?.({ groupId, from, to, generationId: group.generationId, reason });
    });
    this.groupsById.set(groupId, group);
    return group;
  }

  private transition(group: GroupMetadata, to: GroupState, reason: string): void {
    this.reason = reason;
    group.transitionTo(to);
  }

  /** Cancels every timer of the group and forgets it. */
  private disposeGroup(group: GroupMetadata): void {
    group.joinTimer?.cancel();
    group.joinTimer = null;
    this.cancelSyncTimer(group);
    for (const t of group.pendingMembers.values()) t.cancel();
    group.pendingMembers.clear();
    for (const m of group.allMembers()) m.cancelTimer();
    if (this.groupsById.get(group.groupId) === group) this.groupsById.delete(group.groupId);
  }

  /**
   * A group that never had a member (generation 0, Empty, no pending member) was only created by
   * a failed join: forget it. Groups that had members stay (Empty, with their generation).
   */
  private dropIfUnused(group: GroupMetadata): void {
    if (group.is('Empty') && group.generationId === 0 && group.size === 0 && group.pendingMembers.size === 0) {
      if (!this.offsets.offsetsExist(group.groupId)) this.disposeGroup(group);
    }
  }
}
