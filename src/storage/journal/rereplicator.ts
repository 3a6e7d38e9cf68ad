/**
 * Re-replication of sealed journal segments (DESIGN.md §6: "sealed segments are
 * re-replicated back to E copies").
 *
 * A sealed segment is immutable, so bringing it back to E copies is a plain
 * copy: when meta holds a journal node of its ensemble dead (or the node is no
 * longer registered), pick a live journal node outside the ensemble (the one in
 * the fewest ensembles first), copy entries 0..lastEntry to it from a live
 * replica that holds them all (Read, then Add with sync and the segment's
 * epoch, in chunks; a striped segment's holes are read from the other members,
 * so the new replica holds a full copy), check the copy's end with Info, and only then swap the node
 * into the ensemble in meta (`journal.segment.replace`). Readers keep using the
 * old ensemble until that swap and the new one after it; at no time does meta
 * name a replica that does not hold the whole segment.
 *
 * A second, cheaper duty ("audit"): once per sealed segment (and again when its
 * ensemble changes) every member is asked for its end with Info; a live member
 * that holds less than the whole segment (it missed the tail while it was
 * unreachable and the segment was closed without it) gets the missing entries
 * copied from a full replica.
 *
 * Copying is throttled to `bytesPerSec` (reads and adds alike, so clients of
 * the source and target nodes do not notice) and done one segment at a time.
 * Only one broker in the cluster runs it at a time (the caller's `isActive`,
 * the live broker with the lowest id); if two briefly both act, meta's
 * compare-and-set (`from` must still be in the ensemble, `to` not yet) lets
 * one replace win, and the loser drops its copy.
 *
 * When no spare live journal exists, the segment stays under-replicated and is
 * reported (status(), a warning in the log once per segment).
 *
 * A third duty ("sweep", every minute): replicas that journal nodes keep but
 * meta no longer names for them (orphans) are deleted.
 */
import { StorageError } from '../errors.js';
import { JournalClientPool, JournalUnavailableError, type JournalConnection } from './client.js';
import type { JournalMetaPort, JournalNode, SegmentInfo } from './meta-port.js';
import { Op, Status, unitEntries, type Request, type Response } from './protocol.js';
import { readUnitToUnit } from './recovery.js';
import { readUnion, readUnitBytes } from './union-read.js';

export interface ReReplicatorLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface ReReplicatorOptions {
  /** Needs `allSegments` and `replaceReplica`; without them the re-replicator does nothing. */
  meta: JournalMetaPort;
  /** Connections to journal nodes (a private pool when omitted, closed on stop). */
  pool?: JournalClientPool;
  /** Copy rate limit in bytes per second (reads and adds); 0 = unlimited. */
  bytesPerSec: number;
  /** Pass period (default 3000 ms); meta changes trigger a pass too. */
  intervalMs?: number;
  /** Whether this node is the one that re-replicates now (default: always). */
  isActive?: () => boolean;
  log?: ReReplicatorLog;
  /** Bytes copied to a new or repaired replica (for a counter). */
  onCopied?: (bytes: number) => void;
  /** A segment's replica was moved to a new node in meta. */
  onReplaced?: (seg: SegmentInfo, from: number, to: number) => void;
  /** Sealed segments audited with Info per pass at most (default 256). */
  auditPerPass?: number;
  /** How often the live journal nodes are swept for orphan replicas (default 60 s; 0 = never). */
  orphanSweepMs?: number;
}

/** A segment whose ensemble names a journal node meta holds dead or no longer knows. */
export interface UnderReplicatedSegment {
  shard: string;
  segment: number;
  state: SegmentInfo['state'];
  ensemble: number[];
  /** The ensemble members that are dead or unregistered. */
  missing: number[];
}

export type WaitReason = 'no_spare_journal' | 'no_full_replica' | 'copy_failed' | 'replace_failed';

export interface ReReplicationStatus {
  /** This node is the one re-replicating. */
  active: boolean;
  bytes_per_sec: number;
  /** The copy in progress. */
  copying: { shard: string; segment: number; from: number | null; to: number; source: number; entries: number; copied_entries: number; copied_bytes: number } | null;
  /** Sealed segments left under-replicated at the last pass, and why. */
  waiting: Array<{ shard: string; segment: number; missing: number[]; reason: WaitReason; message: string }>;
  copied_bytes: number;
  replaced_segments: number;
  repaired_replicas: number;
  /** Replicas deleted from journal nodes that meta no longer names for them. */
  orphans_deleted: number;
  last_pass_ms: number | null;
}

/** Ensemble members that are dead or not registered, per segment (sealed and open). */
export function underReplicatedSegments(segments: readonly SegmentInfo[], journals: readonly JournalNode[]): UnderReplicatedSegment[] {
  const state = new Map(journals.map((j) => [j.id, j.state]));
  const out: UnderReplicatedSegment[] = [];
  for (const s of segments) {
    const missing = s.ensemble.filter((id) => {
      const st = state.get(id);
      return st === undefined || st === 'dead';
    });
    if (missing.length > 0) out.push({ shard: s.shard, segment: s.segment, state: s.state, ensemble: [...s.ensemble], missing });
  }
  return out;
}

const DEFAULT_INTERVAL_MS = 3000;
const MIN_GAP_MS = 250;
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const MIN_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK_ENTRIES = 10_000;
/** A target that failed a copy is not chosen again for this long. */
const BAD_TARGET_MS = 30_000;

class Stopped extends Error {
  constructor() {
    super('re-replication stopped');
  }
}

/** A failure of the node being copied to (so the next try picks another). */
class TargetError extends Error {}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ReReplicator {
  private readonly pool: JournalClientPool;
  private readonly ownPool: boolean;
  private unsubscribe: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  /** A meta change since the pass began: run another soon. */
  private dirty = false;
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly abort = new AbortController();
  /** Pacing: when the copy may send its next chunk. */
  private nextFree = 0;
  private readonly verified = new Set<string>();
  private readonly badTargets = new Map<number, number>();
  private readonly warned = new Set<string>();
  private readonly auditWarned = new Set<string>();
  private waiting: ReReplicationStatus['waiting'] = [];
  private copying: ReReplicationStatus['copying'] = null;
  private active = false;
  private lastPassMs: number | null = null;
  private readonly stats = { copiedBytes: 0, replaced: 0, repaired: 0, orphansDeleted: 0 };
  /** Replicas found orphan at the last sweep ("node\0shard#segment"): deleted if still orphan at the next. */
  private orphanSeen = new Set<string>();
  private lastSweepMs = 0;

  constructor(private readonly opts: ReReplicatorOptions) {
    this.ownPool = !opts.pool;
    this.pool = opts.pool ?? new JournalClientPool(10_000);
  }

  get bytesPerSec(): number {
    return this.opts.bytesPerSec;
  }

  /** Starts the passes: one now, then every intervalMs and soon after a meta change. Once only. */
  start(): void {
    if (this.loopDone || this.closed) return;
    this.unsubscribe = this.opts.meta.subscribe(() => {
      this.dirty = true;
      this.wake?.();
    });
    this.loopDone = this.loop();
  }

  /** Stops for good; a copy in progress is abandoned (its partial replica dropped) before this resolves. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.abort.abort();
    this.wake?.();
    await this.loopDone;
    if (this.ownPool) this.pool.closeAll();
  }

  status(): ReReplicationStatus {
    return {
      active: this.active,
      bytes_per_sec: this.opts.bytesPerSec,
      copying: this.copying ? { ...this.copying } : null,
      waiting: this.waiting.map((w) => ({ ...w, missing: [...w.missing] })),
      copied_bytes: this.stats.copiedBytes,
      replaced_segments: this.stats.replaced,
      repaired_replicas: this.stats.repaired,
      orphans_deleted: this.stats.orphansDeleted,
      last_pass_ms: this.lastPassMs,
    };
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      this.dirty = false;
      try {
        await this.runOnce();
      } catch (err) {
        if (!(err instanceof Stopped)) this.opts.log?.warn({ err: message(err) }, 'journal: re-replication pass failed');
      }
      await this.sleep(MIN_GAP_MS, false);
      if (!this.dirty) await this.sleep(this.opts.intervalMs ?? DEFAULT_INTERVAL_MS, true);
    }
  }

  /** Waits ms, or until stopped (or, when `wakeable`, a meta change). */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.abort.signal.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done, { once: true });
      if (wakeable) this.wake = done;
    });
  }

  /** One pass: re-replicates every sealed segment with a dead member it can, then audits unverified ones. */
  async runOnce(): Promise<void> {
    const meta = this.opts.meta;
    if (!meta.allSegments || !meta.replaceReplica) return;
    this.active = this.opts.isActive?.() ?? true;
    if (!this.active) {
      this.waiting = [];
      return;
    }
    const started = Date.now();
    const journals = meta.journals();
    const all = meta.allSegments();
    const load = new Map<number, number>();
    for (const s of all) for (const id of s.ensemble) load.set(id, (load.get(id) ?? 0) + 1);
    const waiting: ReReplicationStatus['waiting'] = [];
    for (const u of underReplicatedSegments(all, journals)) {
      if (u.state !== 'sealed') continue; // the writer replaces members of its open segment itself
      this.checkRunning();
      await this.reReplicate(u, load, waiting);
    }
    this.waiting = waiting;
    const still = new Set(waiting.map((w) => `${w.shard}#${w.segment}:${w.reason}`));
    for (const k of this.warned) if (!still.has(k)) this.warned.delete(k); // warn again if it comes back
    await this.audit();
    await this.sweepOrphans();
    this.lastPassMs = Date.now() - started;
  }

  /**
   * Replicas a journal node keeps that meta no longer names for it — the node
   * was down while its sealed segment was re-replicated elsewhere, while the
   * topic was deleted, or while retention dropped the segment — are deleted.
   * Only what is orphan at two sweeps in a row goes (meta's view here may lag a
   * change just made elsewhere), and only sealed or vanished segments: an open
   * segment is its writer's business.
   */
  private async sweepOrphans(): Promise<void> {
    const every = this.opts.orphanSweepMs ?? 60_000;
    const now = Date.now();
    if (every <= 0 || now - this.lastSweepMs < every) return;
    this.lastSweepMs = now;
    const meta = this.opts.meta;
    const found = new Set<string>();
    for (const j of meta.journals()) {
      if (j.state !== 'alive') continue;
      this.checkRunning();
      let replicas: Array<{ shard: string; segment: number }>;
      try {
        const res = await this.conn(j.id).call<Extract<Response, { op: Op.List }>>({ op: Op.List });
        replicas = res.replicas;
      } catch {
        continue; // unreachable now: next sweep
      }
      for (const r of replicas) {
        const segs = meta.segments(r.shard);
        const seg = segs.find((s) => s.segment === r.segment);
        const orphan = seg ? seg.state === 'sealed' && !seg.ensemble.includes(j.id) : segs.length === 0 || r.segment < segs[0]!.segment;
        if (!orphan) continue;
        const key = `${j.id}\u0000${r.shard}#${r.segment}`;
        if (!this.orphanSeen.has(key)) {
          found.add(key);
          continue;
        }
        const res = await this.conn(j.id)
          .request({ op: Op.Delete, shard: r.shard, segment: r.segment })
          .catch(() => undefined);
        if (res && (res.status === Status.Ok || res.status === Status.NotFound)) {
          this.stats.orphansDeleted++;
          this.opts.log?.info({ node: j.id, shard: r.shard, segment: r.segment }, `journal: deleted node ${j.id}'s replica of segment ${r.segment} of ${r.shard}, which meta no longer names`);
        } else found.add(key);
      }
    }
    this.orphanSeen = found;
  }

  private checkRunning(): void {
    if (this.closed) throw new Stopped();
    if (!(this.opts.isActive?.() ?? true)) {
      this.active = false;
      throw new Stopped();
    }
  }

  private current(shard: string, segment: number): SegmentInfo | undefined {
    return this.opts.meta.segments(shard).find((s) => s.segment === segment);
  }

  private journal(id: number): JournalNode | undefined {
    return this.opts.meta.journals().find((j) => j.id === id);
  }

  private conn(id: number) {
    const j = this.journal(id);
    if (!j) throw new JournalUnavailableError(id, '', 'not a registered journal node');
    return this.pool.get(id, j.addr);
  }

  /** A replica's end (0 when it holds no replica), or undefined when the node does not answer. */
  private async endOf(seg: SegmentInfo, id: number): Promise<number | undefined> {
    try {
      const res = await this.conn(id).request({ op: Op.Info, shard: seg.shard, segment: seg.segment });
      if (res.status === Status.NotFound) return 0;
      if (res.status !== Status.Ok || res.op !== Op.Info) return undefined;
      return res.state.end;
    } catch {
      return undefined;
    }
  }

  /** A live member (other than `exclude`) that holds every entry of the sealed segment. */
  private async fullReplica(seg: SegmentInfo, exclude: ReadonlySet<number>): Promise<number | undefined> {
    const need = (seg.lastEntry ?? -1) + 1;
    const candidates = seg.ensemble
      .filter((id) => !exclude.has(id))
      .map((id) => ({ id, state: this.journal(id)?.state }))
      .filter((c) => c.state === 'alive' || c.state === 'suspect')
      .sort((a, b) => (a.state === b.state ? 0 : a.state === 'alive' ? -1 : 1));
    for (const c of candidates) {
      const end = await this.endOf(seg, c.id);
      if (end !== undefined && end >= need) return c.id;
    }
    return undefined;
  }

  private note(waiting: ReReplicationStatus['waiting'], u: UnderReplicatedSegment, reason: WaitReason, text: string): void {
    waiting.push({ shard: u.shard, segment: u.segment, missing: [...u.missing], reason, message: text });
    const key = `${u.shard}#${u.segment}:${reason}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.opts.log?.warn({ shard: u.shard, segment: u.segment, missing: u.missing, reason }, `journal: segment ${u.segment} of shard ${u.shard} stays under-replicated: ${text}`);
  }

  private async reReplicate(u: UnderReplicatedSegment, load: Map<number, number>, waiting: ReReplicationStatus['waiting']): Promise<void> {
    const meta = this.opts.meta;
    const seg = this.current(u.shard, u.segment);
    if (!seg || seg.state !== 'sealed') return;
    const from = u.missing.find((id) => seg.ensemble.includes(id));
    if (from === undefined) return;
    const now = Date.now();
    const targets = meta
      .journals()
      .filter((j) => j.state === 'alive' && !seg.ensemble.includes(j.id) && !((this.badTargets.get(j.id) ?? 0) > now))
      .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0) || a.id - b.id);
    const target = targets[0];
    if (!target) {
      this.note(waiting, u, 'no_spare_journal', 'no live journal node outside its ensemble to copy it to');
      return;
    }
    const last = seg.lastEntry ?? -1;
    if (last >= 0) {
      const source = await this.fullReplica(seg, new Set([from]));
      if (source === undefined) {
        this.note(waiting, u, 'no_full_replica', 'no live member of its ensemble answers with every entry');
        return;
      }
      try {
        await this.copy(seg, source, target.id, 0, last + 1, from);
      } catch (err) {
        if (err instanceof Stopped) {
          await this.dropReplica(seg, target.id);
          throw err;
        }
        if (err instanceof TargetError) this.badTargets.set(target.id, Date.now() + BAD_TARGET_MS);
        this.note(waiting, u, 'copy_failed', `copy from node ${source} to node ${target.id} failed: ${message(err)}`);
        await this.dropReplica(seg, target.id);
        return;
      }
    }
    try {
      await meta.replaceReplica!(seg.shard, seg.segment, from, target.id);
    } catch (err) {
      // Lost a race (another broker replaced it, or the segment was deleted): drop our copy unless meta names it now.
      const now = this.current(seg.shard, seg.segment);
      if (!now || !now.ensemble.includes(target.id)) await this.dropReplica(seg, target.id);
      if (now?.ensemble.includes(from)) this.note(waiting, u, 'replace_failed', message(err));
      return;
    }
    load.set(target.id, (load.get(target.id) ?? 0) + 1);
    load.set(from, (load.get(from) ?? 1) - 1);
    this.stats.replaced++;
    this.opts.onReplaced?.(seg, from, target.id);
    this.opts.log?.info({ shard: seg.shard, segment: seg.segment, from, to: target.id, entries: last + 1 }, `journal: re-replicated segment ${seg.segment} of shard ${seg.shard} from dead node ${from} to node ${target.id}`);
  }

  /** Drops a replica we wrote but meta does not name (best effort). */
  private async dropReplica(seg: SegmentInfo, id: number): Promise<void> {
    const now = this.current(seg.shard, seg.segment);
    if (now?.ensemble.includes(id)) return;
    try {
      await this.conn(id).request({ op: Op.Delete, shard: seg.shard, segment: seg.segment });
    } catch {
      // unreachable: an orphan replica, harmless (reads follow meta)
    }
  }

  private chunkBytes(): number {
    const r = this.opts.bytesPerSec;
    if (r <= 0) return MAX_CHUNK_BYTES;
    return Math.max(MIN_CHUNK_BYTES, Math.min(MAX_CHUNK_BYTES, Math.floor(r / 4)));
  }

  /** Waits so that everything copied so far has taken at least bytes / rate. */
  private async pace(bytes: number): Promise<void> {
    const r = this.opts.bytesPerSec;
    if (r <= 0) return;
    const now = Date.now();
    this.nextFree = Math.max(now, this.nextFree) + (bytes * 1000) / r;
    const wait = this.nextFree - now;
    if (wait <= 0) return;
    await this.sleep(wait, false);
    if (this.closed) throw new Stopped();
  }

  /**
   * Copies entries [fromEntry, toEntry) of a sealed segment from `source` to
   * `target` and checks the target's end. A new replica (fromEntry 0, `replacing`
   * set) starts from a clean slate: whatever the target held of that segment
   * (an orphan, an abandoned copy) is deleted first.
   */
  private async copy(seg: SegmentInfo, source: number, target: number, fromEntry: number, toEntry: number, replacing: number | null): Promise<void> {
    this.conn(source); // throws when the source is not a registered journal
    // A striped segment's replicas hold holes where other members hold the data: those fill them in.
    const others = seg.ensemble.filter((id) => id !== source && id !== target && id !== replacing && ['alive', 'suspect'].includes(this.journal(id)?.state ?? 'dead'));
    const sources = [source, ...others];
    let dst: JournalConnection;
    try {
      dst = this.conn(target);
    } catch (err) {
      throw new TargetError(message(err));
    }
    const onTarget = async <R extends Response>(req: Request): Promise<R> => {
      try {
        return await dst.call<R>(req);
      } catch (err) {
        throw new TargetError(message(err));
      }
    };
    if (replacing !== null) {
      // Never clear a replica meta names (another broker may have just swapped this node in).
      if (this.current(seg.shard, seg.segment)?.ensemble.includes(target) !== false) throw new StorageError(`node ${target} is in the ensemble of segment ${seg.segment} (${seg.shard}) now, or the segment is gone`, 'journal_rereplication');
      const res = await dst.request({ op: Op.Delete, shard: seg.shard, segment: seg.segment }).catch((err: unknown) => {
        throw new TargetError(message(err));
      });
      if (res.status !== Status.Ok && res.status !== Status.NotFound) throw new TargetError(`could not clear node ${target}'s old replica: ${res.message}`);
    }
    this.copying = { shard: seg.shard, segment: seg.segment, from: replacing, to: target, source, entries: toEntry, copied_entries: fromEntry, copied_bytes: 0 };
    const chunk = this.chunkBytes();
    let at = fromEntry;
    try {
      while (at < toEntry) {
        if (this.closed) throw new Stopped();
        const got = await readUnion({ pool: this.pool, addrOf: (id) => this.journal(id)?.addr }, seg, sources, at, { limitEntry: toEntry, maxEntries: MAX_CHUNK_ENTRIES, maxBytes: chunk });
        const units = got.units.filter((u) => u.entry + unitEntries(u) > at);
        if (units.length === 0) throw new StorageError(`no replica of segment ${seg.segment} (${seg.shard}) has entry ${at} as data (${got.problems.join('; ') || `node ${source} reported ${toEntry} entries`})`, 'journal_rereplication');
        const first = units[0]!.entry;
        const next = got.next;
        let bytes = 0;
        for (const u of units) bytes += readUnitBytes(u);
        await onTarget({ op: Op.Add, shard: seg.shard, segment: seg.segment, epoch: seg.epoch, sync: true, lac: toEntry - 1, firstEntry: first, units: units.map(readUnitToUnit) });
        at = next;
        this.stats.copiedBytes += bytes;
        this.opts.onCopied?.(bytes);
        if (this.copying) {
          this.copying.copied_entries = at;
          this.copying.copied_bytes += bytes;
        }
        await this.pace(bytes);
      }
      const info = await onTarget<Extract<Response, { op: Op.Fence | Op.Info }>>({ op: Op.Info, shard: seg.shard, segment: seg.segment });
      if (info.state.end < toEntry) throw new TargetError(`node ${target} ends at entry ${info.state.end} after the copy, expected ${toEntry}`);
    } finally {
      this.copying = null;
    }
  }

  /** Checks each sealed segment's members once (again when its ensemble changes); copies missing tails. */
  private async audit(): Promise<void> {
    const meta = this.opts.meta;
    const all = meta.allSegments!();
    const keys = new Set<string>();
    const dead = new Set(underReplicatedSegments(all, meta.journals()).flatMap((u) => u.missing));
    let budget = this.opts.auditPerPass ?? 256;
    const toCheck: SegmentInfo[] = [];
    for (const s of all) {
      if (s.state !== 'sealed' || (s.lastEntry ?? -1) < 0) continue;
      const key = `${s.shard}#${s.segment}:${s.ensemble.join(',')}:${s.lastEntry}`;
      keys.add(key);
      if (this.verified.has(key) || s.ensemble.some((id) => dead.has(id))) continue;
      if (budget-- > 0) toCheck.push(s);
    }
    for (const k of [...this.verified]) if (!keys.has(k)) this.verified.delete(k);
    for (const s of toCheck) {
      this.checkRunning();
      if (await this.auditOne(s)) this.verified.add(`${s.shard}#${s.segment}:${s.ensemble.join(',')}:${s.lastEntry}`);
    }
  }

  /** True when every member holds the whole segment (after copying missing tails). */
  private async auditOne(s: SegmentInfo): Promise<boolean> {
    const need = (s.lastEntry ?? -1) + 1;
    const ends = await Promise.all(s.ensemble.map(async (id) => ({ id, end: await this.endOf(s, id) })));
    if (ends.some((e) => e.end === undefined)) return false; // someone is unreachable: try again next pass
    const short = ends.filter((e) => e.end! < need);
    if (short.length === 0) return true;
    const source = ends.find((e) => e.end! >= need)?.id;
    if (source === undefined) {
      const key = `${s.shard}#${s.segment}`;
      if (!this.auditWarned.has(key)) {
        this.auditWarned.add(key);
        this.opts.log?.warn({ shard: s.shard, segment: s.segment, ends }, `journal: no replica of segment ${s.segment} of shard ${s.shard} holds all of its ${need} entries`);
      }
      return false;
    }
    for (const e of short) {
      const now = this.current(s.shard, s.segment);
      if (!now || !now.ensemble.includes(e.id)) return false;
      try {
        await this.copy(s, source, e.id, e.end!, need, null);
      } catch (err) {
        if (err instanceof Stopped) throw err;
        this.opts.log?.warn({ shard: s.shard, segment: s.segment, node: e.id, err: message(err) }, 'journal: could not complete a short replica of a sealed segment');
        return false;
      }
      this.stats.repaired++;
      this.opts.log?.info({ shard: s.shard, segment: s.segment, node: e.id, from: e.end, to: need }, `journal: completed node ${e.id}'s replica of segment ${s.segment} of shard ${s.shard} (entries ${e.end}..${need - 1})`);
    }
    return true;
  }
}
