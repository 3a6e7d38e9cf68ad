/**
 * Child process of test/storage/crash.test.ts, and the module both sides use to
 * derive record content.
 *
 * As a script (`node crash-writer.js '<json WriterConfig>'`) it opens a FileEngine
 * in `sync` flush mode on `dir`, creates the shards (idempotent), and appends
 * batches from several concurrent loops as fast as it can until it is killed.
 * It reports on stdout, one line each, written with fs.writeSync so that a line
 * is on the pipe before the next step and never lost once written:
 *
 *   opening                           before FileEngine.open (recovery)
 *   start <shard> <startOffset> <endOffset>   per shard, after open + createShard
 *   ready                             the append loops start now
 *   send <shard> <base> <count>       before append() is called (an intent)
 *   ack <shard> <base> <count>        after append() resolved with baseOffset = base
 *
 * Offsets are predicted: a shard's next offset is its endOffset at start plus the
 * sizes of the batches passed to append() so far (calls are issued synchronously,
 * so the engine must assign offsets in call order). A resolved append whose
 * baseOffset differs, or any rejected append, is reported on stderr and the
 * process exits with code 3 — the parent treats that as a failure.
 *
 * Every record's content is a pure function of (shard, offset), see expectedRecord,
 * except the `batch` header, which says `<base>/<count>` of the batch it came in,
 * so the reader can tell whether a batch survived whole.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { AppendRecord, StoredRecord } from '../../../src/storage/types.js';
import { mulberry32 } from '../../support/mulberry32.js';

export interface WriterConfig {
  dir: string;
  shards: string[];
  /** Concurrent append loops. */
  loops: number;
  segmentBytes: number;
  seed: number;
  /**
   * How the CommitLog writes reach the file (FileEngineOptions.io):
   * - 'real': the engine's own (one positioned write per group; a SIGKILL rarely tears it);
   * - 'chunked': each write split into 512 B..16 KiB pieces written in order, yielding
   *   to the event loop between them, so the kill often lands mid-group (a torn tail);
   * - 'shuffled': the same pieces written in random order (as if the page cache had
   *   lost some unsynced pages: holes and later bytes without the earlier ones).
   * In every mode a write resolves only when all its bytes are written.
   */
  writes: 'real' | 'chunked' | 'shuffled';
}

export const CRASH_TOPIC = 'crash';
export const BATCH_HEADER = 'batch';
export const MAX_BATCH = 50;
export const MAX_VALUE = 4096;
const ZERO_IV = Buffer.alloc(16);
const TIMESTAMP_BASE = 1_700_000_000_000;

function seedOf(shard: string, offset: bigint): Buffer {
  return createHash('sha256').update(`${shard}\0${offset}`).digest();
}

/** A deterministic byte stream of `len` bytes: AES-256-CTR keystream keyed by sha256(shard, offset, label). */
function stream(seed: Buffer, label: string, len: number): Buffer {
  if (len === 0) return Buffer.alloc(0);
  const key = createHash('sha256').update(seed).update(label).digest();
  return createCipheriv('aes-256-ctr', key, ZERO_IV).update(Buffer.alloc(len));
}

/** The record stored at (shard, offset), without the batch header (which depends on how it was batched). */
export function expectedRecord(shard: string, offset: bigint): AppendRecord {
  const s = seedOf(shard, offset);
  const b = (i: number): number => s[i] ?? 0;
  const valueLen = s.readUInt32BE(0) % (MAX_VALUE + 1);
  const value = b(4) % 16 === 0 ? null : stream(s, 'value', valueLen);
  const key = b(5) % 8 === 0 ? null : stream(s, 'key', b(6) % 33);
  const headers: AppendRecord['headers'] = [];
  const nHeaders = b(7) % 3;
  for (let i = 0; i < nHeaders; i++) headers.push({ key: `h${i}-${b(8 + i) % 10}`, value: stream(s, `header${i}`, b(10 + i) % 65) });
  const rec: AppendRecord = { timestamp: TIMESTAMP_BASE + Number(offset), key, value, headers };
  if (b(12) % 4 === 0) rec.tag = `tag-${b(13) % 5}`;
  return rec;
}

/** The record as the writer appends it: expectedRecord plus the batch header (always last). */
export function recordToAppend(shard: string, offset: bigint, base: bigint, count: number): AppendRecord {
  const rec = expectedRecord(shard, offset);
  rec.headers.push({ key: BATCH_HEADER, value: Buffer.from(`${base}/${count}`) });
  return rec;
}

/**
 * Compares a record read back with what was appended at its offset; returns a
 * description of the first difference, or undefined. On success also returns the
 * batch (base, count) its header names.
 */
export function checkRecord(shard: string, got: StoredRecord): { error: string } | { base: bigint; count: number } {
  const want = expectedRecord(shard, got.offset);
  const where = `shard ${shard} offset ${got.offset}`;
  if (got.timestamp !== want.timestamp) return { error: `${where}: timestamp ${got.timestamp} != ${want.timestamp}` };
  const eqBuf = (a: Buffer | null, b: Buffer | null): boolean => (a === null || b === null ? a === b : a.equals(b));
  if (!eqBuf(got.key ?? null, want.key)) return { error: `${where}: key differs (got ${got.key?.length ?? 'null'} bytes, want ${want.key?.length ?? 'null'})` };
  if (!eqBuf(got.value ?? null, want.value)) return { error: `${where}: value differs (got ${got.value?.length ?? 'null'} bytes, want ${want.value?.length ?? 'null'})` };
  if ((got.tag ?? undefined) !== want.tag) return { error: `${where}: tag ${String(got.tag)} != ${String(want.tag)}` };
  if (got.headers.length !== want.headers.length + 1) return { error: `${where}: ${got.headers.length} headers, want ${want.headers.length + 1}` };
  for (let i = 0; i < want.headers.length; i++) {
    const g = got.headers[i]!;
    const w = want.headers[i]!;
    if (g.key !== w.key || !g.value.equals(w.value)) return { error: `${where}: header ${i} differs` };
  }
  const last = got.headers[want.headers.length]!;
  const m = last.key === BATCH_HEADER ? /^(\d+)\/(\d+)$/.exec(last.value.toString()) : null;
  if (!m) return { error: `${where}: bad batch header ${last.key}=${last.value.toString()}` };
  const base = BigInt(m[1]!);
  const count = Number(m[2]!);
  if (count < 1 || count > MAX_BATCH || got.offset < base || got.offset >= base + BigInt(count)) {
    return { error: `${where}: batch header ${base}/${count} does not cover the record` };
  }
  return { base, count };
}

/** Small seeded PRNG (re-exported for the parent test). */
export const prng = mulberry32;

/** Writes the whole line to fd 1, synchronously (retrying if the pipe is non-blocking and full). */
function emit(line: string): void {
  const buf = Buffer.from(line + '\n');
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off, buf.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

function fail(message: string, err?: unknown): never {
  writeSync(2, `crash-writer: ${message}${err === undefined ? '' : `: ${(err as Error)?.stack ?? String(err)}`}\n`);
  process.exit(3);
}

/** A CommitLog write that reaches the file in pieces (see WriterConfig.writes). */
function piecewiseWrite(rand: () => number, shuffled: boolean) {
  return async (fh: FileHandle, buf: Buffer, position: number): Promise<void> => {
    const pieces: Array<[number, number]> = [];
    for (let off = 0; off < buf.length; ) {
      const len = Math.min(buf.length - off, 512 + Math.floor(rand() * 16 * 1024));
      pieces.push([off, len]);
      off += len;
    }
    if (shuffled) {
      for (let i = pieces.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
      }
    }
    for (const [off, len] of pieces) {
      for (let done = 0; done < len; ) {
        const { bytesWritten } = await fh.write(buf, off + done, len - done, position + off + done);
        if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
        done += bytesWritten;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
}

async function main(cfg: WriterConfig): Promise<void> {
  // Imported here so that the test can import this module's helpers without loading the engine.
  const { FileEngine } = await import('../../../src/storage/file/engine.js');
  const rand = prng(cfg.seed);
  emit('opening');
  const engine = await FileEngine.open({
    dir: cfg.dir,
    segmentBytes: cfg.segmentBytes,
    flush: 'sync',
    flushIntervalMs: 10,
    retentionMs: -1,
    retentionBytes: -1,
    ...(cfg.writes === 'real' ? {} : { io: { write: piecewiseWrite(prng(cfg.seed ^ 0x5bd1e995), cfg.writes === 'shuffled') } }),
  });
  const next = new Map<string, bigint>();
  for (const shard of cfg.shards) {
    await engine.createShard({ shard, topic: CRASH_TOPIC, engine: 'file', flush: 'sync', retentionMs: -1, retentionBytes: -1 });
    const info = await engine.shardInfo(shard);
    next.set(shard, info.endOffset);
    emit(`start ${shard} ${info.startOffset} ${info.endOffset}`);
  }
  emit('ready');
  const loop = async (): Promise<never> => {
    for (;;) {
      const shard = cfg.shards[Math.floor(rand() * cfg.shards.length)]!;
      const count = 1 + Math.floor(rand() * MAX_BATCH);
      const base = next.get(shard)!;
      next.set(shard, base + BigInt(count));
      const records: AppendRecord[] = [];
      for (let i = 0; i < count; i++) records.push(recordToAppend(shard, base + BigInt(i), base, count));
      emit(`send ${shard} ${base} ${count}`);
      let got: bigint;
      try {
        got = (await engine.append(shard, records)).baseOffset;
      } catch (err) {
        fail(`append of ${count} records to ${shard} (expected base ${base}) rejected`, err);
      }
      if (got !== base) fail(`append to ${shard} resolved with baseOffset ${got}, expected ${base} (offsets not assigned in call order?)`);
      emit(`ack ${shard} ${base} ${count}`);
    }
  };
  await Promise.all(Array.from({ length: cfg.loops }, () => loop()));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = process.argv[2];
  if (arg === undefined) fail('usage: crash-writer.js <json config>');
  main(JSON.parse(arg) as WriterConfig).catch((err: unknown) => fail('writer failed', err));
}
