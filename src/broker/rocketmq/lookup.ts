/**
 * Finding stored messages by key or by message id (mqadmin's queryMsgByKey
 * and queryMsgById). Storage keeps no index of keys or ids, so a lookup scans:
 * on each queue of the topic this broker serves, at most `scanPerQueue`
 * messages — the newest ones, or for an id that carries its send time, those
 * stored from shortly before that time on. A message older than the scanned
 * window is not found; the answer says how much was scanned.
 */
import { shardId } from '../../meta/state/records/shards.js';
import type { StoredRecord } from '../../storage/types.js';
import { messageIdTime } from './message-id.js';
import type { RocketmqDeps, RocketmqTopic } from './ports.js';
import type { Message } from './proto.js';
import { toMessage } from './records.js';

export interface LookupLimits {
  /** Messages read per queue at most. */
  scanPerQueue: number;
  /** Matches returned at most. */
  maxResults: number;
}

export interface FoundMessage {
  queue: number;
  offset: number;
  message: Message;
}

export interface LookupResult {
  found: FoundMessage[];
  /** Messages read, over all queues. */
  scanned: number;
  /** Queues scanned here, and queues of the topic served by other brokers (ask those). */
  queuesScanned: number[];
  queuesElsewhere: number[];
  /** Whether some queue had older messages than the scan reached. */
  partial: boolean;
}

/** A send time read from a message id is trusted to within this much (clocks of clients and broker differ). */
const ID_TIME_SLACK_MS = 5 * 60 * 1000;
const READ_CHUNK = 512;
const READ_MAX_BYTES = 8 * 1024 * 1024;

export function findByKey(deps: RocketmqDeps, topic: RocketmqTopic, key: string, limits: LookupLimits): Promise<LookupResult> {
  return scan(deps, topic, limits, undefined, (m) => (m.systemProperties?.keys ?? []).includes(key));
}

export async function findById(deps: RocketmqDeps, topic: RocketmqTopic, id: string, limits: LookupLimits): Promise<LookupResult> {
  const one = { ...limits, maxResults: 1 };
  const matches = (m: Message): boolean => m.systemProperties?.messageId === id;
  const sentAt = messageIdTime(id);
  if (sentAt !== undefined) {
    const near = await scan(deps, topic, one, sentAt - ID_TIME_SLACK_MS, matches);
    if (near.found.length > 0) return near;
  }
  // No time in the id, or a clock far off: the newest messages.
  return scan(deps, topic, one, undefined, matches);
}

async function scan(deps: RocketmqDeps, topic: RocketmqTopic, limits: LookupLimits, fromTimeMs: number | undefined, matches: (m: Message) => boolean): Promise<LookupResult> {
  const storage = deps.storage();
  const served = new Set(deps.meta.servedQueues(topic.name));
  const { host, port } = deps.advertised();
  const result: LookupResult = { found: [], scanned: 0, queuesScanned: [], queuesElsewhere: [], partial: false };
  for (let queue = 0; queue < topic.queues; queue++) {
    if (!served.has(queue)) {
      result.queuesElsewhere.push(queue);
      continue;
    }
    result.queuesScanned.push(queue);
    if (result.found.length >= limits.maxResults) continue;
    const shard = shardId(topic.name, queue);
    const info = await storage.shardInfo(shard);
    let from = info.endOffset - BigInt(limits.scanPerQueue);
    if (fromTimeMs !== undefined) {
      const at = await storage.offsetForTime(shard, fromTimeMs);
      if (at > from) from = at;
    }
    if (from < info.startOffset) from = info.startOffset;
    else if (from > info.startOffset) result.partial = true;
    const end = from + BigInt(limits.scanPerQueue) < info.endOffset ? from + BigInt(limits.scanPerQueue) : info.endOffset;
    if (end < info.endOffset) result.partial = true;
    let next = from;
    while (next < end && result.found.length < limits.maxResults) {
      const want = Number(end - next < BigInt(READ_CHUNK) ? end - next : BigInt(READ_CHUNK));
      const records: StoredRecord[] = await storage.read(shard, next, { maxRecords: want, maxBytes: READ_MAX_BYTES });
      if (records.length === 0) break;
      for (const r of records) {
        if (r.offset >= end) break;
        result.scanned++;
        const info = { topic: topic.name, queue, shard, receiptHandle: '', attempt: 0, invisibleMs: 0, storeHost: `${host}:${port}` };
        // Matching looks at keys and ids only: leave the body out so a scan does not digest every body it passes.
        if (matches(toMessage({ ...r, value: null }, info))) {
          result.found.push({ queue, offset: Number(r.offset), message: toMessage(r, info) });
          if (result.found.length >= limits.maxResults) break;
        }
      }
      next = records[records.length - 1]!.offset + 1n;
    }
  }
  return result;
}
