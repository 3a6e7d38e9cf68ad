import { RaftLog, RaftInvariantError } from './log.js';
import { Progress } from './progress.js';
import {
  NONE,
  decodeConfChange,
  emptyMessage,
  encodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type RaftCoreApi,
  type RaftStatus,
  type ReadState,
  type Ready,
  type RestoredState,
  type Role,
  type SoftState,
  type Snapshot,
} from './types.js';

const EMPTY = new Uint8Array(0);

interface PendingRead {
  context: string;
  index: number;
  from: NodeId;
  acks: Set<NodeId>;
}

/**
 * A pure Raft state machine (Ongaro's thesis, with etcd's refinements: pre-vote,
 * check-quorum, pipelined replication with flow control, ReadIndex, leader
 * transfer, single-step membership changes applied at commit).
 */
export class RaftCore implements RaftCoreApi {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly log: RaftLog;

  private term = 0;
  private vote: NodeId = NONE;
  private role: Role = 'follower';
  private leaderId: NodeId = NONE;

  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private ticks = 0;

  private leadTransferee: NodeId = NONE;
  /** Index of the newest conf change proposed by this leader; another waits until it is applied. */
  private pendingConfIndex = 0;
  /** Highest conf entry already reflected in voters/learners (at construction, or when applied). */
  private confApplied = 0;
  /** Appends owed to followers since the last Ready (batched into one message each). */
  private broadcastPending = false;

  private readonly pendingReads: PendingRead[] = [];
  /** New reads await a heartbeat round; one round (at the next Ready) serves them all. */
  private readHeartbeatPending = false;
  /** Read requests that arrived before this leader committed an entry of its term. */
  private readonly deferredReads: Array<{ context: string; from: NodeId }> = [];

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;

  constructor(config: RaftConfig, restored: RestoredState) {
    if (config.id === NONE) throw new RaftInvariantError('node id must be >= 1');
    if (config.heartbeatTick >= config.electionTick) throw new RaftInvariantError('heartbeatTick must be < electionTick');
    this.id = config.id;
    this.cfg = config;

    let entries = restored.entries;
    let hard = restored.hardState;
    const fresh = !restored.snapshot && entries.length === 0 && hard.term === 0;
    if (fresh && restored.initialConf.voters.length > 0) {
      // Founding member: the initial membership becomes committed log entries at
      // term 1, identical on every founding member, persisted by the first Ready.
      const changes: ConfChange[] = [
        ...[...restored.initialConf.voters].sort((a, b) => a - b).map((nodeId): ConfChange => ({ type: 'addVoter', nodeId, context: '' })),
        ...[...restored.initialConf.learners].sort((a, b) => a - b).map((nodeId): ConfChange => ({ type: 'addLearner', nodeId, context: '' })),
      ];
      entries = changes.map((c, i) => ({ index: i + 1, term: 1, type: 'conf' as const, data: encodeConfChange(c) }));
      hard = { term: 1, vote: NONE, commit: entries.length };
    }
    this.log = new RaftLog(restored.snapshot, entries, hard.commit);
    if (fresh && entries.length > 0) this.log.stable = 0; // the bootstrap entries still have to reach the disk
    this.term = hard.term;
    this.vote = hard.vote;

    const base = restored.snapshot?.meta.conf ?? { voters: [], learners: [] };
    this.voters = new Set(base.voters);
    this.learners = new Set(base.learners);
    for (let i = this.log.firstIndex(); i <= this.log.committed; i++) {
      const e = this.log.entry(i)!;
      if (e.type === 'conf') this.applyConfToMembership(e);
    }
    this.confApplied = this.log.committed;

    // Bootstrap's hard state is new and must be persisted; a restored one already is.
    this.prevHard = fresh && entries.length > 0 ? { term: 0, vote: NONE, commit: 0 } : { ...hard };
    this.becomeFollower(this.term, NONE);
    this.prevSoft = { leaderId: NONE, role: 'follower' };
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  campaign(): void {
    this.hup(false);
  }

  propose(data: Uint8Array): ProposeResult {
    return this.appendProposal('normal', data);
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not_leader', leaderId: this.leaderId };
    if (this.pendingConfIndex > this.log.applied) return { ok: false, reason: 'conf_change_pending', leaderId: this.id };
    const isVoter = this.voters.has(change.nodeId);
    const isLearner = this.learners.has(change.nodeId);
    const invalid =
      (change.type === 'addVoter' && isVoter) ||
      (change.type === 'addLearner' && (isVoter || isLearner)) ||
      (change.type === 'removeNode' && !isVoter && !isLearner) ||
      (change.type === 'removeNode' && isVoter && this.voters.size === 1) ||
      change.nodeId === NONE;
    if (invalid) return { ok: false, reason: 'invalid_conf_change', leaderId: this.id };
    const res = this.appendProposal('conf', encodeConfChange(change));
    if (res.ok) this.pendingConfIndex = res.index;
    return res;
  }

  readIndex(context: string): boolean {
    if (this.role === 'leader') {
      this.leaderRead(context, this.id);
      return true;
    }
    if (this.leaderId === NONE) return false;
    const m = emptyMessage('readIndex', this.id, this.leaderId, 0);
    m.context = context;
    this.send(m);
    return true;
  }

  transferLeader(target: NodeId): void {
    if (this.role !== 'leader' || target === this.id || !this.voters.has(target)) return;
    if (this.leadTransferee === target) return;
    this.leadTransferee = target;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    const pr = this.progress.get(target)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, true);
  }

  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term === 0) {
      // Forwarded read requests carry no term, like local messages.
      if (m.type === 'readIndex') this.stepReadIndexRequest(m);
      return;
    }
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease = this.cfg.checkQuorum && this.leaderId !== NONE && this.electionElapsed < this.cfg.electionTick;
        if (inLease && m.context !== 'transfer') return; // we still hear from a leader: ignore a disruptive candidate
      }
      if (m.type === 'preVote') {
        // Not a real election: our term does not move.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A grant carries the future term of our pre-campaign.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A stale leader (e.g. healed from a partition) learns the new term and steps down.
        this.send(emptyMessage('appendResp', this.id, m.from, this.term));
      } else if (m.type === 'preVote') {
        const r = emptyMessage('preVoteResp', this.id, m.from, this.term);
        r.reject = true;
        this.send(r);
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.stepVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  // ---------------------------------------------------------------- Ready

  hasReady(): boolean {
    if (this.broadcastPending || this.readHeartbeatPending) return true;
    if (this.msgs.length > 0 || this.readStates.length > 0) return true;
    if (this.log.pendingSnapshot || this.log.unstableEntries().length > 0) return true;
    if (this.log.committed > this.log.applied) return true;
    if (!sameHard(this.hardState(), this.prevHard)) return true;
    const soft = this.softState();
    return soft.leaderId !== this.prevSoft.leaderId || soft.role !== this.prevSoft.role;
  }

  ready(): Ready {
    if (this.broadcastPending) {
      this.broadcastPending = false;
      this.bcastAppend();
    }
    if (this.readHeartbeatPending) {
      this.readHeartbeatPending = false;
      // Acks for the newest read confirm every earlier one as well.
      if (this.role === 'leader' && this.pendingReads.length > 0) this.bcastHeartbeat(this.pendingReads.at(-1)!.context);
    }
    const hard = this.hardState();
    const soft = this.softState();
    const entries = this.log.unstableEntries();
    const snapshot = this.log.pendingSnapshot;
    const rd: Ready = {
      entries,
      committedEntries: this.log.nextCommitted(),
      messages: this.msgs,
      readStates: this.readStates,
      mustSync: false,
    };
    if (snapshot) rd.snapshot = snapshot;
    if (!sameHard(hard, this.prevHard)) rd.hardState = hard;
    if (soft.leaderId !== this.prevSoft.leaderId || soft.role !== this.prevSoft.role) rd.softState = soft;
    rd.mustSync = entries.length > 0 || snapshot !== undefined || (rd.hardState !== undefined && (hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote));
    this.msgs = [];
    this.readStates = [];
    return rd;
  }

  advance(rd: Ready): void {
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.snapshot) {
      this.log.pendingSnapshot = undefined;
      this.log.stable = Math.max(this.log.stable, rd.snapshot.meta.index);
      this.log.applied = Math.max(this.log.applied, rd.snapshot.meta.index);
    }
    const lastPersisted = rd.entries.at(-1);
    if (lastPersisted && this.log.term(lastPersisted.index) === lastPersisted.term) {
      this.log.stable = Math.max(this.log.stable, lastPersisted.index);
    }
    for (const e of rd.committedEntries) {
      if (e.type === 'conf') this.applyConfChange(e);
    }
    const lastApplied = rd.committedEntries.at(-1);
    if (lastApplied) this.log.applied = Math.max(this.log.applied, lastApplied.index);

    if (this.role === 'leader') {
      // The leader's own vote for its entries counts only once they are on its disk.
      const self = this.progress.get(this.id);
      if (self && self.maybeUpdate(this.log.stable) && this.maybeCommit()) this.bcastAppend();
    }
  }

  compact(data: Uint8Array, retainFrom?: number): Snapshot | undefined {
    const index = this.log.applied;
    const term = this.log.term(index);
    if (term === undefined || index === 0) return undefined; // already compacted past it, or nothing applied
    const snapshot: Snapshot = { meta: { index, term, conf: this.confState() }, data };
    this.log.compact(snapshot, retainFrom ?? index + 1);
    return snapshot;
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, ReturnType<Progress['status']>>();
    if (this.role === 'leader') for (const [id, pr] of this.progress) progress.set(id, pr.status());
    return {
      id: this.id,
      role: this.role,
      leaderId: this.leaderId,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: this.confState(),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  // ---------------------------------------------------------------- roles

  private becomeFollower(term: number, leaderId: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.leaderId = leaderId;
  }

  private becomePreCandidate(): void {
    // Term and vote stay as they are: a pre-vote changes nothing durable.
    this.role = 'preCandidate';
    this.leaderId = NONE;
    this.votes.clear();
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.leaderId = this.id;
    for (const id of [...this.voters, ...this.learners]) {
      const pr = new Progress(id, this.log.lastIndex() + 1, this.cfg.maxInflightMsgs, this.learners.has(id));
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    const self = this.progress.get(this.id);
    if (self) {
      self.maybeUpdate(this.log.stable);
      self.becomeReplicate();
    }
    // A conf change may sit uncommitted in the log: be conservative and wait for it.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op commits everything before it and proves this term has a committed entry (ReadIndex needs that).
    this.log.append([{ index: this.log.lastIndex() + 1, term: this.term, type: 'normal', data: EMPTY }]);
    this.broadcastPending = true;
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.leaderId = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTick + this.cfg.random(this.cfg.electionTick);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.progress.clear();
    this.pendingReads.length = 0;
    this.deferredReads.length = 0;
    this.broadcastPending = false;
    this.readHeartbeatPending = false;
  }

  private promotable(): boolean {
    return this.voters.has(this.id);
  }

  private quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  // ---------------------------------------------------------------- timers

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
      }
      this.leadTransferee = NONE; // a transfer that did not finish within an election timeout is abandoned
    }
    for (const pr of this.progress.values()) {
      if (pr.state === 'snapshot' && this.ticks - pr.snapshotSentTick > 2 * this.cfg.electionTick) {
        // No answer to the snapshot: assume it was lost and probe again (which resends it if still needed).
        pr.becomeProbe();
        this.sendAppend(pr.id, true);
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.pendingReads.at(-1)?.context ?? '');
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === this.id || pr?.recentActive) active++;
    }
    for (const pr of this.progress.values()) if (pr.id !== this.id) pr.recentActive = false;
    return active >= this.quorum();
  }

  // ---------------------------------------------------------------- elections

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // An unapplied conf change could remove us or change the quorum: wait for it.
    for (const e of this.log.nextCommitted()) if (e.type === 'conf' && e.index > this.confApplied) return;
    if (this.cfg.preVote && !transfer) this.startCampaign('preVote', false);
    else this.startCampaign('vote', transfer);
  }

  private startCampaign(kind: 'preVote' | 'vote', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    if (this.tally(this.id, true) === 'won') {
      if (kind === 'preVote') this.startCampaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      const m = emptyMessage(kind, this.id, id, voteTerm);
      m.index = this.log.lastIndex();
      m.logTerm = this.log.lastTerm();
      if (transfer) m.context = 'transfer';
      this.send(m);
    }
  }

  private tally(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const [id, g] of this.votes) {
      if (!this.voters.has(id)) continue;
      if (g) yes++;
      else no++;
    }
    const q = this.quorum();
    if (yes >= q) return 'won';
    if (no > this.voters.size - q) return 'lost';
    return 'pending';
  }

  private stepVoteRequest(m: Message): void {
    const respType: MessageType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote = this.vote === m.from || (this.vote === NONE && this.leaderId === NONE) || (m.type === 'preVote' && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send(emptyMessage(respType, this.id, m.from, m.term));
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      const r = emptyMessage(respType, this.id, m.from, this.term);
      r.reject = true;
      this.send(r);
    }
  }

  private stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'preVoteResp':
      case 'voteResp': {
        if (m.type !== myResp) return;
        const outcome = this.tally(m.from, !m.reject);
        if (outcome === 'won') {
          if (this.role === 'preCandidate') this.startCampaign('vote', false);
          else this.becomeLeader();
        } else if (outcome === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        this.hup(true);
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppend(m: Message): void {
    const resp = emptyMessage('appendResp', this.id, m.from, this.term);
    if (m.index < this.log.committed) {
      resp.index = this.log.committed;
      this.send(resp);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      resp.index = lastNew;
    } else {
      resp.index = m.index;
      resp.reject = true;
      resp.rejectHint = this.log.conflictHint(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    }
    this.send(resp);
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    const resp = emptyMessage('heartbeatResp', this.id, m.from, this.term);
    resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    const resp = emptyMessage('appendResp', this.id, m.from, this.term);
    if (!snap || snap.meta.index <= this.log.committed) {
      resp.index = this.log.committed;
    } else if (this.log.matchTerm(snap.meta.index, snap.meta.term)) {
      // We already hold that entry: learn it is committed. Entries after it may
      // still diverge from the leader's, so claim a match only up to it.
      this.log.commitTo(snap.meta.index);
      resp.index = snap.meta.index;
    } else {
      this.log.restore(snap);
      this.voters = new Set(snap.meta.conf.voters);
      this.learners = new Set(snap.meta.conf.learners);
      this.confApplied = snap.meta.index;
      resp.index = this.log.lastIndex();
    }
    this.send(resp);
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case 'appendResp': {
        if (!pr) return;
        pr.recentActive = true;
        if (m.reject) {
          if (pr.maybeDecrTo(m.index, m.rejectHint)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from, true);
          }
          return;
        }
        const wasPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === 'probe') pr.becomeReplicate();
          else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === 'replicate') pr.freeInflightUpTo(m.index);

          if (this.maybeCommit()) this.bcastAppend();
          else if (wasPaused) this.sendAppend(m.from, true);
          // Pipelining: keep the follower's window full.
          while (this.sendAppend(m.from, false)) {
            /* send until paused or caught up */
          }
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
        }
        return;
      }
      case 'heartbeatResp': {
        if (!pr) return;
        pr.recentActive = true;
        pr.resume();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
        if (m.context !== '') this.ackRead(m.from, m.context);
        return;
      }
      default:
        return;
    }
  }

  private appendProposal(type: Entry['type'], data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not_leader', leaderId: this.leaderId };
    if (this.leadTransferee !== NONE) return { ok: false, reason: 'transferring', leaderId: this.id };
    const index = this.log.lastIndex() + 1;
    this.log.append([{ index, term: this.term, type, data }]);
    this.broadcastPending = true; // sent at the next Ready, batched with whatever else arrives first
    return { ok: true, index, term: this.term };
  }

  /** Commit the highest index a quorum of voters has on disk. */
  private maybeCommit(): boolean {
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    const committed = this.log.maybeCommit(matches[this.quorum() - 1] ?? 0, this.term);
    if (committed) this.releaseDeferredReads();
    return committed;
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private bcastHeartbeat(context: string): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const m = emptyMessage('heartbeat', this.id, id, this.term);
      // Never tell a follower to commit beyond what it is known to hold.
      m.commit = Math.min(pr.match, this.log.committed);
      m.context = context;
      this.send(m);
    }
  }

  /** Send the follower what it lacks: entries, or a snapshot if they were compacted. Returns false if nothing was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.slice(pr.next, this.cfg.maxSizePerMsg);
    if (prevTerm === undefined || entries === undefined) {
      const snap = this.log.snapshot;
      if (!snap) throw new RaftInvariantError(`follower ${to} needs index ${pr.next} but the log is compacted and there is no snapshot`);
      const m = emptyMessage('snapshot', this.id, to, this.term);
      m.snapshot = snap;
      this.send(m);
      pr.becomeSnapshot(snap.meta.index, this.ticks);
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const m = emptyMessage('append', this.id, to, this.term);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = entries;
    m.commit = this.log.committed;
    this.send(m);
    const last = entries.at(-1);
    if (last) pr.sentEntries(last.index);
    else if (pr.state === 'probe') pr.probeSent = true;
    return true;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(emptyMessage('timeoutNow', this.id, to, this.term));
  }

  // ---------------------------------------------------------------- ReadIndex

  private stepReadIndexRequest(m: Message): void {
    if (this.role === 'leader') {
      this.leaderRead(m.context, m.from);
    } else if (this.leaderId !== NONE && m.from === this.id) {
      this.send({ ...m, to: this.leaderId });
    }
  }

  private leaderRead(context: string, from: NodeId): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // Until our no-op commits we do not know the true commit index.
      this.deferredReads.push({ context, from });
      return;
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.answerRead({ context, index: this.log.committed, from, acks: new Set() });
      return;
    }
    this.pendingReads.push({ context, index: this.log.committed, from, acks: new Set([this.id]) });
    this.readHeartbeatPending = true;
  }

  private releaseDeferredReads(): void {
    if (this.log.term(this.log.committed) !== this.term) return;
    const deferred = this.deferredReads.splice(0);
    for (const r of deferred) this.leaderRead(r.context, r.from);
  }

  private ackRead(from: NodeId, context: string): void {
    const at = this.pendingReads.findIndex((r) => r.context === context);
    if (at < 0) return;
    const req = this.pendingReads[at]!;
    if (this.voters.has(from)) req.acks.add(from);
    let votes = 0;
    for (const id of req.acks) if (this.voters.has(id)) votes++;
    if (votes < this.quorum()) return;
    // A quorum confirmed leadership after every earlier request was made, too.
    for (const r of this.pendingReads.splice(0, at + 1)) this.answerRead(r);
  }

  private answerRead(r: PendingRead): void {
    if (r.from === this.id) {
      this.readStates.push({ index: r.index, context: r.context });
    } else {
      const m = emptyMessage('readIndexResp', this.id, r.from, this.term);
      m.index = r.index;
      m.context = r.context;
      this.send(m);
    }
  }

  // ---------------------------------------------------------------- membership

  private applyConfChange(e: Entry): void {
    if (e.index <= this.confApplied) return; // already in the membership (applied when the log was restored)
    this.confApplied = e.index;
    const change = this.applyConfToMembership(e);
    if (!change) return;
    if (this.role === 'leader') {
      if (change.type === 'removeNode') {
        this.progress.delete(change.nodeId);
        if (change.nodeId === this.id) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        if (change.nodeId === this.leadTransferee) this.leadTransferee = NONE;
        if (this.maybeCommit()) this.bcastAppend();
      } else {
        const existing = this.progress.get(change.nodeId);
        if (existing) existing.learner = change.type === 'addLearner';
        else {
          this.progress.set(change.nodeId, new Progress(change.nodeId, this.log.lastIndex() + 1, this.cfg.maxInflightMsgs, change.type === 'addLearner'));
          this.sendAppend(change.nodeId, true);
        }
        // A promoted voter changes the quorum.
        if (this.maybeCommit()) this.bcastAppend();
      }
    }
  }

  private applyConfToMembership(e: Entry): ConfChange | undefined {
    let change: ConfChange;
    try {
      change = decodeConfChange(e.data);
    } catch {
      return undefined;
    }
    switch (change.type) {
      case 'addVoter':
        this.learners.delete(change.nodeId);
        this.voters.add(change.nodeId);
        break;
      case 'addLearner':
        if (!this.voters.has(change.nodeId)) this.learners.add(change.nodeId);
        break;
      case 'removeNode':
        this.voters.delete(change.nodeId);
        this.learners.delete(change.nodeId);
        break;
      default:
        return undefined;
    }
    return change;
  }

  private confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  // ---------------------------------------------------------------- helpers

  private send(m: Message): void {
    if (m.to === this.id) return;
    this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { leaderId: this.leaderId, role: this.role };
  }
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
