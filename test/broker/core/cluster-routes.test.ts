import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalRoutes, RemoteRoutes, validRoute, type RemoteShare } from '../../../src/broker/core/cluster-routes.js';

/** Applies deltas to a peer's view the way the transport does, so a test can check both ends agree. */
function peerView(local: LocalRoutes, remote: RemoteRoutes, peer: number): void {
  const d = local.takeDelta();
  if (d) remote.apply(peer, d.added, d.removed);
}

describe('LocalRoutes', () => {
  it('counts subscriptions per route: many sessions on one filter are one route', () => {
    const r = new LocalRoutes();
    let changes = 0;
    r.onChange = () => changes++;
    for (let i = 0; i < 10_000; i++) r.add('sensors/+/temp');
    assert.equal(r.size, 1);
    assert.equal(r.count('sensors/+/temp'), 10_000);
    assert.equal(changes, 1, 'one change pending, reported once');
    assert.deepEqual(r.takeDelta(), { added: ['sensors/+/temp'], removed: [] });
    for (let i = 0; i < 9_999; i++) assert.equal(r.remove('sensors/+/temp'), false);
    assert.equal(r.takeDelta(), undefined, 'still held by one session: no delta');
    assert.equal(r.remove('sensors/+/temp'), true);
    assert.deepEqual(r.takeDelta(), { added: [], removed: ['sensors/+/temp'] });
    assert.equal(r.size, 0);
    assert.equal(r.remove('sensors/+/temp'), false, 'removing an unknown route is a no-op');
    assert.equal(r.takeDelta(), undefined);
  });

  it('coalesces changes between deltas: added and removed in between is nothing', () => {
    const r = new LocalRoutes();
    r.add('a');
    r.remove('a');
    r.add('b');
    assert.deepEqual(r.takeDelta(), { added: ['b'], removed: [] });
    // Replaced subscription (remove then add in one turn): no change for peers.
    r.remove('b');
    r.add('b');
    assert.equal(r.takeDelta(), undefined);
    assert.equal(r.count('b'), 1);
  });

  it('shared routes are separate from plain ones and listed sorted with their counts', () => {
    const r = new LocalRoutes();
    r.add('$share/g1/x/#');
    r.add('$share/g1/x/#');
    r.add('x/#');
    r.add('a/b');
    assert.deepEqual(r.routes(), ['$share/g1/x/#', 'a/b', 'x/#']);
    assert.deepEqual(r.entries(), [
      ['$share/g1/x/#', 2],
      ['a/b', 1],
      ['x/#', 1],
    ]);
  });

  it('a full sync taken after the pending delta agrees with every later delta (a link opening mid-change)', () => {
    const local = new LocalRoutes();
    const old = new RemoteRoutes();
    local.add('keep');
    local.add('gone');
    peerView(local, old, 2);
    // Changes pending when a new link opens...
    local.remove('gone');
    local.add('new');
    // ...are sent to the old links first, then the new link gets a full sync.
    peerView(local, old, 2);
    const fresh = new RemoteRoutes();
    fresh.sync(3, local.routes());
    // A route added and removed again afterwards reaches both the same way.
    local.add('brief');
    local.remove('new');
    const d = local.takeDelta()!;
    for (const [peer, view] of [
      [2, old],
      [3, fresh],
    ] as const)
      view.apply(peer, d.added, d.removed);
    assert.deepEqual(old.routesOf(2), ['brief', 'keep']);
    assert.deepEqual(fresh.routesOf(3), ['brief', 'keep']);
  });
});

describe('RemoteRoutes', () => {
  it('matches topics to the peers with a matching filter, each peer once', () => {
    const r = new RemoteRoutes();
    r.sync(2, ['a/+', 'a/#', 'a/b']);
    r.sync(3, ['#']);
    r.sync(4, ['x/y']);
    const peers = (topic: string) => {
      const out: number[] = [];
      r.matchPeers(topic, out);
      return out.sort();
    };
    assert.deepEqual(peers('a/b'), [2, 3]);
    assert.deepEqual(peers('x/y'), [3, 4]);
    assert.deepEqual(peers('$SYS/x'), [], "'#' does not match $ topics");
    assert.equal(r.size, 5);
    assert.equal(r.count(2), 3);
    assert.equal(r.matches('q'), true);
    assert.equal(r.matches('$q'), false);
  });

  it('deltas add and remove routes; a full sync replaces everything known of the peer', () => {
    const r = new RemoteRoutes();
    r.apply(2, ['a', 'b'], []);
    r.apply(2, ['c'], ['a', 'not-there']);
    assert.deepEqual(r.routesOf(2), ['b', 'c']);
    r.apply(2, ['c'], []); // already there: no double count
    assert.equal(r.size, 2);
    r.sync(2, ['c', 'd']);
    assert.deepEqual(r.routesOf(2), ['c', 'd']);
    const out: number[] = [];
    r.matchPeers('b', out);
    assert.deepEqual(out, [], 'a route dropped by the sync no longer matches');
    assert.equal(r.size, 2);
  });

  it('a lost peer drops out of the table and out of matching', () => {
    const r = new RemoteRoutes();
    r.sync(2, ['t/#', '$share/g/t/#']);
    r.sync(3, ['t/#', '$share/g/t/#']);
    assert.equal(r.dropPeer(3), true);
    assert.equal(r.dropPeer(3), false);
    assert.deepEqual(r.peers(), [2]);
    const out: number[] = [];
    r.matchPeers('t/1', out);
    assert.deepEqual(out, [2]);
    const shares: Array<[string, number[]]> = [];
    r.matchShared('t/1', (s) => shares.push([s.key, [...s.nodes]]));
    assert.deepEqual(shares, [['$share/g/t/#', [2]]]);
    r.dropPeer(2);
    assert.equal(r.size, 0);
    assert.equal(r.matches('t/1'), false);
  });

  it('ignores invalid routes from a peer', () => {
    const r = new RemoteRoutes();
    r.sync(2, ['a/#/b', '', 'ok/+', 42, '$share//x', '$share/g']);
    assert.deepEqual(r.routesOf(2), ['ok/+']);
    assert.equal(validRoute('a/#'), true);
    assert.equal(validRoute('a/#/b'), false);
  });

  it('shared routes: groups with members on several peers, one node picked per message', () => {
    const r = new RemoteRoutes();
    r.sync(2, ['$share/g/jobs/+']);
    r.sync(3, ['$share/g/jobs/+', '$share/other/jobs/+']);
    const found: RemoteShare[] = [];
    r.matchShared('jobs/1', (s) => found.push(s));
    assert.deepEqual(found.map((s) => [s.key, [...s.nodes]]).sort(), [
      ['$share/g/jobs/+', [2, 3]],
      ['$share/other/jobs/+', [3]],
    ]);
    const g = found.find((s) => s.key === '$share/g/jobs/+')!;
    // round_robin over this node (1, which has members too) and the peers in id order.
    const picks = Array.from({ length: 6 }, () => r.pickShareNode(g, 1, 'pub', 'round_robin'));
    assert.deepEqual(picks, [1, 2, 3, 1, 2, 3]);
    // Without local members only peers are candidates.
    const remoteOnly = Array.from({ length: 4 }, () => r.pickShareNode(g, undefined, 'pub', 'round_robin'));
    assert.deepEqual(new Set(remoteOnly), new Set([2, 3]));
    // hash_clientid: stable per publisher.
    const h1 = r.pickShareNode(g, 1, 'client-a', 'hash_clientid');
    for (let i = 0; i < 5; i++) assert.equal(r.pickShareNode(g, 1, 'client-a', 'hash_clientid'), h1);
    const spread = new Set(Array.from({ length: 50 }, (_, i) => r.pickShareNode(g, 1, `client-${i}`, 'hash_clientid')));
    assert.ok(spread.size >= 2, 'different publishers land on different nodes');
    // sticky: the same node until it stops being a candidate.
    const s1 = r.pickShareNode(g, undefined, 'p', 'sticky', () => 0.99);
    assert.equal(s1, 3);
    assert.equal(r.pickShareNode(g, undefined, 'p', 'sticky', () => 0), 3);
    r.dropPeer(3);
    assert.equal(r.pickShareNode(g, undefined, 'p', 'sticky', () => 0.99), 2);
    // random stays among the candidates.
    for (let i = 0; i < 20; i++) assert.ok([1, 2].includes(r.pickShareNode(g, 1, 'p', 'random')));
  });

  it('keeps the shared entry until its last peer leaves', () => {
    const r = new RemoteRoutes();
    r.apply(2, ['$share/g/a'], []);
    r.apply(3, ['$share/g/a'], []);
    r.apply(2, [], ['$share/g/a']);
    let nodes: number[] = [];
    r.matchShared('a', (s) => (nodes = [...s.nodes]));
    assert.deepEqual(nodes, [3]);
    r.apply(3, [], ['$share/g/a']);
    let hit = false;
    r.matchShared('a', () => (hit = true));
    assert.equal(hit, false);
  });
});
