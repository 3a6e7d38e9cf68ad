/**
 * The journal operator surface against one real node (meta, broker and one
 * journal: E = Qw = Qa = 1): robust-ctl journal segments | under-replicated |
 * rereplication, the admin routes behind them, the cluster view's
 * under_replicated_segments and the robust_journal_* health metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RereplicationView, TopicSegmentsView } from '../../src/admin/journal-routes.js';
import { BIN, ServerProcess, removeDir, run, writeTestConfig } from '../support/server.js';

describe('robust-ctl journal', () => {
  let server: ServerProcess;
  let admin: string;
  let dir: string;

  const ctl = (...args: string[]) => run(BIN('robust-ctl'), ['--server', admin, ...args]);
  const get = async (path: string): Promise<{ status: number; body: unknown; text: string }> => {
    const res = await fetch(`http://${admin}${path}`);
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      // metrics: plain text
    }
    return { status: res.status, body, text };
  };

  before(async () => {
    const cfg = await writeTestConfig();
    dir = cfg.dir;
    admin = `127.0.0.1:${cfg.ports.http}`;
    server = new ServerProcess(['start', cfg.file], {
      env: { ROBUST_JOURNAL_ENSEMBLE_SIZE: '1', ROBUST_JOURNAL_WRITE_QUORUM: '1', ROBUST_JOURNAL_ACK_QUORUM: '1', ROBUST_JOURNAL_REREPLICATE_BYTES_PER_SEC: '1048576' },
    });
    await server.waitReady(cfg.ports.http);
    const created = await ctl('topic', 'create', 'jt', '--shards', '2', '--engine', 'journal');
    assert.equal(created.code, 0, created.stderr);
    const p0 = await ctl('topic', 'produce', 'jt', 'a', 'b', 'c', '--shard', '0');
    assert.equal(p0.code, 0, p0.stderr);
    const p1 = await ctl('topic', 'produce', 'jt', 'x', '--shard', '1');
    assert.equal(p1.code, 0, p1.stderr);
    const mem = await ctl('topic', 'create', 'mt', '--engine', 'memory');
    assert.equal(mem.code, 0, mem.stderr);
  });

  after(async () => {
    await server?.kill();
    if (dir) removeDir(dir);
  });

  it('journal segments --output json: per shard its segments, ensemble, quorums and each replica end and lac', async () => {
    const res = await ctl('--output', 'json', 'journal', 'segments', 'jt');
    assert.equal(res.code, 0, res.stderr);
    const v = JSON.parse(res.stdout) as TopicSegmentsView;
    assert.equal(v.topic, 'jt');
    assert.equal(v.engine, 'journal');
    assert.equal(v.under_replicated_segments, 0);
    assert.deepEqual(v.shards.map((s) => [s.shard, s.leader, s.segments.length]), [
      ['jt-0', 1, 1],
      ['jt-1', 1, 1],
    ]);
    const s0 = v.shards[0]!.segments[0]!;
    assert.deepEqual([s0.segment, s0.state, s0.ensemble, s0.write_quorum, s0.ack_quorum, s0.start_offset, s0.last_entry, s0.under_replicated], [0, 'open', [1], 1, 1, 0, null, false]);
    assert.equal(s0.epoch >= 1, true);
    assert.deepEqual(s0.replicas.map((r) => [r.node, r.state, r.reachable, r.end, r.missing]), [[1, 'alive', true, 3, false]]);
    assert.ok(s0.replicas[0]!.lac! >= 1 && s0.replicas[0]!.lac! <= 2, `lac ${s0.replicas[0]!.lac}`);
    assert.deepEqual(s0.problems, []);
    const s1 = v.shards[1]!.segments[0]!;
    assert.equal(s1.replicas[0]!.end, 1);

    // The same view under the topic.
    const byTopic = await get('/api/v1/topics/jt/segments');
    assert.equal(byTopic.status, 200);
    assert.deepEqual((byTopic.body as TopicSegmentsView).shards.map((s) => s.segments.map((g) => g.ensemble)), v.shards.map((s) => s.segments.map((g) => g.ensemble)));
  });

  it('journal segments as a table, and for a topic on another engine', async () => {
    const res = await ctl('journal', 'segments', 'jt');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^topic jt \(engine journal\): 2 segments, 0 under-replicated$/m);
    assert.match(res.stdout, /^SHARD\s+SEGMENT\s+STATE\s+START\s+END\s+LAST_ENTRY\s+EPOCH\s+E\/QW\/QA\s+REPLICAS\(END\/LAC\)\s+UNDER_REPLICATED$/m);
    assert.match(res.stdout, /^jt-0\s+0\s+open\s+0\s+3\s+-\s+\d+\s+1\/1\/1\s+1=3\/\d+\s+no$/m);
    assert.match(res.stdout, /^jt-1\s+0\s+open\s+0\s+1\s+-\s+\d+\s+1\/1\/1\s+1=1\/\d+\s+no$/m);
    const mem = await ctl('journal', 'segments', 'mt');
    assert.equal(mem.code, 0, mem.stderr);
    assert.match(mem.stdout, /not stored on the journal engine/);
  });

  it('refuses an unknown topic and a request without one', async () => {
    const res = await ctl('journal', 'segments', 'nope');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /topic "nope" does not exist/);
    const bare = await get('/api/v1/journal/segments');
    assert.equal(bare.status, 400);
    const usage = await ctl('journal', 'segments');
    assert.equal(usage.code, 2);
  });

  it('under-replicated segments: none here, in the cluster view and its table', async () => {
    const cluster = await get('/api/v1/cluster');
    assert.equal((cluster.body as { under_replicated_segments: number }).under_replicated_segments, 0);
    const status = await ctl('cluster', 'status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^under_replicated_segments\s+0$/m);
    const list = await ctl('journal', 'under-replicated');
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, 'no under-replicated journal segment\n');
    const json = await ctl('--output', 'json', 'journal', 'under-replicated');
    assert.deepEqual(JSON.parse(json.stdout), { count: 0, segments: [] });
  });

  it('journal rereplication: the only broker is on duty at the configured rate', async () => {
    const res = await ctl('--output', 'json', 'journal', 'rereplication');
    assert.equal(res.code, 0, res.stderr);
    const v = JSON.parse(res.stdout) as RereplicationView;
    assert.deepEqual([v.node_id, v.running, v.active, v.bytes_per_sec, v.copying, v.waiting, v.replaced_segments], [1, true, true, 1048576, null, [], 0]);
    const table = await ctl('journal', 'rereplication');
    assert.match(table.stdout, /^on_duty\s+true$/m);
    assert.match(table.stdout, /^rate_bytes_per_sec\s+1048576$/m);
  });

  it('metrics: under-replicated count, re-replication counters, and the lag of each replica of the open segments this node writes', async () => {
    const m = await get('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /^robust_journal_under_replicated_segments 0$/m);
    assert.match(m.text, /^robust_journal_rereplicated_bytes_total 0$/m);
    assert.match(m.text, /^robust_journal_rereplicated_segments_total 0$/m);
    assert.match(m.text, /^robust_journal_replica_lag_entries\{shard="jt-0",segment="0",node="1"\} 0$/m);
    assert.match(m.text, /^robust_journal_replica_lag_entries\{shard="jt-1",segment="0",node="1"\} 0$/m);
  });
});
