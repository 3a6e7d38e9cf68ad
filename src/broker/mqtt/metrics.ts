import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** MQTT broker metrics (names robust_mqtt_*). One per node registry; tests get a private one. */
export class MqttMetrics {
  readonly connects: Counter<'transport' | 'result'>;
  readonly disconnects: Counter<'reason'>;
  readonly packetsIn: Counter<'type'>;
  readonly packetsOut: Counter<'type'>;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly messagesIn: Counter<'qos'>;
  readonly messagesOut: Counter<'qos'>;
  readonly dropped: Counter<'reason'>;
  readonly deliveryLatency: Histogram;
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
    this.packetsIn = new Counter({ name: 'robust_mqtt_packets_received_total', help: 'MQTT packets received by type', labelNames: ['type'] as const, registers });
    this.packetsOut = new Counter({ name: 'robust_mqtt_packets_sent_total', help: 'MQTT packets sent by type', labelNames: ['type'] as const, registers });
    this.bytesIn = new Counter({ name: 'robust_mqtt_bytes_received_total', help: 'Bytes received from MQTT clients', registers });
    this.bytesOut = new Counter({ name: 'robust_mqtt_bytes_sent_total', help: 'Bytes sent to MQTT clients', registers });
    this.messagesIn = new Counter({ name: 'robust_mqtt_messages_received_total', help: 'PUBLISH messages received from clients, by QoS', labelNames: ['qos'] as const, registers });
    this.messagesOut = new Counter({ name: 'robust_mqtt_messages_sent_total', help: 'PUBLISH messages sent to clients, by QoS', labelNames: ['qos'] as const, registers });
    this.dropped = new Counter({
      name: 'robust_mqtt_messages_dropped_total',
      help: 'Messages not delivered, by reason (queue_full, slow_client_qos0, expired, offline_qos0, too_large, not_authorized, no_subscribers)',
      labelNames: ['reason'] as const,
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: 'robust_mqtt_delivery_seconds',
      help: 'Time from receiving a PUBLISH to writing it to a subscriber',
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

  reportFrom(sources: MqttMetrics['sources']): void {
    this.sources = sources;
  }
}
