/**
 * Fetch (v0-11): read each partition from its fetch offset within the
 * partition and response byte limits, encode the records in the format the
 * request version reads (message sets v0 for Fetch v0-1, v1 for v2-3, record
 * batches v2 from v4), and long-poll — without polling — until min_bytes are
 * there or max_wait passes.
 *
 * Batches a producer sent are stored whole (file engine) and go out as they
 * came — compressed ones still compressed, nothing recompressed. Records stored
 * one by one (other protocols' publishes, the memory engine) go out in a batch
 * made here: uncompressed unless the topic sets `compression.type` (gzip,
 * snappy, lz4, zstd).
 * Fetch sessions (v7+) are not kept: the answer's session id is 0, which tells
 * clients to send full fetch requests.
 */
import { errorMessage } from '../../../common/errors.js';
import { OffsetOutOfRangeError } from '../../../storage/errors.js';
import type { StoredRecord } from '../../../storage/types.js';
import { shardOf, type KafkaDeps } from '../deps.js';
import { ErrorCode } from '../protocol/errors.js';
import type { FetchRequest, FetchResponse, FetchResponsePartition } from '../protocol/requests/fetch.js';
import { KafkaWriter } from '../protocol/writer.js';
import { encodeMessageSet, encodeRecordBatch, type Compression } from '../records/index.js';
import { storageErrorCode } from './produce.js';
import { partitionLeader } from './topics.js';

const COMPRESSIONS: ReadonlySet<string> = new Set(['gzip', 'snappy', 'lz4', 'zstd']);
/** Records per partition per fetch, whatever the byte limits say (bounds one response's work). */
const MAX_RECORDS_PER_PARTITION = 10_000;

interface Slot {
  topic: string;
  partition: number;
  offset: bigint;
  maxBytes: number;
  result: FetchResponsePartition;
  bytes: number;
  done: boolean;
}

function compressionOf(deps: KafkaDeps, topic: string): Compression {
  const c = deps.meta.topic(topic)?.config['compression.type'];
  return c !== undefined && COMPRESSIONS.has(c) ? (c as Compression) : 'none';
}

function encodeRecords(version: number, records: StoredRecord[], compression: Compression): Buffer {
  const w = new KafkaWriter(records.reduce((n, r) => n + (r.value?.length ?? 0) + (r.key?.length ?? 0) + 32, 128));
  if (version >= 4) encodeRecordBatch(w, { baseOffset: records[0]!.offset, records, compression });
  else encodeMessageSet(w, version >= 2 ? 1 : 0, records, compression);
  return w.buf.subarray(0, w.pos);
}

function emptyResult(partition: number, errorCode: number): FetchResponsePartition {
  return { partitionIndex: partition, errorCode, highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, abortedTransactions: null, preferredReadReplica: -1, records: Buffer.alloc(0) };
}

async function readSlot(deps: KafkaDeps, version: number, slot: Slot, budget: number): Promise<void> {
  const shard = shardOf(slot.topic, slot.partition);
  const storage = deps.storage();
  try {
    const info = await storage.shardInfo(shard);
    slot.result.highWatermark = info.endOffset;
    slot.result.lastStableOffset = info.endOffset;
    slot.result.logStartOffset = info.startOffset;
    if (slot.offset === info.endOffset) return;
    const limits = { maxRecords: MAX_RECORDS_PER_PARTITION, maxBytes: Math.max(1, Math.min(slot.maxBytes, budget)) };
    let encoded: Buffer;
    if (version >= 4 && storage.supportsBatches?.(shard)) {
      // Batches go out as they were stored (the first may start before the fetch offset:
      // clients skip those records, as with Kafka); records stored one by one are batched here.
      const entries = await storage.readEntries!(shard, slot.offset, limits);
      if (entries.length === 0) return;
      const parts: Buffer[] = [];
      let run: StoredRecord[] = [];
      const flush = (): void => {
        if (run.length > 0) parts.push(encodeRecords(version, run, compressionOf(deps, slot.topic)));
        run = [];
      };
      for (const e of entries) {
        if (e.kind === 'batch') {
          flush();
          parts.push(e.bytes);
        } else run.push(e.record);
      }
      flush();
      encoded = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    } else {
      const records = await storage.read(shard, slot.offset, limits);
      if (records.length === 0) return;
      encoded = encodeRecords(version, records, compressionOf(deps, slot.topic));
    }
    slot.result.records = encoded;
    slot.bytes = encoded.length;
    slot.done = true;
    deps.metrics.fetched(slot.topic, encoded.length);
  } catch (err) {
    slot.result.errorCode = err instanceof OffsetOutOfRangeError ? ErrorCode.OFFSET_OUT_OF_RANGE : storageErrorCode(err);
    slot.done = true;
    if (!(err instanceof OffsetOutOfRangeError)) deps.log.warn({ shard, err: errorMessage(err) }, 'kafka: fetch: read failed');
  }
}

export async function handleFetch(deps: KafkaDeps, version: number, req: FetchRequest): Promise<FetchResponse> {
  const slots: Slot[] = [];
  const responses: FetchResponse['responses'] = [];
  for (const t of req.topics) {
    const partitions: FetchResponsePartition[] = [];
    for (const p of t.partitions) {
      const leaderError = partitionLeader(deps, t.topic, p.partition);
      const result = emptyResult(p.partition, leaderError ?? ErrorCode.NONE);
      partitions.push(result);
      if (leaderError === undefined) slots.push({ topic: t.topic, partition: p.partition, offset: p.fetchOffset, maxBytes: p.partitionMaxBytes, result, bytes: 0, done: false });
    }
    responses.push({ topic: t.topic, partitions });
  }
  const maxBytes = version >= 3 ? req.maxBytes : 0x7fffffff;
  const deadline = Date.now() + Math.max(0, req.maxWaitMs);
  let total = 0;
  for (;;) {
    for (const slot of slots) {
      if (slot.done) continue;
      // The first partition with data always gets at least one batch (Kafka's rule since v3).
      const budget = total === 0 ? Math.max(1, maxBytes) : maxBytes - total;
      if (budget <= 0) break;
      await readSlot(deps, version, slot, budget);
      total += slot.bytes;
    }
    const waiting = slots.filter((s) => !s.done);
    const left = deadline - Date.now();
    if (total >= req.minBytes || total >= maxBytes || waiting.length === 0 || left <= 0) break;
    await waitForAny(deps, waiting, left);
    if (Date.now() >= deadline) {
      // One last read: data may have arrived exactly at the deadline.
      for (const slot of waiting) if (!slot.done && total < maxBytes) await readSlot(deps, version, slot, total === 0 ? maxBytes : maxBytes - total).then(() => (total += slot.bytes));
      break;
    }
  }
  if (slots.some((s) => s.result.errorCode !== ErrorCode.NONE)) deps.metrics.errorAnswered('Fetch');
  return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses };
}

/** Resolves when any waiting partition gets a record past its fetch offset, or after `ms`. */
async function waitForAny(deps: KafkaDeps, waiting: Slot[], ms: number): Promise<void> {
  const storage = deps.storage();
  const controller = { settled: false };
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      if (controller.settled) return;
      controller.settled = true;
      clearTimeout(timer);
      resolve();
    }
    for (const s of waiting) {
      storage
        .waitForData(shardOf(s.topic, s.partition), s.offset, ms)
        .then(() => {
          // waitForData also resolves at its own timeout; only a real arrival wakes us early.
          return storage.shardInfo(shardOf(s.topic, s.partition)).then((info) => {
            if (info.endOffset > s.offset) done();
          });
        })
        .catch(done);
    }
  });
}
