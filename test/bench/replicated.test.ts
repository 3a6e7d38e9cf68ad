/** The pure parts of bench:compare's replicated (journal) workloads: no node is started. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { loadConfig } from '../../src/common/config/index.js';
import { renderSvg, replaceSection, SECTION_BEGIN, SECTION_END, type CompareReport } from '../../bench/compare/report.js';
import { renderReplicatedSection, replicatedChartSpecs, REPLICATED_BEGIN, REPLICATED_END, type ReplicatedContext } from '../../bench/compare/replicated-report.js';
import {
  ackLatencyP50,
  clusterNodeConfig,
  expandWorkloadAliases,
  failoverFrom,
  failoverStats,
  FAILOVER_ID,
  pickVictim,
  r1Args,
  r2Args,
  R1_ID,
  R2_ID,
  R2_LEAD_S,
  REPLICATED_IDS,
  replicatedWorkloads,
  replicationCosts,
  summariseReplicated,
  type FailoverReport,
  type NodePorts,
  type ReplicatedRecord,
  type ReplicatedReport,
} from '../../bench/compare/replicated.js';
import { renderStackedSvg, renderChartsSvg } from '../../bench/compare/svg.js';
import type { LoadgenResult } from '../../bench/compare/types.js';
import { parseWorkloadList, workloads } from '../../bench/compare/workloads.js';
import { parseXml } from './xml.js';

// ------------------------------------------------------------------ helpers

function result(over: Partial<LoadgenResult> = {}): LoadgenResult {
  return {
    workload: 'kafka-produce',
    qos: 0,
    clients: 1,
    publishers: 1,
    subscribers: 0,
    size: 1024,
    duration_s: 10,
    sent: 1_000_000,
    received: 1_000_000,
    lost: 0,
    duplicates: 0,
    sent_per_s: 100_000,
    received_per_s: 100_000,
    latency_ms: { p50: 10, p95: 20, p99: 40, p999: 50, max: 60, mean: 12 },
    ack_latency_ms: null,
    connect: null,
    broker: null,
    loadgen: { workers: 1, max_worker_cpu_percent: 20, saturated: false },
    warnings: [],
    ...over,
  };
}

function rec(workload: number, setup: string, roundNo: number, over: Partial<ReplicatedRecord> = {}): ReplicatedRecord {
  return { workload, setup, round: roundNo, ok: true, argv: [['kafka', 'produce']], load: result(), nodes_cpu_s: 2, wall_s: 13, handled: 1_000_000, others_cpu_percent: 3, rss_bytes: 300 * 1048576, ...over };
}

const ports = (base: number): NodePorts => ({ grpc: base, http: base + 1, journal: base + 2, kafka: base + 3, mqtt: base + 4 });
const portMap = new Map<number, NodePorts>([
  [1, ports(41000)],
  [2, ports(42000)],
  [3, ports(43000)],
]);

function failoverReport(): FailoverReport {
  const records = [
    { round: 1, kill: 1, victim: 3, victim_was_meta_leader: true, new_leader: 2, failover_ms: 4256, first_ack_ms: 4254, rejoin_ms: 4100 },
    { round: 1, kill: 2, victim: 2, victim_was_meta_leader: false, new_leader: 3, failover_ms: 4586, first_ack_ms: 0, rejoin_ms: 2000 },
    { round: 1, kill: 3, victim: 3, victim_was_meta_leader: true, new_leader: null, failover_ms: null, first_ack_ms: null, rejoin_ms: 3400, error: 'no write acknowledged within 90 s of the kill' },
  ];
  return { setup: '3/3/2-async', ...failoverStats(records), records, steady_ack_p50_ms: 2.02, writes_acked: 4765, send_failures: {} };
}

function sampleReplicated(): ReplicatedReport {
  const defs = replicatedWorkloads();
  const records = [
    rec(R1_ID, 'single', 1, { load: result({ received_per_s: 250_000 }), nodes_cpu_s: 1, handled: 2_000_000 }),
    rec(R1_ID, '3/3/2-async', 1, { load: result({ received_per_s: 50_000, latency_ms: { p50: 80, p95: 100, p99: 160, p999: 200, max: 210, mean: 85 } }), nodes_cpu_s: 5, handled: 500_000 }),
    rec(R1_ID, '3/3/2-sync', 1, { ok: false, error: 'load generator timed out\ndetails', load: null }),
    rec(R2_ID, 'single', 1, {
      argv: [['mqtt', 'sub'], ['mqtt', 'pub']],
      load: result({ workload: 'sub', size: 100, received_per_s: 150_000, lost: 0 }),
      pub: result({ workload: 'pub', size: 100, sent_per_s: 150_500, ack_latency_ms: { p50: 0.2, p95: 1, p99: 2, p999: 3, max: 4, mean: 0.3 } }),
      handled: 900_000,
    }),
    rec(R2_ID, '3/3/2-async-cross', 1, {
      argv: [['mqtt', 'sub'], ['mqtt', 'pub']],
      load: result({ workload: 'sub', size: 100, received_per_s: 50_000, lost: 12 }),
      pub: result({ workload: 'pub', size: 100, sent_per_s: 50_100, ack_latency_ms: { p50: 0.5, p95: 3, p99: 6, p999: 8, max: 9, mean: 0.7 } }),
      handled: 300_000,
    }),
  ];
  const summaries = summariseReplicated(records, defs);
  return {
    workloads: defs,
    options: { kills: 3, cluster_cpus: '0', suspect_ms: null, dead_ms: null, failover_interval_ms: 2 },
    records,
    summaries,
    costs: replicationCosts(summaries),
    failover: failoverReport(),
    settings: { description: ['three nodes on CPU 0'], cluster_config: 'node_id = 1\n', single_config: 'node_id = 1\nroles = ["meta", "broker"]\n' },
    notes: ['three nodes share one core'],
  };
}

function context(rep: ReplicatedReport): ReplicatedContext {
  return {
    date: '2026-11-23',
    commit: 'abc1234',
    dirty: false,
    command: 'npm run bench:compare -- --workloads replicated',
    options: { duration_s: 10, warmup_s: 2, rounds: 1, quick: false },
    files: { json: 'results/2026-11-23-abc1234.json', svg: 'results/2026-11-23-abc1234.svg' },
    replicated: rep,
  };
}

// ------------------------------------------------------------------ tests

describe('bench:compare replicated — workloads', () => {
  it('defines R1 on the single node and five replication setups, R2 same-node and cross-node, failover on 3/3/2', () => {
    const ws = replicatedWorkloads();
    assert.deepEqual(
      ws.map((w) => [w.id, w.kind, w.size]),
      [
        [9, 'kafka-acks-all', 1024],
        [10, 'mqtt-qos1', 100],
        [11, 'failover', 1024],
      ],
    );
    assert.deepEqual(REPLICATED_IDS, [9, 10, 11]);
    const r1 = ws[0]!;
    assert.deepEqual(
      r1.setups.map((s) => [s.id, s.cluster && [s.cluster.ensemble, s.cluster.writeQuorum, s.cluster.ackQuorum, s.cluster.flush]]),
      [
        ['single', null],
        ['3/3/2-async', [3, 3, 2, 'async']],
        ['2/2/2-async', [2, 2, 2, 'async']],
        ['2/2/1-async', [2, 2, 1, 'async']],
        ['3/2/2-async', [3, 2, 2, 'async']],
        ['3/3/2-sync', [3, 3, 2, 'sync']],
      ],
    );
    const r2 = ws[1]!;
    assert.deepEqual(
      r2.setups.map((s) => [s.id, s.cluster === null, s.pubNode, s.subNode]),
      [
        ['single', true, 1, 1],
        ['3/3/2-async-same', false, 1, 1],
        ['3/3/2-async-cross', false, 1, 2],
      ],
    );
    assert.deepEqual(ws[2]!.setups.map((s) => s.id), ['3/3/2-async']);
    // The side-by-side workloads keep their ids: nothing collides.
    for (const w of workloads(2000)) assert.ok(!REPLICATED_IDS.includes(w.id));
  });

  it('reads the workload names r1, r2, failover and replicated in --workloads', () => {
    const known = [1, 2, 3, 4, 5, 6, 7, 8, ...REPLICATED_IDS];
    assert.deepEqual(parseWorkloadList(expandWorkloadAliases('replicated'), known), [9, 10, 11]);
    assert.deepEqual(parseWorkloadList(expandWorkloadAliases('1,R1,failover'), known), [1, 9, 11]);
    assert.deepEqual(parseWorkloadList(expandWorkloadAliases('r2, 7-8'), known), [7, 8, 10]);
    assert.deepEqual(parseWorkloadList(expandWorkloadAliases('1-11'), known), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert.throws(() => parseWorkloadList(expandWorkloadAliases('r3'), known), /cannot read/);
  });

  it('builds the robust-bench command lines: kafka produce acks=all, and mqtt sub + pub with lined-up windows', () => {
    const val = (argv: string[], k: string) => argv[argv.indexOf(k) + 1];
    const k = r1Args({ host: '127.0.0.1', kafkaPort: 9102, duration_s: 10, warmup_s: 2, size: 1024 });
    assert.deepEqual(k.slice(0, 2), ['kafka', 'produce']);
    assert.equal(val(k, '--brokers'), '127.0.0.1:9102');
    assert.equal(val(k, '--acks'), 'all');
    assert.equal(val(k, '--partitions'), '3');
    assert.equal(val(k, '--record-size'), '1024');
    assert.equal(val(k, '--producers'), '1');
    assert.equal(val(k, '--duration'), '10');
    assert.equal(val(k, '--warmup'), '2');
    assert.equal(val(k, '--output'), 'json');
    const { sub, pub } = r2Args({ host: '127.0.0.1', pubPort: 1001, subPort: 1002, duration_s: 10, warmup_s: 2, size: 100, window: 64 });
    assert.deepEqual([sub.slice(0, 2), pub.slice(0, 2)], [
      ['mqtt', 'sub'],
      ['mqtt', 'pub'],
    ]);
    assert.deepEqual([val(sub, '--port'), val(pub, '--port')], ['1002', '1001']);
    assert.deepEqual([val(sub, '--qos'), val(pub, '--qos')], ['1', '1']);
    assert.equal(val(sub, '--topic'), val(pub, '--topic'));
    // Same warm-up and window, so that the two windows line up.
    assert.equal(val(sub, '--warmup'), String(2 + R2_LEAD_S));
    assert.equal(val(sub, '--warmup'), val(pub, '--warmup'));
    assert.equal(val(sub, '--duration'), val(pub, '--duration'));
    assert.equal(val(pub, '--size'), '100');
    assert.equal(val(pub, '--rate'), '0');
    assert.equal(val(pub, '--window'), '64');
    assert.equal(sub.includes('--size'), false);
  });
});

describe('bench:compare replicated — cluster config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'robust-bench-replicated-test-'));
  it('writes a node of a three-node journal cluster, valid for the server', () => {
    const text = clusterNodeConfig({ nodeId: 2, ports: portMap, dataDir: join(dir, 'n2', 'data'), mode: { ensemble: 2, writeQuorum: 2, ackQuorum: 1, flush: 'sync' }, maxInflight: 32, maxQueued: 1000, kafka: true });
    // smol-toml's tables have no prototype: copy them into plain objects to compare.
    const t = JSON.parse(JSON.stringify(parseToml(text))) as Record<string, Record<string, unknown> & unknown>;
    assert.equal(t['node_id'], 2);
    assert.deepEqual(t['roles'], ['meta', 'broker', 'journal']);
    assert.equal(t['grpc_port'], 42000);
    assert.equal(t['http_port'], 42001);
    assert.deepEqual(t['meta_addrs'], { '1': '127.0.0.1:41000', '2': '127.0.0.1:42000', '3': '127.0.0.1:43000' });
    assert.deepEqual(t['storage'], { default_engine: 'journal', flush: 'sync' });
    assert.deepEqual(t['journal'], { tcp_port: 42002, ensemble_size: 2, write_quorum: 2, ack_quorum: 1 });
    assert.equal((t['kafka'] as Record<string, unknown>)['tcp_port'], 42003);
    assert.equal((t['mqtt'] as Record<string, unknown>)['tcp_port'], 42004);
    assert.equal((t['mqtt'] as Record<string, unknown>)['max_inflight'], 32);
    assert.equal(t['meta'], undefined, 'no [meta] section: the server defaults');
    const file = join(dir, 'n2.toml');
    writeFileSync(file, text);
    const loaded = loadConfig(file, {});
    assert.deepEqual(loaded.warnings, []);
    assert.equal(loaded.config.storage.default_engine, 'journal');
    assert.equal(loaded.config.journal.ack_quorum, 1);
    assert.equal(loaded.config.kafka.tcp_port, 42003);
  });
  it('sets [meta] liveness timeouts when given, and closes the Kafka listener when not wanted', () => {
    const text = clusterNodeConfig({ nodeId: 1, ports: portMap, dataDir: join(dir, 'n1', 'data'), mode: { ensemble: 3, writeQuorum: 3, ackQuorum: 2, flush: 'async' }, maxInflight: 32, maxQueued: 1000, kafka: false, suspectMs: 1500, deadMs: 4000 });
    const t = JSON.parse(JSON.stringify(parseToml(text))) as Record<string, Record<string, unknown>>;
    assert.deepEqual(t['meta'], { node_suspect_ms: 1500, node_dead_ms: 4000 });
    assert.equal(t['kafka']?.['tcp_port'], 0);
    const file = join(dir, 'n1.toml');
    writeFileSync(file, text);
    const loaded = loadConfig(file, {});
    assert.equal(loaded.config.meta.node_suspect_ms, 1500);
    assert.equal(loaded.config.journal.ensemble_size, 3);
    rmSync(dir, { recursive: true, force: true });
  });
  it('refuses a node without ports', () => {
    assert.throws(() => clusterNodeConfig({ nodeId: 4, ports: portMap, dataDir: '/x', mode: { ensemble: 3, writeQuorum: 3, ackQuorum: 2, flush: 'async' }, maxInflight: 32, maxQueued: 1000, kafka: true }), /no ports for node 4/);
  });
});

describe('bench:compare replicated — summaries and the cost of replication', () => {
  it('takes medians over rounds, MB/s from the record size, CPU per record from all nodes, and counts failures', () => {
    const defs = replicatedWorkloads();
    const records = [
      rec(R1_ID, 'single', 1, { load: result({ received_per_s: 200_000 }), nodes_cpu_s: 2, handled: 1_000_000 }),
      rec(R1_ID, 'single', 2, { load: result({ received_per_s: 300_000 }), nodes_cpu_s: 4, handled: 1_000_000 }),
      rec(R1_ID, 'single', 3, { ok: false, error: 'boom', load: null }),
      rec(R1_ID, '2/2/2-async', 1, { load: result({ received_per_s: 50_000, latency_ms: { p50: 30, p95: 60, p99: 120, p999: 150, max: 160, mean: 40 } }), nodes_cpu_s: 6, handled: 500_000 }),
    ];
    const s = summariseReplicated(records, defs);
    assert.deepEqual(
      s.map((x) => [x.setup, x.runs, x.failed_runs]),
      [
        ['single', 2, 1],
        ['2/2/2-async', 1, 0],
      ],
    );
    const single = s[0]!;
    assert.equal(single.per_s, 250_000);
    assert.equal(single.mb_s, (250_000 * 1024) / 1e6);
    assert.equal(single.cpu_us_per_msg, 3); // median of 2 and 4 µs
    assert.deepEqual(single.errors, ['boom']);
    assert.deepEqual(single.latency_ms, { p50: 10, p99: 40 });
    const costs = replicationCosts(s);
    assert.equal(costs.length, 1);
    assert.deepEqual(costs[0], { workload: R1_ID, setup: '2/2/2-async', per_s: 0.2, p50: 3, p99: 3, cpu_us_per_msg: 12 / 3 });
  });
  it('R2: received rate, loss and end-to-end latency from the subscriber, PUBACK latency and published rate from the publisher', () => {
    const rep = sampleReplicated();
    const cross = rep.summaries.find((x) => x.workload === R2_ID && x.setup === '3/3/2-async-cross')!;
    assert.equal(cross.per_s, 50_000);
    assert.equal(cross.sent_per_s, 50_100);
    assert.equal(cross.lost, 12);
    assert.deepEqual(cross.ack_latency_ms, { p50: 0.5, p99: 6 });
    const c = rep.costs.find((x) => x.workload === R2_ID)!;
    assert.equal(c.per_s, 50_000 / 150_000);
    assert.equal(c.setup, '3/3/2-async-cross');
  });
  it('leaves a ratio out when the single node has no figure (or failed)', () => {
    const defs = replicatedWorkloads();
    const s = summariseReplicated([rec(R1_ID, 'single', 1, { ok: false, load: null }), rec(R1_ID, '3/3/2-async', 1)], defs);
    const costs = replicationCosts(s);
    assert.deepEqual(costs, [{ workload: R1_ID, setup: '3/3/2-async', per_s: null, p50: null, p99: null, cpu_us_per_msg: null }]);
  });
});

describe('bench:compare replicated — failover times', () => {
  const ms = 1e6;
  it('counts from the kill to the acknowledgement of the first write sent after it', () => {
    // Writes at 0-1 ms, 2-3 ms, then one sent at 4 ms (before the kill at 5 ms) answered at 5.1 ms
    // (a response the dead node had written), then one sent at 5.2 ms acknowledged at 4,005 ms.
    const log = { sent: [0, 2 * ms, 4 * ms, 5.2 * ms, 4006 * ms], acked: [1 * ms, 3 * ms, 5.1 * ms, 4005 * ms, 4008 * ms] };
    const f = failoverFrom(5 * ms, log);
    assert.equal(f.first_ack_ms?.toFixed(3), '0.100');
    assert.equal(f.failover_ms, 4000);
    // A write in flight at the kill, retried by the client and acknowledged after the takeover.
    const g = failoverFrom(5 * ms, { sent: [0, 4 * ms, 3000 * ms], acked: [1 * ms, 2999 * ms, 3002 * ms] });
    assert.equal(g.first_ack_ms, 2994);
    assert.equal(g.failover_ms, 2997);
  });
  it('is null when nothing was acknowledged after the kill, and starts from the index given', () => {
    assert.deepEqual(failoverFrom(10 * ms, { sent: [0, 1 * ms], acked: [1 * ms, 2 * ms] }), { failover_ms: null, first_ack_ms: null });
    const log = { sent: [0, 1 * ms, 2 * ms], acked: [0.5 * ms, 1.5 * ms, 2.5 * ms] };
    assert.equal(failoverFrom(0, log, 2).failover_ms, 2.5);
  });
  it('reports p50 (median), max, min and mean over the kills that have a time', () => {
    const ten = [4200, 4300, 4100, 9000, 4250, 4400, 4350, 4150, 4500, 4600].map((failover_ms) => ({ failover_ms }));
    const s = failoverStats(ten);
    assert.deepEqual(s, { kills: 10, measured: 10, p50_ms: (4300 + 4350) / 2, max_ms: 9000, min_ms: 4100, mean_ms: 4785 });
    const some = failoverStats([{ failover_ms: 3000 }, { failover_ms: null }, { failover_ms: 5000 }, { failover_ms: 4000 }]);
    assert.deepEqual(some, { kills: 4, measured: 3, p50_ms: 4000, max_ms: 5000, min_ms: 3000, mean_ms: 4000 });
    assert.deepEqual(failoverStats([]), { kills: 0, measured: 0, p50_ms: null, max_ms: null, min_ms: null, mean_ms: null });
  });
  it('picks the partition leader as the victim, none while there is no leader', () => {
    assert.equal(
      pickVictim([
        { shard: 1, leader: 1 },
        { shard: 0, leader: 3 },
      ]),
      3,
    );
    assert.equal(pickVictim([{ shard: 0, leader: -1 }]), null);
    assert.equal(pickVictim([]), null);
  });
  it('takes the steady write latency as the median of ack − send', () => {
    const log = { sent: [0, 10, 20, 30].map((x) => x * ms), acked: [2, 13, 21, 40].map((x) => x * ms) };
    assert.equal(ackLatencyP50(log, 0, 3), 2);
    assert.equal(ackLatencyP50(log, 0, 0), null);
  });
});

describe('bench:compare replicated — report', () => {
  it('has the section title, the cost table, a table per workload and the failover table, rows as wide as their headers', () => {
    const md = renderReplicatedSection(context(sampleReplicated()));
    assert.ok(md.startsWith('## Replicated (journal) workloads\n'));
    assert.ok(md.includes('(results/2026-11-23-abc1234.svg)'));
    assert.ok(md.includes('### Cost of replication (setup ÷ single node)'));
    assert.match(md, /\| R1: Kafka acks=all 1 KiB \| 3 nodes, 3\/3\/2 flush async \(default\) \| ×0\.20 \| ×8\.00 \| ×4\.00 \| ×20\.0 \|/);
    assert.ok(md.includes('### R1. Kafka produce acks=all'));
    assert.match(md, /\| single node \(file engine, flush async\) \| 250,000 \| 256\.0 \| 10\.0 \| 40\.0 \| 0\.5 \| 1 \| 1 \| 1 \| 0 \| 300\.0 \|/);
    assert.match(md, /\| 3 nodes, 3\/3\/2 flush sync \(1 failed\) \| — \|/);
    assert.ok(md.includes('### R2. MQTT QoS 1'));
    assert.match(md, /publisher on node 1 → subscriber on node 2 \| 50,100 \| 50,000 \| 12 \|/);
    assert.ok(md.includes('failover time **p50 4.42 s, max 4.59 s**'));
    assert.match(md, /\| 1 \| 2 \| node 2 \| no \| 4,586 \| 0 \| node 3 \| 2\.00 \|/);
    assert.match(md, /\| 1 \| 3 \| node 3 \| yes \| — \(no write acknowledged within 90 s of the kill\) \|/);
    assert.ok(md.includes('- three nodes share one core'));
    assert.ok(md.includes('```toml\nnode_id = 1\n```'));
    assert.ok(md.includes('- R2: MQTT QoS 1, single: `mqtt sub` with `mqtt pub`'));
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const rows = block.split('\n');
      const cells = (l: string) => l.split(' | ').length;
      for (const r of rows.slice(2)) assert.equal(cells(r), cells(rows[0]!), r);
    }
  });
  it('goes between markers of its own in RESULTS.md, leaving the side-by-side section alone', () => {
    const doc = `# Results\n\n${SECTION_BEGIN}\nside by side\n${SECTION_END}\n\n## Kafka\n\nkept\n`;
    const markers = { begin: REPLICATED_BEGIN, end: REPLICATED_END };
    const once = replaceSection(doc, '## Replicated (journal) workloads\n\nv1\n', markers);
    assert.ok(once.startsWith(doc.trimEnd()));
    assert.ok(once.endsWith(`${REPLICATED_BEGIN}\n## Replicated (journal) workloads\n\nv1\n${REPLICATED_END}\n`));
    const twice = replaceSection(once, 'v2', markers);
    assert.ok(twice.includes(`${REPLICATED_BEGIN}\nv2\n${REPLICATED_END}`) && !twice.includes('v1'));
    assert.ok(twice.includes(`${SECTION_BEGIN}\nside by side\n${SECTION_END}`));
    // And the side-by-side section is replaced without touching this one.
    const third = replaceSection(twice, 'new side by side');
    assert.ok(third.includes(`${SECTION_BEGIN}\nnew side by side\n${SECTION_END}`));
    assert.ok(third.includes(`${REPLICATED_BEGIN}\nv2\n${REPLICATED_END}`));
  });
  it('charts a bar per setup (R1, R2) and p50/max of the failover times, stacked in one well-formed SVG', () => {
    const rep = sampleReplicated();
    const specs = replicatedChartSpecs(context(rep));
    assert.deepEqual(
      specs.map((s) => s.series.length),
      [3, 2, 2], // R1: single, 3/3/2 async, 3/3/2 sync (failed: n/a); R2: single, cross-node; failover: p50, max
    );
    assert.deepEqual(specs[0]!.rows[0]!.panels[0]!.values, [(250_000 * 1024) / 1e6, (50_000 * 1024) / 1e6, null]);
    assert.deepEqual(specs[2]!.rows[0]!.panels[0]!.values, [rep.failover!.p50_ms! / 1000, rep.failover!.max_ms! / 1000]);
    const svg = renderStackedSvg(specs);
    const els = parseXml(svg);
    assert.equal(els.filter(([n]) => n === 'svg').length, 1);
    const bars = els.filter(([n, a]) => n === 'rect' && a['class'] === 'bar');
    assert.equal(bars.length, 4 * 2 + 4 * 2 + 2); // R1: 2 setups with figures × 4 panels; R2 2 × 4; failover 2
    // Stacked: each chart's title lower than the last.
    const titles = els.filter(([n, a]) => n === 'text' && a['font-size'] === '16').map(([, a]) => Number(a['y']));
    assert.equal(titles.length, 3);
    assert.ok(titles[0]! < titles[1]! && titles[1]! < titles[2]!);
    // One chart stacked alone is the chart itself.
    assert.equal(renderStackedSvg([specs[0]!]), renderChartsSvg(specs[0]!));
  });
  it('puts the replicated charts under the side-by-side ones in the report SVG, or alone', () => {
    const rep = sampleReplicated();
    const base = {
      date: '2026-11-23',
      commit: 'abc1234',
      options: { brokers: ['robust'], workloads: [FAILOVER_ID], duration_s: 10, warmup_s: 2, rounds: 1, quick: false, window: 64, workers: 1, connect_rate: 0, connections: 0, connections_requested: 0 },
      workloads: [],
      summaries: [],
    } satisfies Partial<CompareReport>;
    const alone = renderSvg({ ...base, replicated: rep });
    assert.ok(!alone.includes('MQTT brokers side by side'));
    assert.ok(alone.includes('Replicated (journal)'));
    parseXml(alone);
    const both = renderSvg({ ...base, workloads: workloads(2000).filter((w) => w.id === 1), options: { ...base.options, workloads: [1, FAILOVER_ID] }, replicated: rep });
    assert.ok(both.indexOf('MQTT brokers side by side') < both.indexOf('Replicated (journal)'));
    parseXml(both);
  });
});
