/**
 * The RocketMQ gRPC server in-process, over a memory engine and a fake meta
 * port, driven by a raw gRPC client built from the same protos: the answers
 * the official client relies on (route, settings, the receive stream's
 * order), and the error codes for everything a client can get wrong.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { RocketmqMetrics } from '../../../src/broker/rocketmq/metrics.js';
import { messagingServiceDefinition } from '../../../src/broker/rocketmq/proto.js';
import { RocketmqServer } from '../../../src/broker/rocketmq/server.js';
import { MemoryEngine } from '../../../src/storage/memory/engine.js';
import { FakeMeta, settings, type Any } from './harness.js';

type UnaryClientMethod = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: Any) => void) => void;

let engine: MemoryEngine;
let meta: FakeMeta;
let server: RocketmqServer;
let client: grpc.Client & Record<string, any>;

function md(clientId = 'test-client'): grpc.Metadata {
  const m = new grpc.Metadata();
  if (clientId) m.set('x-mq-client-id', clientId);
  return m;
}

function call(method: string, req: unknown, clientId?: string): Promise<Any> {
  return new Promise((resolve, reject) => (client[method] as UnaryClientMethod).call(client, req, md(clientId), (err, res) => (err ? reject(err) : resolve(res))));
}

function receive(req: Any): Promise<Any[]> {
  return new Promise((resolve, reject) => {
    const out: Any[] = [];
    const stream = client['ReceiveMessage'](req, md()) as grpc.ClientReadableStream<Any>;
    stream.on('data', (d: Any) => out.push(d));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
}

function message(topic: string, body: string, extra: Any = {}): Any {
  const { props = {}, ...rest } = extra;
  return { topic: { name: topic }, body: Buffer.from(body), userProperties: props, systemProperties: { messageId: `id-${body}`, messageType: 'NORMAL', ...rest } };
}

const send = (topic: string, body: string, extra: Any = {}) => call('SendMessage', { messages: [message(topic, body, extra)] });
const receiveReq = (topic: string, extra: Any = {}) => ({ group: { name: 'g' }, messageQueue: { topic: { name: topic }, id: 0 }, filterExpression: { type: 'TAG', expression: '*' }, batchSize: 10, invisibleDuration: { seconds: 5 }, longPollingTimeout: { seconds: 0, nanos: 200e6 }, ...extra });

before(async () => {
  engine = new MemoryEngine({ maxBytesPerShard: 1 << 20, retentionMs: -1, retentionBytes: -1, retentionCheckIntervalMs: 0 });
  meta = new FakeMeta(engine);
  await meta.createTopic('plain', 2, {});
  await meta.createTopic('ordered', 3, { 'message.type': 'FIFO' });
  server = new RocketmqServer({ host: '127.0.0.1', port: 0, advertisedHost: '127.0.0.1', meta, storage: () => engine, settings, metrics: new RocketmqMetrics(new Registry()), log: pino({ level: 'silent' }) });
  await server.start();
  meta.port = server.port()!;
  const Ctor = grpc.makeGenericClientConstructor(messagingServiceDefinition(), 'MessagingService');
  client = new Ctor(`127.0.0.1:${meta.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
});

after(async () => {
  client?.close();
  await server?.stop();
  await engine?.close();
});

describe('rocketmq server: routes and settings', () => {
  it('QueryRoute lists one READ_WRITE queue 0 per broker with the topic type and the advertised endpoint', async () => {
    const res = await call('QueryRoute', { topic: { name: 'ordered' } });
    assert.equal(res['status'].code, 'OK');
    assert.equal(res['messageQueues'].length, 1);
    const mq = res['messageQueues'][0];
    assert.equal(mq.id, 0);
    assert.equal(mq.permission, 'READ_WRITE');
    assert.deepEqual(mq.acceptMessageTypes, ['FIFO']);
    assert.deepEqual(mq.broker.endpoints, { scheme: 'IPv4', addresses: [{ host: '127.0.0.1', port: meta.port }] });
  });

  it('an unknown topic is TOPIC_NOT_FOUND (auto-creation off); a bad name ILLEGAL_TOPIC', async () => {
    assert.equal((await call('QueryRoute', { topic: { name: 'nope' } }))['status'].code, 'TOPIC_NOT_FOUND');
    assert.equal((await send('nope', 'x'))['status'].code, 'TOPIC_NOT_FOUND');
    assert.equal((await call('QueryRoute', { topic: { name: 'bad/name' } }))['status'].code, 'ILLEGAL_TOPIC');
    assert.equal((await call('QueryRoute', {}))['status'].code, 'ILLEGAL_TOPIC');
    assert.equal((await receive(receiveReq('nope')))[0]!['status'].code, 'TOPIC_NOT_FOUND');
  });

  it('Telemetry answers a producer and a consumer with their settings, and a stream without client id with CLIENT_ID_REQUIRED', async () => {
    const exchange = (clientId: string, cmd: Any): Promise<Any> =>
      new Promise((resolve, reject) => {
        const stream = client['Telemetry'](md(clientId)) as grpc.ClientDuplexStream<Any, Any>;
        stream.once('data', (d: Any) => {
          stream.end();
          stream.cancel();
          resolve(d);
        });
        stream.once('error', (err: grpc.ServiceError) => (err.code === grpc.status.CANCELLED ? undefined : reject(err)));
        stream.write(cmd);
      });
    const producer = await exchange('p1', { settings: { clientType: 'PRODUCER', publishing: { topics: [{ name: 'plain' }] } } });
    assert.equal(producer['status'].code, 'OK');
    assert.deepEqual(producer['settings'].backoffPolicy.maxAttempts, 3);
    assert.deepEqual(producer['settings'].backoffPolicy.exponentialBackoff, { initial: { seconds: 0, nanos: 10e6 }, max: { seconds: 1, nanos: 0 }, multiplier: 2 });
    assert.deepEqual(producer['settings'].publishing, { topics: [{ name: 'plain' }], maxBodySize: 1024, validateMessageType: true });
    const consumer = await exchange('c1', { settings: { clientType: 'SIMPLE_CONSUMER', subscription: { group: { name: 'g' }, subscriptions: [{ topic: { name: 'ordered' }, expression: { type: 'TAG', expression: '*' } }] } } });
    assert.equal(consumer['settings'].subscription.receiveBatchSize, 32);
    assert.deepEqual(consumer['settings'].subscription.longPollingTimeout, { seconds: 2, nanos: 0 });
    assert.equal(consumer['settings'].subscription.fifo, true, 'the group reads a FIFO topic');
    const anonymous = await exchange('', { settings: { clientType: 'PRODUCER', publishing: {} } });
    assert.equal(anonymous['status'].code, 'CLIENT_ID_REQUIRED');
  });

  it('RPCs of later phases answer NOT_IMPLEMENTED in-band', async () => {
    assert.equal((await call('SyncLiteSubscription', { topic: { name: 'plain' } }))['status'].code, 'NOT_IMPLEMENTED');
    assert.equal((await call('Heartbeat', { clientType: 'PRODUCER' }))['status'].code, 'OK');
    assert.equal((await call('Heartbeat', { clientType: 'SIMPLE_CONSUMER' }))['status'].code, 'ILLEGAL_CONSUMER_GROUP');
    assert.equal((await call('NotifyClientTermination', {}))['status'].code, 'OK');
  });
});

describe('rocketmq server: send', () => {
  it('refuses what a RocketMQ proxy refuses, with its codes', async () => {
    assert.equal((await send('ordered', 'x'))['status'].code, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'NORMAL message to a FIFO topic');
    assert.equal((await send('plain', 'x', { messageType: 'NORMAL', messageGroup: 'g' }))['status'].code, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
    assert.equal((await send('plain', ''))['status'].code, 'MESSAGE_BODY_EMPTY');
    assert.equal((await send('plain', 'x'.repeat(2000), { messageId: 'big' }))['status'].code, 'MESSAGE_BODY_TOO_LARGE');
    assert.equal((await send('plain', 'x', { tag: 'a|b' }))['status'].code, 'ILLEGAL_MESSAGE_TAG');
    assert.equal((await send('plain', 'x', { keys: [' '] }))['status'].code, 'ILLEGAL_MESSAGE_KEY');
    assert.equal((await send('plain', 'x', { props: { 'rmq.id': 'forged' } }))['status'].code, 'ILLEGAL_MESSAGE_PROPERTY_KEY');
    assert.equal((await send('plain', 'x', { messageId: '' }))['status'].code, 'ILLEGAL_MESSAGE_ID');
    assert.equal((await send('ordered', 'x', { messageType: 'TRANSACTION' }))['status'].code, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'TRANSACTION message to a FIFO topic');
    assert.equal((await send('plain', 'x', { messageType: 'DELAY', deliveryTimestamp: { seconds: Math.floor(Date.now() / 1000) + 4 * 86400 } }))['status'].code, 'ILLEGAL_DELIVERY_TIME');
    assert.equal((await call('SendMessage', { messages: [] }))['status'].code, 'BAD_REQUEST');
  });

  it('FIFO messages of one group land in one queue, in order', async () => {
    const queues = new Set<number>();
    const offsets: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await send('ordered', `f${i}`, { messageType: 'FIFO', messageGroup: 'order-42' });
      assert.equal(res['status'].code, 'OK');
      offsets.push(res['entries'][0].offset);
      const stored = await Promise.all([0, 1, 2].map((q) => engine.shardInfo(`ordered-${q}`)));
      stored.forEach((s, q) => (s.endOffset > 0n ? queues.add(q) : undefined));
    }
    assert.equal(queues.size, 1);
    assert.deepEqual(offsets, [0, 1, 2, 3, 4, 5]);
  });
});

describe('rocketmq server: receive and ack', () => {
  it('answers Status OK, then the messages with digest, handle, attempt and offset; MESSAGE_NOT_FOUND when nothing comes', async () => {
    const sent = await send('plain', 'hello', { tag: 'A', keys: ['k'], props: { p: 'v' } });
    assert.equal(sent['status'].code, 'OK');
    const t0 = Date.now();
    const got = await receive(receiveReq('plain', { longPollingTimeout: { seconds: 3 } }));
    assert.equal(got[0]!['status'].code, 'OK');
    assert.equal(got.length, 2);
    const m = got[1]!['message'];
    assert.equal(m.body.toString(), 'hello');
    assert.deepEqual(m.userProperties, { p: 'v' });
    const sp = m.systemProperties;
    assert.equal(sp.tag, 'A');
    assert.deepEqual(sp.keys, ['k']);
    assert.equal(sp.messageId, 'id-hello');
    assert.deepEqual(sp.bodyDigest, { type: 'MD5', checksum: '5D41402ABC4B2A76B9719D911017C592' });
    assert.equal(sp.deliveryAttempt, 1);
    assert.equal(sp.queueOffset, 0);
    assert.match(sp.receiptHandle, /^r1\./);
    assert.ok(Date.now() - t0 < 1500, 'a message waiting is answered at once, not at the end of the poll');

    const t1 = Date.now();
    const none = await receive(receiveReq('plain'));
    assert.deepEqual(none.map((r) => r['status']?.code), ['MESSAGE_NOT_FOUND']);
    assert.ok(Date.now() - t1 >= 180, 'the long poll lasted its time');

    const ack = await call('AckMessage', { group: { name: 'g' }, topic: { name: 'plain' }, entries: [{ messageId: sp.messageId, receiptHandle: sp.receiptHandle }] });
    assert.equal(ack['status'].code, 'OK');
    const again = await call('AckMessage', { group: { name: 'g' }, topic: { name: 'plain' }, entries: [{ messageId: sp.messageId, receiptHandle: sp.receiptHandle }] });
    assert.equal(again['status'].code, 'INVALID_RECEIPT_HANDLE');
    const junk = await call('AckMessage', { group: { name: 'g' }, topic: { name: 'plain' }, entries: [{ messageId: 'x', receiptHandle: 'not a handle' }] });
    assert.equal(junk['entries'][0].status.code, 'INVALID_RECEIPT_HANDLE');

    await server.consumption.commit();
    const queue = sp.queueId as number;
    assert.equal(meta.committed('g', 'plain', queue), 1, 'the acked offset reached the group offsets');
  });

  it('a long poll is woken by a message sent while it waits', async () => {
    const waiting = receive(receiveReq('plain', { longPollingTimeout: { seconds: 3 } }));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await send('plain', 'late');
    const got = await waiting;
    assert.equal(got[0]!['status'].code, 'OK');
    assert.equal(got[1]!['message'].body.toString(), 'late');
    assert.ok(Date.now() - t0 < 700, `woken ${Date.now() - t0} ms after the send (by the data, not the once-a-second recheck)`);
    const sp = got[1]!['message'].systemProperties;
    await call('AckMessage', { group: { name: 'g' }, topic: { name: 'plain' }, entries: [{ messageId: sp.messageId, receiptHandle: sp.receiptHandle }] });
  });

  it('an unacked message comes back after its invisible time with attempt 2; ChangeInvisibleDuration issues a new handle', async () => {
    await send('plain', 'retry-me');
    const [, first] = await receive(receiveReq('plain', { invisibleDuration: { seconds: 0, nanos: 300e6 } }));
    const handle1 = first!['message'].systemProperties.receiptHandle;
    const changed = await call('ChangeInvisibleDuration', { group: { name: 'g' }, topic: { name: 'plain' }, receiptHandle: handle1, invisibleDuration: { seconds: 0, nanos: 200e6 }, messageId: 'x' });
    assert.equal(changed['status'].code, 'OK');
    assert.notEqual(changed['receiptHandle'], handle1);
    const stale = await call('ChangeInvisibleDuration', { group: { name: 'g' }, topic: { name: 'plain' }, receiptHandle: handle1, invisibleDuration: { seconds: 1 }, messageId: 'x' });
    assert.equal(stale['status'].code, 'INVALID_RECEIPT_HANDLE');
    const [, second] = await receive(receiveReq('plain', { longPollingTimeout: { seconds: 2 } }));
    assert.equal(second!['message'].body.toString(), 'retry-me');
    assert.equal(second!['message'].systemProperties.deliveryAttempt, 2);
    const expired = await call('AckMessage', { group: { name: 'g' }, topic: { name: 'plain' }, entries: [{ messageId: 'x', receiptHandle: changed['receiptHandle'] }] });
    assert.equal(expired['status'].code, 'INVALID_RECEIPT_HANDLE', 'the handle of the earlier delivery is stale');
    const ok = await call('AckMessage', { group: { name: 'g' }, topic: { name: 'plain' }, entries: [{ messageId: 'x', receiptHandle: second!['message'].systemProperties.receiptHandle }] });
    assert.equal(ok['status'].code, 'OK');
  });

  it('bad receive requests get their codes', async () => {
    const first = async (extra: Any) => (await receive(receiveReq('plain', extra)))[0]!['status'].code;
    assert.equal(await first({ invisibleDuration: { seconds: 0, nanos: 1e6 } }), 'ILLEGAL_INVISIBLE_TIME');
    assert.equal(await first({ filterExpression: { type: 'SQL', expression: 'a = ' } }), 'ILLEGAL_FILTER_EXPRESSION');
    assert.equal(await first({ filterExpression: { type: 'TAG', expression: 'A ||' } }), 'ILLEGAL_FILTER_EXPRESSION');
    assert.equal(await first({ group: { name: '' } }), 'ILLEGAL_CONSUMER_GROUP');
    assert.equal(await first({ batchSize: -1 }), 'BAD_REQUEST');
  });
});
