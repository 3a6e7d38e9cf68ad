import type { Logger } from '../common/logger.js';
import type { ListenerInfo } from '../common/node-info.js';
import type { Service } from '../common/service.js';

export interface BrokerServiceOptions {
  log: Logger;
}

/**
 * The broker role: protocol listeners (MQTT, Kafka, RocketMQ) hang off this
 * service as their issues land; it starts last and stops first so clients
 * are cut off before the storage and metadata they use.
 */
export class BrokerService implements Service {
  readonly name = 'broker';
  private ready = false;
  private readonly bound: ListenerInfo[] = [];

  constructor(private readonly opts: BrokerServiceOptions) {}

  async start(): Promise<void> {
    this.ready = true;
    this.opts.log.debug('broker: no protocol listeners are enabled in this build');
  }

  async stop(): Promise<void> {
    this.ready = false;
  }

  isReady(): boolean {
    return this.ready;
  }

  listeners(): ListenerInfo[] {
    return this.bound;
  }
}
