import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { Config } from '../common/config/index.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Service } from '../common/service.js';
import type { MetaAgent } from '../meta/agent.js';
import type { TopicRecord } from '../meta/state/records/topics.js';
import { EngineUnavailableError } from '../storage/errors.js';
import { FileEngine } from '../storage/file/engine.js';
import { JournalEngine, type JournalEngineOptions, type JournalShardSpec } from '../storage/journal/engine.js';
import { journalMetaPort } from './journal-wiring.js';
import { MemoryEngine } from '../storage/memory/engine.js';
import { StorageMetrics } from '../storage/metrics.js';
import { StorageRouter } from '../storage/router.js';
import { decodeStoredBatch } from './stored-batch.js';
import type { FlushMode, ShardInfo, ShardSpec } from '../storage/types.js';

function isSpecificAddress(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) && host !== '0.0.0.0';
}

/** What a topic's metadata says about how its shards are stored. */
/** A Kafka-style retention key in the topic's config wins over the topic's own field (AlterConfigs changes the config). */
function configRetention(topic: TopicRecord, key: string, fallback: number | undefined): number | undefined {
  const v = topic.config[key];
  return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : fallback;
}

/** Per-topic journal replication (`journal.ensemble_size`, `journal.write_quorum`, `journal.ack_quorum` in the topic's config). */
function replicationOf(topic: TopicRecord): JournalShardSpec['replication'] | undefined {
  const pick = (key: string): number | undefined => {
    const v = topic.config[key];
    return v !== undefined && /^[1-9]\d*$/.test(v) ? Number(v) : undefined;
  };
  const r = { ensembleSize: pick('journal.ensemble_size'), writeQuorum: pick('journal.write_quorum'), ackQuorum: pick('journal.ack_quorum') };
  if (r.ensembleSize === undefined && r.writeQuorum === undefined && r.ackQuorum === undefined) return undefined;
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined));
}

export function shardSpecFor(topic: TopicRecord, shard: number): JournalShardSpec {
  const flush = topic.config['flush'];
  const retentionMs = configRetention(topic, 'retention.ms', topic.retentionMs);
  const retentionBytes = configRetention(topic, 'retention.bytes', topic.retentionBytes);
  const replication = topic.engine === 'journal' ? replicationOf(topic) : undefined;
  return {
    shard: `${topic.name}-${shard}`,
    topic: topic.name,
    engine: topic.engine,
    ...(flush === 'sync' || flush === 'async' ? { flush: flush as FlushMode } : {}),
    ...(retentionMs !== undefined ? { retentionMs } : {}),
    ...(retentionBytes !== undefined ? { retentionBytes } : {}),
    ...(replication ? { replication } : {}),
  };
}

/**
 * This node's storage (broker role): the memory and file engines behind one
 * router, with shards kept in step with the topics in the metadata — created
 * when a topic is, re-specified when its config changes, deleted with it.
 */
export class StorageService implements Service {
  readonly name = 'storage';
  private router: StorageRouter | undefined;
  /** The journal engine, for the operator surface (replication lag). */
  journal: JournalEngine | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly warnedEngines = new Set<string>();
  private ready = false;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly registry: Registry,
    private readonly agent: MetaAgent,
    /** Hands appends of shards another broker leads to that broker (journal engine). */
    private readonly forward?: JournalEngineOptions['forward'],
  ) {}

  get adapter(): StorageRouter {
    if (!this.router) throw new Error('storage is not started');
    return this.router;
  }

  async start(): Promise<void> {
    const c = this.config.storage;
    const metrics = new StorageMetrics(this.registry);
    const memory = new MemoryEngine({ maxBytesPerShard: c.memory_max_bytes, retentionMs: c.retention_ms, retentionBytes: c.retention_bytes, metrics });
    const file = await FileEngine.open({
      dir: join(this.config.data_dir, 'storage', 'file'),
      segmentBytes: c.commitlog_segment_bytes,
      flush: c.flush,
      flushIntervalMs: c.flush_interval_ms,
      flushBytes: c.flush_bytes,
      retentionMs: c.retention_ms,
      retentionBytes: c.retention_bytes,
      metrics,
      log: this.log,
      batchDecoder: decodeStoredBatch,
    });
    // The journal engine is the client of the journal nodes: every broker runs it; it writes the shards it leads.
    const journal = new JournalEngine({
      meta: journalMetaPort(this.agent, this.config.node_id),
      defaults: { ensembleSize: this.config.journal.ensemble_size, writeQuorum: this.config.journal.write_quorum, ackQuorum: this.config.journal.ack_quorum },
      flush: c.flush,
      segmentBytes: this.config.journal.segment_size_bytes,
      stripeBytes: this.config.journal.stripe_bytes,
      defaultRetentionMs: c.retention_ms,
      defaultRetentionBytes: c.retention_bytes,
      batchDecoder: decodeStoredBatch,
      log: this.log,
      ...(this.forward ? { forward: this.forward } : {}),
      // Peers tell nodes apart by source address when nodes bind distinct loopback/host addresses.
      ...(isSpecificAddress(this.config.bind_host) ? { localAddress: this.config.bind_host } : {}),
    });
    this.journal = journal;
    const router = new StorageRouter({ memory, file, journal });
    this.router = router;

    // Follow topic changes from now on, then reconcile with what exists (events
    // that happened while this node was down are not replayed).
    this.unsubscribe = this.agent.replica.subscribe(({ event }) => {
      switch (event.type) {
        case 'topic.created':
        case 'topic.shardsAdded':
        case 'topic.configUpdated':
          void this.ensureShards(event.topic);
          break;
        case 'topic.deleted':
          void this.dropShards(event.topic.name, event.topic.shards);
          break;
        case 'state.restored':
          void this.reconcile();
          break;
        default:
          break;
      }
    });
    await this.reconcile();
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.unsubscribe?.();
    await this.router?.close();
  }

  isReady(): boolean {
    return this.ready;
  }

  /** Local shard info for one topic's shards (null where this node holds none). */
  async topicShards(topic: TopicRecord): Promise<Array<ShardInfo | { shard: string; engine: string; local: false }>> {
    const out: Array<ShardInfo | { shard: string; engine: string; local: false }> = [];
    for (let i = 0; i < topic.shards; i++) {
      const id = `${topic.name}-${i}`;
      out.push(this.router?.hasShard(id) ? await this.router.shardInfo(id) : { shard: id, engine: topic.engine, local: false });
    }
    return out;
  }

  private async reconcile(): Promise<void> {
    const topics = this.agent.replica.view.topics.list();
    const wanted = new Set<string>();
    for (const t of topics) {
      for (let i = 0; i < t.shards; i++) wanted.add(`${t.name}-${i}`);
      await this.ensureShards(t);
    }
    for (const shard of this.router?.listShards() ?? []) {
      if (!wanted.has(shard)) {
        this.log.info({ shard }, `storage: dropping shard ${shard}: its topic no longer exists`);
        await this.router!.deleteShard(shard).catch((err: unknown) => this.log.warn({ shard, err: errorMessage(err) }, 'could not drop shard'));
      }
    }
  }

  private async ensureShards(topic: TopicRecord): Promise<void> {
    const router = this.router;
    if (!router) return;
    if (!router.available(topic.engine)) {
      if (!this.warnedEngines.has(topic.name)) {
        this.warnedEngines.add(topic.name);
        this.log.warn({ topic: topic.name, engine: topic.engine }, `storage: topic ${topic.name} uses engine "${topic.engine}", which this node does not run yet`);
      }
      return;
    }
    for (let i = 0; i < topic.shards; i++) {
      try {
        await router.createShard(shardSpecFor(topic, i));
      } catch (err) {
        if (!(err instanceof EngineUnavailableError)) this.log.error({ topic: topic.name, shard: i, err: errorMessage(err) }, 'storage: could not create shard');
      }
    }
  }

  private async dropShards(topic: string, shards: number): Promise<void> {
    for (let i = 0; i < shards; i++) {
      await this.router?.deleteShard(`${topic}-${i}`).catch((err: unknown) => this.log.warn({ topic, shard: i, err: errorMessage(err) }, 'storage: could not drop shard'));
    }
  }
}
