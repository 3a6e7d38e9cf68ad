/** Human output of `robust-bench kafka`: the live progress line and the final table. */
import type { LatencySummary } from '../histogram.js';
import { fmtInt } from '../report.js';
import type { KafkaBenchResult, KafkaProgress } from './run.js';

function fmtMs(n: number): string {
  return n >= 100 ? n.toFixed(1) : n >= 10 ? n.toFixed(2) : n.toFixed(3);
}

function fmtBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

export function kafkaProgressLine(p: KafkaProgress, workload: KafkaBenchResult['workload']): string {
  const t = p.totalS > 0 ? `${p.elapsedS.toFixed(0)}/${p.totalS.toFixed(0)} s` : `${p.elapsedS.toFixed(0)} s`;
  return `[${p.phase} ${t}] ${workload === 'produce' ? 'acked' : 'consumed'} ${fmtInt(p.perS)} records/s, ${p.mbPerS.toFixed(1)} MB/s (${fmtInt(p.done)})`;
}

function latencyLine(name: string, l: LatencySummary): string[] {
  return [name, fmtMs(l.p50), fmtMs(l.p95), fmtMs(l.p99), fmtMs(l.p999), fmtMs(l.max), fmtMs(l.mean), fmtInt(l.count)];
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

export function renderKafkaTable(r: KafkaBenchResult): string {
  const out: string[] = [];
  const who = r.workload === 'produce' ? `${fmtInt(r.producers)} producer${r.producers === 1 ? '' : 's'}` : `${fmtInt(r.consumers)} consumer${r.consumers === 1 ? '' : 's'}`;
  const load =
    r.workload === 'produce'
      ? `, ${fmtInt(r.record_size ?? 0)} B records, batch ${fmtInt(r.batch_size ?? 0)}/partition, acks ${r.acks === -1 ? 'all' : r.acks}, ${r.compression}, in flight ${r.in_flight}, ${r.rate ? `rate ${fmtInt(r.rate)} records/s` : 'max rate'}`
      : '';
  out.push(`robust-bench kafka ${r.workload}: ${r.target} topic ${r.topic} (${r.partitions} partition${r.partitions === 1 ? '' : 's'}${r.topic_created ? ', created' : ''}), ${who}${load}`);
  const window = r.requested !== null ? `${fmtInt(r.requested)} records requested, measured ${r.duration_s.toFixed(2)} s (first ${r.workload === 'produce' ? 'send → last ack' : 'fetch → last record'})` : `measured ${r.duration_s.toFixed(1)} s after ${r.warmup_s} s warm-up`;
  out.push(`${window}, ${r.loadgen.workers} worker thread${r.loadgen.workers === 1 ? '' : 's'}, Produce v${r.versions.produce} / Fetch v${r.versions.fetch}`);
  out.push('');
  out.push(...table(['records', 'count', 'records/s', 'MB/s'], [[r.workload === 'produce' ? 'acknowledged' : 'consumed', fmtInt(r.records), fmtInt(r.records_per_s), r.mb_s.toFixed(1)]]));
  const checks: string[] = [];
  if (r.workload === 'produce') checks.push(`whole run: sent ${fmtInt(r.totals.sent)}, acknowledged ${fmtInt(r.totals.acked)}, failed ${fmtInt(r.totals.failed)} in ${fmtInt(r.totals.requests)} requests`);
  else checks.push(`whole run: consumed ${fmtInt(r.totals.consumed)} in ${fmtInt(r.totals.fetches)} fetches, lost ${fmtInt(r.lost ?? 0)} (sequence gaps), duplicates ${fmtInt(r.duplicates ?? 0)}, out of order ${fmtInt(r.out_of_order ?? 0)}`);
  out.push(...checks);
  const lat: string[][] = [];
  if (r.latency_ms) lat.push(latencyLine('end to end', r.latency_ms));
  if (r.ack_latency_ms) lat.push(latencyLine('request → ack', r.ack_latency_ms));
  if (lat.length > 0) {
    out.push('');
    out.push(...table(['latency (ms)', 'p50', 'p95', 'p99', 'p99.9', 'max', 'mean', 'count'], lat));
  }
  if (r.broker) {
    const b = r.broker;
    out.push('');
    out.push(`broker (pid ${b.pid}): CPU ${b.cpu_percent.toFixed(1)}%${b.cpu_us_per_record !== null ? `, ${b.cpu_us_per_record.toFixed(2)} µs/record` : ''}, RSS ${fmtBytes(b.rss_bytes)}`);
  }
  out.push('');
  out.push(
    `load generator: ${r.loadgen.workers} worker${r.loadgen.workers === 1 ? '' : 's'} at ${r.loadgen.worker_cpu_percent.map((p) => `${Math.round(p)}%`).join(', ')} event-loop busy (max ${Math.round(r.loadgen.max_worker_cpu_percent)}%), process CPU ${Math.round(r.loadgen.process_cpu_percent)}%`,
  );
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join('\n') + '\n';
}
