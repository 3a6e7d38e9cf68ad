/**
 * Record types: the unit of extension of the metadata state machine.
 *
 * Each kind of metadata (nodes, topics, ACLs, ...) is one RecordType that owns
 * its state, the command kinds that change it, the events those changes emit,
 * its snapshot form and its typed read API. The machine knows none of them by
 * name: a later feature adds a record type by adding it to the list the machine
 * is built from, without touching Raft, the machine or any other record module.
 *
 * Contract every record type keeps (determinism depends on it):
 *  - `apply` and `react` depend only on (state, command/event, ctx): no clock,
 *    no randomness, no environment, no iteration over unordered input.
 *  - `apply` checks before it mutates: a command it rejects leaves state as it was.
 *  - `react` never fails: it runs after another record type has already changed
 *    state for the same entry, so there is nothing left to reject.
 */
import type { Json } from './canonical.js';
import type { ApplyResult } from './result.js';

/** Every command is a JSON object with a `kind` naming its record type's handler. */
export interface CommandBase {
  readonly kind: string;
}

/** Every change event carries a `type`, e.g. 'topic.created'. */
export interface EventBase {
  readonly type: string;
}

export interface ApplyContext {
  /** The Raft index of the entry being applied: unique and the same on every node (usable as an id or version). */
  readonly index: number;
}

export interface ApplyOutput<Event> {
  result: ApplyResult;
  /** Changes made, in order; empty when the command was rejected or changed nothing. */
  events: Event[];
}

/*
 * Methods (not function-valued properties) on purpose: method parameters are
 * checked bivariantly, which lets RecordType<TopicsState, ...> be held as an
 * AnyRecordType in the machine's list while each module keeps precise types.
 */
export interface RecordType<State, Command extends CommandBase, Event extends EventBase, Query = unknown, Name extends string = string> {
  /** Key of this record type in snapshots and in `machine.view`. Never rename one: snapshots carry it. */
  readonly name: Name;
  /** The command kinds routed to this record type; unique across a machine. */
  readonly commands: readonly Command['kind'][];
  initial(): State;
  /** Parse an untrusted envelope (already known to carry one of `commands`); throws MetaCommandError. */
  validate(raw: unknown): Command;
  apply(state: State, command: Command, ctx: ApplyContext): ApplyOutput<Event>;
  /**
   * Optional: follow a change another record type made in the same entry (e.g.
   * shards are created when a topic is). Offered, in list order, every event the
   * command's own record type emitted; events returned here are published after
   * the command's own events and are not offered again, so reactions cannot
   * cascade or loop.
   */
  react?(state: State, event: EventBase, ctx: ApplyContext): Event[];
  /** JSON-safe; ordering must be deterministic (use canonical.ts helpers). */
  snapshot(state: State): Json;
  /** Inverse of snapshot; validates its input (throws) because snapshots come from disk and network. */
  restore(json: unknown): State;
  /** Typed read API over the current state; `read` always returns the live state (it changes on restore). */
  query(read: () => State): Query;
}

/** Any record type, as the machine holds them. */
export type AnyRecordType = RecordType<unknown, CommandBase, EventBase, unknown, string>;

/** Identity helper so a record module gets full inference (and a literal `name`). */
export function defineRecord<State, Command extends CommandBase, Event extends EventBase, Query, const Name extends string>(
  def: RecordType<State, Command, Event, Query, Name>,
): RecordType<State, Command, Event, Query, Name> {
  return def;
}

/** The typed read API of a list of record types: `{ topics: TopicsQuery, nodes: NodesQuery, ... }`. */
export type ViewOf<R extends readonly AnyRecordType[]> = {
  readonly [T in R[number] as T['name']]: ReturnType<T['query']>;
};

export type CommandOf<R extends readonly AnyRecordType[]> = ReturnType<R[number]['validate']>;

export type RecordEventOf<R extends readonly AnyRecordType[]> = ReturnType<R[number]['apply']>['events'][number];

/**
 * Routing table from command kind to record type; rejects a list in which two
 * record types share a name or claim the same command kind (that would make
 * routing ambiguous and snapshots collide).
 */
export class RecordRegistry {
  private readonly byKind = new Map<string, AnyRecordType>();
  private readonly byName = new Map<string, AnyRecordType>();

  constructor(readonly records: readonly AnyRecordType[]) {
    for (const record of records) {
      if (this.byName.has(record.name)) throw new Error(`meta state: record type '${record.name}' is listed twice`);
      this.byName.set(record.name, record);
      for (const kind of record.commands) {
        const owner = this.byKind.get(kind);
        if (owner) throw new Error(`meta state: command kind '${kind}' is claimed by both '${owner.name}' and '${record.name}'`);
        this.byKind.set(kind, record);
      }
    }
  }

  forKind(kind: string): AnyRecordType | undefined {
    return this.byKind.get(kind);
  }

  forName(name: string): AnyRecordType | undefined {
    return this.byName.get(name);
  }

  /** Every command kind, in registration order. */
  kinds(): string[] {
    return [...this.byKind.keys()];
  }
}
