/** The data bench/compare.ts collects, summarises and reports. */

export type BrokerKind = 'robust' | 'mosquitto' | 'aedes';
export const BROKERS: readonly BrokerKind[] = ['robust', 'mosquitto', 'aedes'];
/** The broker whose figures are divided by the peers' ("ours ÷ peer"). */
export const OURS: BrokerKind = 'robust';

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** What `robust-bench mqtt ... --output json` prints (one JSON object); `robust-bench kafka produce` output is mapped onto it (summary.ts). */
export interface LoadgenResult {
  workload: string;
  qos: number;
  clients: number;
  publishers: number;
  subscribers: number;
  size: number;
  duration_s: number;
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  sent_per_s: number;
  received_per_s: number;
  latency_ms: Latency | null;
  ack_latency_ms: Latency | null;
  connect: { attempted: number; connected: number; failed: number; per_s: number; failures: unknown } | null;
  broker: { cpu_us_per_msg: number | null; cpu_percent: number | null; rss_bytes: number | null; rss_per_connection_bytes: number | null } | null;
  loadgen: { workers: number; max_worker_cpu_percent: number; saturated: boolean } | null;
  warnings: string[];
}

/** What the harness itself measured from /proc around one load-generator run. */
export interface ExternalMeasure {
  /** Load generator's life, s (start to exit: connect, warm-up, measured window, drain). */
  wall_s: number;
  /** Broker utime+stime over wall_s, s. */
  broker_cpu_s: number;
  broker_cpu_percent: number;
  /** Broker VmRSS before the load generator started, bytes. */
  rss_idle_bytes: number;
  /** Broker VmRSS when the load generator had finished (connections closed), bytes. */
  rss_end_bytes: number;
  /** Highest broker VmRSS sampled (every 200 ms) while the load ran, bytes. */
  rss_peak_bytes: number;
  /** Load generator's CPU (all its processes and threads), s. */
  loadgen_cpu_s: number;
  /** CPU every other process on the machine used over wall_s, % of one core. */
  others_cpu_percent: number;
  /** robust only: robust_mqtt_messages_dropped_total by reason at the end of the run (from /metrics). */
  broker_drops?: Record<string, number>;
}

export interface RunRecord {
  workload: number;
  broker: BrokerKind;
  round: number;
  ok: boolean;
  error?: string;
  /** The load generator's command line (after `node bin/robust-bench`). */
  argv: string[];
  load: LoadgenResult | null;
  /** The load generator's JSON as printed (every field, including those not summarised). */
  load_raw?: unknown;
  external: ExternalMeasure | null;
}

/** Figures of one workload on one broker: the median over its successful rounds. */
export interface Summary {
  workload: number;
  broker: BrokerKind;
  runs: number;
  failed_runs: number;
  errors: string[];
  sent_per_s: number | null;
  received_per_s: number | null;
  /** Sum over the rounds. */
  lost: number | null;
  duplicates: number | null;
  latency_ms: Latency | null;
  /** Broker CPU per message, µs: the load generator's figure over its measured window, else the harness's over the whole run. */
  cpu_us_per_msg: number | null;
  cpu_us_per_msg_source: 'loadgen' | 'harness' | null;
  /** Broker CPU, % of one core. */
  cpu_percent: number | null;
  rss_bytes: number | null;
  rss_peak_bytes: number | null;
  /** Idle connections: connected, connect rate, failures, RSS and broker CPU per connection. */
  connected: number | null;
  connect_failed: number | null;
  connect_per_s: number | null;
  rss_per_connection_bytes: number | null;
  cpu_us_per_connection: number | null;
  loadgen_saturated: boolean;
  loadgen_max_worker_cpu_percent: number | null;
  others_cpu_percent: number | null;
}

/** Ours ÷ one peer, per workload (null when either side has no figure). */
export interface RatioRow {
  workload: number;
  peer: BrokerKind;
  /** Higher is better for ours. */
  received_per_s: number | null;
  connect_per_s: number | null;
  /** Lower is better for ours. */
  p99: number | null;
  cpu_us_per_msg: number | null;
  rss_bytes: number | null;
  rss_per_connection_bytes: number | null;
}
