/**
 * The journal engine against real journal servers (in process, 127.0.0.1):
 * appends acknowledged by a quorum, replica failures mid-stream, a writer taking
 * over another's segment, fencing of a stale writer, acks=all.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decodeStoredBatch } from '../../../src/server/stored-batch.js';
import { JournalEngine, NotWriterError } from '../../../src/storage/journal/engine.js';
import type { AppendRecord } from '../../../src/storage/types.js';
import { makeRoot } from '../file/support.js';
import { TestJournal, assertDense, batchOf, quiet, readAll, rec, values } from './test-journal.js';
import { TestMeta } from './test-meta.js';
import { OffsetOutOfRangeError } from '../../../src/storage/errors.js';

const { newDir, cleanup } = makeRoot('robust-journal-engine-');
after(cleanup);


class Journal extends TestJournal {
  constructor(id: number) {
    super(id, newDir());
  }
}

async function cluster(n: number, meta: TestMeta): Promise<Journal[]> {
  const out: Journal[] = [];
  for (let i = 1; i <= n; i++) {
    const j = await new Journal(100 + i).start();
    meta.setJournal(j.id, j.server.address);
    out.push(j);
  }
  return out;
}

function engine(meta: TestMeta, nodeId: number, q: { e: number; w: number; a: number }, extra: Partial<ConstructorParameters<typeof JournalEngine>[0]> = {}): JournalEngine {
  return new JournalEngine({
    meta: meta.port(nodeId),
    defaults: { ensembleSize: q.e, writeQuorum: q.w, ackQuorum: q.a },
    flush: 'async',
    segmentBytes: 64 * 1024 * 1024,
    batchDecoder: decodeStoredBatch,
    openTimeoutMs: 5000,
    ...extra,
  });
}

describe('journal engine', () => {
  it('stores records and whole batches on one journal and reads them back with dense offsets', async () => {
    const meta = new TestMeta();
    const [j] = await cluster(1, meta);
    const e = engine(meta, 1, { e: 1, w: 1, a: 1 });
    try {
      await e.createShard({ shard: 't-0', topic: 't', engine: 'journal' });
      meta.setLeader('t-0', 1);
      assert.deepEqual(await e.append('t-0', [rec(0), rec(1)]), { baseOffset: 0n });
      assert.deepEqual(await e.appendBatches('t-0', [batchOf([rec(2), rec(3), rec(4)])]), { baseOffset: 2n });
      assert.deepEqual(await e.append('t-0', [rec(5)]), { baseOffset: 5n });
      const all = await readAll(e, 't-0');
      assertDense(all);
      assert.deepEqual(values(all), [0, 1, 2, 3, 4, 5].map((i) => `value-${i}`));
      assert.deepEqual(all[3]!.headers.map((h) => h.value.toString()), ['3']);
      // A batch comes back whole with its base offset set, from the tail cache and from the replica alike.
      const entries = await e.readEntries('t-0', 3n, { maxRecords: 10, maxBytes: 1 << 20 });
      assert.equal(entries[0]?.kind, 'batch');
      assert.ok(entries[0]?.kind === 'batch' && entries[0].baseOffset === 2n && entries[0].bytes.readBigInt64BE(0) === 2n);
      const fresh = engine(meta, 2, { e: 1, w: 1, a: 1 });
      await fresh.createShard({ shard: 't-0', topic: 't', engine: 'journal' });
      const fromReplica = await fresh.readEntries('t-0', 2n, { maxRecords: 10, maxBytes: 1 << 20 });
      assert.ok(fromReplica[0]?.kind === 'batch' && fromReplica[0].baseOffset === 2n && fromReplica[0].bytes.readBigInt64BE(0) === 2n);
      assert.deepEqual(values(await readAll(fresh, 't-0')), values(all), 'a node that does not write reads up to what was acknowledged');
      await fresh.close();
      const info = await e.shardInfo('t-0');
      assert.deepEqual([info.startOffset, info.endOffset, info.engine], [0n, 6n, 'journal']);
      // waitForData wakes on the next acknowledged append.
      const waiting = e.waitForData('t-0', 6n, 5000);
      const t0 = Date.now();
      setTimeout(() => void e.append('t-0', [rec(6)]), 50);
      await waiting;
      assert.ok(Date.now() - t0 < 2000);
    } finally {
      await e.close();
      await j!.stop();
    }
  });

  it('3/3/2: a journal node lost mid-stream loses no acknowledged append; the next segment opens on the other two', async () => {
    const meta = new TestMeta();
    const js = await cluster(3, meta);
    const e = engine(meta, 1, { e: 3, w: 3, a: 2 });
    try {
      await e.createShard({ shard: 'o-0', topic: 'o', engine: 'journal' });
      meta.setLeader('o-0', 1);
      const acked: Array<Promise<{ baseOffset: bigint }>> = [];
      for (let i = 0; i < 400; i++) {
        acked.push(e.append('o-0', [rec(i)]));
        if (i === 150) void js[1]!.stop();
        if (i % 25 === 0) await new Promise((r) => setImmediate(r));
      }
      const offsets = (await Promise.all(acked)).map((a) => Number(a.baseOffset));
      assert.deepEqual(offsets, offsets.map((_, i) => i), 'every append acknowledged, in order, at dense offsets');
      const all = await readAll(e, 'o-0');
      assertDense(all);
      assert.deepEqual(values(all), Array.from({ length: 400 }, (_, i) => `value-${i}`), 'exactly once, in order');
      const segs = meta.segments('o-0');
      assert.ok(segs.length >= 2, 'the replica failure sealed the first segment');
      assert.equal(segs[0]!.state, 'sealed');
      assert.ok(!segs.at(-1)!.ensemble.includes(js[1]!.id), 'the new segment avoids the failed node');
      // Reads of the sealed segment survive losing another of its replicas.
      await js[0]!.stop();
      const fresh = engine(meta, 9, { e: 3, w: 3, a: 2 });
      await fresh.createShard({ shard: 'o-0', topic: 'o', engine: 'journal' });
      const sealedEnd = segs[0]!.startOffset + segs[0]!.lastEntry! + 1;
      const head = await fresh.read('o-0', 0n, { maxRecords: sealedEnd, maxBytes: 1 << 20 });
      assert.deepEqual(values(head), values(all).slice(0, head.length));
      await fresh.close();
    } finally {
      await e.close();
      for (const j of js) await j.stop();
    }
  });

  it('a new writer fences the old one, seals its segment where the replicas end, and continues after it', async () => {
    const meta = new TestMeta();
    const js = await cluster(3, meta);
    const a = engine(meta, 1, { e: 3, w: 3, a: 2 });
    // Node 2 does not learn that leadership moved away from node 1 (a partitioned old leader).
    const stalePort = { ...meta.port(1), isWriter: () => true, subscribe: () => () => undefined };
    const stale = new JournalEngine({ meta: stalePort, defaults: { ensembleSize: 3, writeQuorum: 3, ackQuorum: 2 }, flush: 'async', segmentBytes: 1 << 26, batchDecoder: decodeStoredBatch, openTimeoutMs: 2000 });
    const b = engine(meta, 2, { e: 3, w: 3, a: 2 });
    try {
      for (const e of [stale, b]) await e.createShard({ shard: 'f-0', topic: 'f', engine: 'journal' });
      meta.setLeader('f-0', 1);
      for (let i = 0; i < 50; i++) await stale.append('f-0', [rec(i)]);
      meta.setLeader('f-0', 2);
      assert.deepEqual(await b.append('f-0', [rec(50)]), { baseOffset: 50n }, 'the new writer continues at the old end');
      await assert.rejects(stale.append('f-0', [rec(999)]), (err: unknown) => err instanceof NotWriterError || /fenced|not write/i.test(String(err)));
      const all = await readAll(b, 'f-0');
      assertDense(all);
      assert.deepEqual(values(all), Array.from({ length: 51 }, (_, i) => `value-${i}`));
      const first = meta.segments('f-0')[0]!;
      assert.deepEqual([first.state, first.lastEntry, first.epoch], ['sealed', 49, 2]);
    } finally {
      for (const e of [a, stale, b]) await e.close();
      for (const j of js) await j.stop();
    }
  });

  it('a writer that vanished mid-stream: the takeover keeps every acknowledged entry exactly once', async () => {
    const meta = new TestMeta();
    const js = await cluster(3, meta);
    const a = engine(meta, 1, { e: 3, w: 3, a: 2 });
    const b = engine(meta, 2, { e: 3, w: 3, a: 2 });
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
      const all = await readAll(b, 'v-0');
      assertDense(all);
      const got = values(all);
      for (const i of acked) assert.ok(got.includes(`value-${i}`), `acknowledged ${i} is readable`);
      assert.equal(new Set(got).size, got.length, 'no entry twice');
      assert.equal(got.at(-1), 'value-1000');
    } finally {
      await b.close();
      for (const j of js) await j.stop();
    }
  });

  it('acks=all waits for every replica; acks=quorum for the ack quorum', async () => {
    const meta = new TestMeta();
    const js = await cluster(2, meta);
    const e = engine(meta, 1, { e: 2, w: 2, a: 1 });
    try {
      await e.createShard({ shard: 'q-0', topic: 'q', engine: 'journal' });
      meta.setLeader('q-0', 1);
      await e.append('q-0', [rec(0)], { acks: 'all' });
      for (const j of js) assert.equal((await j.store.info({ shard: 'q-0', segment: 0 })).state.end, 1, `replica on ${j.id} holds it`);
      // With one replica gone, acks=all appends move to a segment on the survivor (E shrinks to what is alive).
      await js[1]!.stop();
      const r = await e.append('q-0', [rec(1)], { acks: 'all' });
      assert.equal(r.baseOffset, 1n);
      assert.deepEqual(values(await readAll(e, 'q-0')), ['value-0', 'value-1']);
    } finally {
      await e.close();
      for (const j of js) await j.stop();
    }
  });

  it('refuses appends on a shard it does not lead, and when too few journals are alive', async () => {
    const meta = new TestMeta();
    const js = await cluster(1, meta);
    const e = engine(meta, 1, { e: 3, w: 3, a: 2 }, { openTimeoutMs: 600 });
    try {
      await e.createShard({ shard: 'n-0', topic: 'n', engine: 'journal' });
      meta.setLeader('n-0', 7);
      await assert.rejects(e.append('n-0', [rec(0)]), (err: unknown) => err instanceof NotWriterError && err.leader === 7);
      meta.setLeader('n-0', 1);
      await assert.rejects(e.append('n-0', [rec(0)]), /needs 2 live journal node\(s\), 1 usable \(journal nodes: 101 alive\)/);
    } finally {
      await e.close();
      for (const j of js) await j.stop();
    }
  });
  it('a network partition: the minority writer acknowledges nothing, the majority side takes over, and after healing the replicas agree', async () => {
    const meta = new TestMeta();
    const js = await cluster(3, meta);
    // Node 1 (the old writer) calls from 127.0.0.2, node 2 from 127.0.0.3, so the journals can tell them apart.
    let partitioned = false;
    const cut = async (): Promise<never> => {
      throw new Error('meta unreachable from the minority side');
    };
    const base = meta.port(1);
    const minorityPort = {
      ...base,
      isWriter: (shard: string) => partitioned || base.isWriter(shard),
      subscribe: () => () => undefined,
      createSegment: (x: Parameters<typeof base.createSegment>[0]) => (partitioned ? cut() : base.createSegment(x)),
      sealSegment: (a: string, b: number, c: number) => (partitioned ? cut() : base.sealSegment(a, b, c)),
      bumpEpoch: (a: string, b: number, c: readonly number[], d: number) => (partitioned ? cut() : base.bumpEpoch(a, b, c, d)),
    };
    const a = new JournalEngine({ meta: minorityPort, defaults: { ensembleSize: 3, writeQuorum: 3, ackQuorum: 2 }, flush: 'async', segmentBytes: 1 << 26, batchDecoder: decodeStoredBatch, openTimeoutMs: 1500, localAddress: '127.0.0.2' });
    const b = engine(meta, 2, { e: 3, w: 3, a: 2 }, { localAddress: '127.0.0.3' });
    try {
      for (const e of [a, b]) await e.createShard({ shard: 'p-0', topic: 'p', engine: 'journal' });
      meta.setLeader('p-0', 1);
      for (let i = 0; i < 50; i++) await a.append('p-0', [rec(i)]);
      // Journals 2 and 3 are on the other side from node 1; journal 1 is with it.
      partitioned = true;
      for (const j of js.slice(1)) j.server.setFault((remote) => remote.endsWith('127.0.0.2'));
      meta.setLeader('p-0', 2);
      const minority = Array.from({ length: 20 }, (_, i) => a.append('p-0', [rec(100 + i)]));
      const outcomes = await Promise.allSettled(minority);
      assert.ok(outcomes.every((o) => o.status === 'rejected'), 'the minority side acknowledged nothing');
      // The majority side takes over and keeps acknowledging.
      for (let i = 0; i < 30; i++) await b.append('p-0', [rec(200 + i)]);
      // Heal.
      partitioned = false;
      for (const j of js) j.server.setFault(undefined);
      await assert.rejects(a.append('p-0', [rec(999)]), NotWriterError, 'the old writer, back in touch, no longer writes');
      const all = await readAll(b, 'p-0');
      assertDense(all);
      const got = values(all);
      assert.deepEqual(got.slice(0, 50), Array.from({ length: 50 }, (_, i) => `value-${i}`));
      assert.deepEqual(got.slice(-30), Array.from({ length: 30 }, (_, i) => `value-${200 + i}`));
      assert.equal(new Set(got).size, got.length, 'no entry twice');
      assert.ok(!got.includes('value-999'));
      // Every replica of the sealed segment that holds an entry holds the same one.
      const sealed = meta.segments('p-0')[0]!;
      assert.equal(sealed.state, 'sealed');
      const copies = await Promise.all(js.map((j) => j.store.read({ op: 2, shard: 'p-0', segment: 0, fromEntry: 0, maxEntries: 10_000, maxBytes: 1 << 24 } as never)));
      const views = copies.map((c) => c.units.filter((u) => u.entry <= sealed.lastEntry!).map((u) => (u.kind === 'record' ? u.record.value!.toString() : 'batch')));
      const longest = views.reduce((x, y) => (y.length > x.length ? y : x));
      for (const v of views) assert.deepEqual(v, longest.slice(0, v.length), 'replicas agree on every entry they hold');
      assert.ok(views.filter((v) => v.length === sealed.lastEntry! + 1).length >= 2, 'the sealed segment is whole on at least the ack quorum');
    } finally {
      for (const e of [a, b]) await e.close();
      for (const j of js) await j.stop();
    }
  });
  it('a journal node added at run time gets new segments as the shards roll', async () => {
    const meta = new TestMeta();
    const js = await cluster(3, meta);
    const e = engine(meta, 1, { e: 3, w: 3, a: 2 }, { segmentBytes: 20_000 });
    const shards = ['g-0', 'g-1', 'g-2', 'g-3'];
    try {
      for (const sh of shards) {
        await e.createShard({ shard: sh, topic: 'g', engine: 'journal' });
        meta.setLeader(sh, 1);
      }
      for (let i = 0; i < 20; i++) for (const sh of shards) await e.append(sh, [rec(i)]);
      const late = await new Journal(200).start();
      js.push(late);
      meta.setJournal(late.id, late.server.address);
      // Enough bytes that every shard rolls several times.
      const big = (i: number): AppendRecord => ({ ...rec(i), value: Buffer.alloc(4000, i) });
      for (let i = 0; i < 30; i++) for (const sh of shards) await e.append(sh, [big(i)]);
      const newer = shards.flatMap((sh) => meta.segments(sh).slice(-3));
      assert.ok(newer.some((g) => g.ensemble.includes(late.id)), `segments opened after node ${late.id} joined use it: ${JSON.stringify(newer.map((g) => g.ensemble))}`);
      for (const sh of shards) assert.equal((await readAll(e, sh)).length, 50, `${sh} keeps every record across its segments`);
    } finally {
      await e.close();
      for (const j of js) await j.stop();
    }
  });

  it('an explicit delete inside a segment (truncateBefore) holds across a new writer and a restart', async () => {
    const meta = new TestMeta();
    const js = await cluster(1, meta);
    const e = engine(meta, 1, { e: 1, w: 1, a: 1 }, { segmentBytes: 4096, retentionCheckIntervalMs: 0 });
    try {
      await e.createShard({ shard: 'tb-0', topic: 'tb', engine: 'journal' });
      meta.setLeader('tb-0', 1);
      for (let i = 0; i < 60; i++) await e.append('tb-0', [{ ...rec(i), value: Buffer.alloc(200, i) }]);
      const segs = meta.segments('tb-0');
      assert.ok(segs.length >= 3, `several segments (${segs.length})`);
      // Inside the second segment: the first goes whole, the second keeps where its records now start.
      const second = segs[1]!;
      const cut = second.startOffset + 2;
      await e.truncateBefore('tb-0', BigInt(cut));
      const after1 = meta.segments('tb-0');
      assert.equal(after1[0]!.segment, second.segment);
      assert.equal(after1[0]!.trimmedTo, cut);
      assert.equal((await e.shardInfo('tb-0')).startOffset, BigInt(cut));
      await assert.rejects(e.read('tb-0', BigInt(cut - 1), { maxRecords: 10, maxBytes: 1 << 20 }), OffsetOutOfRangeError);
      // Another node leads the shard now (or this one restarted): the start holds, from meta.
      const other = engine(meta, 2, { e: 1, w: 1, a: 1 }, { segmentBytes: 4096, retentionCheckIntervalMs: 0 });
      try {
        await other.createShard({ shard: 'tb-0', topic: 'tb', engine: 'journal' });
        meta.setLeader('tb-0', 2);
        assert.equal((await other.shardInfo('tb-0')).startOffset, BigInt(cut));
        await assert.rejects(other.read('tb-0', BigInt(cut - 1), { maxRecords: 10, maxBytes: 1 << 20 }), OffsetOutOfRangeError);
        const rest = await readAll(other, 'tb-0', BigInt(cut));
        assert.equal(rest[0]!.offset, BigInt(cut));
        assert.equal(rest.at(-1)!.offset, 59n);
      } finally {
        await other.close();
      }
    } finally {
      await e.close();
      for (const j of js) await j.stop();
    }
  });

  it('retention drops whole sealed segments: by their newest record\'s age, and by the shard\'s size', async () => {
    const meta = new TestMeta();
    const [j] = await cluster(1, meta);
    const e = engine(meta, 1, { e: 1, w: 1, a: 1 }, { segmentBytes: 4096, retentionCheckIntervalMs: 0 });
    const now = Date.now();
    const at = (i: number, ts: number): AppendRecord => ({ ...rec(i), timestamp: ts, value: Buffer.alloc(200, i % 251) });
    try {
      // By time: the first 60 records are an hour old, the rest are new.
      await e.createShard({ shard: 'rt-0', topic: 'rt', engine: 'journal', retentionMs: 60_000 });
      meta.setLeader('rt-0', 1);
      for (let i = 0; i < 150; i++) await e.append('rt-0', [at(i, i < 60 ? now - 3_600_000 : now)]);
      const before = meta.segments('rt-0');
      assert.ok(before.length >= 5, `several segments (${before.length})`);
      assert.ok(before.every((g) => g.state === 'open' || (g.bytes! > 0 && g.sealedAtMs! > 0)), 'sealed segments carry their size and seal time');
      // By time, sealed segments whose newest record is older are skipped whole.
      assert.equal(await e.offsetForTime('rt-0', now - 1000), 60n);
      assert.equal(await e.offsetForTime('rt-0', now - 7_200_000), 0n);
      assert.equal(await e.offsetForTime('rt-0', now + 1000), 150n);
      await e.enforceRetention(now);
      const after = meta.segments('rt-0');
      const first = after[0]!;
      // Every segment whose newest record is old went; the one holding record 59 (old) and newer ones stay.
      const oldOnly = before.filter((g) => g.state === 'sealed' && g.startOffset + g.lastEntry! < 60);
      assert.ok(oldOnly.length >= 1);
      assert.equal(after.length, before.length - oldOnly.length);
      assert.equal(first.startOffset, oldOnly.at(-1)!.startOffset + oldOnly.at(-1)!.lastEntry! + 1);
      assert.equal((await e.shardInfo('rt-0')).startOffset, BigInt(first.startOffset));
      await assert.rejects(e.read('rt-0', 0n, { maxRecords: 10, maxBytes: 1 << 20 }), OffsetOutOfRangeError);
      const held = j!.store.list().filter((r) => r.shard === 'rt-0').map((r) => r.segment);
      assert.deepEqual(held, after.map((g) => g.segment), 'the replicas of the dropped segments are deleted');
      const rest = await readAll(e, 'rt-0', BigInt(first.startOffset));
      assert.equal(rest[0]!.offset, BigInt(first.startOffset));
      assert.equal(rest.at(-1)!.offset, 149n);

      // By size: about three segments' worth is kept.
      await e.createShard({ shard: 'rb-0', topic: 'rb', engine: 'journal', retentionBytes: 3 * 4096 });
      meta.setLeader('rb-0', 1);
      for (let i = 0; i < 200; i++) await e.append('rb-0', [at(i, now)]);
      const all = meta.segments('rb-0');
      await e.enforceRetention(now);
      const kept = meta.segments('rb-0');
      assert.ok(kept.length < all.length, `segments dropped (${all.length} -> ${kept.length})`);
      const keptBytes = kept.reduce((n, g) => n + (g.bytes ?? 0), 0);
      assert.ok(keptBytes >= 2 * 4096, `what is kept still holds about the retention (${keptBytes} bytes in sealed segments)`);
      assert.equal((await readAll(e, 'rb-0', BigInt(kept[0]!.startOffset))).at(-1)!.offset, 199n);
    } finally {
      await e.close();
      await j!.stop();
    }
  });
});
