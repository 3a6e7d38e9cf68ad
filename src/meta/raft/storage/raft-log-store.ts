/**
 * Durable storage for one Raft node: a write-ahead log (WAL) of segment files
 * plus snapshot files, all in one directory owned by this store.
 *
 * ON-DISK FORMAT (all integers little-endian; u64 values are < 2^53)
 *
 * WAL segments: `wal-<16 hex digits of the segment sequence number>.log`, numbered
 * 1, 2, 3... with no gaps. Each is a sequence of records:
 *
 *   [u32 len][u32 crc][u8 type][payload]      len = 1 + payload bytes; crc = CRC32C(type + payload)
 *
 *   type 1 HEADER    u32 version(1) u64 seq u64 term u64 vote u64 commit
 *                    Always the first record of a segment (and only there): the
 *                    sequence number (must match the file name) and the hard state
 *                    in effect when the segment was started, so older segments
 *                    can be deleted without losing the hard state.
 *   type 2 ENTRY     u64 index u64 term u8 entryType(0 normal, 1 conf) data(rest)
 *   type 3 HARDSTATE u64 term u64 vote u64 commit
 *   type 4 SNAPSHOT  u64 index u64 term — a snapshot was installed by persist()
 *                    (the snapshot file itself is written, durably, first).
 *
 * One persist() call appends one batch, [SNAPSHOT] ENTRY* [HARDSTATE], with one
 * positioned write and one fdatasync (group commit). A segment is rotated when a
 * batch would make it exceed `segmentBytes` (batches never straddle segments; a
 * batch larger than `segmentBytes` gets a segment of its own). A new segment is
 * created with its HEADER and first batch in one writev, fdatasynced, and the
 * directory fsynced.
 *
 * Replay rules (WAL order): ENTRY i with i <= last index replaces the stored
 * suffix from i on (so a conflicting append needs no extra marker); ENTRY i with
 * i > last + 1 is a gap and a fatal inconsistency. SNAPSHOT (i, t): if the log
 * holds entry i with term t, nothing changes here (the snapshot file takes over
 * below); otherwise the whole log is dropped and the log continues after i.
 * Finally the log is reconciled with the newest valid snapshot file (S, T): entries
 * <= S are dropped (all entries, if the log's entry S has a term other than T),
 * and the hard state's commit is raised to at least S.
 *
 * Snapshot files: `snap-<16 hex digits of index>.snap`, see snapshot-file.ts (magic,
 * version, JSON meta, data, CRC32C of the whole). The 2 newest are kept; a corrupt
 * one is renamed to `*.corrupt` at open and the previous one is used instead.
 * `*.tmp` files are leftovers of interrupted writes and are deleted at open.
 *
 * RECOVERY: segments are replayed in order; the first record that runs past the
 * end of its file (torn), has a bad CRC or an impossible length, or a segment
 * whose first record is not its valid HEADER, ends the log: later segments are
 * deleted (newest first), then that segment is ftruncated at the record's offset.
 * This is normal after a crash and is reported in `recovery`, never thrown.
 *
 * WAL RETENTION: after a snapshot, segments (oldest first, never the active one)
 * whose entries are all < min(retainFrom, index of the OLDER of the two kept
 * snapshots + 1) are deleted, so that if the newest snapshot file turns out to be
 * corrupt, the previous snapshot plus the WAL still rebuild the same log.
 */
import { mkdir, open, readFile, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Entry, HardState, RestoredState, Snapshot } from '../core/types.js';
import { RaftStorageError, io } from './errors.js';
import { fsyncDir, writeAll, writevAll } from './fs-util.js';
import { hex16, parseSnapshotFileName, readSnapshotFile, snapshotFileName, writeSnapshotFile } from './snapshot-file.js';
import {
  HARDSTATE_RECORD_BYTES,
  HEADER_RECORD_BYTES,
  RecordType,
  RecordWriter,
  SNAPSHOT_RECORD_BYTES,
  UnreadableRecord,
  encodeHeader,
  entryRecordBytes,
  parseSegment,
  type WalRecord,
} from './wal-format.js';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Snapshot files kept on disk (the newest, and one to fall back to). */
export const SNAPSHOTS_TO_KEEP = 2;

const WAL_RE = /^wal-([0-9a-f]{16})\.log$/;

export function segmentFileName(seq: number): string {
  return `wal-${hex16(seq)}.log`;
}

export interface RaftLogStoreOptions {
  /** Rotate to a new WAL segment when a batch would grow the current one past this. Default 64 MiB. */
  segmentBytes?: number;
}

/** One Raft Ready's worth of durable state. */
export interface PersistUpdate {
  snapshot?: Snapshot;
  entries: Entry[];
  hardState?: HardState;
}

/** What the store recovered; the caller adds `initialConf` to make a RestoredState. */
export type StoredState = Omit<RestoredState, 'initialConf'>;

/** What open() found and repaired. The store logs nothing itself. */
export interface RecoveryReport {
  /** Bytes cut off the WAL: the torn/corrupt tail plus any later segments deleted. */
  truncatedBytes: number;
  /** WAL segment files after recovery. */
  segments: number;
  /** Log entries recovered (after the snapshot). */
  entries: number;
  /** Index of the snapshot in use, 0 when none. */
  snapshotIndex: number;
  /** Where the WAL was cut, and why ('torn', 'crc', 'bad_length', 'bad_header'). */
  cut?: { file: string; offset: number; reason: string };
  /** Later segment files deleted because an earlier one was cut. */
  deletedSegments: string[];
  /** Snapshot files that failed verification (renamed to `<name>.corrupt`). */
  corruptSnapshots: { file: string; reason: string }[];
  /** Leftover `*.tmp` files deleted. */
  removedTempFiles: string[];
}

interface Segment {
  seq: number;
  path: string;
  size: number;
  /** Highest entry (or snapshot-marker) index ever written to this segment; 0 when none. */
  maxIndex: number;
}

const ZERO_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

function misuse(op: string, path: string, detail: string): RaftStorageError {
  return new RaftStorageError(op, path, detail, 'raft_storage_misuse');
}

function isU53(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

/** Rebuilds the log from WAL records (see "Replay rules" above). */
class Replayer {
  /** Index before raw[0]; undefined until the first entry or snapshot marker. */
  base: number | undefined;
  raw: Entry[] = [];
  hardState: HardState = { ...ZERO_HARD_STATE };

  private termAt(i: number): number | undefined {
    if (this.base === undefined || i <= this.base) return undefined;
    return this.raw[i - this.base - 1]?.term;
  }

  apply(rec: WalRecord, path: string, offset: number): void {
    switch (rec.type) {
      case RecordType.Header:
      case RecordType.HardState:
        this.hardState = rec.hardState;
        return;
      case RecordType.Snapshot:
        if (this.base !== undefined && rec.index <= this.base) return;
        if (this.termAt(rec.index) === rec.term) return;
        this.raw = [];
        this.base = rec.index;
        return;
      case RecordType.Entry: {
        const e = rec.entry;
        if (this.base === undefined) {
          this.base = e.index - 1;
          this.raw.push(e);
          return;
        }
        const last = this.base + this.raw.length;
        if (e.index <= this.base) return;
        if (e.index > last + 1) {
          throw new RaftStorageError('replay', path, `entry ${e.index} at offset ${offset} does not follow last index ${last}`, 'raft_storage_corrupt');
        }
        this.raw.length = e.index - this.base - 1;
        this.raw.push(e);
        return;
      }
    }
  }
}

export class RaftLogStore {
  private snap: Snapshot | undefined;
  private snapIndex: number;
  private snapTerm: number;
  /** Entries snapIndex+1 .. lastIndex. */
  private log: Entry[];
  private hs: HardState;
  private segments: Segment[];
  private active: FileHandle;
  /** Indexes of the snapshot files on disk, ascending. */
  private snapshotIndexes: number[];
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private closePromise: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    readonly recovery: RecoveryReport,
    init: {
      snapshot: Snapshot | undefined;
      log: Entry[];
      hardState: HardState;
      segments: Segment[];
      active: FileHandle;
      snapshotIndexes: number[];
    },
  ) {
    this.snap = init.snapshot;
    this.snapIndex = init.snapshot?.meta.index ?? 0;
    this.snapTerm = init.snapshot?.meta.term ?? 0;
    this.log = init.log;
    this.hs = init.hardState;
    this.segments = init.segments;
    this.active = init.active;
    this.snapshotIndexes = init.snapshotIndexes;
  }

  // ---------------------------------------------------------------- open / recovery

  static async open(dir: string, opts: RaftLogStoreOptions = {}): Promise<RaftLogStore> {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= HEADER_RECORD_BYTES) {
      throw misuse('open', dir, `segmentBytes must be an integer > ${HEADER_RECORD_BYTES}, got ${segmentBytes}`);
    }
    const created = await io('create directory', dir, () => mkdir(dir, { recursive: true }));
    if (created !== undefined) await fsyncDir(dirname(created));
    const names = (await io('list directory', dir, () => readdir(dir))).sort();

    const report: RecoveryReport = {
      truncatedBytes: 0,
      segments: 0,
      entries: 0,
      snapshotIndex: 0,
      deletedSegments: [],
      corruptSnapshots: [],
      removedTempFiles: [],
    };

    // 1. Newest valid snapshot (read-only so far).
    const snapIndexes = names
      .map((n) => parseSnapshotFileName(n))
      .filter((i): i is number => i !== undefined)
      .sort((a, b) => b - a);
    let snapshot: Snapshot | undefined;
    for (const idx of snapIndexes) {
      const file = snapshotFileName(idx);
      const r = await readSnapshotFile(join(dir, file), idx);
      if (r.ok) {
        snapshot = r.snapshot;
        break;
      }
      report.corruptSnapshots.push({ file, reason: r.reason });
    }
    const snapIndex = snapshot?.meta.index ?? 0;
    const snapTerm = snapshot?.meta.term ?? 0;

    // 2. Replay the WAL segments (read-only so far).
    const seqs = names
      .map((n) => WAL_RE.exec(n)?.[1])
      .filter((h): h is string => h !== undefined)
      .map((h) => parseInt(h, 16))
      .sort((a, b) => a - b);
    for (let k = 1; k < seqs.length; k++) {
      if (seqs[k] !== (seqs[k - 1] as number) + 1) {
        throw new RaftStorageError('open', join(dir, segmentFileName((seqs[k - 1] as number) + 1)), 'WAL segment missing', 'raft_storage_corrupt');
      }
    }
    const segments: Segment[] = [];
    const replay = new Replayer();
    let cut: { k: number; offset: number; reason: string; fileSize: number } | undefined;
    const fileSizes: number[] = [];
    for (let k = 0; k < seqs.length; k++) {
      const seq = seqs[k] as number;
      const path = join(dir, segmentFileName(seq));
      if (cut) {
        // After the cut: only the size is needed (the file is deleted below).
        fileSizes.push((await io('stat segment', path, () => stat(path))).size);
        continue;
      }
      const buf = await io('read segment', path, () => readFile(path));
      fileSizes.push(buf.length);
      let parsed;
      try {
        parsed = parseSegment(buf, seq);
      } catch (err) {
        if (err instanceof UnreadableRecord) {
          throw new RaftStorageError('replay', path, `offset ${err.offset}: ${err.message}`, 'raft_storage_corrupt');
        }
        throw err;
      }
      const seg: Segment = { seq, path, size: parsed.validBytes, maxIndex: 0 };
      for (const { offset, record } of parsed.records) {
        replay.apply(record, path, offset);
        if (record.type === RecordType.Entry) seg.maxIndex = Math.max(seg.maxIndex, record.entry.index);
        if (record.type === RecordType.Snapshot) seg.maxIndex = Math.max(seg.maxIndex, record.index);
      }
      segments.push(seg);
      if (parsed.stop) cut = { k, offset: parsed.stop.offset, reason: parsed.stop.reason, fileSize: buf.length };
    }

    // 3. Reconcile the replayed log with the snapshot.
    let log: Entry[];
    const base = replay.base;
    if (base === undefined) {
      log = [];
    } else {
      if (base > snapIndex) {
        throw new RaftStorageError(
          'open',
          dir,
          `the WAL continues after index ${base} but the newest valid snapshot is at ${snapIndex}` +
            (report.corruptSnapshots.length ? ` (corrupt: ${report.corruptSnapshots.map((c) => c.file).join(', ')})` : ''),
          'raft_storage_corrupt',
        );
      }
      const last = base + replay.raw.length;
      if (snapIndex === base) log = replay.raw;
      else if (snapIndex > last) log = [];
      else if (replay.raw[snapIndex - base - 1]?.term === snapTerm) log = replay.raw.slice(snapIndex - base);
      else log = [];
    }
    const hardState = { ...replay.hardState, commit: Math.max(replay.hardState.commit, snapIndex) };

    // 4. Repair: cut the WAL tail, drop leftovers, set corrupt snapshots aside.
    let dirChanged = false;
    if (cut) {
      for (let k = seqs.length - 1; k > cut.k; k--) {
        const file = segmentFileName(seqs[k] as number);
        await io('delete segment', join(dir, file), () => unlink(join(dir, file)));
        report.deletedSegments.unshift(file);
        report.truncatedBytes += fileSizes[k] as number;
      }
      if (report.deletedSegments.length) await fsyncDir(dir);
      const seg = segments[cut.k] as Segment;
      await io('truncate segment', seg.path, async () => {
        const fh = await open(seg.path, 'r+');
        try {
          await fh.truncate(cut.offset);
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
      report.truncatedBytes += cut.fileSize - cut.offset;
      report.cut = { file: segmentFileName(seg.seq), offset: cut.offset, reason: cut.reason };
    }
    for (const name of names) {
      if (!name.endsWith('.tmp')) continue;
      await io('delete temp file', join(dir, name), () => unlink(join(dir, name)));
      report.removedTempFiles.push(name);
      dirChanged = true;
    }
    for (const c of report.corruptSnapshots) {
      const p = join(dir, c.file);
      await io('set aside corrupt snapshot', p, () => rename(p, `${p}.corrupt`));
      dirChanged = true;
    }

    // 5. The active segment: the last one, (re)started with a header if empty.
    let active: FileHandle;
    const lastSeg = segments[segments.length - 1];
    if (lastSeg === undefined) {
      const seg: Segment = { seq: 1, path: join(dir, segmentFileName(1)), size: 0, maxIndex: 0 };
      active = await io('create segment', seg.path, () => open(seg.path, 'wx'));
      segments.push(seg);
      dirChanged = true;
    } else {
      active = await io('open segment', lastSeg.path, () => open(lastSeg.path, 'r+'));
    }
    const activeSeg = segments[segments.length - 1] as Segment;
    if (activeSeg.size === 0) {
      const header = encodeHeader(activeSeg.seq, hardState);
      await io('write segment header', activeSeg.path, async () => {
        await writeAll(active, header, 0);
        await active.datasync();
      });
      activeSeg.size = header.length;
    }
    if (dirChanged) await fsyncDir(dir);

    report.segments = segments.length;
    report.entries = log.length;
    report.snapshotIndex = snapIndex;
    const corrupt = new Set(report.corruptSnapshots.map((c) => parseSnapshotFileName(c.file)));
    const onDisk = snapIndexes.filter((i) => !corrupt.has(i)).sort((a, b) => a - b);
    return new RaftLogStore(dir, segmentBytes, report, { snapshot, log, hardState, segments, active, snapshotIndexes: onDisk });
  }

  // ---------------------------------------------------------------- synchronous reads

  /** The recovered/current state, in the shape the Raft core's RestoredState wants (minus initialConf). */
  restored(): StoredState {
    const out: StoredState = { hardState: this.hardState(), entries: this.log.slice() };
    if (this.snap) out.snapshot = this.snap;
    return out;
  }

  hardState(): HardState {
    return { ...this.hs };
  }

  snapshot(): Snapshot | undefined {
    return this.snap;
  }

  /** Index of the first log entry held (snapshot index + 1). */
  firstIndex(): number {
    return this.snapIndex + 1;
  }

  /** Index of the last log entry (the snapshot index when the log is empty). */
  lastIndex(): number {
    return this.snapIndex + this.log.length;
  }

  /** Term of entry `index`; the snapshot's term at its index; undefined outside [snapshotIndex, lastIndex]. */
  term(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex) return undefined;
    return this.log[index - this.snapIndex - 1]?.term;
  }

  /** Entries in [lo, hi) (default: the whole log after the snapshot); a copy of the array. */
  entries(lo = this.firstIndex(), hi = this.lastIndex() + 1): Entry[] {
    const from = Math.max(lo, this.firstIndex()) - this.snapIndex - 1;
    const to = Math.min(hi, this.lastIndex() + 1) - this.snapIndex - 1;
    return to > from ? this.log.slice(from, to) : [];
  }

  // ---------------------------------------------------------------- writes

  /**
   * Persists one Raft Ready: the snapshot (if newer than the current one), the
   * entries (replacing any stored suffix from entries[0].index on), the hard
   * state, with one fdatasync. Resolves once durable. Calls run in call order.
   *
   * A snapshot at index S drops entries <= S; if the log's entry S does not have
   * the snapshot's term (or there is none), the whole log is dropped. Entries at or
   * below the (new) snapshot index are ignored. The store keeps references to the
   * given entries: do not mutate them afterwards.
   */
  persist(update: PersistUpdate): Promise<void> {
    return this.enqueue('persist', () => this.doPersist(update));
  }

  /**
   * The state machine took a snapshot at `snapshot.meta.index` (which must be in
   * the log, with the same term). Writes it durably, drops entries <= its index
   * from the log, keeps the 2 newest snapshot files, and deletes WAL segments
   * whose entries are all below min(retainFrom, older kept snapshot + 1).
   * A snapshot not newer than the current one is ignored.
   */
  saveSnapshot(snapshot: Snapshot, retainFrom: number): Promise<void> {
    return this.enqueue('save snapshot', () => this.doSaveSnapshot(snapshot, retainFrom));
  }

  /** Waits for queued writes, then closes the WAL. Later calls are rejected. */
  close(): Promise<void> {
    if (!this.closePromise) {
      const seg = this.segments[this.segments.length - 1] as Segment;
      this.closePromise = this.chain.then(() => io('close segment', seg.path, () => this.active.close()));
    }
    return this.closePromise;
  }

  private enqueue(op: string, fn: () => Promise<void>): Promise<void> {
    if (this.closePromise) return Promise.reject(new RaftStorageError(op, this.dir, 'store is closed', 'raft_storage_unavailable'));
    const run = async (): Promise<void> => {
      if (this.failure) {
        throw new RaftStorageError(op, this.dir, `store failed earlier: ${this.failure.message}`, 'raft_storage_unavailable', this.failure);
      }
      try {
        await fn();
      } catch (err) {
        // A rejected call (bad arguments, nothing written) leaves the store usable;
        // after an IO failure the on-disk state is unknown until reopened.
        if (!(err instanceof RaftStorageError && err.code === 'raft_storage_misuse')) this.failure = err as Error;
        throw err;
      }
    };
    const p = this.chain.then(run);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private validateEntries(entries: Entry[]): void {
    const first = entries[0];
    if (!first) return;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as Entry;
      if (!isU53(e.index) || e.index < 1 || !isU53(e.term) || (e.type !== 'normal' && e.type !== 'conf') || !(e.data instanceof Uint8Array)) {
        throw misuse('persist', this.dir, `malformed entry at position ${k} (index ${String(e.index)})`);
      }
      if (e.index !== first.index + k) {
        throw misuse('persist', this.dir, `entries are not contiguous: position ${k} has index ${e.index}, expected ${first.index + k}`);
      }
    }
  }

  private validateHardState(hs: HardState): void {
    if (!isU53(hs.term) || !isU53(hs.vote) || !isU53(hs.commit)) {
      throw misuse('persist', this.dir, `malformed hard state ${JSON.stringify(hs)}`);
    }
  }

  private validateSnapshot(op: string, s: Snapshot): void {
    const ids = (v: unknown): boolean => Array.isArray(v) && v.every(isU53);
    if (
      !isU53(s.meta.index) ||
      s.meta.index < 1 ||
      !isU53(s.meta.term) ||
      !ids(s.meta.conf?.voters) ||
      !ids(s.meta.conf?.learners) ||
      !(s.data instanceof Uint8Array)
    ) {
      throw misuse(op, this.dir, `malformed snapshot meta ${JSON.stringify({ index: s.meta.index, term: s.meta.term })}`);
    }
  }

  private async doPersist(update: PersistUpdate): Promise<void> {
    this.validateEntries(update.entries);
    if (update.hardState) this.validateHardState(update.hardState);
    if (update.snapshot) this.validateSnapshot('persist', update.snapshot);

    // Plan against the current state (nothing else runs until we finish).
    const snapshot = update.snapshot && update.snapshot.meta.index > this.snapIndex ? update.snapshot : undefined;
    const keepLog = snapshot ? this.term(snapshot.meta.index) === snapshot.meta.term : true;
    const newBase = snapshot ? snapshot.meta.index : this.snapIndex;
    const newLast = keepLog ? this.lastIndex() : newBase;
    let entries = update.entries;
    const first = entries[0]?.index;
    if (first !== undefined && first <= newBase) entries = entries.slice(newBase - first + 1);
    const from = entries[0]?.index;
    if (from !== undefined && from > newLast + 1) {
      throw misuse('persist', this.dir, `entries start at ${from} but the log ends at ${newLast}`);
    }
    if (!snapshot && entries.length === 0 && !update.hardState) return;

    let size = snapshot ? SNAPSHOT_RECORD_BYTES : 0;
    for (const e of entries) size += entryRecordBytes(e.data.length);
    if (update.hardState) size += HARDSTATE_RECORD_BYTES;
    const w = new RecordWriter(size);
    if (snapshot) w.addSnapshot(snapshot.meta.index, snapshot.meta.term);
    for (const e of entries) w.addEntry(e);
    if (update.hardState) w.addHardState(update.hardState);
    const batch = w.finish();

    // 1. The snapshot file (durable before the WAL refers to it).
    if (snapshot) {
      await writeSnapshotFile(this.dir, snapshot);
      this.addSnapshotIndex(snapshot.meta.index);
    }
    // 2. The WAL batch, one fdatasync.
    const maxIndex = Math.max(snapshot?.meta.index ?? 0, entries[entries.length - 1]?.index ?? 0);
    await this.append(batch, maxIndex);

    // 3. Durable: update the in-memory mirror.
    if (snapshot) {
      this.log = keepLog ? this.log.slice(snapshot.meta.index - this.snapIndex) : [];
      this.snap = snapshot;
      this.snapIndex = snapshot.meta.index;
      this.snapTerm = snapshot.meta.term;
    }
    if (from !== undefined) {
      this.log.length = from - this.snapIndex - 1;
      for (const e of entries) this.log.push(e);
    }
    if (update.hardState) this.hs = { ...update.hardState };
    this.hs.commit = Math.max(this.hs.commit, this.snapIndex);

    if (snapshot) await this.collectGarbage(snapshot.meta.index + 1);
  }

  private async doSaveSnapshot(snapshot: Snapshot, retainFrom: number): Promise<void> {
    this.validateSnapshot('save snapshot', snapshot);
    if (!isU53(retainFrom)) throw misuse('save snapshot', this.dir, `retainFrom must be a non-negative integer, got ${retainFrom}`);
    const { index, term } = snapshot.meta;
    if (index <= this.snapIndex) return;
    if (index > this.lastIndex()) {
      throw misuse('save snapshot', this.dir, `snapshot index ${index} is beyond the last log index ${this.lastIndex()}`);
    }
    if (this.term(index) !== term) {
      throw misuse('save snapshot', this.dir, `snapshot term ${term} at index ${index} does not match the log's term ${this.term(index)}`);
    }
    await writeSnapshotFile(this.dir, snapshot);
    this.addSnapshotIndex(index);
    this.log = this.log.slice(index - this.snapIndex);
    this.snap = snapshot;
    this.snapIndex = index;
    this.snapTerm = term;
    this.hs.commit = Math.max(this.hs.commit, index);
    await this.collectGarbage(Math.min(retainFrom, index + 1));
  }

  private addSnapshotIndex(index: number): void {
    if (!this.snapshotIndexes.includes(index)) {
      this.snapshotIndexes.push(index);
      this.snapshotIndexes.sort((a, b) => a - b);
    }
  }

  /** Appends a batch to the active segment (rotating first if it would overflow) and fdatasyncs it. */
  private async append(batch: Buffer, maxIndex: number): Promise<void> {
    let seg = this.segments[this.segments.length - 1] as Segment;
    if (seg.size > HEADER_RECORD_BYTES && seg.size + batch.length > this.segmentBytes) {
      const seq = seg.seq + 1;
      const path = join(this.dir, segmentFileName(seq));
      const header = encodeHeader(seq, this.hs);
      const fh = await io('create segment', path, () => open(path, 'wx'));
      try {
        await io('write segment', path, async () => {
          await writevAll(fh, [header, batch], 0);
          await fh.datasync();
        });
        await fsyncDir(this.dir);
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw err;
      }
      const old = this.active;
      const oldPath = seg.path;
      this.active = fh;
      seg = { seq, path, size: header.length + batch.length, maxIndex };
      this.segments.push(seg);
      await io('close segment', oldPath, () => old.close());
      return;
    }
    const s = seg;
    await io('append to segment', s.path, async () => {
      await writeAll(this.active, batch, s.size);
      await this.active.datasync();
    });
    s.size += batch.length;
    s.maxIndex = Math.max(s.maxIndex, maxIndex);
  }

  /** Keeps the newest SNAPSHOTS_TO_KEEP snapshot files and deletes the WAL segments no longer needed. */
  private async collectGarbage(retainFrom: number): Promise<void> {
    const keep = this.snapshotIndexes.slice(-SNAPSHOTS_TO_KEEP);
    const fallback = keep.length >= SNAPSHOTS_TO_KEEP ? (keep[0] as number) : 0;
    const compactTo = Math.min(retainFrom, fallback + 1);
    let changed = false;
    while (this.segments.length > 1 && (this.segments[0] as Segment).maxIndex < compactTo) {
      const seg = this.segments[0] as Segment;
      await io('delete segment', seg.path, () => unlink(seg.path));
      this.segments.shift();
      changed = true;
    }
    for (const idx of this.snapshotIndexes.slice(0, -SNAPSHOTS_TO_KEEP)) {
      const p = join(this.dir, snapshotFileName(idx));
      await io('delete snapshot', p, () => unlink(p));
      changed = true;
    }
    this.snapshotIndexes = keep;
    if (changed) await fsyncDir(this.dir);
  }
}
