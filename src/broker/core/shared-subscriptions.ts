/**
 * Shared subscriptions (MQTT 5.0 §4.8.2, and the same idea for any protocol's
 * consumer groups): `$share/<group>/<filter>` subscribers form a group, and each
 * matching message goes to one member of the group, chosen by a strategy.
 */
import { RobustError } from '../../common/errors.js';
import { SHARE_PREFIX, topicFilterError } from './topic-names.js';

/** A subscription filter that breaks the topic-filter or `$share` rules. */
export class InvalidFilterError extends RobustError {
  constructor(
    readonly filter: string,
    readonly reason: string,
  ) {
    super(`invalid topic filter '${filter.length > 200 ? `${filter.slice(0, 200)}…` : filter}': ${reason}`, 'invalid_filter');
  }
}

/**
 * Splits `$share/<group>/<filter>` into its group and filter; undefined when the
 * filter is not a shared one (does not start with `$share/`). Throws
 * InvalidFilterError when it starts with `$share/` but is not a valid shared
 * filter (empty or wildcard group, missing or invalid filter after it).
 */
export function parseSharedFilter(filter: string): { group: string; filter: string } | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const reason = topicFilterError(filter);
  if (reason !== undefined) throw new InvalidFilterError(filter, reason);
  const slash = filter.indexOf('/', SHARE_PREFIX.length);
  return { group: filter.slice(SHARE_PREFIX.length, slash), filter: filter.slice(slash + 1) };
}

/**
 * How a shared group picks the member that gets a message:
 * - round_robin: members in turn, in the order they joined;
 * - random: uniformly among the eligible members;
 * - sticky: the same member until it leaves or is not eligible, then another at random;
 * - hash_clientid: a stable function of the publisher's client id (rendezvous hashing,
 *   so a member joining or leaving moves only the publishers that go to or come from it).
 */
export type SharedStrategy = 'round_robin' | 'random' | 'sticky' | 'hash_clientid';

export const SHARED_STRATEGIES: readonly SharedStrategy[] = ['round_robin', 'random', 'sticky', 'hash_clientid'];

/** 32-bit FNV-1a over UTF-16 code units: stable across processes and runs. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finalizer: spreads a combination of two hashes over all bits. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The members of one shared group (keyed, e.g., by client id) and the strategy
 * that picks one of them per message. Members are kept in join order; pick is O(1)
 * expected for round_robin, random and sticky when the chosen member is eligible,
 * O(members) for hash_clientid (integer work only) and for any fall-through.
 */
export class SharedGroup<M> {
  private readonly keys: string[] = [];
  private readonly members: M[] = [];
  private readonly hashes: number[] = []; // fnv1a32(key), for hash_clientid
  private readonly index = new Map<string, number>();
  /** round_robin: the index of the member whose turn is next. */
  private cursor = 0;
  /** sticky: the member currently stuck to, if any. */
  private stickyKey: string | undefined;

  constructor(
    readonly strategy: SharedStrategy = 'round_robin',
    /** Source of randomness in [0, 1) for random and sticky; replaceable for tests. */
    private readonly random: () => number = Math.random,
  ) {
    if (!SHARED_STRATEGIES.includes(strategy)) throw new RangeError(`unknown shared subscription strategy '${String(strategy)}'`);
  }

  get size(): number {
    return this.keys.length;
  }

  has(memberKey: string): boolean {
    return this.index.has(memberKey);
  }

  get(memberKey: string): M | undefined {
    const i = this.index.get(memberKey);
    return i === undefined ? undefined : this.members[i];
  }

  /** Adds a member, or replaces the value of one already there (keeping its place). Returns true if it was new. */
  add(memberKey: string, member: M): boolean {
    const i = this.index.get(memberKey);
    if (i !== undefined) {
      this.members[i] = member;
      return false;
    }
    this.index.set(memberKey, this.keys.length);
    this.keys.push(memberKey);
    this.members.push(member);
    this.hashes.push(fnv1a32(memberKey));
    return true;
  }

  /** Removes a member; the others keep their order and round_robin its place in the rotation. */
  remove(memberKey: string): boolean {
    const i = this.index.get(memberKey);
    if (i === undefined) return false;
    this.index.delete(memberKey);
    this.keys.splice(i, 1);
    this.members.splice(i, 1);
    this.hashes.splice(i, 1);
    for (let j = i; j < this.keys.length; j++) this.index.set(this.keys[j]!, j);
    if (i < this.cursor) this.cursor--;
    if (this.cursor >= this.keys.length) this.cursor = 0;
    if (this.stickyKey === memberKey) this.stickyKey = undefined;
    return true;
  }

  /** The members in join order. */
  *entries(): IterableIterator<[key: string, member: M]> {
    for (let i = 0; i < this.keys.length; i++) yield [this.keys[i]!, this.members[i]!];
  }

  /**
   * Chooses the member for one message from `publisherClientId`, skipping members
   * for which `eligible` returns false (disconnected, queue full, ...). Undefined
   * when the group is empty or no member is eligible.
   */
  pick(publisherClientId: string, eligible?: (member: M) => boolean): [key: string, member: M] | undefined {
    const i = this.pickIndex(publisherClientId, eligible);
    return i < 0 ? undefined : [this.keys[i]!, this.members[i]!];
  }

  /** Like pick, but returns the member's index in join order (-1 for none); no allocation. */
  pickIndex(publisherClientId: string, eligible?: (member: M) => boolean): number {
    const n = this.keys.length;
    if (n === 0) return -1;
    switch (this.strategy) {
      case 'round_robin':
        return this.pickRoundRobin(n, eligible);
      case 'random':
        return this.pickRandom(n, eligible);
      case 'sticky':
        return this.pickSticky(n, eligible);
      case 'hash_clientid':
        return this.pickHash(n, publisherClientId, eligible);
    }
  }

  /** The key of the member at `index` (as returned by pickIndex). */
  keyAt(index: number): string {
    const k = this.keys[index];
    if (k === undefined) throw new RangeError(`no member at index ${index}`);
    return k;
  }

  /** The member at `index` (as returned by pickIndex). */
  memberAt(index: number): M {
    if (index < 0 || index >= this.members.length) throw new RangeError(`no member at index ${index}`);
    return this.members[index]!;
  }

  private pickRoundRobin(n: number, eligible: ((m: M) => boolean) | undefined): number {
    let i = this.cursor < n ? this.cursor : 0;
    for (let tried = 0; tried < n; tried++) {
      if (eligible === undefined || eligible(this.members[i]!)) {
        this.cursor = i + 1 < n ? i + 1 : 0;
        return i;
      }
      i = i + 1 < n ? i + 1 : 0;
    }
    return -1;
  }

  private pickRandom(n: number, eligible: ((m: M) => boolean) | undefined): number {
    const first = Math.min(n - 1, Math.floor(this.random() * n));
    if (eligible === undefined || eligible(this.members[first]!)) return first;
    // Fall through: reservoir-sample one of the eligible members. With the first
    // try, every eligible member ends up equally likely.
    let chosen = -1;
    let seen = 0;
    for (let i = 0; i < n; i++) {
      if (i === first || !eligible(this.members[i]!)) continue;
      seen++;
      if (this.random() * seen < 1) chosen = i;
    }
    return chosen;
  }

  private pickSticky(n: number, eligible: ((m: M) => boolean) | undefined): number {
    if (this.stickyKey !== undefined) {
      const i = this.index.get(this.stickyKey);
      if (i !== undefined && (eligible === undefined || eligible(this.members[i]!))) return i;
    }
    const i = this.pickRandom(n, eligible);
    this.stickyKey = i < 0 ? undefined : this.keys[i];
    return i;
  }

  private pickHash(n: number, publisherClientId: string, eligible: ((m: M) => boolean) | undefined): number {
    // Rendezvous (highest random weight): each member scores mix(h(client) ^ h(member));
    // the highest-scoring eligible member wins. Eligibility is asked only of a member
    // that beats the best so far: about ln(n) calls when all are eligible.
    const h = fnv1a32(publisherClientId);
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < n; i++) {
      const score = mix32(h ^ this.hashes[i]!);
      if (score > bestScore || (score === bestScore && this.keys[i]! < this.keys[best]!)) {
        if (eligible !== undefined && !eligible(this.members[i]!)) continue;
        best = i;
        bestScore = score;
      }
    }
    return best;
  }
}
