/**
 * The state of one consumer group and of its members (Kafka's GroupMetadata
 * and MemberMetadata): membership, the state machine with its valid
 * transitions, protocol selection, leader election. Pure data and rules; the
 * coordinator (coordinator.ts) drives it and owns the timers.
 */
import type { JoinGroupResult, SyncGroupResult, GroupProtocol, GroupState, TimerHandle } from './types.js';

export type JoinCallback = (result: JoinGroupResult) => void;
export type SyncCallback = (result: SyncGroupResult) => void;

const EMPTY = Buffer.alloc(0);

/** state -> the states it may be entered from (Kafka's validPreviousStates). */
const VALID_PREVIOUS: Record<GroupState, readonly GroupState[]> = {
  Dead: ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'],
  CompletingRebalance: ['PreparingRebalance'],
  Stable: ['CompletingRebalance'],
  PreparingRebalance: ['Stable', 'CompletingRebalance', 'Empty'],
  Empty: ['PreparingRebalance'],
};

export class IllegalGroupTransition extends Error {
  constructor(groupId: string, from: GroupState, to: GroupState) {
    super(`group ${groupId}: illegal transition ${from} -> ${to}`);
  }
}

export class MemberMetadata {
  protocolType: string;
  protocols: GroupProtocol[];
  assignment: Buffer = EMPTY;
  awaitingJoin: JoinCallback | null = null;
  awaitingSync: SyncCallback | null = null;
  /** Joined but not yet through its first completed join phase. */
  isNew = false;
  lastHeartbeatMs = 0;
  /** The session (or new-member join) expiration. */
  timer: TimerHandle | null = null;

  constructor(
    public memberId: string,
    readonly groupInstanceId: string | null,
    public clientId: string,
    public clientHost: string,
    public rebalanceTimeoutMs: number,
    public sessionTimeoutMs: number,
    protocolType: string,
    protocols: GroupProtocol[],
  ) {
    this.protocolType = protocolType;
    this.protocols = protocols;
  }

  get isStatic(): boolean {
    return this.groupInstanceId !== null;
  }

  protocolNames(): Set<string> {
    return new Set(this.protocols.map((p) => p.name));
  }

  metadataFor(protocol: string): Buffer {
    return this.protocols.find((p) => p.name === protocol)?.metadata ?? EMPTY;
  }

  /** Same protocols, in the same order, with the same metadata. */
  matches(protocols: GroupProtocol[]): boolean {
    if (protocols.length !== this.protocols.length) return false;
    return protocols.every((p, i) => {
      const mine = this.protocols[i]!;
      return mine.name === p.name && mine.metadata.equals(p.metadata);
    });
  }

  /** The member's most preferred protocol among the candidates. */
  vote(candidates: Set<string>): string {
    const choice = this.protocols.find((p) => candidates.has(p.name));
    if (!choice) throw new Error(`member ${this.memberId} supports none of the candidate protocols`);
    return choice.name;
  }

  cancelTimer(): void {
    this.timer?.cancel();
    this.timer = null;
  }
}

export class GroupMetadata {
  private _state: GroupState = 'Empty';
  /** Insertion-ordered: leader (re-)election picks the earliest joined member. */
  readonly members = new Map<string, MemberMetadata>();
  /** groupInstanceId -> memberId. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED -> their expiration. */
  readonly pendingMembers = new Map<string, TimerHandle>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  protocolType: string | null = null;
  protocolName: string | null = null;
  generationId = 0;
  leaderId: string | null = null;
  /** A new member joined during the initial rebalance delay (extends it). */
  newMemberAdded = false;
  /** The pending join-phase completion (DelayedJoin / InitialDelayedJoin). */
  joinTimer: TimerHandle | null = null;
  /** True while the initial rebalance delay runs: the join phase then waits for its timer only. */
  initialDelayActive = false;
  /** The pending-sync expiration (members that never send SyncGroup are removed). */
  syncTimer: TimerHandle | null = null;

  constructor(
    readonly groupId: string,
    private readonly onTransition?: (from: GroupState, to: GroupState) => void,
  ) {}

  get state(): GroupState {
    return this._state;
  }

  is(state: GroupState): boolean {
    return this._state === state;
  }

  transitionTo(to: GroupState): void {
    const from = this._state;
    if (!VALID_PREVIOUS[to].includes(from)) throw new IllegalGroupTransition(this.groupId, from, to);
    this._state = to;
    this.onTransition?.(from, to);
  }

  /** Kafka's canRebalance: a join phase may start from these states. */
  canRebalance(): boolean {
    return VALID_PREVIOUS.PreparingRebalance.includes(this._state);
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  get(memberId: string): MemberMetadata | undefined {
    return this.members.get(memberId);
  }

  get size(): number {
    return this.members.size;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  add(member: MemberMetadata): void {
    if (this.members.size === 0) this.protocolType = member.protocolType;
    if (this.leaderId === null) this.leaderId = member.memberId;
    this.members.set(member.memberId, member);
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
  }

  remove(memberId: string): MemberMetadata | undefined {
    const member = this.members.get(memberId);
    if (!member) return undefined;
    this.members.delete(memberId);
    this.pendingSyncMembers.delete(memberId);
    if (member.groupInstanceId !== null && this.staticMembers.get(member.groupInstanceId) === memberId) {
      this.staticMembers.delete(member.groupInstanceId);
    }
    if (this.leaderId === memberId) {
      const next = this.members.keys().next();
      this.leaderId = next.done ? null : next.value;
    }
    return member;
  }

  staticMemberId(groupInstanceId: string | null): string | undefined {
    return groupInstanceId === null ? undefined : this.staticMembers.get(groupInstanceId);
  }

  /** The instance id is known, under another member id: the caller is a fenced zombie. */
  isStaticMemberFenced(memberId: string, groupInstanceId: string | null): boolean {
    if (groupInstanceId === null) return false;
    const current = this.staticMembers.get(groupInstanceId);
    return current !== undefined && current !== memberId;
  }

  /**
   * Moves a static member to a new member id (a restarted instance). The old
   * incarnation's parked JoinGroup/SyncGroup are handed back to the caller to be
   * answered with FENCED_INSTANCE_ID.
   */
  replaceStaticMember(
    groupInstanceId: string,
    oldMemberId: string,
    newMemberId: string,
  ): { member: MemberMetadata; oldJoin: JoinCallback | null; oldSync: SyncCallback | null } {
    const member = this.members.get(oldMemberId);
    if (!member) throw new Error(`group ${this.groupId}: static member ${groupInstanceId} has no metadata`);
    const oldJoin = member.awaitingJoin;
    const oldSync = member.awaitingSync;
    member.awaitingJoin = null;
    member.awaitingSync = null;
    member.cancelTimer();
    this.members.delete(oldMemberId);
    member.memberId = newMemberId;
    this.members.set(newMemberId, member);
    this.staticMembers.set(groupInstanceId, newMemberId);
    if (this.leaderId === oldMemberId) this.leaderId = newMemberId;
    if (this.pendingSyncMembers.delete(oldMemberId)) this.pendingSyncMembers.add(newMemberId);
    return { member, oldJoin, oldSync };
  }

  allMembers(): MemberMetadata[] {
    return [...this.members.values()];
  }

  notYetRejoinedMembers(): MemberMetadata[] {
    return this.allMembers().filter((m) => m.awaitingJoin === null);
  }

  hasAllMembersJoined(): boolean {
    return this.pendingMembers.size === 0 && this.allMembers().every((m) => m.awaitingJoin !== null);
  }

  /** The largest rebalance timeout of the members (the join phase's deadline). */
  rebalanceTimeoutMs(): number {
    let max = 0;
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  /**
   * Keeps the leader if it rejoined, else elects the earliest member that did.
   * False when no member rejoined (or there is no member).
   */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    if (this.members.get(this.leaderId)?.awaitingJoin) return true;
    const joined = this.allMembers().find((m) => m.awaitingJoin !== null);
    if (!joined) return false;
    this.leaderId = joined.memberId;
    return true;
  }

  /** The protocols every member supports, excluding the member `except` (whose protocols are changing). */
  private commonProtocols(except?: string): Set<string> | null {
    let common: Set<string> | null = null;
    for (const m of this.members.values()) {
      if (m.memberId === except) continue;
      const names = m.protocolNames();
      if (common === null) {
        common = names;
      } else {
        for (const n of common) if (!names.has(n)) common.delete(n);
      }
    }
    return common;
  }

  /**
   * Whether a (joining or rejoining) member with these protocols fits the group:
   * a non-empty protocol type equal to the group's, and at least one protocol
   * that every other member supports.
   */
  supportsProtocols(protocolType: string, protocols: GroupProtocol[], memberId?: string): boolean {
    if (protocolType === '' || protocols.length === 0) return false;
    const common = this.commonProtocols(memberId);
    if (common === null) return true; // no other member
    if (this.protocolType !== null && this.protocolType !== protocolType) return false;
    return protocols.some((p) => common.has(p.name));
  }

  /**
   * Kafka's selectProtocol: among the protocols all members support, each
   * member votes for its most preferred one; the most voted wins (ties: the one
   * that first reached the winning count in member order).
   */
  selectProtocol(): string {
    const candidates = this.commonProtocols();
    if (candidates === null || candidates.size === 0) throw new Error(`group ${this.groupId}: no common protocol`);
    const votes = new Map<string, number>();
    let best = '';
    let bestVotes = 0;
    for (const m of this.members.values()) {
      const choice = m.vote(candidates);
      const n = (votes.get(choice) ?? 0) + 1;
      votes.set(choice, n);
      if (n > bestVotes) {
        best = choice;
        bestVotes = n;
      }
    }
    return best;
  }

  /** Completes a join phase: generation + 1, protocol selected, CompletingRebalance (or Empty). */
  initNextGeneration(): void {
    this.generationId += 1;
    this.pendingSyncMembers.clear();
    if (this.members.size > 0) {
      this.protocolName = this.selectProtocol();
      this.transitionTo('CompletingRebalance');
    } else {
      this.protocolName = null;
      this.transitionTo('Empty');
    }
  }

  /** The members with their metadata for the selected protocol (the leader's JoinGroup result). */
  currentMemberMetadata(): Array<{ memberId: string; groupInstanceId: string | null; metadata: Buffer }> {
    const protocol = this.protocolName ?? '';
    return this.allMembers().map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadataFor(protocol),
    }));
  }
}
