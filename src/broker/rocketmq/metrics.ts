/**
 * RocketMQ metrics (names robust_rocketmq_*): requests per RPC and answered
 * status code, request latency per RPC, messages sent and delivered per topic,
 * redeliveries, acks, dead letters per group, and — read when scraped — the
 * connected clients, in-flight messages, consumer lag per group and topic,
 * delay messages waiting and transactions open.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A consumer group's lag on a topic: messages between its offset and the queue ends, summed over the queues this broker serves. */
export interface RocketmqLagSample {
  group: string;
  topic: string;
  lag: number;
}

/** RPCs answered in well under a millisecond up to long polls of tens of seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class RocketmqMetrics {
  private readonly requests: Counter<'rpc' | 'code'>;
  private readonly messagesIn: Counter<'topic'>;
  private readonly messagesOut: Counter<'topic'>;
  private readonly redeliveries: Counter<'topic'>;
  private readonly acks: Counter<'topic'>;
  private readonly deadLetters: Counter<'group'>;
  private pendingSource: () => { timers: number; transactions: number } = () => ({ timers: 0, transactions: 0 });
  private readonly requestSeconds: Histogram<'rpc'>;
  private lagSource: () => Promise<RocketmqLagSample[]> = async () => [];
  private clientSource: () => Map<string, number> = () => new Map();
  private inflightSource: () => number = () => 0;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.requests = new Counter({ name: 'robust_rocketmq_requests_total', help: 'RocketMQ gRPC requests handled, by RPC and answered status code', labelNames: ['rpc', 'code'] as const, registers });
    this.messagesIn = new Counter({ name: 'robust_rocketmq_messages_in_total', help: 'Messages sent by RocketMQ producers, by topic', labelNames: ['topic'] as const, registers });
    this.messagesOut = new Counter({ name: 'robust_rocketmq_messages_out_total', help: 'Message deliveries to RocketMQ consumers (redeliveries included), by topic', labelNames: ['topic'] as const, registers });
    this.redeliveries = new Counter({ name: 'robust_rocketmq_redeliveries_total', help: 'Deliveries of messages that were delivered before and not acked in time, by topic', labelNames: ['topic'] as const, registers });
    this.acks = new Counter({ name: 'robust_rocketmq_acks_total', help: 'Messages acked by RocketMQ consumers, by topic', labelNames: ['topic'] as const, registers });
    this.deadLetters = new Counter({ name: 'robust_rocketmq_dead_letters_total', help: 'Messages moved to a dead-letter topic (%DLQ%group), by consumer group', labelNames: ['group'] as const, registers });
    this.requestSeconds = new Histogram({
      name: 'robust_rocketmq_request_duration_seconds',
      help: 'Time to answer a RocketMQ gRPC request (a long-polling receive or pull included), by RPC',
      labelNames: ['rpc'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const self = this;
    new Gauge({
      name: 'robust_rocketmq_consumer_lag',
      help: 'Messages a RocketMQ consumer group has not consumed yet, by group and topic (queues this broker serves)',
      labelNames: ['group', 'topic'] as const,
      registers,
      async collect() {
        this.reset();
        for (const s of await self.lagSource()) this.set({ group: s.group, topic: s.topic }, s.lag);
      },
    });
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
      name: 'robust_rocketmq_delayed_messages',
      help: 'Delay messages of this node waiting for their delivery time',
      registers,
      collect() {
        this.set(self.pendingSource().timers);
      },
    });
    new Gauge({
      name: 'robust_rocketmq_open_transactions',
      help: 'Half messages of this node waiting for their transaction to end',
      registers,
      collect() {
        this.set(self.pendingSource().transactions);
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

  /** A request answered with `code`; `seconds` when the caller timed it. */
  request(rpc: string, code: string, seconds?: number): void {
    this.requests.inc({ rpc, code });
    if (seconds !== undefined) this.requestSeconds.observe({ rpc }, seconds);
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

  deadLettered(group: string): void {
    this.deadLetters.inc({ group });
  }

  setPendingSource(source: () => { timers: number; transactions: number }): void {
    this.pendingSource = source;
  }

  setLagSource(source: () => Promise<RocketmqLagSample[]>): void {
    this.lagSource = source;
  }

  setSources(clients: () => Map<string, number>, inflight: () => number): void {
    this.clientSource = clients;
    this.inflightSource = inflight;
  }
}
