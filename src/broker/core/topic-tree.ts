/**
 * Subscription matching: a trie of filter levels, with the entries (key -> value,
 * e.g. client id -> subscription) of each filter held at the node where the filter
 * ends. Matching a topic walks the trie once along the topic's levels, following
 * for each node the exact child, the '+' child and the '#' child, so its cost
 * depends on the number of topic levels and matching filters, not on the number of
 * subscriptions.
 *
 * Rules (MQTT 3.1.1 and 5.0 §4.7): '+' matches exactly one level, '#' (the whole
 * last level) matches its parent level and every level below ('a/#' matches 'a',
 * 'a/b', 'a/b/c'), levels may be empty ('/a' has levels '' and 'a'), and a topic
 * starting with '$' is not matched by a filter whose first level is '+' or '#'.
 * The tree takes filters literally: strip `$share/<group>/` first (see
 * shared-subscriptions.ts) and validate with topicFilterError (topic-names.ts).
 */
import { InvalidFilterError } from './shared-subscriptions.js';

const DOLLAR = 0x24;

class TrieNode<V> {
  /** Children by exact level (never '+' or '#'). */
  children: Map<string, TrieNode<V>> | undefined = undefined;
  plus: TrieNode<V> | undefined = undefined;
  /** The '#' child: a leaf, holding entries only. */
  hash: TrieNode<V> | undefined = undefined;
  /** The filter ending at this node; set once it has held an entry. */
  filter = '';
  /** Entries of the filter ending here, as parallel arrays (iterated without allocation) plus key -> index. */
  keys: string[] | undefined = undefined;
  values: V[] | undefined = undefined;
  index: Map<string, number> | undefined = undefined;

  constructor(
    readonly parent: TrieNode<V> | undefined,
    /** This node's level under its parent ('+' and '#' for the wildcard children). */
    readonly level: string,
  ) {}

  isEmpty(): boolean {
    return this.keys === undefined && this.children === undefined && this.plus === undefined && this.hash === undefined;
  }
}

export class TopicTree<V> {
  private readonly root = new TrieNode<V>(undefined, '');
  private entryCount = 0;
  private filterCount = 0;
  /** Reused for splitting topics; `levelsBusy` guards against a match started from inside a match callback. */
  private readonly levels: string[] = [];
  private levelsBusy = false;
  /** Matches in progress: adding or removing then would corrupt the walk, so it throws. */
  private matching = 0;

  /** Entries (filter, key) held. */
  get size(): number {
    return this.entryCount;
  }

  /** Distinct filters held. */
  filters(): number {
    return this.filterCount;
  }

  /**
   * Adds or replaces the entry for (filter, key). Returns true if it was new.
   * Throws InvalidFilterError when a level holding '#' is not the last one (the
   * tree relies on that; other rules are topicFilterError's business).
   */
  add(filter: string, key: string, value: V): boolean {
    this.assertNotMatching('add');
    let node = this.root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf('/', start);
      const last = end < 0;
      if (last) end = filter.length;
      const level = filter.slice(start, end);
      if (level === '#') {
        if (!last) throw new InvalidFilterError(filter, `'#' must be the whole last level of the topic filter`);
        node = node.hash ??= new TrieNode<V>(node, '#');
      } else if (level === '+') {
        node = node.plus ??= new TrieNode<V>(node, '+');
      } else {
        const children = (node.children ??= new Map());
        let child = children.get(level);
        if (child === undefined) {
          child = new TrieNode<V>(node, level);
          children.set(level, child);
        }
        node = child;
      }
      if (last) break;
      start = end + 1;
    }
    if (node.keys === undefined) {
      node.filter = filter;
      node.keys = [key];
      node.values = [value];
      node.index = new Map([[key, 0]]);
      this.filterCount++;
      this.entryCount++;
      return true;
    }
    const i = node.index!.get(key);
    if (i !== undefined) {
      node.values![i] = value;
      return false;
    }
    node.index!.set(key, node.keys.length);
    node.keys.push(key);
    node.values!.push(value);
    this.entryCount++;
    return true;
  }

  /** Removes the entry for (filter, key), pruning nodes left empty. Returns true if it was there. */
  remove(filter: string, key: string): boolean {
    this.assertNotMatching('remove');
    const node = this.find(filter);
    if (node?.keys === undefined) return false;
    const index = node.index!;
    const i = index.get(key);
    if (i === undefined) return false;
    this.entryCount--;
    const keys = node.keys;
    const values = node.values!;
    const lastIndex = keys.length - 1;
    if (lastIndex === 0) {
      node.keys = undefined;
      node.values = undefined;
      node.index = undefined;
      this.filterCount--;
      this.prune(node);
      return true;
    }
    // Swap-remove: move the last entry into the hole.
    if (i !== lastIndex) {
      const movedKey = keys[lastIndex]!;
      keys[i] = movedKey;
      values[i] = values[lastIndex]!;
      index.set(movedKey, i);
    }
    keys.pop();
    values.pop();
    index.delete(key);
    return true;
  }

  get(filter: string, key: string): V | undefined {
    const node = this.find(filter);
    const i = node?.index?.get(key);
    return i === undefined ? undefined : node!.values![i];
  }

  /** Does the tree hold any entry for this filter? */
  hasFilter(filter: string): boolean {
    return this.find(filter)?.keys !== undefined;
  }

  /**
   * Calls fn(value, key, filter) for every entry whose filter matches the topic
   * name, each once. fn may call match again, but must not add or remove (it
   * throws): collect what to change and change it after.
   */
  match(topic: string, fn: (value: V, key: string, filter: string) => void): void {
    // Split the topic once into a reused array (a fresh one if this is a nested match).
    const reuse = !this.levelsBusy;
    const levels = reuse ? this.levels : [];
    let n = 0;
    let start = 0;
    for (;;) {
      const end = topic.indexOf('/', start);
      if (end < 0) {
        levels[n++] = topic.slice(start);
        break;
      }
      levels[n++] = topic.slice(start, end);
      start = end + 1;
    }
    if (reuse) this.levelsBusy = true;
    this.matching++;
    try {
      const root = this.root;
      if (topic.charCodeAt(0) === DOLLAR) {
        // '$' topics: no first-level wildcards.
        const child = root.children?.get(levels[0]!);
        if (child !== undefined) this.walk(child, levels, n, 1, fn);
      } else {
        this.walk(root, levels, n, 0, fn);
      }
    } finally {
      this.matching--;
      if (reuse) {
        this.levelsBusy = false;
        // Drop references to the topic's strings but keep the array's capacity.
        for (let i = 0; i < n; i++) levels[i] = '';
      }
    }
  }

  /** Every entry as [filter, key, value], in no particular order. */
  *entries(): IterableIterator<[filter: string, key: string, value: V]> {
    const stack: TrieNode<V>[] = [this.root];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      if (node.keys !== undefined) {
        const keys = node.keys.slice();
        const values = node.values!.slice();
        for (let i = 0; i < keys.length; i++) yield [node.filter, keys[i]!, values[i]!];
      }
      if (node.hash !== undefined) stack.push(node.hash);
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child);
    }
  }

  /** Removes every entry. */
  clear(): void {
    this.assertNotMatching('clear');
    const root = this.root;
    root.children = root.plus = root.hash = undefined;
    root.keys = root.values = undefined;
    root.index = undefined;
    this.entryCount = this.filterCount = 0;
  }

  /** Node i levels down matched topic levels [0, i); collect from it for levels [i, n). */
  private walk(node: TrieNode<V>, levels: string[], n: number, i: number, fn: (value: V, key: string, filter: string) => void): void {
    const hash = node.hash;
    if (hash !== undefined) emit(hash, fn); // '#' matches the rest, including nothing
    if (i === n) {
      if (node.keys !== undefined) emit(node, fn);
      return;
    }
    const children = node.children;
    if (children !== undefined) {
      const child = children.get(levels[i]!);
      if (child !== undefined) this.walk(child, levels, n, i + 1, fn);
    }
    const plus = node.plus;
    if (plus !== undefined) this.walk(plus, levels, n, i + 1, fn);
  }

  private find(filter: string): TrieNode<V> | undefined {
    let node: TrieNode<V> | undefined = this.root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf('/', start);
      const last = end < 0;
      if (last) end = filter.length;
      const level = filter.slice(start, end);
      if (level === '#') node = last ? node.hash : undefined;
      else if (level === '+') node = node.plus;
      else node = node.children?.get(level);
      if (node === undefined || last) return node;
      start = end + 1;
    }
  }

  private prune(node: TrieNode<V>): void {
    for (let parent = node.parent; parent !== undefined && node.isEmpty(); node = parent, parent = node.parent) {
      if (node.level === '#') parent.hash = undefined;
      else if (node.level === '+') parent.plus = undefined;
      else {
        const children = parent.children!;
        children.delete(node.level);
        if (children.size === 0) parent.children = undefined;
      }
    }
  }

  private assertNotMatching(op: string): void {
    if (this.matching > 0) throw new Error(`TopicTree.${op} called from inside a match callback`);
  }
}

function emit<V>(node: TrieNode<V>, fn: (value: V, key: string, filter: string) => void): void {
  const keys = node.keys!;
  const values = node.values!;
  const filter = node.filter;
  for (let i = 0; i < keys.length; i++) fn(values[i]!, keys[i]!, filter);
}
