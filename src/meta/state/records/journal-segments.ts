/**
 * Journal segment metadata (BookKeeper-style ledgers): for each shard stored on
 * the journal engine, its segments, the ensemble of journal nodes that hold each,
 * the write/ack quorums and the lifecycle (open -> sealed).
 *
 * Invariants enforced here, because writers race and only the log orders them:
 *  - a shard has at most one open segment, and it is the newest: a new segment
 *    can only be created once the previous one is sealed, with a larger number;
 *  - a sealed segment's lastEntry never changes (sealing twice with the same
 *    lastEntry is a no-op, with a different one a conflict);
 *  - an ensemble change of an open segment must carry a larger epoch, fencing a
 *    stale writer; a sealed segment's ensemble only changes one node at a time,
 *    by `replace` (re-replication: the new node got a full copy first), never
 *    to hold a node twice.
 */
import { compareNumbers, compareStrings } from '../canonical.js';
import { Fields, checkList, invalid, type StrOpts } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput } from '../registry.js';
import { fail, ok, type MetaErrorCode } from '../result.js';

const SHARD_ID: StrOpts = { max: 512 };
const MAX_ENSEMBLE = 32;
export const SEGMENT_STATES = ['open', 'sealed'] as const;
export type SegmentState = (typeof SEGMENT_STATES)[number];

export interface SegmentRecord {
  readonly shard: string;
  readonly segment: number;
  readonly ensemble: readonly number[];
  readonly writeQuorum: number;
  readonly ackQuorum: number;
  readonly epoch: number;
  /** Shard offset of the segment's entry 0 (entry id = offset - startOffset). */
  readonly startOffset: number;
  readonly state: SegmentState;
  /** Set when sealed: the last entry id in the segment, -1 for an empty one. */
  readonly lastEntry?: number;
  /** Set when sealed by its writer: bytes written to it, and the greatest record timestamp (retention). */
  readonly bytes?: number;
  readonly maxTimestamp?: number;
  /** When it was sealed (ms since the epoch; the proposer's clock). */
  readonly sealedAtMs?: number;
  /** Records before this shard offset are deleted (Kafka DeleteRecords inside the shard's first segment). */
  readonly trimmedTo?: number;
}

export interface JournalSegmentCreateCommand {
  readonly kind: 'journal.segment.create';
  readonly shard: string;
  readonly segment: number;
  readonly ensemble: readonly number[];
  readonly writeQuorum: number;
  readonly ackQuorum: number;
  readonly epoch: number;
  /** Shard offset of the segment's first entry: the previous segment's end (0 for the first). */
  readonly startOffset?: number;
}

export interface JournalSegmentSealCommand {
  readonly kind: 'journal.segment.seal';
  readonly shard: string;
  readonly segment: number;
  readonly lastEntry: number;
  /** What the writer knows of the segment (a recovery that closes a dead writer's segment does not). */
  readonly bytes?: number;
  readonly maxTimestamp?: number;
  readonly nowMs?: number;
}

/** Replace the ensemble of an open segment (a journal node failed); quorums keep their values unless given. */
export interface JournalSegmentUpdateCommand {
  readonly kind: 'journal.segment.update';
  readonly shard: string;
  readonly segment: number;
  readonly ensemble: readonly number[];
  /** Must be larger than the segment's current epoch. */
  readonly epoch: number;
  readonly writeQuorum?: number;
  readonly ackQuorum?: number;
}

/** Drop one sealed segment (retention), or every segment of the shard when `segment` is absent (shard deleted). */
export interface JournalSegmentDeleteCommand {
  readonly kind: 'journal.segment.delete';
  readonly shard: string;
  readonly segment?: number;
}

/**
 * Re-replication of a sealed segment: `to` holds a full copy now and takes
 * `from`'s place in the ensemble (same position). Valid only for a sealed
 * segment whose ensemble holds `from` and not `to`; epoch and quorums stay.
 */
export interface JournalSegmentReplaceCommand {
  readonly kind: 'journal.segment.replace';
  readonly shard: string;
  readonly segment: number;
  readonly from: number;
  readonly to: number;
}

/**
 * Records of the segment before `offset` are deleted (an explicit delete that
 * ends inside the segment: whole segments before it are dropped by `delete`).
 * Only moves forward; an offset past the segment's end is refused.
 */
export interface JournalSegmentTrimCommand {
  readonly kind: 'journal.segment.trim';
  readonly shard: string;
  readonly segment: number;
  readonly offset: number;
}

export type JournalSegmentCommand =
  | JournalSegmentTrimCommand
  | JournalSegmentCreateCommand
  | JournalSegmentSealCommand
  | JournalSegmentUpdateCommand
  | JournalSegmentDeleteCommand
  | JournalSegmentReplaceCommand;

export type JournalSegmentEvent =
  | { readonly type: 'journal.segment.created'; readonly segment: SegmentRecord }
  | { readonly type: 'journal.segment.sealed'; readonly segment: SegmentRecord }
  | { readonly type: 'journal.segment.updated'; readonly segment: SegmentRecord; readonly previous: SegmentRecord }
  | { readonly type: 'journal.segment.deleted'; readonly segments: readonly SegmentRecord[] }
  | { readonly type: 'journal.segment.replaced'; readonly segment: SegmentRecord; readonly previous: SegmentRecord; readonly from: number; readonly to: number }
  | { readonly type: 'journal.segment.trimmed'; readonly segment: SegmentRecord };

/** shard id -> segment number -> segment */
export type JournalSegmentsState = Map<string, Map<number, SegmentRecord>>;

export interface JournalSegmentsQuery {
  get(shard: string, segment: number): SegmentRecord | undefined;
  /** A shard's segments, oldest first. */
  forShard(shard: string): SegmentRecord[];
  /** The shard's open (newest) segment, if any. */
  open(shard: string): SegmentRecord | undefined;
  /** Shard ids with segments, sorted. */
  shards(): string[];
  /** Segments whose ensemble includes the node (to re-replicate when it dies), by shard then segment. */
  onNode(nodeId: number): SegmentRecord[];
}

const KINDS = ['journal.segment.create', 'journal.segment.seal', 'journal.segment.update', 'journal.segment.delete', 'journal.segment.replace', 'journal.segment.trim'] as const;

function checkQuorums(where: string, ensembleSize: number, writeQuorum: number, ackQuorum: number): void {
  if (!(ackQuorum <= writeQuorum && writeQuorum <= ensembleSize)) {
    invalid(`${where}: need 1 <= ackQuorum (${ackQuorum}) <= writeQuorum (${writeQuorum}) <= ensemble size (${ensembleSize})`);
  }
}

/** The optional size and time figures of a sealed segment (records written before they existed have none). */
function optionalStats(f: Fields): { bytes?: number; maxTimestamp?: number; sealedAtMs?: number; trimmedTo?: number } {
  const bytes = f.optInt('bytes', { min: 0 });
  const maxTimestamp = f.optInt('maxTimestamp', { min: -1 });
  const sealedAtMs = f.optInt('sealedAtMs', { min: 0 });
  const trimmedTo = f.optInt('trimmedTo', { min: 0 });
  return {
    ...(bytes !== undefined ? { bytes } : {}),
    ...(maxTimestamp !== undefined ? { maxTimestamp } : {}),
    ...(sealedAtMs !== undefined ? { sealedAtMs } : {}),
    ...(trimmedTo !== undefined ? { trimmedTo } : {}),
  };
}

function parseSegment(raw: unknown, where: string): SegmentRecord {
  const f = Fields.of(raw, where);
  const ensemble = f.nodeSet('ensemble', { min: 1, max: MAX_ENSEMBLE });
  const writeQuorum = f.int('writeQuorum', { min: 1 });
  const ackQuorum = f.int('ackQuorum', { min: 1 });
  checkQuorums(where, ensemble.length, writeQuorum, ackQuorum);
  const state = f.oneOf('state', SEGMENT_STATES);
  const lastEntry = state === 'sealed' ? f.int('lastEntry', { min: -1 }) : undefined;
  return deepFreeze({
    shard: f.str('shard', SHARD_ID),
    segment: f.int('segment', { min: 0 }),
    ensemble,
    writeQuorum,
    ackQuorum,
    epoch: f.int('epoch', { min: 0 }),
    startOffset: f.optInt('startOffset', { min: 0 }) ?? 0,
    state,
    ...(lastEntry !== undefined ? { lastEntry } : {}),
    ...optionalStats(f),
  });
}

function validate(raw: unknown): JournalSegmentCommand {
  const kind = Fields.of(raw, 'journal segment command').oneOf('kind', KINDS);
  const f = Fields.of(raw, kind);
  const shard = f.str('shard', SHARD_ID);
  switch (kind) {
    case 'journal.segment.create': {
      const ensemble = f.nodeSet('ensemble', { min: 1, max: MAX_ENSEMBLE });
      const writeQuorum = f.int('writeQuorum', { min: 1 });
      const ackQuorum = f.int('ackQuorum', { min: 1 });
      checkQuorums(kind, ensemble.length, writeQuorum, ackQuorum);
      const startOffset = f.optInt('startOffset', { min: 0 });
      return { kind, shard, segment: f.int('segment', { min: 0 }), ensemble, writeQuorum, ackQuorum, epoch: f.int('epoch', { min: 0 }), ...(startOffset !== undefined ? { startOffset } : {}) };
    }
    case 'journal.segment.seal': {
      const nowMs = f.optInt('nowMs', { min: 0 });
      const stats = optionalStats(f);
      return { kind, shard, segment: f.int('segment', { min: 0 }), lastEntry: f.int('lastEntry', { min: -1 }), ...(stats.bytes !== undefined ? { bytes: stats.bytes } : {}), ...(stats.maxTimestamp !== undefined ? { maxTimestamp: stats.maxTimestamp } : {}), ...(nowMs !== undefined ? { nowMs } : {}) };
    }
    case 'journal.segment.update': {
      const writeQuorum = f.optInt('writeQuorum', { min: 1 });
      const ackQuorum = f.optInt('ackQuorum', { min: 1 });
      return {
        kind,
        shard,
        segment: f.int('segment', { min: 0 }),
        ensemble: f.nodeSet('ensemble', { min: 1, max: MAX_ENSEMBLE }),
        epoch: f.int('epoch', { min: 0 }),
        ...(writeQuorum !== undefined ? { writeQuorum } : {}),
        ...(ackQuorum !== undefined ? { ackQuorum } : {}),
      };
    }
    case 'journal.segment.delete': {
      const segment = f.optInt('segment', { min: 0 });
      return { kind, shard, ...(segment !== undefined ? { segment } : {}) };
    }
    case 'journal.segment.trim':
      return { kind, shard, segment: f.int('segment', { min: 0 }), offset: f.int('offset', { min: 0 }) };
    case 'journal.segment.replace': {
      const segment = f.int('segment', { min: 0 });
      const from = f.nodeId('from');
      const to = f.nodeId('to');
      if (from === to) invalid(`${kind}: "from" and "to" are the same node (${from})`);
      return { kind, shard, segment, from, to };
    }
  }
}

function rejected(code: MetaErrorCode, message: string): ApplyOutput<JournalSegmentEvent> {
  return { result: fail(code, message), events: [] };
}

function sorted(segments: ReadonlyMap<number, SegmentRecord> | undefined): SegmentRecord[] {
  return segments ? [...segments.keys()].sort(compareNumbers).flatMap((n) => segments.get(n) ?? []) : [];
}

function apply(state: JournalSegmentsState, cmd: JournalSegmentCommand): ApplyOutput<JournalSegmentEvent> {
  const segments = state.get(cmd.shard);
  const name = `segment ${'segment' in cmd ? String(cmd.segment) : '*'} of shard '${cmd.shard}'`;
  switch (cmd.kind) {
    case 'journal.segment.create': {
      if (segments?.has(cmd.segment)) return rejected('already_exists', `${name} already exists`);
      const newest = sorted(segments).at(-1);
      if (newest?.state === 'open') return rejected('conflict', `shard '${cmd.shard}' still has open segment ${newest.segment}; seal it first`);
      if (newest && newest.segment > cmd.segment) return rejected('conflict', `${name}: segment numbers must grow (newest is ${newest.segment})`);
      const startOffset = cmd.startOffset ?? 0;
      if (newest?.lastEntry !== undefined && startOffset !== newest.startOffset + newest.lastEntry + 1) {
        return rejected('conflict', `${name}: must start at offset ${newest.startOffset + newest.lastEntry + 1}, where segment ${newest.segment} ends, not ${startOffset}`);
      }
      const { kind: _kind, ...fields } = cmd;
      const segment: SegmentRecord = deepFreeze({ ...fields, startOffset, ensemble: [...cmd.ensemble], state: 'open' });
      const map = segments ?? new Map<number, SegmentRecord>();
      map.set(segment.segment, segment);
      state.set(cmd.shard, map);
      return { result: ok(segment), events: [{ type: 'journal.segment.created', segment }] };
    }
    case 'journal.segment.seal': {
      const current = segments?.get(cmd.segment);
      if (!segments || !current) return rejected('not_found', `${name} does not exist`);
      if (current.state === 'sealed') {
        if (current.lastEntry === cmd.lastEntry) return { result: ok(current), events: [] };
        return rejected('conflict', `${name} is already sealed at entry ${String(current.lastEntry)}, not ${cmd.lastEntry}`);
      }
      const segment: SegmentRecord = deepFreeze({
        ...current,
        state: 'sealed',
        lastEntry: cmd.lastEntry,
        ...(cmd.bytes !== undefined ? { bytes: cmd.bytes } : {}),
        ...(cmd.maxTimestamp !== undefined ? { maxTimestamp: cmd.maxTimestamp } : {}),
        ...(cmd.nowMs !== undefined ? { sealedAtMs: cmd.nowMs } : {}),
      });
      segments.set(segment.segment, segment);
      return { result: ok(segment), events: [{ type: 'journal.segment.sealed', segment }] };
    }
    case 'journal.segment.update': {
      const previous = segments?.get(cmd.segment);
      if (!segments || !previous) return rejected('not_found', `${name} does not exist`);
      if (previous.state === 'sealed') return rejected('conflict', `${name} is sealed; its ensemble cannot change`);
      if (cmd.epoch <= previous.epoch) return rejected('conflict', `${name} is at epoch ${previous.epoch}; an update needs a larger epoch, got ${cmd.epoch}`);
      const writeQuorum = cmd.writeQuorum ?? previous.writeQuorum;
      const ackQuorum = cmd.ackQuorum ?? previous.ackQuorum;
      if (!(ackQuorum <= writeQuorum && writeQuorum <= cmd.ensemble.length)) {
        return rejected('invalid', `${name}: need ackQuorum (${ackQuorum}) <= writeQuorum (${writeQuorum}) <= ensemble size (${cmd.ensemble.length})`);
      }
      const segment: SegmentRecord = deepFreeze({ ...previous, ensemble: [...cmd.ensemble], epoch: cmd.epoch, writeQuorum, ackQuorum });
      segments.set(segment.segment, segment);
      return { result: ok(segment), events: [{ type: 'journal.segment.updated', segment, previous }] };
    }
    case 'journal.segment.delete': {
      if (!segments) return rejected('not_found', `shard '${cmd.shard}' has no segments`);
      if (cmd.segment === undefined) {
        state.delete(cmd.shard);
        return { result: ok(), events: [{ type: 'journal.segment.deleted', segments: sorted(segments) }] };
      }
      const segment = segments.get(cmd.segment);
      if (!segment) return rejected('not_found', `${name} does not exist`);
      if (segment.state === 'open') return rejected('conflict', `${name} is open; seal it before deleting it`);
      segments.delete(cmd.segment);
      if (segments.size === 0) state.delete(cmd.shard);
      return { result: ok(), events: [{ type: 'journal.segment.deleted', segments: [segment] }] };
    }
    case 'journal.segment.trim': {
      const current = segments?.get(cmd.segment);
      if (!segments || !current) return rejected('not_found', `${name} does not exist`);
      if (current.state === 'sealed' && cmd.offset > current.startOffset + (current.lastEntry ?? -1) + 1) {
        return rejected('invalid', `${name} ends at offset ${current.startOffset + (current.lastEntry ?? -1) + 1}; cannot trim to ${cmd.offset}`);
      }
      if (cmd.offset <= Math.max(current.startOffset, current.trimmedTo ?? 0)) return { result: ok(current), events: [] };
      const segment: SegmentRecord = deepFreeze({ ...current, trimmedTo: cmd.offset });
      segments.set(segment.segment, segment);
      return { result: ok(segment), events: [{ type: 'journal.segment.trimmed', segment }] };
    }
    case 'journal.segment.replace': {
      const previous = segments?.get(cmd.segment);
      if (!segments || !previous) return rejected('not_found', `${name} does not exist`);
      if (previous.state !== 'sealed') return rejected('conflict', `${name} is open; only a sealed segment's replica can be replaced (its writer changes an open ensemble)`);
      const at = previous.ensemble.indexOf(cmd.from);
      if (at < 0) return rejected('conflict', `${name}: node ${cmd.from} is not in its ensemble [${previous.ensemble.join(', ')}]`);
      if (previous.ensemble.includes(cmd.to)) return rejected('conflict', `${name}: node ${cmd.to} is already in its ensemble [${previous.ensemble.join(', ')}]`);
      const ensemble = previous.ensemble.map((n, i) => (i === at ? cmd.to : n));
      const segment: SegmentRecord = deepFreeze({ ...previous, ensemble });
      segments.set(segment.segment, segment);
      return { result: ok(segment), events: [{ type: 'journal.segment.replaced', segment, previous, from: cmd.from, to: cmd.to }] };
    }
  }
}

export const journalSegmentsRecord = defineRecord({
  name: 'journalSegments',
  commands: KINDS,
  initial: (): JournalSegmentsState => new Map(),
  validate,
  apply,
  snapshot: (state: JournalSegmentsState) =>
    [...state.keys()].sort(compareStrings).flatMap((shard) => sorted(state.get(shard)).map((s) => ({ ...s, ensemble: [...s.ensemble] }))),
  restore(json: unknown): JournalSegmentsState {
    const state: JournalSegmentsState = new Map();
    for (const s of checkList(json, 'journalSegments', parseSegment)) {
      let segments = state.get(s.shard);
      if (!segments) state.set(s.shard, (segments = new Map()));
      if (segments.has(s.segment)) invalid(`journalSegments: segment ${s.segment} of '${s.shard}' appears twice`);
      segments.set(s.segment, s);
    }
    return state;
  },
  query: (read: () => JournalSegmentsState): JournalSegmentsQuery => ({
    get: (shard, segment) => read().get(shard)?.get(segment),
    forShard: (shard) => sorted(read().get(shard)),
    open: (shard) => sorted(read().get(shard)).find((s) => s.state === 'open'),
    shards: () => [...read().keys()].sort(compareStrings),
    onNode: (nodeId) =>
      [...read().keys()].sort(compareStrings).flatMap((shard) => sorted(read().get(shard)).filter((s) => s.ensemble.includes(nodeId))),
  }),
});
