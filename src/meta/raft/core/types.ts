/**
 * The contract of the pure Raft core. The core owns no timers, sockets or files:
 * the IO layer feeds it ticks and messages, then drains a `Ready`, persists what
 * it says, sends its messages, applies its committed entries and calls `advance`.
 *
 * Ordering rules for the IO layer (safety depends on them):
 *  1. Persist `ready.snapshot` (if any), then `ready.entries` (truncating any stored
 *     suffix from entries[0].index on), then `ready.hardState` — and fsync — BEFORE
 *     sending any of `ready.messages`.
 *  2. Apply `ready.committedEntries` in order (after restoring `ready.snapshot` into
 *     the state machine, if present).
 *  3. Call `advance(ready)`. Only then may `ready()` be called again.
 *  Between `ready()` and `advance()` the driver must not call tick, step, propose,
 *  readIndex, transferLeader or compact: it queues them and feeds them in after
 *  advance (which also batches the work of the next Ready).
 */

export type NodeId = number;
/** No node (e.g. no vote cast, no known leader). Real ids are >= 1. */
export const NONE: NodeId = 0;

export type EntryType = 'normal' | 'conf';

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  /** normal: an encoded state-machine command (empty for the leader's no-op); conf: encodeConfChange(). */
  data: Uint8Array;
}

/** What must survive a crash besides the log. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** The membership: who votes, who only replicates. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  /** The last log entry the snapshot covers. */
  index: number;
  term: number;
  /** Membership as of `index`. */
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  /** The state machine's serialised state at `meta.index`; opaque to the core. */
  data: Uint8Array;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to the core; the meta service puts the node's address here. */
  context: string;
}

export type MessageType =
  | 'preVote'
  | 'preVoteResp'
  | 'vote'
  | 'voteResp'
  | 'append'
  | 'appendResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snapshot'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

/**
 * One message between cores. A flat record (like etcd's raftpb.Message) so the
 * transport can encode every type the same way; fields a type does not use are
 * left at their zero values.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** append: term of the entry before `entries` (the previous log term); votes: candidate's last log term. */
  logTerm: number;
  /** append: index of the entry before `entries`; votes: candidate's last index; appendResp: highest index matched (or rejected index); readIndexResp: the read index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** appendResp when rejecting: the follower's hint of where to probe next (its last index). */
  rejectHint: number;
  snapshot?: Snapshot;
  /** readIndex / heartbeat / readIndexResp: the read request's context; vote: 'transfer' for leader transfer elections. */
  context: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  leaderId: NodeId;
  role: Role;
}

/** A linearizable read may be served once the local applied index reaches `index`. */
export interface ReadState {
  index: number;
  context: string;
}

export interface Ready {
  /** Set when leader or role changed since the last Ready. */
  softState?: SoftState;
  /** Set when term, vote or commit changed; persist before sending messages. */
  hardState?: HardState;
  /** Entries to append to stable storage; any stored entry at or after entries[0].index is replaced. */
  entries: Entry[];
  /** A snapshot received from the leader: persist it and restore the state machine from it. */
  snapshot?: Snapshot;
  /** Entries now committed, in order, to apply to the state machine. */
  committedEntries: Entry[];
  /** Messages to send once the above is durable. */
  messages: Message[];
  /** Reads confirmed since the last Ready. */
  readStates: ReadState[];
  /** True when hardState, entries or snapshot must be fsynced before messages go out. */
  mustSync: boolean;
}

export interface RaftConfig {
  id: NodeId;
  /** Ticks a follower waits without hearing from a leader before it campaigns; randomised in [electionTick, 2*electionTick). */
  electionTick: number;
  /** Ticks between leader heartbeats. Must be < electionTick. */
  heartbeatTick: number;
  /** Run a pre-vote round before a real election (keeps a partitioned node from inflating terms). */
  preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. */
  checkQuorum: boolean;
  /** Upper bound on the data bytes in one append message (batching). */
  maxSizePerMsg: number;
  /** Upper bound on unacknowledged append messages in flight to one follower (pipelining, flow control). */
  maxInflightMsgs: number;
  /** Source of randomness for election timeouts: returns an integer in [0, n). Injected for determinism. */
  random: (n: number) => number;
}

/** What the IO layer recovered from disk (all empty on first start). */
export interface RestoredState {
  hardState: HardState;
  /** The latest snapshot on disk, if any; the log continues after snapshot.meta.index. */
  snapshot?: Snapshot;
  /** Log entries after the snapshot (or from index 1), contiguous. */
  entries: Entry[];
  /**
   * First boot of a founding member (empty log, no snapshot): the cluster's initial
   * membership, written as committed conf entries at term 1 (indices 1..n, the same
   * on every founding member). Ignored when the log or snapshot is not empty. A node
   * that joins an existing cluster passes an empty conf and learns everything from
   * the leader.
   */
  initialConf: ConfState;
}

export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; reason: 'not_leader' | 'transferring' | 'conf_change_pending' | 'invalid_conf_change'; leaderId: NodeId };

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  recentActive: boolean;
  learner: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  leaderId: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  /** Leader only: replication progress per peer (including itself). */
  progress: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
}

/** The public surface of the core, as the IO driver and the simulation use it. */
export interface RaftCoreApi {
  tick(): void;
  step(message: Message): void;
  /** Start an election now (tests, or a single-node cluster's first boot). */
  campaign(): void;
  propose(data: Uint8Array): ProposeResult;
  proposeConfChange(change: ConfChange): ProposeResult;
  /** Ask for a linearizable read point; the answer arrives as a ReadState with this context. Returns false when no leader is known. */
  readIndex(context: string): boolean;
  transferLeader(target: NodeId): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(ready: Ready): void;
  /**
   * The state machine serialised itself at the applied index (status().applied):
   * the core keeps that snapshot (to send to lagging followers) and drops entries
   * before `retainFrom` (default: everything the snapshot covers). Returns the
   * snapshot for the IO layer to persist, or undefined if nothing was applied
   * since the log start.
   */
  compact(data: Uint8Array, retainFrom?: number): Snapshot | undefined;
  status(): RaftStatus;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(change));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  return JSON.parse(decoder.decode(data)) as ConfChange;
}

export function emptyMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  return { type, from, to, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: '' };
}
