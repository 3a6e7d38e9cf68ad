/**
 * Snapshot files: `snap-<16 hex digits of meta.index>.snap`, little-endian:
 *
 *   offset  size      field
 *   0       8         magic "RMQSNAP\0"
 *   8       4         u32 format version (1)
 *   12      4         u32 metaLen
 *   16      8         u64 dataLen
 *   24      metaLen   meta as UTF-8 JSON: {"index","term","conf":{"voters","learners"}}
 *   ..      dataLen   the state machine's data (opaque)
 *   end-4   4         u32 CRC32C of every byte before it
 *
 * Written to `<name>.tmp`, fsynced, renamed into place, then the directory is
 * fsynced: a crash leaves either the old set of snapshots or the new one, plus
 * possibly a `.tmp` file that the next open deletes. A file whose size, magic,
 * meta or CRC is wrong is reported as corrupt and never used.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../../../common/crc.js';
import type { ConfState, Snapshot } from '../core/types.js';
import { RaftStorageError, io } from './errors.js';
import { fsyncDir, writevAll } from './fs-util.js';
import { readU64, writeU64 } from './wal-format.js';

const MAGIC = Buffer.from('RMQSNAP\0', 'latin1');
export const SNAPSHOT_FORMAT_VERSION = 1;
const FIXED_HEADER = 24;

const NAME_RE = /^snap-([0-9a-f]{16})\.snap$/;

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function snapshotFileName(index: number): string {
  return `snap-${hex16(index)}.snap`;
}

/** The index encoded in a snapshot file name, or undefined when the name is not one. */
export function parseSnapshotFileName(name: string): number | undefined {
  const m = NAME_RE.exec(name);
  return m ? parseInt(m[1] as string, 16) : undefined;
}

/** Writes the snapshot durably (temp file, fsync, rename, fsync dir). Returns the file name. */
export async function writeSnapshotFile(dir: string, snap: Snapshot): Promise<string> {
  const name = snapshotFileName(snap.meta.index);
  const finalPath = join(dir, name);
  const tmpPath = `${finalPath}.tmp`;
  const meta = Buffer.from(
    JSON.stringify({ index: snap.meta.index, term: snap.meta.term, conf: { voters: snap.meta.conf.voters, learners: snap.meta.conf.learners } }),
    'utf8',
  );
  const head = Buffer.alloc(FIXED_HEADER + meta.length);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 8);
  head.writeUInt32LE(meta.length, 12);
  writeU64(head, snap.data.length, 16);
  meta.copy(head, FIXED_HEADER);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32c(snap.data, crc32c(head)), 0);

  await io('write snapshot', tmpPath, async () => {
    const fh = await open(tmpPath, 'w');
    try {
      await writevAll(fh, [head, snap.data, crc], 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
  await io('rename snapshot', finalPath, () => rename(tmpPath, finalPath));
  await fsyncDir(dir);
  return name;
}

export type SnapshotReadResult = { ok: true; snapshot: Snapshot } | { ok: false; reason: string };

function isNodeIdArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

/** Reads and verifies a snapshot file. IO failures throw; bad contents return { ok: false }. */
export async function readSnapshotFile(path: string, expectedIndex: number): Promise<SnapshotReadResult> {
  const buf = await io('read snapshot', path, () => readFile(path));
  if (buf.length < FIXED_HEADER + 4) return { ok: false, reason: `file too short (${buf.length} bytes)` };
  if (!buf.subarray(0, 8).equals(MAGIC)) return { ok: false, reason: 'bad magic' };
  const end = buf.length - 4;
  if (crc32c(buf.subarray(0, end)) !== buf.readUInt32LE(end)) return { ok: false, reason: 'crc mismatch' };
  const version = buf.readUInt32LE(8);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new RaftStorageError('read snapshot', path, `unsupported snapshot format version ${version}`, 'raft_storage_corrupt');
  }
  const metaLen = buf.readUInt32LE(12);
  const dataLen = readU64(buf, 16);
  if (FIXED_HEADER + metaLen + dataLen !== end) return { ok: false, reason: 'length fields do not match the file size' };
  let meta: unknown;
  try {
    meta = JSON.parse(buf.toString('utf8', FIXED_HEADER, FIXED_HEADER + metaLen));
  } catch {
    return { ok: false, reason: 'meta is not JSON' };
  }
  const m = meta as { index?: unknown; term?: unknown; conf?: { voters?: unknown; learners?: unknown } };
  if (
    m.index !== expectedIndex ||
    !Number.isSafeInteger(m.term) ||
    typeof m.conf !== 'object' ||
    m.conf === null ||
    !isNodeIdArray(m.conf.voters) ||
    !isNodeIdArray(m.conf.learners)
  ) {
    return { ok: false, reason: 'meta does not match the file name or is malformed' };
  }
  const conf: ConfState = { voters: m.conf.voters, learners: m.conf.learners };
  const start = FIXED_HEADER + metaLen;
  const data = new Uint8Array(buf.buffer, buf.byteOffset + start, dataLen);
  return { ok: true, snapshot: { meta: { index: expectedIndex, term: m.term as number, conf }, data } };
}
