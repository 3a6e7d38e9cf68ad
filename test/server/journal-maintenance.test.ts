/**
 * The operator's view of journal segments (what meta says plus what each
 * replica answers to Info) and the replica lag metric's numbers, against real
 * journal servers in process: short, unreachable, dead and missing replicas are
 * flagged; an empty sealed segment without replicas is not.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ReplicaStore } from '../../src/journal/replica-store.js';
import { JournalServer } from '../../src/journal/server.js';
import { describeSegments, replicaLag } from '../../src/server/journal-maintenance.js';
import { JournalClientPool } from '../../src/storage/journal/client.js';
import { Op } from '../../src/storage/journal/protocol.js';
import { underReplicatedSegments } from '../../src/storage/journal/rereplicator.js';
import type { AppendRecord } from '../../src/storage/types.js';
import { makeRoot } from '../storage/file/support.js';
import { TestMeta } from '../storage/journal/test-meta.js';

const { newDir, cleanup } = makeRoot('robust-journal-view-');
after(cleanup);

const quiet = { info() {}, warn() {}, debug() {}, error() {} };

async function startJournal(meta: TestMeta, id: number): Promise<{ server: JournalServer; store: ReplicaStore; stop(): Promise<void> }> {
  const store = await ReplicaStore.open({ dir: newDir(), log: quiet, flushIntervalMs: 50, segmentBytes: 8 * 1024 * 1024 });
  const server = new JournalServer({ store, host: '127.0.0.1', port: 0, log: quiet });
  await server.start();
  meta.setJournal(id, server.address);
  return {
    server,
    store,
    stop: async () => {
      await server.stop();
      await store.close();
    },
  };
}

const rec = (i: number): AppendRecord => ({ timestamp: 1_700_000_000_000 + i, key: null, value: Buffer.from(`v${i}`), headers: [] });

describe('journal segments view', () => {
  it('flags short, unreachable, dead and unregistered members; reports ends, lacs and the lag of open segments', async () => {
    const meta = new TestMeta();
    const js = new Map<number, Awaited<ReturnType<typeof startJournal>>>();
    for (const id of [101, 102, 103]) js.set(id, await startJournal(meta, id));
    const pool = new JournalClientPool(3000);
    const port = meta.port(1);
    const add = async (node: number, segment: number, from: number, to: number, lac: number) => {
      const units = Array.from({ length: to - from }, (_, i) => ({ kind: 'record' as const, record: rec(from + i) }));
      await pool.get(node, meta.nodes.get(node)!.addr).call({ op: Op.Add, shard: 'v-0', segment, epoch: 1, sync: false, lac, firstEntry: from, units });
    };
    try {
      // Segment 0: sealed at entry 4; node 103 missed the last two entries.
      await port.createSegment({ shard: 'v-0', segment: 0, ensemble: [101, 102, 103], writeQuorum: 3, ackQuorum: 2, epoch: 1, startOffset: 0 });
      await add(101, 0, 0, 5, 4);
      await add(102, 0, 0, 5, 4);
      await add(103, 0, 0, 3, 2);
      await port.sealSegment('v-0', 0, 4);
      // Segment 1: open, this node writes it; 103 lags by two entries.
      await port.createSegment({ shard: 'v-0', segment: 1, ensemble: [101, 102, 103], writeQuorum: 3, ackQuorum: 2, epoch: 1, startOffset: 5 });
      await add(101, 1, 0, 4, 2);
      await add(102, 1, 0, 4, 2);
      await add(103, 1, 0, 2, 1);
      meta.setLeader('v-0', 1);

      let [s0, s1] = await describeSegments(port, pool, meta.segments('v-0'));
      assert.deepEqual([s0!.state, s0!.last_entry, s0!.start_offset, s0!.end_offset, s0!.under_replicated], ['sealed', 4, 0, 5, true]);
      assert.deepEqual(s0!.problems, ['node 103 holds 3 of 5 entries']);
      assert.deepEqual(s0!.replicas.map((r) => [r.node, r.state, r.reachable, r.end, r.lac]), [
        [101, 'alive', true, 5, 4],
        [102, 'alive', true, 5, 4],
        [103, 'alive', true, 3, 2],
      ]);
      assert.deepEqual([s1!.state, s1!.start_offset, s1!.end_offset, s1!.under_replicated, s1!.problems], ['open', 5, 8, false, []]);

      // Lag: the writer can acknowledge 4 entries (2nd furthest of 3 replicas, Qa = 2); 103 holds 2.
      const lag = await replicaLag(port, pool);
      assert.deepEqual(lag.map((l) => [l.shard, l.segment, l.node, l.lag]), [
        ['v-0', 1, 101, 0],
        ['v-0', 1, 102, 0],
        ['v-0', 1, 103, 2],
      ]);
      // The writer's own count wins when the engine tells it.
      assert.deepEqual((await replicaLag(port, pool, () => 6)).map((l) => l.lag), [2, 2, 4]);
      assert.deepEqual(await replicaLag(meta.port(2), pool), [], 'only segments this node writes');

      // 102 stops answering (meta still thinks it alive), then meta holds it dead.
      await js.get(102)!.stop();
      [s0, s1] = await describeSegments(port, pool, meta.segments('v-0'));
      assert.deepEqual(s0!.problems, ['node 102 unreachable', 'node 103 holds 3 of 5 entries']);
      assert.deepEqual([s0!.replicas[1]!.reachable, s0!.replicas[1]!.end, typeof s0!.replicas[1]!.error], [false, null, 'string']);
      assert.deepEqual(s1!.problems, ['node 102 unreachable']);
      assert.equal(underReplicatedSegments(meta.segments('v-0'), port.journals()).length, 0, 'meta alone does not know yet');
      meta.setJournal(102, meta.nodes.get(102)!.addr, 'dead');
      [s0] = await describeSegments(port, pool, meta.segments('v-0'));
      assert.deepEqual(s0!.problems, ['node 102 dead', 'node 103 holds 3 of 5 entries']);
      assert.deepEqual(underReplicatedSegments(meta.segments('v-0'), port.journals()).map((u) => [u.segment, u.state, u.missing]), [
        [0, 'sealed', [102]],
        [1, 'open', [102]],
      ]);

      // An empty sealed segment has no replica anywhere: that is not under-replication. A node meta
      // no longer knows is.
      await port.createSegment({ shard: 'e-0', segment: 0, ensemble: [101, 109], writeQuorum: 2, ackQuorum: 1, epoch: 1, startOffset: 0 });
      await port.sealSegment('e-0', 0, -1);
      const [e0] = await describeSegments(port, pool, meta.segments('e-0'));
      assert.deepEqual(e0!.replicas.map((r) => [r.node, r.state, r.missing]), [
        [101, 'alive', true],
        [109, 'unknown', false],
      ]);
      assert.deepEqual(e0!.problems, ['node 109 not registered']);
    } finally {
      pool.closeAll();
      for (const j of js.values()) await j.stop().catch(() => undefined);
    }
  });
});
