/**
 * The journal engine's view of the metadata: segments, journal nodes and shard
 * leaders from this node's replica, and segment changes proposed through Raft.
 */
import type { MetaAgent } from '../meta/agent.js';
import { MetaConflictError, type JournalMetaPort, type JournalNode, type SegmentInfo } from '../storage/journal/meta-port.js';
import type { MetaCommand } from '../meta/state/commands.js';
import { proposeResult } from './meta-propose.js';

async function propose(agent: MetaAgent, cmd: MetaCommand, tolerate: readonly string[] = []): Promise<void> {
  const r = await proposeResult(agent, cmd);
  if (r.ok || tolerate.includes(r.code)) return;
  if (r.code === 'conflict' || r.code === 'already_exists') throw new MetaConflictError(`${cmd.kind}: ${r.message}`);
  throw new Error(`meta rejected ${cmd.kind}: ${r.code}: ${r.message}`);
}

export function journalMetaPort(agent: MetaAgent, nodeId: number): JournalMetaPort {
  const view = () => agent.replica.view;
  return {
    nodeId,
    journals(): JournalNode[] {
      const out: JournalNode[] = [];
      for (const n of view().nodes.withRole('journal')) {
        const l = n.listeners.find((x) => x.name === 'journal');
        if (l) out.push({ id: n.id, addr: l.address, state: n.state, registeredAtMs: n.registeredAtMs });
      }
      return out;
    },
    segments: (shard): SegmentInfo[] => view().journalSegments.forShard(shard),
    isWriter: (shard) => view().shards.byId(shard)?.leader === nodeId,
    leaderOf: (shard) => view().shards.byId(shard)?.leader ?? 0,
    createSegment: (s) => propose(agent, { kind: 'journal.segment.create', ...s }),
    bumpEpoch: (shard, segment, ensemble, epoch) => propose(agent, { kind: 'journal.segment.update', shard, segment, ensemble: [...ensemble], epoch }),
    sealSegment: (shard, segment, lastEntry, stats) => propose(agent, { kind: 'journal.segment.seal', shard, segment, lastEntry, ...stats }),
    deleteSegments: (shard, segment) => propose(agent, { kind: 'journal.segment.delete', shard, ...(segment !== undefined ? { segment } : {}) }, ['not_found']),
    trimSegment: (shard, segment, offset) => propose(agent, { kind: 'journal.segment.trim', shard, segment, offset }),
    replaceReplica: (shard, segment, from, to) => propose(agent, { kind: 'journal.segment.replace', shard, segment, from, to }),
    allSegments: (): SegmentInfo[] => {
      const q = view().journalSegments;
      return q.shards().flatMap((shard) => q.forShard(shard));
    },
    subscribe(onChange) {
      return agent.replica.subscribe(({ event }) => {
        const t = event.type;
        if (t.startsWith('shard.') || t.startsWith('node.') || t.startsWith('journal.') || t === 'state.restored') onChange();
      });
    },
  };
}
