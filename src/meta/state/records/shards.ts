/**
 * Shard placement: for every shard of every topic, its leader, replica set and
 * epoch — the answer to Kafka Metadata / RocketMQ QueryRoute once joined with
 * node addresses.
 *
 * Shards are not created by commands of their own: this record type follows the
 * topics record type's events (created with the topic, grown by addShards,
 * dropped with it), so a topic and its shards always change in the same entry.
 *
 * Shard ids are `${topic}-${n}` (n = 0-based shard number), Kafka's partition
 * directory naming. The id is unambiguous — topic names may contain '-' but the
 * part after the last '-' is always the number. It is reused when a topic is
 * deleted and created again, so each placement also carries `topicId` (the
 * topic's creating index) for storage to tell incarnations apart.
 */
import { compareStrings } from '../canonical.js';
import { Fields, checkList, checkNodeSet, invalid } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput, type EventBase } from '../registry.js';
import { fail, ok } from '../result.js';
import { MAX_SHARDS, TOPIC_NAME, isTopicEvent } from './topics.js';

/** Most replicas a shard may have (Kafka allows more, but nobody runs 17 copies). */
export const MAX_REPLICAS = 16;

export interface ShardPlacement {
  /** `${topic}-${shard}` */
  readonly id: string;
  readonly topic: string;
  readonly topicId: number;
  readonly shard: number;
  /** 0 = no leader (not yet placed, or waiting for an election). */
  readonly leader: number;
  readonly replicas: readonly number[];
  /** Bumped by every assignment; a leader fences writes from older epochs. */
  readonly epoch: number;
}

export interface ShardAssignCommand {
  readonly kind: 'shard.assign';
  readonly topic: string;
  readonly shard: number;
  /** 0, or one of `replicas`. */
  readonly leader: number;
  readonly replicas: readonly number[];
  /** Compare-and-set: if given, the assignment only applies at this epoch ('conflict' otherwise). */
  readonly expectedEpoch?: number;
}

export type ShardCommand = ShardAssignCommand;

export type ShardEvent =
  | { readonly type: 'shard.created'; readonly topic: string; readonly shards: readonly ShardPlacement[] }
  | { readonly type: 'shard.removed'; readonly topic: string; readonly shards: readonly ShardPlacement[] }
  | { readonly type: 'shard.assigned'; readonly shard: ShardPlacement; readonly previous: ShardPlacement };

/** topic name -> placements indexed by shard number */
export type ShardsState = Map<string, readonly ShardPlacement[]>;

export interface ShardsQuery {
  get(topic: string, shard: number): ShardPlacement | undefined;
  byId(shardId: string): ShardPlacement | undefined;
  /** The topic's shards in shard order; empty for an unknown topic. */
  forTopic(topic: string): readonly ShardPlacement[];
  /** Shards that list the node as a replica, by topic then shard (what a broker must serve). */
  onNode(nodeId: number): ShardPlacement[];
}

export function shardId(topic: string, shard: number): string {
  return `${topic}-${shard}`;
}

export function parseShardId(id: string): { topic: string; shard: number } | undefined {
  const dash = id.lastIndexOf('-');
  const num = id.slice(dash + 1);
  if (dash < 1 || !/^(0|[1-9]\d*)$/.test(num)) return undefined;
  return { topic: id.slice(0, dash), shard: Number(num) };
}

function placement(topic: string, topicId: number, shard: number, leader: number, replicas: readonly number[], epoch: number): ShardPlacement {
  return deepFreeze({ id: shardId(topic, shard), topic, topicId, shard, leader, replicas: [...replicas], epoch });
}

function checkLeader(f: Fields, replicas: readonly number[]): number {
  const leader = f.int('leader', { min: 0 });
  if (leader !== 0 && !replicas.includes(leader)) invalid(`${f.where}: leader ${leader} is not one of the replicas`);
  return leader;
}

function validate(raw: unknown): ShardCommand {
  const f = Fields.of(raw, 'shard.assign');
  f.oneOf('kind', ['shard.assign'] as const);
  const replicas = f.nodeSet('replicas', { max: MAX_REPLICAS });
  const expectedEpoch = f.optInt('expectedEpoch', { min: 0 });
  return {
    kind: 'shard.assign',
    topic: f.str('topic', TOPIC_NAME),
    shard: f.int('shard', { min: 0, max: MAX_SHARDS - 1 }),
    leader: checkLeader(f, replicas),
    replicas,
    ...(expectedEpoch !== undefined ? { expectedEpoch } : {}),
  };
}

function apply(state: ShardsState, cmd: ShardCommand): ApplyOutput<ShardEvent> {
  const shards = state.get(cmd.topic);
  const previous = shards?.[cmd.shard];
  if (!shards || !previous) return { result: fail('not_found', `shard ${cmd.shard} of topic '${cmd.topic}' does not exist`), events: [] };
  if (cmd.expectedEpoch !== undefined && cmd.expectedEpoch !== previous.epoch) {
    return { result: fail('conflict', `shard ${previous.id} is at epoch ${previous.epoch}, not ${cmd.expectedEpoch}`), events: [] };
  }
  const next = placement(previous.topic, previous.topicId, previous.shard, cmd.leader, cmd.replicas, previous.epoch + 1);
  const updated = [...shards];
  updated[cmd.shard] = next;
  state.set(cmd.topic, Object.freeze(updated));
  return { result: ok(next), events: [{ type: 'shard.assigned', shard: next, previous }] };
}

function react(state: ShardsState, event: EventBase): ShardEvent[] {
  if (!isTopicEvent(event)) return [];
  const { topic } = event;
  switch (event.type) {
    case 'topic.created':
    case 'topic.shardsAdded': {
      const existing = state.get(topic.name) ?? [];
      const added: ShardPlacement[] = [];
      for (let n = existing.length; n < topic.shards; n++) added.push(placement(topic.name, topic.id, n, 0, [], 0));
      if (added.length === 0) return [];
      state.set(topic.name, Object.freeze([...existing, ...added]));
      return [{ type: 'shard.created', topic: topic.name, shards: added }];
    }
    case 'topic.deleted': {
      const removed = state.get(topic.name);
      if (!removed) return [];
      state.delete(topic.name);
      return [{ type: 'shard.removed', topic: topic.name, shards: removed }];
    }
    case 'topic.configUpdated':
      return [];
  }
}

// A type alias, not an interface: only aliases are assignable to the Json index signature.
type TopicShardsJson = {
  topic: string;
  topicId: number;
  shards: { leader: number; replicas: number[]; epoch: number }[];
};

function parseTopicShards(raw: unknown, where: string): readonly ShardPlacement[] {
  const f = Fields.of(raw, where);
  const topic = f.str('topic', TOPIC_NAME);
  const topicId = f.int('topicId', { min: 1 });
  const shards = f.list(
    'shards',
    (v, w) => {
      const s = Fields.of(v, w);
      const replicas = checkNodeSet(s.raw('replicas'), `${w}.replicas`, { max: MAX_REPLICAS });
      return { leader: checkLeader(s, replicas), replicas, epoch: s.int('epoch', { min: 0 }) };
    },
    { min: 1, max: MAX_SHARDS },
  );
  return Object.freeze(shards.map((s, n) => placement(topic, topicId, n, s.leader, s.replicas, s.epoch)));
}

export const shardsRecord = defineRecord({
  name: 'shards',
  commands: ['shard.assign'],
  initial: (): ShardsState => new Map(),
  validate,
  apply,
  react,
  snapshot: (state: ShardsState): TopicShardsJson[] =>
    [...state.entries()]
      .sort(([a], [b]) => compareStrings(a, b))
      .map(([topic, shards]) => ({
        topic,
        topicId: shards[0]?.topicId ?? 0,
        shards: shards.map((s) => ({ leader: s.leader, replicas: [...s.replicas], epoch: s.epoch })),
      })),
  restore(json: unknown): ShardsState {
    const state: ShardsState = new Map();
    for (const shards of checkList(json, 'shards', parseTopicShards)) {
      const topic = shards[0]?.topic ?? '';
      if (state.has(topic)) invalid(`shards: topic '${topic}' appears twice`);
      state.set(topic, shards);
    }
    return state;
  },
  query: (read: () => ShardsState): ShardsQuery => ({
    get: (topic, shard) => read().get(topic)?.[shard],
    byId(id) {
      const parsed = parseShardId(id);
      return parsed ? read().get(parsed.topic)?.[parsed.shard] : undefined;
    },
    forTopic: (topic) => read().get(topic) ?? [],
    onNode(nodeId) {
      const out: ShardPlacement[] = [];
      for (const [, shards] of [...read().entries()].sort(([a], [b]) => compareStrings(a, b))) {
        for (const s of shards) if (s.replicas.includes(nodeId)) out.push(s);
      }
      return out;
    },
  }),
});
