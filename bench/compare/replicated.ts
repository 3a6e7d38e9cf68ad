/**
 * Pure: the replicated (journal) workloads of `npm run bench:compare` — what runs (the
 * setups of each workload), the three-node cluster's config files, the robust-bench
 * command lines, and the figures made of the runs: summaries over rounds, the cost of
 * replication as a ratio to the single node, and failover times over the kills.
 *
 *   9  (R1)        Kafka produce, acks=all, 1 KiB records, 1 producer, max rate, a topic of 3
 *                  partitions: the single node (file engine), and three-node journal clusters
 *                  3/3/2, 2/2/2, 2/2/1, 3/2/2 striped (flush async) and 3/3/2 (flush sync)
 *   10 (R2)        MQTT QoS 1, 1 publisher → 1 subscriber, 100 B, max rate: the single node;
 *                  the 3/3/2 cluster with both on node 1, and publisher on node 1 → subscriber
 *                  on node 2 (cross-node forwarding)
 *   11 (failover)  a steady acks=all producer on the 3/3/2 cluster while the node leading the
 *                  partition is killed with -9, N times: kill → next acknowledged write
 */
import { median, ratio } from './summary.js';
import type { LoadgenResult } from './types.js';

export const R1_ID = 9;
export const R2_ID = 10;
export const FAILOVER_ID = 11;
export const REPLICATED_IDS: readonly number[] = [R1_ID, R2_ID, FAILOVER_ID];

/** Journal replication of a cluster: ensemble size / write quorum / ack quorum, and [storage] flush. */
export interface ReplicationMode {
  ensemble: number;
  writeQuorum: number;
  ackQuorum: number;
  flush: 'sync' | 'async';
}

export const DEFAULT_MODE: ReplicationMode = { ensemble: 3, writeQuorum: 3, ackQuorum: 2, flush: 'async' };

/** "3/3/2 flush async" */
export function modeLabel(m: ReplicationMode): string {
  return `${m.ensemble}/${m.writeQuorum}/${m.ackQuorum} flush ${m.flush}`;
}

export interface ReplicatedSetup {
  /** Stable key in the JSON: `single`, `3/3/2-async`, `3/3/2-async-cross`, … */
  id: string;
  /** Row label in the report. */
  label: string;
  /** Legend label in the charts. */
  short: string;
  /** null: the single node the other workloads run (roles meta+broker, file engine, flush async). */
  cluster: ReplicationMode | null;
  /** Node (1-based) the publisher or producer connects to. */
  pubNode: number;
  /** R2: node (1-based) the subscriber connects to. */
  subNode: number;
}

export interface ReplicatedWorkloadDef {
  id: number;
  kind: 'kafka-acks-all' | 'mqtt-qos1' | 'failover';
  title: string;
  /** Label in charts and progress lines. */
  short: string;
  /** Record value / payload bytes. */
  size: number;
  setups: ReplicatedSetup[];
}

const single = (label: string): ReplicatedSetup => ({ id: 'single', label, short: 'single node', cluster: null, pubNode: 1, subNode: 1 });
const clusterSetup = (m: ReplicationMode, suffix = '', pubNode = 1, subNode = 1, extra = ''): ReplicatedSetup => ({
  id: `${m.ensemble}/${m.writeQuorum}/${m.ackQuorum}-${m.flush}${suffix}`,
  label: `3 nodes, ${modeLabel(m)}${extra}`,
  short: `${m.ensemble}/${m.writeQuorum}/${m.ackQuorum} ${m.flush}${suffix === '-same' ? ', same node' : suffix === '-cross' ? ', cross-node' : ''}`,
  cluster: m,
  pubNode,
  subNode,
});

/** Partitions of the R1 topic: as many as nodes, so that every node of a cluster leads one. */
export const R1_PARTITIONS = 3;
export const R1_TOPIC = 'bench-r1';
export const R2_TOPIC = 'bench/r2';
export const FAILOVER_TOPIC = 'bench-failover';

export function replicatedWorkloads(): ReplicatedWorkloadDef[] {
  return [
    {
      id: R1_ID,
      kind: 'kafka-acks-all',
      title: `R1. Kafka produce acks=all: 1 producer, 1 KiB records, ${R1_PARTITIONS} partitions, max rate`,
      short: 'R1: Kafka acks=all 1 KiB',
      size: 1024,
      setups: [
        single('single node (file engine, flush async)'),
        clusterSetup(DEFAULT_MODE, '', 1, 1, ' (default)'),
        clusterSetup({ ensemble: 2, writeQuorum: 2, ackQuorum: 2, flush: 'async' }, '', 1, 1, ' (synchronous double write)'),
        clusterSetup({ ensemble: 2, writeQuorum: 2, ackQuorum: 1, flush: 'async' }, '', 1, 1, ' (asynchronous replication)'),
        clusterSetup({ ensemble: 3, writeQuorum: 2, ackQuorum: 2, flush: 'async' }, '', 1, 1, ' (striped: 2 copies over 3 journals)'),
        clusterSetup({ ...DEFAULT_MODE, flush: 'sync' }),
      ],
    },
    {
      id: R2_ID,
      kind: 'mqtt-qos1',
      title: 'R2. MQTT QoS 1: 1 publisher → 1 subscriber, 100 B, max rate',
      short: 'R2: MQTT QoS 1',
      size: 100,
      setups: [
        single('single node (file engine, flush async)'),
        clusterSetup(DEFAULT_MODE, '-same', 1, 1, ', publisher and subscriber on node 1'),
        clusterSetup(DEFAULT_MODE, '-cross', 1, 2, ', publisher on node 1 → subscriber on node 2'),
      ],
    },
    {
      id: FAILOVER_ID,
      kind: 'failover',
      title: 'Failover: kill -9 of the node leading the partition under a steady acks=all producer',
      short: 'failover',
      size: 1024,
      setups: [clusterSetup(DEFAULT_MODE, '', 1, 1, ' (default)')],
    },
  ];
}

/** `--workloads` names for the replicated ones: r1, r2, failover, replicated (= all three); case-insensitive. */
export function expandWorkloadAliases(s: string): string {
  const names: Record<string, string> = { r1: String(R1_ID), r2: String(R2_ID), failover: String(FAILOVER_ID), replicated: `${R1_ID}-${FAILOVER_ID}` };
  return s
    .split(',')
    .map((part) => names[part.trim().toLowerCase()] ?? part)
    .join(',');
}

// ------------------------------------------------------------------ cluster config

export interface NodePorts {
  grpc: number;
  http: number;
  journal: number;
  kafka: number;
  mqtt: number;
}

export interface ClusterConfigOptions {
  nodeId: number;
  /** Every node's ports, by node id (1, 2, 3). */
  ports: ReadonlyMap<number, NodePorts>;
  dataDir: string;
  mode: ReplicationMode;
  /** [mqtt] max_inflight / max_queued_messages: the single node's (the defaults, 32 and 1000). */
  maxInflight: number;
  maxQueued: number;
  /** [meta] node_suspect_ms / node_dead_ms; the server's defaults (3000 / 10000) when undefined. */
  suspectMs?: number;
  deadMs?: number;
  /** Open the Kafka listener (the MQTT one is always open). */
  kafka: boolean;
}

/** The TOML of one node of a three-node cluster: every node meta + broker + journal, topics on the journal engine. */
export function clusterNodeConfig(o: ClusterConfigOptions): string {
  const ids = [...o.ports.keys()].sort((a, b) => a - b);
  const p = o.ports.get(o.nodeId);
  if (!p) throw new Error(`no ports for node ${o.nodeId}`);
  const metaAddrs = ids.map((id) => `${id} = "127.0.0.1:${(o.ports.get(id) as NodePorts).grpc}"`).join(', ');
  const meta =
    o.suspectMs !== undefined || o.deadMs !== undefined
      ? `[meta]\n${o.suspectMs !== undefined ? `node_suspect_ms = ${o.suspectMs}\n` : ''}${o.deadMs !== undefined ? `node_dead_ms = ${o.deadMs}\n` : ''}\n`
      : '';
  return `cluster_name = "robust-bench-compare"
node_id = ${o.nodeId}
roles = ["meta", "broker", "journal"]
advertised_host = "127.0.0.1"
bind_host = "127.0.0.1"
grpc_port = ${p.grpc}
http_port = ${p.http}
meta_addrs = { ${metaAddrs} }
data_dir = "${o.dataDir}"

[log]
level = "warn"
format = "json"

${meta}[storage]
default_engine = "journal"
flush = "${o.mode.flush}"

[journal]
tcp_port = ${p.journal}
ensemble_size = ${o.mode.ensemble}
write_quorum = ${o.mode.writeQuorum}
ack_quorum = ${o.mode.ackQuorum}

[mqtt]
tcp_port = ${p.mqtt}
ws_port = 0
tls_port = 0
wss_port = 0
max_inflight = ${o.maxInflight}
max_queued_messages = ${o.maxQueued}

[kafka]
tcp_port = ${o.kafka ? p.kafka : 0}

[rocketmq]
grpc_port = 0
`;
}

// ------------------------------------------------------------------ load generator command lines

export interface R1ArgsOptions {
  host: string;
  kafkaPort: number;
  duration_s: number;
  warmup_s: number;
  size: number;
}

/** `robust-bench kafka produce`, acks=all: one producer, one connection per partition leader (robust-bench follows Metadata). */
export function r1Args(o: R1ArgsOptions): string[] {
  return [
    'kafka',
    'produce',
    '--brokers',
    `${o.host}:${o.kafkaPort}`,
    '--topic',
    R1_TOPIC,
    '--partitions',
    String(R1_PARTITIONS),
    '--record-size',
    String(o.size),
    '--acks',
    'all',
    '--producers',
    '1',
    '--workers',
    '1',
    '--duration',
    String(o.duration_s),
    '--warmup',
    String(o.warmup_s),
    '--output',
    'json',
  ];
}

export interface R2ArgsOptions {
  host: string;
  pubPort: number;
  subPort: number;
  duration_s: number;
  warmup_s: number;
  size: number;
  window: number;
}

/**
 * Extra warm-up of both processes, s: the subscriber must be subscribed, and on a cluster
 * its route known to the publisher's node, before the windows open.
 */
export const R2_LEAD_S = 1;

/**
 * The subscriber (`robust-bench mqtt sub`) and the publisher (`robust-bench mqtt pub`), two
 * processes started together with the same warm-up and window, so that the windows line up
 * (to within the difference of their connect times, tens of ms): each process's rate is
 * measured while the other is active (a subscriber that left early would let the publisher
 * run faster in its last seconds, and the other way round).
 */
export function r2Args(o: R2ArgsOptions): { sub: string[]; pub: string[] } {
  const common = (port: number) => [
    '--host',
    o.host,
    '--port',
    String(port),
    '--mqtt-version',
    '4',
    '--workers',
    '1',
    '--clients',
    '1',
    '--topic',
    R2_TOPIC,
    '--qos',
    '1',
    '--warmup',
    String(o.warmup_s + R2_LEAD_S),
    '--duration',
    String(o.duration_s),
    '--output',
    'json',
  ];
  return {
    sub: ['mqtt', 'sub', ...common(o.subPort)],
    pub: ['mqtt', 'pub', ...common(o.pubPort), '--size', String(o.size), '--rate', '0', '--window', String(o.window)],
  };
}

// ------------------------------------------------------------------ runs and summaries

export interface ReplicatedRecord {
  workload: number;
  setup: string;
  round: number;
  ok: boolean;
  error?: string;
  /** Each load generator's command line after `robust-bench` (R2: the subscriber's, then the publisher's). */
  argv: string[][];
  /** R1: the producer's result; R2: the subscriber's (received, end-to-end latency, loss). */
  load: LoadgenResult | null;
  /** R2: the publisher's result (sent, PUBACK latency). */
  pub?: LoadgenResult | null;
  /** The load generators' JSON as printed. */
  load_raw?: unknown[];
  /** CPU (utime + stime) of every node process over the load generators' life, s. */
  nodes_cpu_s: number | null;
  /** The load generators' life (start to the last exit), s. */
  wall_s: number | null;
  /** What the nodes handled over the whole run: R1 records acknowledged, R2 messages published (the CPU-per-message divisor). */
  handled: number | null;
  /** CPU of every other process on the machine over wall_s, % of one core. */
  others_cpu_percent: number | null;
  /** Sum of the nodes' VmRSS after the run, bytes. */
  rss_bytes: number | null;
  /** R1 on a cluster: the leader of each partition (admin API, after the run). */
  partition_leaders?: number[];
}

export interface LatencyPair {
  p50: number;
  p99: number;
}

export interface ReplicatedSummary {
  workload: number;
  setup: string;
  runs: number;
  failed_runs: number;
  errors: string[];
  /** R1: records acknowledged per second; R2: messages received per second. */
  per_s: number | null;
  /** R2: messages published per second (the publisher's window). */
  sent_per_s: number | null;
  /** per_s × size, 10^6 bytes per second. */
  mb_s: number | null;
  /** R1: Produce request → response; R2: end to end (publish → receipt). */
  latency_ms: LatencyPair | null;
  /** R2: publish → PUBACK. */
  ack_latency_ms: LatencyPair | null;
  /** R2: sequence gaps the subscriber saw (sum over rounds); R1: records the broker refused. */
  lost: number | null;
  /** Node CPU per record / message handled, µs (all nodes). */
  cpu_us_per_msg: number | null;
  rss_bytes: number | null;
  others_cpu_percent: number | null;
  loadgen_saturated: boolean;
}

/** A setup ÷ the single node of the same workload: the cost of replication. */
export interface ReplicationCost {
  workload: number;
  setup: string;
  /** < 1: the cluster moves fewer records or messages per second. */
  per_s: number | null;
  /** > 1: slower. */
  p50: number | null;
  p99: number | null;
  /** > 1: more CPU (all nodes together) per record or message. */
  cpu_us_per_msg: number | null;
}

function pair(l: { p50: number; p99: number } | null | undefined): LatencyPair | null {
  return l ? { p50: l.p50, p99: l.p99 } : null;
}

/** One summary per (workload, setup) with records, medians over the successful rounds; setups in the definitions' order. */
export function summariseReplicated(records: readonly ReplicatedRecord[], defs: readonly ReplicatedWorkloadDef[]): ReplicatedSummary[] {
  const out: ReplicatedSummary[] = [];
  for (const d of defs) {
    if (d.kind === 'failover') continue;
    for (const s of d.setups) {
      const all = records.filter((r) => r.workload === d.id && r.setup === s.id);
      if (all.length === 0) continue;
      const ok = all.filter((r) => r.ok && r.load !== null);
      const pick = (f: (r: ReplicatedRecord) => number | null | undefined) => median(ok.map(f));
      const perS = pick((r) => r.load?.received_per_s);
      const lat = ok.some((r) => r.load?.latency_ms) ? { p50: pick((r) => r.load?.latency_ms?.p50) ?? NaN, p99: pick((r) => r.load?.latency_ms?.p99) ?? NaN } : null;
      const ackSrc = (r: ReplicatedRecord) => (d.kind === 'mqtt-qos1' ? r.pub?.ack_latency_ms : null);
      const ack = ok.some((r) => ackSrc(r)) ? { p50: pick((r) => ackSrc(r)?.p50) ?? NaN, p99: pick((r) => ackSrc(r)?.p99) ?? NaN } : null;
      const lost = ok.length === 0 ? null : ok.reduce((n, r) => n + (r.load?.lost ?? 0), 0);
      out.push({
        workload: d.id,
        setup: s.id,
        runs: ok.length,
        failed_runs: all.length - ok.length,
        errors: all.filter((r) => !r.ok).map((r) => r.error ?? 'failed'),
        per_s: perS,
        sent_per_s: d.kind === 'mqtt-qos1' ? pick((r) => r.pub?.sent_per_s) : pick((r) => r.load?.sent_per_s),
        mb_s: perS === null ? null : (perS * d.size) / 1e6,
        latency_ms: pair(lat),
        ack_latency_ms: pair(ack),
        lost,
        cpu_us_per_msg: pick((r) => (r.nodes_cpu_s !== null && r.handled !== null && r.handled > 0 ? (r.nodes_cpu_s * 1e6) / r.handled : null)),
        rss_bytes: pick((r) => r.rss_bytes),
        others_cpu_percent: pick((r) => r.others_cpu_percent),
        loadgen_saturated: ok.some((r) => r.load?.loadgen?.saturated === true || r.pub?.loadgen?.saturated === true),
      });
    }
  }
  return out;
}

/** Every non-single setup ÷ the single node of its workload (ratios null where either side lacks the figure). */
export function replicationCosts(summaries: readonly ReplicatedSummary[]): ReplicationCost[] {
  const out: ReplicationCost[] = [];
  for (const s of summaries) {
    if (s.setup === 'single') continue;
    const base = summaries.find((b) => b.workload === s.workload && b.setup === 'single');
    out.push({
      workload: s.workload,
      setup: s.setup,
      per_s: ratio(s.per_s, base?.per_s),
      p50: ratio(s.latency_ms?.p50, base?.latency_ms?.p50),
      p99: ratio(s.latency_ms?.p99, base?.latency_ms?.p99),
      cpu_us_per_msg: ratio(s.cpu_us_per_msg, base?.cpu_us_per_msg),
    });
  }
  return out;
}

// ------------------------------------------------------------------ failover

/**
 * The steady producer's writes, in the order they were acknowledged (one write in flight
 * at a time, so also in the order they were sent): send start and acknowledgement,
 * process.hrtime ns (CLOCK_MONOTONIC, the clock the kill is stamped with).
 */
export interface AckLog {
  sent: readonly number[];
  acked: readonly number[];
}

export interface FailoverMeasure {
  /** Kill → acknowledgement of the first write sent after the kill, ms; null when none was acknowledged. */
  failover_ms: number | null;
  /** Kill → the first acknowledgement received after the kill (of any write), ms; null when none. */
  first_ack_ms: number | null;
}

/**
 * Failover time of one kill. A write the dead node answered just before it died can be
 * read just after the kill; counting from the first write *sent* after the kill leaves it
 * out (and overstates by at most one write's round trip: a write in flight at the kill is
 * retried by the client, acknowledged when a new leader has taken over, and only then is
 * the next one sent). `from`: an index where to start looking (every sample before it is
 * older than the kill).
 */
export function failoverFrom(killNs: number, log: AckLog, from = 0): FailoverMeasure {
  let firstAck: number | null = null;
  let failover: number | null = null;
  for (let i = Math.max(0, from); i < log.acked.length; i++) {
    const a = log.acked[i] as number;
    if (firstAck === null && a >= killNs) firstAck = (a - killNs) / 1e6;
    if ((log.sent[i] as number) >= killNs) {
      failover = (a - killNs) / 1e6;
      break;
    }
  }
  return { failover_ms: failover, first_ack_ms: firstAck };
}

export interface KillRecord {
  round: number;
  /** 1, 2, … within the round. */
  kill: number;
  /** The node that led the partition, killed with SIGKILL. */
  victim: number;
  /** It was the meta (Raft) leader too: a Raft election precedes the reassignment. */
  victim_was_meta_leader: boolean;
  /** The partition's leader once writes were acknowledged again. */
  new_leader: number | null;
  failover_ms: number | null;
  first_ack_ms: number | null;
  /** Restart of the victim → it was reported alive by the cluster, ms. */
  rejoin_ms: number | null;
  error?: string;
}

export interface FailoverStats {
  kills: number;
  /** Kills with a failover time. */
  measured: number;
  p50_ms: number | null;
  max_ms: number | null;
  min_ms: number | null;
  mean_ms: number | null;
}

/** p50 (the median) and max, min, mean of the failover times over the kills that have one. */
export function failoverStats(kills: readonly Pick<KillRecord, 'failover_ms'>[]): FailoverStats {
  const ms = kills.map((k) => k.failover_ms).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return {
    kills: kills.length,
    measured: ms.length,
    p50_ms: median(ms),
    max_ms: ms.length > 0 ? Math.max(...ms) : null,
    min_ms: ms.length > 0 ? Math.min(...ms) : null,
    mean_ms: ms.length > 0 ? ms.reduce((a, b) => a + b, 0) / ms.length : null,
  };
}

/** The next victim: the partition's current leader (it moves with every kill, since a restarted node leads nothing). */
export function pickVictim(shards: ReadonlyArray<{ shard: number; leader: number }>, shard = 0): number | null {
  const s = shards.find((x) => x.shard === shard);
  return s !== undefined && s.leader > 0 ? s.leader : null;
}

export interface FailoverReport extends FailoverStats {
  setup: string;
  records: KillRecord[];
  /** Write acknowledgement latency (send → ack) of the steady producer before the first kill: p50, ms. */
  steady_ack_p50_ms: number | null;
  /** Writes acknowledged over the whole run. */
  writes_acked: number;
  /** Sends the client gave up on (after its retries), by error name. */
  send_failures: Record<string, number>;
  error?: string;
}

/** Median of ack − sent over the samples [from, to), ms. */
export function ackLatencyP50(log: AckLog, from: number, to: number): number | null {
  const xs: number[] = [];
  for (let i = Math.max(0, from); i < Math.min(to, log.acked.length); i++) xs.push(((log.acked[i] as number) - (log.sent[i] as number)) / 1e6);
  return median(xs);
}

export interface ReplicatedReport {
  /** The replicated workloads that ran. */
  workloads: ReplicatedWorkloadDef[];
  options: {
    kills: number;
    /** taskset CPU list of every cluster node (and of the single node: CPU 0). */
    cluster_cpus: string | null;
    suspect_ms: number | null;
    dead_ms: number | null;
    failover_interval_ms: number;
  };
  records: ReplicatedRecord[];
  summaries: ReplicatedSummary[];
  costs: ReplicationCost[];
  failover: FailoverReport | null;
  /** Settings as Markdown bullets, and node 1's config of the last cluster run. */
  settings: { description: string[]; cluster_config: string; single_config: string };
  notes: string[];
}
