import { EngineUnavailableError, ShardNotFoundError, StorageClosedError } from './errors.js';
import type { AppendBatch, AppendOptions, AppendRecord, EngineName, ReadLimits, ShardInfo, ShardSpec, StorageAdapter, StorageEngine, StoredEntry, StoredRecord } from './types.js';

/**
 * Hybrid storage: each shard lives in the engine its topic was created with.
 * Protocols see only this adapter; it routes every call to the shard's engine.
 */
export class StorageRouter implements StorageAdapter {
  private readonly byShard = new Map<string, StorageEngine>();
  private closed = false;

  constructor(private readonly engines: Partial<Record<EngineName, StorageEngine>>) {
    // Persistent engines come back with the shards they recovered.
    for (const engine of Object.values(engines)) {
      if (!engine) continue;
      for (const shard of engine.listShards()) this.byShard.set(shard, engine);
    }
  }

  available(engine: EngineName): boolean {
    return this.engines[engine] !== undefined;
  }

  async createShard(spec: ShardSpec): Promise<void> {
    this.assertOpen();
    const engine = this.engines[spec.engine];
    if (!engine) throw new EngineUnavailableError(spec.engine);
    const current = this.byShard.get(spec.shard);
    // Same id, other engine: the topic was deleted and re-created with another engine.
    if (current && current !== engine) await current.deleteShard(spec.shard);
    await engine.createShard(spec);
    this.byShard.set(spec.shard, engine);
  }

  async deleteShard(shard: string): Promise<void> {
    this.assertOpen();
    const engine = this.byShard.get(shard);
    if (!engine) return;
    await engine.deleteShard(shard);
    this.byShard.delete(shard);
  }

  append(shard: string, records: AppendRecord[], opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    return this.engineFor(shard).append(shard, records, opts);
  }

  /** Whether the shard's engine stores batches whole (appendBatches / readEntries). */
  supportsBatches(shard: string): boolean {
    const e = this.byShard.get(shard);
    return e?.appendBatches !== undefined && e.readEntries !== undefined;
  }

  appendBatches(shard: string, batches: AppendBatch[], opts?: AppendOptions): Promise<{ baseOffset: bigint }> {
    const e = this.engineFor(shard);
    if (!e.appendBatches) return Promise.reject(new TypeError(`the ${e.name} engine does not store batches (check supportsBatches first)`));
    return e.appendBatches(shard, batches, opts);
  }

  readEntries(shard: string, from: bigint, limits: ReadLimits): Promise<StoredEntry[]> {
    const e = this.engineFor(shard);
    if (!e.readEntries) return e.read(shard, from, limits).then((records) => records.map((record) => ({ kind: 'record' as const, record })));
    return e.readEntries(shard, from, limits);
  }

  read(shard: string, from: bigint, limits: ReadLimits): Promise<StoredRecord[]> {
    return this.engineFor(shard).read(shard, from, limits);
  }

  waitForData(shard: string, from: bigint, timeoutMs: number): Promise<void> {
    return this.engineFor(shard).waitForData(shard, from, timeoutMs);
  }

  offsetForTime(shard: string, timestampMs: number): Promise<bigint> {
    return this.engineFor(shard).offsetForTime(shard, timestampMs);
  }

  truncateBefore(shard: string, offset: bigint): Promise<void> {
    return this.engineFor(shard).truncateBefore(shard, offset);
  }

  shardInfo(shard: string): Promise<ShardInfo> {
    return this.engineFor(shard).shardInfo(shard);
  }

  listShards(): string[] {
    return [...this.byShard.keys()].sort();
  }

  hasShard(shard: string): boolean {
    return this.byShard.has(shard);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(Object.values(this.engines).map((e) => e?.close()));
  }

  private engineFor(shard: string): StorageEngine {
    this.assertOpen();
    const engine = this.byShard.get(shard);
    if (!engine) throw new ShardNotFoundError(shard);
    return engine;
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageClosedError();
  }
}
