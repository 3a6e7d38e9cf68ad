/**
 * RocketMQ consumer progress on this node — the committed offsets from the
 * metadata, the live pop state and clients from the RocketMQ server — shared
 * by the lag gauge and the admin API's consumerProgress.
 */
import { ConsumerProgress, type GroupOffsetSource } from '../broker/rocketmq/progress.js';
import type { RocketmqServer } from '../broker/rocketmq/server.js';
import type { MetaAgent } from '../meta/agent.js';

export function groupOffsetSource(agent: MetaAgent): GroupOffsetSource {
  const groups = agent.replica.view.groups;
  return {
    groups: () => groups.list(),
    offsets: (group) =>
      groups.offsets(group).map((o) => ({ topic: o.topic, queue: o.shard, offset: o.offset, ...(o.metadata !== undefined ? { metadata: o.metadata } : {}), commitTimeMs: o.commitTimeMs })),
  };
}

export function consumerProgress(agent: MetaAgent, server: RocketmqServer): ConsumerProgress {
  return new ConsumerProgress(server.deps, server.consumption, server.deps.clients, groupOffsetSource(agent));
}
