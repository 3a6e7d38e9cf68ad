/**
 * The admin API's view of Kafka consumer groups on this node: membership from
 * the local group coordinator, committed offsets from meta, lag from storage.
 */
import { HttpError } from '../admin/http-server.js';
import type { KafkaAdmin, KafkaGroupOffsetView, KafkaGroupSummaryView, KafkaGroupView, OffsetResetTarget } from '../admin/kafka-routes.js';
import type { KafkaServer } from '../broker/kafka/server.js';
import type { GroupSnapshot } from '../broker/kafka/group/types.js';
import type { MetaAgent } from '../meta/agent.js';
import { shardId } from '../meta/state/records/shards.js';
import { proposeOrThrow } from './meta-propose.js';
import type { StorageService } from './storage-service.js';

/** A group's committed offsets with the partition end and lag (null where this node holds no copy of the partition). */
export async function committedWithLag(agent: MetaAgent, storage: StorageService | undefined, group: string): Promise<KafkaGroupOffsetView[]> {
  const out: KafkaGroupOffsetView[] = [];
  for (const o of agent.replica.view.groups.offsets(group)) {
    const shard = shardId(o.topic, o.shard);
    const info = storage?.adapter.hasShard(shard) ? await storage.adapter.shardInfo(shard).catch(() => undefined) : undefined;
    const end = info ? Number(info.endOffset) : null;
    out.push({ topic: o.topic, partition: o.shard, committed_offset: o.offset, end_offset: end, lag: end === null ? null : Math.max(0, end - o.offset), metadata: o.metadata ?? null, commit_time_ms: o.commitTimeMs });
  }
  return out;
}

export function createKafkaAdmin(opts: { agent: MetaAgent; kafka: () => KafkaServer | undefined; storage: () => StorageService | undefined }): KafkaAdmin {
  const view = opts.agent.replica.view;
  const snapshots = (): Map<string, GroupSnapshot> => new Map((opts.kafka()?.groups.groups() ?? []).map((g) => [g.groupId, g]));
  const coordinatorOf = (id: string): number | null => opts.kafka()?.deps.meta.coordinatorFor(id)?.nodeId ?? null;
  const summary = (id: string, g: GroupSnapshot | undefined): KafkaGroupSummaryView => ({
    group: id,
    state: g?.state ?? 'Empty',
    protocol_type: g?.protocolType ?? '',
    protocol: g?.protocolName ?? '',
    generation: g?.generationId ?? 0,
    members: g?.members.length ?? 0,
    coordinator: coordinatorOf(id),
  });
  const offsetsOf = (id: string): Promise<KafkaGroupOffsetView[]> => committedWithLag(opts.agent, opts.storage(), id);
  return {
    brokerUnavailable: () => (opts.kafka() ? undefined : 'this node runs no Kafka listener (broker role with [kafka] tcp_port)'),
    groups: () => {
      const live = snapshots();
      const ids = new Set([...live.keys(), ...view.groups.list()]);
      return [...ids].sort().map((id) => summary(id, live.get(id)));
    },
    group: async (id) => {
      const g = snapshots().get(id);
      if (!g && !view.groups.has(id)) return undefined;
      const offsets = await offsetsOf(id);
      const result: KafkaGroupView = {
        ...summary(id, g),
        members: (g?.members ?? []).map((m) => ({
          member_id: m.memberId,
          group_instance_id: m.groupInstanceId,
          client_id: m.clientId,
          client_host: m.clientHost,
          session_timeout_ms: m.sessionTimeoutMs,
          assignment_bytes: m.assignmentBytes,
          is_leader: m.isLeader,
        })),
        offsets,
        total_lag: offsets.reduce((n, o) => n + (o.lag ?? 0), 0),
      };
      return result;
    },
    deleteGroup: async (id) => {
      const kafka = opts.kafka();
      const g = snapshots().get(id);
      if (!g && !view.groups.has(id)) throw new HttpError(404, 'not_found', `consumer group "${id}" does not exist`);
      if (g && g.members.length > 0) throw new HttpError(409, 'group_not_empty', `consumer group "${id}" has ${g.members.length} members; stop them first`);
      if (kafka && g) await kafka.groups.deleteGroups([id]);
      await proposeOrThrow(opts.agent, { kind: 'group.delete', group: id }, ['not_found']);
    },
    resetOffsets: async (id, topic, target: OffsetResetTarget, partitions) => {
      const g = snapshots().get(id);
      if (g && g.members.length > 0) throw new HttpError(409, 'group_not_empty', `consumer group "${id}" has ${g.members.length} active members; offsets can only be reset while it is empty`);
      const t = view.topics.get(topic);
      if (!t) throw new HttpError(404, 'not_found', `topic "${topic}" does not exist`);
      const storage = opts.storage();
      if (!storage) throw new HttpError(503, 'broker_unavailable', 'this node has no storage');
      const wanted = partitions ?? Array.from({ length: t.shards }, (_, i) => i);
      const out: Array<{ partition: number; offset: number }> = [];
      for (const p of wanted) {
        if (p >= t.shards) throw new HttpError(400, 'invalid', `topic "${topic}" has partitions 0..${t.shards - 1}, not ${p}`);
        const shard = shardId(topic, p);
        const info = await storage.adapter.shardInfo(shard);
        let offset: bigint;
        if (target.to === 'earliest') offset = info.startOffset;
        else if (target.to === 'latest') offset = info.endOffset;
        else if (target.to === 'timestamp') offset = await storage.adapter.offsetForTime(shard, target.value);
        else offset = BigInt(target.value) < info.startOffset ? info.startOffset : BigInt(target.value) > info.endOffset ? info.endOffset : BigInt(target.value);
        out.push({ partition: p, offset: Number(offset) });
      }
      if (out.length > 0) await proposeOrThrow(opts.agent, { kind: 'group.commitOffsets', group: id, offsets: out.map((o) => ({ topic, shard: o.partition, offset: o.offset })), nowMs: Date.now() });
      return out;
    },
  };
}
