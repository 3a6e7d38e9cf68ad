/** `POST /api/v1/cluster/rebalance`: moves shard leadership of journal-backed topics onto the least-loaded live brokers. */
import type { ClusterAdmin, RebalanceResult } from '../admin/cluster-routes.js';
import type { MetaAgent } from '../meta/agent.js';
import { proposeResult } from './meta-propose.js';
import { planRebalance } from './shard-placement.js';

export function createClusterAdmin(agent: MetaAgent): ClusterAdmin {
  return {
    async rebalance(dryRun: boolean): Promise<RebalanceResult> {
      const view = agent.replica.view;
      const alive = view.nodes.withRole('broker', 'alive').map((n) => n.id);
      const shards = view.topics.list().flatMap((t) => view.shards.forTopic(t.name).map((s) => ({ topic: s.topic, shard: s.shard, leader: s.leader, epoch: s.epoch, movable: t.engine === 'journal' })));
      const plan = planRebalance(shards, alive);
      const moves: RebalanceResult['moves'] = [];
      for (const m of plan) {
        if (dryRun) {
          moves.push({ topic: m.topic, shard: m.shard, from: m.from, to: m.to, ok: true });
          continue;
        }
        // Compare-and-set on the shard's epoch: a placement change made meanwhile wins.
        const r = await proposeResult(agent, { kind: 'shard.assign', topic: m.topic, shard: m.shard, leader: m.to, replicas: [m.to], expectedEpoch: m.epoch });
        moves.push({ topic: m.topic, shard: m.shard, from: m.from, to: m.to, ok: r.ok, ...(r.ok ? {} : { error: `${r.code}: ${r.message}` }) });
      }
      const leaders: Record<string, number> = Object.fromEntries(alive.map((id) => [String(id), 0]));
      for (const t of agent.replica.view.topics.list()) {
        for (const s of agent.replica.view.shards.forTopic(t.name)) if (String(s.leader) in leaders) leaders[String(s.leader)]!++;
      }
      if (dryRun) for (const m of moves) (leaders[String(m.from)]!--, leaders[String(m.to)]!++);
      return { moves, leaders };
    },
  };
}
