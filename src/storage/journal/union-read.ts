/**
 * Reading a segment's entries as data when replicas may hold holes (striping,
 * E > Qw): a read goes to the first source in preference order; where that
 * replica answers a hole, the read continues from the next source that has not
 * shown a hole there. For a fully replicated segment the first answer is all
 * data, so this is one request, as before striping.
 *
 * A source that fails or lags (it answers nothing and ends at or before the
 * entry asked for) is dropped for the rest of the read.
 */
import type { JournalClientPool } from './client.js';
import { Op, type ReadUnit, type Response, type SegmentRef, unitEntries } from './protocol.js';

/** A unit that carries entries (not a hole). */
export type DataUnit = Exclude<ReadUnit, { kind: 'hole' }>;

export interface UnionReadContext {
  pool: JournalClientPool;
  addrOf(nodeId: number): string | undefined;
}

export interface UnionReadLimits {
  /** Entries below this id only. */
  limitEntry: number;
  maxEntries: number;
  maxBytes: number;
  /** Requests at most (default 16). */
  maxRounds?: number;
}

export interface UnionReadResult {
  /** Data units, contiguous from the unit holding `from`. */
  units: DataUnit[];
  /** The entry after the last unit read. */
  next: number;
  /** Why sources were dropped (for the error when nothing could be read). */
  problems: string[];
  /** A source failed (error, not a hole or a short replica): a short result may be the failure's. */
  failed: boolean;
}

/** Approximate bytes of a unit read back (for limits and throttles). */
export function readUnitBytes(u: DataUnit): number {
  if (u.kind === 'batch') return u.bytes.length;
  let n = 16 + (u.record.key?.length ?? 0) + (u.record.value?.length ?? 0);
  for (const h of u.record.headers) n += h.key.length + h.value.length + 8;
  return n;
}

export async function readUnion(ctx: UnionReadContext, seg: SegmentRef, sources: readonly number[], from: number, limits: UnionReadLimits): Promise<UnionReadResult> {
  const units: DataUnit[] = [];
  const problems: string[] = [];
  const dropped = new Set<number>();
  /** Per source: it holds a hole up to (not including) this entry. */
  const holeUntil = new Map<number, number>();
  let at = from;
  let entries = 0;
  let bytes = 0;
  let failed = false;
  const rounds = limits.maxRounds ?? 16;
  for (let round = 0; round < rounds; round++) {
    if (at >= limits.limitEntry || entries >= limits.maxEntries || bytes >= limits.maxBytes) break;
    const source = sources.find((id) => !dropped.has(id) && (holeUntil.get(id) ?? -1) <= at);
    if (source === undefined) break;
    const addr = ctx.addrOf(source);
    if (!addr) {
      dropped.add(source);
      failed = true;
      problems.push(`journal node ${source}: no known address`);
      continue;
    }
    let res: Extract<Response, { op: Op.Read }>;
    try {
      res = await ctx.pool.get(source, addr).call<Extract<Response, { op: Op.Read }>>({
        op: Op.Read,
        shard: seg.shard,
        segment: seg.segment,
        fromEntry: at,
        maxEntries: Math.max(1, Math.min(limits.maxEntries - entries, limits.limitEntry - at)),
        maxBytes: Math.max(1, Math.min(limits.maxBytes - bytes, 64 * 1024 * 1024)),
      });
    } catch (err) {
      dropped.add(source);
      failed = true;
      problems.push(`journal node ${source}: ${(err as Error).message}`);
      continue;
    }
    if (res.units.length === 0) {
      // A replica that lags (it missed the tail before the segment was sealed) is skipped, not trusted.
      dropped.add(source);
      problems.push(`journal node ${source} ends at entry ${res.state.end}`);
      continue;
    }
    for (const u of res.units) {
      if (u.entry >= limits.limitEntry || u.entry > at) break;
      const end = u.entry + unitEntries(u);
      if (end <= at) continue;
      if (u.kind === 'hole') {
        holeUntil.set(source, end);
        break;
      }
      units.push(u);
      entries += unitEntries(u);
      bytes += readUnitBytes(u);
      at = end;
      if (entries >= limits.maxEntries || bytes >= limits.maxBytes) break;
    }
  }
  return { units, next: at, problems, failed };
}
