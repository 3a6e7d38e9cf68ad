/**
 * The main thread of `robust-bench kafka produce|consume`: bootstraps (ApiVersions,
 * Metadata, CreateTopics when the topic is missing, ListOffsets for consumers), plans the
 * producers' or consumers' lanes (one connection per partition leader each), starts the
 * worker threads, runs the phases and assembles the report (KafkaBenchResult, documented
 * in docs/bench.md).
 *
 * --records N: produce sends exactly N records (spread over producers and partitions) and
 * the window runs from the first send to the last acknowledgement; consume reads until N
 * records arrived, the window running from the first fetch to the last record.
 * --duration: warm-up, then a measured window of that length; figures count what was
 * acknowledged (produce) or received (consume) inside it.
 */
import { randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { RunError } from '../errors.js';
import { mergeHistograms, summarize, type LatencySummary } from '../histogram.js';
import { nowNs } from '../payload.js';
import { ProcSampler, type ProcSample } from '../proc.js';
import { connectBootstrap, fmtBroker, negotiate, resolveTopic, startOffsets, type PartitionLeader } from './admin.js';
import { kafkaWorkerCount, type KafkaBenchOptions } from './options.js';
import {
  K_ACKED,
  K_BYTES,
  K_CONSUMED,
  K_FAILED,
  K_FETCHES,
  K_FIELDS,
  K_REQUESTS,
  K_SENT,
  PHASE,
  PHASE_AFTER,
  PHASE_MEASURING,
  PHASE_WARMUP,
  type FromKafkaWorker,
  type KafkaWorkerInit,
  type KafkaWorkerResult,
  type Lane,
  type ToKafkaWorker,
} from './protocol.js';
import { abortableSleep } from '../abortable-sleep.js';

/** A worker above this event-loop utilisation (%) is taken as saturated. */
const SATURATION_PERCENT = 90;

export interface KafkaBenchResult {
  protocol: 'kafka';
  workload: 'produce' | 'consume';
  target: string;
  topic: string;
  partitions: number;
  /** The topic was created by this run. */
  topic_created: boolean;
  producers: number;
  consumers: number;
  record_size: number | null;
  batch_size: number | null;
  acks: 0 | 1 | -1 | null;
  compression: string | null;
  in_flight: number | null;
  /** Target produce rate (records/s, 0 = max) or null for consume. */
  rate: number | null;
  /** --records, or null with --duration. */
  requested: number | null;
  warmup_s: number;
  /** The measured window, s. */
  duration_s: number;
  /** Records acknowledged (produce) or consumed (consume) in the window. */
  records: number;
  /** Record value bytes in the window. */
  bytes: number;
  records_per_s: number;
  /** 10^6 bytes of record values per second. */
  mb_s: number;
  /** Produce: request → response, per request; null with acks=0 or for consume. */
  ack_latency_ms: LatencySummary | null;
  /** Consume: the send time stamped in each value → receipt, per record; null for produce. */
  latency_ms: LatencySummary | null;
  /** Whole run. */
  totals: { sent: number; acked: number; failed: number; consumed: number; requests: number; fetches: number };
  /** Consume: sequence gaps between the first and last record seen per (partition, producer); null for produce. */
  lost: number | null;
  duplicates: number | null;
  out_of_order: number | null;
  /** Consumed records without a plausible robust-bench stamp. */
  unstamped: number;
  /** Partition errors the broker answered, by Kafka error name (produce: records). */
  errors: Record<string, number>;
  broker: { pid: number; cpu_us_per_record: number | null; cpu_percent: number; rss_bytes: number } | null;
  loadgen: { workers: number; max_worker_cpu_percent: number; worker_cpu_percent: number[]; process_cpu_percent: number; saturated: boolean };
  versions: { produce: number; fetch: number };
  warnings: string[];
}

export interface KafkaProgress {
  phase: 'connecting' | 'warm-up' | 'measuring' | 'draining';
  elapsedS: number;
  totalS: number;
  done: number;
  perS: number;
  mbPerS: number;
}

export interface KafkaRunHooks {
  onProgress?: (p: KafkaProgress) => void;
  signal?: AbortSignal;
}

interface WorkerHandle {
  worker: Worker;
  id: number;
  waiters: Map<FromKafkaWorker['type'], () => void>;
  seen: Set<FromKafkaWorker['type']>;
  result?: KafkaWorkerResult;
  exited: Promise<void>;
}

const sleep = abortableSleep;

const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

/** Splits `total` into `parts` near-equal integers (the first ones get the remainder). */
export function split(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  const extra = total - base * parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}

/**
 * Lanes of each client: producers write every partition (a request per leader carries a
 * batch for each of its partitions); consumer j reads partitions p with p % consumers = j.
 */
export function planLanes(o: KafkaBenchOptions, parts: PartitionLeader[], offsets?: Map<number, number>): Array<{ index: number; lanes: Lane[] }> {
  const byLeader = (ps: PartitionLeader[]) => {
    const m = new Map<string, Lane>();
    for (const p of ps) {
      const k = `${p.host}:${p.port}`;
      let lane = m.get(k);
      if (!lane) m.set(k, (lane = { host: p.host, port: p.port, partitions: [] }));
      lane.partitions.push(p.partition);
      if (offsets) (lane.offsets ??= []).push(offsets.get(p.partition)!);
    }
    return [...m.values()];
  };
  if (o.workload === 'produce') {
    const quotas = o.records === undefined ? undefined : split(o.records, o.producers);
    return Array.from({ length: o.producers }, (_, i) => {
      const lanes = byLeader(parts);
      if (quotas) {
        const q = quotas[i]!;
        const perPartition = split(q, parts.length);
        let k = 0;
        for (const l of lanes) {
          l.quota = 0;
          for (let j = 0; j < l.partitions.length; j++) l.quota += perPartition[k++]!;
        }
      }
      return { index: i, lanes: lanes.filter((l) => l.quota === undefined || l.quota > 0) };
    });
  }
  const C = Math.min(o.consumers, parts.length);
  return Array.from({ length: C }, (_, j) => ({ index: j, lanes: byLeader(parts.filter((_p, i) => i % C === j)) }));
}

export async function runKafkaBench(o: KafkaBenchOptions, hooks: KafkaRunHooks = {}): Promise<KafkaBenchResult> {
  const { signal } = hooks;
  const warnings: string[] = [];
  let sampler: ProcSampler | undefined;
  if (o.brokerPid !== undefined) {
    try {
      sampler = new ProcSampler(o.brokerPid);
    } catch (err) {
      throw new RunError(`--broker-pid ${o.brokerPid}: cannot read /proc/${o.brokerPid}: ${(err as Error).message}`);
    }
  }
  try {
    return await runWith(o, hooks, warnings, sampler, signal);
  } finally {
    sampler?.close();
  }
}

async function runWith(o: KafkaBenchOptions, hooks: KafkaRunHooks, warnings: string[], sampler: ProcSampler | undefined, signal: AbortSignal | undefined): Promise<KafkaBenchResult> {
  const target = `kafka://${o.brokers.map(fmtBroker).join(',')}`;
  // Bootstrap.
  const boot = await connectBootstrap(o);
  let versions;
  let layout;
  try {
    versions = await negotiate(boot, o.connectTimeoutS * 1000);
    layout = await resolveTopic(boot, versions, o, (w) => warnings.push(w));
  } finally {
    boot.close();
  }
  const parts = layout.partitions;
  let plan: Array<{ index: number; lanes: Lane[] }>;
  if (o.workload === 'consume') {
    if (o.consumers > parts.length) warnings.push(`${o.consumers} consumers for ${parts.length} partition${parts.length === 1 ? '' : 's'}: ${o.consumers - parts.length} would have nothing to read; ran ${parts.length}`);
    plan = planLanes(o, parts, await startOffsets(layout, versions, o));
  } else {
    plan = planLanes(o, parts).filter((c) => c.lanes.length > 0);
  }
  const clientsN = plan.length;
  const W = Math.max(1, Math.min(kafkaWorkerCount(o, availableParallelism()), clientsN));
  const ctlBuf = new SharedArrayBuffer(4 * 4);
  const statsBuf = new SharedArrayBuffer(W * K_FIELDS * 8);
  const ctl = new Int32Array(ctlBuf);
  const statsAll = new Float64Array(statsBuf);
  const sum = (f: number) => {
    let s = 0;
    for (let w = 0; w < W; w++) s += statsAll[w * K_FIELDS + f]!;
    return s;
  };
  const runTag = randomInt(0, 0x10000);
  const producers = o.workload === 'produce' ? clientsN : 0;
  const ratePerProducer = o.workload === 'produce' && o.rate > 0 ? o.rate / producers : 0;

  let failure: RunError | undefined;
  let failureNotify: (() => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    failureNotify = () => reject(failure);
  });
  failed.catch(() => {});
  const fail = (message: string) => {
    if (failure) return;
    failure = new RunError(message);
    failureNotify?.();
  };

  const handles: WorkerHandle[] = [];
  const workerUrl = new URL('./worker.js', import.meta.url);
  let stopping = false;
  for (let id = 0; id < W; id++) {
    const init: KafkaWorkerInit = {
      id,
      workload: o.workload,
      clientId: o.clientId,
      connectTimeoutMs: o.connectTimeoutS * 1000,
      topic: o.topic,
      runTag,
      clients: plan.filter((_c, i) => i % W === id),
      produceVersion: versions.produce,
      acks: o.acks,
      timeoutMs: o.timeoutMs,
      recordSize: o.recordSize,
      batchSize: o.batchSize,
      compression: o.compression,
      inFlight: o.inFlight,
      ratePerProducer,
      totalProducers: producers,
      fetchVersion: versions.fetch,
      fetchMinBytes: o.fetchMinBytes,
      fetchMaxWaitMs: o.fetchMaxWaitMs,
      fetchMaxBytes: o.fetchMaxBytes,
      ctl: ctlBuf,
      stats: statsBuf,
    };
    const worker = new Worker(workerUrl, { workerData: init, stdout: false, stderr: false });
    const h: WorkerHandle = { worker, id, waiters: new Map(), seen: new Set(), exited: new Promise((res) => worker.once('exit', () => res())) };
    worker.on('message', (m: FromKafkaWorker) => {
      if (m.type === 'fatal') fail(m.message);
      else if (m.type === 'result') h.result = m.result;
      h.seen.add(m.type);
      const w = h.waiters.get(m.type);
      if (w) {
        h.waiters.delete(m.type);
        w();
      }
    });
    worker.on('error', (err) => fail(`worker ${id} failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (code !== 0 && !stopping) fail(`worker ${id} exited with code ${code}`);
    });
    handles.push(h);
  }
  const waitAll = (type: FromKafkaWorker['type'], timeoutMs?: number): Promise<void> => {
    const all = Promise.all(handles.map((h) => (h.seen.has(type) ? Promise.resolve() : new Promise<void>((res) => h.waiters.set(type, res))))).then(() => undefined);
    const race: Array<Promise<void>> = [all, failed];
    if (timeoutMs !== undefined) race.push(sleep(timeoutMs).then(() => Promise.reject(new RunError(`workers did not answer (${type}) within ${timeoutMs} ms`))));
    return Promise.race(race);
  };
  const broadcast = (m: ToKafkaWorker) => {
    for (const h of handles) h.worker.postMessage(m);
  };
  const elu = () => handles.map((h) => h.worker.performance.eventLoopUtilization());
  const doneCount = () => (o.workload === 'produce' ? sum(K_ACKED) : sum(K_CONSUMED));
  const sampleBroker = (): ProcSample | undefined => {
    if (!sampler) return undefined;
    try {
      return sampler.sample();
    } catch (err) {
      throw new RunError(`--broker-pid ${sampler.pid}: cannot read /proc/${sampler.pid}: ${(err as Error).message} (the broker exited?)`);
    }
  };

  /** Waits `ms` (or until `until()`), reporting progress every second. */
  const progressFor = async (ms: number, phase: KafkaProgress['phase'], totalS: number, offsetS: number, until?: () => boolean) => {
    const t0 = nowNs();
    let lastT = t0;
    let last = doneCount();
    let lastB = sum(K_BYTES);
    for (;;) {
      if (failure) throw failure;
      const left = ms - (nowNs() - t0) / 1e6;
      if (left <= 0 || signal?.aborted || (until && until())) return;
      await Promise.race([sleep(Math.min(until ? 5 : 1000, left), signal), failed]);
      if (failure) throw failure;
      const t = nowNs();
      if (hooks.onProgress && t - lastT >= 0.95e9) {
        const dt = (t - lastT) / 1e9;
        const d = doneCount();
        const b = sum(K_BYTES);
        hooks.onProgress({ phase, elapsedS: offsetS + (t - t0) / 1e9, totalS, done: d, perS: (d - last) / dt, mbPerS: (b - lastB) / 1e6 / dt });
        lastT = t;
        last = d;
        lastB = b;
      }
    }
  };

  let result: KafkaBenchResult | undefined;
  try {
    await waitAll('ready', 30_000);
    broadcast({ type: 'connect' });
    await waitAll('connected', o.connectTimeoutS * 1000 + 30_000);
    if (signal?.aborted) throw new RunError('interrupted while connecting');

    const cpuNow = () => {
      const u = process.cpuUsage();
      return { us: u.user + u.system, atNs: nowNs() };
    };
    let windowNs = 0;
    let inWindow = 0;
    let bytesInWindow = 0;
    let brokerA: ProcSample | undefined;
    let brokerB: ProcSample | undefined;
    let eluA: EventLoopUtilization[] = [];
    let eluB: EventLoopUtilization[] = [];
    let cpuA = cpuNow();
    let cpuB = cpuA;
    const startNs = nowNs() + 5e6;

    if (o.records !== undefined) {
      // Fixed count: measured from the start to the last ack / record.
      const N = o.records;
      Atomics.store(ctl, PHASE, PHASE_MEASURING);
      brokerA = sampleBroker();
      eluA = elu();
      cpuA = cpuNow();
      broadcast({ type: 'start', startNs });
      const finished = () => (o.workload === 'produce' ? sum(K_ACKED) + sum(K_FAILED) >= N : sum(K_CONSUMED) >= N);
      // Until done, or nothing moved for --drain s (or interrupted).
      let last = -1;
      let lastMove = nowNs();
      const stalled = () => {
        const d = doneCount() + sum(K_FAILED);
        if (d !== last) {
          last = d;
          lastMove = nowNs();
          return false;
        }
        return o.drainS > 0 && nowNs() - lastMove > o.drainS * 1e9;
      };
      await progressFor(Number.POSITIVE_INFINITY, 'measuring', 0, 0, () => finished() || stalled());
      Atomics.store(ctl, PHASE, PHASE_AFTER);
      brokerB = sampleBroker();
      eluB = elu();
      cpuB = cpuNow();
      broadcast({ type: 'stop' });
      await waitAll('stopped', 10_000);
      if (!finished()) {
        const d = doneCount();
        warnings.push(
          signal?.aborted
            ? `interrupted after ${d.toLocaleString('en-US')} of ${N.toLocaleString('en-US')} records`
            : `only ${d.toLocaleString('en-US')} of ${N.toLocaleString('en-US')} records ${o.workload === 'produce' ? 'acknowledged' : 'consumed'}: nothing moved for ${o.drainS} s`,
        );
      }
      inWindow = doneCount();
      bytesInWindow = sum(K_BYTES);
    } else {
      Atomics.store(ctl, PHASE, PHASE_WARMUP);
      broadcast({ type: 'start', startNs });
      const total = o.warmupS + o.durationS;
      if (o.warmupS > 0) await progressFor(o.warmupS * 1000, 'warm-up', total, 0);
      brokerA = sampleBroker();
      eluA = elu();
      cpuA = cpuNow();
      const d0 = doneCount();
      const b0 = sum(K_BYTES);
      const t0 = nowNs();
      Atomics.store(ctl, PHASE, PHASE_MEASURING);
      if (!signal?.aborted) await progressFor(o.durationS * 1000, 'measuring', total, o.warmupS);
      Atomics.store(ctl, PHASE, PHASE_AFTER);
      windowNs = nowNs() - t0;
      inWindow = doneCount() - d0;
      bytesInWindow = sum(K_BYTES) - b0;
      brokerB = sampleBroker();
      eluB = elu();
      cpuB = cpuNow();
      broadcast({ type: 'stop' });
      await waitAll('stopped', 10_000);
      if (signal?.aborted) warnings.push(`interrupted: the measured window was cut short at ${round(windowNs / 1e9, 1)} s`);
      // Drain: what was sent gets its answer.
      if (o.workload === 'produce' && o.drainS > 0) {
        const t1 = nowNs();
        while (sum(K_ACKED) + sum(K_FAILED) < sum(K_SENT) && nowNs() - t1 < o.drainS * 1e9 && !failure) await Promise.race([sleep(5), failed]);
        if (failure) throw failure;
        const missing = sum(K_SENT) - sum(K_ACKED) - sum(K_FAILED);
        if (missing > 0) warnings.push(`${missing.toLocaleString('en-US')} records sent were not answered within --drain ${o.drainS} s`);
      }
    }

    stopping = true;
    broadcast({ type: 'finish' });
    await waitAll('result', 30_000);
    const results = handles.map((h) => h.result!);
    if (o.records !== undefined) {
      const first = Math.min(...results.map((r) => (r.firstNs > 0 ? r.firstNs : Number.POSITIVE_INFINITY)));
      const last = Math.max(...results.map((r) => r.lastNs));
      windowNs = Number.isFinite(first) && last > first ? last - first : 0;
    }
    const add = (f: (r: KafkaWorkerResult) => number) => results.reduce((a, r) => a + f(r), 0);
    const errors: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    for (const r of results) for (const w of r.warnings) if (!warnings.includes(w)) warnings.push(w);
    const durationS = windowNs / 1e9;

    let broker: KafkaBenchResult['broker'] = null;
    if (o.brokerPid !== undefined && brokerA && brokerB) {
      const cpuUs = brokerB.cpuUs - brokerA.cpuUs;
      const spanS = (brokerB.atNs - brokerA.atNs) / 1e9;
      broker = { pid: o.brokerPid, cpu_us_per_record: inWindow > 0 ? round(cpuUs / inWindow, 3) : null, cpu_percent: round(spanS > 0 ? (100 * cpuUs) / 1e6 / spanS : 0, 1), rss_bytes: brokerB.rssBytes };
    }
    const workerCpu = eluB.map((b, i) => round(100 * handles[i]!.worker.performance.eventLoopUtilization(b, eluA[i]).utilization, 1));
    const maxCpu = workerCpu.length > 0 ? Math.max(...workerCpu) : 0;
    const cpuSpanS = (cpuB.atNs - cpuA.atNs) / 1e9;
    const processCpu = cpuSpanS > 0 ? round((100 * (cpuB.us - cpuA.us)) / 1e6 / cpuSpanS, 1) : 0;
    const saturated = maxCpu >= SATURATION_PERCENT;
    if (saturated) warnings.unshift(`load generator saturated: worker ${workerCpu.indexOf(maxCpu)} at ${Math.round(maxCpu)}% CPU — results are a lower bound; add --${o.workload === 'produce' ? 'producers' : 'consumers'} / --workers`);
    const nErrors = Object.values(errors).reduce((a, b) => a + b, 0);
    if (nErrors > 0) warnings.push(`the broker answered errors: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')}`);
    const consume = o.workload === 'consume';
    const holes = add((r) => r.holes);
    const unstamped = add((r) => r.unstamped);
    if (consume && holes > 0) warnings.push(`${holes.toLocaleString('en-US')} records missing between the first and last seen of some producer's sequence (lost, or not yet written when the run stopped)`);
    if (consume && unstamped > 0) warnings.push(`${unstamped.toLocaleString('en-US')} records without a robust-bench stamp (not in latency or sequence checks)`);

    result = {
      protocol: 'kafka',
      workload: o.workload,
      target,
      topic: o.topic,
      partitions: parts.length,
      topic_created: layout.created,
      producers,
      consumers: consume ? clientsN : 0,
      record_size: consume ? null : o.recordSize,
      batch_size: consume ? null : o.batchSize,
      acks: consume ? null : o.acks,
      compression: consume ? null : o.compression,
      in_flight: consume ? null : o.inFlight,
      rate: consume ? null : o.rate,
      requested: o.records ?? null,
      warmup_s: o.records === undefined ? o.warmupS : 0,
      duration_s: round(durationS, 3),
      records: inWindow,
      bytes: bytesInWindow,
      records_per_s: durationS > 0 ? round(inWindow / durationS, 1) : 0,
      mb_s: durationS > 0 ? round(bytesInWindow / 1e6 / durationS, 2) : 0,
      ack_latency_ms: consume ? null : summarize(mergeHistograms(results.map((r) => r.ackLatency))),
      latency_ms: consume ? summarize(mergeHistograms(results.map((r) => r.latency))) : null,
      totals: { sent: sum(K_SENT), acked: sum(K_ACKED), failed: sum(K_FAILED), consumed: sum(K_CONSUMED), requests: sum(K_REQUESTS), fetches: sum(K_FETCHES) },
      lost: consume ? holes : null,
      duplicates: consume ? add((r) => r.duplicates) : null,
      out_of_order: consume ? add((r) => r.outOfOrder) : null,
      unstamped,
      errors,
      broker,
      loadgen: { workers: W, max_worker_cpu_percent: maxCpu, worker_cpu_percent: workerCpu, process_cpu_percent: processCpu, saturated },
      versions: { produce: versions.produce, fetch: versions.fetch },
      warnings,
    };
    await waitAll('closed', 5000).catch(() => {});
  } finally {
    stopping = true;
    await Promise.all(
      handles.map(async (h) => {
        await h.worker.terminate().catch(() => 0);
        await h.exited;
      }),
    );
  }
  return result!;
}
