/** Three-node clusters (every node meta + broker + journal) as real processes on free 127.0.0.1 ports. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterStatusView } from '../../src/meta/service.js';
import type { Kafka, KafkaConfig } from 'kafkajs';
import { kafkaClient } from './kafka.js';
import { ServerProcess, freePort, removeDir, tempDir, until } from './server.js';

export { until } from './server.js';

export interface NodePorts {
  grpc: number;
  http: number;
  journal: number;
  kafka: number;
  mqtt: number;
}

export class Cluster {
  readonly dir = tempDir('robust-journal-failover-');
  readonly ports = new Map<number, NodePorts>();
  readonly procs = new Map<number, ServerProcess>();

  constructor(private readonly quorum: { e: number; w: number; a: number; stripeBytes?: number }) {}

  async write(): Promise<void> {
    for (const id of [1, 2, 3]) this.ports.set(id, { grpc: await freePort(), http: await freePort(), journal: await freePort(), kafka: await freePort(), mqtt: await freePort() });
    const metaAddrs = [1, 2, 3].map((id) => `${id} = "127.0.0.1:${this.ports.get(id)!.grpc}"`).join(', ');
    for (const id of [1, 2, 3]) {
      const p = this.ports.get(id)!;
      mkdirSync(join(this.dir, `n${id}`), { recursive: true });
      writeFileSync(
        join(this.dir, `n${id}.toml`),
        `cluster_name = "failover"
node_id = ${id}
roles = ["meta", "broker", "journal"]
advertised_host = "127.0.0.1"
bind_host = "127.0.0.1"
grpc_port = ${p.grpc}
http_port = ${p.http}
meta_addrs = { ${metaAddrs} }
data_dir = "${join(this.dir, `n${id}`, 'data')}"

[log]
format = "json"

[meta]
node_suspect_ms = 3000
node_dead_ms = 6000

[storage]
default_engine = "journal"
flush = "sync"

[journal]
tcp_port = ${p.journal}
ensemble_size = ${this.quorum.e}
write_quorum = ${this.quorum.w}
ack_quorum = ${this.quorum.a}
stripe_bytes = ${this.quorum.stripeBytes ?? 65536}

[mqtt]
tcp_port = ${p.mqtt}
ws_port = 0

[kafka]
tcp_port = ${p.kafka}

[rocketmq]
grpc_port = 0
`,
      );
    }
  }

  /** Writes the configs, starts the three nodes and waits until node 1 sees all three alive. */
  async startAll(timeoutMs = 15_000): Promise<ClusterStatusView> {
    await this.write();
    await Promise.all([1, 2, 3].map((id) => this.start(id)));
    return until('three nodes alive', async () => {
      const v = await this.status(1);
      return v.nodes.length === 3 && v.nodes.every((n) => n.state === 'alive') ? v : undefined;
    }, timeoutMs);
  }

  /** A kafkajs client of the given nodes' Kafka listeners, retrying through failovers. */
  kafka(ids: number[], extra: Partial<KafkaConfig> = {}): Kafka {
    return kafkaClient('', { brokers: ids.map((id) => `127.0.0.1:${this.ports.get(id)!.kafka}`), retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 }, ...extra });
  }

  async start(id: number): Promise<void> {
    const proc = new ServerProcess(['start', join(this.dir, `n${id}.toml`)]);
    this.procs.set(id, proc);
    await proc.waitReady(this.ports.get(id)!.http, 30_000);
  }

  async kill(id: number): Promise<void> {
    const p = this.procs.get(id)!;
    p.child.kill('SIGKILL');
    await p.waitExit();
    this.procs.delete(id);
  }

  async status(id: number): Promise<ClusterStatusView> {
    const res = await fetch(`http://127.0.0.1:${this.ports.get(id)!.http}/api/v1/cluster`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as ClusterStatusView;
  }

  /** The last lines each node logged, for failure messages. */
  logs(match: RegExp = /"level":(40|50|60)/): string {
    return [...this.procs].map(([id, p]) => `--- node ${id}\n${p.stdout.split('\n').filter((l) => match.test(l)).slice(-15).join('\n')}`).join('\n');
  }

  brokers(): string[] {
    return [...this.procs.keys()].map((id) => `127.0.0.1:${this.ports.get(id)!.kafka}`);
  }

  async stop(): Promise<void> {
    for (const p of this.procs.values()) await p.kill();
    this.procs.clear();
    removeDir(this.dir);
  }
}


