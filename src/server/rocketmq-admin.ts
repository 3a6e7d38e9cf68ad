/**
 * The admin API's view of RocketMQ on this node: topics and their routes from
 * the metadata (any node answers those), consumer progress and message
 * lookups from this node's RocketMQ broker.
 */
import { HttpError } from '../admin/http-server.js';
import { asHttpError } from '../admin/meta-routes.js';
import type {
  LookupLimits,
  RocketmqAdmin,
  RocketmqGroupView,
  RocketmqLookupView,
  RocketmqMessageView,
  RocketmqRouteBrokerView,
  RocketmqTopicRouteView,
  RocketmqTopicView,
  RocketmqUpdateTopicView,
} from '../admin/rocketmq-routes.js';
import { findById, findByKey, type FoundMessage, type LookupResult } from '../broker/rocketmq/lookup.js';
import { acceptedMessageTypes, checkMessageTypeConfig, MESSAGE_TYPE_CONFIG_KEY, topicMessageType } from '../broker/rocketmq/message-type.js';
import { timestampMs } from '../broker/rocketmq/proto.js';
import type { RocketmqServer } from '../broker/rocketmq/server.js';
import type { Config } from '../common/config/index.js';
import type { MetaAgent } from '../meta/agent.js';
import type { MetaCommand } from '../meta/state/commands.js';
import { MAX_SHARDS, isValidTopicName, type TopicRecord } from '../meta/state/records/topics.js';
import { proposeResult } from './meta-propose.js';
import { consumerProgress } from './rocketmq-progress.js';
import { ROCKETMQ_LISTENER } from './rocketmq-wiring.js';

export interface RocketmqAdminDeps {
  config: Config;
  agent: MetaAgent;
  /** The node's RocketMQ server (undefined without the broker role or with `[rocketmq] grpc_port = 0`). */
  rocketmq: () => RocketmqServer | undefined;
}

function topicView(t: TopicRecord): RocketmqTopicView {
  return { topic: t.name, queues: t.shards, message_type: topicMessageType(t.config), engine: t.engine, protocol: t.protocol ?? null, created_at_ms: t.createdAtMs };
}

/** Topics the broker keeps for itself (`__` prefix) are not RocketMQ topics. */
const isInternal = (name: string): boolean => name.startsWith('__');

function checkTopicName(name: string): void {
  if (!isValidTopicName(name)) throw new HttpError(400, 'invalid', `topic name "${name.slice(0, 300)}" is not valid: 1..249 characters of [a-zA-Z0-9._-]`);
  if (isInternal(name)) throw new HttpError(400, 'invalid', `topic "${name}" is reserved for the broker's internal use`);
}

function utf8OrBase64(body: Buffer): { body: string; body_encoding: 'utf8' | 'base64' } {
  const text = body.toString('utf8');
  return Buffer.from(text, 'utf8').equals(body) ? { body: text, body_encoding: 'utf8' } : { body: body.toString('base64'), body_encoding: 'base64' };
}

function messageView(topic: string, f: FoundMessage): RocketmqMessageView {
  const p = f.message.systemProperties ?? {};
  const body = f.message.body ?? Buffer.alloc(0);
  return {
    topic,
    queue: f.queue,
    offset: f.offset,
    message_id: p.messageId ?? '',
    type: p.messageType ?? 'NORMAL',
    tag: p.tag ?? null,
    keys: p.keys ?? [],
    message_group: p.messageGroup ?? null,
    born_ms: timestampMs(p.bornTimestamp) ?? null,
    born_host: p.bornHost !== undefined && p.bornHost !== '' ? p.bornHost : null,
    store_ms: timestampMs(p.storeTimestamp) ?? null,
    deliver_at_ms: timestampMs(p.deliveryTimestamp) ?? null,
    properties: { ...(f.message.userProperties ?? {}) },
    body_size: body.length,
    ...utf8OrBase64(body),
  };
}

function lookupView(topic: string, limits: LookupLimits, r: LookupResult): RocketmqLookupView {
  return {
    topic,
    messages: r.found.map((f) => messageView(topic, f)),
    scanned: r.scanned,
    scan_per_queue: limits.scanPerQueue,
    queues_scanned: r.queuesScanned,
    queues_elsewhere: r.queuesElsewhere,
    partial: r.partial,
  };
}

export function createRocketmqAdmin(deps: RocketmqAdminDeps): RocketmqAdmin {
  const { agent, config } = deps;
  const view = agent.replica.view;

  const broker = (): RocketmqServer => {
    const server = deps.rocketmq();
    if (!server) throw new HttpError(503, 'broker_unavailable', 'this node runs no RocketMQ broker (broker role with [rocketmq] grpc_port)');
    return server;
  };

  /** Proposes a topic command and returns the topic as the command left it. */
  const proposeTopic = async (cmd: MetaCommand): Promise<TopicRecord> => {
    const r = await proposeResult(agent, cmd);
    if (!r.ok) throw asHttpError(r.code, r.message);
    return r.value as TopicRecord;
  };

  const endpointOf = (nodeId: number): string | null => {
    const node = view.nodes.get(nodeId);
    if (!node || node.state !== 'alive') return null;
    return node.listeners.find((l) => l.name === ROCKETMQ_LISTENER)?.address ?? null;
  };

  const updateExisting = async (t: TopicRecord, queues: number | undefined, type: string | undefined): Promise<RocketmqUpdateTopicView> => {
    const changes: string[] = [];
    let current = t;
    if (queues !== undefined && queues !== current.shards) {
      if (queues < current.shards) {
        throw new HttpError(400, 'invalid', `topic "${t.name}" has ${current.shards} queues; queues cannot be removed (messages of a message group would change queue and order)`);
      }
      current = await proposeTopic({ kind: 'topic.addShards', name: t.name, shards: queues });
      changes.push(`queues ${t.shards} -> ${queues}`);
    }
    const before = topicMessageType(current.config);
    if (type !== undefined && type !== before) {
      current = await proposeTopic({ kind: 'topic.updateConfig', name: t.name, set: { [MESSAGE_TYPE_CONFIG_KEY]: type }, unset: [] });
      changes.push(`message type ${before} -> ${type}`);
    }
    return { topic: topicView(current), created: false, changes };
  };

  return {
    brokerUnavailable: () => (deps.rocketmq() ? undefined : 'this node runs no RocketMQ broker (broker role with [rocketmq] grpc_port)'),

    topics: () => view.topics.list().filter((t) => !isInternal(t.name)).map(topicView),

    updateTopic: async (name, spec) => {
      checkTopicName(name);
      let type: string | undefined;
      if (spec.messageType !== undefined) {
        const bad = checkMessageTypeConfig(spec.messageType);
        if (bad) throw new HttpError(400, 'invalid', bad);
        type = spec.messageType.toUpperCase();
      }
      if (spec.queues !== undefined && spec.queues > MAX_SHARDS) throw new HttpError(400, 'invalid', `"queues" must be at most ${MAX_SHARDS}, got ${spec.queues}`);
      const existing = view.topics.get(name);
      if (existing) return updateExisting(existing, spec.queues, type);
      const queues = spec.queues ?? config.rocketmq.default_queues;
      const r = await proposeResult(agent, {
        kind: 'topic.create',
        name,
        shards: queues,
        engine: config.storage.default_engine,
        config: type !== undefined ? { [MESSAGE_TYPE_CONFIG_KEY]: type } : {},
        protocol: 'rocketmq',
        nowMs: Date.now(),
      });
      if (r.ok) {
        const t = r.value as TopicRecord;
        return { topic: topicView(t), created: true, changes: [`created with ${t.shards} queue${t.shards === 1 ? '' : 's'}, message type ${topicMessageType(t.config)}`] };
      }
      if (r.code !== 'already_exists') throw asHttpError(r.code, r.message);
      // Created by someone else a moment ago: update it like any existing topic.
      await agent.client.consistent();
      const raced = view.topics.get(name);
      if (!raced) throw new HttpError(409, 'conflict', `topic "${name}" was created and deleted concurrently; try again`);
      return updateExisting(raced, spec.queues, type);
    },

    deleteTopic: async (name) => {
      if (isInternal(name)) throw new HttpError(400, 'invalid', `topic "${name}" is reserved for the broker's internal use`);
      await proposeTopic({ kind: 'topic.delete', name });
    },

    route: (name) => {
      const t = view.topics.get(name);
      if (!t || isInternal(name)) return undefined;
      const placements = new Map(view.shards.forTopic(name).map((s) => [s.shard, s]));
      const queues = Array.from({ length: t.shards }, (_, queue) => {
        const s = placements.get(queue);
        const leader = s && s.leader > 0 ? s.leader : null;
        return { queue, leader, replicas: [...(s?.replicas ?? [])], endpoint: leader === null ? null : endpointOf(leader) };
      });
      const brokers = new Map<number, RocketmqRouteBrokerView>();
      for (const q of queues) {
        if (q.leader === null || q.endpoint === null) continue;
        let b = brokers.get(q.leader);
        if (!b) brokers.set(q.leader, (b = { broker: `broker-${q.leader}`, node_id: q.leader, endpoint: q.endpoint, queues: [] }));
        b.queues.push(q.queue);
      }
      const type = topicMessageType(t.config);
      const route: RocketmqTopicRouteView = { topic: name, message_type: type, accept_message_types: acceptedMessageTypes(type), queues, brokers: [...brokers.values()].sort((a, b) => a.node_id - b.node_id) };
      return route;
    },

    groups: async () => {
      const progress = consumerProgress(agent, broker());
      const out = [];
      for (const group of progress.groups()) {
        const g = await progress.group(group);
        out.push({ group, clients: g.clients.length, topics: [...new Set(g.queues.map((q) => q.topic))], total_lag: g.totalLag, inflight: g.inflight });
      }
      return out;
    },

    group: async (name) => {
      const progress = consumerProgress(agent, broker());
      if (!progress.has(name)) return undefined;
      const g = await progress.group(name);
      const result: RocketmqGroupView = {
        group: g.group,
        clients: g.clients.map((c) => ({ client_id: c.clientId, type: c.type, topics: c.topics, last_seen_ms: c.lastSeenMs })),
        queues: g.queues.map((q) => ({
          topic: q.topic,
          queue: q.queue,
          broker_offset: q.brokerOffset,
          consumer_offset: q.consumerOffset,
          committed_offset: q.committedOffset,
          lag: q.lag,
          inflight: q.inflight,
          last_commit_ms: q.lastCommitMs,
        })),
        total_lag: g.totalLag,
        inflight: g.inflight,
      };
      return result;
    },

    messagesByKey: async (topic, key, limits) => {
      const server = broker();
      const t = isInternal(topic) ? undefined : server.deps.meta.topic(topic);
      if (!t) return undefined;
      return lookupView(topic, limits, await findByKey(server.deps, t, key, limits));
    },

    messageById: async (topic, id, limits) => {
      const server = broker();
      const t = isInternal(topic) ? undefined : server.deps.meta.topic(topic);
      if (!t) return undefined;
      return lookupView(topic, limits, await findById(server.deps, t, id, limits));
    },
  };
}
