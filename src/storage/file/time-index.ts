/**
 * A shard's sparse time (and size) index.
 *
 * Offsets are cut into intervals of K records: interval j = offsets [jK, (j+1)K).
 * For every complete interval the index holds the largest timestamp and the
 * accounted bytes of its records; the last, partial interval is kept in memory
 * only. All of it is in memory (16 bytes per K records); files make it survive a
 * restart without re-reading the log.
 *
 * offsetForTime(t): the first interval (from the one holding startOffset) whose max
 * timestamp is >= t holds the answer (earlier intervals have no record >= t), found
 * by scanning at most K records — exact for non-monotonic timestamps too. Time
 * retention drops whole intervals whose max timestamp is older than the cutoff;
 * byte retention and ShardInfo.bytes sum interval bytes (plus the CQ sizes of the
 * records at the edges).
 *
 * FILES: `index/<shard dir>/<20-digit first offset>`, aligned with the ConsumeQueue
 * files (perFile offsets each, so perFile / K entries), entry of interval j at
 * ((jK - first) / K) * 20:
 *
 *   [i64 max timestamp][u64 bytes][u32 crc32c of the 16 bytes before, seeded with j]
 *
 * An empty interval stores -2^53 as its max. Files are written (and fdatasynced)
 * with the checkpoint; on open, entries are trusted only up to the first bad CRC,
 * gap, or the point from which the ConsumeQueue was rebuilt — the rest is
 * recomputed from the records.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, truncate as truncateFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../../common/crc.js';
import { ioError } from '../errors.js';
import { readI64, readU64, writeI64, writeU64 } from './commitlog.js';
import { NUMBER_NAME_RE, datasyncPath, isNotFound, numberName, writeAll } from './fs-util.js';

export const TIME_ENTRY_BYTES = 20;
const RW_CREATE = constants.O_RDWR | constants.O_CREAT;
const NEG = -(2 ** 53);
const POS = 2 ** 53;

export class TimeIndex {
  /** Intervals per file. */
  private readonly perFileIntervals: number;
  private maxTs: Float64Array;
  private bytes: Float64Array;
  /** Interval held at maxTs[0]. */
  private arrBase: number;
  /** The partial interval (= arrBase + number of complete intervals held). */
  cur: number;
  curMax = -Infinity;
  curBytes = 0;
  private nextBoundary: number;
  /** Intervals below this are on disk. */
  private diskCount: number;
  private firstFile: number | undefined;
  private readonly unsynced = new Set<number>();
  private chain: Promise<void> = Promise.resolve();
  private destroyed = false;

  private constructor(
    readonly dir: string,
    readonly K: number,
    readonly perFile: number,
    first: number,
  ) {
    this.perFileIntervals = perFile / K;
    this.arrBase = first;
    this.cur = first;
    this.nextBoundary = (first + 1) * K;
    this.diskCount = first;
    this.maxTs = new Float64Array(16);
    this.bytes = new Float64Array(16);
  }

  static empty(dir: string, K: number, perFile: number, start: number): TimeIndex {
    return new TimeIndex(dir, K, perFile, Math.floor(start / K));
  }

  /**
   * Loads the complete intervals from the one holding `start` up to (excluding)
   * interval `cap`, stopping at the first gap or bad entry; cuts the files there.
   */
  static async load(dir: string, K: number, perFile: number, start: number, cap: number): Promise<TimeIndex> {
    const idx = new TimeIndex(dir, K, perFile, Math.floor(start / K));
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (!isNotFound(err)) throw ioError(dir, 'list directory', err);
    }
    const files = names
      .filter((n) => NUMBER_NAME_RE.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    const F0 = Math.floor(start / perFile) * perFile;
    let expected = F0;
    let stop = false;
    for (const F of files) {
      const path = join(dir, numberName(F));
      if (F < F0 || stop || F !== expected) {
        await unlink(path).catch((err: unknown) => {
          if (!isNotFound(err)) throw ioError(path, 'delete time index file', err);
        });
        continue;
      }
      let buf: Buffer;
      try {
        buf = await readFile(path);
      } catch (err) {
        throw ioError(path, 'read time index file', err);
      }
      const n = Math.min(idx.perFileIntervals, Math.floor(buf.length / TIME_ENTRY_BYTES));
      const j0 = F / K;
      let e = F === F0 ? idx.cur - j0 : 0;
      for (; e < n; e++) {
        const j = j0 + e;
        if (j >= cap) break;
        const at = e * TIME_ENTRY_BYTES;
        if (crc32c(buf.subarray(at, at + 16), j >>> 0) !== buf.readUInt32LE(at + 16)) break;
        const m = readI64(buf, at);
        idx.push(m <= NEG ? -Infinity : m >= POS ? Infinity : m, readU64(buf, at + 8));
      }
      idx.firstFile ??= F;
      if (e < n || n < idx.perFileIntervals || buf.length !== n * TIME_ENTRY_BYTES) {
        stop = true;
        const keep = Math.min(e, n) * TIME_ENTRY_BYTES;
        if (keep < buf.length) {
          await truncateFile(path, keep).catch((err: unknown) => {
            throw ioError(path, 'truncate time index file', err);
          });
        }
      }
      expected = F + perFile;
    }
    idx.diskCount = idx.cur;
    return idx;
  }

  private push(max: number, bytes: number): void {
    const i = this.cur - this.arrBase;
    if (i >= this.maxTs.length) {
      const m = new Float64Array(this.maxTs.length * 2);
      m.set(this.maxTs);
      this.maxTs = m;
      const b = new Float64Array(this.bytes.length * 2);
      b.set(this.bytes);
      this.bytes = b;
    }
    this.maxTs[i] = max;
    this.bytes[i] = bytes;
    this.cur++;
    this.nextBoundary = (this.cur + 1) * this.K;
    this.curMax = -Infinity;
    this.curBytes = 0;
  }

  /** Adds the record at `offset` (the next one: offsets are dense). */
  add(offset: number, ts: number, bytes: number): void {
    if (offset >= this.nextBoundary || offset < this.cur * this.K) this.jump(offset);
    if (ts > this.curMax) this.curMax = ts;
    this.curBytes += bytes;
    if (offset + 1 === this.nextBoundary) this.push(this.curMax, this.curBytes);
  }

  /** A record outside the partial interval (only after a rebase): restart the index there. */
  private jump(offset: number): void {
    const j = Math.floor(offset / this.K);
    if (j === this.cur + 1) {
      this.push(this.curMax, this.curBytes);
      return;
    }
    this.reset(offset);
  }

  /** Forgets everything; the next record added is `start`. */
  reset(start: number): void {
    const j = Math.floor(start / this.K);
    this.arrBase = j;
    this.cur = j;
    this.nextBoundary = (j + 1) * this.K;
    this.curMax = -Infinity;
    this.curBytes = 0;
    this.diskCount = Math.min(this.diskCount, j);
  }

  /** Max timestamp of interval j (Infinity when unknown: below what is held). */
  intervalMax(j: number): number {
    if (j === this.cur) return this.curMax;
    if (j < this.arrBase || j > this.cur) return Infinity;
    return this.maxTs[j - this.arrBase] as number;
  }

  /** Bytes of complete interval j (j < cur, j >= the interval holding startOffset). */
  intervalBytes(j: number): number {
    if (j === this.cur) return this.curBytes;
    return this.bytes[j - this.arrBase] ?? 0;
  }

  /** Forgets intervals entirely below `start`. */
  dropBelow(start: number): void {
    const j = Math.min(Math.floor(start / this.K), this.cur);
    const drop = j - this.arrBase;
    if (drop <= 0) return;
    const len = this.cur - this.arrBase;
    this.maxTs.copyWithin(0, drop, len);
    this.bytes.copyWithin(0, drop, len);
    this.arrBase = j;
  }

  private run(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Writes the complete intervals not yet on disk; with `sync`, fdatasyncs the files written since the last sync. */
  persist(sync: boolean): Promise<void> {
    // Encode now: the arrays may move while the writes run.
    const from = Math.max(this.diskCount, this.arrBase);
    const to = this.cur;
    const parts: Array<{ F: number; at: number; buf: Buffer; upTo: number }> = [];
    for (let j = from; j < to; ) {
      const F = Math.floor((j * this.K) / this.perFile) * this.perFile;
      const jF = F / this.K;
      const count = Math.min(to, jF + this.perFileIntervals) - j;
      const buf = Buffer.allocUnsafe(count * TIME_ENTRY_BYTES);
      for (let e = 0; e < count; e++) {
        const jj = j + e;
        const at = e * TIME_ENTRY_BYTES;
        const m = this.maxTs[jj - this.arrBase] as number;
        writeI64(buf, at, m === -Infinity ? NEG : m === Infinity ? POS : m);
        writeU64(buf, at + 8, this.bytes[jj - this.arrBase] as number);
        buf.writeUInt32LE(crc32c(buf.subarray(at, at + 16), jj >>> 0), at + 16);
      }
      parts.push({ F, at: (j - jF) * TIME_ENTRY_BYTES, buf, upTo: j + count });
      j += count;
    }
    return this.run(async () => {
      if (this.destroyed) return;
      if (parts.length > 0) {
        try {
          await mkdir(this.dir, { recursive: true });
        } catch (err) {
          throw ioError(this.dir, 'create directory', err);
        }
      }
      for (const p of parts) {
        const path = join(this.dir, numberName(p.F));
        try {
          const fh = await open(path, RW_CREATE, 0o644);
          try {
            await writeAll(fh, p.buf, p.at);
            if (sync) await fh.datasync();
          } finally {
            await fh.close();
          }
        } catch (err) {
          throw ioError(path, 'write time index', err);
        }
        if (sync) this.unsynced.delete(p.F);
        else this.unsynced.add(p.F);
        if (this.firstFile === undefined || p.F < this.firstFile) this.firstFile = p.F;
        if (p.upTo > this.diskCount) this.diskCount = p.upTo;
      }
      if (sync) {
        for (const F of [...this.unsynced]) {
          const path = join(this.dir, numberName(F));
          await datasyncPath(path).catch((err: unknown) => {
            throw ioError(path, 'fdatasync time index', err);
          });
          this.unsynced.delete(F);
        }
      }
    });
  }

  /** Deletes the files whose intervals are all below `start`. */
  deleteBelow(start: number): Promise<void> {
    return this.run(async () => {
      if (this.destroyed) return;
      const lastOnDisk = this.diskCount > 0 ? Math.floor(((this.diskCount - 1) * this.K) / this.perFile) * this.perFile : -1;
      while (this.firstFile !== undefined && this.firstFile + this.perFile <= start) {
        const F: number = this.firstFile;
        const path = join(this.dir, numberName(F));
        this.unsynced.delete(F);
        await unlink(path).catch((err: unknown) => {
          if (!isNotFound(err)) throw ioError(path, 'delete time index file', err);
        });
        this.firstFile = F + this.perFile > lastOnDisk ? undefined : F + this.perFile;
      }
    });
  }

  destroy(): Promise<void> {
    return this.run(async () => {
      this.destroyed = true;
      try {
        await rm(this.dir, { recursive: true, force: true });
      } catch (err) {
        throw ioError(this.dir, 'delete time index', err);
      }
    });
  }

  idle(): Promise<void> {
    return this.chain;
  }
}
