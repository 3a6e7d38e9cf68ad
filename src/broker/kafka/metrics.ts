/**
 * Kafka metrics (names robust_kafka_*): requests, errors and latency per API,
 * record bytes in and out per topic, connections, and consumer lag per group
 * and partition (computed when scraped).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Counts kept in plain objects and handed to prom-client at scrape time (no label lookup per request). */
class Counts {
  readonly byKey = new Map<string, number>();
  add(key: string, n: number): void {
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + n);
  }
}

export interface LagSample {
  group: string;
  topic: string;
  partition: number;
  lag: number;
}

export class KafkaMetrics {
  readonly requestSeconds: Histogram<'api'>;
  private readonly requests = new Counts();
  private readonly errors = new Counts();
  private readonly bytesIn = new Counts();
  private readonly bytesOut = new Counts();
  private readonly recordsIn = new Counts();
  private connectionsNow = 0;
  private lagSource: () => Promise<LagSample[]> = async () => [];

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    const fromCounts = (name: string, help: string, label: string, counts: Counts) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [k, v] of counts.byKey) this.inc({ [label]: k }, v);
        },
      });
    fromCounts('robust_kafka_requests_total', 'Kafka requests handled, by API', 'api', this.requests);
    fromCounts('robust_kafka_request_errors_total', 'Kafka requests answered with an error code (or that failed), by API', 'api', this.errors);
    fromCounts('robust_kafka_bytes_in_total', 'Record bytes produced, by topic', 'topic', this.bytesIn);
    fromCounts('robust_kafka_bytes_out_total', 'Record bytes fetched, by topic', 'topic', this.bytesOut);
    fromCounts('robust_kafka_records_in_total', 'Records produced, by topic', 'topic', this.recordsIn);
    this.requestSeconds = new Histogram({ name: 'robust_kafka_request_seconds', help: 'Kafka request handling time, by API', labelNames: ['api'] as const, buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers });
    const self = this;
    new Gauge({
      name: 'robust_kafka_connections',
      help: 'Open Kafka client connections',
      registers,
      collect() {
        this.set(self.connectionsNow);
      },
    });
    new Gauge({
      name: 'robust_kafka_consumer_lag',
      help: 'Records between a group committed offset and the partition end, by group, topic and partition',
      labelNames: ['group', 'topic', 'partition'] as const,
      registers,
      async collect() {
        this.reset();
        for (const s of await self.lagSource()) this.set({ group: s.group, topic: s.topic, partition: String(s.partition) }, s.lag);
      },
    });
  }

  request(api: string, seconds: number, failed: boolean): void {
    this.requests.add(api, 1);
    if (failed) this.errors.add(api, 1);
    this.requestSeconds.observe({ api }, seconds);
  }

  /** A request answered normally but carrying an error code somewhere. */
  errorAnswered(api: string): void {
    this.errors.add(api, 1);
  }

  produced(topic: string, records: number, bytes: number): void {
    this.recordsIn.add(topic, records);
    this.bytesIn.add(topic, bytes);
  }

  fetched(topic: string, bytes: number): void {
    this.bytesOut.add(topic, bytes);
  }

  connectionOpened(): void {
    this.connectionsNow++;
  }

  connectionClosed(): void {
    this.connectionsNow--;
  }

  setLagSource(source: () => Promise<LagSample[]>): void {
    this.lagSource = source;
  }
}
