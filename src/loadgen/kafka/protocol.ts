/**
 * What the main thread and the worker threads of `robust-bench kafka` tell each other.
 * Counters live in shared memory (one Float64Array row per worker, written by that worker
 * only) so that the main thread reads progress and the window's edges without a message
 * round trip; `ctl[PHASE]` is set by the main thread (latency is recorded only while it
 * is MEASURING).
 */
import type { Acks } from './options.js';
import type { Compression } from '../../broker/kafka/records/index.js';

export const PHASE = 0;
export const PHASE_SETUP = 0;
export const PHASE_WARMUP = 1;
export const PHASE_MEASURING = 2;
export const PHASE_AFTER = 3;

/** Records put in Produce requests written to a socket. */
export const K_SENT = 0;
/** Records the broker acknowledged without error (acks=0: written). */
export const K_ACKED = 1;
/** Records in partitions the broker answered with an error. */
export const K_FAILED = 2;
/** Value bytes acknowledged (produce) or consumed (consume). */
export const K_BYTES = 3;
/** Records consumed (data records of complete batches). */
export const K_CONSUMED = 4;
/** Produce requests answered (or written, acks=0). */
export const K_REQUESTS = 5;
/** Fetch requests answered. */
export const K_FETCHES = 6;
export const K_FIELDS = 7;

/** One connection of a producer or consumer: a partition leader and the partitions it serves this client. */
export interface Lane {
  host: string;
  port: number;
  partitions: number[];
  /** produce --records: records this lane sends in all (undefined: until stopped). */
  quota?: number;
  /** consume: start offset per partition (same order as partitions). */
  offsets?: number[];
}

export interface KafkaWorkerInit {
  id: number;
  workload: 'produce' | 'consume';
  clientId: string;
  connectTimeoutMs: number;
  topic: string;
  runTag: number;
  /** Producers or consumers of this worker: global index and lanes. */
  clients: Array<{ index: number; lanes: Lane[] }>;
  // produce
  produceVersion: number;
  acks: Acks;
  timeoutMs: number;
  recordSize: number;
  batchSize: number;
  compression: Compression;
  inFlight: number;
  /** Records/s per producer (0: unpaced). */
  ratePerProducer: number;
  totalProducers: number;
  // consume
  fetchVersion: number;
  fetchMinBytes: number;
  fetchMaxWaitMs: number;
  fetchMaxBytes: number;
  ctl: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}

export type ToKafkaWorker = { type: 'connect' } | { type: 'start'; startNs: number } | { type: 'stop' } | { type: 'finish' };

export interface KafkaWorkerResult {
  /** Encoded HDR histograms ('' when empty): produce request → response; consume send time → receipt. */
  ackLatency: string;
  latency: string;
  /** Partition errors answered to Produce/Fetch, by Kafka error name (records for Produce). */
  errors: Record<string, number>;
  /** consume: sequence checks over stamped records. */
  duplicates: number;
  outOfOrder: number;
  holes: number;
  /** consume: records without a plausible robust-bench stamp. */
  unstamped: number;
  /** Monotonic ns of the first send / fetch, and of the last ack / record (0: none). */
  firstNs: number;
  lastNs: number;
  warnings: string[];
}

export type FromKafkaWorker =
  | { type: 'ready' }
  | { type: 'connected' }
  | { type: 'stopped' }
  | { type: 'done' }
  | { type: 'fatal'; message: string }
  | { type: 'result'; result: KafkaWorkerResult }
  | { type: 'closed' };
