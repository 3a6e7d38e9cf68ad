/**
 * Deterministic simulation of a Raft cluster (TigerBeetle / etcd style): N pure
 * Raft cores, a disk model per node, a network that delays, reorders, drops,
 * duplicates and partitions, crashes and restarts, clients doing put/get/cas on a
 * key-value state machine, compaction, membership changes and leader transfers —
 * all chosen by one seeded PRNG, so a seed replays exactly.
 *
 * The IO loop of a node does what the Ready rules of core/types.ts say, atomically
 * (a crash happens between events, never inside one): persist snapshot, entries,
 * hard state to the disk model (modelled as fsynced at once: a crash keeps all of
 * it and nothing else); send the messages; restore the snapshot / apply the
 * committed entries; advance.
 *
 * After every event the safety properties are checked (invariants.ts); after the
 * run the faults stop, the network heals, every node restarts, and the cluster must
 * converge within a bounded number of steps; then the client history must be
 * linearizable.
 */
import {
  NONE,
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftCoreApi,
  type RaftStatus,
  type Ready,
  type RestoredState,
  type Role,
  type Snapshot,
} from '../../../../src/meta/raft/core/types.js';
import { InvariantViolation, SafetyChecker, describeEntry, entryDigest, violation, type AppliedRecord } from './invariants.js';
import { checkHistory, formatOp, type HistoryOp, type KvInput, type KvOutput } from './linearizability.js';
import { Prng } from './prng.js';

export type CoreFactory = (config: RaftConfig, restored: RestoredState) => RaftCoreApi;

export interface Scenario {
  name: string;
  voters: number;
  preVote: boolean;
  checkQuorum: boolean;
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  /** Add learners, promote them, remove voters. */
  membership: boolean;
  /** Per delivery: probability the message is lost instead. */
  dropRate: number;
  /** Per delivery: probability a copy stays in flight (delivered again later). */
  dupRate: number;
  /** Event weights (relative to tick = 10, deliver = 30). */
  crashWeight: number;
  partitionWeight: number;
  compactWeight: number;
  transferWeight: number;
  clientWeight: number;
  membershipWeight: number;
  /** Probability a node's Ready is processed right after the event that caused it (else later, batched). */
  eagerReady: number;
  /** Probability a delivery takes one of the oldest messages in flight (else any: reordering). */
  fifoBias: number;
  /** Nodes' clocks run at different speeds: tick rates vary by up to this factor. */
  clockSkew: number;
  keys: number;
  clients: number;
  /** Steps a client waits for an answer before giving up on an op. */
  clientTimeout: number;
}

export const DEFAULT_SCENARIO: Scenario = {
  name: 'default',
  voters: 3,
  preVote: true,
  checkQuorum: true,
  electionTick: 10,
  heartbeatTick: 2,
  maxSizePerMsg: 1024 * 16,
  maxInflightMsgs: 16,
  membership: false,
  dropRate: 0.02,
  dupRate: 0.01,
  crashWeight: 0.15,
  partitionWeight: 0.15,
  compactWeight: 0.4,
  transferWeight: 0.1,
  clientWeight: 8,
  membershipWeight: 0,
  eagerReady: 0.7,
  fifoBias: 0.5,
  clockSkew: 1,
  keys: 3,
  clients: 4,
  clientTimeout: 400,
};

/** The scenario for a seed: a mix of cluster sizes and fault profiles. */
export function scenarioFor(seed: number): Scenario {
  const rng = new Prng((seed ^ 0x5ce7a210) >>> 0);
  const kinds = ['calm3', 'calm5', 'membership', 'lossy', 'crashy', 'partitions', 'membership-chaos', 'small-batches', 'stale-leader', 'figure8'] as const;
  const kind = kinds[seed % kinds.length]!;
  const s: Scenario = { ...DEFAULT_SCENARIO, name: kind };
  s.voters = rng.chance(0.5) ? 3 : 5;
  s.preVote = !rng.chance(0.2);
  s.checkQuorum = !rng.chance(0.2);
  s.electionTick = 8 + rng.int(5);
  s.heartbeatTick = 1 + rng.int(3);
  s.eagerReady = 0.5 + rng.float() * 0.5;
  s.fifoBias = rng.float() * 0.9;
  s.clockSkew = rng.chance(0.5) ? 1 : 1 + rng.float() * 2;
  s.keys = 2 + rng.int(3);
  s.clients = 3 + rng.int(8);
  switch (kind) {
    case 'calm3':
      s.voters = 3;
      s.dropRate = 0.005;
      s.crashWeight = 0.03;
      s.partitionWeight = 0.03;
      break;
    case 'calm5':
      s.voters = 5;
      s.dropRate = 0.005;
      s.crashWeight = 0.03;
      s.partitionWeight = 0.03;
      break;
    case 'membership':
      s.membership = true;
      s.membershipWeight = 0.6;
      break;
    case 'lossy':
      s.dropRate = 0.2 + rng.float() * 0.2;
      s.dupRate = 0.05;
      break;
    case 'crashy':
      s.crashWeight = 1.5;
      s.compactWeight = 1;
      break;
    case 'partitions':
      s.partitionWeight = 1;
      s.dropRate = 0.05;
      break;
    case 'membership-chaos':
      s.membership = true;
      s.membershipWeight = 0.8;
      s.crashWeight = 0.6;
      s.partitionWeight = 0.4;
      s.dropRate = 0.08;
      s.transferWeight = 0.3;
      break;
    case 'stale-leader':
      // Partitions that cut off the leader, many clients: old leaders must not serve stale reads.
      s.checkQuorum = rng.chance(0.5);
      s.partitionWeight = 1.2;
      s.clientWeight = 12;
      s.clients = 4 + rng.int(4);
      break;
    case 'figure8':
      // One entry per message, crashes and losses: leaders change with logs half replicated.
      s.voters = 5;
      s.maxSizePerMsg = 100;
      s.maxInflightMsgs = 1 + rng.int(4);
      s.crashWeight = 1.2;
      s.dropRate = 0.1;
      s.partitionWeight = 0.5;
      s.clientWeight = 12;
      s.clients = 6;
      break;
    case 'small-batches':
      s.maxSizePerMsg = 200 + rng.int(300);
      s.maxInflightMsgs = 1 + rng.int(3);
      s.dropRate = 0.05;
      s.compactWeight = 1;
      break;
  }
  return s;
}

// ------------------------------------------------------------------ model types

interface Disk {
  hardState: HardState;
  snapshot: Snapshot | undefined;
  /** Contiguous, starting right after the snapshot (or at 1). */
  entries: Entry[];
}

interface PendingWrite {
  op: ClientOp;
}

interface PendingRead {
  op: ClientOp;
  /** Set once the ReadState arrived. */
  index?: number;
}

interface SimNode {
  id: NodeId;
  state: 'up' | 'down' | 'removed';
  core: RaftCoreApi | undefined;
  disk: Disk;
  initialConf: ConfState;
  kv: Map<string, string>;
  applied: number;
  life: number;
  /** Commit index seen in this life (never decreases within it). */
  lastCommit: number;
  /** Highest commit already recorded into the global committed map. */
  recordedCommit: number;
  /** Touched since its Ready was last drained. */
  dirty: boolean;
  role: Role;
  term: number;
  /** Relative clock speed. */
  tickRate: number;
  writes: Map<number, PendingWrite>;
  reads: Map<string, PendingRead>;
}

interface ClientOp {
  id: number;
  client: number;
  input: KvInput;
  invoke: number;
  response?: number;
  output?: KvOutput;
  status: 'pending' | 'done' | 'floating' | 'failed' | 'dropped';
  node: NodeId;
  index?: number;
  term?: number;
  readIndex?: number;
  issuedStep: number;
  responseStep?: number;
}

interface Flight {
  msg: Message;
}

interface Command {
  op: 'put' | 'cas';
  key: string;
  value: string;
  expected?: string | null;
  clientOpId: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SimFailure extends Error {
  override name = 'SimFailure';
  constructor(
    readonly seed: number,
    readonly step: number,
    readonly invariant: string,
    readonly detail: string,
    /** The events leading to the failure (or around the op that broke linearizability). */
    readonly trace: string[],
    readonly scenario: Scenario,
  ) {
    super(`seed ${seed}, step ${step}: ${invariant}: ${detail}`);
  }
}

export interface SimResult {
  seed: number;
  scenario: Scenario;
  steps: number;
  convergeSteps: number;
  commits: number;
  terms: number;
  ops: { total: number; completed: number; floating: number; indeterminate: number; failed: number; reads: number };
  crashes: number;
  snapshotsSent: number;
  compactions: number;
  confChanges: number;
  messagesDelivered: number;
}

export interface SimOptions {
  seed: number;
  steps: number;
  scenario?: Scenario;
  /** Max steps for the cluster to converge once faults stop. Default 20000. */
  convergeSteps?: number;
  /** Print every event as it happens. */
  log?: (line: string) => void;
}

const TRACE_SHOWN = 30;

export class SimCluster {
  readonly rng: Prng;
  readonly scenario: Scenario;
  readonly checker = new SafetyChecker();
  private readonly nodes = new Map<NodeId, SimNode>();
  private network: Flight[] = [];
  /** Directed links cut by the current partition: `${from}>${to}`. */
  private cuts = new Set<string>();
  private partitionHealAt = 0;
  private stepNo = 0;
  private clock = 0;
  private phase: 'chaos' | 'converge' = 'chaos';
  /** Every event of the run, with the step it happened at. */
  private readonly trace: { step: number; line: string }[] = [];
  /** Set when the history is found non-linearizable: the step to centre the trace on. */
  private focusStep: number | undefined;
  private readonly ops: ClientOp[] = [];
  private readonly clientBusy: boolean[];
  private nextNodeId: number;
  private nextOpId = 1;
  private readonly founders: NodeId[];
  private readonly stats = { crashes: 0, snapshotsSent: 0, compactions: 0, confChanges: 0, delivered: 0, terms: 0 };

  constructor(
    private readonly factory: CoreFactory,
    private readonly opts: SimOptions,
  ) {
    this.rng = new Prng(opts.seed);
    this.scenario = opts.scenario ?? scenarioFor(opts.seed);
    this.clientBusy = new Array<boolean>(this.scenario.clients).fill(false);
    this.founders = [];
    for (let i = 1; i <= this.scenario.voters; i++) this.founders.push(i);
    this.nextNodeId = this.scenario.voters + 1;
  }

  // ------------------------------------------------------------------ running

  run(): SimResult {
    try {
      this.log(`scenario ${JSON.stringify(this.scenario)}`);
      for (const id of this.founders) this.addNode(id, { voters: [...this.founders], learners: [] });
      for (this.stepNo = 1; this.stepNo <= this.opts.steps; this.stepNo++) this.chaosStep();
      const convergeSteps = this.converge();
      this.finalChecks();
      const history = this.history();
      const lin = checkHistory(history);
      if (!lin.ok) {
        const details = lin.ops.map((h) => this.describeClientOp(h.id));
        const blocked = /nothing fits before this op returns: #(\d+)/.exec(lin.explanation);
        const focus = blocked ? this.ops.find((o) => o.id === Number(blocked[1])) : undefined;
        if (focus) {
          this.focusStep = focus.responseStep ?? focus.issuedStep;
          this.stepNo = this.focusStep;
        }
        violation('linearizability', `${lin.explanation}\n  where the ops ran:\n${details.map((d) => `    ${d}`).join('\n')}`);
      }
      if (lin.inconclusive.length > 0) {
        violation('linearizability', `the checker gave up on keys ${lin.inconclusive.join(', ')} (search too large); history of ${history.length} ops`);
      }
      return this.result(convergeSteps);
    } catch (err) {
      throw this.wrap(err);
    }
  }

  private describeClientOp(id: number): string {
    const op = this.ops.find((o) => o.id === id);
    if (!op) return `#${id}: ?`;
    const where = op.index !== undefined ? ` proposed at (${op.index},t${op.term})` : op.readIndex !== undefined ? ` read index ${op.readIndex}` : '';
    const answered = op.responseStep !== undefined ? `answered at step ${op.responseStep}` : `no answer (${op.status})`;
    return `#${id} c${op.client} on n${op.node}${where}: invoked at step ${op.issuedStep}, ${answered}`;
  }

  private wrap(err: unknown): SimFailure {
    if (err instanceof SimFailure) return err;
    const tail = this.traceExcerpt();
    if (err instanceof InvariantViolation) return new SimFailure(this.opts.seed, this.stepNo, err.invariant, err.detail, tail, this.scenario);
    const e = err instanceof Error ? err : new Error(String(err));
    return new SimFailure(this.opts.seed, this.stepNo, 'core threw', `${e.name}: ${e.message}\n${e.stack ?? ''}`, tail, this.scenario);
  }

  private result(convergeSteps: number): SimResult {
    const h = this.ops;
    const commits = this.checker.applied.size;
    return {
      seed: this.opts.seed,
      scenario: this.scenario,
      steps: this.opts.steps,
      convergeSteps,
      commits,
      terms: this.checker.leaders.size,
      ops: {
        total: h.length,
        completed: h.filter((o) => o.status === 'done').length,
        floating: h.filter((o) => o.status === 'floating' && o.output !== undefined).length,
        indeterminate: h.filter((o) => o.status === 'floating' && o.output === undefined).length,
        failed: h.filter((o) => o.status === 'failed').length,
        reads: h.filter((o) => o.input.kind === 'get' && o.status === 'done').length,
      },
      crashes: this.stats.crashes,
      snapshotsSent: this.stats.snapshotsSent,
      compactions: this.stats.compactions,
      confChanges: this.stats.confChanges,
      messagesDelivered: this.stats.delivered,
    };
  }

  private log(line: string): void {
    const l = `${this.phase === 'chaos' ? '' : 'c'}${this.stepNo} ${line}`;
    this.trace.push({ step: this.stepNo, line: l });
    this.opts.log?.(l);
  }

  /** The last events, or those around the focus step. */
  private traceExcerpt(): string[] {
    if (this.focusStep === undefined) return this.trace.slice(-TRACE_SHOWN).map((t) => t.line);
    let at = this.trace.findIndex((t) => t.step >= this.focusStep!);
    if (at < 0) at = this.trace.length;
    return this.trace.slice(Math.max(0, at - TRACE_SHOWN + 8), at + 8).map((t) => t.line);
  }

  private upNodes(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.state === 'up') out.push(n);
    return out;
  }

  private chaosStep(): void {
    const s = this.scenario;
    if (this.cuts.size > 0 && this.stepNo >= this.partitionHealAt) this.heal();
    const up = this.upNodes();
    const down = [...this.nodes.values()].filter((n) => n.state === 'down');
    const dirty = up.filter((n) => n.dirty);
    const idleClients = this.clientBusy.filter((b) => !b).length;
    const weights = [
      up.length > 0 ? 10 : 0, // 0 tick
      this.network.length > 0 ? 30 : 0, // 1 deliver
      dirty.length > 0 ? 12 : 0, // 2 ready
      idleClients > 0 && up.length > 0 ? s.clientWeight : 0, // 3 client op
      s.compactWeight, // 4 compact
      up.length > 1 ? s.crashWeight : 0, // 5 crash
      down.length > 0 ? s.crashWeight * 2 + 0.2 : 0, // 6 restart
      this.cuts.size === 0 ? s.partitionWeight : 0, // 7 partition
      s.transferWeight, // 8 transfer leader
      s.membership ? s.membershipWeight : 0, // 9 membership change
      this.network.length > 0 ? 0.5 : 0, // 10 idle delivery pause: drop a random message
    ];
    switch (this.rng.weighted(weights)) {
      case 0:
        this.tick(this.pickTicker(up));
        break;
      case 1:
        this.deliver();
        break;
      case 2:
        this.drain(this.rng.pick(dirty));
        break;
      case 3:
        this.clientOp();
        break;
      case 4:
        this.compact();
        break;
      case 5:
        this.crash(this.rng.pick(up));
        break;
      case 6:
        this.restart(this.rng.pick(down));
        break;
      case 7:
        this.partition();
        break;
      case 8:
        this.transfer();
        break;
      case 9:
        this.membershipChange();
        break;
      case 10: {
        const i = this.rng.int(this.network.length);
        const f = this.takeFlight(i);
        this.log(`lose ${describeMessage(f.msg)}`);
        break;
      }
    }
    this.expireClientOps();
    this.checkAll();
  }

  /** Stop faults, heal, restart everyone; run until a leader exists and every member has applied its whole log. */
  private converge(): number {
    this.phase = 'converge';
    this.heal();
    for (const n of [...this.nodes.values()]) if (n.state === 'down') this.restart(n);
    const limit = this.opts.convergeSteps ?? 20000;
    for (let i = 1; i <= limit; i++) {
      this.stepNo++;
      const up = this.upNodes();
      const dirty = up.filter((n) => n.dirty);
      const choice = this.rng.weighted([10, this.network.length > 0 ? 40 : 0, dirty.length > 0 ? 20 : 0]);
      if (choice === 0) this.tick(this.pickTicker(up));
      else if (choice === 1) this.deliver();
      else this.drain(this.rng.pick(dirty));
      this.checkAll();
      if (i % 25 === 0 && this.converged()) {
        this.log(`converged after ${i} steps`);
        return i;
      }
    }
    const lines = this.upNodes().map((n) => {
      const st = n.core!.status();
      const progress = [...st.progress].map(([id, p]) => `n${id}:${p.state} match=${p.match} next=${p.next}${p.recentActive ? '' : ' inactive'}`).join(', ');
      return (
        `n${n.id} ${st.role} t${st.term} lead=${st.leaderId} commit=${st.commit} applied=${n.applied} first=${st.firstIndex} last=${st.lastIndex} conf=${JSON.stringify(st.conf)}` +
        (st.leadTransferee ? ` transferee=${st.leadTransferee}` : '') +
        (progress ? ` progress: ${progress}` : '')
      );
    });
    violation('liveness', `the cluster did not converge within ${limit} steps after faults stopped:\n  ${lines.join('\n  ')}`);
  }

  private converged(): boolean {
    let leader: SimNode | undefined;
    let maxTerm = 0;
    for (const n of this.upNodes()) {
      const st = n.core!.status();
      if (st.term > maxTerm) maxTerm = st.term;
      if (st.role === 'leader') leader = leader && leader.term > st.term ? leader : n;
    }
    if (!leader) return false;
    const ls = leader.core!.status();
    if (ls.term !== maxTerm || ls.commit !== ls.lastIndex || leader.applied !== ls.lastIndex) return false;
    if (ls.leadTransferee !== NONE) return false;
    for (const id of [...ls.conf.voters, ...ls.conf.learners]) {
      const n = this.nodes.get(id);
      if (!n || n.state !== 'up') continue; // removed (stopped) nodes do not count
      if (n.dirty || n.applied !== ls.lastIndex) return false;
      const st = n.core!.status();
      if (st.leaderId !== leader.id || st.term !== ls.term) return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ nodes

  private addNode(id: NodeId, initialConf: ConfState): SimNode {
    const node: SimNode = {
      id,
      state: 'down',
      core: undefined,
      disk: { hardState: { term: 0, vote: NONE, commit: 0 }, snapshot: undefined, entries: [] },
      initialConf,
      kv: new Map(),
      applied: 0,
      life: 0,
      lastCommit: 0,
      recordedCommit: 0,
      dirty: false,
      role: 'follower',
      term: 0,
      tickRate: 1 + this.rng.float() * (this.scenario.clockSkew - 1),
      writes: new Map(),
      reads: new Map(),
    };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  private config(id: NodeId): RaftConfig {
    const s = this.scenario;
    return {
      id,
      electionTick: s.electionTick,
      heartbeatTick: s.heartbeatTick,
      preVote: s.preVote,
      checkQuorum: s.checkQuorum,
      maxSizePerMsg: s.maxSizePerMsg,
      maxInflightMsgs: s.maxInflightMsgs,
      random: (n: number) => this.rng.int(n),
    };
  }

  /** Boot a node from its disk. */
  private start(node: SimNode): void {
    const d = node.disk;
    const restored: RestoredState = {
      hardState: { ...d.hardState },
      entries: d.entries.map((e) => ({ ...e })),
      initialConf: { voters: [...node.initialConf.voters], learners: [...node.initialConf.learners] },
    };
    if (d.snapshot) restored.snapshot = cloneSnapshot(d.snapshot);
    node.core = this.factory(this.config(node.id), restored);
    node.state = 'up';
    node.life++;
    node.kv = new Map();
    node.applied = 0;
    if (d.snapshot) this.restoreKv(node, d.snapshot, 'restart');
    const st = node.core.status();
    node.lastCommit = st.commit;
    node.role = st.role;
    node.term = st.term;
    const blank = d.hardState.term === 0 && !d.snapshot && d.entries.length === 0;
    if (!blank && (st.term !== d.hardState.term || st.vote !== d.hardState.vote)) {
      violation('restart', `n${node.id} restarted with term ${st.term} vote ${st.vote} but its disk holds term ${d.hardState.term} vote ${d.hardState.vote}`);
    }
    if (st.commit < d.hardState.commit && !(d.hardState.commit === 0)) {
      // The core may not forget a durable commit.
      violation('restart', `n${node.id} restarted with commit ${st.commit} < persisted commit ${d.hardState.commit}`);
    }
    if (st.applied !== node.applied) {
      violation('restart', `n${node.id} restarted with applied ${st.applied} but its state machine (from the disk snapshot) is at ${node.applied}`);
    }
    node.dirty = true;
  }

  private restoreKv(node: SimNode, snap: Snapshot, how: string): void {
    const parsed = JSON.parse(decoder.decode(snap.data)) as { applied: number; kv: [string, string][] };
    if (parsed.applied !== snap.meta.index) {
      violation('snapshot contents', `snapshot meta index ${snap.meta.index} but its data was taken at applied ${parsed.applied} (n${node.id}, ${how})`);
    }
    node.kv = new Map(parsed.kv);
    node.applied = snap.meta.index;
    this.checker.snapshotState(snap.meta.index, kvState(node.kv), `installed on n${node.id} (${how})`);
    // Proposals this node was waiting on and that the snapshot covers: the client never hears back.
    for (const [index, w] of node.writes) {
      if (index <= snap.meta.index) {
        node.writes.delete(index);
        this.floatOp(w.op, `n${node.id} installed a snapshot past it`);
      }
    }
  }

  private tick(node: SimNode): void {
    this.log(`tick n${node.id}`);
    node.core!.tick();
    this.touched(node);
  }

  private touched(node: SimNode): void {
    node.dirty = true;
    if (this.rng.chance(this.scenario.eagerReady)) this.drain(node);
  }

  private crash(node: SimNode): void {
    this.log(`crash n${node.id}`);
    this.stats.crashes++;
    this.stopNode(node, 'down', 'crashed');
  }

  private stopNode(node: SimNode, state: 'down' | 'removed', why: string): void {
    node.state = state;
    node.core = undefined;
    node.dirty = false;
    node.role = 'follower';
    for (const w of node.writes.values()) this.floatOp(w.op, `n${node.id} ${why}`);
    node.writes.clear();
    for (const r of node.reads.values()) this.dropOp(r.op);
    node.reads.clear();
  }

  private restart(node: SimNode): void {
    this.log(`restart n${node.id} (disk: t${node.disk.hardState.term} v${node.disk.hardState.vote} c${node.disk.hardState.commit} snap=${node.disk.snapshot?.meta.index ?? 0} last=${diskLast(node.disk)})`);
    this.start(node);
    this.touched(node);
  }

  // ------------------------------------------------------------------ network

  private takeFlight(i: number): Flight {
    // Keeps the send order (the oldest first) for FIFO-biased delivery.
    return this.network.splice(i, 1)[0]!;
  }

  private pickTicker(up: SimNode[]): SimNode {
    return up[this.rng.weighted(up.map((n) => n.tickRate))]!;
  }

  private deliver(): void {
    // Mostly one of the oldest messages (the network's queue order), else any (reordering, long delays).
    const fifo = this.rng.chance(this.scenario.fifoBias);
    const i = fifo ? this.rng.int(Math.min(3, this.network.length)) : this.rng.int(this.network.length);
    const chaos = this.phase === 'chaos';
    if (chaos && this.rng.chance(this.scenario.dupRate)) {
      const f = this.network[i]!;
      this.network.push({ msg: cloneMessage(f.msg) });
    }
    const f = this.takeFlight(i);
    const m = f.msg;
    const to = this.nodes.get(m.to);
    if (chaos && this.rng.chance(this.scenario.dropRate)) {
      this.log(`drop ${describeMessage(m)}`);
      return;
    }
    if (this.cuts.has(`${m.from}>${m.to}`)) {
      this.log(`cut ${describeMessage(m)}`);
      return;
    }
    if (!to || to.state !== 'up') {
      this.log(`undeliverable ${describeMessage(m)}`);
      return;
    }
    this.log(`deliver ${describeMessage(m)}`);
    this.stats.delivered++;
    to.core!.step(m);
    this.touched(to);
  }

  private partition(): void {
    const ids = [...this.nodes.values()].filter((n) => n.state !== 'removed').map((n) => n.id);
    const kind = this.rng.int(4);
    this.cuts.clear();
    let desc: string;
    if (kind === 3) {
      // Asymmetric: some directed links fail.
      const cut: string[] = [];
      for (const a of ids)
        for (const b of ids) {
          if (a !== b && this.rng.chance(0.25)) {
            this.cuts.add(`${a}>${b}`);
            cut.push(`${a}>${b}`);
          }
        }
      desc = `asymmetric ${cut.join(' ')}`;
    } else {
      // kind 0: isolate one node (often the leader); 1, 2: a random split.
      const shuffled = this.rng.shuffle([...ids]);
      const leader = this.leaderNode();
      if (kind === 0 && leader && this.rng.chance(0.6)) {
        shuffled.splice(shuffled.indexOf(leader.id), 1);
        shuffled.unshift(leader.id);
      }
      const size = kind === 0 ? 1 : 1 + this.rng.int(Math.max(1, ids.length - 1));
      const a = new Set(shuffled.slice(0, size));
      for (const x of ids)
        for (const y of ids) if (x !== y && a.has(x) !== a.has(y)) this.cuts.add(`${x}>${y}`);
      desc = `{${[...a].sort().join(',')}} | {${ids.filter((x) => !a.has(x)).sort().join(',')}}`;
    }
    this.partitionHealAt = this.stepNo + 100 + this.rng.int(1500);
    this.log(`partition ${desc} until step ${this.partitionHealAt}`);
  }

  private heal(): void {
    if (this.cuts.size === 0) return;
    this.cuts.clear();
    this.log('heal the network');
  }

  // ------------------------------------------------------------------ Ready

  /** Drain a node's Ready queue. */
  private drain(node: SimNode): void {
    let rounds = 0;
    while (node.state === 'up' && node.core!.hasReady()) {
      if (++rounds > 100) violation('ready loop', `n${node.id} still has a Ready after 100 rounds`);
      this.handleReady(node, node.core!.ready());
    }
    if (node.state === 'up') {
      node.dirty = false;
      this.checkDurable(node);
    }
  }

  private handleReady(node: SimNode, rd: Ready): void {
    const core = node.core!;
    const d = node.disk;
    const where = `n${node.id}`;
    const st0 = core.status();
    this.log(
      `ready n${node.id}` +
        (rd.softState ? ` soft=${rd.softState.role}/${rd.softState.leaderId}` : '') +
        (rd.hardState ? ` hard=t${rd.hardState.term}/v${rd.hardState.vote}/c${rd.hardState.commit}` : '') +
        (rd.snapshot ? ` snap=(${rd.snapshot.meta.index},t${rd.snapshot.meta.term})` : '') +
        (rd.entries.length ? ` ents=${rd.entries[0]!.index}..${rd.entries.at(-1)!.index}` : '') +
        (rd.committedEntries.length ? ` apply=${rd.committedEntries[0]!.index}..${rd.committedEntries.at(-1)!.index}` : '') +
        (rd.messages.length ? ` msgs=${rd.messages.length}` : '') +
        (rd.readStates.length ? ` reads=${rd.readStates.map((r) => `${r.context}@${r.index}`).join(',')}` : ''),
    );

    // Contract: mustSync whenever something durable changed.
    const hsDurable = rd.hardState !== undefined && (rd.hardState.term !== d.hardState.term || rd.hardState.vote !== d.hardState.vote);
    if ((rd.entries.length > 0 || rd.snapshot !== undefined || hsDurable) && !rd.mustSync) {
      violation('ready contract', `${where}: Ready with entries/snapshot/term/vote but mustSync=false`);
    }

    // 1. Persist: snapshot, entries, hard state.
    if (rd.snapshot) this.persistSnapshot(node, rd.snapshot, 'from leader');
    if (rd.entries.length > 0) this.persistEntries(node, rd.entries);
    if (rd.hardState) this.persistHardState(node, rd.hardState);
    this.recordCommitted(node);

    // Leadership as the core reports it.
    if (rd.softState) {
      const wasLeader = node.role === 'leader';
      node.role = rd.softState.role;
      if (rd.softState.role === 'leader') {
        if (rd.softState.leaderId !== node.id) violation('soft state', `${where} is leader but names n${rd.softState.leaderId} as leader`);
        this.checker.leader(st0.term, node.id, 'soft state');
        if (!wasLeader) {
          this.stats.terms++;
          this.checkLeaderCompleteness(node, st0.term);
        }
      }
    }
    node.term = st0.term;

    // 2. Send.
    for (const m of rd.messages) this.send(node, m);

    // 3. Restore / apply.
    if (rd.snapshot) this.restoreKv(node, rd.snapshot, 'from leader');
    for (const e of rd.committedEntries) this.apply(node, e);
    for (const rs of rd.readStates) {
      const r = node.reads.get(rs.context);
      if (r && r.index === undefined) r.index = rs.index;
    }

    // 4. Advance.
    core.advance(rd);

    this.serveReads(node);
    const st = core.status();
    if (st.commit < node.lastCommit) violation('commit monotonic', `${where} commit went from ${node.lastCommit} to ${st.commit} within one life`);
    node.lastCommit = st.commit;
    if (st.applied !== node.applied) violation('applied index', `${where}: core says applied ${st.applied}, its state machine applied ${node.applied}`);
    if (st.applied > st.commit) violation('applied index', `${where}: applied ${st.applied} > commit ${st.commit}`);
    if (st.role === 'leader') {
      this.checker.leader(st.term, node.id, 'status');
      if (node.role !== 'leader') {
        // Became leader without a SoftState saying so (it will come in the next Ready); check now anyway.
        this.checkLeaderCompleteness(node, st.term);
      }
    }
  }

  private persistSnapshot(node: SimNode, snap: Snapshot, how: string): void {
    const d = node.disk;
    const where = `n${node.id}`;
    if (snap.meta.index <= (d.snapshot?.meta.index ?? 0)) {
      violation('snapshot', `${where} asked to persist snapshot ${snap.meta.index} (${how}) older than its disk snapshot ${d.snapshot?.meta.index}`);
    }
    // Keep the log after the snapshot only if it holds the snapshot's last entry (like the real store).
    const t = diskTerm(d, snap.meta.index);
    if (t === snap.meta.term) d.entries = d.entries.filter((e) => e.index > snap.meta.index);
    else {
      if (how === 'from leader' && snap.meta.index < d.hardState.commit) {
        violation('snapshot', `${where} installs snapshot (${snap.meta.index},t${snap.meta.term}) below its persisted commit ${d.hardState.commit}`);
      }
      d.entries = [];
    }
    d.snapshot = cloneSnapshot(snap);
    if (d.hardState.commit < snap.meta.index) d.hardState = { ...d.hardState, commit: snap.meta.index };
    // The snapshot's last entry must be the committed one.
    const c = this.checker.committed.get(snap.meta.index);
    if (c && c.term !== snap.meta.term) violation('snapshot', `${where} snapshot (${snap.meta.index},t${snap.meta.term}) but index ${snap.meta.index} was committed with term ${c.term}`);
  }

  private persistEntries(node: SimNode, entries: Entry[]): void {
    const d = node.disk;
    const where = `n${node.id}`;
    const first = entries[0]!.index;
    const snapIndex = d.snapshot?.meta.index ?? 0;
    const last = diskLast(d);
    if (first <= snapIndex) violation('ready contract', `${where}: Ready entries start at ${first}, inside the disk snapshot (up to ${snapIndex})`);
    if (first > last + 1) violation('ready contract', `${where}: Ready entries start at ${first} but the disk log ends at ${last} (a gap)`);
    for (let k = 1; k < entries.length; k++) {
      if (entries[k]!.index !== first + k) violation('ready contract', `${where}: Ready entries not contiguous at ${entries[k]!.index}`);
    }
    // Truncating a suffix must never drop a committed entry.
    for (const old of d.entries) {
      if (old.index < first) continue;
      const neu = entries[old.index - first];
      if (neu && neu.term === old.term) {
        if (entryDigest(neu) !== entryDigest(old)) violation('log matching', `${where} rewrites ${describeEntry(old)} as ${describeEntry(neu)}`);
        continue;
      }
      if (old.index <= d.hardState.commit) {
        violation('committed entry truncated', `${where} overwrites ${describeEntry(old)} at or below its persisted commit ${d.hardState.commit}`);
      }
      const c = this.checker.committed.get(old.index);
      if (c && c.term === old.term) {
        violation('committed entry truncated', `${where} overwrites ${describeEntry(old)}, which ${c.where} committed, with ${neu ? describeEntry(neu) : 'nothing'}`);
      }
    }
    d.entries.length = first - snapIndex - 1;
    for (const e of entries) {
      const copy: Entry = { index: e.index, term: e.term, type: e.type, data: e.data.slice() };
      const prevTerm = diskTerm(d, e.index - 1);
      if (prevTerm === undefined) violation('ready contract', `${where}: no entry before ${e.index} on disk`);
      if (e.term < prevTerm) violation('log matching', `${where}: entry ${describeEntry(e)} after an entry of higher term ${prevTerm}`);
      this.checker.entry(copy, prevTerm, `${where} disk`);
      d.entries.push(copy);
    }
  }

  private persistHardState(node: SimNode, hs: HardState): void {
    const d = node.disk;
    const where = `n${node.id}`;
    const old = d.hardState;
    if (hs.term < old.term) violation('term monotonic', `${where} persists term ${hs.term} after term ${old.term}`);
    if (hs.term === old.term && old.vote !== NONE && hs.vote !== old.vote) {
      violation('vote safety', `${where} voted for n${old.vote} in term ${old.term} and now persists a vote for n${hs.vote}`);
    }
    if (hs.commit < old.commit) violation('commit monotonic', `${where} persists commit ${hs.commit} after ${old.commit}`);
    if (hs.commit > diskLast(d)) violation('commit beyond log', `${where} persists commit ${hs.commit} but its disk log ends at ${diskLast(d)}`);
    d.hardState = { ...hs };
  }

  /** Entries up to the persisted commit are committed: record them (State Machine Safety, Leader Completeness). */
  private recordCommitted(node: SimNode): void {
    const d = node.disk;
    const commit = d.hardState.commit;
    if (commit <= node.recordedCommit) return;
    const snapIndex = d.snapshot?.meta.index ?? 0;
    const from = Math.max(node.recordedCommit + 1, snapIndex + 1);
    for (let i = from; i <= commit; i++) {
      const e = diskEntry(d, i);
      if (!e) violation('commit beyond log', `n${node.id} committed ${commit} but has no entry ${i} on disk`);
      const fresh = !this.checker.committed.has(i);
      this.checker.committedEntry(i, e.term, entryDigest(e), `n${node.id} (term ${d.hardState.term})`);
      if (fresh) this.checkNewCommitAgainstLeaders(i, d.hardState.term);
    }
    node.recordedCommit = commit;
  }

  /**
   * Leader Completeness: an entry known committed by a node in term T was committed
   * by a leader of term <= T, so every leader of a term > T must hold it.
   */
  private readonly commitTerm = new Map<number, number>();

  private checkNewCommitAgainstLeaders(index: number, term: number): void {
    const prev = this.commitTerm.get(index);
    if (prev === undefined || term < prev) this.commitTerm.set(index, term);
    for (const n of this.nodes.values()) {
      if (n.state !== 'up' || n.role !== 'leader' || n.term <= term) continue;
      this.checkHolds(n, index);
    }
  }

  private checkLeaderCompleteness(node: SimNode, term: number): void {
    for (const [index, t] of this.commitTerm) if (t < term) this.checkHolds(node, index);
  }

  private checkHolds(node: SimNode, index: number): void {
    const d = node.disk;
    if (index <= (d.snapshot?.meta.index ?? 0)) return;
    const c = this.checker.committed.get(index)!;
    const e = diskEntry(d, index);
    if (!e || e.term !== c.term || entryDigest(e) !== c.digest) {
      violation(
        'leader completeness',
        `n${node.id}, leader of term ${node.term}, lacks committed entry ${index} (t${c.term}, ${c.digest}, committed by ${c.where} in term ${this.commitTerm.get(index)}); it holds ${e ? describeEntry(e) : 'nothing'} there`,
      );
    }
  }

  private send(node: SimNode, m: Message): void {
    if (m.from !== node.id) violation('message', `n${node.id} sends a message from n${m.from}`);
    if (m.to === node.id) violation('message', `n${node.id} sends a message to itself`);
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' || m.type === 'timeoutNow') {
      this.checker.leader(m.term, node.id, `${m.type} message`);
    }
    if (m.type === 'append') this.checker.appendMessage(m.index, m.logTerm, m.entries, `append n${m.from}->n${m.to} t${m.term}`);
    if (m.type === 'snapshot') {
      if (!m.snapshot) violation('message', `snapshot message without a snapshot from n${node.id}`);
      this.stats.snapshotsSent++;
      const parsed = JSON.parse(decoder.decode(m.snapshot.data)) as { applied: number; kv: [string, string][] };
      this.checker.snapshotState(m.snapshot.meta.index, kvState(new Map(parsed.kv)), `sent by n${node.id}`);
      const c = this.checker.committed.get(m.snapshot.meta.index);
      if (c && c.term !== m.snapshot.meta.term) violation('snapshot', `n${node.id} sends snapshot (${m.snapshot.meta.index},t${m.snapshot.meta.term}) but that index was committed with term ${c.term}`);
    }
    this.network.push({ msg: cloneMessage(m) });
  }

  private apply(node: SimNode, e: Entry): void {
    const where = `n${node.id}`;
    if (e.index !== node.applied + 1) violation('apply order', `${where} applies ${e.index} after ${node.applied}`);
    let result: KvOutput | undefined;
    let clientOpId: number | undefined;
    if (e.type === 'normal' && e.data.byteLength > 0) {
      const cmd = JSON.parse(decoder.decode(e.data)) as Command;
      clientOpId = cmd.clientOpId;
      if (cmd.op === 'put') {
        node.kv.set(cmd.key, cmd.value);
        result = { kind: 'put' };
      } else {
        const cur = node.kv.get(cmd.key);
        const ok = cur === (cmd.expected ?? undefined);
        if (ok) node.kv.set(cmd.key, cmd.value);
        result = { kind: 'cas', ok };
      }
    } else if (e.type === 'conf') {
      const change = decodeConfChange(e.data);
      this.onConfApplied(node, e, change);
    }
    node.applied = e.index;
    const join = this.pendingJoins.get(e.index);
    if (join) {
      this.pendingJoins.delete(e.index);
      const orphan = this.nodes.get(join.nodeId);
      if (join.term !== e.term && orphan && orphan.state !== 'removed' && orphan !== node) {
        this.log(`n${join.nodeId} never joined (index ${e.index} holds another entry): stopped`);
        this.stopNode(orphan, 'removed', 'never joined');
      }
    }
    const rec: AppliedRecord = { term: e.term, digest: entryDigest(e), state: kvState(node.kv), where: `${where} life ${node.life}` };
    if (result) rec.result = result;
    if (clientOpId !== undefined) rec.clientOpId = clientOpId;
    this.checker.appliedEntry(e.index, rec);

    // The client waiting on this index (if this node took the proposal).
    const w = node.writes.get(e.index);
    if (w) {
      node.writes.delete(e.index);
      const op = w.op;
      if (e.term === op.term) {
        if (clientOpId !== op.id) violation('proposal identity', `${where}: proposal of op ${op.id} got (${e.index},t${e.term}) but that entry holds op ${clientOpId}`);
        op.response = ++this.clock;
        op.responseStep = this.stepNo;
        op.output = result;
        op.status = 'done';
        this.clientBusy[op.client] = false;
        this.log(`client c${op.client} <- ${formatOp(toHistoryOp(op))}`);
      } else {
        // Another entry was committed at that index: the proposal is gone for good.
        op.status = 'failed';
        this.checker.opFailed(op.id, `index ${e.index} applied with term ${e.term} instead of ${op.term}`);
        this.clientBusy[op.client] = false;
        this.log(`client c${op.client} <- op ${op.id} failed (overwritten at ${e.index})`);
      }
    }
  }

  private onConfApplied(node: SimNode, e: Entry, change: ConfChange): void {
    if (change.type !== 'removeNode') return;
    const target = this.nodes.get(change.nodeId);
    if (!target || target.state === 'removed') return;
    // Removed nodes stop being scheduled once the removal is applied (anywhere).
    this.log(`n${change.nodeId} removed (entry ${e.index} applied on n${node.id})`);
    if (target === node) {
      // Stop it after this Ready completes.
      this.pendingRemoval.add(target.id);
    } else {
      this.stopNode(target, 'removed', 'was removed');
    }
  }

  private readonly pendingRemoval = new Set<NodeId>();
  /** addLearner proposals by index: the node started at once; stopped again if another entry wins that index. */
  private readonly pendingJoins = new Map<number, { term: number; nodeId: NodeId }>();

  private serveReads(node: SimNode): void {
    for (const [ctx, r] of node.reads) {
      if (r.index === undefined || node.applied < r.index) continue;
      node.reads.delete(ctx);
      const op = r.op;
      if (op.input.kind !== 'get') continue;
      op.output = { kind: 'get', value: node.kv.get(op.input.key) };
      op.response = ++this.clock;
      op.responseStep = this.stepNo;
      op.readIndex = r.index;
      op.status = 'done';
      this.clientBusy[op.client] = false;
      this.log(`client c${op.client} <- ${formatOp(toHistoryOp(op))} (read index ${r.index}, applied ${node.applied})`);
    }
  }

  /** After a drained Ready queue, everything in the core must be on the disk model. */
  private checkDurable(node: SimNode): void {
    if (this.pendingRemoval.has(node.id)) {
      this.pendingRemoval.delete(node.id);
      this.stopNode(node, 'removed', 'was removed');
      return;
    }
    const st = node.core!.status();
    const d = node.disk;
    if (st.term !== d.hardState.term || st.vote !== d.hardState.vote || st.commit !== d.hardState.commit) {
      violation('durability', `n${node.id} has no Ready pending but its term/vote/commit ${st.term}/${st.vote}/${st.commit} differ from the disk's ${d.hardState.term}/${d.hardState.vote}/${d.hardState.commit}`);
    }
    if (st.lastIndex !== diskLast(d)) violation('durability', `n${node.id} has no Ready pending but its last index ${st.lastIndex} differs from the disk's ${diskLast(d)}`);
    if (st.applied !== st.commit) violation('apply', `n${node.id} has no Ready pending but applied ${st.applied} < commit ${st.commit}`);
  }

  // ------------------------------------------------------------------ checks

  private lastFullCheck = 0;

  private checkAll(): void {
    for (const n of this.nodes.values()) {
      if (n.state !== 'up') continue;
      const st = n.core!.status();
      if (st.commit < n.lastCommit) violation('commit monotonic', `n${n.id} commit went from ${n.lastCommit} to ${st.commit} within one life`);
      n.lastCommit = st.commit;
      if (st.role === 'leader') this.checker.leader(st.term, n.id, 'status');
      if (st.id !== n.id) violation('status', `n${n.id} reports id ${st.id}`);
    }
    if (this.stepNo - this.lastFullCheck >= 500) {
      this.lastFullCheck = this.stepNo;
      this.checkDiskLogsPairwise();
    }
  }

  /** Log Matching, directly: any two disk logs that agree on (i, term) agree on every entry up to i. */
  private checkDiskLogsPairwise(): void {
    const list = [...this.nodes.values()];
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        const da = list[a]!.disk;
        const db = list[b]!.disk;
        const lo = Math.max(da.snapshot?.meta.index ?? 0, db.snapshot?.meta.index ?? 0) + 1;
        const hi = Math.min(diskLast(da), diskLast(db));
        let matched = false;
        for (let i = hi; i >= lo; i--) {
          const ea = diskEntry(da, i)!;
          const eb = diskEntry(db, i)!;
          if (!matched && ea.term === eb.term) matched = true;
          if (matched && (ea.term !== eb.term || entryDigest(ea) !== entryDigest(eb))) {
            violation('log matching', `n${list[a]!.id} and n${list[b]!.id} agree at a later index but differ at ${i}: ${describeEntry(ea)} vs ${describeEntry(eb)}`);
          }
        }
      }
    }
  }

  private finalChecks(): void {
    this.checkDiskLogsPairwise();
    // Every member applied the same state.
    let state: string | undefined;
    let at = 0;
    for (const n of this.upNodes()) {
      const s = kvState(n.kv);
      if (state === undefined) {
        state = s;
        at = n.applied;
      } else if (n.applied === at && s !== state) violation('state machine safety', `n${n.id} ends with ${s}, others with ${state}`);
    }
  }

  // ------------------------------------------------------------------ clients

  private pickNodeForClient(): SimNode | undefined {
    const up = this.upNodes();
    if (up.length === 0) return undefined;
    if (this.rng.chance(0.8)) {
      const leaders = up.filter((n) => n.role === 'leader');
      if (leaders.length > 0) return this.rng.pick(leaders);
    }
    return this.rng.pick(up);
  }

  private clientOp(): void {
    const idle: number[] = [];
    this.clientBusy.forEach((b, i) => {
      if (!b) idle.push(i);
    });
    const client = this.rng.pick(idle);
    const key = `k${this.rng.int(this.scenario.keys)}`;
    const id = this.nextOpId++;
    const r = this.rng.int(10);
    let input: KvInput;
    if (r < 4) input = { kind: 'get', key };
    else if (r < 8) input = { kind: 'put', key, value: `v${id}` };
    else {
      // Expect a value someone is likely to hold: the latest applied one, an older one, or absent.
      const recent = this.recentValue(key);
      const expected = this.rng.chance(0.7) ? recent : this.rng.chance(0.5) ? undefined : `v${this.rng.int(id)}`;
      input = { kind: 'cas', key, expected, value: `v${id}` };
    }
    const first = this.pickNodeForClient();
    if (!first) return;
    let node: SimNode = first;
    const op: ClientOp = { id, client, input, invoke: 0, status: 'pending', node: node.id, issuedStep: this.stepNo };
    for (let attempt = 0; attempt < 3; attempt++) {
      const core: RaftCoreApi = node.core!;
      if (input.kind === 'get') {
        const ctx = `r${id}`;
        op.invoke = ++this.clock;
        if (!core.readIndex(ctx)) {
          this.log(`client c${client} get(${key}) on n${node.id}: no leader known`);
          op.status = 'dropped';
          break;
        }
        op.node = node.id;
        node.reads.set(ctx, { op });
        this.clientBusy[client] = true;
        this.ops.push(op);
        this.log(`client c${client} -> n${node.id} ${formatOp(toHistoryOp(op))} ctx ${ctx}`);
        this.touched(node);
        return;
      }
      const cmd: Command = { op: input.kind, key, value: input.value, clientOpId: id };
      if (input.kind === 'cas') cmd.expected = input.expected ?? null;
      op.invoke = ++this.clock;
      const res = core.propose(encoder.encode(JSON.stringify(cmd)));
      if (res.ok) {
        op.node = node.id;
        op.index = res.index;
        op.term = res.term;
        node.writes.set(res.index, { op });
        this.clientBusy[client] = true;
        this.ops.push(op);
        this.log(`client c${client} -> n${node.id} ${formatOp(toHistoryOp(op))} at (${res.index},t${res.term})`);
        this.touched(node);
        return;
      }
      this.log(`client c${client} ${input.kind}(${key}) on n${node.id}: ${res.reason} (leader ${res.leaderId})`);
      const next: SimNode | undefined = res.leaderId !== NONE ? this.nodes.get(res.leaderId) : undefined;
      if (!next || next.state !== 'up' || next === node || !this.rng.chance(0.9)) break;
      node = next; // retry at the leader it named: the first attempt never entered the log
    }
    // Never entered the log: not part of the history, and must never be applied.
    op.status = 'failed';
    this.checker.opFailed(id, 'rejected by propose');
  }

  private recentValue(key: string): string | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) if (n.state === 'up' && (!best || n.applied > best.applied)) best = n;
    return best?.kv.get(key);
  }

  private expireClientOps(): void {
    const timeout = this.scenario.clientTimeout;
    for (const n of this.nodes.values()) {
      for (const [index, w] of n.writes) {
        if (this.stepNo - w.op.issuedStep > timeout) {
          n.writes.delete(index);
          this.floatOp(w.op, 'client timed out');
        }
      }
      for (const [ctx, r] of n.reads) {
        if (this.stepNo - r.op.issuedStep > timeout) {
          n.reads.delete(ctx);
          this.dropOp(r.op);
        }
      }
    }
  }

  /** The client gave up on a write: it may or may not take effect; resolved at the end. */
  private floatOp(op: ClientOp, why: string): void {
    if (op.status !== 'pending') return;
    op.status = 'floating';
    this.clientBusy[op.client] = false;
    this.log(`client c${op.client} gives up on op ${op.id} (${why})`);
  }

  /** A read the client never got an answer to: no constraint. */
  private dropOp(op: ClientOp): void {
    if (op.status !== 'pending') return;
    op.status = 'dropped';
    this.clientBusy[op.client] = false;
  }

  /** The history for the checker: floating writes resolved from what was applied. */
  history(): HistoryOp[] {
    const out: HistoryOp[] = [];
    for (const op of this.ops) {
      if (op.status === 'pending') {
        // Never answered (still in flight at the end).
        if (op.input.kind === 'get') op.status = 'dropped';
        else op.status = 'floating';
      }
      if (op.status === 'floating') {
        const a = op.index !== undefined ? this.checker.applied.get(op.index) : undefined;
        if (a && a.term === op.term) {
          if (a.clientOpId !== op.id) violation('proposal identity', `op ${op.id} proposed at (${op.index},t${op.term}) but that entry holds op ${a.clientOpId}`);
          op.output = a.result as KvOutput;
        } else if (a) {
          op.status = 'failed';
          this.checker.opFailed(op.id, `index ${op.index} applied with term ${a.term}`);
          continue;
        } else {
          op.output = undefined; // indeterminate: never applied (yet)
        }
        op.response = undefined;
      }
      if (op.status === 'done' || op.status === 'floating') out.push(toHistoryOp(op));
    }
    return out;
  }

  // ------------------------------------------------------------------ admin events

  private leaderNode(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.state !== 'up' || n.role !== 'leader') continue;
      if (!best || n.term > best.term) best = n;
    }
    return best;
  }

  private compact(): void {
    // Also on nodes with a Ready pending (entries not yet on disk): compaction must not cut past what is durable.
    const candidates = this.upNodes().filter((n) => n.applied > (n.disk.snapshot?.meta.index ?? 0));
    if (candidates.length === 0) return;
    const node = this.rng.pick(candidates);
    const data = encoder.encode(JSON.stringify({ applied: node.applied, kv: [...node.kv.entries()].sort() }));
    const margin = this.rng.int(6);
    const retainFrom = Math.max(1, node.applied + 1 - margin);
    const snap = node.core!.compact(data, retainFrom);
    this.log(`compact n${node.id} at applied ${node.applied} retainFrom ${retainFrom} -> ${snap ? `snapshot (${snap.meta.index},t${snap.meta.term})` : 'nothing'}`);
    if (!snap) return;
    this.stats.compactions++;
    if (snap.meta.index !== node.applied) violation('compact', `n${node.id} compacted at applied ${node.applied} but the snapshot says index ${snap.meta.index}`);
    const a = this.checker.applied.get(snap.meta.index);
    if (a && a.term !== snap.meta.term) violation('compact', `n${node.id} snapshot (${snap.meta.index},t${snap.meta.term}) but index ${snap.meta.index} was applied with term ${a.term}`);
    const st = node.core!.status();
    if (JSON.stringify(snap.meta.conf) !== JSON.stringify(st.conf)) {
      // Membership changes apply when committed entries are applied, so at `applied` the conf is the current one.
      violation('compact', `n${node.id} snapshot conf ${JSON.stringify(snap.meta.conf)} differs from its conf ${JSON.stringify(st.conf)}`);
    }
    this.persistSnapshot(node, snap, 'compaction');
    this.touched(node);
  }

  private transfer(): void {
    const leader = this.leaderNode();
    if (!leader) return;
    const voters = leader.core!.status().conf.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const target = this.rng.pick(voters);
    this.log(`transfer leadership n${leader.id} -> n${target}`);
    leader.core!.transferLeader(target);
    this.touched(leader);
  }

  private membershipChange(): void {
    const leader = this.leaderNode();
    if (!leader) return;
    const st: RaftStatus = leader.core!.status();
    const { voters, learners } = st.conf;
    const members = voters.length + learners.length;
    let change: ConfChange | undefined;
    const r = this.rng.int(3);
    if (r === 0 && members < this.scenario.voters + 3) {
      change = { type: 'addLearner', nodeId: this.nextNodeId, context: `sim://n${this.nextNodeId}` };
    } else if (r === 1 && learners.length > 0) {
      change = { type: 'addVoter', nodeId: this.rng.pick(learners), context: '' };
    } else if (r === 2 && voters.length > 3) {
      change = { type: 'removeNode', nodeId: this.rng.pick(voters), context: '' };
    } else if (r === 2 && learners.length > 0 && this.rng.chance(0.3)) {
      change = { type: 'removeNode', nodeId: this.rng.pick(learners), context: '' };
    }
    if (!change) return;
    const res = leader.core!.proposeConfChange(change);
    this.log(`n${leader.id} proposes ${change.type} n${change.nodeId}: ${res.ok ? `at (${res.index},t${res.term})` : res.reason}`);
    if (!res.ok) return;
    this.stats.confChanges++;
    if (change.type === 'addLearner') {
      // The new node starts empty and learns everything from the leader.
      this.pendingJoins.set(res.index, { term: res.term, nodeId: change.nodeId });
      this.nextNodeId++;
      this.addNode(change.nodeId, { voters: [], learners: [] });
      this.log(`n${change.nodeId} started (empty disk)`);
    }
    this.touched(leader);
  }
}

// ------------------------------------------------------------------ helpers

function diskLast(d: Disk): number {
  const last = d.entries.at(-1);
  return last ? last.index : (d.snapshot?.meta.index ?? 0);
}

function diskEntry(d: Disk, i: number): Entry | undefined {
  const base = d.snapshot?.meta.index ?? 0;
  if (i <= base) return undefined;
  return d.entries[i - base - 1];
}

function diskTerm(d: Disk, i: number): number | undefined {
  if (i === 0) return 0;
  const base = d.snapshot?.meta.index ?? 0;
  if (i === base) return d.snapshot!.meta.term;
  return diskEntry(d, i)?.term;
}

function kvState(kv: Map<string, string>): string {
  return JSON.stringify([...kv.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

function cloneSnapshot(s: Snapshot): Snapshot {
  return {
    meta: { index: s.meta.index, term: s.meta.term, conf: { voters: [...s.meta.conf.voters], learners: [...s.meta.conf.learners] } },
    data: s.data.slice(),
  };
}

/** What crosses the wire: a deep copy, so no core shares objects with another. */
function cloneMessage(m: Message): Message {
  const c: Message = { ...m, entries: m.entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: e.data.slice() })) };
  if (m.snapshot) c.snapshot = cloneSnapshot(m.snapshot);
  else delete c.snapshot;
  return c;
}

function toHistoryOp(op: ClientOp): HistoryOp {
  const h: HistoryOp = { id: op.id, client: op.client, input: op.input, invoke: op.invoke };
  if (op.response !== undefined) h.response = op.response;
  if (op.output !== undefined) h.output = op.output;
  return h;
}

export function describeMessage(m: Message): string {
  let s = `${m.type} n${m.from}->n${m.to} t${m.term}`;
  switch (m.type) {
    case 'append':
      s += ` prev=(${m.index},t${m.logTerm}) ents=${m.entries.length ? `${m.entries[0]!.index}..${m.entries.at(-1)!.index}` : '-'} commit=${m.commit}`;
      break;
    case 'appendResp':
      s += ` index=${m.index}${m.reject ? ` REJECT hint=${m.rejectHint}` : ''}`;
      break;
    case 'vote':
    case 'preVote':
      s += ` last=(${m.index},t${m.logTerm})${m.context ? ` ${m.context}` : ''}`;
      break;
    case 'voteResp':
    case 'preVoteResp':
      s += m.reject ? ' REJECT' : ' grant';
      break;
    case 'heartbeat':
      s += ` commit=${m.commit}${m.context ? ` ctx=${m.context}` : ''}`;
      break;
    case 'heartbeatResp':
      s += m.context ? ` ctx=${m.context}` : '';
      break;
    case 'snapshot':
      s += ` snap=(${m.snapshot?.meta.index},t${m.snapshot?.meta.term})`;
      break;
    case 'readIndex':
    case 'readIndexResp':
      s += ` index=${m.index} ctx=${m.context}`;
      break;
    default:
      break;
  }
  return s;
}

export function formatFailure(f: SimFailure, stepsEnv: string): string {
  return [
    `Raft simulation failed — seed ${f.seed}, step ${f.step}, scenario ${f.scenario.name}`,
    `invariant: ${f.invariant}`,
    `detail: ${f.detail}`,
    `replay: RAFT_SIM_SEED=${f.seed}${stepsEnv} node --test dist/test/meta/raft/simulation.test.js`,
    `scenario: ${JSON.stringify(f.scenario)}`,
    f.invariant === 'linearizability' ? 'events around the op that could not be linearized:' : `last ${f.trace.length} events:`,
    ...f.trace.map((l) => `  ${l}`),
  ].join('\n');
}
