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
import type { AppendBatch, AppendOptions, AppendRecord } from '../../../storage/types.js';
import { shardOf, type KafkaDeps } from '../deps.js';
import { ErrorCode, KafkaDecodeError, KafkaProtocolError } from '../protocol/errors.js';
import type { ProduceRequest, ProduceResponse, ProduceResponsePartition } from '../protocol/requests/produce.js';
import { checkBatchRecords, decodeRecords, readBatchHeaders, type BatchHeader, type RecordBatch } from '../records/index.js';
import type { SequenceReservation } from '../producer-state.js';
import type { FrameUse } from '../connection.js';
import { ensureTopic, partitionLeader } from './topics.js';
import { restoreProducerState } from '../producer-state-log.js';

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
      case 'not_writer':
        return ErrorCode.NOT_LEADER_OR_FOLLOWER; // leadership moved: the client refreshes Metadata and retries
      case 'not_enough_replicas':
      case 'journal_unavailable':
      case 'journal_recovery_race':
        return ErrorCode.NOT_ENOUGH_REPLICAS; // retriable: a new segment opens on live journal nodes
      default:
        return ErrorCode.UNKNOWN_SERVER_ERROR; // I/O error: the client retries
    }
  }
  return ErrorCode.UNKNOWN_SERVER_ERROR;
}

/**
 * One partition's idempotent-producer bookkeeping for one request: each batch is
 * checked against the producer's sequence, its sequence reserved while the
 * append runs, and then settled (offsets known) or given back (append failed).
 */
class PartitionSequences {
  private readonly reservations: Array<{ reservation: SequenceReservation; at: number }> = [];
  /** A batch of the request retried one already appended (or being appended). */
  private duplicateOf: bigint | Promise<bigint> | undefined;

  constructor(
    private readonly deps: KafkaDeps,
    private readonly shard: string,
    private readonly now: number,
  ) {}

  /** 'append' the batch, 'skip' it (a retry, answered with its first offset), or the error code to answer. */
  admit(producerId: bigint, epoch: number, baseSequence: number, count: number, at: number): 'append' | 'skip' | number {
    if (producerId < 0n || baseSequence < 0) return 'append';
    const check = this.deps.producers.check(this.shard, producerId, epoch, baseSequence, count);
    if (check.kind === 'duplicate') {
      this.duplicateOf ??= check.baseOffset;
      return 'skip';
    }
    if (check.kind === 'error') {
      this.deps.log.debug({ shard: this.shard, producerId: String(producerId) }, check.message);
      this.giveBack();
      return check.errorCode;
    }
    this.reservations.push({ reservation: this.deps.producers.reserve(this.shard, producerId, epoch, baseSequence, count, this.now), at });
    return 'append';
  }

  giveBack(): void {
    for (const r of this.reservations) r.reservation.abort();
  }

  settle(baseOffset: bigint): void {
    for (const r of this.reservations) r.reservation.complete(baseOffset + BigInt(r.at));
  }

  /** The answer when nothing was left to append: every batch was a retry (or there were none). */
  nothingAppended(): PartitionResult | Promise<PartitionResult> {
    if (this.duplicateOf === undefined) return { errorCode: ErrorCode.NONE, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n };
    return Promise.resolve(this.duplicateOf).then(
      (baseOffset) => ({ errorCode: ErrorCode.NONE, baseOffset, logAppendTimeMs: -1n, logStartOffset: -1n }),
      () => failed(ErrorCode.UNKNOWN_SERVER_ERROR),
    );
  }

  /** Waits for the append and answers; the sequences are settled or given back with it. */
  answer(deps: KafkaDeps, topic: string, partition: number, appending: Promise<{ baseOffset: bigint }>, onAppended: () => void, logAppendTimeMs = -1n): Promise<PartitionResult> {
    return appending.then(
      ({ baseOffset }) => {
        this.settle(baseOffset);
        onAppended();
        return { errorCode: ErrorCode.NONE, baseOffset, logAppendTimeMs, logStartOffset: -1n };
      },
      (err: unknown) => {
        this.giveBack();
        deps.log.warn({ topic, partition, err: errorMessage(err) }, 'kafka: produce: append failed');
        return failed(storageErrorCode(err));
      },
    );
  }
}

/** Whether the request's first batch comes from an idempotent producer (v2 header with a producer id). */
function isIdempotent(records: Buffer): boolean {
  return records.length >= 61 && records[16] === 2 && records.readBigInt64BE(43) >= 0n;
}

/**
 * Checks and starts one partition's append. Everything up to the storage call
 * runs synchronously, so pipelined requests append (and take idempotent
 * sequence numbers) in the order they arrived.
 */
function producePartition(deps: KafkaDeps, topic: string, partition: number, records: Buffer | null, now: number, logAppendTime: boolean, use: { recordPath: boolean }, acks: AppendOptions): PartitionResult | Promise<PartitionResult> {
  const leader = partitionLeader(deps, topic, partition);
  if (leader !== undefined) return failed(leader);
  if (!records || records.length === 0) return failed(ErrorCode.CORRUPT_MESSAGE);
  const topicMax = Number(deps.meta.topic(topic)?.config['max.message.bytes'] ?? NaN);
  if (records.length > (Number.isFinite(topicMax) ? topicMax : deps.settings.messageMaxBytes)) return failed(ErrorCode.MESSAGE_TOO_LARGE);
  const shardId = shardOf(topic, partition);
  const storage = deps.storage();
  if (isIdempotent(records)) {
    // This leader may not know the producer's last batches yet (it just started or took over): read them from the log first.
    const leaderEpoch = deps.meta.topic(topic)?.partitions[partition]?.leaderEpoch ?? 0;
    let ready: true | Promise<void>;
    try {
      ready = deps.producers.readyFor(shardId, leaderEpoch, () => restoreProducerState(deps.producers, storage, shardId, now));
    } catch (err) {
      return failed(storageErrorCode(err));
    }
    if (ready !== true) {
      return ready.then(
        () => producePartition(deps, topic, partition, records, now, logAppendTime, use, acks),
        (err: unknown) => {
          deps.log.warn({ topic, partition, err: errorMessage(err) }, 'kafka: could not rebuild idempotent producer state from the log; the producer retries');
          return failed(storageErrorCode(err));
        },
      );
    }
  }
  if (!logAppendTime && storage.supportsBatches?.(shardId) && storage.appendBatches) {
    let headers: BatchHeader[] | null;
    try {
      headers = readBatchHeaders(records);
    } catch (err) {
      return failed(err instanceof KafkaProtocolError ? err.errorCode : ErrorCode.CORRUPT_MESSAGE);
    }
    // v2 batches with producer timestamps are stored as they came; anything else takes the record path.
    if (headers !== null && headers.every((h) => h.timestampType === 0)) return produceBatches(deps, topic, partition, records, headers, now, acks);
  }
  // Records decoded here are views into the request frame that storage (the memory engine) or other protocols may keep.
  use.recordPath = true;
  let batches: RecordBatch[];
  try {
    batches = decodeRecords(records, { offsets: false });
  } catch (err) {
    deps.log.debug({ topic, partition, err: errorMessage(err) }, 'kafka: produce: bad record batch');
    if (err instanceof KafkaProtocolError) return failed(err.errorCode);
    if (err instanceof KafkaDecodeError) return failed(ErrorCode.CORRUPT_MESSAGE);
    return failed(ErrorCode.CORRUPT_MESSAGE);
  }
  const shard = shardOf(topic, partition);
  const toAppend: AppendRecord[] = [];
  const sequences = new PartitionSequences(deps, shard, now);
  let bytes = 0;
  for (const b of batches) {
    if (b.records.length === 0) continue;
    if (b.isTransactional) {
      sequences.giveBack();
      return failed(ErrorCode.INVALID_TXN_STATE);
    }
    const admitted = b.magic === 2 ? sequences.admit(b.producerId, b.producerEpoch, b.baseSequence, b.records.length, toAppend.length) : 'append';
    if (admitted === 'skip') continue;
    if (admitted !== 'append') return failed(admitted);
    const brokerTime = logAppendTime || b.timestampType === 1;
    for (const r of b.records) {
      // The decoded record is the append record (no copy per record on this path); only a null header value needs mapping.
      if (brokerTime) r.timestamp = now;
      for (let h = 0; h < r.headers.length; h++) {
        if (r.headers[h]!.value === null) {
          r.headers = r.headers.map((x) => ({ key: x.key, value: x.value ?? Buffer.alloc(0) }));
          break;
        }
      }
      toAppend.push(r as AppendRecord);
      bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
    }
  }
  if (toAppend.length === 0) return sequences.nothingAppended();
  let appending: Promise<{ baseOffset: bigint }>;
  try {
    appending = deps.storage().append(shard, toAppend, acks);
  } catch (err) {
    sequences.giveBack();
    return failed(storageErrorCode(err));
  }
  const onAppended = (): void => {
    deps.metrics.produced(topic, toAppend.length, bytes);
    if (deps.bus?.interested(topic)) deps.bus.published(toAppend.map((r) => ({ topic, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })));
  };
  return sequences.answer(deps, topic, partition, appending, onAppended, logAppendTime ? BigInt(now) : -1n);
}

/**
 * The batch path: each v2 batch is checked (CRC, record framing, sequence) and
 * appended whole, without building a record object; storage keeps it as it
 * came, and Fetch hands it back the same way.
 */
function produceBatches(deps: KafkaDeps, topic: string, partition: number, records: Buffer, headers: BatchHeader[], now: number, acks: AppendOptions): PartitionResult | Promise<PartitionResult> {
  const shard = shardOf(topic, partition);
  const toAppend: AppendBatch[] = [];
  const sequences = new PartitionSequences(deps, shard, now);
  let count = 0;
  for (const h of headers) {
    if (h.count === 0) continue;
    if (h.isTransactional) {
      sequences.giveBack();
      return failed(ErrorCode.INVALID_TXN_STATE);
    }
    try {
      if (h.isControl) throw new KafkaProtocolError(ErrorCode.CORRUPT_MESSAGE, 'a producer sent a control batch');
      checkBatchRecords(records, h);
    } catch (err) {
      sequences.giveBack();
      deps.log.debug({ topic, partition, err: errorMessage(err) }, 'kafka: produce: bad record batch');
      return failed(err instanceof KafkaProtocolError ? err.errorCode : ErrorCode.CORRUPT_MESSAGE);
    }
    const admitted = sequences.admit(h.producerId, h.producerEpoch, h.baseSequence, h.count, count);
    if (admitted === 'skip') continue;
    if (admitted !== 'append') return failed(admitted);
    toAppend.push({ bytes: records.subarray(h.start, h.end), count: h.count, firstTimestamp: h.baseTimestamp, maxTimestamp: h.maxTimestamp });
    count += h.count;
  }
  if (toAppend.length === 0) return sequences.nothingAppended();
  let appending: Promise<{ baseOffset: bigint }>;
  try {
    appending = deps.storage().appendBatches!(shard, toAppend, acks);
  } catch (err) {
    sequences.giveBack();
    return failed(storageErrorCode(err));
  }
  const onAppended = (): void => {
    deps.metrics.produced(topic, count, records.length);
    if (deps.bus?.interested(topic)) publishToBus(deps, topic, toAppend);
  };
  return sequences.answer(deps, topic, partition, appending, onAppended);
}

/** Other protocols' subscribers get the records of stored batches (decoded only when someone listens). */
function publishToBus(deps: KafkaDeps, topic: string, batches: AppendBatch[]): void {
  try {
    const out: Array<{ topic: string; key: Buffer | null; value: Buffer | null; headers: Array<{ key: string; value: Buffer }>; timestamp: number }> = [];
    for (const b of batches) {
      for (const batch of decodeRecords(b.bytes, { offsets: false })) {
        // Copies: the request frame is reused once the produce completes, and subscribers keep these.
        for (const r of batch.records) {
          out.push({
            topic,
            key: r.key === null ? null : Buffer.from(r.key),
            value: r.value === null ? null : Buffer.from(r.value),
            headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? Buffer.alloc(0) : Buffer.from(h.value) })),
            timestamp: r.timestamp,
          });
        }
      }
    }
    deps.bus?.published(out);
  } catch (err) {
    deps.log.warn({ topic, err: errorMessage(err) }, 'kafka: could not hand produced records to other protocols');
  }
}

/** Whether every topic of the request exists (then it can be pipelined: its appends start in arrival order). */
export function producePipelinable(deps: KafkaDeps, req: ProduceRequest): boolean {
  return req.topicData.every((t) => deps.meta.topic(t.name) !== undefined);
}

/**
 * `frame.reusable` is set when every partition went the batch path (storage copies
 * the batches; nothing keeps a view into the request once it completes).
 */
export async function handleProduce(deps: KafkaDeps, req: ProduceRequest, frame?: FrameUse): Promise<ProduceResponse | undefined> {
  if (req.transactionalId !== null && req.transactionalId !== undefined) {
    // Transactions are not offered (no InitProducerId with a transactional id succeeds).
    return {
      responses: req.topicData.map((t) => ({ name: t.name, partitionResponses: t.partitionData.map((p) => ({ index: p.index, ...failed(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED) })) })),
      throttleTimeMs: 0,
    };
  }
  if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) {
    deps.metrics.errorAnswered('Produce');
    return { responses: req.topicData.map((t) => ({ name: t.name, partitionResponses: t.partitionData.map((p) => ({ index: p.index, ...failed(ErrorCode.INVALID_REQUIRED_ACKS) })) })), throttleTimeMs: 0 };
  }
  const now = Date.now();
  // Topics that do not exist yet are created first (their appends then follow in order among themselves).
  const creating = req.topicData.filter((t) => !deps.meta.topic(t.name));
  const created = new Map<string, number | undefined>();
  for (const t of creating) if (!created.has(t.name)) created.set(t.name, await ensureTopic(deps, t.name, true));
  const use = { recordPath: false };
  // acks=all waits for every replica of a replicated shard; acks=1 for its ack quorum.
  const appendOpts: AppendOptions = { acks: req.acks === -1 ? 'all' : 'quorum' };
  const started = req.topicData.map((t) => {
    const topic = deps.meta.topic(t.name);
    // Internal topics (another protocol's state, e.g. __mqtt.sessions.n1) take no Kafka writes; Kafka refuses appends to its internal topics the same way.
    const topicError = topic?.internal ? ErrorCode.INVALID_TOPIC_EXCEPTION : topic ? undefined : (created.get(t.name) ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const logAppendTime = topic?.config['message.timestamp.type'] === 'LogAppendTime';
    return { name: t.name, partitions: t.partitionData.map((p) => ({ index: p.index, result: topicError !== undefined ? failed(topicError) : producePartition(deps, t.name, p.index, p.records, now, logAppendTime, use, appendOpts) })) };
  });
  const responses = await Promise.all(
    started.map(async (t) => ({ name: t.name, partitionResponses: await Promise.all(t.partitions.map(async (p): Promise<ProduceResponsePartition> => ({ index: p.index, ...(await p.result) }))) })),
  );
  if (frame && !use.recordPath) frame.reusable = true;
  if (req.acks === 0) return undefined;
  if (responses.some((t) => t.partitionResponses.some((p) => p.errorCode !== ErrorCode.NONE))) deps.metrics.errorAnswered('Produce');
  return { responses, throttleTimeMs: 0 };
}
