import type { Logger } from '../common/logger.js';
import type { ListenerInfo } from '../common/node-info.js';
import type { Service } from '../common/service.js';

/** A protocol server the broker role runs (MQTT now; Kafka and RocketMQ as their issues land). */
export interface ProtocolServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  listeners(): ListenerInfo[];
}

export interface BrokerServiceOptions {
  log: Logger;
  protocols: Array<{ name: string; server: ProtocolServer }>;
}

/**
 * The broker role: protocol servers hang off this service; it starts last and
 * stops first so clients are cut off before the storage and metadata they use.
 */
export class BrokerService implements Service {
  readonly name = 'broker';
  private ready = false;
  private started: Array<{ name: string; server: ProtocolServer }> = [];

  constructor(private readonly opts: BrokerServiceOptions) {}

  async start(): Promise<void> {
    try {
      for (const p of this.opts.protocols) {
        await p.server.start();
        this.started.push(p);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
    const started = this.started.reverse();
    this.started = [];
    for (const p of started) {
      await p.server.stop().catch((err: unknown) => this.opts.log.warn({ protocol: p.name, err: String(err) }, 'broker: protocol server did not stop cleanly'));
    }
  }

  isReady(): boolean {
    return this.ready;
  }

  listeners(): ListenerInfo[] {
    return this.started.flatMap((p) => p.server.listeners());
  }
}
