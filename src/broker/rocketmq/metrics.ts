/**
 * RocketMQ metrics (names robust_rocketmq_*): requests per RPC and answered
 * status code, messages sent and delivered per topic, redeliveries, acks, and
 * the connected clients and in-flight messages (read when scraped).
 */
import { Counter, Gauge, Registry } from 'prom-client';

export class RocketmqMetrics {
  private readonly requests: Counter<'rpc' | 'code'>;
  private readonly messagesIn: Counter<'topic'>;
  private readonly messagesOut: Counter<'topic'>;
  private readonly redeliveries: Counter<'topic'>;
  private readonly acks: Counter<'topic'>;
  private clientSource: () => Map<string, number> = () => new Map();
  private inflightSource: () => number = () => 0;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.requests = new Counter({ name: 'robust_rocketmq_requests_total', help: 'RocketMQ gRPC requests handled, by RPC and answered status code', labelNames: ['rpc', 'code'] as const, registers });
    this.messagesIn = new Counter({ name: 'robust_rocketmq_messages_in_total', help: 'Messages sent by RocketMQ producers, by topic', labelNames: ['topic'] as const, registers });
    this.messagesOut = new Counter({ name: 'robust_rocketmq_messages_out_total', help: 'Message deliveries to RocketMQ consumers (redeliveries included), by topic', labelNames: ['topic'] as const, registers });
    this.redeliveries = new Counter({ name: 'robust_rocketmq_redeliveries_total', help: 'Deliveries of messages that were delivered before and not acked in time, by topic', labelNames: ['topic'] as const, registers });
    this.acks = new Counter({ name: 'robust_rocketmq_acks_total', help: 'Messages acked by RocketMQ consumers, by topic', labelNames: ['topic'] as const, registers });
    const self = this;
    new Gauge({
      name: 'robust_rocketmq_clients',
      help: 'RocketMQ clients known to this broker, by client type',
      labelNames: ['type'] as const,
      registers,
      collect() {
        this.reset();
        for (const [type, n] of self.clientSource()) this.set({ type }, n);
      },
    });
    new Gauge({
      name: 'robust_rocketmq_inflight_messages',
      help: 'Messages delivered to RocketMQ consumers and neither acked nor past their invisible time',
      registers,
      collect() {
        this.set(self.inflightSource());
      },
    });
  }

  request(rpc: string, code: string): void {
    this.requests.inc({ rpc, code });
  }

  sent(topic: string, n: number): void {
    this.messagesIn.inc({ topic }, n);
  }

  delivered(topic: string, n: number, redelivered: number): void {
    this.messagesOut.inc({ topic }, n);
    if (redelivered > 0) this.redeliveries.inc({ topic }, redelivered);
  }

  acked(topic: string, n: number): void {
    this.acks.inc({ topic }, n);
  }

  setSources(clients: () => Map<string, number>, inflight: () => number): void {
    this.clientSource = clients;
    this.inflightSource = inflight;
  }
}
