/**
 * What the main thread and the worker threads of robust-bench tell each other.
 *
 * Counters live in shared memory, so that the main thread reads progress and the
 * measured-window boundaries without a message round trip:
 *  - `ctl` (Int32Array): [PHASE] — set by the main thread, read by workers (latency is
 *    recorded only while it is MEASURING);
 *  - `stats` (Float64Array): STAT_FIELDS counters per worker, each written by its worker only;
 *  - `pubSent` (Float64Array): messages sent per publisher (global index), for the loss count.
 */
import type { Endpoint } from './client.js';
import type { ProtocolLevel } from '../broker/mqtt/codec/index.js';

export const PHASE = 0;
export const PHASE_SETUP = 0;
export const PHASE_WARMUP = 1;
export const PHASE_MEASURING = 2;
export const PHASE_AFTER = 3;

export const SENT = 0;
export const ACKED = 1;
export const RECEIVED = 2;
/** Received minus duplicates. */
export const UNIQUE = 3;
export const ATTEMPTED = 4;
export const CONNECTED = 5;
export const FAILED = 6;
/** Connections currently open. */
export const OPEN = 7;
/** Received messages that carried a robust-bench stamp. */
export const STAMPED = 8;
export const STAT_FIELDS = 9;

export interface WorkerInit {
  id: number;
  workload: 'conn' | 'pub' | 'sub' | 'pubsub';
  endpoint: Endpoint;
  level: ProtocolLevel;
  username?: string;
  password?: string;
  keepAliveS: number;
  connectTimeoutMs: number;
  /** Connections opened per second by this worker. */
  connectRate: number;
  clientPrefix: string;
  runTag: number;
  qos: 0 | 1 | 2;
  size: number;
  window: number;
  /** msg/s per publisher; 0 = unpaced. */
  ratePerPublisher: number;
  totalPublishers: number;
  publishers: Array<{ index: number; topic: string }>;
  subscribers: Array<{ index: number; filter: string }>;
  /** conn workload: connection indices first, first + stride, ... (count of them). */
  conns: { first: number; stride: number; count: number };
  ctl: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  pubSent: SharedArrayBuffer;
}

export type ToWorker =
  | { type: 'subscribe' }
  | { type: 'connect-publishers' }
  | { type: 'open-connections' }
  | { type: 'start'; startNs: number }
  | { type: 'stop' }
  | { type: 'finish' };

export interface WorkerResult {
  /** Encoded HDR histograms (empty string: none). */
  latency: string;
  ackLatency: string;
  duplicates: number;
  outOfOrder: number;
  /** Sequence numbers missing between the first and last message seen per publisher. */
  holes: number;
  /** Received messages without a plausible stamp, or stamped by another run (pubsub). */
  foreign: number;
  /** Publishes the broker refused (PUBACK/PUBREC reason >= 0x80), by reason. */
  rejected: Record<string, number>;
  /** Connection attempts that failed, by reason. */
  failures: Record<string, number>;
  /** Connections the broker closed after CONNACK (conn workload). */
  dropped: number;
  /** Monotonic ns of the first connection attempt and of the last CONNACK (0: none). */
  firstAttemptNs: number;
  lastConnackNs: number;
  warnings: string[];
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'subscribed' }
  | { type: 'publishers-connected' }
  | { type: 'connections-done' }
  | { type: 'stopped' }
  | { type: 'fatal'; message: string; emfile?: boolean }
  | { type: 'result'; result: WorkerResult }
  | { type: 'closed' };
