import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, after } from 'node:test';
import type { ClusterView } from '../../src/common/node-info.js';
import { BIN, REPO_ROOT, ServerProcess, removeDir, run, tempDir } from '../support/server.js';

/**
 * The shipped three-node example (config/cluster/node{1,2,3}.toml) as a user
 * runs it: three processes on one machine, on the ports the files name.
 * Only data_dir is moved to a temp dir so the test leaves nothing behind.
 */
describe('three-node cluster from config/cluster', () => {
  const dir = tempDir('robust-cluster-');
  const nodes: ServerProcess[] = [];
  after(async () => {
    for (const n of nodes) await n.kill();
    removeDir(dir);
  });

  const start = (id: number) =>
    new ServerProcess(['start', join(REPO_ROOT, 'config', 'cluster', `node${id}.toml`)], { env: { ROBUST_DATA_DIR: join(dir, `node${id}`) } });

  it('each node sees the others over inner gRPC; a stopped node shows as unreachable', async () => {
    for (const id of [1, 2, 3]) nodes.push(start(id));
    await Promise.all(nodes.map((n, i) => n.waitReady(58080 + 10 * (i + 1))));

    const status = async (adminPort: number) => {
      const res = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${adminPort}`, '--output', 'json', 'cluster', 'status']);
      assert.equal(res.code, 0, res.stderr);
      return JSON.parse(res.stdout) as ClusterView;
    };

    const fromNode2 = await status(58100);
    assert.equal(fromNode2.cluster_name, 'robustmq-cluster');
    assert.deepEqual(
      fromNode2.nodes.map((n) => [n.node_id, n.grpc_address, n.state, n.ready]),
      [
        [1, '127.0.0.1:1238', 'up', true],
        [2, '127.0.0.1:1248', 'self', true],
        [3, '127.0.0.1:1258', 'up', true],
      ],
    );

    nodes[2]!.child.kill('SIGTERM');
    assert.equal((await nodes[2]!.waitExit()).code, 0);
    const afterStop = await status(58090);
    assert.deepEqual(
      afterStop.nodes.map((n) => [n.node_id, n.state]),
      [
        [1, 'self'],
        [2, 'up'],
        [3, 'unreachable'],
      ],
    );
    assert.match(afterStop.nodes[2]!.error ?? '', /127\.0\.0\.1:1258/);

    for (const n of nodes.slice(0, 2)) n.child.kill('SIGTERM');
    for (const n of nodes.slice(0, 2)) assert.equal((await n.waitExit()).code, 0);
  });
});
