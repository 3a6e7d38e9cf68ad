import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, after } from 'node:test';
import type { ClusterStatusView } from '../../src/meta/service.js';
import { kafkaClient } from '../support/kafka.js';
import { BIN, REPO_ROOT, removeDir, run, startFixedPortNode, tempDir, until, type ServerProcess } from '../support/server.js';

/**
 * The shipped three-node example (config/cluster/node{1,2,3}.toml) as a user
 * runs it: three processes on one machine, on the ports the files name.
 * Only data_dir is moved to a temp dir so the test leaves nothing behind.
 */
const ADMIN = (id: number) => 58080 + 10 * id;
const dir = tempDir('robust-cluster-');
const running = new Map<number, ServerProcess>();
after(async () => {
  for (const n of running.values()) await n.kill();
  removeDir(dir);
});

/** Starts node `id` from its shipped config and waits until it is ready. */
async function startReady(id: number, file = join(REPO_ROOT, 'config', 'cluster', `node${id}.toml`)): Promise<void> {
  // Small snapshots, so a node that was down catches up from a snapshot sent over the wire.
  running.set(id, await startFixedPortNode(['start', file], { env: { ROBUST_DATA_DIR: join(dir, `node${id}`), ROBUST_META_SNAPSHOT_ENTRIES: '16' } }, ADMIN(id)));
}

async function status(id: number): Promise<ClusterStatusView> {
  const res = await fetch(`http://127.0.0.1:${ADMIN(id)}/api/v1/cluster`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as ClusterStatusView;
}

async function createTopic(viaNode: number, name: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${ADMIN(viaNode)}/api/v1/topics`, { method: 'POST', body: JSON.stringify({ name, shards: 2 }), signal: AbortSignal.timeout(15_000) });
  assert.equal(res.status, 201, `create ${name} via node ${viaNode}: ${await res.text()}`);
}

/** Topics users created (the brokers' internal `__mqtt.*` topics left out). */
async function topicNames(id: number): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${ADMIN(id)}/api/v1/topics`);
  return ((await res.json()) as { topics: Array<{ name: string }> }).topics
    .map((t) => t.name)
    .filter((n) => !n.startsWith('__'))
    .sort();
}

async function stopAll(): Promise<void> {
  for (const p of running.values()) p.child.kill('SIGTERM');
  for (const [id, p] of running) assert.equal((await p.waitExit()).code, 0, `node ${id} stopped cleanly`);
  running.clear();
}

describe('three-node meta cluster from config/cluster', () => {
  const written: string[] = [];

  it('elects one leader, replicates writes made through any node, and registers every node', async () => {
    await Promise.all([1, 2, 3].map((id) => startReady(id)));

    const view = await until('a leader known to all', async () => {
      const views = await Promise.all([1, 2, 3].map(status));
      const leaders = new Set(views.map((v) => v.leader_id));
      return leaders.size === 1 && views[0]!.leader_id !== 0 ? views[1] : undefined;
    }, 10_000);
    assert.equal(view.cluster_name, 'robustmq-cluster');
    assert.deepEqual(view.members.map((m) => m.node_id).sort(), [1, 2, 3]);
    assert.equal(view.members.filter((m) => m.role === 'leader').length, 1);
    await until('all three nodes registered and alive', async () => {
      const v = await status(1);
      return v.nodes.length === 3 && v.nodes.every((n) => n.state === 'alive') ? v : undefined;
    }, 10_000);

    for (const [i, via] of [1, 2, 3, 1, 2, 3].entries()) {
      const name = `before-kill-${i}`;
      await createTopic(via, name);
      written.push(name);
    }
    // Reads are linearizable: each node shows every acknowledged write at once, no polling.
    for (const id of [1, 2, 3]) assert.deepEqual(await topicNames(id), [...written].sort(), `node ${id} sees every topic`);
    await createTopic(1, 'read-your-writes');
    written.push('read-your-writes');
    assert.ok((await topicNames(3)).includes('read-your-writes'), 'a write acknowledged by node 1 is visible on node 3 right away');
  });

  it('kill -9 of the leader: a new leader within 3 s, no committed write lost, writes resume', async () => {
    const leader = (await status(1)).leader_id;
    const survivors = [1, 2, 3].filter((id) => id !== leader);
    const killedAt = Date.now();
    running.get(leader)!.child.kill('SIGKILL');
    await running.get(leader)!.waitExit();
    running.delete(leader);

    const newLeader = await until('a new leader', async () => {
      const v = await status(survivors[0]!);
      return v.leader_id !== 0 && v.leader_id !== leader ? v.leader_id : undefined;
    }, 10_000);
    const electedMs = Date.now() - killedAt;
    assert.ok(electedMs < 3_000, `new leader ${newLeader} took ${electedMs} ms`);
    assert.ok(survivors.includes(newLeader));

    for (const id of survivors) assert.deepEqual(await topicNames(id), [...written].sort(), `node ${id} kept every committed write`);
    for (const via of survivors) {
      const name = `after-kill-${via}`;
      await createTopic(via, name);
      written.push(name);
    }
    // Enough writes that the survivors compact their logs past what the dead node has.
    const burst = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
    await Promise.all(burst.map((name, i) => createTopic(survivors[i % 2]!, name)));
    written.push(...burst);

    // The new leader notices the dead node's silence.
    await until('the killed node marked suspect', async () => {
      const v = await status(newLeader);
      const n = v.nodes.find((x) => x.node_id === leader);
      return n && n.state !== 'alive' ? n : undefined;
    }, 8_000);

    // The killed node comes back, catches up, and is alive again.
    await startReady(leader);
    await until(`node ${leader} caught up`, async () => ((await topicNames(leader)).join() === [...written].sort().join() ? true : undefined), 10_000);
    assert.match(running.get(leader)!.stdout, /installed a snapshot from the leader at index \d+/, `node ${leader} caught up from a snapshot sent by the leader`);
    assert.ok(readdirSync(join(dir, `node${leader}`, 'meta')).some((f) => f.endsWith('.snap')), 'and persisted it');
    await until('the restarted node alive again', async () => {
      const n = (await status(newLeader)).nodes.find((x) => x.node_id === leader);
      return n?.state === 'alive' ? n : undefined;
    }, 8_000);
  });

  it('restart of all three nodes keeps the state', async () => {
    await stopAll();
    await Promise.all([1, 2, 3].map((id) => startReady(id)));
    for (const id of [1, 2, 3]) {
      await until(`node ${id} state after restart`, async () => ((await topicNames(id)).join() === [...written].sort().join() ? true : undefined), 10_000);
    }
  });

  it('Kafka: every broker in Metadata, partition leaders spread, a dead broker\'s partitions move to live ones', async () => {
    const KAFKA = (id: number) => `127.0.0.1:${9092 + 10 * id}`;
    const admin = kafkaClient(KAFKA(1)).admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: 'kafka-spread', numPartitions: 6 }], waitForLeaders: true }), true);
    written.push('kafka-spread');
    const leaders = async (via: number): Promise<number[]> => {
      const a = kafkaClient(KAFKA(via)).admin();
      await a.connect();
      try {
        const m = await a.fetchTopicMetadata({ topics: ['kafka-spread'] });
        return m.topics[0]!.partitions.sort((x, y) => x.partitionId - y.partitionId).map((p) => p.leader);
      } finally {
        await a.disconnect();
      }
    };
    const before = await leaders(1);
    assert.equal(before.length, 6);
    assert.ok(before.every((l) => [1, 2, 3].includes(l)), `leaders ${before.join(',')}`);
    assert.ok(new Set(before).size >= 2, `leaders spread over the brokers: ${before.join(',')}`);
    for (const via of [2, 3]) assert.deepEqual(await leaders(via), before, `node ${via} gives the same leaders`);
    const cluster = await admin.describeCluster();
    assert.deepEqual(cluster.brokers.map((b) => `${b.host}:${b.port}`).sort(), [KAFKA(1), KAFKA(2), KAFKA(3)]);

    // kafkajs sends each partition's records to its leader, on whichever node that is.
    const producer = kafkaClient(KAFKA(1)).producer();
    await producer.connect();
    await producer.send({ topic: 'kafka-spread', acks: -1, messages: Array.from({ length: 60 }, (_, i) => ({ partition: i % 6, value: `m${i}` })) });
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets('kafka-spread');
    assert.deepEqual(offsets.map((o) => Number(o.high)), [10, 10, 10, 10, 10, 10]);

    // A broker leading some partitions dies: they get a live leader.
    const meta = (await status(1)).leader_id;
    const victim = [...new Set(before)].find((id) => id !== meta) ?? before[0]!;
    const survivor = [1, 2, 3].find((id) => id !== victim)!;
    running.get(victim)!.child.kill('SIGKILL');
    await running.get(victim)!.waitExit();
    running.delete(victim);
    await admin.disconnect();
    const after = await until('partitions of the dead broker moved', async () => {
      const l = await leaders(survivor);
      return l.every((x) => x !== victim && [1, 2, 3].includes(x)) ? l : undefined;
    }, 25_000);
    for (let p = 0; p < 6; p++) if (before[p] !== victim) assert.equal(after[p], before[p], `partition ${p}, led by a live broker, kept its leader`);
    await startReady(victim);
  });

  it('leader transfer, and adding and removing a meta member at run time', async () => {
    const before = await status(1);
    const target = [1, 2, 3].find((id) => id !== before.leader_id)!;
    const moved = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${ADMIN(1)}`, 'cluster', 'transfer-leader', String(target)]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stdout, `meta leader is now node ${target}\n`);
    assert.equal((await status(2)).leader_id, target);

    // Node 4 joins: same cluster, its own ports, [meta] join = true.
    const file = join(dir, 'node4.toml');
    writeFileSync(
      file,
      `cluster_name = "robustmq-cluster"
node_id = 4
roles = ["meta"]
bind_host = "127.0.0.1"
grpc_port = 1268
http_port = 58120
meta_addrs = { 1 = "127.0.0.1:1238", 2 = "127.0.0.1:1248", 3 = "127.0.0.1:1258", 4 = "127.0.0.1:1268" }
data_dir = "${join(dir, 'node4')}"
[meta]
join = true
`,
    );
    const adder = run(BIN('robust-ctl'), ['--server', `127.0.0.1:${ADMIN(2)}`, 'cluster', 'add-member', '4', '127.0.0.1:1268'], { timeoutMs: 60_000 });
    const node4 = startReady(4, file);
    const added = await adder;
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, 'node 4 is now a voter\n');
    await node4;
    const withFour = await status(3);
    assert.deepEqual(withFour.members.map((m) => [m.node_id, m.role === 'learner' ? 'learner' : 'voter']).sort(), [
      [1, 'voter'],
      [2, 'voter'],
      [3, 'voter'],
      [4, 'voter'],
    ]);
    await until('node 4 has the metadata', async () => ((await topicNames(4)).join() === [...written].sort().join() ? true : undefined), 10_000);

    const removed = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${ADMIN(1)}`, 'cluster', 'remove-member', '4']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual((await status(1)).members.map((m) => m.node_id).sort(), [1, 2, 3]);
    // The three remaining members still commit writes.
    await createTopic(3, 'after-remove');
    written.push('after-remove');
    await stopAll();
  });
});
