/**
 * Crash consistency of the file engine under SIGKILL.
 *
 * A real child process (support/crash-writer.ts) appends batches in `sync` flush
 * mode from several concurrent loops and prints `ack <shard> <base> <count>` after
 * each append resolved. The parent SIGKILLs it at a random moment, opens the same
 * directory itself (recovery), and checks:
 *
 *   - every acknowledged record is there, byte for byte (content is a function of
 *     (shard, offset): see expectedRecord), with its batch exactly as acknowledged;
 *   - offsets are dense from 0 (startOffset stays 0: retention is off), reads at the
 *     end return [] and past it throw OffsetOutOfRangeError;
 *   - nothing is half-visible: every readable record is correct, and every batch is
 *     either entirely there or not at all — an unacknowledged batch may survive only
 *     whole, and only if the writer had passed it to append();
 *   - whatever a previous recovery exposed is still there (endOffset never shrinks),
 *     and the writer's next round starts exactly at the end the parent verified.
 *
 * Rounds reuse one directory, so each recovery runs on top of the earlier ones.
 * A third of the rounds let the engine write as it does; the others hand it a write
 * function that writes each CommitLog write in pieces (in order, or shuffled as if
 * unsynced pages were lost), so the kill often tears a group write.
 * Every 6th round kills the writer 0..15 ms after it starts opening the engine
 * (i.e. usually during its recovery) instead of while appending. Every 10th and the
 * last round re-read every shard from offset 0; the others re-read from a batch start
 * at least 2000 records before the previous end (to keep the run under a minute).
 *
 *   STORAGE_CRASH_ROUNDS=100 STORAGE_CRASH_SEED=42 node --test dist/test/storage/crash.test.js
 *   STORAGE_CRASH_KEEP=1 ...   on failure keep the directory, and a copy as the failing round's kill left it
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OffsetOutOfRangeError } from '../../src/storage/errors.js';
import { FileEngine } from '../../src/storage/file/engine.js';
import { StorageMetrics } from '../../src/storage/metrics.js';
import { checkRecord, prng, type WriterConfig } from './support/crash-writer.js';

const ROUNDS = Number(process.env.STORAGE_CRASH_ROUNDS ?? 30);
const SEED = Number(process.env.STORAGE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SEGMENT_BYTES = 256 * 1024;
const SHARDS = ['crash-0', 'crash-1', 'crash-2'];
const LOOPS = 6;
/** Round r's writer uses WRITE_MODES[r % 3] (see WriterConfig.writes). */
const WRITE_MODES: Array<WriterConfig['writes']> = ['real', 'chunked', 'shuffled'];
const WRITER = join(import.meta.dirname, 'support', 'crash-writer.js');
/** Rounds that are not fully re-verified from offset 0 re-check at least this many records before the previous end. */
const TAIL_RECHECK = 2000n;

interface Batch {
  base: bigint;
  count: number;
}

interface RoundLog {
  /** shard → (startOffset, endOffset) the writer saw after its recovery. */
  start: Map<string, { startOffset: bigint; endOffset: bigint }>;
  /** shard → base → count, for every batch passed to append(). */
  sent: Map<string, Map<bigint, number>>;
  acked: Array<{ shard: string; base: bigint; count: number }>;
  ready: boolean;
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
  writeMs: number;
}

interface ShardState {
  /** endOffset verified after the previous round. */
  end: bigint;
  /** Sorted starts of every batch verified so far (for choosing where a partial re-check starts). */
  boundaries: bigint[];
  /** createShard completed at least once (the writer printed its start line). */
  created: boolean;
}

function runWriter(dir: string, rand: () => number, early: boolean, seed: number, writes: WriterConfig['writes']): Promise<RoundLog> {
  const cfg: WriterConfig = { dir, shards: SHARDS, loops: LOOPS, segmentBytes: SEGMENT_BYTES, seed, writes };
  const log: RoundLog = { start: new Map(), sent: new Map(), acked: [], ready: false, signal: null, code: null, stderr: '', writeMs: 0 };
  const child = spawn(process.execPath, [WRITER, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  let readyAt = 0;
  let killTimer: NodeJS.Timeout | undefined;
  const killAfter = (ms: number) => {
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), ms);
  };
  // Never wait forever (a writer stuck before ready, e.g. a hung recovery, is a failure the checks report).
  const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const onLine = (line: string) => {
    const [kind, a, b, c] = line.split(' ');
    switch (kind) {
      case 'opening':
        if (early) killAfter(rand() * 15);
        break;
      case 'start':
        log.start.set(a!, { startOffset: BigInt(b!), endOffset: BigInt(c!) });
        break;
      case 'ready':
        log.ready = true;
        readyAt = performance.now();
        if (!early) killAfter(20 + rand() * 380);
        break;
      case 'send': {
        let m = log.sent.get(a!);
        if (!m) log.sent.set(a!, (m = new Map()));
        m.set(BigInt(b!), Number(c!));
        break;
      }
      case 'ack':
        log.acked.push({ shard: a!, base: BigInt(b!), count: Number(c!) });
        break;
      default:
        log.stderr += `unexpected stdout line: ${line}\n`;
    }
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (log.stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      clearTimeout(killTimer);
      // A line is written with one write(2) call, so a fragment can only be a line the writer never finished: ignore it.
      log.code = code;
      log.signal = signal;
      log.writeMs = readyAt ? performance.now() - readyAt : 0;
      resolve(log);
    });
  });
}

interface VerifyResult {
  end: bigint;
  batches: Map<bigint, number>;
  records: number;
  bytes: number;
}

/** Reads [from, endOffset) and checks density, content and batch atomicity; `from` must be a batch start. */
async function verifyShard(engine: FileEngine, shard: string, from: bigint, fail: (msg: string) => never): Promise<VerifyResult> {
  const info = await engine.shardInfo(shard);
  if (info.startOffset !== 0n) fail(`${shard}: startOffset ${info.startOffset}, expected 0 (retention is off)`);
  const end = info.endOffset;
  const batches = new Map<bigint, number>();
  let pos = from;
  let cur: Batch | undefined;
  let batchEnd = from;
  let records = 0;
  let bytes = 0;
  while (pos < end) {
    const recs = await engine.read(shard, pos, { maxRecords: 1000, maxBytes: 1024 * 1024 });
    if (recs.length === 0) fail(`${shard}: read at ${pos} returned no records but endOffset is ${end}`);
    for (const r of recs) {
      if (r.offset !== pos) fail(`${shard}: read at ${pos} returned offset ${r.offset} (offsets not dense)`);
      if (pos >= end) fail(`${shard}: read returned offset ${pos} at or beyond endOffset ${end}`);
      const res = checkRecord(shard, r);
      if ('error' in res) fail(res.error);
      if (pos === batchEnd) {
        if (res.base !== pos) fail(`${shard}: offset ${pos} starts a new batch but belongs to batch ${res.base}/${res.count}`);
        cur = { base: res.base, count: res.count };
        batchEnd = pos + BigInt(res.count);
        batches.set(res.base, res.count);
      } else if (cur === undefined || res.base !== cur.base || res.count !== cur.count) {
        fail(`${shard}: offset ${pos} is in batch ${res.base}/${res.count}, expected ${cur?.base}/${cur?.count}`);
      }
      records++;
      bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
      pos++;
    }
  }
  if (batchEnd !== end) fail(`${shard}: half-visible batch ${cur?.base}/${cur?.count}: endOffset is ${end}, the batch ends at ${batchEnd}`);
  const atEnd = await engine.read(shard, end, { maxRecords: 10, maxBytes: 1024 });
  if (atEnd.length !== 0) fail(`${shard}: read at endOffset ${end} returned ${atEnd.length} records`);
  await assert.rejects(engine.read(shard, end + 1n, { maxRecords: 10, maxBytes: 1024 }), OffsetOutOfRangeError, `${shard}: read past the end must throw`);
  return { end, batches, records, bytes };
}

async function metricSum(m: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> }): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await m.get()).values) {
    const k = String(v.labels.reason ?? '');
    out.set(k, (out.get(k) ?? 0) + v.value);
  }
  return out;
}

function dirStats(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files++;
    bytes += statSync(join(e.parentPath, e.name)).size;
  }
  return { files, bytes };
}

function openEngine(dir: string, metrics: StorageMetrics): Promise<FileEngine> {
  return FileEngine.open({ dir, segmentBytes: SEGMENT_BYTES, flush: 'sync', flushIntervalMs: 10, retentionMs: -1, retentionBytes: -1, metrics });
}

describe('file engine crash consistency (SIGKILL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'robust-crash-'));
  let passed = false;
  after(() => {
    if (passed || process.env.STORAGE_CRASH_KEEP === undefined) {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.pre`, { recursive: true, force: true });
    } else console.log(`crash test: kept ${dir} (and ${dir}.pre: as the last kill left it)`);
  });

  it(`keeps every acknowledged record and never exposes a partial batch across ${ROUNDS} kills`, { timeout: 300_000 }, async () => {
    const t0 = performance.now();
    const rand = prng(SEED);
    const state = new Map<string, ShardState>(SHARDS.map((s) => [s, { end: 0n, boundaries: [0n], created: false }]));
    const totals = { acked: 0, ackedRecords: 0, checkedRecords: 0, checkedBytes: 0, survivedUnacked: 0, survivedUnackedRecords: 0, lostInFlight: 0, earlyKills: 0, killedBeforeReady: 0, writeMs: 0, childMs: 0, verifyMs: 0 };
    const dropped = new Map<string, number>();
    const openMs: number[] = [];
    let maxRecoverySeconds = 0;
    const rec = { truncatedBytes: 0, droppedRecords: 0, rebuiltIndexEntries: 0, cuts: 0, fullScans: 0, cqCutBytes: 0, scannedBytes: 0 };
    const cutReasons = new Map<string, number>();

    for (let round = 1; round <= ROUNDS; round++) {
      const early = round % 6 === 0;
      if (early) totals.earlyKills++;
      const writes = WRITE_MODES[round % WRITE_MODES.length]!;
      const tChild = performance.now();
      const log = await runWriter(dir, rand, early, Math.floor(rand() * 2 ** 31), writes);
      totals.childMs += performance.now() - tChild;
      const fail = (msg: string): never => {
        assert.fail(`round ${round} (seed ${SEED}, ${writes} writes${early ? ', early kill' : ''}): ${msg}${log.stderr ? `\nwriter stderr:\n${log.stderr}` : ''}`);
      };
      if (log.signal !== 'SIGKILL') fail(`writer exited by itself (code ${log.code}, signal ${log.signal})`);
      if (!early && !log.ready) fail('writer was killed by the guard before it was ready (open/recovery hung?)');
      if (log.stderr) fail('writer wrote to stderr');
      totals.writeMs += log.writeMs;
      if (!log.ready) totals.killedBeforeReady++;

      // Debugging aid: keep the directory as the kill left it (before this round's recovery) next to it.
      if (process.env.STORAGE_CRASH_KEEP !== undefined) {
        rmSync(`${dir}.pre`, { recursive: true, force: true });
        cpSync(dir, `${dir}.pre`, { recursive: true });
      }
      const metrics = new StorageMetrics();
      const tOpen = performance.now();
      const tVerify = tOpen;
      const engine = await openEngine(dir, metrics);
      openMs.push(performance.now() - tOpen);
      try {
        maxRecoverySeconds = Math.max(maxRecoverySeconds, (await metrics.recoverySeconds.get()).values[0]?.value ?? 0);
        for (const [reason, n] of await metricSum(metrics.droppedRecords)) dropped.set(reason, (dropped.get(reason) ?? 0) + n);
        const r = engine.recovery;
        rec.truncatedBytes += r.truncatedBytes;
        rec.droppedRecords += r.droppedRecords;
        rec.rebuiltIndexEntries += r.rebuiltIndexEntries;
        rec.cqCutBytes += r.cqCutBytes;
        rec.scannedBytes += r.scannedBytes;
        if (r.fullScan) rec.fullScans++;
        if (r.cut) {
          rec.cuts++;
          const reason = r.cut.reason.replace(/\d+/g, 'N');
          cutReasons.set(reason, (cutReasons.get(reason) ?? 0) + 1);
        }
        if (r.corruptMeta.length > 0) fail(`recovery found corrupt shard metadata: ${r.corruptMeta.join(', ')}`);

        const listed = new Set(engine.listShards());
        const full = round % 10 === 0 || round === ROUNDS;
        for (const shard of SHARDS) {
          const st = state.get(shard)!;
          const started = log.start.get(shard);
          if (started) {
            if (started.startOffset !== 0n || started.endOffset !== st.end) {
              fail(`${shard}: the writer recovered ${started.startOffset}..${started.endOffset}, but the parent verified 0..${st.end} before this round`);
            }
            st.created = true;
          }
          if (!listed.has(shard)) {
            if (st.created) fail(`${shard} was created in an earlier round but is not listed after recovery (listShards: ${[...listed].join(',')})`);
            if (log.acked.some((a) => a.shard === shard)) fail(`${shard}: not listed, yet appends to it were acknowledged`);
            continue;
          }
          st.created = true;
          // Where to start reading: 0 on full rounds, else a verified batch start at least TAIL_RECHECK records before the last end.
          let from = 0n;
          if (!full) {
            for (const b of st.boundaries) if (b <= st.end - TAIL_RECHECK) from = b;
          }
          const v = await verifyShard(engine, shard, from, fail);
          if (v.end < st.end) fail(`${shard}: endOffset went back from ${st.end} to ${v.end} (records a previous recovery exposed are gone)`);
          totals.checkedRecords += v.records;
          totals.checkedBytes += v.bytes;

          // Every acknowledged batch is there, exactly as acknowledged.
          for (const a of log.acked) {
            if (a.shard !== shard) continue;
            const count = v.batches.get(a.base);
            if (count !== a.count) {
              fail(`${shard}: acknowledged batch ${a.base}/${a.count} ${count === undefined ? `is missing (endOffset ${v.end})` : `was found as ${a.base}/${count}`}`);
            }
            totals.acked++;
            totals.ackedRecords += a.count;
          }
          // Every batch beyond the previous end was passed to append() this round, with the same size; count what survived unacknowledged.
          const sent = log.sent.get(shard) ?? new Map<bigint, number>();
          const ackedBases = new Set(log.acked.filter((a) => a.shard === shard).map((a) => a.base));
          for (const [base, count] of v.batches) {
            if (base < st.end) continue;
            const s = sent.get(base);
            if (s !== count) fail(`${shard}: batch ${base}/${count} is visible but the writer ${s === undefined ? 'never sent a batch at that offset' : `sent ${base}/${s}`}`);
            if (!ackedBases.has(base)) {
              totals.survivedUnacked++;
              totals.survivedUnackedRecords += count;
            }
          }
          for (const base of sent.keys()) if (!ackedBases.has(base) && !v.batches.has(base)) totals.lostInFlight++;
          for (const b of [...v.batches.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) if (b > st.end) st.boundaries.push(b);
          st.end = v.end;
        }
      } finally {
        await engine.close();
        totals.verifyMs += performance.now() - tVerify;
      }
    }

    // A clean close followed by a reopen must recover exactly the same data and drop nothing.
    const metrics = new StorageMetrics();
    const engine = await openEngine(dir, metrics);
    try {
      const droppedClean = [...(await metricSum(metrics.droppedRecords)).values()].reduce((a, b) => a + b, 0);
      assert.equal(droppedClean, 0, 'reopening after a clean close dropped records');
      for (const shard of SHARDS) {
        const info = await engine.shardInfo(shard);
        assert.equal(info.endOffset, state.get(shard)!.end, `${shard}: endOffset changed across a clean close/reopen`);
      }
    } finally {
      await engine.close();
    }

    const ends = SHARDS.map((s) => `${s}=${state.get(s)!.end}`).join(' ');
    const disk = dirStats(dir);
    openMs.sort((a, b) => a - b);
    const droppedText = [...dropped].map(([r, n]) => `${r || 'unlabelled'}=${n}`).join(' ') || 'none';
    console.log(
      `crash: ${ROUNDS} rounds (${totals.earlyKills} with an early kill, ${totals.killedBeforeReady} of them before the writer's open/recovery finished; seed ${SEED}) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `writer processes ${(totals.childMs / 1000).toFixed(1)} s (${(totals.writeMs / 1000).toFixed(1)} s of it appending), recovery + checks ${(totals.verifyMs / 1000).toFixed(1)} s; ` +
        `acknowledged ${totals.acked} batches / ${totals.ackedRecords} records, all present; ` +
        `checked ${totals.checkedRecords} records (${(totals.checkedBytes / 2 ** 20).toFixed(1)} MiB payload) byte for byte; ` +
        `unacknowledged batches that survived whole: ${totals.survivedUnacked} (${totals.survivedUnackedRecords} records), in-flight batches lost: ${totals.lostInFlight}; ` +
        `recovery: open p50 ${openMs[Math.floor(openMs.length / 2)]?.toFixed(1)} ms, max ${openMs[openMs.length - 1]?.toFixed(1)} ms, ` +
        `max recovery gauge ${(maxRecoverySeconds * 1000).toFixed(1)} ms, dropped records (metric) ${droppedText}; ` +
        `log cut in ${rec.cuts} recoveries (${[...cutReasons].map(([k, n]) => `${k}: ${n}`).join('; ') || 'none'}), ${rec.truncatedBytes} bytes truncated, ` +
        `${rec.droppedRecords} records of incomplete batches dropped, ${rec.rebuiltIndexEntries} queue entries rebuilt, ${rec.cqCutBytes} torn queue bytes cut, ` +
        `${rec.fullScans} full scans, ${(rec.scannedBytes / 2 ** 20).toFixed(1)} MiB scanned; ` +
        `final ends ${ends}; ${disk.files} files, ${(disk.bytes / 2 ** 20).toFixed(1)} MiB on disk`,
    );
    assert.ok(totals.ackedRecords > 0, 'no append was ever acknowledged');
    passed = true;
  });
});
