import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OffsetOutOfRangeError, RecordTooLargeError, ShardNotFoundError, StorageClosedError } from '../../src/storage/errors.js';
import { MemoryEngine, RECORD_OVERHEAD_BYTES, recordBytes, type MemoryEngineOptions } from '../../src/storage/memory/engine.js';
import { RecordRing } from '../../src/storage/memory/ring.js';
import { StorageMetrics } from '../../src/storage/metrics.js';
import type { AppendRecord, ShardSpec } from '../../src/storage/types.js';

const T0 = 1_700_000_000_000;

function engine(opts: Partial<MemoryEngineOptions> = {}): MemoryEngine {
  return new MemoryEngine({ maxBytesPerShard: 1 << 30, retentionMs: -1, retentionBytes: -1, retentionCheckIntervalMs: 0, ...opts });
}

function spec(shard = 't-0', extra: Partial<ShardSpec> = {}): ShardSpec {
  return { shard, topic: shard.replace(/-\d+$/, ''), engine: 'memory', ...extra };
}

/** A record of exactly `bytes` accounted bytes (value padding), timestamp T0 + i unless given. */
function rec(i: number, bytes = 100, timestamp = T0 + i): AppendRecord {
  return { timestamp, key: null, value: Buffer.alloc(bytes - RECORD_OVERHEAD_BYTES, i & 0xff), headers: [] };
}

function recs(n: number, from = 0, bytes = 100): AppendRecord[] {
  return Array.from({ length: n }, (_, i) => rec(from + i, bytes));
}

async function counterValue(metrics: StorageMetrics, name: 'droppedRecords' | 'appendRecords' | 'appendBytes', labels: Record<string, string>): Promise<number> {
  const m = await metrics[name].get();
  const v = m.values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
  return v?.value ?? 0;
}

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

async function rejects<E extends Error>(p: Promise<unknown>, cls: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${cls.name}`);
}

describe('memory engine basics', () => {
  it('assigns dense offsets from 0 and reads back what was appended', async () => {
    const e = engine();
    await e.createShard(spec());
    const headers = [{ key: 'h', value: Buffer.from('v') }];
    assert.deepEqual(await e.append('t-0', [{ timestamp: T0, key: Buffer.from('k'), value: Buffer.from('a'), headers, tag: 'TagA' }]), { baseOffset: 0n });
    assert.deepEqual(await e.append('t-0', [rec(1), rec(2), { timestamp: T0, key: Buffer.alloc(0), value: null, headers: [] }]), { baseOffset: 1n });
    const got = await e.read('t-0', 0n, { maxRecords: 100, maxBytes: 1 << 20 });
    assert.deepEqual(
      got.map((r) => r.offset),
      [0n, 1n, 2n, 3n],
    );
    assert.equal(got[0]!.key!.toString(), 'k');
    assert.equal(got[0]!.value!.toString(), 'a');
    assert.equal(got[0]!.tag, 'TagA');
    assert.deepEqual(got[0]!.headers, headers);
    assert.ok(!('tag' in got[1]!), 'no tag property when appended without one');
    assert.deepEqual(got[3]!.key, Buffer.alloc(0), 'empty key stays empty, not null');
    assert.equal(got[3]!.value, null);
    assert.deepEqual(await e.read('t-0', 4n, { maxRecords: 10, maxBytes: 1000 }), [], 'read at endOffset is []');
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 0n, endOffset: 4n, bytes: got.reduce((n, r) => n + recordBytes(r), 0) });
    await e.close();
  });

  it('stores the caller’s buffers without copying them', async () => {
    const e = engine();
    await e.createShard(spec());
    const value = Buffer.from('abc');
    await e.append('t-0', [{ timestamp: T0, key: null, value, headers: [] }]);
    const [r] = await e.read('t-0', 0n, { maxRecords: 1, maxBytes: 100 });
    assert.equal(r!.value, value, 'the same Buffer instance');
    await e.close();
  });

  it('copies a batch whose bytes are views into a much larger buffer (a protocol frame), so the frame is not kept alive', async () => {
    const e = engine();
    await e.createShard(spec());
    const frame = Buffer.alloc(1024 * 1024, 7);
    const key = frame.subarray(10, 14);
    const value = frame.subarray(100, 200);
    const header = frame.subarray(300, 302);
    await e.append('t-0', [{ timestamp: T0, key, value, headers: [{ key: 'h', value: header }] }]);
    const [r] = await e.read('t-0', 0n, { maxRecords: 1, maxBytes: 1000 });
    assert.deepEqual([r!.key, r!.value, r!.headers[0]!.value], [key, value, header], 'same bytes');
    assert.notEqual(r!.value!.buffer, frame.buffer, 'but not the frame');
    assert.ok(r!.value!.buffer.byteLength <= 106, `backed by ${r!.value!.buffer.byteLength} bytes`);
    await e.close();
  });

  it('accounts key + value + headers + tag + a fixed overhead per record', () => {
    assert.equal(recordBytes({ timestamp: 0, key: null, value: null, headers: [] }), RECORD_OVERHEAD_BYTES);
    assert.equal(
      recordBytes({ timestamp: 0, key: Buffer.alloc(3), value: Buffer.alloc(10), headers: [{ key: 'é', value: Buffer.alloc(4) }], tag: 'ab' }),
      RECORD_OVERHEAD_BYTES + 3 + 10 + 2 + 4 + 2,
    );
  });

  it('respects maxRecords and maxBytes but returns at least one record', async () => {
    const e = engine();
    await e.createShard(spec());
    await e.append('t-0', recs(10));
    assert.equal((await e.read('t-0', 0n, { maxRecords: 3, maxBytes: 1 << 20 })).length, 3);
    assert.equal((await e.read('t-0', 2n, { maxRecords: 100, maxBytes: 250 })).length, 2, '2 × 100 bytes fit in 250');
    assert.equal((await e.read('t-0', 2n, { maxRecords: 100, maxBytes: 300 })).length, 3, 'exactly maxBytes fits');
    assert.deepEqual(
      (await e.read('t-0', 5n, { maxRecords: 100, maxBytes: 1 })).map((r) => r.offset),
      [5n],
      'one record even when it exceeds maxBytes',
    );
    assert.equal((await e.read('t-0', 9n, { maxRecords: 0, maxBytes: 1000 })).length, 1, 'maxRecords < 1 still returns one');
    await e.close();
  });

  it('createShard is idempotent and keeps the data; deleteShard removes it; unknown delete is a no-op', async () => {
    const e = engine();
    await e.createShard(spec('a-0'));
    await e.append('a-0', recs(3));
    await e.createShard(spec('a-0'));
    assert.equal((await e.shardInfo('a-0')).endOffset, 3n);
    await e.createShard(spec('b-0'));
    assert.deepEqual(e.listShards().sort(), ['a-0', 'b-0']);
    await e.deleteShard('a-0');
    await e.deleteShard('nope-0');
    assert.deepEqual(e.listShards(), ['b-0']);
    await rejects(e.shardInfo('a-0'), ShardNotFoundError);
    await e.createShard(spec('a-0'));
    assert.deepEqual(await e.shardInfo('a-0'), { shard: 'a-0', engine: 'memory', startOffset: 0n, endOffset: 0n, bytes: 0 }, 're-created empty from 0');
    await e.close();
  });

  it('reads across the ring’s wrap-around and growth', async () => {
    const e = engine({ maxBytesPerShard: 100 * 50 });
    await e.createShard(spec());
    let next = 0;
    for (let round = 0; round < 40; round++) {
      const n = 1 + ((round * 7) % 13);
      await e.append('t-0', recs(n, next));
      next += n;
      const info = await e.shardInfo('t-0');
      assert.equal(info.endOffset, BigInt(next));
      assert.equal(info.endOffset - info.startOffset, BigInt(Math.min(next, 50)));
      const all = await e.read('t-0', info.startOffset, { maxRecords: 1000, maxBytes: 1 << 30 });
      all.forEach((r, i) => {
        const o = Number(info.startOffset) + i;
        assert.equal(r.offset, BigInt(o));
        assert.equal(r.timestamp, T0 + o);
        assert.equal(r.value![0], o & 0xff);
      });
    }
    await e.close();
  });
});

describe('memory engine errors', () => {
  it('throws ShardNotFoundError for every operation on an unknown shard', async () => {
    const e = engine();
    await rejects(e.append('x-0', recs(1)), ShardNotFoundError);
    await rejects(e.read('x-0', 0n, { maxRecords: 1, maxBytes: 1 }), ShardNotFoundError);
    await rejects(e.waitForData('x-0', 0n, 10), ShardNotFoundError);
    await rejects(e.offsetForTime('x-0', 0), ShardNotFoundError);
    await rejects(e.truncateBefore('x-0', 0n), ShardNotFoundError);
    const err = await rejects(e.shardInfo('x-0'), ShardNotFoundError);
    assert.equal(err.shard, 'x-0');
    assert.equal(err.code, 'shard_not_found');
    await e.close();
  });

  it('throws OffsetOutOfRangeError outside [startOffset, endOffset]', async () => {
    const e = engine();
    await e.createShard(spec());
    await e.append('t-0', recs(5));
    await e.truncateBefore('t-0', 2n);
    for (const from of [-1n, 0n, 1n, 6n, 100n]) {
      const err = await rejects(e.read('t-0', from, { maxRecords: 1, maxBytes: 1 }), OffsetOutOfRangeError);
      assert.equal(err.offset, from);
      assert.equal(err.startOffset, 2n);
      assert.equal(err.endOffset, 5n);
    }
    assert.equal((await e.read('t-0', 2n, { maxRecords: 10, maxBytes: 1 << 20 })).length, 3);
    await e.close();
  });

  it('refuses a batch with a non-finite timestamp as a whole', async () => {
    const e = engine();
    await e.createShard(spec());
    await assert.rejects(e.append('t-0', [rec(0), { ...rec(1), timestamp: Number.NaN }]), TypeError);
    assert.equal((await e.shardInfo('t-0')).endOffset, 0n);
    await e.close();
  });

  it('rejects every call with StorageClosedError after close (close is idempotent)', async () => {
    const e = engine();
    await e.createShard(spec());
    await e.close();
    await e.close();
    await rejects(e.createShard(spec()), StorageClosedError);
    await rejects(e.deleteShard('t-0'), StorageClosedError);
    await rejects(e.append('t-0', recs(1)), StorageClosedError);
    await rejects(e.read('t-0', 0n, { maxRecords: 1, maxBytes: 1 }), StorageClosedError);
    await rejects(e.waitForData('t-0', 0n, 10), StorageClosedError);
    await rejects(e.offsetForTime('t-0', 0), StorageClosedError);
    await rejects(e.truncateBefore('t-0', 0n), StorageClosedError);
    await rejects(e.shardInfo('t-0'), StorageClosedError);
    assert.throws(() => e.listShards(), StorageClosedError);
  });

  it('truncateBefore: no-op at or below startOffset, OffsetOutOfRangeError past endOffset, endOffset empties the shard', async () => {
    const e = engine();
    await e.createShard(spec());
    await e.append('t-0', recs(5));
    await e.truncateBefore('t-0', 3n);
    await e.truncateBefore('t-0', 1n);
    await e.truncateBefore('t-0', -5n);
    assert.equal((await e.shardInfo('t-0')).startOffset, 3n);
    const err = await rejects(e.truncateBefore('t-0', 6n), OffsetOutOfRangeError);
    assert.equal(err.offset, 6n);
    await e.truncateBefore('t-0', 5n);
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 5n, endOffset: 5n, bytes: 0 });
    assert.deepEqual(await e.read('t-0', 5n, { maxRecords: 1, maxBytes: 1 }), []);
    assert.deepEqual(await e.append('t-0', recs(1)), { baseOffset: 5n });
    await e.close();
  });
});

describe('memory engine byte bound', () => {
  it('drops the oldest records when an append would exceed maxBytesPerShard, and counts them', async () => {
    const metrics = new StorageMetrics();
    const e = engine({ maxBytesPerShard: 1000, metrics });
    await e.createShard(spec());
    await e.append('t-0', recs(10));
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 0n, endOffset: 10n, bytes: 1000 });
    assert.equal(await counterValue(metrics, 'droppedRecords', { engine: 'memory', reason: 'memory_bound' }), 0);
    assert.deepEqual(await e.append('t-0', recs(3, 10)), { baseOffset: 10n });
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 3n, endOffset: 13n, bytes: 1000 });
    assert.equal(await counterValue(metrics, 'droppedRecords', { engine: 'memory', reason: 'memory_bound' }), 3);
    await rejects(e.read('t-0', 2n, { maxRecords: 1, maxBytes: 1 }), OffsetOutOfRangeError);
    assert.equal((await e.read('t-0', 3n, { maxRecords: 1, maxBytes: 1 }))[0]!.timestamp, T0 + 3);
    // Bigger records drop as many small ones as needed.
    await e.append('t-0', [rec(13, 450)]);
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 8n, endOffset: 14n, bytes: 950 });
    assert.equal(await counterValue(metrics, 'droppedRecords', { engine: 'memory', reason: 'memory_bound' }), 8);
    await e.close();
  });

  it('uses the shard’s retentionBytes when smaller, and applies a tighter spec at once', async () => {
    const e = engine({ maxBytesPerShard: 10_000 });
    await e.createShard(spec('t-0', { retentionBytes: 500 }));
    for (let i = 0; i < 8; i++) await e.append('t-0', [rec(i)]);
    assert.equal((await e.shardInfo('t-0')).startOffset, 3n);
    await e.createShard(spec('t-0', { retentionBytes: 200 }));
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 6n, endOffset: 8n, bytes: 200 });
    await e.createShard(spec('t-0', { retentionBytes: -1 }));
    await e.append('t-0', recs(50, 8));
    assert.equal((await e.shardInfo('t-0')).startOffset, 6n, 'unbounded retention: only maxBytesPerShard applies');
    await e.close();
  });

  it('refuses a batch larger than the bound with RecordTooLargeError, changing nothing', async () => {
    const e = engine({ maxBytesPerShard: 1000 });
    await e.createShard(spec());
    await e.append('t-0', recs(5));
    const err = await rejects(e.append('t-0', recs(11, 5)), RecordTooLargeError);
    assert.equal(err.bytes, 1100);
    assert.equal(err.limit, 1000);
    assert.deepEqual(await e.shardInfo('t-0'), { shard: 't-0', engine: 'memory', startOffset: 0n, endOffset: 5n, bytes: 500 });
    await e.close();
  });
});

describe('memory engine time retention', () => {
  it('drops records older than retentionMs on enforceRetention() and before appends, by the injected clock', async () => {
    let now = T0;
    const metrics = new StorageMetrics();
    const e = engine({ retentionMs: 1000, now: () => now, metrics });
    await e.createShard(spec('d-0'));
    await e.createShard(spec('long-0', { retentionMs: 5000 }));
    await e.createShard(spec('forever-0', { retentionMs: -1 }));
    for (const s of ['d-0', 'long-0', 'forever-0']) await e.append(s, [rec(0, 100, T0), rec(1, 100, T0 + 500), rec(2, 100, T0 + 900)]);

    now = T0 + 1400;
    assert.equal(e.enforceRetention(), 1, 'only d-0’s record at T0 is past 1000 ms');
    assert.equal((await e.shardInfo('d-0')).startOffset, 1n);

    now = T0 + 1950;
    await e.append('d-0', [rec(3, 100, now)]);
    assert.deepEqual(await e.shardInfo('d-0'), { shard: 'd-0', engine: 'memory', startOffset: 3n, endOffset: 4n, bytes: 100 });
    assert.equal(await counterValue(metrics, 'droppedRecords', { engine: 'memory', reason: 'retention' }), 3);

    now = T0 + 5600;
    e.enforceRetention();
    assert.equal((await e.shardInfo('long-0')).startOffset, 2n);
    assert.equal((await e.shardInfo('forever-0')).startOffset, 0n, 'retentionMs -1 keeps records forever');
    assert.equal(await e.offsetForTime('long-0', 0), 2n, 'offsetForTime only sees readable records');
    await e.close();
  });

  it('stops at the first young record when timestamps go backwards', async () => {
    let now = T0;
    const e = engine({ retentionMs: 100, now: () => now });
    await e.createShard(spec());
    await e.append('t-0', [rec(0, 100, T0), rec(1, 100, T0 + 1000), rec(2, 100, T0)]);
    now = T0 + 500;
    e.enforceRetention();
    assert.equal((await e.shardInfo('t-0')).startOffset, 1n);
    now = T0 + 1200;
    e.enforceRetention();
    assert.equal((await e.shardInfo('t-0')).startOffset, 3n);
    await e.close();
  });
});

describe('memory engine offsetForTime', () => {
  it('finds the first offset with timestamp >= t (binary search on monotonic timestamps)', async () => {
    const e = engine();
    await e.createShard(spec());
    assert.equal(await e.offsetForTime('t-0', 0), 0n, 'empty shard: endOffset');
    await e.append('t-0', [10, 20, 20, 20, 30].map((t, i) => rec(i, 100, T0 + t)));
    assert.equal(await e.offsetForTime('t-0', 0), 0n);
    assert.equal(await e.offsetForTime('t-0', T0 + 10), 0n);
    assert.equal(await e.offsetForTime('t-0', T0 + 11), 1n);
    assert.equal(await e.offsetForTime('t-0', T0 + 20), 1n);
    assert.equal(await e.offsetForTime('t-0', T0 + 30), 4n);
    assert.equal(await e.offsetForTime('t-0', T0 + 31), 5n, 'none: endOffset');
    await e.close();
  });

  it('scans when timestamps go backwards', async () => {
    const e = engine();
    await e.createShard(spec());
    await e.append('t-0', [50, 10, 40, 20, 60].map((t, i) => rec(i, 100, T0 + t)));
    assert.equal(await e.offsetForTime('t-0', T0 + 30), 0n);
    assert.equal(await e.offsetForTime('t-0', T0 + 55), 4n);
    await e.truncateBefore('t-0', 1n);
    assert.equal(await e.offsetForTime('t-0', T0 + 30), 2n);
    assert.equal(await e.offsetForTime('t-0', T0 + 15), 2n);
    assert.equal(await e.offsetForTime('t-0', T0 + 5), 1n);
    await e.close();
  });
});

describe('memory engine waitForData', () => {
  it('resolves at once when a record at `from` exists, without a timer', async () => {
    const e = engine();
    await e.createShard(spec());
    await e.append('t-0', recs(2));
    const before = activeTimeouts();
    const t = performance.now();
    await e.waitForData('t-0', 1n, 60_000);
    assert.ok(performance.now() - t < 50);
    assert.equal(activeTimeouts(), before);
    await e.close();
  });

  it('is woken by an append and clears its timer', async () => {
    const e = engine();
    await e.createShard(spec());
    const before = activeTimeouts();
    let woke = false;
    const waiting = e.waitForData('t-0', 0n, 60_000).then(() => (woke = true));
    const far = e.waitForData('t-0', 5n, 60_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false);
    assert.equal(activeTimeouts(), before + 2);
    await e.append('t-0', recs(1));
    await waiting;
    assert.equal(activeTimeouts(), before + 1, 'the woken waiter’s timer is gone; the one for offset 5 still waits');
    await e.append('t-0', recs(5, 1));
    await far;
    assert.equal(activeTimeouts(), before);
    await e.close();
  });

  it('times out without rejecting, and returns at once for timeout 0', async () => {
    const e = engine();
    await e.createShard(spec());
    const before = activeTimeouts();
    const t = performance.now();
    await e.waitForData('t-0', 0n, 30);
    assert.ok(performance.now() - t >= 20, 'waited for its timeout');
    assert.equal(activeTimeouts(), before);
    await e.waitForData('t-0', 0n, 0);
    assert.equal(activeTimeouts(), before);
    await e.close();
  });

  it('resolves pending waits on close and on deleteShard, leaving no timers', async () => {
    const e = engine();
    await e.createShard(spec('a-0'));
    await e.createShard(spec('b-0'));
    const before = activeTimeouts();
    const a = e.waitForData('a-0', 0n, 60_000);
    const b = e.waitForData('b-0', 0n, 60_000);
    await e.deleteShard('a-0');
    await a;
    await e.close();
    await b;
    assert.equal(activeTimeouts(), before);
  });

  it('serves many waiters on one shard from one append', async () => {
    const e = engine();
    await e.createShard(spec());
    const waits = Array.from({ length: 100 }, () => e.waitForData('t-0', 0n, 60_000));
    await e.append('t-0', recs(1));
    await Promise.all(waits);
    await e.close();
  });
});

describe('memory engine metrics', () => {
  it('counts appended records and bytes, times appends and reports shard bytes', async () => {
    const metrics = new StorageMetrics();
    const e = engine({ metrics });
    await e.createShard(spec('a-0'));
    await e.createShard(spec('b-0'));
    await e.append('a-0', recs(3));
    await e.append('b-0', recs(2, 0, 250));
    assert.equal(await counterValue(metrics, 'appendRecords', { engine: 'memory' }), 5);
    assert.equal(await counterValue(metrics, 'appendBytes', { engine: 'memory' }), 800);
    const text = await metrics.registry.metrics();
    assert.match(text, /robust_storage_append_seconds_count\{engine="memory",flush="none"\} 2/);
    assert.match(text, /robust_storage_shard_bytes\{shard="a-0",engine="memory"\} 300/);
    assert.match(text, /robust_storage_shard_bytes\{shard="b-0",engine="memory"\} 500/);
    await e.close();
  });
});

describe('RecordRing', () => {
  it('grows, wraps and shrinks back while keeping order and byte totals', () => {
    const ring = new RecordRing();
    const r = (i: number) => ({ offset: BigInt(i), timestamp: i, key: null, value: null, headers: [] });
    let head = 0;
    let next = 0;
    for (let i = 0; i < 1000; i++) ring.push(r(next++), 1);
    assert.ok(ring.capacity >= 1000);
    head += ring.dropHead(990);
    assert.ok(ring.capacity <= 64, `shrunk to ${ring.capacity}`);
    for (let i = 0; i < 30; i++) ring.push(r(next++), 2);
    assert.equal(ring.length, next - head);
    assert.equal(ring.bytes, 10 + 60);
    for (let i = 0; i < ring.length; i++) assert.equal(ring.at(i)!.offset, BigInt(head + i));
    assert.equal(ring.at(ring.length), undefined);
    assert.equal(ring.dropHead(1000), 40);
    assert.equal(ring.bytes, 0);
  });
});
