import type { NodeMetrics } from '../common/metrics.js';
import type { NodeInfo } from '../common/node-info.js';
import type { HttpServer } from './http-server.js';

/** What the admin API needs from the node; the node assembly provides it. */
export interface NodeView {
  info(): NodeInfo;
  /** The effective configuration, secrets redacted. */
  effectiveConfig(): Record<string, unknown>;
}

export function addMetricsRoute(http: HttpServer, path: string, metrics: NodeMetrics): void {
  http.route('GET', path, async () => ({
    body: await metrics.registry.metrics(),
    contentType: metrics.registry.contentType,
  }));
}

export function addAdminRoutes(http: HttpServer, node: NodeView): void {
  http.route('GET', '/health/live', () => ({ body: { status: 'live' } }));

  http.route('GET', '/health/ready', () => {
    const info = node.info();
    return {
      status: info.ready ? 200 : 503,
      body: { status: info.ready ? 'ready' : 'not_ready', services: info.services },
    };
  });

  http.route('GET', '/api/v1/node', () => ({ body: node.info() }));
  http.route('GET', '/api/v1/config', () => ({ body: node.effectiveConfig() }));
}
