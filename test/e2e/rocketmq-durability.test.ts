/**
 * Delay messages and half messages of a real robust-server (local file
 * storage) survive a graceful restart (SIGTERM), driven by the official Node
 * client: a delay message sent before the restart is delivered after it, at
 * its time and not before; of two transactions left open across the restart,
 * one is committed by its producer afterwards and the other by the check-back
 * the restarted broker sends to a producer of the topic.
 *
 * The clients that ran before the restart are shut down before it: the Node
 * client leaves a Telemetry stream cut by a vanished server without a listener
 * for its late errors.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Producer, SimpleConsumer, type Message, type TransactionChecker } from 'rocketmq-client-nodejs';
import { COMMIT, UNSPECIFIED, createTopic, quietLogger, receiveBody } from '../support/rocketmq.js';
import { ServerProcess, removeDir, writeTestConfig, type TestNodePorts } from '../support/server.js';

let proc: ServerProcess | undefined;
let dir: string | undefined;
const closers: Array<() => Promise<unknown>> = [];

async function stopServer(p: ServerProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const { code } = await p.waitExit(15_000);
  assert.equal(code, 0, `clean exit on SIGTERM\n${p.stderr}`);
}


describe('rocketmq-client-nodejs: delay and half messages across a broker restart', () => {
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (proc) await stopServer(proc).catch(() => proc?.kill());
    if (dir) removeDir(dir);
  });

  it('a delay message is delivered at its time after a SIGTERM restart; open transactions are committed after it, by the producer and by the check-back', async () => {
    const cfg = await writeTestConfig('', undefined, { rocketmq: '' });
    dir = cfg.dir;
    const ports: TestNodePorts = cfg.ports;
    const endpoints = `127.0.0.1:${ports.rocketmq}`;
    proc = new ServerProcess(['start', cfg.file]);
    await proc.waitReady(ports.http);
    await createTopic(ports.http, 'rmq-d-delay', 1, { 'message.type': 'DELAY' });
    await createTopic(ports.http, 'rmq-d-tx', 1, { 'message.type': 'TRANSACTION' });

    // Before: a producer that never answers checks leaves two transactions open and sends a delay message.
    const silent: TransactionChecker = { check: async () => UNSPECIFIED };
    const p1 = new Producer({ endpoints, namespace: '', logger: quietLogger, topics: ['rmq-d-delay', 'rmq-d-tx'], checker: silent });
    await p1.startup();
    const due = new Date(Date.now() + 9000);
    const delayed = await p1.send({ topic: 'rmq-d-delay', body: Buffer.from('delayed-across'), deliveryTimestamp: due });
    const explicit = await p1.send({ topic: 'rmq-d-tx', body: Buffer.from('half-explicit') }, p1.beginTransaction());
    const checked = await p1.send({ topic: 'rmq-d-tx', body: Buffer.from('half-checked') }, p1.beginTransaction());
    await p1.shutdown();

    await stopServer(proc);
    proc = new ServerProcess(['start', cfg.file]);
    await proc.waitReady(ports.http);

    // After: a new producer of the topic, whose checker commits what it is asked about.
    const asked: string[] = [];
    const committing: TransactionChecker = {
      async check(m) {
        asked.push(m.messageId);
        return COMMIT;
      },
    };
    const p2 = new Producer({ endpoints, namespace: '', logger: quietLogger, topics: ['rmq-d-tx'], checker: committing });
    closers.push(() => p2.shutdown());
    await p2.startup();
    const txConsumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: 'g-d-tx', subscriptions: new Map([['rmq-d-tx', '*']]), awaitDuration: 1000, logger: quietLogger });
    closers.push(() => txConsumer.shutdown());
    await txConsumer.startup();
    const delayConsumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: 'g-d-delay', subscriptions: new Map([['rmq-d-delay', '*']]), awaitDuration: 1000, logger: quietLogger });
    closers.push(() => delayConsumer.shutdown());
    await delayConsumer.startup();

    await p2.endTransaction(explicit.endpoints, { topic: 'rmq-d-tx' } as Message, explicit.messageId, explicit.transactionId, COMMIT);
    const first = await receiveBody(txConsumer, 'half-explicit', 10_000);
    assert.ok(first, 'the half message committed after the restart is delivered');
    assert.equal(first.messageId, explicit.messageId);

    const second = await receiveBody(txConsumer, 'half-checked', 20_000);
    assert.ok(second, 'the other one is committed through the check-back');
    assert.equal(second.messageId, checked.messageId);
    assert.deepEqual(asked, [checked.messageId], 'only the still-open transaction was checked');

    const d = await receiveBody(delayConsumer, 'delayed-across', 12_000);
    assert.ok(d, 'the delay message came through the restart');
    assert.ok(Date.now() >= due.getTime(), 'not before its time');
    assert.equal(d.messageId, delayed.messageId);
    assert.equal(d.deliveryTimestamp?.getTime(), due.getTime());
  });
});
