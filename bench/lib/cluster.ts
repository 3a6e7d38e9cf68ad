/**
 * A three-node robust-server cluster for the benchmarks: every node meta + broker +
 * journal (bench/compare/replicated.ts clusterNodeConfig() writes each config), real
 * processes (`node bin/robust-server start nodeN.toml`) on free 127.0.0.1 ports in a
 * fresh temp dir, each pinned with taskset to the CPU list given (all three share it).
 * Nodes can be killed with SIGKILL (by pid) and started again on the same config and data.
 * Every process is tracked (bench/lib/processes.ts): cleanupAll() stops what is left.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { clusterNodeConfig, type NodePorts, type ReplicationMode } from '../compare/replicated.js';
import { freePort, httpGetText, isRunning, makeTempDir, removeTempDir, ROOT, spawnTracked, stopProcess, waitHttp200, waitTcp, withOpenFiles, type Tracked } from './processes.js';

export const NODE_IDS = [1, 2, 3] as const;

export interface ClusterSpec {
  mode: ReplicationMode;
  /** taskset CPU list for every node (e.g. "0" or "0,1"); undefined = not pinned. */
  cpus?: string;
  openFiles?: number;
  /** Built tree whose bin/robust-server runs (default: this repository). */
  root?: string;
  maxInflight: number;
  maxQueued: number;
  kafka: boolean;
  suspectMs?: number;
  deadMs?: number;
  prefix?: string;
}

export interface ClusterStatus {
  leader_id: number;
  nodes: Array<{ node_id: number; state: string }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class BenchCluster {
  readonly ports = new Map<number, NodePorts>();
  readonly procs = new Map<number, Tracked>();
  readonly configs = new Map<number, string>();
  /** Output of nodes that exited (killed ones), kept for error messages. */
  private readonly pastOutput = new Map<number, string>();

  private constructor(
    readonly spec: ClusterSpec,
    readonly dir: string,
  ) {}

  /** Writes the configs, starts the three nodes and waits until each is ready and all three are alive; retries on fresh ports when one was taken (3 times). */
  static async start(spec: ClusterSpec): Promise<BenchCluster> {
    for (let attempt = 1; ; attempt++) {
      const c = new BenchCluster(spec, makeTempDir(spec.prefix ?? 'robust-bench-cluster-'));
      try {
        await c.writeConfigs();
        await Promise.all(NODE_IDS.map((id) => c.startNode(id)));
        await c.waitAllAlive(30_000);
        return c;
      } catch (err) {
        await c.stop();
        if (attempt >= 3 || !/address (already )?in use|EADDRINUSE/i.test(err instanceof Error ? err.message : String(err))) throw err;
      }
    }
  }

  private async writeConfigs(): Promise<void> {
    for (const id of NODE_IDS) this.ports.set(id, { grpc: await freePort(), http: await freePort(), journal: await freePort(), kafka: await freePort(), mqtt: await freePort() });
    for (const id of NODE_IDS) {
      const text = clusterNodeConfig({
        nodeId: id,
        ports: this.ports,
        dataDir: join(this.dir, `n${id}`, 'data'),
        mode: this.spec.mode,
        maxInflight: this.spec.maxInflight,
        maxQueued: this.spec.maxQueued,
        kafka: this.spec.kafka,
        ...(this.spec.suspectMs !== undefined ? { suspectMs: this.spec.suspectMs } : {}),
        ...(this.spec.deadMs !== undefined ? { deadMs: this.spec.deadMs } : {}),
      });
      this.configs.set(id, text);
      writeFileSync(join(this.dir, `n${id}.toml`), text);
    }
  }

  port(id: number): NodePorts {
    const p = this.ports.get(id);
    if (!p) throw new Error(`no node ${id}`);
    return p;
  }

  pid(id: number): number {
    const t = this.procs.get(id);
    if (!t || t.child.pid === undefined) throw new Error(`node ${id} is not running`);
    return t.child.pid;
  }

  /** Pids of the running nodes. */
  pids(): number[] {
    return [...this.procs.values()].filter((t) => isRunning(t.child)).map((t) => t.child.pid as number);
  }

  running(): number[] {
    return [...this.procs].filter(([, t]) => isRunning(t.child)).map(([id]) => id);
  }

  /** Starts node `id` (pinned) and waits until /health/ready answers 200 and its listeners accept. */
  async startNode(id: number): Promise<void> {
    const root = this.spec.root ?? ROOT;
    let cmd = process.execPath;
    let argv = [join(root, 'bin', 'robust-server'), 'start', join(this.dir, `n${id}.toml`)];
    if (this.spec.cpus !== undefined) [cmd, argv] = ['taskset', ['-c', this.spec.cpus, cmd, ...argv]];
    if (this.spec.openFiles !== undefined) [cmd, argv] = withOpenFiles(this.spec.openFiles, cmd, argv);
    const t = spawnTracked(cmd, argv, { cwd: this.dir });
    this.procs.set(id, t);
    const p = this.port(id);
    await waitHttp200(`http://127.0.0.1:${p.http}/health/ready`, t, `node ${id}`, 60_000);
    await waitTcp(p.mqtt, t, `node ${id} (mqtt)`);
    if (this.spec.kafka) await waitTcp(p.kafka, t, `node ${id} (kafka)`);
  }

  /** SIGKILL to node `id` (its pid), waits until it is gone; returns process.hrtime ns taken just before the signal. */
  async kill(id: number): Promise<number> {
    const t = this.procs.get(id);
    if (!t || !isRunning(t.child)) throw new Error(`node ${id} is not running`);
    const at = Number(process.hrtime.bigint());
    process.kill(t.child.pid as number, 'SIGKILL');
    await t.exited;
    this.pastOutput.set(id, `${this.pastOutput.get(id) ?? ''}${t.output()}`.slice(-20_000));
    this.procs.delete(id);
    return at;
  }

  /** GET path on the admin API of the first running node that answers (JSON). */
  async adminGet<T>(path: string, prefer?: number): Promise<T> {
    const order = [...new Set([...(prefer !== undefined ? [prefer] : []), ...this.running()])];
    let last: unknown;
    for (const id of order) {
      try {
        return JSON.parse(await httpGetText(`http://127.0.0.1:${this.port(id).http}${path}`, 5000)) as T;
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`GET ${path}: no node answered (${last instanceof Error ? last.message : String(last)})`);
  }

  status(prefer?: number): Promise<ClusterStatus> {
    return this.adminGet<ClusterStatus>('/api/v1/cluster', prefer);
  }

  /**
   * The leader of each of the topic's partitions, from Kafka Metadata asked of the running
   * nodes (a fresh kafkajs client each time, so nothing cached); leader -1 while none.
   */
  async partitionLeaders(topic: string): Promise<Array<{ shard: number; leader: number }>> {
    const brokers = this.running().map((id) => `127.0.0.1:${this.port(id).kafka}`);
    const admin = new Kafka({ clientId: 'robust-bench-metadata', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 3, initialRetryTime: 50 } }).admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topic] });
      return (md.topics[0]?.partitions ?? []).map((p) => ({ shard: p.partitionId, leader: p.leader }));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Until every node is reported alive (by a running node), or throws after timeoutMs. */
  async waitAllAlive(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      for (const [id, t] of this.procs) if (!isRunning(t.child)) throw new Error(`node ${id} exited\n${t.output().slice(-3000)}`);
      try {
        const s = await this.status();
        if (s.leader_id > 0 && NODE_IDS.every((id) => s.nodes.find((n) => n.node_id === id)?.state === 'alive')) return;
        last = JSON.stringify(s.nodes);
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) throw new Error(`cluster: not every node alive within ${timeoutMs / 1000} s (last: ${last})\n${this.output()}`);
      await sleep(100);
    }
  }

  /** The last lines of every node's output (warnings and errors are logged; info is off). */
  output(max = 2000): string {
    return NODE_IDS.map((id) => `--- node ${id}\n${`${this.pastOutput.get(id) ?? ''}${this.procs.get(id)?.output() ?? ''}`.slice(-max)}`).join('\n');
  }

  /** SIGTERM every node (SIGKILL after 20 s), then the temp dir goes. */
  async stop(): Promise<void> {
    await Promise.all([...this.procs.values()].map((t) => stopProcess(t)));
    this.procs.clear();
    removeTempDir(this.dir);
  }
}
