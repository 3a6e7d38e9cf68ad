/**
 * The admin API's view of MQTT on this node: the live broker (clients, sessions,
 * subscriptions, retained messages, publishing by hand) and, through the meta
 * link, users and run-time ACL rules.
 */
import type { MetaResult } from '../admin/meta-routes.js';
import type { MqttAclRuleView, MqttAdmin, MqttClientView, MqttPublishInput, MqttRetainedView, MqttRouteNodeView, MqttSessionView, MqttSubscriptionView } from '../admin/mqtt-routes.js';
import { createCredential } from '../broker/core/auth/credentials.js';
import { topicNameError } from '../broker/core/topic-names.js';
import type { MqttBroker } from '../broker/mqtt/broker.js';
import { isExpired, makeMessage, type Message } from '../broker/mqtt/message.js';
import type { MqttServer } from '../broker/mqtt/server.js';
import type { Session, Subscription } from '../broker/mqtt/session.js';
import type { Config } from '../common/config/index.js';
import type { MetaAgent } from '../meta/agent.js';
import type { MetaCommand } from '../meta/state/commands.js';
import { proposeResult } from './meta-propose.js';

const NEVER_EXPIRES = 0xffff_ffff;
const ADMINISTRATIVE_ACTION = 0x98;
const DELAYED = /^\$delayed\/(\d{1,10})\/(.+)$/s;

export interface MqttAdminDeps {
  config: Config;
  agent: MetaAgent;
  /** The node's MQTT server (undefined without the broker role). */
  mqtt: () => MqttServer | undefined;
  /** Whether the broker service is running (started and not stopping). */
  brokerRunning: () => boolean;
}

const byClientId = (a: { client_id: string }, b: { client_id: string }) => (a.client_id < b.client_id ? -1 : a.client_id > b.client_id ? 1 : 0);

function subscriptionView(clientId: string, s: Subscription): MqttSubscriptionView {
  return {
    client_id: clientId,
    filter: s.filter,
    qos: s.qos,
    no_local: s.noLocal,
    retain_as_published: s.retainAsPublished,
    retain_handling: s.retainHandling,
    subscription_id: s.subscriptionId ?? null,
  };
}

function sessionView(s: Session): MqttSessionView {
  const connected = s.link !== undefined;
  return {
    client_id: s.clientId,
    persistent: s.persistent,
    expiry_interval_sec: s.expiryIntervalSec,
    connected,
    disconnected_at_ms: connected || s.disconnectedAt === 0 ? null : s.disconnectedAt,
    inflight: s.inflight.size,
    queued: s.queued,
    subscriptions: s.subscriptions.size,
  };
}

function retainedView(m: Message): MqttRetainedView {
  return { topic: m.topic, qos: m.qos, payload_bytes: m.payload.length, received_at_ms: m.receivedAt, expires_at_ms: m.expiresAt ?? null };
}

export function createMqttAdmin(deps: MqttAdminDeps): MqttAdmin {
  const { config, agent } = deps;
  const view = agent.replica.view;
  const propose = (cmd: MetaCommand): Promise<MetaResult> => proposeResult(agent, cmd);
  /** Only called by routes after brokerUnavailable() said the broker is there. */
  const broker = (): MqttBroker => {
    const server = deps.mqtt();
    if (!server) throw new Error('this node has no MQTT broker');
    return server.broker;
  };
  const liveRetained = (b: MqttBroker, topic: string): Message | undefined => {
    const m = b.retained.get(topic);
    return m && !isExpired(m, b.now()) ? m : undefined;
  };

  return {
    brokerUnavailable() {
      if (!deps.mqtt()) return `node ${config.node_id} has no broker role (roles: ${config.roles.join(', ')})`;
      if (!deps.brokerRunning()) return `the broker of node ${config.node_id} is not running (starting or stopping)`;
      return undefined;
    },

    clients(): MqttClientView[] {
      return [...broker().connections.values()]
        .filter((c) => c.isConnected)
        .map((c) => c.describe())
        .sort(byClientId);
    },

    client(clientId) {
      const c = broker().connections.get(clientId);
      return c?.isConnected ? c.describe() : undefined;
    },

    kickClient(clientId) {
      const c = broker().connections.get(clientId);
      if (!c?.isConnected) return false;
      c.kick(ADMINISTRATIVE_ACTION);
      return true;
    },

    sessions() {
      return [...broker().sessions.values()].map(sessionView).sort(byClientId);
    },

    session(clientId) {
      const s = broker().sessions.get(clientId);
      if (!s) return undefined;
      const { subscriptions: _count, ...rest } = sessionView(s);
      const expiresAt = s.link !== undefined || s.expiryIntervalSec === NEVER_EXPIRES || s.disconnectedAt === 0 ? null : s.disconnectedAt + s.expiryIntervalSec * 1000;
      return {
        ...rest,
        expires_at_ms: expiresAt,
        subscriptions: [...s.subscriptions.values()]
          .map((sub) => {
            const { client_id: _id, ...v } = subscriptionView(clientId, sub);
            return v;
          })
          .sort((a, b) => (a.filter < b.filter ? -1 : a.filter > b.filter ? 1 : 0)),
      };
    },

    deleteSession(clientId) {
      const b = broker();
      const s = b.sessions.get(clientId);
      if (!s) return false;
      b.endSession(s, 'deleted', true);
      return true;
    },

    subscriptions(clientId) {
      const sessions = [...broker().sessions.values()].filter((s) => clientId === undefined || s.clientId === clientId);
      return sessions.flatMap((s) => [...s.subscriptions.values()].map((sub) => subscriptionView(s.clientId, sub))).sort((a, b) => byClientId(a, b) || (a.filter < b.filter ? -1 : a.filter > b.filter ? 1 : 0));
    },

    retained() {
      const b = broker();
      const now = b.now();
      return [...b.retained.values()]
        .filter((m) => !isExpired(m, now))
        .map(retainedView)
        .sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0));
    },

    retainedMessage(topic) {
      const m = liveRetained(broker(), topic);
      if (!m) return undefined;
      return {
        ...retainedView(m),
        payload: m.payload.toString('utf8'),
        payload_base64: m.payload.toString('base64'),
        publisher: m.publisher,
        content_type: m.properties?.contentType ?? null,
      };
    },

    async clearRetained(topic) {
      const b = broker();
      const existed = liveRetained(b, topic) !== undefined;
      // Removed directly rather than by publishing an empty retained message, so subscribers get nothing.
      if (!b.retained.delete(topic)) return false;
      b.stats.retained = b.retained.size;
      b.retainedClearedHere(topic);
      await b.store.clearRetained(topic);
      return existed;
    },

    checkPublish(msg: MqttPublishInput) {
      const s = broker().settings;
      const bad = topicNameError(msg.topic, { maxLevels: s.maxTopicLevels });
      if (bad !== undefined) return `invalid topic "${msg.topic}": ${bad}`;
      if (msg.topic === '$SYS' || msg.topic.startsWith('$SYS/')) return '$SYS topics are reserved for the broker';
      if (msg.qos > s.maxQos) return `qos ${msg.qos} is above the broker's maximum (${s.maxQos})`;
      if (msg.retain && !s.retainAvailable) return 'retained messages are disabled ([mqtt] retain_available = false)';
      if (msg.payload.length > s.maxPacketSize) return `payload of ${msg.payload.length} bytes is larger than [mqtt] max_packet_size (${s.maxPacketSize})`;
      if (s.delayedPublish && msg.topic.startsWith('$delayed/')) {
        const m = DELAYED.exec(msg.topic);
        if (!m || m[2]!.includes('+') || m[2]!.includes('#')) return `a delayed publish topic is "$delayed/<seconds>/<topic>", got "${msg.topic}"`;
      }
      return undefined;
    },

    async publish(input) {
      const b = broker();
      const msg = makeMessage({ topic: input.topic, payload: input.payload, qos: input.qos, retain: input.retain, publisher: '', now: b.now() });
      if (b.settings.delayedPublish && input.topic.startsWith('$delayed/')) {
        const stored = b.publishDelayed(msg);
        if (!stored) throw new Error(`not a valid delayed topic: ${input.topic}`);
        await stored;
        return { matched: 0 };
      }
      const r = b.publish(msg);
      await r.durable;
      return { matched: r.matched };
    },

    routes() {
      const server = deps.mqtt()!;
      const self: MqttRouteNodeView = {
        node_id: config.node_id,
        local: true,
        connected: true,
        routes: server.broker.routes.entries().map(([filter, subscriptions]) => ({ filter, subscriptions })),
      };
      const peers: MqttRouteNodeView[] = (server.cluster?.peerStates() ?? []).map((p) => ({
        node_id: p.node_id,
        local: false,
        connected: p.connected,
        routes: p.routes.map((filter) => ({ filter, subscriptions: null })),
      }));
      return { node_id: config.node_id, nodes: [self, ...peers].sort((a, b) => a.node_id - b.node_id) };
    },

    consistent: () => agent.client.consistent(),

    users() {
      return view.users.list().map((u) => ({ username: u.username, superuser: u.superuser }));
    },

    async createUser(username, password, superuser) {
      await agent.client.consistent();
      if (view.users.get(username)) return { ok: false, code: 'already_exists', message: `user '${username}' already exists` };
      const passwordHash = await createCredential(password);
      return propose({ kind: 'user.create', username, passwordHash, superuser });
    },

    deleteUser: (username) => propose({ kind: 'user.delete', username }),

    aclRules(): MqttAclRuleView[] {
      const fromConfig: MqttAclRuleView[] = config.mqtt.acl.map((r) => ({
        source: 'config',
        permission: r.permission,
        action: r.action,
        topic: r.topic,
        ...(r.user !== undefined ? { user: r.user } : {}),
        ...(r.client_id !== undefined ? { client_id: r.client_id } : {}),
      }));
      const fromMeta: MqttAclRuleView[] = view.mqttAcl.list().map((r) => ({
        id: r.id,
        source: 'meta',
        permission: r.permission,
        action: r.action,
        topic: r.topic,
        ...(r.user !== undefined ? { user: r.user } : {}),
        ...(r.clientId !== undefined ? { client_id: r.clientId } : {}),
      }));
      return [...fromConfig, ...fromMeta];
    },

    aclDefault: () => config.mqtt.acl_default,

    addAclRule: (rule) => propose({ kind: 'mqtt.acl.add', ...rule }),

    removeAclRule: (id) => propose({ kind: 'mqtt.acl.remove', id }),
  };
}
