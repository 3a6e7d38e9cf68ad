/**
 * Produce (v0-7): decode each partition's record batches (any magic, any
 * compression), check idempotent sequences, append all of a partition's
 * records to its shard in one atomic append, answer the first offset.
 *
 * Records are stored one by one (not as Kafka batches) so that every protocol
 * reads the same shard: an MQTT subscriber or a RocketMQ consumer of the topic
 * sees each record.
 */
import { errorMessage } from '../../../common/errors.js';
import { StorageError } from '../../../storage/errors.js';
import type { AppendRecord } from '../../../storage/types.js';
import { shardOf, type KafkaDeps } from '../deps.js';
import { ErrorCode, KafkaDecodeError, KafkaProtocolError } from '../protocol/errors.js';
import type { ProduceRequest, ProduceResponse, ProduceResponsePartition } from '../protocol/requests/produce.js';
import { decodeRecords, type RecordBatch } from '../records/index.js';
import { ensureTopic, partitionLeader } from './topics.js';

interface PartitionResult {
  errorCode: number;
  baseOffset: bigint;
  logAppendTimeMs: bigint;
  logStartOffset: bigint;
}

function failed(errorCode: number): PartitionResult {
  return { errorCode, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n };
}

/** Storage failures as the client error a Kafka broker gives for them. */
export function storageErrorCode(err: unknown): number {
  if (err instanceof KafkaProtocolError) return err.errorCode;
  if (err instanceof StorageError) {
    switch (err.code) {
      case 'shard_not_found':
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      case 'offset_out_of_range':
        return ErrorCode.OFFSET_OUT_OF_RANGE;
      case 'record_too_large':
        return ErrorCode.MESSAGE_TOO_LARGE;
      case 'storage_full':
        return ErrorCode.KAFKA_STORAGE_ERROR;
      default:
        return ErrorCode.UNKNOWN_SERVER_ERROR; // I/O error: the client retries
    }
  }
  return ErrorCode.UNKNOWN_SERVER_ERROR;
}

async function producePartition(deps: KafkaDeps, topic: string, partition: number, records: Buffer | null, now: number, logAppendTime: boolean): Promise<PartitionResult> {
  const leader = partitionLeader(deps, topic, partition);
  if (leader !== undefined) return failed(leader);
  if (!records || records.length === 0) return failed(ErrorCode.CORRUPT_MESSAGE);
  if (records.length > deps.settings.messageMaxBytes) return failed(ErrorCode.MESSAGE_TOO_LARGE);
  let batches: RecordBatch[];
  try {
    batches = decodeRecords(records);
  } catch (err) {
    deps.log.debug({ topic, partition, err: errorMessage(err) }, 'kafka: produce: bad record batch');
    if (err instanceof KafkaProtocolError) return failed(err.errorCode);
    if (err instanceof KafkaDecodeError) return failed(ErrorCode.CORRUPT_MESSAGE);
    return failed(ErrorCode.CORRUPT_MESSAGE);
  }
  const shard = shardOf(topic, partition);
  const toAppend: AppendRecord[] = [];
  const idempotent: Array<{ producerId: bigint; epoch: number; firstSeq: number; count: number; at: number }> = [];
  let bytes = 0;
  for (const b of batches) {
    if (b.records.length === 0) continue;
    if (b.isTransactional) return failed(ErrorCode.INVALID_TXN_STATE);
    if (b.magic === 2 && b.producerId >= 0n && b.baseSequence >= 0) {
      const check = deps.producers.check(shard, b.producerId, b.producerEpoch, b.baseSequence, b.records.length);
      if (check.kind === 'duplicate') {
        // The whole request is a retry of what was appended (clients send one batch per partition).
        if (batches.length === 1) return { errorCode: ErrorCode.NONE, baseOffset: check.baseOffset, logAppendTimeMs: -1n, logStartOffset: -1n };
        continue;
      }
      if (check.kind === 'error') {
        deps.log.debug({ topic, partition, producerId: String(b.producerId) }, check.message);
        return failed(check.errorCode);
      }
      idempotent.push({ producerId: b.producerId, epoch: b.producerEpoch, firstSeq: b.baseSequence, count: b.records.length, at: toAppend.length });
    }
    for (const r of b.records) {
      const headers = r.headers.map((h) => ({ key: h.key, value: h.value ?? Buffer.alloc(0) }));
      toAppend.push({ timestamp: logAppendTime || b.timestampType === 1 ? now : r.timestamp, key: r.key, value: r.value, headers });
      bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
    }
  }
  if (toAppend.length === 0) return { errorCode: ErrorCode.NONE, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n };
  let baseOffset: bigint;
  try {
    ({ baseOffset } = await deps.storage().append(shard, toAppend));
  } catch (err) {
    deps.log.warn({ topic, partition, err: errorMessage(err) }, 'kafka: produce: append failed');
    return failed(storageErrorCode(err));
  }
  for (const i of idempotent) deps.producers.appended(shard, i.producerId, i.epoch, i.firstSeq, i.count, baseOffset + BigInt(i.at), now);
  deps.metrics.produced(topic, toAppend.length, bytes);
  if (deps.bus?.interested(topic)) deps.bus.published(toAppend.map((r) => ({ topic, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })));
  return { errorCode: ErrorCode.NONE, baseOffset, logAppendTimeMs: logAppendTime ? BigInt(now) : -1n, logStartOffset: -1n };
}

export async function handleProduce(deps: KafkaDeps, req: ProduceRequest): Promise<ProduceResponse | undefined> {
  if (req.transactionalId !== null && req.transactionalId !== undefined) {
    // Transactions are not offered (no InitProducerId with a transactional id succeeds).
    return {
      responses: req.topicData.map((t) => ({ name: t.name, partitionResponses: t.partitionData.map((p) => ({ index: p.index, ...failed(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED) })) })),
      throttleTimeMs: 0,
    };
  }
  const now = Date.now();
  const responses = await Promise.all(
    req.topicData.map(async (t) => {
      const topicError = await ensureTopic(deps, t.name, true);
      const logAppendTime = deps.meta.topic(t.name)?.config['message.timestamp.type'] === 'LogAppendTime';
      const partitionResponses: ProduceResponsePartition[] = await Promise.all(
        t.partitionData.map(async (p) => ({ index: p.index, ...(topicError !== undefined ? failed(topicError) : await producePartition(deps, t.name, p.index, p.records, now, logAppendTime)) })),
      );
      return { name: t.name, partitionResponses };
    }),
  );
  if (req.acks === 0) return undefined;
  if (responses.some((t) => t.partitionResponses.some((p) => p.errorCode !== ErrorCode.NONE))) deps.metrics.errorAnswered('Produce');
  return { responses, throttleTimeMs: 0 };
}
