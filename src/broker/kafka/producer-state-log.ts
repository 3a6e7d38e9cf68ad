/**
 * Rebuilding idempotent-producer state from a partition's log (what Kafka does
 * from its log segments when a broker becomes leader): the stored v2 batches
 * carry their producer id, epoch and first sequence in their headers, so the
 * last batches of each producer can be read back from the tail of the
 * partition. Bounded: only the newest RESTORE_MAX_RECORDS records (at most
 * RESTORE_MAX_BYTES) are read — a producer whose last batch is older than that
 * starts its sequence afresh, as after Kafka's producer state expires.
 */
import type { StorageAdapter } from '../../storage/types.js';
import type { ProducerStateTable } from './producer-state.js';

const RESTORE_MAX_RECORDS = 20_000;
const RESTORE_MAX_BYTES = 16 * 1024 * 1024;
const BATCH_HEADER_BYTES = 61;
const CONTROL_BIT = 0x20;

/** Fills `table` for `shard` from the batches at the tail of its log; resolves with the batches seen. */
export async function restoreProducerState(table: ProducerStateTable, storage: StorageAdapter, shard: string, nowMs: number): Promise<number> {
  if (!storage.readEntries || storage.supportsBatches?.(shard) === false) return 0;
  const info = await storage.shardInfo(shard);
  let at = info.endOffset - BigInt(RESTORE_MAX_RECORDS);
  if (at < info.startOffset) at = info.startOffset;
  let bytes = 0;
  let seen = 0;
  while (at < info.endOffset && bytes < RESTORE_MAX_BYTES) {
    const entries = await storage.readEntries(shard, at, { maxRecords: 5000, maxBytes: 4 * 1024 * 1024 });
    if (entries.length === 0) break;
    for (const e of entries) {
      if (e.kind !== 'batch') {
        at = e.record.offset + 1n;
        continue;
      }
      at = e.baseOffset + BigInt(e.count);
      bytes += e.bytes.length;
      const b = e.bytes;
      if (b.length < BATCH_HEADER_BYTES || b[16] !== 2 || (b.readInt16BE(21) & CONTROL_BIT) !== 0) continue;
      const producerId = b.readBigInt64BE(43);
      const epoch = b.readInt16BE(51);
      const baseSequence = b.readInt32BE(53);
      if (producerId < 0n || baseSequence < 0) continue;
      table.appended(shard, producerId, epoch, baseSequence, e.count, e.baseOffset, nowMs);
      seen++;
    }
  }
  return seen;
}
