import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, after } from 'node:test';
import type { ClusterStatusView } from '../../src/meta/service.js';
import { REPO_ROOT, removeDir, startFixedPortNode, tempDir, type ServerProcess } from '../support/server.js';

/** config/separated: 3 meta-only nodes, 2 journal-only nodes, 1 broker-only node (RocketMQ "cluster mode"). */
const NODES: Array<[string, number]> = [
  ['meta1', 58180],
  ['meta2', 58190],
  ['meta3', 58200],
  ['journal1', 58380],
  ['journal2', 58390],
  ['broker1', 58280],
];

describe('separated roles from config/separated', () => {
  const dir = tempDir('robust-separated-');
  const procs: ServerProcess[] = [];
  after(async () => {
    for (const p of procs) await p.kill();
    removeDir(dir);
  });

  it('a broker-only node reaches the meta group for status and writes; every node registers', async () => {
    const started = await Promise.allSettled(
      NODES.map(([name, http]) => startFixedPortNode(['start', join(REPO_ROOT, 'config', 'separated', `${name}.toml`)], { env: { ROBUST_DATA_DIR: join(dir, name) } }, http)),
    );
    for (const s of started) if (s.status === 'fulfilled') procs.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;

    const deadline = Date.now() + 10_000;
    let view: ClusterStatusView;
    for (;;) {
      view = (await (await fetch('http://127.0.0.1:58280/api/v1/cluster')).json()) as ClusterStatusView;
      if (view.nodes.length === 6 && view.nodes.every((n) => n.state === 'alive')) break;
      assert.ok(Date.now() < deadline, `nodes not all registered: ${JSON.stringify(view.nodes)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(view.answered_by, view.leader_id, "the broker gets the leader's view");
    assert.deepEqual(view.members.map((m) => m.node_id).sort(), [1, 2, 3]);
    assert.deepEqual(
      view.nodes.map((n) => [n.node_id, n.roles.join(',')]),
      [
        [1, 'meta'],
        [2, 'meta'],
        [3, 'meta'],
        [11, 'broker'],
        [21, 'journal'],
        [22, 'journal'],
      ],
    );
    const created = await fetch('http://127.0.0.1:58280/api/v1/topics', { method: 'POST', body: JSON.stringify({ name: 'via-broker', shards: 4 }) });
    assert.equal(created.status, 201);
    const onMeta = (await (await fetch('http://127.0.0.1:58190/api/v1/topics/via-broker')).json()) as { shards: number; engine: string };
    assert.equal(onMeta.shards, 4);
    assert.equal(onMeta.engine, 'journal', "the broker's [storage] default_engine");

    for (const p of [...procs].reverse()) p.child.kill('SIGTERM');
    for (const p of procs) assert.equal((await p.waitExit()).code, 0);
  });
});
