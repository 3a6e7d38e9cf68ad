/**
 * An in-process RocketMQ server over a memory engine and a fake meta port,
 * with a raw gRPC client built from the same protos — for the RPCs the
 * official Node client does not call (the offset-based ones) and for
 * checking answers field by field.
 */
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { RocketmqMetrics } from '../../../src/broker/rocketmq/metrics.js';
import type { RocketmqMetaPort, RocketmqSettings, RocketmqTopic } from '../../../src/broker/rocketmq/ports.js';
import { messagingServiceDefinition } from '../../../src/broker/rocketmq/proto.js';
import { RocketmqServer } from '../../../src/broker/rocketmq/server.js';
import { MemoryEngine } from '../../../src/storage/memory/engine.js';

export type Any = Record<string, any>;

export class FakeMeta implements RocketmqMetaPort {
  readonly nodeId = 1;
  readonly topics = new Map<string, RocketmqTopic>();
  /** group/topic/queue -> offset */
  readonly offsets = new Map<string, number>();
  /** "topic/queue" of queues another broker serves. */
  readonly elsewhere = new Set<string>();
  port = 0;
  private ids = 0;

  constructor(private readonly engine: MemoryEngine) {}

  topic(name: string): RocketmqTopic | undefined {
    return this.topics.get(name);
  }

  async createTopic(name: string, queues: number, config: Record<string, string>): Promise<void> {
    if (this.topics.has(name)) return;
    for (let i = 0; i < queues; i++) await this.engine.createShard({ shard: `${name}-${i}`, topic: name, engine: 'memory' });
    this.topics.set(name, { name, id: ++this.ids, queues, config });
  }

  servedQueues(topic: string): number[] {
    const t = this.topics.get(topic);
    return t ? Array.from({ length: t.queues }, (_, i) => i).filter((q) => !this.elsewhere.has(`${topic}/${q}`)) : [];
  }

  async waitForQueues(): Promise<void> {}

  routeBrokers(topic: string) {
    return this.topics.has(topic) ? [{ nodeId: 1, host: '127.0.0.1', port: this.port }] : [];
  }

  committed(group: string, topic: string, queue: number): number | undefined {
    return this.offsets.get(`${group}/${topic}/${queue}`);
  }

  async commitOffsets(group: string, offsets: Array<{ topic: string; queue: number; offset: number }>): Promise<void> {
    for (const o of offsets) this.offsets.set(`${group}/${o.topic}/${o.queue}`, o.offset);
  }
}

export const settings: RocketmqSettings = {
  autoCreateTopics: false,
  defaultQueues: 2,
  maxBodyBytes: 1024,
  longPollingTimeoutMs: 2000,
  receiveBatchSize: 32,
  minInvisibleMs: 100,
  maxInvisibleMs: 60_000,
  maxInflightPerQueue: 1000,
  consumeFrom: 'first',
  offsetCommitIntervalMs: 50,
};

export interface Harness {
  engine: MemoryEngine;
  meta: FakeMeta;
  server: RocketmqServer;
  registry: Registry;
  /** A unary call; resolves with the response. */
  call(method: string, req: unknown): Promise<Any>;
  /** A server-streaming call; resolves with every response. */
  stream(method: string, req: unknown): Promise<Any[]>;
  send(topic: string, body: string, extra?: Any): Promise<Any>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const engine = new MemoryEngine({ maxBytesPerShard: 1 << 20, retentionMs: -1, retentionBytes: -1, retentionCheckIntervalMs: 0 });
  const meta = new FakeMeta(engine);
  const registry = new Registry();
  const server = new RocketmqServer({ host: '127.0.0.1', port: 0, advertisedHost: '127.0.0.1', meta, storage: () => engine, settings, metrics: new RocketmqMetrics(registry), log: pino({ level: 'silent' }) });
  await server.start();
  meta.port = server.port()!;
  const Ctor = grpc.makeGenericClientConstructor(messagingServiceDefinition(), 'MessagingService');
  const client = new Ctor(`127.0.0.1:${meta.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  const md = (): grpc.Metadata => {
    const m = new grpc.Metadata();
    m.set('x-mq-client-id', 'harness-client');
    return m;
  };
  const call = (method: string, req: unknown): Promise<Any> =>
    new Promise((resolve, reject) => client[method].call(client, req, md(), (err: grpc.ServiceError | null, res: Any) => (err ? reject(err) : resolve(res))));
  const stream = (method: string, req: unknown): Promise<Any[]> =>
    new Promise((resolve, reject) => {
      const out: Any[] = [];
      const s = client[method](req, md()) as grpc.ClientReadableStream<Any>;
      s.on('data', (d: Any) => out.push(d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  const send = (topic: string, body: string, extra: Any = {}): Promise<Any> => {
    const { props = {}, ...rest } = extra;
    return call('SendMessage', { messages: [{ topic: { name: topic }, body: Buffer.from(body), userProperties: props, systemProperties: { messageId: `id-${topic}-${body}`, messageType: 'NORMAL', ...rest } }] });
  };
  return {
    engine,
    meta,
    server,
    registry,
    call,
    stream,
    send,
    close: async () => {
      client.close();
      await server.stop();
      await engine.close();
    },
  };
}
