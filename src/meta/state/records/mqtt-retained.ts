/**
 * Index of MQTT retained messages: topic name -> where the retained message is
 * stored (shard id + offset). The payload stays in storage; the log only carries
 * the pointer, so a 256 MB retained message costs one small entry.
 */
import { sortedValues } from '../canonical.js';
import { Fields, checkList, invalid, type StrOpts } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput } from '../registry.js';
import { fail, ok } from '../result.js';
import { checkMqttFilter, checkMqttTopic, mqttFilterMatches } from './mqtt-topic.js';

const SHARD_ID: StrOpts = { max: 512 };

export interface RetainedEntry {
  readonly topic: string;
  /** Storage shard id holding the message. */
  readonly shard: string;
  readonly offset: number;
  readonly updatedAtMs: number;
}

export interface MqttRetainedSetCommand {
  readonly kind: 'mqtt.retained.set';
  readonly topic: string;
  readonly shard: string;
  readonly offset: number;
  readonly nowMs: number;
}

export interface MqttRetainedClearCommand {
  readonly kind: 'mqtt.retained.clear';
  readonly topic: string;
}

export type MqttRetainedCommand = MqttRetainedSetCommand | MqttRetainedClearCommand;

export type MqttRetainedEvent =
  | { readonly type: 'mqtt.retained.set'; readonly entry: RetainedEntry; readonly previous?: RetainedEntry }
  | { readonly type: 'mqtt.retained.cleared'; readonly entry: RetainedEntry };

export type MqttRetainedState = Map<string, RetainedEntry>;

export interface MqttRetainedQuery {
  get(topic: string): RetainedEntry | undefined;
  /** Sorted by topic. */
  list(): RetainedEntry[];
  /** Retained messages a new subscription with this filter receives, sorted by topic. Throws MetaCommandError for an invalid filter. */
  match(filter: string): RetainedEntry[];
}

function parseEntry(raw: unknown, where: string): RetainedEntry {
  const f = Fields.of(raw, where);
  return deepFreeze({
    topic: checkMqttTopic(f.raw('topic'), `${where}.topic`),
    shard: f.str('shard', SHARD_ID),
    offset: f.int('offset', { min: 0 }),
    updatedAtMs: f.time('updatedAtMs'),
  });
}

function validate(raw: unknown): MqttRetainedCommand {
  const kind = Fields.of(raw, 'mqtt retained command').oneOf('kind', ['mqtt.retained.set', 'mqtt.retained.clear'] as const);
  const f = Fields.of(raw, kind);
  const topic = checkMqttTopic(f.raw('topic'), `${kind}: 'topic'`);
  if (kind === 'mqtt.retained.clear') return { kind, topic };
  return { kind, topic, shard: f.str('shard', SHARD_ID), offset: f.int('offset', { min: 0 }), nowMs: f.time('nowMs') };
}

function apply(index: MqttRetainedState, cmd: MqttRetainedCommand): ApplyOutput<MqttRetainedEvent> {
  const previous = index.get(cmd.topic);
  if (cmd.kind === 'mqtt.retained.clear') {
    if (!previous) return { result: fail('not_found', `no retained message on '${cmd.topic}'`), events: [] };
    index.delete(cmd.topic);
    return { result: ok(), events: [{ type: 'mqtt.retained.cleared', entry: previous }] };
  }
  const entry: RetainedEntry = deepFreeze({ topic: cmd.topic, shard: cmd.shard, offset: cmd.offset, updatedAtMs: cmd.nowMs });
  index.set(entry.topic, entry);
  return { result: ok(entry), events: [{ type: 'mqtt.retained.set', entry, ...(previous ? { previous } : {}) }] };
}

export const mqttRetainedRecord = defineRecord({
  name: 'mqttRetained',
  commands: ['mqtt.retained.set', 'mqtt.retained.clear'],
  initial: (): MqttRetainedState => new Map(),
  validate,
  apply,
  snapshot: (index: MqttRetainedState) => sortedValues(index).map((e) => ({ ...e })),
  restore(json: unknown): MqttRetainedState {
    const index: MqttRetainedState = new Map();
    for (const e of checkList(json, 'mqttRetained', parseEntry)) {
      if (index.has(e.topic)) invalid(`mqttRetained: '${e.topic}' appears twice`);
      index.set(e.topic, e);
    }
    return index;
  },
  query: (read: () => MqttRetainedState): MqttRetainedQuery => ({
    get: (topic) => read().get(topic),
    list: () => sortedValues(read()),
    match(filter) {
      checkMqttFilter(filter, 'filter');
      return sortedValues(read()).filter((e) => mqttFilterMatches(filter, e.topic));
    },
  }),
});
