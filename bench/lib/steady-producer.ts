/**
 * A steady Kafka producer for failover measurements (kafkajs, a devDependency): one
 * write of one record at a time to one partition, acks=all (-1), the next sent as soon as
 * the previous is acknowledged but at most one per `intervalMs`. Every acknowledged write
 * is logged (send start, acknowledgement; process.hrtime ns, the clock a kill is stamped
 * with in the same process). kafkajs does the client side of a failover: on a connection
 * error or NOT_LEADER it refreshes Metadata and retries (here every 20-100 ms, up to 1,000
 * times); a send it gives up on is counted and a fresh producer takes over.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { AckLog } from '../compare/replicated.js';

export interface SteadyProducerOptions {
  /** host:port of every broker (bootstrap). */
  brokers: string[];
  topic: string;
  partition: number;
  /** Record value bytes. */
  size: number;
  /** At most one write per this many ms (0: back to back). */
  intervalMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowNs = () => Number(process.hrtime.bigint());

export const RETRY = { retries: 1000, initialRetryTime: 20, maxRetryTime: 100, factor: 0.2, multiplier: 1.5 };

export class SteadyProducer implements AckLog {
  readonly sent: number[] = [];
  readonly acked: number[] = [];
  /** Sends kafkajs gave up on, by error name. */
  readonly failures: Record<string, number> = {};
  private stopping = false;
  private loop: Promise<void> | undefined;
  private producer: Producer | undefined;

  constructor(private readonly o: SteadyProducerOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** Stops after the write in flight (at most `graceMs`, then the producer is disconnected under it). */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    if (!this.loop) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.loop.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      await this.producer?.disconnect().catch(() => undefined);
      await Promise.race([this.loop, sleep(5000)]);
    }
  }

  /** Resolves when a write sent at or after `ns` is acknowledged (true), or after timeoutMs (false). */
  async waitAckSentAfter(ns: number, timeoutMs: number, fromIndex = 0): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let i = fromIndex;
    for (;;) {
      for (; i < this.sent.length; i++) if ((this.sent[i] as number) >= ns) return true;
      if (Date.now() > deadline) return false;
      await sleep(5);
    }
  }

  private async run(): Promise<void> {
    const value = Buffer.alloc(this.o.size, 'a');
    while (!this.stopping) {
      const kafka = new Kafka({ clientId: 'robust-bench-failover', brokers: this.o.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 1000, requestTimeout: 10_000, retry: RETRY });
      const producer = kafka.producer({ allowAutoTopicCreation: false, retry: RETRY });
      this.producer = producer;
      try {
        await producer.connect();
        while (!this.stopping) {
          const t = nowNs();
          try {
            await producer.send({ topic: this.o.topic, acks: -1, timeout: 30_000, messages: [{ partition: this.o.partition, value }] });
          } catch (err) {
            const name = err instanceof Error ? err.name : 'error';
            this.failures[name] = (this.failures[name] ?? 0) + 1;
            break; // a fresh producer
          }
          const a = nowNs();
          this.sent.push(t);
          this.acked.push(a);
          const wait = this.o.intervalMs - (a - t) / 1e6;
          if (wait > 0) await sleep(wait);
        }
      } catch (err) {
        const name = err instanceof Error ? err.name : 'error';
        this.failures[`connect ${name}`] = (this.failures[`connect ${name}`] ?? 0) + 1;
        await sleep(100);
      } finally {
        await producer.disconnect().catch(() => undefined);
      }
    }
  }
}
