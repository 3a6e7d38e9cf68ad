/**
 * Partition (shard) leadership: every shard gets a leader among the live
 * brokers, recorded in meta with `shard.assign` (so Kafka Metadata answers
 * the same everywhere), kept while that broker lives, and moved to another
 * live broker when it dies.
 *
 * A new shard goes to the live broker that leads the fewest shards of its
 * topic (so a topic's partitions spread over the brokers), then the fewest
 * shards overall.
 *
 * Every broker runs this; only the live broker with the lowest id acts, and
 * each assignment is a compare-and-set on the shard's epoch, so two brokers
 * that briefly both think they are lowest cannot undo each other.
 */
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { MetaAgent } from '../meta/agent.js';
import { proposeResult } from './meta-propose.js';

const RECHECK_MS = 2000;

export class ShardPlacement {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = false;
  private again = false;

  constructor(
    private readonly agent: MetaAgent,
    private readonly nodeId: number,
    private readonly log: Logger,
  ) {}

  /** Resolves after the first pass (so a node reports ready with its shards placed), at most `firstPassMs` later. */
  async start(firstPassMs = 5000): Promise<void> {
    this.unsubscribe = this.agent.replica.subscribe(({ event }) => {
      if (event.type.startsWith('topic.') || event.type.startsWith('node.') || event.type === 'state.restored') this.schedule();
    });
    this.timer = setInterval(() => this.schedule(), RECHECK_MS);
    this.timer.unref();
    this.running = true;
    const first = this.reconcile().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'placement: could not assign shard leaders'));
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([first, new Promise<void>((r) => (timeout = setTimeout(r, firstPassMs)))]);
    clearTimeout(timeout);
    void first.finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
  }

  private schedule(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.reconcile()
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'placement: could not assign shard leaders'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          setTimeout(() => this.schedule(), 50).unref();
        }
      });
  }

  private async reconcile(): Promise<void> {
    const view = this.agent.replica.view;
    const alive = view.nodes.withRole('broker', 'alive').map((n) => n.id);
    if (alive.length === 0 || alive[0] !== this.nodeId) return;
    const live = new Set(alive);
    const load = new Map<number, number>(alive.map((id) => [id, 0]));
    const orphans: Array<{ topic: string; shard: number; epoch: number }> = [];
    for (const topic of view.topics.list()) {
      for (const s of view.shards.forTopic(topic.name)) {
        if (s.leader !== 0 && live.has(s.leader)) load.set(s.leader, (load.get(s.leader) ?? 0) + 1);
        else orphans.push({ topic: s.topic, shard: s.shard, epoch: s.epoch });
      }
    }
    // Per topic, how many of its shards each broker leads: a topic's shards are spread first, then total load evens out.
    const topicLoad = new Map<string, Map<number, number>>();
    const topicCount = (topic: string, id: number): number => topicLoad.get(topic)?.get(id) ?? 0;
    for (const topic of view.topics.list()) {
      const m = new Map<number, number>();
      for (const s of view.shards.forTopic(topic.name)) if (live.has(s.leader)) m.set(s.leader, (m.get(s.leader) ?? 0) + 1);
      topicLoad.set(topic.name, m);
    }
    for (const o of orphans) {
      // The live broker leading the fewest shards of this topic, then the fewest overall; ties go to the lowest id.
      let best = alive[0]!;
      for (const id of alive) {
        const byTopic = topicCount(o.topic, id) - topicCount(o.topic, best);
        if (byTopic < 0 || (byTopic === 0 && (load.get(id) ?? 0) < (load.get(best) ?? 0))) best = id;
      }
      const r = await proposeResult(this.agent, { kind: 'shard.assign', topic: o.topic, shard: o.shard, leader: best, replicas: [best], expectedEpoch: o.epoch });
      if (r.ok) {
        load.set(best, (load.get(best) ?? 0) + 1);
        const m = topicLoad.get(o.topic) ?? new Map<number, number>();
        m.set(best, (m.get(best) ?? 0) + 1);
        topicLoad.set(o.topic, m);
        this.log.debug({ topic: o.topic, shard: o.shard, leader: best }, 'placement: assigned shard leader');
      } else if (r.code !== 'conflict' && r.code !== 'not_found') {
        this.log.warn({ topic: o.topic, shard: o.shard, code: r.code, message: r.message }, 'placement: shard assignment refused');
      }
    }
  }
}

export interface LeaderMove {
  topic: string;
  shard: number;
  from: number;
  to: number;
  epoch: number;
}

/**
 * Moves that even out shard leadership over the live brokers (`robust-ctl cluster
 * rebalance`): while the busiest broker leads two or more shards than the idlest,
 * one shard moves from it — of the topic it leads the most shards of, so topics
 * spread too. Only shards whose data does not live on their leader (the journal
 * engine) can move; a file or memory shard stays where its records are.
 */
export function planRebalance(shards: ReadonlyArray<{ topic: string; shard: number; leader: number; epoch: number; movable: boolean }>, alive: readonly number[]): LeaderMove[] {
  if (alive.length < 2) return [];
  const live = new Set(alive);
  const led = new Map<number, Array<{ topic: string; shard: number; epoch: number }>>(alive.map((id) => [id, []]));
  const fixed = new Map<number, number>(alive.map((id) => [id, 0]));
  for (const s of shards) {
    if (!live.has(s.leader)) continue;
    if (s.movable) led.get(s.leader)!.push({ topic: s.topic, shard: s.shard, epoch: s.epoch });
    else fixed.set(s.leader, fixed.get(s.leader)! + 1);
  }
  const load = (id: number): number => led.get(id)!.length + fixed.get(id)!;
  const moves: LeaderMove[] = [];
  for (;;) {
    const byLoad = [...alive].sort((a, b) => load(a) - load(b) || a - b);
    const idle = byLoad[0]!;
    const busy = byLoad.at(-1)!;
    if (load(busy) - load(idle) < 2 || led.get(busy)!.length === 0) return moves;
    // The busy broker's topic with the most shards on it, and of those the highest shard number.
    const perTopic = new Map<string, number>();
    for (const s of led.get(busy)!) perTopic.set(s.topic, (perTopic.get(s.topic) ?? 0) + 1);
    const list = led.get(busy)!;
    let pick = 0;
    for (let i = 1; i < list.length; i++) {
      const a = list[i]!;
      const b = list[pick]!;
      const d = perTopic.get(a.topic)! - perTopic.get(b.topic)!;
      if (d > 0 || (d === 0 && (a.topic > b.topic || (a.topic === b.topic && a.shard > b.shard)))) pick = i;
    }
    const [moved] = list.splice(pick, 1);
    led.get(idle)!.push(moved!);
    moves.push({ topic: moved!.topic, shard: moved!.shard, from: busy, to: idle, epoch: moved!.epoch });
  }
}
