/**
 * Topics: name, shard count, storage engine and per-topic config. Shard
 * placement lives in the shards record type, which follows these events.
 *
 * A topic's `id` is the Raft index of the entry that created it: unique, the same
 * on every node, and different for a topic deleted and created again under the
 * same name, so storage and caches can tell the two incarnations apart.
 */
import type { StorageEngineName } from '../../../common/config/schema.js';
import { objectFromMap, sortedValues } from '../canonical.js';
import { Fields, checkList, checkStr, invalid, type StrOpts } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyContext, type ApplyOutput, type EventBase } from '../registry.js';
import { fail, ok } from '../result.js';

export const STORAGE_ENGINES = ['memory', 'file', 'journal', 's3'] as const satisfies readonly StorageEngineName[];
export type StorageEngine = (typeof STORAGE_ENGINES)[number];

export const MAX_SHARDS = 10_000;

/** Kafka's rule: 1..249 of [a-zA-Z0-9._-], and not '.' or '..' (they are directory names). */
const TOPIC_NAME_RE = /^(?!\.\.?$)[a-zA-Z0-9._-]+$/;

/** RocketMQ's system topics of a consumer group: its dead letters and its retries. */
export const DLQ_PREFIX = '%DLQ%';
export const RETRY_PREFIX = '%RETRY%';
/**
 * What meta stores: Kafka's rule, or one of RocketMQ's system prefixes before
 * a name that follows it. `%` is allowed there only, so every other topic name
 * stays one Kafka and MQTT clients can use as it is (storage escapes `%` in
 * file names).
 */
const STORED_TOPIC_NAME_RE = /^(?:%DLQ%|%RETRY%)?(?!\.\.?$)[a-zA-Z0-9._-]+$/;
export const TOPIC_NAME: StrOpts = {
  max: 249,
  pattern: STORED_TOPIC_NAME_RE,
  patternText: "1..249 characters of [a-zA-Z0-9._-], not '.' or '..', optionally after RocketMQ's %DLQ% or %RETRY% prefix",
};

const CONFIG_KEY: StrOpts = { max: 255, pattern: /^[a-zA-Z0-9._-]+$/, patternText: 'made of [a-zA-Z0-9._-]' };
const CONFIG_VALUE: StrOpts = { min: 0, max: 65_536 };
const CONFIG_MAX_KEYS = 1000;

/** Kafka's topic name rule (what Kafka clients may create). */
export function isValidTopicName(name: string): boolean {
  return name.length <= 249 && TOPIC_NAME_RE.test(name);
}

/** Any name meta stores: Kafka's rule, or a RocketMQ %DLQ% / %RETRY% system topic. */
export function isValidStoredTopicName(name: string): boolean {
  return name.length <= 249 && STORED_TOPIC_NAME_RE.test(name);
}

export interface TopicRecord {
  /** Raft index of the creating entry. */
  readonly id: number;
  readonly name: string;
  readonly shards: number;
  readonly engine: StorageEngine;
  /** -1 = keep forever (Kafka's convention); absent = the cluster default. */
  readonly retentionMs?: number;
  readonly retentionBytes?: number;
  readonly config: Readonly<Record<string, string>>;
  /** The protocol that created it ('mqtt', 'kafka', 'rocketmq'), if it matters to that protocol. */
  readonly protocol?: string;
  readonly createdAtMs: number;
}

export interface TopicCreateCommand {
  readonly kind: 'topic.create';
  readonly name: string;
  readonly shards: number;
  readonly engine: StorageEngine;
  readonly retentionMs?: number;
  readonly retentionBytes?: number;
  readonly config?: Readonly<Record<string, string>>;
  readonly protocol?: string;
  readonly nowMs: number;
}

export interface TopicDeleteCommand {
  readonly kind: 'topic.delete';
  readonly name: string;
}

export interface TopicUpdateConfigCommand {
  readonly kind: 'topic.updateConfig';
  readonly name: string;
  readonly set: Readonly<Record<string, string>>;
  readonly unset: readonly string[];
}

export interface TopicAddShardsCommand {
  readonly kind: 'topic.addShards';
  readonly name: string;
  /** The new total, larger than the current count (shards are never removed: keys would re-hash). */
  readonly shards: number;
}

export type TopicCommand = TopicCreateCommand | TopicDeleteCommand | TopicUpdateConfigCommand | TopicAddShardsCommand;

export type TopicEvent =
  | { readonly type: 'topic.created'; readonly topic: TopicRecord }
  | { readonly type: 'topic.deleted'; readonly topic: TopicRecord }
  | { readonly type: 'topic.configUpdated'; readonly topic: TopicRecord; readonly previous: TopicRecord }
  | { readonly type: 'topic.shardsAdded'; readonly topic: TopicRecord; readonly previousShards: number };

const TOPIC_EVENT_TYPES: ReadonlySet<string> = new Set<TopicEvent['type']>(['topic.created', 'topic.deleted', 'topic.configUpdated', 'topic.shardsAdded']);

/** For record types that react to topic changes (shards, offsets). */
export function isTopicEvent(event: EventBase): event is TopicEvent {
  return TOPIC_EVENT_TYPES.has(event.type);
}

export type TopicsState = Map<string, TopicRecord>;

export interface TopicsQuery {
  get(name: string): TopicRecord | undefined;
  has(name: string): boolean;
  /** Sorted by name. */
  list(): TopicRecord[];
  names(): string[];
}

function retention(f: Fields, key: string): number | undefined {
  return f.optInt(key, { min: -1 });
}

function topicConfig(f: Fields, key: string): Map<string, string> | undefined {
  return f.optStrMap(key, { key: CONFIG_KEY, value: CONFIG_VALUE, maxKeys: CONFIG_MAX_KEYS });
}

function parseTopic(raw: unknown, where: string): TopicRecord {
  const f = Fields.of(raw, where);
  const retentionMs = retention(f, 'retentionMs');
  const retentionBytes = retention(f, 'retentionBytes');
  const protocol = f.optStr('protocol', { max: 64 });
  return deepFreeze({
    id: f.int('id', { min: 1 }),
    name: f.str('name', TOPIC_NAME),
    shards: f.int('shards', { min: 1, max: MAX_SHARDS }),
    engine: f.oneOf('engine', STORAGE_ENGINES),
    ...(retentionMs !== undefined ? { retentionMs } : {}),
    ...(retentionBytes !== undefined ? { retentionBytes } : {}),
    config: objectFromMap(topicConfig(f, 'config') ?? new Map()),
    ...(protocol !== undefined ? { protocol } : {}),
    createdAtMs: f.time('createdAtMs'),
  });
}

const KINDS = ['topic.create', 'topic.delete', 'topic.updateConfig', 'topic.addShards'] as const;

function validate(raw: unknown): TopicCommand {
  const kind = Fields.of(raw, 'topic command').oneOf('kind', KINDS);
  const f = Fields.of(raw, kind);
  const name = f.str('name', TOPIC_NAME);
  switch (kind) {
    case 'topic.create': {
      const retentionMs = retention(f, 'retentionMs');
      const retentionBytes = retention(f, 'retentionBytes');
      const config = topicConfig(f, 'config');
      const protocol = f.optStr('protocol', { max: 64 });
      return {
        kind,
        name,
        shards: f.int('shards', { min: 1, max: MAX_SHARDS }),
        engine: f.oneOf('engine', STORAGE_ENGINES),
        ...(retentionMs !== undefined ? { retentionMs } : {}),
        ...(retentionBytes !== undefined ? { retentionBytes } : {}),
        ...(config !== undefined ? { config: objectFromMap(config) } : {}),
        ...(protocol !== undefined ? { protocol } : {}),
        nowMs: f.time('nowMs'),
      };
    }
    case 'topic.delete':
      return { kind, name };
    case 'topic.updateConfig': {
      const set = f.has('set') ? f.strMap('set', { key: CONFIG_KEY, value: CONFIG_VALUE, maxKeys: CONFIG_MAX_KEYS }) : new Map<string, string>();
      const unset = f.has('unset') ? checkList(f.raw('unset'), `${kind}: 'unset'`, (v, w) => checkStr(v, w, CONFIG_KEY), { max: CONFIG_MAX_KEYS }) : [];
      const both = unset.find((k) => set.has(k));
      if (both !== undefined) invalid(`${kind}: key '${both}' is both set and unset`);
      return { kind, name, set: objectFromMap(set), unset };
    }
    case 'topic.addShards':
      return { kind, name, shards: f.int('shards', { min: 1, max: MAX_SHARDS }) };
  }
}

function notFound(name: string): ApplyOutput<TopicEvent> {
  return { result: fail('not_found', `topic '${name}' does not exist`), events: [] };
}

function apply(topics: TopicsState, cmd: TopicCommand, ctx: ApplyContext): ApplyOutput<TopicEvent> {
  switch (cmd.kind) {
    case 'topic.create': {
      if (topics.has(cmd.name)) return { result: fail('already_exists', `topic '${cmd.name}' already exists`), events: [] };
      const topic: TopicRecord = deepFreeze({
        id: ctx.index,
        name: cmd.name,
        shards: cmd.shards,
        engine: cmd.engine,
        ...(cmd.retentionMs !== undefined ? { retentionMs: cmd.retentionMs } : {}),
        ...(cmd.retentionBytes !== undefined ? { retentionBytes: cmd.retentionBytes } : {}),
        config: { ...cmd.config },
        ...(cmd.protocol !== undefined ? { protocol: cmd.protocol } : {}),
        createdAtMs: cmd.nowMs,
      });
      topics.set(topic.name, topic);
      return { result: ok(topic), events: [{ type: 'topic.created', topic }] };
    }
    case 'topic.delete': {
      const topic = topics.get(cmd.name);
      if (!topic) return notFound(cmd.name);
      topics.delete(cmd.name);
      return { result: ok(topic), events: [{ type: 'topic.deleted', topic }] };
    }
    case 'topic.updateConfig': {
      const previous = topics.get(cmd.name);
      if (!previous) return notFound(cmd.name);
      const config = new Map(Object.entries(previous.config));
      for (const [k, v] of Object.entries(cmd.set)) config.set(k, v);
      for (const k of cmd.unset) config.delete(k);
      if (config.size > CONFIG_MAX_KEYS) return { result: fail('invalid', `topic '${cmd.name}' would have more than ${CONFIG_MAX_KEYS} config keys`), events: [] };
      const next = objectFromMap(config);
      if (sameConfig(previous.config, next)) return { result: ok(previous), events: [] };
      const topic: TopicRecord = deepFreeze({ ...previous, config: next });
      topics.set(topic.name, topic);
      return { result: ok(topic), events: [{ type: 'topic.configUpdated', topic, previous }] };
    }
    case 'topic.addShards': {
      const previous = topics.get(cmd.name);
      if (!previous) return notFound(cmd.name);
      if (cmd.shards <= previous.shards) {
        return { result: fail('invalid', `topic '${cmd.name}' has ${previous.shards} shards; the new total must be larger, got ${cmd.shards}`), events: [] };
      }
      const topic: TopicRecord = deepFreeze({ ...previous, shards: cmd.shards });
      topics.set(topic.name, topic);
      return { result: ok(topic), events: [{ type: 'topic.shardsAdded', topic, previousShards: previous.shards }] };
    }
  }
}

function sameConfig(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ak = Object.keys(a);
  return ak.length === Object.keys(b).length && ak.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

export const topicsRecord = defineRecord({
  name: 'topics',
  commands: KINDS,
  initial: (): TopicsState => new Map(),
  validate,
  apply,
  snapshot: (topics: TopicsState) => sortedValues(topics).map((t) => ({ ...t, config: { ...t.config } })),
  restore(json: unknown): TopicsState {
    const topics: TopicsState = new Map();
    for (const t of checkList(json, 'topics', parseTopic)) {
      if (topics.has(t.name)) invalid(`topics: '${t.name}' appears twice`);
      topics.set(t.name, t);
    }
    return topics;
  },
  query: (read: () => TopicsState): TopicsQuery => ({
    get: (name) => read().get(name),
    has: (name) => read().has(name),
    list: () => sortedValues(read()),
    names: () => sortedValues(read()).map((t) => t.name),
  }),
});
