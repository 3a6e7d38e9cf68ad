/**
 * The persistent sessions of broker nodes this one cannot reach (down, or not
 * linked yet), matched by topic, so a publish can still be queued for them in
 * their node's session log (MqttBroker.queueForUnreachable). Built from the
 * meta service's copy of the sessions, one topic tree per node, rebuilt only
 * when the sessions changed since the last match.
 */
import { TopicTree } from '../core/topic-tree.js';
import type { StoredSession, StoredSubscription } from './store.js';

export interface UnreachableMatch {
  clientId: string;
  /** The highest QoS among the session's matching subscriptions. */
  qos: number;
  /** A matching subscription keeps the RETAIN flag as published. */
  retainAsPublished: boolean;
  subIds: number[] | undefined;
}

interface Entry {
  clientId: string;
  sub: StoredSubscription;
}

export interface SessionSource {
  sessionsOf(nodeId: number): readonly StoredSession[];
  sessionsVersion(): number;
}

export class UnreachableSessions {
  private readonly trees = new Map<number, { version: number; tree: TopicTree<Entry> }>();
  private readonly scratch = new Map<string, UnreachableMatch>();

  constructor(private readonly source: SessionSource) {}

  /** Sessions of `nodeId` with a plain (non-shared) subscription matching `topic`, one entry per session. */
  match(nodeId: number, topic: string, publisher: string, visit: (m: UnreachableMatch) => void): void {
    const tree = this.treeOf(nodeId);
    if (tree.filters() === 0) return;
    const found = this.scratch;
    found.clear();
    tree.match(topic, (e) => {
      if (e.sub.noLocal && e.clientId === publisher) return;
      const m = found.get(e.clientId);
      if (!m) {
        found.set(e.clientId, { clientId: e.clientId, qos: e.sub.qos, retainAsPublished: e.sub.retainAsPublished, subIds: e.sub.subscriptionId !== undefined ? [e.sub.subscriptionId] : undefined });
        return;
      }
      if (e.sub.qos > m.qos) m.qos = e.sub.qos;
      if (e.sub.retainAsPublished) m.retainAsPublished = true;
      if (e.sub.subscriptionId !== undefined) (m.subIds ??= []).push(e.sub.subscriptionId);
    });
    for (const m of found.values()) visit(m);
    found.clear();
  }

  private treeOf(nodeId: number): TopicTree<Entry> {
    const version = this.source.sessionsVersion();
    const cached = this.trees.get(nodeId);
    if (cached && cached.version === version) return cached.tree;
    const tree = new TopicTree<Entry>();
    for (const s of this.source.sessionsOf(nodeId)) {
      for (const sub of s.subscriptions) {
        // Shared subscriptions are served by a live member elsewhere.
        if (sub.filter.startsWith('$share/')) continue;
        try {
          tree.add(sub.filter, `${s.clientId}\u0000${sub.filter}`, { clientId: s.clientId, sub });
        } catch {
          // A filter the broker would not have accepted: nothing can match it.
        }
      }
    }
    this.trees.set(nodeId, { version, tree });
    return tree;
  }
}
