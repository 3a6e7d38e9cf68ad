/** The pure parts of bench/compare.ts: no broker is started. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderSection, renderSvg, replaceSection, SECTION_BEGIN, SECTION_END, type CompareReport } from '../../bench/compare/report.js';
import { notesFor, parseDrops, parseLoadgenOutput, ratio, ratios, summarise } from '../../bench/compare/summary.js';
import { compact, escapeXml, niceCeil, renderChartsSvg } from '../../bench/compare/svg.js';
import type { BrokerKind, LoadgenResult, RunRecord } from '../../bench/compare/types.js';
import { loadgenArgs, parseWorkloadList, runsOn, workloads } from '../../bench/compare/workloads.js';
import { parseXml } from './xml.js';

// ------------------------------------------------------------------ helpers

function loadResult(over: Partial<LoadgenResult> = {}): LoadgenResult {
  return {
    workload: 'pubsub',
    qos: 0,
    clients: 2,
    publishers: 1,
    subscribers: 1,
    size: 100,
    duration_s: 10,
    sent: 1_000_000,
    received: 1_000_000,
    lost: 0,
    duplicates: 0,
    sent_per_s: 100_000,
    received_per_s: 100_000,
    latency_ms: { p50: 1, p95: 2, p99: 3, p999: 4, max: 5, mean: 1.2 },
    ack_latency_ms: null,
    connect: { attempted: 2, connected: 2, failed: 0, per_s: 400, failures: {} },
    broker: { cpu_us_per_msg: 2, cpu_percent: 50, rss_bytes: 100 * 1048576, rss_per_connection_bytes: null },
    loadgen: { workers: 1, max_worker_cpu_percent: 40, saturated: false },
    warnings: [],
    ...over,
  };
}

function rec(workload: number, broker: BrokerKind, round: number, load: LoadgenResult | null, ok = true): RunRecord {
  return {
    workload,
    broker,
    round,
    ok,
    ...(ok ? {} : { error: 'boom\ndetails' }),
    argv: ['mqtt', 'pubsub'],
    load,
    external: { wall_s: 12, broker_cpu_s: 6, broker_cpu_percent: 50, rss_idle_bytes: 50 * 1048576, rss_end_bytes: 90 * 1048576, rss_peak_bytes: 110 * 1048576, loadgen_cpu_s: 5, others_cpu_percent: 3 },
  };
}

function sampleReport(): CompareReport {
  const defs = workloads(2000);
  const records: RunRecord[] = [
    rec(1, 'robust', 1, loadResult({ received_per_s: 500_000, sent_per_s: 500_000, broker: { cpu_us_per_msg: 1.5, cpu_percent: 90, rss_bytes: 110 * 1048576, rss_per_connection_bytes: null } })),
    rec(1, 'mosquitto', 1, loadResult({ received_per_s: 160_000, sent_per_s: 160_000, broker: { cpu_us_per_msg: 5, cpu_percent: 80, rss_bytes: 8 * 1048576, rss_per_connection_bytes: null } })),
    rec(1, 'aedes', 1, loadResult({ received_per_s: 50_000, sent_per_s: 50_000, latency_ms: { p50: 10, p95: 20, p99: 40, p999: 50, max: 60, mean: 12 } })),
    rec(
      6,
      'robust',
      1,
      loadResult({
        workload: 'conn',
        latency_ms: null,
        connect: { attempted: 2000, connected: 2000, failed: 0, per_s: 4000, failures: {} },
        broker: { cpu_us_per_msg: null, cpu_percent: 5, rss_bytes: 150 * 1048576, rss_per_connection_bytes: 20_480 },
      }),
    ),
    rec(
      6,
      'mosquitto',
      1,
      loadResult({
        workload: 'conn',
        latency_ms: null,
        connect: { attempted: 2000, connected: 1990, failed: 10, per_s: 8000, failures: { ECONNRESET: 10 } },
        broker: { cpu_us_per_msg: null, cpu_percent: 5, rss_bytes: 12 * 1048576, rss_per_connection_bytes: 2048 },
      }),
    ),
  ];
  const brokers: BrokerKind[] = ['robust', 'mosquitto', 'aedes'];
  const summaries = summarise(records, [1, 6], brokers);
  return {
    date: '2026-11-23',
    started_at: '2026-11-23T10:00:00.000Z',
    finished_at: '2026-11-23T10:05:00.000Z',
    commit: 'abc1234',
    dirty: false,
    command: 'npm run bench:compare -- --workloads 1,6',
    options: { brokers, workloads: [1, 6], duration_s: 10, warmup_s: 2, rounds: 1, quick: false, window: 64, workers: 1, connect_rate: 0, connections: 2000, connections_requested: 2000 },
    machine: { cpu_model: 'Test CPU', cpus: 2 },
    settings: {
      load: ['robust-bench, pinned to CPU 1'],
      brokers: { robust: { description: ['default node'], config: 'node_id = 1' }, mosquitto: { description: ['max_queued_messages 0'], config: 'max_queued_messages 0' } },
    },
    workloads: defs.filter((w) => w.id === 1 || w.id === 6),
    records,
    summaries,
    ratios: ratios(summaries),
    notes: ['a note'],
    files: { json: 'results/2026-11-23-abc1234.json', svg: 'results/2026-11-23-abc1234.svg' },
  };
}

// ------------------------------------------------------------------ tests

describe('bench:compare — load generator output', () => {
  it('takes the last JSON object with a workload field, skipping other lines', () => {
    const r = loadResult({ received_per_s: 1234 });
    const out = `progress: 10 msg/s\n{"not":"it"}\n${JSON.stringify(r)}\n`;
    assert.equal(parseLoadgenOutput(out).received_per_s, 1234);
  });
  it('reads pretty-printed JSON too, and fills missing fields', () => {
    const out = `starting\n${JSON.stringify({ workload: 'conn', connect: { connected: 5, per_s: 100 } }, null, 2)}\n`;
    const r = parseLoadgenOutput(out);
    assert.equal(r.workload, 'conn');
    assert.equal(r.connect?.connected, 5);
    assert.equal(r.connect?.failed, 0);
    assert.equal(r.latency_ms, null);
    assert.equal(r.broker, null);
  });
  it('keeps the warnings', () => {
    assert.deepEqual(parseLoadgenOutput(JSON.stringify({ workload: 'pubsub', warnings: ['load generator saturated'] })).warnings, ['load generator saturated']);
  });
  it("reads our broker's drop counters from /metrics", () => {
    const page = [
      '# HELP robust_mqtt_messages_dropped_total Messages dropped',
      '# TYPE robust_mqtt_messages_dropped_total counter',
      'robust_mqtt_messages_dropped_total{reason="queue_full"} 665528',
      'robust_mqtt_messages_dropped_total{reason="expired"} 0',
      'robust_mqtt_messages_dropped_total{node="1",reason="slow_client_qos0"} 12',
      'robust_mqtt_messages_received_total 5',
    ].join('\n');
    assert.deepEqual(parseDrops(page), { queue_full: 665528, slow_client_qos0: 12 });
  });
  it('throws when there is no result', () => {
    assert.throws(() => parseLoadgenOutput('error: connection refused\n'), /no JSON result/);
  });
});

describe('bench:compare — summaries and ratios', () => {
  it('takes medians over the successful rounds and counts failures', () => {
    const records = [
      rec(2, 'robust', 1, loadResult({ received_per_s: 100 })),
      rec(2, 'robust', 2, loadResult({ received_per_s: 300, lost: 2 })),
      rec(2, 'robust', 3, loadResult({ received_per_s: 200, lost: 1 })),
      rec(2, 'robust', 4, null, false),
    ];
    const [s] = summarise(records, [2], ['robust']);
    assert.ok(s);
    assert.equal(s.connect_per_s, null, 'pubsub reports its connections too, but is not an idle-connection workload');
    assert.equal(s.runs, 3);
    assert.equal(s.failed_runs, 1);
    assert.deepEqual(s.errors, ['boom\ndetails']);
    assert.equal(s.received_per_s, 200);
    assert.equal(s.lost, 3);
    assert.equal(s.latency_ms?.p99, 3);
    assert.equal(s.cpu_us_per_msg, 2);
    assert.equal(s.cpu_us_per_msg_source, 'loadgen');
  });
  it("falls back to the harness's CPU over the whole run when the load generator has none", () => {
    const [s] = summarise([rec(1, 'aedes', 1, loadResult({ broker: null, received: 3_000_000 }))], [1], ['aedes']);
    assert.equal(s?.cpu_us_per_msg, 2); // 6 s of broker CPU / 3M messages
    assert.equal(s?.cpu_us_per_msg_source, 'harness');
    assert.equal(s?.rss_bytes, 90 * 1048576); // the harness's RSS at the end
  });
  it('summarises idle connections, with the RSS-per-connection fallback', () => {
    const conn = loadResult({ workload: 'conn', latency_ms: null, connect: { attempted: 100, connected: 100, failed: 0, per_s: 50, failures: {} }, broker: null });
    const [s] = summarise([rec(6, 'aedes', 1, conn)], [6], ['aedes']);
    assert.ok(s);
    assert.equal(s.received_per_s, null);
    assert.equal(s.cpu_us_per_msg, null);
    assert.equal(s.connect_per_s, 50);
    assert.equal(s.rss_per_connection_bytes, (60 * 1048576) / 100); // (peak − idle) / connections
    assert.equal(s.cpu_us_per_connection, 60_000);
  });
  it('computes ours ÷ peer, null where a side has no figure', () => {
    const r = sampleReport();
    const m = r.ratios.find((x) => x.workload === 1 && x.peer === 'mosquitto');
    assert.ok(m);
    assert.equal(m.received_per_s, 500_000 / 160_000);
    assert.equal(m.cpu_us_per_msg, 1.5 / 5);
    assert.equal(m.p99, 1);
    assert.equal(m.rss_bytes, 110 / 8);
    assert.equal(m.connect_per_s, null);
    const a = r.ratios.find((x) => x.workload === 1 && x.peer === 'aedes');
    assert.equal(a?.p99, 3 / 40);
    const c = r.ratios.find((x) => x.workload === 6 && x.peer === 'mosquitto');
    assert.equal(c?.connect_per_s, 0.5);
    assert.equal(c?.rss_per_connection_bytes, 10);
    assert.equal(c?.received_per_s, null);
    assert.equal(r.ratios.filter((x) => x.workload === 6).length, 1, 'no aedes run in workload 6: no row');
    assert.equal(r.ratios.some((x) => x.peer === 'robust'), false);
  });
  it('ratio() refuses missing and zero denominators', () => {
    assert.equal(ratio(1, 0), null);
    assert.equal(ratio(null, 2), null);
    assert.equal(ratio(1, undefined), null);
    assert.equal(ratio(NaN, 2), null);
    assert.equal(ratio(3, 2), 1.5);
  });
  it('notes saturated load generators, loss, failures and busy neighbours', () => {
    const records = [
      rec(3, 'robust', 1, loadResult({ lost: 7, loadgen: { workers: 1, max_worker_cpu_percent: 99, saturated: true } })),
      { ...rec(3, 'mosquitto', 1, loadResult()), external: { ...(rec(3, 'mosquitto', 1, null).external as NonNullable<RunRecord['external']>), others_cpu_percent: 80 } },
      rec(3, 'aedes', 1, null, false),
    ];
    records[0] = { ...(records[0] as RunRecord), load_raw: { totals: { expected: 700 } }, external: { ...((records[0] as RunRecord).external as NonNullable<RunRecord['external']>), broker_drops: { queue_full: 7 } } };
    (records[0] as RunRecord).load?.warnings.push('7 of 700 expected deliveries never arrived', 'connections were closed by the broker while held');
    const notes = notesFor(summarise(records, [3], ['robust', 'mosquitto', 'aedes']), new Map([[3, 'fan-out']]), records);
    assert.ok(notes.some((n) => /robust: the load generator was saturated \(busiest worker at 99% CPU\)/.test(n)));
    assert.ok(notes.some((n) => /robust: 7 message\(s\) of 700 \(1\.0%\) lost \(published, never delivered\); the broker's own count \(robust_mqtt_messages_dropped_total\): queue_full 7\.$/.test(n)), notes.join('\n'));
    assert.ok(notes.some((n) => /robust: the load generator warned: connections were closed/.test(n)));
    assert.ok(!notes.some((n) => /never arrived/.test(n)), 'loss is noted once');
    assert.ok(notes.some((n) => /^Neighbours: .* during 1 of 3 runs \(workload 3 mosquitto 80%\)/.test(n)));
    assert.ok(notes.some((n) => /aedes: 1 run\(s\) failed: boom$/.test(n)));
  });
});

describe('bench:compare — SVG chart', () => {
  it('is well-formed XML with one bar per broker per panel, heights proportional to the values', () => {
    const svg = renderSvg(sampleReport());
    const els = parseXml(svg);
    assert.equal(els[0]?.[0], 'svg');
    assert.equal(els[0]?.[1].xmlns, 'http://www.w3.org/2000/svg');
    const bars = els.filter(([n, a]) => n === 'rect' && a.class === 'bar').map(([, a]) => a);
    // Row 0 (throughput): workload 1 × 3 brokers + workload 6 × 2 brokers (aedes has none).
    const row0 = bars.filter((a) => a['data-row'] === '0');
    assert.equal(row0.length, 5);
    const w1 = row0.filter((a) => a['data-panel'] === '0');
    assert.deepEqual(
      w1.map((a) => a['data-series']),
      ['robust', 'mosquitto', 'aedes'],
    );
    assert.deepEqual(
      w1.map((a) => Number(a['data-value'])),
      [500_000, 160_000, 50_000],
    );
    const h = w1.map((a) => Number(a.height));
    assert.ok(Math.abs(h[0]! / h[1]! - 500 / 160) < 0.02, `heights ${h.join(', ')}`);
    assert.ok(Math.abs(h[0]! / h[2]! - 10) < 0.05, `heights ${h.join(', ')}`);
    // Row 1 (p99): workload 1 only.
    assert.deepEqual(
      bars.filter((a) => a['data-row'] === '1').map((a) => Number(a['data-value'])),
      [3, 3, 40],
    );
    // The missing aedes figure of workload 6 is labelled, not drawn.
    assert.ok(svg.includes('>n/a</text>'));
    // Bars stay inside the drawing.
    const width = Number(els[0]?.[1].width);
    for (const a of bars) assert.ok(Number(a.x) >= 0 && Number(a.x) + Number(a.width) <= width);
  });
  it('escapes text and draws no bar for an empty panel', () => {
    const svg = renderChartsSvg({
      title: 'a < b & "c"',
      series: [{ name: 'x&y', color: '#000' }],
      rows: [{ title: 'r', panels: [{ label: '<p>', unit: 'u', values: [null] }] }],
    });
    const els = parseXml(svg);
    assert.equal(els.filter(([n, a]) => n === 'rect' && a.class === 'bar').length, 0);
    assert.ok(svg.includes('a &lt; b &amp; &quot;c&quot;'));
    assert.equal(escapeXml(`<'&">`), '&lt;&apos;&amp;&quot;&gt;');
  });
  it('picks round axis maxima and compact labels', () => {
    assert.equal(niceCeil(0), 1);
    assert.equal(niceCeil(3), 3);
    assert.equal(niceCeil(3.2), 4);
    assert.equal(niceCeil(7.5), 8);
    assert.equal(niceCeil(533_000), 600_000);
    assert.equal(niceCeil(180_000), 200_000);
    assert.equal(niceCeil(0.021), 0.025);
    assert.equal(niceCeil(100), 100);
    assert.equal(compact(1_234_567), '1.23M');
    assert.equal(compact(534_000), '534k');
    assert.equal(compact(2500), '2500');
    assert.equal(compact(12.34), '12.3');
    assert.equal(compact(0.834), '0.83');
    assert.equal(compact(0), '0');
  });
});

describe('bench:compare — Markdown section', () => {
  it('has a table per workload, the ratios, the chart and the settings', () => {
    const md = renderSection(sampleReport());
    assert.ok(md.startsWith('## Side by side: robust vs mosquitto vs aedes\n'));
    assert.ok(md.includes('![throughput, p99 latency, broker CPU and memory per workload and broker](results/2026-11-23-abc1234.svg)'));
    assert.ok(md.includes('[results/2026-11-23-abc1234.json](results/2026-11-23-abc1234.json)'));
    assert.ok(md.includes('### 1. QoS 0, 1 publisher → 1 subscriber, 100 B, max rate'));
    assert.ok(md.includes('### 6. 2,000 idle connections'));
    assert.match(md, /\| \*\*robust\*\* \| 500,000 \| 500,000 \| 0 \| 1\.00 \| 2\.00 \| 3\.00 \| 4\.00 \| 5\.00 \| 1\.50 \| 90% \| 110\.0 \(110\.0\) \| 40% \|/);
    assert.match(md, /\| 1: QoS 0 1→1 \| mosquitto \| ×3\.13 \| ×1\.00 \| ×0\.30 \| ×13\.8 \|/);
    assert.match(md, /Ours ÷ mosquitto: msg\/s ×3\.13, p99 ×1\.00, CPU\/msg ×0\.30, RSS ×13\.8; ours ÷ aedes: msg\/s ×10\.0/);
    assert.match(md, /\| mosquitto \| 1,990 \| 10 \| 8,000 \| 12\.0 \| 2\.0 \|/);
    assert.ok(md.includes('- a note'));
    assert.ok(md.includes('max_queued_messages 0'));
    assert.ok(md.includes('- 1: `mqtt pubsub`'));
    // Every table row has as many cells as its header.
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const rows = block.split('\n');
      const cells = (l: string) => l.split(' | ').length;
      for (const r of rows.slice(2)) assert.equal(cells(r), cells(rows[0]!), r);
    }
  });
  it('appends the section with its markers when there are none', () => {
    const doc = '# Benchmark results\n\n## Other\n\ntext\n';
    const out = replaceSection(doc, '## New\n\nbody\n');
    assert.equal(out, `# Benchmark results\n\n## Other\n\ntext\n\n${SECTION_BEGIN}\n## New\n\nbody\n${SECTION_END}\n`);
  });
  it('replaces only what is between the markers, and is idempotent', () => {
    const before = '# Results\n\n## A\n\nkept\n\n';
    const after = '\n\n## Z\n\nalso kept\n';
    const doc = `${before}${SECTION_BEGIN}\nold body\n${SECTION_END}${after}`;
    const once = replaceSection(doc, 'new body');
    assert.equal(once, `${before}${SECTION_BEGIN}\nnew body\n${SECTION_END}${after}`);
    assert.equal(replaceSection(once, 'new body'), once);
    assert.ok(!once.includes('old body'));
  });
  it('refuses broken markers instead of clobbering the file', () => {
    assert.throws(() => replaceSection(`x\n${SECTION_BEGIN}\ny\n`, 'b'), /broken/);
    assert.throws(() => replaceSection(`x\n${SECTION_END}\ny\n${SECTION_BEGIN}\n`, 'b'), /broken/);
    assert.throws(() => replaceSection(`${SECTION_BEGIN}\n${SECTION_END}\n${SECTION_BEGIN}\n${SECTION_END}\n`, 'b'), /more than one/);
  });
});

describe('bench:compare — workloads', () => {
  it('defines the six MQTT workloads of the issue and two Kafka produce workloads (ours only)', () => {
    const ws = workloads(20_000);
    assert.deepEqual(
      ws.map((w) => [w.id, w.mode, w.qos, w.publishers, w.subscribers, w.rate]),
      [
        [1, 'pubsub', 0, 1, 1, 0],
        [2, 'pubsub', 1, 1, 1, 0],
        [3, 'pubsub', 0, 1, 100, 0],
        [4, 'pubsub', 1, 100, 1, 0],
        [5, 'pubsub', 1, 1, 1, 10_000],
        [6, 'conn', 0, 0, 0, 0],
        [7, 'kafka', 0, 1, 0, 0],
        [8, 'kafka', 0, 1, 0, 0],
      ],
    );
    assert.deepEqual([ws[6]?.size, ws[7]?.size], [100, 1024]);
    assert.deepEqual(
      ['robust', 'mosquitto', 'aedes'].map((b) => [runsOn(ws[0]!, b), runsOn(ws[6]!, b)]),
      [
        [true, true],
        [true, false],
        [true, false],
      ],
    );
    assert.equal(ws[5]?.connections, 20_000);
    assert.equal(ws[5]?.title, '20,000 idle connections');
  });
  it('builds the robust-bench command lines', () => {
    const [, , , w4, , w6] = workloads(19_800);
    const o = { host: '127.0.0.1', port: 1883, duration_s: 10, warmup_s: 2, window: 64, workers: 1, mqttVersion: 4 as const, connectRate: 0, brokerPid: 42 };
    const a = loadgenArgs(w4!, o);
    assert.deepEqual(a.slice(0, 2), ['mqtt', 'pubsub']);
    const val = (argv: string[], k: string) => argv[argv.indexOf(k) + 1];
    assert.equal(val(a, '--clients'), '100');
    assert.equal(val(a, '--subscribers'), '1');
    assert.equal(val(a, '--topic'), 'bench/w4/%i');
    assert.equal(val(a, '--sub-topic'), 'bench/w4/+');
    assert.equal(val(a, '--qos'), '1');
    assert.equal(val(a, '--rate'), '0');
    assert.equal(val(a, '--broker-pid'), '42');
    assert.equal(val(a, '--output'), 'json');
    const c = loadgenArgs(w6!, o);
    assert.deepEqual(c.slice(0, 2), ['mqtt', 'conn']);
    assert.equal(val(c, '--clients'), '19800');
    assert.equal(c.includes('--qos'), false);
    const k = loadgenArgs(workloads(19_800)[7]!, { ...o, port: 9092 });
    assert.deepEqual(k.slice(0, 2), ['kafka', 'produce']);
    assert.equal(val(k, '--brokers'), '127.0.0.1:9092');
    assert.equal(val(k, '--record-size'), '1024');
    assert.equal(val(k, '--acks'), '1');
    assert.equal(val(k, '--duration'), '10');
    assert.equal(val(k, '--broker-pid'), '42');
    assert.equal(val(k, '--output'), 'json');
  });
  it('reads robust-bench kafka produce output as acknowledged records', () => {
    const out = JSON.stringify({
      protocol: 'kafka',
      workload: 'produce',
      producers: 1,
      consumers: 0,
      record_size: 100,
      duration_s: 5,
      records: 5_000_000,
      records_per_s: 1_000_000,
      ack_latency_ms: { p50: 3, p95: 9, p99: 20, p999: 30, max: 40, mean: 4 },
      latency_ms: null,
      totals: { sent: 6_000_000, acked: 6_000_000, failed: 0 },
      broker: { pid: 1, cpu_us_per_record: 0.9, cpu_percent: 95, rss_bytes: 150 * 1048576 },
      loadgen: { workers: 1, max_worker_cpu_percent: 14, saturated: false },
      warnings: [],
    });
    const r = parseLoadgenOutput(`${out}\n`);
    assert.deepEqual([r.workload, r.sent_per_s, r.received_per_s, r.lost, r.size, r.publishers], ['kafka-produce', 1_000_000, 1_000_000, 0, 100, 1]);
    assert.equal(r.latency_ms?.p99, 20);
    assert.equal(r.broker?.cpu_us_per_msg, 0.9);
    assert.equal(r.loadgen?.max_worker_cpu_percent, 14);
  });
  it('parses --workloads lists and ranges', () => {
    const known = [1, 2, 3, 4, 5, 6];
    assert.deepEqual(parseWorkloadList('5,1,2', known), [1, 2, 5]);
    assert.deepEqual(parseWorkloadList('1-3,6', known), [1, 2, 3, 6]);
    assert.throws(() => parseWorkloadList('7', known), /no workload 7/);
    assert.throws(() => parseWorkloadList('x', known), /cannot read/);
    assert.throws(() => parseWorkloadList('', known), /empty/);
  });
});
