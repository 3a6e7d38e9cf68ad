/**
 * Small metadata files of the file engine.
 *
 * SHARD METADATA: `meta/<shard dir>.json`, written atomically (temp file,
 * fdatasync, rename, directory fsync):
 *
 *   {"version":1,"shard":"<id>","spec":{ShardSpec},"startOffset":N,"createdAt":P}
 *
 * startOffset is the first readable offset (truncateBefore, retention); createdAt
 * is the CommitLog tail when the shard was created: records of an earlier shard
 * with the same id (deleted, then re-created) lie before it and are ignored.
 *
 * CHECKPOINT: `checkpoint`, written atomically after the ConsumeQueues, time
 * indexes and the CommitLog up to `position` were fdatasynced:
 *
 *   [u32 magic "RMCK"][u32 version 1][u32 crc32c of the JSON][u32 JSON length][JSON]
 *   JSON = {"position":P,"shards":[[id, cqEnd, createdAt], ...]}
 *
 * Recovery trusts the ConsumeQueue entries below each shard's cqEnd and scans the
 * CommitLog from `position` (or from further back for a shard whose queue lost
 * entries since); a missing or corrupt checkpoint means a scan of the whole log.
 *
 * SHARD DIRECTORY NAMES: the id's UTF-8 bytes with everything but [A-Za-z0-9_-]
 * percent-encoded (so '.', '/', and non-ASCII are safe); ids whose name would be
 * longer than 200 characters are shortened and suffixed with a CRC32C of the id.
 */
import { readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../../common/crc.js';
import { ioError } from '../errors.js';
import type { ShardSpec } from '../types.js';
import { isNotFound, writeFileAtomic } from './fs-util.js';

export function shardDirName(shard: string): string {
  const bytes = Buffer.from(shard, 'utf8');
  let out = '';
  for (const b of bytes) {
    const safe = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f;
    out += safe ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  if (out.length === 0) out = '%';
  if (out.length > 200) out = `${out.slice(0, 160)}~${crc32c(bytes).toString(16).padStart(8, '0')}~${bytes.length.toString(16)}`;
  return out;
}

export interface ShardMeta {
  version: 1;
  shard: string;
  spec: ShardSpec;
  startOffset: number;
  createdAt: number;
}

export const META_SUFFIX = '.json';

export function metaPath(metaDir: string, shard: string): string {
  return join(metaDir, shardDirName(shard) + META_SUFFIX);
}

export async function writeShardMeta(metaDir: string, meta: ShardMeta): Promise<void> {
  const path = metaPath(metaDir, meta.shard);
  try {
    await writeFileAtomic(path, Buffer.from(JSON.stringify(meta)), metaDir);
  } catch (err) {
    throw ioError(path, 'write shard metadata', err);
  }
}

export async function deleteShardMeta(metaDir: string, shard: string): Promise<void> {
  const path = metaPath(metaDir, shard);
  try {
    await unlink(path);
  } catch (err) {
    if (!isNotFound(err)) throw ioError(path, 'delete shard metadata', err);
  }
}

function isMeta(v: unknown): v is ShardMeta {
  const m = v as ShardMeta;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.version === 1 &&
    typeof m.shard === 'string' &&
    typeof m.spec === 'object' &&
    m.spec !== null &&
    m.spec.shard === m.shard &&
    Number.isSafeInteger(m.startOffset) &&
    m.startOffset >= 0 &&
    Number.isSafeInteger(m.createdAt) &&
    m.createdAt >= 0
  );
}

/** Reads every shard's metadata; unreadable files are renamed to `*.corrupt` and reported. Removes leftover temp files. */
export async function readShardMetas(metaDir: string): Promise<{ metas: ShardMeta[]; corrupt: string[] }> {
  let names: string[];
  try {
    names = await readdir(metaDir);
  } catch (err) {
    if (isNotFound(err)) return { metas: [], corrupt: [] };
    throw ioError(metaDir, 'list directory', err);
  }
  const metas: ShardMeta[] = [];
  const corrupt: string[] = [];
  for (const name of names.sort()) {
    const path = join(metaDir, name);
    if (name.endsWith('.tmp')) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (!name.endsWith(META_SUFFIX)) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw ioError(path, 'read shard metadata', err);
    }
    if (isMeta(parsed) && shardDirName(parsed.shard) + META_SUFFIX === name) {
      metas.push(parsed);
    } else {
      corrupt.push(name);
      await rename(path, `${path}.corrupt`).catch(() => undefined);
    }
  }
  return { metas, corrupt };
}

export interface Checkpoint {
  position: number;
  shards: Map<string, { end: number; createdAt: number }>;
}

const MAGIC = 0x4b434d52; // "RMCK" little-endian
const CHECKPOINT_VERSION = 1;

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const json = Buffer.from(JSON.stringify({ position: c.position, shards: [...c.shards].map(([s, v]) => [s, v.end, v.createdAt]) }));
  const head = Buffer.alloc(16);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(CHECKPOINT_VERSION, 4);
  head.writeUInt32LE(crc32c(json), 8);
  head.writeUInt32LE(json.length, 12);
  return Buffer.concat([head, json]);
}

/** The checkpoint, or a reason it cannot be used. */
export function decodeCheckpoint(buf: Buffer): Checkpoint | string {
  if (buf.length < 16) return 'too short';
  if (buf.readUInt32LE(0) !== MAGIC) return 'bad magic';
  if (buf.readUInt32LE(4) !== CHECKPOINT_VERSION) return `unknown version ${buf.readUInt32LE(4)}`;
  const len = buf.readUInt32LE(12);
  if (buf.length !== 16 + len) return 'bad length';
  const json = buf.subarray(16);
  if (crc32c(json) !== buf.readUInt32LE(8)) return 'CRC mismatch';
  try {
    const v = JSON.parse(json.toString('utf8')) as { position: unknown; shards: unknown };
    if (!Number.isSafeInteger(v.position) || (v.position as number) < 0 || !Array.isArray(v.shards)) return 'bad content';
    const shards = new Map<string, { end: number; createdAt: number }>();
    for (const e of v.shards as unknown[]) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !Number.isSafeInteger(e[1]) || !Number.isSafeInteger(e[2])) return 'bad shard entry';
      shards.set(e[0], { end: e[1] as number, createdAt: e[2] as number });
    }
    return { position: v.position as number, shards };
  } catch {
    return 'bad JSON';
  }
}

export async function readCheckpoint(path: string): Promise<Checkpoint | string> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if (isNotFound(err)) return 'missing';
    throw ioError(path, 'read checkpoint', err);
  }
  return decodeCheckpoint(buf);
}

export async function writeCheckpoint(path: string, c: Checkpoint): Promise<void> {
  try {
    await writeFileAtomic(path, encodeCheckpoint(c));
  } catch (err) {
    throw ioError(path, 'write checkpoint', err);
  }
}
