/**
 * Topic administration: CreateTopics (v0-4), DeleteTopics (v0-3),
 * CreatePartitions (v0-1), DescribeConfigs (v0-2), AlterConfigs (v0-1).
 *
 * Topic configs are Kafka's names. The ones this broker acts on are checked:
 * retention.ms / retention.bytes (storage retention), compression.type (how
 * Fetch sends records), message.timestamp.type, max.message.bytes, and our
 * own `flush` (sync|async). Other well-known Kafka keys are accepted and kept
 * (cleanup.policy=compact is kept but no compaction runs); unknown keys are
 * refused with INVALID_CONFIG, as Kafka does.
 */
import { errorMessage } from '../../../common/errors.js';
import { isValidTopicName } from '../../../meta/state/records/topics.js';
import type { KafkaDeps } from '../deps.js';
import { ErrorCode, KafkaProtocolError } from '../protocol/errors.js';
import type { AlterConfigsRequest, AlterConfigsResponse } from '../protocol/requests/alter-configs.js';
import type { CreatePartitionsRequest, CreatePartitionsResponse } from '../protocol/requests/create-partitions.js';
import type { CreateTopicsRequest, CreateTopicsResponse, CreatableTopicResult } from '../protocol/requests/create-topics.js';
import type { DeleteTopicsRequest, DeleteTopicsResponse } from '../protocol/requests/delete-topics.js';
import type { DescribeConfigsRequest, DescribeConfigsResourceResult, DescribeConfigsResponse } from '../protocol/requests/describe-configs.js';

const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
/** DescribeConfigs config sources. */
const SOURCE_TOPIC = 1;
const SOURCE_DEFAULT = 5;

const intAtLeast = (min: number) => (v: string) => /^-?\d+$/.test(v) && Number(v) >= min;
const oneOf = (...values: string[]) => (v: string) => values.includes(v);

/** Topic config keys accepted, with a check of the value where this broker acts on it. */
const TOPIC_CONFIGS: ReadonlyMap<string, (v: string) => boolean> = new Map([
  ['retention.ms', intAtLeast(-1)],
  ['retention.bytes', intAtLeast(-1)],
  ['compression.type', oneOf('producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd')],
  ['message.timestamp.type', oneOf('CreateTime', 'LogAppendTime')],
  ['max.message.bytes', intAtLeast(0)],
  ['cleanup.policy', (v: string) => v.split(',').every((p) => p.trim() === 'delete' || p.trim() === 'compact')],
  ['flush', oneOf('sync', 'async')],
  ['segment.bytes', intAtLeast(14)],
  ['segment.ms', intAtLeast(1)],
  ['min.insync.replicas', intAtLeast(1)],
  ['unclean.leader.election.enable', oneOf('true', 'false')],
  ['message.timestamp.difference.max.ms', intAtLeast(0)],
  ['delete.retention.ms', intAtLeast(0)],
  ['min.compaction.lag.ms', intAtLeast(0)],
  ['max.compaction.lag.ms', intAtLeast(1)],
  ['min.cleanable.dirty.ratio', (v: string) => !Number.isNaN(Number(v))],
  ['file.delete.delay.ms', intAtLeast(0)],
  ['flush.messages', intAtLeast(1)],
  ['flush.ms', intAtLeast(0)],
  ['index.interval.bytes', intAtLeast(0)],
  ['segment.index.bytes', intAtLeast(4)],
  ['segment.jitter.ms', intAtLeast(0)],
  ['preallocate', oneOf('true', 'false')],
  ['message.downconversion.enable', oneOf('true', 'false')],
  ['local.retention.ms', intAtLeast(-2)],
  ['local.retention.bytes', intAtLeast(-2)],
  ['remote.storage.enable', oneOf('true', 'false')],
]);

/** Defaults shown by DescribeConfigs for keys a topic does not set. */
function topicDefaults(deps: KafkaDeps): Record<string, string> {
  return {
    'cleanup.policy': 'delete',
    'compression.type': 'producer',
    'message.timestamp.type': 'CreateTime',
    'max.message.bytes': String(deps.settings.messageMaxBytes),
    'min.insync.replicas': '1',
    'retention.bytes': '-1',
    'retention.ms': '604800000',
  };
}

export function checkTopicConfigs(configs: Array<{ name: string; value: string | null }>): string | undefined {
  for (const c of configs) {
    const check = TOPIC_CONFIGS.get(c.name);
    if (!check) return `unknown topic config "${c.name}"`;
    if (c.value !== null && !check(c.value)) return `invalid value "${c.value}" for topic config "${c.name}"`;
  }
  return undefined;
}

function asProtocolError(err: unknown): { code: number; message: string } {
  if (err instanceof KafkaProtocolError) return { code: err.errorCode, message: err.message };
  return { code: ErrorCode.UNKNOWN_SERVER_ERROR, message: errorMessage(err) };
}

export async function handleCreateTopics(deps: KafkaDeps, req: CreateTopicsRequest): Promise<CreateTopicsResponse> {
  const seen = new Map<string, number>();
  for (const t of req.topics) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
  const topics = await Promise.all(
    req.topics.map(async (t): Promise<CreatableTopicResult> => {
      const fail = (errorCode: number, errorMessage: string): CreatableTopicResult => ({ name: t.name, errorCode, errorMessage });
      if ((seen.get(t.name) ?? 0) > 1) return fail(ErrorCode.INVALID_REQUEST, `topic "${t.name}" appears more than once in the request`);
      if (!isValidTopicName(t.name)) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, `"${t.name}" is not a valid topic name: 1..249 characters of [a-zA-Z0-9._-], not "." or ".."`);
      if (deps.meta.topic(t.name)) return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${t.name}" already exists`);
      const partitions = t.assignments.length > 0 ? t.assignments.length : t.numPartitions === -1 ? deps.settings.numPartitions : t.numPartitions;
      if (partitions < 1 || partitions > 10_000) return fail(ErrorCode.INVALID_PARTITIONS, `number of partitions must be 1..10000, got ${partitions}`);
      const brokers = deps.meta.brokers().length;
      if (t.replicationFactor !== -1 && (t.replicationFactor < 1 || t.replicationFactor > Math.max(1, brokers))) {
        return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${t.replicationFactor} is larger than the ${brokers} live brokers`);
      }
      const bad = checkTopicConfigs(t.configs);
      if (bad) return fail(ErrorCode.INVALID_CONFIG, bad);
      if (req.validateOnly) return { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null };
      const config: Record<string, string> = {};
      for (const c of t.configs) if (c.value !== null) config[c.name] = c.value;
      try {
        await deps.meta.createTopic(t.name, partitions, config);
        await deps.meta.waitForLeaders(t.name, Math.min(Math.max(req.timeoutMs, 0), 30_000));
        return { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null };
      } catch (err) {
        const e = asProtocolError(err);
        return fail(e.code, e.message);
      }
    }),
  );
  if (topics.some((t) => t.errorCode !== ErrorCode.NONE)) deps.metrics.errorAnswered('CreateTopics');
  return { throttleTimeMs: 0, topics };
}

export async function handleDeleteTopics(deps: KafkaDeps, req: DeleteTopicsRequest): Promise<DeleteTopicsResponse> {
  const responses = await Promise.all(
    req.topicNames.map(async (name) => {
      const topic = deps.meta.topic(name);
      if (!topic) return { name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
      if (topic.internal) return { name, errorCode: ErrorCode.POLICY_VIOLATION };
      try {
        await deps.meta.deleteTopic(name);
        return { name, errorCode: ErrorCode.NONE };
      } catch (err) {
        return { name, errorCode: asProtocolError(err).code };
      }
    }),
  );
  return { throttleTimeMs: 0, responses };
}

export async function handleCreatePartitions(deps: KafkaDeps, req: CreatePartitionsRequest): Promise<CreatePartitionsResponse> {
  const results = await Promise.all(
    req.topics.map(async (t) => {
      const fail = (errorCode: number, errorMessage: string) => ({ name: t.name, errorCode, errorMessage });
      const topic = deps.meta.topic(t.name);
      if (!topic) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${t.name}" does not exist`);
      if (topic.internal) return fail(ErrorCode.POLICY_VIOLATION, `topic "${t.name}" is internal`);
      if (t.count <= topic.partitions.length) return fail(ErrorCode.INVALID_PARTITIONS, `topic "${t.name}" has ${topic.partitions.length} partitions; the new count must be larger, got ${t.count}`);
      if (t.count > 10_000) return fail(ErrorCode.INVALID_PARTITIONS, `at most 10000 partitions, got ${t.count}`);
      if (t.assignments !== null && t.assignments.length !== t.count - topic.partitions.length) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `${t.assignments.length} assignments for ${t.count - topic.partitions.length} new partitions`);
      if (req.validateOnly) return { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null };
      try {
        await deps.meta.addPartitions(t.name, t.count);
        await deps.meta.waitForLeaders(t.name, Math.min(Math.max(req.timeoutMs, 0), 30_000));
        return { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null };
      } catch (err) {
        const e = asProtocolError(err);
        return fail(e.code, e.message);
      }
    }),
  );
  return { throttleTimeMs: 0, results };
}

export function handleDescribeConfigs(deps: KafkaDeps, version: number, req: DescribeConfigsRequest): DescribeConfigsResponse {
  const results = req.resources.map((r) => {
    const base = { resourceType: r.resourceType, resourceName: r.resourceName };
    const wanted = (name: string) => r.configurationKeys === null || r.configurationKeys.length === 0 || r.configurationKeys.includes(name);
    const entry = (name: string, value: string, isDefault: boolean, readOnly: boolean): DescribeConfigsResourceResult => ({
      name,
      value,
      readOnly,
      isDefault,
      configSource: isDefault ? SOURCE_DEFAULT : SOURCE_TOPIC,
      isSensitive: false,
      synonyms: version >= 1 && req.includeSynonyms ? [{ name, value, source: isDefault ? SOURCE_DEFAULT : SOURCE_TOPIC }] : [],
    });
    if (r.resourceType === RESOURCE_TOPIC) {
      const topic = deps.meta.topic(r.resourceName);
      if (!topic) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic "${r.resourceName}" does not exist`, configs: [] };
      const merged = new Map<string, DescribeConfigsResourceResult>();
      for (const [k, v] of Object.entries(topicDefaults(deps))) if (wanted(k)) merged.set(k, entry(k, v, true, false));
      for (const [k, v] of Object.entries(topic.config)) if (wanted(k)) merged.set(k, entry(k, v, false, false));
      return { ...base, errorCode: ErrorCode.NONE, errorMessage: null, configs: [...merged.values()].sort((a, b) => (a.name < b.name ? -1 : 1)) };
    }
    if (r.resourceType === RESOURCE_BROKER) {
      if (r.resourceName !== '' && r.resourceName !== String(deps.meta.nodeId)) return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `this is broker ${deps.meta.nodeId}`, configs: [] };
      const broker: Record<string, string> = {
        'auto.create.topics.enable': String(deps.settings.autoCreateTopics),
        'num.partitions': String(deps.settings.numPartitions),
        'message.max.bytes': String(deps.settings.messageMaxBytes),
        'broker.id': String(deps.meta.nodeId),
      };
      return { ...base, errorCode: ErrorCode.NONE, errorMessage: null, configs: Object.entries(broker).filter(([k]) => wanted(k)).map(([k, v]) => entry(k, v, false, true)) };
    }
    return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `resource type ${r.resourceType} is not supported`, configs: [] };
  });
  return { throttleTimeMs: 0, results };
}

export async function handleAlterConfigs(deps: KafkaDeps, req: AlterConfigsRequest): Promise<AlterConfigsResponse> {
  const responses = await Promise.all(
    req.resources.map(async (r) => {
      const base = { resourceType: r.resourceType, resourceName: r.resourceName };
      if (r.resourceType !== RESOURCE_TOPIC) return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'only topic configs can be altered' };
      const topic = deps.meta.topic(r.resourceName);
      if (!topic) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic "${r.resourceName}" does not exist` };
      // An internal topic's retention is what keeps another protocol's state (MQTT sessions, retained messages).
      if (topic.internal) return { ...base, errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: `topic "${r.resourceName}" is internal` };
      const bad = checkTopicConfigs(r.configs);
      if (bad) return { ...base, errorCode: ErrorCode.INVALID_CONFIG, errorMessage: bad };
      if (req.validateOnly) return { ...base, errorCode: ErrorCode.NONE, errorMessage: null };
      // AlterConfigs replaces the whole set: keys not named are reset to their defaults.
      const set: Record<string, string> = {};
      for (const c of r.configs) if (c.value !== null) set[c.name] = c.value;
      const unset = Object.keys(topic.config).filter((k) => !(k in set));
      try {
        await deps.meta.alterTopicConfig(r.resourceName, set, unset);
        return { ...base, errorCode: ErrorCode.NONE, errorMessage: null };
      } catch (err) {
        const e = asProtocolError(err);
        return { ...base, errorCode: e.code, errorMessage: e.message };
      }
    }),
  );
  return { throttleTimeMs: 0, responses };
}
