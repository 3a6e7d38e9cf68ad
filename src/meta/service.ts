import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../common/config/index.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Service } from '../common/service.js';
import type { RpcClientPool } from '../rpc/client-pool.js';
import { RpcError } from '../rpc/errors.js';
import { loadProto, serviceClient } from '../rpc/proto.js';
import type { RpcServer } from '../rpc/server.js';
import { MembershipError, MetaStoppedError, MetaTimeoutError, NotLeaderError, ProposalDroppedError } from './errors.js';
import { LivenessMonitor, type NodeLiveness } from './liveness.js';
import { RaftCore } from './raft/core/raft.js';
import { NONE, type ConfChange, type NodeId, type SoftState } from './raft/core/types.js';
import { RaftDriver, type Committed, type RaftStateMachine } from './raft/driver.js';
import { RaftLogStore } from './raft/storage/raft-log-store.js';
import { RaftTransport } from './raft/transport.js';

export const MetaServiceClient = serviceClient(loadProto('robust/meta/v1/meta.proto'), 'robust.meta.v1.MetaService');

/** Forwarding hops a request may take before giving up (leader changes mid-flight). */
const MAX_HOPS = 3;
/** Commands kept for watchers to resume from without a full snapshot. */
const WATCH_RING = 10_000;
/** A watcher further behind than this many buffered bytes is cut off; it resyncs from a snapshot. */
const WATCH_MAX_BUFFERED = 16 * 1024 * 1024;
const LEARNER_CATCH_UP_SLACK = 16;

/** The replicated state machine as the meta service uses it. */
export interface MetaMachine extends RaftStateMachine {
  readonly appliedIndex: number;
}

/** How the meta service reads the node registry (for liveness and addresses). */
export interface MetaDirectory {
  nodes(): Array<{ id: number; state: NodeLiveness; grpcAddr?: string; roles: string[] }>;
  /** An encoded command recording a node's new liveness state. */
  setStateCommand(nodeId: number, state: NodeLiveness, nowMs: number): Uint8Array;
}

export interface MetaServiceOptions {
  config: Config;
  log: Logger;
  rpc: RpcServer;
  pool: RpcClientPool;
  registry: Registry;
  machine: MetaMachine;
  directory: MetaDirectory;
  fatal: (err: unknown) => void;
}

export interface MemberView {
  node_id: number;
  addr: string | null;
  role: 'leader' | 'follower' | 'candidate' | 'learner';
  match_index: number | null;
}

export interface ClusterStatusView {
  cluster_name: string;
  leader_id: number;
  term: number;
  commit_index: number;
  applied_index: number;
  answered_by: number;
  members: MemberView[];
  nodes: Array<{ node_id: number; roles: string[]; state: string; last_heartbeat_ms: number | null }>;
}

interface Watcher {
  call: grpc.ServerWritableStream<unknown, unknown>;
}

export type ProposeOutcome = ({ ok: true } & Committed) | { ok: false; error: Error };

/** A ProposeOutcome on the wire. */
export interface WireOutcome {
  result_json: string;
  index: number;
  error_code: number;
  error: string;
}

export function outcomeToWire(o: ProposeOutcome): WireOutcome {
  if (o.ok) return { result_json: JSON.stringify(o.result ?? null), index: o.index, error_code: 0, error: '' };
  const rpcErr = toRpcError(o.error);
  return { result_json: '', index: 0, error_code: rpcErr.status, error: rpcErr.message };
}

export function outcomeFromWire(w: WireOutcome): ProposeOutcome {
  if (!w.error_code) return { ok: true, index: Number(w.index), result: JSON.parse(w.result_json) as unknown };
  return { ok: false, error: fromRpcCallError({ status: w.error_code, message: w.error }) };
}

/**
 * The meta role: one member of the Raft group that replicates the cluster's
 * metadata. Serves Raft traffic, forwards writes to the leader, runs node
 * liveness while it leads, and streams applied commands to watchers.
 */
export class MetaService implements Service {
  readonly name = 'meta';
  private store: RaftLogStore | undefined;
  private driver: RaftDriver | undefined;
  private transport: RaftTransport | undefined;
  private readonly liveness: LivenessMonitor;
  private soft: SoftState = { leaderId: NONE, role: 'follower' };
  private stopping = false;
  private readonly addresses = new Map<NodeId, string>();
  private readonly recent: Array<{ index: number; data: Uint8Array }> = [];
  /** Watchers can resume from any applied index >= this without a snapshot. */
  private ringFloor = 0;
  private appliedIndex = 0;
  private readonly watchers = new Set<Watcher>();
  /** Applied commands not yet sent to watchers; flushed once per event-loop turn as one event. */
  private watchBatch: Array<{ index: number; data: Uint8Array }> = [];
  private watchFlushScheduled = false;
  private readonly leaderWaiters = new Set<() => void>();
  private readonly proposalSeconds: Histogram;
  private readonly leaderChanges: Counter;

  constructor(private readonly opts: MetaServiceOptions) {
    const { config } = opts;
    for (const [id, addr] of Object.entries(config.meta_addrs)) this.addresses.set(Number(id), addr);
    this.liveness = new LivenessMonitor({
      suspectAfterMs: config.meta.node_suspect_ms,
      deadAfterMs: config.meta.node_dead_ms,
      checkEveryMs: Math.max(100, Math.floor(config.meta.node_heartbeat_ms / 2)),
      now: Date.now,
      log: opts.log,
      nodes: () => opts.directory.nodes(),
      setState: async (nodeId, state, nowMs) => {
        await this.propose(opts.directory.setStateCommand(nodeId, state, nowMs));
      },
    });
    this.proposalSeconds = new Histogram({
      name: 'robust_meta_proposal_seconds',
      help: 'Time from proposing a metadata write on the leader to applying it',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [opts.registry],
    });
    this.leaderChanges = new Counter({ name: 'robust_meta_leader_changes_total', help: 'Times this node saw the meta leader change', registers: [opts.registry] });
    const status = () => this.driver?.status();
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers: [opts.registry],
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    gauge('robust_meta_term', 'Current Raft term of this meta node', () => status()?.term);
    gauge('robust_meta_commit_index', 'Highest Raft log index known committed', () => status()?.commit);
    gauge('robust_meta_applied_index', 'Highest Raft log index applied to the metadata state machine', () => status()?.applied);
    gauge('robust_meta_is_leader', '1 if this node is the meta leader', () => (status() ? (status()!.role === 'leader' ? 1 : 0) : undefined));
    gauge('robust_meta_log_entries', 'Raft log entries held (after the last compaction)', () => {
      const s = status();
      return s ? s.lastIndex - s.firstIndex + 1 : undefined;
    });
  }

  get dir(): string {
    return join(this.opts.config.data_dir, 'meta');
  }

  async start(): Promise<void> {
    const { config, log, machine } = this.opts;
    await mkdir(this.dir, { recursive: true });
    const store = await RaftLogStore.open(this.dir);
    this.store = store;
    const restored = store.restored();
    if (restored.snapshot) machine.restore(restored.snapshot.data);
    this.appliedIndex = restored.snapshot?.meta.index ?? 0;
    this.ringFloor = this.appliedIndex;

    const founders = Object.keys(config.meta_addrs).map(Number);
    const core = new RaftCore(
      {
        id: config.node_id,
        electionTick: config.meta.election_ticks,
        heartbeatTick: config.meta.heartbeat_ticks,
        preVote: true,
        checkQuorum: true,
        maxSizePerMsg: 1024 * 1024,
        maxInflightMsgs: 256,
        random: (n) => randomInt(n),
      },
      { ...restored, initialConf: { voters: config.meta.join ? [] : founders, learners: [] } },
    );
    this.transport = new RaftTransport({ selfId: config.node_id, clusterName: config.cluster_name, pool: this.opts.pool, log, addressOf: (id) => this.addressOf(id) });
    this.driver = new RaftDriver({
      core,
      store,
      sm: machine,
      send: (msgs) => this.transport!.send(msgs),
      tickMs: config.meta.tick_ms,
      snapshotEntries: config.meta.snapshot_entries,
      proposeTimeoutMs: config.meta.propose_timeout_ms,
      snapshotIndex: this.appliedIndex,
      log,
      hooks: {
        onApplied: (index, data) => this.onApplied(index, data),
        onRestored: (index) => this.onRestored(index),
        onConfChange: (change) => this.onConfChange(change),
        onSoftState: (soft, term) => this.onSoftState(soft, term),
        onFatal: (err) => this.opts.fatal(err),
      },
    });
    const driver = this.driver;
    this.transport.serve(this.opts.rpc, (m) => driver.step(m));
    this.registerRpc();
    driver.start();

    const conf = core.status().conf;
    if (conf.voters.length === 1 && conf.voters[0] === config.node_id) driver.campaign(); // alone: no need to wait out an election timeout
    log.info({ dir: this.dir, voters: conf.voters, learners: conf.learners, join: config.meta.join }, `meta: Raft member ${config.node_id} of [${conf.voters.join(', ')}]${config.meta.join ? ' (joining)' : ''}`);
    await this.waitForLeader();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.liveness.stop();
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
    for (const wake of this.leaderWaiters) wake();
    await this.driver?.stop();
    this.transport?.close();
    await this.store?.close();
  }

  isReady(): boolean {
    return !this.stopping && this.soft.leaderId !== NONE;
  }

  get leaderId(): NodeId {
    return this.soft.leaderId;
  }

  get isLeader(): boolean {
    return this.soft.role === 'leader';
  }

  // ------------------------------------------------------------ writes

  /** Commit one encoded command; on a follower it is forwarded to the leader. */
  async propose(command: Uint8Array, hops = MAX_HOPS): Promise<Committed> {
    const [outcome] = await this.proposeMany([command], hops);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!;
  }

  /**
   * Commit several commands, each its own log entry with its own outcome. On a
   * follower they are forwarded to the leader in one call; commands caught by a
   * leader change are retried until the deadline.
   */
  async proposeMany(commands: Uint8Array[], hops = MAX_HOPS): Promise<ProposeOutcome[]> {
    const timeoutMs = this.opts.config.meta.propose_timeout_ms;
    const deadline = Date.now() + timeoutMs;
    const outcomes: ProposeOutcome[] = new Array<ProposeOutcome>(commands.length);
    let pending = commands.map((_, i) => i);
    for (;;) {
      if (this.stopping) throw new MetaStoppedError();
      const leader = this.soft.leaderId;
      let attempt: Array<ProposeOutcome> | undefined;
      if (leader === this.opts.config.node_id) {
        const t0 = performance.now();
        const settled = await Promise.allSettled(pending.map((i) => this.driver!.propose(commands[i]!)));
        const seconds = (performance.now() - t0) / 1000;
        attempt = settled.map((r) => {
          if (r.status === 'fulfilled') {
            this.proposalSeconds.observe(seconds);
            return { ok: true as const, ...r.value };
          }
          return { ok: false as const, error: r.reason as Error };
        });
      } else if (leader !== NONE && hops > 0) {
        try {
          attempt = await this.forwardProposeMany(leader, pending.map((i) => commands[i]!), hops - 1);
        } catch (err) {
          if (!(err instanceof NotLeaderError)) throw err;
        }
      }
      const retry: number[] = [];
      pending.forEach((i, k) => {
        const o = attempt?.[k];
        if (!o || (!o.ok && o.error instanceof NotLeaderError)) retry.push(i);
        else outcomes[i] = o;
      });
      pending = retry;
      if (pending.length === 0) return outcomes;
      if (Date.now() >= deadline) {
        for (const i of pending) outcomes[i] = { ok: false, error: new MetaTimeoutError('metadata write (no reachable meta leader)', timeoutMs) };
        return outcomes;
      }
      await this.waitForLeaderChange(Math.min(200, deadline - Date.now()));
    }
  }

  private async forwardProposeMany(leader: NodeId, commands: Uint8Array[], hops: number): Promise<ProposeOutcome[]> {
    const address = this.addressOf(leader);
    if (!address) throw new NotLeaderError(0);
    try {
      const reply = await this.opts.pool.unary<{ commands: Uint8Array[]; hops: number }, { outcomes: WireOutcome[] }>(MetaServiceClient, address, 'Propose', { commands, hops }, this.opts.config.meta.propose_timeout_ms);
      return reply.outcomes.map(outcomeFromWire);
    } catch (err) {
      throw fromRpcCallError(err);
    }
  }

  /** A linearizable read point on this node (ReadIndex through the leader). */
  async readBarrier(): Promise<void> {
    const { propose_timeout_ms, tick_ms, election_ticks } = this.opts.config.meta;
    const deadline = Date.now() + propose_timeout_ms;
    // A read sent to a leader that has just been deposed is never answered, so
    // each attempt gets about two election timeouts before it is asked again.
    const attemptMs = 2 * tick_ms * election_ticks;
    for (;;) {
      try {
        return await this.driver!.readBarrier(Math.max(1, Math.min(attemptMs, deadline - Date.now())));
      } catch (err) {
        const retriable = err instanceof NotLeaderError || err instanceof MetaTimeoutError;
        if (!retriable || Date.now() >= deadline) throw err;
        if (err instanceof NotLeaderError) await this.waitForLeaderChange(Math.min(200, deadline - Date.now()));
      }
    }
  }

  // ------------------------------------------------------------ membership

  async changeMembers(action: 'add' | 'remove', nodeId: number, address: string, hops = MAX_HOPS): Promise<unknown> {
    if (!this.isLeader) return this.forwardJson('ChangeMembers', { action, node_id: nodeId, address, hops: hops - 1 }, hops);
    const driver = this.driver!;
    const conf = driver.status().conf;
    if (action === 'remove') {
      if (!conf.voters.includes(nodeId) && !conf.learners.includes(nodeId)) throw new MembershipError(`node ${nodeId} is not a meta member`, 'not_found');
      await driver.proposeConfChange({ type: 'removeNode', nodeId, context: '' });
      return { node_id: nodeId, removed: true };
    }
    if (conf.voters.includes(nodeId)) throw new MembershipError(`node ${nodeId} is already a voting meta member`, 'already_exists');
    if (!/^[^\s:]+:\d{1,5}$/.test(address)) throw new MembershipError(`address "${address}" is not host:port`, 'invalid');
    this.addresses.set(nodeId, address);
    if (!conf.learners.includes(nodeId)) await driver.proposeConfChange({ type: 'addLearner', nodeId, context: address });
    // Promote only once the learner holds (nearly) the whole log, so the quorum never waits on a cold node.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !this.stopping) {
      const s = driver.status();
      if (s.role !== 'leader') throw new NotLeaderError(s.leaderId);
      const pr = s.progress.get(nodeId);
      if (pr && pr.match + LEARNER_CATCH_UP_SLACK >= s.lastIndex) {
        await driver.proposeConfChange({ type: 'addVoter', nodeId, context: address });
        return { node_id: nodeId, addr: address, role: 'voter' };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { node_id: nodeId, addr: address, role: 'learner', note: 'added as a learner; it has not caught up yet (is it running with [meta] join = true?). Repeat the request to promote it once it has.' };
  }

  async transferLeader(target: number | undefined, hops = MAX_HOPS): Promise<unknown> {
    if (!this.isLeader) return this.forwardJson('TransferLeader', { target: target ?? 0, hops: hops - 1 }, hops);
    const s = this.driver!.status();
    let to = target;
    if (!to) {
      // The most up-to-date other voter takes over with the least catch-up.
      const candidates = s.conf.voters.filter((v) => v !== s.id).sort((a, b) => (s.progress.get(b)?.match ?? 0) - (s.progress.get(a)?.match ?? 0));
      to = candidates[0];
    }
    if (!to || !s.conf.voters.includes(to)) throw new MembershipError(`node ${to ?? '?'} is not a voting meta member`, 'invalid');
    if (to === s.id) return { leader_id: s.id };
    this.driver!.transferLeader(to);
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      if (this.soft.leaderId === to) return { leader_id: to };
      await this.waitForLeaderChange(200);
    }
    throw new MembershipError(`leadership did not move to node ${to} within 5 s`, 'transfer_timeout');
  }

  private async forwardJson(method: 'ChangeMembers' | 'TransferLeader', request: object, hops: number): Promise<unknown> {
    const leader = await this.currentLeader();
    if (hops <= 0) throw new NotLeaderError(leader);
    const address = this.addressOf(leader);
    if (!address) throw new NotLeaderError(0);
    try {
      const reply = await this.opts.pool.unary<object, { json: string }>(MetaServiceClient, address, method, request, 40_000);
      return JSON.parse(reply.json) as unknown;
    } catch (err) {
      throw fromRpcCallError(err);
    }
  }

  // ------------------------------------------------------------ status

  async clusterStatus(hops = MAX_HOPS): Promise<ClusterStatusView> {
    if (!this.isLeader && this.soft.leaderId !== NONE && hops > 0) {
      const address = this.addressOf(this.soft.leaderId);
      if (address) {
        try {
          const reply = await this.opts.pool.unary<object, { json: string }>(MetaServiceClient, address, 'ClusterStatus', { hops: hops - 1 }, 2_000);
          return JSON.parse(reply.json) as ClusterStatusView;
        } catch {
          // fall back to what this node knows
        }
      }
    }
    return this.localStatus();
  }

  private localStatus(): ClusterStatusView {
    const s = this.driver!.status();
    const member = (id: number, learner: boolean): MemberView => ({
      node_id: id,
      addr: this.addressOf(id) ?? null,
      role: learner ? 'learner' : id === s.leaderId ? 'leader' : id === s.id && s.role === 'candidate' ? 'candidate' : 'follower',
      match_index: s.role === 'leader' ? (s.progress.get(id)?.match ?? null) : id === s.id ? s.lastIndex : null,
    });
    return {
      cluster_name: this.opts.config.cluster_name,
      leader_id: s.leaderId,
      term: s.term,
      commit_index: s.commit,
      applied_index: s.applied,
      answered_by: s.id,
      members: [...s.conf.voters.map((id) => member(id, false)), ...s.conf.learners.map((id) => member(id, true))],
      nodes: this.opts.directory.nodes().map((n) => ({
        node_id: n.id,
        roles: n.roles,
        state: n.state,
        last_heartbeat_ms: this.isLeader ? (this.liveness.lastHeartbeat(n.id) ?? null) : null,
      })),
    };
  }

  // ------------------------------------------------------------ Raft hooks

  private onApplied(index: number, data: Uint8Array): void {
    this.appliedIndex = index;
    this.recent.push({ index, data });
    if (this.recent.length > WATCH_RING) this.ringFloor = this.recent.shift()!.index;
    if (this.watchers.size === 0) return;
    this.watchBatch.push({ index, data });
    if (!this.watchFlushScheduled) {
      this.watchFlushScheduled = true;
      setImmediate(() => this.flushWatchers());
    }
  }

  private flushWatchers(): void {
    this.watchFlushScheduled = false;
    const commands = this.watchBatch;
    this.watchBatch = [];
    if (commands.length === 0) return;
    for (const w of this.watchers) this.sendToWatcher(w, { commands: { commands } });
  }

  private onRestored(index: number): void {
    this.opts.log.info({ index }, `meta: installed a snapshot from the leader at index ${index}`);
    this.appliedIndex = index;
    this.flushWatchers(); // what was applied before the snapshot goes out before it
    this.recent.length = 0;
    this.ringFloor = index;
    const data = this.opts.machine.snapshot();
    for (const w of this.watchers) this.sendToWatcher(w, { snapshot: { index, data } });
  }

  private onConfChange(change: ConfChange): void {
    if (change.context !== '') this.addresses.set(change.nodeId, change.context);
    this.opts.log.info({ change: change.type, node_id: change.nodeId }, `meta membership: ${change.type} node ${change.nodeId}`);
    if (change.type === 'removeNode' && change.nodeId === this.opts.config.node_id) {
      this.opts.log.warn('this node was removed from the meta group; it no longer votes or serves metadata writes');
    }
  }

  private onSoftState(soft: SoftState, term: number): void {
    const leaderChanged = soft.leaderId !== this.soft.leaderId;
    this.soft = soft;
    if (leaderChanged) {
      this.leaderChanges.inc();
      if (soft.leaderId !== NONE) this.opts.log.info({ leader_id: soft.leaderId, term }, soft.role === 'leader' ? `meta: this node is the leader (term ${term})` : `meta: leader is node ${soft.leaderId} (term ${term})`);
    }
    if (soft.role === 'leader') this.liveness.start();
    else this.liveness.stop();
    for (const wake of this.leaderWaiters) wake();
    this.leaderWaiters.clear();
  }

  // ------------------------------------------------------------ helpers

  /** The gRPC address of a meta member: config, then membership changes, then the node registry. */
  addressOf(id: NodeId): string | undefined {
    return this.addresses.get(id) ?? this.opts.directory.nodes().find((n) => n.id === id)?.grpcAddr;
  }

  private waitForLeaderChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.leaderWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(ms, 1));
      this.leaderWaiters.add(wake);
    });
  }

  private async currentLeader(): Promise<NodeId> {
    const deadline = Date.now() + this.opts.config.meta.propose_timeout_ms;
    while (this.soft.leaderId === NONE && Date.now() < deadline && !this.stopping) await this.waitForLeaderChange(200);
    return this.soft.leaderId;
  }

  private async waitForLeader(): Promise<void> {
    let lastLog = Date.now();
    while (this.soft.leaderId === NONE && !this.stopping) {
      await this.waitForLeaderChange(500);
      if (Date.now() - lastLog > 5_000 && this.soft.leaderId === NONE) {
        lastLog = Date.now();
        this.opts.log.warn(`meta: no leader yet; waiting for a quorum of [${[...this.addresses.keys()].join(', ')}] to be reachable`);
      }
    }
  }

  private sendToWatcher(w: Watcher, event: object): void {
    const stream = w.call as unknown as { writableLength: number };
    if (stream.writableLength > WATCH_MAX_BUFFERED) {
      // Too far behind to keep buffering: cut it off, it resumes or resyncs.
      this.watchers.delete(w);
      w.call.end();
      return;
    }
    w.call.write(event);
  }

  private registerRpc(): void {
    const rpc = this.opts.rpc;
    const fail = (err: unknown): never => {
      throw toRpcError(err);
    };
    rpc.addUnaryService(MetaServiceClient.service, {
      Propose: async (req: { commands: Buffer[]; hops: number }) => {
        const outcomes = await this.proposeMany(req.commands ?? [], Math.min(req.hops, MAX_HOPS)).catch(fail);
        return { outcomes: outcomes.map(outcomeToWire) };
      },
      ReadIndex: async () => {
        await this.readBarrier().catch(fail);
        return { index: this.appliedIndex };
      },
      Heartbeat: async (req: { node_id: number; hops: number }) => {
        if (this.isLeader) {
          this.liveness.heartbeat(req.node_id);
          return { leader_id: this.soft.leaderId };
        }
        const leader = this.soft.leaderId;
        const address = leader !== NONE ? this.addressOf(leader) : undefined;
        if (!address || req.hops <= 0) throw new RpcError(grpc.status.UNAVAILABLE, new NotLeaderError(leader).message);
        return this.opts.pool.unary(MetaServiceClient, address, 'Heartbeat', { node_id: req.node_id, hops: req.hops - 1 }, 2_000).catch(fail);
      },
      ClusterStatus: async (req: { hops: number }) => ({ json: JSON.stringify(await this.clusterStatus(Math.min(req.hops ?? 0, MAX_HOPS))) }),
      ChangeMembers: async (req: { action: string; node_id: number; address: string; hops: number }) => {
        if (req.action !== 'add' && req.action !== 'remove') throw new RpcError(grpc.status.INVALID_ARGUMENT, `action must be "add" or "remove"`);
        return { json: JSON.stringify(await this.changeMembers(req.action, req.node_id, req.address, Math.min(req.hops, MAX_HOPS)).catch(fail)) };
      },
      TransferLeader: async (req: { target: number; hops: number }) => ({
        json: JSON.stringify(await this.transferLeader(req.target || undefined, Math.min(req.hops, MAX_HOPS)).catch(fail)),
      }),
    }, { Watch: this.watchHandler() as grpc.UntypedHandleCall });
  }

  /** The server side of Watch; registered by hand since it streams. */
  watchHandler(): grpc.handleServerStreamingCall<{ after_index: number }, unknown> {
    return (call) => {
      if (this.stopping) {
        call.end();
        return;
      }
      const after = Number(call.request.after_index ?? 0);
      const w: Watcher = { call };
      if (after > 0 && after >= this.ringFloor && after <= this.appliedIndex) {
        // Commands still waiting in watchBatch are in `recent` too; the client skips duplicates by index.
        const missed = this.recent.filter((c) => c.index > after);
        if (missed.length > 0) call.write({ commands: { commands: missed } });
      } else {
        call.write({ snapshot: { index: this.appliedIndex, data: this.opts.machine.snapshot() } });
      }
      this.watchers.add(w);
      const drop = () => this.watchers.delete(w);
      call.on('cancelled', drop);
      call.on('close', drop);
      call.on('error', drop);
    };
  }
}

/** Errors crossing the inner gRPC keep their meaning: callers map status codes back. */
function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof NotLeaderError) return new RpcError(grpc.status.UNAVAILABLE, err.message);
  if (err instanceof MetaTimeoutError) return new RpcError(grpc.status.DEADLINE_EXCEEDED, err.message);
  if (err instanceof ProposalDroppedError) return new RpcError(grpc.status.ABORTED, err.message);
  if (err instanceof MembershipError) {
    const code = err.code === 'not_found' ? grpc.status.NOT_FOUND : err.code === 'already_exists' ? grpc.status.ALREADY_EXISTS : err.code === 'invalid' ? grpc.status.INVALID_ARGUMENT : grpc.status.FAILED_PRECONDITION;
    return new RpcError(code, err.message);
  }
  if (err instanceof MetaStoppedError) return new RpcError(grpc.status.UNAVAILABLE, err.message);
  return new RpcError(grpc.status.INTERNAL, errorMessage(err));
}

/** The reverse of toRpcError, for a forwarded call's failure. */
export function fromRpcCallError(err: unknown): Error {
  if (err instanceof NotLeaderError || err instanceof MetaTimeoutError || err instanceof ProposalDroppedError || err instanceof MembershipError) return err;
  const status = (err as { status?: number }).status;
  const raw = err instanceof Error ? err.message : ((err as { message?: string }).message ?? String(err));
  const message = raw.replace(/^.*? failed: /, '');
  switch (status) {
    case grpc.status.UNAVAILABLE:
      return new NotLeaderError(0);
    case grpc.status.DEADLINE_EXCEEDED:
      return new MetaTimeoutError('forwarded metadata request', 0);
    case grpc.status.ABORTED:
      return new ProposalDroppedError(0);
    case grpc.status.NOT_FOUND:
      return new MembershipError(message, 'not_found');
    case grpc.status.ALREADY_EXISTS:
      return new MembershipError(message, 'already_exists');
    case grpc.status.INVALID_ARGUMENT:
      return new MembershipError(message, 'invalid');
    case grpc.status.FAILED_PRECONDITION:
      return new MembershipError(message, 'conf_change_pending');
    default:
      return err instanceof Error ? err : new Error(message);
  }
}
