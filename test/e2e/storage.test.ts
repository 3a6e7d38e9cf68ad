import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { BIN, ServerProcess, removeDir, run, writeTestConfig } from '../support/server.js';

/** Storage through a real node: topics get shards in their engine; records survive kill -9 (sync flush) on the file engine. */
describe('storage through the admin API and robust-ctl', () => {
  let cfg: Awaited<ReturnType<typeof writeTestConfig>>;
  let server: ServerProcess | undefined;
  after(async () => {
    await server?.kill();
    if (cfg) removeDir(cfg.dir);
  });

  const env: Record<string, string> = { ROBUST_STORAGE_FLUSH: 'sync' };
  const admin = () => `127.0.0.1:${cfg.ports.http}`;
  const ctl = (...args: string[]) => run(BIN('robust-ctl'), ['--server', admin(), ...args]);
  const api = (path: string, init?: RequestInit) => fetch(`http://${admin()}${path}`, init);
  async function startServer(): Promise<void> {
    server = new ServerProcess(['start', cfg.file], { env });
    await server.waitReady(cfg.ports.http);
  }

  it('creates shards in the topic engine and serves produced records', async () => {
    cfg = await writeTestConfig();
    await startServer();
    assert.equal((await ctl('topic', 'create', 'events', '--shards', '2', '--engine', 'file')).code, 0);
    assert.equal((await ctl('topic', 'create', 'fast', '--engine', 'memory')).code, 0);

    const shards = await ctl('topic', 'shards', 'events');
    assert.equal(shards.code, 0, shards.stderr);
    assert.match(shards.stdout, /^events-0\s+file\s+0\s+0\s+0$/m);
    assert.match(shards.stdout, /^events-1\s+file\s+0\s+0\s+0$/m);

    const produced = await ctl('topic', 'produce', 'events', 'alpha', 'beta', 'gamma', '--shard', '1', '--key', 'k1', '--tag', 'TagA');
    assert.equal(produced.code, 0, produced.stderr);
    assert.equal(produced.stdout, 'appended 3 records to events-1 at offset 0\n');
    assert.equal((await ctl('topic', 'produce', 'fast', 'volatile')).code, 0);

    const consumed = JSON.parse((await ctl('-o', 'json', 'topic', 'consume', 'events', '--shard', '1')).stdout) as Array<{ offset: string; key: string; value: string; tag: string }>;
    assert.deepEqual(
      consumed.map((r) => [r.offset, r.key, r.value, r.tag]),
      [
        ['0', 'k1', 'alpha', 'TagA'],
        ['1', 'k1', 'beta', 'TagA'],
        ['2', 'k1', 'gamma', 'TagA'],
      ],
    );
    const info = (await (await api('/api/v1/topics/events/shards')).json()) as { shards: Array<{ shard: string; startOffset: string; endOffset: string; bytes: number }> };
    assert.equal(info.shards[1]!.endOffset, '3');
    assert.ok(info.shards[1]!.bytes > 0);
  });

  it('answers bad requests with clear errors', async () => {
    const noShard = await api('/api/v1/topics/events/shards/7/records', { method: 'POST', body: JSON.stringify({ records: [{ value: 'x' }] }) });
    assert.equal(noShard.status, 404);
    const outOfRange = await api('/api/v1/topics/events/shards/1/records?from=99');
    assert.equal(outOfRange.status, 416);
    assert.equal(((await outOfRange.json()) as { error: { code: string } }).error.code, 'offset_out_of_range');
    const badBody = await api('/api/v1/topics/events/shards/0/records', { method: 'POST', body: JSON.stringify({ records: [{ value: 5 }] }) });
    assert.equal(badBody.status, 400);
    const noTopic = await ctl('topic', 'consume', 'nope');
    assert.equal(noTopic.code, 1);
    assert.match(noTopic.stderr, /topic "nope" does not exist/);
  });

  it('after kill -9, acknowledged file-engine records are intact; memory-engine shards come back empty', async () => {
    server!.child.kill('SIGKILL');
    await server!.waitExit();
    await startServer();
    const consumed = JSON.parse((await ctl('-o', 'json', 'topic', 'consume', 'events', '--shard', '1')).stdout) as Array<{ value: string }>;
    assert.deepEqual(
      consumed.map((r) => r.value),
      ['alpha', 'beta', 'gamma'],
    );
    const fast = (await (await api('/api/v1/topics/fast/shards')).json()) as { shards: Array<{ engine: string; endOffset: string }> };
    assert.deepEqual(
      fast.shards.map((s) => [s.engine, s.endOffset]),
      [['memory', '0']],
    );
    // Appends continue at the next offset.
    assert.equal((await ctl('topic', 'produce', 'events', 'delta', '--shard', '1')).stdout, 'appended 1 record to events-1 at offset 3\n');
  });

  it('per-topic flush override: a sync topic on an async node acknowledges after fdatasync', async () => {
    const syncAppends = async () => {
      const text = await (await api('/metrics')).text();
      const m = /robust_storage_append_seconds_count\{engine="file",flush="sync"\} (\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    };
    // This node runs with flush=sync (env); make it async and give one topic sync back.
    server!.child.kill('SIGTERM');
    assert.equal((await server!.waitExit()).code, 0);
    env.ROBUST_STORAGE_FLUSH = 'async';
    await startServer();
    assert.equal((await ctl('topic', 'create', 'durable', '--engine', 'file', '--config', 'flush=sync')).code, 0);
    assert.equal((await ctl('topic', 'create', 'relaxed', '--engine', 'file')).code, 0);
    const before = await syncAppends();
    assert.equal((await ctl('topic', 'produce', 'relaxed', 'a')).code, 0);
    assert.equal(await syncAppends(), before, 'an async topic does not wait for fdatasync');
    assert.equal((await ctl('topic', 'produce', 'durable', 'b')).code, 0);
    assert.equal(await syncAppends(), before + 1, 'the sync topic does');

    const changed = await ctl('topic', 'config', 'relaxed', 'flush=sync', 'owner=team-a');
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /"flush":"sync"/);
    assert.equal((await ctl('topic', 'produce', 'relaxed', 'c')).code, 0);
    assert.equal(await syncAppends(), before + 2, 'a config change reaches the shard');
    const removed = JSON.parse((await ctl('-o', 'json', 'topic', 'config', 'relaxed', 'owner=')).stdout) as { config: Record<string, string> };
    assert.deepEqual(removed.config, { flush: 'sync' });
    const bad = await ctl('topic', 'config', 'relaxed', 'flush=sometimes');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /"flush" must be "sync" or "async"/);
  });

  it('deleting a topic removes its shards, also across a restart', async () => {
    assert.equal((await ctl('topic', 'delete', 'events')).code, 0);
    assert.equal((await api('/api/v1/topics/events/shards')).status, 404);
    server!.child.kill('SIGTERM');
    assert.equal((await server!.waitExit()).code, 0);
    await startServer();
    assert.equal((await ctl('topic', 'create', 'events', '--shards', '1', '--engine', 'file')).code, 0);
    const info = (await (await api('/api/v1/topics/events/shards')).json()) as { shards: Array<{ endOffset: string }> };
    assert.equal(info.shards[0]!.endOffset, '0', 'a re-created topic starts empty');
  });
});
