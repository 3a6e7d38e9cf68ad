import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import type { RpcClientPool } from '../rpc/client-pool.js';
import { MetaStoppedError, MetaTimeoutError, NotLeaderError } from './errors.js';
import { MetaServiceClient, fromRpcCallError, outcomeFromWire, type ClusterStatusView, type WireOutcome } from './service.js';

/** The local copy of the state machine the client keeps current. */
export interface ReplicaMachine {
  apply(index: number, data: Uint8Array): unknown;
  restore(data: Uint8Array): void;
}

export interface MetaClientOptions {
  /** gRPC addresses of the meta nodes, in the order to try them. */
  metaAddrs: string[];
  pool: RpcClientPool;
  log: Logger;
  replica: ReplicaMachine;
  requestTimeoutMs: number;
  /** See DEFAULT_WATCH_STALL_MS. */
  watchStallMs?: number;
}

interface WatchEventWire {
  snapshot?: { index: number; data: Buffer } | null;
  commands?: { commands: Array<{ index: number; data: Buffer }> } | null;
}

interface QueuedProposal {
  command: Uint8Array;
  resolve: (v: { index: number; result: unknown }) => void;
  reject: (e: Error) => void;
}

/** Proposals queued in one event-loop turn go out as one call, up to this many. */
const MAX_BATCH = 1024;

const RETRY_PAUSE_MS = 100;
const WATCH_RECONNECT_MS = 200;
/**
 * A write waits for the watch stream to bring its index this long, with nothing
 * arriving on the stream meanwhile, before the stream counts as stalled (a meta
 * node gone without closing the connection: keepalive would take ~50 s) and is
 * reopened on the next meta node.
 */
const DEFAULT_WATCH_STALL_MS = 3_000;

/**
 * How brokers and journals (and the admin API) talk to the meta cluster.
 * Writes go to any reachable meta node, which forwards to the leader. A watch
 * stream keeps `replica` — a local copy of the metadata state machine — up to
 * date, so lookups on a hot path read local memory and never wait on the network.
 */
export class MetaClient {
  private preferred = 0;
  private appliedIndex = 0;
  private watchCall: grpc.ClientReadableStream<WatchEventWire> | undefined;
  private stopped = false;
  private synced = false;
  private readonly indexWaiters = new Set<{ index: number; resolve: () => void; sinceMs: number }>();
  private lastWatchEventMs = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly syncWaiters = new Set<() => void>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private queue: QueuedProposal[] = [];
  private flushScheduled = false;

  constructor(private readonly opts: MetaClientOptions) {
    if (opts.metaAddrs.length === 0) throw new Error('MetaClient needs at least one meta address');
  }

  /** Open the watch stream; resolves once the replica holds a full copy. */
  async start(): Promise<void> {
    this.openWatch();
    await this.waitSynced();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.watchCall?.cancel();
    this.watchCall = undefined;
    for (const w of this.indexWaiters) w.resolve();
    for (const w of this.syncWaiters) w();
    for (const p of this.queue.splice(0)) p.reject(new MetaStoppedError());
  }

  get replicaIndex(): number {
    return this.appliedIndex;
  }

  /**
   * Commit a command; resolves with the state machine's result once the local
   * replica has applied it too (read-your-writes), unless `waitForReplica` is
   * false. Concurrent calls share one RPC.
   */
  async propose(command: Uint8Array, opts: { waitForReplica?: boolean } = {}): Promise<{ index: number; result: unknown }> {
    const committed = await new Promise<{ index: number; result: unknown }>((resolve, reject) => {
      this.queue.push({ command, resolve, reject });
      if (this.queue.length >= MAX_BATCH) this.flushProposals();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushProposals());
      }
    });
    if (opts.waitForReplica !== false) await this.waitForIndex(committed.index);
    return committed;
  }

  private flushProposals(): void {
    this.flushScheduled = false;
    const batch = this.queue.splice(0, MAX_BATCH);
    if (this.queue.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushProposals());
    }
    if (batch.length === 0) return;
    this.call<{ commands: Uint8Array[]; hops: number }, { outcomes: WireOutcome[] }>('Propose', { commands: batch.map((p) => p.command), hops: 3 }).then(
      (reply) => {
        batch.forEach((p, i) => {
          const wire = reply.outcomes[i];
          if (!wire) return p.reject(new Error('meta service answered fewer outcomes than commands sent'));
          const o = outcomeFromWire(wire);
          if (o.ok) p.resolve({ index: o.index, result: o.result });
          else p.reject(o.error);
        });
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err as Error);
      },
    );
  }

  /**
   * Wait until the local replica reflects every write committed before this
   * call (a linearizable read point), then read the replica.
   */
  async consistent(): Promise<void> {
    const reply = await this.call<object, { index: number }>('ReadIndex', {});
    await this.waitForIndex(Number(reply.index));
  }

  async heartbeat(nodeId: number): Promise<void> {
    await this.call('Heartbeat', { node_id: nodeId, hops: 3 }, 2_000);
  }

  async clusterStatus(): Promise<ClusterStatusView> {
    const reply = await this.call<object, { json: string }>('ClusterStatus', { hops: 2 });
    return JSON.parse(reply.json) as ClusterStatusView;
  }

  async changeMembers(action: 'add' | 'remove', nodeId: number, address: string): Promise<unknown> {
    const reply = await this.call<object, { json: string }>('ChangeMembers', { action, node_id: nodeId, address, hops: 3 }, 45_000);
    return JSON.parse(reply.json) as unknown;
  }

  async transferLeader(target: number | undefined): Promise<unknown> {
    const reply = await this.call<object, { json: string }>('TransferLeader', { target: target ?? 0, hops: 3 }, 10_000);
    return JSON.parse(reply.json) as unknown;
  }

  /** Resolves when the local replica has applied `index` (or the client stops). */
  waitForIndex(index: number): Promise<void> {
    if (this.appliedIndex >= index || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.indexWaiters.add({ index, resolve, sinceMs: Date.now() });
      this.armStallCheck();
    });
  }

  /** While writes wait on the watch stream: reopen it elsewhere if it brings nothing for watchStallMs. */
  private armStallCheck(): void {
    if (this.stallTimer || this.stopped) return;
    const stallMs = this.opts.watchStallMs ?? DEFAULT_WATCH_STALL_MS;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.stopped || this.indexWaiters.size === 0) return;
      const now = Date.now();
      let oldest = now;
      for (const w of this.indexWaiters) if (w.sinceMs < oldest) oldest = w.sinceMs;
      if (now - oldest >= stallMs && now - this.lastWatchEventMs >= stallMs) {
        const address = this.opts.metaAddrs[this.preferred % this.opts.metaAddrs.length];
        this.opts.log.warn({ address, waited_ms: now - oldest, applied_index: this.appliedIndex }, `meta: the watch stream from ${address} brought nothing for ${now - oldest} ms while writes wait for it; reopening it on the next meta node`);
        this.reopenWatch();
      }
      this.armStallCheck();
    }, Math.max(1, Math.floor(stallMs / 2)));
    this.stallTimer.unref();
  }

  private reopenWatch(): void {
    const call = this.watchCall;
    this.watchCall = undefined; // its error/end handler sees it replaced and stays quiet
    call?.cancel();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.preferred++;
    this.lastWatchEventMs = Date.now();
    this.openWatch();
  }

  private waitSynced(): Promise<void> {
    if (this.synced || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.add(resolve));
  }

  /** A unary call to whichever meta node answers, rotating on transport failures until the deadline. */
  private async call<Req, Res>(method: string, request: Req, timeoutMs = this.opts.requestTimeoutMs): Promise<Res> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new MetaStoppedError();
      const address = this.opts.metaAddrs[this.preferred % this.opts.metaAddrs.length]!;
      try {
        return await this.opts.pool.unary<Req, Res>(MetaServiceClient, address, method, request, Math.max(deadline - Date.now(), 1));
      } catch (err) {
        const mapped = fromRpcCallError(err);
        lastErr = mapped;
        const retriable = mapped instanceof NotLeaderError || (err as { status?: number }).status === grpc.status.UNAVAILABLE;
        if (!retriable) throw mapped;
        if (Date.now() >= deadline) break;
        this.preferred++;
        if (attempt % this.opts.metaAddrs.length === this.opts.metaAddrs.length - 1) await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
    throw lastErr instanceof MetaTimeoutError ? lastErr : new MetaTimeoutError(`${method} to the meta service (${(lastErr as Error | undefined)?.message ?? 'no answer'})`, timeoutMs);
  }

  private openWatch(): void {
    if (this.stopped) return;
    const address = this.opts.metaAddrs[this.preferred % this.opts.metaAddrs.length]!;
    const client = this.opts.pool.get<grpc.Client>(MetaServiceClient, address) as unknown as {
      Watch(req: { after_index: number }): grpc.ClientReadableStream<WatchEventWire>;
    };
    const call = client.Watch({ after_index: this.synced ? this.appliedIndex : 0 });
    this.watchCall = call;
    call.on('data', (ev: WatchEventWire) => this.onWatchEvent(ev));
    const retry = () => {
      if (this.watchCall !== call) return;
      this.watchCall = undefined;
      if (this.stopped) return;
      this.preferred++;
      this.reconnectTimer = setTimeout(() => this.openWatch(), WATCH_RECONNECT_MS);
    };
    call.on('error', retry);
    call.on('end', retry);
  }

  private onWatchEvent(ev: WatchEventWire): void {
    this.lastWatchEventMs = Date.now();
    if (ev.snapshot) {
      this.opts.replica.restore(ev.snapshot.data);
      this.appliedIndex = Number(ev.snapshot.index);
      if (!this.synced) {
        this.synced = true;
        for (const w of this.syncWaiters) w();
        this.syncWaiters.clear();
      }
    } else if (ev.commands) {
      for (const c of ev.commands.commands ?? []) {
        const index = Number(c.index);
        if (index <= this.appliedIndex) continue; // already have it (a resumed stream may overlap)
        this.opts.replica.apply(index, c.data);
        this.appliedIndex = index;
      }
    }
    for (const w of this.indexWaiters) {
      if (w.index <= this.appliedIndex) {
        this.indexWaiters.delete(w);
        w.resolve();
      }
    }
  }
}
