import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { Config } from '../common/config/index.js';
import type { Logger } from '../common/logger.js';
import type { ListenerInfo } from '../common/node-info.js';
import type { Service } from '../common/service.js';
import { ReplicaStore } from './replica-store.js';
import { JournalServer } from './server.js';

export interface JournalServiceOptions {
  dataDir: string;
  log: Logger;
  config: Config;
  /** The node's metrics registry (robust_journal_*). */
  registry: Registry;
}

/**
 * The journal role (DESIGN.md §6): the segment replicas of this node
 * (ReplicaStore, in data_dir/journal) behind the journal data service on
 * bind_host:journal.tcp_port (JournalServer).
 */
export class JournalService implements Service {
  readonly name = 'journal';
  private ready = false;
  private replicaStore: ReplicaStore | undefined;
  private server: JournalServer | undefined;

  constructor(private readonly opts: JournalServiceOptions) {}

  get dir(): string {
    return join(this.opts.dataDir, 'journal');
  }

  /** The bound data port (0 before start). */
  get port(): number {
    return this.server?.port ?? 0;
  }

  get store(): ReplicaStore {
    if (!this.replicaStore) throw new Error('journal is not started');
    return this.replicaStore;
  }

  /** The data service (tests use its fault hook). */
  get dataServer(): JournalServer | undefined {
    return this.server;
  }

  async start(): Promise<void> {
    const { config, log, registry } = this.opts;
    await mkdir(this.dir, { recursive: true });
    const store = await ReplicaStore.open({
      dir: this.dir,
      log,
      flushIntervalMs: config.storage.flush_interval_ms,
      flushBytes: config.storage.flush_bytes,
      segmentBytes: config.journal.segment_size_bytes,
      registry,
    });
    const server = new JournalServer({ store, host: config.bind_host, port: config.journal.tcp_port, log, registry });
    try {
      await server.start();
    } catch (err) {
      await server.stop().catch(() => undefined);
      await store.close().catch(() => undefined);
      throw err;
    }
    this.replicaStore = store;
    this.server = server;
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
    const server = this.server;
    const store = this.replicaStore;
    this.server = undefined;
    this.replicaStore = undefined;
    await server?.stop();
    await store?.close();
  }

  isReady(): boolean {
    return this.ready;
  }

  listeners(): ListenerInfo[] {
    return this.server?.listeners() ?? [];
  }
}
