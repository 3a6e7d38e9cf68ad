/**
 * Focused, deterministic tests of the Raft core's behaviour, driven by a tiny
 * harness (no randomness: election timeouts are fixed, messages go FIFO, faults
 * are placed by hand). The randomised search lives in simulation.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RaftCore } from '../../../src/meta/raft/core/raft.js';
import {
  NONE,
  decodeConfChange,
  type ConfChange,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Snapshot,
} from '../../../src/meta/raft/core/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface TestNode {
  id: NodeId;
  core: RaftCore;
  hard: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
  /** Normal entries with data, as applied. */
  applied: string[];
  appliedIndex: number;
  readStates: ReadState[];
  /** Snapshots restored from the leader. */
  installed: Snapshot[];
  up: boolean;
}

interface NetOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  maxInflightMsgs?: number;
  maxSizePerMsg?: number;
  electionTick?: number;
}

/** A deterministic little cluster: FIFO network, per-link cuts, and a message filter. */
class Net {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  readonly cut = new Set<string>();
  /** Return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined;
  readonly delivered: Message[] = [];

  constructor(
    voters: NodeId[],
    private readonly opts: NetOptions = {},
  ) {
    for (const id of voters) this.add(id, voters);
  }

  config(id: NodeId): RaftConfig {
    return {
      id,
      electionTick: this.opts.electionTick ?? 10,
      heartbeatTick: 1,
      preVote: this.opts.preVote ?? true,
      checkQuorum: this.opts.checkQuorum ?? true,
      maxSizePerMsg: this.opts.maxSizePerMsg ?? 1024 * 16,
      maxInflightMsgs: this.opts.maxInflightMsgs ?? 16,
      // Fixed, distinct election timeouts per node (no randomness, no split votes).
      random: (n: number) => ((id - 1) * 3) % n,
    };
  }

  /** A node with an empty disk; founders get the initial voters, joiners nothing. */
  add(id: NodeId, initialVoters: NodeId[]): TestNode {
    const core = new RaftCore(this.config(id), { hardState: { term: 0, vote: NONE, commit: 0 }, entries: [], initialConf: { voters: initialVoters, learners: [] } });
    const n: TestNode = { id, core, hard: { term: 0, vote: NONE, commit: 0 }, snapshot: undefined, entries: [], applied: [], appliedIndex: 0, readStates: [], installed: [], up: true };
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    assert.ok(n, `no node ${id}`);
    return n;
  }

  /** Run the IO loop of one node until it has nothing to do. */
  drain(id: NodeId): void {
    const n = this.node(id);
    if (!n.up) return;
    for (let rounds = 0; n.core.hasReady(); rounds++) {
      assert.ok(rounds < 100, `node ${id}: Ready loop does not end`);
      const rd = n.core.ready();
      if (rd.snapshot) {
        n.snapshot = rd.snapshot;
        n.entries = [];
      }
      if (rd.entries.length > 0) {
        const first = rd.entries[0]!.index;
        n.entries = n.entries.filter((e) => e.index < first).concat(rd.entries);
      }
      if (rd.hardState) n.hard = rd.hardState;
      for (const m of rd.messages) this.queue.push(m);
      if (rd.snapshot) {
        n.installed.push(rd.snapshot);
        n.applied = (JSON.parse(dec.decode(rd.snapshot.data)) as { applied: string[] }).applied;
        n.appliedIndex = rd.snapshot.meta.index;
      }
      for (const e of rd.committedEntries) {
        assert.equal(e.index, n.appliedIndex + 1, `node ${id} applies ${e.index} after ${n.appliedIndex}`);
        n.appliedIndex = e.index;
        if (e.type === 'normal' && e.data.byteLength > 0) n.applied.push(dec.decode(e.data));
      }
      n.readStates.push(...rd.readStates);
      n.core.advance(rd);
    }
  }

  drainAll(): void {
    for (const id of this.nodes.keys()) this.drain(id);
  }

  /** Deliver queued messages (FIFO) until the network is quiet. */
  settle(maxMessages = 10_000): void {
    this.drainAll();
    let count = 0;
    while (this.queue.length > 0) {
      assert.ok(count++ < maxMessages, 'the network does not settle');
      const m = this.queue.shift()!;
      const to = this.nodes.get(m.to);
      if (!to || !to.up || this.cut.has(`${m.from}>${m.to}`)) continue;
      if (this.filter && !this.filter(m)) continue;
      this.delivered.push(m);
      to.core.step(m);
      this.drain(m.to);
    }
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).core.tick();
      this.drain(id);
    }
  }

  /** Every live node ticks once, then the network settles; `times` rounds. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) if (n.up) this.tick(n.id);
      this.settle();
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  propose(id: NodeId, text: string): { index: number; term: number } {
    const r = this.node(id).core.propose(enc.encode(text));
    assert.ok(r.ok, `propose on ${id}: ${JSON.stringify(r)}`);
    this.drain(id);
    return { index: r.index, term: r.term };
  }

  confChange(id: NodeId, change: ConfChange): void {
    const r = this.node(id).core.proposeConfChange(change);
    assert.ok(r.ok, `conf change on ${id}: ${JSON.stringify(r)}`);
    this.drain(id);
  }

  /** Compact at the applied index, with the applied commands as the snapshot data. */
  compact(id: NodeId, retainFrom?: number): Snapshot {
    const n = this.node(id);
    const snap = n.core.compact(enc.encode(JSON.stringify({ applied: n.applied })), retainFrom);
    assert.ok(snap, 'compact returned no snapshot');
    n.snapshot = snap;
    n.entries = n.entries.filter((e) => e.index > snap.meta.index);
    this.drain(id);
    return snap;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.up && n.core.status().role === 'leader').map((n) => n.id);
  }

  elect(id: NodeId): void {
    this.node(id).core.campaign();
    this.settle();
    assert.equal(this.node(id).core.status().role, 'leader', `node ${id} should have won`);
  }
}

describe('Raft core: elections and replication', () => {
  it('a single-node cluster elects itself on campaign() and commits a proposal', () => {
    const net = new Net([1]);
    net.drain(1);
    net.node(1).core.campaign();
    net.drain(1);
    const st = net.node(1).core.status();
    assert.equal(st.role, 'leader');
    assert.equal(st.leaderId, 1);
    assert.equal(net.node(1).hard.vote, 1, 'its self-vote was persisted');
    const p = net.propose(1, 'x=1');
    assert.deepEqual(net.node(1).applied, ['x=1']);
    assert.equal(net.node(1).core.status().commit, p.index);
    assert.equal(net.node(1).hard.commit, p.index);
  });

  it('a single-node cluster also elects itself after an election timeout of ticks', () => {
    const net = new Net([1]);
    net.tick(1, 2 * 10);
    assert.equal(net.node(1).core.status().role, 'leader');
    net.propose(1, 'a');
    net.propose(1, 'b');
    assert.deepEqual(net.node(1).applied, ['a', 'b']);
  });

  it('three nodes elect one leader, which replicates and commits on all', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    assert.deepEqual(net.leaders(), [1]);
    const term = net.node(1).core.status().term;
    for (const id of [2, 3]) {
      const st = net.node(id).core.status();
      assert.equal(st.role, 'follower');
      assert.equal(st.leaderId, 1);
      assert.equal(st.term, term);
    }
    const p1 = net.propose(1, 'a');
    const p2 = net.propose(1, 'b');
    net.settle();
    net.tickAll(2); // heartbeats carry the commit index to followers
    for (const id of [1, 2, 3]) {
      assert.deepEqual(net.node(id).applied, ['a', 'b'], `node ${id}`);
      assert.equal(net.node(id).core.status().commit, p2.index);
      assert.equal(net.node(id).entries.find((e) => e.index === p1.index)?.term, term);
    }
  });

  it('a leader does not commit an entry of an earlier term by counting replicas (Figure 8)', () => {
    const net = new Net([1, 2, 3], { maxSizePerMsg: 1 });
    net.elect(1);
    net.propose(1, 'a');
    net.settle();
    // 'x' reaches node 1's log only.
    net.filter = (m) => m.type !== 'append';
    const x = net.propose(1, 'x');
    net.settle();
    // Node 1 loses its leadership (check-quorum), then wins a new term with 'x' still uncommitted.
    net.tick(1, 2 * 10 + 1);
    assert.notEqual(net.node(1).core.status().role, 'leader');
    net.tick(2, 10); // out of the old leader's lease, not yet campaigning
    net.tick(3, 10);
    // Let the followers take 'x' (its term is older) but never the new leader's no-op after it.
    net.filter = (m) => !(m.type === 'append' && m.index === x.index && net.node(m.to).core.status().lastIndex >= x.index);
    net.queue = [];
    net.node(1).core.campaign();
    net.settle();
    net.tickAll(5);
    const leader = net.node(1).core.status();
    assert.equal(leader.role, 'leader');
    assert.ok(leader.term > x.term);
    for (const id of [2, 3]) assert.ok(net.node(id).core.status().lastIndex >= x.index, `node ${id} holds 'x'`);
    assert.ok(leader.commit < x.index, `the leader committed ${leader.commit} >= ${x.index}: an entry of term ${x.term} by counting replicas in term ${leader.term}`);
    // Once an entry of its own term is replicated, both commit.
    net.filter = undefined;
    net.tickAll(3);
    assert.ok(net.node(1).core.status().commit > x.index);
    assert.deepEqual(net.node(2).applied, ['a', 'x']);
  });

  it('elects a leader by itself after election timeouts', () => {
    const net = new Net([1, 2, 3]);
    net.tickAll(25);
    assert.equal(net.leaders().length, 1);
  });

  it('proposals on a follower return not_leader and name the leader', () => {
    const net = new Net([1, 2, 3]);
    net.elect(2);
    const r = net.node(3).core.propose(enc.encode('x'));
    assert.deepEqual(r, { ok: false, reason: 'not_leader', leaderId: 2 });
    const c = net.node(1).core.proposeConfChange({ type: 'addLearner', nodeId: 9, context: '' });
    assert.equal(c.ok, false);
    if (!c.ok) {
      assert.equal(c.reason, 'not_leader');
      assert.equal(c.leaderId, 2);
    }
    // Before any election nobody is known.
    const fresh = new Net([1, 2, 3]);
    assert.deepEqual(fresh.node(1).core.propose(enc.encode('x')), { ok: false, reason: 'not_leader', leaderId: NONE });
  });

  it('a follower that missed entries rejects the next append; the leader backs off and catches it up', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 8; i++) net.propose(1, `e${i}`);
    net.settle();
    assert.deepEqual(net.node(3).applied, []);
    net.heal();
    const rejectsBefore = net.delivered.filter((m) => m.type === 'appendResp' && m.reject).length;
    net.propose(1, 'last');
    net.settle();
    net.tickAll(3);
    const rejects = net.delivered.filter((m) => m.type === 'appendResp' && m.reject && m.from === 3).length - rejectsBefore;
    assert.ok(rejects >= 1, 'node 3 rejected an append it could not attach');
    const want = [...Array.from({ length: 8 }, (_, i) => `e${i}`), 'last'];
    assert.deepEqual(net.node(3).applied, want);
    assert.equal(net.node(3).core.status().lastIndex, net.node(1).core.status().lastIndex);
  });

  it('a follower with a divergent suffix from an old term gets it overwritten', () => {
    const net = new Net([1, 2, 3]);
    net.elect(3);
    net.propose(3, 'shared');
    net.settle();
    net.tickAll(1);
    // Node 3 (leader) appends entries nobody else receives.
    net.isolate(3);
    net.propose(3, 'lost1');
    net.propose(3, 'lost2');
    net.settle();
    const stale = net.node(3).core.status().lastIndex;
    // The majority moves on: once their leader's lease expired, one of them is elected.
    net.tickAll(25);
    const [leader] = net.leaders().filter((id) => id !== 3);
    assert.ok(leader !== undefined, 'nodes 1 and 2 elected a leader');
    net.propose(leader, 'new1');
    net.settle();
    net.heal();
    net.tickAll(25);
    assert.deepEqual(net.leaders(), [leader]);
    net.propose(leader, 'new2');
    net.settle();
    net.tickAll(2);
    for (const id of [1, 2, 3]) assert.deepEqual(net.node(id).applied, ['shared', 'new1', 'new2'], `node ${id}`);
    const t = net.node(leader).core.status().term;
    const n3 = net.node(3);
    assert.ok(stale > 0);
    assert.deepEqual(
      n3.entries.map((e) => [e.index, e.term]),
      net.node(leader).entries.map((e) => [e.index, e.term]),
      'node 3 holds exactly the leader log (stale entries overwritten)',
    );
    assert.ok(n3.entries.some((e) => e.term === t));
  });
});

describe('Raft core: pre-vote and check-quorum', () => {
  it('pre-vote: a partitioned node that rejoins does not bump the cluster term', () => {
    const net = new Net([1, 2, 3], { preVote: true });
    net.elect(1);
    const term = net.node(1).core.status().term;
    net.isolate(3);
    net.tick(3, 100); // it keeps pre-campaigning, alone
    net.settle();
    assert.equal(net.node(3).core.status().term, term, 'pre-votes do not raise its term');
    net.heal();
    net.tickAll(15);
    assert.deepEqual(net.leaders(), [1]);
    for (const id of [1, 2, 3]) assert.equal(net.node(id).core.status().term, term, `node ${id}`);
  });

  it('without pre-vote the same rejoin disrupts the leader (the contrast)', () => {
    const net = new Net([1, 2, 3], { preVote: false, checkQuorum: false });
    net.elect(1);
    const term = net.node(1).core.status().term;
    net.isolate(3);
    net.tick(3, 100);
    net.settle();
    assert.ok(net.node(3).core.status().term > term);
    net.heal();
    net.tickAll(30);
    assert.ok(net.node(1).core.status().term > term, 'the cluster term was bumped');
  });

  it('check-quorum: an isolated leader steps down within an election timeout', () => {
    const net = new Net([1, 2, 3], { checkQuorum: true });
    net.elect(1);
    net.isolate(1);
    net.tick(1, 2 * 10 + 1);
    const st = net.node(1).core.status();
    assert.notEqual(st.role, 'leader');
    // And proposals there now fail.
    assert.equal(net.node(1).core.propose(enc.encode('x')).ok, false);
  });

  it('check-quorum: a follower that hears from its leader ignores a disruptive candidate', () => {
    const net = new Net([1, 2, 3], { checkQuorum: true, preVote: false });
    net.elect(1);
    const term = net.node(1).core.status().term;
    // Node 3 campaigns out of the blue: nodes 1 and 2 are in their lease and ignore it.
    net.node(3).core.campaign();
    net.settle();
    assert.equal(net.node(1).core.status().role, 'leader');
    assert.equal(net.node(2).core.status().term, term);
  });
});

describe('Raft core: reads, transfer, snapshots, membership', () => {
  it('ReadIndex on the leader confirms leadership with a heartbeat round', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    net.settle();
    assert.equal(net.node(1).core.readIndex('ctx-1'), true);
    net.drain(1);
    assert.deepEqual(net.node(1).readStates, [], 'not before a quorum answered');
    net.settle();
    const rs = net.node(1).readStates;
    assert.equal(rs.length, 1);
    assert.equal(rs[0]!.context, 'ctx-1');
    assert.equal(rs[0]!.index, net.node(1).core.status().commit);
  });

  it('ReadIndex on an isolated leader is never answered', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    net.isolate(1);
    net.node(1).core.readIndex('stale?');
    net.settle();
    net.tick(1, 5);
    net.settle();
    assert.deepEqual(net.node(1).readStates, []);
  });

  it('ReadIndex via a follower is answered through the leader', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    const p = net.propose(1, 'a');
    net.settle();
    assert.equal(net.node(3).core.readIndex('f-1'), true);
    net.settle();
    const rs = net.node(3).readStates;
    assert.equal(rs.length, 1);
    assert.equal(rs[0]!.context, 'f-1');
    assert.ok(rs[0]!.index >= p.index, 'the read index covers the completed write');
    // A node that knows no leader refuses.
    const fresh = new Net([1, 2, 3]);
    assert.equal(fresh.node(2).core.readIndex('x'), false);
  });

  it('leader transfer to an up-to-date follower', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    net.settle();
    net.tickAll(1);
    const term = net.node(1).core.status().term;
    net.node(1).core.transferLeader(2);
    net.settle();
    assert.deepEqual(net.leaders(), [2]);
    assert.equal(net.node(2).core.status().term, term + 1);
    assert.equal(net.node(1).core.status().leaderId, 2);
    net.propose(2, 'b');
    net.settle();
    net.tickAll(2);
    for (const id of [1, 2, 3]) assert.deepEqual(net.node(id).applied, ['a', 'b']);
  });

  it('a follower far behind gets a snapshot once the leader compacted', () => {
    const net = new Net([1, 2, 3]);
    net.isolate(3);
    net.elect(1);
    for (let i = 0; i < 20; i++) net.propose(1, `e${i}`);
    net.settle();
    net.tickAll(1);
    const snap = net.compact(1);
    assert.ok(net.node(1).core.status().firstIndex > 2, 'the log was compacted');
    net.propose(1, 'after');
    net.settle();
    net.heal();
    net.tickAll(5);
    const n3 = net.node(3);
    assert.equal(n3.installed.length, 1, 'node 3 installed one snapshot');
    assert.equal(n3.installed[0]!.meta.index, snap.meta.index);
    assert.deepEqual(n3.applied, [...Array.from({ length: 20 }, (_, i) => `e${i}`), 'after']);
    assert.equal(n3.core.status().commit, net.node(1).core.status().commit);
  });

  it('add a learner, promote it, remove a voter', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'before');
    net.settle();
    net.confChange(1, { type: 'addLearner', nodeId: 4, context: 'addr4' });
    net.add(4, []);
    net.settle();
    net.tickAll(3);
    assert.deepEqual(net.node(1).core.status().conf, { voters: [1, 2, 3], learners: [4] });
    assert.deepEqual(net.node(4).core.status().conf, { voters: [1, 2, 3], learners: [4] });
    assert.deepEqual(net.node(4).applied, ['before'], 'the learner replicated the log');
    assert.notEqual(net.node(4).core.status().role, 'leader');

    net.confChange(1, { type: 'addVoter', nodeId: 4, context: 'addr4' });
    net.settle();
    net.tickAll(2);
    assert.deepEqual(net.node(1).core.status().conf, { voters: [1, 2, 3, 4], learners: [] });
    assert.deepEqual(net.node(4).core.status().conf, { voters: [1, 2, 3, 4], learners: [] });

    net.confChange(1, { type: 'removeNode', nodeId: 3, context: '' });
    net.settle();
    net.tickAll(2);
    assert.deepEqual(net.node(1).core.status().conf, { voters: [1, 2, 4], learners: [] });
    net.node(3).up = false;
    // The new configuration works: a quorum of {1, 2, 4} commits.
    net.propose(1, 'after');
    net.settle();
    net.tickAll(2);
    for (const id of [1, 2, 4]) assert.deepEqual(net.node(id).applied, ['before', 'after'], `node ${id}`);
    // The conf entries are in the log for everyone.
    const confs = net.node(4).entries.filter((e) => e.type === 'conf').map((e) => decodeConfChange(e.data).type);
    assert.deepEqual(confs.slice(-3), ['addLearner', 'addVoter', 'removeNode']);
  });

  it('one conf change at a time: a second one waits until the first is applied', () => {
    const net = new Net([1, 2, 3]);
    net.elect(1);
    net.isolate(2);
    net.isolate(3);
    const a = net.node(1).core.proposeConfChange({ type: 'addLearner', nodeId: 4, context: '' });
    assert.ok(a.ok);
    const b = net.node(1).core.proposeConfChange({ type: 'addLearner', nodeId: 5, context: '' });
    assert.equal(b.ok, false);
    if (!b.ok) assert.equal(b.reason, 'conf_change_pending');
  });
});

describe('Raft core: flow control', () => {
  it('a follower in replicate state recovers after its appends were lost (window full)', () => {
    const net = new Net([1, 2, 3], { maxInflightMsgs: 2, maxSizePerMsg: 1 });
    net.elect(1);
    net.propose(1, 'warm-up');
    net.settle();
    net.tickAll(2);
    assert.equal(net.node(1).core.status().progress.get(3)?.state, 'replicate');
    // Every append to node 3 is lost for a while: more than the in-flight window.
    net.filter = (m) => !(m.type === 'append' && m.to === 3);
    for (let i = 0; i < 5; i++) net.propose(1, `e${i}`);
    net.settle();
    net.filter = undefined;
    // From here on nothing is lost: heartbeats keep flowing, so node 3 must catch up.
    net.tickAll(30);
    assert.deepEqual(net.node(3).applied, ['warm-up', 'e0', 'e1', 'e2', 'e3', 'e4'], `node 3 stalled; the leader's progress for it: ${JSON.stringify(net.node(1).core.status().progress.get(3))}`);
  });
});
