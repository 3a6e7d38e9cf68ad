/**
 * ReplicaStore: the segment replicas of one journal node on the file engine —
 * adds (records and whole batches, pipelined, resent, out of line), reads,
 * fencing (persisted, before any add, dropping queued stale adds), delete and
 * list, reopen, sync adds and engine failures.
 */
import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { defaultCommitLogIO, type CommitLogIO } from '../../src/storage/file/commitlog.js';
import { parseReplicaName, replicaName, type ReplicaStore } from '../../src/journal/replica-store.js';
import { ALL_SEGMENTS, Op, Status, unitEntries, type ReadUnit } from '../../src/storage/journal/protocol.js';
import type { AppendRecord, StoredRecord } from '../../src/storage/types.js';
import { addReq, batchOf, batchUnit, makeRoot, mixedUnits, openStore, rec, recordUnit, sameAs, unitRecords } from './support.js';

const { newDir, cleanup } = makeRoot('robust-journal-store-');
after(cleanup);

async function readUnits(store: ReplicaStore, shard: string, segment: number, from = 0, maxEntries = 7): Promise<ReadUnit[]> {
  const out: ReadUnit[] = [];
  for (let e = from; ; ) {
    const r = await store.read({ op: Op.Read, shard, segment, fromEntry: e, maxEntries, maxBytes: 1 << 20 });
    assert.equal(r.status, Status.Ok, r.message);
    if (r.units.length === 0) return out;
    out.push(...r.units);
    const last = r.units[r.units.length - 1]!;
    e = last.entry + unitEntries(last);
  }
}

async function readRecords(store: ReplicaStore, shard: string, segment: number): Promise<StoredRecord[]> {
  return unitRecords(await readUnits(store, shard, segment));
}

function check(got: StoredRecord[], want: AppendRecord[]): void {
  assert.equal(got.length, want.length, 'entries');
  got.forEach((r, i) => {
    assert.equal(r.offset, BigInt(i), `entry id of ${i}`);
    assert.ok(sameAs(r, want[i]!), `entry ${i}`);
  });
}

describe('ReplicaStore', () => {
  it('names replicas shard#segment and parses them back at the last #', () => {
    assert.equal(replicaName({ shard: 'a#b-0', segment: 12 }), 'a#b-0#12');
    assert.deepEqual(parseReplicaName('a#b-0#12'), { shard: 'a#b-0', segment: 12 });
    assert.equal(parseReplicaName('no-segment'), undefined);
    assert.equal(parseReplicaName('x#y'), undefined);
  });

  it('adds records and batches and reads them back as units with entry ids', async () => {
    const store = await openStore(newDir());
    const records = [rec(0), { timestamp: 5, key: null, value: null, headers: [] }, rec(2)];
    const r1 = await store.add(addReq('orders-0', 3, 0, records.map((record) => ({ kind: 'record' as const, record }))));
    assert.equal(r1.status, Status.Ok, r1.message);
    assert.deepEqual(r1.state, { end: 3, lac: -1, fencedEpoch: 0 });
    const b = Array.from({ length: 10 }, (_, i) => rec(3 + i, false));
    const r2 = await store.add(addReq('orders-0', 3, 3, [{ kind: 'batch', batch: batchOf(b) }], { lac: 2 }));
    assert.equal(r2.status, Status.Ok, r2.message);
    assert.deepEqual(r2.state, { end: 13, lac: 2, fencedEpoch: 0 });
    const m = mixedUnits(13, 30);
    const r3 = await store.add(addReq('orders-0', 3, 13, m.units, { lac: 12 }));
    assert.equal(r3.status, Status.Ok, r3.message);
    assert.equal(r3.state.end, 43);
    const want = [...records, ...b, ...m.want];

    const units = await readUnits(store, 'orders-0', 3);
    assert.equal(units[0]!.kind, 'record');
    assert.equal(units[3]!.kind, 'batch');
    const bu = units[3]!;
    assert.ok(bu.kind === 'batch');
    assert.equal(bu.entry, 3);
    assert.equal(bu.count, 10);
    assert.equal(bu.bytes.readBigInt64BE(0), 3n, "the batch's base-offset field holds the replica-local entry id");
    assert.ok(bu.bytes.subarray(8).equals(batchOf(b).bytes.subarray(8)), 'the rest of the batch is as sent');
    check(unitRecords(units), want);

    // From inside a batch: the batch comes whole, starting before the entry asked for.
    const mid = await store.read({ op: Op.Read, shard: 'orders-0', segment: 3, fromEntry: 7, maxEntries: 2, maxBytes: 1 << 20 });
    assert.equal(mid.status, Status.Ok);
    assert.deepEqual(
      mid.units.map((u) => [u.kind, u.entry]),
      [['batch', 3]],
    );
    // Limits: maxEntries and at least one unit under a tiny maxBytes.
    const two = await store.read({ op: Op.Read, shard: 'orders-0', segment: 3, fromEntry: 0, maxEntries: 2, maxBytes: 1 << 20 });
    assert.deepEqual(
      two.units.map((u) => u.entry),
      [0, 1],
    );
    const tiny = await store.read({ op: Op.Read, shard: 'orders-0', segment: 3, fromEntry: 1, maxEntries: 100, maxBytes: 1 });
    assert.equal(tiny.units.length, 1);
    const rec1 = tiny.units[0]!;
    assert.ok(rec1.kind === 'record' && rec1.record.key === null && rec1.record.value === null);
    // At and past the end: ok, nothing.
    for (const fromEntry of [43, 1000]) {
      const end = await store.read({ op: Op.Read, shard: 'orders-0', segment: 3, fromEntry, maxEntries: 10, maxBytes: 1 << 20 });
      assert.equal(end.status, Status.Ok);
      assert.equal(end.units.length, 0);
      assert.equal(end.state.end, 43);
    }
    const none = await store.read({ op: Op.Read, shard: 'orders-0', segment: 4, fromEntry: 0, maxEntries: 10, maxBytes: 1 << 20 });
    assert.equal(none.status, Status.NotFound);
    assert.deepEqual(await store.info({ shard: 'orders-0', segment: 3 }), { status: Status.Ok, message: '', state: { end: 43, lac: 12, fencedEpoch: 0 } });
    assert.equal((await store.info({ shard: 'orders-0', segment: 4 })).status, Status.NotFound);
    await store.close();
  });

  it('skips resent units, refuses gaps and units across the end', async () => {
    const store = await openStore(newDir());
    const want = Array.from({ length: 12 }, (_, i) => rec(i));
    assert.equal((await store.add(addReq('s-0', 0, 0, [0, 1, 2, 3, 4].map(recordUnit)))).status, Status.Ok);
    // The same add again (a resend after a reconnect): nothing written twice.
    const again = await store.add(addReq('s-0', 0, 0, [0, 1, 2, 3, 4].map(recordUnit)));
    assert.equal(again.status, Status.Ok);
    assert.equal(again.state.end, 5);
    // Overlapping: 3 and 4 are skipped, 5..7 written.
    const overlap = await store.add(addReq('s-0', 0, 3, [3, 4, 5, 6, 7].map(recordUnit)));
    assert.equal(overlap.status, Status.Ok, overlap.message);
    assert.equal(overlap.state.end, 8);
    // A gap: refused, the replica unchanged.
    const gap = await store.add(addReq('s-0', 0, 9, [recordUnit(9)]));
    assert.equal(gap.status, Status.Gap);
    assert.match(gap.message, /starts at entry 9, the replica ends at 8/);
    assert.equal(gap.state.end, 8);
    // A batch covering 6..9 straddles the end (8).
    const straddle = await store.add(addReq('s-0', 0, 6, [batchUnit(6, 4)]));
    assert.equal(straddle.status, Status.BadRequest);
    assert.match(straddle.message, /across the replica's end 8/);
    // Skipped batch, then new records.
    assert.equal((await store.add(addReq('s-0', 0, 8, [recordUnit(8), recordUnit(9)]))).status, Status.Ok);
    assert.equal((await store.add(addReq('s-0', 0, 8, [recordUnit(8), recordUnit(9), recordUnit(10), recordUnit(11)]))).state.end, 12);
    check(await readRecords(store, 's-0', 0), want);
    await store.close();
  });

  it('stores holes (striped segments) as entries of their own, read back as holes, across a reopen', async () => {
    const dir = newDir();
    let store = await openStore(dir);
    const first = await store.add(addReq('h-0', 0, 0, [recordUnit(0), { kind: 'hole', count: 3 }, batchUnit(4, 2)]));
    assert.equal(first.status, Status.Ok, first.message);
    assert.equal(first.state.end, 6, 'a hole advances the end like data');
    // A resend of a hole is skipped like any unit; the next add must start at the end.
    assert.equal((await store.add(addReq('h-0', 0, 1, [{ kind: 'hole', count: 3 }]))).status, Status.Ok);
    assert.equal((await store.add(addReq('h-0', 0, 7, [recordUnit(7)]))).status, Status.Gap);
    assert.equal((await store.add(addReq('h-0', 0, 6, [{ kind: 'hole', count: 1 }, recordUnit(7)]))).state.end, 8);
    const shape = (units: ReadUnit[]) => units.map((u) => [u.kind, u.entry, unitEntries(u)]);
    const want = [['record', 0, 1], ['hole', 1, 3], ['batch', 4, 2], ['hole', 6, 1], ['record', 7, 1]];
    assert.deepEqual(shape(await readUnits(store, 'h-0', 0)), want);
    // A read from inside a hole answers the hole.
    const mid = await store.read({ op: Op.Read, shard: 'h-0', segment: 0, fromEntry: 2, maxEntries: 1, maxBytes: 1 << 20 });
    assert.deepEqual(shape(mid.units), [['hole', 1, 3]]);
    await store.close();
    store = await openStore(dir);
    assert.deepEqual(shape(await readUnits(store, 'h-0', 0)), want, 'the same after a reopen');
    assert.equal((await store.info({ shard: 'h-0', segment: 0 })).state.end, 8);
    // A batch that looks like a stored hole (negative record count) is refused, as is an empty hole.
    const fake = batchOf([rec(8, false)]);
    const bytes = Buffer.from(fake.bytes);
    bytes.writeInt32BE(-1, 57);
    const r = await store.add(addReq('h-0', 0, 8, [{ kind: 'batch', batch: { ...fake, bytes } }]));
    assert.equal(r.status, Status.BadRequest);
    assert.match(r.message, /negative record count/);
    assert.equal((await store.add(addReq('h-0', 0, 8, [{ kind: 'hole', count: 0 }]))).status, Status.BadRequest);
    await store.close();
  });

  it('refuses malformed units before anything of the add is written', async () => {
    const store = await openStore(newDir(), { segmentBytes: 64 * 1024 });
    const bad = batchOf([rec(0, false)]);
    const copy = Buffer.from(bad.bytes);
    copy[16] = 1;
    const r = await store.add(addReq('m-0', 0, 0, [recordUnit(0), { kind: 'batch', batch: { ...bad, bytes: copy } }]));
    assert.equal(r.status, Status.BadRequest);
    assert.match(r.message, /magic 2/);
    const big = await store.add(addReq('m-0', 0, 0, [{ kind: 'record', record: { timestamp: 1, key: null, value: Buffer.alloc(70 * 1024), headers: [] } }]));
    assert.equal(big.status, Status.BadRequest);
    assert.match(big.message, /exceeds the limit/);
    assert.equal((await store.info({ shard: 'm-0', segment: 0 })).status, Status.NotFound, 'nothing was created');
    await store.close();
  });

  it('pipelined adds are checked against what is still being written and answered in order', async () => {
    const store = await openStore(newDir());
    const N = 60;
    const want: AppendRecord[] = [];
    const pending: Array<Promise<{ status: Status; state: { end: number } }>> = [];
    let e = 0;
    for (let i = 0; i < N; i++) {
      const m = mixedUnits(e, 1 + (i % 6));
      pending.push(store.add(addReq('p-0', 1, e, m.units, { sync: i % 10 === 0 })));
      want.push(...m.want);
      e += m.want.length;
    }
    // Pipelined behind them: a resend of the first add, then a gap.
    const resend = store.add(addReq('p-0', 1, 0, mixedUnits(0, 1).units));
    const gap = await store.add(addReq('p-0', 1, e + 1, [recordUnit(e + 1)]));
    assert.equal(gap.status, Status.Gap);
    const results = await Promise.all(pending);
    let prevEnd = 0;
    for (const r of results) {
      assert.equal(r.status, Status.Ok);
      assert.ok(r.state.end >= prevEnd, 'answers carry a growing end');
      prevEnd = r.state.end;
    }
    assert.equal((await resend).status, Status.Ok);
    assert.equal(prevEnd, e);
    check(await readRecords(store, 'p-0', 1), want);
    await store.close();
  });

  it('a fence refuses lower epochs from then on and survives a reopen', async () => {
    const dir = newDir();
    let store = await openStore(dir);
    const ref = { shard: 'f-0', segment: 2 };
    assert.equal((await store.add(addReq('f-0', 2, 0, [recordUnit(0), recordUnit(1)], { epoch: 3 }))).status, Status.Ok);
    const f = await store.fence(ref, 5);
    assert.deepEqual(f, { status: Status.Ok, message: '', state: { end: 2, lac: -1, fencedEpoch: 5 } });
    const stale = await store.add(addReq('f-0', 2, 2, [recordUnit(2)], { epoch: 4 }));
    assert.equal(stale.status, Status.Fenced);
    assert.match(stale.message, /fenced at epoch 5; this add has epoch 4/);
    assert.equal(stale.state.fencedEpoch, 5);
    // A lower fence does not lower it; the fencing writer's own epoch may add.
    assert.equal((await store.fence(ref, 4)).state.fencedEpoch, 5);
    assert.equal((await store.add(addReq('f-0', 2, 2, [recordUnit(2)], { epoch: 5 }))).status, Status.Ok);
    const onDisk = JSON.parse(readFileSync(join(dir, 'fences.json'), 'utf8')) as { fences: unknown[] };
    assert.deepEqual(onDisk.fences, [{ shard: 'f-0', segment: 2, epoch: 5 }]);
    await store.close();

    store = await openStore(dir);
    assert.deepEqual((await store.info(ref)).state, { end: 3, lac: -1, fencedEpoch: 5 });
    assert.equal((await store.add(addReq('f-0', 2, 3, [recordUnit(3)], { epoch: 4 }))).status, Status.Fenced);
    assert.equal((await store.add(addReq('f-0', 2, 3, [recordUnit(3)], { epoch: 6 }))).status, Status.Ok);
    check(await readRecords(store, 'f-0', 2), [0, 1, 2, 3].map((n) => rec(n)));
    await store.close();
  });

  it('a fence before any add blocks a stale writer that comes later, across a reopen', async () => {
    const dir = newDir();
    let store = await openStore(dir);
    const ref = { shard: 'early-0', segment: 0 };
    const f = await store.fence(ref, 2);
    assert.deepEqual(f, { status: Status.Ok, message: '', state: { end: 0, lac: -1, fencedEpoch: 2 } });
    assert.equal((await store.add(addReq('early-0', 0, 0, [recordUnit(0)], { epoch: 1 }))).status, Status.Fenced);
    assert.deepEqual(store.list(), [], 'a refused add creates no replica');
    const info = await store.info(ref);
    assert.equal(info.status, Status.NotFound);
    assert.equal(info.state.fencedEpoch, 2);
    await store.close();
    store = await openStore(dir);
    assert.equal((await store.add(addReq('early-0', 0, 0, [recordUnit(0)], { epoch: 1 }))).status, Status.Fenced);
    assert.equal((await store.add(addReq('early-0', 0, 0, [recordUnit(0)], { epoch: 2 }))).status, Status.Ok);
    await store.close();
  });

  it('a fence drops stale adds still queued; nothing below its epoch lands after it answered', async () => {
    const store = await openStore(newDir());
    const adds = [];
    for (let i = 0; i < 20; i++) adds.push(store.add(addReq('q-0', 0, i * 2, [recordUnit(i * 2), recordUnit(i * 2 + 1)], { epoch: 1 })));
    const fence = await store.fence({ shard: 'q-0', segment: 0 }, 2);
    assert.equal(fence.status, Status.Ok);
    const results = await Promise.all(adds);
    const ok = results.filter((r) => r.status === Status.Ok).length;
    assert.ok(ok >= 1 && ok < 20, `${ok} adds were written`);
    results.forEach((r, i) => assert.equal(r.status, i < ok ? Status.Ok : Status.Fenced, `add ${i}`));
    assert.equal(fence.state.end, ok * 2, 'the fence answers the end of what was written');
    assert.equal((await store.info({ shard: 'q-0', segment: 0 })).state.end, ok * 2);
    // The new writer continues from the fenced end.
    const next = await store.add(addReq('q-0', 0, ok * 2, [recordUnit(ok * 2)], { epoch: 2 }));
    assert.equal(next.status, Status.Ok, next.message);
    assert.equal(next.state.end, ok * 2 + 1);
    check(
      await readRecords(store, 'q-0', 0),
      Array.from({ length: ok * 2 + 1 }, (_, i) => rec(i)),
    );
    await store.close();
  });

  it('lists replicas; deletes one segment or all of a shard, with their fences', async () => {
    const dir = newDir();
    const registry = new Registry();
    const store = await openStore(dir, { registry });
    for (const [shard, segment] of [
      ['t-0', 0],
      ['s-0', 1],
      ['s-0', 0],
      ['s-0', 5],
    ] as const) {
      assert.equal((await store.add(addReq(shard, segment, 0, [recordUnit(0), recordUnit(1)].slice(0, 1 + segment % 2)))).status, Status.Ok);
    }
    await store.fence({ shard: 's-0', segment: 0 }, 3);
    await store.fence({ shard: 's-0', segment: 9 }, 3);
    assert.deepEqual(store.list(), [
      { shard: 's-0', segment: 0, end: 1, lac: -1, fencedEpoch: 3 },
      { shard: 's-0', segment: 1, end: 2, lac: -1, fencedEpoch: 0 },
      { shard: 's-0', segment: 5, end: 2, lac: -1, fencedEpoch: 0 },
      { shard: 't-0', segment: 0, end: 1, lac: -1, fencedEpoch: 0 },
    ]);
    assert.match(await registry.metrics(), /^robust_journal_replicas 4$/m);

    assert.deepEqual(await store.delete({ shard: 's-0', segment: 1 }), { status: Status.Ok, message: '' });
    assert.deepEqual(
      store.list().map((r) => `${r.shard}#${r.segment}`),
      ['s-0#0', 's-0#5', 't-0#0'],
    );
    assert.equal((await store.read({ op: Op.Read, shard: 's-0', segment: 1, fromEntry: 0, maxEntries: 1, maxBytes: 100 })).status, Status.NotFound);
    assert.equal((await store.delete({ shard: 's-0', segment: 1 })).status, Status.NotFound, 'deleting it again finds nothing');

    assert.equal((await store.delete({ shard: 's-0', segment: ALL_SEGMENTS })).status, Status.Ok);
    assert.deepEqual(
      store.list().map((r) => `${r.shard}#${r.segment}`),
      ['t-0#0'],
    );
    assert.equal((await store.info({ shard: 's-0', segment: 9 })).state.fencedEpoch, 0, 'fences of the shard went with it');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'fences.json'), 'utf8')).fences, []);
    assert.match(await registry.metrics(), /^robust_journal_replicas 1$/m);

    // A deleted segment can be written again from 0 (a fresh replica).
    const again = await store.add(addReq('s-0', 0, 0, [recordUnit(7)], { epoch: 1 }));
    assert.equal(again.status, Status.Ok);
    check(await readRecords(store, 's-0', 0), [rec(7)]);
    await store.close();
    assert.match(await registry.metrics(), /^robust_journal_replicas 0$/m);
  });

  it('a delete answers adds still queued on the replica', async () => {
    const store = await openStore(newDir());
    const adds = Array.from({ length: 10 }, (_, i) => store.add(addReq('d-0', 0, i, [recordUnit(i)])));
    assert.equal((await store.delete({ shard: 'd-0', segment: 0 })).status, Status.Ok);
    const results = await Promise.all(adds);
    assert.ok(results.slice(1).every((r) => r.status === Status.NotFound || r.status === Status.Ok));
    assert.ok(results.some((r) => r.status === Status.NotFound));
    assert.deepEqual(store.list(), []);
    await store.close();
  });

  it('keeps every entry across close and reopen and continues from the end', async () => {
    const dir = newDir();
    let store = await openStore(dir);
    const a = mixedUnits(0, 40);
    const b = mixedUnits(0, 5);
    assert.equal((await store.add(addReq('r-0', 0, 0, a.units))).status, Status.Ok);
    assert.equal((await store.add(addReq('r-1', 7, 0, b.units, { sync: true }))).status, Status.Ok);
    await store.close();
    store = await openStore(dir);
    assert.deepEqual(store.list(), [
      { shard: 'r-0', segment: 0, end: 40, lac: -1, fencedEpoch: 0 },
      { shard: 'r-1', segment: 7, end: 5, lac: -1, fencedEpoch: 0 },
    ]);
    check(await readRecords(store, 'r-0', 0), a.want);
    const c = mixedUnits(40, 10);
    assert.equal((await store.add(addReq('r-0', 0, 0, a.units))).state.end, 40, 'a resend after the restart is skipped');
    assert.equal((await store.add(addReq('r-0', 0, 41, c.units))).status, Status.Gap);
    assert.equal((await store.add(addReq('r-0', 0, 40, c.units))).status, Status.Ok);
    check(await readRecords(store, 'r-0', 0), [...a.want, ...c.want]);
    await store.close();
  });

  it('sync adds are answered after an fdatasync; async ones are not', async () => {
    let release: (() => void) | undefined;
    let held: Promise<void> | undefined;
    const io: CommitLogIO = {
      write: defaultCommitLogIO.write,
      async datasync(fh: FileHandle, path: string) {
        if (held) await held;
        return defaultCommitLogIO.datasync(fh, path);
      },
    };
    const store = await openStore(newDir(), { io });
    await store.add(addReq('y-0', 0, 0, [recordUnit(0)]));
    held = new Promise<void>((resolve) => (release = resolve));
    // While fdatasync is held: an async add is answered, a sync one waits.
    assert.equal((await store.add(addReq('y-0', 0, 1, [recordUnit(1)]))).status, Status.Ok);
    let syncDone = false;
    const sync = store.add(addReq('y-0', 0, 2, [recordUnit(2), batchUnit(3, 3)], { sync: true })).then((r) => {
      syncDone = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(syncDone, false, 'a sync add waits for its fdatasync');
    const before = store.fsyncCount;
    held = undefined;
    release!();
    assert.equal((await sync).status, Status.Ok);
    assert.ok(store.fsyncCount > before);
    // Many pipelined sync adds share fdatasyncs.
    const mid = store.fsyncCount;
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => store.add(addReq('y-0', 0, 6 + i, [recordUnit(6 + i)], { sync: true }))));
    assert.ok(many.every((r) => r.status === Status.Ok));
    const used = store.fsyncCount - mid;
    assert.ok(used >= 1 && used < 40, `40 sync adds took ${used} fdatasyncs`);
    check(await readRecords(store, 'y-0', 0), Array.from({ length: 46 }, (_, i) => (i >= 3 && i < 6 ? rec(i, false) : rec(i))));
    await store.close();
  });

  it('maps engine failures, fails what was queued behind, and resets the expected end', async () => {
    const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`simulated ${code}`), { code });
    const state = { fail: undefined as string | undefined };
    const io: CommitLogIO = {
      async write(fh: FileHandle, buf: Buffer, position: number, path: string) {
        if (state.fail) {
          const code = state.fail;
          state.fail = undefined;
          throw errno(code);
        }
        return defaultCommitLogIO.write(fh, buf, position, path);
      },
      datasync: defaultCommitLogIO.datasync,
    };
    const store = await openStore(newDir(), { io });
    assert.equal((await store.add(addReq('e-0', 0, 0, [recordUnit(0), recordUnit(1)]))).status, Status.Ok);
    state.fail = 'ENOSPC';
    const adds = Array.from({ length: 5 }, (_, i) => store.add(addReq('e-0', 0, 2 + i, [recordUnit(2 + i)])));
    const results = await Promise.all(adds);
    assert.equal(results[0]!.status, Status.Full);
    assert.match(results[0]!.message, /disk full/);
    for (const r of results) assert.ok(r.status === Status.Full || r.status === Status.IoError, `status ${r.status}`);
    assert.equal(results[4]!.state.end, 2);
    // Nothing of them was written: the writer resends from 2, and a resend from 3 is a gap.
    assert.equal((await store.add(addReq('e-0', 0, 3, [recordUnit(3)]))).status, Status.Gap);
    state.fail = 'EIO';
    const io1 = await store.add(addReq('e-0', 0, 2, [recordUnit(2)]));
    assert.equal(io1.status, Status.IoError);
    assert.match(io1.message, /write failed/);
    const ok = await store.add(addReq('e-0', 0, 2, [2, 3, 4].map(recordUnit)));
    assert.equal(ok.status, Status.Ok, ok.message);
    check(await readRecords(store, 'e-0', 0), [0, 1, 2, 3, 4].map((n) => rec(n)));
    await store.close();
  });

  it('refuses a fences file it cannot read rather than forgetting fences', async () => {
    const dir = newDir();
    const store = await openStore(dir);
    await store.fence({ shard: 'z-0', segment: 0 }, 1);
    await store.close();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'fences.json'), '{"version":1,"fen');
    await assert.rejects(openStore(dir), /fences\.json is not valid JSON/);
  });
});
