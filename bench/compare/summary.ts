/** Pure: the load generator's JSON, per-broker summaries over rounds, and the ratios ours ÷ peer. */
import { OURS, type BrokerKind, type Latency, type LoadgenResult, type RatioRow, type RunRecord, type Summary } from './types.js';

/**
 * The result object from robust-bench's stdout: the last line that is a JSON object with
 * a "workload" field (anything printed before it, e.g. progress, is skipped). Throws when none.
 */
export function parseLoadgenOutput(stdout: string): LoadgenResult {
  const lines = stdout.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] as string;
    if (!l.startsWith('{')) continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      continue;
    }
    if (v !== null && typeof v === 'object' && 'workload' in v) return normalise(v as Record<string, unknown>);
  }
  // Pretty-printed JSON (several lines): from the last line that is only "{".
  const start = stdout.lastIndexOf('\n{');
  const from = start >= 0 ? start + 1 : stdout.trimStart().startsWith('{') ? stdout.indexOf('{') : -1;
  if (from >= 0) {
    try {
      const v = JSON.parse(stdout.slice(from)) as unknown;
      if (v !== null && typeof v === 'object' && 'workload' in v) return normalise(v as Record<string, unknown>);
    } catch {
      // fall through
    }
  }
  throw new Error(`no JSON result in the load generator's output:\n${stdout.slice(-2000)}`);
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function latency(v: unknown): Latency | null {
  if (v === null || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const p = { p50: num(o.p50), p95: num(o.p95), p99: num(o.p99), p999: num(o.p999), max: num(o.max), mean: num(o.mean) };
  if (p.p50 === null || p.p99 === null) return null;
  return { p50: p.p50, p95: p.p95 ?? NaN, p99: p.p99, p999: p.p999 ?? NaN, max: p.max ?? NaN, mean: p.mean ?? NaN };
}

/** Fills what the load generator left out with null/0 so later code needs no guards. */
function normalise(o: Record<string, unknown>): LoadgenResult {
  const obj = (v: unknown) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null);
  if (o.protocol === 'kafka') {
    // `robust-bench kafka produce`: records acknowledged stand for messages sent and received, request → ack for latency.
    const b = obj(o.broker);
    const g = obj(o.loadgen);
    const t = obj(o.totals);
    return {
      workload: `kafka-${String(o.workload)}`,
      qos: 0,
      clients: (num(o.producers) ?? 0) + (num(o.consumers) ?? 0),
      publishers: num(o.producers) ?? 0,
      subscribers: num(o.consumers) ?? 0,
      size: num(o.record_size) ?? 0,
      duration_s: num(o.duration_s) ?? 0,
      sent: num(o.records) ?? 0,
      received: num(o.records) ?? 0,
      lost: num(t?.failed) ?? 0,
      duplicates: 0,
      sent_per_s: num(o.records_per_s) ?? 0,
      received_per_s: num(o.records_per_s) ?? 0,
      latency_ms: latency(o.ack_latency_ms),
      ack_latency_ms: latency(o.ack_latency_ms),
      connect: null,
      broker: b ? { cpu_us_per_msg: num(b.cpu_us_per_record), cpu_percent: num(b.cpu_percent), rss_bytes: num(b.rss_bytes), rss_per_connection_bytes: null } : null,
      loadgen: g ? { workers: num(g.workers) ?? 0, max_worker_cpu_percent: num(g.max_worker_cpu_percent) ?? 0, saturated: g.saturated === true } : null,
      warnings: Array.isArray(o.warnings) ? o.warnings.map(String) : [],
    };
  }
  const c = obj(o.connect);
  const b = obj(o.broker);
  const g = obj(o.loadgen);
  return {
    workload: String(o.workload),
    qos: num(o.qos) ?? 0,
    clients: num(o.clients) ?? 0,
    publishers: num(o.publishers) ?? 0,
    subscribers: num(o.subscribers) ?? 0,
    size: num(o.size) ?? 0,
    duration_s: num(o.duration_s) ?? 0,
    sent: num(o.sent) ?? 0,
    received: num(o.received) ?? 0,
    lost: num(o.lost) ?? 0,
    duplicates: num(o.duplicates) ?? 0,
    sent_per_s: num(o.sent_per_s) ?? 0,
    received_per_s: num(o.received_per_s) ?? 0,
    latency_ms: latency(o.latency_ms),
    ack_latency_ms: latency(o.ack_latency_ms),
    connect: c ? { attempted: num(c.attempted) ?? 0, connected: num(c.connected) ?? 0, failed: num(c.failed) ?? 0, per_s: num(c.per_s) ?? 0, failures: c.failures ?? null } : null,
    broker: b ? { cpu_us_per_msg: num(b.cpu_us_per_msg), cpu_percent: num(b.cpu_percent), rss_bytes: num(b.rss_bytes), rss_per_connection_bytes: num(b.rss_per_connection_bytes) } : null,
    loadgen: g ? { workers: num(g.workers) ?? 0, max_worker_cpu_percent: num(g.max_worker_cpu_percent) ?? 0, saturated: g.saturated === true } : null,
    warnings: Array.isArray(o.warnings) ? o.warnings.map(String) : [],
  };
}

/** Median of the non-null values; null when there are none. */
export function median(xs: ReadonlyArray<number | null | undefined>): number | null {
  const a = xs.filter((x): x is number => typeof x === 'number' && !Number.isNaN(x)).sort((x, y) => x - y);
  if (a.length === 0) return null;
  const m = a.length >> 1;
  return a.length % 2 ? (a[m] as number) : ((a[m - 1] as number) + (a[m] as number)) / 2;
}

const sumOrNull = (xs: Array<number | null>): number | null => (xs.some((x) => x !== null) ? xs.reduce<number>((s, x) => s + (x ?? 0), 0) : null);

/** Broker CPU per message of one run: the load generator's figure, else CPU over the whole run ÷ messages received. */
export function cpuPerMessage(r: RunRecord): { value: number | null; source: 'loadgen' | 'harness' | null } {
  const fromLoad = r.load?.broker?.cpu_us_per_msg;
  if (typeof fromLoad === 'number' && Number.isFinite(fromLoad)) return { value: fromLoad, source: 'loadgen' };
  if (r.external && r.load && r.load.received > 0 && r.load.workload !== 'conn') return { value: (r.external.broker_cpu_s * 1e6) / r.load.received, source: 'harness' };
  return { value: null, source: null };
}

/** One summary per (workload, broker) present in the records, in the order given. */
export function summarise(records: readonly RunRecord[], workloadIds: readonly number[], brokers: readonly BrokerKind[]): Summary[] {
  const out: Summary[] = [];
  for (const w of workloadIds) {
    for (const b of brokers) {
      const all = records.filter((r) => r.workload === w && r.broker === b);
      if (all.length === 0) continue;
      const ok = all.filter((r) => r.ok && r.load !== null);
      const pick = (f: (r: RunRecord) => number | null | undefined) => median(ok.map(f));
      const lat = (k: keyof Latency) => pick((r) => r.load?.latency_ms?.[k]);
      const hasLatency = ok.some((r) => r.load?.latency_ms);
      const cpu = ok.map(cpuPerMessage);
      const isConn = ok.some((r) => r.load?.workload === 'conn');
      const connected = pick((r) => r.load?.connect?.connected);
      out.push({
        workload: w,
        broker: b,
        runs: ok.length,
        failed_runs: all.length - ok.length,
        errors: all.filter((r) => !r.ok).map((r) => r.error ?? 'failed'),
        sent_per_s: isConn ? null : pick((r) => r.load?.sent_per_s),
        received_per_s: isConn ? null : pick((r) => r.load?.received_per_s),
        lost: ok.length === 0 || isConn ? null : sumOrNull(ok.map((r) => r.load?.lost ?? null)),
        duplicates: ok.length === 0 || isConn ? null : sumOrNull(ok.map((r) => r.load?.duplicates ?? null)),
        latency_ms: hasLatency ? { p50: lat('p50') ?? NaN, p95: lat('p95') ?? NaN, p99: lat('p99') ?? NaN, p999: lat('p999') ?? NaN, max: lat('max') ?? NaN, mean: lat('mean') ?? NaN } : null,
        cpu_us_per_msg: isConn ? null : median(cpu.map((c) => c.value)),
        cpu_us_per_msg_source: isConn ? null : (cpu.find((c) => c.source !== null)?.source ?? null),
        cpu_percent: pick((r) => r.load?.broker?.cpu_percent ?? r.external?.broker_cpu_percent),
        // Fallback: the harness's RSS after the run, or for idle connections its peak while they were held.
        rss_bytes: pick((r) => r.load?.broker?.rss_bytes ?? (isConn ? r.external?.rss_peak_bytes : r.external?.rss_end_bytes)),
        rss_peak_bytes: pick((r) => r.external?.rss_peak_bytes),
        connected: isConn ? connected : null,
        connect_failed: isConn ? pick((r) => r.load?.connect?.failed) : null,
        connect_per_s: isConn ? pick((r) => r.load?.connect?.per_s) : null,
        rss_per_connection_bytes: isConn
          ? pick((r) => {
              const v = r.load?.broker?.rss_per_connection_bytes;
              if (typeof v === 'number') return v;
              const n = r.load?.connect?.connected ?? 0;
              // Fallback: the harness's RSS with the connections held (peak) over the idle broker's.
              return r.external && n > 0 ? (r.external.rss_peak_bytes - r.external.rss_idle_bytes) / n : null;
            })
          : null,
        cpu_us_per_connection: isConn ? pick((r) => (r.external && (r.load?.connect?.connected ?? 0) > 0 ? (r.external.broker_cpu_s * 1e6) / (r.load?.connect?.connected as number) : null)) : null,
        loadgen_saturated: ok.some((r) => r.load?.loadgen?.saturated === true),
        loadgen_max_worker_cpu_percent: pick((r) => r.load?.loadgen?.max_worker_cpu_percent),
        others_cpu_percent: pick((r) => r.external?.others_cpu_percent),
      });
    }
  }
  return out;
}

/** a ÷ b, or null when either is missing or b is 0 (or a result is not finite). */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (typeof a !== 'number' || typeof b !== 'number' || Number.isNaN(a) || Number.isNaN(b) || b === 0) return null;
  const r = a / b;
  return Number.isFinite(r) ? r : null;
}

/** Ours ÷ each peer, per workload where both have a summary. */
export function ratios(summaries: readonly Summary[], ours: BrokerKind = OURS): RatioRow[] {
  const rows: RatioRow[] = [];
  for (const o of summaries.filter((s) => s.broker === ours)) {
    for (const p of summaries.filter((s) => s.workload === o.workload && s.broker !== ours)) {
      rows.push({
        workload: o.workload,
        peer: p.broker,
        received_per_s: ratio(o.received_per_s, p.received_per_s),
        connect_per_s: ratio(o.connect_per_s, p.connect_per_s),
        p99: ratio(o.latency_ms?.p99, p.latency_ms?.p99),
        cpu_us_per_msg: ratio(o.cpu_us_per_msg, p.cpu_us_per_msg),
        rss_bytes: ratio(o.rss_bytes, p.rss_bytes),
        rss_per_connection_bytes: ratio(o.rss_per_connection_bytes, p.rss_per_connection_bytes),
      });
    }
  }
  return rows;
}

/** `robust_mqtt_messages_dropped_total{reason="…"} N` lines of a Prometheus text page, by reason (0s left out). */
export function parseDrops(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(/^robust_mqtt_messages_dropped_total\{[^}]*reason="([^"]+)"[^}]*\}\s+(\S+)/gm)) {
    const n = Number(m[2]);
    if (n > 0) out[m[1] as string] = (out[m[1] as string] ?? 0) + n;
  }
  return out;
}

/** Warnings a reader needs next to the figures, from the summaries. */
export function notesFor(summaries: readonly Summary[], titles: ReadonlyMap<number, string>, records: readonly RunRecord[] = [], othersThreshold = 25): string[] {
  const notes: string[] = [];
  const name = (w: number) => `workload ${w} (${titles.get(w) ?? '?'})`;
  const multiRound = records.some((r) => r.round > 1);
  for (const s of summaries) {
    if (s.failed_runs > 0) notes.push(`${name(s.workload)}, ${s.broker}: ${s.failed_runs} run(s) failed: ${s.errors.map((e) => e.split('\n')[0]).join('; ')}`);
    if (s.loadgen_saturated) {
      notes.push(
        `${name(s.workload)}, ${s.broker}: the load generator was saturated (busiest worker at ${s.loadgen_max_worker_cpu_percent?.toFixed(0) ?? '?'}% CPU): ` +
          'the throughput shown is the load generator\'s limit on its one core, not the broker\'s; compare broker CPU per message instead.',
      );
    }
    if (s.lost !== null && s.lost > 0) {
      const drops = new Map<string, number>();
      let expected = 0;
      for (const r of records.filter((x) => x.workload === s.workload && x.broker === s.broker && x.ok)) {
        for (const [k, v] of Object.entries(r.external?.broker_drops ?? {})) drops.set(k, (drops.get(k) ?? 0) + v);
        const t = (r.load_raw as { totals?: { expected?: unknown } } | undefined)?.totals?.expected;
        if (typeof t === 'number') expected += t;
      }
      const share = expected > 0 ? ` of ${expected.toLocaleString('en-US')} (${((100 * s.lost) / expected).toFixed(1)}%)` : '';
      const counted = drops.size > 0 ? `; the broker's own count (robust_mqtt_messages_dropped_total): ${[...drops].map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')}` : '';
      notes.push(`${name(s.workload)}, ${s.broker}: ${s.lost.toLocaleString('en-US')} message(s)${share} lost (published, never delivered)${counted}.`);
    }
    if (s.connect_failed !== null && s.connect_failed > 0) notes.push(`${name(s.workload)}, ${s.broker}: ${s.connect_failed.toLocaleString('en-US')} connection(s) failed.`);
  }
  // The load generator's other warnings (saturation and loss are noted above already).
  for (const r of records) {
    for (const w of r.load?.warnings ?? []) {
      if (/saturated|never arrived|missing sequence numbers/.test(w)) continue;
      const n = `workload ${r.workload}, ${r.broker}${multiRound ? `, round ${r.round}` : ''}: the load generator warned: ${w}`;
      if (!notes.includes(n)) notes.push(n);
    }
  }
  const busy = summaries.filter((s) => s.others_cpu_percent !== null && s.others_cpu_percent > othersThreshold);
  if (busy.length > 0) {
    const worst = [...busy].sort((a, b) => (b.others_cpu_percent as number) - (a.others_cpu_percent as number));
    notes.push(
      `Neighbours: other processes on this (shared) machine used more than ${othersThreshold}% of a core during ${busy.length} of ${summaries.length} runs ` +
        `(${worst
          .slice(0, 6)
          .map((s) => `workload ${s.workload} ${s.broker} ${(s.others_cpu_percent as number).toFixed(0)}%`)
          .join(', ')}${worst.length > 6 ? ', …' : ''}); they compete with the load generator for CPU 1 and with the broker for CPU 0: ` +
        'msg/s and latency are noisy there, broker CPU per message much less so (CPU time is charged only while a process runs).',
    );
  }
  return notes;
}
