/**
 * Message semantics of the RocketMQ server in-process (memory engine, fake
 * meta, raw gRPC client): transactions (commit, rollback, the check-back over
 * Telemetry, giving up), delay messages in the timer store (delivery, recall),
 * max delivery attempts and the DLQ (by receive, and by
 * ForwardMessageToDeadLetterQueue), and half messages and timers kept across
 * a restart of the server on the same storage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { RocketmqMetrics } from '../../../src/broker/rocketmq/metrics.js';
import type { RocketmqSettings } from '../../../src/broker/rocketmq/ports.js';
import { messagingServiceDefinition } from '../../../src/broker/rocketmq/proto.js';
import { RocketmqServer } from '../../../src/broker/rocketmq/server.js';
import { MemoryEngine } from '../../../src/storage/memory/engine.js';
import { FakeMeta } from './harness.js';

const settings: RocketmqSettings = {
  autoCreateTopics: false,
  defaultQueues: 1,
  maxBodyBytes: 1024,
  longPollingTimeoutMs: 3000,
  receiveBatchSize: 32,
  minInvisibleMs: 100,
  maxInvisibleMs: 60_000,
  maxInflightPerQueue: 1000,
  consumeFrom: 'first',
  offsetCommitIntervalMs: 50,
  maxDeliveryAttempts: 2,
  groupMaxDeliveryAttempts: { 'g-once': 1 },
  transactionCheck: { firstCheckMs: 300, intervalMs: 300, maxChecks: 2 },
};

type Any = Record<string, any>;
type UnaryClientMethod = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: Any) => void) => void;

let engine: MemoryEngine;
let meta: FakeMeta;
let server: RocketmqServer;
let client: grpc.Client & Record<string, any>;

function md(clientId = 'test-client'): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('x-mq-client-id', clientId);
  return m;
}

function call(method: string, req: unknown, clientId?: string): Promise<Any> {
  return new Promise((resolve, reject) => (client[method] as UnaryClientMethod).call(client, req, md(clientId), (err, res) => (err ? reject(err) : resolve(res))));
}

function receive(group: string, topic: string, extra: Any = {}): Promise<Any[]> {
  const req = { group: { name: group }, messageQueue: { topic: { name: topic }, id: 0 }, filterExpression: { type: 'TAG', expression: '*' }, batchSize: 10, invisibleDuration: { seconds: 5 }, longPollingTimeout: { seconds: 0, nanos: 300e6 }, ...extra };
  return new Promise((resolve, reject) => {
    const out: Any[] = [];
    const stream = client['ReceiveMessage'](req, md()) as grpc.ClientReadableStream<Any>;
    stream.on('data', (d: Any) => out.push(d));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
}

/** The messages of a receive (none when it answered MESSAGE_NOT_FOUND). */
async function messages(group: string, topic: string, extra: Any = {}): Promise<Any[]> {
  return (await receive(group, topic, extra)).filter((r) => r['message']).map((r) => r['message']);
}

function message(topic: string, body: string, system: Any = {}): Any {
  return { topic: { name: topic }, body: Buffer.from(body), userProperties: {}, systemProperties: { messageId: `id-${body}`, ...system } };
}

const send = (topic: string, body: string, system: Any = {}, clientId?: string) => call('SendMessage', { messages: [message(topic, body, system)] }, clientId);
const end = (topic: string, body: string, transactionId: string, resolution: string, source = 'SOURCE_CLIENT') =>
  call('EndTransaction', { topic: { name: topic }, messageId: `id-${body}`, transactionId, resolution, source });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(): Promise<void> {
  server = new RocketmqServer({ host: '127.0.0.1', port: 0, advertisedHost: '127.0.0.1', meta, storage: () => engine, settings, metrics: new RocketmqMetrics(new Registry()), log: pino({ level: 'silent' }) });
  await server.start();
  meta.port = server.port()!;
  const Ctor = grpc.makeGenericClientConstructor(messagingServiceDefinition(), 'MessagingService');
  client = new Ctor(`127.0.0.1:${meta.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
}

async function stopServer(): Promise<void> {
  client?.close();
  await server?.stop();
}

before(async () => {
  engine = new MemoryEngine({ maxBytesPerShard: 1 << 20, retentionMs: -1, retentionBytes: -1, retentionCheckIntervalMs: 0 });
  meta = new FakeMeta(engine);
  await meta.createTopic('tx', 1, { 'message.type': 'TRANSACTION' });
  await meta.createTopic('timed', 1, { 'message.type': 'DELAY' });
  await meta.createTopic('poison', 1, {});
  await startServer();
});

after(async () => {
  await stopServer();
  await engine?.close();
});

describe('rocketmq semantics: transactions', () => {
  it('a half message is invisible; COMMIT delivers it (a repeat is fine, a ROLLBACK then is refused)', async () => {
    const sent = await send('tx', 'commit-me', { messageType: 'TRANSACTION' });
    assert.equal(sent['status'].code, 'OK');
    const txn = sent['entries'][0].transactionId as string;
    assert.ok(txn.length > 0, 'the answer carries a transaction id');
    assert.deepEqual(await messages('g-tx', 'tx'), [], 'no consumer sees a half message');
    assert.equal((await end('tx', 'commit-me', txn, 'COMMIT'))['status'].code, 'OK');
    const [m] = await messages('g-tx', 'tx');
    assert.equal(m?.body.toString(), 'commit-me');
    assert.equal(m.systemProperties.messageId, 'id-commit-me');
    assert.equal(m.systemProperties.messageType, 'TRANSACTION');
    assert.equal((await end('tx', 'commit-me', txn, 'COMMIT'))['status'].code, 'OK', 'a repeated COMMIT');
    assert.equal((await end('tx', 'commit-me', txn, 'ROLLBACK'))['status'].code, 'INVALID_TRANSACTION_ID');
    await call('AckMessage', { group: { name: 'g-tx' }, topic: { name: 'tx' }, entries: [{ messageId: 'x', receiptHandle: m.systemProperties.receiptHandle }] });
  });

  it('ROLLBACK discards it; bad EndTransactions get their codes', async () => {
    const sent = await send('tx', 'roll-me', { messageType: 'TRANSACTION' });
    const txn = sent['entries'][0].transactionId as string;
    assert.equal((await end('tx', 'other-body', txn, 'COMMIT'))['status'].code, 'INVALID_TRANSACTION_ID', 'wrong message id');
    assert.equal((await end('tx', 'roll-me', txn, 'TRANSACTION_RESOLUTION_UNSPECIFIED'))['status'].code, 'BAD_REQUEST');
    assert.equal((await end('tx', 'roll-me', 'no-such-txn', 'COMMIT'))['status'].code, 'INVALID_TRANSACTION_ID');
    assert.equal((await end('tx', 'roll-me', txn, 'ROLLBACK'))['status'].code, 'OK');
    assert.deepEqual(await messages('g-tx', 'tx'), []);
  });

  it('a silent producer is asked over its Telemetry stream (RecoverOrphanedTransactionCommand) and answers with EndTransaction', async () => {
    const stream = client['Telemetry'](md('producer-x')) as grpc.ClientDuplexStream<Any, Any>;
    const commands: Any[] = [];
    stream.on('data', (d: Any) => commands.push(d));
    stream.on('error', () => undefined);
    stream.write({ settings: { clientType: 'PRODUCER', publishing: { topics: [{ name: 'tx' }] } } });
    try {
      const sent = await send('tx', 'ask-me', { messageType: 'TRANSACTION', tag: 'T' }, 'producer-x');
      const txn = sent['entries'][0].transactionId as string;
      const deadline = Date.now() + 5000;
      let recover: Any | undefined;
      while (!recover && Date.now() < deadline) {
        recover = commands.find((c) => c['recoverOrphanedTransactionCommand'])?.['recoverOrphanedTransactionCommand'];
        if (!recover) await sleep(50);
      }
      assert.ok(recover, 'the broker asked');
      assert.equal(recover.transactionId, txn);
      assert.equal(recover.message.topic.name, 'tx');
      assert.equal(recover.message.body.toString(), 'ask-me');
      assert.equal(recover.message.systemProperties.messageId, 'id-ask-me');
      assert.equal(recover.message.systemProperties.tag, 'T');
      assert.equal(recover.message.systemProperties.bodyDigest.type, 'MD5');
      assert.equal((await end('tx', 'ask-me', txn, 'COMMIT', 'SOURCE_SERVER_CHECK'))['status'].code, 'OK');
      const [m] = await messages('g-tx', 'tx');
      assert.equal(m?.body.toString(), 'ask-me');
      await call('AckMessage', { group: { name: 'g-tx' }, topic: { name: 'tx' }, entries: [{ messageId: 'x', receiptHandle: m.systemProperties.receiptHandle }] });
    } finally {
      stream.end();
      stream.cancel();
    }
  });

  it('a half message nobody resolves is discarded after the last check', async () => {
    const sent = await send('tx', 'orphan', { messageType: 'TRANSACTION' }, 'gone-producer');
    const txn = sent['entries'][0].transactionId as string;
    const deadline = Date.now() + 8000;
    while (server.transactions.book.outcome(txn) === undefined && Date.now() < deadline) await sleep(100);
    assert.equal(server.transactions.book.outcome(txn), 'DISCARDED');
    const late = await end('tx', 'orphan', txn, 'COMMIT');
    assert.equal(late['status'].code, 'INVALID_TRANSACTION_ID');
    assert.match(late['status'].message, /DISCARDED/);
    assert.deepEqual(await messages('g-tx', 'tx'), []);
  });
});

describe('rocketmq semantics: delay messages', () => {
  it('wait in the timer store, not in the group state, and are delivered at their time with it', async () => {
    const due = Date.now() + 1200;
    const sent = await send('timed', 'later', { messageType: 'DELAY', deliveryTimestamp: { seconds: Math.floor(due / 1000), nanos: (due % 1000) * 1e6 } });
    assert.equal(sent['status'].code, 'OK');
    assert.ok(sent['entries'][0].recallHandle, 'a recall handle');
    assert.equal(server.timers.size, 1);
    assert.deepEqual(await messages('g-timed', 'timed'), []);
    assert.equal(server.consumption.inflightTotal(), 0);
    let got: Any[] = [];
    const deadline = Date.now() + 4000;
    while (got.length === 0 && Date.now() < deadline) got = await messages('g-timed', 'timed', { longPollingTimeout: { seconds: 1 } });
    assert.ok(Date.now() >= due, 'not before its time');
    assert.equal(got[0]?.body.toString(), 'later');
    assert.equal(Number(got[0].systemProperties.deliveryTimestamp.seconds), Math.floor(due / 1000));
    assert.equal(server.timers.size, 0);
    await call('AckMessage', { group: { name: 'g-timed' }, topic: { name: 'timed' }, entries: [{ messageId: 'x', receiptHandle: got[0].systemProperties.receiptHandle }] });
  });

  it('RecallMessage cancels one not yet due, once; a bad handle is BAD_REQUEST', async () => {
    const due = Date.now() + 60_000;
    const sent = await send('timed', 'never', { messageType: 'DELAY', deliveryTimestamp: { seconds: Math.floor(due / 1000) } });
    const handle = sent['entries'][0].recallHandle as string;
    assert.equal((await call('RecallMessage', { topic: { name: 'poison' }, recallHandle: handle }))['status'].code, 'NOT_FOUND', 'another topic');
    const recalled = await call('RecallMessage', { topic: { name: 'timed' }, recallHandle: handle });
    assert.equal(recalled['status'].code, 'OK');
    assert.equal(recalled['messageId'], 'id-never');
    assert.equal((await call('RecallMessage', { topic: { name: 'timed' }, recallHandle: handle }))['status'].code, 'NOT_FOUND');
    assert.equal((await call('RecallMessage', { topic: { name: 'timed' }, recallHandle: 'junk' }))['status'].code, 'BAD_REQUEST');
    assert.equal(server.timers.size, 0);
  });
});

describe('rocketmq semantics: max delivery attempts and the DLQ', () => {
  it('a message delivered max times without an ack moves to %DLQ%{group}, where a consumer reads it', async () => {
    await send('poison', 'bad-1', { tag: 'P', keys: ['k1'] });
    const short = { invisibleDuration: { seconds: 0, nanos: 150e6 }, longPollingTimeout: { seconds: 1 } };
    const [first] = await messages('g-dlq', 'poison', short);
    assert.equal(first?.systemProperties.deliveryAttempt, 1);
    const [second] = await messages('g-dlq', 'poison', short);
    assert.equal(second?.systemProperties.deliveryAttempt, 2);
    await sleep(200);
    assert.deepEqual(await messages('g-dlq', 'poison', short), [], 'attempt 3 is past the maximum of 2');
    assert.ok(meta.topic('%DLQ%g-dlq'), 'the DLQ topic was created');
    const [dead] = await messages('dlq-reader', '%DLQ%g-dlq');
    assert.equal(dead?.body.toString(), 'bad-1');
    assert.equal(dead.systemProperties.messageId, 'id-bad-1');
    assert.equal(dead.systemProperties.tag, 'P');
    assert.deepEqual(dead.systemProperties.keys, ['k1']);
    assert.equal(dead.userProperties['DLQ_ORIGIN_TOPIC'], 'poison');
    assert.equal(dead.userProperties['DLQ_ORIGIN_MESSAGE_ID'], 'id-bad-1');
  });

  it("a group's own maximum applies (g-once: 1)", async () => {
    await send('poison', 'bad-2');
    await messages('g-once', 'poison', { invisibleDuration: { seconds: 0, nanos: 100e6 }, longPollingTimeout: { seconds: 1 } });
    await sleep(150);
    assert.deepEqual(await messages('g-once', 'poison', { longPollingTimeout: { seconds: 0, nanos: 200e6 } }), []);
    const dead = await messages('dlq-reader', '%DLQ%g-once');
    assert.deepEqual(dead.map((m) => m.body.toString()), ['bad-1', 'bad-2'], 'g-once never acked bad-1 either');
  });

  it('ForwardMessageToDeadLetterQueue moves a message now; its handle is then spent', async () => {
    await send('poison', 'bad-3');
    const got = await messages('g-fwd', 'poison');
    const m = got.find((x) => x.body.toString() === 'bad-3')!;
    const handle = m.systemProperties.receiptHandle;
    const req = { group: { name: 'g-fwd' }, topic: { name: 'poison' }, receiptHandle: handle, messageId: 'id-bad-3', deliveryAttempt: 1, maxDeliveryAttempts: 1 };
    assert.equal((await call('ForwardMessageToDeadLetterQueue', req))['status'].code, 'OK');
    assert.equal((await call('ForwardMessageToDeadLetterQueue', req))['status'].code, 'INVALID_RECEIPT_HANDLE');
    const ack = await call('AckMessage', { group: { name: 'g-fwd' }, topic: { name: 'poison' }, entries: [{ messageId: 'id-bad-3', receiptHandle: handle }] });
    assert.equal(ack['status'].code, 'INVALID_RECEIPT_HANDLE');
    const dead = await messages('dlq-reader', '%DLQ%g-fwd');
    assert.deepEqual(dead.map((x) => x.body.toString()), ['bad-3']);
  });
});

describe('rocketmq semantics: restart', () => {
  it('half messages and timers survive a restart of the server on the same storage', async () => {
    const sent = await send('tx', 'across', { messageType: 'TRANSACTION' });
    const txn = sent['entries'][0].transactionId as string;
    const due = Date.now() + 2500;
    await send('timed', 'across-timer', { messageType: 'DELAY', deliveryTimestamp: { seconds: Math.floor(due / 1000), nanos: (due % 1000) * 1e6 } });
    const gone = await send('timed', 'recalled-before', { messageType: 'DELAY', deliveryTimestamp: { seconds: Math.floor(due / 1000) } });
    assert.equal((await call('RecallMessage', { topic: { name: 'timed' }, recallHandle: gone['entries'][0].recallHandle }))['status'].code, 'OK');

    await stopServer();
    await startServer();
    assert.equal(server.timers.size, 1, 'the timer came back, the recalled one did not');
    assert.ok(server.transactions.book.get(txn), 'the half message came back');
    assert.equal((await end('tx', 'across', txn, 'COMMIT'))['status'].code, 'OK');
    const [m] = await messages('g-tx', 'tx');
    assert.equal(m?.body.toString(), 'across');
    let got: Any[] = [];
    const deadline = Date.now() + 5000;
    while (got.length === 0 && Date.now() < deadline) got = await messages('g-timed', 'timed', { longPollingTimeout: { seconds: 1 } });
    assert.deepEqual(got.map((x) => x.body.toString()), ['across-timer']);
  });
});
