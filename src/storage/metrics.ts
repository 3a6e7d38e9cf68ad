import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Storage metrics, shared by every engine. Create one per node registry; an engine
 * created without one (tests, benchmarks) uses a private registry.
 */
export class StorageMetrics {
  readonly appendBytes: Counter<'engine'>;
  readonly appendRecords: Counter<'engine'>;
  readonly appendSeconds: Histogram<'engine' | 'flush'>;
  readonly fsyncSeconds: Histogram<'engine'>;
  readonly droppedRecords: Counter<'engine' | 'reason'>;
  readonly recoverySeconds: Gauge<'engine'>;
  private readonly shardBytesSources: Array<() => Array<{ shard: string; engine: string; bytes: number }>> = [];

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.appendBytes = new Counter({ name: 'robust_storage_append_bytes_total', help: 'Record bytes appended', labelNames: ['engine'] as const, registers });
    this.appendRecords = new Counter({ name: 'robust_storage_append_records_total', help: 'Records appended', labelNames: ['engine'] as const, registers });
    this.appendSeconds = new Histogram({
      name: 'robust_storage_append_seconds',
      help: 'Append latency, from call to acknowledgement (after fsync in sync mode)',
      labelNames: ['engine', 'flush'] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: 'robust_storage_fsync_seconds',
      help: 'fdatasync latency of storage files',
      labelNames: ['engine'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.droppedRecords = new Counter({
      name: 'robust_storage_dropped_records_total',
      help: 'Records dropped by the engine (memory bound reached, retention, corrupt tail at recovery)',
      labelNames: ['engine', 'reason'] as const,
      registers,
    });
    this.recoverySeconds = new Gauge({ name: 'robust_storage_recovery_seconds', help: 'How long the last recovery on open took', labelNames: ['engine'] as const, registers });
    const sources = this.shardBytesSources;
    new Gauge({
      name: 'robust_storage_shard_bytes',
      help: 'Bytes held per shard',
      labelNames: ['shard', 'engine'] as const,
      registers,
      collect() {
        this.reset();
        for (const source of sources) for (const s of source()) this.set({ shard: s.shard, engine: s.engine }, s.bytes);
      },
    });
  }

  /** Add a source robust_storage_shard_bytes reads per-shard sizes from at scrape time (one per engine). */
  reportShardBytesFrom(source: () => Array<{ shard: string; engine: string; bytes: number }>): void {
    this.shardBytesSources.push(source);
  }
}
