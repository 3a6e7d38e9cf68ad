/**
 * Batch entries: a Kafka-layout batch stored whole as one CommitLog entry for
 * many offsets — appended, read as records and as entries, recovered (indexes
 * rebuilt per offset), cut when damaged, accounted, truncated.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { encodeRecordBatch, type Compression } from '../../../src/broker/kafka/records/index.js';
import { decodeStoredBatch } from '../../../src/server/stored-batch.js';
import { StorageIOError } from '../../../src/storage/errors.js';
import type { FileEngine } from '../../../src/storage/file/engine.js';
import type { AppendBatch, AppendRecord, StoredRecord } from '../../../src/storage/types.js';
import { crashCopy, lastSegment, makeRoot, openEngine, rec, sameRecord, spec } from './support.js';

const { newDir, cleanup } = makeRoot('robust-file-batches-');
after(cleanup);

const SHARD = 'kb-0';

/** A v2 batch of these records, as a producer would send it (base offset 0). */
function batchOf(records: AppendRecord[], compression: Compression = 'none'): AppendBatch {
  const w = new KafkaWriter();
  encodeRecordBatch(w, { baseOffset: 0n, compression, records: records.map((r, i) => ({ ...r, offset: BigInt(i) })) });
  const ts = records.map((r) => r.timestamp);
  return { bytes: w.toBuffer(), count: records.length, firstTimestamp: ts[0]!, maxTimestamp: Math.max(...ts) };
}

const open = (dir: string, extra: Parameters<typeof openEngine>[1] = {}) => openEngine(dir, { batchDecoder: decodeStoredBatch, ...extra });

async function readAll(e: FileEngine, from = 0n): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  let o = from;
  for (;;) {
    const got = await e.read(SHARD, o, { maxRecords: 7, maxBytes: 1 << 20 });
    if (got.length === 0) return out;
    out.push(...got);
    o = got[got.length - 1]!.offset + 1n;
  }
}

function check(got: StoredRecord[], want: AppendRecord[], from = 0): void {
  assert.equal(got.length, want.length - from);
  got.forEach((r, i) => assert.ok(sameRecord(r, want[from + i]!, BigInt(from + i)), `record ${from + i}`));
}

/** Appends a mix: single records, an uncompressed batch, a gzip batch, more singles. */
async function fill(e: FileEngine): Promise<AppendRecord[]> {
  await e.createShard(spec(SHARD));
  await e.createShard(spec('other-0'));
  const want: AppendRecord[] = [];
  const singles = [rec(1), rec(2)];
  await e.append(SHARD, singles);
  want.push(...singles);
  const b1 = Array.from({ length: 10 }, (_, i) => rec(10 + i, { valueBytes: 200 }));
  const b2 = Array.from({ length: 5 }, (_, i) => rec(30 + i, { valueBytes: 50 }));
  assert.equal((await e.appendBatches(SHARD, [batchOf(b1), batchOf(b2, 'gzip')])).baseOffset, 2n);
  want.push(...b1, ...b2);
  await e.append('other-0', [rec(99)]);
  const b3 = Array.from({ length: 3 }, (_, i) => rec(40 + i));
  assert.equal((await e.appendBatches(SHARD, [batchOf(b3)])).baseOffset, 17n);
  want.push(...b3);
  await e.append(SHARD, [rec(50)]);
  want.push(rec(50));
  return want;
}

describe('file engine batch entries', () => {
  it('appends batches whole and reads them back as records (from any offset) and as entries', async () => {
    const e = await open(newDir());
    const want = await fill(e);
    assert.equal((await e.shardInfo(SHARD)).endOffset, 21n);
    check(await readAll(e), want);
    check(await readAll(e, 5n), want, 5); // inside the first batch
    check(await readAll(e, 13n), want, 13); // inside the gzip batch

    const entries = await e.readEntries(SHARD, 5n, { maxRecords: 1000, maxBytes: 1 << 20 });
    assert.deepEqual(
      entries.map((x) => (x.kind === 'batch' ? `batch@${x.baseOffset}x${x.count}` : `record@${x.record.offset}`)),
      ['batch@2x10', 'batch@12x5', 'batch@17x3', 'record@20'],
    );
    const first = entries[0]!;
    assert.ok(first.kind === 'batch');
    assert.equal(first.bytes.readBigInt64BE(0), 2n, 'the stored batch carries its base offset');
    check(decodeStoredBatch(first.bytes, 2n), want.slice(0, 12), 2);
    await e.close();
  });

  it('hands a batch out whole even when the byte limit falls inside it', async () => {
    const e = await open(newDir());
    await fill(e);
    const entries = await e.readEntries(SHARD, 2n, { maxRecords: 1000, maxBytes: 1 });
    assert.equal(entries.length, 1);
    assert.ok(entries[0]!.kind === 'batch' && entries[0]!.count === 10);
    await e.close();
  });

  it('accounts a batch entry evenly over its records, and keeps that across a reopen', async () => {
    const dir = newDir();
    const e = await open(dir);
    await fill(e);
    const bytes = (await e.shardInfo(SHARD)).bytes;
    assert.ok(bytes > 0);
    await e.close();
    const again = await open(dir);
    assert.equal((await again.shardInfo(SHARD)).bytes, bytes);
    await again.close();
  });

  it('after a crash, every offset of a batch entry gets its queue entry back from the CommitLog', async () => {
    const live = newDir();
    const e = await open(live);
    const want = await fill(e);
    const dir = crashCopy(live, newDir());
    await e.close();
    const r = await open(dir);
    assert.equal(r.recovery.truncatedBytes, 0);
    assert.equal(r.recovery.rebuiltIndexEntries, 22, '21 offsets of the shard (18 in batches) and 1 of the other');
    check(await readAll(r), want);
    // Appends go on at the next offset, batches and records alike.
    assert.equal((await r.appendBatches(SHARD, [batchOf([rec(60), rec(61)])])).baseOffset, 21n);
    await r.close();
  });

  it('a byte flipped in the last batch entry (its records or its header) cuts that whole batch, nothing before it', async () => {
    for (const where of ['body', 'header'] as const) {
      const live = newDir();
      const e = await open(live);
      await e.createShard(spec(SHARD));
      const before = [rec(1), rec(2), rec(3)];
      await e.appendBatches(SHARD, [batchOf(before)]);
      const last = Array.from({ length: 4 }, (_, i) => rec(10 + i, { valueBytes: 100 }));
      await e.appendBatches(SHARD, [batchOf(last)]);
      const dir = crashCopy(live, newDir());
      await e.close();
      const seg = lastSegment(dir);
      const bytes = readFileSync(seg.path);
      // The last entry ends the segment: flip a byte in its last record, or in its 8-byte base offset field.
      const at = where === 'body' ? seg.size - 10 : seg.size - (batchOf(last).bytes.length - 3);
      bytes[at] = bytes[at]! ^ 0xff;
      writeFileSync(seg.path, bytes);
      const r = await open(dir);
      assert.equal((await r.shardInfo(SHARD)).endOffset, 3n, `${where}: the damaged batch is gone as a whole`);
      assert.ok(r.recovery.truncatedBytes > 0);
      check(await readAll(r), before);
      assert.equal((await r.appendBatches(SHARD, [batchOf([rec(20)])])).baseOffset, 3n);
      await r.close();
    }
  });

  it('truncateBefore inside a batch: records from there on; the entry is still handed out whole', async () => {
    const e = await open(newDir());
    const want = await fill(e);
    await e.truncateBefore(SHARD, 6n);
    check(await readAll(e, 6n), want, 6);
    const entries = await e.readEntries(SHARD, 6n, { maxRecords: 1, maxBytes: 1 });
    assert.ok(entries[0]!.kind === 'batch' && entries[0]!.baseOffset === 2n);
    await e.close();
  });

  it('offsetForTime finds batch records by their batch timestamps', async () => {
    const e = await open(newDir());
    await e.createShard(spec(SHARD));
    const t = 1_800_000_000_000;
    await e.appendBatches(SHARD, [batchOf([rec(1, { ts: t }), rec(2, { ts: t + 10 })])]);
    await e.appendBatches(SHARD, [batchOf([rec(3, { ts: t + 1000 }), rec(4, { ts: t + 1010 })])]);
    assert.equal(await e.offsetForTime(SHARD, t - 1), 0n);
    assert.equal(await e.offsetForTime(SHARD, t + 500), 2n);
    assert.equal(await e.offsetForTime(SHARD, t + 5000), 4n);
    await e.close();
  });

  it('without a batch decoder, reading a batch entry as records is a clear error; entries still read', async () => {
    const dir = newDir();
    const e = await open(dir);
    await fill(e);
    await e.close();
    const bare = await openEngine(dir);
    await assert.rejects(bare.read(SHARD, 3n, { maxRecords: 1, maxBytes: 1000 }), (err: unknown) => err instanceof StorageIOError && /no batch decoder/.test(String(err)));
    assert.equal((await bare.readEntries(SHARD, 3n, { maxRecords: 1, maxBytes: 1 })).length, 1);
    await bare.close();
  });

  it('refuses what is not a v2 batch', async () => {
    const e = await open(newDir());
    await e.createShard(spec(SHARD));
    const good = batchOf([rec(1)]);
    const legacy = Buffer.from(good.bytes);
    legacy[16] = 1;
    await assert.rejects(e.appendBatches(SHARD, [{ ...good, bytes: legacy }]), TypeError);
    await assert.rejects(e.appendBatches(SHARD, [{ ...good, bytes: good.bytes.subarray(0, 40) }]), TypeError);
    await assert.rejects(e.appendBatches(SHARD, [{ ...good, bytes: Buffer.concat([good.bytes, Buffer.alloc(3)]) }]), TypeError);
    await assert.rejects(e.appendBatches(SHARD, [{ ...good, count: 0 }]), TypeError);
    assert.equal((await e.shardInfo(SHARD)).endOffset, 0n, 'nothing was appended');
    await e.close();
  });
});
