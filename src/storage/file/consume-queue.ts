/**
 * ConsumeQueue: a shard's offset → CommitLog index (RocketMQ layout).
 *
 * FILES: `consumequeue/<shard dir>/<20-digit first offset>`, each holding
 * `perFile` fixed 20-byte entries; the entry of offset o is in the file named
 * floor(o / perFile) * perFile, at byte (o mod perFile) * 20, so lookup is O(1):
 *
 *   [u64 commitlog position][u32 record size][u64 tag hash]     little-endian
 *
 * tag hash = CRC32C(tag UTF-8) in the low 32 bits and (tag byte length + 1) in the
 * high 32 bits; 0 when the record has no tag. Records stored in a batch entry (one
 * CommitLog entry for a whole Kafka-layout batch) all point at that entry, with
 * the high 32 bits BATCH_MARK and the low 32 bits the batch's record count.
 *
 * Entries are appended in memory and written to the files in batches (when enough
 * are pending, and at every checkpoint, which also fdatasyncs them); they are
 * rebuilt from the CommitLog on recovery, so they are never synced on the append
 * path. Entries below the shard's startOffset may be missing or stale (retention,
 * rebasing); whole files below it are deleted.
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, rm, stat, truncate as truncateFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageIOError, ioError } from '../errors.js';
import { NUMBER_NAME_RE, datasyncPath, isNotFound, numberName, readFully, writeAll } from './fs-util.js';
import type { HandleCache } from './handle-cache.js';

export const CQ_ENTRY_BYTES = 20;
const TWO_32 = 0x1_0000_0000;
const RW_CREATE = constants.O_RDWR | constants.O_CREAT;
/** Entries already written to disk that stay in memory for tail reads. */
const KEEP_FLUSHED = 1024;
const INITIAL_ENTRIES = 64;

export function entryPos(buf: Buffer, i: number): number {
  const at = i * CQ_ENTRY_BYTES;
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;
}

export function entrySize(buf: Buffer, i: number): number {
  return buf.readUInt32LE(i * CQ_ENTRY_BYTES + 8);
}

/** High tag word of the entries of records stored in a batch entry. */
export const BATCH_MARK = 0xffffffff;

/** Records in the batch entry this queue entry points at; 0 for a record stored on its own. */
export function entryBatchCount(buf: Buffer, i: number): number {
  const at = i * CQ_ENTRY_BYTES;
  return buf.readUInt32LE(at + 16) === BATCH_MARK ? buf.readUInt32LE(at + 12) : 0;
}

/**
 * Bytes a record is accounted for (ReadLimits.maxBytes, ShardInfo.bytes, retention):
 * its entry's size minus the shard name, shared evenly by the records of a batch entry.
 */
export function entryAcct(buf: Buffer, i: number, nameLen: number): number {
  const n = entryBatchCount(buf, i);
  const own = entrySize(buf, i) - nameLen;
  return n === 0 ? own : Math.ceil(own / n);
}

export interface CqLoadReport {
  /** Bytes cut off torn files (partial entries). */
  cutBytes: number;
  /** Files deleted: below the start, or after a gap or a short file. */
  deletedFiles: number;
}

export class ConsumeQueue {
  /** Offset of the next entry (entries [.., end) exist). */
  end: number;
  /** Entries before this are written to the files. */
  private diskEnd: number;
  /** Entries [memBase, end) are in mem. memBase <= diskEnd. */
  private mem: Buffer;
  private memView: DataView;
  private memBase: number;
  /** Entries below this are not needed (the shard's startOffset). */
  private floor: number;
  /** First offset of the lowest file that may exist. */
  private firstFile: number | undefined;
  private readonly unsynced = new Set<number>();
  private chain: Promise<void> = Promise.resolve();
  private destroyed = false;
  private dirMade: boolean;
  /** A background flush is queued or running. */
  flushing = false;

  private constructor(
    readonly dir: string,
    readonly perFile: number,
    private readonly handles: HandleCache,
    start: number,
    end: number,
    firstFile: number | undefined,
    dirMade: boolean,
  ) {
    this.end = end;
    this.diskEnd = end;
    this.memBase = end;
    this.floor = start;
    this.mem = Buffer.allocUnsafe(INITIAL_ENTRIES * CQ_ENTRY_BYTES);
    this.memView = new DataView(this.mem.buffer, this.mem.byteOffset, this.mem.length);
    this.firstFile = firstFile;
    this.dirMade = dirMade;
  }

  /** A new, empty queue starting at `start` (the directory is created on first flush). */
  static empty(dir: string, perFile: number, handles: HandleCache, start: number): ConsumeQueue {
    return new ConsumeQueue(dir, perFile, handles, start, start, undefined, false);
  }

  /**
   * Opens the queue on disk: keeps the contiguous run of files from the one holding
   * `start`, cuts a torn last entry, deletes files below the start or after a gap.
   */
  static async load(dir: string, perFile: number, handles: HandleCache, start: number): Promise<{ cq: ConsumeQueue; report: CqLoadReport }> {
    const report: CqLoadReport = { cutBytes: 0, deletedFiles: 0 };
    let names: string[] = [];
    let dirMade = true;
    try {
      names = await readdir(dir);
    } catch (err) {
      if (!isNotFound(err)) throw ioError(dir, 'list directory', err);
      dirMade = false;
    }
    const files = names
      .filter((n) => NUMBER_NAME_RE.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    const first = Math.floor(start / perFile) * perFile;
    let end = start;
    let firstFile: number | undefined;
    let expected = first;
    let stop = false;
    for (const f of files) {
      const path = join(dir, numberName(f));
      if (f < first || stop || f !== expected) {
        try {
          await unlink(path);
        } catch (err) {
          if (!isNotFound(err)) throw ioError(path, 'delete consume queue file', err);
        }
        report.deletedFiles++;
        continue;
      }
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (err) {
        throw ioError(path, 'stat consume queue file', err);
      }
      const n = Math.min(perFile, Math.floor(size / CQ_ENTRY_BYTES));
      if (n * CQ_ENTRY_BYTES !== size) {
        try {
          await truncateFile(path, n * CQ_ENTRY_BYTES);
        } catch (err) {
          throw ioError(path, 'truncate consume queue file', err);
        }
        report.cutBytes += size - n * CQ_ENTRY_BYTES;
      }
      firstFile ??= f;
      end = Math.max(end, f + n);
      if (n < perFile) stop = true;
      expected = f + perFile;
    }
    return { cq: new ConsumeQueue(dir, perFile, handles, start, end, firstFile, dirMade), report };
  }

  /** Entries not yet written to disk. */
  get pending(): number {
    return this.end - Math.max(this.diskEnd, this.floor);
  }

  append(pos: number, size: number, tagLo: number, tagHi: number): void {
    let at = (this.end - this.memBase) * CQ_ENTRY_BYTES;
    if (at + CQ_ENTRY_BYTES > this.mem.length) {
      this.grow();
      at = (this.end - this.memBase) * CQ_ENTRY_BYTES;
    }
    const dv = this.memView;
    dv.setUint32(at, pos >>> 0, true);
    dv.setUint32(at + 4, Math.floor(pos / TWO_32), true);
    dv.setUint32(at + 8, size, true);
    dv.setUint32(at + 12, tagLo, true);
    dv.setUint32(at + 16, tagHi, true);
    this.end++;
  }

  private grow(): void {
    // Entries already on disk are dropped from memory (but the newest KEEP_FLUSHED).
    const keepFrom = Math.max(this.memBase, Math.min(Math.max(this.diskEnd, this.floor), this.end) - KEEP_FLUSHED);
    const live = this.end - keepFrom;
    let cap = Math.max(INITIAL_ENTRIES, this.mem.length / CQ_ENTRY_BYTES);
    while (cap < (live + 1) * 2) cap *= 2;
    const nb = Buffer.allocUnsafe(cap * CQ_ENTRY_BYTES);
    this.mem.copy(nb, 0, (keepFrom - this.memBase) * CQ_ENTRY_BYTES, (this.end - this.memBase) * CQ_ENTRY_BYTES);
    this.setMem(nb);
    this.memBase = keepFrom;
  }

  /** Entries [from, from + n) (all < end) as one buffer of n * 20 bytes. */
  async read(from: number, n: number): Promise<Buffer> {
    const mem = this.mem;
    const memBase = this.memBase;
    if (from >= memBase) return mem.subarray((from - memBase) * CQ_ENTRY_BYTES, (from + n - memBase) * CQ_ENTRY_BYTES);
    const out = Buffer.allocUnsafe(n * CQ_ENTRY_BYTES);
    const diskN = Math.min(n, memBase - from);
    let done = 0;
    while (done < diskN) {
      const o = from + done;
      const f = Math.floor(o / this.perFile) * this.perFile;
      const k = Math.min(diskN - done, f + this.perFile - o);
      const path = join(this.dir, numberName(f));
      const part = out.subarray(done * CQ_ENTRY_BYTES, (done + k) * CQ_ENTRY_BYTES);
      let got: number;
      try {
        got = await this.handles.use(path, (fh) => readFully(fh, part, (o - f) * CQ_ENTRY_BYTES));
      } catch (err) {
        throw ioError(path, 'read consume queue', err);
      }
      if (got < part.length) throw new StorageIOError(path, 'read consume queue', new Error(`entries ${o}..${o + k} are missing`));
      done += k;
    }
    if (diskN < n) mem.copy(out, diskN * CQ_ENTRY_BYTES, 0, (n - diskN) * CQ_ENTRY_BYTES);
    return out;
  }

  private run(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Writes pending entries to the files; with `sync`, fdatasyncs every file written since the last sync. */
  flush(sync: boolean): Promise<void> {
    return this.run(() => this.doFlush(sync));
  }

  private async doFlush(sync: boolean): Promise<void> {
    if (this.destroyed) return;
    const to = this.end;
    const from = Math.max(this.diskEnd, this.floor);
    if (to > from) {
      const mem = this.mem;
      const memBase = this.memBase;
      if (!this.dirMade) {
        try {
          await mkdir(this.dir, { recursive: true });
        } catch (err) {
          throw ioError(this.dir, 'create directory', err);
        }
        this.dirMade = true;
      }
      let o = from;
      while (o < to) {
        const f = Math.floor(o / this.perFile) * this.perFile;
        const k = Math.min(to - o, f + this.perFile - o);
        const path = join(this.dir, numberName(f));
        try {
          const fh = await open(path, RW_CREATE, 0o644);
          try {
            await writeAll(fh, mem.subarray((o - memBase) * CQ_ENTRY_BYTES, (o + k - memBase) * CQ_ENTRY_BYTES), (o - f) * CQ_ENTRY_BYTES);
            if (sync) await fh.datasync();
          } finally {
            await fh.close();
          }
        } catch (err) {
          throw ioError(path, 'write consume queue', err);
        }
        if (sync) this.unsynced.delete(f);
        else this.unsynced.add(f);
        if (this.firstFile === undefined || f < this.firstFile) this.firstFile = f;
        o += k;
        this.diskEnd = o;
      }
    }
    if (sync && this.unsynced.size > 0) {
      for (const f of [...this.unsynced]) {
        const path = join(this.dir, numberName(f));
        await datasyncPath(path).catch((err: unknown) => {
          throw ioError(path, 'fdatasync consume queue', err);
        });
        this.unsynced.delete(f);
      }
    }
  }

  /** Drops entries >= o (recovery), on disk too. */
  truncateTo(o: number): Promise<void> {
    return this.run(async () => {
      if (o >= this.end) return;
      if (o >= this.diskEnd) {
        this.end = o;
        return;
      }
      const f = Math.floor(o / this.perFile) * this.perFile;
      const last = Math.floor((this.diskEnd - 1) / this.perFile) * this.perFile;
      for (let g = last; g > f; g -= this.perFile) {
        const path = join(this.dir, numberName(g));
        this.handles.evict(path);
        this.unsynced.delete(g);
        try {
          await unlink(path);
        } catch (err) {
          if (!isNotFound(err)) throw ioError(path, 'delete consume queue file', err);
        }
      }
      const path = join(this.dir, numberName(f));
      try {
        await truncateFile(path, (o - f) * CQ_ENTRY_BYTES);
      } catch (err) {
        if (!isNotFound(err)) throw ioError(path, 'truncate consume queue file', err);
      }
      this.end = o;
      this.diskEnd = o;
      this.memBase = o;
      this.setMem(Buffer.allocUnsafe(INITIAL_ENTRIES * CQ_ENTRY_BYTES));
    });
  }

  /** Restarts an empty queue at `o` (> end); entries before it will never be asked for. */
  rebase(o: number): void {
    this.end = o;
    this.diskEnd = o;
    this.memBase = o;
    this.floor = Math.max(this.floor, o);
    this.setMem(Buffer.allocUnsafe(INITIAL_ENTRIES * CQ_ENTRY_BYTES));
  }

  private setMem(b: Buffer): void {
    this.mem = b;
    this.memView = new DataView(b.buffer, b.byteOffset, b.length);
  }

  /** Deletes the files whose entries are all below `start`. Returns how many. */
  deleteBelow(start: number): Promise<number> {
    let n = 0;
    return this.run(async () => {
      this.floor = Math.max(this.floor, start);
      if (this.destroyed || this.firstFile === undefined) return;
      const lastOnDisk = this.diskEnd > 0 ? Math.floor((this.diskEnd - 1) / this.perFile) * this.perFile : -1;
      while (this.firstFile !== undefined && this.firstFile + this.perFile <= start) {
        const f: number = this.firstFile;
        const path = join(this.dir, numberName(f));
        this.handles.evict(path);
        this.unsynced.delete(f);
        try {
          await unlink(path);
          n++;
        } catch (err) {
          if (!isNotFound(err)) throw ioError(path, 'delete consume queue file', err);
        }
        this.firstFile = f + this.perFile > lastOnDisk ? undefined : f + this.perFile;
      }
    }).then(() => n);
  }

  /** Deletes the queue's directory (shard deleted). */
  destroy(): Promise<void> {
    return this.run(async () => {
      this.destroyed = true;
      this.handles.evictUnder(this.dir);
      try {
        await rm(this.dir, { recursive: true, force: true });
      } catch (err) {
        throw ioError(this.dir, 'delete consume queue', err);
      }
    });
  }

  /** Waits for queued flushes. */
  idle(): Promise<void> {
    return this.chain;
  }
}
