/**
 * What the Kafka protocol needs from the rest of the node, as interfaces the
 * server assembly implements (src/server/kafka-wiring.ts): cluster metadata
 * (brokers, topics, partition leaders), topic administration, committed
 * offsets, users for SASL, and the cross-protocol bus. Keeping these narrow is
 * what lets the handlers be tested with an in-process fake.
 *
 * Methods that change metadata throw KafkaProtocolError with the Kafka error
 * code the client should see (TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, ...).
 */
import type { ScramStored } from '../core/auth/credentials.js';
import type { BusPort, BusRecord } from '../core/topic-bus.js';

export interface KafkaBroker {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface KafkaPartition {
  partition: number;
  /** Node id of the leader; -1 while none is assigned. */
  leader: number;
  replicas: number[];
  leaderEpoch: number;
}

export interface KafkaTopic {
  name: string;
  partitions: KafkaPartition[];
  config: Readonly<Record<string, string>>;
  internal: boolean;
}

export interface CommittedOffset {
  offset: number;
  metadata: string | null;
  commitTimeMs: number;
}

export interface OffsetToCommit {
  topic: string;
  partition: number;
  offset: number;
  metadata: string | null;
}

export interface KafkaMetaPort {
  readonly nodeId: number;
  readonly clusterId: string;
  /** Live brokers that serve Kafka, sorted by node id, with their address on the named listener ('PLAINTEXT', 'SASL_PLAINTEXT', 'SSL'). */
  brokers(listener?: string): KafkaBroker[];
  /** The node clients should ask about groups (FindCoordinator), or undefined when no broker is alive. */
  coordinatorFor(groupId: string, listener?: string): KafkaBroker | undefined;
  topic(name: string): KafkaTopic | undefined;
  topicNames(): string[];
  createTopic(name: string, partitions: number, config: Record<string, string>): Promise<void>;
  deleteTopic(name: string): Promise<void>;
  /** Grows a topic to `total` partitions. */
  addPartitions(name: string, total: number): Promise<void>;
  alterTopicConfig(name: string, set: Record<string, string>, unset: string[]): Promise<void>;
  /** Resolves once every partition of the topic has a leader (or the timeout passes). */
  waitForLeaders(name: string, timeoutMs: number): Promise<void>;
  committed(group: string, topic: string, partition: number): CommittedOffset | undefined;
  committedAll(group: string): Array<OffsetToCommit & { commitTimeMs: number }>;
  commitOffsets(group: string, offsets: OffsetToCommit[]): Promise<void>;
  /** Groups that have committed offsets. */
  offsetGroups(): string[];
  deleteGroupOffsets(group: string): Promise<void>;
  /** SCRAM keys (and a PLAIN check) of a user kept in meta. */
  scramKeys(username: string): ScramStored | undefined;
  verifyPassword(username: string, password: string): Promise<boolean>;
}

/** A record produced over Kafka, for live subscribers of other protocols (MQTT) to the same topic. */
export type CrossProtocolPublish = BusRecord;

export type KafkaBusPort = BusPort;
