import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StorageIOError } from '../../../src/storage/errors.js';
import { encodeEos } from '../../../src/storage/file/commitlog.js';
import { recordBytes, type FileEngine } from '../../../src/storage/file/engine.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../../src/storage/file/meta.js';
import { StorageMetrics } from '../../../src/storage/metrics.js';
import type { AppendRecord } from '../../../src/storage/types.js';
import { captureLog, crashCopy, filesIn, lastSegment, makeRoot, openEngine, readAll, rec, sameRecord, segmentFiles, spec } from './support.js';

const { newDir, cleanup } = makeRoot('robust-file-recovery-');
after(cleanup);

const SHARD = 'rec-0';
const encoded = (r: AppendRecord, shard = SHARD): number => recordBytes(r) + Buffer.byteLength(shard);

/** Appends `batches` (each a list of records) to SHARD and to a second shard, then returns what was appended. */
async function fill(e: FileEngine, batches: AppendRecord[][]): Promise<AppendRecord[]> {
  await e.createShard(spec(SHARD));
  await e.createShard(spec('other-0'));
  const all: AppendRecord[] = [];
  for (const b of batches) {
    await e.append('other-0', [rec(all.length + 500)]);
    await e.append(SHARD, b);
    all.push(...b);
  }
  return all;
}

/** Reopens `dir`, checks SHARD holds exactly want[0..n) and other-0 is intact; returns the engine (open). */
async function reopenAndCheck(dir: string, want: AppendRecord[], n: number, extra: Parameters<typeof openEngine>[1] = {}): Promise<FileEngine> {
  const e = await openEngine(dir, extra);
  const info = await e.shardInfo(SHARD);
  assert.equal(info.endOffset, BigInt(n), 'endOffset after recovery');
  const got = await readAll(e, SHARD);
  assert.equal(got.length, n);
  got.forEach((r, i) => assert.ok(sameRecord(r, want[i]!, BigInt(i)), `record ${i}`));
  return e;
}

/** An engine with some batches, crash-copied while open (indexes not flushed since open, no final checkpoint). */
async function crashed(batches: AppendRecord[][]): Promise<{ dir: string; want: AppendRecord[] }> {
  const live = newDir();
  const e = await openEngine(live);
  const want = await fill(e, batches);
  const dir = crashCopy(live, newDir());
  await e.close();
  return { dir, want };
}

const singles = (n: number, from = 0): AppendRecord[][] => Array.from({ length: n }, (_, i) => [rec(from + i, { valueBytes: 300 })]);

describe('recovery after a crash', () => {
  it('rebuilds the indexes from the CommitLog when nothing is damaged', async () => {
    const { dir, want } = await crashed(singles(30));
    const e = await reopenAndCheck(dir, want, 30);
    assert.equal(e.recovery.truncatedBytes, 0);
    assert.equal(e.recovery.droppedRecords, 0);
    assert.equal(e.recovery.rebuiltIndexEntries, 60, 'both shards rebuilt from the log');
    assert.equal(e.recovery.checkpoint, 'ok');
    await e.close();
  });

  it('a byte flipped in the tail record: cut there, reported, logged, and appends continue at its offset', async () => {
    const { dir, want } = await crashed([...singles(10), [rec(100), rec(101), rec(102)], ...singles(5, 200)]);
    const last = lastSegment(dir);
    const size = encoded(want[want.length - 1]!);
    const buf = readFileSync(last.path);
    buf[last.size - Math.floor(size / 2)] = buf[last.size - Math.floor(size / 2)]! ^ 0x40;
    writeFileSync(last.path, buf);
    const { lines, log } = captureLog();
    const metrics = new StorageMetrics();
    const e = await reopenAndCheck(dir, want, want.length - 1, { log, metrics });
    assert.equal(e.recovery.truncatedBytes, size);
    assert.match(e.recovery.cut?.reason ?? '', /CRC/);
    assert.equal(statSync(last.path).size, last.size - size);
    const warn = lines.find((l) => l.level === 'warn');
    assert.ok(warn, 'a warning is logged');
    assert.equal((warn.obj as { truncatedBytes: number }).truncatedBytes, size);
    assert.deepEqual(await e.append(SHARD, [rec(999)]), { baseOffset: BigInt(want.length - 1) });
    assert.equal((await e.shardInfo('other-0')).endOffset, 16n);
    await e.close();
    const again = await reopenAndCheck(dir, [...want.slice(0, -1), rec(999)], want.length);
    assert.equal(again.recovery.truncatedBytes, 0);
    await again.close();
  });

  it('the CommitLog cut at several offsets inside the last record drops exactly that record', async () => {
    const base = await crashed(singles(12));
    const size = encoded(base.want[base.want.length - 1]!);
    for (const keep of [1, 4, 8, 11, 12, 30, size - 1]) {
      const dir = crashCopy(base.dir, newDir());
      const last = lastSegment(dir);
      truncateSync(last.path, last.size - size + keep);
      const e = await reopenAndCheck(dir, base.want, 11);
      assert.equal(e.recovery.truncatedBytes, keep, `cut after ${keep} bytes of the record`);
      await e.close();
    }
  });

  it('a torn multi-record batch disappears as a whole (all or nothing)', async () => {
    const batch = [rec(50), rec(51), rec(52), rec(53)];
    const { dir, want } = await crashed([...singles(6), batch]);
    const last = lastSegment(dir);
    truncateSync(last.path, last.size - 10); // inside the batch's last record
    const e = await reopenAndCheck(dir, want, 6);
    assert.equal(e.recovery.droppedRecords, 3, 'the three intact records of the torn batch');
    assert.equal(e.recovery.truncatedBytes, batch.reduce((n, r) => n + encoded(r), 0) - 10);
    await e.close();
  });

  it('a zero-filled tail (file extended, data lost) is cut', async () => {
    const { dir, want } = await crashed(singles(8));
    appendFileSync(lastSegment(dir).path, Buffer.alloc(4096));
    const e = await reopenAndCheck(dir, want, 8);
    assert.equal(e.recovery.truncatedBytes, 4096);
    await e.close();
  });

  it('a record spanning the cut between checkpoint and crash: entries written after the checkpoint that point past the tail are dropped', async () => {
    const live = newDir();
    const e0 = await openEngine(live);
    const want = await fill(e0, singles(20));
    await e0.flush(); // queue files and checkpoint at 20 records
    for (const b of singles(10, 20)) {
      await e0.append(SHARD, b);
      want.push(...b);
    }
    await e0.flush(); // queue entries for all 30 on disk, checkpoint at the end
    const dir = crashCopy(live, newDir());
    await e0.close();
    // Lose the last 5 records of the log (and thus the checkpoint's position).
    const last = lastSegment(dir);
    truncateSync(last.path, last.size - want.slice(25).reduce((n, r) => n + encoded(r), 0));
    const e = await reopenAndCheck(dir, want, 25);
    assert.match(e.recovery.checkpoint, /not in the commit log/);
    assert.equal(e.recovery.fullScan, true);
    assert.equal(e.recovery.droppedRecords, 5, 'the five queue entries that pointed past the end');
    await e.close();
  });
});

describe('recovery of damaged indexes and checkpoint', () => {
  async function cleanlyClosed(n: number): Promise<{ dir: string; want: AppendRecord[] }> {
    const dir = newDir();
    const e = await openEngine(dir, { cqEntriesPerFile: 16, timeIndexInterval: 4 });
    const want = await fill(e, singles(n));
    await e.close();
    return { dir, want };
  }
  const opts = { cqEntriesPerFile: 16, timeIndexInterval: 4 };

  it('a ConsumeQueue file cut mid-entry is cut to whole entries and completed from the log', async () => {
    const { dir, want } = await cleanlyClosed(40);
    const cq = join(dir, 'consumequeue', SHARD, '00000000000000000032');
    truncateSync(cq, statSync(cq).size - 7);
    const e = await reopenAndCheck(dir, want, 40, opts);
    assert.equal(e.recovery.cqCutBytes, 13);
    assert.equal(e.recovery.rebuiltIndexEntries, 1);
    assert.equal(e.recovery.fullScan, false, 'scanned from the last good entry, not the whole log');
    assert.equal(await e.offsetForTime(SHARD, want[39]!.timestamp), 39n);
    await e.close();
  });

  it('a deleted ConsumeQueue file (middle or first) is rebuilt', async () => {
    for (const [file, rebuilt] of [
      ['00000000000000000016', 40 - 16],
      ['00000000000000000000', 40],
    ] as const) {
      const { dir, want } = await cleanlyClosed(40);
      unlinkSync(join(dir, 'consumequeue', SHARD, file));
      const e = await reopenAndCheck(dir, want, 40, opts);
      assert.equal(e.recovery.rebuiltIndexEntries, rebuilt, `after deleting ${file}`);
      assert.deepEqual(filesIn(join(dir, 'consumequeue', SHARD)), ['00000000000000000000', '00000000000000000016', '00000000000000000032']);
      await e.close();
    }
  });

  it('lost time index files and a missing shard queue directory are rebuilt', async () => {
    const { dir, want } = await cleanlyClosed(40);
    rmSync(join(dir, 'index', SHARD), { recursive: true });
    rmSync(join(dir, 'consumequeue', 'other-0'), { recursive: true });
    const e = await reopenAndCheck(dir, want, 40, opts);
    assert.equal(e.recovery.rebuiltTimeIndexEntries, 20, '10 intervals of 4 records, for each shard');
    assert.equal((await readAll(e, 'other-0')).length, 40);
    for (let i = 0; i < 40; i += 7) assert.equal(await e.offsetForTime(SHARD, want[i]!.timestamp), BigInt(i));
    await e.close();
  });

  it('a corrupt or missing checkpoint means a full scan that changes nothing', async () => {
    const { dir, want } = await cleanlyClosed(40);
    const ck = join(dir, 'checkpoint');
    const buf = readFileSync(ck);
    buf[buf.length - 3] = buf[buf.length - 3]! ^ 1;
    writeFileSync(ck, buf);
    let e = await reopenAndCheck(dir, want, 40, opts);
    assert.equal(e.recovery.checkpoint, 'CRC mismatch');
    assert.equal(e.recovery.fullScan, true);
    assert.equal(e.recovery.rebuiltIndexEntries, 0, 'every entry verified, none rewritten');
    assert.equal(e.recovery.truncatedBytes, 0);
    await e.close();
    unlinkSync(ck);
    e = await reopenAndCheck(dir, want, 40, opts);
    assert.equal(e.recovery.checkpoint, 'missing');
    await e.close();
  });

  it('a checkpoint right after a segment end marker continues in the next segment', async () => {
    const dir = newDir();
    let e = await openEngine(dir, { segmentBytes: 8192 });
    const want = await fill(e, singles(60));
    await e.close();
    const segs = segmentFiles(dir);
    assert.ok(segs.length > 3);
    const ckPath = join(dir, 'checkpoint');
    const ck = decodeCheckpoint(readFileSync(ckPath));
    assert.ok(typeof ck !== 'string');
    ck.position = Number(segs[0]) + statSync(join(dir, 'commitlog', segs[0]!)).size;
    writeFileSync(ckPath, encodeCheckpoint(ck));
    e = await reopenAndCheck(dir, want, 60, { segmentBytes: 8192 });
    assert.equal(e.recovery.truncatedBytes, 0);
    assert.equal(segmentFiles(dir).length, segs.length);
    await e.close();
  });

  it('a last segment sealed by its end marker (crash before the next file): the next append starts a new segment', async () => {
    const { dir, want } = await crashed(singles(5));
    const last = lastSegment(dir);
    appendFileSync(last.path, encodeEos(Number(segmentFiles(dir).at(-1)) + last.size));
    let e = await reopenAndCheck(dir, want, 5);
    assert.equal(e.recovery.truncatedBytes, 0);
    await e.append(SHARD, [rec(77)]);
    assert.equal(segmentFiles(dir).length, 2);
    await e.close();
    e = await reopenAndCheck(dir, [...want, rec(77)], 6);
    await e.close();
  });

  it('never serves a corrupt record: a flipped byte before the checkpoint fails that read with StorageIOError', async () => {
    const { dir, want } = await cleanlyClosed(10);
    // Record 4 of SHARD: find it by its (unique) value bytes.
    const seg = join(dir, 'commitlog', segmentFiles(dir)[0]!);
    const buf = readFileSync(seg);
    const at = buf.indexOf(want[4]!.value!);
    assert.ok(at > 0);
    buf[at + 3] = buf[at + 3]! ^ 0xff;
    writeFileSync(seg, buf);
    const e = await openEngine(dir, opts);
    await assert.rejects(e.read(SHARD, 4n, { maxRecords: 1, maxBytes: 1 << 20 }), StorageIOError);
    await assert.rejects(e.read(SHARD, 0n, { maxRecords: 10, maxBytes: 1 << 20 }), StorageIOError);
    const ok = await e.read(SHARD, 5n, { maxRecords: 10, maxBytes: 1 << 20 });
    assert.equal(ok.length, 5);
    ok.forEach((r, i) => assert.ok(sameRecord(r, want[5 + i]!, BigInt(5 + i))));
    assert.equal((await e.read(SHARD, 0n, { maxRecords: 4, maxBytes: 1 << 20 })).length, 4);
    await e.close();
  });
});
