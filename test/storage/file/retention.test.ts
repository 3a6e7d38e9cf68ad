import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OffsetOutOfRangeError } from '../../../src/storage/errors.js';
import { recordBytes } from '../../../src/storage/file/engine.js';
import { StorageMetrics } from '../../../src/storage/metrics.js';
import type { AppendRecord } from '../../../src/storage/types.js';
import { filesIn, makeRoot, openEngine, readAll, rec, sameRecord, segmentFiles, spec } from './support.js';

const { newDir, cleanup } = makeRoot('robust-file-retention-');
after(cleanup);

const SEG = 16 * 1024;
/** ~1 KiB records: 15 per 16 KiB segment. */
const kib = (i: number, ts?: number): AppendRecord => ({ timestamp: ts ?? 1_700_000_000_000 + i, key: Buffer.from('key'), value: Buffer.alloc(1000, i & 0xff), headers: [] });

async function droppedRetention(metrics: StorageMetrics): Promise<number> {
  return (await metrics.droppedRecords.get()).values.filter((v) => v.labels.reason === 'retention').reduce((a, v) => a + v.value, 0);
}

describe('truncateBefore', () => {
  it('moves startOffset (persisted), is a no-op below it, and rejects past the end', async () => {
    const dir = newDir();
    let e = await openEngine(dir);
    await e.createShard(spec('s-0'));
    const recs = Array.from({ length: 30 }, (_, i) => rec(i));
    await e.append('s-0', recs);
    const total = recs.reduce((n, r) => n + recordBytes(r), 0);
    await e.truncateBefore('s-0', 10n);
    await e.truncateBefore('s-0', 5n);
    await assert.rejects(e.truncateBefore('s-0', 31n), OffsetOutOfRangeError);
    let info = await e.shardInfo('s-0');
    assert.equal(info.startOffset, 10n);
    assert.equal(info.bytes, total - recs.slice(0, 10).reduce((n, r) => n + recordBytes(r), 0));
    await e.close();
    e = await openEngine(dir);
    info = await e.shardInfo('s-0');
    assert.equal(info.startOffset, 10n);
    assert.equal(info.endOffset, 30n);
    assert.equal(info.bytes, total - recs.slice(0, 10).reduce((n, r) => n + recordBytes(r), 0));
    const got = await readAll(e, 's-0');
    got.forEach((r, i) => assert.ok(sameRecord(r, recs[i + 10]!, BigInt(i + 10))));
    // Up to the end: empty, and the next append continues the offsets.
    await e.truncateBefore('s-0', 30n);
    assert.equal((await e.shardInfo('s-0')).bytes, 0);
    assert.deepEqual(await e.append('s-0', [rec(99)]), { baseOffset: 30n });
    await e.close();
    e = await openEngine(dir);
    assert.deepEqual(
      (await readAll(e, 's-0')).map((r) => r.offset),
      [30n],
    );
    await e.close();
  });
});

describe('retention', () => {
  it('by bytes: keeps at most retentionBytes per shard, deletes CommitLog segments only when no shard needs them', async () => {
    const dir = newDir();
    const metrics = new StorageMetrics();
    let e = await openEngine(dir, { segmentBytes: SEG, cqEntriesPerFile: 16, timeIndexInterval: 4, metrics });
    await e.createShard(spec('a-0', { retentionBytes: 10 * recordBytes(kib(0)) }));
    await e.createShard(spec('b-0'));
    // a-0 is appended to heavily; b-0 gets one record early on, which pins the first segment.
    await e.append('b-0', [kib(0)]);
    for (let i = 0; i < 100; i++) await e.append('a-0', [kib(i)]);
    await e.flush(); // queue files on disk
    const before = segmentFiles(dir);
    assert.ok(before.length >= 6);
    await e.enforceRetention();
    const a = await e.shardInfo('a-0');
    assert.equal(a.startOffset, 90n);
    assert.equal(a.bytes, 10 * recordBytes(kib(0)));
    assert.equal(await droppedRetention(metrics), 90);
    assert.deepEqual(segmentFiles(dir), before, 'b-0 still has a live record in the first segment: nothing deleted');
    // a-0's whole ConsumeQueue files below its start are gone (16 entries each: 0, 16, ..., 64 are below 90).
    assert.deepEqual(
      filesIn(join(dir, 'consumequeue', 'a-0')).map(Number),
      [80, 96],
    );

    await e.truncateBefore('b-0', 1n);
    await e.enforceRetention();
    const after = segmentFiles(dir);
    assert.ok(after.length < before.length, `segments deleted: ${before.length} -> ${after.length}`);
    assert.ok(after.length <= 2, `only the segments holding a-0's live records stay, got ${after.length}`);
    const got = await readAll(e, 'a-0');
    assert.equal(got.length, 10);
    got.forEach((r, i) => assert.ok(sameRecord(r, kib(90 + i), BigInt(90 + i))));
    await e.close();

    // The state survives a reopen (and the checkpoint points into a deleted segment: fine).
    e = await openEngine(dir, { segmentBytes: SEG, cqEntriesPerFile: 16, timeIndexInterval: 4 });
    assert.equal((await e.shardInfo('a-0')).startOffset, 90n);
    assert.equal((await e.shardInfo('a-0')).bytes, 10 * recordBytes(kib(0)));
    assert.equal((await readAll(e, 'a-0')).length, 10);
    assert.equal((await e.shardInfo('b-0')).startOffset, 1n);
    await e.close();
  });

  it('by time (injected now): drops whole index intervals older than retentionMs; segments go once no shard needs them', async () => {
    const dir = newDir();
    let now = 1_000_000;
    const e = await openEngine(dir, { segmentBytes: SEG, cqEntriesPerFile: 16, timeIndexInterval: 4, retentionMs: 10_000, now: () => now });
    await e.createShard(spec('t-0'));
    await e.createShard(spec('forever-0', { retentionMs: -1 }));
    // forever-0: one very old record, first in the log (it pins the first segment).
    await e.append('forever-0', [kib(0, 0)]);
    // t-0: 40 records at 1_000_000 + i s.
    for (let i = 0; i < 40; i++) await e.append('t-0', [kib(i, 1_000_000 + i * 1000)]);
    const segs = segmentFiles(dir);
    assert.ok(segs.length >= 3);
    now = 1_000_000 + 25_500; // cutoff +15.5 s: records 0..15 are older
    await e.enforceRetention();
    assert.equal((await e.shardInfo('t-0')).startOffset, 16n, 'intervals [0,4) .. [12,16) expired');
    assert.equal((await e.shardInfo('forever-0')).startOffset, 0n);
    // An interval is kept while any of its records is young enough.
    now = 1_000_000 + 27_500; // cutoff +17.5 s: interval [16,20) has records at +16..+19 s
    await e.enforceRetention();
    assert.equal((await e.shardInfo('t-0')).startOffset, 16n);
    now = 1_000_000 + 100_000;
    await e.enforceRetention();
    const info = await e.shardInfo('t-0');
    assert.equal(info.startOffset, 40n);
    assert.equal(info.bytes, 0);
    assert.deepEqual(await e.read('t-0', 40n, { maxRecords: 10, maxBytes: 1000 }), []);
    assert.deepEqual(segmentFiles(dir), segs, 'forever-0 still needs the first segment: all kept');
    assert.equal((await readAll(e, 'forever-0')).length, 1);
    // Once that shard is gone, every segment but the active one is deleted.
    await e.deleteShard('forever-0');
    await e.enforceRetention();
    assert.deepEqual(segmentFiles(dir), [segs[segs.length - 1]]);
    assert.deepEqual(await e.append('t-0', [kib(40, now)]), { baseOffset: 40n });
    assert.equal((await readAll(e, 't-0')).length, 1);
    await e.close();
  });

  it('deletes segments when every shard is empty, but never the active one', async () => {
    const dir = newDir();
    const e = await openEngine(dir, { segmentBytes: SEG, retentionBytes: 0 });
    await e.createShard(spec('x-0'));
    for (let i = 0; i < 50; i++) await e.append('x-0', [kib(i)]);
    assert.ok(segmentFiles(dir).length > 3);
    await e.enforceRetention();
    assert.equal((await e.shardInfo('x-0')).startOffset, 50n);
    assert.equal(segmentFiles(dir).length, 1);
    assert.deepEqual(await e.append('x-0', [kib(50)]), { baseOffset: 50n });
    assert.equal((await readAll(e, 'x-0')).length, 1, 'retention applies at the next enforcement, not on append');
    await e.close();
  });
});
