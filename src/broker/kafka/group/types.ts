/**
 * Types of the consumer-group coordinator: its ports (clock/timers, committed
 * offsets), its options, and the requests and results of its methods. The
 * coordinator is protocol independent: the Kafka request handlers translate
 * wire messages to these shapes and back.
 */

/** A scheduled callback that can be cancelled (idempotent). */
export interface TimerHandle {
  cancel(): void;
}

/**
 * The coordinator's only access to time: tests inject a fake one, the server
 * the system one (see timer.ts).
 */
export interface TimerPort {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** Committed offsets live elsewhere; the coordinator only asks about them. */
export interface GroupOffsetsPort {
  /** Whether the group has committed offsets (a group known only through its offsets). */
  offsetsExist(groupId: string): boolean;
  /** Removes every committed offset of the group (DeleteGroups). */
  deleteOffsets(groupId: string): Promise<void>;
  /** Optional: the ids of groups that have committed offsets, listed by ListGroups as Empty groups. */
  groupIdsWithOffsets?(): Iterable<string>;
}

/** Kafka's group states, spelled as DescribeGroups/ListGroups report them. */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface GroupStateChange {
  groupId: string;
  from: GroupState;
  to: GroupState;
  generationId: number;
  reason: string;
}

export interface GroupCoordinatorOptions {
  timer: TimerPort;
  offsets?: GroupOffsetsPort;
  /** group.min.session.timeout.ms (Kafka: 6000). */
  minSessionTimeoutMs?: number;
  /** group.max.session.timeout.ms (Kafka: 1800000). */
  maxSessionTimeoutMs?: number;
  /** group.initial.rebalance.delay.ms (Kafka: 3000; default here 0). */
  initialRebalanceDelayMs?: number;
  /** group.max.size (Kafka: Int.MaxValue). */
  maxGroupSize?: number;
  /** How long a new member's parked JoinGroup keeps it alive (Kafka: 5 minutes). */
  newMemberJoinTimeoutMs?: number;
  /** Generates the random part of member ids (default crypto.randomUUID). */
  generateId?: () => string;
  /** Observability hook: every state transition of every group. */
  onStateChange?: (change: GroupStateChange) => void;
}

export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinGroupParams {
  groupId: string;
  sessionTimeoutMs: number;
  /** JoinGroup v1+; a value <= 0 (v0 sends none) means "use sessionTimeoutMs". */
  rebalanceTimeoutMs: number;
  /** '' for a new member. */
  memberId: string;
  /** Static membership (JoinGroup v5+); null for a dynamic member. */
  groupInstanceId: string | null;
  protocolType: string;
  /** In the member's order of preference. */
  protocols: GroupProtocol[];
  clientId: string;
  clientHost: string;
  /** JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id. */
  requireKnownMemberId: boolean;
}

export interface JoinGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  metadata: Buffer;
}

export interface JoinGroupResult {
  errorCode: number;
  /** -1 on error. */
  generationId: number;
  /** The group's protocol type; '' on error (JoinGroup v7+ encoders send null). */
  protocolType: string;
  /** The selected protocol; '' on error (v7+ encoders send null). */
  protocolName: string;
  leader: string;
  memberId: string;
  /** Every member with its metadata for the selected protocol; only in the leader's result. */
  members: JoinGroupMember[];
}

export interface SyncGroupParams {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** SyncGroup v5+: checked against the group's when given (null/undefined: not checked). */
  protocolType?: string | null;
  protocolName?: string | null;
  /** The leader's assignment; empty from followers. */
  assignments: Array<{ memberId: string; assignment: Buffer }>;
}

export interface SyncGroupResult {
  errorCode: number;
  assignment: Buffer;
  /** The group's protocol type and selected protocol ('' when unknown / on error). */
  protocolType: string;
  protocolName: string;
}

export interface HeartbeatParams {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface HeartbeatResult {
  errorCode: number;
}

export interface MemberIdentity {
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeaveGroupParams {
  groupId: string;
  members: MemberIdentity[];
}

export interface LeaveGroupResult {
  /** Top-level error (LeaveGroup v0-2 encoders use the single member's error when this is NONE). */
  errorCode: number;
  members: Array<MemberIdentity & { errorCode: number }>;
}

export interface DescribedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** The metadata for the selected protocol (Stable groups only; empty otherwise). */
  memberMetadata: Buffer;
  /** The member's assignment (Stable groups only; empty otherwise). */
  memberAssignment: Buffer;
}

export interface DescribeGroupResult {
  errorCode: number;
  groupId: string;
  groupState: GroupState | '';
  protocolType: string;
  /** The selected protocol name (Stable groups only; '' otherwise). */
  protocolData: string;
  members: DescribedMember[];
}

export interface ListedGroup {
  groupId: string;
  protocolType: string;
  groupState: GroupState;
}

export interface ListGroupsResult {
  errorCode: number;
  groups: ListedGroup[];
}

export interface DeleteGroupResult {
  groupId: string;
  errorCode: number;
}

export interface ValidateCommitParams {
  groupId: string;
  /** -1 (with memberId '' and no instance id): a standalone commit, outside group management. */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** TxnOffsetCommit: no membership required when no member information is given, in any state. */
  transactional?: boolean;
}

export interface MemberSnapshot {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: string[];
  /** Size of the metadata for the selected protocol (0 when none is selected). */
  metadataBytes: number;
  assignmentBytes: number;
  lastHeartbeatMs: number;
  awaitingJoin: boolean;
  awaitingSync: boolean;
  isLeader: boolean;
}

export interface GroupSnapshot {
  groupId: string;
  state: GroupState;
  protocolType: string;
  protocolName: string;
  generationId: number;
  leader: string;
  members: MemberSnapshot[];
  /** Member ids handed out with MEMBER_ID_REQUIRED and not yet used. */
  pendingMembers: string[];
}
