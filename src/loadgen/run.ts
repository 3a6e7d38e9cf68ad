/**
 * The main thread of a robust-bench run: plans the clients, starts the worker threads,
 * moves them through the phases (connect subscribers → connect publishers → warm-up →
 * measured window → drain → results), samples the broker process and the workers' load,
 * and assembles the report (BenchResult, documented in docs/bench.md).
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { endpointName, type Endpoint } from './client.js';
import { RunError, UsageError, describeConnectError } from './errors.js';
import { mergeHistograms, summarize, type LatencySummary } from './histogram.js';
import { workerCount, type BenchOptions } from './options.js';
import { nowNs } from './payload.js';
import { ProcSampler, openFilesLimit, type ProcSample } from './proc.js';
import {
  ACKED,
  ATTEMPTED,
  CONNECTED,
  FAILED,
  OPEN,
  PHASE,
  PHASE_AFTER,
  PHASE_MEASURING,
  PHASE_WARMUP,
  RECEIVED,
  SENT,
  STAT_FIELDS,
  UNIQUE,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerResult,
} from './protocol.js';
import { expandTopic, fanOut } from './topic.js';
import { abortableSleep } from './abortable-sleep.js';

/** A worker above this event-loop utilisation (%) is taken as saturated. */
export const SATURATION_PERCENT = 90;

export interface BenchResult {
  workload: BenchOptions['workload'];
  qos: 0 | 1 | 2;
  /** MQTT connections opened (publishers + subscribers; conn: --clients). */
  clients: number;
  publishers: number;
  subscribers: number;
  size: number;
  /** Length of the measured window, s. */
  duration_s: number;
  /** Messages published in the measured window. */
  sent: number;
  /** Messages delivered to subscribers in the measured window (fan-out counts each copy). */
  received: number;
  /** Whole run, after the drain: expected deliveries never received (pubsub), or sequence gaps (sub); null when unknowable. */
  lost: number | null;
  duplicates: number | null;
  sent_per_s: number;
  received_per_s: number;
  latency_ms: LatencySummary | null;
  ack_latency_ms: LatencySummary | null;
  connect: { attempted: number; connected: number; failed: number; per_s: number; failures: Record<string, number>; dropped: number } | null;
  broker: { pid: number; cpu_us_per_msg: number | null; cpu_percent: number; rss_bytes: number; rss_per_connection_bytes: number | null } | null;
  loadgen: { workers: number; max_worker_cpu_percent: number; worker_cpu_percent: number[]; process_cpu_percent: number; saturated: boolean };
  // Context and extra checks.
  out_of_order: number | null;
  /** Whole run: messages published, deliveries expected (pubsub) and delivered (unique). */
  totals: { sent: number; acked: number; expected: number | null; received: number; unique: number };
  /** Received messages without a robust-bench stamp of this run (not in latency or sequence checks). */
  unstamped: number;
  rejected: Record<string, number>;
  rate: number;
  window: number;
  warmup_s: number;
  mqtt_version: 3 | 4 | 5;
  transport: 'tcp' | 'tls' | 'ws' | 'wss';
  target: string;
  warnings: string[];
}

export interface Progress {
  phase: 'connecting' | 'warm-up' | 'measuring' | 'draining' | 'holding';
  elapsedS: number;
  totalS: number;
  sent: number;
  received: number;
  sentPerS: number;
  receivedPerS: number;
  attempted: number;
  connected: number;
  failed: number;
  open: number;
  connectsPerS: number;
}

export interface RunHooks {
  /** Called about once a second with the live figures. */
  onProgress?: (p: Progress) => void;
  /** Resolves or aborts waits early (Ctrl-C ends the measured window now). */
  signal?: AbortSignal;
}

interface WorkerHandle {
  worker: Worker;
  id: number;
  waiters: Map<FromWorker['type'], (m: FromWorker) => void>;
  /** Message types received so far (each phase message comes once). */
  seen: Set<FromWorker['type']>;
  result?: WorkerResult;
  exited: Promise<void>;
}

const sleep = abortableSleep;

function transportName(o: BenchOptions): BenchResult['transport'] {
  return o.ws ? (o.tls ? 'wss' : 'ws') : o.tls ? 'tls' : 'tcp';
}

function sampleBroker(s: ProcSampler | undefined): ProcSample | undefined {
  if (s === undefined) return undefined;
  try {
    return s.sample();
  } catch (err) {
    throw new RunError(`--broker-pid ${s.pid}: cannot read /proc/${s.pid}: ${(err as Error).message} (the broker exited?)`);
  }
}

export async function runBench(o: BenchOptions, hooks: RunHooks = {}): Promise<BenchResult> {
  const signal = hooks.signal;
  let ca: string | undefined;
  if (o.ca !== undefined) {
    try {
      ca = readFileSync(o.ca, 'utf8');
    } catch (err) {
      throw new UsageError(`--ca ${o.ca}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  }
  let sampler: ProcSampler | undefined;
  if (o.brokerPid !== undefined) {
    try {
      sampler = new ProcSampler(o.brokerPid);
    } catch {
      throw new UsageError(`--broker-pid ${o.brokerPid}: no such process (or /proc is not available)`);
    }
  }
  const endpoint: Endpoint = { host: o.host, port: o.port, tls: o.tls, ws: o.ws, wsPath: o.wsPath, insecure: o.insecure, ...(ca !== undefined ? { ca } : {}) };
  const target = endpointName(endpoint);
  const warnings: string[] = [];

  // Plan the clients.
  const P = o.publishers;
  const S = o.subscribers;
  const pubTopics = Array.from({ length: P }, (_, i) => expandTopic(o.topic, i));
  const subFilters = Array.from({ length: S }, (_, j) => expandTopic(o.subTopic, j));
  let perPublisherFanOut: number[] = [];
  if (o.workload === 'pubsub') {
    const f = fanOut(pubTopics, subFilters);
    perPublisherFanOut = f.perPublisher;
    if (f.unmatchedSubscribers.length > 0) {
      const first = f.unmatchedSubscribers[0]!;
      warnings.push(`${f.unmatchedSubscribers.length} of ${S} subscribers match no publisher's topic (e.g. subscriber ${first} on "${subFilters[first]}"); use --sub-topic or a topic without %i`);
    }
    if (f.unmatchedPublishers.length > 0) {
      const first = f.unmatchedPublishers[0]!;
      warnings.push(`${f.unmatchedPublishers.length} of ${P} publishers reach no subscriber (e.g. publisher ${first} on "${pubTopics[first]}")`);
    }
  }
  const W = workerCount(o, availableParallelism());
  const runTag = randomInt(0, 0x10000);
  const clientPrefix = `rb${runTag.toString(16).padStart(4, '0')}-`;
  const ratePerPublisher = P > 0 && o.rate > 0 ? o.rate / P : 0;

  const ctlBuf = new SharedArrayBuffer(16);
  const statsBuf = new SharedArrayBuffer(W * STAT_FIELDS * 8);
  const pubSentBuf = new SharedArrayBuffer(Math.max(1, P) * 8);
  const ctl = new Int32Array(ctlBuf);
  const stats = new Float64Array(statsBuf);
  const pubSent = new Float64Array(pubSentBuf);
  const sum = (field: number) => {
    let n = 0;
    for (let w = 0; w < W; w++) n += stats[w * STAT_FIELDS + field]!;
    return n;
  };

  // Subscribers first across the workers, publishers after them, so that with 1 + 1 clients
  // and two workers each gets its own thread.
  const perWorker = Array.from({ length: W }, () => ({ pubs: [] as WorkerInit['publishers'], subs: [] as WorkerInit['subscribers'] }));
  subFilters.forEach((filter, j) => perWorker[j % W]!.subs.push({ index: j, filter }));
  pubTopics.forEach((topic, i) => perWorker[(i + S) % W]!.pubs.push({ index: i, topic }));

  let failure: RunError | undefined;
  let failureNotify: (() => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    failureNotify = () => reject(failure);
  });
  failed.catch(() => {});
  const fdLimit = openFilesLimit();
  const fail = (message: string, emfile = false) => {
    if (failure) return;
    failure = new RunError(emfile ? `${message.replace(/: too many open files.*$/, '')}: ${describeConnectError('EMFILE', target, fdLimit)}` : message);
    failureNotify?.();
  };

  const handles: WorkerHandle[] = [];
  const workerUrl = new URL('./worker.js', import.meta.url);
  for (let id = 0; id < W; id++) {
    const conns = o.workload === 'conn' ? { first: id, stride: W, count: Math.floor(o.clients / W) + (id < o.clients % W ? 1 : 0) } : { first: 0, stride: 1, count: 0 };
    const init: WorkerInit = {
      id,
      workload: o.workload,
      endpoint,
      level: o.mqttVersion,
      keepAliveS: o.keepAliveS,
      connectTimeoutMs: o.connectTimeoutS * 1000,
      connectRate: o.connectRate / W,
      clientPrefix,
      runTag,
      qos: o.qos,
      size: o.size,
      window: o.window,
      ratePerPublisher,
      totalPublishers: P,
      publishers: perWorker[id]!.pubs,
      subscribers: perWorker[id]!.subs,
      conns,
      ctl: ctlBuf,
      stats: statsBuf,
      pubSent: pubSentBuf,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
    };
    const worker = new Worker(workerUrl, { workerData: init, stdout: false, stderr: false });
    const h: WorkerHandle = {
      worker,
      id,
      waiters: new Map(),
      seen: new Set(),
      exited: new Promise((res) => worker.once('exit', () => res())),
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'fatal') fail(m.message, m.emfile === true);
      else if (m.type === 'result') h.result = m.result;
      h.seen.add(m.type);
      const w = h.waiters.get(m.type);
      if (w) {
        h.waiters.delete(m.type);
        w(m);
      }
    });
    worker.on('error', (err) => fail(`worker ${id} failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (code !== 0 && !stopping) fail(`worker ${id} exited with code ${code}`);
    });
    handles.push(h);
  }
  let stopping = false;

  const waitAll = (type: FromWorker['type'], timeoutMs?: number): Promise<void> => {
    const all = Promise.all(handles.map((h) => (h.seen.has(type) ? Promise.resolve() : new Promise<void>((res) => h.waiters.set(type, () => res()))))).then(() => undefined);
    const race: Array<Promise<void>> = [all, failed];
    if (timeoutMs !== undefined) race.push(sleep(timeoutMs).then(() => Promise.reject(new RunError(`workers did not answer (${type}) within ${timeoutMs} ms`))));
    return Promise.race(race);
  };
  const broadcast = (m: ToWorker) => {
    for (const h of handles) h.worker.postMessage(m);
  };
  const elu = () => handles.map((h) => h.worker.performance.eventLoopUtilization());

  /** Waits `ms`, reporting progress every second; returns early on abort. */
  const progressFor = async (ms: number, phase: Progress['phase'], totalS: number, offsetS: number, until?: () => boolean) => {
    const t0 = nowNs();
    let lastT = t0;
    let lastSent = sum(SENT);
    let lastRecv = sum(RECEIVED);
    let lastConn = sum(CONNECTED);
    for (;;) {
      if (failure) throw failure;
      const left = ms - (nowNs() - t0) / 1e6;
      if (left <= 0 || signal?.aborted || (until && until())) return;
      await Promise.race([sleep(Math.min(until ? 100 : 1000, left), signal), failed]);
      if (failure) throw failure;
      const t = nowNs();
      if (hooks.onProgress && t - lastT >= 0.95e9) {
        const dt = (t - lastT) / 1e9;
        const sent = sum(SENT);
        const recv = sum(RECEIVED);
        const conn = sum(CONNECTED);
        hooks.onProgress({
          phase,
          elapsedS: offsetS + (t - t0) / 1e9,
          totalS,
          sent,
          received: recv,
          sentPerS: (sent - lastSent) / dt,
          receivedPerS: (recv - lastRecv) / dt,
          attempted: sum(ATTEMPTED),
          connected: conn,
          failed: sum(FAILED),
          open: sum(OPEN),
          connectsPerS: (conn - lastConn) / dt,
        });
        lastT = t;
        lastSent = sent;
        lastRecv = recv;
        lastConn = conn;
      }
    }
  };

  let result: BenchResult | undefined;
  try {
    await waitAll('ready', 30_000);
    const transport = transportName(o);
    let windowNs = 0;
    let sentW = 0;
    let recvW = 0;
    let brokerA: ProcSample | undefined;
    let brokerB: ProcSample | undefined;
    let rssBefore: number | undefined;
    let eluA: EventLoopUtilization[] = [];
    let eluB: EventLoopUtilization[] = [];
    // This process's CPU (all threads) and when it was read.
    const cpuNow = () => {
      const u = process.cpuUsage();
      return { us: u.user + u.system, atNs: nowNs() };
    };
    let cpuA = cpuNow();
    let cpuB = cpuA;
    let expected: number | null = null;

    if (o.workload === 'conn') {
      rssBefore = sampleBroker(sampler)?.rssBytes;
      eluA = elu();
      cpuA = cpuNow();
      broadcast({ type: 'open-connections' });
      let connectingDone = false;
      const done = waitAll('connections-done').then(() => {
        connectingDone = true;
      });
      const estimateS = o.clients / o.connectRate;
      await Promise.race([progressFor(Number.POSITIVE_INFINITY, 'connecting', estimateS, 0, () => connectingDone), done]);
      if (!connectingDone && !signal?.aborted) await done;
      if (sum(CONNECTED) === 0) {
        // Gather the reasons before failing.
        broadcast({ type: 'finish' });
        await waitAll('closed', 5000).catch(() => {});
        const reasons: Record<string, number> = {};
        for (const h of handles) for (const [k, v] of Object.entries(h.result?.failures ?? {})) reasons[k] = (reasons[k] ?? 0) + v;
        const top = Object.entries(reasons).sort((a, b) => b[1] - a[1])[0];
        throw new RunError(top ? `no connection succeeded: ${top[0] === 'EMFILE' ? describeConnectError('EMFILE', target, fdLimit) : top[0].startsWith('CONNACK') ? top[0].replace('CONNACK ', 'CONNACK refused: ') : describeConnectError(top[0], target)}` : 'no connection succeeded');
      }
      // Hold.
      brokerA = sampleBroker(sampler);
      const t0 = nowNs();
      await progressFor(o.durationS * 1000, 'holding', o.durationS, 0);
      windowNs = nowNs() - t0;
      brokerB = sampleBroker(sampler);
      eluB = elu();
      cpuB = cpuNow();
    } else {
      // Subscribers first, so that nothing is published before they are subscribed.
      const connectPhase = async (msg: ToWorker, reply: FromWorker['type']) => {
        let done = false;
        broadcast(msg);
        const all = waitAll(reply).then(() => {
          done = true;
        });
        await Promise.race([all, progressFor(Number.POSITIVE_INFINITY, 'connecting', 0, 0, () => done)]);
        if (!done && !signal?.aborted) await all;
      };
      if (S > 0) await connectPhase({ type: 'subscribe' }, 'subscribed');
      if (P > 0) await connectPhase({ type: 'connect-publishers' }, 'publishers-connected');
      if (signal?.aborted) throw new RunError('interrupted while connecting');
      Atomics.store(ctl, PHASE, PHASE_WARMUP);
      broadcast({ type: 'start', startNs: nowNs() + 10e6 });
      const total = o.warmupS + o.durationS;
      if (o.warmupS > 0) await progressFor(o.warmupS * 1000, 'warm-up', total, 0);
      // Measured window.
      brokerA = sampleBroker(sampler);
      eluA = elu();
      cpuA = cpuNow();
      const sent0 = sum(SENT);
      const recv0 = sum(RECEIVED);
      const t0 = nowNs();
      Atomics.store(ctl, PHASE, PHASE_MEASURING);
      if (!signal?.aborted) await progressFor(o.durationS * 1000, 'measuring', total, o.warmupS);
      Atomics.store(ctl, PHASE, PHASE_AFTER);
      windowNs = nowNs() - t0;
      sentW = sum(SENT) - sent0;
      recvW = sum(RECEIVED) - recv0;
      brokerB = sampleBroker(sampler);
      eluB = elu();
      cpuB = cpuNow();
      broadcast({ type: 'stop' });
      await waitAll('stopped', 10_000); // nothing is published after this

      // Drain: wait until everything sent has arrived (and is acknowledged), or nothing moved for --drain s.
      const expectedNow = () => {
        let e = 0;
        for (let i = 0; i < P; i++) e += pubSent[i]! * perPublisherFanOut[i]!;
        return e;
      };
      const drained = () => (o.qos === 0 || sum(ACKED) >= sum(SENT)) && (o.workload !== 'pubsub' || sum(UNIQUE) >= expectedNow());
      if (o.workload !== 'sub' && o.drainS > 0) {
        let last = -1;
        let lastMove = nowNs();
        while (!drained() && !failure) {
          const progress = sum(ACKED) + sum(RECEIVED);
          if (progress !== last) {
            last = progress;
            lastMove = nowNs();
          } else if (nowNs() - lastMove > o.drainS * 1e9) break;
          await Promise.race([sleep(10), failed]);
        }
        if (failure) throw failure;
      }
      if (o.workload === 'pubsub') expected = expectedNow();
    }

    // Results.
    stopping = true;
    broadcast({ type: 'finish' });
    await waitAll('result', 30_000);
    const results = handles.map((h) => h.result!);
    const latency = summarize(mergeHistograms(results.map((r) => r.latency)));
    const ackLatency = summarize(mergeHistograms(results.map((r) => r.ackLatency)));
    const add = (f: (r: WorkerResult) => number) => results.reduce((a, r) => a + f(r), 0);
    const merge = (f: (r: WorkerResult) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const r of results) for (const [k, v] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    for (const r of results) for (const w of r.warnings) if (!warnings.includes(w)) warnings.push(w);

    const durationS = windowNs / 1e9;
    const totalSent = sum(SENT);
    const totalRecv = sum(RECEIVED);
    const totalUnique = sum(UNIQUE);
    const duplicates = add((r) => r.duplicates);
    const outOfOrder = add((r) => r.outOfOrder);
    const holes = add((r) => r.holes);
    let lost: number | null = null;
    if (o.workload === 'pubsub') lost = Math.max(0, (expected ?? 0) - totalUnique);
    else if (o.workload === 'sub') lost = holes;
    else if (o.workload === 'conn') lost = 0; // no messages; pub: unknowable (null)

    // Connections.
    const failures = merge((r) => r.failures);
    const first = Math.min(...results.map((r) => (r.firstAttemptNs > 0 ? r.firstAttemptNs : Number.POSITIVE_INFINITY)));
    const last = Math.max(...results.map((r) => r.lastConnackNs));
    const connected = sum(CONNECTED);
    const connectSpanS = Number.isFinite(first) && last > first ? (last - first) / 1e9 : 0;
    const connect = {
      attempted: sum(ATTEMPTED),
      connected,
      failed: sum(FAILED),
      per_s: round(connectSpanS > 0 ? connected / connectSpanS : connected, 1),
      failures,
      dropped: add((r) => r.dropped),
    };
    if (failures.EMFILE !== undefined) warnings.push(describeConnectError('EMFILE', target, fdLimit));
    if (connect.dropped > 0) warnings.push(`${n(connect.dropped)} connections were closed by the broker while held`);

    // Broker.
    let broker: BenchResult['broker'] = null;
    if (o.brokerPid !== undefined && brokerA && brokerB) {
      const cpuUs = brokerB.cpuUs - brokerA.cpuUs;
      const spanS = (brokerB.atNs - brokerA.atNs) / 1e9;
      const msgs = o.workload === 'pub' ? sentW : o.workload === 'conn' ? 0 : recvW;
      const open = sum(OPEN);
      broker = {
        pid: o.brokerPid,
        cpu_us_per_msg: msgs > 0 ? round(cpuUs / msgs, 3) : null,
        cpu_percent: round(spanS > 0 ? (100 * cpuUs) / 1e6 / spanS : 0, 1),
        rss_bytes: brokerB.rssBytes,
        rss_per_connection_bytes: o.workload === 'conn' && rssBefore !== undefined && open > 0 ? Math.round((brokerB.rssBytes - rssBefore) / open) : null,
      };
    }

    // Load generator.
    const workerCpu = eluB.map((b, i) => round(100 * handles[i]!.worker.performance.eventLoopUtilization(b, eluA[i]).utilization, 1));
    const maxCpu = workerCpu.length > 0 ? Math.max(...workerCpu) : 0;
    const cpuSpanS = (cpuB.atNs - cpuA.atNs) / 1e9;
    const processCpu = cpuSpanS > 0 ? round((100 * (cpuB.us - cpuA.us)) / 1e6 / cpuSpanS, 1) : 0;
    const saturated = maxCpu >= SATURATION_PERCENT;
    if (saturated) {
      const w = workerCpu.indexOf(maxCpu);
      warnings.unshift(`load generator saturated: worker ${w} at ${Math.round(maxCpu)}% CPU — results are a lower bound; add --workers${W >= availableParallelism() ? ' (or run robust-bench on more cores / another machine)' : ''}`);
    }
    const rejected = merge((r) => r.rejected);
    const nRejected = Object.values(rejected).reduce((a, b) => a + b, 0);
    if (nRejected > 0) warnings.push(`${n(nRejected)} publishes refused by the broker (${Object.keys(rejected).join(', ')})`);
    const unstamped = add((r) => r.foreign);
    if (unstamped > 0 && o.workload === 'pubsub') warnings.push(`${n(unstamped)} messages received that this run did not publish (another publisher on the same topics?)`);
    if (o.workload === 'pubsub' && lost !== null && lost > 0) warnings.push(`${n(lost)} of ${n(expected ?? 0)} expected deliveries never arrived (the broker dropped them: a queue limit such as max_queued_messages, or a slow subscriber${o.qos === 0 ? '; QoS 0 may be dropped at will' : ''})`);
    if (signal?.aborted) warnings.push(`interrupted: the ${o.workload === 'conn' ? 'hold' : 'measured window'} was cut short at ${round(durationS, 1)} s`);

    result = {
      workload: o.workload,
      qos: o.qos,
      clients: o.workload === 'conn' ? o.clients : P + S,
      publishers: P,
      subscribers: S,
      size: o.size,
      duration_s: round(durationS, 3),
      sent: sentW,
      received: recvW,
      lost,
      duplicates: o.workload === 'pub' ? null : duplicates,
      sent_per_s: durationS > 0 ? round(sentW / durationS, 1) : 0,
      received_per_s: durationS > 0 ? round(recvW / durationS, 1) : 0,
      latency_ms: latency,
      ack_latency_ms: ackLatency,
      connect,
      broker,
      loadgen: { workers: W, max_worker_cpu_percent: maxCpu, worker_cpu_percent: workerCpu, process_cpu_percent: processCpu, saturated },
      out_of_order: o.workload === 'pubsub' || o.workload === 'sub' ? outOfOrder : null,
      totals: { sent: totalSent, acked: sum(ACKED), expected, received: totalRecv, unique: totalUnique },
      unstamped,
      rejected,
      rate: o.rate,
      window: o.window,
      warmup_s: o.workload === 'conn' ? 0 : o.warmupS,
      mqtt_version: o.mqttVersion,
      transport,
      target,
      warnings,
    };
    await waitAll('closed', 5000).catch(() => {});
  } finally {
    stopping = true;
    sampler?.close();
    await Promise.all(
      handles.map(async (h) => {
        await h.worker.terminate().catch(() => 0);
        await h.exited;
      }),
    );
  }
  return result!;
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
