/**
 * The replicated metadata state machine of the Meta Service.
 *
 * Raft hands every meta node the same committed entries in the same order; this
 * class turns each into a state change plus change events, deterministically.
 * It knows no record type by name: it routes a command's `kind` to the record
 * type that claims it (registry.ts), so adding metadata means adding a record
 * type to the list, not editing this file.
 *
 * Never throws from `apply`: a malformed or rejected command is a consumed log
 * entry with an error result, identical on every node.
 */
import { canonicalJson, type Json } from './canonical.js';
import { decodeEnvelope } from './envelope.js';
import { isPlainObject } from './fields.js';
import { deepFreeze } from './frozen.js';
import { RecordRegistry, type AnyRecordType, type ApplyContext, type EventBase, type RecordEventOf, type ViewOf } from './registry.js';
import { fail, ok, MetaCommandError, MetaSnapshotError, type ApplyResult } from './result.js';

export const SNAPSHOT_FORMAT = 'robustmq-meta';
export const SNAPSHOT_VERSION = 1;

/** Published after `restore`: the whole state was replaced, so caches must reload rather than patch. */
export interface StateRestoredEvent {
  readonly type: 'state.restored';
  readonly appliedIndex: number;
}

export type MachineEvent<R extends readonly AnyRecordType[]> = RecordEventOf<R> | StateRestoredEvent;

export interface MetaChange<E> {
  /** The index of the entry that made the change (appliedIndex for a restore). */
  readonly index: number;
  readonly event: E;
}

export type MetaListener<E> = (change: MetaChange<E>) => void;

export interface MetaStateMachineOptions {
  /**
   * Called when a listener or a record type's `react` throws. Apply carries on
   * (the entry is committed; stopping would leave this node behind the others).
   * Default: rethrow on a microtask, so the bug is loud but apply is not cut short.
   */
  onError?: (err: unknown, where: string) => void;
}

interface SnapshotDoc {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  appliedIndex: number;
  records: Record<string, Json>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class MetaStateMachine<R extends readonly AnyRecordType[]> {
  /** Typed read API, one entry per record type: `machine.view.topics.get('orders')`. */
  readonly view: ViewOf<R>;
  private readonly registry: RecordRegistry;
  private states = new Map<string, unknown>();
  private applied = 0;
  private readonly listeners = new Set<MetaListener<MachineEvent<R>>>();
  private readonly onError: (err: unknown, where: string) => void;

  constructor(records: R, options: MetaStateMachineOptions = {}) {
    this.registry = new RecordRegistry(records);
    this.onError =
      options.onError ??
      ((err) => {
        queueMicrotask(() => {
          throw err;
        });
      });
    for (const record of records) this.states.set(record.name, record.initial());
    const view: Record<string, unknown> = {};
    for (const record of records) view[record.name] = record.query(() => this.states.get(record.name));
    // The one cast: the object is built from the same list ViewOf<R> is computed from.
    this.view = view as ViewOf<R>;
  }

  /** Index of the last entry applied (or of the restored snapshot); 0 for a fresh machine. */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Every command kind this machine accepts. */
  commandKinds(): string[] {
    return this.registry.kinds();
  }

  /**
   * Apply one committed entry. Indexes must increase (gaps are fine: Raft's
   * membership entries never reach the state machine). An empty `data` is the
   * leader's no-op. Never throws.
   */
  apply(index: number, data: Uint8Array): ApplyResult {
    if (!Number.isSafeInteger(index) || index < 1) return fail('invalid', `entry index must be a positive integer, got ${String(index)}`);
    if (index <= this.applied) return fail('stale_index', `entry ${index} is not after the applied index ${this.applied}`);
    this.applied = index;
    if (data.length === 0) return ok();

    const envelope = decodeEnvelope(data);
    if (!envelope.ok) return envelope.error;
    const record = this.registry.forKind(envelope.kind);
    if (!record) return fail('unknown_kind', `unknown command kind '${envelope.kind}'`);

    const ctx: ApplyContext = { index };
    let result: ApplyResult;
    let events: EventBase[];
    try {
      const command = record.validate(envelope.raw);
      ({ result, events } = record.apply(this.states.get(record.name), command, ctx));
    } catch (err) {
      if (err instanceof MetaCommandError) return fail(err.code, err.message);
      return fail('internal', `${envelope.kind}: ${err instanceof Error ? err.message : String(err)}`);
    }

    const published = [...events];
    for (const event of events) {
      for (const other of this.registry.records) {
        if (other === record || !other.react) continue;
        try {
          published.push(...other.react(this.states.get(other.name), event, ctx));
        } catch (err) {
          this.onError(err, `${other.name}.react(${event.type})`);
        }
      }
    }
    // Listeners run after the whole entry is applied, so what they read through `view` is consistent.
    // Every event comes from a record type in R, which is what MachineEvent<R> says.
    // Frozen so one listener cannot alter what the next one sees.
    for (const event of published) this.publish({ index, event: deepFreeze(event) as MachineEvent<R> });
    return result;
  }

  /** The full state in the versioned snapshot format; byte-identical on every node at the same index. */
  snapshot(): Uint8Array {
    const records: Record<string, Json> = {};
    for (const record of this.registry.records) records[record.name] = record.snapshot(this.states.get(record.name));
    const doc: SnapshotDoc = { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, appliedIndex: this.applied, records };
    return encoder.encode(canonicalJson(doc));
  }

  /**
   * Replace the whole state with a snapshot's. All or nothing: every record type
   * is restored into fresh state before any of it replaces the current state.
   * Throws MetaSnapshotError for a snapshot this build cannot read.
   */
  restore(bytes: Uint8Array): void {
    let doc: unknown;
    try {
      doc = JSON.parse(decoder.decode(bytes));
    } catch (err) {
      throw new MetaSnapshotError(`meta snapshot is not valid JSON (${bytes.length} bytes)`, { cause: err });
    }
    if (!isPlainObject(doc) || doc['format'] !== SNAPSHOT_FORMAT) {
      throw new MetaSnapshotError(`not a meta snapshot: expected format '${SNAPSHOT_FORMAT}'`);
    }
    if (doc['version'] !== SNAPSHOT_VERSION) {
      throw new MetaSnapshotError(`unsupported meta snapshot version ${JSON.stringify(doc['version'])}: this build reads version ${SNAPSHOT_VERSION}`);
    }
    const appliedIndex = doc['appliedIndex'];
    if (typeof appliedIndex !== 'number' || !Number.isSafeInteger(appliedIndex) || appliedIndex < 0) {
      throw new MetaSnapshotError('meta snapshot: appliedIndex must be a non-negative integer');
    }
    const records = doc['records'];
    if (!isPlainObject(records)) throw new MetaSnapshotError("meta snapshot: 'records' must be an object");
    for (const name of Object.keys(records)) {
      // Dropping state this build does not understand would silently diverge from newer nodes.
      if (!this.registry.forName(name)) throw new MetaSnapshotError(`meta snapshot has record type '${name}' that this build does not know`);
    }
    const states = new Map<string, unknown>();
    for (const record of this.registry.records) {
      // A record type added after the snapshot was written starts empty.
      if (!Object.hasOwn(records, record.name)) {
        states.set(record.name, record.initial());
        continue;
      }
      try {
        states.set(record.name, record.restore(records[record.name]));
      } catch (err) {
        throw new MetaSnapshotError(`meta snapshot: record type '${record.name}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    this.states = states;
    this.applied = appliedIndex;
    this.publish({ index: appliedIndex, event: { type: 'state.restored', appliedIndex } });
  }

  /** Change events in apply order. Returns the unsubscribe function. */
  subscribe(listener: MetaListener<MachineEvent<R>>): () => void {
    // Wrapped so the same function may subscribe twice and unsubscribe each independently.
    const entry: MetaListener<MachineEvent<R>> = (change) => listener(change);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  private publish(change: MetaChange<MachineEvent<R>>): void {
    for (const listener of [...this.listeners]) {
      if (!this.listeners.has(listener)) continue; // unsubscribed by an earlier listener of this change
      try {
        listener(change);
      } catch (err) {
        this.onError(err, `listener for ${change.event.type}`);
      }
    }
  }
}
