/**
 * The replicated (journal) workloads of `npm run bench:compare` (9 R1, 10 R2, 11 failover;
 * see bench/compare/replicated.ts for what each is): starting the single node or the
 * three-node cluster of each setup, running the load generator(s) against it, reading
 * every node's CPU from /proc around the run, and the failover loop. Used by
 * bench/compare.ts; not an entry point of its own.
 *
 * Pinning: the single node on CPU 0 (as the other workloads' broker), every cluster node
 * on `clusterCpus` (default "0": the three share one core, the single node's budget), the
 * load generator(s) and the harness (with the failover producer) on CPU 1.
 */
import { Kafka, logLevel } from 'kafkajs';
import { packageVersion, startBroker, stopBroker, type RunningBroker } from './lib/brokers.js';
import { BenchCluster } from './lib/cluster.js';
import { cpuSeconds, machineBusySeconds, memKiB, reapedChildrenCpuSeconds } from './lib/proc.js';
import { pinned, spawnTracked, stopProcess, withOpenFiles, type Tracked } from './lib/processes.js';
import { SteadyProducer } from './lib/steady-producer.js';
import { fmtInt, fmtMs, fmtNum, fmtRatio } from './compare/format.js';
import {
  ackLatencyP50,
  DEFAULT_MODE,
  failoverFrom,
  failoverStats,
  FAILOVER_TOPIC,
  modeLabel,
  pickVictim,
  r1Args,
  R1_TOPIC,
  r2Args,
  R2_LEAD_S,
  replicatedWorkloads,
  replicationCosts,
  summariseReplicated,
  type FailoverReport,
  type KillRecord,
  type ReplicatedRecord,
  type ReplicatedReport,
  type ReplicatedSetup,
  type ReplicatedWorkloadDef,
} from './compare/replicated.js';
import { parseLoadgenOutput } from './compare/summary.js';
import type { LoadgenResult } from './compare/types.js';

export interface ReplicatedCtx {
  loadgenJs: string;
  robustRoot: string | undefined;
  pin: boolean;
  /** taskset CPU list of every cluster node. */
  clusterCpus: string;
  clk: number;
  duration: number;
  warmup: number;
  window: number;
  openFiles: number | undefined;
  /** Kills per round of the failover workload. */
  kills: number;
  suspectMs: number | undefined;
  deadMs: number | undefined;
  /** The failover producer sends at most one write per this many ms. */
  failoverIntervalMs: number;
  maxInflight: number;
  maxQueued: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A running single node or cluster, as the runs need it. */
interface Target {
  pids(): number[];
  mqttPort(node: number): number;
  kafkaPort(node: number): number;
  output(): string;
  stop(): Promise<void>;
  config: string;
  cluster?: BenchCluster;
}

async function startTarget(setup: ReplicatedSetup, ctx: ReplicatedCtx, kafka: boolean): Promise<Target> {
  if (setup.cluster === null) {
    const b: RunningBroker = await startBroker({
      kind: 'robust',
      ...(ctx.pin ? { cpu: 0 } : {}),
      ...(ctx.openFiles !== undefined ? { openFiles: ctx.openFiles } : {}),
      prefix: 'robust-bench-compare-single-',
      robust: { engine: 'file', maxInflight: ctx.maxInflight, maxQueued: ctx.maxQueued, ...(kafka ? { kafka: true } : {}), ...(ctx.robustRoot !== undefined ? { root: ctx.robustRoot } : {}) },
    });
    return {
      pids: () => [b.pid],
      mqttPort: () => b.port,
      kafkaPort: () => b.kafkaPort as number,
      output: () => b.output().slice(-3000),
      stop: () => stopBroker(b),
      config: b.config,
    };
  }
  const c = await BenchCluster.start({
    mode: setup.cluster,
    ...(ctx.pin ? { cpus: ctx.clusterCpus } : {}),
    ...(ctx.openFiles !== undefined ? { openFiles: ctx.openFiles } : {}),
    ...(ctx.robustRoot !== undefined ? { root: ctx.robustRoot } : {}),
    maxInflight: ctx.maxInflight,
    maxQueued: ctx.maxQueued,
    kafka,
    ...(ctx.suspectMs !== undefined ? { suspectMs: ctx.suspectMs } : {}),
    ...(ctx.deadMs !== undefined ? { deadMs: ctx.deadMs } : {}),
    prefix: 'robust-bench-compare-cluster-',
  });
  return {
    pids: () => c.pids(),
    mqttPort: (n) => c.port(n).mqtt,
    kafkaPort: (n) => c.port(n).kafka,
    output: () => c.output(),
    stop: () => c.stop(),
    config: c.configs.get(1) ?? '',
    cluster: c,
  };
}

function spawnLoad(ctx: ReplicatedCtx, argv: string[]): Tracked {
  let [cmd, cmdArgv] = pinned(ctx.pin, 1, process.execPath, [ctx.loadgenJs, ...argv]);
  if (ctx.openFiles !== undefined) [cmd, cmdArgv] = withOpenFiles(ctx.openFiles, cmd, cmdArgv);
  return spawnTracked(cmd, cmdArgv, { group: true });
}

/** Waits for a load generator; SIGTERM (then SIGKILL) after limitMs. True when it had to be stopped. */
async function finish(t: Tracked, limitMs: number): Promise<boolean> {
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    void stopProcess(t, 5000);
  }, limitMs);
  await t.exited;
  clearTimeout(killer);
  return timedOut;
}

function lastJson(stdout: string): unknown {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  try {
    return line === undefined ? null : (JSON.parse(line) as unknown);
  } catch {
    return null;
  }
}

interface Measured {
  nodes_cpu_s: number | null;
  wall_s: number;
  others_cpu_percent: number | null;
  rss_bytes: number | null;
  nodesAlive: boolean;
}

/** Runs `body` (the load generators) while reading every node's CPU, the machine's and the reaped children's. */
async function measured<T>(target: Target, ctx: ReplicatedCtx, body: () => Promise<T>): Promise<{ value: T; m: Measured }> {
  const pids = target.pids();
  const nodesCpu = () => pids.reduce((s, p) => s + cpuSeconds(p, ctx.clk), 0);
  const cpu0 = nodesCpu();
  const busy0 = machineBusySeconds(ctx.clk);
  const self0 = cpuSeconds('self', ctx.clk);
  const reaped0 = reapedChildrenCpuSeconds(ctx.clk);
  const t0 = performance.now();
  const value = await body();
  const wall = (performance.now() - t0) / 1000;
  let cpu: number | null = null;
  let rss: number | null = null;
  let alive = true;
  try {
    cpu = nodesCpu() - cpu0;
    rss = pids.reduce((s, p) => s + memKiB(p, 'VmRSS') * 1024, 0);
  } catch {
    alive = false;
  }
  const load = reapedChildrenCpuSeconds(ctx.clk) - reaped0;
  const others = cpu === null ? null : Math.max(0, machineBusySeconds(ctx.clk) - busy0 - cpu - load - (cpuSeconds('self', ctx.clk) - self0));
  return { value, m: { nodes_cpu_s: cpu === null ? null : round(cpu, 3), wall_s: round(wall, 3), others_cpu_percent: others === null ? null : round((100 * others) / wall, 1), rss_bytes: rss, nodesAlive: alive } };
}

function failed(d: ReplicatedWorkloadDef, s: ReplicatedSetup, roundNo: number, argv: string[][], error: string): ReplicatedRecord {
  return { workload: d.id, setup: s.id, round: roundNo, ok: false, error, argv, load: null, nodes_cpu_s: null, wall_s: null, handled: null, others_cpu_percent: null, rss_bytes: null };
}

/** R1: `robust-bench kafka produce --acks all` against node 1 (it follows Metadata to every partition's leader). */
async function runR1(d: ReplicatedWorkloadDef, s: ReplicatedSetup, roundNo: number, ctx: ReplicatedCtx, configs: { cluster: string; single: string }): Promise<ReplicatedRecord> {
  let target: Target | undefined;
  let argv: string[] = [];
  try {
    target = await startTarget(s, ctx, true);
    if (s.cluster) configs.cluster = target.config;
    else configs.single = target.config;
    await sleep(300);
    argv = r1Args({ host: '127.0.0.1', kafkaPort: target.kafkaPort(s.pubNode), duration_s: ctx.duration, warmup_s: ctx.warmup, size: d.size });
    const t = target;
    const { value: run, m } = await measured(target, ctx, async () => {
      const load = spawnLoad(ctx, argv);
      const timedOut = await finish(load, (ctx.warmup + ctx.duration + 120) * 1000);
      return { load, timedOut };
    });
    const tail = () => `\nload generator output (tail):\n${run.load.output().slice(-3000)}\nnode output (tail):\n${t.output()}`;
    if (run.timedOut) return failed(d, s, roundNo, [argv], `load generator timed out${tail()}`);
    if (!m.nodesAlive) return failed(d, s, roundNo, [argv], `a node exited during the run${tail()}`);
    let load: LoadgenResult;
    try {
      load = parseLoadgenOutput(run.load.stdout());
    } catch (err) {
      return failed(d, s, roundNo, [argv], `load generator: ${message(err).split('\n')[0]}${tail()}`);
    }
    const raw = lastJson(run.load.stdout()) as { totals?: { acked?: number } } | null;
    const leaders = t.cluster
      ? await t.cluster
          .partitionLeaders(R1_TOPIC)
          .then((sh) => [...sh].sort((x, y) => x.shard - y.shard).map((x) => x.leader))
          .catch(() => undefined)
      : undefined;
    return {
      workload: d.id,
      setup: s.id,
      round: roundNo,
      ok: true,
      argv: [argv],
      load,
      load_raw: [raw],
      nodes_cpu_s: m.nodes_cpu_s,
      wall_s: m.wall_s,
      handled: raw?.totals?.acked ?? null,
      others_cpu_percent: m.others_cpu_percent,
      rss_bytes: m.rss_bytes,
      ...(leaders !== undefined ? { partition_leaders: leaders } : {}),
    };
  } catch (err) {
    return failed(d, s, roundNo, argv.length > 0 ? [argv] : [], message(err));
  } finally {
    if (target) await target.stop();
  }
}

/** R2: `robust-bench mqtt sub` on the subscriber's node and `robust-bench mqtt pub` on the publisher's, started together. */
async function runR2(d: ReplicatedWorkloadDef, s: ReplicatedSetup, roundNo: number, ctx: ReplicatedCtx, configs: { cluster: string; single: string }): Promise<ReplicatedRecord> {
  let target: Target | undefined;
  let argv: { sub: string[]; pub: string[] } | undefined;
  try {
    target = await startTarget(s, ctx, false);
    if (s.cluster) configs.cluster = target.config;
    else configs.single = target.config;
    await sleep(300);
    const a = r2Args({ host: '127.0.0.1', pubPort: target.mqttPort(s.pubNode), subPort: target.mqttPort(s.subNode), duration_s: ctx.duration, warmup_s: ctx.warmup, size: d.size, window: ctx.window });
    argv = a;
    const t = target;
    const limitMs = (ctx.warmup + ctx.duration + R2_LEAD_S + 120) * 1000;
    const { value: run, m } = await measured(target, ctx, async () => {
      const sub = spawnLoad(ctx, a.sub);
      const pub = spawnLoad(ctx, a.pub);
      const [subTimedOut, pubTimedOut] = await Promise.all([finish(sub, limitMs), finish(pub, limitMs)]);
      return { sub, pub, timedOut: subTimedOut || pubTimedOut };
    });
    const tail = () =>
      `\nsubscriber output (tail):\n${run.sub.output().slice(-2000)}\npublisher output (tail):\n${run.pub.output().slice(-2000)}\nnode output (tail):\n${t.output()}`;
    if (run.timedOut) return failed(d, s, roundNo, [a.sub, a.pub], `load generator timed out${tail()}`);
    if (!m.nodesAlive) return failed(d, s, roundNo, [a.sub, a.pub], `a node exited during the run${tail()}`);
    let sub: LoadgenResult;
    let pub: LoadgenResult;
    try {
      sub = parseLoadgenOutput(run.sub.stdout());
      pub = parseLoadgenOutput(run.pub.stdout());
    } catch (err) {
      return failed(d, s, roundNo, [a.sub, a.pub], `load generator: ${message(err).split('\n')[0]}${tail()}`);
    }
    const pubRaw = lastJson(run.pub.stdout()) as { totals?: { sent?: number } } | null;
    return {
      workload: d.id,
      setup: s.id,
      round: roundNo,
      ok: true,
      argv: [a.sub, a.pub],
      load: sub,
      pub,
      load_raw: [lastJson(run.sub.stdout()), pubRaw],
      nodes_cpu_s: m.nodes_cpu_s,
      wall_s: m.wall_s,
      handled: pubRaw?.totals?.sent ?? null,
      others_cpu_percent: m.others_cpu_percent,
      rss_bytes: m.rss_bytes,
    };
  } catch (err) {
    return failed(d, s, roundNo, argv ? [argv.sub, argv.pub] : [], message(err));
  } finally {
    if (target) await target.stop();
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last !== undefined ? ` (last error: ${message(last)})` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * Failover: a 3/3/2 cluster, a topic of 1 partition, a steady acks=all producer (in this
 * process, kafkajs), and `kills` times: find the partition's leader (Kafka Metadata), kill -9
 * it, wait for the next acknowledged write, restart it and wait until the cluster reports
 * it alive and writes flow again.
 */
async function runFailover(d: ReplicatedWorkloadDef, roundNo: number, ctx: ReplicatedCtx, configs: { cluster: string; single: string }, log: (s: string) => void): Promise<FailoverReport> {
  const setup = d.setups[0] as ReplicatedSetup;
  const records: KillRecord[] = [];
  let cluster: BenchCluster | undefined;
  let producer: SteadyProducer | undefined;
  const report = (error?: string): FailoverReport => ({
    setup: setup.id,
    ...failoverStats(records),
    records,
    steady_ack_p50_ms: null,
    writes_acked: producer?.acked.length ?? 0,
    send_failures: { ...(producer?.failures ?? {}) },
    ...(error !== undefined ? { error } : {}),
  });
  try {
    const target = await startTarget({ ...setup, cluster: setup.cluster ?? DEFAULT_MODE }, ctx, true);
    cluster = target.cluster as BenchCluster;
    configs.cluster = target.config;
    const c = cluster;
    const brokers = [1, 2, 3].map((id) => `127.0.0.1:${c.port(id).kafka}`);
    const admin = new Kafka({ clientId: 'robust-bench-failover-admin', brokers, logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100 } }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: FAILOVER_TOPIC, numPartitions: 1 }], waitForLeaders: true, timeout: 30_000 });
    } finally {
      await admin.disconnect();
    }
    producer = new SteadyProducer({ brokers, topic: FAILOVER_TOPIC, partition: 0, size: d.size, intervalMs: ctx.failoverIntervalMs });
    const p = producer;
    p.start();
    await until('the first acknowledged writes', () => (p.acked.length >= 20 ? true : undefined), 60_000);
    await sleep(Math.max(1, ctx.warmup) * 1000);
    const steadyFrom = Math.floor(p.acked.length / 2);
    let steadyTo = p.acked.length;
    for (let k = 1; k <= ctx.kills; k++) {
      const victim = await until('a leader of the partition', async () => pickVictim(await c.partitionLeaders(FAILOVER_TOPIC)) ?? undefined, 30_000);
      const metaLeader = (await c.status(victim).catch(() => ({ leader_id: -1 }))).leader_id;
      const from = p.acked.length;
      if (k === 1) steadyTo = from;
      const killNs = await c.kill(victim);
      const rec: KillRecord = { round: roundNo, kill: k, victim, victim_was_meta_leader: metaLeader === victim, new_leader: null, failover_ms: null, first_ack_ms: null, rejoin_ms: null };
      const acked = await p.waitAckSentAfter(killNs, 90_000, from);
      const f = failoverFrom(killNs, p, from);
      rec.failover_ms = f.failover_ms === null ? null : round(f.failover_ms, 1);
      rec.first_ack_ms = f.first_ack_ms === null ? null : round(f.first_ack_ms, 1);
      if (!acked) rec.error = 'no write acknowledged within 90 s of the kill';
      rec.new_leader = await c
        .partitionLeaders(FAILOVER_TOPIC)
        .then((s) => pickVictim(s))
        .catch(() => null);
      const t0 = performance.now();
      await c.startNode(victim);
      await c.waitAllAlive(60_000);
      rec.rejoin_ms = round(performance.now() - t0, 0);
      records.push(rec);
      log(
        `      kill ${k}/${ctx.kills}: node ${victim}${rec.victim_was_meta_leader ? ' (meta leader too)' : ''} → failover ${rec.failover_ms === null ? '—' : `${fmtInt(rec.failover_ms)} ms`} ` +
          `(first ack after the kill ${rec.first_ack_ms === null ? '—' : `${fmtInt(rec.first_ack_ms)} ms`}), new leader ${rec.new_leader ?? '—'}, victim alive again after ${((rec.rejoin_ms ?? 0) / 1000).toFixed(1)} s`,
      );
      // Writes flowing again with every node up before the next kill.
      const n = p.acked.length;
      const settleFrom = Date.now();
      await until('writes after the restart', () => (p.acked.length >= n + 20 && Date.now() - settleFrom >= 1000 ? true : undefined), 60_000);
    }
    const out = report();
    out.steady_ack_p50_ms = ackLatencyP50(p, steadyFrom, steadyTo);
    return out;
  } catch (err) {
    return report(`${message(err)}${cluster ? `\n${cluster.output()}` : ''}`);
  } finally {
    await producer?.stop();
    await cluster?.stop();
  }
}

function progress(d: ReplicatedWorkloadDef, r: ReplicatedRecord): string {
  if (!r.ok) return `FAILED: ${(r.error ?? '').split('\n')[0]}`;
  const l = r.load;
  if (!l) return 'no result';
  const cpu = r.nodes_cpu_s !== null && r.handled ? (r.nodes_cpu_s * 1e6) / r.handled : null;
  const sat = l.loadgen?.saturated || r.pub?.loadgen?.saturated ? ', LOAD GENERATOR SATURATED' : '';
  if (d.kind === 'kafka-acks-all') {
    return `${fmtInt(l.received_per_s)} records/s (${fmtNum((l.received_per_s * d.size) / 1e6, 1)} MB/s), ack p50 ${fmtMs(l.latency_ms?.p50)} p99 ${fmtMs(l.latency_ms?.p99)} ms, nodes ${fmtNum(cpu, 1)} µs CPU/record, others ${r.others_cpu_percent ?? '?'}%${r.partition_leaders ? `, partition leaders: nodes ${r.partition_leaders.join(', ')}` : ''}${sat}`;
  }
  return (
    `${fmtInt(r.pub?.sent_per_s)} sent/s, ${fmtInt(l.received_per_s)} received/s, lost ${fmtInt(l.lost)}, p50 ${fmtMs(l.latency_ms?.p50)} p99 ${fmtMs(l.latency_ms?.p99)} ms, ` +
    `PUBACK p99 ${fmtMs(r.pub?.ack_latency_ms?.p99)} ms, nodes ${fmtNum(cpu, 1)} µs CPU/msg, others ${r.others_cpu_percent ?? '?'}%${sat}`
  );
}

/** Runs the replicated workloads among `ids` (9-11), `rounds` times; never throws for a failed run (it is recorded). */
export async function runReplicated(ids: readonly number[], rounds: number, ctx: ReplicatedCtx, log: (s: string) => void = console.log): Promise<ReplicatedReport> {
  const defs = replicatedWorkloads().filter((d) => ids.includes(d.id));
  const records: ReplicatedRecord[] = [];
  const failovers: FailoverReport[] = [];
  const configs = { cluster: '', single: '' };
  for (let r = 1; r <= rounds; r++) {
    if (rounds > 1) log(`replicated workloads, round ${r} of ${rounds}:`);
    for (const d of defs) {
      if (d.kind === 'failover') {
        log(`  ${String(d.id).padEnd(2)} ${d.short.padEnd(26)} ${d.setups[0]?.id ?? ''}: ${ctx.kills} kill(s)`);
        const f = await runFailover(d, r, ctx, configs, log);
        failovers.push(f);
        log(f.error ? `      FAILED: ${f.error.split('\n')[0]}` : `      failover p50 ${fmtInt(f.p50_ms)} ms, max ${fmtInt(f.max_ms)} ms over ${f.measured} kill(s)`);
        continue;
      }
      for (const s of d.setups) {
        process.stdout.write(`  ${String(d.id).padEnd(2)} ${d.short.padEnd(26)} ${s.id.padEnd(18)} ... `);
        const rec = d.kind === 'kafka-acks-all' ? await runR1(d, s, r, ctx, configs) : await runR2(d, s, r, ctx, configs);
        records.push(rec);
        log(progress(d, rec));
        if (!rec.ok && rec.error) log(rec.error.split('\n').slice(1, 30).map((l) => `      ${l}`).join('\n'));
        await sleep(500);
      }
    }
  }
  const summaries = summariseReplicated(records, defs);
  const costs = replicationCosts(summaries);
  let failover: FailoverReport | null = null;
  if (failovers.length > 0) {
    const all = failovers.flatMap((f) => f.records);
    const errors = failovers.map((f) => f.error).filter((e): e is string => e !== undefined);
    const sendFailures: Record<string, number> = {};
    for (const f of failovers) for (const [k, v] of Object.entries(f.send_failures)) sendFailures[k] = (sendFailures[k] ?? 0) + v;
    const steady = failovers.map((f) => f.steady_ack_p50_ms).filter((v): v is number => v !== null);
    failover = {
      setup: failovers[0]?.setup ?? '',
      ...failoverStats(all),
      records: all,
      steady_ack_p50_ms: steady.length > 0 ? steady.sort((a, b) => a - b)[steady.length >> 1] ?? null : null,
      writes_acked: failovers.reduce((n, f) => n + f.writes_acked, 0),
      send_failures: sendFailures,
      ...(errors.length > 0 ? { error: errors.join('\n---\n') } : {}),
    };
  }
  const notes = notesForReplicated(defs, records, summaries, failover, ctx);
  for (const c of costs) {
    const d = defs.find((x) => x.id === c.workload);
    log(`  ${d?.short ?? c.workload}, ${c.setup} ÷ single node: ${d?.kind === 'kafka-acks-all' ? 'records/s' : 'msg/s'} ${fmtRatio(c.per_s)}, p50 ${fmtRatio(c.p50)}, p99 ${fmtRatio(c.p99)}, CPU per ${d?.kind === 'kafka-acks-all' ? 'record' : 'msg'} ${fmtRatio(c.cpu_us_per_msg)}`);
  }
  return {
    workloads: defs,
    options: { kills: ctx.kills, cluster_cpus: ctx.pin ? ctx.clusterCpus : null, suspect_ms: ctx.suspectMs ?? null, dead_ms: ctx.deadMs ?? null, failover_interval_ms: ctx.failoverIntervalMs },
    records,
    summaries,
    costs,
    failover,
    settings: { description: describeReplicated(ctx), cluster_config: configs.cluster, single_config: configs.single },
    notes,
  };
}

function notesForReplicated(
  defs: readonly ReplicatedWorkloadDef[],
  records: readonly ReplicatedRecord[],
  summaries: ReturnType<typeof summariseReplicated>,
  failover: FailoverReport | null,
  ctx: ReplicatedCtx,
): string[] {
  const notes: string[] = [];
  notes.push(
    ctx.pin
      ? `Three nodes on one machine with 2 CPUs: every cluster node is pinned to CPU ${ctx.clusterCpus} (taskset), so the three share ${ctx.clusterCpus.includes(',') || ctx.clusterCpus.includes('-') ? 'those cores' : 'one core'} — ` +
          'the single node has CPU 0 to itself; the load generator(s) and this harness run on CPU 1. A real cluster has a machine per node: the figures show what replication costs ' +
          'in CPU and latency when the nodes share cores, not what three machines would sustain. The node CPU per record or message (all nodes together) is the steadier figure.'
      : 'Not pinned (taskset unavailable or fewer than 2 CPUs): the cluster nodes, the single node and the load generator shared the CPUs.',
  );
  const title = (w: number) => defs.find((d) => d.id === w)?.short ?? String(w);
  for (const s of summaries) {
    if (s.failed_runs > 0) notes.push(`${title(s.workload)}, ${s.setup}: ${s.failed_runs} run(s) failed: ${s.errors.map((e) => e.split('\n')[0]).join('; ')}`);
    if (s.loadgen_saturated) notes.push(`${title(s.workload)}, ${s.setup}: the load generator was saturated (a worker at 90%+ of its core): the figure is the load generator's limit.`);
    if (s.lost !== null && s.lost > 0) notes.push(`${title(s.workload)}, ${s.setup}: ${s.lost.toLocaleString('en-US')} ${defs.find((d) => d.id === s.workload)?.kind === 'kafka-acks-all' ? 'record(s) refused or failed' : 'message(s) lost (sequence gaps at the subscriber)'}.`);
  }
  for (const r of records) {
    for (const w of [...(r.load?.warnings ?? []), ...(r.pub?.warnings ?? [])]) {
      if (/saturated/.test(w)) continue;
      const n = `${title(r.workload)}, ${r.setup}: the load generator warned: ${w}`;
      if (!notes.includes(n)) notes.push(n);
    }
  }
  for (const r of records) {
    const l = r.partition_leaders;
    if (l !== undefined && new Set(l).size !== l.length) notes.push(`${title(r.workload)}, ${r.setup}, round ${r.round}: the partitions' leaders were nodes ${l.join(', ')} — not one partition per node.`);
  }
  const busy = summaries.filter((s) => s.others_cpu_percent !== null && s.others_cpu_percent > 25);
  if (busy.length > 0) {
    notes.push(
      `Neighbours: other processes on this shared machine used more than 25% of a core during ${busy.length} of ${summaries.length} runs ` +
        `(${busy.map((s) => `${title(s.workload)} ${s.setup} ${(s.others_cpu_percent as number).toFixed(0)}%`).join(', ')}): throughput and latency there are noisy.`,
    );
  }
  if (failover?.error) notes.push(`Failover: ${failover.error.split('\n')[0]}`);
  if (failover && failover.records.some((k) => k.error)) notes.push(`Failover: ${failover.records.filter((k) => k.error).length} kill(s) without a failover time (no write acknowledged within 90 s).`);
  return notes;
}

function describeReplicated(ctx: ReplicatedCtx): string[] {
  const meta =
    ctx.suspectMs !== undefined || ctx.deadMs !== undefined
      ? `\`[meta] node_suspect_ms = ${ctx.suspectMs ?? 'default (3000)'}\`, \`node_dead_ms = ${ctx.deadMs ?? 'default (10000)'}\``
      : 'the server\'s `[meta]` defaults (`node_suspect_ms = 3000`, `node_dead_ms = 10000`, `node_heartbeat_ms = 1000`)';
  return [
    'Single node: the same node as the side-by-side workloads (`node bin/robust-server start CONFIG`, roles `["meta", "broker"]`, `[storage] default_engine = "file"`, `flush` default `async`, `[mqtt]` limits at their defaults, `[log] level = "warn"`), pinned to CPU 0; the Kafka listener opened for R1.',
    `Three-node cluster: every node \`roles = ["meta", "broker", "journal"]\`, \`[storage] default_engine = "journal"\`, \`flush\` and \`[journal] ensemble_size / write_quorum / ack_quorum\` per setup (E/Qw/Qa: ${modeLabel(DEFAULT_MODE)} is the default), ` +
      `${meta}, \`[mqtt] max_inflight = ${ctx.maxInflight}\`, \`max_queued_messages = ${ctx.maxQueued}\` (the defaults), \`[log] level = "warn"\`; all on 127.0.0.1 with free ports; started together, used once every node reports every node alive (\`GET /api/v1/cluster\`); ` +
      `${ctx.pin ? `every node pinned to CPU ${ctx.clusterCpus} with \`taskset -c ${ctx.clusterCpus}\` (\`--cluster-cpus\`)` : 'not pinned'}. A fresh single node or cluster (new data dirs) per run.`,
    `R1: \`robust-bench kafka produce --acks all\` (-1), one producer (\`--producers 1 --workers 1\`), 1 KiB records, batches of robust-bench's default size (253 records), 5 requests in flight per connection, a topic of 3 partitions created by robust-bench against node 1 — on the cluster each node leads one, and robust-bench opens one connection per partition leader (it follows Metadata) — the same 3-partition topic on the single node. ` +
      'records/s = records acknowledged in the window; latency = Produce request → response (per request of 253 × 3 records); CPU per record = CPU of every node (utime+stime from /proc) over the load generator\'s life ÷ records acknowledged over its life.',
    `R2: two robust-bench processes started together, with the same \`--warmup\` (${R2_LEAD_S} s more than the other workloads', for the subscription and its route to settle) and \`--duration\`, so that their windows line up: \`robust-bench mqtt sub\` (1 subscriber, QoS 1) on the subscriber's node and \`robust-bench mqtt pub\` (1 publisher, QoS 1, 100 B, max rate, \`--window ${ctx.window}\`) on the publisher's node; MQTT 3.1.1, one worker each, both on CPU 1. ` +
      'msg/s received, loss (sequence gaps) and end-to-end latency are the subscriber\'s; published msg/s and PUBACK latency the publisher\'s (on a cluster, the PUBACK of a message forwarded to another node waits until that node has accepted it). CPU per message = CPU of every node ÷ messages published.',
    `Failover: a 3/3/2 cluster (flush async), a topic of 1 partition created with kafkajs; a steady producer in the harness (kafkajs ${packageVersion('node_modules/kafkajs') ?? '?'}, CPU 1): one 1 KiB record per write, acks=all, one write in flight, at most one every ${ctx.failoverIntervalMs} ms, client retries every 20–100 ms (refreshing Metadata). ` +
      `${ctx.kills} time(s) per round: the partition's leader (from Kafka Metadata) is killed with SIGKILL; failover time = the kill → the acknowledgement of the first write sent after the kill (at most one write's round trip more than the outage; "first ack after the kill" counts any write, one in flight at the kill included); ` +
      'then the victim is started again and the next kill waits until the cluster reports all three nodes alive and writes flow again. The time includes detecting the dead node (meta marks a node suspect after `node_suspect_ms` without heartbeats, and partitions move off a node that is not alive), moving the partition, the new leader taking over the journal ledger, and the client finding it.',
  ];
}
