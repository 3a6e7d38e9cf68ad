/**
 * Everything a Kafka request handler uses, gathered once by the server: the
 * node's metadata port, its storage, the group coordinator, idempotent
 * producer state, settings and metrics.
 */
import type { Logger } from '../../common/logger.js';
import type { StorageAdapter } from '../../storage/types.js';
import type { GroupCoordinator } from './group/coordinator.js';
import type { KafkaMetrics } from './metrics.js';
import type { KafkaBusPort, KafkaMetaPort } from './ports.js';
import type { ProducerIdAllocator, ProducerStateTable } from './producer-state.js';

export interface KafkaSettings {
  autoCreateTopics: boolean;
  numPartitions: number;
  messageMaxBytes: number;
}

export interface KafkaDeps {
  meta: KafkaMetaPort;
  storage: () => StorageAdapter;
  bus: KafkaBusPort | undefined;
  groups: GroupCoordinator;
  producers: ProducerStateTable;
  producerIds: ProducerIdAllocator;
  settings: KafkaSettings;
  metrics: KafkaMetrics;
  log: Logger;
}

/** Storage shard id of a Kafka partition (a partition is a shard): meta's naming. */
export { shardId as shardOf } from '../../meta/state/records/shards.js';
