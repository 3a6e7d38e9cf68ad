/**
 * Raft's safety properties, checked by the simulation as the run goes. Every check
 * throws an InvariantViolation naming the property; the cluster adds the seed,
 * the step and the trace.
 *
 * What is tracked, globally over the whole run (all nodes, all lives):
 *  - leaders: term -> the one node that acted as leader in it (from SoftState,
 *    status() and every leader-only message it sent) — Election Safety;
 *  - entries: (index, term) -> (content, term of the previous entry), recorded from
 *    every entry persisted to a disk model and every entry sent in an append. In
 *    Raft only the leader of term t creates entries of term t, once, after a fixed
 *    prefix, so this must be a function — and by induction it gives Log Matching
 *    for every pair of logs (a full pairwise check of the disk logs also runs);
 *  - committed: index -> (term, content) of every entry any node ever persisted as
 *    committed — with leaders it gives Leader Completeness;
 *  - applied: index -> (term, content, state-machine state after it) — State
 *    Machine Safety, and a check of snapshots' contents.
 */
import type { Entry, NodeId } from '../../../../src/meta/raft/core/types.js';

export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

export function violation(invariant: string, detail: string): never {
  throw new InvariantViolation(invariant, detail);
}

const decoder = new TextDecoder();

/** A printable, comparable digest of an entry's content. */
export function entryDigest(e: Entry): string {
  return `${e.type}:${decoder.decode(e.data)}`;
}

export function describeEntry(e: Entry): string {
  const d = entryDigest(e);
  return `(${e.index},t${e.term},${d.length > 80 ? d.slice(0, 80) + '…' : d})`;
}

interface EntryRecord {
  digest: string;
  prevTerm: number;
  where: string;
}

interface CommittedRecord {
  term: number;
  digest: string;
  where: string;
}

export interface AppliedRecord {
  term: number;
  digest: string;
  /** The state machine's serialised state right after applying this entry. */
  state: string;
  /** For client commands: the result the state machine returned. */
  result?: unknown;
  clientOpId?: number;
  where: string;
}

export class SafetyChecker {
  /** term -> leader */
  readonly leaders = new Map<number, NodeId>();
  private readonly entries = new Map<string, EntryRecord>();
  readonly committed = new Map<number, CommittedRecord>();
  maxCommitted = 0;
  readonly applied = new Map<number, AppliedRecord>();
  /** client op id -> index it was applied at */
  readonly appliedOps = new Map<number, number>();
  /** Client ops known never to have entered the log (or known to have been overwritten). */
  readonly failedOps = new Map<number, string>();

  /** Election Safety: at most one leader per term. */
  leader(term: number, id: NodeId, how: string): void {
    const known = this.leaders.get(term);
    if (known === undefined) this.leaders.set(term, id);
    else if (known !== id) violation('election safety', `two leaders in term ${term}: n${known} and n${id} (n${id} seen via ${how})`);
  }

  /** Log Matching (global form): (index, term) determines the content and the previous entry's term. */
  entry(e: Entry, prevTerm: number, where: string): void {
    const key = `${e.index}/${e.term}`;
    const digest = entryDigest(e);
    const rec = this.entries.get(key);
    if (rec === undefined) {
      this.entries.set(key, { digest, prevTerm, where });
      return;
    }
    if (rec.digest !== digest) {
      violation('log matching', `two different entries at index ${e.index} term ${e.term}: ${rec.digest} (${rec.where}) vs ${digest} (${where})`);
    }
    if (rec.prevTerm !== prevTerm) {
      violation(
        'log matching',
        `entry (${e.index}, t${e.term}) follows an entry of term ${rec.prevTerm} at ${rec.where} but an entry of term ${prevTerm} at ${where}`,
      );
    }
  }

  /** An append message claims (prevIndex, prevTerm) precedes its entries in the sender's log. */
  appendMessage(prevIndex: number, prevTerm: number, entries: readonly Entry[], where: string): void {
    let pt = prevTerm;
    let expect = prevIndex + 1;
    for (const e of entries) {
      if (e.index !== expect) violation('append message', `entries not contiguous after index ${prevIndex}: got ${e.index}, expected ${expect} (${where})`);
      if (e.term < pt) violation('append message', `entry ${describeEntry(e)} has a lower term than the entry before it (t${pt}) (${where})`);
      this.entry(e, pt, where);
      pt = e.term;
      expect++;
    }
  }

  /** A node persisted `commit` and holds entry `e` at that index (or below). */
  committedEntry(index: number, term: number, digest: string, where: string): void {
    const rec = this.committed.get(index);
    if (rec === undefined) {
      this.committed.set(index, { term, digest, where });
      if (index > this.maxCommitted) this.maxCommitted = index;
      return;
    }
    if (rec.term !== term || rec.digest !== digest) {
      violation('state machine safety', `index ${index} committed as (t${rec.term}, ${rec.digest}) at ${rec.where} but as (t${term}, ${digest}) at ${where}`);
    }
  }

  /** State Machine Safety: every node applies the same entry at each index, reaching the same state. */
  appliedEntry(index: number, rec: AppliedRecord): AppliedRecord {
    const known = this.applied.get(index);
    if (known === undefined) {
      this.applied.set(index, rec);
      if (rec.clientOpId !== undefined) {
        const at = this.appliedOps.get(rec.clientOpId);
        if (at !== undefined && at !== index) {
          violation('exactly once', `client op ${rec.clientOpId} applied at index ${at} and again at index ${index}`);
        }
        this.appliedOps.set(rec.clientOpId, index);
        const failed = this.failedOps.get(rec.clientOpId);
        if (failed !== undefined) violation('failed proposal applied', `client op ${rec.clientOpId} was reported failed (${failed}) but was applied at index ${index} (${rec.where})`);
      }
      return rec;
    }
    if (known.term !== rec.term || known.digest !== rec.digest) {
      violation('state machine safety', `index ${index} applied as (t${known.term}, ${known.digest}) at ${known.where} but as (t${rec.term}, ${rec.digest}) at ${rec.where}`);
    }
    if (known.state !== rec.state) {
      violation('state machine safety', `state after index ${index} differs: ${known.state} (${known.where}) vs ${rec.state} (${rec.where})`);
    }
    return known;
  }

  /** A snapshot's state must be the state every node reached at its index. */
  snapshotState(index: number, state: string, where: string): void {
    const known = this.applied.get(index);
    if (known !== undefined && known.state !== state) {
      violation('snapshot contents', `snapshot at index ${index} holds ${state} but the state after applying ${index} was ${known.state} (${known.where}); snapshot ${where}`);
    }
  }

  /** A proposal that failed must never be applied. */
  opFailed(opId: number, why: string): void {
    const at = this.appliedOps.get(opId);
    if (at !== undefined) violation('failed proposal applied', `client op ${opId} was reported failed (${why}) but it was applied at index ${at}`);
    this.failedOps.set(opId, why);
  }
}
