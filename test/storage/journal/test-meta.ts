/**
 * A JournalMetaPort over a real meta state machine applied in process: the
 * segment invariants are the ones meta enforces, without Raft in the way.
 */
import { encodeCommand, type MetaCommand } from '../../../src/meta/state/commands.js';
import { createMetaStateMachine } from '../../../src/meta/state/default-records.js';
import { MetaConflictError, type JournalMetaPort, type JournalNode, type NewSegment, type SegmentInfo } from '../../../src/storage/journal/meta-port.js';

export class TestMeta {
  readonly machine = createMetaStateMachine();
  private index = 0;
  readonly nodes = new Map<number, JournalNode>();
  readonly leaders = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  /** Every command applied, for assertions. */
  readonly applied: MetaCommand[] = [];

  setJournal(id: number, addr: string, state: JournalNode['state'] = 'alive'): void {
    this.nodes.set(id, { id, addr, state });
    this.changed();
  }

  setLeader(shard: string, node: number): void {
    this.leaders.set(shard, node);
    this.changed();
  }

  changed(): void {
    for (const l of this.listeners) l();
  }

  segments(shard: string): SegmentInfo[] {
    return this.machine.view.journalSegments.forShard(shard);
  }

  private apply(cmd: MetaCommand, tolerate: string[] = []): void {
    const r = this.machine.apply(++this.index, encodeCommand(cmd));
    this.applied.push(cmd);
    if (!r.ok && !tolerate.includes(r.code)) {
      if (r.code === 'conflict' || r.code === 'already_exists') throw new MetaConflictError(r.message);
      throw new Error(`${cmd.kind}: ${r.code}: ${r.message}`);
    }
    this.changed();
  }

  /** The port one node's engine sees. */
  port(nodeId: number): JournalMetaPort {
    return {
      nodeId,
      journals: () => [...this.nodes.values()],
      segments: (shard) => this.segments(shard),
      isWriter: (shard) => this.leaders.get(shard) === nodeId,
      leaderOf: (shard) => this.leaders.get(shard) ?? 0,
      createSegment: async (s: NewSegment) => this.apply({ kind: 'journal.segment.create', ...s }),
      bumpEpoch: async (shard, segment, ensemble, epoch) => this.apply({ kind: 'journal.segment.update', shard, segment, ensemble: [...ensemble], epoch }),
      sealSegment: async (shard, segment, lastEntry, stats) => this.apply({ kind: 'journal.segment.seal', shard, segment, lastEntry, ...stats }),
      deleteSegments: async (shard, segment) => this.apply({ kind: 'journal.segment.delete', shard, ...(segment !== undefined ? { segment } : {}) }, ['not_found']),
      trimSegment: async (shard, segment, offset) => this.apply({ kind: 'journal.segment.trim', shard, segment, offset }),
      replaceReplica: async (shard, segment, from, to) => this.apply({ kind: 'journal.segment.replace', shard, segment, from, to }),
      allSegments: () => this.machine.view.journalSegments.shards().flatMap((shard) => this.segments(shard)),
      subscribe: (cb) => {
        this.listeners.add(cb);
        return () => this.listeners.delete(cb);
      },
    };
  }
}
