/**
 * Kafka produce/consume throughput and end-to-end latency of our broker, against the raw
 * disk, in one run:
 *
 *   p100-acks1    produce 100 B records, acks=1, max rate (`robust-bench kafka produce`);
 *                 then everything produced is consumed back from the earliest offset
 *                 (`robust-bench kafka consume --records N`): consume records/s
 *   p100-acksall  produce 100 B records, acks=all
 *   p1k-acks1     produce 1 KiB records, acks=1; then
 *     raw disk    the same record bytes written sequentially with fs.writeSync to one
 *                 file (chunks of one produce batch's payload) plus one final fdatasync,
 *                 in the same file system (os.tmpdir()), after the broker's data is gone
 *     raw sustained  fs.writeSync of produce-batch-sized chunks for the case's warm-up +
 *                 measured seconds (the measured seconds counted), plain and with an
 *                 fdatasync every 8 MiB; the better of the two
 *   p1k-acksall   produce 1 KiB records, acks=all
 *   e2e           consume (from the start of a fresh topic) while producing 100 B
 *                 records at --rate records/s: end-to-end latency p50/p99 from the send
 *                 time stamped in each value to its receipt by the consumer
 *
 * Broker: a fresh `robust-server` per case (bench/lib/brokers.ts): single node, roles
 * meta+broker, file engine, [storage] flush = "async" (a produce is acknowledged after
 * its write; fdatasync every 500 ms), Kafka listener on a free port, [log] warn; pinned
 * to CPU 0 with taskset when there are 2+ CPUs (the load generator to CPU 1), as
 * bench:compare does. Topics are created by robust-bench (CreateTopics, 1 partition
 * unless --partitions). Each case starts after `sync`, so that the previous case's dirty
 * pages do not throttle it. A produce case is --warmup s of load then --seconds s
 * measured; MB = 10^6 bytes of record values; acks=1 and acks=all are the same on one
 * node (no followers), measured anyway.
 *
 *   npm run bench:kafka
 *   npm run bench:kafka -- --seconds 5 --cases p100-acks1,e2e
 *   npm run bench:kafka -- --cases p1k-acks1 --profile /tmp/prof    (broker under --cpu-prof:
 *       prints its top self-time functions; profiled figures are not comparable)
 *
 * Options: --seconds S (10) --warmup S (2) --rate N (e2e produce rate, 10000) --partitions N
 *   (1) --producers N (1) --batch-size N (robust-bench's default) --in-flight N (5)
 *   --rounds N (1; medians) --cases LIST --no-pin --profile DIR --top N (15)
 *
 * Prints a line per case and, as its last line, JSON:
 *   { "produce_1k_acks1_mb_s", "raw_disk_mb_s", "produce_1k_vs_raw", "raw_disk_sustained_mb_s",
 *     "produce_1k_vs_raw_sustained", "produce_100b_acks1_records_s",
 *     "produce_1k_acksall_mb_s", "produce_100b_acksall_records_s", "e2e_p50_ms", "e2e_p99_ms", ... }
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultBatchSize } from '../src/loadgen/kafka/options.js';
import type { KafkaBenchResult } from '../src/loadgen/kafka/run.js';
import { ROBUST_SERVER_JS, startBroker, stopBroker, type RunningBroker } from './lib/brokers.js';
import { canPin, cleanupAll, cleanupOnSignals, pinned, pinSelf, ROOT, spawnTracked, stopProcess, type Tracked } from './lib/processes.js';
import { newestProfile, summariseProfile, type ProfileSummary } from './lib/profile.js';
import { rawBurst, rawSustained } from './lib/raw-disk.js';

const LOADGEN_JS = join(ROOT, 'dist', 'src', 'cmd', 'robust-bench.js');
const CASES = ['p100-acks1', 'p100-acksall', 'p1k-acks1', 'p1k-acksall', 'e2e'] as const;
type CaseName = (typeof CASES)[number];

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rate: { type: 'string', default: '10000' },
    partitions: { type: 'string', default: '1' },
    producers: { type: 'string', default: '1' },
    'batch-size': { type: 'string' },
    'in-flight': { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    cases: { type: 'string', default: CASES.join(',') },
    'no-pin': { type: 'boolean', default: false },
    profile: { type: 'string' },
    top: { type: 'string', default: '15' },
  },
});

function positive(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a number > 0, got ${v}`);
  return n;
}

const SECONDS = positive('seconds', args.seconds);
const WARMUP = Number(args.warmup);
if (!(WARMUP >= 0)) throw new Error(`--warmup must be >= 0, got ${args.warmup}`);
const RATE = positive('rate', args.rate);
const PARTITIONS = Math.floor(positive('partitions', args.partitions));
const PRODUCERS = Math.floor(positive('producers', args.producers));
const IN_FLIGHT = Math.floor(positive('in-flight', args['in-flight']));
const ROUNDS = Math.floor(positive('rounds', args.rounds));
const TOP = Math.floor(positive('top', args.top));
const cases = (args.cases as string).split(',').map((s) => s.trim()).filter((s) => s !== '') as CaseName[];
for (const c of cases) if (!CASES.includes(c)) throw new Error(`--cases: unknown case ${c} (${CASES.join(', ')})`);
const batchFor = (size: number) => (args['batch-size'] !== undefined ? Math.floor(positive('batch-size', args['batch-size'])) : defaultBatchSize(size));

let PIN = false;
const profileDir = args.profile === undefined ? undefined : resolve(args.profile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;
const fmt = (n: number | null | undefined, d = 1) => (typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '—');
/** Lets the kernel write back what the previous phase left dirty. */
const settle = () => spawnSync('sync');

async function withBroker<T>(name: string, f: (b: RunningBroker) => Promise<T>): Promise<{ value: T; profile?: ProfileSummary }> {
  settle();
  const before = new Set<string>(profileDir ? readdirSync(profileDir) : []);
  const broker = await startBroker({
    kind: 'robust',
    ...(PIN ? { cpu: 0 } : {}),
    prefix: `robust-bench-kafka-${name}-`,
    robust: { engine: 'file', flush: 'async', kafka: true, maxInflight: 32, maxQueued: 1000, ...(profileDir ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}) },
  });
  let value: T;
  try {
    await sleep(300); // let the fresh node settle (JIT of start-up code, the Raft election's aftermath)
    value = await f(broker);
  } finally {
    await stopBroker(broker);
  }
  if (!profileDir) return { value };
  const file = newestProfile(profileDir, before);
  return file ? { value, profile: summariseProfile(file, TOP) } : { value };
}

/** Runs `robust-bench kafka ...` (pinned to CPU 1) and returns its JSON result. */
function startLoadgen(argv: string[]): { t: Tracked; result: () => Promise<KafkaBenchResult> } {
  const [cmd, cmdArgv] = pinned(PIN, 1, process.execPath, [LOADGEN_JS, 'kafka', ...argv, '--output', 'json']);
  const t = spawnTracked(cmd, cmdArgv, { group: true });
  let code: number | null = null;
  t.child.on('exit', (c) => (code = c));
  return {
    t,
    result: async () => {
      await t.exited;
      const line = t
        .stdout()
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .pop();
      if (code !== 0 || line === undefined) throw new Error(`robust-bench kafka ${argv.join(' ')} exited ${code}:\n${t.output().slice(-3000)}`);
      const r = JSON.parse(line) as KafkaBenchResult;
      for (const w of r.warnings) console.log(`    robust-bench warning: ${w}`);
      return r;
    },
  };
}

async function loadgen(argv: string[], limitS: number): Promise<KafkaBenchResult> {
  const lg = startLoadgen(argv);
  const killer = setTimeout(() => void stopProcess(lg.t, 5000), limitS * 1000);
  try {
    return await lg.result();
  } finally {
    clearTimeout(killer);
  }
}

interface ProduceFigures {
  records_s: number;
  mb_s: number;
  ack_p50_ms: number | null;
  ack_p99_ms: number | null;
  broker_cpu_us_per_record: number | null;
  broker_cpu_percent: number | null;
  loadgen_max_worker_cpu_percent: number;
  saturated: boolean;
  acked: number;
  bytes_total: number;
}

function produceArgs(b: RunningBroker, topic: string, size: number, acks: '1' | 'all'): string[] {
  return [
    'produce',
    '--brokers',
    `127.0.0.1:${b.kafkaPort}`,
    '--topic',
    topic,
    '--partitions',
    String(PARTITIONS),
    '--record-size',
    String(size),
    '--batch-size',
    String(batchFor(size)),
    '--acks',
    acks,
    '--producers',
    String(PRODUCERS),
    '--in-flight',
    String(IN_FLIGHT),
    '--duration',
    String(SECONDS),
    '--warmup',
    String(WARMUP),
    '--broker-pid',
    String(b.pid),
  ];
}

function produceFigures(r: KafkaBenchResult): ProduceFigures {
  return {
    records_s: r.records_per_s,
    mb_s: r.mb_s,
    ack_p50_ms: r.ack_latency_ms?.p50 ?? null,
    ack_p99_ms: r.ack_latency_ms?.p99 ?? null,
    broker_cpu_us_per_record: r.broker?.cpu_us_per_record ?? null,
    broker_cpu_percent: r.broker?.cpu_percent ?? null,
    loadgen_max_worker_cpu_percent: r.loadgen.max_worker_cpu_percent,
    saturated: r.loadgen.saturated,
    acked: r.totals.acked,
    bytes_total: r.totals.acked * (r.record_size ?? 0),
  };
}

function describeProduce(name: string, f: ProduceFigures): string {
  return (
    `  ${name}: ${fmt(f.records_s, 0)} records/s, ${fmt(f.mb_s)} MB/s; request → ack p50 ${fmt(f.ack_p50_ms, 2)} ms, p99 ${fmt(f.ack_p99_ms, 2)} ms; ` +
    `broker ${fmt(f.broker_cpu_us_per_record, 2)} µs CPU/record (${fmt(f.broker_cpu_percent, 0)}% CPU); load generator busiest worker ${fmt(f.loadgen_max_worker_cpu_percent, 0)}%${f.saturated ? ' — SATURATED' : ''}`
  );
}

interface RoundResult {
  produce: Partial<Record<Exclude<CaseName, 'e2e'>, ProduceFigures>>;
  consume_100b?: { records_s: number; mb_s: number; records: number; lost: number | null; duplicates: number | null };
  raw?: { mb_s: number; ms: number; bytes: number };
  /** The better of the two sustained raw writers (rawSustained with and without fdatasync every 8 MiB). */
  rawSustained?: { mb_s: number; plain_mb_s: number; flushed_mb_s: number };
  e2e?: { p50_ms: number; p95_ms: number; p99_ms: number; p999_ms: number; max_ms: number; records: number; records_s: number; lost: number | null; duplicates: number | null; produce_acked: number };
  profiles: Array<{ case: CaseName; summary: ProfileSummary }>;
}

async function runRound(roundNo: number): Promise<RoundResult> {
  const out: RoundResult = { produce: {}, profiles: [] };
  const limit = SECONDS + WARMUP + 120;
  for (const c of cases) {
    const topic = `bench-${c}-r${roundNo}`;
    if (c === 'e2e') {
      const { value, profile } = await withBroker(c, async (b) => {
        // The consumer creates the topic and reads it from the start while the producer runs at a fixed rate.
        const consumer = startLoadgen(['consume', '--brokers', `127.0.0.1:${b.kafkaPort}`, '--topic', topic, '--partitions', String(PARTITIONS), '--duration', String(SECONDS), '--warmup', String(Math.max(2, WARMUP)), '--from', 'earliest']);
        await sleep(1000); // the topic exists and the consumer is fetching
        const produced = await loadgen(
          ['produce', '--brokers', `127.0.0.1:${b.kafkaPort}`, '--topic', topic, '--record-size', '100', '--rate', String(RATE), '--producers', String(PRODUCERS), '--duration', String(SECONDS + Math.max(2, WARMUP) + 1), '--warmup', '0'],
          limit + 10,
        );
        const consumed = await consumer.result();
        return { produced, consumed };
      });
      const l = value.consumed.latency_ms;
      out.e2e = {
        p50_ms: l?.p50 ?? NaN,
        p95_ms: l?.p95 ?? NaN,
        p99_ms: l?.p99 ?? NaN,
        p999_ms: l?.p999 ?? NaN,
        max_ms: l?.max ?? NaN,
        records: value.consumed.records,
        records_s: value.consumed.records_per_s,
        lost: value.consumed.lost,
        duplicates: value.consumed.duplicates,
        produce_acked: value.produced.totals.acked,
      };
      console.log(
        `  e2e at ${fmt(RATE, 0)} records/s (100 B): ${fmt(value.consumed.records_per_s, 0)} consumed/s in the window; end to end p50 ${fmt(l?.p50, 3)} ms, p95 ${fmt(l?.p95, 3)}, p99 ${fmt(l?.p99, 3)}, p99.9 ${fmt(l?.p999, 3)}, max ${fmt(l?.max, 3)} ms; lost ${value.consumed.lost}, duplicates ${value.consumed.duplicates}`,
      );
      if (profile) out.profiles.push({ case: c, summary: profile });
      continue;
    }
    const size = c.startsWith('p100') ? 100 : 1024;
    const acks = c.endsWith('acksall') ? 'all' : '1';
    const { value, profile } = await withBroker(c, async (b) => {
      const r = await loadgen(produceArgs(b, topic, size, acks), limit);
      let consumed: KafkaBenchResult | undefined;
      if (c === 'p100-acks1' && r.totals.acked > 0) {
        consumed = await loadgen(['consume', '--brokers', `127.0.0.1:${b.kafkaPort}`, '--topic', topic, '--records', String(r.totals.acked), '--from', 'earliest', '--broker-pid', String(b.pid)], limit);
      }
      return { r, consumed };
    });
    const f = produceFigures(value.r);
    out.produce[c] = f;
    console.log(describeProduce(c, f));
    if (value.consumed) {
      const k = value.consumed;
      out.consume_100b = { records_s: k.records_per_s, mb_s: k.mb_s, records: k.records, lost: k.lost, duplicates: k.duplicates };
      console.log(`  consume back (100 B, ${fmt(k.records, 0)} records from the earliest offset): ${fmt(k.records_per_s, 0)} records/s, ${fmt(k.mb_s)} MB/s; broker ${fmt(k.broker?.cpu_us_per_record, 2)} µs CPU/record; lost ${k.lost}, duplicates ${k.duplicates}`);
    }
    if (profile) out.profiles.push({ case: c, summary: profile });
    if (c === 'p1k-acks1') {
      // The broker and its data are gone (stopBroker removed the dir): the same bytes, raw.
      const raw = rawBurst(f.bytes_total, batchFor(1024) * 1024);
      out.raw = raw;
      console.log(`  raw disk (fs.writeSync of ${fmt(raw.bytes / 1e6, 0)} MB in ${fmt((batchFor(1024) * 1024) / 1024, 0)} KiB chunks + 1 fdatasync, ${tmpdir()}): ${fmt(raw.mb_s)} MB/s in ${fmt(raw.ms, 0)} ms`);
      const chunk = batchFor(1024) * 1024;
      const plain = rawSustained(SECONDS, WARMUP, chunk, 0);
      const flushed = rawSustained(SECONDS, WARMUP, chunk, 8 * 1024 * 1024);
      const best = Math.max(plain.mb_s, flushed.mb_s);
      out.rawSustained = { mb_s: best, plain_mb_s: plain.mb_s, flushed_mb_s: flushed.mb_s };
      console.log(
        `  raw disk sustained (fs.writeSync ${fmt(chunk / 1024, 0)} KiB chunks for ${WARMUP} s + ${SECONDS} s measured, like the case): ${fmt(plain.mb_s)} MB/s plain, ` +
          `${fmt(flushed.mb_s)} MB/s with an fdatasync every 8 MiB`,
      );
      console.log(`  produce 1 KiB acks=1 ÷ raw disk: ${fmt(f.mb_s / raw.mb_s, 2)} of the burst, ${fmt(f.mb_s / best, 2)} of the better sustained (target >= 0.7)`);
    }
  }
  return out;
}

function median(xs: Array<number | null | undefined>): number | null {
  const a = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((x, y) => x - y);
  if (a.length === 0) return null;
  const m = a.length >> 1;
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

async function main(): Promise<void> {
  cleanupOnSignals();
  if (!existsSync(ROBUST_SERVER_JS) || !existsSync(LOADGEN_JS)) throw new Error('not built: run npm run build');
  PIN = !args['no-pin'] && canPin();
  if (PIN) pinSelf(1);
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  console.log(
    `kafka bench: ${cases.join(', ')}; ${SECONDS} s measured after ${WARMUP} s warm-up; ${PARTITIONS} partition(s), ${PRODUCERS} producer(s), in flight ${IN_FLIGHT}; ` +
      `e2e rate ${RATE} records/s; ${PIN ? 'broker pinned to CPU 0, load generator to CPU 1' : 'not pinned'}; ${cpus().length} CPUs, Node ${process.version}` +
      (profileDir ? `; broker under --cpu-prof into ${profileDir} (figures include the profiler's cost)` : ''),
  );
  const rounds: RoundResult[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    if (ROUNDS > 1) console.log(`round ${i} of ${ROUNDS}:`);
    rounds.push(await runRound(i));
  }
  const pm = (c: Exclude<CaseName, 'e2e'>, k: keyof ProduceFigures) => median(rounds.map((r) => r.produce[c]?.[k] as number | undefined));
  const rawMbS = median(rounds.map((r) => r.raw?.mb_s));
  const rawSustainedMbS = median(rounds.map((r) => r.rawSustained?.mb_s));
  const p1k = pm('p1k-acks1', 'mb_s');
  const summary = {
    produce_1k_acks1_mb_s: p1k,
    raw_disk_mb_s: rawMbS,
    produce_1k_vs_raw: p1k !== null && rawMbS ? round(p1k / rawMbS, 3) : null,
    raw_disk_sustained_mb_s: rawSustainedMbS,
    produce_1k_vs_raw_sustained: p1k !== null && rawSustainedMbS ? round(p1k / rawSustainedMbS, 3) : null,
    produce_100b_acks1_records_s: pm('p100-acks1', 'records_s'),
    produce_1k_acksall_mb_s: pm('p1k-acksall', 'mb_s'),
    produce_100b_acksall_records_s: pm('p100-acksall', 'records_s'),
    e2e_p50_ms: median(rounds.map((r) => r.e2e?.p50_ms)),
    e2e_p99_ms: median(rounds.map((r) => r.e2e?.p99_ms)),
    e2e_rate_records_s: RATE,
    produce_100b_acks1_mb_s: pm('p100-acks1', 'mb_s'),
    produce_1k_acks1_records_s: pm('p1k-acks1', 'records_s'),
    consume_100b_records_s: median(rounds.map((r) => r.consume_100b?.records_s)),
    broker_cpu_us_per_record: {
      p100_acks1: pm('p100-acks1', 'broker_cpu_us_per_record'),
      p100_acksall: pm('p100-acksall', 'broker_cpu_us_per_record'),
      p1k_acks1: pm('p1k-acks1', 'broker_cpu_us_per_record'),
      p1k_acksall: pm('p1k-acksall', 'broker_cpu_us_per_record'),
    },
    loadgen_saturated: rounds.some((r) => Object.values(r.produce).some((f) => f?.saturated)),
    pinned: PIN,
    rounds: ROUNDS,
    seconds: SECONDS,
  };
  if (ROUNDS > 1) {
    console.log(`medians of ${ROUNDS} rounds: produce 100 B acks=1 ${fmt(summary.produce_100b_acks1_records_s, 0)} records/s, acks=all ${fmt(summary.produce_100b_acksall_records_s, 0)}; 1 KiB acks=1 ${fmt(summary.produce_1k_acks1_mb_s)} MB/s, acks=all ${fmt(summary.produce_1k_acksall_mb_s)}; raw ${fmt(rawMbS)} MB/s burst, ${fmt(rawSustainedMbS)} MB/s sustained; e2e p99 ${fmt(summary.e2e_p99_ms, 3)} ms`);
  }
  for (const r of rounds) {
    for (const p of r.profiles) {
      console.log(`profile of the broker, case ${p.case}: ${fmt(p.summary.total_ms, 0)} ms busy, ${fmt(p.summary.idle_ms, 0)} ms idle on the main thread; top ${TOP} by self time:`);
      for (const t of p.summary.top) console.log(`  ${fmt(t.self_ms, 0).padStart(7)} ms ${fmt(t.self_pct).padStart(5)}%  ${t.function}  ${t.location}`);
    }
  }
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    cleanupAll();
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
