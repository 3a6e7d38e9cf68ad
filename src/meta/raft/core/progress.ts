import type { NodeId, ProgressStatus } from './types.js';

/**
 * The leader's view of one follower's log. `probe`: one append in flight until it
 * answers (finding where logs diverge); `replicate`: appends are pipelined up to
 * the in-flight window; `snapshot`: waiting for a snapshot to be installed.
 */
export class Progress {
  match = 0;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot' = 'probe';
  /** probe: an append is outstanding, so wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** snapshot: index of the snapshot sent, and the tick it was sent at (resent if it seems lost). */
  pendingSnapshot = 0;
  snapshotSentTick = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Last indexes of the appends in flight, oldest first (replicate state flow control). */
  private readonly inflight: number[] = [];

  constructor(
    readonly id: NodeId,
    next: number,
    private readonly maxInflight: number,
    public learner: boolean,
  ) {
    this.next = next;
  }

  becomeProbe(): void {
    // After a snapshot, continue right after it; otherwise right after what is known to match.
    const from = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.reset('probe');
    this.next = from;
  }

  becomeReplicate(): void {
    this.reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number, tick: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = index;
    this.snapshotSentTick = tick;
  }

  private reset(state: Progress['state']): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight.length = 0;
  }

  /** An append was acknowledged up to n. Returns true if it moved match forward. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** replicate: appends were sent optimistically up to `last`. */
  sentEntries(last: number): void {
    if (this.state === 'replicate') {
      this.next = last + 1;
      this.inflight.push(last);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** A rejection of the append after `rejected`; `hint` is the follower's last index. False if the answer is stale. */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  freeInflightUpTo(index: number): void {
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.maxInflight;
      case 'snapshot':
        return true;
    }
  }

  /**
   * A heartbeat response arrived: a probe may go out again, and a full
   * replicate window gives up one slot. Without that, an append lost while the
   * window was full would never be resent: the next append either fills the gap
   * or is rejected, which turns this follower back to probing.
   */
  resume(): void {
    this.probeSent = false;
    if (this.state === 'replicate' && this.inflight.length >= this.maxInflight) this.inflight.shift();
  }

  status(): ProgressStatus {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive, learner: this.learner };
  }
}
