import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Harness } from './support.js';

describe('cluster config record', () => {
  it('sets, overwrites and unsets keys with change events', () => {
    const h = new Harness();
    h.ok({ kind: 'config.set', key: 'mqtt.max_qos', value: '1' });
    h.ok({ kind: 'config.set', key: 'kafka.auto_create_topics', value: 'true' });
    h.ok({ kind: 'config.set', key: 'mqtt.max_qos', value: '2' });
    h.ok({ kind: 'config.set', key: 'mqtt.max_qos', value: '2' }); // unchanged: no event
    assert.equal(h.view.config.get('mqtt.max_qos'), '2');
    assert.deepEqual(h.view.config.entries(), [
      ['kafka.auto_create_topics', 'true'],
      ['mqtt.max_qos', '2'],
    ]);
    h.ok({ kind: 'config.unset', key: 'mqtt.max_qos' });
    assert.equal(h.view.config.get('mqtt.max_qos'), undefined);
    assert.deepEqual(
      h.changes.map((c) => c.event),
      [
        { type: 'config.changed', key: 'mqtt.max_qos', value: '1' },
        { type: 'config.changed', key: 'kafka.auto_create_topics', value: 'true' },
        { type: 'config.changed', key: 'mqtt.max_qos', value: '2', previous: '1' },
        { type: 'config.changed', key: 'mqtt.max_qos', previous: '2' },
      ],
    );
  });

  it('rejects bad keys and unsetting an absent key', () => {
    const h = new Harness();
    h.fails({ kind: 'config.unset', key: 'nope' }, 'not_found');
    h.fails({ kind: 'config.set', key: '', value: 'x' }, 'invalid');
    h.fails({ kind: 'config.set', key: 'has space', value: 'x' }, 'invalid');
    h.fails({ kind: 'config.set', key: 'k' }, 'invalid');
    h.ok({ kind: 'config.set', key: 'empty.ok', value: '' });
    assert.equal(h.view.config.get('empty.ok'), '');
  });
});
