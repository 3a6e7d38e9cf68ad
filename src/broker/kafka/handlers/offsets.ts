/**
 * Offsets: ListOffsets (v0-5), OffsetCommit (v0-7), OffsetFetch (v0-5),
 * OffsetForLeaderEpoch (v0-3), DeleteRecords (v0-1). Committed offsets are kept
 * in the meta service (replicated, durable), so any broker can answer for a
 * group after a failover.
 */
import { errorMessage } from '../../../common/errors.js';
import { shardOf, type KafkaDeps } from '../deps.js';
import { ErrorCode, KafkaProtocolError } from '../protocol/errors.js';
import type { DeleteRecordsRequest, DeleteRecordsResponse } from '../protocol/requests/delete-records.js';
import type { ListOffsetsRequest, ListOffsetsResponse, ListOffsetsResponsePartition } from '../protocol/requests/list-offsets.js';
import type { OffsetCommitRequest, OffsetCommitResponse } from '../protocol/requests/offset-commit.js';
import type { OffsetFetchRequest, OffsetFetchResponse, OffsetFetchResponseTopic } from '../protocol/requests/offset-fetch.js';
import type { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from '../protocol/requests/offset-for-leader-epoch.js';
import { storageErrorCode } from './produce.js';
import { coordinatorError, partitionLeader } from './topics.js';

const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;
const MAX_METADATA = 4096;

async function listOffset(deps: KafkaDeps, version: number, topic: string, partition: number, timestamp: bigint): Promise<ListOffsetsResponsePartition> {
  const base: ListOffsetsResponsePartition = { partitionIndex: partition, errorCode: ErrorCode.NONE, oldStyleOffsets: [], timestamp: -1n, offset: -1n, leaderEpoch: -1 };
  const leaderError = partitionLeader(deps, topic, partition);
  if (leaderError !== undefined) return { ...base, errorCode: leaderError };
  const shard = shardOf(topic, partition);
  try {
    const storage = deps.storage();
    const info = await storage.shardInfo(shard);
    let offset: bigint;
    if (timestamp === LATEST || timestamp === MAX_TIMESTAMP) offset = info.endOffset;
    else if (timestamp === EARLIEST) offset = info.startOffset;
    else offset = await storage.offsetForTime(shard, Number(timestamp));
    const epoch = deps.meta.topic(topic)?.partitions[partition]?.leaderEpoch ?? -1;
    if (version === 0) return { ...base, oldStyleOffsets: [offset] };
    // A timestamp past every record finds nothing: offset -1 (Kafka's answer).
    const found = timestamp >= 0n && offset === info.endOffset ? -1n : offset;
    return { ...base, timestamp: timestamp >= 0n && found >= 0n ? timestamp : -1n, offset: found, leaderEpoch: epoch };
  } catch (err) {
    deps.log.warn({ shard, err: errorMessage(err) }, 'kafka: list offsets failed');
    return { ...base, errorCode: storageErrorCode(err) };
  }
}

export async function handleListOffsets(deps: KafkaDeps, version: number, req: ListOffsetsRequest): Promise<ListOffsetsResponse> {
  const topics = await Promise.all(req.topics.map(async (t) => ({ name: t.name, partitions: await Promise.all(t.partitions.map((p) => listOffset(deps, version, t.name, p.partitionIndex, p.timestamp))) })));
  return { throttleTimeMs: 0, topics };
}


export async function handleOffsetCommit(deps: KafkaDeps, req: OffsetCommitRequest): Promise<OffsetCommitResponse> {
  const answer = (code: (topic: string, partition: number) => number): OffsetCommitResponse => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code(t.name, p.partitionIndex) })) })),
  });
  const groupError = coordinatorError(deps, req.groupId) ?? deps.groups.validateCommit({ groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, groupInstanceId: req.groupInstanceId ?? null });
  if (groupError !== undefined && groupError !== ErrorCode.NONE) {
    deps.metrics.errorAnswered('OffsetCommit');
    return answer(() => groupError);
  }
  const perPartition = new Map<string, number>();
  const toCommit: Array<{ topic: string; partition: number; offset: number; metadata: string | null }> = [];
  for (const t of req.topics) {
    const topic = deps.meta.topic(t.name);
    for (const p of t.partitions) {
      const key = `${t.name}/${p.partitionIndex}`;
      if (!topic || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions.length) perPartition.set(key, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      else if ((p.committedMetadata?.length ?? 0) > MAX_METADATA) perPartition.set(key, ErrorCode.OFFSET_METADATA_TOO_LARGE);
      else if (p.committedOffset < 0n || p.committedOffset > BigInt(Number.MAX_SAFE_INTEGER)) perPartition.set(key, ErrorCode.NONE); // nothing to keep (Kafka stores it, nobody reads it)
      else toCommit.push({ topic: t.name, partition: p.partitionIndex, offset: Number(p.committedOffset), metadata: p.committedMetadata ?? null });
    }
  }
  let commitError: number = ErrorCode.NONE;
  if (toCommit.length > 0) {
    try {
      await deps.meta.commitOffsets(req.groupId, toCommit);
    } catch (err) {
      deps.log.warn({ group: req.groupId, err: errorMessage(err) }, 'kafka: offset commit failed');
      commitError = err instanceof KafkaProtocolError ? err.errorCode : ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
  }
  const response = answer((topic, partition) => perPartition.get(`${topic}/${partition}`) ?? commitError);
  if (commitError !== ErrorCode.NONE || [...perPartition.values()].some((c) => c !== ErrorCode.NONE)) deps.metrics.errorAnswered('OffsetCommit');
  return response;
}

export function handleOffsetFetch(deps: KafkaDeps, req: OffsetFetchRequest): OffsetFetchResponse {
  const groupError = coordinatorError(deps, req.groupId);
  if (groupError !== undefined) {
    return { throttleTimeMs: 0, errorCode: groupError, topics: (req.topics ?? []).map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: groupError })) })) };
  }
  let topics: OffsetFetchResponseTopic[];
  if (req.topics === null) {
    const byTopic = new Map<string, OffsetFetchResponseTopic>();
    for (const o of deps.meta.committedAll(req.groupId)) {
      let t = byTopic.get(o.topic);
      if (!t) byTopic.set(o.topic, (t = { name: o.topic, partitions: [] }));
      t.partitions.push({ partitionIndex: o.partition, committedOffset: BigInt(o.offset), committedLeaderEpoch: -1, metadata: o.metadata ?? '', errorCode: ErrorCode.NONE });
    }
    topics = [...byTopic.values()];
  } else {
    topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) => {
        const c = deps.meta.committed(req.groupId, t.name, p);
        return { partitionIndex: p, committedOffset: c ? BigInt(c.offset) : -1n, committedLeaderEpoch: -1, metadata: c?.metadata ?? '', errorCode: ErrorCode.NONE };
      }),
    }));
  }
  return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, topics };
}

export async function handleOffsetForLeaderEpoch(deps: KafkaDeps, req: OffsetForLeaderEpochRequest): Promise<OffsetForLeaderEpochResponse> {
  // One epoch history per partition here: every epoch ends at the current end offset.
  const topics = await Promise.all(
    req.topics.map(async (t) => ({
      topic: t.topic,
      partitions: await Promise.all(
        t.partitions.map(async (p) => {
          const leaderError = partitionLeader(deps, t.topic, p.partition);
          if (leaderError !== undefined) return { errorCode: leaderError, partition: p.partition, leaderEpoch: -1, endOffset: -1n };
          const epoch = deps.meta.topic(t.topic)?.partitions[p.partition]?.leaderEpoch ?? 0;
          try {
            const info = await deps.storage().shardInfo(shardOf(t.topic, p.partition));
            return { errorCode: ErrorCode.NONE, partition: p.partition, leaderEpoch: epoch, endOffset: info.endOffset };
          } catch (err) {
            return { errorCode: storageErrorCode(err), partition: p.partition, leaderEpoch: -1, endOffset: -1n };
          }
        }),
      ),
    })),
  );
  return { throttleTimeMs: 0, topics };
}

export async function handleDeleteRecords(deps: KafkaDeps, req: DeleteRecordsRequest): Promise<DeleteRecordsResponse> {
  const storage = deps.storage();
  const topics = await Promise.all(
    req.topics.map(async (t) => ({
      name: t.name,
      partitions: await Promise.all(
        t.partitions.map(async (p) => {
          const leaderError = partitionLeader(deps, t.name, p.partitionIndex);
          if (leaderError !== undefined) return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: leaderError };
          // Internal topics hold other protocols' state (MQTT sessions, retained messages): not Kafka's to truncate.
          if (deps.meta.topic(t.name)?.internal) return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION };
          const shard = shardOf(t.name, p.partitionIndex);
          try {
            const info = await storage.shardInfo(shard);
            // -1 means "up to the high watermark".
            const upTo = p.offset === -1n ? info.endOffset : p.offset;
            if (upTo < 0n || upTo > info.endOffset) return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
            if (upTo > info.startOffset) await storage.truncateBefore(shard, upTo);
            return { partitionIndex: p.partitionIndex, lowWatermark: upTo > info.startOffset ? upTo : info.startOffset, errorCode: ErrorCode.NONE };
          } catch (err) {
            return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: storageErrorCode(err) };
          }
        }),
      ),
    })),
  );
  return { throttleTimeMs: 0, topics };
}
