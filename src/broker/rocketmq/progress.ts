/**
 * Consumer progress (mqadmin's consumerProgress, and the lag gauge): per
 * consumer group and queue, the queue's end (the broker offset), the group's
 * offset, the lag between them and the messages in flight.
 *
 * The group's offset is the acked offset of this broker's pop state when it
 * has one (fresher than the last commit), else the offset committed in the
 * metadata, else — a queue of its topic the group has not read yet — where
 * it would start (`consume_from`). End offsets come from this broker's
 * storage, so a queue another broker serves shows no end and no lag here —
 * that broker reports it.
 *
 * Which groups are RocketMQ's: those that committed through this protocol
 * (their offsets carry the metadata ROCKETMQ_OFFSET_METADATA) and those whose
 * consumers this broker knows right now.
 */
import { shardId } from '../../meta/state/records/shards.js';
import type { ClientRegistry } from './clients.js';
import type { Consumption } from './consumption.js';
import type { RocketmqLagSample } from './metrics.js';
import type { RocketmqDeps } from './ports.js';

/** Marks offsets committed by RocketMQ consumers (pop acks and UpdateOffset), to tell their groups from Kafka's. */
export const ROCKETMQ_OFFSET_METADATA = 'rocketmq';

export interface CommittedQueueOffset {
  topic: string;
  queue: number;
  offset: number;
  metadata?: string;
  commitTimeMs: number;
}

/** Every group's committed offsets, as the metadata holds them. */
export interface GroupOffsetSource {
  groups(): string[];
  offsets(group: string): CommittedQueueOffset[];
}

export interface QueueProgress {
  topic: string;
  queue: number;
  /** The queue's end offset; null when another broker serves the queue. */
  brokerOffset: number | null;
  /** Where the group is: acked here, else committed, else where it would start; null for a queue served elsewhere without a commit. */
  consumerOffset: number | null;
  committedOffset: number | null;
  lag: number | null;
  inflight: number;
  lastCommitMs: number | null;
}

export interface GroupProgress {
  group: string;
  /** Consumers of the group known to this broker. */
  clients: Array<{ clientId: string; type: string; topics: string[]; lastSeenMs: number }>;
  queues: QueueProgress[];
  totalLag: number;
  inflight: number;
}

export class ConsumerProgress {
  constructor(
    private readonly deps: RocketmqDeps,
    private readonly consumption: Consumption,
    private readonly clients: ClientRegistry,
    private readonly offsets: GroupOffsetSource,
  ) {}

  /** RocketMQ consumer groups, sorted. */
  groups(): string[] {
    const out = new Set<string>();
    for (const g of this.offsets.groups()) if (this.offsets.offsets(g).some((o) => o.metadata === ROCKETMQ_OFFSET_METADATA)) out.add(g);
    for (const c of this.clients.list()) if (c.group !== undefined && isConsumer(c.type)) out.add(c.group);
    return [...out].sort();
  }

  has(group: string): boolean {
    return this.groups().includes(group);
  }

  async group(group: string): Promise<GroupProgress> {
    const committed = new Map<string, CommittedQueueOffset>();
    const topics = new Set<string>();
    for (const o of this.offsets.offsets(group)) {
      committed.set(`${o.topic}\u0000${o.queue}`, o);
      topics.add(o.topic);
    }
    const clients = this.clients.list().filter((c) => c.group === group && isConsumer(c.type));
    for (const c of clients) for (const t of c.topics) topics.add(t);
    const queues: QueueProgress[] = [];
    for (const name of [...topics].sort()) {
      const topic = this.deps.meta.topic(name);
      if (!topic) continue;
      const served = new Set(this.deps.meta.servedQueues(name));
      for (let queue = 0; queue < topic.queues; queue++) {
        const c = committed.get(`${name}\u0000${queue}`);
        const state = served.has(queue) ? this.consumption.find(group, topic, queue) : undefined;
        const bounds = served.has(queue) ? await this.bounds(shardId(name, queue)) : undefined;
        const brokerOffset = bounds?.end ?? null;
        const startsAt = bounds === undefined ? null : this.deps.settings.consumeFrom === 'first' ? bounds.start : bounds.end;
        const consumerOffset = state ? Number(state.pop.ackedOffset) : (c?.offset ?? startsAt);
        queues.push({
          topic: name,
          queue,
          brokerOffset,
          consumerOffset,
          committedOffset: c?.offset ?? null,
          lag: brokerOffset !== null && consumerOffset !== null ? Math.max(0, brokerOffset - consumerOffset) : null,
          inflight: state?.pop.inflightCount ?? 0,
          lastCommitMs: c?.commitTimeMs ?? null,
        });
      }
    }
    return {
      group,
      clients: clients.map((c) => ({ clientId: c.clientId, type: c.type, topics: [...c.topics], lastSeenMs: c.lastSeenMs })),
      queues,
      totalLag: queues.reduce((n, q) => n + (q.lag ?? 0), 0),
      inflight: queues.reduce((n, q) => n + q.inflight, 0),
    };
  }

  /** Lag per group and topic over the queues this broker serves (the gauge's samples). */
  async lag(): Promise<RocketmqLagSample[]> {
    const out: RocketmqLagSample[] = [];
    for (const group of this.groups()) {
      const byTopic = new Map<string, number>();
      for (const q of (await this.group(group)).queues) if (q.lag !== null) byTopic.set(q.topic, (byTopic.get(q.topic) ?? 0) + q.lag);
      for (const [topic, lag] of byTopic) out.push({ group, topic, lag });
    }
    return out;
  }

  private async bounds(shard: string): Promise<{ start: number; end: number } | undefined> {
    try {
      const info = await this.deps.storage().shardInfo(shard);
      return { start: Number(info.startOffset), end: Number(info.endOffset) };
    } catch {
      // The shard closed between the route lookup and this read (leadership moved): no figure rather than a failed scrape.
      return undefined;
    }
  }
}

function isConsumer(type: string): boolean {
  return type === 'SIMPLE_CONSUMER' || type === 'PUSH_CONSUMER' || type === 'PULL_CONSUMER';
}
