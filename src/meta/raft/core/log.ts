import type { Entry, Snapshot } from './types.js';

/** Thrown when an invariant Raft relies on is broken: a bug, never bad input. */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError';
}

/**
 * The node's log in memory: entries after the compaction point `offset`, plus the
 * latest snapshot. Tracks what is durable (`stable`), committed and applied.
 */
export class RaftLog {
  /** Index of the entry just before entries[0]; its term is offsetTerm. */
  private offset: number;
  private offsetTerm: number;
  private entries: Entry[];
  committed: number;
  applied: number;
  /** Entries up to here are on disk. */
  stable: number;
  /** The newest snapshot: what a lagging follower is sent. */
  snapshot: Snapshot | undefined;
  /** A snapshot received from the leader that still has to be persisted. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snapshot: Snapshot | undefined, entries: Entry[], committed: number) {
    this.snapshot = snapshot;
    this.offset = snapshot?.meta.index ?? 0;
    this.offsetTerm = snapshot?.meta.term ?? 0;
    this.entries = entries.filter((e) => e.index > this.offset);
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i]!.index !== this.offset + 1 + i) throw new RaftInvariantError(`restored log is not contiguous at index ${this.offset + 1 + i}`);
    }
    this.stable = this.lastIndex();
    this.committed = Math.min(Math.max(committed, this.offset), this.lastIndex());
    this.applied = this.offset;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex())!;
  }

  /** Term of entry i, or undefined when it is compacted away or beyond the end. */
  term(i: number): number | undefined {
    if (i === this.offset) return this.offsetTerm;
    if (i < this.offset || i > this.lastIndex()) return undefined;
    return this.entries[i - this.offset - 1]!.term;
  }

  entry(i: number): Entry | undefined {
    if (i <= this.offset || i > this.lastIndex()) return undefined;
    return this.entries[i - this.offset - 1];
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** Raft's election restriction: is a log ending at (index, term) at least as up to date as ours? */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex());
  }

  /**
   * Where a leader should probe next after we rejected its append at `index`
   * with previous-log term `term`: the last index at or before `index` whose
   * term is <= `term` (entries of newer terms there cannot match). Skips a whole
   * divergent term per round trip instead of one entry.
   */
  conflictHint(index: number, term: number): number {
    let i = index;
    while (i > this.offset) {
      const t = this.term(i)!;
      if (t <= term) break;
      i--;
    }
    return i;
  }

  /** Leader: add its own new entries. */
  append(entries: Entry[]): void {
    for (const e of entries) {
      if (e.index !== this.lastIndex() + 1) throw new RaftInvariantError(`append at ${e.index} after last index ${this.lastIndex()}`);
      this.entries.push(e);
    }
  }

  /**
   * Follower: the leader says its log holds (prevIndex, prevTerm) followed by
   * `entries`. Returns the index of the last new entry, or undefined if our log
   * does not contain (prevIndex, prevTerm).
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    let conflictAt = -1;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.index <= this.offset) continue; // already compacted into our snapshot, hence committed and equal
      if (!this.matchTerm(e.index, e.term)) {
        conflictAt = k;
        break;
      }
    }
    if (conflictAt >= 0) {
      const first = entries[conflictAt]!.index;
      if (first <= this.committed) throw new RaftInvariantError(`entry ${first} conflicts with a committed entry (committed ${this.committed})`);
      this.entries.length = first - this.offset - 1;
      if (this.stable >= first) this.stable = first - 1;
      for (let k = conflictAt; k < entries.length; k++) this.entries.push(entries[k]!);
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  commitTo(index: number): void {
    if (index > this.committed) {
      if (index > this.lastIndex()) throw new RaftInvariantError(`commit ${index} beyond last index ${this.lastIndex()}`);
      this.committed = index;
    }
  }

  /** Leader: commit `index` if it is from the current term (Raft never commits older terms by counting). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.committed = index;
      return true;
    }
    return false;
  }

  /** Entries from `lo` up to the end, at most maxBytes of data (but at least one entry). Undefined if lo is compacted. */
  slice(lo: number, maxBytes: number): Entry[] | undefined {
    if (lo <= this.offset) return undefined;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= this.lastIndex(); i++) {
      const e = this.entries[i - this.offset - 1]!;
      bytes += e.data.byteLength + 24;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Entries not yet on disk. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.stable - this.offset);
  }

  /** Committed entries not yet handed to the state machine. */
  nextCommitted(): Entry[] {
    if (this.committed <= this.applied) return [];
    return this.entries.slice(Math.max(this.applied, this.offset) - this.offset, this.committed - this.offset);
  }

  /** Replace the whole log by a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.offset = snapshot.meta.index;
    this.offsetTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.stable = snapshot.meta.index;
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
  }

  /** The state machine's snapshot at `applied`; drop entries before retainFrom (never past the snapshot). */
  compact(snapshot: Snapshot, retainFrom: number): void {
    this.snapshot = snapshot;
    const cut = Math.min(retainFrom - 1, snapshot.meta.index, this.stable);
    if (cut <= this.offset) return;
    const term = this.term(cut)!;
    this.entries = this.entries.slice(cut - this.offset);
    this.offset = cut;
    this.offsetTerm = term;
  }
}
