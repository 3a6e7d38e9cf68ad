import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { NodeMetrics } from '../../src/common/metrics.js';
import type { Service } from '../../src/common/service.js';
import { NodeLifecycle } from '../../src/server/node.js';

const log = pino({ level: 'silent' });

class FakeService implements Service {
  ready = false;
  constructor(
    readonly name: string,
    private readonly events: string[],
    private readonly behaviour: { failStart?: boolean; hangStop?: boolean; startDelayMs?: number } = {},
  ) {}
  async start(): Promise<void> {
    this.events.push(`start:${this.name}`);
    if (this.behaviour.startDelayMs) await new Promise((r) => setTimeout(r, this.behaviour.startDelayMs));
    if (this.behaviour.failStart) throw new Error(`${this.name} cannot start`);
    this.ready = true;
  }
  async stop(): Promise<void> {
    this.events.push(`stop:${this.name}`);
    if (this.behaviour.hangStop) await new Promise(() => {});
    this.ready = false;
  }
  isReady(): boolean {
    return this.ready;
  }
}

function lifecycle(services: Service[], onFatalStop: (code: number) => void = () => {}, stopDeadlineMs = 2_000) {
  const metrics = new NodeMetrics({ nodeId: 1, cluster: 't', version: '0', roles: [] });
  return { node: new NodeLifecycle(services, log, metrics, { stopDeadlineMs, onFatalStop }), metrics };
}

describe('NodeLifecycle', () => {
  it('starts services in order, each after the one before, and stops them in reverse', async () => {
    const events: string[] = [];
    const { node } = lifecycle([new FakeService('common', events, { startDelayMs: 20 }), new FakeService('meta', events), new FakeService('journal', events), new FakeService('broker', events)]);
    await node.start();
    assert.ok(node.isReady());
    assert.equal(await node.stop(), true);
    assert.deepEqual(events, ['start:common', 'start:meta', 'start:journal', 'start:broker', 'stop:broker', 'stop:journal', 'stop:meta', 'stop:common']);
    assert.ok(!node.isReady());
  });

  it('is not ready until every service is, and follows live readiness', async () => {
    const events: string[] = [];
    const a = new FakeService('a', events);
    const b = new FakeService('b', events, { startDelayMs: 50 });
    const { node, metrics } = lifecycle([a, b]);
    const starting = node.start();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(node.isReady(), false, 'not ready while b is starting');
    await starting;
    assert.equal(node.isReady(), true);
    a.ready = false; // e.g. meta lost its leader
    assert.equal(node.isReady(), false);
    assert.deepEqual(node.serviceStates(), [
      { name: 'a', ready: false },
      { name: 'b', ready: true },
    ]);
    const text = await metrics.registry.metrics();
    assert.match(text, /robust_service_ready\{service="a"\} 0/);
    assert.match(text, /robust_service_ready\{service="b"\} 1/);
    await node.stop();
  });

  it('a failed start stops what already started, in reverse, and reports the service', async () => {
    const events: string[] = [];
    const { node } = lifecycle([new FakeService('common', events), new FakeService('meta', events), new FakeService('journal', events, { failStart: true }), new FakeService('broker', events)]);
    await assert.rejects(node.start(), /journal: failed to start: journal cannot start/);
    assert.deepEqual(events, ['start:common', 'start:meta', 'start:journal', 'stop:journal', 'stop:meta', 'stop:common']);
  });

  it('a fatal error in a running service stops the node and exits with code 1', async () => {
    const events: string[] = [];
    let exitCode: number | undefined;
    const { node } = lifecycle([new FakeService('common', events), new FakeService('meta', events)], (code) => (exitCode = code));
    await node.start();
    node.fail('meta', new Error('disk gone'));
    await node.stop();
    await new Promise((r) => setImmediate(r));
    assert.equal(exitCode, 1);
    assert.deepEqual(events.slice(2), ['stop:meta', 'stop:common']);
  });

  it('abandons a service that does not stop within the deadline, and still stops the rest', async () => {
    const events: string[] = [];
    const { node } = lifecycle([new FakeService('common', events), new FakeService('stuck', events, { hangStop: true })], () => {}, 100);
    await node.start();
    const t0 = Date.now();
    assert.equal(await node.stop(), false);
    assert.ok(Date.now() - t0 < 1_000);
    assert.deepEqual(events.slice(2), ['stop:stuck', 'stop:common']);
  });

  it('stop during start halts the sequence', async () => {
    const events: string[] = [];
    const { node } = lifecycle([new FakeService('a', events, { startDelayMs: 30 }), new FakeService('b', events)]);
    const starting = node.start();
    await new Promise((r) => setTimeout(r, 5));
    await node.stop();
    await starting;
    assert.ok(!events.includes('start:b'), 'b never starts once stop was asked for');
    assert.equal(node.isReady(), false);
  });
});
