/**
 * The journal's operator surface in the admin API (DESIGN.md §6, §8):
 *
 *   GET /api/v1/journal/segments?topic=NAME    per shard of the topic, its segments from meta
 *   GET /api/v1/topics/{name}/segments         (the same)   with ensemble, quorums, epoch, state,
 *                                              offsets, and per replica its end and known
 *                                              last-add-confirmed as the journal node answers Info;
 *                                              a segment is flagged under-replicated when a member
 *                                              is dead, unregistered, unreachable, or (sealed) holds
 *                                              fewer entries than the segment
 *   GET /api/v1/journal/under-replicated       segments with a member meta holds dead (no journal
 *                                              node is asked; cluster-wide)
 *   GET /api/v1/journal/rereplication          this node's re-replicator: on duty or not, the copy
 *                                              in progress, segments left under-replicated and why
 */
import type { ReReplicationStatus, UnderReplicatedSegment } from '../storage/journal/rereplicator.js';
import { HttpError, type HttpServer } from './http-server.js';

/** One replica of a segment as its journal node answers for it. */
export interface ReplicaView {
  node: number;
  /** Meta's liveness state of the node ('unknown' when it is not registered). */
  state: 'alive' | 'suspect' | 'dead' | 'unknown';
  reachable: boolean;
  /** Entries held (ids 0..end-1); null when the node did not answer. */
  end: number | null;
  lac: number | null;
  fenced_epoch: number | null;
  /** The node answered but holds no replica of the segment. */
  missing: boolean;
  error?: string;
}

export interface SegmentView {
  segment: number;
  state: 'open' | 'sealed';
  ensemble: number[];
  write_quorum: number;
  ack_quorum: number;
  epoch: number;
  start_offset: number;
  last_entry: number | null;
  /** Offset after the segment's last entry (sealed), or after what a replica confirmed (open). */
  end_offset: number | null;
  replicas: ReplicaView[];
  under_replicated: boolean;
  /** Why, one phrase per member: "node 3 dead", "node 2 unreachable", "node 4 holds 10 of 12 entries". */
  problems: string[];
}

export interface ShardSegmentsView {
  shard: string;
  leader: number | null;
  segments: SegmentView[];
}

export interface TopicSegmentsView {
  topic: string;
  engine: string;
  shards: ShardSegmentsView[];
  under_replicated_segments: number;
}

export type RereplicationView = ReReplicationStatus & {
  node_id: number;
  /** This node runs a re-replicator (broker role); `active` says whether it is the one on duty. */
  running: boolean;
};

export interface JournalAdmin {
  /** Undefined when there is no such topic. */
  topicSegments(topic: string): Promise<TopicSegmentsView | undefined>;
  underReplicated(): UnderReplicatedSegment[];
  rereplicationStatus(): RereplicationView;
}

export function addJournalRoutes(http: HttpServer, admin: JournalAdmin): void {
  const segments = async (topic: string | null | undefined) => {
    if (!topic) throw new HttpError(400, 'invalid', 'give the topic: /api/v1/journal/segments?topic=NAME');
    const view = await admin.topicSegments(topic);
    if (!view) throw new HttpError(404, 'not_found', `topic "${topic}" does not exist`);
    return { body: view };
  };
  http.route('GET', '/api/v1/journal/segments', ({ query }) => segments(query.get('topic')));
  http.route('GET', '/api/v1/topics/:name/segments', ({ params }) => segments(params['name']));
  http.route('GET', '/api/v1/journal/under-replicated', () => {
    const segs = admin.underReplicated();
    return { body: { count: segs.length, segments: segs } };
  });
  http.route('GET', '/api/v1/journal/rereplication', () => ({ body: admin.rereplicationStatus() }));
}
