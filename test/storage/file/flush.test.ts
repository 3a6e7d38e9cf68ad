import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { StorageFullError, StorageIOError } from '../../../src/storage/errors.js';
import { defaultCommitLogIO, type CommitLogIO } from '../../../src/storage/file/commitlog.js';
import { StorageMetrics } from '../../../src/storage/metrics.js';
import { lastSegment, makeRoot, openEngine, readAll, rec, sameRecord, spec } from './support.js';

const { newDir, cleanup } = makeRoot('robust-file-flush-');
after(cleanup);

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`simulated ${code}`), { code });

/** An fs layer whose next write/fdatasync can be made to fail or wait. */
function faultyIO() {
  const state = {
    datasyncs: 0,
    failWrite: undefined as undefined | { code: string; partial: boolean; skip?: number },
    failSync: undefined as undefined | string,
    holdSync: undefined as undefined | Promise<void>,
  };
  const io: CommitLogIO = {
    async write(fh: FileHandle, buf: Buffer, position: number, path: string) {
      const f = state.failWrite;
      if (f && f.skip) f.skip--;
      else if (f) {
        state.failWrite = undefined;
        if (f.partial) await fh.write(buf, 0, Math.floor(buf.length / 2), position);
        throw errno(f.code);
      }
      return defaultCommitLogIO.write(fh, buf, position, path);
    },
    async datasync(fh: FileHandle, path: string) {
      if (state.holdSync) await state.holdSync;
      if (state.failSync) throw errno(state.failSync);
      state.datasyncs++;
      return defaultCommitLogIO.datasync(fh, path);
    },
  };
  return { state, io };
}

async function fsyncHistogramCount(metrics: StorageMetrics): Promise<number> {
  return (await metrics.fsyncSeconds.get()).values.filter((v) => v.metricName?.endsWith('_count')).reduce((a, v) => a + v.value, 0);
}

describe('flush modes', () => {
  it('sync: concurrent appends share fdatasyncs (group commit) and get dense offsets in call order', async () => {
    const metrics = new StorageMetrics();
    const e = await openEngine(newDir(), { flush: 'sync', metrics });
    await e.createShard(spec('g-0'));
    await e.append('g-0', [rec(0)]);
    const before = e.fsyncCount;
    const histBefore = await fsyncHistogramCount(metrics);
    const N = 64;
    const results = await Promise.all(Array.from({ length: N }, (_, i) => e.append('g-0', [rec(i + 1), rec(i + 1000)])));
    results.forEach((r, i) => assert.equal(r.baseOffset, BigInt(1 + 2 * i)));
    const fsyncs = e.fsyncCount - before;
    assert.ok(fsyncs >= 1 && fsyncs < N / 4, `${N} sync appends took ${fsyncs} fdatasyncs`);
    assert.equal((await fsyncHistogramCount(metrics)) - histBefore, fsyncs, 'robust_storage_fsync_seconds counts every fdatasync');
    const text = await metrics.registry.metrics();
    assert.match(text, /robust_storage_append_seconds_count\{engine="file",flush="sync"\} 65/);
    await e.close();
  });

  it('sync: an append resolves only after the fdatasync covering it', async () => {
    const { state, io } = faultyIO();
    const e = await openEngine(newDir(), { flush: 'sync', io });
    await e.createShard(spec('s-0'));
    let release!: () => void;
    state.holdSync = new Promise<void>((r) => (release = r));
    let done = false;
    const p = e.append('s-0', [rec(1)]).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(done, false, 'not acknowledged while the fdatasync is pending');
    // The record is already readable (published before durable).
    assert.equal((await e.shardInfo('s-0')).endOffset, 1n);
    state.holdSync = undefined;
    release();
    await p;
    assert.ok(state.datasyncs >= 1);
    await e.close();
  });

  it('async: acknowledges after the write; a timer fdatasyncs within flushIntervalMs; spec.flush overrides', async () => {
    const { state, io } = faultyIO();
    const e = await openEngine(newDir(), { flush: 'async', flushIntervalMs: 20, io });
    await e.createShard(spec('a-0'));
    await e.createShard(spec('s-0', { flush: 'sync' }));
    await e.append('a-0', [rec(1)]);
    assert.equal(state.datasyncs, 0);
    await new Promise((r) => setTimeout(r, 80));
    assert.ok(state.datasyncs >= 1, 'the flush timer ran');
    const n = state.datasyncs;
    await e.append('s-0', [rec(2)]);
    assert.ok(state.datasyncs > n, 'a sync shard waits for its fdatasync');
    await e.close();
  });

  it('async: an fdatasync starts once flushBytes were written, without waiting for the timer; flushBytes 0 leaves it to the timer', async () => {
    const appendMiB = async (flushBytes: number) => {
      const { state, io } = faultyIO();
      const e = await openEngine(newDir(), { flush: 'async', flushIntervalMs: 60_000, flushBytes, segmentBytes: 4 << 20, io });
      await e.createShard(spec('b-0'));
      // 1 MiB in 16 appends of 16 x 4 KiB, one at a time (each its own group write).
      for (let i = 0; i < 16; i++) await e.append('b-0', Array.from({ length: 16 }, (_, j) => rec(i * 16 + j, { valueBytes: 4096 })));
      await new Promise((r) => setTimeout(r, 50));
      const n = state.datasyncs;
      await e.close();
      return n;
    };
    const triggered = await appendMiB(128 * 1024);
    // One fdatasync at a time, each started by the first write after the previous one ended: 1..8 of them for 1 MiB.
    assert.ok(triggered >= 1 && triggered <= 8, `1 MiB with flushBytes 128 KiB took ${triggered} fdatasyncs`);
    assert.equal(await appendMiB(0), 0, 'without the size trigger the 60 s timer has not run yet');
    assert.equal(await appendMiB(8 << 20), 0, 'less than flushBytes written');
  });
});

describe('write failures', () => {
  for (const [code, cls] of [
    ['ENOSPC', StorageFullError],
    ['EIO', StorageIOError],
  ] as const) {
    it(`a failed write (${code}, half the bytes written) leaves no partial batch and consumes no offsets`, async () => {
      const dir = newDir();
      const { state, io } = faultyIO();
      let e = await openEngine(dir, { io });
      await e.createShard(spec('f-0'));
      await e.createShard(spec('g-0'));
      const good = [rec(1), rec(2), rec(3)];
      await e.append('f-0', good);
      const seg = lastSegment(dir);
      state.failWrite = { code, partial: true };
      await assert.rejects(e.append('f-0', [rec(10), rec(11), rec(12), rec(13)]), cls);
      assert.equal(lastSegment(dir).size, seg.size, 'the partial bytes were truncated away');
      assert.equal((await e.shardInfo('f-0')).endOffset, 3n);
      // Reads keep working; the next appends reuse the offsets.
      assert.equal((await readAll(e, 'f-0')).length, 3);
      assert.deepEqual(await e.append('f-0', [rec(20)]), { baseOffset: 3n });
      assert.deepEqual(await e.append('g-0', [rec(30)]), { baseOffset: 0n });
      await e.close();
      e = await openEngine(dir);
      assert.equal(e.recovery.truncatedBytes, 0);
      const got = await readAll(e, 'f-0');
      assert.equal(got.length, 4);
      [...good, rec(20)].forEach((r, i) => assert.ok(sameRecord(got[i]!, r, BigInt(i))));
      await e.close();
    });
  }

  it('concurrent appends grouped with a failed write all fail, and the queue after them succeeds', async () => {
    const { state, io } = faultyIO();
    const e = await openEngine(newDir(), { io });
    await e.createShard(spec('c-0'));
    await e.append('c-0', [rec(0)]);
    // While one write runs, the others queue up and are written together.
    state.failWrite = { code: 'EIO', partial: true, skip: 1 };
    const first = e.append('c-0', [rec(1)]);
    const grouped = [e.append('c-0', [rec(2)]), e.append('c-0', [rec(3)])];
    assert.deepEqual(await first, { baseOffset: 1n });
    for (const p of grouped) await assert.rejects(p, StorageIOError);
    assert.deepEqual(await e.append('c-0', [rec(4)]), { baseOffset: 2n });
    const got = await readAll(e, 'c-0');
    assert.deepEqual(
      got.map((r) => r.value),
      [rec(0), rec(1), rec(4)].map((r) => r.value),
    );
    await e.close();
  });

  it('a failed fdatasync fails the sync appends and every later append (reads still work)', async () => {
    const { state, io } = faultyIO();
    const e = await openEngine(newDir(), { flush: 'sync', io });
    await e.createShard(spec('s-0'));
    await e.append('s-0', [rec(1)]);
    state.failSync = 'EIO';
    await assert.rejects(e.append('s-0', [rec(2)]), StorageIOError);
    state.failSync = undefined;
    await assert.rejects(e.append('s-0', [rec(3)]), StorageIOError);
    const got = await e.read('s-0', 0n, { maxRecords: 10, maxBytes: 1 << 20 });
    assert.ok(sameRecord(got[0]!, rec(1), 0n));
    await e.close();
  });
});
