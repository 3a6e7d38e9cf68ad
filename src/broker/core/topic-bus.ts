/**
 * Where protocols meet on a topic (DESIGN §3: protocols meet only in
 * broker/core and storage). A topic of the same name is the same topic for
 * every protocol: a record produced over Kafka reaches live MQTT subscribers
 * of that topic, and an MQTT publish to a topic that exists as a stored topic
 * is appended to it for Kafka (and later RocketMQ) consumers.
 *
 * Each protocol attaches a sink; publishing from one protocol hands the
 * records to every other protocol's sink that says it is interested.
 */

export interface BusRecord {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<{ key: string; value: Buffer }>;
  timestamp: number;
}

/** What a protocol on stored topics (Kafka, RocketMQ) publishes through to the others' live subscribers. */
export interface BusPort {
  /** Whether any other protocol has a live subscriber for this topic (cheap; checked per send). */
  interested(topic: string): boolean;
  /** Called after records were appended; delivers to other protocols' live subscribers. */
  published(records: BusRecord[]): void;
}

export interface BusSink {
  /** Cheap: asked on every publish of the other protocols. */
  interested(topic: string): boolean;
  deliver(records: BusRecord[]): void;
}

export class TopicBus {
  private readonly sinks = new Map<string, BusSink>();

  attach(protocol: string, sink: BusSink): void {
    this.sinks.set(protocol, sink);
  }

  /** Whether a protocol other than `from` wants records of this topic. */
  interested(from: string, topic: string): boolean {
    for (const [name, sink] of this.sinks) if (name !== from && sink.interested(topic)) return true;
    return false;
  }

  publish(from: string, records: BusRecord[]): void {
    if (records.length === 0) return;
    const topic = records[0]!.topic;
    for (const [name, sink] of this.sinks) {
      if (name !== from && sink.interested(topic)) sink.deliver(records);
    }
  }
}
