/**
 * Consumer groups and their committed offsets, per (group, topic, shard) — the
 * Kafka __consumer_offsets / RocketMQ consumer-offset store, kept in the meta
 * log so any broker can serve OffsetFetch after a failover.
 *
 * A group exists from its first commit until `group.delete`. When a topic is
 * deleted its offsets are dropped from every group (otherwise a topic created
 * again under the same name would resume from the old incarnation's offsets).
 *
 * Whether the committed shard exists is checked by the broker before it
 * proposes (it holds the routes); offsets for unknown topics are kept, as
 * Kafka keeps them, and dropped only when a topic of that name is deleted.
 */
import { compareNumbers, compareStrings } from '../canonical.js';
import { Fields, checkList, invalid, type StrOpts } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput, type EventBase } from '../registry.js';
import { fail, ok } from '../result.js';
import { MAX_SHARDS, TOPIC_NAME, isTopicEvent } from './topics.js';

export const GROUP_NAME: StrOpts = { max: 255 };
const MAX_OFFSETS_PER_COMMIT = 100_000;

export interface CommittedOffset {
  readonly offset: number;
  readonly metadata?: string;
  readonly commitTimeMs: number;
}

export interface GroupOffset extends CommittedOffset {
  readonly topic: string;
  readonly shard: number;
}

export interface OffsetCommit {
  readonly topic: string;
  readonly shard: number;
  /** The next offset to consume (Kafka's convention); offsets are safe integers here, < 2^53. */
  readonly offset: number;
  readonly metadata?: string;
}

export interface GroupCommitOffsetsCommand {
  readonly kind: 'group.commitOffsets';
  readonly group: string;
  readonly offsets: readonly OffsetCommit[];
  readonly nowMs: number;
}

export interface GroupDeleteCommand {
  readonly kind: 'group.delete';
  readonly group: string;
}

export type GroupCommand = GroupCommitOffsetsCommand | GroupDeleteCommand;

export type GroupEvent =
  | { readonly type: 'group.offsetsCommitted'; readonly group: string; readonly offsets: readonly GroupOffset[] }
  | { readonly type: 'group.deleted'; readonly group: string }
  | { readonly type: 'group.offsetsDeleted'; readonly group: string; readonly topic: string };

/** group -> topic -> shard -> offset */
export type GroupsState = Map<string, Map<string, Map<number, CommittedOffset>>>;

export interface GroupsQuery {
  committed(group: string, topic: string, shard: number): CommittedOffset | undefined;
  has(group: string): boolean;
  /** Group names, sorted. */
  list(): string[];
  /** A group's offsets, by topic then shard; empty for an unknown group. */
  offsets(group: string): GroupOffset[];
}

function checkCommit(raw: unknown, where: string): OffsetCommit {
  const f = Fields.of(raw, where);
  const metadata = f.optStr('metadata', { min: 0, max: 4096 });
  return {
    topic: f.str('topic', TOPIC_NAME),
    shard: f.int('shard', { min: 0, max: MAX_SHARDS - 1 }),
    offset: f.int('offset', { min: 0 }),
    ...(metadata !== undefined ? { metadata } : {}),
  };
}

function validate(raw: unknown): GroupCommand {
  const kind = Fields.of(raw, 'group command').oneOf('kind', ['group.commitOffsets', 'group.delete'] as const);
  const f = Fields.of(raw, kind);
  const group = f.str('group', GROUP_NAME);
  if (kind === 'group.delete') return { kind, group };
  const offsets = f.list('offsets', checkCommit, { min: 1, max: MAX_OFFSETS_PER_COMMIT });
  const seen = new Set<string>();
  for (const o of offsets) {
    const key = `${o.topic}/${o.shard}`; // '/' cannot occur in a topic name
    if (seen.has(key)) invalid(`${kind}: shard ${o.shard} of topic '${o.topic}' is committed twice`);
    seen.add(key);
  }
  return { kind, group, offsets, nowMs: f.time('nowMs') };
}

function listOffsets(topics: ReadonlyMap<string, ReadonlyMap<number, CommittedOffset>>): GroupOffset[] {
  const out: GroupOffset[] = [];
  for (const topic of [...topics.keys()].sort(compareStrings)) {
    const shards = topics.get(topic) ?? new Map<number, CommittedOffset>();
    for (const shard of [...shards.keys()].sort(compareNumbers)) {
      const c = shards.get(shard);
      if (c) out.push({ topic, shard, ...c });
    }
  }
  return out;
}

function apply(groups: GroupsState, cmd: GroupCommand): ApplyOutput<GroupEvent> {
  if (cmd.kind === 'group.delete') {
    if (!groups.delete(cmd.group)) return { result: fail('not_found', `group '${cmd.group}' does not exist`), events: [] };
    return { result: ok(), events: [{ type: 'group.deleted', group: cmd.group }] };
  }
  const topics = groups.get(cmd.group) ?? new Map<string, Map<number, CommittedOffset>>();
  groups.set(cmd.group, topics);
  const committed: GroupOffset[] = [];
  for (const o of cmd.offsets) {
    const c: CommittedOffset = deepFreeze({ offset: o.offset, ...(o.metadata !== undefined ? { metadata: o.metadata } : {}), commitTimeMs: cmd.nowMs });
    let shards = topics.get(o.topic);
    if (!shards) topics.set(o.topic, (shards = new Map()));
    shards.set(o.shard, c);
    committed.push(deepFreeze({ topic: o.topic, shard: o.shard, ...c }));
  }
  return { result: ok(committed.length), events: [{ type: 'group.offsetsCommitted', group: cmd.group, offsets: committed }] };
}

function react(groups: GroupsState, event: EventBase): GroupEvent[] {
  if (!isTopicEvent(event) || event.type !== 'topic.deleted') return [];
  const topic = event.topic.name;
  const events: GroupEvent[] = [];
  for (const group of [...groups.keys()].sort(compareStrings)) {
    if (groups.get(group)?.delete(topic)) events.push({ type: 'group.offsetsDeleted', group, topic });
  }
  return events;
}

function parseGroup(raw: unknown, where: string): [string, Map<string, Map<number, CommittedOffset>>] {
  const f = Fields.of(raw, where);
  const group = f.str('group', GROUP_NAME);
  const topics = new Map<string, Map<number, CommittedOffset>>();
  const offsets = f.list('offsets', (v, w) => {
    const o = Fields.of(v, w);
    return { ...checkCommit(v, w), commitTimeMs: o.time('commitTimeMs') };
  });
  for (const o of offsets) {
    let shards = topics.get(o.topic);
    if (!shards) topics.set(o.topic, (shards = new Map()));
    if (shards.has(o.shard)) invalid(`${where}: shard ${o.shard} of '${o.topic}' appears twice`);
    shards.set(o.shard, deepFreeze({ offset: o.offset, ...(o.metadata !== undefined ? { metadata: o.metadata } : {}), commitTimeMs: o.commitTimeMs }));
  }
  return [group, topics];
}

export const groupsRecord = defineRecord({
  name: 'groups',
  commands: ['group.commitOffsets', 'group.delete'],
  initial: (): GroupsState => new Map(),
  validate,
  apply,
  react,
  snapshot: (groups: GroupsState) =>
    [...groups.keys()].sort(compareStrings).map((group) => ({ group, offsets: listOffsets(groups.get(group) ?? new Map()).map((o) => ({ ...o })) })),
  restore(json: unknown): GroupsState {
    const groups: GroupsState = new Map();
    for (const [group, topics] of checkList(json, 'groups', parseGroup)) {
      if (groups.has(group)) invalid(`groups: '${group}' appears twice`);
      groups.set(group, topics);
    }
    return groups;
  },
  query: (read: () => GroupsState): GroupsQuery => ({
    committed: (group, topic, shard) => read().get(group)?.get(topic)?.get(shard),
    has: (group) => read().has(group),
    list: () => [...read().keys()].sort(compareStrings),
    offsets: (group) => {
      const topics = read().get(group);
      return topics ? listOffsets(topics).map((o) => deepFreeze(o)) : [];
    },
  }),
});
