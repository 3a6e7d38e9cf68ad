import type { NodeView } from '../admin/routes.js';
import { BrokerService } from '../broker/service.js';
import type { Config, Role } from '../common/config/index.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { NodeMetrics } from '../common/metrics.js';
import type { ClusterMemberView, ClusterView, NodeInfo } from '../common/node-info.js';
import { VERSION } from '../common/package-info.js';
import type { Service } from '../common/service.js';
import { JournalService } from '../journal/service.js';
import { MetaService } from '../meta/service.js';
import { RpcClientPool } from '../rpc/client-pool.js';
import { fetchNodeInfo } from '../rpc/node-service.js';
import { CommonServer } from './common-server.js';
import { NodeLifecycle } from './node.js';

/** The seed's start order: metadata first, then storage, then the brokers that use both. */
export const ROLE_START_ORDER: readonly Role[] = ['meta', 'journal', 'broker'];

const PEER_INFO_TIMEOUT_MS = 1_000;

export interface RobustNodeOptions {
  stopDeadlineMs?: number;
  onFatalStop: (exitCode: number) => void;
}

/** One robust-server process: the common server plus a service per role. */
export class RobustNode implements NodeView {
  readonly metrics: NodeMetrics;
  readonly lifecycle: NodeLifecycle;
  private readonly common: CommonServer;
  private readonly rpcClients = new RpcClientPool();
  private readonly startedAt = Date.now();

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    options: RobustNodeOptions,
  ) {
    this.metrics = new NodeMetrics({ nodeId: config.node_id, cluster: config.cluster_name, version: VERSION, roles: config.roles });
    this.common = new CommonServer(config, log, this.metrics, this.rpcClients, this);
    const services: Service[] = [this.common, ...ROLE_START_ORDER.filter((r) => config.roles.includes(r)).map((r) => this.roleService(r))];
    this.lifecycle = new NodeLifecycle(services, log, this.metrics, {
      stopDeadlineMs: options.stopDeadlineMs ?? 8_000,
      onFatalStop: options.onFatalStop,
    });
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    await this.lifecycle.start();
    if (this.lifecycle.currentPhase !== 'running') return;
    this.common.setServing(true);
    this.log.info({ node_id: this.config.node_id, roles: this.config.roles, ms: Math.round(performance.now() - t0) }, `node ${this.config.node_id} ready (roles: ${this.config.roles.join(', ')})`);
  }

  stop(): Promise<boolean> {
    return this.lifecycle.stop();
  }

  info(): NodeInfo {
    const c = this.config;
    return {
      node_id: c.node_id,
      cluster_name: c.cluster_name,
      roles: [...c.roles],
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      advertised_host: c.advertised_host,
      grpc_port: c.grpc_port,
      http_port: c.http_port,
      listeners: this.lifecycle.listeners(),
      services: this.lifecycle.serviceStates(),
      ready: this.lifecycle.isReady(),
      started_at_ms: this.startedAt,
      pid: process.pid,
    };
  }

  /**
   * The cluster as this node knows it: the meta nodes from its config (plus
   * itself), each asked over inner gRPC. The meta service's registry replaces
   * the config as the source once it exists.
   */
  async cluster(): Promise<ClusterView> {
    const self = this.info();
    const members = new Map<number, string>();
    for (const [id, addr] of Object.entries(this.config.meta_addrs)) members.set(Number(id), addr);
    if (!members.has(self.node_id)) members.set(self.node_id, `${self.advertised_host}:${self.grpc_port}`);

    const nodes = await Promise.all(
      [...members.entries()]
        .sort(([a], [b]) => a - b)
        .map(async ([id, address]): Promise<ClusterMemberView> => {
          if (id === self.node_id) {
            return { node_id: id, grpc_address: address, state: 'self', roles: self.roles, version: self.version, uptime_seconds: self.uptime_seconds, ready: self.ready };
          }
          try {
            const peer = await fetchNodeInfo(this.rpcClients, address, PEER_INFO_TIMEOUT_MS);
            return { node_id: id, grpc_address: address, state: 'up', roles: peer.roles, version: peer.version, uptime_seconds: peer.uptime_seconds, ready: peer.ready };
          } catch (err) {
            return { node_id: id, grpc_address: address, state: 'unreachable', roles: [], version: null, uptime_seconds: null, ready: null, error: errorMessage(err) };
          }
        }),
    );
    return { cluster_name: this.config.cluster_name, source: 'config', answered_by: self.node_id, nodes };
  }

  private roleService(role: Role): Service {
    const c = this.config;
    const log = this.log.child({ service: role });
    switch (role) {
      case 'meta':
        return new MetaService({ dataDir: c.data_dir, nodeId: c.node_id, metaAddrs: c.meta_addrs, log });
      case 'journal':
        return new JournalService({ dataDir: c.data_dir, log });
      case 'broker':
        return new BrokerService({ log });
    }
  }
}
