/**
 * Command line of `robust-bench mqtt <workload>`: parsing and validation (pure: no I/O
 * except reading the --ca file, which the caller does). Every problem is a UsageError
 * with one line naming the option.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';
import { parseKafkaCommand, type KafkaBenchOptions } from './kafka/options.js';
import { HEADER_BYTES } from './payload.js';
import { filterProblem, hasWildcard } from './topic.js';

export type Workload = 'conn' | 'pub' | 'sub' | 'pubsub';
export const WORKLOADS: readonly Workload[] = ['conn', 'pub', 'sub', 'pubsub'];
export type MqttVersion = 3 | 4 | 5;
export type OutputFormat = 'table' | 'json';

export interface BenchOptions {
  workload: Workload;
  host: string;
  port: number;
  /** conn: connections. pub/pubsub: publishers. sub: subscribers. */
  clients: number;
  publishers: number;
  subscribers: number;
  topic: string;
  /** Filter template the subscribers subscribe to (default: `topic`). */
  subTopic: string;
  qos: 0 | 1 | 2;
  size: number;
  /** Total publish rate over all publishers, msg/s; 0 = as fast as flow control allows. */
  rate: number;
  durationS: number;
  warmupS: number;
  window: number;
  mqttVersion: MqttVersion;
  username?: string;
  password?: string;
  tls: boolean;
  ca?: string;
  insecure: boolean;
  ws: boolean;
  wsPath: string;
  /** undefined: min(cores, needed). */
  workers?: number;
  output: OutputFormat;
  connectRate: number;
  connectTimeoutS: number;
  keepAliveS: number;
  brokerPid?: number;
  /** Seconds to wait, after publishing stops, for messages in flight; ends early when all arrived. */
  drainS: number;
}

export const USAGE = `usage: robust-bench mqtt <workload> [options]
       robust-bench kafka <produce|consume> [options]   (robust-bench kafka --help)

workloads:
  conn      open --clients connections at --connect-rate and hold them for --duration;
            reports the connect rate, failures by reason and (--broker-pid) broker RSS per connection
  pub       --clients publishers; reports msg/s sent and (QoS 1/2) publish-ack latency
  sub       --clients subscribers; reports msg/s received (+ latency of robust-bench payloads)
  pubsub    publishers and subscribers in one run: msg/s sent and received, loss, duplicates,
            end-to-end latency p50/p95/p99/p99.9/max (and publish-ack latency for QoS 1/2)

options:
  --host HOST            broker host (127.0.0.1)
  --port PORT            broker port (1883; 8883 with --tls, 8083 with --ws, 8084 with both)
  --clients N            conn: connections (1000); pub, pubsub: publishers (1); sub: subscribers (1)
  --subscribers N        pubsub: subscribers (1)
  --topic T              topic to publish to; %i is the client index (bench/%i)
  --sub-topic F          filter subscribers subscribe to, %i expanded too (default: --topic),
                         e.g. 'bench/#' for fan-in, '$share/g/bench/#' for a shared subscription
  --qos 0|1|2            publish and subscription QoS (0)
  --size BYTES           payload size, at least ${HEADER_BYTES} (send time, publisher, sequence) (100)
  --rate MSG_PER_S       total publish rate over all publishers; 0 = as fast as flow control allows (0)
  --duration SECONDS     measured time (10)
  --warmup SECONDS       load before the measured time, excluded from the figures (1)
  --window N             max unacknowledged QoS 1/2 publishes per publisher (64)
  --mqtt-version 3|4|5   MQTT 3.1, 3.1.1 or 5.0 (4)
  --username U, --password P
  --tls                  TLS (--ca FILE to trust a CA, --insecure to skip verification)
  --ws                   WebSocket (path --ws-path, /mqtt); with --tls: secure WebSocket
  --workers N            worker threads sharing the load (min(cores, clients))
  --connect-rate N       connections opened per second (1000)
  --connect-timeout S    time allowed for TCP/TLS/WebSocket setup and CONNACK (10)
  --keepalive S          MQTT keep alive; robust-bench pings every half of it (60)
  --drain SECONDS        after the measured time, wait up to this long for messages in flight (5)
  --broker-pid PID       sample this process (Linux /proc): CPU µs per message, CPU %, RSS,
                         and for conn RSS per connection
  --output table|json    final report format (table); json prints one object (docs/bench.md)
  -h, --help             this help
  -v, --version          print the version

examples:
  robust-bench mqtt pubsub --qos 1 --duration 10
  robust-bench mqtt pubsub --clients 100 --topic 'bench/%i' --sub-topic 'bench/#' --qos 1
  robust-bench mqtt pubsub --subscribers 100 --topic bench/fan --qos 0
  robust-bench mqtt pubsub --qos 1 --rate 10000 --duration 30
  robust-bench mqtt conn --clients 20000 --connect-rate 2000 --broker-pid $(pgrep -f robust-server)
`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  clients: { type: 'string' },
  subscribers: { type: 'string' },
  topic: { type: 'string' },
  'sub-topic': { type: 'string' },
  qos: { type: 'string' },
  size: { type: 'string' },
  rate: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  window: { type: 'string' },
  'mqtt-version': { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  insecure: { type: 'boolean' },
  ws: { type: 'boolean' },
  'ws-path': { type: 'string' },
  workers: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'connect-rate': { type: 'string' },
  'connect-timeout': { type: 'string' },
  keepalive: { type: 'string' },
  drain: { type: 'string' },
  'broker-pid': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type ParsedCommand = { kind: 'help'; protocol?: 'kafka' } | { kind: 'version' } | { kind: 'run'; options: BenchOptions } | { kind: 'run-kafka'; options: KafkaBenchOptions };

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
  /** Strictly greater than min. */
  exclusiveMin?: boolean;
}

export function parseNumber(name: string, raw: string, rule: NumberRule = {}): number {
  const s = raw.trim();
  // Number('') is 0 and Number('0x10') is 16: accept plain decimal notation only (with optional exponent, _ separators).
  if (!/^[+-]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new UsageError(`--${name}: "${raw}" is not a number`);
  const n = Number(s.replace(/_/g, ''));
  if (!Number.isFinite(n)) throw new UsageError(`--${name}: "${raw}" is not a number`);
  if (rule.integer && !Number.isInteger(n)) throw new UsageError(`--${name}: "${raw}" is not a whole number`);
  if (rule.min !== undefined && (rule.exclusiveMin ? n <= rule.min : n < rule.min)) throw new UsageError(`--${name} must be ${rule.exclusiveMin ? 'greater than' : 'at least'} ${rule.min}, got ${raw}`);
  if (rule.max !== undefined && n > rule.max) throw new UsageError(`--${name} must be at most ${rule.max}, got ${raw}`);
  return n;
}

/** A node:util parseArgs failure as the one-line usage error robust-bench prints. */
export function parseArgsError(err: unknown): UsageError {
  const e = err as { code?: string; message?: string };
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${quoted ?? ''}`.trim());
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const opt = /Option '(?:-\w, )?(--[\w-]+)/.exec(e.message ?? '')?.[1] ?? quoted ?? 'an option';
      return new UsageError(/does not take an argument/.test(e.message ?? '') ? `${opt} takes no value` : `${opt} needs a value`);
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument ${quoted ?? ''}`.trim());
    default:
      return new UsageError(e.message ?? String(err));
  }
}

/** Parses `robust-bench` argv (without node and script). */
export function parseCommand(argv: readonly string[]): ParsedCommand {
  // The protocol picks the option set: `kafka` has its own (src/loadgen/kafka/options.ts).
  const proto = argv.findIndex((a) => a === 'kafka' || a === 'mqtt');
  if (proto >= 0 && argv[proto] === 'kafka') {
    const k = parseKafkaCommand([...argv.slice(0, proto), ...argv.slice(proto + 1)]);
    return k.kind === 'help' ? { kind: 'help', protocol: 'kafka' } : k;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw parseArgsError(err);
  }
  const v = parsed.values;
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const [protocol, workload, ...extra] = parsed.positionals;
  if (protocol === undefined) throw new UsageError('missing protocol and workload (e.g. robust-bench mqtt pubsub)');
  if (protocol !== 'mqtt') throw new UsageError(`unknown protocol "${protocol}" (mqtt, kafka)`);
  if (workload === undefined) throw new UsageError(`missing workload: ${WORKLOADS.join(', ')}`);
  if (!(WORKLOADS as readonly string[]).includes(workload)) throw new UsageError(`unknown workload "${workload}" (${WORKLOADS.join(', ')})`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const w = workload as Workload;

  const num = (name: keyof typeof OPTIONS, def: number, rule: NumberRule): number => {
    const raw = v[name];
    return raw === undefined ? def : parseNumber(name, raw as string, rule);
  };

  const tls = v.tls === true;
  const ws = v.ws === true;
  const defaultPort = ws ? (tls ? 8084 : 8083) : tls ? 8883 : 1883;
  const port = num('port', defaultPort, { integer: true, min: 1, max: 65535 });
  const host = v.host ?? '127.0.0.1';
  if (host === '') throw new UsageError('--host is empty');

  const qosN = num('qos', 0, { integer: true, min: 0, max: 2 });
  const qos = qosN as 0 | 1 | 2;

  let mqttVersion: MqttVersion = 4;
  if (v['mqtt-version'] !== undefined) {
    const raw = v['mqtt-version'].trim();
    const map: Record<string, MqttVersion> = { '3': 3, '3.1': 3, '4': 4, '3.1.1': 4, '5': 5, '5.0': 5 };
    const m = map[raw];
    if (m === undefined) throw new UsageError(`--mqtt-version must be 3 (3.1), 4 (3.1.1) or 5 (5.0), got "${raw}"`);
    mqttVersion = m;
  }

  const publishes = w === 'pub' || w === 'pubsub';
  const subscribes = w === 'sub' || w === 'pubsub';
  const clients = num('clients', w === 'conn' ? 1000 : 1, { integer: true, min: 1, max: 10_000_000 });
  if (v.subscribers !== undefined && !subscribes) throw new UsageError(`--subscribers applies to sub and pubsub, not ${w}`);
  if (v['sub-topic'] !== undefined && !subscribes) throw new UsageError(`--sub-topic applies to sub and pubsub, not ${w}`);
  let publishers = 0;
  let subscribers = 0;
  if (w === 'pub') publishers = clients;
  else if (w === 'pubsub') {
    publishers = clients;
    subscribers = num('subscribers', 1, { integer: true, min: 1, max: 10_000_000 });
  } else if (w === 'sub') {
    subscribers = v.subscribers !== undefined ? num('subscribers', 1, { integer: true, min: 1, max: 10_000_000 }) : clients;
    if (v.subscribers !== undefined && v.clients !== undefined && subscribers !== clients) throw new UsageError('sub: give the number of subscribers with --clients or --subscribers, not both');
  }
  if (publishers > 65536) throw new UsageError(`at most 65536 publishers per run (payloads carry a 16-bit publisher index), got ${publishers}`);

  const topic = v.topic ?? 'bench/%i';
  if (topic === '') throw new UsageError('--topic is empty');
  if (publishes && hasWildcard(topic)) throw new UsageError(`--topic "${topic}" has a wildcard, but publishers publish to it; give the subscribers' filter with --sub-topic`);
  if (topic.startsWith('$share/') && publishes) throw new UsageError(`--topic "${topic}": a shared subscription is a filter; use --sub-topic`);
  const subTopic = v['sub-topic'] ?? topic;
  if (subscribes) {
    const problem = filterProblem(subTopic.startsWith('$share/') ? subTopic.split('/').slice(2).join('/') : subTopic);
    if (problem !== undefined) throw new UsageError(`${v['sub-topic'] !== undefined ? '--sub-topic' : '--topic'} "${subTopic}" ${problem}`);
  }

  const size = num('size', 100, { integer: true, min: 0, max: 256 * 1024 * 1024 - 1024 });
  if (publishes && size < HEADER_BYTES) {
    throw new UsageError(`--size ${size} is too small: payloads carry a ${HEADER_BYTES}-byte header (8-byte send time, publisher, 4-byte sequence); use --size ${HEADER_BYTES} or more`);
  }
  const rate = num('rate', 0, { min: 0 });
  const durationS = num('duration', 10, { min: 0, exclusiveMin: true, max: 7 * 24 * 3600 });
  const warmupS = num('warmup', 1, { min: 0, max: 24 * 3600 });
  const window = num('window', 64, { integer: true, min: 1, max: 65535 });
  const workers = v.workers === undefined ? undefined : num('workers', 1, { integer: true, min: 1, max: 256 });
  const output = v.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw new UsageError(`--output must be table or json, got "${output}"`);
  const connectRate = num('connect-rate', 1000, { min: 0, exclusiveMin: true });
  const connectTimeoutS = num('connect-timeout', 10, { min: 0, exclusiveMin: true, max: 3600 });
  const keepAliveS = num('keepalive', 60, { integer: true, min: 0, max: 65535 });
  const drainS = num('drain', 5, { min: 0, max: 3600 });
  const brokerPid = v['broker-pid'] === undefined ? undefined : num('broker-pid', 0, { integer: true, min: 1 });
  if (v.ca !== undefined && !tls) throw new UsageError('--ca needs --tls');
  if (v.insecure && !tls) throw new UsageError('--insecure needs --tls');
  if (v['ws-path'] !== undefined && !ws) throw new UsageError('--ws-path needs --ws');
  const wsPath = v['ws-path'] ?? '/mqtt';
  if (!wsPath.startsWith('/')) throw new UsageError(`--ws-path must start with "/", got "${wsPath}"`);
  if (v.password !== undefined && v.username === undefined && mqttVersion !== 5) throw new UsageError('--password needs --username with MQTT 3.1/3.1.1');

  const options: BenchOptions = {
    workload: w,
    host,
    port,
    clients,
    publishers,
    subscribers,
    topic,
    subTopic,
    qos,
    size,
    rate,
    durationS,
    warmupS,
    window,
    mqttVersion,
    tls,
    insecure: v.insecure === true,
    ws,
    wsPath,
    output,
    connectRate,
    connectTimeoutS,
    keepAliveS,
    drainS,
  };
  if (v.username !== undefined) options.username = v.username;
  if (v.password !== undefined) options.password = v.password;
  if (v.ca !== undefined) options.ca = v.ca;
  if (workers !== undefined) options.workers = workers;
  if (brokerPid !== undefined) options.brokerPid = brokerPid;
  return { kind: 'run', options };
}

/** Worker threads to use: --workers, else min(cores, what the workload can spread over). */
export function workerCount(o: BenchOptions, cores: number): number {
  const needed = o.workload === 'conn' ? Math.ceil(o.clients / 2500) : o.publishers + o.subscribers;
  const cap = Math.max(1, needed);
  if (o.workers !== undefined) return Math.min(o.workers, o.workload === 'conn' ? o.clients : cap);
  return Math.max(1, Math.min(cores, cap));
}
