/**
 * Meta service write throughput: three local nodes (config/cluster/node{1,2,3}.toml,
 * data in a temp dir), many concurrent small writes sent to the leader over inner
 * gRPC, each one a committed Raft entry (fsynced on a quorum) applied to the
 * state machine. Prints figures and, as its last line, JSON:
 *   { "commits_per_s": N, "p50_ms": N, "p99_ms": N }
 *
 *   npm run bench:meta                      # defaults: 10 s, 128 concurrent writers
 *   npm run bench:meta -- --seconds 20 --concurrency 512
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { MetaClient } from '../src/meta/client.js';
import { encodeCommand } from '../src/meta/state/commands.js';
import { RpcClientPool } from '../src/rpc/client-pool.js';

const ROOT = resolve(import.meta.dirname, '../..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '128' }, warmup: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);

const dataDir = mkdtempSync(join(tmpdir(), 'robust-bench-meta-'));
const nodes: ChildProcess[] = [];

function startNode(id: number): ChildProcess {
  const child = spawn(join(ROOT, 'bin', 'robust-server'), ['start', join(ROOT, 'config', 'cluster', `node${id}.toml`)], {
    env: { ...process.env, ROBUST_DATA_DIR: join(dataDir, `node${id}`), ROBUST_LOG_LEVEL: 'warn', ROBUST_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  nodes.push(child);
  return child;
}

async function waitReady(port: number): Promise<void> {
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function cleanup(): void {
  for (const n of nodes) n.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  for (const id of [1, 2, 3]) startNode(id);
  await Promise.all([1, 2, 3].map((id) => waitReady(58080 + 10 * id)));
  const cluster = (await (await fetch('http://127.0.0.1:58090/api/v1/cluster')).json()) as { leader_id: number; members: Array<{ node_id: number; addr: string }> };
  const leaderAddr = cluster.members.find((m) => m.node_id === cluster.leader_id)!.addr;
  console.log(`3 nodes up; leader is node ${cluster.leader_id} (${leaderAddr}); ${concurrency} concurrent writers, ${warmup} s warm-up, ${seconds} s measured`);

  const pool = new RpcClientPool();
  // The client every broker uses: concurrent writes are batched into one RPC, each still its own Raft entry.
  const others = cluster.members.map((m) => m.addr).filter((a) => a !== leaderAddr);
  const client = new MetaClient({ metaAddrs: [leaderAddr, ...others], pool, log: pino({ level: 'silent' }), replica: { apply: () => undefined, restore: () => undefined }, requestTimeoutMs: 10_000 });
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;
  let errors = 0;
  let seq = 0;
  const writer = async (w: number) => {
    while (!stop) {
      const command = encodeCommand({ kind: 'config.set', key: `bench.w${w}`, value: String(++seq) });
      const t0 = performance.now();
      try {
        const { result } = await client.propose(command, { waitForReplica: false });
        if (!(result as { ok: boolean }).ok) throw new Error('write refused');
        if (measuring) latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const writers = Array.from({ length: concurrency }, (_, w) => writer(w));
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(writers);
  client.stop();
  pool.close();

  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const commitsPerS = Math.round(latencies.length / elapsed);
  console.log(`commits: ${latencies.length} in ${elapsed.toFixed(1)} s = ${commitsPerS}/s, errors ${errors}`);
  console.log(`latency ms: p50 ${pct(50).toFixed(2)}  p90 ${pct(90).toFixed(2)}  p99 ${pct(99).toFixed(2)}  p99.9 ${pct(99.9).toFixed(2)}  max ${(latencies.at(-1) ?? NaN).toFixed(2)}`);
  console.log(JSON.stringify({ commits_per_s: commitsPerS, p50_ms: Number(pct(50).toFixed(2)), p99_ms: Number(pct(99).toFixed(2)) }));
} finally {
  cleanup();
}
