/** A journal node in process for tests: a ReplicaStore behind a JournalServer on 127.0.0.1, free port. */
import { ReplicaStore } from '../../../src/journal/replica-store.js';
import { JournalServer } from '../../../src/journal/server.js';

export const quiet = { info() {}, warn() {}, debug() {}, error() {} };

export class TestJournal {
  server!: JournalServer;
  store!: ReplicaStore;

  constructor(
    readonly id: number,
    readonly dir: string,
  ) {}

  async start(): Promise<this> {
    this.store = await ReplicaStore.open({ dir: this.dir, log: quiet, flushIntervalMs: 50, segmentBytes: 8 * 1024 * 1024 });
    this.server = new JournalServer({ store: this.store, host: '127.0.0.1', port: 0, log: quiet });
    await this.server.start();
    return this;
  }

  /** Like a kill: connections drop, nothing more is served. */
  async stop(): Promise<void> {
    await this.server.stop();
    await this.store.close();
  }
}
