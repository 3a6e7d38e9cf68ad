/**
 * The cluster route table (in the style of EMQX's routes): which topic filters
 * the sessions of each broker node subscribe to, so a message published on one
 * node is forwarded only to the nodes that have a matching subscription.
 *
 * A route is a filter as subscribed: a plain one ("a/+/c") or a shared one
 * ("$share/<group>/<filter>"). LocalRoutes counts this node's subscriptions per
 * route (10k sessions on one filter are one route) and says which routes
 * appeared or disappeared since peers were last told; RemoteRoutes holds what
 * each peer announced and matches topics against it.
 *
 * Pure data structures: the transport (broker/mqtt/cluster.ts) moves the
 * deltas and full syncs between nodes.
 */
import { TopicTree } from './topic-tree.js';
import { fnv1a32, mix32, parseSharedFilter, type SharedStrategy } from './shared-subscriptions.js';
import { topicFilterError } from './topic-names.js';

export interface RouteDelta {
  added: string[];
  removed: string[];
}

/** This node's routes, reference-counted by the subscriptions that hold them. */
export class LocalRoutes {
  private readonly counts = new Map<string, number>();
  /** Routes whose presence may have changed since the last takeDelta(). */
  private readonly dirty = new Set<string>();
  /** Routes peers were told of by the deltas so far (what a full sync taken right after takeDelta() holds). */
  private readonly announced = new Set<string>();
  /** Called once when a change becomes pending (again after each takeDelta()). */
  onChange: (() => void) | undefined;

  /** One more subscription holds the route. Returns true when the route is new. */
  add(route: string): boolean {
    const n = (this.counts.get(route) ?? 0) + 1;
    this.counts.set(route, n);
    if (n === 1) this.mark(route);
    return n === 1;
  }

  /** One subscription less holds the route. Returns true when that was the last one. */
  remove(route: string): boolean {
    const n = this.counts.get(route);
    if (n === undefined) return false;
    if (n > 1) {
      this.counts.set(route, n - 1);
      return false;
    }
    this.counts.delete(route);
    this.mark(route);
    return true;
  }

  has(route: string): boolean {
    return this.counts.has(route);
  }

  /** Subscriptions holding the route (0 when none). */
  count(route: string): number {
    return this.counts.get(route) ?? 0;
  }

  /** Distinct routes. */
  get size(): number {
    return this.counts.size;
  }

  /** Every route, sorted: the full sync a peer gets when its link (re)opens. Take the pending delta first (see takeDelta). */
  routes(): string[] {
    return [...this.counts.keys()].sort();
  }

  /** Every route with its subscription count, sorted by route. */
  entries(): Array<[route: string, subscriptions: number]> {
    return [...this.counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /**
   * The routes that appeared and disappeared since the last call (a route added
   * and removed in between is neither), or undefined when nothing changed. A
   * link that opens must get this delta sent to the other links before its own
   * full sync, so that the sync and later deltas agree.
   */
  takeDelta(): RouteDelta | undefined {
    if (this.dirty.size === 0) return undefined;
    const added: string[] = [];
    const removed: string[] = [];
    for (const r of this.dirty) {
      const present = this.counts.has(r);
      const was = this.announced.has(r);
      if (present && !was) {
        added.push(r);
        this.announced.add(r);
      } else if (!present && was) {
        removed.push(r);
        this.announced.delete(r);
      }
    }
    this.dirty.clear();
    return added.length === 0 && removed.length === 0 ? undefined : { added, removed };
  }

  private mark(route: string): void {
    const first = this.dirty.size === 0;
    this.dirty.add(route);
    if (first) this.onChange?.();
  }
}

/** A shared subscription (group and filter) that members on some peers hold. */
export interface RemoteShare {
  /** `$share/<group>/<filter>`. */
  readonly key: string;
  /** Peers with members, sorted by id. */
  readonly nodes: number[];
  /** round_robin: picks so far; sticky: the node stuck to (-1: none). */
  cursor: number;
  sticky: number;
}

/** Is this a route a peer may announce? (A peer's nonsense is ignored, never trusted.) */
export function validRoute(route: unknown): route is string {
  if (typeof route !== 'string' || route.length === 0 || route.length > 65535) return false;
  return topicFilterError(route) === undefined;
}

/** What peers announced: per peer the set of its routes, indexed for matching topics. */
export class RemoteRoutes {
  private readonly byPeer = new Map<number, Set<string>>();
  /** Plain routes: filter -> (peer id as key -> peer id). */
  private readonly plain = new TopicTree<number>();
  /** Shared routes: inner filter -> (group -> nodes). */
  private readonly shared = new TopicTree<RemoteShare>();
  private entryCount = 0;

  /** Route entries over all peers. */
  get size(): number {
    return this.entryCount;
  }

  /** Peers that announced a route table (possibly empty), sorted. */
  peers(): number[] {
    return [...this.byPeer.keys()].sort((a, b) => a - b);
  }

  has(peer: number): boolean {
    return this.byPeer.has(peer);
  }

  /** The routes of a peer, sorted. */
  routesOf(peer: number): string[] {
    return [...(this.byPeer.get(peer) ?? [])].sort();
  }

  /** How many routes a peer announced. */
  count(peer: number): number {
    return this.byPeer.get(peer)?.size ?? 0;
  }

  /** Replaces everything known of a peer with its full route table. Invalid routes are skipped. */
  sync(peer: number, routes: Iterable<unknown>): void {
    const next = new Set<string>();
    for (const r of routes) if (validRoute(r)) next.add(r);
    const current = this.byPeer.get(peer);
    if (current) {
      for (const r of [...current]) if (!next.has(r)) this.removeRoute(peer, current, r);
    }
    const set = current ?? new Set<string>();
    this.byPeer.set(peer, set);
    for (const r of next) if (!set.has(r)) this.addRoute(peer, set, r);
  }

  /** Applies a peer's route changes (a peer not synced yet starts from an empty table). */
  apply(peer: number, added: Iterable<unknown>, removed: Iterable<unknown>): void {
    let set = this.byPeer.get(peer);
    if (!set) this.byPeer.set(peer, (set = new Set()));
    for (const r of removed) if (typeof r === 'string' && set.has(r)) this.removeRoute(peer, set, r);
    for (const r of added) if (validRoute(r) && !set.has(r)) this.addRoute(peer, set, r);
  }

  /** Forgets a peer (its link broke, or it is no longer alive). Returns whether it was known. */
  dropPeer(peer: number): boolean {
    const set = this.byPeer.get(peer);
    if (!set) return false;
    for (const r of [...set]) this.removeRoute(peer, set, r);
    this.byPeer.delete(peer);
    return true;
  }

  /** Appends to `out` each peer (once) with a plain route matching the topic. */
  matchPeers(topic: string, out: number[]): void {
    this.plain.match(topic, (peer) => {
      if (!out.includes(peer)) out.push(peer);
    });
  }

  /** Calls fn for each shared subscription with members on a peer whose filter matches the topic. */
  matchShared(topic: string, fn: (share: RemoteShare) => void): void {
    this.shared.match(topic, fn);
  }

  /** Whether any peer has a route (plain or shared) matching the topic. */
  matches(topic: string): boolean {
    let hit = false;
    this.plain.match(topic, () => (hit = true));
    if (!hit) this.shared.match(topic, () => (hit = true));
    return hit;
  }

  /**
   * The node that gets one message of a shared subscription: one of the peers
   * with members and, when `localId` is given, this node (which has members too),
   * chosen by the strategy (round_robin in turn; random; sticky: the same node
   * while it stays a candidate; hash_clientid: by publisher, rendezvous hashing).
   */
  pickShareNode(share: RemoteShare, localId: number | undefined, publisher: string, strategy: SharedStrategy, random: () => number = Math.random): number {
    const nodes = share.nodes;
    const n = nodes.length + (localId === undefined ? 0 : 1);
    // Candidate i: this node first (when it is one), then the peers in id order.
    const at = (i: number): number => (localId === undefined ? nodes[i]! : i === 0 ? localId : nodes[i - 1]!);
    if (n === 1) return at(0);
    switch (strategy) {
      case 'round_robin':
        return at(share.cursor++ % n);
      case 'random':
        return at(Math.min(n - 1, Math.floor(random() * n)));
      case 'sticky': {
        if (share.sticky === localId && localId !== undefined) return localId;
        if (share.sticky >= 0 && nodes.includes(share.sticky)) return share.sticky;
        share.sticky = at(Math.min(n - 1, Math.floor(random() * n)));
        return share.sticky;
      }
      case 'hash_clientid': {
        const h = fnv1a32(publisher);
        let best = -1;
        let bestScore = -1;
        for (let i = 0; i < n; i++) {
          const node = at(i);
          const score = mix32(h ^ fnv1a32(String(node)));
          if (score > bestScore || (score === bestScore && node < best)) {
            best = node;
            bestScore = score;
          }
        }
        return best;
      }
    }
  }

  private addRoute(peer: number, set: Set<string>, route: string): void {
    let share: { group: string; filter: string } | undefined;
    try {
      share = parseSharedFilter(route);
      if (share) {
        let entry = this.shared.get(share.filter, share.group);
        if (!entry) {
          entry = { key: route, nodes: [], cursor: 0, sticky: -1 };
          this.shared.add(share.filter, share.group, entry);
        }
        insertSorted(entry.nodes, peer);
      } else {
        this.plain.add(route, String(peer), peer);
      }
    } catch {
      return; // validRoute let it through, the tree did not: skip it
    }
    set.add(route);
    this.entryCount++;
  }

  private removeRoute(peer: number, set: Set<string>, route: string): void {
    set.delete(route);
    this.entryCount--;
    const share = parseSharedFilter(route);
    if (share) {
      const entry = this.shared.get(share.filter, share.group);
      if (!entry) return;
      const i = entry.nodes.indexOf(peer);
      if (i >= 0) entry.nodes.splice(i, 1);
      if (entry.sticky === peer) entry.sticky = -1;
      if (entry.nodes.length === 0) this.shared.remove(share.filter, share.group);
    } else {
      this.plain.remove(route, String(peer));
    }
  }
}

function insertSorted(list: number[], v: number): void {
  let i = list.length;
  while (i > 0 && list[i - 1]! > v) i--;
  if (list[i - 1] !== v) list.splice(i, 0, v);
}
