import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { Service } from '../common/service.js';

export interface JournalServiceOptions {
  dataDir: string;
  log: Logger;
}

/**
 * The journal role. For now it owns its segment directory; segment storage
 * and replication (issue 8) live here.
 */
export class JournalService implements Service {
  readonly name = 'journal';
  private ready = false;

  constructor(private readonly opts: JournalServiceOptions) {}

  get dir(): string {
    return join(this.opts.dataDir, 'journal');
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
  }

  isReady(): boolean {
    return this.ready;
  }
}
