/**
 * The Kafka protocol server of a broker: its listeners (PLAINTEXT, and
 * SASL_PLAINTEXT / SSL when configured), the connections, and the pieces the
 * handlers share (group coordinator, idempotent producer state).
 */
import type { Logger } from '../../common/logger.js';
import type { ListenerInfo } from '../../common/node-info.js';
import type { StorageAdapter } from '../../storage/types.js';
import { startListener, type RunningListener, type TlsFiles } from '../network/listener.js';
import type { ProtocolServer } from '../service.js';
import { KafkaConnection } from './connection.js';
import type { KafkaDeps, KafkaSettings } from './deps.js';
import { KafkaDispatcher } from './dispatcher.js';
import { GroupCoordinator } from './group/coordinator.js';
import { guardedSystemTimer } from './group/timer.js';
import type { KafkaMetrics } from './metrics.js';
import type { KafkaBusPort, KafkaMetaPort } from './ports.js';
import { ProducerIdAllocator, ProducerStateTable } from './producer-state.js';

export interface KafkaListenerSpec {
  /** 'PLAINTEXT', 'SASL_PLAINTEXT' or 'SSL'. */
  name: string;
  kind: 'tcp' | 'tls';
  host: string;
  port: number;
  requireSasl: boolean;
}

export interface KafkaServerOptions {
  listeners: KafkaListenerSpec[];
  tls?: TlsFiles;
  meta: KafkaMetaPort;
  storage: () => StorageAdapter;
  bus?: KafkaBusPort;
  settings: KafkaSettings;
  maxRequestBytes: number;
  /** Per listener; beyond it a new connection is closed before it is read. */
  maxConnections?: number;
  group: { minSessionTimeoutMs: number; maxSessionTimeoutMs: number; initialRebalanceDelayMs: number; offsetsRetentionMs: number };
  metrics: KafkaMetrics;
  log: Logger;
}

export class KafkaServer implements ProtocolServer {
  readonly groups: GroupCoordinator;
  readonly deps: KafkaDeps;
  private running: Array<{ spec: KafkaListenerSpec; listener: RunningListener }> = [];
  private readonly connections = new Set<KafkaConnection>();
  private nextId = 1;
  private expiry: NodeJS.Timeout | undefined;

  constructor(private readonly opts: KafkaServerOptions) {
    const meta = opts.meta;
    this.groups = new GroupCoordinator({
      timer: guardedSystemTimer((err) => opts.log.error({ err: String(err) }, 'kafka: a group coordinator timer failed')),
      offsets: {
        offsetsExist: (g) => meta.committedAll(g).length > 0,
        deleteOffsets: (g) => meta.deleteGroupOffsets(g),
        groupIdsWithOffsets: () => meta.offsetGroups(),
      },
      minSessionTimeoutMs: opts.group.minSessionTimeoutMs,
      maxSessionTimeoutMs: opts.group.maxSessionTimeoutMs,
      initialRebalanceDelayMs: opts.group.initialRebalanceDelayMs,
    });
    this.deps = {
      meta,
      storage: opts.storage,
      bus: opts.bus,
      groups: this.groups,
      producers: new ProducerStateTable(),
      producerIds: new ProducerIdAllocator(meta.nodeId),
      settings: opts.settings,
      metrics: opts.metrics,
      log: opts.log,
    };
  }

  async start(): Promise<void> {
    const dispatcher = new KafkaDispatcher(this.deps);
    try {
      for (const spec of this.opts.listeners) {
        const listener = await startListener({
          kind: spec.kind,
          host: spec.host,
          port: spec.port,
          name: `kafka ${spec.name}`,
          ...(this.opts.maxConnections !== undefined ? { maxConnections: this.opts.maxConnections } : {}),
          ...(spec.kind === 'tls' && this.opts.tls ? { tls: this.opts.tls } : {}),
          onConnection: (t) => {
            const id = this.nextId++;
            this.opts.metrics.connectionOpened();
            const conn = new KafkaConnection({
              id,
              stream: t.stream,
              remoteAddress: `${t.remoteAddress}:${t.remotePort}`,
              listener: spec.name,
              requireSasl: spec.requireSasl,
              maxRequestBytes: this.opts.maxRequestBytes,
              handler: dispatcher,
              log: this.opts.log,
              onClose: () => {
                this.connections.delete(conn);
                this.opts.metrics.connectionClosed();
              },
            });
            this.connections.add(conn);
          },
          onError: (err) => this.opts.log.debug({ err: err.message }, 'kafka: listener connection error'),
        });
        this.running.push({ spec, listener });
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.expiry = setInterval(() => {
      this.deps.producers.expire(Date.now());
      this.groups.purgeEmptyGroups();
      void this.expireOffsets(Date.now());
    }, 60_000);
    this.expiry.unref();
  }

  async stop(): Promise<void> {
    if (this.expiry) clearInterval(this.expiry);
    this.groups.close();
    const running = this.running;
    this.running = [];
    for (const c of this.connections) c.close();
    await Promise.all(running.map((r) => r.listener.close()));
  }

  /**
   * Kafka's offsets.retention: a group without members whose newest commit is
   * older than the retention loses its committed offsets. The group's
   * coordinator does it, so one node proposes each deletion.
   */
  async expireOffsets(nowMs: number): Promise<string[]> {
    const meta = this.opts.meta;
    const expired: string[] = [];
    for (const group of meta.offsetGroups()) {
      if (meta.coordinatorFor(group)?.nodeId !== meta.nodeId) continue;
      if (this.groups.describeGroup(group).members.length > 0) continue;
      const newest = Math.max(...meta.committedAll(group).map((o) => o.commitTimeMs));
      if (nowMs - newest < this.opts.group.offsetsRetentionMs) continue;
      try {
        await meta.deleteGroupOffsets(group);
        expired.push(group);
        this.opts.log.info({ group }, `kafka: committed offsets of group ${group} expired (no members, last commit ${new Date(newest).toISOString()})`);
      } catch (err) {
        this.opts.log.warn({ group, err: String(err) }, 'kafka: could not expire committed offsets');
      }
    }
    return expired;
  }

  listeners(): ListenerInfo[] {
    return this.running.map((r) => ({ name: `kafka-${r.spec.name.toLowerCase()}`, protocol: 'kafka', address: `${r.listener.host}:${r.listener.port}` }));
  }

  /** Port of the first listener (tests bind port 0). */
  port(name = 'PLAINTEXT'): number | undefined {
    return this.running.find((r) => r.spec.name === name)?.listener.port;
  }

  connectionCount(): number {
    return this.connections.size;
  }
}
