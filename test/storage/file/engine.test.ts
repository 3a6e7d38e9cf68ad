import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  OffsetOutOfRangeError,
  RecordTooLargeError,
  ShardNotFoundError,
  StorageClosedError,
} from '../../../src/storage/errors.js';
import { FileEngine, recordBytes } from '../../../src/storage/file/engine.js';
import { StorageMetrics } from '../../../src/storage/metrics.js';
import type { AppendRecord } from '../../../src/storage/types.js';
import { makeRoot, openEngine, readAll, rec, sameRecord, segmentFiles, spec } from './support.js';

const { newDir, cleanup } = makeRoot('robust-file-engine-');
after(cleanup);

const SHARDS = ['orders-0', 'tópic.ü-ß-1', '日本語.topic-2', 'a/b..c-3', '.hidden-4'];

describe('FileEngine basics', () => {
  it('round-trips every field, with dense offsets from 0', async () => {
    const dir = newDir();
    const e = await openEngine(dir);
    await e.createShard(spec('orders-0'));
    const batch: AppendRecord[] = [
      { timestamp: 1, key: null, value: null, headers: [] },
      { timestamp: 2, key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [], tag: '' },
      { timestamp: -5, key: Buffer.from('key'), value: Buffer.from('value'), headers: [{ key: 'h1', value: Buffer.from('v1') }, { key: '', value: Buffer.alloc(0) }, { key: 'ключ', value: Buffer.from([0, 1, 2]) }], tag: 'TagA' },
      { timestamp: 1_700_000_000_123, key: Buffer.from([0xff, 0]), value: Buffer.alloc(3000, 7), headers: [], tag: 'ü-tag' },
      { timestamp: Number.MAX_SAFE_INTEGER, key: null, value: Buffer.from('x'), headers: [{ key: 'dup', value: Buffer.from('1') }, { key: 'dup', value: Buffer.from('2') }] },
    ];
    assert.deepEqual(await e.append('orders-0', batch), { baseOffset: 0n });
    assert.deepEqual(await e.append('orders-0', [rec(9)]), { baseOffset: 5n });
    const got = await e.read('orders-0', 0n, { maxRecords: 100, maxBytes: 1 << 20 });
    assert.equal(got.length, 6);
    batch.forEach((r, i) => assert.ok(sameRecord(got[i]!, r, BigInt(i)), `record ${i}`));
    assert.ok(sameRecord(got[5]!, rec(9), 5n));
    // Exactly the fields of StoredRecord: no tag property when there was none.
    assert.equal('tag' in got[0]!, false);
    assert.equal(got[1]!.tag, '');
    assert.ok(Buffer.isBuffer(got[2]!.key) && Buffer.isBuffer(got[2]!.headers[0]!.value));
    const info = await e.shardInfo('orders-0');
    assert.deepEqual(info, { shard: 'orders-0', engine: 'file', startOffset: 0n, endOffset: 6n, bytes: [...batch, rec(9)].reduce((n, r) => n + recordBytes(r), 0) });
    await e.close();
  });

  it('respects maxRecords and maxBytes, always returning at least one record', async () => {
    const e = await openEngine(newDir());
    await e.createShard(spec('s-0'));
    const recs: AppendRecord[] = Array.from({ length: 20 }, (_, i) => ({ timestamp: i, key: Buffer.from('kk'), value: Buffer.alloc(100, i), headers: [] }));
    await e.append('s-0', recs);
    const size = recordBytes(recs[0]!);
    assert.equal((await e.read('s-0', 0n, { maxRecords: 5, maxBytes: 1 << 20 })).length, 5);
    assert.equal((await e.read('s-0', 0n, { maxRecords: 100, maxBytes: size * 3 })).length, 3);
    assert.equal((await e.read('s-0', 0n, { maxRecords: 100, maxBytes: size * 3 - 1 })).length, 2);
    assert.equal((await e.read('s-0', 4n, { maxRecords: 100, maxBytes: 1 })).length, 1);
    assert.equal((await e.read('s-0', 4n, { maxRecords: 0, maxBytes: 1 << 20 })).length, 1);
    const tail = await e.read('s-0', 15n, { maxRecords: 100, maxBytes: 1 << 20 });
    assert.deepEqual(
      tail.map((r) => r.offset),
      [15n, 16n, 17n, 18n, 19n],
    );
    await e.close();
  });

  it('throws OffsetOutOfRangeError outside [start, end] and returns [] at the end', async () => {
    const e = await openEngine(newDir());
    await e.createShard(spec('s-0'));
    assert.deepEqual(await e.read('s-0', 0n, { maxRecords: 10, maxBytes: 100 }), []);
    await assert.rejects(e.read('s-0', 1n, { maxRecords: 10, maxBytes: 100 }), OffsetOutOfRangeError);
    await e.append('s-0', [rec(1), rec(2), rec(3)]);
    await e.truncateBefore('s-0', 1n);
    await assert.rejects(e.read('s-0', 0n, { maxRecords: 10, maxBytes: 100 }), (err: unknown) => {
      assert.ok(err instanceof OffsetOutOfRangeError);
      assert.equal(err.startOffset, 1n);
      assert.equal(err.endOffset, 3n);
      return true;
    });
    await assert.rejects(e.read('s-0', 4n, { maxRecords: 10, maxBytes: 100 }), OffsetOutOfRangeError);
    assert.deepEqual(await e.read('s-0', 3n, { maxRecords: 10, maxBytes: 100 }), []);
    await e.close();
  });

  it('unknown shards throw ShardNotFoundError; createShard is idempotent and updates the spec', async () => {
    const dir = newDir();
    const e = await openEngine(dir);
    await assert.rejects(e.append('nope-0', [rec(1)]), ShardNotFoundError);
    await assert.rejects(e.read('nope-0', 0n, { maxRecords: 1, maxBytes: 1 }), ShardNotFoundError);
    await assert.rejects(e.shardInfo('nope-0'), ShardNotFoundError);
    await assert.rejects(e.offsetForTime('nope-0', 0), ShardNotFoundError);
    await assert.rejects(e.truncateBefore('nope-0', 0n), ShardNotFoundError);
    await assert.rejects(e.waitForData('nope-0', 0n, 10), ShardNotFoundError);
    await e.deleteShard('nope-0');
    await e.createShard(spec('s-0'));
    await e.append('s-0', [rec(1)]);
    await e.createShard(spec('s-0'));
    await e.createShard(spec('s-0', { retentionMs: 5000, flush: 'sync' }));
    assert.equal((await e.shardInfo('s-0')).endOffset, 1n);
    await e.close();
    const meta = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'meta', 's-0.json'), 'utf8')) as { spec: { retentionMs: number; flush: string } };
    assert.equal(meta.spec.retentionMs, 5000);
    assert.equal(meta.spec.flush, 'sync');
  });

  it('interleaves many shards (unicode, dots, slashes) in one CommitLog and reopens identically', async () => {
    const dir = newDir();
    let e = await openEngine(dir);
    for (const s of SHARDS) await e.createShard(spec(s));
    const want = new Map<string, AppendRecord[]>(SHARDS.map((s) => [s, []]));
    let seed = 0;
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        SHARDS.map(async (s, i) => {
          const batch = Array.from({ length: 1 + ((round + i) % 4) }, () => rec(seed++, { tag: seed % 2 ? `t${seed % 3}` : undefined }));
          const before = want.get(s)!.length;
          want.get(s)!.push(...batch);
          const { baseOffset } = await e.append(s, batch);
          assert.equal(baseOffset, BigInt(before));
        }),
      );
    }
    const check = async () => {
      for (const s of SHARDS) {
        const got = await readAll(e, s, 7);
        const w = want.get(s)!;
        assert.equal(got.length, w.length, s);
        got.forEach((r, i) => assert.ok(sameRecord(r, w[i]!, BigInt(i)), `${s} @${i}`));
      }
    };
    await check();
    await e.close();
    assert.deepEqual(readdirSync(join(dir, 'consumequeue')).length, SHARDS.length);
    assert.deepEqual(readdirSync(join(dir, 'meta')).length, SHARDS.length);
    e = await openEngine(dir);
    assert.deepEqual(e.listShards().sort(), [...SHARDS].sort());
    assert.equal(e.recovery.truncatedBytes, 0);
    assert.equal(e.recovery.droppedRecords, 0);
    assert.equal(e.recovery.scannedBytes, 0, 'a clean close leaves nothing to scan');
    await check();
    // Appends continue after the reopen.
    await e.append(SHARDS[1]!, [rec(1000)]);
    want.get(SHARDS[1]!)!.push(rec(1000));
    await check();
    await e.close();
  });

  it('rolls CommitLog segments (64 KiB) and reads records across many of them after a reopen', async () => {
    const dir = newDir();
    let e = await openEngine(dir, { segmentBytes: 64 * 1024 });
    await e.createShard(spec('big-0'));
    await e.createShard(spec('small-0'));
    const big: AppendRecord[] = [];
    for (let i = 0; i < 60; i++) {
      const batch = Array.from({ length: 3 }, (_, k) => rec(i * 3 + k, { valueBytes: 5000 + ((i * 7) % 900) }));
      big.push(...batch);
      await e.append('big-0', batch);
      await e.append('small-0', [rec(i)]);
    }
    const segs = segmentFiles(dir);
    assert.ok(segs.length >= 14, `expected many segments, got ${segs.length}`);
    for (const s of segs) assert.equal(Number(s) % (64 * 1024), 0, 'segments are named by their start position');
    const got = await readAll(e, 'big-0', 50);
    got.forEach((r, i) => assert.ok(sameRecord(r, big[i]!, BigInt(i))));
    await e.close();
    e = await openEngine(dir, { segmentBytes: 64 * 1024 });
    const again = await readAll(e, 'big-0', 1000);
    assert.equal(again.length, big.length);
    again.forEach((r, i) => assert.ok(sameRecord(r, big[i]!, BigInt(i))));
    assert.equal((await readAll(e, 'small-0')).length, 60);
    await e.close();
  });

  it('refuses a batch larger than a segment with RecordTooLargeError, and bad records with TypeError', async () => {
    const e = await openEngine(newDir(), { segmentBytes: 16 * 1024 });
    await e.createShard(spec('s-0'));
    await assert.rejects(e.append('s-0', [rec(1, { valueBytes: 20 * 1024 })]), RecordTooLargeError);
    await assert.rejects(e.append('s-0', Array.from({ length: 10 }, (_, i) => rec(i, { valueBytes: 2000 }))), RecordTooLargeError);
    await assert.rejects(e.append('s-0', [{ timestamp: NaN, key: null, value: null, headers: [] }]), TypeError);
    await assert.rejects(e.append('s-0', [{ timestamp: 1, key: 'str' as unknown as Buffer, value: null, headers: [] }]), TypeError);
    // Nothing was consumed.
    assert.deepEqual(await e.append('s-0', [rec(1, { valueBytes: 15 * 1024 })]), { baseOffset: 0n });
    assert.deepEqual(await e.append('s-0', []), { baseOffset: 1n });
    await e.close();
  });

  it('deleteShard makes the records unreachable and a re-created shard starts empty, also after reopen', async () => {
    const dir = newDir();
    let e = await openEngine(dir);
    await e.createShard(spec('s-0'));
    await e.createShard(spec('keep-0'));
    await e.append('s-0', [rec(1), rec(2)]);
    await e.append('keep-0', [rec(3)]);
    await e.deleteShard('s-0');
    assert.deepEqual(e.listShards(), ['keep-0']);
    await assert.rejects(e.read('s-0', 0n, { maxRecords: 1, maxBytes: 1 }), ShardNotFoundError);
    assert.ok(!readdirSync(join(dir, 'consumequeue')).includes('s-0'));
    assert.deepEqual(readdirSync(join(dir, 'meta')), ['keep-0.json']);
    await e.createShard(spec('s-0'));
    assert.equal((await e.shardInfo('s-0')).endOffset, 0n);
    await e.append('s-0', [rec(10)]);
    await e.close();
    // Even a full scan (no checkpoint) must not resurrect the old incarnation's records.
    (await import('node:fs')).rmSync(join(dir, 'checkpoint'));
    e = await openEngine(dir);
    assert.equal(e.recovery.fullScan, true);
    const got = await readAll(e, 's-0');
    assert.equal(got.length, 1);
    assert.ok(sameRecord(got[0]!, rec(10), 0n));
    assert.equal((await readAll(e, 'keep-0')).length, 1);
    await e.close();
  });

  it('after close every call throws StorageClosedError; close is idempotent', async () => {
    const e = await openEngine(newDir());
    await e.createShard(spec('s-0'));
    await e.close();
    await e.close();
    await assert.rejects(e.append('s-0', [rec(1)]), StorageClosedError);
    await assert.rejects(e.read('s-0', 0n, { maxRecords: 1, maxBytes: 1 }), StorageClosedError);
    await assert.rejects(e.createShard(spec('x-0')), StorageClosedError);
    await assert.rejects(e.waitForData('s-0', 0n, 10), StorageClosedError);
    assert.throws(() => e.listShards(), StorageClosedError);
  });

  it('reports metrics: append bytes/records/latency, per-shard bytes, recovery time', async () => {
    const metrics = new StorageMetrics();
    const e = await FileEngine.open({ dir: newDir(), segmentBytes: 1 << 20, flush: 'async', flushIntervalMs: 1000, retentionMs: -1, retentionBytes: -1, metrics });
    await e.createShard(spec('m-0'));
    const r = [rec(1), rec(2)];
    await e.append('m-0', r);
    const text = await metrics.registry.metrics();
    const bytes = r.reduce((n, x) => n + recordBytes(x), 0);
    assert.match(text, new RegExp(`robust_storage_append_bytes_total\\{engine="file"\\} ${bytes}`));
    assert.match(text, /robust_storage_append_records_total\{engine="file"\} 2/);
    assert.match(text, /robust_storage_append_seconds_count\{engine="file",flush="async"\} 1/);
    assert.match(text, new RegExp(`robust_storage_shard_bytes\\{shard="m-0",engine="file"\\} ${bytes}`));
    assert.match(text, /robust_storage_recovery_seconds\{engine="file"\} /);
    await e.close();
  });
});

describe('waitForData', () => {
  it('resolves at once when data exists, on append, on timeout, and on close — leaving no timers', async () => {
    const e = await openEngine(newDir());
    await e.createShard(spec('w-0'));
    await e.append('w-0', [rec(1)]);
    const t0 = performance.now();
    await e.waitForData('w-0', 0n, 10_000);
    assert.ok(performance.now() - t0 < 50);

    let woke = false;
    const p = e.waitForData('w-0', 1n, 10_000).then(() => (woke = true));
    const q = e.waitForData('w-0', 2n, 10_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(woke, false);
    const t1 = performance.now();
    await e.append('w-0', [rec(2)]);
    await p;
    assert.ok(performance.now() - t1 < 50, 'woken by the append');

    const t2 = performance.now();
    await e.waitForData('w-0', 5n, 60);
    const waited = performance.now() - t2;
    assert.ok(waited >= 55 && waited < 1000, `timed out after ${waited} ms`);

    await e.close();
    await q; // resolved by close
    const timers = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout');
    assert.equal(timers.length, 0, `timers left behind: ${timers.length}`);
  });
});

describe('waitForData (more)', () => {
  it('resolves on deleteShard and at once for an offset below startOffset', async () => {
    const e = await openEngine(newDir());
    await e.createShard(spec('w-0'));
    await e.append('w-0', [rec(1), rec(2)]);
    await e.truncateBefore('w-0', 2n);
    await e.waitForData('w-0', 0n, 10_000);
    const p = e.waitForData('w-0', 2n, 10_000);
    await e.deleteShard('w-0');
    await p;
    await assert.rejects(e.waitForData('w-0', 0n, 10), ShardNotFoundError);
    await e.close();
  });
});

describe('offsetForTime', () => {
  it('finds the first offset with timestamp >= t for increasing timestamps (across many index intervals)', async () => {
    const dir = newDir();
    let e = await openEngine(dir, { timeIndexInterval: 4, cqEntriesPerFile: 16 });
    await e.createShard(spec('t-0'));
    for (let i = 0; i < 10; i++) await e.append('t-0', Array.from({ length: 10 }, (_, k) => rec(i * 10 + k, { ts: 1000 + (i * 10 + k) * 10 })));
    const check = async () => {
      assert.equal(await e.offsetForTime('t-0', 0), 0n);
      assert.equal(await e.offsetForTime('t-0', 1000), 0n);
      assert.equal(await e.offsetForTime('t-0', 1001), 1n);
      assert.equal(await e.offsetForTime('t-0', 1500), 50n);
      assert.equal(await e.offsetForTime('t-0', 1995), 100n);
      assert.equal(await e.offsetForTime('t-0', 1990), 99n);
      assert.equal(await e.offsetForTime('t-0', 5000), 100n);
    };
    await check();
    await e.close();
    e = await openEngine(dir, { timeIndexInterval: 4, cqEntriesPerFile: 16 });
    await check();
    await e.truncateBefore('t-0', 37n);
    assert.equal(await e.offsetForTime('t-0', 0), 37n);
    assert.equal(await e.offsetForTime('t-0', 1500), 50n);
    await e.close();
  });

  it('is exact for non-monotonic timestamps', async () => {
    const e = await openEngine(newDir(), { timeIndexInterval: 4, cqEntriesPerFile: 16 });
    await e.createShard(spec('t-0'));
    const ts = [50, 10, 40, 20, 30, 5, 60, 15, 70, 1, 2, 3, 100, 0, 90, 80, 85, 7];
    await e.append('t-0', ts.map((t, i) => rec(i, { ts: t })));
    const expect = (t: number, from = 0) => {
      for (let i = from; i < ts.length; i++) if (ts[i]! >= t) return BigInt(i);
      return BigInt(ts.length);
    };
    for (const t of [-1, 0, 1, 5, 6, 10, 45, 50, 51, 60, 65, 71, 85, 86, 95, 100, 101]) assert.equal(await e.offsetForTime('t-0', t), expect(t), `t=${t}`);
    await e.truncateBefore('t-0', 7n);
    for (const t of [0, 45, 50, 51, 71, 86, 101]) assert.equal(await e.offsetForTime('t-0', t), expect(t, 7), `after truncate t=${t}`);
    await e.close();
  });
});
