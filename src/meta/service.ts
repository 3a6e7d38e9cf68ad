import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { Service } from '../common/service.js';

export interface MetaServiceOptions {
  dataDir: string;
  nodeId: number;
  metaAddrs: Record<string, string>;
  log: Logger;
}

/**
 * The meta role. For now it owns its directory and knows its peers from
 * meta_addrs; the Raft group and the metadata state machine (issue 3) live here.
 */
export class MetaService implements Service {
  readonly name = 'meta';
  private ready = false;

  constructor(private readonly opts: MetaServiceOptions) {}

  get dir(): string {
    return join(this.opts.dataDir, 'meta');
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const peers = Object.keys(this.opts.metaAddrs).length;
    this.opts.log.info({ dir: this.dir, peers }, `meta: ${peers} meta node(s) configured`);
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
  }

  isReady(): boolean {
    return this.ready;
  }
}
