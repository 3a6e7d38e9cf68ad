/**
 * Striped segments (ensemble E larger than write quorum Qw) against real journal
 * servers in process: each append lands on Qw replicas and the others hold a
 * hole; reads, a writer's takeover, a journal lost mid-stream and
 * re-replication all see every acknowledged entry exactly once.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decodeStoredBatch } from '../../../src/server/stored-batch.js';
import { JournalClientPool } from '../../../src/storage/journal/client.js';
import { JournalEngine } from '../../../src/storage/journal/engine.js';
import { Op, Status, unitEntries, type ReadUnit, type Unit } from '../../../src/storage/journal/protocol.js';
import { recoverSegment } from '../../../src/storage/journal/recovery.js';
import { ReReplicator, underReplicatedSegments } from '../../../src/storage/journal/rereplicator.js';
import { makeRoot } from '../file/support.js';
import { TestJournal, assertDense, batchOf, readAll, rec, replicaUnits, values } from './test-journal.js';
import { TestMeta } from './test-meta.js';

const { newDir, cleanup } = makeRoot('robust-journal-stripe-');
after(cleanup);

async function journals(meta: TestMeta, n: number): Promise<Map<number, TestJournal>> {
  const out = new Map<number, TestJournal>();
  for (let i = 1; i <= n; i++) {
    const j = await new TestJournal(100 + i, newDir()).start();
    meta.setJournal(j.id, j.server.address);
    out.set(j.id, j);
  }
  return out;
}

async function stopAll(js: Map<number, TestJournal>): Promise<void> {
  for (const j of js.values()) await j.stop().catch(() => undefined);
}

function engine(meta: TestMeta, nodeId: number, q: { e: number; w: number; a: number }, extra: Partial<ConstructorParameters<typeof JournalEngine>[0]> = {}): JournalEngine {
  return new JournalEngine({
    meta: meta.port(nodeId),
    defaults: { ensembleSize: q.e, writeQuorum: q.w, ackQuorum: q.a },
    flush: 'async',
    segmentBytes: 64 * 1024 * 1024,
    batchDecoder: decodeStoredBatch,
    openTimeoutMs: 5000,
    // Every append moves the stripe on: the finest interleaving of data and holes.
    stripeBytes: 1,
    ...extra,
  });
}

function dataEntries(units: ReadUnit[]): number {
  return units.reduce((n, u) => n + (u.kind === 'hole' ? 0 : unitEntries(u)), 0);
}

describe('journal striping (E > Qw)', () => {
  it('5/3/2: each entry is on exactly 3 of the 5 replicas, the load is spread, and a reader elsewhere gets every entry in order', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, 5);
    const pool = new JournalClientPool(5000);
    const w = engine(meta, 1, { e: 5, w: 3, a: 2 });
    const r = engine(meta, 2, { e: 5, w: 3, a: 2 }, { tailCacheBytes: 0 });
    try {
      for (const e of [w, r]) await e.createShard({ shard: 's-0', topic: 's', engine: 'journal' });
      meta.setLeader('s-0', 1);
      const want: string[] = [];
      let i = 0;
      for (let round = 0; round < 200; round++) {
        const records = Array.from({ length: 1 + (round % 3) }, () => rec(i++));
        want.push(...records.map((x) => x.value!.toString()));
        if (round % 2 === 0) await w.append('s-0', records);
        else await w.appendBatches('s-0', [batchOf(records)]);
      }
      const [seg] = meta.segments('s-0');
      assert.ok(seg, 'a segment');
      assert.deepEqual([seg.ensemble.length, seg.writeQuorum, seg.ackQuorum], [5, 3, 2], 'the segment is striped 5/3/2');
      await new Promise((res) => setTimeout(res, 50)); // the idle writer's LAC reaches the replicas

      // Every replica sees every entry id (as data or a hole); the data adds up to three copies of each.
      let total = 0;
      const copies = new Map<number, number>();
      for (const id of seg.ensemble) {
        const units = await replicaUnits(pool, meta, id, seg);
        const end = units.length ? units.at(-1)!.entry + unitEntries(units.at(-1)!) : 0;
        assert.equal(end, want.length, `node ${id} covers every entry id`);
        const held = dataEntries(units);
        assert.ok(held > 0 && held < want.length, `node ${id} holds part of the entries (${held} of ${want.length})`);
        assert.ok(units.some((u) => u.kind === 'hole'), `node ${id} holds holes`);
        total += held;
        for (const u of units) if (u.kind !== 'hole') for (let e = u.entry; e < u.entry + unitEntries(u); e++) copies.set(e, (copies.get(e) ?? 0) + 1);
      }
      assert.equal(total, 3 * want.length, 'three copies of every entry in all');
      for (let e = 0; e < want.length; e++) assert.equal(copies.get(e), 3, `entry ${e} is on 3 replicas`);

      // A node that does not write reads through the holes: every entry once, in order.
      const all = await readAll(r, 's-0');
      assertDense(all);
      assert.deepEqual(values(all), want);
      assert.deepEqual(values(await readAll(w, 's-0')), want, 'the writer (tail cache) agrees');

      // Lose any two replicas (Qw - 1): every entry is still readable.
      await js.get(seg.ensemble[1]!)!.stop();
      await js.get(seg.ensemble[3]!)!.stop();
      assert.deepEqual(values(await readAll(r, 's-0')), want, 'readable with 2 of 5 replicas gone');
    } finally {
      await w.close();
      await r.close();
      pool.closeAll();
      await stopAll(js);
    }
  });

  it('3/2/2: a writer that vanished mid-stream: the takeover keeps every acknowledged entry exactly once', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, 3);
    const a = engine(meta, 1, { e: 3, w: 2, a: 2 });
    const b = engine(meta, 2, { e: 3, w: 2, a: 2 });
    try {
      for (const e of [a, b]) await e.createShard({ shard: 'v-0', topic: 'v', engine: 'journal' });
      meta.setLeader('v-0', 1);
      const acked: number[] = [];
      const inflight: Array<Promise<unknown>> = [];
      for (let i = 0; i < 300; i++) inflight.push(a.append('v-0', [rec(i)]).then(() => acked.push(i), () => undefined));
      await new Promise((r) => setTimeout(r, 5));
      await a.close(); // gone without sealing: connections drop with adds in flight
      await Promise.allSettled(inflight);
      meta.setLeader('v-0', 2);
      await b.append('v-0', [rec(1000)]);
      const segs = meta.segments('v-0');
      assert.equal(segs[0]?.state, 'sealed', 'the vanished writer’s segment is sealed');
      assert.equal(segs[0]?.writeQuorum, 2);
      const all = await readAll(b, 'v-0');
      assertDense(all);
      const got = values(all);
      for (const i of acked) assert.ok(got.includes(`value-${i}`), `acknowledged ${i} is readable`);
      assert.equal(new Set(got).size, got.length, 'no entry twice');
      assert.deepEqual(got.slice(0, -1), got.slice(0, -1).map((_, k) => `value-${k}`), 'the old writer’s entries in their order');
      assert.equal(got.at(-1), 'value-1000');
    } finally {
      await b.close();
      await stopAll(js);
    }
  });

  it('4/2/2: a journal node lost mid-stream loses no acknowledged append; the writer rolls to the live nodes', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, 4);
    const e = engine(meta, 1, { e: 4, w: 2, a: 2 });
    try {
      await e.createShard({ shard: 'o-0', topic: 'o', engine: 'journal' });
      meta.setLeader('o-0', 1);
      const acked: Array<Promise<{ baseOffset: bigint }>> = [];
      let victim = 0;
      for (let i = 0; i < 400; i++) {
        acked.push(e.append('o-0', [rec(i)], i % 2 ? { acks: 'all' } : undefined));
        if (i === 150) {
          victim = meta.segments('o-0')[0]!.ensemble[2]!;
          void js.get(victim)!.stop();
        }
        if (i % 25 === 0) await new Promise((r) => setImmediate(r));
      }
      const offsets = (await Promise.all(acked)).map((a) => Number(a.baseOffset));
      assert.deepEqual(offsets, offsets.map((_, i) => i), 'every append acknowledged, in order, at dense offsets');
      const all = await readAll(e, 'o-0');
      assertDense(all);
      assert.deepEqual(values(all), offsets.map((i) => `value-${i}`));
      const segs = meta.segments('o-0');
      assert.ok(segs.length >= 2, 'the writer rolled');
      const last = segs.at(-1)!;
      assert.ok(!last.ensemble.includes(victim), 'the next segment leaves the lost node out');
      assert.deepEqual([last.ensemble.length, last.writeQuorum], [3, 2], 'and is striped over the three live nodes');
      // A reader elsewhere, with the writer's cache out of the way, agrees (once the idle writer's LAC reached the replicas).
      await new Promise((res) => setTimeout(res, 50));
      const r = engine(meta, 2, { e: 4, w: 2, a: 2 }, { tailCacheBytes: 0 });
      try {
        await r.createShard({ shard: 'o-0', topic: 'o', engine: 'journal' });
        assert.deepEqual(values(await readAll(r, 'o-0')), values(all));
      } finally {
        await r.close();
      }
    } finally {
      await e.close();
      await stopAll(js);
    }
  });

  it('re-replication gives the replacement node a full copy of a striped segment, read from the members that hold each entry', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, 4);
    const pool = new JournalClientPool(5000);
    const rr = new ReReplicator({ meta: meta.port(9), bytesPerSec: 0 });
    const w = engine(meta, 1, { e: 3, w: 2, a: 2 });
    try {
      await w.createShard({ shard: 'c-0', topic: 'c', engine: 'journal' });
      meta.setLeader('c-0', 1);
      const want: string[] = [];
      for (let i = 0; i < 120; i++) {
        await w.append('c-0', [rec(i)]);
        want.push(`value-${i}`);
      }
      await w.close();
      const open = meta.segments('c-0')[0]!;
      await meta.port(1).sealSegment('c-0', open.segment, want.length - 1);
      meta.setLeader('c-0', 0);
      const seg = meta.segments('c-0')[0]!;
      assert.deepEqual([seg.ensemble.length, seg.writeQuorum], [3, 2]);
      const dead = seg.ensemble[0]!;
      const spare = [...js.keys()].find((id) => !seg.ensemble.includes(id))!;
      await js.get(dead)!.stop();
      meta.setJournal(dead, meta.nodes.get(dead)!.addr, 'dead');

      await rr.runOnce();

      const now = meta.segments('c-0')[0]!;
      assert.deepEqual(now.ensemble, seg.ensemble.map((id) => (id === dead ? spare : id)), 'the spare node takes the dead node’s place');
      assert.equal(underReplicatedSegments(meta.segments('c-0'), meta.port(9).journals()).length, 0);
      const copy = await replicaUnits(pool, meta, spare, now);
      assert.ok(copy.every((u) => u.kind !== 'hole'), 'the new replica holds no holes');
      assert.equal(dataEntries(copy), want.length, 'the new replica holds every entry');

      // With one original member gone as well, the segment is read from what is left.
      const other = now.ensemble.find((id) => id !== spare)!;
      await js.get(other)!.stop();
      const r = engine(meta, 2, { e: 3, w: 2, a: 2 }, { tailCacheBytes: 0 });
      try {
        await r.createShard({ shard: 'c-0', topic: 'c', engine: 'journal' });
        const all = await readAll(r, 'c-0');
        assertDense(all);
        assert.deepEqual(values(all), want);
      } finally {
        await r.close();
      }
    } finally {
      await rr.stop();
      pool.closeAll();
      await stopAll(js);
    }
  });

  it('recovery reads the tail through the holes, completes the replicas that lag, and ends the segment where no replica holds data', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, 3);
    const pool = new JournalClientPool(5000);
    const ctx = { meta: meta.port(2), pool, addrOf: (id: number) => meta.nodes.get(id)?.addr };
    const [a, b, c] = [101, 102, 103];
    const add = async (node: number, shard: string, firstEntry: number, units: Unit[]) => {
      const res = await pool.get(node, meta.nodes.get(node)!.addr).request({ op: Op.Add, shard, segment: 0, epoch: 1, sync: true, lac: -1, firstEntry, units });
      assert.equal(res.status, Status.Ok, res.status === Status.Ok ? '' : (res as { message: string }).message);
    };
    const data = (i: number): Unit => ({ kind: 'record', record: rec(i) });
    const hole: Unit = { kind: 'hole', count: 1 };
    try {
      // Entries 0, 1, 2 with write sets {a,b}, {b,c}, {c,a}; the writer died while sending.
      // a: 0, hole;  b: 0;  c: hole, 1, 2.  Every entry is held somewhere, so all three stay.
      await meta.port(1).createSegment({ shard: 'x-0', segment: 0, ensemble: [a, b, c], writeQuorum: 2, ackQuorum: 2, epoch: 1, startOffset: 0 });
      await add(a, 'x-0', 0, [data(0), hole]);
      await add(b, 'x-0', 0, [data(0)]);
      await add(c, 'x-0', 0, [hole, data(1), data(2)]);
      const last = await recoverSegment(ctx, meta.segments('x-0')[0]!, new Set());
      assert.equal(last, 2, 'sealed after entry 2');
      assert.equal(meta.segments('x-0')[0]!.lastEntry, 2);
      const seg = meta.segments('x-0')[0]!;
      const ends = await Promise.all([a, b, c].map(async (id) => (await replicaUnits(pool, meta, id, seg)).reduce((n, u) => n + unitEntries(u), 0)));
      assert.deepEqual(ends, [3, 3, 3], 'the replicas that lagged were completed');
      assert.equal(dataEntries(await replicaUnits(pool, meta, b, seg)), 3, 'b got entries 1 and 2 as data');
      const r = engine(meta, 2, { e: 3, w: 2, a: 2 }, { tailCacheBytes: 0 });
      try {
        await r.createShard({ shard: 'x-0', topic: 'x', engine: 'journal' });
        assert.deepEqual(values(await readAll(r, 'x-0')), ['value-0', 'value-1', 'value-2']);
      } finally {
        await r.close();
      }

      // a: 0, hole;  b: 0;  c: hole, hole.  Entry 1 reached no member of its write set: it was never
      // acknowledged, so the segment ends after entry 0.
      await meta.port(1).createSegment({ shard: 'y-0', segment: 0, ensemble: [a, b, c], writeQuorum: 2, ackQuorum: 2, epoch: 1, startOffset: 0 });
      await add(a, 'y-0', 0, [data(0), hole]);
      await add(b, 'y-0', 0, [data(0)]);
      await add(c, 'y-0', 0, [{ kind: 'hole', count: 2 }]);
      assert.equal(await recoverSegment(ctx, meta.segments('y-0')[0]!, new Set()), 0, 'sealed after entry 0');
    } finally {
      pool.closeAll();
      await stopAll(js);
    }
  });
});
