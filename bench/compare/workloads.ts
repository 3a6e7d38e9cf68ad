/** The comparison's workloads (issue 6) and the robust-bench command line of each. */

export interface WorkloadDef {
  id: number;
  /** Heading in the report. */
  title: string;
  /** Label under a chart panel. */
  short: string;
  /** pubsub/conn: `robust-bench mqtt`; kafka: `robust-bench kafka produce` (our broker only: no Kafka peer is installed). */
  mode: 'pubsub' | 'conn' | 'kafka';
  qos: 0 | 1;
  publishers: number;
  subscribers: number;
  /** Payload (Kafka: record value) bytes. */
  size: number;
  /** Target publish rate over all publishers, msg/s; 0 = as fast as flow control allows. */
  rate: number;
  /** Publish topic; %i is the publisher's index. */
  topic: string;
  /** Subscription filter (defaults to topic). */
  subTopic?: string;
  /** Idle connections to open and hold (mode 'conn'). */
  connections?: number;
}

export const PAYLOAD_BYTES = 100;

/** Brokers that can run a workload (Kafka: ours only). */
export function runsOn(w: WorkloadDef, broker: string): boolean {
  return w.mode !== 'kafka' || broker === 'robust';
}

/** The workloads; `connections` is the idle-connection count of workload 6. */
export function workloads(connections: number): WorkloadDef[] {
  const base = { size: PAYLOAD_BYTES, mode: 'pubsub' as const };
  return [
    { ...base, id: 1, title: 'QoS 0, 1 publisher → 1 subscriber, 100 B, max rate', short: '1: QoS 0 1→1', qos: 0, publishers: 1, subscribers: 1, rate: 0, topic: 'bench/w1' },
    { ...base, id: 2, title: 'QoS 1, 1 publisher → 1 subscriber, 100 B, max rate', short: '2: QoS 1 1→1', qos: 1, publishers: 1, subscribers: 1, rate: 0, topic: 'bench/w2' },
    { ...base, id: 3, title: 'Fan-out: 1 publisher → 100 subscribers, QoS 0, 100 B, max rate', short: '3: fan-out 1→100', qos: 0, publishers: 1, subscribers: 100, rate: 0, topic: 'bench/w3' },
    {
      ...base,
      id: 4,
      title: 'Fan-in: 100 publishers → 1 subscriber, QoS 1, 100 B, max rate',
      short: '4: fan-in 100→1',
      qos: 1,
      publishers: 100,
      subscribers: 1,
      rate: 0,
      topic: 'bench/w4/%i',
      subTopic: 'bench/w4/+',
    },
    { ...base, id: 5, title: 'Fixed rate: 10,000 msg/s, QoS 1, 1 publisher → 1 subscriber, 100 B', short: '5: 10k/s QoS 1', qos: 1, publishers: 1, subscribers: 1, rate: 10_000, topic: 'bench/w5' },
    {
      id: 6,
      title: `${connections.toLocaleString('en-US')} idle connections`,
      short: `6: ${connections >= 1000 ? `${Math.round(connections / 1000)}k` : connections} idle`,
      mode: 'conn',
      qos: 0,
      publishers: 0,
      subscribers: 0,
      size: 0,
      rate: 0,
      topic: 'bench/w6/%i',
      connections,
    },
    { id: 7, title: 'Kafka produce: 1 producer, 100 B records, acks=1, max rate (robust only)', short: '7: Kafka 100 B', mode: 'kafka', qos: 0, publishers: 1, subscribers: 0, size: 100, rate: 0, topic: 'bench-w7' },
    { id: 8, title: 'Kafka produce: 1 producer, 1 KiB records, acks=1, max rate (robust only)', short: '8: Kafka 1 KiB', mode: 'kafka', qos: 0, publishers: 1, subscribers: 0, size: 1024, rate: 0, topic: 'bench-w8' },
  ];
}

export interface LoadgenOptions {
  host: string;
  /** MQTT port (Kafka workloads: the Kafka listener's). */
  port: number;
  duration_s: number;
  warmup_s: number;
  /** Max unacknowledged QoS 1 publishes per publisher. */
  window: number;
  workers: number;
  mqttVersion: 4 | 5;
  /** Connections opened per second in workload 6 (a target; the report gives the rate achieved). */
  connectRate: number;
  brokerPid: number;
}

/** The arguments after `robust-bench` for one workload. */
export function loadgenArgs(w: WorkloadDef, o: LoadgenOptions): string[] {
  if (w.mode === 'kafka') {
    // One producer, one partition (the topic is created by robust-bench), robust-bench's default batch and in-flight.
    return ['kafka', 'produce', '--brokers', `${o.host}:${o.port}`, '--topic', w.topic, '--partitions', '1', '--record-size', String(w.size), '--acks', '1', '--producers', String(w.publishers), '--duration', String(o.duration_s), '--warmup', String(o.warmup_s), '--broker-pid', String(o.brokerPid), '--output', 'json'];
  }
  const common = ['--host', o.host, '--port', String(o.port), '--mqtt-version', String(o.mqttVersion), '--workers', String(o.workers), '--broker-pid', String(o.brokerPid), '--output', 'json'];
  if (w.mode === 'conn') {
    return ['mqtt', 'conn', ...common, '--clients', String(w.connections ?? 0), '--connect-rate', String(o.connectRate), '--duration', String(o.duration_s)];
  }
  return [
    'mqtt',
    'pubsub',
    ...common,
    '--clients',
    String(w.publishers),
    '--subscribers',
    String(w.subscribers),
    '--topic',
    w.topic,
    ...(w.subTopic !== undefined ? ['--sub-topic', w.subTopic] : []),
    '--qos',
    String(w.qos),
    '--size',
    String(w.size),
    '--rate',
    String(w.rate),
    '--duration',
    String(o.duration_s),
    '--warmup',
    String(o.warmup_s),
    '--window',
    String(o.window),
  ];
}

/** Parses "--workloads 1,2,5" / "1-3,6" into sorted unique ids among the known ones. */
export function parseWorkloadList(s: string, known: readonly number[]): number[] {
  const ids = new Set<number>();
  for (const part of s.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`--workloads: cannot read "${part}" (expected e.g. 1,2,5 or 1-3)`);
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) {
      if (!known.includes(i)) throw new Error(`--workloads: no workload ${i} (known: ${known.join(', ')})`);
      ids.add(i);
    }
  }
  if (ids.size === 0) throw new Error('--workloads: empty list');
  return [...ids].sort((x, y) => x - y);
}
