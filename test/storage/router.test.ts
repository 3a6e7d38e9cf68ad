import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineUnavailableError, ShardNotFoundError, StorageClosedError } from '../../src/storage/errors.js';
import { MemoryEngine } from '../../src/storage/memory/engine.js';
import { StorageRouter } from '../../src/storage/router.js';
import type { AppendRecord } from '../../src/storage/types.js';

const rec = (value: string): AppendRecord => ({ timestamp: 1, key: null, value: Buffer.from(value), headers: [] });
const engine = () => new MemoryEngine({ maxBytesPerShard: 1 << 20, retentionMs: -1, retentionBytes: -1 });

describe('StorageRouter', () => {
  it('sends each shard to the engine its topic names, and keeps engines apart', async () => {
    const a = engine();
    const b = engine();
    const router = new StorageRouter({ memory: a, file: b });
    await router.createShard({ shard: 't1-0', topic: 't1', engine: 'memory' });
    await router.createShard({ shard: 't2-0', topic: 't2', engine: 'file' });
    await router.append('t1-0', [rec('x'), rec('y')]);
    await router.append('t2-0', [rec('z')]);
    assert.deepEqual(a.listShards(), ['t1-0']);
    assert.deepEqual(b.listShards(), ['t2-0']);
    assert.equal((await router.shardInfo('t1-0')).endOffset, 2n);
    assert.equal((await router.read('t2-0', 0n, { maxRecords: 10, maxBytes: 1 << 20 }))[0]!.value!.toString(), 'z');
    assert.deepEqual(router.listShards(), ['t1-0', 't2-0']);
    await router.close();
  });

  it('a shard re-created with another engine leaves the old engine', async () => {
    const a = engine();
    const b = engine();
    const router = new StorageRouter({ memory: a, file: b });
    await router.createShard({ shard: 't-0', topic: 't', engine: 'memory' });
    await router.append('t-0', [rec('old')]);
    await router.createShard({ shard: 't-0', topic: 't', engine: 'file' });
    assert.deepEqual(a.listShards(), []);
    assert.equal((await router.shardInfo('t-0')).endOffset, 0n);
    await router.close();
  });

  it('knows the shards persistent engines recovered', async () => {
    const b = engine();
    await b.createShard({ shard: 'kept-0', topic: 'kept', engine: 'file' });
    const router = new StorageRouter({ file: b });
    assert.ok(router.hasShard('kept-0'));
    await router.close();
  });

  it('typed errors: unknown shard, unavailable engine, closed', async () => {
    const router = new StorageRouter({ memory: engine() });
    assert.throws(() => router.read('nope-0', 0n, { maxRecords: 1, maxBytes: 1 }), ShardNotFoundError);
    await assert.rejects(router.createShard({ shard: 'j-0', topic: 'j', engine: 'journal' }), EngineUnavailableError);
    await router.deleteShard('nope-0'); // unknown: a no-op
    await router.close();
    await assert.rejects(router.createShard({ shard: 'm-0', topic: 'm', engine: 'memory' }), StorageClosedError);
  });
});
