/** Human output of robust-bench: the live progress line and the final table. */
import type { LatencySummary } from './histogram.js';
import type { BenchResult, Progress } from './run.js';

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtBytes(n: number): string {
  const a = Math.abs(n);
  if (a >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
  if (a >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (a >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

function fmtMs(n: number): string {
  return n >= 100 ? n.toFixed(1) : n >= 10 ? n.toFixed(2) : n.toFixed(3);
}

const VERSION_NAMES = { 3: 'MQTT 3.1', 4: 'MQTT 3.1.1', 5: 'MQTT 5.0' } as const;

/** One line, redrawn in place with \r on a terminal. */
export function progressLine(p: Progress, workload: BenchResult['workload']): string {
  const t = p.totalS > 0 ? `${p.elapsedS.toFixed(0)}/${p.totalS.toFixed(0)} s` : `${p.elapsedS.toFixed(0)} s`;
  if (workload === 'conn' || p.phase === 'connecting') {
    return `[${p.phase} ${t}] connected ${fmtInt(p.connected)} (${fmtInt(p.connectsPerS)}/s), open ${fmtInt(p.open)}, failed ${fmtInt(p.failed)}`;
  }
  const parts: string[] = [];
  if (workload !== 'sub') parts.push(`sent ${fmtInt(p.sentPerS)}/s (${fmtInt(p.sent)})`);
  if (workload !== 'pub') parts.push(`recv ${fmtInt(p.receivedPerS)}/s (${fmtInt(p.received)})`);
  return `[${p.phase} ${t}] ${parts.join('  ')}`;
}

function table(head: string[], rows: string[][], leftCols = 1): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

function latencyRow(name: string, l: LatencySummary): string[] {
  return [name, fmtMs(l.p50), fmtMs(l.p95), fmtMs(l.p99), fmtMs(l.p999), fmtMs(l.max), fmtMs(l.mean), fmtInt(l.count)];
}

/** The final report as text lines. */
export function renderTable(r: BenchResult): string {
  const out: string[] = [];
  const clients =
    r.workload === 'conn'
      ? `${fmtInt(r.clients)} connections`
      : r.workload === 'pub'
        ? `${fmtInt(r.publishers)} publisher${r.publishers === 1 ? '' : 's'}`
        : r.workload === 'sub'
          ? `${fmtInt(r.subscribers)} subscriber${r.subscribers === 1 ? '' : 's'}`
          : `${fmtInt(r.publishers)} pub → ${fmtInt(r.subscribers)} sub`;
  const load =
    r.workload === 'conn'
      ? ''
      : r.workload === 'sub'
        ? `, QoS ${r.qos}`
        : `, QoS ${r.qos}, ${fmtInt(r.size)} B, ${r.rate > 0 ? `rate ${fmtInt(r.rate)} msg/s` : 'max rate'}${r.qos > 0 ? `, window ${r.window}` : ''}`;
  out.push(`robust-bench mqtt ${r.workload}: ${r.target} (${VERSION_NAMES[r.mqtt_version]}), ${clients}${load}`);
  const held = r.workload === 'conn' ? `held ${r.duration_s.toFixed(1)} s` : `measured ${r.duration_s.toFixed(1)} s after ${r.warmup_s} s warm-up`;
  out.push(`${held}, ${r.loadgen.workers} worker thread${r.loadgen.workers === 1 ? '' : 's'}`);
  if (r.workload !== 'conn') out.push('');

  if (r.workload !== 'conn') {
    const rows: string[][] = [];
    if (r.workload !== 'sub') rows.push(['sent', fmtInt(r.sent), fmtInt(r.sent_per_s)]);
    if (r.workload !== 'pub') rows.push(['received', fmtInt(r.received), fmtInt(r.received_per_s)]);
    out.push(...table(['messages', 'count', 'msg/s'], rows));
    const checks: string[] = [];
    if (r.lost !== null) checks.push(`lost ${fmtInt(r.lost)}${r.workload === 'sub' ? ' (sequence gaps)' : ''}`);
    if (r.duplicates !== null) checks.push(`duplicates ${fmtInt(r.duplicates)}`);
    if (r.out_of_order !== null) checks.push(`out of order ${fmtInt(r.out_of_order)}`);
    if (r.workload === 'pubsub') checks.push(`(whole run: ${fmtInt(r.totals.unique)} of ${fmtInt(r.totals.expected ?? 0)} expected deliveries)`);
    if (r.workload === 'pub' && r.qos > 0) checks.push(`acknowledged ${fmtInt(r.totals.acked)} of ${fmtInt(r.totals.sent)} (whole run)`);
    if (checks.length > 0) out.push(checks.join(', '));
    const lat: string[][] = [];
    if (r.latency_ms) lat.push(latencyRow('end to end', r.latency_ms));
    if (r.ack_latency_ms) lat.push(latencyRow(r.qos === 2 ? 'publish → PUBCOMP' : 'publish → PUBACK', r.ack_latency_ms));
    if (lat.length > 0) {
      out.push('');
      out.push(...table(['latency (ms)', 'p50', 'p95', 'p99', 'p99.9', 'max', 'mean', 'count'], lat));
    } else if (r.workload === 'sub' && r.received > 0) {
      out.push('(no latency: the messages carried no robust-bench send time)');
    }
  }

  if (r.connect) {
    const c = r.connect;
    if (r.workload === 'conn' || c.failed > 0) {
      out.push('');
      out.push(`connections: ${fmtInt(c.connected)} of ${fmtInt(c.attempted)} connected at ${fmtInt(c.per_s)}/s, ${fmtInt(c.failed)} failed${c.dropped > 0 ? `, ${fmtInt(c.dropped)} closed by the broker while held` : ''}`);
      const reasons = Object.entries(c.failures).sort((a, b) => b[1] - a[1]);
      for (const [why, n] of reasons) out.push(`  ${fmtInt(n).padStart(8)}  ${why}`);
    }
  }

  if (r.broker) {
    const b = r.broker;
    out.push('');
    const parts = [`CPU ${b.cpu_percent.toFixed(1)}%`];
    if (b.cpu_us_per_msg !== null) parts.push(`${b.cpu_us_per_msg.toFixed(2)} µs/msg`);
    parts.push(`RSS ${fmtBytes(b.rss_bytes)}`);
    if (b.rss_per_connection_bytes !== null) parts.push(`${fmtBytes(b.rss_per_connection_bytes)} per connection`);
    out.push(`broker (pid ${b.pid}): ${parts.join(', ')}`);
  }

  out.push('');
  out.push(
    `load generator: ${r.loadgen.workers} worker${r.loadgen.workers === 1 ? '' : 's'} at ${r.loadgen.worker_cpu_percent.map((p) => `${Math.round(p)}%`).join(', ')} event-loop busy (max ${Math.round(r.loadgen.max_worker_cpu_percent)}%), process CPU ${Math.round(r.loadgen.process_cpu_percent)}%`,
  );
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join('\n') + '\n';
}
