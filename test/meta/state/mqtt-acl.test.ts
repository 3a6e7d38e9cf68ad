import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MqttAclEntry } from '../../../src/meta/state/records/mqtt-acl.js';
import { createMetaStateMachine } from '../../../src/meta/state/default-records.js';
import { MetaSnapshotError } from '../../../src/meta/state/result.js';
import { Harness, replay } from './support.js';
import type { MetaCommand } from '../../../src/meta/state/commands.js';

const topics = (h: Harness): string[] => h.view.mqttAcl.list().map((r) => r.topic);

describe('MQTT ACL record', () => {
  it('appends rules with increasing ids and inserts at a position', () => {
    const h = new Harness();
    const a = h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'publish', topic: 'a/#' }) as MqttAclEntry;
    assert.deepEqual(a, { id: 1, permission: 'allow', action: 'publish', topic: 'a/#' });
    h.ok({ kind: 'mqtt.acl.add', permission: 'deny', action: 'all', topic: '#' });
    const c = h.ok({ kind: 'mqtt.acl.add', permission: 'deny', action: 'subscribe', topic: 'users/%u/#', user: 'bob', clientId: 'c9', position: 0 }) as MqttAclEntry;
    assert.equal(c.id, 3);
    h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'x', position: 3 });
    assert.deepEqual(topics(h), ['users/%u/#', 'a/#', '#', 'x']);
    assert.deepEqual(h.view.mqttAcl.list().map((r) => r.id), [3, 1, 2, 4]);
    assert.deepEqual(h.view.mqttAcl.get(3), { id: 3, permission: 'deny', action: 'subscribe', topic: 'users/%u/#', user: 'bob', clientId: 'c9' });
    assert.equal(h.view.mqttAcl.count(), 4);
    assert.ok(Object.isFrozen(h.view.mqttAcl.get(1)));
    const ev = h.changes[2]?.event;
    assert.ok(ev?.type === 'mqtt.acl.added' && ev.position === 0 && ev.rule.id === 3);
    h.fails({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'y', position: 5 }, 'invalid', /position/);
  });

  it('removes by id; ids are never reused', () => {
    const h = new Harness();
    h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'a' });
    h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'b' });
    const removed = h.ok({ kind: 'mqtt.acl.remove', id: 1 }) as MqttAclEntry;
    assert.equal(removed.topic, 'a');
    h.fails({ kind: 'mqtt.acl.remove', id: 1 }, 'not_found');
    h.fails({ kind: 'mqtt.acl.remove', id: 0 }, 'invalid');
    const c = h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'c' }) as MqttAclEntry;
    assert.equal(c.id, 3);
    assert.deepEqual(h.eventTypes(), ['mqtt.acl.added', 'mqtt.acl.added', 'mqtt.acl.removed', 'mqtt.acl.added']);
  });

  it('replaces the whole list; the same list again changes nothing', () => {
    const h = new Harness();
    h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'old' });
    const rules = [
      { permission: 'allow', action: 'publish', topic: 'sensors/%c/#' },
      { permission: 'deny', action: 'all', topic: '#', user: 'guest' },
    ] as const;
    const out = h.ok({ kind: 'mqtt.acl.replace', rules }) as MqttAclEntry[];
    assert.deepEqual(out.map((r) => r.id), [2, 3]);
    assert.deepEqual(h.view.mqttAcl.list(), [
      { id: 2, permission: 'allow', action: 'publish', topic: 'sensors/%c/#' },
      { id: 3, permission: 'deny', action: 'all', topic: '#', user: 'guest' },
    ]);
    const ev = h.changes.at(-1)?.event;
    assert.ok(ev?.type === 'mqtt.acl.replaced' && ev.previous.length === 1 && ev.rules.length === 2);
    const events = h.changes.length;
    h.ok({ kind: 'mqtt.acl.replace', rules });
    assert.equal(h.changes.length, events, 'an identical replace publishes nothing');
    assert.deepEqual(h.view.mqttAcl.list().map((r) => r.id), [2, 3], 'and keeps the ids');
    h.ok({ kind: 'mqtt.acl.replace', rules: [] });
    assert.deepEqual(h.view.mqttAcl.list(), []);
    assert.equal((h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'z' }) as MqttAclEntry).id, 4);
  });

  it('validates rules', () => {
    const h = new Harness();
    const rule = { kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'a' };
    h.ok(rule as MetaCommand);
    h.fails({ ...rule, permission: 'maybe' }, 'invalid', /permission/);
    h.fails({ ...rule, action: 'read' }, 'invalid', /action/);
    h.fails({ ...rule, topic: '' }, 'invalid');
    h.fails({ ...rule, topic: 'a/#/b' }, 'invalid', /'#'/);
    h.fails({ ...rule, topic: 'a+' }, 'invalid');
    h.fails({ ...rule, topic: '$share/g/a' }, 'invalid', /shared/);
    h.fails({ ...rule, user: '' }, 'invalid', /user/);
    h.fails({ ...rule, clientId: 3 }, 'invalid', /clientId/);
    h.fails({ ...rule, position: -1 }, 'invalid');
    h.fails({ ...rule, position: 1.5 }, 'invalid');
    h.fails({ kind: 'mqtt.acl.replace', rules: [rule, { ...rule, action: 'x' }] }, 'invalid', /'rules'\[1\]: 'action'/);
    h.fails({ kind: 'mqtt.acl.replace', rules: 'all' }, 'invalid');
    h.fails({ kind: 'mqtt.acl.remove', id: '1' }, 'invalid');
  });

  it('snapshots and restores the order, ids and counter deterministically', () => {
    const history: MetaCommand[] = [
      { kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'b' },
      { kind: 'mqtt.acl.add', permission: 'deny', action: 'subscribe', topic: 'a/+', clientId: 'x', position: 0 },
      { kind: 'mqtt.acl.add', permission: 'allow', action: 'publish', topic: 'c', user: 'u' },
      { kind: 'mqtt.acl.remove', id: 3 },
    ];
    const a = new Harness();
    const b = new Harness();
    assert.deepEqual(replay(a, history), replay(b, history));
    assert.deepEqual(a.machine.snapshot(), b.machine.snapshot());

    const restored = createMetaStateMachine();
    restored.restore(a.machine.snapshot());
    assert.deepEqual(restored.view.mqttAcl.list(), a.view.mqttAcl.list());
    assert.deepEqual(restored.snapshot(), a.machine.snapshot());
    const r = new Harness(restored);
    assert.equal((r.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'd' }) as MqttAclEntry).id, 4, 'the counter survives the snapshot');
  });

  it('rejects corrupt snapshots', () => {
    const h = new Harness();
    h.ok({ kind: 'mqtt.acl.add', permission: 'allow', action: 'all', topic: 'b' });
    const doc = JSON.parse(new TextDecoder().decode(h.machine.snapshot())) as { records: Record<string, unknown> };
    const rule = { id: 1, permission: 'allow', action: 'all', topic: 'b' };
    const bad = [
      { nextId: 2, rules: [rule, rule] },
      { nextId: 1, rules: [rule] },
      { nextId: 2, rules: [{ ...rule, topic: 'a/#/b' }] },
      { nextId: 2 },
      [],
    ];
    for (const acl of bad) {
      const m = createMetaStateMachine();
      assert.throws(() => m.restore(new TextEncoder().encode(JSON.stringify({ ...doc, records: { ...doc.records, mqttAcl: acl } }))), MetaSnapshotError, JSON.stringify(acl));
    }
    const older = { ...doc, records: { ...doc.records } };
    delete older.records['mqttAcl'];
    const m = createMetaStateMachine();
    m.restore(new TextEncoder().encode(JSON.stringify(older)));
    assert.deepEqual(m.view.mqttAcl.list(), [], 'a snapshot from before this record type starts it empty');
  });
});
