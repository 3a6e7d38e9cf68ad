/**
 * Command line of `robust-bench kafka produce|consume`: parsing and validation (pure).
 * Every problem is a UsageError with one line naming the option.
 */
import { parseArgs } from 'node:util';
import type { Compression } from '../../broker/kafka/records/index.js';
import { UsageError } from '../errors.js';
import { parseArgsError, parseNumber } from '../options.js';
import { HEADER_BYTES } from '../payload.js';

export type KafkaWorkload = 'produce' | 'consume';
export const KAFKA_WORKLOADS: readonly KafkaWorkload[] = ['produce', 'consume'];
export type Acks = 0 | 1 | -1;
export const KAFKA_COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export interface BrokerAddress {
  host: string;
  port: number;
}

export interface KafkaBenchOptions {
  workload: KafkaWorkload;
  /** Bootstrap brokers (the first that answers is asked for metadata). */
  brokers: BrokerAddress[];
  topic: string;
  /** Partitions to create the topic with when it does not exist (undefined: 1, or what the topic has). */
  partitions: number | undefined;
  replicationFactor: number;
  /** produce: records to send over all producers; consume: records to read, then stop. undefined: --duration. */
  records: number | undefined;
  durationS: number;
  warmupS: number;
  /** Value bytes of each record (the first 16 are the robust-bench stamp). */
  recordSize: number;
  /** Records per partition per Produce request. */
  batchSize: number;
  acks: Acks;
  compression: Compression;
  producers: number;
  consumers: number;
  /** Produce requests in flight per connection. */
  inFlight: number;
  /** Total produce rate over all producers, records/s; 0 = as fast as acks allow. */
  rate: number;
  /** consume: where to start. */
  from: 'earliest' | 'latest';
  fetchMinBytes: number;
  fetchMaxWaitMs: number;
  fetchMaxBytes: number;
  /** Produce request timeout given to the broker. */
  timeoutMs: number;
  workers?: number;
  output: 'table' | 'json';
  brokerPid?: number;
  /** After the window (or with --records, when nothing moved): how long to wait for what is in flight. */
  drainS: number;
  connectTimeoutS: number;
  clientId: string;
}

export const KAFKA_USAGE = `usage: robust-bench kafka <produce|consume> [options]

workloads:
  produce   --producers producers send Produce requests (one record batch per partition each,
            --in-flight pipelined per connection); reports records/s, MB/s and request → ack latency
  consume   --consumers consumers Fetch the topic's partitions (split between them, no group);
            reports records/s, MB/s and end-to-end latency from the send time stamped in each value

options:
  --brokers HOST:PORT[,...]  bootstrap brokers (127.0.0.1:9092)
  --topic T              topic (robust-bench)
  --partitions N         partitions to create the topic with when it does not exist (1; CreateTopics)
  --replication-factor N for a created topic (-1: the broker's default)
  --records N            produce: send N records in all, then stop; consume: stop after N records
  --duration SECONDS     measured time when --records is not given (10)
  --warmup SECONDS       load before the measured time, with --duration (1)
  --record-size BYTES    value bytes per record, at least ${HEADER_BYTES} (100)
  --batch-size N         records per partition per Produce request (min(1000, 256 KiB / record))
  --acks 0|1|all         produce acknowledgement (1)
  --compression C        none, gzip, snappy, lz4 or zstd (none)
  --producers N          producers, each with its own connection per partition leader (1)
  --consumers N          consumers, each reading its share of the partitions (1)
  --in-flight N          Produce requests in flight per connection (5)
  --rate RECORDS_PER_S   total produce rate; 0 = as fast as acknowledgements allow (0)
  --from earliest|latest consume: start offset (earliest)
  --fetch-min-bytes N    Fetch min_bytes (1)
  --fetch-max-wait MS    Fetch max_wait_ms (100)
  --fetch-max-bytes N    Fetch max_bytes per request and per partition (16 MiB)
  --request-timeout MS   Produce timeout_ms (30000)
  --workers N            worker threads (min(cores, producers or consumers))
  --drain SECONDS        wait this long for acknowledgements (or, consume --records, for records) (10)
  --connect-timeout S    TCP connect and first answer (10)
  --broker-pid PID       sample that process (Linux /proc): CPU µs per record, CPU %, RSS
  --output table|json    final report format (table)
  -h, --help             this help

examples:
  robust-bench kafka produce --brokers 127.0.0.1:9092 --topic t --partitions 4 --records 1000000
  robust-bench kafka produce --record-size 1024 --acks all --duration 10
  robust-bench kafka consume --topic t --records 1000000
  robust-bench kafka consume --topic t --from latest --duration 30 &
  robust-bench kafka produce --topic t --rate 20000 --duration 30
`;

const OPTIONS = {
  brokers: { type: 'string' },
  topic: { type: 'string' },
  partitions: { type: 'string' },
  'replication-factor': { type: 'string' },
  records: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  'record-size': { type: 'string' },
  'batch-size': { type: 'string' },
  acks: { type: 'string' },
  compression: { type: 'string' },
  producers: { type: 'string' },
  consumers: { type: 'string' },
  'in-flight': { type: 'string' },
  rate: { type: 'string' },
  from: { type: 'string' },
  'fetch-min-bytes': { type: 'string' },
  'fetch-max-wait': { type: 'string' },
  'fetch-max-bytes': { type: 'string' },
  'request-timeout': { type: 'string' },
  workers: { type: 'string' },
  drain: { type: 'string' },
  'connect-timeout': { type: 'string' },
  'broker-pid': { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type ParsedKafkaCommand = { kind: 'help' } | { kind: 'version' } | { kind: 'run-kafka'; options: KafkaBenchOptions };


/** `host:port`, `[v6]:port` or `host` (port 9092). */
export function parseBroker(raw: string): BrokerAddress {
  const s = raw.trim();
  if (s === '') throw new UsageError('--brokers: empty broker address');
  let host = s;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
  } else {
    const colon = s.lastIndexOf(':');
    if (colon >= 0 && s.indexOf(':') === colon) {
      host = s.slice(0, colon);
      portText = s.slice(colon + 1);
    }
  }
  if (host === '') throw new UsageError(`--brokers: no host in "${raw}"`);
  const port = portText === undefined ? 9092 : parseNumber('brokers', portText, { integer: true, min: 1, max: 65535 });
  return { host, port };
}

/** Default records per batch: 1000, fewer for big records (a batch of at most ~256 KiB). */
export function defaultBatchSize(recordSize: number): number {
  return Math.max(1, Math.min(1000, Math.floor((256 * 1024) / (recordSize + 12))));
}

/** Parses the argv after `robust-bench kafka`. */
export function parseKafkaCommand(argv: readonly string[]): ParsedKafkaCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw parseArgsError(err);
  }
  const v = parsed.values;
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const [workload, ...extra] = parsed.positionals;
  if (workload === undefined) throw new UsageError(`missing workload: ${KAFKA_WORKLOADS.join(', ')}`);
  if (!(KAFKA_WORKLOADS as readonly string[]).includes(workload)) throw new UsageError(`unknown kafka workload "${workload}" (${KAFKA_WORKLOADS.join(', ')})`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const w = workload as KafkaWorkload;
  const num = (name: keyof typeof OPTIONS, def: number, rule: Parameters<typeof parseNumber>[2]): number => {
    const raw = v[name];
    return raw === undefined ? def : parseNumber(name, raw as string, rule);
  };
  const produceOnly = (name: keyof typeof OPTIONS) => {
    if (w !== 'produce' && v[name] !== undefined) throw new UsageError(`--${name} applies to produce, not ${w}`);
  };
  const consumeOnly = (name: keyof typeof OPTIONS) => {
    if (w !== 'consume' && v[name] !== undefined) throw new UsageError(`--${name} applies to consume, not ${w}`);
  };
  for (const n of ['batch-size', 'acks', 'compression', 'producers', 'in-flight', 'rate', 'request-timeout', 'record-size'] as const) produceOnly(n);
  for (const n of ['consumers', 'from', 'fetch-min-bytes', 'fetch-max-wait', 'fetch-max-bytes'] as const) consumeOnly(n);

  const brokers = (v.brokers ?? '127.0.0.1:9092').split(',').filter((s) => s.trim() !== '').map(parseBroker);
  if (brokers.length === 0) throw new UsageError('--brokers is empty');
  const topic = v.topic ?? 'robust-bench';
  if (topic === '' || topic.length > 249 || !/^[a-zA-Z0-9._-]+$/.test(topic)) throw new UsageError(`--topic "${topic}" is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)`);
  const partitions = v.partitions === undefined ? undefined : num('partitions', 1, { integer: true, min: 1, max: 10_000 });
  const replicationFactor = num('replication-factor', -1, { integer: true, min: -1, max: 32 });
  if (replicationFactor === 0) throw new UsageError('--replication-factor must be -1 (broker default) or at least 1');
  const records = v.records === undefined ? undefined : num('records', 0, { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER });
  if (records !== undefined && v.duration !== undefined) throw new UsageError('give --records or --duration, not both');
  if (records !== undefined && v.warmup !== undefined) throw new UsageError('--warmup applies with --duration, not --records');
  const durationS = num('duration', 10, { min: 0, exclusiveMin: true, max: 7 * 24 * 3600 });
  const warmupS = records !== undefined ? 0 : num('warmup', 1, { min: 0, max: 24 * 3600 });
  const recordSize = num('record-size', 100, { integer: true, min: 0, max: 64 * 1024 * 1024 });
  if (recordSize < HEADER_BYTES) throw new UsageError(`--record-size ${recordSize} is too small: values carry a ${HEADER_BYTES}-byte stamp (send time, producer, sequence); use ${HEADER_BYTES} or more`);
  const batchSize = num('batch-size', defaultBatchSize(recordSize), { integer: true, min: 1, max: 1_000_000 });
  let acks: Acks = 1;
  if (v.acks !== undefined) {
    const a = v.acks.trim().toLowerCase();
    if (a === '0') acks = 0;
    else if (a === '1') acks = 1;
    else if (a === 'all' || a === '-1') acks = -1;
    else throw new UsageError(`--acks must be 0, 1 or all, got "${v.acks}"`);
  }
  const compression = (v.compression ?? 'none').trim().toLowerCase() as Compression;
  if (!KAFKA_COMPRESSIONS.includes(compression)) throw new UsageError(`--compression must be one of ${KAFKA_COMPRESSIONS.join(', ')}, got "${v.compression}"`);
  const producers = num('producers', 1, { integer: true, min: 1, max: 65536 });
  const consumers = num('consumers', 1, { integer: true, min: 1, max: 10_000 });
  const inFlight = num('in-flight', 5, { integer: true, min: 1, max: 1024 });
  const rate = num('rate', 0, { min: 0 });
  const from = (v.from ?? 'earliest').trim();
  if (from !== 'earliest' && from !== 'latest') throw new UsageError(`--from must be earliest or latest, got "${v.from}"`);
  const fetchMinBytes = num('fetch-min-bytes', 1, { integer: true, min: 0, max: 0x7fffffff });
  const fetchMaxWaitMs = num('fetch-max-wait', 100, { integer: true, min: 0, max: 600_000 });
  const fetchMaxBytes = num('fetch-max-bytes', 16 * 1024 * 1024, { integer: true, min: 1, max: 0x7fffffff });
  const timeoutMs = num('request-timeout', 30_000, { integer: true, min: 1, max: 0x7fffffff });
  const workers = v.workers === undefined ? undefined : num('workers', 1, { integer: true, min: 1, max: 256 });
  const output = v.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw new UsageError(`--output must be table or json, got "${output}"`);
  const drainS = num('drain', 10, { min: 0, max: 3600 });
  const connectTimeoutS = num('connect-timeout', 10, { min: 0, exclusiveMin: true, max: 3600 });
  const brokerPid = v['broker-pid'] === undefined ? undefined : num('broker-pid', 0, { integer: true, min: 1 });

  const options: KafkaBenchOptions = {
    workload: w,
    brokers,
    topic,
    partitions,
    replicationFactor,
    records,
    durationS,
    warmupS,
    recordSize,
    batchSize,
    acks,
    compression,
    producers,
    consumers,
    inFlight,
    rate,
    from,
    fetchMinBytes,
    fetchMaxWaitMs,
    fetchMaxBytes,
    timeoutMs,
    output,
    drainS,
    connectTimeoutS,
    clientId: 'robust-bench',
  };
  if (workers !== undefined) options.workers = workers;
  if (brokerPid !== undefined) options.brokerPid = brokerPid;
  return { kind: 'run-kafka', options };
}

/** Worker threads: --workers, else min(cores, producers or consumers). */
export function kafkaWorkerCount(o: KafkaBenchOptions, cores: number): number {
  const clients = o.workload === 'produce' ? o.producers : o.consumers;
  if (o.workers !== undefined) return Math.min(o.workers, clients);
  return Math.max(1, Math.min(cores, clients));
}
