/**
 * The Kafka operator surface of the admin API: consumer groups (membership
 * from this node's coordinator, committed offsets and lag from meta and
 * storage) and offset resets.
 *
 *   GET    /api/v1/kafka/groups                      groups: state, members, partitions with offsets
 *   GET    /api/v1/kafka/groups/{group}              one group: members, assignments, offsets and lag
 *   DELETE /api/v1/kafka/groups/{group}              delete an empty group and its offsets
 *   POST   /api/v1/kafka/groups/{group}/reset-offsets
 *          { "topic": "t", "to": "earliest"|"latest"|"offset"|"timestamp", "value"?: n, "partitions"?: [..] }
 *
 * Topic configs are the topic routes' (PUT /api/v1/topics/{name}/config).
 */
import { HttpError, type HttpServer } from './http-server.js';
import { readJsonBody } from './meta-routes.js';

export interface KafkaGroupOffsetView {
  topic: string;
  partition: number;
  committed_offset: number;
  end_offset: number | null;
  lag: number | null;
  metadata: string | null;
  commit_time_ms: number;
}

export interface KafkaGroupMemberView {
  member_id: string;
  group_instance_id: string | null;
  client_id: string;
  client_host: string;
  session_timeout_ms: number;
  assignment_bytes: number;
  is_leader: boolean;
}

export interface KafkaGroupSummaryView {
  group: string;
  /** 'Empty' for a group that only has committed offsets (or whose coordinator is another node). */
  state: string;
  protocol_type: string;
  protocol: string;
  generation: number;
  members: number;
  /** Node coordinating the group. */
  coordinator: number | null;
}

export interface KafkaGroupView extends Omit<KafkaGroupSummaryView, 'members'> {
  members: KafkaGroupMemberView[];
  offsets: KafkaGroupOffsetView[];
  total_lag: number;
}

export type OffsetResetTarget = { to: 'earliest' } | { to: 'latest' } | { to: 'offset'; value: number } | { to: 'timestamp'; value: number };

export interface KafkaAdmin {
  brokerUnavailable(): string | undefined;
  groups(): KafkaGroupSummaryView[];
  group(id: string): Promise<KafkaGroupView | undefined>;
  /** Throws HttpError 409 when the group still has members. */
  deleteGroup(id: string): Promise<void>;
  resetOffsets(id: string, topic: string, target: OffsetResetTarget, partitions: number[] | undefined): Promise<Array<{ partition: number; offset: number }>>;
}

function resetTarget(body: Record<string, unknown>): OffsetResetTarget {
  const to = body['to'];
  const value = body['value'];
  switch (to) {
    case 'earliest':
    case 'latest':
      return { to };
    case 'offset':
    case 'timestamp':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new HttpError(400, 'invalid', `"value" must be an integer >= 0 when "to" is "${to}"`);
      return { to, value };
    default:
      throw new HttpError(400, 'invalid', '"to" must be one of earliest, latest, offset, timestamp');
  }
}

export function addKafkaRoutes(http: HttpServer, admin: KafkaAdmin): void {
  const guard = () => {
    const why = admin.brokerUnavailable();
    if (why !== undefined) throw new HttpError(503, 'broker_unavailable', why);
  };
  const base = '/api/v1/kafka/groups';

  http.route('GET', base, () => {
    guard();
    return { body: { groups: admin.groups() } };
  });

  http.route('GET', `${base}/:group`, async ({ params }) => {
    guard();
    const id = params['group'] ?? '';
    const g = await admin.group(id);
    if (!g) throw new HttpError(404, 'not_found', `consumer group "${id}" does not exist`);
    return { body: g };
  });

  http.route('DELETE', `${base}/:group`, async ({ params }) => {
    guard();
    const id = params['group'] ?? '';
    await admin.deleteGroup(id);
    return { body: { deleted: id } };
  });

  http.route('POST', `${base}/:group/reset-offsets`, async ({ params, req }) => {
    guard();
    const id = params['group'] ?? '';
    const body = await readJsonBody(req);
    const topic = body['topic'];
    if (typeof topic !== 'string' || topic === '') throw new HttpError(400, 'invalid', '"topic" is required');
    const rawPartitions = body['partitions'];
    let partitions: number[] | undefined;
    if (rawPartitions !== undefined) {
      if (!Array.isArray(rawPartitions) || !rawPartitions.every((p) => Number.isInteger(p) && (p as number) >= 0)) throw new HttpError(400, 'invalid', '"partitions" must be a list of partition numbers');
      partitions = rawPartitions as number[];
    }
    const offsets = await admin.resetOffsets(id, topic, resetTarget(body), partitions);
    return { body: { group: id, topic, offsets } };
  });
}
