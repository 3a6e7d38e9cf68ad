/**
 * Re-replication of sealed segments against real journal servers (in process,
 * 127.0.0.1): a dead member's replicas are copied whole to a spare node and the
 * ensemble swapped in meta; the copy is throttled; with no spare node the
 * segment stays under-replicated and is reported; a short replica of a live
 * member is completed.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { encodeRecordBatch } from '../../../src/broker/kafka/records/index.js';
import { decodeStoredBatch } from '../../../src/server/stored-batch.js';
import { JournalClientPool } from '../../../src/storage/journal/client.js';
import { JournalEngine } from '../../../src/storage/journal/engine.js';
import { Op, type ReadUnit } from '../../../src/storage/journal/protocol.js';
import { ReReplicator, underReplicatedSegments, type ReReplicatorOptions } from '../../../src/storage/journal/rereplicator.js';
import type { AppendBatch, AppendRecord } from '../../../src/storage/types.js';
import { makeRoot } from '../file/support.js';
import { TestJournal, quiet, readAll, replicaUnits } from './test-journal.js';
import { TestMeta } from './test-meta.js';

const { newDir, cleanup } = makeRoot('robust-journal-rerepl-');
after(cleanup);


class Journal extends TestJournal {
  constructor(id: number) {
    super(id, newDir());
  }
}

async function journals(meta: TestMeta, ids: number[]): Promise<Map<number, Journal>> {
  const out = new Map<number, Journal>();
  for (const id of ids) {
    const j = await new Journal(id).start();
    meta.setJournal(id, j.server.address);
    out.set(id, j);
  }
  return out;
}

const rec = (i: number, size = 40): AppendRecord => ({
  timestamp: 1_700_000_000_000 + i,
  key: Buffer.from(`k${i}`),
  value: Buffer.alloc(size, i % 251),
  headers: i % 3 === 0 ? [{ key: 'h', value: Buffer.from(String(i)) }] : [],
  ...(i % 5 === 0 ? { tag: `t${i % 7}` } : {}),
});

function batchOf(records: AppendRecord[]): AppendBatch {
  const w = new KafkaWriter();
  encodeRecordBatch(w, { baseOffset: 0n, compression: 'none', records: records.map((r, i) => ({ ...r, offset: BigInt(i) })) });
  return { bytes: w.toBuffer(), count: records.length, firstTimestamp: records[0]!.timestamp, maxTimestamp: records.at(-1)!.timestamp };
}

/**
 * Writes `rounds` appends (records and batches in turn) through a writer on node
 * 1, then closes it and seals its open segment where the writes ended: every
 * segment of the shard is sealed and on its whole ensemble. Returns the values
 * written, in offset order.
 */
async function writeSealed(meta: TestMeta, shard: string, q: { e: number; a: number }, rounds: number, opts: { segmentBytes: number; valueBytes?: number }): Promise<Buffer[]> {
  const e = new JournalEngine({
    meta: meta.port(1),
    defaults: { ensembleSize: q.e, writeQuorum: q.e, ackQuorum: q.a },
    flush: 'async',
    segmentBytes: opts.segmentBytes,
    batchDecoder: decodeStoredBatch,
    openTimeoutMs: 5000,
  });
  const values: Buffer[] = [];
  try {
    await e.createShard({ shard, topic: shard.replace(/-\d+$/, ''), engine: 'journal' });
    meta.setLeader(shard, 1);
    let i = 0;
    for (let r = 0; r < rounds; r++) {
      const records = Array.from({ length: 1 + (r % 4) }, () => rec(i++, opts.valueBytes));
      if (r % 2 === 0) await e.append(shard, records, { acks: 'all' });
      else await e.appendBatches(shard, [batchOf(records)], { acks: 'all' });
      values.push(...records.map((x) => x.value!));
    }
  } finally {
    await e.close();
  }
  const open = meta.segments(shard).find((s) => s.state === 'open');
  if (open) await meta.port(1).sealSegment(shard, open.segment, values.length - 1 - open.startOffset);
  meta.setLeader(shard, 0);
  return values;
}

function sameUnits(a: ReadUnit[], b: ReadUnit[], what: string): void {
  assert.equal(a.length, b.length, `${what}: unit count`);
  a.forEach((u, i) => {
    const v = b[i]!;
    assert.equal(u.kind, v.kind, `${what}: unit ${i} kind`);
    assert.equal(u.entry, v.entry, `${what}: unit ${i} entry`);
    if (u.kind === 'batch' && v.kind === 'batch') {
      assert.equal(u.count, v.count);
      assert.ok(u.bytes.equals(v.bytes), `${what}: unit ${i} bytes differ`);
    } else if (u.kind === 'record' && v.kind === 'record') {
      assert.deepEqual(u.record, v.record, `${what}: unit ${i} record`);
    }
  });
}

function reReplicator(meta: TestMeta, extra: Partial<ReReplicatorOptions> = {}): ReReplicator {
  return new ReReplicator({ meta: meta.port(9), bytesPerSec: 0, ...extra });
}

describe('journal re-replication', () => {
  it('copies every sealed segment of a dead node whole to the spare node, swaps it into the ensemble, and reads are served from the copies', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, [101, 102, 103]);
    const pool = new JournalClientPool(5000);
    const replaced: Array<[number, number, number]> = [];
    let copied = 0;
    const rr = reReplicator(meta, { onReplaced: (s, from, to) => replaced.push([s.segment, from, to]), onCopied: (n) => (copied += n) });
    try {
      const values = await writeSealed(meta, 'r-0', { e: 2, a: 2 }, 120, { segmentBytes: 4096, valueBytes: 60 });
      const before = meta.segments('r-0');
      assert.ok(before.length >= 4, `expected several segments, got ${before.length}`);
      assert.ok(before.every((s) => s.state === 'sealed'));
      const dead = before[0]!.ensemble[0]!;
      const other = before[0]!.ensemble[1]!;
      const spare = [101, 102, 103].find((id) => id !== dead && id !== other)!;
      const withDead = before.filter((s) => s.ensemble.includes(dead));
      await js.get(dead)!.stop();
      meta.setJournal(dead, meta.nodes.get(dead)!.addr, 'dead');
      assert.equal(underReplicatedSegments(meta.port(9).allSegments!(), meta.port(9).journals()).length, withDead.length);

      await rr.runOnce();

      const after = meta.segments('r-0');
      assert.equal(underReplicatedSegments(after, meta.port(9).journals()).length, 0);
      for (const s of before) {
        const now = after.find((x) => x.segment === s.segment)!;
        // The one live node outside the ensemble takes the dead node's place, in order.
        const outside = [101, 102, 103].find((id) => id !== dead && !s.ensemble.includes(id))!;
        const expected = s.ensemble.map((id) => (id === dead ? outside : id));
        assert.deepEqual(now.ensemble, expected, `segment ${s.segment}: the dead node's place is taken in order`);
        assert.deepEqual([now.epoch, now.lastEntry, now.startOffset, now.writeQuorum, now.ackQuorum], [s.epoch, s.lastEntry, s.startOffset, s.writeQuorum, s.ackQuorum]);
      }
      assert.deepEqual(replaced.map(([seg, from]) => [seg, from]), withDead.map((s) => [s.segment, dead]));
      assert.ok(after.every((s) => s.ensemble.includes(spare) && s.ensemble.includes(other)), 'every segment is on the two live nodes now');
      const st = rr.status();
      assert.equal(st.replaced_segments, withDead.length);
      assert.ok(st.copied_bytes > 0 && st.copied_bytes === copied);
      assert.deepEqual(st.waiting, []);
      assert.equal(st.copying, null);

      // Byte for byte: the new replica holds what the surviving one does.
      for (const s of withDead) {
        const keep = s.ensemble.find((id) => id !== dead)!;
        const added = after.find((x) => x.segment === s.segment)!.ensemble.find((id) => !s.ensemble.includes(id))!;
        const a = await replicaUnits(pool, meta, keep, s);
        const b = await replicaUnits(pool, meta, added, s);
        assert.equal(a.reduce((n, u) => n + (u.kind === 'batch' ? u.count : 1), 0), s.lastEntry! + 1);
        sameUnits(a, b, `segment ${s.segment}`);
      }

      // With the other original node gone too, every segment is read from the spare node alone.
      await js.get(other)!.stop();
      const reader = new JournalEngine({ meta: meta.port(2), defaults: { ensembleSize: 2, writeQuorum: 2, ackQuorum: 2 }, flush: 'async', segmentBytes: 4096, batchDecoder: decodeStoredBatch });
      try {
        await reader.createShard({ shard: 'r-0', topic: 'r', engine: 'journal' });
        const all = await readAll(reader, 'r-0');
        assert.equal(all.length, values.length);
        all.forEach((r, i) => {
          assert.equal(r.offset, BigInt(i));
          assert.ok(r.value!.equals(values[i]!), `value at offset ${i}`);
        });
      } finally {
        await reader.close();
      }

      // A second pass finds nothing to do.
      await rr.runOnce();
      assert.equal(rr.status().replaced_segments, withDead.length);
    } finally {
      await rr.stop();
      pool.closeAll();
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });

  it('a node back after its segments were copied elsewhere, or dropped, has those replicas deleted (orphans), at the second sweep', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, [101, 102, 103]);
    const rr = reReplicator(meta, { orphanSweepMs: 1 });
    try {
      await writeSealed(meta, 'o-0', { e: 2, a: 2 }, 60, { segmentBytes: 4096, valueBytes: 60 });
      await writeSealed(meta, 'gone-0', { e: 2, a: 2 }, 10, { segmentBytes: 1 << 20, valueBytes: 60 });
      const segs = meta.segments('o-0');
      const dead = segs[0]!.ensemble[0]!;
      const deadDir = js.get(dead)!.dir;
      const held = () => js.get(dead)!.store.list().map((r) => `${r.shard}#${r.segment}`).sort();
      const before = held();
      assert.ok(before.length > 0);
      await js.get(dead)!.stop();
      meta.setJournal(dead, meta.nodes.get(dead)!.addr, 'dead');
      await rr.runOnce(); // its sealed segments move to the spare node
      assert.ok(meta.segments('o-0').every((s) => !s.ensemble.includes(dead)));
      // Meanwhile the other topic is deleted (the node was down: its replicas stayed).
      await meta.port(1).deleteSegments('gone-0');

      // The node comes back with its old replicas.
      const back = await new TestJournal(dead, deadDir).start();
      js.set(dead, back as Journal);
      meta.setJournal(dead, back.server.address, 'alive');
      assert.deepEqual(held(), before, 'it still holds them');
      await rr.runOnce(); // first sweep: seen, kept (meta may lag)
      await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(held(), before);
      await rr.runOnce(); // second sweep: deleted
      const now = meta.port(9).allSegments!().filter((s) => s.ensemble.includes(dead)).map((s) => `${s.shard}#${s.segment}`).sort();
      assert.deepEqual(held(), now, 'only the replicas meta names for it are left');
      for (const j of js.values()) assert.deepEqual(j.store.list().filter((r) => r.shard === 'gone-0'), [], `node ${j.id} holds nothing of the deleted topic`);
      // The dead node's orphans, and the deleted topic's replicas on the other two nodes.
      assert.equal(rr.status().orphans_deleted, before.length - now.length + 2);
    } finally {
      await rr.stop();
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });

  it('throttles the copy to bytes_per_sec, and a stop mid-copy abandons it without touching meta', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, [101, 102, 103]);
    try {
      await writeSealed(meta, 'big-0', { e: 2, a: 1 }, 40, { segmentBytes: 64 * 1024 * 1024, valueBytes: 4000 });
      const [seg] = meta.segments('big-0');
      assert.ok(seg && seg.state === 'sealed');
      const dead = seg.ensemble[0]!;
      const spare = [101, 102, 103].find((id) => !seg.ensemble.includes(id))!;
      await js.get(dead)!.stop();
      meta.setJournal(dead, meta.nodes.get(dead)!.addr, 'dead');

      // Stopped part-way: the spare's partial copy is dropped and meta keeps the old ensemble.
      const slow = reReplicator(meta, { bytesPerSec: 100 * 1024 });
      const pass = slow.runOnce().catch((err: unknown) => err);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(slow.status().copying?.to, spare);
      const t0 = Date.now();
      await slow.stop();
      await pass;
      assert.ok(Date.now() - t0 < 2000, 'stop does not wait for the copy to finish');
      assert.deepEqual(meta.segments('big-0')[0]!.ensemble, seg.ensemble);
      const info = await js.get(spare)!.store.info({ shard: 'big-0', segment: seg.segment });
      assert.equal(info.status, 2 /* not found */, 'the abandoned copy is deleted');

      const rate = 256 * 1024;
      const rr = reReplicator(meta, { bytesPerSec: rate });
      const started = Date.now();
      await rr.runOnce();
      const took = Date.now() - started;
      const bytes = rr.status().copied_bytes;
      assert.ok(bytes > 150_000, `copied ${bytes} bytes`);
      assert.ok(took >= (bytes / rate) * 1000 * 0.95, `copying ${bytes} bytes at ${rate} B/s took ${took} ms, expected at least ${Math.round((bytes / rate) * 1000)} ms`);
      assert.ok(took < (bytes / rate) * 1000 + 3000, `but not much longer (${took} ms)`);
      assert.equal(meta.segments('big-0')[0]!.ensemble.includes(spare), true);
      await rr.stop();
    } finally {
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });

  it('with no spare journal node the segment stays under-replicated and is reported; a new node gets the copy', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, [101, 102]);
    const warnings: string[] = [];
    const log = { info() {}, warn: (_o: object, msg: string) => void warnings.push(msg) };
    let active = false;
    const rr = reReplicator(meta, { log, isActive: () => active });
    try {
      await writeSealed(meta, 'n-0', { e: 2, a: 2 }, 10, { segmentBytes: 64 * 1024 * 1024 });
      const [seg] = meta.segments('n-0');
      await js.get(101)!.stop();
      meta.setJournal(101, meta.nodes.get(101)!.addr, 'dead');

      // Not the node on duty: nothing happens, nothing is reported by it.
      await rr.runOnce();
      assert.equal(rr.status().active, false);
      assert.deepEqual(rr.status().waiting, []);

      active = true;
      await rr.runOnce();
      await rr.runOnce();
      assert.deepEqual(meta.segments('n-0')[0]!.ensemble, seg!.ensemble, 'nothing to copy to: the ensemble stays');
      const st = rr.status();
      assert.equal(st.active, true);
      assert.deepEqual(st.waiting.map((w) => [w.shard, w.segment, w.missing, w.reason]), [['n-0', seg!.segment, [101], 'no_spare_journal']]);
      assert.equal(warnings.filter((w) => /stays under-replicated/.test(w)).length, 1, 'warned once, not every pass');
      assert.equal(underReplicatedSegments(meta.port(9).allSegments!(), meta.port(9).journals()).length, 1);

      // A journal node joins: the next pass copies to it.
      const j3 = await new Journal(103).start();
      js.set(103, j3);
      meta.setJournal(103, j3.server.address);
      await rr.runOnce();
      assert.deepEqual(meta.segments('n-0')[0]!.ensemble, seg!.ensemble.map((id) => (id === 101 ? 103 : id)));
      assert.deepEqual(rr.status().waiting, []);
    } finally {
      await rr.stop();
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });

  it('completes the short replica of a live member (it missed the tail) from a full one', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, [101, 102]);
    const pool = new JournalClientPool(5000);
    const rr = reReplicator(meta);
    try {
      await writeSealed(meta, 's-0', { e: 2, a: 2 }, 30, { segmentBytes: 64 * 1024 * 1024 });
      const [seg] = meta.segments('s-0');
      // Node 102 loses its replica (as if it had been cut off before the segment was written).
      const c = pool.get(102, meta.nodes.get(102)!.addr);
      await c.call({ op: Op.Delete, shard: 's-0', segment: seg!.segment });
      assert.equal((await c.request({ op: Op.Info, shard: 's-0', segment: seg!.segment })).status, 2);
      await rr.runOnce();
      assert.equal(rr.status().repaired_replicas, 1);
      sameUnits(await replicaUnits(pool, meta, 101, seg!), await replicaUnits(pool, meta, 102, seg!), 'repaired replica');
      assert.deepEqual(meta.segments('s-0')[0]!.ensemble, seg!.ensemble);
      // Verified once: the next pass asks nobody.
      await rr.runOnce();
      assert.equal(rr.status().repaired_replicas, 1);
    } finally {
      await rr.stop();
      pool.closeAll();
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });

  it('runs on its own once started: a node turning dead is handled without a call', async () => {
    const meta = new TestMeta();
    const js = await journals(meta, [101, 102, 103]);
    const rr = reReplicator(meta, { intervalMs: 60_000 });
    try {
      await writeSealed(meta, 'a-0', { e: 2, a: 2 }, 8, { segmentBytes: 64 * 1024 * 1024 });
      const [seg] = meta.segments('a-0');
      rr.start();
      await new Promise((r) => setTimeout(r, 300));
      const dead = seg!.ensemble[1]!;
      await js.get(dead)!.stop();
      meta.setJournal(dead, meta.nodes.get(dead)!.addr, 'dead'); // a meta change wakes it
      const deadline = Date.now() + 5000;
      while (meta.segments('a-0')[0]!.ensemble.includes(dead) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!meta.segments('a-0')[0]!.ensemble.includes(dead));
    } finally {
      await rr.stop();
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });
});
