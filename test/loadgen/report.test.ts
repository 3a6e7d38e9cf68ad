import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressLine, renderTable } from '../../src/loadgen/report.js';
import type { BenchResult } from '../../src/loadgen/run.js';

const lat = { p50: 0.5, p95: 1.2, p99: 2.5, p999: 4, max: 9.5, mean: 0.7, count: 1000 };
const base: BenchResult = {
  workload: 'pubsub',
  qos: 1,
  clients: 2,
  publishers: 1,
  subscribers: 1,
  size: 100,
  duration_s: 5,
  sent: 50_000,
  received: 50_000,
  lost: 0,
  duplicates: 0,
  sent_per_s: 10_000,
  received_per_s: 10_000,
  latency_ms: lat,
  ack_latency_ms: lat,
  connect: { attempted: 2, connected: 2, failed: 0, per_s: 100, failures: {}, dropped: 0 },
  broker: { pid: 42, cpu_us_per_msg: 12.5, cpu_percent: 12.5, rss_bytes: 80 * 1024 * 1024, rss_per_connection_bytes: null },
  loadgen: { workers: 2, max_worker_cpu_percent: 95, worker_cpu_percent: [95, 20], process_cpu_percent: 110, saturated: true },
  out_of_order: 0,
  totals: { sent: 60_000, acked: 60_000, expected: 60_000, received: 60_000, unique: 60_000 },
  unstamped: 0,
  rejected: {},
  rate: 0,
  window: 64,
  warmup_s: 1,
  mqtt_version: 4,
  transport: 'tcp',
  target: 'mqtt://127.0.0.1:1883',
  warnings: ['load generator saturated: worker 0 at 95% CPU — results are a lower bound; add --workers'],
};

describe('robust-bench report', () => {
  it('renders the final table', () => {
    const t = renderTable(base);
    assert.match(t, /robust-bench mqtt pubsub: mqtt:\/\/127\.0\.0\.1:1883 \(MQTT 3\.1\.1\), 1 pub → 1 sub, QoS 1/);
    assert.match(t, /sent\s+50,000\s+10,000/);
    assert.match(t, /received\s+50,000\s+10,000/);
    assert.match(t, /lost 0, duplicates 0/);
    assert.match(t, /end to end\s+0\.500\s+1\.200\s+2\.500\s+4\.000\s+9\.500/);
    assert.match(t, /publish → PUBACK/);
    assert.match(t, /broker \(pid 42\): CPU 12\.5%, 12\.50 µs\/msg, RSS 80\.0 MiB/);
    assert.match(t, /warning: load generator saturated: worker 0 at 95% CPU/);
  });

  it('renders conn results', () => {
    const t = renderTable({
      ...base,
      workload: 'conn',
      clients: 200,
      publishers: 0,
      subscribers: 0,
      latency_ms: null,
      ack_latency_ms: null,
      connect: { attempted: 200, connected: 198, failed: 2, per_s: 950, failures: { ECONNRESET: 2 }, dropped: 0 },
      broker: { pid: 42, cpu_us_per_msg: null, cpu_percent: 0.5, rss_bytes: 50 * 1024 * 1024, rss_per_connection_bytes: 5000 },
      warnings: [],
    });
    assert.match(t, /198 of 200 connected at 950\/s, 2 failed/);
    assert.match(t, /2\s+ECONNRESET/);
    assert.match(t, /4\.9 KiB per connection/);
    assert.doesNotMatch(t, /latency/);
  });

  it('formats the progress line', () => {
    const p = { phase: 'measuring' as const, elapsedS: 3, totalS: 11, sent: 30_000, received: 29_990, sentPerS: 10_000, receivedPerS: 9_999, attempted: 2, connected: 2, failed: 0, open: 2, connectsPerS: 0 };
    assert.equal(progressLine(p, 'pubsub'), '[measuring 3/11 s] sent 10,000/s (30,000)  recv 9,999/s (29,990)');
    assert.equal(progressLine({ ...p, phase: 'holding', connected: 500, open: 500, connectsPerS: 100 }, 'conn'), '[holding 3/11 s] connected 500 (100/s), open 500, failed 0');
  });
});
