/**
 * Builds the Kafka server of a broker node and connects it to the meta
 * service (topics, partition leaders, brokers, committed offsets, users) and
 * the node's storage.
 */
import { createHash } from 'node:crypto';
import type { Registry } from 'prom-client';
import { scramCredential, verifyPassword } from '../broker/core/auth/credentials.js';
import { KafkaMetrics } from '../broker/kafka/metrics.js';
import type { KafkaBroker, KafkaBusPort, KafkaMetaPort, KafkaTopic } from '../broker/kafka/ports.js';
import { ErrorCode, KafkaProtocolError } from '../broker/kafka/protocol/errors.js';
import { KafkaServer, type KafkaListenerSpec } from '../broker/kafka/server.js';
import { tlsConfigured, type Config } from '../common/config/index.js';
import type { Logger } from '../common/logger.js';
import type { MetaAgent } from '../meta/agent.js';
import { shardId } from '../meta/state/records/shards.js';
import type { MetaCommand } from '../meta/state/commands.js';
import { committedWithLag } from './kafka-admin.js';
import { proposeResult } from './meta-propose.js';
import type { StorageService } from './storage-service.js';

/** Kafka listener names as they appear in the node registry (and in Metadata, per listener). */
export function kafkaListenerName(spec: { name: string }): string {
  return `kafka-${spec.name.toLowerCase()}`;
}

export function kafkaListeners(config: Config): KafkaListenerSpec[] {
  const k = config.kafka;
  const host = config.bind_host;
  const out: KafkaListenerSpec[] = [];
  if (k.tcp_port !== 0) out.push({ name: k.require_sasl ? 'SASL_PLAINTEXT' : 'PLAINTEXT', kind: 'tcp', host, port: k.tcp_port, requireSasl: k.require_sasl });
  if (k.sasl_port !== 0) out.push({ name: 'SASL_PLAINTEXT', kind: 'tcp', host, port: k.sasl_port, requireSasl: true });
  if (k.ssl_port !== 0 && tlsConfigured(config)) out.push({ name: 'SSL', kind: 'tls', host, port: k.ssl_port, requireSasl: false });
  return out;
}

const META_ERRORS: Record<string, number> = {
  already_exists: ErrorCode.TOPIC_ALREADY_EXISTS,
  not_found: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  invalid: ErrorCode.INVALID_REQUEST,
  conflict: ErrorCode.REASSIGNMENT_IN_PROGRESS,
};

async function propose(agent: MetaAgent, cmd: MetaCommand, tolerate: string[] = []): Promise<void> {
  let r;
  try {
    r = await proposeResult(agent, cmd);
  } catch (err) {
    // No meta leader reachable: clients retry.
    throw new KafkaProtocolError(ErrorCode.REQUEST_TIMED_OUT, `meta service unavailable: ${(err as Error).message}`);
  }
  if (!r.ok && !tolerate.includes(r.code)) throw new KafkaProtocolError(META_ERRORS[r.code] ?? ErrorCode.UNKNOWN_SERVER_ERROR, r.message);
}

/** Where a group's coordinator lives: this hash of the group id, modulo the live brokers (by id). */
export function hash32(s: string): number {
  return createHash('sha1').update(s).digest().readUInt32BE(0);
}

function retentionOf(config: Record<string, string>, key: string): number | undefined {
  const v = config[key];
  return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined;
}

export function kafkaMetaPort(config: Config, agent: MetaAgent, storage: StorageService): KafkaMetaPort {
  const view = agent.replica.view;
  const brokers = (listener = 'PLAINTEXT'): KafkaBroker[] => {
    const out: KafkaBroker[] = [];
    const wanted = kafkaListenerName({ name: listener });
    for (const n of view.nodes.withRole('broker', 'alive')) {
      // Every Kafka broker is listed (so the coordinator choice is the same on every listener), at its address on this listener if it has one.
      const l = n.listeners.find((x) => x.name === wanted) ?? n.listeners.find((x) => x.protocol === 'kafka');
      if (!l) continue;
      const colon = l.address.lastIndexOf(':');
      out.push({ nodeId: n.id, host: l.address.slice(0, colon), port: Number(l.address.slice(colon + 1)), rack: null });
    }
    return out;
  };
  const topic = (name: string): KafkaTopic | undefined => {
    const t = view.topics.get(name);
    if (!t) return undefined;
    return {
      name,
      partitions: view.shards.forTopic(name).map((s) => ({ partition: s.shard, leader: s.leader === 0 ? -1 : s.leader, replicas: s.replicas.length > 0 ? [...s.replicas] : [], leaderEpoch: s.epoch })),
      config: t.config,
      // Another protocol's state (MQTT's __mqtt.* logs); a Kafka client's own "__x" topic is an ordinary topic, as in Kafka.
      internal: name.startsWith('__') && t.protocol !== 'kafka',
    };
  };
  return {
    nodeId: config.node_id,
    clusterId: config.cluster_name,
    brokers,
    coordinatorFor: (groupId, listener) => {
      const all = brokers(listener);
      return all.length === 0 ? undefined : all[hash32(groupId) % all.length];
    },
    topic,
    topicNames: () => view.topics.names(),
    createTopic: async (name, partitions, topicConfig) => {
      const wanted = config.storage.default_engine;
      const engine = storage.adapter.available(wanted) ? wanted : 'file';
      const retentionMs = retentionOf(topicConfig, 'retention.ms');
      const retentionBytes = retentionOf(topicConfig, 'retention.bytes');
      await propose(agent, {
        kind: 'topic.create',
        name,
        shards: partitions,
        engine,
        ...(retentionMs !== undefined ? { retentionMs } : {}),
        ...(retentionBytes !== undefined ? { retentionBytes } : {}),
        config: topicConfig,
        protocol: 'kafka',
        nowMs: Date.now(),
      });
    },
    deleteTopic: (name) => propose(agent, { kind: 'topic.delete', name }),
    addPartitions: (name, total) => propose(agent, { kind: 'topic.addShards', name, shards: total }),
    alterTopicConfig: (name, set, unset) => propose(agent, { kind: 'topic.updateConfig', name, set, unset }),
    waitForLeaders: async (name, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const t = topic(name);
        const ready = t !== undefined && t.partitions.every((p) => p.leader > 0 && (p.leader !== config.node_id || storage.adapter.hasShard(shardId(name, p.partition))));
        if (ready || Date.now() >= deadline) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    committed: (group, t, partition) => {
      const c = view.groups.committed(group, t, partition);
      return c ? { offset: c.offset, metadata: c.metadata ?? null, commitTimeMs: c.commitTimeMs } : undefined;
    },
    committedAll: (group) => view.groups.offsets(group).map((o) => ({ topic: o.topic, partition: o.shard, offset: o.offset, metadata: o.metadata ?? null, commitTimeMs: o.commitTimeMs })),
    commitOffsets: (group, offsets) =>
      propose(agent, {
        kind: 'group.commitOffsets',
        group,
        offsets: offsets.map((o) => ({ topic: o.topic, shard: o.partition, offset: o.offset, ...(o.metadata !== null ? { metadata: o.metadata } : {}) })),
        nowMs: Date.now(),
      }),
    offsetGroups: () => view.groups.list(),
    deleteGroupOffsets: (group) => propose(agent, { kind: 'group.delete', group }, ['not_found']),
    scramKeys: (username) => {
      const u = view.users.get(username);
      return u ? scramCredential(u.passwordHash) : undefined;
    },
    verifyPassword: async (username, password) => {
      const u = view.users.get(username);
      return u ? verifyPassword(u.passwordHash, password) : false;
    },
  };
}

export function createKafkaServer(config: Config, log: Logger, registry: Registry, agent: MetaAgent, storage: StorageService, bus?: KafkaBusPort): KafkaServer {
  const k = config.kafka;
  const tls = tlsConfigured(config);
  const metrics = new KafkaMetrics(registry);
  const server = new KafkaServer({
    listeners: kafkaListeners(config),
    ...(tls ? { tls: { cert: config.tls.cert as string, key: config.tls.key as string, ...(config.tls.ca !== undefined ? { ca: config.tls.ca } : {}) } } : {}),
    meta: kafkaMetaPort(config, agent, storage),
    storage: () => storage.adapter,
    ...(bus ? { bus } : {}),
    settings: { autoCreateTopics: k.auto_create_topics, numPartitions: k.num_partitions, messageMaxBytes: k.message_max_bytes },
    maxRequestBytes: k.max_request_bytes,
    maxConnections: k.max_connections,
    group: { minSessionTimeoutMs: k.group_min_session_timeout_ms, maxSessionTimeoutMs: k.group_max_session_timeout_ms, initialRebalanceDelayMs: k.group_initial_rebalance_delay_ms, offsetsRetentionMs: k.offsets_retention_ms },
    metrics,
    log,
  });
  metrics.setLagSource(async () => {
    const out: Array<{ group: string; topic: string; partition: number; lag: number }> = [];
    for (const group of agent.replica.view.groups.list()) {
      for (const o of await committedWithLag(agent, storage, group)) if (o.lag !== null) out.push({ group, topic: o.topic, partition: o.partition, lag: o.lag });
    }
    return out;
  });
  return server;
}

/** The addresses Kafka clients are told for this node, once its listeners are bound. */
export function advertisedKafkaListeners(config: Config, server: KafkaServer): Array<{ name: string; protocol: string; address: string }> {
  const host = config.kafka.advertised_host !== '' ? config.kafka.advertised_host : config.advertised_host;
  return kafkaListeners(config).flatMap((spec) => {
    const port = server.port(spec.name);
    return port === undefined ? [] : [{ name: kafkaListenerName(spec), protocol: 'kafka', address: `${host}:${port}` }];
  });
}
