/**
 * Appends RocketMQ messages to a topic where consumers see them: one of the
 * topic's queues this broker serves — by message group for FIFO so a group
 * stays in one queue and in order, round robin otherwise — and hands them to
 * other protocols' live subscribers (MQTT) of the same topic. Used by every
 * path that makes a message visible: a plain send, a delay message coming
 * due, a transaction committed, a message moved to a dead-letter topic.
 */
import { createHash } from 'node:crypto';
import { shardId } from '../../meta/state/records/shards.js';
import type { AppendRecord } from '../../storage/types.js';
import { RocketmqError } from './errors.js';
import type { RocketmqDeps } from './ports.js';
import { SYSTEM_HEADER_PREFIX } from './records.js';

const PLACEMENT_WAIT_MS = 5000;

function groupHash(group: string): number {
  return createHash('sha1').update(group).digest().readUInt32BE(0);
}

export class TopicWriter {
  private readonly roundRobin = new Map<string, number>();

  constructor(private readonly deps: RocketmqDeps) {}

  /** Appends the records (all of one message group, or none) to one queue of the topic, atomically. */
  async write(topic: string, records: AppendRecord[], messageGroup: string | undefined): Promise<{ queue: number; baseOffset: bigint }> {
    if (!this.deps.meta.topic(topic)) throw new RocketmqError('TOPIC_NOT_FOUND', `topic "${topic}" does not exist`);
    const queue = await this.pickQueue(topic, messageGroup);
    const { baseOffset } = await this.deps.storage().append(shardId(topic, queue), records);
    this.publishToOthers(topic, records);
    return { queue, baseOffset };
  }

  private async pickQueue(topic: string, messageGroup: string | undefined): Promise<number> {
    let queues = this.deps.meta.servedQueues(topic);
    if (queues.length === 0) {
      await this.deps.meta.waitForQueues(topic, PLACEMENT_WAIT_MS);
      queues = this.deps.meta.servedQueues(topic);
    }
    if (queues.length === 0) throw new RocketmqError('HA_NOT_AVAILABLE', `no queue of topic "${topic}" is served by broker ${this.deps.meta.nodeId} yet`);
    if (messageGroup !== undefined) return queues[groupHash(messageGroup) % queues.length]!;
    const n = this.roundRobin.get(topic) ?? 0;
    this.roundRobin.set(topic, (n + 1) % 1_000_000_007);
    return queues[n % queues.length]!;
  }

  private publishToOthers(topic: string, records: AppendRecord[]): void {
    const bus = this.deps.bus;
    if (!bus || !bus.interested(topic)) return;
    bus.published(records.map((r) => ({ topic, key: r.key, value: r.value, headers: r.headers.filter((h) => !h.key.startsWith(SYSTEM_HEADER_PREFIX)), timestamp: r.timestamp })));
  }
}
