/**
 * Builds the RocketMQ server of a broker node and connects it to the meta
 * service (topics, queue leaders, brokers' addresses, committed group offsets)
 * and the node's storage.
 */
import type { Registry } from 'prom-client';
import { RocketmqMetrics } from '../broker/rocketmq/metrics.js';
import { ROCKETMQ_OFFSET_METADATA } from '../broker/rocketmq/progress.js';
import type { RocketmqBroker, RocketmqBusPort, RocketmqMetaPort, RocketmqSettings } from '../broker/rocketmq/ports.js';
import { RocketmqServer } from '../broker/rocketmq/server.js';
import type { Config } from '../common/config/index.js';
import type { Logger } from '../common/logger.js';
import type { ListenerInfo } from '../common/node-info.js';
import type { MetaAgent } from '../meta/agent.js';
import { shardId } from '../meta/state/records/shards.js';
import { ensureInternalShard } from './internal-shard.js';
import { proposeOrThrow } from './meta-propose.js';
import { consumerProgress } from './rocketmq-progress.js';
import type { StorageService } from './storage-service.js';

export const ROCKETMQ_LISTENER = 'rocketmq-grpc';

function advertisedHost(config: Config): string {
  return config.rocketmq.advertised_host !== '' ? config.rocketmq.advertised_host : config.advertised_host;
}

function rocketmqSettings(config: Config): RocketmqSettings {
  const r = config.rocketmq;
  return {
    autoCreateTopics: r.auto_create_topics,
    defaultQueues: r.default_queues,
    maxBodyBytes: r.max_body_bytes,
    longPollingTimeoutMs: r.long_polling_timeout_ms,
    receiveBatchSize: r.receive_batch_size,
    minInvisibleMs: r.min_invisible_ms,
    maxInvisibleMs: r.max_invisible_ms,
    maxInflightPerQueue: r.max_inflight_per_queue,
    consumeFrom: r.consume_from,
    offsetCommitIntervalMs: r.offset_commit_interval_ms,
    maxDeliveryAttempts: r.max_delivery_attempts,
    groupMaxDeliveryAttempts: r.group_max_delivery_attempts,
    transactionCheck: { firstCheckMs: r.transaction_check_delay_ms, intervalMs: r.transaction_check_interval_ms, maxChecks: r.transaction_check_max },
  };
}

export function rocketmqMetaPort(config: Config, agent: MetaAgent, storage: StorageService, ownPort: () => number): RocketmqMetaPort {
  const view = agent.replica.view;
  const nodeId = config.node_id;
  const brokerOf = (id: number): RocketmqBroker | undefined => {
    if (id === nodeId) return { nodeId, host: advertisedHost(config), port: ownPort() };
    const n = view.nodes.get(id);
    if (!n || n.state !== 'alive') return undefined;
    const l = n.listeners.find((x) => x.name === ROCKETMQ_LISTENER);
    if (!l) return undefined;
    const colon = l.address.lastIndexOf(':');
    return { nodeId: id, host: l.address.slice(0, colon), port: Number(l.address.slice(colon + 1)) };
  };
  const served = (topic: string): number[] =>
    view.shards
      .forTopic(topic)
      .filter((s) => s.leader === nodeId && storage.adapter.hasShard(shardId(topic, s.shard)))
      .map((s) => s.shard);
  return {
    nodeId,
    topic: (name) => {
      const t = view.topics.get(name);
      return t ? { name, id: t.id, queues: t.shards, config: t.config } : undefined;
    },
    createTopic: async (name, queues, topicConfig) => {
      const wanted = config.storage.default_engine;
      const engine = storage.adapter.available(wanted) ? wanted : 'file';
      await proposeOrThrow(agent, { kind: 'topic.create', name, shards: queues, engine, config: topicConfig, protocol: 'rocketmq', nowMs: Date.now() }, ['already_exists']);
    },
    servedQueues: served,
    waitForQueues: async (name, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const shards = view.shards.forTopic(name);
        const ready = shards.length > 0 && shards.every((s) => s.leader > 0 && (s.leader !== nodeId || storage.adapter.hasShard(shardId(name, s.shard))));
        if (ready || Date.now() >= deadline) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    routeBrokers: (topic) => {
      const leaders = [...new Set(view.shards.forTopic(topic).map((s) => s.leader))].filter((id) => id > 0).sort((a, b) => a - b);
      return leaders.map(brokerOf).filter((b): b is RocketmqBroker => b !== undefined);
    },
    ensureInternalShard: (name) => ensureInternalShard(config, agent, storage, name),
    committed: (group, topic, queue) => view.groups.committed(group, topic, queue)?.offset,
    commitOffsets: (group, offsets) =>
      proposeOrThrow(agent, { kind: 'group.commitOffsets', group, offsets: offsets.map((o) => ({ topic: o.topic, shard: o.queue, offset: o.offset, metadata: ROCKETMQ_OFFSET_METADATA })), nowMs: Date.now() }),
  };
}

export function createRocketmqServer(config: Config, log: Logger, registry: Registry, agent: MetaAgent, storage: StorageService, bus?: RocketmqBusPort): RocketmqServer {
  let server: RocketmqServer | undefined;
  const ownPort = (): number => server?.port() ?? config.rocketmq.grpc_port;
  server = new RocketmqServer({
    host: config.bind_host,
    port: config.rocketmq.grpc_port,
    advertisedHost: advertisedHost(config),
    meta: rocketmqMetaPort(config, agent, storage, ownPort),
    storage: () => storage.adapter,
    ...(bus ? { bus } : {}),
    settings: rocketmqSettings(config),
    metrics: new RocketmqMetrics(registry),
    log,
  });
  const progress = consumerProgress(agent, server);
  server.deps.metrics.setLagSource(() => progress.lag());
  return server;
}

/** The address RocketMQ clients are told for this node, once its listener is bound. */
export function advertisedRocketmqListeners(config: Config, server: RocketmqServer | undefined): ListenerInfo[] {
  const port = server?.port();
  return port === undefined ? [] : [{ name: ROCKETMQ_LISTENER, protocol: 'rocketmq', address: `${advertisedHost(config)}:${port}` }];
}
