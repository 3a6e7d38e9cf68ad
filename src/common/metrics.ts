import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The node's metrics registry. One per node (not prom-client's global) so that
 * several nodes in one test process never share counters.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly adminRequests: Counter<'method' | 'route' | 'status'>;
  readonly rpcRequests: Counter<'method' | 'code'>;
  private readinessSource: () => ReadonlyArray<{ name: string; ready: boolean }> = () => [];

  constructor(info: { nodeId: number; cluster: string; version: string; roles: readonly string[] }) {
    collectDefaultMetrics({ register: this.registry });
    const nodeInfo = new Gauge({
      name: 'robust_node_info',
      help: 'Static facts about this node; the value is always 1',
      labelNames: ['node_id', 'cluster', 'version', 'roles'] as const,
      registers: [this.registry],
    });
    nodeInfo.set({ node_id: String(info.nodeId), cluster: info.cluster, version: info.version, roles: info.roles.join(',') }, 1);
    const startedAt = Date.now();
    new Gauge({
      name: 'robust_node_uptime_seconds',
      help: 'Seconds since this node started',
      registers: [this.registry],
      collect() {
        this.set((Date.now() - startedAt) / 1000);
      },
    });
    const readiness = () => this.readinessSource();
    new Gauge({
      name: 'robust_service_ready',
      help: 'Whether a service of this node is ready (1) or not (0)',
      labelNames: ['service'] as const,
      registers: [this.registry],
      collect() {
        for (const s of readiness()) this.set({ service: s.name }, s.ready ? 1 : 0);
      },
    });
    this.adminRequests = new Counter({
      name: 'robust_admin_http_requests_total',
      help: 'Admin HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [this.registry],
    });
    this.rpcRequests = new Counter({
      name: 'robust_inner_rpc_requests_total',
      help: 'Inner gRPC requests served, by method and status code',
      labelNames: ['method', 'code'] as const,
      registers: [this.registry],
    });
  }

  /** Where robust_service_ready reads the services' readiness from at each scrape. */
  reportReadinessFrom(source: () => ReadonlyArray<{ name: string; ready: boolean }>): void {
    this.readinessSource = source;
  }
}
