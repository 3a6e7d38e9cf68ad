/** Helpers shared by the file engine tests. */
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileEngine, type FileEngineOptions } from '../../../src/storage/file/engine.js';
import type { AppendRecord, ShardSpec, StoredRecord } from '../../../src/storage/types.js';

export function makeRoot(prefix: string): { root: string; newDir: () => string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return {
    root,
    newDir: () => join(root, `d${n++}`),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

export interface LogLine {
  level: 'info' | 'warn';
  obj: object;
  msg: string;
}

export function captureLog(): { lines: LogLine[]; log: NonNullable<FileEngineOptions['log']> } {
  const lines: LogLine[] = [];
  return {
    lines,
    log: {
      info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    },
  };
}

/** Test defaults: small files, no background checkpoint or retention (tests call them). */
export function engineOptions(dir: string, extra: Partial<FileEngineOptions> = {}): FileEngineOptions {
  return {
    dir,
    segmentBytes: 64 * 1024,
    flush: 'async',
    flushIntervalMs: 50,
    retentionMs: -1,
    retentionBytes: -1,
    cqEntriesPerFile: 64,
    timeIndexInterval: 8,
    checkpointIntervalMs: 0,
    retentionCheckIntervalMs: 0,
    ...extra,
  };
}

export function openEngine(dir: string, extra: Partial<FileEngineOptions> = {}): Promise<FileEngine> {
  return FileEngine.open(engineOptions(dir, extra));
}

export function spec(shard: string, extra: Partial<ShardSpec> = {}): ShardSpec {
  return { shard, topic: shard.replace(/-\d+$/, ''), engine: 'file', ...extra };
}

/** A deterministic record for (shard, offset-ish seed). */
export function rec(seed: number, opts: { valueBytes?: number; ts?: number; tag?: string } = {}): AppendRecord {
  const value = Buffer.alloc(opts.valueBytes ?? 16 + (seed % 50));
  for (let i = 0; i < value.length; i++) value[i] = (seed * 31 + i) & 0xff;
  const r: AppendRecord = {
    timestamp: opts.ts ?? 1_700_000_000_000 + seed,
    key: Buffer.from(`k${seed}`),
    value,
    headers: seed % 3 === 0 ? [{ key: `h${seed % 7}`, value: Buffer.from(`hv${seed}`) }] : [],
  };
  if (opts.tag !== undefined) r.tag = opts.tag;
  return r;
}

/** Compares a record read back with what was appended. */
export function sameRecord(got: StoredRecord, want: AppendRecord, offset: bigint): boolean {
  const eq = (a: Buffer | null, b: Buffer | null) => (a === null || b === null ? a === b : a.equals(b));
  return (
    got.offset === offset &&
    got.timestamp === want.timestamp &&
    eq(got.key, want.key) &&
    eq(got.value, want.value) &&
    got.tag === want.tag &&
    got.headers.length === want.headers.length &&
    got.headers.every((h, i) => h.key === want.headers[i]?.key && h.value.equals(want.headers[i]!.value))
  );
}

/** Every record of the shard from startOffset, in chunks. */
export async function readAll(e: FileEngine, shard: string, maxRecords = 1000): Promise<StoredRecord[]> {
  const info = await e.shardInfo(shard);
  const out: StoredRecord[] = [];
  for (let from = info.startOffset; from < info.endOffset; ) {
    const recs = await e.read(shard, from, { maxRecords, maxBytes: 64 * 1024 * 1024 });
    if (recs.length === 0) throw new Error(`no records at ${from}`);
    out.push(...recs);
    from += BigInt(recs.length);
  }
  return out;
}

/** A copy of an open engine's directory: what a crash (kill -9) at this moment leaves on disk. */
export function crashCopy(dir: string, to: string): string {
  cpSync(dir, to, { recursive: true });
  return to;
}

export function segmentFiles(dir: string): string[] {
  return readdirSync(join(dir, 'commitlog'))
    .filter((n) => /^\d{20}$/.test(n))
    .sort();
}

export function lastSegment(dir: string): { path: string; size: number } {
  const names = segmentFiles(dir);
  const path = join(dir, 'commitlog', names[names.length - 1]!);
  return { path, size: statSync(path).size };
}

export function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
