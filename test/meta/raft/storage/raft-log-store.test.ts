import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32c } from '../../../../src/common/crc.js';
import type { Entry, HardState, Snapshot } from '../../../../src/meta/raft/core/types.js';
import { RaftStorageError } from '../../../../src/meta/raft/storage/errors.js';
import { RaftLogStore, type RaftLogStoreOptions } from '../../../../src/meta/raft/storage/raft-log-store.js';
import { writeSnapshotFile } from '../../../../src/meta/raft/storage/snapshot-file.js';
import { RecordType, parseSegment } from '../../../../src/meta/raft/storage/wal-format.js';
import { removeDir, tempDir } from '../../../support/server.js';

const root = tempDir('robust-raft-log-');
after(() => removeDir(root));
let dirCount = 0;
const newDir = (): string => join(root, `d${dirCount++}`);

// Record sizes, straight from the format description in raft-log-store.ts:
// [u32 len][u32 crc][u8 type] + payload.
const HEADER_REC = 9 + 36;
const HS_REC = 9 + 24;
const entryRec = (dataLen: number): number => 9 + 17 + dataLen;

const enc = new TextEncoder();
const ZERO: HardState = { term: 0, vote: 0, commit: 0 };

function ent(index: number, term: number, text = `e${index}`, type: Entry['type'] = 'normal'): Entry {
  return { index, term, type, data: enc.encode(text) };
}
function hs(term: number, vote: number, commit: number): HardState {
  return { term, vote, commit };
}
function snap(index: number, term: number, text = `state@${index}`): Snapshot {
  return { meta: { index, term, conf: { voters: [1, 2, 3], learners: [4] } }, data: enc.encode(text) };
}
const hex = (n: number): string => n.toString(16).padStart(16, '0');
const walName = (seq: number): string => `wal-${hex(seq)}.log`;
const snapName = (index: number): string => `snap-${hex(index)}.snap`;
const walFiles = (dir: string): string[] => readdirSync(dir).filter((n) => /^wal-[0-9a-f]{16}\.log$/.test(n)).sort();
const snapFiles = (dir: string): string[] => readdirSync(dir).filter((n) => /^snap-[0-9a-f]{16}\.snap$/.test(n)).sort();

/** A reference model of the log: apply appends with suffix replacement. */
function applyAppend(model: Entry[], entries: Entry[]): void {
  const first = entries[0];
  if (!first) return;
  model.length = first.index - 1;
  model.push(...entries);
}

async function reopen(dir: string, opts?: RaftLogStoreOptions): Promise<RaftLogStore> {
  return RaftLogStore.open(dir, opts);
}

function flipByte(path: string, offset: number): void {
  const buf = readFileSync(path);
  buf[offset] = (buf[offset] as number) ^ 0xff;
  writeFileSync(path, buf);
}

describe('RaftLogStore basics', () => {
  it('opens an empty directory (creating it) with an empty state and one segment', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    assert.deepEqual(s.restored(), { hardState: ZERO, entries: [] });
    assert.equal(s.lastIndex(), 0);
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.snapshot(), undefined);
    assert.deepEqual(walFiles(dir), [walName(1)]);
    assert.equal(statSync(join(dir, walName(1))).size, HEADER_REC);
    assert.equal(s.recovery.truncatedBytes, 0);
    await s.close();
  });

  it('append + hard state + reopen gives identical state', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    await s.persist({ entries: [ent(1, 1), ent(2, 1, 'conf!', 'conf'), ent(3, 1, '')], hardState: hs(1, 2, 1) });
    await s.persist({ entries: [ent(4, 2)], hardState: hs(2, 2, 3) });
    await s.persist({ entries: [], hardState: hs(3, 0, 3) });
    await s.persist({ entries: [ent(5, 3)] });
    const state = s.restored();
    assert.deepEqual(state, { hardState: hs(3, 0, 3), entries: [ent(1, 1), ent(2, 1, 'conf!', 'conf'), ent(3, 1, ''), ent(4, 2), ent(5, 3)] });
    assert.equal(s.lastIndex(), 5);
    assert.equal(s.term(4), 2);
    assert.deepEqual(s.entries(2, 4), [ent(2, 1, 'conf!', 'conf'), ent(3, 1, '')]);
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(r.restored(), state);
    assert.equal(r.recovery.entries, 5);
    assert.equal(r.recovery.segments, 1);
    assert.equal(r.recovery.truncatedBytes, 0);
    await r.close();
  });

  it('a conflicting append replaces the stored suffix and survives reopen', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    await s.persist({ entries: [1, 2, 3, 4, 5].map((i) => ent(i, 1)), hardState: hs(1, 1, 2) });
    await s.persist({ entries: [ent(3, 2, 'new3'), ent(4, 2, 'new4')], hardState: hs(2, 3, 2) });
    const expected = [ent(1, 1), ent(2, 1), ent(3, 2, 'new3'), ent(4, 2, 'new4')];
    assert.deepEqual(s.entries(), expected);
    assert.equal(s.lastIndex(), 4);
    await s.persist({ entries: [ent(5, 2, 'new5')] });
    expected.push(ent(5, 2, 'new5'));
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(r.restored(), { hardState: hs(2, 3, 2), entries: expected });
    // Replacing from the very first index works too.
    await r.persist({ entries: [ent(1, 3, 'only')], hardState: hs(3, 3, 0) });
    await r.close();
    const r2 = await reopen(dir);
    assert.deepEqual(r2.restored(), { hardState: hs(3, 3, 0), entries: [ent(1, 3, 'only')] });
    await r2.close();
  });

  it('rejects bad input without breaking the store, and rejects calls after close', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    await s.persist({ entries: [ent(1, 1)] });
    const misuse = (e: unknown): boolean => e instanceof RaftStorageError && e.code === 'raft_storage_misuse';
    await assert.rejects(s.persist({ entries: [ent(3, 1)] }), misuse);
    await assert.rejects(s.persist({ entries: [ent(2, 1), ent(4, 1)] }), misuse);
    await assert.rejects(s.saveSnapshot(snap(5, 1), 5), misuse);
    await assert.rejects(s.saveSnapshot(snap(1, 9), 1), misuse);
    await s.persist({ entries: [ent(2, 1)] });
    assert.equal(s.lastIndex(), 2);
    await s.close();
    await assert.rejects(s.persist({ entries: [ent(3, 1)] }), (e: unknown) => e instanceof RaftStorageError && e.code === 'raft_storage_unavailable');
    const r = await reopen(dir);
    assert.deepEqual(r.entries(), [ent(1, 1), ent(2, 1)]);
    await r.close();
  });
});

describe('RaftLogStore crash recovery', () => {
  it('recovers exactly a prefix after a torn tail at every byte of the final batch (and random earlier offsets)', async () => {
    const src = newDir();
    const s = await RaftLogStore.open(src);
    const all: Entry[] = [];
    // End offset of every record in the segment, with the state once it is applied.
    const bounds: { end: number; entries: number; hs: HardState }[] = [{ end: HEADER_REC, entries: 0, hs: ZERO }];
    let off = HEADER_REC;
    let cur = ZERO;
    let idx = 1;
    for (let b = 0; b < 5; b++) {
      const batch: Entry[] = [];
      for (let k = 0; k < 3; k++, idx++) batch.push(ent(idx, b + 1, `${'x'.repeat(idx % 5)}#${idx}`));
      const h = hs(b + 1, 1, idx - 2);
      await s.persist({ entries: batch, hardState: h });
      for (const e of batch) {
        all.push(e);
        off += entryRec(e.data.length);
        bounds.push({ end: off, entries: all.length, hs: cur });
      }
      cur = h;
      off += HS_REC;
      bounds.push({ end: off, entries: all.length, hs: cur });
    }
    await s.close();
    const wal = walName(1);
    assert.equal(statSync(join(src, wal)).size, off, 'the documented format predicts the file size');

    const finalBatchStart = (bounds[bounds.length - 5] as { end: number }).end;
    const cuts: number[] = [];
    for (let c = finalBatchStart; c < off; c++) cuts.push(c);
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 8; i++) cuts.push(HEADER_REC + rnd(finalBatchStart - HEADER_REC));
    cuts.push(0, 5, HEADER_REC - 1, HEADER_REC);

    for (const c of cuts) {
      const d = newDir();
      cpSync(src, d, { recursive: true });
      truncateSync(join(d, wal), c);
      const want = [...bounds].reverse().find((b) => b.end <= c) ?? { end: 0, entries: 0, hs: ZERO };
      const st = await RaftLogStore.open(d);
      const prefix = all.slice(0, want.entries);
      assert.deepEqual(st.restored(), { hardState: want.hs, entries: prefix }, `cut at ${c}`);
      assert.equal(st.recovery.truncatedBytes, c - want.end, `cut at ${c}`);
      assert.equal(statSync(join(d, wal)).size, Math.max(want.end, HEADER_REC), `cut at ${c}`);
      // The store keeps working after recovery.
      const next = ent(want.entries + 1, 9, 'after-recovery');
      await st.persist({ entries: [next], hardState: hs(9, 2, want.entries) });
      await st.close();
      const again = await RaftLogStore.open(d);
      assert.deepEqual(again.restored(), { hardState: hs(9, 2, want.entries), entries: [...prefix, next] }, `cut at ${c}, reopened`);
      assert.equal(again.recovery.truncatedBytes, 0);
      await again.close();
      removeDir(d);
    }
  });

  it('a flipped byte anywhere in a record drops that record and everything after it', async () => {
    const src = newDir();
    const s = await RaftLogStore.open(src);
    const batches = [0, 1, 2, 3].map((b) => [ent(2 * b + 1, 1, `first-of-${b}`), ent(2 * b + 2, 1, `second-of-${b}`)]);
    for (const [b, batch] of batches.entries()) await s.persist({ entries: batch, hardState: hs(1, 1, 2 * b + 1) });
    await s.close();
    // The record of entry 6 (second entry of batch 2).
    let start = HEADER_REC;
    for (let b = 0; b < 2; b++) {
      for (const e of batches[b] as Entry[]) start += entryRec(e.data.length);
      start += HS_REC;
    }
    start += entryRec((batches[2] as Entry[])[0]!.data.length);
    const recLen = entryRec((batches[2] as Entry[])[1]!.data.length);
    const expected = { hardState: hs(1, 1, 3), entries: [...batches[0]!, ...batches[1]!, batches[2]![0]!] };
    for (let i = 0; i < recLen; i++) {
      const d = newDir();
      cpSync(src, d, { recursive: true });
      flipByte(join(d, walName(1)), start + i);
      const st = await RaftLogStore.open(d);
      assert.deepEqual(st.restored(), expected, `flip at record byte ${i}`);
      assert.equal(st.recovery.cut?.offset, start);
      assert.equal(statSync(join(d, walName(1))).size, start);
      await st.close();
      removeDir(d);
    }
  });

  it('corruption in an earlier segment cuts it there and deletes the later segments', async () => {
    const dir = newDir();
    // One single-entry batch (79 bytes) per segment: 45 + 2 * 79 > 150.
    const s = await RaftLogStore.open(dir, { segmentBytes: 150 });
    for (let i = 1; i <= 6; i++) await s.persist({ entries: [ent(i, 1, 'p'.repeat(20))], hardState: hs(1, 1, i) });
    await s.close();
    assert.deepEqual(walFiles(dir), [1, 2, 3, 4, 5, 6].map(walName));
    flipByte(join(dir, walName(3)), HEADER_REC + 30);
    const r = await reopen(dir, { segmentBytes: 150 });
    assert.deepEqual(r.restored(), { hardState: hs(1, 1, 2), entries: [ent(1, 1, 'p'.repeat(20)), ent(2, 1, 'p'.repeat(20))] });
    assert.deepEqual(r.recovery.deletedSegments, [4, 5, 6].map(walName));
    assert.equal(r.recovery.cut?.file, walName(3));
    assert.equal(r.recovery.truncatedBytes, 3 * (HEADER_REC + 79) + 79);
    assert.deepEqual(walFiles(dir), [1, 2, 3].map(walName));
    await r.persist({ entries: [ent(3, 2)], hardState: hs(2, 1, 3) });
    await r.close();
    const r2 = await reopen(dir, { segmentBytes: 150 });
    assert.equal(r2.lastIndex(), 3);
    assert.deepEqual(r2.hardState(), hs(2, 1, 3));
    await r2.close();
  });
  it('refuses (rather than cuts) checksum-valid records it cannot interpret', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    await s.persist({ entries: [ent(1, 1)], hardState: hs(1, 1, 1) });
    await s.close();
    const body = Buffer.from([99, 1, 2, 3]); // record type 99
    const rec = Buffer.alloc(8 + body.length);
    rec.writeUInt32LE(body.length, 0);
    rec.writeUInt32LE(crc32c(body), 4);
    body.copy(rec, 8);
    const path = join(dir, walName(1));
    const size = statSync(path).size;
    writeFileSync(path, Buffer.concat([readFileSync(path), rec]));
    await assert.rejects(reopen(dir), (e: unknown) => e instanceof RaftStorageError && e.code === 'raft_storage_corrupt' && e.path === path);
    assert.equal(statSync(path).size, size + rec.length, 'nothing was cut');
  });
});

describe('RaftLogStore snapshots', () => {
  it('persist with a snapshot drops the covered entries (or the whole log when the terms disagree)', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    await s.persist({ entries: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => ent(i, 1)), hardState: hs(1, 1, 4) });
    // Matching term at index 6: entries 7..10 stay; commit rises to the snapshot.
    await s.persist({ snapshot: snap(6, 1), entries: [] });
    assert.equal(s.firstIndex(), 7);
    assert.deepEqual(s.entries(), [7, 8, 9, 10].map((i) => ent(i, 1)));
    assert.deepEqual(s.snapshot(), snap(6, 1));
    assert.deepEqual(s.hardState(), hs(1, 1, 6));
    await s.close();
    let r = await reopen(dir);
    assert.deepEqual(r.restored(), { hardState: hs(1, 1, 6), snapshot: snap(6, 1), entries: [7, 8, 9, 10].map((i) => ent(i, 1)) });
    // Term disagrees at index 9: the whole log goes, entries continue after 9.
    await r.persist({ snapshot: snap(9, 2), entries: [ent(9, 2), ent(10, 2, 'ten')], hardState: hs(2, 0, 9) });
    assert.deepEqual(r.entries(), [ent(10, 2, 'ten')]);
    await r.close();
    r = await reopen(dir);
    assert.deepEqual(r.restored(), { hardState: hs(2, 0, 9), snapshot: snap(9, 2), entries: [ent(10, 2, 'ten')] });
    // Beyond the last index: the log is replaced.
    await r.persist({ snapshot: snap(20, 3), entries: [ent(21, 3)], hardState: hs(3, 0, 20) });
    await r.close();
    r = await reopen(dir);
    assert.deepEqual(r.restored(), { hardState: hs(3, 0, 20), snapshot: snap(20, 3), entries: [ent(21, 3)] });
    assert.deepEqual(snapFiles(dir), [snapName(9), snapName(20)], 'only the 2 newest snapshot files are kept');
    await r.close();
  });

  it('saveSnapshot + retainFrom deletes old segments, keeps 2 snapshots, and a corrupt newest snapshot falls back', async () => {
    const dir = newDir();
    const opts = { segmentBytes: 300 }; // three 79-byte batches per segment
    const s = await RaftLogStore.open(dir, opts);
    const model: Entry[] = [];
    for (let i = 1; i <= 60; i++) {
      const e = ent(i, 1, `${'y'.repeat(18)}${String(i).padStart(2, '0')}`);
      model.push(e);
      await s.persist({ entries: [e], hardState: hs(1, 1, i) });
    }
    const segs0 = walFiles(dir);
    assert.equal(segs0.length, 20);

    // First snapshot: no older snapshot to fall back to yet, so the WAL stays whole.
    await s.saveSnapshot(snap(20, 1), 15);
    assert.equal(s.firstIndex(), 21);
    assert.deepEqual(walFiles(dir), segs0);

    // Second: segments whose entries are all < min(35, 20 + 1) go.
    await s.saveSnapshot(snap(40, 1), 35);
    const segs1 = walFiles(dir);
    assert.ok(segs1.length < segs0.length, 'old segments deleted');
    assert.notEqual(segs1[0], walName(1));
    const firstSeg = segs1[0] as string;
    const parsed = parseSegment(readFileSync(join(dir, firstSeg)), parseInt(firstSeg.slice(4, 20), 16));
    const firstIdx = parsed.records.flatMap((r) => (r.record.type === RecordType.Entry ? [r.record.entry.index] : []))[0] as number;
    assert.ok(firstIdx > 1 && firstIdx <= 21, `first retained entry ${firstIdx} must be <= 21`);
    assert.deepEqual(snapFiles(dir), [snapName(20), snapName(40)]);
    assert.deepEqual(s.entries(), model.slice(40));
    await s.close();

    // A leftover *.tmp is ignored and cleaned.
    writeFileSync(join(dir, `${snapName(50)}.tmp`), 'half-written');
    writeFileSync(join(dir, 'other.tmp'), 'junk');
    const r = await reopen(dir, opts);
    assert.deepEqual(r.restored(), { hardState: hs(1, 1, 60), snapshot: snap(40, 1), entries: model.slice(40) });
    assert.deepEqual(r.recovery.removedTempFiles.sort(), ['other.tmp', `${snapName(50)}.tmp`].sort());
    assert.ok(!existsSync(join(dir, `${snapName(50)}.tmp`)));
    await r.close();

    // Corrupt the newest snapshot (in a copy): the previous one + the WAL rebuild the same log.
    const copy = newDir();
    cpSync(dir, copy, { recursive: true });
    flipByte(join(copy, snapName(40)), 30);
    const fb = await reopen(copy, opts);
    assert.deepEqual(fb.restored(), { hardState: hs(1, 1, 60), snapshot: snap(20, 1), entries: model.slice(20) });
    assert.deepEqual(
      fb.recovery.corruptSnapshots.map((c) => c.file),
      [snapName(40)],
    );
    assert.ok(existsSync(join(copy, `${snapName(40)}.corrupt`)));
    await fb.saveSnapshot(snap(45, 1), 45);
    assert.deepEqual(snapFiles(copy), [snapName(20), snapName(45)]);
    await fb.close();

    // Third snapshot on the original: snap 20 goes, WAL retained back to entry 41.
    const r2 = await reopen(dir, opts);
    await r2.saveSnapshot(snap(50, 1), 50);
    assert.deepEqual(snapFiles(dir), [snapName(40), snapName(50)]);
    const segs2 = walFiles(dir);
    assert.ok(segs2.length < segs1.length);
    await r2.persist({ entries: [ent(61, 2)], hardState: hs(2, 1, 61) });
    await r2.close();
    const r3 = await reopen(dir, opts);
    assert.deepEqual(r3.restored(), { hardState: hs(2, 1, 61), snapshot: snap(50, 1), entries: [...model.slice(50), ent(61, 2)] });
    await r3.close();
  });

  it('reconciles a snapshot file written just before a crash (no WAL record yet)', async () => {
    for (const [term, expectEntries] of [
      [1, [6, 7, 8]],
      [2, []],
    ] as const) {
      const dir = newDir();
      const s = await RaftLogStore.open(dir);
      await s.persist({ entries: [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ent(i, 1)), hardState: hs(1, 1, 3) });
      await s.close();
      await writeSnapshotFile(dir, snap(5, term));
      const r = await reopen(dir);
      assert.deepEqual(r.restored(), { hardState: hs(1, 1, 5), snapshot: snap(5, term), entries: expectEntries.map((i) => ent(i, 1)) });
      await r.close();
    }
  });

  it('refuses to open when the WAL needs a snapshot that is corrupt', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir);
    await s.persist({ entries: [ent(1, 1), ent(2, 1)], hardState: hs(1, 1, 1) });
    await s.persist({ snapshot: snap(100, 5), entries: [ent(101, 5)], hardState: hs(5, 0, 100) });
    await s.close();
    flipByte(join(dir, snapName(100)), 40);
    await assert.rejects(reopen(dir), (e: unknown) => e instanceof RaftStorageError && e.code === 'raft_storage_corrupt' && e.path === dir);
  });
});

describe('RaftLogStore segments and concurrency', () => {
  it('rotates segments at batch boundaries and replays across them', async () => {
    const dir = newDir();
    const opts = { segmentBytes: 200 };
    const s = await RaftLogStore.open(dir, opts);
    const model: Entry[] = [];
    let last = hs(0, 0, 0);
    const persist = async (entries: Entry[]): Promise<void> => {
      last = hs(entries[0]?.term ?? 1, 1, Math.max(0, (entries[0]?.index ?? 1) - 1));
      await s.persist({ entries, hardState: last });
      applyAppend(model, entries);
    };
    for (let i = 1; i <= 20; i++) await persist([ent(i, 1, `v${i}`)]);
    await persist([ent(21, 1, 'B'.repeat(1000))]); // bigger than a segment: gets one to itself
    await persist([ent(22, 1)]);
    await persist([ent(15, 2, 'conflict'), ent(16, 2)]); // replaces a suffix written in earlier segments
    await persist([ent(17, 2)]);
    assert.deepEqual(s.entries(), model);
    await s.close();

    const files = walFiles(dir);
    assert.ok(files.length >= 5, `expected several segments, got ${files.length}`);
    files.forEach((f, k) => {
      assert.equal(f, walName(k + 1), 'consecutive sequence numbers');
      const buf = readFileSync(join(dir, f));
      const p = parseSegment(buf, k + 1);
      assert.equal(p.stop, undefined);
      assert.equal(p.records[0]?.record.type, RecordType.Header);
      const batches = p.records.filter((r) => r.record.type === RecordType.HardState).length;
      assert.ok(buf.length <= opts.segmentBytes || batches === 1, `${f} is ${buf.length} bytes with ${batches} batches`);
    });
    const r = await reopen(dir, opts);
    assert.deepEqual(r.restored(), { hardState: last, entries: model });
    assert.equal(r.recovery.segments, files.length);
    await r.close();
  });

  it('serialises concurrent persist calls in call order; all are durable after reopen', async () => {
    const dir = newDir();
    const s = await RaftLogStore.open(dir, { segmentBytes: 1024 });
    const model: Entry[] = [];
    const updates: { entries: Entry[]; hardState: HardState }[] = [];
    let next = 1;
    let term = 1;
    for (let i = 0; i < 40; i++) {
      if (i === 25) {
        term = 2;
        next = 12; // conflicting append in the middle of the burst
      }
      const entries = [ent(next, term, `c${i}`), ent(next + 1, term, `d${i}`)];
      next += 2;
      updates.push({ entries, hardState: hs(term, 1, Math.max(0, next - 5)) });
      applyAppend(model, entries);
    }
    const order: number[] = [];
    await Promise.all(updates.map((u, i) => s.persist(u).then(() => order.push(i))));
    assert.deepEqual(order, updates.map((_, i) => i));
    assert.deepEqual(s.entries(), model);
    const finalHs = (updates[updates.length - 1] as { hardState: HardState }).hardState;
    assert.deepEqual(s.hardState(), finalHs);
    await s.close();
    const r = await reopen(dir, { segmentBytes: 1024 });
    assert.deepEqual(r.restored(), { hardState: finalHs, entries: model });
    await r.close();
  });
});
