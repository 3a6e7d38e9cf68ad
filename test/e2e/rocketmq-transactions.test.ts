/**
 * Transactions and dead letters of a real robust-server, driven by the
 * official Node client (rocketmq-client-nodejs) unchanged: a Producer with a
 * transaction checker sends transactional messages that it commits (a
 * SimpleConsumer then gets them), rolls back (never seen), or leaves open (the
 * broker checks back over Telemetry, the checker answers COMMIT); a poison
 * message never acked by its group moves, after the group's max delivery
 * attempts, to `%DLQ%{group}`, where a consumer of that topic reads it; and a
 * delay message is recalled before it is due. One node for the whole file.
 *
 * The hooks are the suite's, not the file's: node:test runs file-level after()
 * only once the event loop is idle, which the clients' timers prevent.
 */
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Producer, SimpleConsumer, type MessageView, type TransactionChecker } from 'rocketmq-client-nodejs';
import { COMMIT, UNSPECIFIED, createTopic, quietLogger, receiveBody } from '../support/rocketmq.js';
import { ServerProcess, removeDir, writeTestConfig, type TestNodePorts } from '../support/server.js';

let proc: ServerProcess;
let dir: string;
let ports: TestNodePorts;
let endpoints: string;
const closers: Array<() => Promise<unknown>> = [];

/** Bodies the checker answers COMMIT for; what it was asked about. */
const commitOnCheck = new Set<string>();
const checked: MessageView[] = [];
const checker: TransactionChecker = {
  async check(m) {
    checked.push(m);
    return commitOnCheck.has(m.body.toString()) ? COMMIT : UNSPECIFIED;
  },
};

async function producer(topics: string[]): Promise<Producer> {
  const p = new Producer({ endpoints, namespace: '', logger: quietLogger, topics, checker });
  closers.push(() => p.shutdown());
  await p.startup();
  return p;
}

async function consumer(group: string, topic: string, awaitDuration = 1500): Promise<SimpleConsumer> {
  const c = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: group, subscriptions: new Map([[topic, '*']]), awaitDuration, logger: quietLogger });
  closers.push(() => c.shutdown());
  await c.startup();
  return c;
}


describe('rocketmq-client-nodejs transactions and dead letters against robust-server', () => {
  before(async () => {
    const rocketmq = ['min_invisible_ms = 500', 'default_queues = 2', 'group_max_delivery_attempts = { "g-poison" = 2 }'].join('\n');
    const cfg = await writeTestConfig('', undefined, { rocketmq });
    ({ dir, ports } = cfg);
    endpoints = `127.0.0.1:${ports.rocketmq}`;
    proc = new ServerProcess(['start', cfg.file]);
    await proc.waitReady(ports.http);
    await createTopic(ports.http, 'rmq-tx', 2, { 'message.type': 'TRANSACTION' });
    await createTopic(ports.http, 'rmq-poison', 1, { 'message.type': 'NORMAL' });
    await createTopic(ports.http, 'rmq-recall', 1, { 'message.type': 'DELAY' });
  });

  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM');
      await proc.waitExit(15_000).catch(() => proc.kill());
    }
    if (dir) removeDir(dir);
  });

  it('commit: the half message is invisible until the commit, then delivered; rollback: never seen', async () => {
    const p = await producer(['rmq-tx']);
    const c = await consumer('g-tx', 'rmq-tx', 1000);

    const committed = p.beginTransaction();
    const receipt = await p.send({ topic: 'rmq-tx', tag: 'paid', keys: ['order-1'], body: Buffer.from('tx-commit') }, committed);
    assert.ok(receipt.transactionId, 'the broker gave a transaction id');
    const rolledBack = p.beginTransaction();
    await p.send({ topic: 'rmq-tx', body: Buffer.from('tx-rollback') }, rolledBack);

    assert.deepEqual(await c.receive(16, 10_000), [], 'no half message is delivered');
    await committed.commit();
    await rolledBack.rollback();
    const m = await receiveBody(c, 'tx-commit', 10_000);
    assert.ok(m, 'the committed message arrived');
    assert.equal(m.messageId, receipt.messageId);
    assert.equal(m.tag, 'paid');
    assert.deepEqual(m.keys, ['order-1']);
    assert.equal(m.corrupted, undefined);
    assert.equal(await receiveBody(c, 'tx-rollback', 3000), undefined, 'the rolled-back one never comes');
  });

  it('check-back: a transaction the producer leaves open is checked after 6 s; the checker answers COMMIT and the message is delivered', async () => {
    const p = await producer(['rmq-tx']);
    const c = await consumer('g-tx-check', 'rmq-tx', 1000);
    commitOnCheck.add('tx-checked');
    const t0 = Date.now();
    const receipt = await p.send({ topic: 'rmq-tx', body: Buffer.from('tx-checked') }, p.beginTransaction());
    const m = await receiveBody(c, 'tx-checked', 20_000);
    assert.ok(m, 'delivered once the checker committed it');
    assert.ok(Date.now() - t0 >= 6000, `not before the first check, 6 s after the send (${Date.now() - t0} ms)`);
    const asked = checked.find((v) => v.messageId === receipt.messageId);
    assert.ok(asked, 'the checker was asked about this message');
    assert.equal(asked.topic, 'rmq-tx');
    assert.equal(asked.body.toString(), 'tx-checked');
  });

  it('a poison message never acked reaches %DLQ%{group} after the group\'s max delivery attempts (2), and a consumer of that topic reads it', async () => {
    const p = await producer(['rmq-poison']);
    const receipt = await p.send({ topic: 'rmq-poison', tag: 'bad', body: Buffer.from('poison') });
    const c = await consumer('g-poison', 'rmq-poison', 1000);
    const attempts: number[] = [];
    const deadline = Date.now() + 10_000;
    while (attempts.length < 2 && Date.now() < deadline) {
      for (const m of await c.receive(16, 500)) if (m.messageId === receipt.messageId) attempts.push(m.deliveryAttempt ?? 0);
    }
    assert.deepEqual(attempts, [1, 2]);
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(await c.receive(16, 500), [], 'not delivered a third time');

    const dlq = await consumer('g-dlq-reader', '%DLQ%g-poison', 1000);
    const dead = await receiveBody(dlq, 'poison', 10_000);
    assert.ok(dead, 'the DLQ consumer got it');
    assert.equal(dead.messageId, receipt.messageId);
    assert.equal(dead.tag, 'bad');
    assert.equal(dead.properties.get('DLQ_ORIGIN_TOPIC'), 'rmq-poison');
    const metrics = await new Promise<string>((resolve, reject) =>
      httpGet({ host: '127.0.0.1', port: ports.http, path: '/metrics', agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      }).on('error', reject),
    );
    assert.match(metrics, /robust_rocketmq_dead_letters_total\{[^}]*group="g-poison"[^}]*\} 1\b/);
    assert.match(metrics, /robust_rocketmq_open_transactions\{?[^\n]*\}? \d+/);
    assert.match(metrics, /robust_rocketmq_delayed_messages\{?[^\n]*\}? \d+/);
  });

  it('a delay message recalled before it is due is never delivered', async () => {
    const p = await producer(['rmq-recall']);
    const c = await consumer('g-recall', 'rmq-recall', 1000);
    const recalled = await p.send({ topic: 'rmq-recall', body: Buffer.from('recalled'), deliveryTimestamp: new Date(Date.now() + 2000) });
    const kept = await p.send({ topic: 'rmq-recall', body: Buffer.from('kept'), deliveryTimestamp: new Date(Date.now() + 2000) });
    assert.ok(recalled.recallHandle, 'the send answer has a recall handle');
    const r = await p.recallMessage('rmq-recall', recalled.recallHandle);
    assert.equal(r.messageId, recalled.messageId);
    await assert.rejects(p.recallMessage('rmq-recall', recalled.recallHandle), /NOT_FOUND|40400|delivered or recalled/);
    const bodies: string[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && bodies.length < 2) {
      for (const m of await c.receive(16, 10_000)) {
        bodies.push(m.body.toString());
        await c.ack(m);
      }
      if (bodies.includes('kept')) break;
    }
    assert.deepEqual(bodies, ['kept']);
    assert.ok(kept.messageId);
  });
});
