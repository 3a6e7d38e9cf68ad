import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** MQTT broker metrics (names robust_mqtt_*). One per node registry; tests get a private one. */
/** Plain counters read by prom-client at scrape time: the per-packet cost is one property increment, not a label lookup. */
class HotCounts {
  readonly byKey: Record<string, number> = Object.create(null) as Record<string, number>;
  add(key: string, n = 1): void {
    this.byKey[key] = (this.byKey[key] ?? 0) + n;
  }
}

/** Every this-many deliveries one goes into the latency histogram (a histogram observe costs a bucket search). */
const LATENCY_SAMPLE_EVERY = 8;

/** MQTT broker metrics (names robust_mqtt_*). One per node registry; tests get a private one. */
export class MqttMetrics {
  readonly connects: Counter<'transport' | 'result'>;
  readonly disconnects: Counter<'reason'>;
  readonly deliveryLatency: Histogram;
  readonly dropped: Counter<'reason'>;
  private readonly packetsInCounts = new HotCounts();
  private readonly packetsOutCounts = new HotCounts();
  private readonly messagesInCounts = new HotCounts();
  private readonly messagesOutCounts = new HotCounts();
  private readonly droppedCounts = new HotCounts();
  private bytesInTotal = 0;
  private bytesOutTotal = 0;
  private latencyTick = 0;
  private sources: { connections: () => number; sessions: () => number; subscriptions: () => number; retained: () => number; queued: () => number } = {
    connections: () => 0,
    sessions: () => 0,
    subscriptions: () => 0,
    retained: () => 0,
    queued: () => 0,
  };

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.connects = new Counter({ name: 'robust_mqtt_connects_total', help: 'CONNECT attempts by transport and result (accepted or the refusal reason)', labelNames: ['transport', 'result'] as const, registers });
    this.disconnects = new Counter({ name: 'robust_mqtt_disconnects_total', help: 'Closed MQTT connections by reason', labelNames: ['reason'] as const, registers });
    const fromCounts = (name: string, help: string, label: string, counts: HotCounts) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [k, v] of Object.entries(counts.byKey)) this.inc({ [label]: k }, v);
        },
      });
    fromCounts('robust_mqtt_packets_received_total', 'MQTT packets received by type', 'type', this.packetsInCounts);
    fromCounts('robust_mqtt_packets_sent_total', 'MQTT packets sent by type', 'type', this.packetsOutCounts);
    fromCounts('robust_mqtt_messages_received_total', 'PUBLISH messages received from clients, by QoS', 'qos', this.messagesInCounts);
    fromCounts('robust_mqtt_messages_sent_total', 'PUBLISH messages sent to clients, by QoS', 'qos', this.messagesOutCounts);
    this.dropped = fromCounts(
      'robust_mqtt_messages_dropped_total',
      'Messages not delivered, by reason (queue_full, slow_client_qos0, expired, offline_qos0, too_large, not_authorized, no_subscribers)',
      'reason',
      this.droppedCounts,
    ) as Counter<'reason'>;
    const totals = () => ({ bytesIn: this.bytesInTotal, bytesOut: this.bytesOutTotal });
    new Counter({
      name: 'robust_mqtt_bytes_received_total',
      help: 'Bytes received from MQTT clients',
      registers,
      collect() {
        this.reset();
        this.inc(totals().bytesIn);
      },
    });
    new Counter({
      name: 'robust_mqtt_bytes_sent_total',
      help: 'Bytes sent to MQTT clients',
      registers,
      collect() {
        this.reset();
        this.inc(totals().bytesOut);
      },
    });
    this.deliveryLatency = new Histogram({
      name: 'robust_mqtt_delivery_seconds',
      help: `Time from receiving a PUBLISH to writing it to a subscriber (one delivery in ${LATENCY_SAMPLE_EVERY} sampled)`,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    const src = () => this.sources;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('robust_mqtt_connections', 'Open MQTT connections', () => src().connections());
    gauge('robust_mqtt_sessions', 'MQTT sessions (connected and persistent offline)', () => src().sessions());
    gauge('robust_mqtt_subscriptions', 'MQTT subscriptions', () => src().subscriptions());
    gauge('robust_mqtt_retained_messages', 'Retained messages', () => src().retained());
    gauge('robust_mqtt_session_queue_depth', 'Messages queued or in flight over all sessions', () => src().queued());
  }

  packetIn(type: string): void {
    this.packetsInCounts.add(type);
  }
  packetOut(type: string): void {
    this.packetsOutCounts.add(type);
  }
  bytesIn(n: number): void {
    this.bytesInTotal += n;
  }
  bytesOut(n: number): void {
    this.bytesOutTotal += n;
  }
  messageIn(qos: number): void {
    this.messagesInCounts.add(QOS_KEYS[qos] as string);
  }
  messageOut(qos: number, latencyMs: number): void {
    this.messagesOutCounts.add(QOS_KEYS[qos] as string);
    if (++this.latencyTick === LATENCY_SAMPLE_EVERY) {
      this.latencyTick = 0;
      this.deliveryLatency.observe(latencyMs / 1000);
    }
  }
  drop(reason: string, n = 1): void {
    this.droppedCounts.add(reason, n);
  }
  /** Dropped messages so far for a reason (tests, $SYS). */
  droppedCount(reason: string): number {
    return this.droppedCounts.byKey[reason] ?? 0;
  }

  reportFrom(sources: MqttMetrics['sources']): void {
    this.sources = sources;
  }
}

const QOS_KEYS = ['0', '1', '2'];
