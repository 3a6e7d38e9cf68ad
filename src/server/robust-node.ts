import { addMetaRoutes, type MetaAdmin, type MetaResult } from '../admin/meta-routes.js';
import { addRecordRoutes, type RecordsAdmin } from '../admin/record-routes.js';
import { addClusterRoutes } from '../admin/cluster-routes.js';
import { createClusterAdmin } from './cluster-admin.js';
import { addMqttRoutes } from '../admin/mqtt-routes.js';
import { addKafkaRoutes } from '../admin/kafka-routes.js';
import { addRocketmqRoutes } from '../admin/rocketmq-routes.js';
import { addJournalRoutes } from '../admin/journal-routes.js';
import { JournalMaintenance } from './journal-maintenance.js';
import { createKafkaAdmin } from './kafka-admin.js';
import { createRocketmqAdmin } from './rocketmq-admin.js';
import { HttpError } from '../admin/http-server.js';
import type { NodeView } from '../admin/routes.js';
import { BrokerService } from '../broker/service.js';
import { STORAGE_ENGINES, journalListeners, redactConfig, type Config, type StorageEngineName } from '../common/config/index.js';
import type { Logger } from '../common/logger.js';
import { NodeMetrics } from '../common/metrics.js';
import type { NodeInfo } from '../common/node-info.js';
import { VERSION } from '../common/package-info.js';
import type { Service } from '../common/service.js';
import { JournalService } from '../journal/service.js';
import { MetaAgent } from '../meta/agent.js';
import { MetaService, type MetaDirectory } from '../meta/service.js';
import { encodeCommand, type MetaCommand } from '../meta/state/commands.js';
import { proposeResult } from './meta-propose.js';
import { createMetaStateMachine, type DefaultMetaStateMachine } from '../meta/state/default-records.js';
import { RpcClientPool } from '../rpc/client-pool.js';
import { CommonServer } from './common-server.js';
import { StorageService } from './storage-service.js';
import { addStorageForwardService, storageForwarder } from './storage-forward.js';
import { createMqttServer } from './mqtt-wiring.js';
import { advertisedKafkaListeners, createKafkaServer, kafkaListeners } from './kafka-wiring.js';
import { ShardPlacement } from './shard-placement.js';
import { createTopicBridge } from './topic-bridge.js';
import { advertisedRocketmqListeners, createRocketmqServer } from './rocketmq-wiring.js';
import { checkMessageTypeConfig, MESSAGE_TYPE_CONFIG_KEY } from '../broker/rocketmq/message-type.js';
import type { RocketmqServer } from '../broker/rocketmq/server.js';
import type { KafkaServer } from '../broker/kafka/server.js';
import type { ProtocolServer } from '../broker/service.js';
import { createMqttAdmin } from './mqtt-admin.js';
import type { MqttServer } from '../broker/mqtt/server.js';
import { NodeLifecycle } from './node.js';

export interface RobustNodeOptions {
  stopDeadlineMs?: number;
  onFatalStop: (exitCode: number) => void;
}

/** Topic config keys the node itself acts on are checked here; others are kept for the protocols. */
function checkTopicConfig(config: Record<string, string>): MetaResult | undefined {
  const flush = config['flush'];
  if (flush !== undefined && flush !== 'sync' && flush !== 'async') return { ok: false, code: 'invalid', message: `topic config "flush" must be "sync" or "async", got "${flush}"` };
  const messageType = checkMessageTypeConfig(config[MESSAGE_TYPE_CONFIG_KEY]);
  if (messageType) return { ok: false, code: 'invalid', message: messageType };
  return undefined;
}

function directoryOf(machine: DefaultMetaStateMachine): MetaDirectory {
  return {
    nodes: () => machine.view.nodes.list().map((n) => ({ id: n.id, state: n.state, grpcAddr: n.grpcAddr, roles: [...n.roles] })),
    setStateCommand: (nodeId, state, nowMs) => encodeCommand({ kind: 'node.setState', nodeId, state, nowMs }),
  };
}

/** One robust-server process: the common server, the meta link, and a service per role. */
export class RobustNode implements NodeView {
  readonly metrics: NodeMetrics;
  readonly lifecycle: NodeLifecycle;
  readonly metaAgent: MetaAgent;
  readonly meta: MetaService | undefined;
  readonly storage: StorageService | undefined;
  readonly mqtt: MqttServer | undefined;
  readonly kafka: KafkaServer | undefined;
  readonly rocketmq: RocketmqServer | undefined;
  private readonly common: CommonServer;
  private readonly rpcClients = new RpcClientPool();
  private readonly journalUpkeep: JournalMaintenance;
  private readonly startedAt = Date.now();

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    options: RobustNodeOptions,
  ) {
    this.metrics = new NodeMetrics({ nodeId: config.node_id, cluster: config.cluster_name, version: VERSION, roles: config.roles });
    this.common = new CommonServer(config, log, this.metrics, this.rpcClients, this);
    if (config.roles.includes('meta')) {
      const machine = createMetaStateMachine({ onError: (err, where) => log.error({ err: String(err), where }, 'metadata listener failed') });
      this.meta = new MetaService({
        config,
        log: log.child({ service: 'meta' }),
        rpc: this.common.rpc,
        pool: this.rpcClients,
        registry: this.metrics.registry,
        machine,
        directory: directoryOf(machine),
        fatal: (err) => this.lifecycle.fail('meta', err),
      });
    }
    this.metaAgent = new MetaAgent(config, log.child({ service: 'meta-client' }), this.rpcClients);
    this.journalUpkeep = new JournalMaintenance({
      config,
      agent: this.metaAgent,
      log: log.child({ service: 'journal-maintenance' }),
      registry: this.metrics.registry,
      writerEnd: (shard, segment) => this.storage?.journal?.writerEnd(shard, segment),
    });
    addJournalRoutes(this.common.admin, this.journalUpkeep);
    addMetaRoutes(this.common.admin, this.metaAdmin());
    addRecordRoutes(this.common.admin, this.recordsAdmin());
    addClusterRoutes(this.common.admin, createClusterAdmin(this.metaAgent));
    addMqttRoutes(this.common.admin, createMqttAdmin({ config, agent: this.metaAgent, mqtt: () => this.mqtt, brokerRunning: () => this.lifecycle.serviceStates().some((s) => s.name === 'broker' && s.ready) }));
    addKafkaRoutes(this.common.admin, createKafkaAdmin({ agent: this.metaAgent, kafka: () => this.kafka, storage: () => this.storage }));
    addRocketmqRoutes(this.common.admin, createRocketmqAdmin({ config, agent: this.metaAgent, rocketmq: () => this.rocketmq }));

    const services: Service[] = [this.common];
    if (this.meta) services.push(this.meta);
    services.push(this.metaAgent);
    if (config.roles.includes('journal')) services.push(new JournalService({ dataDir: config.data_dir, log: log.child({ service: 'journal' }), config, registry: this.metrics.registry }));
    if (config.roles.includes('broker')) {
      // The broker's storage adapter: local engines, shards following the topics in the metadata.
      this.storage = new StorageService(config, log.child({ service: 'storage' }), this.metrics.registry, this.metaAgent, storageForwarder(this.metaAgent, this.rpcClients));
      const storage = this.storage;
      addStorageForwardService(this.common.rpc, () => (storage.isReady() ? storage.adapter : undefined));
      services.push(this.storage);
      const mqtt = createMqttServer(config, log.child({ service: 'mqtt' }), this.metrics.registry, this.metaAgent, this.storage, this.common.rpc.grpc);
      this.mqtt = mqtt;
      const protocols: Array<{ name: string; server: ProtocolServer }> = [{ name: 'mqtt', server: mqtt }];
      // One topic, every protocol: Kafka records reach MQTT subscribers, MQTT publishes land in stored topics.
      const bridge = createTopicBridge({ agent: this.metaAgent, storage: this.storage, nodeId: config.node_id, log: log.child({ service: 'bridge' }) });
      bridge.attachMqtt(mqtt);
      if (config.rocketmq.grpc_port !== 0) {
        // Started before the registration below, which advertises its address.
        const rocketmq = createRocketmqServer(config, log.child({ service: 'rocketmq' }), this.metrics.registry, this.metaAgent, this.storage, bridge.kafkaPort);
        this.rocketmq = rocketmq;
        protocols.push({ name: 'rocketmq', server: rocketmq });
      }
      if (kafkaListeners(config).length > 0) {
        const kafka = createKafkaServer(config, log.child({ service: 'kafka' }), this.metrics.registry, this.metaAgent, this.storage, bridge.kafkaPort);
        this.kafka = kafka;
        protocols.push({ name: 'kafka', server: this.advertising(kafka) });
      } else {
        // Shard leaders are also the journal engine's writers: placement runs with or without Kafka.
        protocols.push({ name: 'placement', server: this.advertising(undefined) });
      }
      // Re-replication of sealed journal segments (the live broker with the lowest id acts).
      protocols.push({ name: 'journal-maintenance', server: this.journalUpkeep.service() });
      services.push(new BrokerService({ log: log.child({ service: 'broker' }), protocols }));
    }
    this.lifecycle = new NodeLifecycle(services, log, this.metrics, {
      stopDeadlineMs: options.stopDeadlineMs ?? 8_000,
      onFatalStop: options.onFatalStop,
    });
  }

  /**
   * Starts the Kafka server (if any), then records the advertised addresses of
   * Kafka and RocketMQ in this node's registry entry (what Metadata and
   * QueryRoute tell clients), and runs shard leader placement while it serves.
   */
  private advertising(kafka: KafkaServer | undefined): ProtocolServer {
    const placement = new ShardPlacement(this.metaAgent, this.config.node_id, this.log.child({ service: 'placement' }));
    return {
      start: async () => {
        if (kafka) await kafka.start();
        if (kafka || this.rocketmq) await this.registerListeners();
        await placement.start();
      },
      stop: async () => {
        placement.stop();
        await kafka?.stop();
      },
      listeners: () => kafka?.listeners() ?? [],
    };
  }

  private async registerListeners(): Promise<void> {
    const c = this.config;
    const listeners = [...(this.mqtt?.listeners() ?? []), ...(this.kafka ? advertisedKafkaListeners(c, this.kafka) : []), ...advertisedRocketmqListeners(c, this.rocketmq), ...journalListeners(c)];
    const r = await proposeResult(this.metaAgent, {
      kind: 'node.register',
      nodeId: c.node_id,
      roles: c.roles,
      grpcAddr: `${c.advertised_host}:${c.grpc_port}`,
      httpAddr: `${c.advertised_host}:${c.http_port}`,
      listeners,
      nowMs: Date.now(),
    });
    if (!r.ok) throw new Error(`could not record the protocol listeners of node ${c.node_id}: ${r.message}`);
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    await this.lifecycle.start();
    if (this.lifecycle.currentPhase !== 'running') return;
    this.common.setServing(true);
    this.log.info({ node_id: this.config.node_id, roles: this.config.roles, ms: Math.round(performance.now() - t0) }, `node ${this.config.node_id} ready (roles: ${this.config.roles.join(', ')})`);
  }

  stop(): Promise<boolean> {
    return this.lifecycle.stop();
  }

  info(): NodeInfo {
    const c = this.config;
    return {
      node_id: c.node_id,
      cluster_name: c.cluster_name,
      roles: [...c.roles],
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      advertised_host: c.advertised_host,
      grpc_port: c.grpc_port,
      http_port: c.http_port,
      listeners: this.lifecycle.listeners(),
      services: this.lifecycle.serviceStates(),
      ready: this.lifecycle.isReady(),
      started_at_ms: this.startedAt,
      pid: process.pid,
    };
  }

  effectiveConfig(): Record<string, unknown> {
    return redactConfig(this.config);
  }

  /** Produce/read by hand through this node's storage (broker role). */
  private recordsAdmin(): RecordsAdmin {
    const shardId = (topic: string, shard: number): string => {
      const t = this.metaAgent.replica.view.topics.get(topic);
      if (!t) throw new HttpError(404, 'not_found', `topic "${topic}" does not exist`);
      if (shard >= t.shards) throw new HttpError(404, 'not_found', `topic "${topic}" has shards 0..${t.shards - 1}, not ${shard}`);
      if (!this.storage) throw new HttpError(503, 'engine_unavailable', 'this node has no broker role, so no storage');
      return `${topic}-${shard}`;
    };
    const utf8 = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));
    return {
      append: (topic, shard, records) =>
        this.storage!.adapter.append(
          shardId(topic, shard),
          records.map((r) => ({
            timestamp: Date.now(),
            key: r.key === undefined || r.key === null ? null : Buffer.from(r.key, 'utf8'),
            value: r.value === null ? null : Buffer.from(r.value, 'utf8'),
            headers: Object.entries(r.headers ?? {}).map(([key, value]) => ({ key, value: Buffer.from(value, 'utf8') })),
            ...(r.tag !== undefined ? { tag: r.tag } : {}),
          })),
        ),
      read: async (topic, shard, from, max) => {
        const records = await this.storage!.adapter.read(shardId(topic, shard), from, { maxRecords: max, maxBytes: 16 * 1024 * 1024 });
        return records.map((r) => ({
          offset: r.offset,
          timestamp: r.timestamp,
          key: utf8(r.key),
          value: utf8(r.value),
          headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value.toString('utf8')])),
          ...(r.tag !== undefined ? { tag: r.tag } : {}),
        }));
      },
    };
  }

  /** The admin API's view of the metadata, through this node's meta link (any role). */
  private metaAdmin(): MetaAdmin {
    const agent = this.metaAgent;
    const propose = (cmd: MetaCommand): Promise<MetaResult> => proposeResult(agent, cmd);
    return {
      clusterStatus: async () => ({ ...(await agent.client.clusterStatus()), under_replicated_segments: this.journalUpkeep.underReplicated().length }),
      consistent: () => agent.client.consistent(),
      listTopics: () => agent.replica.view.topics.list(),
      getTopic: (name) => agent.replica.view.topics.get(name),
      topicShards: async (name) => {
        const topic = agent.replica.view.topics.get(name);
        if (!topic) return undefined;
        if (this.storage) return this.storage.topicShards(topic);
        return Array.from({ length: topic.shards }, (_, i) => ({ shard: `${topic.name}-${i}`, engine: topic.engine, local: false }));
      },
      createTopic: async ({ name, shards, engine, config }) => {
        const chosen = engine ?? this.config.storage.default_engine;
        if (!(STORAGE_ENGINES as readonly string[]).includes(chosen)) return { ok: false, code: 'invalid', message: `engine must be one of ${STORAGE_ENGINES.join(', ')}, got "${chosen}"` };
        const bad = checkTopicConfig(config ?? {});
        if (bad) return bad;
        return propose({ kind: 'topic.create', name, shards, engine: chosen as StorageEngineName, ...(config ? { config } : {}), nowMs: Date.now() });
      },
      updateTopicConfig: async (name, set, unset) => {
        const bad = checkTopicConfig(set);
        if (bad) return bad;
        return propose({ kind: 'topic.updateConfig', name, set, unset });
      },
      deleteTopic: (name) => propose({ kind: 'topic.delete', name }),
      addMember: (nodeId, address) => agent.client.changeMembers('add', nodeId, address),
      removeMember: (nodeId) => agent.client.changeMembers('remove', nodeId, ''),
      transferLeader: (target) => agent.client.transferLeader(target),
    };
  }
}
