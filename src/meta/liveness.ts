import type { Logger } from '../common/logger.js';

export type NodeLiveness = 'alive' | 'suspect' | 'dead';

export interface LivenessOptions {
  suspectAfterMs: number;
  deadAfterMs: number;
  checkEveryMs: number;
  now: () => number;
  log: Logger;
  /** The registered nodes and their replicated state. */
  nodes: () => Array<{ id: number; state: NodeLiveness }>;
  /** Replicate a state change (through Raft). */
  setState: (nodeId: number, state: NodeLiveness, nowMs: number) => Promise<void>;
}

/**
 * Runs on the meta leader only. Heartbeats land here in memory (replicating one
 * per node per second would be pure log churn); what is replicated is a node's
 * *state change*, so every meta node and every watcher sees the same
 * alive -> suspect -> dead transitions as events.
 */
export class LivenessMonitor {
  private readonly lastSeen = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<number>();

  constructor(private readonly opts: LivenessOptions) {}

  /** Becoming leader: nobody has been seen by *this* leader yet, so everyone gets a full grace period from now. */
  start(): void {
    const now = this.opts.now();
    this.lastSeen.clear();
    for (const n of this.opts.nodes()) this.lastSeen.set(n.id, now);
    this.timer ??= setInterval(() => this.check(), this.opts.checkEveryMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  heartbeat(nodeId: number): void {
    this.lastSeen.set(nodeId, this.opts.now());
    const node = this.opts.nodes().find((n) => n.id === nodeId);
    if (node && node.state !== 'alive') this.transition(nodeId, 'alive');
  }

  lastHeartbeat(nodeId: number): number | undefined {
    return this.lastSeen.get(nodeId);
  }

  private check(): void {
    const now = this.opts.now();
    for (const n of this.opts.nodes()) {
      const seen = this.lastSeen.get(n.id) ?? now;
      if (!this.lastSeen.has(n.id)) this.lastSeen.set(n.id, now);
      const silent = now - seen;
      const want: NodeLiveness = silent >= this.opts.deadAfterMs ? 'dead' : silent >= this.opts.suspectAfterMs ? 'suspect' : 'alive';
      // Only ever move towards dead here; coming back to alive is the heartbeat's job.
      if ((want === 'suspect' && n.state === 'alive') || (want === 'dead' && n.state !== 'dead')) this.transition(n.id, want);
    }
  }

  private transition(nodeId: number, state: NodeLiveness): void {
    if (this.inFlight.has(nodeId)) return;
    this.inFlight.add(nodeId);
    this.opts
      .setState(nodeId, state, this.opts.now())
      .then(
        () => this.opts.log.info({ node_id: nodeId, state }, `node ${nodeId} is now ${state}`),
        (err: unknown) => this.opts.log.warn({ node_id: nodeId, state, err: (err as Error).message }, `could not record node ${nodeId} as ${state}`),
      )
      .finally(() => this.inFlight.delete(nodeId));
  }
}
