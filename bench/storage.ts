/**
 * File engine throughput against the raw disk, in one run on one directory:
 *
 *   append    1 KiB values + 16-byte keys (random bytes; 256 pre-built batches cycled),
 *             batches of 100, 8 appends in flight, async flush (every 500 ms and every
 *             --flush-bytes, the engine's default 8 MiB), 256 MiB segments, for
 *             --seconds or 1 GiB of payload, whichever comes first; timed until
 *             the last append resolved plus engine.close() (its final flush), so that
 *             it is comparable with:
 *   raw disk  the same payload bytes written sequentially with fs.writeSync to one
 *             file in chunks of one batch's payload, plus one final fdatasync.
 *   read      everything from the append phase, read back through FileEngine.read
 *             (maxRecords 1000, maxBytes 1 MiB) after a reopen (from the page cache).
 *   sync      64 concurrent writers appending one 1 KiB record at a time to one
 *             shard, sync flush (each append resolves after its fdatasync).
 *   fsync     one writer: fs.writeSync of 1 KiB + fdatasync, in a loop.
 *
 * MB/s is of record payload (key + value bytes), 1 MB = 10^6 bytes. Prints figures and,
 * as its last line, JSON:
 *   { "append_mb_s": N, "raw_disk_mb_s": N, "sync_appends_per_s": N, "fsyncs_per_s_single": N, "read_mb_s": N }
 *
 *   npm run bench:storage                          # 5 s phases in os.tmpdir()
 *   npm run bench:storage -- --seconds 10 --dir /mnt/nvme
 *   npm run bench:storage -- --flush-bytes 0        # async flush by the timer only
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FLUSH_BYTES, FileEngine } from '../src/storage/file/engine.js';
import { StorageMetrics } from '../src/storage/metrics.js';
import type { AppendRecord } from '../src/storage/types.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, 'in-flight': { type: 'string', default: '8' }, 'flush-bytes': { type: 'string', default: String(DEFAULT_FLUSH_BYTES) }, dir: { type: 'string', default: tmpdir() } } });
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${args.seconds}`);
const fsyncSeconds = Math.min(3, seconds);
const flushBytes = Number(args['flush-bytes']);
if (!(flushBytes >= 0)) throw new Error(`--flush-bytes must be >= 0, got ${args['flush-bytes']}`);

const KEY_BYTES = 16;
const VALUE_BYTES = 1024;
const BATCH = 100;
const IN_FLIGHT = Number(args['in-flight']);
if (!(IN_FLIGHT >= 1)) throw new Error(`--in-flight must be >= 1, got ${args['in-flight']}`);
const SYNC_WRITERS = 64;
const MAX_APPEND_BYTES = 2 ** 30;
const SEGMENT_BYTES = 256 * 2 ** 20;
const RECORD_PAYLOAD = KEY_BYTES + VALUE_BYTES;
const BATCH_PAYLOAD = BATCH * RECORD_PAYLOAD;

const root = mkdtempSync(join(args.dir, 'robust-bench-storage-'));
const open: FileEngine[] = [];
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  rmSync(root, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

const mb = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const fmt = (n: number, digits = 1) => n.toFixed(digits);

/** A pool of random bytes; values/keys are slices at varying offsets (random-ish, incompressible, cheap). */
const pool = randomBytes(4 * 2 ** 20);
let poolPos = 0;
function slice(len: number): Buffer {
  if (poolPos + len > pool.length) poolPos = (poolPos * 7 + 13) % 4096;
  const b = pool.subarray(poolPos, poolPos + len);
  poolPos += len + 1;
  return b;
}
function record(): AppendRecord {
  return { timestamp: Date.now(), key: slice(KEY_BYTES), value: slice(VALUE_BYTES), headers: [] };
}

async function openEngine(dir: string, flush: 'sync' | 'async', metrics?: StorageMetrics): Promise<FileEngine> {
  const e = await FileEngine.open({ dir, segmentBytes: SEGMENT_BYTES, flush, flushIntervalMs: 500, flushBytes, retentionMs: -1, retentionBytes: -1, ...(metrics ? { metrics } : {}) });
  open.push(e);
  return e;
}
async function closeEngine(e: FileEngine): Promise<void> {
  open.splice(open.indexOf(e), 1);
  await e.close();
}

/** fdatasync calls the engine reported (the fsync histogram's _count, all label sets). */
async function fsyncCount(metrics: StorageMetrics): Promise<number> {
  return (await metrics.fsyncSeconds.get()).values.filter((v) => v.metricName?.endsWith('_count')).reduce((a, v) => a + v.value, 0);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

try {
  console.log(`storage bench in ${root}: ${seconds} s phases (fsync baseline ${fsyncSeconds} s); records ${KEY_BYTES} B key + ${VALUE_BYTES} B value; MB = 10^6 bytes of payload`);

  // 1 + 2. Append throughput (async flush) against raw sequential writes of the same
  // bytes. The page cache and writeback make whichever phase runs second see a
  // different disk, so they alternate over ROUNDS rounds (order flipped each
  // round) and the medians are compared.
  const shard = 'bench-0';
  // Pre-built batches (views into the random pool), cycled, so that building records is not part of the timing.
  const batches: AppendRecord[][] = Array.from({ length: 256 }, () => Array.from({ length: BATCH }, record));
  let engine: FileEngine;

  // Each phase starts with no dirty pages left by the one before (writeback of
  // the previous GiB would otherwise throttle whichever phase comes next).
  const settle = () => spawnSync('sync');

  const appendPhase = async (dir: string) => {
    settle();
    engine = await openEngine(dir, 'async');
    await engine.createShard({ shard, topic: 'bench', engine: 'file', flush: 'async', retentionMs: -1, retentionBytes: -1 });
    let done = 0;
    let issued = 0;
    let stop = false;
    const tA = performance.now();
    const deadline = tA + seconds * 1000;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (!stop) {
          if ((done + IN_FLIGHT) * BATCH_PAYLOAD > MAX_APPEND_BYTES || performance.now() >= deadline) {
            stop = true;
            break;
          }
          await engine.append(shard, batches[issued++ % batches.length]!);
          done++;
        }
      }),
    );
    const tAcked = performance.now();
    await closeEngine(engine);
    const tClosed = performance.now();
    const bytes = done * BATCH_PAYLOAD;
    const mbS = mb(bytes, tClosed - tA);
    console.log(
      `  append (async, ${IN_FLIGHT} batches of ${BATCH} in flight): ${done * BATCH} records, ${fmt(bytes / 1e6)} MB in ${fmt(tAcked - tA, 0)} ms ` +
        `+ close/final flush ${fmt(tClosed - tAcked, 0)} ms = ${fmt(mbS)} MB/s (${fmt(done * BATCH / ((tClosed - tA) / 1000), 0)} records/s)`,
    );
    return { batches: done, mbS };
  };

  const rawPhase = (batchCount: number) => {
    settle();
    const rawPath = join(root, 'raw.bin');
    const fd = openSync(rawPath, 'w');
    const tR = performance.now();
    try {
      for (let i = 0; i < batchCount; i++) {
        const chunk = slice(BATCH_PAYLOAD);
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const rawMs = performance.now() - tR;
    rmSync(rawPath);
    const mbS = mb(batchCount * BATCH_PAYLOAD, rawMs);
    console.log(`  raw disk (fs.writeSync ${BATCH_PAYLOAD} B chunks + 1 fdatasync): ${fmt((batchCount * BATCH_PAYLOAD) / 1e6)} MB in ${fmt(rawMs, 0)} ms = ${fmt(mbS)} MB/s`);
    return mbS;
  };

  const ROUNDS = 3;
  const appendRates: number[] = [];
  const rawRates: number[] = [];
  let appendDir = '';
  let appendedBatches = 0;
  // Both phases start with the same free memory: the data of the phase before is
  // deleted first (reclaiming a GiB of cached pages would slow whichever comes next).
  const timedAppend = async (round: number) => {
    const dir = join(root, `append-${round}`);
    const a = await appendPhase(dir);
    appendedBatches = a.batches;
    appendRates.push(a.mbS);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let round = 0; round < ROUNDS; round++) {
    console.log(`round ${round + 1} of ${ROUNDS}:`);
    if (round % 2 === 0) {
      await timedAppend(round);
      rawRates.push(rawPhase(appendedBatches));
    } else {
      rawRates.push(rawPhase(appendedBatches || Math.floor(MAX_APPEND_BYTES / BATCH_PAYLOAD)));
      await timedAppend(round);
    }
  }
  console.log('data for the read phase:');
  appendDir = join(root, 'append-read');
  appendedBatches = (await appendPhase(appendDir)).batches;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const appendMbS = median(appendRates);
  const rawMbS = median(rawRates);
  const appendBytes = appendedBatches * BATCH_PAYLOAD;
  const appendRecords = appendedBatches * BATCH;
  console.log(`append: median ${fmt(appendMbS)} MB/s of [${appendRates.map((r) => fmt(r)).join(', ')}]; raw: median ${fmt(rawMbS)} MB/s of [${rawRates.map((r) => fmt(r)).join(', ')}]`);

  // 3. Read back everything from phase 1, after a reopen.
  const tO = performance.now();
  engine = await openEngine(appendDir, 'async');
  const reopenMs = performance.now() - tO;
  const info = await engine.shardInfo(shard);
  if (info.endOffset !== BigInt(appendRecords)) throw new Error(`after reopen endOffset is ${info.endOffset}, expected ${appendRecords}`);
  let readBytes = 0;
  let readRecords = 0;
  const tRead = performance.now();
  for (let from = 0n; from < info.endOffset; ) {
    const recs = await engine.read(shard, from, { maxRecords: 1000, maxBytes: 2 ** 20 });
    if (recs.length === 0) throw new Error(`read at ${from} returned nothing before endOffset ${info.endOffset}`);
    for (const r of recs) readBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
    readRecords += recs.length;
    from += BigInt(recs.length);
  }
  const readMs = performance.now() - tRead;
  await closeEngine(engine);
  rmSync(appendDir, { recursive: true, force: true });
  if (readBytes !== appendBytes) throw new Error(`read ${readBytes} payload bytes, appended ${appendBytes}`);
  const readMbS = mb(readBytes, readMs);
  console.log(`read (maxRecords 1000, maxBytes 1 MiB, after a reopen of ${fmt(reopenMs, 0)} ms): ${readRecords} records in ${fmt(readMs, 0)} ms = ${fmt(readMbS)} MB/s`);

  // 4. Group commit: 64 writers, one record per append, sync flush.
  const metrics = new StorageMetrics();
  engine = await openEngine(join(root, 'sync'), 'sync', metrics);
  await engine.createShard({ shard, topic: 'bench', engine: 'file', flush: 'sync', retentionMs: -1, retentionBytes: -1 });
  const latencies: number[] = [];
  const fsyncsBefore = await fsyncCount(metrics);
  const tS = performance.now();
  const syncDeadline = tS + seconds * 1000;
  await Promise.all(
    Array.from({ length: SYNC_WRITERS }, async () => {
      while (performance.now() < syncDeadline) {
        const t = performance.now();
        await engine.append(shard, [record()]);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const syncMs = performance.now() - tS;
  const fsyncsAfter = await fsyncCount(metrics);
  await closeEngine(engine);
  const syncAppendsPerS = latencies.length / (syncMs / 1000);
  latencies.sort((a, b) => a - b);
  const fsyncs = fsyncsAfter - fsyncsBefore;
  console.log(
    `sync appends (${SYNC_WRITERS} writers, 1 record each): ${latencies.length} in ${fmt(syncMs, 0)} ms = ${fmt(syncAppendsPerS, 0)} appends/s; ` +
      `latency p50 ${fmt(percentile(latencies, 50), 2)} ms, p99 ${fmt(percentile(latencies, 99), 2)} ms; ` +
      (fsyncs > 0 ? `${fsyncs} fsyncs reported by the engine (${fmt(latencies.length / fsyncs)} appends per fsync)` : 'the engine reported no fsync metric'),
  );

  // 5. Single-writer fsync baseline.
  const fsyncPath = join(root, 'fsync.bin');
  const fd2 = openSync(fsyncPath, 'w');
  let nFsync = 0;
  const tF = performance.now();
  try {
    const fEnd = tF + fsyncSeconds * 1000;
    while (performance.now() < fEnd) {
      writeSync(fd2, slice(1024));
      fdatasyncSync(fd2);
      nFsync++;
    }
  } finally {
    closeSync(fd2);
  }
  const fsyncsPerS = nFsync / ((performance.now() - tF) / 1000);
  console.log(`single writer (fs.writeSync 1 KiB + fdatasync): ${nFsync} in ${fsyncSeconds} s = ${fmt(fsyncsPerS, 0)} fsyncs/s`);

  const ratio = appendMbS / rawMbS;
  const gc = syncAppendsPerS / fsyncsPerS;
  console.log('');
  console.log(`append vs raw disk:   ${fmt(appendMbS)} / ${fmt(rawMbS)} MB/s = ${fmt(ratio, 2)} (target >= 0.8: ${ratio >= 0.8 ? 'met' : 'NOT met'})`);
  console.log(`group commit:         ${fmt(syncAppendsPerS, 0)} sync appends/s vs ${fmt(fsyncsPerS, 0)} single fsyncs/s = ${fmt(gc)}x (target >= 10x: ${gc >= 10 ? 'met' : 'NOT met'})`);
  console.log(`read:                 ${fmt(readMbS)} MB/s`);
  console.log(
    JSON.stringify({
      append_mb_s: Number(fmt(appendMbS)),
      raw_disk_mb_s: Number(fmt(rawMbS)),
      sync_appends_per_s: Math.round(syncAppendsPerS),
      fsyncs_per_s_single: Math.round(fsyncsPerS),
      read_mb_s: Number(fmt(readMbS)),
    }),
  );
} finally {
  for (const e of open.splice(0)) await e.close().catch(() => undefined);
  cleanup();
}
