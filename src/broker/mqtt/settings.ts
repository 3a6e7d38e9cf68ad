/**
 * The MQTT broker's settings, resolved from the node config once at start
 * (`[mqtt]`, `[auth]`, `[tls]`), so the protocol code reads plain fields.
 */
import type { Config } from '../../common/config/index.js';

export type SharedStrategyName = 'round_robin' | 'random' | 'sticky' | 'hash_clientid';

export interface MqttAclRuleConfig {
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
  user?: string;
  clientId?: string;
}

export interface MqttSettings {
  nodeId: number;
  maxConnections: number;
  /** Largest packet accepted from a client (advertised as Maximum Packet Size in MQTT 5). */
  maxPacketSize: number;
  /** Cap on QoS 1/2 messages in flight to one client. */
  maxInflight: number;
  maxQueuedMessages: number;
  /** Receive Maximum advertised to MQTT 5 clients. */
  receiveMaximum: number;
  maxTopicLevels: number;
  /** Publishes per second per client; 0 = unlimited. */
  maxMessageRate: number;
  topicAliasMaximum: number;
  serverKeepAlive: number;
  maxSessionExpirySec: number;
  maxQos: 0 | 1 | 2;
  retainAvailable: boolean;
  wildcardSubscriptions: boolean;
  sharedSubscriptions: boolean;
  sharedStrategy: SharedStrategyName;
  queueQos0: boolean;
  delayedPublish: boolean;
  sysIntervalMs: number;
  redirectTo: string;
  redirectPermanent: boolean;
  aclDefault: 'allow' | 'deny';
  acl: MqttAclRuleConfig[];
  allowAnonymous: boolean;
  jwtSecret: string | undefined;
  jwtPublicKeyFile: string | undefined;
  /** Bytes buffered for one client beyond which QoS 0 messages to it are dropped. */
  slowClientBytes: number;
}

export function mqttSettings(config: Config): MqttSettings {
  const m = config.mqtt;
  return {
    nodeId: config.node_id,
    maxConnections: m.max_connections,
    maxPacketSize: m.max_packet_size,
    maxInflight: m.max_inflight,
    // 0 = no bound, as in mosquitto (an explicit choice: the default keeps memory bounded).
    maxQueuedMessages: m.max_queued_messages === 0 ? Infinity : m.max_queued_messages,
    receiveMaximum: m.receive_maximum,
    maxTopicLevels: m.max_topic_levels,
    maxMessageRate: m.max_message_rate,
    topicAliasMaximum: m.topic_alias_maximum,
    serverKeepAlive: m.server_keep_alive,
    maxSessionExpirySec: m.max_session_expiry_sec,
    maxQos: m.max_qos as 0 | 1 | 2,
    retainAvailable: m.retain_available,
    wildcardSubscriptions: m.wildcard_subscriptions,
    sharedSubscriptions: m.shared_subscriptions,
    sharedStrategy: m.shared_strategy,
    queueQos0: m.queue_qos0,
    delayedPublish: m.delayed_publish,
    sysIntervalMs: m.sys_interval_ms,
    redirectTo: m.redirect_to,
    redirectPermanent: m.redirect_permanent,
    aclDefault: m.acl_default,
    acl: m.acl.map((r) => ({
      permission: r.permission,
      action: r.action,
      topic: r.topic,
      ...(r.user !== undefined ? { user: r.user } : {}),
      ...(r.client_id !== undefined ? { clientId: r.client_id } : {}),
    })),
    allowAnonymous: config.auth.allow_anonymous,
    jwtSecret: config.auth.jwt_secret,
    jwtPublicKeyFile: config.auth.jwt_public_key_file,
    slowClientBytes: Math.max(4 * 1024 * 1024, 4 * m.max_packet_size),
  };
}

/** Settings for tests: the config defaults with overrides. */
export function defaultMqttSettings(overrides: Partial<MqttSettings> = {}): MqttSettings {
  return {
    nodeId: 1,
    maxConnections: 1_000_000,
    maxPacketSize: 1024 * 1024,
    maxInflight: 32,
    maxQueuedMessages: 1000,
    receiveMaximum: 65535,
    maxTopicLevels: 128,
    maxMessageRate: 0,
    topicAliasMaximum: 65535,
    serverKeepAlive: 0,
    maxSessionExpirySec: 0xffff_ffff,
    maxQos: 2,
    retainAvailable: true,
    wildcardSubscriptions: true,
    sharedSubscriptions: true,
    sharedStrategy: 'round_robin',
    queueQos0: false,
    delayedPublish: true,
    sysIntervalMs: 0,
    redirectTo: '',
    redirectPermanent: false,
    aclDefault: 'allow',
    acl: [],
    allowAnonymous: true,
    jwtSecret: undefined,
    jwtPublicKeyFile: undefined,
    slowClientBytes: 4 * 1024 * 1024,
    ...overrides,
  };
}
