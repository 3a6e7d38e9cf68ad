/** A journal node in process for tests (a ReplicaStore behind a JournalServer on 127.0.0.1, free port), and helpers of the journal tests. */
import assert from 'node:assert/strict';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { encodeRecordBatch } from '../../../src/broker/kafka/records/index.js';
import { ReplicaStore } from '../../../src/journal/replica-store.js';
import { JournalServer } from '../../../src/journal/server.js';
import type { JournalClientPool } from '../../../src/storage/journal/client.js';
import type { JournalEngine } from '../../../src/storage/journal/engine.js';
import type { SegmentInfo } from '../../../src/storage/journal/meta-port.js';
import { Op, unitEntries, type ReadUnit, type Response } from '../../../src/storage/journal/protocol.js';
import type { AppendBatch, AppendRecord, StoredRecord } from '../../../src/storage/types.js';
import type { TestMeta } from './test-meta.js';

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

/** Every record of a shard from `from` (default 0), read in chunks. */
export async function readAll(e: JournalEngine, shard: string, from = 0n): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  let at = from;
  for (;;) {
    const got = await e.read(shard, at, { maxRecords: 500, maxBytes: 1 << 20 });
    if (got.length === 0) return out;
    out.push(...got);
    at = got.at(-1)!.offset + 1n;
  }
}

/** A small record whose value is `value-<i>` (a header on every third). */
export const rec = (i: number): AppendRecord => ({ timestamp: 1_700_000_000_000 + i, key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}`), headers: i % 3 === 0 ? [{ key: 'h', value: Buffer.from(String(i)) }] : [] });

/** The records as one uncompressed v2 batch, as the Kafka front end stores them. */
export function batchOf(records: AppendRecord[]): AppendBatch {
  const w = new KafkaWriter();
  encodeRecordBatch(w, { baseOffset: 0n, compression: 'none', records: records.map((r, i) => ({ ...r, offset: BigInt(i) })) });
  return { bytes: w.toBuffer(), count: records.length, firstTimestamp: records[0]!.timestamp, maxTimestamp: records.at(-1)!.timestamp };
}

export function values(records: StoredRecord[]): string[] {
  return records.map((r) => r.value!.toString());
}

export function assertDense(records: StoredRecord[]): void {
  records.forEach((r, i) => assert.equal(r.offset, BigInt(i), `offset ${i}`));
}

/** Every unit of a replica (data and holes), straight from the journal node. */
export async function replicaUnits(pool: JournalClientPool, meta: TestMeta, node: number, seg: SegmentInfo): Promise<ReadUnit[]> {
  const c = pool.get(node, meta.nodes.get(node)!.addr);
  const out: ReadUnit[] = [];
  let at = 0;
  for (;;) {
    const res = await c.call<Extract<Response, { op: Op.Read }>>({ op: Op.Read, shard: seg.shard, segment: seg.segment, fromEntry: at, maxEntries: 100_000, maxBytes: 1 << 20 });
    if (res.units.length === 0) return out;
    out.push(...res.units);
    const u = res.units.at(-1)!;
    at = u.entry + unitEntries(u);
  }
}
