import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Harness, T0 } from './support.js';

describe('nodes record', () => {
  it('registers a node as alive with its addresses and times', () => {
    const h = new Harness();
    h.ok({
      kind: 'node.register',
      nodeId: 2,
      roles: ['broker', 'journal'],
      grpcAddr: '10.0.0.2:1228',
      httpAddr: '10.0.0.2:58080',
      listeners: [{ name: 'mqtt', protocol: 'mqtt', address: '10.0.0.2:1883' }],
      nowMs: T0,
    });
    assert.deepEqual(h.view.nodes.get(2), {
      id: 2,
      roles: ['broker', 'journal'],
      grpcAddr: '10.0.0.2:1228',
      httpAddr: '10.0.0.2:58080',
      listeners: [{ name: 'mqtt', protocol: 'mqtt', address: '10.0.0.2:1883' }],
      state: 'alive',
      registeredAtMs: T0,
      lastStateChangeMs: T0,
      lastHeartbeatMs: T0,
    });
    assert.ok(Object.isFrozen(h.view.nodes.get(2)), 'records handed out are frozen');
    h.ok({ kind: 'node.register', nodeId: 1, roles: ['meta'], grpcAddr: 'h1:1228', nowMs: T0 });
    assert.deepEqual(h.view.nodes.list().map((n) => n.id), [1, 2]);
    assert.deepEqual(h.view.nodes.withRole('broker').map((n) => n.id), [2]);
    assert.deepEqual(h.view.nodes.get(1)?.listeners, []);
  });

  it('treats a re-registration as a new incarnation and reports the previous record', () => {
    const h = new Harness();
    h.ok({ kind: 'node.register', nodeId: 1, roles: ['broker'], grpcAddr: 'a:1', nowMs: T0 });
    h.ok({ kind: 'node.setState', nodeId: 1, state: 'dead', nowMs: T0 + 10_000 });
    h.ok({ kind: 'node.register', nodeId: 1, roles: ['broker'], grpcAddr: 'b:1', nowMs: T0 + 20_000 });
    const n = h.view.nodes.get(1);
    assert.equal(n?.grpcAddr, 'b:1');
    assert.equal(n?.state, 'alive');
    assert.equal(n?.registeredAtMs, T0 + 20_000);
    const last = h.changes.at(-1)?.event;
    assert.equal(last?.type, 'node.registered');
    if (last?.type === 'node.registered') assert.equal(last.previous?.grpcAddr, 'a:1');
  });

  it('changes state, publishing only real transitions', () => {
    const h = new Harness();
    h.ok({ kind: 'node.register', nodeId: 1, roles: ['broker'], grpcAddr: 'a:1', nowMs: T0 });
    h.ok({ kind: 'node.setState', nodeId: 1, state: 'suspect', nowMs: T0 + 5000, lastHeartbeatMs: T0 + 1000 });
    let n = h.view.nodes.get(1);
    assert.equal(n?.state, 'suspect');
    assert.equal(n?.lastStateChangeMs, T0 + 5000);
    assert.equal(n?.lastHeartbeatMs, T0 + 1000);
    const events = h.changes.length;
    h.ok({ kind: 'node.setState', nodeId: 1, state: 'suspect', nowMs: T0 + 6000 });
    assert.equal(h.changes.length, events, 'same state: no event');
    h.ok({ kind: 'node.setState', nodeId: 1, state: 'alive', nowMs: T0 + 7000 });
    n = h.view.nodes.get(1);
    assert.equal(n?.lastHeartbeatMs, T0 + 7000, 'turning alive means a heartbeat was just seen');
    const last = h.changes.at(-1)?.event;
    assert.ok(last?.type === 'node.stateChanged' && last.previous === 'suspect' && last.node.state === 'alive');
    assert.deepEqual(h.view.nodes.withRole('broker', 'dead'), []);
  });

  it('removes a node; unknown nodes are not_found', () => {
    const h = new Harness();
    h.fails({ kind: 'node.setState', nodeId: 7, state: 'dead', nowMs: T0 }, 'not_found');
    h.fails({ kind: 'node.remove', nodeId: 7 }, 'not_found');
    h.ok({ kind: 'node.register', nodeId: 7, roles: ['journal'], grpcAddr: 'j:1', nowMs: T0 });
    h.ok({ kind: 'node.remove', nodeId: 7 });
    assert.equal(h.view.nodes.has(7), false);
    assert.deepEqual(h.eventTypes(), ['node.registered', 'node.removed']);
  });

  it('validates roles and addresses', () => {
    const h = new Harness();
    const base = { kind: 'node.register', nodeId: 1, grpcAddr: 'a:1', nowMs: T0 };
    h.fails({ ...base, roles: [] }, 'invalid');
    h.fails({ ...base, roles: ['broker', 'broker'] }, 'invalid', /twice/);
    h.fails({ ...base, roles: ['router'] }, 'invalid');
    h.fails({ ...base, roles: ['broker'], grpcAddr: 'no-port' }, 'invalid', /host:port/);
    h.fails({ ...base, roles: ['broker'], listeners: [{ name: 'mqtt' }] }, 'invalid');
    h.fails({ kind: 'node.setState', nodeId: 1, state: 'zombie', nowMs: T0 }, 'invalid');
  });
});
