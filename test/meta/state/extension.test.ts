/**
 * Adding a record type is a new module plus a longer list: this file defines one
 * (per-user byte-rate quotas) and runs it next to the defaults without touching
 * any other file.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCommand, encodeEnvelope } from '../../../src/meta/state/commands.js';
import { createMetaStateMachine, defaultRecords } from '../../../src/meta/state/default-records.js';
import { Fields, checkList } from '../../../src/meta/state/fields.js';
import { MetaStateMachine } from '../../../src/meta/state/machine.js';
import { defineRecord, type ApplyOutput, type EventBase } from '../../../src/meta/state/registry.js';
import { fail, MetaSnapshotError, ok } from '../../../src/meta/state/result.js';
import { compareStrings } from '../../../src/meta/state/canonical.js';
import { isUserEvent } from '../../../src/meta/state/records/users.js';

type QuotaCommand = { kind: 'quota.set'; user: string; bytesPerSec: number } | { kind: 'quota.remove'; user: string };
type QuotaEvent = { type: 'quota.changed'; user: string; bytesPerSec?: number };
type QuotasState = Map<string, number>;

const quotasRecord = defineRecord({
  name: 'quotas',
  commands: ['quota.set', 'quota.remove'],
  initial: (): QuotasState => new Map(),
  validate(raw: unknown): QuotaCommand {
    const kind = Fields.of(raw, 'quota').oneOf('kind', ['quota.set', 'quota.remove'] as const);
    const f = Fields.of(raw, kind);
    const user = f.str('user', { max: 255 });
    return kind === 'quota.set' ? { kind, user, bytesPerSec: f.int('bytesPerSec', { min: 1 }) } : { kind, user };
  },
  apply(state: QuotasState, cmd: QuotaCommand): ApplyOutput<QuotaEvent> {
    if (cmd.kind === 'quota.set') {
      state.set(cmd.user, cmd.bytesPerSec);
      return { result: ok(), events: [{ type: 'quota.changed', user: cmd.user, bytesPerSec: cmd.bytesPerSec }] };
    }
    if (!state.delete(cmd.user)) return { result: fail('not_found', `no quota for '${cmd.user}'`), events: [] };
    return { result: ok(), events: [{ type: 'quota.changed', user: cmd.user }] };
  },
  // Follows another record type's events: a deleted user's quota goes with it.
  react(state: QuotasState, event: EventBase): QuotaEvent[] {
    if (!isUserEvent(event) || event.type !== 'user.deleted') return [];
    const user = event.user.username;
    return state.delete(user) ? [{ type: 'quota.changed', user }] : [];
  },
  snapshot: (state: QuotasState) => [...state.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([user, bytesPerSec]) => ({ user, bytesPerSec })),
  restore(json: unknown): QuotasState {
    return new Map(
      checkList(json, 'quotas', (v, w) => {
        const f = Fields.of(v, w);
        return [f.str('user'), f.int('bytesPerSec', { min: 1 })] as const;
      }),
    );
  },
  query: (read: () => QuotasState) => ({
    get: (user: string): number | undefined => read().get(user),
  }),
});

const extended = [...defaultRecords, quotasRecord] as const;

describe('extending the machine with a new record type', () => {
  it('routes, reacts, publishes and exposes a typed view for the new record type', () => {
    const m = new MetaStateMachine(extended);
    const events: string[] = [];
    m.subscribe((c) => events.push(c.event.type));
    let i = 0;
    assert.equal(m.apply(++i, encodeCommand({ kind: 'user.create', username: 'alice', passwordHash: 'h' })).ok, true);
    assert.equal(m.apply(++i, encodeEnvelope({ kind: 'quota.set', user: 'alice', bytesPerSec: 1_000_000 })).ok, true);
    const q: number | undefined = m.view.quotas.get('alice'); // typed: no cast needed
    assert.equal(q, 1_000_000);
    assert.equal(m.view.users.get('alice')?.username, 'alice', 'default views are still there');
    const bad = m.apply(++i, encodeEnvelope({ kind: 'quota.set', user: 'alice', bytesPerSec: 0 }));
    assert.ok(!bad.ok && bad.code === 'invalid');
    assert.equal(m.apply(++i, encodeCommand({ kind: 'user.delete', username: 'alice' })).ok, true);
    assert.equal(m.view.quotas.get('alice'), undefined);
    assert.deepEqual(events, ['user.created', 'quota.changed', 'user.deleted', 'quota.changed']);
    assert.ok(m.commandKinds().includes('quota.set'));
  });

  it('snapshots the new record type; old snapshots restore with it empty; old builds refuse the new snapshot', () => {
    const plain = createMetaStateMachine();
    plain.apply(1, encodeCommand({ kind: 'config.set', key: 'k', value: 'v' }));

    const m = new MetaStateMachine(extended);
    m.restore(plain.snapshot());
    assert.equal(m.view.config.get('k'), 'v');
    assert.equal(m.view.quotas.get('x'), undefined);
    m.apply(2, encodeEnvelope({ kind: 'quota.set', user: 'x', bytesPerSec: 5 }));

    const copy = new MetaStateMachine(extended);
    copy.restore(m.snapshot());
    assert.deepEqual(copy.snapshot(), m.snapshot());
    assert.equal(copy.view.quotas.get('x'), 5);

    assert.throws(() => createMetaStateMachine().restore(m.snapshot()), MetaSnapshotError);
  });

  it('an unextended machine answers the new kinds with unknown_kind', () => {
    const r = createMetaStateMachine().apply(1, encodeEnvelope({ kind: 'quota.set', user: 'x', bytesPerSec: 5 }));
    assert.ok(!r.ok && r.code === 'unknown_kind');
  });
});
