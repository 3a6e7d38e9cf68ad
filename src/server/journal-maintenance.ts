/**
 * Journal upkeep on a node: re-replication of sealed segments (broker role, the
 * live broker with the lowest id acts), the operator's view of a topic's
 * segments (meta plus what each replica answers to Info), and the journal
 * health metrics:
 *
 *   robust_journal_under_replicated_segments   segments with an ensemble member meta holds dead
 *                                              (or no longer knows), cluster-wide, from this
 *                                              node's meta replica (every node reports the same)
 *   robust_journal_rereplicated_bytes_total    bytes this node copied to new or completed replicas
 *   robust_journal_rereplicated_segments_total sealed segments this node moved to a new node
 *   robust_journal_replica_lag_entries{shard,segment,node}
 *                                              for the open segments this node writes: entries
 *                                              the writer can acknowledge minus the replica's end
 *                                              (sampled with Info at scrape time; open segments
 *                                              only, so one series per replica of a led shard)
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../common/config/index.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { MetaAgent } from '../meta/agent.js';
import { JournalClientPool } from '../storage/journal/client.js';
import type { JournalMetaPort, SegmentInfo } from '../storage/journal/meta-port.js';
import { Op, Status, type ReplicaState } from '../storage/journal/protocol.js';
import { ReReplicator, underReplicatedSegments, type ReReplicationStatus, type UnderReplicatedSegment } from '../storage/journal/rereplicator.js';
import type { ReplicaView, RereplicationView, SegmentView, ShardSegmentsView, TopicSegmentsView } from '../admin/journal-routes.js';
import { journalMetaPort } from './journal-wiring.js';

export interface JournalMaintenanceOptions {
  config: Config;
  agent: MetaAgent;
  log: Logger;
  registry: Registry;
  /**
   * The writer's acknowledged end (last add confirmed + 1, in entries of the
   * segment) of an open segment this node writes, when the engine can tell;
   * otherwise the lag metric estimates it from the replicas.
   */
  writerEnd?: (shard: string, segment: number) => number | undefined;
}

const INFO_TIMEOUT_MS = 2000;
const INFO_CONCURRENCY = 32;

function isSpecificAddress(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) && host !== '0.0.0.0';
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

type InfoAnswer = { ok: true; state: ReplicaState } | { ok: false; notFound: boolean; error: string };

export class JournalMaintenance {
  readonly port: JournalMetaPort;
  private readonly pool: JournalClientPool;
  private rereplicator: ReReplicator | undefined;
  private readonly copiedBytes: Counter;
  private readonly copiedSegments: Counter;

  constructor(private readonly opts: JournalMaintenanceOptions) {
    const { config, agent, registry } = opts;
    this.port = journalMetaPort(agent, config.node_id);
    this.pool = new JournalClientPool(10_000, isSpecificAddress(config.bind_host) ? config.bind_host : undefined);
    const registers = [registry];
    const under = () => this.underReplicated().length;
    new Gauge({
      name: 'robust_journal_under_replicated_segments',
      help: 'Journal segments whose ensemble holds a node meta considers dead or no longer knows (cluster-wide, as this node sees meta)',
      registers,
      collect() {
        this.set(under());
      },
    });
    this.copiedBytes = new Counter({ name: 'robust_journal_rereplicated_bytes_total', help: 'Bytes this node copied to new or completed replicas of sealed journal segments', registers });
    this.copiedSegments = new Counter({ name: 'robust_journal_rereplicated_segments_total', help: 'Sealed journal segments this node re-replicated to a new journal node', registers });
    const lag = (): Promise<ReplicaLag[]> => this.replicaLag();
    new Gauge({
      name: 'robust_journal_replica_lag_entries',
      help: 'For each open journal segment this node writes: entries the writer can acknowledge minus those the replica holds',
      labelNames: ['shard', 'segment', 'node'] as const,
      registers,
      async collect() {
        this.reset();
        for (const l of await lag()) this.set({ shard: l.shard, segment: String(l.segment), node: String(l.node) }, l.lag);
      },
    });
  }

  /** The broker role's re-replication: started with the broker's servers, stopped before storage. */
  service(): { start(): Promise<void>; stop(): Promise<void>; listeners(): [] } {
    return {
      start: async () => {
        const nodeId = this.opts.config.node_id;
        const agent = this.opts.agent;
        const rr = new ReReplicator({
          meta: this.port,
          pool: this.pool,
          bytesPerSec: this.opts.config.journal.rereplicate_bytes_per_sec,
          // Same rule as shard placement: the live broker with the lowest id acts.
          isActive: () => agent.replica.view.nodes.withRole('broker', 'alive')[0]?.id === nodeId,
          log: this.opts.log,
          onCopied: (n) => this.copiedBytes.inc(n),
          onReplaced: () => this.copiedSegments.inc(),
        });
        this.rereplicator = rr;
        rr.start();
      },
      stop: async () => {
        const rr = this.rereplicator;
        this.rereplicator = undefined;
        await rr?.stop();
        this.pool.closeAll();
      },
      listeners: () => [],
    };
  }

  /** Segments with an ensemble member meta holds dead or no longer knows (from this node's meta replica). */
  underReplicated(): UnderReplicatedSegment[] {
    return underReplicatedSegments(this.port.allSegments?.() ?? [], this.port.journals());
  }

  rereplicationStatus(): RereplicationView {
    const rr = this.rereplicator;
    const base: ReReplicationStatus = rr?.status() ?? {
      active: false,
      bytes_per_sec: this.opts.config.journal.rereplicate_bytes_per_sec,
      copying: null,
      waiting: [],
      copied_bytes: 0,
      replaced_segments: 0,
      repaired_replicas: 0,
      orphans_deleted: 0,
      last_pass_ms: null,
    };
    return { node_id: this.opts.config.node_id, running: rr !== undefined, ...base };
  }

  /** A topic's shards and their segments, each replica asked for its end; undefined when no such topic. */
  async topicSegments(topic: string): Promise<TopicSegmentsView | undefined> {
    // Reflect every segment change committed before the request (as the topic routes do); a meta
    // that cannot answer now still leaves this node's replica to show.
    await this.opts.agent.client.consistent().catch(() => undefined);
    const view = this.opts.agent.replica.view;
    const t = view.topics.get(topic);
    if (!t) return undefined;
    const shards: ShardSegmentsView[] = [];
    let under = 0;
    for (let i = 0; i < t.shards; i++) {
      const shard = `${t.name}-${i}`;
      const segments = await describeSegments(this.port, this.pool, this.port.segments(shard));
      under += segments.filter((s) => s.under_replicated).length;
      shards.push({ shard, leader: view.shards.byId(shard)?.leader || null, segments });
    }
    return { topic: t.name, engine: t.engine, shards, under_replicated_segments: under };
  }

  private replicaLag(): Promise<ReplicaLag[]> {
    return replicaLag(this.port, this.pool, this.opts.writerEnd);
  }
}

export interface ReplicaLag {
  shard: string;
  segment: number;
  node: number;
  lag: number;
}

/** Info on one replica, bounded in time. */
async function infoOf(port: JournalMetaPort, pool: JournalClientPool, node: number, seg: SegmentInfo): Promise<InfoAnswer> {
  const j = port.journals().find((x) => x.id === node);
  if (!j) return { ok: false, notFound: false, error: 'not a registered journal node' };
  let timer: NodeJS.Timeout | undefined;
  try {
    const res = await Promise.race([
      pool.get(node, j.addr).request({ op: Op.Info, shard: seg.shard, segment: seg.segment }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${INFO_TIMEOUT_MS} ms`)), INFO_TIMEOUT_MS))),
    ]);
    if (res.status === Status.NotFound) return { ok: false, notFound: true, error: 'holds no replica of the segment' };
    if (res.status !== Status.Ok || (res.op !== Op.Info && res.op !== Op.Fence)) return { ok: false, notFound: false, error: res.message || `status ${res.status}` };
    return { ok: true, state: res.state };
  } catch (err) {
    return { ok: false, notFound: false, error: errorMessage(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Segments as meta has them plus what each replica answers, with under-replication flagged. */
export async function describeSegments(port: JournalMetaPort, pool: JournalClientPool, segs: readonly SegmentInfo[]): Promise<SegmentView[]> {
  const states = new Map(port.journals().map((j) => [j.id, j.state]));
  return mapLimited(segs, Math.max(1, Math.floor(INFO_CONCURRENCY / 3)), async (s) => {
    const answers = await Promise.all(s.ensemble.map((id) => infoOf(port, pool, id, s)));
    const need = s.state === 'sealed' ? (s.lastEntry ?? -1) + 1 : undefined;
    const problems: string[] = [];
    const replicas: ReplicaView[] = s.ensemble.map((node, i) => {
      const a = answers[i]!;
      const state = states.get(node) ?? 'unknown';
      if (state === 'dead' || state === 'unknown') problems.push(`node ${node} ${state === 'dead' ? 'dead' : 'not registered'}`);
      else if (!a.ok && !a.notFound) problems.push(`node ${node} unreachable`);
      if (a.ok) {
        if (need !== undefined && a.state.end < need) problems.push(`node ${node} holds ${a.state.end} of ${need} entries`);
        return { node, state, reachable: true, end: a.state.end, lac: a.state.lac, fenced_epoch: a.state.fencedEpoch, missing: false };
      }
      // An empty segment has no replica anywhere (an empty add creates none).
      if (a.notFound && need !== undefined && need > 0) problems.push(`node ${node} holds no replica`);
      return { node, state, reachable: a.notFound, end: a.notFound ? 0 : null, lac: null, fenced_epoch: null, missing: a.notFound, ...(a.notFound ? {} : { error: a.error }) };
    });
    let endOffset: number | null = null;
    if (need !== undefined) endOffset = s.startOffset + need;
    else {
      const lacs = replicas.flatMap((r) => (r.lac !== null && r.end !== null ? [Math.min(r.lac, r.end - 1)] : []));
      if (lacs.length > 0) endOffset = s.startOffset + Math.max(...lacs) + 1;
    }
    return {
      segment: s.segment,
      state: s.state,
      ensemble: [...s.ensemble],
      write_quorum: s.writeQuorum,
      ack_quorum: s.ackQuorum,
      epoch: s.epoch,
      start_offset: s.startOffset,
      last_entry: s.lastEntry ?? null,
      end_offset: endOffset,
      replicas,
      under_replicated: problems.length > 0,
      problems,
    };
  });
}

/**
 * The lag of every replica (that answers) of the open segments this node writes:
 * what the writer can acknowledge minus the replica's end. The writer's count
 * comes from `writerEnd` when given, else it is estimated as the ack-quorum-th
 * furthest replica end (never less than a lac the writer already sent).
 */
export async function replicaLag(port: JournalMetaPort, pool: JournalClientPool, writerEnd?: (shard: string, segment: number) => number | undefined): Promise<ReplicaLag[]> {
  const open = (port.allSegments?.() ?? []).filter((s) => s.state === 'open' && port.isWriter(s.shard));
  const out: ReplicaLag[] = [];
  await mapLimited(open, Math.max(1, Math.floor(INFO_CONCURRENCY / 3)), async (s) => {
    const answers = await Promise.all(s.ensemble.map(async (node) => ({ node, a: await infoOf(port, pool, node, s) })));
    const ends = answers.flatMap(({ a }) => (a.ok ? [a.state.end] : [])).sort((x, y) => y - x);
    const lacs = answers.flatMap(({ a }) => (a.ok ? [a.state.lac] : []));
    const estimate = Math.max(ends[s.ackQuorum - 1] ?? 0, lacs.length > 0 ? Math.max(...lacs) + 1 : 0);
    const writer = writerEnd?.(s.shard, s.segment) ?? estimate;
    for (const { node, a } of answers) if (a.ok) out.push({ shard: s.shard, segment: s.segment, node, lag: Math.max(0, writer - a.state.end) });
  });
  return out;
}
