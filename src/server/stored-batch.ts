/**
 * The record format of stored batches: Kafka's record batch v2 (what the file
 * engine keeps whole when a Kafka producer's batch is appended as it came).
 * Storage does not parse protocol formats itself; the node hands it this.
 */
import { decodeRecords } from '../broker/kafka/records/index.js';
import type { StoredRecord } from '../storage/types.js';

const EMPTY = Buffer.alloc(0);

export function decodeStoredBatch(bytes: Buffer, baseOffset: bigint): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (const b of decodeRecords(bytes)) {
    if (b.baseOffset !== baseOffset) throw new Error(`batch base offset ${b.baseOffset}, expected ${baseOffset}`);
    for (const r of b.records) {
      out.push({
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers: r.headers.length === 0 ? [] : r.headers.map((h) => ({ key: h.key, value: h.value ?? EMPTY })),
      });
    }
  }
  return out;
}
