import { HealthImplementation } from 'grpc-health-check';
import { HttpServer } from '../admin/http-server.js';
import { addAdminRoutes, addMetricsRoute, type NodeView } from '../admin/routes.js';
import type { Config } from '../common/config/index.js';
import type { Logger } from '../common/logger.js';
import type { NodeMetrics } from '../common/metrics.js';
import type { ListenerInfo } from '../common/node-info.js';
import type { Service } from '../common/service.js';
import type { RpcClientPool } from '../rpc/client-pool.js';
import { addNodeService } from '../rpc/node-service.js';
import { RpcServer } from '../rpc/server.js';

const RPC_STOP_GRACE_MS = 2_000;

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * What every node runs first, whatever its roles: the inner gRPC server
 * (node-to-node), the admin HTTP server and, if configured, a Prometheus port.
 */
export class CommonServer implements Service {
  readonly name = 'common';
  readonly rpc: RpcServer;
  /** The admin HTTP server, for the node to add route sets (meta, later protocols). */
  readonly admin: HttpServer;
  private readonly prometheus: HttpServer | undefined;
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING' });
  private bound: ListenerInfo[] = [];
  private running = false;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    metrics: NodeMetrics,
    private readonly rpcClients: RpcClientPool,
    node: NodeView,
  ) {
    this.rpc = new RpcServer(log, metrics);
    addNodeService(this.rpc, () => node.info());
    this.health.addToServer(this.rpc.grpc);

    this.admin = new HttpServer('admin', log, metrics);
    addAdminRoutes(this.admin, node);
    if (config.prometheus.enable) addMetricsRoute(this.admin, config.prometheus.path, metrics);

    if (config.prometheus.enable && config.prometheus.port !== undefined) {
      this.prometheus = new HttpServer('prometheus', log, metrics);
      addMetricsRoute(this.prometheus, config.prometheus.path, metrics);
    }
  }

  async start(): Promise<void> {
    const host = this.config.bind_host;
    // HTTP ports first, gRPC last: once gRPC listens, peers connect to it, and on one
    // machine such a connection's local (ephemeral) port can be one of this node's
    // ports not bound yet (the admin ports of the shipped configs lie in Linux's
    // ephemeral range); bound first, they cannot be taken that way.
    const httpPort = await this.admin.listen(host, this.config.http_port, 'http_port');
    let promPort: number | undefined;
    if (this.prometheus) promPort = await this.prometheus.listen(host, this.config.prometheus.port!, 'prometheus.port');
    const grpcPort = await this.rpc.listen(host, this.config.grpc_port);
    this.announce({ name: 'grpc', protocol: 'grpc', address: hostPort(host, grpcPort) });
    this.announce({ name: 'http', protocol: 'http', address: hostPort(host, httpPort) });
    if (promPort !== undefined) this.announce({ name: 'prometheus', protocol: 'http', address: hostPort(host, promPort) });
    this.running = true;
  }

  /** The node calls this when its overall readiness changes, for gRPC health probes. */
  setServing(serving: boolean): void {
    this.health.setStatus('', serving ? 'SERVING' : 'NOT_SERVING');
  }

  async stop(): Promise<void> {
    this.running = false;
    this.setServing(false);
    await Promise.all([this.admin.stop(), this.prometheus?.stop()]);
    this.rpcClients.close();
    await this.rpc.stop(RPC_STOP_GRACE_MS);
  }

  isReady(): boolean {
    return this.running;
  }

  listeners(): ListenerInfo[] {
    return this.bound;
  }

  private announce(listener: ListenerInfo): void {
    this.bound.push(listener);
    this.log.info({ listener: listener.name, protocol: listener.protocol, address: listener.address }, `listening: ${listener.name} (${listener.protocol}) on ${listener.address}`);
  }
}
