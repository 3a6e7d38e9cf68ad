/**
 * Cluster-wide operations that are not about the meta Raft group itself:
 * `POST /api/v1/cluster/rebalance` evens out shard leadership over the live brokers.
 */
import type { HttpServer } from './http-server.js';

export interface RebalanceResult {
  moves: Array<{ topic: string; shard: number; from: number; to: number; ok: boolean; error?: string }>;
  /** Shards led per live broker after the moves. */
  leaders: Record<string, number>;
}

export interface ClusterAdmin {
  rebalance(dryRun: boolean): Promise<RebalanceResult>;
}

export function addClusterRoutes(http: HttpServer, admin: ClusterAdmin): void {
  http.route('POST', '/api/v1/cluster/rebalance', async ({ query }) => ({ body: await admin.rebalance(query.get('dry_run') === 'true') }));
}
