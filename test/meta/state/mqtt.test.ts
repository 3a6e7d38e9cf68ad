import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mqttFilterMatches } from '../../../src/meta/state/records/mqtt-topic.js';
import { MetaCommandError } from '../../../src/meta/state/result.js';
import { Harness, T0 } from './support.js';

const session = {
  kind: 'mqtt.session.put',
  clientId: 'sensor-17',
  expiryIntervalSec: 3600,
  nodeId: 2,
  connected: true,
  lastSeenMs: T0,
  subscriptions: [
    { filter: 'home/+/temp', qos: 1 },
    { filter: '$share/g1/alerts/#', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 9 },
  ],
} as const;

describe('MQTT sessions record', () => {
  it('puts a whole session, filling subscription defaults, and replaces it on the next put', () => {
    const h = new Harness();
    h.ok(session);
    assert.deepEqual(h.view.mqttSessions.get('sensor-17'), {
      clientId: 'sensor-17',
      expiryIntervalSec: 3600,
      nodeId: 2,
      connected: true,
      lastSeenMs: T0,
      subscriptions: [
        { filter: 'home/+/temp', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { filter: '$share/g1/alerts/#', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 9 },
      ],
    });
    h.ok({ ...session, connected: false, lastSeenMs: T0 + 5, subscriptions: [] });
    const s = h.view.mqttSessions.get('sensor-17');
    assert.equal(s?.connected, false);
    assert.deepEqual(s?.subscriptions, []);
    const last = h.changes.at(-1)?.event;
    assert.ok(last?.type === 'mqtt.session.updated' && last.previous?.connected === true);
    h.ok({ ...session, clientId: 'a', nodeId: 3 });
    assert.deepEqual(h.view.mqttSessions.onNode(2).map((x) => x.clientId), ['sensor-17']);
    assert.deepEqual(h.view.mqttSessions.list().map((x) => x.clientId), ['a', 'sensor-17']);
    assert.equal(h.view.mqttSessions.count(), 2);
  });

  it('deletes a session; an unknown one is not_found', () => {
    const h = new Harness();
    h.fails({ kind: 'mqtt.session.delete', clientId: 'x' }, 'not_found');
    h.ok(session);
    h.ok({ kind: 'mqtt.session.delete', clientId: 'sensor-17' });
    assert.equal(h.view.mqttSessions.get('sensor-17'), undefined);
    assert.deepEqual(h.eventTypes(), ['mqtt.session.updated', 'mqtt.session.deleted']);
  });

  it('validates sessions and filters', () => {
    const h = new Harness();
    const sub = (s: object): object => ({ ...session, subscriptions: [s] });
    h.fails({ ...session, clientId: '' }, 'invalid');
    h.fails({ ...session, expiryIntervalSec: 2 ** 32 }, 'invalid');
    h.fails({ ...session, nodeId: 0 }, 'invalid');
    h.fails({ ...session, connected: 1 }, 'invalid');
    h.fails(sub({ filter: 'a/#/b', qos: 0 }), 'invalid', /'#'/);
    h.fails(sub({ filter: 'a/b#', qos: 0 }), 'invalid');
    h.fails(sub({ filter: 'a/+b', qos: 0 }), 'invalid', /'\+'/);
    h.fails(sub({ filter: '', qos: 0 }), 'invalid');
    h.fails(sub({ filter: '$share//a', qos: 0 }), 'invalid');
    h.fails(sub({ filter: '$share/g', qos: 0 }), 'invalid');
    h.fails(sub({ filter: 'a', qos: 3 }), 'invalid');
    h.fails(sub({ filter: 'a', qos: 0, retainHandling: 3 }), 'invalid');
    h.fails(sub({ filter: 'a', qos: 0, subscriptionId: 0 }), 'invalid');
    h.fails({ ...session, subscriptions: [{ filter: 'a', qos: 0 }, { filter: 'a', qos: 1 }] }, 'invalid', /twice/);
  });
});

describe('MQTT retained index record', () => {
  it('sets, replaces and clears retained pointers', () => {
    const h = new Harness();
    h.ok({ kind: 'mqtt.retained.set', topic: 'home/kitchen/temp', shard: '$retained-0', offset: 10, nowMs: T0 });
    h.ok({ kind: 'mqtt.retained.set', topic: 'home/kitchen/temp', shard: '$retained-0', offset: 11, nowMs: T0 + 1 });
    assert.deepEqual(h.view.mqttRetained.get('home/kitchen/temp'), { topic: 'home/kitchen/temp', shard: '$retained-0', offset: 11, updatedAtMs: T0 + 1 });
    const set = h.changes.at(-1)?.event;
    assert.ok(set?.type === 'mqtt.retained.set' && set.previous?.offset === 10);
    h.ok({ kind: 'mqtt.retained.clear', topic: 'home/kitchen/temp' });
    assert.equal(h.view.mqttRetained.get('home/kitchen/temp'), undefined);
    h.fails({ kind: 'mqtt.retained.clear', topic: 'home/kitchen/temp' }, 'not_found');
    h.fails({ kind: 'mqtt.retained.set', topic: 'home/+', shard: 's', offset: 1, nowMs: T0 }, 'invalid', /must not contain/);
    h.fails({ kind: 'mqtt.retained.set', topic: 'a', shard: '', offset: 1, nowMs: T0 }, 'invalid');
    h.fails({ kind: 'mqtt.retained.set', topic: 'a', shard: 's', offset: -1, nowMs: T0 }, 'invalid');
  });

  it('matches retained topics against a subscription filter', () => {
    const h = new Harness();
    for (const topic of ['home/kitchen/temp', 'home/hall/temp', 'home', 'office/temp', '$SYS/uptime', '/lead']) {
      h.ok({ kind: 'mqtt.retained.set', topic, shard: 's', offset: 1, nowMs: T0 });
    }
    const match = (f: string): string[] => h.view.mqttRetained.match(f).map((e) => e.topic);
    assert.deepEqual(match('home/+/temp'), ['home/hall/temp', 'home/kitchen/temp']);
    assert.deepEqual(match('home/#'), ['home', 'home/hall/temp', 'home/kitchen/temp']);
    assert.deepEqual(match('#'), ['/lead', 'home', 'home/hall/temp', 'home/kitchen/temp', 'office/temp'], "'#' skips $ topics");
    assert.deepEqual(match('$SYS/#'), ['$SYS/uptime']);
    assert.deepEqual(match('+/lead'), ['/lead']);
    assert.deepEqual(match('$share/g/office/+'), ['office/temp']);
    assert.throws(() => h.view.mqttRetained.match('a/#/b'), MetaCommandError);
  });

  it('implements MQTT filter matching edge cases', () => {
    assert.equal(mqttFilterMatches('a/+', 'a/'), true, "'+' matches an empty level");
    assert.equal(mqttFilterMatches('a/+', 'a'), false);
    assert.equal(mqttFilterMatches('+/+', '/x'), true);
    assert.equal(mqttFilterMatches('a/b', 'a/b/c'), false);
    assert.equal(mqttFilterMatches('+', '$x'), false);
  });
});
