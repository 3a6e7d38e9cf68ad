/**
 * Side by side: our default node, mosquitto and aedes under the same MQTT workloads
 * (issue 6), one after another, with the project's load generator `bin/robust-bench`;
 * workloads 7 and 8 are Kafka produce runs (`robust-bench kafka produce`) of our node
 * alone: no Kafka broker is installable here to set beside it (see `npm run bench:kafka`
 * for the Kafka figures against the raw disk and the end-to-end latency). Workloads 9-11
 * are the replicated (journal) ones, our node only (bench/compare-replicated.ts): 9 (R1)
 * Kafka produce acks=all on the single node and three-node clusters 3/3/2, 2/2/2, 2/2/1,
 * 3/2/2 striped (flush async) and 3/3/2 (flush sync); 10 (R2) MQTT QoS 1 on the single node and the
 * 3/3/2 cluster (same node, cross-node); 11 failover times over kill -9s of the leader.
 *
 *   npm run bench:compare                                   # every workload, every broker
 *   npm run bench:compare -- --quick                        # smoke run: short, 2,000 idle connections
 *   npm run bench:compare -- --brokers robust,mosquitto --workloads 1,2,5 --duration 20
 *   npm run bench:compare -- --workloads replicated                # 9-11 only (also r1, r2, failover)
 *
 * Options: --brokers robust,mosquitto,aedes  --workloads 1,2,... (or 1-5)  --duration S (10)
 *   --warmup S (2)  --rounds N (1; medians, brokers interleaved)  --quick  --connections N
 *   (20,000)  --connect-rate N (5,000 a second)  --window N (64)
 *   --workers N (load generator workers, 1)  --mosquitto PATH  --no-write (print only)
 *   --loadgen PATH (the robust-bench entry to run; dist/src/cmd/robust-bench.js)
 *   --robust-root DIR (run bin/robust-server of another built tree, e.g. a clean `git archive`
 *   export of HEAD while the working tree is mid-edit; the report says so)
 *   Replicated workloads: --kills N (10; --quick 3) --cluster-cpus LIST (taskset list of every
 *   cluster node, "0") --suspect-ms N --dead-ms N ([meta] of the cluster nodes; the server's
 *   defaults when not given) --failover-interval-ms N (2: the failover producer's pace)
 *
 * Per workload and broker: a fresh broker process pinned to CPU 0 (taskset), the load
 * generator pinned to CPU 1 (this process too: it is idle while the load runs),
 * TCP_NODELAY on both sides. The load generator measures msg/s, loss, latency and, given
 * the broker's pid, its CPU per message and RSS from /proc over its measured window; this
 * harness also reads the broker's /proc around the whole run (idle RSS before, peak RSS
 * while, CPU) and every other process's CPU on the machine (neighbours on a shared VM).
 *
 * Writes bench/results/<date>-<commit>.json (every figure, setting, machine info),
 * bench/results/<date>-<commit>.svg (charts) and its own section of bench/RESULTS.md
 * (between marker comments; the rest of the file is left alone) — the replicated workloads
 * their own section "Replicated (journal) workloads" (markers of its own: a run of only
 * those leaves the side-by-side section as it is, and the other way round). A --quick run writes
 * <date>-<commit>-quick.json/.svg and leaves RESULTS.md alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mosquittoConfig, mosquittoVersion, packageVersion, robustConfig, startBroker, stopBroker, type BrokerSpec, type RunningBroker } from './lib/brokers.js';
import { clockTicks, cpuSeconds, machineBusySeconds, memKiB, openFilesLimit, reapedChildrenCpuSeconds } from './lib/proc.js';
import { canPin, cleanupAll, cleanupOnSignals, httpGetText, pinned, pinSelf, ROOT, spawnTracked, stopProcess, withOpenFiles } from './lib/processes.js';
import { renderSection, renderSvg, replaceSection, fmtInt, fmtMs, fmtNum, fmtMiB, fmtKiB, fmtRatio, type BrokerSettings, type CompareReport } from './compare/report.js';
import { notesFor, parseDrops, parseLoadgenOutput, ratios, summarise } from './compare/summary.js';
import { BROKERS, type BrokerKind, type ExternalMeasure, type RunRecord } from './compare/types.js';
import { loadgenArgs, parseWorkloadList, runsOn, workloads, type WorkloadDef } from './compare/workloads.js';
import { expandWorkloadAliases, REPLICATED_IDS, type ReplicatedReport } from './compare/replicated.js';
import { renderReplicatedSection, REPLICATED_BEGIN, REPLICATED_END } from './compare/replicated-report.js';
import { runReplicated } from './compare-replicated.js';

const DEFAULT_LOADGEN_JS = join(ROOT, 'dist', 'src', 'cmd', 'robust-bench.js');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const RESULTS_MD = join(ROOT, 'bench', 'RESULTS.md');
/** Open files a process keeps for itself besides the idle connections (listeners, logs, epoll, data files). */
const FD_RESERVE = 200;
/** Both sides' cap on QoS 1 messages in flight to one client: our default max_inflight. */
const INFLIGHT = 32;

const { values: args } = parseArgs({
  options: {
    brokers: { type: 'string', default: BROKERS.join(',') },
    workloads: { type: 'string', default: '1-11' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    connections: { type: 'string' },
    'connect-rate': { type: 'string', default: '5000' },
    window: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1' },
    mosquitto: { type: 'string', default: '/usr/sbin/mosquitto' },
    'no-write': { type: 'boolean', default: false },
    loadgen: { type: 'string', default: DEFAULT_LOADGEN_JS },
    'robust-root': { type: 'string' },
    kills: { type: 'string' },
    'cluster-cpus': { type: 'string', default: '0' },
    'suspect-ms': { type: 'string' },
    'dead-ms': { type: 'string' },
    'failover-interval-ms': { type: 'string', default: '2' },
  },
});

function num(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${v}`);
  return n;
}

function git(argv: string[]): string {
  try {
    return execFileSync('git', argv, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ctx {
  loadgenJs: string;
  robustRoot: string | undefined;
  pin: boolean;
  clk: number;
  duration: number;
  warmup: number;
  window: number;
  workers: number;
  connectRate: number;
  mosquittoPath: string;
  /** Soft open-files limit to give each child (≤ the hard limit). */
  openFiles: number | undefined;
}

function brokerSpec(kind: BrokerKind, ctx: Ctx, kafka = false): BrokerSpec {
  return {
    kind,
    ...(ctx.pin ? { cpu: 0 } : {}),
    ...(ctx.openFiles !== undefined ? { openFiles: ctx.openFiles } : {}),
    prefix: `robust-bench-compare-${kind}-`,
    // Our default node: every [mqtt] limit at its default (max_inflight 32, max_queued_messages 1000), default engine file.
    // Kafka workloads also open the Kafka listener.
    robust: { engine: 'file', maxInflight: INFLIGHT, maxQueued: 1000, ...(kafka ? { kafka: true } : {}), ...(ctx.robustRoot !== undefined ? { root: ctx.robustRoot } : {}) },
    mosquitto: { path: ctx.mosquittoPath, maxInflight: INFLIGHT, maxQueued: 0, maxConnections: -1 },
  };
}

/** One workload against one fresh broker. Never throws: a failure is a record with ok = false. */
async function runOne(w: WorkloadDef, kind: BrokerKind, roundNo: number, ctx: Ctx, configs: Map<BrokerKind, string>): Promise<RunRecord> {
  let broker: RunningBroker | undefined;
  let argv: string[] = [];
  try {
    broker = await startBroker(brokerSpec(kind, ctx, w.mode === 'kafka'));
    if (w.mode !== 'kafka') configs.set(kind, broker.config);
    const pid = broker.pid;
    await sleep(300); // let the fresh broker settle (JIT of start-up code, Raft election's aftermath)
    argv = loadgenArgs(w, {
      host: '127.0.0.1',
      port: w.mode === 'kafka' ? (broker.kafkaPort as number) : broker.port,
      duration_s: ctx.duration,
      warmup_s: ctx.warmup,
      window: ctx.window,
      workers: ctx.workers,
      mqttVersion: 4,
      connectRate: ctx.connectRate,
      brokerPid: pid,
    });
    const rssIdle = memKiB(pid, 'VmRSS') * 1024;
    let rssPeak = rssIdle;
    const sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, memKiB(pid, 'VmRSS') * 1024);
      } catch {
        // broker gone: the run fails below
      }
    }, 200);
    const cpu0 = cpuSeconds(pid, ctx.clk);
    const busy0 = machineBusySeconds(ctx.clk);
    const self0 = cpuSeconds('self', ctx.clk);
    const reaped0 = reapedChildrenCpuSeconds(ctx.clk);
    const t0 = performance.now();
    let [cmd, cmdArgv] = pinned(ctx.pin, 1, process.execPath, [ctx.loadgenJs, ...argv]);
    if (ctx.openFiles !== undefined) [cmd, cmdArgv] = withOpenFiles(ctx.openFiles, cmd, cmdArgv);
    const load = spawnTracked(cmd, cmdArgv, { group: true });
    const limitMs = (ctx.warmup + ctx.duration + 120 + (w.connections ?? 0) / 200) * 1000;
    let timedOut = false;
    const killer = setTimeout(() => {
      timedOut = true;
      void stopProcess(load, 5000);
    }, limitMs);
    let exitCode: number | null = null;
    load.child.on('exit', (code) => (exitCode = code));
    await load.exited;
    clearTimeout(killer);
    clearInterval(sampler);
    const wall = (performance.now() - t0) / 1000;
    let brokerAlive = true;
    let cpu1 = cpu0;
    let rssEnd = NaN;
    try {
      cpu1 = cpuSeconds(pid, ctx.clk);
      rssEnd = memKiB(pid, 'VmRSS') * 1024;
      rssPeak = Math.max(rssPeak, rssEnd);
    } catch {
      brokerAlive = false;
    }
    const loadCpu = reapedChildrenCpuSeconds(ctx.clk) - reaped0;
    let drops: Record<string, number> | undefined;
    if (brokerAlive && broker.httpPort !== undefined) {
      for (let attempt = 0; attempt < 3 && drops === undefined; attempt++) {
        try {
          drops = parseDrops(await httpGetText(`http://127.0.0.1:${broker.httpPort}/metrics`, 5000));
        } catch {
          await sleep(500); // busy draining what the load left: try again
        }
      }
    }
    const brokerCpu = cpu1 - cpu0;
    const others = Math.max(0, machineBusySeconds(ctx.clk) - busy0 - brokerCpu - loadCpu - (cpuSeconds('self', ctx.clk) - self0));
    const external: ExternalMeasure = {
      wall_s: round(wall, 3),
      broker_cpu_s: round(brokerCpu, 3),
      broker_cpu_percent: round((100 * brokerCpu) / wall, 1),
      rss_idle_bytes: rssIdle,
      rss_end_bytes: rssEnd,
      rss_peak_bytes: rssPeak,
      loadgen_cpu_s: round(loadCpu, 3),
      others_cpu_percent: round((100 * others) / wall, 1),
      ...(drops !== undefined ? { broker_drops: drops } : {}),
    };
    const tail = () => `\nload generator output (tail):\n${load.output().slice(-3000)}\nbroker output (tail):\n${broker?.output().slice(-3000) ?? ''}`;
    if (timedOut) return { workload: w.id, broker: kind, round: roundNo, ok: false, error: `load generator timed out after ${Math.round(limitMs / 1000)} s${tail()}`, argv, load: null, external };
    if (!brokerAlive) return { workload: w.id, broker: kind, round: roundNo, ok: false, error: `the broker exited during the run${tail()}`, argv, load: null, external };
    let result;
    let raw: unknown = null;
    try {
      result = parseLoadgenOutput(load.stdout());
      raw = JSON.parse(load.stdout().trim().split('\n').filter((l) => l.startsWith('{')).pop() ?? 'null') as unknown;
    } catch (err) {
      return { workload: w.id, broker: kind, round: roundNo, ok: false, error: `load generator exited ${exitCode}: ${(err as Error).message.split('\n')[0]}${tail()}`, argv, load: null, external };
    }
    return { workload: w.id, broker: kind, round: roundNo, ok: true, argv, load: result, load_raw: raw, external };
  } catch (err) {
    return { workload: w.id, broker: kind, round: roundNo, ok: false, error: err instanceof Error ? err.message : String(err), argv, load: null, external: null };
  } finally {
    if (broker) await stopBroker(broker);
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function progressLine(r: RunRecord): string {
  if (!r.ok) return `FAILED: ${(r.error ?? '').split('\n')[0]}`;
  const l = r.load;
  if (!l) return 'no result';
  const sat = l.loadgen?.saturated ? ', LOAD GENERATOR SATURATED' : '';
  if (l.workload === 'conn' && l.connect) {
    const perConn = l.broker?.rss_per_connection_bytes ?? (r.external && l.connect.connected > 0 ? (r.external.rss_peak_bytes - r.external.rss_idle_bytes) / l.connect.connected : null);
    return `${fmtInt(l.connect.connected)} connected (${fmtInt(l.connect.failed)} failed) at ${fmtInt(l.connect.per_s)}/s, broker RSS ${fmtMiB(l.broker?.rss_bytes ?? r.external?.rss_end_bytes)} MiB, ${fmtKiB(perConn)} KiB per connection${sat}`;
  }
  const cpu = l.broker?.cpu_us_per_msg ?? (r.external && l.received > 0 ? (r.external.broker_cpu_s * 1e6) / l.received : null);
  return (
    `${fmtInt(l.sent_per_s)} sent/s, ${fmtInt(l.received_per_s)} received/s, lost ${fmtInt(l.lost)}, p50 ${fmtMs(l.latency_ms?.p50)} p99 ${fmtMs(l.latency_ms?.p99)} ms, ` +
    `broker ${fmtNum(cpu)} µs CPU/msg, RSS ${fmtMiB(l.broker?.rss_bytes ?? r.external?.rss_end_bytes)} MiB, others ${r.external?.others_cpu_percent ?? '?'}%${sat}`
  );
}

async function main(): Promise<void> {
  cleanupOnSignals();
  const quick = args.quick === true;
  const duration = num('duration', args.duration ?? (quick ? '3' : '10'), 0.5);
  const warmup = num('warmup', args.warmup ?? (quick ? '1' : '2'), 0);
  const rounds = Math.floor(num('rounds', args.rounds, 1));
  const window = Math.floor(num('window', args.window, 1));
  const workers = Math.floor(num('workers', args.workers, 1));
  const connectRate = num('connect-rate', args['connect-rate'], 1);
  const requested = Math.floor(num('connections', args.connections ?? (quick ? '2000' : '20000'), 1));
  const mosquittoPath = args.mosquitto as string;

  let brokers = (args.brokers as string).split(',').map((s) => s.trim()).filter((s) => s !== '') as BrokerKind[];
  for (const b of brokers) if (!BROKERS.includes(b)) throw new Error(`--brokers: unknown broker ${b} (${BROKERS.join(', ')})`);
  const notes: string[] = [];

  // Idle connections: each side needs one descriptor per connection plus its own.
  const limits = openFilesLimit();
  const maxByFds = limits.hard - FD_RESERVE;
  const connections = Math.min(requested, maxByFds);
  let openFiles: number | undefined;
  const wantFiles = Math.min(limits.hard, connections + FD_RESERVE + 1000);
  if (limits.soft < wantFiles) openFiles = wantFiles;
  if (connections < requested) {
    notes.push(
      `Workload 6 opened ${connections.toLocaleString('en-US')} idle connections, not ${requested.toLocaleString('en-US')}: the open-files hard limit here is ` +
        `${limits.hard.toLocaleString('en-US')} per process (\`ulimit -Hn\`; raising it is not permitted in this container) and each broker needs ` +
        `~${FD_RESERVE} descriptors of its own besides one per connection.`,
    );
  }
  const defs = workloads(connections);
  const ids = parseWorkloadList(expandWorkloadAliases(args.workloads as string), [...defs.map((w) => w.id), ...REPLICATED_IDS]);
  const classicIds = ids.filter((id) => defs.some((w) => w.id === id));
  const replicatedIds = ids.filter((id) => REPLICATED_IDS.includes(id));
  const kills = Math.floor(num('kills', args.kills ?? (quick ? '3' : '10'), 1));
  const clusterCpus = args['cluster-cpus'] as string;
  if (!/^\d+([-,]\d+)*$/.test(clusterCpus)) throw new Error(`--cluster-cpus must be a taskset CPU list such as 0 or 0,1, got ${clusterCpus}`);
  const suspectMs = args['suspect-ms'] === undefined ? undefined : Math.floor(num('suspect-ms', args['suspect-ms'], 100));
  const deadMs = args['dead-ms'] === undefined ? undefined : Math.floor(num('dead-ms', args['dead-ms'], 200));
  const failoverIntervalMs = num('failover-interval-ms', args['failover-interval-ms'], 0);
  if ((suspectMs ?? 3000) >= (deadMs ?? 10_000)) throw new Error(`--suspect-ms (${suspectMs ?? 'default 3000'}) must be below --dead-ms (${deadMs ?? 'default 10000'})`);
  const titles = new Map(defs.map((w) => [w.id, w.title] as const));

  const mosqVersion = mosquittoVersion(mosquittoPath);
  if (brokers.includes('mosquitto') && mosqVersion === undefined) {
    notes.push(`mosquitto was not run: ${mosquittoPath} not found.`);
    brokers = brokers.filter((b) => b !== 'mosquitto');
  }
  const aedesVersion = packageVersion('node_modules/aedes');
  if (brokers.includes('aedes') && aedesVersion === undefined) {
    notes.push('aedes was not run: node_modules/aedes not installed (npm install).');
    brokers = brokers.filter((b) => b !== 'aedes');
  }
  if (brokers.length === 0) throw new Error('no broker to run');
  const loadgenJs = resolve(args.loadgen as string);
  if (!existsSync(loadgenJs)) throw new Error(`${loadgenJs} missing: run npm run build`);
  if (quick) notes.push('A --quick smoke run: short windows and few idle connections; not figures to quote.');

  const pin = canPin();
  if (pin) pinSelf(1);
  else notes.push('Not pinned: taskset unavailable or fewer than 2 CPUs; broker and load generator shared the CPUs.');
  const clk = clockTicks();
  const robustRoot = args['robust-root'] === undefined ? undefined : resolve(args['robust-root']);
  let robustAt = '';
  if (robustRoot !== undefined) {
    // A git tree, or an export with a REVISION file (e.g. `git archive HEAD | tar -x -C DIR; git rev-parse --short HEAD > DIR/REVISION`).
    const revFile = join(robustRoot, 'REVISION');
    const at = existsSync(join(robustRoot, '.git')) ? git(['-C', robustRoot, 'rev-parse', '--short', 'HEAD']) : existsSync(revFile) ? readFileSync(revFile, 'utf8').trim() : '';
    robustAt = at;
    notes.push(`robust-server ran from \`${robustRoot}\`${at ? ` (commit ${at})` : ''}, not from this working tree (\`--robust-root\`).`);
  }
  const ctx: Ctx = { loadgenJs, robustRoot, pin, clk, duration, warmup, window, workers, connectRate, mosquittoPath, openFiles };

  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  // Uncommitted changes to what runs (src/, bin/, config/) make the commit label inexact; the harness's own files do not.
  const uncommitted = git(['status', '--porcelain']).split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3));
  const dirty = uncommitted.some((p) => /^(src|bin|config)\//.test(p));
  const startedAt = new Date();
  const date = startedAt.toISOString().slice(0, 10);
  const command = `npm run bench:compare${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const machine: Record<string, string | number> = {
    cpu_model: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memory_gib: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    robust: robustRoot !== undefined ? `${packageVersion('.') ?? '?'}, bin/robust-server of ${robustRoot}${robustAt ? ` (commit ${robustAt})` : ''}` : `${packageVersion('.') ?? '?'} (commit ${commit}${dirty ? ', uncommitted changes' : ''})`,
    mosquitto: mosqVersion ?? 'not installed',
    aedes: aedesVersion ?? 'not installed',
    pinning: pin ? 'broker (all threads) on CPU 0, load generator and this harness on CPU 1 (taskset)' : 'none',
    ...(replicatedIds.length > 0
      ? { cluster_pinning: pin ? `replicated workloads: every node of a three-node cluster on CPU ${clusterCpus} (taskset -c ${clusterCpus}; the three share ${/[-,]/.test(clusterCpus) ? 'those cores' : 'one core'}), the single node on CPU 0, load generator(s) and this harness on CPU 1` : 'none' }
      : {}),
    open_files_limit: `soft ${limits.soft}, hard ${limits.hard}${openFiles !== undefined ? `; children raised to ${openFiles}` : ''}`,
    clk_tck: clk,
  };

  console.log(`bench:compare — ${brokers.join(', ')}; workloads ${ids.join(', ')}; ${warmup} s warm-up + ${duration} s per run; ${rounds} round(s)${quick ? ' (quick)' : ''}`);
  console.log(`  ${machine.cpus} CPUs (${machine.cpu_model}), node ${process.version}, mosquitto ${machine.mosquitto}, aedes ${machine.aedes}, commit ${commit}${dirty ? ' (dirty)' : ''}; ${machine.pinning}`);
  for (const n of notes) console.log(`  note: ${n}`);

  const records: RunRecord[] = [];
  const configs = new Map<BrokerKind, string>();
  let replicated: ReplicatedReport | undefined;
  try {
    for (let r = 1; r <= rounds && classicIds.length > 0; r++) {
      if (rounds > 1) console.log(`round ${r} of ${rounds}:`);
      for (const id of classicIds) {
        const w = defs.find((d) => d.id === id) as WorkloadDef;
        for (const b of brokers) {
          if (!runsOn(w, b)) continue;
          process.stdout.write(`  ${String(w.id).padEnd(2)} ${w.short.padEnd(18)} ${b.padEnd(9)} ... `);
          const rec = await runOne(w, b, r, ctx, configs);
          records.push(rec);
          console.log(progressLine(rec));
          if (!rec.ok && rec.error) console.log(rec.error.split('\n').slice(1, 40).map((l) => `      ${l}`).join('\n'));
          await sleep(500);
        }
      }
    }
    if (replicatedIds.length > 0 && !brokers.includes('robust')) {
      const n = `Workloads ${replicatedIds.join(', ')} (replicated, our node only) were not run: --brokers leaves robust out.`;
      notes.push(n);
      console.log(`  note: ${n}`);
    }
    else if (replicatedIds.length > 0) {
      replicated = await runReplicated(replicatedIds, rounds, {
        loadgenJs,
        robustRoot,
        pin,
        clusterCpus,
        clk,
        duration,
        warmup,
        window,
        openFiles,
        kills,
        suspectMs,
        deadMs,
        failoverIntervalMs,
        maxInflight: INFLIGHT,
        maxQueued: 1000,
      });
    }
  } finally {
    cleanupAll();
  }

  const summaries = summarise(records, classicIds, brokers);
  const ratioRows = ratios(summaries);
  notes.push(...notesFor(summaries, titles, records));

  // A smoke run must not overwrite a real run's files of the same day and commit.
  const base = `${date}-${commit}${quick ? '-quick' : ''}`;
  const files = { json: `results/${base}.json`, svg: `results/${base}.svg` };
  const settings = describeSettings(ctx, brokers, configs, { mosqVersion, aedesVersion, connections });
  const report: CompareReport = {
    date,
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    commit,
    dirty,
    uncommitted,
    command,
    options: { brokers, workloads: ids, duration_s: duration, warmup_s: warmup, rounds, quick, window, workers, connect_rate: connectRate, connections, connections_requested: requested },
    machine,
    settings,
    workloads: defs.filter((w) => ids.includes(w.id)),
    records,
    summaries,
    ratios: ratioRows,
    notes,
    files,
    ...(replicated !== undefined ? { replicated } : {}),
  };

  const section = classicIds.length > 0 ? renderSection(report) : undefined;
  const replicatedSection = replicated !== undefined ? renderReplicatedSection({ ...report, replicated }) : undefined;
  for (const sct of [section, replicatedSection]) {
    if (sct === undefined) continue;
    console.log('');
    console.log(sct);
  }
  if (args['no-write'] === true) return;
  mkdirSync(RESULTS_DIR, { recursive: true });
  const jsonPath = join(ROOT, 'bench', files.json);
  const svgPath = join(ROOT, 'bench', files.svg);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(svgPath, renderSvg(report));
  if (quick) {
    // Smoke-run figures are not for the report: RESULTS.md keeps the last real run.
    console.log(`wrote ${relative(ROOT, jsonPath)} and ${relative(ROOT, svgPath)} (--quick: ${relative(ROOT, RESULTS_MD)} left as it is)`);
  } else {
    let md = existsSync(RESULTS_MD) ? readFileSync(RESULTS_MD, 'utf8') : '# Benchmark results\n';
    const which: string[] = [];
    if (section !== undefined) {
      md = replaceSection(md, section);
      which.push('"Side by side"');
    }
    if (replicatedSection !== undefined) {
      md = replaceSection(md, replicatedSection, { begin: REPLICATED_BEGIN, end: REPLICATED_END });
      which.push('"Replicated (journal) workloads"');
    }
    writeFileSync(RESULTS_MD, md);
    console.log(`wrote ${relative(ROOT, jsonPath)}, ${relative(ROOT, svgPath)} and the ${which.join(' and ')} section${which.length > 1 ? 's' : ''} of ${relative(ROOT, RESULTS_MD)}`);
  }
  const failed = records.filter((r) => !r.ok).length + (replicated?.records.filter((r) => !r.ok).length ?? 0) + (replicated?.failover?.error !== undefined ? 1 : 0);
  if (failed > 0) {
    console.log(`${failed} run(s) failed (see the notes)`);
    process.exitCode = 1;
  }
  // The ratio summary once more, short, for the terminal.
  for (const x of ratioRows) {
    const figures =
      x.connect_per_s !== null || x.rss_per_connection_bytes !== null
        ? `connects/s ${fmtRatio(x.connect_per_s)}, RSS per connection ${fmtRatio(x.rss_per_connection_bytes)}`
        : `msg/s ${fmtRatio(x.received_per_s)}, p99 ${fmtRatio(x.p99)}, CPU/msg ${fmtRatio(x.cpu_us_per_msg)}, RSS ${fmtRatio(x.rss_bytes)}`;
    console.log(`  workload ${x.workload}, ours ÷ ${x.peer}: ${figures}`);
  }
}

function describeSettings(
  ctx: Ctx,
  brokers: BrokerKind[],
  configs: Map<BrokerKind, string>,
  v: { mosqVersion: string | undefined; aedesVersion: string | undefined; connections: number },
): CompareReport['settings'] {
  const load = [
    '`bin/robust-bench mqtt pubsub|conn` (this repository), MQTT 3.1.1 (`--mqtt-version 4`), TCP_NODELAY on every socket, ' +
      `${ctx.workers} worker(s) (\`--workers ${ctx.workers}\`), pinned to CPU 1; \`--broker-pid\` so that it reads the broker's CPU and RSS from /proc over its measured window.`,
    `\`--warmup ${ctx.warmup}\` s of load before \`--duration ${ctx.duration}\` s measured; payload 100 bytes with a send timestamp; \`--window ${ctx.window}\` unacknowledged QoS 1 publishes per publisher; \`--rate 0\` = as fast as flow control allows.`,
    'Fan-in publishes to `bench/w4/%i` (one topic per publisher) with the subscriber on `bench/w4/+`; the other workloads use one topic.',
    'Workloads 7-8 (Kafka, our node only: no Kafka broker is installable here): `bin/robust-bench kafka produce`, one producer, a topic of 1 partition created by it, record batches of robust-bench\'s default size (1,000 records of 100 B; 253 of 1 KiB), 5 Produce requests in flight, acks=1; ' +
      'records/s = records acknowledged in the window, latency = Produce request → response; the node also opens its Kafka listener (`[kafka] tcp_port`), nothing else differs.',
    'At max rate (workloads 1–4) the publishers keep every buffer on the path full (QoS 0 has no flow control; QoS 1 only the per-publisher window, and a broker may acknowledge a publish before it delivers it), ' +
      'so latency there is mostly queueing delay and loss shows where a broker drops instead of queueing; workload 5 measures latency at a rate every broker sustains.',
    'Lost = published but never delivered, after the measured window plus up to 5 s of drain (whole run, warm-up included). For robust the harness also reads its drop counters (`robust_mqtt_messages_dropped_total` on /metrics) into the notes.',
    `Idle connections: \`--clients ${v.connections}\` opened at a target of \`--connect-rate ${ctx.connectRate}\`/s (the table gives the rate achieved: connections ÷ time from the first attempt to the last CONNACK), held for \`--duration ${ctx.duration}\` s; RSS per connection = (broker RSS with them open − before) ÷ connections. ` +
      'The rate achieved is the lower of what the broker and the load generator (one core) sustain: when every broker comes out alike, it is the load generator’s.',
    'msg/s = messages received by the subscribers per second (fan-out counts each delivery); broker CPU per message = broker utime+stime (/proc/PID/stat) over the window ÷ messages received; RSS = VmRSS. ' +
      'The harness also reads the broker’s /proc itself (idle RSS before, peak RSS every 200 ms, CPU over the whole run) and every other process’s CPU on the machine ("others"), all in the JSON.',
  ];
  const out: CompareReport['settings'] = { load, brokers: {} };
  const robust: BrokerSettings = {
    description: [
      '`node bin/robust-server start CONFIG`: the default node with roles `["meta", "broker"]` (no journal role), the default storage engine `file` (flush `async`), ' +
        'MQTT on TCP only (`ws_port`, `tls_port`, `wss_port`, `[kafka] tcp_port`, `[rocketmq] grpc_port` = 0), `[log] level = "warn"`.',
      '`[mqtt]` limits at their defaults: `max_inflight = 32`, `max_queued_messages = 1000`, QoS 0 to a client with more than 4 MiB unsent is dropped (slow-client guard); TCP_NODELAY on every socket (built in).',
    ],
    config: configs.get('robust') ?? robustConfig('DIR', { engine: 'file', maxInflight: INFLIGHT, maxQueued: 1000 }, { grpc: 0, http: 0, mqtt: 0, journal: 0 }),
  };
  const mosq: BrokerSettings = {
    description: [
      `mosquitto ${v.mosqVersion ?? '?'} (Debian, \`${ctx.mosquittoPath} -c CONFIG\`), option names from mosquitto.conf(5) / /usr/share/doc/mosquitto/examples/mosquitto.conf.`,
      '`max_queued_messages 0` (no limit; the default 1000 also drops QoS 0 once 1,000 packets wait for one client), `max_inflight_messages 32` (= ours; default 20), ' +
        '`set_tcp_nodelay true` (default false: Nagle on), `max_connections -1` (no limit, the default, explicit), `persistence false` (the default), errors and warnings to stderr only.',
    ],
    config: configs.get('mosquitto') ?? mosquittoConfig(0, { maxInflight: INFLIGHT, maxQueued: 0, maxConnections: -1 }),
  };
  const aedes: BrokerSettings = {
    description: [
      `aedes ${v.aedesVersion ?? '?'} (npm devDependency) under the same Node.js, started by \`bench/aedes-broker.ts\`: \`Aedes.createBroker()\` with every option at its default ` +
        '(in-memory aedes-persistence and mqemitter, `concurrency` 100, no cap on QoS 1 messages in flight to a client), a `net` server with `noDelay: true` and `setNoDelay(true)` on every accepted socket.',
    ],
    config: configs.get('aedes') ?? 'node dist/bench/aedes-broker.js --port PORT',
  };
  const all = { robust, mosquitto: mosq, aedes };
  for (const b of brokers) out.brokers[b] = all[b];
  const common = `Every broker: a fresh process per workload and round, pinned to CPU 0 (all threads), open-files soft limit ${ctx.openFiles ?? 'inherited'}.`;
  out.load.push(common);
  return out;
}

await main();
