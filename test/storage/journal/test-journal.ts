/** A journal node in process for tests: a ReplicaStore behind a JournalServer on 127.0.0.1, free port. */
import { ReplicaStore } from '../../../src/journal/replica-store.js';
import { JournalServer } from '../../../src/journal/server.js';
import type { JournalEngine } from '../../../src/storage/journal/engine.js';
import type { StoredRecord } from '../../../src/storage/types.js';

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

/** Every record of a shard, read from offset 0 in chunks. */
export async function readAll(e: JournalEngine, shard: string): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  let at = 0n;
  for (;;) {
    const got = await e.read(shard, at, { maxRecords: 500, maxBytes: 1 << 20 });
    if (got.length === 0) return out;
    out.push(...got);
    at = got.at(-1)!.offset + 1n;
  }
}
