/**
 * What the RocketMQ protocol needs from the rest of the node, as interfaces
 * the server assembly implements (src/server/rocketmq-wiring.ts): topics and
 * the queues (shards) this broker serves, the brokers clients are routed to,
 * committed group offsets, and the cross-protocol bus. Narrow on purpose, so
 * the handlers can be tested with an in-process fake.
 */
import type { Logger } from '../../common/logger.js';
import type { StorageAdapter } from '../../storage/types.js';
import type { ClientRegistry } from './clients.js';
import type { RocketmqMetrics } from './metrics.js';
import type { BusPort, BusRecord } from '../core/topic-bus.js';

export interface RocketmqTopic {
  name: string;
  /** Changes when a topic is deleted and created again under the same name. */
  id: number;
  queues: number;
  config: Readonly<Record<string, string>>;
}

export interface RocketmqBroker {
  nodeId: number;
  host: string;
  port: number;
}

export interface RocketmqMetaPort {
  readonly nodeId: number;
  topic(name: string): RocketmqTopic | undefined;
  /** Creates a topic with this many queues; resolves when it exists (also when it already did). */
  createTopic(name: string, queues: number, config: Record<string, string>): Promise<void>;
  /**
   * The queue numbers of the topic this broker serves (leads, and holds open in
   * storage), in order; empty while none is placed here.
   */
  servedQueues(topic: string): number[];
  /** Resolves once the topic's queues have leaders and this node's shards are open, or the timeout passed. */
  waitForQueues(topic: string, timeoutMs: number): Promise<void>;
  /** Brokers a client should talk to for this topic: those that lead one of its queues. */
  routeBrokers(topic: string): RocketmqBroker[];
  committed(group: string, topic: string, queue: number): number | undefined;
  commitOffsets(group: string, offsets: Array<{ topic: string; queue: number; offset: number }>): Promise<void>;
  /**
   * Creates (if missing) a one-queue internal topic kept forever and resolves
   * with its shard id once the shard is open on this node (the transaction and
   * timer logs). Without it the topic is made with createTopic (test fakes).
   */
  ensureInternalShard?(topic: string): Promise<string>;
}

/** A record sent over RocketMQ, for live subscribers of other protocols (MQTT) to the same topic. */
export type CrossProtocolPublish = BusRecord;

export type RocketmqBusPort = BusPort;

export interface RocketmqSettings {
  autoCreateTopics: boolean;
  /** Queues of an auto-created topic. */
  defaultQueues: number;
  maxBodyBytes: number;
  /** The longest a ReceiveMessage waits for messages (and what consumers are told). */
  longPollingTimeoutMs: number;
  receiveBatchSize: number;
  minInvisibleMs: number;
  maxInvisibleMs: number;
  /** Messages read and not yet acked, per group and queue, before the broker reads no further. */
  maxInflightPerQueue: number;
  /** Where a group with no committed offset starts on a queue. */
  consumeFrom: 'first' | 'last';
  offsetCommitIntervalMs: number;
  /** Deliveries of a message before it moves to the group's %DLQ% topic (RocketMQ's 16 when absent). */
  maxDeliveryAttempts?: number;
  /** Per consumer group overrides of maxDeliveryAttempts. */
  groupMaxDeliveryAttempts?: Readonly<Record<string, number>>;
  /** When the broker asks producers about half messages they have not ended (RocketMQ's 6 s, every 30 s, 15 times when absent). */
  transactionCheck?: { firstCheckMs: number; intervalMs: number; maxChecks: number };
}

export interface RocketmqDeps {
  meta: RocketmqMetaPort;
  /** The node's storage adapter (asked for per call: storage starts before the broker). */
  storage: () => StorageAdapter;
  bus?: RocketmqBusPort;
  settings: RocketmqSettings;
  clients: ClientRegistry;
  metrics: RocketmqMetrics;
  log: Logger;
  now: () => number;
  /** The address this broker tells clients (QueryRoute, store_host), once its port is bound. */
  advertised: () => { host: string; port: number };
}
