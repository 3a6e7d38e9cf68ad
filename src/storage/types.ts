/**
 * The storage contract every protocol uses (DESIGN.md §5). A topic has shards
 * (Kafka partition = RocketMQ queue = shard); each shard is an append-only
 * sequence of records with dense offsets from 0. Engines (memory, file, later
 * journal and s3) implement StorageEngine; the router picks the engine per shard.
 */

export type EngineName = 'memory' | 'file' | 'journal' | 's3';
export type FlushMode = 'sync' | 'async';

export interface RecordHeader {
  key: string;
  value: Buffer;
}

/** A record as stored and read back. */
export interface StoredRecord {
  /** Dense per shard, from 0. */
  offset: bigint;
  /** Milliseconds since the epoch (the producer's, or the append time). */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  /** RocketMQ-style tag for server-side filtering; its hash is kept in the index. */
  tag?: string;
}

/** A record to append: everything but the offset, which the shard assigns. */
export type AppendRecord = Omit<StoredRecord, 'offset'>;

/**
 * A batch of records in Kafka's record batch v2 layout (magic 2), kept as it is:
 * engines that store batches whole (`appendBatches`) write it once and hand it
 * back on `readEntries`, with no record objects on the way; it is decoded into
 * records only for `read`.
 */
export interface AppendBatch {
  /**
   * The batch from its base offset field to its end, with a valid CRC-32C; the engine
   * sets the base offset in its own copy. An engine must not keep a view of these bytes
   * once the append settles: the caller reuses the buffer (Kafka request frames).
   */
  bytes: Buffer;
  /** Records in it (its last offset delta + 1). */
  count: number;
  /** Timestamp of its first record, and the greatest (the time index keeps these). */
  firstTimestamp: number;
  maxTimestamp: number;
}

/** An engine's stored form, as `readEntries` hands it back. */
export type StoredEntry =
  /** A batch as appended, its base offset set; it may begin before the offset asked for. */
  | { kind: 'batch'; baseOffset: bigint; count: number; bytes: Buffer }
  | { kind: 'record'; record: StoredRecord };

/** Turns a stored batch into its records (the node supplies it: storage does not parse protocols' formats). */
export type BatchDecoder = (bytes: Buffer, baseOffset: bigint) => StoredRecord[];

export interface ShardSpec {
  /** Unique shard id, `${topic}-${n}` (see meta/state/records/shards.ts). */
  shard: string;
  topic: string;
  engine: EngineName;
  /** Per-topic override of `[storage] flush`. */
  flush?: FlushMode;
  /** Keep records at most this long (ms); undefined = the engine default; -1 = forever. */
  retentionMs?: number;
  /** Keep at most this many bytes per shard; undefined = the engine default; -1 = unbounded. */
  retentionBytes?: number;
}

export interface ReadLimits {
  maxRecords: number;
  /** Stop before exceeding this many bytes of record payload, but always return at least one record if one exists. */
  maxBytes: number;
}

export interface ShardInfo {
  shard: string;
  engine: EngineName;
  /** First offset still readable. */
  startOffset: bigint;
  /** Offset the next append gets (= high watermark). */
  endOffset: bigint;
  /** Bytes this shard's records take (on disk or in memory). */
  bytes: number;
}

export interface AppendOptions {
  /** Replication acknowledgement (journal engine); local engines ignore it. */
  acks?: 'leader' | 'quorum' | 'all';
}

/** What an engine implements; the StorageAdapter the protocols see is the router over engines. */
export interface StorageEngine {
  readonly name: EngineName;
  /** Idempotent: creating an existing shard with the same spec is a no-op (the spec's retention/flush are updated). */
  createShard(spec: ShardSpec): Promise<void>;
  /** Removes the shard and its data; unknown shard is a no-op. */
  deleteShard(shard: string): Promise<void>;
  /** Appends a batch atomically (all or nothing) and returns the offset of its first record. */
  append(shard: string, records: AppendRecord[], opts?: AppendOptions): Promise<{ baseOffset: bigint }>;
  /** Optional: appends whole batches, atomically and in order; returns the offset of the first record. */
  appendBatches?(shard: string, batches: AppendBatch[], opts?: AppendOptions): Promise<{ baseOffset: bigint }>;
  /**
   * Optional (with appendBatches): what is stored from `from` on, within limits, as
   * batches (whole, the first may start before `from`) and single records.
   */
  readEntries?(shard: string, from: bigint, limits: ReadLimits): Promise<StoredEntry[]>;
  /**
   * Records from `from` on, within limits. `from === endOffset` returns []. `from`
   * before startOffset or after endOffset throws OffsetOutOfRangeError.
   */
  read(shard: string, from: bigint, limits: ReadLimits): Promise<StoredRecord[]>;
  /** Resolves when a record at `from` exists, or after timeoutMs (never rejects on timeout). No polling. */
  waitForData(shard: string, from: bigint, timeoutMs: number): Promise<void>;
  /** The first offset whose timestamp is >= timestampMs; endOffset if there is none. */
  offsetForTime(shard: string, timestampMs: number): Promise<bigint>;
  /** Make records before `offset` unreadable (startOffset = offset); space is reclaimed when whole segments are unused. */
  truncateBefore(shard: string, offset: bigint): Promise<void>;
  shardInfo(shard: string): Promise<ShardInfo>;
  /** Shards this engine holds (after a restart: those it recovered). */
  listShards(): string[];
  close(): Promise<void>;
}

/** The interface protocols use (DESIGN.md §5): one adapter over every engine. */
export type StorageAdapter = Omit<StorageEngine, 'name'> & {
  /** Whether the shard's engine stores batches whole (appendBatches / readEntries are then worth using). */
  supportsBatches?(shard: string): boolean;
};
