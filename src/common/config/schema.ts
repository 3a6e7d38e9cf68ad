import { z } from 'zod';

/**
 * The node's configuration, one schema for file, environment and defaults.
 * Every key is optional; `config/server.toml.template` documents each one
 * (a test keeps the two in step).
 */

export const ROLES = ['meta', 'broker', 'journal'] as const;
export type Role = (typeof ROLES)[number];

export const STORAGE_ENGINES = ['memory', 'file', 'journal', 's3'] as const;
export type StorageEngineName = (typeof STORAGE_ENGINES)[number];

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A listener port that must be bound. */
const requiredPort = (fallback: number) => z.int().min(1).max(65535).default(fallback);
/** A listener port where 0 turns the listener off. */
const optionalPort = (fallback: number) => z.int().min(0).max(65535).default(fallback);

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, { message: 'expected "host:port"' });

const logSection = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
  /** `auto` is pretty on a terminal and JSON lines otherwise. */
  format: z.enum(['auto', 'json', 'pretty']).default('auto'),
});

const prometheusSection = z.strictObject({
  enable: z.boolean().default(true),
  /** Metrics are always on the admin HTTP port; set this to serve them on a port of their own too. */
  port: z.int().min(1).max(65535).optional(),
  path: z.string().startsWith('/', { message: 'must start with "/"' }).default('/metrics'),
});

const metaSection = z
  .strictObject({
    /** Start as a new member of a running cluster (added with `robust-ctl cluster add-member`) instead of founding one from meta_addrs. */
    join: z.boolean().default(false),
    /** One Raft clock tick. Election timeout is election_ticks..2*election_ticks ticks. */
    tick_ms: z.int().min(10).max(10_000).default(100),
    election_ticks: z.int().min(2).max(1000).default(10),
    heartbeat_ticks: z.int().min(1).max(1000).default(1),
    /** Take a state-machine snapshot and compact the Raft log every this many applied entries. */
    snapshot_entries: z.int().min(16).default(10_000),
    /** How long a write may wait to commit before the caller gets a timeout. */
    propose_timeout_ms: z.int().min(100).default(10_000),
    /** Node liveness: every node heartbeats the meta leader this often ... */
    node_heartbeat_ms: z.int().min(50).default(1_000),
    /** ... is suspect when none arrived for this long ... */
    node_suspect_ms: z.int().min(100).default(3_000),
    /** ... and dead (its shards and sessions are reassigned) after this long. */
    node_dead_ms: z.int().min(200).default(10_000),
  })
  .check((ctx) => {
    const m = ctx.value;
    if (m.heartbeat_ticks >= m.election_ticks) {
      ctx.issues.push({ code: 'custom', input: m.heartbeat_ticks, path: ['heartbeat_ticks'], message: `must be < meta.election_ticks (${m.election_ticks})` });
    }
    if (m.node_suspect_ms >= m.node_dead_ms) {
      ctx.issues.push({ code: 'custom', input: m.node_suspect_ms, path: ['node_suspect_ms'], message: `must be < meta.node_dead_ms (${m.node_dead_ms})` });
    }
  });

const storageSection = z.strictObject({
  default_engine: z.enum(STORAGE_ENGINES).default('file'),
  flush: z.enum(['sync', 'async']).default('async'),
  flush_interval_ms: z.int().min(1).max(60_000).default(500),
  /** async flush: also fdatasync once this many bytes were written since the last one began (0 = only the timer). */
  flush_bytes: z.int().min(0).default(8 * 1024 * 1024),
  /** file engine: size of one CommitLog segment file. */
  commitlog_segment_bytes: z.int().min(64 * 1024).max(2 ** 40).default(1024 * 1024 * 1024),
  /** memory engine: bytes kept per shard before the oldest records are dropped. */
  memory_max_bytes: z.int().min(1024).default(64 * 1024 * 1024),
  /** Default retention for topics that do not set their own: ms (-1 = forever) and bytes per shard (-1 = unbounded). */
  retention_ms: z.int().min(-1).default(7 * 24 * 3600 * 1000),
  retention_bytes: z.int().min(-1).default(-1),
});

const journalSection = z
  .strictObject({
    tcp_port: requiredPort(1778),
    segment_size_bytes: z.int().min(1024 * 1024).default(1024 * 1024 * 1024),
    ensemble_size: z.int().min(1).max(16).default(3),
    write_quorum: z.int().min(1).max(16).default(3),
    ack_quorum: z.int().min(1).max(16).default(2),
    /** Striping (ensemble_size > write_quorum): bytes written to one write set before the next takes over. */
    stripe_bytes: z.int().min(1).default(64 * 1024),
    /** Re-replication of sealed segments (brokers): copy rate limit in bytes per second; 0 = unlimited. */
    rereplicate_bytes_per_sec: z.int().min(0).default(32 * 1024 * 1024),
  })
  .check((ctx) => {
    const j = ctx.value;
    if (j.write_quorum > j.ensemble_size) {
      ctx.issues.push({ code: 'custom', input: j.write_quorum, path: ['write_quorum'], message: `must be <= journal.ensemble_size (${j.ensemble_size})` });
    }
    if (j.ack_quorum > j.write_quorum) {
      ctx.issues.push({ code: 'custom', input: j.ack_quorum, path: ['ack_quorum'], message: `must be <= journal.write_quorum (${j.write_quorum})` });
    }
  });

const mqttAclRule = z.strictObject({
  permission: z.enum(['allow', 'deny']),
  action: z.enum(['publish', 'subscribe', 'all']),
  /** An MQTT topic filter; %u and %c expand to the username and client id. */
  topic: z.string().min(1),
  user: z.string().min(1).optional(),
  client_id: z.string().min(1).optional(),
});

const mqttSection = z.strictObject({
  tcp_port: optionalPort(1883),
  tls_port: optionalPort(8883),
  ws_port: optionalPort(8083),
  wss_port: optionalPort(8084),
  ws_path: z.string().startsWith('/', { message: 'must start with "/"' }).default('/mqtt'),
  max_connections: z.int().min(1).default(1_000_000),
  max_packet_size: z.int().min(64).max(268_435_455).default(1024 * 1024),
  max_inflight: z.int().min(1).max(65535).default(32),
  max_queued_messages: z.int().min(0).default(1000),
  receive_maximum: z.int().min(1).max(65535).default(65535),
  max_topic_levels: z.int().min(1).max(65535).default(128),
  max_message_rate: z.int().min(0).default(0),
  topic_alias_maximum: z.int().min(0).max(65535).default(65535),
  server_keep_alive: z.int().min(0).max(65535).default(0),
  max_session_expiry_sec: z.int().min(0).max(0xffff_ffff).default(0xffff_ffff),
  max_qos: z.int().min(0).max(2).default(2),
  retain_available: z.boolean().default(true),
  wildcard_subscriptions: z.boolean().default(true),
  shared_subscriptions: z.boolean().default(true),
  shared_strategy: z.enum(['round_robin', 'random', 'sticky', 'hash_clientid']).default('round_robin'),
  queue_qos0: z.boolean().default(false),
  delayed_publish: z.boolean().default(true),
  sys_interval_ms: z.int().min(0).default(10_000),
  redirect_to: z.string().default(''),
  redirect_permanent: z.boolean().default(false),
  acl_default: z.enum(['allow', 'deny']).default('allow'),
  acl: z.array(mqttAclRule).default([]),
});

const kafkaSection = z.strictObject({
  tcp_port: optionalPort(9092),
  /** SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256 against the users in meta); 0 = off. */
  sasl_port: optionalPort(0),
  /** SSL listener (uses [tls]); 0 = off. */
  ssl_port: optionalPort(0),
  /** Whether the plain tcp_port demands SASL too (then it is a SASL_PLAINTEXT listener). */
  require_sasl: z.boolean().default(false),
  /** Host clients are told to connect to (Metadata); empty = the node's advertised_host. */
  advertised_host: z.string().default(''),
  auto_create_topics: z.boolean().default(true),
  /** Partitions of an auto-created topic (Kafka's num.partitions). */
  num_partitions: z.int().min(1).max(10_000).default(1),
  /** Open Kafka connections at most, per listener (Kafka's max.connections); more are closed at once. */
  max_connections: z.int().min(1).default(100_000),
  /** Largest request frame accepted (Kafka's socket.request.max.bytes). */
  max_request_bytes: z.int().min(1024).max(1024 * 1024 * 1024).default(100 * 1024 * 1024),
  /** Largest record batch accepted per partition (Kafka's message.max.bytes). */
  message_max_bytes: z.int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024 + 12),
  group_min_session_timeout_ms: z.int().min(1).default(6000),
  group_max_session_timeout_ms: z.int().min(1).default(1_800_000),
  /** Kafka's group.initial.rebalance.delay.ms. */
  group_initial_rebalance_delay_ms: z.int().min(0).default(3000),
  /** Committed offsets of a group with no members are dropped after this long (offsets.retention.minutes). */
  offsets_retention_ms: z.int().min(0).default(7 * 24 * 3600 * 1000),
});

const rocketmqSection = z
  .strictObject({
    grpc_port: optionalPort(8081),
    /** Host clients are told to connect to (QueryRoute); empty = the node's advertised_host. */
    advertised_host: z.string().default(''),
    /** Create a topic on its first QueryRoute or SendMessage (RocketMQ's autoCreateTopicEnable). */
    auto_create_topics: z.boolean().default(true),
    /** Queues of an auto-created topic (RocketMQ's defaultTopicQueueNums). */
    default_queues: z.int().min(1).max(1024).default(8),
    /** Largest message body accepted (and told to producers). */
    max_body_bytes: z.int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    /** The longest a ReceiveMessage waits for messages; what consumers are told. */
    long_polling_timeout_ms: z.int().min(1000).max(300_000).default(20_000),
    /** Batch size consumers are told to receive with. */
    receive_batch_size: z.int().min(1).max(1024).default(32),
    /** Bounds of the invisible duration a ReceiveMessage may ask for. */
    min_invisible_ms: z.int().min(100).default(1000),
    max_invisible_ms: z.int().min(1000).default(12 * 3600 * 1000),
    /** Messages read and not yet acked, per consumer group and queue, before the broker reads no further. */
    max_inflight_per_queue: z.int().min(1).max(1_000_000).default(10_000),
    /** Where a consumer group with no committed offset starts on a queue: its first or last message. */
    consume_from: z.enum(['first', 'last']).default('first'),
    /** How often consumer groups' acked offsets are committed to meta. */
    offset_commit_interval_ms: z.int().min(50).max(60_000).default(1000),
    /** Deliveries of a message to a consumer group before it moves to the group's %DLQ% topic (RocketMQ's maxReconsumeTimes + 1). */
    max_delivery_attempts: z.int().min(1).max(1000).default(16),
    /** Per consumer group overrides of max_delivery_attempts: { "group" = n }. */
    group_max_delivery_attempts: z.record(z.string().min(1), z.int().min(1).max(1000)).default({}),
    /** Transaction check-back: first check of a half message this long after its send (transactionTimeOut). */
    transaction_check_delay_ms: z.int().min(1000).max(3_600_000).default(6000),
    /** Then again every this long (transactionCheckInterval). */
    transaction_check_interval_ms: z.int().min(1000).max(3_600_000).default(30_000),
    /** Checks before an unresolved half message is discarded (transactionCheckMax). */
    transaction_check_max: z.int().min(1).max(1000).default(15),
  })
  .check((ctx) => {
    const r = ctx.value;
    if (r.min_invisible_ms > r.max_invisible_ms) {
      ctx.issues.push({ code: 'custom', input: r.min_invisible_ms, path: ['min_invisible_ms'], message: `must be <= rocketmq.max_invisible_ms (${r.max_invisible_ms})` });
    }
  });

const tlsSection = z.strictObject({
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  ca: z.string().min(1).optional(),
  /** Ask clients of the TLS listeners for a certificate signed by `ca` and refuse those without one. */
  verify_client: z.boolean().default(false),
});

const authSection = z.strictObject({
  allow_anonymous: z.boolean().default(true),
  /** HS256 secret; when set (or jwt_public_key_file), a JWT is accepted as the MQTT password. */
  jwt_secret: z.string().min(1).optional(),
  /** PEM file of the RS256 public key JWTs are verified with. */
  jwt_public_key_file: z.string().min(1).optional(),
});

export const configSchema = z
  .strictObject({
    cluster_name: z.string().min(1).default('robustmq'),
    node_id: z.int().min(1).max(65535).default(1),
    roles: z
      .array(z.enum(ROLES))
      .min(1, { message: 'a node needs at least one role' })
      .default(['meta', 'broker', 'journal'])
      .refine((roles) => new Set(roles).size === roles.length, { message: 'a role is listed twice' }),
    /** Address other nodes and clients are told to use for this node. */
    advertised_host: z.string().min(1).default('127.0.0.1'),
    /** Interface every listener binds. */
    bind_host: z.string().min(1).default('0.0.0.0'),
    grpc_port: requiredPort(1228),
    http_port: requiredPort(58080),
    /** Meta nodes by id, as "host:grpc_port". */
    meta_addrs: z.record(z.string().regex(/^[1-9]\d*$/, { message: 'meta node ids are positive integers' }), hostPort).default({ '1': '127.0.0.1:1228' }),
    data_dir: z.string().min(1).default('./data'),
    log: logSection.prefault({}),
    prometheus: prometheusSection.prefault({}),
    meta: metaSection.prefault({}),
    storage: storageSection.prefault({}),
    journal: journalSection.prefault({}),
    mqtt: mqttSection.prefault({}),
    kafka: kafkaSection.prefault({}),
    rocketmq: rocketmqSection.prefault({}),
    tls: tlsSection.prefault({}),
    auth: authSection.prefault({}),
  })
  .check((ctx) => {
    const c = ctx.value;
    if (c.roles.includes('meta') && !(String(c.node_id) in c.meta_addrs)) {
      ctx.issues.push({
        code: 'custom',
        input: c.meta_addrs,
        path: ['meta_addrs'],
        message: `node ${c.node_id} has the meta role but is not listed in meta_addrs`,
      });
    }
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
