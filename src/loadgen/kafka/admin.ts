/**
 * Setting up a Kafka run from the main thread: connect to a bootstrap broker, agree on
 * API versions (ApiVersions), find the topic's partitions and their leaders (Metadata),
 * create the topic when it is missing (CreateTopics), and look up start offsets
 * (ListOffsets) for consumers.
 */
import { ApiKey } from '../../broker/kafka/protocol/apis.js';
import { ErrorCode, errorName } from '../../broker/kafka/protocol/errors.js';
import type { ApiVersionsResponse } from '../../broker/kafka/protocol/requests/api-versions.js';
import type { CreateTopicsResponse } from '../../broker/kafka/protocol/requests/create-topics.js';
import type { ListOffsetsResponse } from '../../broker/kafka/protocol/requests/list-offsets.js';
import type { MetadataResponse } from '../../broker/kafka/protocol/requests/metadata.js';
import { RunError } from '../errors.js';
import { KafkaConn, KafkaConnError } from './client.js';
import type { BrokerAddress, KafkaBenchOptions } from './options.js';

/** The versions this load generator speaks (it needs Produce v3+ for record batches, Fetch v4+). */
const WANT: Record<'produce' | 'fetch' | 'metadata' | 'createTopics' | 'listOffsets', { key: number; min: number; max: number }> = {
  produce: { key: ApiKey.Produce, min: 3, max: 7 },
  fetch: { key: ApiKey.Fetch, min: 4, max: 11 },
  metadata: { key: ApiKey.Metadata, min: 1, max: 8 },
  createTopics: { key: ApiKey.CreateTopics, min: 0, max: 4 },
  listOffsets: { key: ApiKey.ListOffsets, min: 1, max: 5 },
};

export type Versions = Record<keyof typeof WANT, number>;

export interface PartitionLeader {
  partition: number;
  leaderId: number;
  host: string;
  port: number;
}

export interface TopicLayout {
  partitions: PartitionLeader[];
  created: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects to the first bootstrap broker that answers. */
export async function connectBootstrap(o: KafkaBenchOptions): Promise<KafkaConn> {
  let last: Error | undefined;
  for (const b of o.brokers) {
    try {
      return await KafkaConn.connect(b.host, b.port, o.connectTimeoutS * 1000, o.clientId);
    } catch (err) {
      last = err as Error;
    }
  }
  throw new RunError(last instanceof KafkaConnError ? last.message : `cannot connect to ${o.brokers.map(fmtBroker).join(', ')}: ${last?.message}`);
}

export function fmtBroker(b: BrokerAddress): string {
  return `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`;
}

/** ApiVersions v0, then the highest version of each API both sides speak. */
export async function negotiate(conn: KafkaConn, timeoutMs: number): Promise<Versions> {
  const res = await withTimeout(conn.request<ApiVersionsResponse>(ApiKey.ApiVersions, 0, { clientSoftwareName: 'robust-bench', clientSoftwareVersion: '0' }), timeoutMs, `ApiVersions from ${conn.where}`);
  if (res.errorCode !== ErrorCode.NONE) throw new RunError(`ApiVersions refused by ${conn.where}: ${errorName(res.errorCode)}`);
  const out = {} as Versions;
  for (const [name, want] of Object.entries(WANT) as Array<[keyof Versions, (typeof WANT)[keyof Versions]]>) {
    const theirs = res.apiKeys.find((k) => k.apiKey === want.key);
    const v = theirs ? Math.min(want.max, theirs.maxVersion) : -1;
    if (!theirs || v < want.min || v < theirs.minVersion) {
      throw new RunError(`${conn.where} does not speak ${name} v${want.min}-${want.max} (it offers ${theirs ? `v${theirs.minVersion}-${theirs.maxVersion}` : 'none'})`);
    }
    out[name] = v;
  }
  return out;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new RunError(`no answer to ${what} within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof KafkaConnError ? new RunError(err.message) : err);
      },
    );
  });
}

async function metadata(conn: KafkaConn, v: Versions, topic: string, timeoutMs: number): Promise<MetadataResponse> {
  return withTimeout(
    conn.request<MetadataResponse>(ApiKey.Metadata, v.metadata, { topics: [{ name: topic }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
    timeoutMs,
    `Metadata from ${conn.where}`,
  );
}

/**
 * The topic's partitions and leaders; creates the topic (--partitions, default 1) when it
 * does not exist, and waits until every partition has a leader. `warn` collects notes.
 */
export async function resolveTopic(conn: KafkaConn, v: Versions, o: KafkaBenchOptions, warn: (w: string) => void): Promise<TopicLayout> {
  const timeoutMs = o.connectTimeoutS * 1000;
  const deadline = Date.now() + Math.max(timeoutMs, 30_000);
  let created = false;
  for (let attempt = 0; ; attempt++) {
    const md = await metadata(conn, v, o.topic, timeoutMs);
    const t = md.topics.find((x) => x.name === o.topic);
    const missing = !t || t.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION || (t.errorCode === ErrorCode.NONE && t.partitions.length === 0 && !created);
    if (missing && !created) {
      const res = await withTimeout(
        conn.request<CreateTopicsResponse>(ApiKey.CreateTopics, v.createTopics, {
          topics: [{ name: o.topic, numPartitions: o.partitions ?? 1, replicationFactor: o.replicationFactor, assignments: [], configs: [] }],
          timeoutMs,
          validateOnly: false,
        }),
        timeoutMs,
        `CreateTopics from ${conn.where}`,
      );
      const r = res.topics.find((x) => x.name === o.topic);
      const code = r?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
      if (code !== ErrorCode.NONE && code !== ErrorCode.TOPIC_ALREADY_EXISTS) {
        throw new RunError(`cannot create topic "${o.topic}": ${errorName(code)}${r?.errorMessage ? ` (${r.errorMessage})` : ''}`);
      }
      created = code === ErrorCode.NONE;
      continue;
    }
    if (t && t.errorCode !== ErrorCode.NONE && t.errorCode !== ErrorCode.LEADER_NOT_AVAILABLE && t.errorCode !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) {
      throw new RunError(`topic "${o.topic}": ${errorName(t.errorCode)}`);
    }
    const brokers = new Map(md.brokers.map((b) => [b.nodeId, b]));
    const parts = (t?.partitions ?? []).slice().sort((a, b) => a.partitionIndex - b.partitionIndex);
    const ready = t !== undefined && t.errorCode === ErrorCode.NONE && parts.length > 0 && parts.every((p) => p.errorCode === ErrorCode.NONE && p.leaderId >= 0 && brokers.has(p.leaderId));
    if (ready) {
      if (o.partitions !== undefined && !created && parts.length !== o.partitions) warn(`topic "${o.topic}" exists with ${parts.length} partition${parts.length === 1 ? '' : 's'}: --partitions ${o.partitions} applies only to a topic robust-bench creates`);
      return {
        created,
        partitions: parts.map((p) => {
          const b = brokers.get(p.leaderId)!;
          return { partition: p.partitionIndex, leaderId: p.leaderId, host: b.host, port: b.port };
        }),
      };
    }
    if (Date.now() > deadline) throw new RunError(`topic "${o.topic}": partitions still without a leader after ${Math.round(Math.max(timeoutMs, 30_000) / 1000)} s`);
    await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5)));
  }
}

/** Earliest (-2) or latest (-1) offset of each partition, asked of each partition's leader. */
export async function startOffsets(layout: TopicLayout, v: Versions, o: KafkaBenchOptions): Promise<Map<number, number>> {
  const which = o.from === 'earliest' ? -2n : -1n;
  const byLeader = new Map<string, PartitionLeader[]>();
  for (const p of layout.partitions) {
    const k = `${p.host}:${p.port}`;
    const list = byLeader.get(k) ?? [];
    list.push(p);
    byLeader.set(k, list);
  }
  const out = new Map<number, number>();
  for (const parts of byLeader.values()) {
    const first = parts[0]!;
    const conn = await KafkaConn.connect(first.host, first.port, o.connectTimeoutS * 1000, o.clientId).catch((err: Error) => {
      throw new RunError(err.message);
    });
    try {
      const res = await withTimeout(
        conn.request<ListOffsetsResponse>(ApiKey.ListOffsets, v.listOffsets, {
          replicaId: -1,
          isolationLevel: 0,
          topics: [{ name: o.topic, partitions: parts.map((p) => ({ partitionIndex: p.partition, currentLeaderEpoch: -1, timestamp: which, maxNumOffsets: 1 })) }],
        }),
        o.connectTimeoutS * 1000,
        `ListOffsets from ${conn.where}`,
      );
      for (const t of res.topics) {
        for (const p of t.partitions) {
          if (p.errorCode !== ErrorCode.NONE) throw new RunError(`ListOffsets of ${o.topic}-${p.partitionIndex}: ${errorName(p.errorCode)}`);
          out.set(p.partitionIndex, Number(p.offset ?? -1n));
        }
      }
    } finally {
      conn.close();
    }
  }
  for (const p of layout.partitions) if (!out.has(p.partition)) throw new RunError(`ListOffsets gave no offset for ${o.topic}-${p.partition}`);
  return out;
}
