import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCoordinator } from '../../../src/broker/kafka/group/coordinator.js';
import type {
  GroupCoordinatorOptions,
  GroupProtocol,
  GroupStateChange,
  JoinGroupParams,
  JoinGroupResult,
  SyncGroupResult,
  TimerHandle,
  TimerPort,
} from '../../../src/broker/kafka/group/types.js';
import { ErrorCode } from '../../../src/broker/kafka/protocol/errors.js';
import { mulberry32 } from '../../support/mulberry32.js';

/** A deterministic clock: timers fire only from advance(), in deadline order. */
class FakeTimer implements TimerPort {
  private t = 0;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void; cancelled: boolean }> = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }

  /** Live (not cancelled, not fired) timers. */
  get pending(): number {
    return this.timers.filter((e) => !e.cancelled).length;
  }

  /** Moves time forward, firing due timers one by one and letting promise reactions run after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((e) => !e.cancelled);
      let next: (typeof this.timers)[number] | undefined;
      for (const e of this.timers) {
        if (e.at <= end && (!next || e.at < next.at || (e.at === next.at && e.seq < next.seq))) next = e;
      }
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  await new Promise<void>((r) => setImmediate(r));
}

/** Observes a promise without awaiting it. */
function track<T>(p: Promise<T>): { done: boolean; value: T | undefined } {
  const t: { done: boolean; value: T | undefined } = { done: false, value: undefined };
  void p.then((v) => {
    t.done = true;
    t.value = v;
  });
  return t;
}

function P(name: string, meta = name): GroupProtocol {
  return { name, metadata: Buffer.from(meta) };
}

function setup(opts: Partial<GroupCoordinatorOptions> = {}): { timer: FakeTimer; c: GroupCoordinator } {
  const timer = new FakeTimer();
  let n = 0;
  const c = new GroupCoordinator({ timer, minSessionTimeoutMs: 1000, generateId: () => `uuid${++n}`, ...opts });
  return { timer, c };
}

function req(over: Partial<JoinGroupParams> = {}): JoinGroupParams {
  return {
    groupId: 'g',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [P('range')],
    clientId: 'client',
    clientHost: '/127.0.0.1',
    requireKnownMemberId: false,
    ...over,
  };
}

const buf = (s: string): Buffer => Buffer.from(s);

/** Joins one member into a fresh group and syncs it: a Stable single-member group. */
async function stableSingle(c: GroupCoordinator, over: Partial<JoinGroupParams> = {}): Promise<JoinGroupResult> {
  const j = await c.joinGroup(req(over));
  assert.equal(j.errorCode, ErrorCode.NONE);
  const s = await c.syncGroup({
    groupId: over.groupId ?? 'g',
    generationId: j.generationId,
    memberId: j.memberId,
    groupInstanceId: over.groupInstanceId ?? null,
    assignments: [{ memberId: j.memberId, assignment: buf('all') }],
  });
  assert.equal(s.errorCode, ErrorCode.NONE);
  return j;
}

/** Three members gathered by the initial rebalance delay, then synced with assignments a-<i>. */
async function stableThree(
  c: GroupCoordinator,
  timer: FakeTimer,
  over: Array<Partial<JoinGroupParams>> = [{}, {}, {}],
): Promise<{ joins: JoinGroupResult[]; syncs: SyncGroupResult[] }> {
  const pending = over.map((o, i) => track(c.joinGroup(req({ clientId: `c${i}`, ...o }))));
  // Members after the first extend the initial delay once (Kafka's InitialDelayedJoin).
  await timer.advance(5999);
  assert.ok(pending.every((p) => !p.done), 'still within the (extended) initial delay');
  await timer.advance(1);
  assert.ok(pending.every((p) => p.done), 'every join answered after the initial delay');
  const joins = pending.map((p) => p.value!);
  const leader = joins.find((j) => j.leader === j.memberId)!;
  const syncs = await Promise.all(
    joins.map((j, i) =>
      c.syncGroup({
        groupId: 'g',
        generationId: j.generationId,
        memberId: j.memberId,
        groupInstanceId: over[i]?.groupInstanceId ?? null,
        assignments: j === leader ? joins.map((m, k) => ({ memberId: m.memberId, assignment: buf(`a-${k}`) })) : [],
      }),
    ),
  );
  return { joins, syncs };
}

describe('GroupCoordinator: join, sync, heartbeat', () => {
  it('a single member joins, syncs and heartbeats', async () => {
    const { c } = setup();
    const j = await c.joinGroup(req({ clientId: 'app' }));
    assert.equal(j.errorCode, ErrorCode.NONE);
    assert.equal(j.generationId, 1);
    assert.equal(j.memberId, 'app-uuid1');
    assert.equal(j.leader, j.memberId);
    assert.equal(j.protocolType, 'consumer');
    assert.equal(j.protocolName, 'range');
    assert.deepEqual(j.members, [{ memberId: j.memberId, groupInstanceId: null, metadata: buf('range') }]);
    assert.equal(c.describeGroup('g').groupState, 'CompletingRebalance');

    const hb0 = await c.heartbeat({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null });
    assert.equal(hb0.errorCode, ErrorCode.REBALANCE_IN_PROGRESS, 'awaiting sync');

    const s = await c.syncGroup({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null, assignments: [{ memberId: j.memberId, assignment: buf('p0,p1') }] });
    assert.deepEqual(s, { errorCode: ErrorCode.NONE, assignment: buf('p0,p1'), protocolType: 'consumer', protocolName: 'range' });
    const hb = await c.heartbeat({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null });
    assert.equal(hb.errorCode, ErrorCode.NONE);

    const d = c.describeGroup('g');
    assert.equal(d.groupState, 'Stable');
    assert.equal(d.protocolData, 'range');
    assert.equal(d.members.length, 1);
    assert.deepEqual(d.members[0], { memberId: j.memberId, groupInstanceId: null, clientId: 'app', clientHost: '/127.0.0.1', memberMetadata: buf('range'), memberAssignment: buf('p0,p1') });
    assert.deepEqual(c.listGroups(), { errorCode: ErrorCode.NONE, groups: [{ groupId: 'g', protocolType: 'consumer', groupState: 'Stable' }] });
    assert.deepEqual(c.listGroups(['empty']).groups, []);
    const snap = c.groups()[0]!;
    assert.equal(snap.generationId, 1);
    assert.equal(snap.members[0]!.assignmentBytes, 5);
    assert.equal(snap.members[0]!.metadataBytes, 5);
    assert.equal(snap.members[0]!.isLeader, true);
    // A sync in Stable returns the current assignment again.
    const again = await c.syncGroup({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null, assignments: [] });
    assert.deepEqual(again.assignment, buf('p0,p1'));
  });

  it('three members: one leader that sees everyone, each gets its own assignment', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 3000 });
    const { joins, syncs } = await stableThree(c, timer);
    const leaders = new Set(joins.map((j) => j.leader));
    assert.equal(leaders.size, 1);
    assert.equal(joins.every((j) => j.generationId === 1), true);
    const leader = joins.find((j) => j.leader === j.memberId)!;
    assert.equal(leader.members.length, 3);
    for (const j of joins) if (j !== leader) assert.deepEqual(j.members, []);
    assert.deepEqual(syncs.map((s) => s.assignment.toString()), ['a-0', 'a-1', 'a-2']);
    assert.equal(c.describeGroup('g').groupState, 'Stable');
  });

  it('the initial rebalance delay is extended while new members arrive, up to the rebalance timeout', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 3000 });
    const a = track(c.joinGroup(req({ rebalanceTimeoutMs: 10_000 })));
    await timer.advance(1000);
    const b = track(c.joinGroup(req({ rebalanceTimeoutMs: 10_000 })));
    await timer.advance(4999);
    assert.equal(a.done || b.done, false, 'extended by another 3000 ms after the first delay');
    await timer.advance(1);
    assert.equal(a.done && b.done, true);
    assert.equal(a.value!.generationId, 1);
    assert.equal(a.value!.leader, b.value!.leader);
  });

  it('a follower SyncGroup waits for the leader', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const ja = track(c.joinGroup(req()));
    const jb = track(c.joinGroup(req()));
    await timer.advance(200);
    const [a, b] = [ja.value!, jb.value!];
    const leader = a.leader === a.memberId ? a : b;
    const follower = leader === a ? b : a;
    const fs = track(c.syncGroup({ groupId: 'g', generationId: 1, memberId: follower.memberId, groupInstanceId: null, assignments: [] }));
    await flush();
    assert.equal(fs.done, false);
    const ls = await c.syncGroup({ groupId: 'g', generationId: 1, memberId: leader.memberId, groupInstanceId: null, assignments: [{ memberId: follower.memberId, assignment: buf('F') }] });
    await flush();
    assert.equal(fs.done, true);
    assert.equal(fs.value!.assignment.toString(), 'F');
    assert.equal(ls.assignment.length, 0, 'a member the leader left out gets an empty assignment');
  });

  it('a leaving member makes the others rebalance into the next generation', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 3000 });
    const { joins } = await stableThree(c, timer);
    const [gone, ...rest] = joins;
    const left = await c.leaveGroup({ groupId: 'g', members: [{ memberId: gone!.memberId, groupInstanceId: null }] });
    assert.deepEqual(left, { errorCode: ErrorCode.NONE, members: [{ memberId: gone!.memberId, groupInstanceId: null, errorCode: ErrorCode.NONE }] });
    for (const m of rest) {
      const hb = await c.heartbeat({ groupId: 'g', generationId: 1, memberId: m.memberId, groupInstanceId: null });
      assert.equal(hb.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    }
    const goneHb = await c.heartbeat({ groupId: 'g', generationId: 1, memberId: gone!.memberId, groupInstanceId: null });
    assert.equal(goneHb.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    const first = track(c.joinGroup(req({ memberId: rest[0]!.memberId })));
    await flush();
    assert.equal(first.done, false, 'waits for the other member');
    const second = await c.joinGroup(req({ memberId: rest[1]!.memberId }));
    await flush();
    assert.equal(second.generationId, 2);
    assert.equal(first.value!.generationId, 2);
    const leader = [first.value!, second].find((j) => j.leader === j.memberId)!;
    assert.deepEqual(leader.members.map((m) => m.memberId).sort(), rest.map((m) => m.memberId).sort());
    // Leaving twice, or an unknown group.
    const again = await c.leaveGroup({ groupId: 'g', members: [{ memberId: gone!.memberId, groupInstanceId: null }] });
    assert.equal(again.members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    const nogroup = await c.leaveGroup({ groupId: 'nope', members: [{ memberId: 'x', groupInstanceId: null }] });
    assert.equal(nogroup.members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('the leader leaving during CompletingRebalance starts a new rebalance', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const ja = track(c.joinGroup(req()));
    const jb = track(c.joinGroup(req()));
    await timer.advance(200);
    const leader = [ja.value!, jb.value!].find((j) => j.leader === j.memberId)!;
    const follower = [ja.value!, jb.value!].find((j) => j !== leader)!;
    const fs = track(c.syncGroup({ groupId: 'g', generationId: 1, memberId: follower.memberId, groupInstanceId: null, assignments: [] }));
    await c.leaveGroup({ groupId: 'g', members: [{ memberId: leader.memberId, groupInstanceId: null }] });
    await flush();
    assert.equal(fs.value?.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    assert.equal(c.describeGroup('g').groupState, 'PreparingRebalance');
    const rj = await c.joinGroup(req({ memberId: follower.memberId }));
    assert.equal(rj.generationId, 2);
    assert.equal(rj.leader, follower.memberId);
  });

  it('rejects session timeouts out of bounds and empty group ids', async () => {
    const { c } = setup({ minSessionTimeoutMs: 6000, maxSessionTimeoutMs: 60_000 });
    assert.equal((await c.joinGroup(req({ sessionTimeoutMs: 5999 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
    assert.equal((await c.joinGroup(req({ sessionTimeoutMs: 60_001 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
    assert.equal((await c.joinGroup(req({ groupId: '', sessionTimeoutMs: 6000 }))).errorCode, ErrorCode.INVALID_GROUP_ID);
    assert.equal((await c.joinGroup(req({ memberId: 'stale', sessionTimeoutMs: 6000 }))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.deepEqual(c.listGroups().groups, [], 'failed joins leave no group behind');
  });

  it('answers ILLEGAL_GENERATION and REBALANCE_IN_PROGRESS for stale or early requests', async () => {
    const { c } = setup();
    const j = await stableSingle(c);
    const m = j.memberId;
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 0, memberId: m, groupInstanceId: null })).errorCode, ErrorCode.ILLEGAL_GENERATION);
    assert.equal((await c.syncGroup({ groupId: 'g', generationId: 7, memberId: m, groupInstanceId: null, assignments: [] })).errorCode, ErrorCode.ILLEGAL_GENERATION);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: 'who', groupInstanceId: null })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal((await c.heartbeat({ groupId: 'nope', generationId: 1, memberId: m, groupInstanceId: null })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal((await c.syncGroup({ groupId: 'g', generationId: 1, memberId: m, groupInstanceId: null, protocolType: 'connect', assignments: [] })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    assert.equal((await c.syncGroup({ groupId: 'g', generationId: 1, memberId: m, groupInstanceId: null, protocolName: 'roundrobin', assignments: [] })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    // A second member puts the group into PreparingRebalance: syncs of generation 1 must rejoin.
    const newcomer = track(c.joinGroup(req()));
    await flush();
    assert.equal(newcomer.done, false);
    assert.equal((await c.syncGroup({ groupId: 'g', generationId: 1, memberId: m, groupInstanceId: null, assignments: [] })).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    const rj = await c.joinGroup(req({ memberId: m }));
    await flush();
    assert.equal(rj.generationId, 2);
    assert.equal(newcomer.value!.generationId, 2);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: m, groupInstanceId: null })).errorCode, ErrorCode.ILLEGAL_GENERATION);
  });

  it('a follower rejoining a Stable group with the same metadata gets the current generation without a rebalance', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 3000 });
    const { joins } = await stableThree(c, timer);
    const follower = joins.find((j) => j.leader !== j.memberId)!;
    const rj = await c.joinGroup(req({ memberId: follower.memberId, clientId: 'c1' }));
    assert.equal(rj.generationId, 1);
    assert.equal(rj.leader, follower.leader);
    assert.equal(c.describeGroup('g').groupState, 'Stable');
    // With changed metadata it forces a rebalance.
    const changed = track(c.joinGroup(req({ memberId: follower.memberId, protocols: [P('range', 'v2')] })));
    await flush();
    assert.equal(changed.done, false);
    assert.equal(c.describeGroup('g').groupState, 'PreparingRebalance');
  });
});

describe('GroupCoordinator: expirations', () => {
  it('a member that stops heartbeating is removed after its session timeout', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const ja = track(c.joinGroup(req({ sessionTimeoutMs: 10_000 })));
    const jb = track(c.joinGroup(req({ sessionTimeoutMs: 10_000 })));
    await timer.advance(200);
    const [a, b] = [ja.value!, jb.value!];
    const leader = a.leader === a.memberId ? a : b;
    await Promise.all([a, b].map((j) => c.syncGroup({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null, assignments: j === leader ? [{ memberId: a.memberId, assignment: buf('A') }, { memberId: b.memberId, assignment: buf('B') }] : [] })));
    // Only a heartbeats.
    for (let i = 0; i < 3; i++) {
      await timer.advance(3000);
      assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null })).errorCode, ErrorCode.NONE);
    }
    assert.equal(c.groups()[0]!.members.length, 2, 'b is still within its session (9100 ms < 10000 ms)');
    await timer.advance(1000);
    assert.equal(c.groups()[0]!.members.length, 1);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: b.memberId, groupInstanceId: null })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null })).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    const rj = await c.joinGroup(req({ memberId: a.memberId }));
    assert.equal(rj.generationId, 2);
    assert.deepEqual(rj.members.map((m) => m.memberId), [a.memberId]);
  });

  it('a member that does not rejoin within the rebalance timeout is removed', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const ja = track(c.joinGroup(req({ sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 5000 })));
    const jb = track(c.joinGroup(req({ sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 5000 })));
    await timer.advance(200);
    const [a, b] = [ja.value!, jb.value!];
    for (const j of [a, b]) {
      void c.syncGroup({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null, assignments: [] });
    }
    await flush();
    assert.equal(c.describeGroup('g').groupState, 'Stable');
    const leader = a.leader === a.memberId ? a : b;
    const silent = leader === a ? b : a;
    // The leader rejoins (forcing a rebalance); the other never does.
    const rj = track(c.joinGroup(req({ memberId: leader.memberId, sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 5000 })));
    await timer.advance(4999);
    assert.equal(rj.done, false);
    await timer.advance(1);
    assert.equal(rj.value!.errorCode, ErrorCode.NONE);
    assert.equal(rj.value!.generationId, 2);
    assert.deepEqual(rj.value!.members.map((m) => m.memberId), [leader.memberId]);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: silent.memberId, groupInstanceId: null })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('members that never send SyncGroup are removed after the rebalance timeout', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const ja = track(c.joinGroup(req({ sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 5000 })));
    const jb = track(c.joinGroup(req({ sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 5000 })));
    await timer.advance(200);
    const leader = [ja.value!, jb.value!].find((j) => j.leader === j.memberId)!;
    const other = [ja.value!, jb.value!].find((j) => j !== leader)!;
    await c.syncGroup({ groupId: 'g', generationId: 1, memberId: leader.memberId, groupInstanceId: null, assignments: [] });
    await timer.advance(5000);
    const snap = c.groups()[0]!;
    assert.deepEqual(snap.members.map((m) => m.memberId), [leader.memberId]);
    assert.equal(snap.state, 'PreparingRebalance');
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: other.memberId, groupInstanceId: null })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a parked JoinGroup of a member that gets removed is answered UNKNOWN_MEMBER_ID', async () => {
    const { c, timer } = setup({ newMemberJoinTimeoutMs: 20_000 });
    const a = await stableSingle(c, { sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 60_000 });
    const newcomer = track(c.joinGroup(req({ sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 60_000 })));
    // a keeps its session alive but never rejoins.
    for (let t = 0; t < 19; t++) {
      await timer.advance(1000);
      assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null })).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    }
    assert.equal(newcomer.done, false);
    await timer.advance(1000);
    assert.equal(newcomer.value?.errorCode, ErrorCode.UNKNOWN_MEMBER_ID, 'the new member join timeout expired');
    await timer.advance(40_000);
    assert.equal(c.describeGroup('g').groupState, 'Empty', 'a never rejoined and was removed at the rebalance timeout');
    assert.equal(c.groups()[0]!.generationId, 2);
  });
});

describe('GroupCoordinator: member ids and static membership', () => {
  it('JoinGroup v4+: MEMBER_ID_REQUIRED, then the rejoin with the given id is accepted', async () => {
    const { c, timer } = setup();
    const first = await c.joinGroup(req({ clientId: 'kafkajs', requireKnownMemberId: true }));
    assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
    assert.equal(first.memberId, 'kafkajs-uuid1');
    assert.deepEqual(c.groups()[0]!.pendingMembers, ['kafkajs-uuid1']);
    const second = await c.joinGroup(req({ clientId: 'kafkajs', memberId: first.memberId, requireKnownMemberId: true }));
    assert.equal(second.errorCode, ErrorCode.NONE);
    assert.equal(second.memberId, first.memberId);
    assert.equal(second.leader, first.memberId);
    // A pending id that is never used expires after the session timeout.
    const third = await c.joinGroup(req({ requireKnownMemberId: true, sessionTimeoutMs: 5000 }));
    assert.equal(third.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
    await timer.advance(5000);
    assert.deepEqual(c.groups()[0]!.pendingMembers, []);
    const late = await c.joinGroup(req({ memberId: third.memberId, requireKnownMemberId: true }));
    assert.equal(late.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a pending member id holds back the join phase until it joins', async () => {
    const { c } = setup();
    const a = await stableSingle(c);
    const pending = await c.joinGroup(req({ requireKnownMemberId: true }));
    assert.equal(pending.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
    const rj = track(c.joinGroup(req({ memberId: a.memberId }))); // the leader rejoins
    await flush();
    assert.equal(rj.done, false, 'waits for the pending member');
    const nj = await c.joinGroup(req({ memberId: pending.memberId, requireKnownMemberId: true }));
    await flush();
    assert.equal(nj.generationId, 2);
    assert.equal(rj.value!.members.length, 2);
  });

  it('a static member restarting with a new member id replaces the old one without a rebalance', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 3000 });
    const { joins } = await stableThree(c, timer, [{ groupInstanceId: 'i0' }, { groupInstanceId: 'i1' }, {}]);
    assert.match(joins[1]!.memberId, /^i1-uuid/, 'static member ids start with the instance id');
    const old = joins[1]!;
    const restarted = await c.joinGroup(req({ groupInstanceId: 'i1', clientId: 'c1-new' }));
    assert.equal(restarted.errorCode, ErrorCode.NONE);
    assert.notEqual(restarted.memberId, old.memberId);
    assert.equal(restarted.generationId, 1, 'no new generation');
    assert.equal(restarted.leader, old.leader);
    assert.notEqual(restarted.leader, restarted.memberId);
    assert.equal(c.describeGroup('g').groupState, 'Stable');
    const s = await c.syncGroup({ groupId: 'g', generationId: 1, memberId: restarted.memberId, groupInstanceId: 'i1', assignments: [] });
    assert.equal(s.assignment.toString(), 'a-1', 'takes over the old assignment');
    // The old incarnation is fenced.
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: old.memberId, groupInstanceId: 'i1' })).errorCode, ErrorCode.FENCED_INSTANCE_ID);
    assert.equal((await c.syncGroup({ groupId: 'g', generationId: 1, memberId: old.memberId, groupInstanceId: 'i1', assignments: [] })).errorCode, ErrorCode.FENCED_INSTANCE_ID);
    assert.equal((await c.joinGroup(req({ memberId: old.memberId, groupInstanceId: 'i1' }))).errorCode, ErrorCode.FENCED_INSTANCE_ID);
    assert.equal(c.validateCommit({ groupId: 'g', generationId: 1, memberId: old.memberId, groupInstanceId: 'i1' }), ErrorCode.FENCED_INSTANCE_ID);
    const leave = await c.leaveGroup({ groupId: 'g', members: [{ memberId: old.memberId, groupInstanceId: 'i1' }] });
    assert.equal(leave.members[0]!.errorCode, ErrorCode.FENCED_INSTANCE_ID);
    // Others are not disturbed.
    for (const j of [joins[0]!, joins[2]!]) {
      assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: j === joins[0] ? 'i0' : null })).errorCode, ErrorCode.NONE);
    }
    // An unknown instance id with a member id is told to start over.
    assert.equal((await c.joinGroup(req({ memberId: joins[2]!.memberId, groupInstanceId: 'i9' }))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    // Admin removal by instance id.
    const removed = await c.leaveGroup({ groupId: 'g', members: [{ memberId: '', groupInstanceId: 'i1' }] });
    assert.equal(removed.members[0]!.errorCode, ErrorCode.NONE);
    assert.equal(c.describeGroup('g').groupState, 'PreparingRebalance');
  });

  it('static members that do not rejoin stay through the join phase, then must sync in time', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const js = track(c.joinGroup(req({ groupInstanceId: 's', sessionTimeoutMs: 20_000, rebalanceTimeoutMs: 5000 })));
    const jd = track(c.joinGroup(req({ sessionTimeoutMs: 20_000, rebalanceTimeoutMs: 5000 })));
    await timer.advance(200);
    const [st, dy] = [js.value!, jd.value!];
    await Promise.all([
      c.syncGroup({ groupId: 'g', generationId: 1, memberId: st.memberId, groupInstanceId: 's', assignments: [] }),
      c.syncGroup({ groupId: 'g', generationId: 1, memberId: dy.memberId, groupInstanceId: null, assignments: [] }),
    ]);
    // The dynamic member changes its metadata; the static one stays silent.
    const rj = track(c.joinGroup(req({ memberId: dy.memberId, protocols: [P('range', 'v2')], sessionTimeoutMs: 20_000, rebalanceTimeoutMs: 5000 })));
    await timer.advance(5000);
    assert.equal(rj.value!.generationId, 2);
    assert.equal(rj.value!.leader, dy.memberId);
    assert.deepEqual(rj.value!.members.map((m) => m.memberId).sort(), [st.memberId, dy.memberId].sort(), 'the static member is kept');
    const s = await c.syncGroup({ groupId: 'g', generationId: 2, memberId: dy.memberId, groupInstanceId: null, assignments: [] });
    assert.equal(s.errorCode, ErrorCode.NONE);
    assert.equal(c.groups()[0]!.members.length, 2);
    // It never sends SyncGroup for generation 2: removed after the rebalance timeout (Kafka 3.1+).
    await timer.advance(5000);
    assert.deepEqual(c.groups()[0]!.members.map((m) => m.memberId), [dy.memberId]);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 2, memberId: dy.memberId, groupInstanceId: null })).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it('a silent static member is removed when its session expires', async () => {
    const { c, timer } = setup();
    const st = await stableSingle(c, { groupInstanceId: 's', sessionTimeoutMs: 20_000 });
    await timer.advance(19_999);
    assert.equal(c.groups()[0]!.members.length, 1);
    await timer.advance(1);
    assert.equal(c.describeGroup('g').groupState, 'Empty');
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: st.memberId, groupInstanceId: 's' })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

describe('GroupCoordinator: protocols', () => {
  it('selects the protocol every member supports, by member votes', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const joins = [
      track(c.joinGroup(req({ protocols: [P('roundrobin'), P('range')] }))),
      track(c.joinGroup(req({ protocols: [P('roundrobin'), P('range')] }))),
      track(c.joinGroup(req({ protocols: [P('range'), P('roundrobin')] }))),
    ];
    await timer.advance(200);
    assert.deepEqual(joins.map((j) => j.value!.protocolName), ['roundrobin', 'roundrobin', 'roundrobin']);
    const leader = joins.map((j) => j.value!).find((j) => j.leader === j.memberId)!;
    assert.deepEqual(leader.members.map((m) => m.metadata.toString()), ['roundrobin', 'roundrobin', 'roundrobin']);

    const { c: c2, timer: t2 } = setup({ initialRebalanceDelayMs: 100 });
    const joins2 = [
      track(c2.joinGroup(req({ protocols: [P('sticky'), P('roundrobin'), P('range')] }))),
      track(c2.joinGroup(req({ protocols: [P('roundrobin'), P('range')] }))),
      track(c2.joinGroup(req({ protocols: [P('range')] }))),
    ];
    await t2.advance(200);
    assert.deepEqual(joins2.map((j) => j.value!.protocolName), ['range', 'range', 'range'], 'the only common one');
  });

  it('INCONSISTENT_GROUP_PROTOCOL for no common protocol or another protocol type', async () => {
    const { c } = setup();
    const a = await stableSingle(c, { protocols: [P('range'), P('roundrobin')] });
    const noCommon = await c.joinGroup(req({ protocols: [P('sticky')] }));
    assert.deepEqual(noCommon, { errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL, generationId: -1, protocolType: '', protocolName: '', leader: '', memberId: '', members: [] });
    assert.equal((await c.joinGroup(req({ protocolType: 'connect', protocols: [P('range')] }))).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    assert.equal((await c.joinGroup(req({ groupId: 'h', protocolType: '' }))).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    assert.equal((await c.joinGroup(req({ groupId: 'h', protocols: [] }))).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    assert.equal(c.describeGroup('g').groupState, 'Stable', 'rejected joins do not disturb the group');
    // The only member may change its protocols freely.
    const rj = await c.joinGroup(req({ memberId: a.memberId, protocols: [P('sticky')] }));
    assert.equal(rj.errorCode, ErrorCode.NONE);
    assert.equal(rj.protocolName, 'sticky');
    assert.equal(rj.generationId, 2);
  });
});

describe('GroupCoordinator: DeleteGroups, offsets, close', () => {
  it('deletes only empty groups, and groups known by their offsets', async () => {
    const offsets = new Set(['offsets-only', 'g']);
    const deleted: string[] = [];
    const { c } = setup({
      offsets: {
        offsetsExist: (g) => offsets.has(g),
        deleteOffsets: async (g) => {
          deleted.push(g);
          offsets.delete(g);
        },
        groupIdsWithOffsets: () => offsets,
      },
    });
    const a = await stableSingle(c);
    assert.deepEqual(c.listGroups().groups.map((g) => [g.groupId, g.groupState]), [['g', 'Stable'], ['offsets-only', 'Empty']]);
    assert.equal(c.describeGroup('offsets-only').groupState, 'Empty');
    assert.equal(c.describeGroup('unknown').groupState, 'Dead');
    assert.deepEqual(await c.deleteGroups(['g', 'unknown', 'offsets-only']), [
      { groupId: 'g', errorCode: ErrorCode.NON_EMPTY_GROUP },
      { groupId: 'unknown', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
      { groupId: 'offsets-only', errorCode: ErrorCode.NONE },
    ]);
    await c.leaveGroup({ groupId: 'g', members: [{ memberId: a.memberId, groupInstanceId: null }] });
    assert.equal(c.describeGroup('g').groupState, 'Empty');
    assert.equal(c.groups()[0]!.generationId, 2, 'the empty generation');
    assert.deepEqual(await c.deleteGroups(['g']), [{ groupId: 'g', errorCode: ErrorCode.NONE }]);
    assert.deepEqual(deleted, ['offsets-only', 'g']);
    assert.deepEqual(c.listGroups().groups, []);
    assert.equal(c.describeGroup('g').groupState, 'Dead');
    assert.deepEqual(await c.deleteGroups(['g']), [{ groupId: 'g', errorCode: ErrorCode.GROUP_ID_NOT_FOUND }]);
    // The group id can be used again from scratch.
    const again = await c.joinGroup(req());
    assert.equal(again.generationId, 1);
  });

  it('validates offset commits as Kafka does', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    // No group: a standalone commit is fine (and makes the group known), a generation is not.
    assert.equal(c.validateCommit({ groupId: 'simple', generationId: -1, memberId: '', groupInstanceId: null }), ErrorCode.NONE);
    assert.deepEqual(c.listGroups().groups, [{ groupId: 'simple', protocolType: '', groupState: 'Empty' }]);
    assert.equal(c.validateCommit({ groupId: 'simple', generationId: -1, memberId: '', groupInstanceId: null }), ErrorCode.NONE);
    assert.equal(c.validateCommit({ groupId: 'none', generationId: 3, memberId: 'm', groupInstanceId: null }), ErrorCode.ILLEGAL_GENERATION);
    assert.equal(c.validateCommit({ groupId: 'none', generationId: -1, memberId: 'm', groupInstanceId: null }), ErrorCode.UNKNOWN_MEMBER_ID);

    const ja = track(c.joinGroup(req()));
    const jb = track(c.joinGroup(req()));
    await timer.advance(200);
    const [a, b] = [ja.value!, jb.value!];
    const commit = (memberId: string, generationId: number) => c.validateCommit({ groupId: 'g', generationId, memberId, groupInstanceId: null });
    assert.equal(commit(a.memberId, 1), ErrorCode.REBALANCE_IN_PROGRESS, 'CompletingRebalance');
    const leader = a.leader === a.memberId ? a : b;
    await Promise.all([a, b].map((j) => c.syncGroup({ groupId: 'g', generationId: 1, memberId: j.memberId, groupInstanceId: null, assignments: [] })));
    assert.equal(commit(a.memberId, 1), ErrorCode.NONE);
    assert.equal(commit(a.memberId, 2), ErrorCode.ILLEGAL_GENERATION);
    assert.equal(commit('stranger', 1), ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(commit('', -1), ErrorCode.UNKNOWN_MEMBER_ID, 'no standalone commits into an active group');
    assert.equal(c.validateCommit({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, transactional: true }), ErrorCode.NONE);
    // PreparingRebalance: the previous generation may still commit.
    void c.joinGroup(req({ memberId: leader.memberId }));
    await flush();
    assert.equal(c.describeGroup('g').groupState, 'PreparingRebalance');
    assert.equal(commit(b.memberId, 1), ErrorCode.NONE);
  });

  it('a commit counts as a heartbeat', async () => {
    const { c, timer } = setup();
    const a = await stableSingle(c, { sessionTimeoutMs: 10_000 });
    for (let i = 0; i < 5; i++) {
      await timer.advance(6000);
      assert.equal(c.validateCommit({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }), ErrorCode.NONE);
    }
    assert.equal(c.groups()[0]!.members.length, 1);
  });

  it('enforces the maximum group size', async () => {
    const { c } = setup({ maxGroupSize: 1 });
    await stableSingle(c);
    assert.equal((await c.joinGroup(req())).errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  });

  it('close() answers parked requests and cancels every timer', async () => {
    const { c, timer } = setup({ initialRebalanceDelayMs: 100 });
    const ja = track(c.joinGroup(req()));
    const jb = track(c.joinGroup(req()));
    await timer.advance(200);
    const follower = [ja.value!, jb.value!].find((j) => j.leader !== j.memberId)!;
    const parkedSync = track(c.syncGroup({ groupId: 'g', generationId: 1, memberId: follower.memberId, groupInstanceId: null, assignments: [] }));
    const parkedJoin = track(c.joinGroup(req({ groupId: 'other' }))); // in the initial delay
    await flush();
    assert.equal(parkedSync.done, false);
    assert.equal(parkedJoin.done, false);
    c.close();
    await flush();
    assert.equal(parkedSync.value?.errorCode, ErrorCode.NOT_COORDINATOR);
    assert.equal(parkedJoin.value?.errorCode, ErrorCode.NOT_COORDINATOR);
    assert.equal(timer.pending, 0);
    assert.equal((await c.joinGroup(req())).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
    assert.equal((await c.heartbeat({ groupId: 'g', generationId: 1, memberId: follower.memberId, groupInstanceId: null })).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
    assert.equal(c.validateCommit({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null }), ErrorCode.COORDINATOR_NOT_AVAILABLE);
    assert.equal(c.listGroups().errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
  });

  it('reports every state transition', async () => {
    const changes: GroupStateChange[] = [];
    const { c } = setup({ onStateChange: (ch) => changes.push(ch) });
    const a = await stableSingle(c);
    await c.leaveGroup({ groupId: 'g', members: [{ memberId: a.memberId, groupInstanceId: null }] });
    await c.deleteGroups(['g']);
    assert.deepEqual(
      changes.map((ch) => `${ch.from}>${ch.to}@${ch.generationId}`),
      ['Empty>PreparingRebalance@0', 'PreparingRebalance>CompletingRebalance@1', 'CompletingRebalance>Stable@1', 'Stable>PreparingRebalance@1', 'PreparingRebalance>Empty@2', 'Empty>Dead@2'],
    );
    assert.ok(changes.every((ch) => ch.reason !== ''));
  });
});

// ------------------------------------------------------------------ simulation

interface SimClient {
  n: number;
  memberId: string;
  instanceId: string | null;
  generation: number;
  state: 'joining' | 'syncing' | 'stable' | 'dead';
  /** A zombie: it stopped talking (crashed without leaving). */
  silent: boolean;
  requireKnown: boolean;
  metaVersion: number;
  partitions: number[];
}

const PARTITIONS = 12;

async function simulate(seed: number): Promise<{ generations: number; steps: number }> {
  const rand = mulberry32(seed);
  const pick = <T>(xs: T[]): T | undefined => (xs.length === 0 ? undefined : xs[Math.floor(rand() * xs.length)]);
  const initialRebalanceDelayMs = rand() < 0.5 ? 0 : 3000;
  const { c, timer } = setup({ initialRebalanceDelayMs });
  const clients: SimClient[] = [];
  const leadersByGen = new Map<number, Set<string>>();
  const staticInstanceOf = new Map<string, string>();
  const assignmentByGen = new Map<number, Map<string, number[]>>();
  let lastGeneration = 0;
  let nextInstance = 0;
  const failures: string[] = [];
  const fail = (msg: string): void => void failures.push(`seed ${seed}: ${msg}`);

  const base = (cl: SimClient): Partial<JoinGroupParams> => ({
    memberId: cl.memberId,
    groupInstanceId: cl.instanceId,
    requireKnownMemberId: cl.requireKnown,
    clientId: `sim${cl.n}`,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 15_000,
    protocols: [P('range', `v${cl.metaVersion}`)],
  });

  const rejoin = (cl: SimClient, resetId: boolean): void => {
    if (resetId) cl.memberId = '';
    startJoin(cl);
  };

  const onSync = (cl: SimClient, r: SyncGroupResult): void => {
    if (cl.silent || cl.state === 'dead') return;
    switch (r.errorCode) {
      case ErrorCode.NONE: {
        cl.state = 'stable';
        cl.partitions = JSON.parse(r.assignment.toString() || '[]') as number[];
        const expected = assignmentByGen.get(cl.generation)?.get(cl.memberId);
        if (expected && JSON.stringify(expected) !== JSON.stringify(cl.partitions)) fail(`member ${cl.memberId} got another assignment than its leader gave`);
        return;
      }
      case ErrorCode.REBALANCE_IN_PROGRESS:
      case ErrorCode.ILLEGAL_GENERATION:
        return rejoin(cl, false);
      case ErrorCode.UNKNOWN_MEMBER_ID:
        return rejoin(cl, true);
      case ErrorCode.FENCED_INSTANCE_ID:
        cl.state = 'dead';
        return;
      default:
        fail(`unexpected SyncGroup error ${r.errorCode}`);
    }
  };

  const onJoin = (cl: SimClient, r: JoinGroupResult): void => {
    if (cl.silent || cl.state === 'dead') return;
    switch (r.errorCode) {
      case ErrorCode.NONE: {
        cl.memberId = r.memberId;
        cl.generation = r.generationId;
        if (cl.instanceId !== null) staticInstanceOf.set(r.memberId, `instance:${cl.instanceId}`);
        cl.state = 'syncing';
        let leaders = leadersByGen.get(r.generationId);
        if (!leaders) leadersByGen.set(r.generationId, (leaders = new Set()));
        leaders.add(r.leader);
        let assignments: Array<{ memberId: string; assignment: Buffer }> = [];
        if (r.leader === r.memberId) {
          const ids = r.members.map((m) => m.memberId).sort();
          const plan = new Map<string, number[]>(ids.map((id) => [id, []]));
          for (let p = 0; p < PARTITIONS; p++) plan.get(ids[p % ids.length]!)!.push(p);
          const prev = assignmentByGen.get(r.generationId);
          if (prev && JSON.stringify([...prev]) !== JSON.stringify([...plan])) fail(`two different assignments for generation ${r.generationId}`);
          assignmentByGen.set(r.generationId, plan);
          assignments = [...plan].map(([memberId, ps]) => ({ memberId, assignment: Buffer.from(JSON.stringify(ps)) }));
        }
        void c.syncGroup({ groupId: 'g', generationId: r.generationId, memberId: r.memberId, groupInstanceId: cl.instanceId, assignments }).then((s) => onSync(cl, s));
        return;
      }
      case ErrorCode.MEMBER_ID_REQUIRED:
        cl.memberId = r.memberId;
        return startJoin(cl);
      case ErrorCode.REBALANCE_IN_PROGRESS:
        return rejoin(cl, false);
      case ErrorCode.UNKNOWN_MEMBER_ID:
        return rejoin(cl, true);
      case ErrorCode.FENCED_INSTANCE_ID:
        cl.state = 'dead';
        return;
      default:
        fail(`unexpected JoinGroup error ${r.errorCode}`);
    }
  };

  function startJoin(cl: SimClient): void {
    cl.state = 'joining';
    cl.partitions = [];
    void c.joinGroup(req(base(cl))).then((r) => onJoin(cl, r));
  }

  const spawn = (instanceId: string | null): SimClient => {
    const cl: SimClient = { n: clients.length, memberId: '', instanceId, generation: -1, state: 'joining', silent: false, requireKnown: rand() < 0.5, metaVersion: 0, partitions: [] };
    clients.push(cl);
    startJoin(cl);
    return cl;
  };

  const heartbeatAll = (): void => {
    for (const cl of clients) {
      if (cl.silent || cl.state !== 'stable') continue;
      void c.heartbeat({ groupId: 'g', generationId: cl.generation, memberId: cl.memberId, groupInstanceId: cl.instanceId }).then((r) => {
        if (cl.silent || cl.state !== 'stable') return;
        if (r.errorCode === ErrorCode.NONE) return;
        if (r.errorCode === ErrorCode.REBALANCE_IN_PROGRESS || r.errorCode === ErrorCode.ILLEGAL_GENERATION) return rejoin(cl, false);
        if (r.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) return rejoin(cl, true);
        if (r.errorCode === ErrorCode.FENCED_INSTANCE_ID) {
          cl.state = 'dead';
          return;
        }
        fail(`unexpected Heartbeat error ${r.errorCode}`);
      });
    }
  };

  const check = (step: number): void => {
    for (const [gen, leaders] of leadersByGen) {
      // A restarted static leader is reported under its new id later in the same generation.
      const distinct = new Set([...leaders].map((id) => staticInstanceOf.get(id) ?? id));
      if (distinct.size > 1) fail(`step ${step}: generation ${gen} has leaders ${[...leaders].join(',')}`);
    }
    const snap = c.groups().find((g) => g.groupId === 'g');
    if (!snap) return;
    if (snap.generationId < lastGeneration) fail(`step ${step}: generation went back`);
    lastGeneration = snap.generationId;
    const leaderFlags = snap.members.filter((m) => m.isLeader);
    if (leaderFlags.length > 1 || (snap.members.length > 0 && leaderFlags.length !== 1)) fail(`step ${step}: ${leaderFlags.length} leaders among members`);
    const memberIds = new Set(snap.members.map((m) => m.memberId));
    const liveMembers = clients.filter((cl) => !cl.silent && cl.state !== 'dead' && memberIds.has(cl.memberId));
    const stableMembers = liveMembers.filter((cl) => cl.state === 'stable');
    // All live stable members are in one generation, and the group's when it is Stable.
    const gens = new Set(stableMembers.map((cl) => cl.generation));
    if (gens.size > 1) fail(`step ${step}: stable members in generations ${[...gens].join(',')}`);
    if (snap.state === 'Stable') {
      for (const cl of liveMembers) {
        if (cl.state !== 'stable' || cl.generation !== snap.generationId) fail(`step ${step}: member ${cl.memberId} is ${cl.state}@${cl.generation} in Stable group @${snap.generationId}`);
        const v = c.validateCommit({ groupId: 'g', generationId: cl.generation, memberId: cl.memberId, groupInstanceId: cl.instanceId });
        if (v !== ErrorCode.NONE) fail(`step ${step}: commit of ${cl.memberId} refused with ${v}`);
      }
    }
    // No partition owned twice, by members of one generation or across generations.
    const owner = new Map<number, string>();
    for (const cl of stableMembers) {
      for (const p of cl.partitions) {
        if (owner.has(p)) fail(`step ${step}: partition ${p} owned by ${owner.get(p)} and ${cl.memberId}`);
        owner.set(p, cl.memberId);
      }
    }
    // Zombies that were removed cannot commit.
    for (const cl of clients) {
      if (cl.memberId !== '' && cl.generation >= 0 && !memberIds.has(cl.memberId)) {
        const v = c.validateCommit({ groupId: 'g', generationId: cl.generation, memberId: cl.memberId, groupInstanceId: cl.instanceId });
        if (v === ErrorCode.NONE) fail(`step ${step}: removed member ${cl.memberId} may commit`);
      }
    }
  };

  const STEPS = 400;
  for (let step = 0; step < STEPS; step++) {
    const r = rand();
    const alive = clients.filter((cl) => !cl.silent && cl.state !== 'dead');
    const stable = alive.filter((cl) => cl.state === 'stable');
    const members = new Set(c.groups().find((g) => g.groupId === 'g')?.members.map((m) => m.memberId) ?? []);
    if (r < 0.1 && alive.length < 10) {
      spawn(rand() < 0.3 ? `inst-${nextInstance++}` : null);
    } else if (r < 0.16) {
      const cl = pick(stable);
      if (cl) {
        cl.state = 'dead';
        void c.leaveGroup({ groupId: 'g', members: [{ memberId: cl.memberId, groupInstanceId: cl.instanceId }] });
      }
    } else if (r < 0.21) {
      const cl = pick(stable);
      if (cl) cl.silent = true;
    } else if (r < 0.25) {
      // A static member restarts: the new incarnation fences the old one.
      const cl = pick(stable.filter((x) => x.instanceId !== null && members.has(x.memberId)));
      if (cl) {
        spawn(cl.instanceId);
        const hb = await c.heartbeat({ groupId: 'g', generationId: cl.generation, memberId: cl.memberId, groupInstanceId: cl.instanceId });
        if (hb.errorCode !== ErrorCode.FENCED_INSTANCE_ID) fail(`step ${step}: old static incarnation not fenced (${hb.errorCode})`);
        cl.state = 'dead';
      }
    } else if (r < 0.3) {
      const cl = pick(stable);
      if (cl) {
        cl.metaVersion += 1;
        startJoin(cl);
      }
    } else {
      heartbeatAll();
      await flush();
      await timer.advance(1000);
    }
    await flush();
    check(step);
    if (failures.length > 0) break;
  }
  // Quiet period: no more disruptions; the group must settle.
  for (let i = 0; i < 60 && failures.length === 0; i++) {
    heartbeatAll();
    await flush();
    await timer.advance(1000);
    check(STEPS + i);
  }
  assert.deepEqual(failures, []);
  const snap = c.groups().find((g) => g.groupId === 'g');
  const alive = clients.filter((cl) => !cl.silent && cl.state !== 'dead');
  if (alive.length > 0) {
    assert.ok(snap, `seed ${seed}: the group exists`);
    assert.equal(snap.state, 'Stable', `seed ${seed}: settled`);
    assert.deepEqual(snap.members.map((m) => m.memberId).sort(), alive.map((cl) => cl.memberId).sort(), `seed ${seed}: exactly the live clients are members`);
    const owned = alive.flatMap((cl) => cl.partitions).sort((a, b) => a - b);
    assert.deepEqual(owned, Array.from({ length: PARTITIONS }, (_, i) => i), `seed ${seed}: every partition owned once`);
  } else {
    assert.ok(!snap || snap.state === 'Empty', `seed ${seed}: no live member, group empty`);
  }
  c.close();
  return { generations: lastGeneration, steps: STEPS };
}

describe('GroupCoordinator: seeded random simulation', () => {
  for (const seed of [1, 7, 42, 1234, 99_991]) {
    it(`keeps the group invariants (seed ${seed})`, async () => {
      const { generations } = await simulate(seed);
      assert.ok(generations > 3, `seed ${seed}: exercised several generations (${generations})`);
    });
  }
});

describe('guardedSystemTimer', () => {
  it('reports a failing callback instead of throwing it out of the timer', async () => {
    const { guardedSystemTimer } = await import('../../../src/broker/kafka/group/timer.js');
    const errors: unknown[] = [];
    const timer = guardedSystemTimer((err) => errors.push(err));
    let ran = false;
    timer.setTimeout(() => {
      throw new Error('boom');
    }, 1);
    timer.setTimeout(() => (ran = true), 5);
    const cancelled = timer.setTimeout(() => errors.push('should not run'), 5);
    cancelled.cancel();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ran, true);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /boom/);
  });
});
