/**
 * What the journal engine needs from the metadata service. Storage sits below
 * meta in the import order, so the node hands the engine this port (built over
 * its MetaAgent in src/server/journal-wiring.ts).
 */

/** A segment as meta records it (DESIGN.md §6). */
export interface SegmentInfo {
  readonly shard: string;
  readonly segment: number;
  readonly ensemble: readonly number[];
  readonly writeQuorum: number;
  readonly ackQuorum: number;
  readonly epoch: number;
  /** Shard offset of the segment's entry 0. */
  readonly startOffset: number;
  readonly state: 'open' | 'sealed';
  /** When sealed: its last entry id (-1 when empty). */
  readonly lastEntry?: number;
  /** When sealed by its writer: bytes written and the greatest record timestamp (retention). */
  readonly bytes?: number;
  readonly maxTimestamp?: number;
  /** When it was sealed. */
  readonly sealedAtMs?: number;
  /** Records before this shard offset are deleted (an explicit delete inside the segment). */
  readonly trimmedTo?: number;
}

/** What a writer knows of the segment it seals (a recovery of a dead writer's segment knows none of it). */
export interface SealStats {
  bytes?: number;
  maxTimestamp?: number;
  nowMs?: number;
}

export interface JournalNode {
  readonly id: number;
  /** host:port of its `[journal] tcp_port`. */
  readonly addr: string;
  readonly state: 'alive' | 'suspect' | 'dead';
  /** When this incarnation registered (a restarted node registers again). */
  readonly registeredAtMs?: number;
}

export interface NewSegment {
  shard: string;
  segment: number;
  ensemble: number[];
  writeQuorum: number;
  ackQuorum: number;
  epoch: number;
  startOffset: number;
}

/** A meta command refused because another writer got there first (compare-and-set lost). */
export class MetaConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetaConflictError';
  }
}

export interface JournalMetaPort {
  /** This node's id. */
  readonly nodeId: number;
  /** Registered journal nodes. */
  journals(): JournalNode[];
  /** A shard's segments, oldest first. */
  segments(shard: string): SegmentInfo[];
  /** Whether this node is the shard's writer (its leader in meta). */
  isWriter(shard: string): boolean;
  /** The shard's leader (0 = none): where a non-writer forwards appends. */
  leaderOf(shard: string): number;
  createSegment(s: NewSegment): Promise<void>;
  /** Raise an open segment's epoch (fencing its writer). Throws MetaConflictError when the epoch was already raised. */
  bumpEpoch(shard: string, segment: number, ensemble: readonly number[], epoch: number): Promise<void>;
  /** Throws MetaConflictError when it is sealed at another entry. */
  sealSegment(shard: string, segment: number, lastEntry: number, stats?: SealStats): Promise<void>;
  /** Drop one sealed segment, or every segment of the shard. Not found is fine. */
  deleteSegments(shard: string, segment?: number): Promise<void>;
  /** Records of the segment before `offset` are deleted (kept in meta: the shard's start survives restarts and leader moves). */
  trimSegment(shard: string, segment: number, offset: number): Promise<void>;
  /** Called on any change to segments, shard leaders or journal nodes. */
  subscribe(onChange: () => void): () => void;
  /**
   * Re-replication: `to` holds a full copy of the sealed segment now and takes
   * `from`'s place in its ensemble. Throws MetaConflictError when the segment is
   * open, `from` is no longer in its ensemble or `to` already is; not found
   * (deleted meanwhile) throws a plain Error.
   */
  replaceReplica?(shard: string, segment: number, from: number, to: number): Promise<void>;
  /** Every segment of every shard, by shard then segment (re-replication, operator views). */
  allSegments?(): SegmentInfo[];
}
