/**
 * Closing the open segment of a writer that is gone (BookKeeper ledger
 * recovery): raise the segment's epoch in meta, fence its replicas at that
 * epoch so the old writer can no longer reach an ack quorum, find the furthest
 * entry the answering replicas hold as data with nothing missing before it,
 * copy the missing tail to the replicas that lag, and seal the segment there.
 *
 * Why that entry: an acknowledged entry is on at least Qa replicas of its write
 * set, so among any E - Qa + 1 replicas at least one holds it; the first entry
 * none of them holds was not acknowledged, nor (acks go in order) any after it.
 * Entries past the last acknowledged one may be included too; nobody was told
 * they were written, and once sealed they are readable like the rest (never
 * lost, never duplicated). With striping a replica outside an entry's write set
 * holds a hole there; the data is read from one that has it.
 */
import { StorageError } from '../errors.js';
import type { JournalClientPool } from './client.js';
import { MetaConflictError, type JournalMetaPort, type SegmentInfo } from './meta-port.js';
import { Op, Status, type EntryUnit, type ReplicaState } from './protocol.js';
import { readUnion, type DataUnit } from './union-read.js';

/** Too few replicas answered to know where the segment ends; retried later. */
export class NotEnoughReplicasError extends StorageError {
  constructor(shard: string, segment: number, got: number, need: number, detail?: string) {
    super(detail ?? `segment ${segment} of shard ${shard}: ${got} of its replicas answered, ${need} are needed to close it safely`, 'not_enough_replicas');
  }
}

export interface RecoveryContext {
  meta: JournalMetaPort;
  pool: JournalClientPool;
  addrOf(nodeId: number): string | undefined;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  fenceTimeoutMs?: number;
}

const COPY_MAX_ENTRIES = 10_000;
const COPY_MAX_BYTES = 4 * 1024 * 1024;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** The entry's timestamps, read from the v2 batch header (first at byte 27, max at 35). */
export function readUnitToUnit(u: DataUnit): EntryUnit {
  if (u.kind === 'record') return { kind: 'record', record: u.record };
  const firstTimestamp = Number(u.bytes.readBigInt64BE(27));
  const maxTimestamp = Number(u.bytes.readBigInt64BE(35));
  return { kind: 'batch', batch: { bytes: u.bytes, count: u.count, firstTimestamp, maxTimestamp } };
}

/**
 * Reads the tail [from, to) as data from the answering replicas (furthest first;
 * with striping, a hole on one is read from another) and adds each chunk to the
 * replicas that lack it. Returns where the data stops: the segment's end.
 */
async function completeTail(ctx: RecoveryContext, seg: SegmentInfo, epoch: number, live: Array<{ nodeId: number; state: ReplicaState }>, from: number, to: number): Promise<number> {
  const sources = [...live].sort((a, b) => b.state.end - a.state.end).map((l) => l.nodeId);
  const pos = new Map(live.map((l) => [l.nodeId, l.state.end]));
  let at = from;
  while (at < to) {
    const got = await readUnion(ctx, seg, sources, at, { limitEntry: to, maxEntries: COPY_MAX_ENTRIES, maxBytes: COPY_MAX_BYTES });
    if (got.units.length === 0) {
      if (got.failed) throw new StorageError(`recovery of segment ${seg.segment} (${seg.shard}): could not read entry ${at}: ${got.problems.join('; ')}`, 'journal_recovery');
      break; // no answering replica holds entry `at`: it was never acknowledged, nor anything after it
    }
    await Promise.all(
      live.map(async (l) => {
        const p = pos.get(l.nodeId)!;
        if (p >= got.next) return;
        const units = got.units.filter((u) => u.entry >= p);
        if (units.length === 0 || units[0]!.entry !== p) throw new StorageError(`recovery of segment ${seg.segment} (${seg.shard}): no unit starts at node ${l.nodeId}'s end ${p}`, 'journal_recovery');
        const dst = ctx.pool.get(l.nodeId, ctx.addrOf(l.nodeId) ?? '');
        await dst.call({ op: Op.Add, shard: seg.shard, segment: seg.segment, epoch, sync: true, lac: -1, firstEntry: p, units: units.map(readUnitToUnit) });
        pos.set(l.nodeId, got.next);
      }),
    );
    at = got.next;
  }
  return at;
}

/**
 * Fences, completes and seals an open segment; returns its last entry id.
 * `deadNodes` are journal nodes meta holds dead: when too few replicas answer
 * but every silent one is dead, the segment is closed with those that did —
 * with an ack quorum of 1 that can lose the newest acknowledged entries, the
 * price of asynchronous replication.
 */
export async function recoverSegment(ctx: RecoveryContext, seg: SegmentInfo, deadNodes: ReadonlySet<number>): Promise<number> {
  const epoch = seg.epoch + 1;
  try {
    await ctx.meta.bumpEpoch(seg.shard, seg.segment, seg.ensemble, epoch);
  } catch (err) {
    if (err instanceof MetaConflictError) throw new StorageError(`segment ${seg.segment} of shard ${seg.shard} is being recovered by another writer`, 'journal_recovery_race');
    throw err;
  }
  const timeout = ctx.fenceTimeoutMs ?? 3000;
  const answers = await Promise.allSettled(
    seg.ensemble.map(async (nodeId) => {
      const addr = ctx.addrOf(nodeId);
      if (!addr) throw new Error(`journal node ${nodeId} has no known address`);
      const res = await withTimeout(ctx.pool.get(nodeId, addr).request({ op: Op.Fence, shard: seg.shard, segment: seg.segment, epoch }), timeout, `fence on journal node ${nodeId}`);
      if (res.status !== Status.Ok || (res.op !== Op.Fence && res.op !== Op.Info)) throw new Error(`fence refused: ${res.message}`);
      return { nodeId, state: res.state as ReplicaState };
    }),
  );
  const live: Array<{ nodeId: number; state: ReplicaState }> = [];
  for (const a of answers) if (a.status === 'fulfilled') live.push(a.value);
  const need = seg.ensemble.length - seg.ackQuorum + 1;
  if (live.length < need) {
    const silent = seg.ensemble.filter((id) => !live.some((l) => l.nodeId === id));
    if (live.length === 0 || !silent.every((id) => deadNodes.has(id))) throw new NotEnoughReplicasError(seg.shard, seg.segment, live.length, need);
    ctx.log?.warn({ shard: seg.shard, segment: seg.segment, answered: live.map((l) => l.nodeId), dead: silent }, 'journal: closing a segment with fewer replicas than its ack quorum guarantees; entries acknowledged by the dead replicas alone may be lost');
  }
  const minEnd = Math.min(...live.map((l) => l.state.end));
  const maxEnd = Math.max(...live.map((l) => l.state.end));
  const end = await completeTail(ctx, seg, epoch, live, minEnd, maxEnd);
  try {
    // Its size and newest timestamp died with its writer: retention goes by the seal time.
    await ctx.meta.sealSegment(seg.shard, seg.segment, end - 1, { nowMs: Date.now() });
  } catch (err) {
    if (err instanceof MetaConflictError) throw new StorageError(`segment ${seg.segment} of shard ${seg.shard} was sealed elsewhere at another entry`, 'journal_recovery_race');
    throw err;
  }
  ctx.log?.info({ shard: seg.shard, segment: seg.segment, lastEntry: end - 1, replicas: live.map((l) => l.nodeId) }, 'journal: recovered and sealed a segment');
  return end - 1;
}
