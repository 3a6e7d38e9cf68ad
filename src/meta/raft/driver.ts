import type { Logger } from '../../common/logger.js';
import { MembershipError, MetaStoppedError, MetaTimeoutError, NotLeaderError, ProposalDroppedError } from '../errors.js';
import { RaftCore } from './core/raft.js';
import { decodeConfChange, type ConfChange, type Entry, type HardState, type Message, type RaftStatus, type Ready, type Snapshot, type SoftState } from './core/types.js';

/** What the driver needs from durable storage (RaftLogStore). */
export interface RaftDurableLog {
  persist(update: { snapshot?: Snapshot; entries: Entry[]; hardState?: HardState }): Promise<void>;
  /** Last index durably stored. */
  lastIndex(): number;
  /** The hard state on disk. */
  hardState(): HardState;
  saveSnapshot(snapshot: Snapshot, retainFrom: number): Promise<void>;
}

/** What the driver needs from the replicated state machine. */
export interface RaftStateMachine {
  /** Apply one committed normal entry (empty data = the leader's no-op) and return its result. */
  apply(index: number, data: Uint8Array): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface RaftDriverHooks {
  /** A committed command was applied (not called for no-ops or conf changes). */
  onApplied?(index: number, data: Uint8Array, result: unknown): void;
  /** The state machine was replaced by a snapshot from the leader. */
  onRestored?(index: number): void;
  onConfChange?(change: ConfChange, index: number): void;
  onSoftState?(soft: SoftState, term: number): void;
  /** Durable storage failed: the node cannot go on safely. */
  onFatal(err: unknown): void;
}

export interface RaftDriverOptions {
  core: RaftCore;
  store: RaftDurableLog;
  sm: RaftStateMachine;
  send: (messages: Message[]) => void;
  tickMs: number;
  snapshotEntries: number;
  /** Entries kept in the log behind a snapshot, so slightly slow followers catch up without one. */
  snapshotRetain?: number;
  proposeTimeoutMs: number;
  /** Applied index of the snapshot the state machine was restored from at start. */
  snapshotIndex: number;
  log: Logger;
  hooks: RaftDriverHooks;
}

interface Waiter<T> {
  term: number;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface Committed {
  index: number;
  result: unknown;
}

/**
 * The IO loop around a RaftCore: ticks it on a timer, feeds it queued inputs,
 * and for each Ready persists (one fsync), sends, applies and advances — in
 * that order. Inputs that arrive while a Ready is being persisted are queued
 * and go into the next one together, which is where batching comes from.
 */
export class RaftDriver {
  readonly core: RaftCore;
  private readonly inbox: Array<() => void> = [];
  private scheduled = false;
  private cycling = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly proposals = new Map<number, Waiter<Committed>>();
  private readonly reads = new Map<string, Waiter<void> & { index?: number }>();
  private readSeq = 0;
  private lastSnapshotIndex: number;
  private idle: Array<() => void> = [];
  private isLeader = false;
  private persistedHard: HardState | undefined;

  constructor(private readonly opts: RaftDriverOptions) {
    this.core = opts.core;
    this.lastSnapshotIndex = opts.snapshotIndex;
    this.persistedHard = opts.store.hardState();
  }

  start(): void {
    this.timer = setInterval(() => this.enqueue(() => this.core.tick()), this.opts.tickMs);
    this.schedule();
  }

  /** Stop ticking, finish the Ready in progress, and fail everything still waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.cycling) await new Promise<void>((r) => this.idle.push(r));
    const err = new MetaStoppedError();
    for (const w of this.proposals.values()) this.settle(w, err);
    for (const w of this.reads.values()) this.settle(w, err);
    this.proposals.clear();
    this.reads.clear();
  }

  step(m: Message): void {
    this.enqueue(() => this.core.step(m));
  }

  campaign(): void {
    this.enqueue(() => this.core.campaign());
  }

  /** Commit `data` through Raft on this node (which must lead); resolves with the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<Committed> {
    return new Promise((resolve, reject) => {
      this.enqueue(() => {
        const r = this.core.propose(data);
        if (!r.ok) return reject(r.reason === 'not_leader' ? new NotLeaderError(r.leaderId) : new NotLeaderError(0));
        this.proposals.set(r.index, this.waiter(r.term, resolve, reject, `metadata write at index ${r.index}`));
      });
    });
  }

  proposeConfChange(change: ConfChange): Promise<Committed> {
    return new Promise((resolve, reject) => {
      this.enqueue(() => {
        const r = this.core.proposeConfChange(change);
        if (!r.ok) {
          if (r.reason === 'not_leader') return reject(new NotLeaderError(r.leaderId));
          if (r.reason === 'conf_change_pending') return reject(new MembershipError('another membership change is still in progress; retry when it completes', 'conf_change_pending'));
          return reject(new MembershipError(`membership change refused: ${change.type} node ${change.nodeId} does not fit the current membership`, 'invalid_conf_change'));
        }
        this.proposals.set(r.index, this.waiter(r.term, resolve, reject, `membership change at index ${r.index}`));
      });
    });
  }

  /**
   * A linearizable read point (ReadIndex): resolves once this node has applied
   * everything committed when the read was asked, confirmed by a quorum.
   */
  readBarrier(timeoutMs = this.opts.proposeTimeoutMs): Promise<void> {
    return new Promise((resolve, reject) => {
      const context = `r${++this.readSeq}`;
      this.enqueue(() => {
        if (!this.core.readIndex(context)) return reject(new NotLeaderError(0));
        this.reads.set(context, this.waiter(this.core.status().term, resolve, reject, 'linearizable read', timeoutMs));
      });
    });
  }

  transferLeader(target: number): void {
    this.enqueue(() => this.core.transferLeader(target));
  }

  status(): RaftStatus {
    return this.core.status();
  }

  private waiter<T>(term: number, resolve: (v: T) => void, reject: (e: Error) => void, what: string, timeoutMs = this.opts.proposeTimeoutMs): Waiter<T> {
    const w: Waiter<T> = {
      term,
      resolve,
      reject,
      timer: setTimeout(() => {
        for (const [k, v] of this.proposals) if ((v as unknown) === w) this.proposals.delete(k);
        for (const [k, v] of this.reads) if ((v as unknown) === w) this.reads.delete(k);
        reject(new MetaTimeoutError(what, timeoutMs));
      }, timeoutMs),
    };
    return w;
  }

  private settle<T>(w: Waiter<T>, outcome: Error | T): void {
    clearTimeout(w.timer);
    if (outcome instanceof Error) w.reject(outcome);
    else w.resolve(outcome);
  }

  private enqueue(input: () => void): void {
    if (this.stopped) return;
    this.inbox.push(input);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.cycling) return;
    this.scheduled = true;
    setImmediate(() => void this.cycle());
  }

  private async cycle(): Promise<void> {
    this.scheduled = false;
    if (this.cycling) return;
    this.cycling = true;
    try {
      for (;;) {
        if (this.stopped) break;
        const inputs = this.inbox.splice(0);
        for (const input of inputs) input();
        if (!this.core.hasReady()) break;
        await this.handleReady(this.core.ready());
      }
    } catch (err) {
      this.stopped = true;
      if (this.timer) clearInterval(this.timer);
      this.opts.hooks.onFatal(err);
    } finally {
      this.cycling = false;
      for (const r of this.idle.splice(0)) r();
      if (this.inbox.length > 0 && !this.stopped) this.schedule();
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const needsPersist = rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined;
    // A leader's appends may go out while it writes the same entries to its own
    // disk (Raft thesis 10.2.1): its own vote for them counts only after the write
    // (advance). Not when term or vote changed: those must be durable first.
    const voteUnchanged = !rd.hardState || (this.persistedHard !== undefined && rd.hardState.term === this.persistedHard.term && rd.hardState.vote === this.persistedHard.vote);
    const leaderAfter = rd.softState ? rd.softState.role === 'leader' : this.isLeader;
    const sendEarly = leaderAfter && voteUnchanged && !rd.snapshot;
    if (sendEarly && rd.messages.length > 0) this.opts.send(rd.messages);

    // Committed entries already durable here (and not being rewritten by this Ready)
    // can be applied before the new batch's fsync, so a commit never waits on it.
    let applyFrom = 0;
    if (needsPersist && !rd.snapshot) {
      const rewriteFrom = rd.entries[0]?.index ?? Infinity;
      const durable = this.opts.store.lastIndex();
      while (applyFrom < rd.committedEntries.length) {
        const e = rd.committedEntries[applyFrom]!;
        if (e.index >= rewriteFrom || e.index > durable) break;
        this.applyEntry(e);
        applyFrom++;
      }
    }
    if (needsPersist) {
      await this.opts.store.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
      if (rd.hardState) this.persistedHard = rd.hardState;
    }
    if (!sendEarly && rd.messages.length > 0) this.opts.send(rd.messages);

    if (rd.snapshot) {
      this.opts.sm.restore(rd.snapshot.data);
      this.lastSnapshotIndex = rd.snapshot.meta.index;
      this.opts.hooks.onRestored?.(rd.snapshot.meta.index);
      // Proposals whose slots the snapshot covers cannot be matched to a result: they are unknown, not failed.
      for (const [index, w] of this.proposals) {
        if (index <= rd.snapshot.meta.index) {
          this.proposals.delete(index);
          this.settle(w, new MetaTimeoutError(`metadata write at index ${index}`, 0));
        }
      }
    }
    for (let i = applyFrom; i < rd.committedEntries.length; i++) this.applyEntry(rd.committedEntries[i]!);
    if (rd.softState) {
      this.isLeader = rd.softState.role === 'leader';
      const status = this.core.status();
      this.opts.hooks.onSoftState?.(rd.softState, status.term);
      if (rd.softState.role !== 'leader') {
        // Reads in flight on a deposed leader can no longer be confirmed.
        for (const [ctx, w] of this.reads) {
          if (w.index === undefined) {
            this.reads.delete(ctx);
            this.settle(w, new NotLeaderError(rd.softState.leaderId));
          }
        }
      }
    }
    this.core.advance(rd);

    for (const rs of rd.readStates) {
      const w = this.reads.get(rs.context);
      if (w) w.index = rs.index;
    }
    this.releaseReads();
    await this.maybeSnapshot();
  }

  private applyEntry(e: Entry): void {
    let result: unknown;
    if (e.type === 'conf') {
      const change = decodeConfChange(e.data);
      this.opts.hooks.onConfChange?.(change, e.index);
      result = change;
    } else {
      result = this.opts.sm.apply(e.index, e.data);
      if (e.data.byteLength > 0) this.opts.hooks.onApplied?.(e.index, e.data, result);
    }
    const w = this.proposals.get(e.index);
    if (w) {
      this.proposals.delete(e.index);
      this.settle(w, w.term === e.term ? { index: e.index, result } : new ProposalDroppedError(e.index));
    }
  }

  private releaseReads(): void {
    const applied = this.core.status().applied;
    for (const [ctx, w] of this.reads) {
      if (w.index !== undefined && w.index <= applied) {
        this.reads.delete(ctx);
        this.settle(w, undefined);
      }
    }
  }

  private async maybeSnapshot(): Promise<void> {
    const applied = this.core.status().applied;
    if (applied - this.lastSnapshotIndex < this.opts.snapshotEntries) return;
    const retain = this.opts.snapshotRetain ?? Math.min(1000, Math.floor(this.opts.snapshotEntries / 2));
    const retainFrom = Math.max(1, applied - retain + 1);
    const snapshot = this.core.compact(this.opts.sm.snapshot(), retainFrom);
    if (!snapshot) return;
    this.lastSnapshotIndex = applied;
    await this.opts.store.saveSnapshot(snapshot, retainFrom);
    this.opts.log.debug({ index: applied, retainFrom }, 'meta snapshot taken');
  }
}
