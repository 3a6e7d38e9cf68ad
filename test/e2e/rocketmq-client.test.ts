/**
 * The RocketMQ 5 gRPC protocol of a real robust-server, driven by the official
 * Node client (rocketmq-client-nodejs) unchanged: a Producer sending normal
 * messages with tags, keys and properties, FIFO and delay messages, a SimpleConsumer
 * receiving with a tag filter, acking, letting a message's invisible time run
 * out and getting it again; a send of the wrong type for its topic; and one
 * topic shared with MQTT, and one with Kafka, in both directions. One node for
 * the whole file.
 *
 * The hooks are the suite's, not the file's: node:test runs file-level after()
 * only once the event loop is idle, which the clients' timers prevent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import mqtt from 'mqtt';
import { Producer, SimpleConsumer, type MessageView } from 'rocketmq-client-nodejs';
import { kafkaClient } from '../support/kafka.js';
import { admin as adminCall, createTopic as createTopicAt } from '../support/rocketmq.js';
import { messagingServiceDefinition } from '../../src/broker/rocketmq/proto.js';
import { ServerProcess, removeDir, writeTestConfig, type TestNodePorts } from '../support/server.js';

let proc: ServerProcess;
let dir: string;
let ports: TestNodePorts;
let endpoints: string;
/** Everything a test starts, shut down in after() whatever happened. */
const closers: Array<() => Promise<unknown>> = [];

const quiet = { info() {}, warn() {}, error() {}, debug() {}, close() {} };

function admin(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return adminCall(ports.http, method, path, body);
}

function createTopic(name: string, shards: number, config: Record<string, string> = {}): Promise<void> {
  return createTopicAt(ports.http, name, shards, config);
}

async function producer(topics: string[] = []): Promise<Producer> {
  const p = new Producer({ endpoints, namespace: '', logger: quiet, ...(topics.length > 0 ? { topics } : {}) });
  closers.push(() => p.shutdown());
  await p.startup();
  return p;
}

async function consumer(group: string, topic: string, filter: string, awaitDuration = 1500): Promise<SimpleConsumer> {
  const c = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: group, subscriptions: new Map([[topic, filter]]), awaitDuration, logger: quiet });
  closers.push(() => c.shutdown());
  await c.startup();
  return c;
}

/** Receives until `count` messages arrived (acking none) or the time is up. */
async function receiveCount(c: SimpleConsumer, count: number, invisibleMs = 10_000, timeoutMs = 15_000): Promise<MessageView[]> {
  const out: MessageView[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) out.push(...(await c.receive(32, invisibleMs)));
  return out;
}

describe('rocketmq-client-nodejs against robust-server', () => {
  before(async () => {
    const cfg = await writeTestConfig('', undefined, { mqtt: '', kafka: '', rocketmq: 'min_invisible_ms = 500\ndefault_queues = 4' });
    ({ dir, ports } = cfg);
    endpoints = `127.0.0.1:${ports.rocketmq}`;
    proc = new ServerProcess(['start', cfg.file]);
    await proc.waitReady(ports.http);
    await createTopic('rmq-normal', 2, { 'message.type': 'NORMAL' });
    await createTopic('rmq-fifo', 3, { 'message.type': 'FIFO' });
    await createTopic('rmq-delay', 1, { 'message.type': 'DELAY' });
    await createTopic('rmq-mqtt', 1);
  });

  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    // A graceful stop ends the clients' Telemetry streams cleanly: the client stops listening to them at
    // shutdown, so a stream cut by a killed server would surface as an uncaught error in this process.
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM');
      await proc.waitExit(15_000).catch(() => proc.kill());
    }
    if (dir) removeDir(dir);
  });

  it('a Producer sends tagged NORMAL messages; a SimpleConsumer filtering "TagA || TagC" gets exactly those, intact, and acks them', async () => {
    const p = await producer(['rmq-normal']);
    const sent = new Map<string, { tag: string; body: string }>();
    const tags = ['TagA', 'TagB', 'TagA', 'TagC', 'TagB', 'TagA'];
    for (const [i, tag] of tags.entries()) {
      const body = `normal-${i}`;
      const receipt = await p.send({ topic: 'rmq-normal', tag, keys: [`key-${i}`, 'shared'], body: Buffer.from(body), properties: new Map([['index', String(i)]]) });
      sent.set(receipt.messageId, { tag, body });
    }
    const c = await consumer('g-tags', 'rmq-normal', 'TagA || TagC');
    const got = await receiveCount(c, 4);
    assert.equal(got.length, 4);
    for (const m of got) {
      const s = sent.get(m.messageId);
      assert.ok(s, `unknown message id ${m.messageId}`);
      assert.ok(m.tag === 'TagA' || m.tag === 'TagC');
      assert.equal(m.tag, s.tag);
      assert.equal(m.body.toString(), s.body);
      assert.equal(m.corrupted, undefined, 'the MD5 body digest checks out');
      assert.equal(m.deliveryAttempt, 1);
      const i = s.body.slice('normal-'.length);
      assert.deepEqual(m.keys, [`key-${i}`, 'shared']);
      assert.equal(m.properties.get('index'), i);
      assert.equal(typeof m.offset, 'number');
      await c.ack(m);
    }
    assert.deepEqual((await c.receive(32, 10_000)).length, 0, 'TagB messages are not for this group, the rest are acked');

    const metrics = (await admin('GET', '/metrics')).text;
    assert.match(metrics, /robust_rocketmq_messages_in_total\{topic="rmq-normal"\} 6/);
    assert.match(metrics, /robust_rocketmq_acks_total\{topic="rmq-normal"\} 4/);
  });

  it('an unacked message comes back after its invisible time with delivery attempt 2; the first handle is then refused', async () => {
    const p = await producer();
    // A topic nobody created: the producer's route query creates it.
    const receipt = await p.send({ topic: 'rmq-auto-retry', body: Buffer.from('try again') });
    const c = await consumer('g-retry', 'rmq-auto-retry', '*');
    const [first] = await receiveCount(c, 1, 1000);
    assert.ok(first);
    assert.equal(first.messageId, receipt.messageId);
    assert.equal(first.deliveryAttempt, 1);
    const t0 = Date.now();
    const [second] = await receiveCount(c, 1, 10_000, 10_000);
    assert.ok(second, 'the message came back');
    assert.ok(Date.now() - t0 >= 500, 'not before its invisible time ran out');
    assert.equal(second.messageId, receipt.messageId);
    assert.equal(second.deliveryAttempt, 2);
    await assert.rejects(c.ack(first), (err: Error & { code?: number }) => err.name === 'BadRequestException' && err.code === 40013);
    await c.ack(second);
  });

  it('FIFO messages of one message group arrive in order, the next only after the previous was acked', async () => {
    const p = await producer(['rmq-fifo']);
    const groups = ['order-1', 'order-2'];
    for (let i = 0; i < 8; i++) {
      for (const g of groups) await p.send({ topic: 'rmq-fifo', messageGroup: g, body: Buffer.from(`${g}:${i}`) });
    }
    const c = await consumer('g-fifo', 'rmq-fifo', '*');
    const order = new Map<string, number[]>(groups.map((g) => [g, []]));
    const deadline = Date.now() + 20_000;
    while ([...order.values()].some((l) => l.length < 8) && Date.now() < deadline) {
      const batch = await c.receive(32, 10_000);
      const inBatch = batch.map((m) => m.messageGroup);
      assert.equal(new Set(inBatch).size, inBatch.length, `one message per group in a batch: ${inBatch.join(', ')}`);
      for (const m of batch) {
        assert.equal(m.deliveryAttempt, 1);
        const [g, i] = m.body.toString().split(':');
        assert.equal(m.messageGroup, g);
        order.get(g!)!.push(Number(i));
        await c.ack(m);
      }
    }
    for (const g of groups) assert.deepEqual(order.get(g), [0, 1, 2, 3, 4, 5, 6, 7], g);
  });

  it('a DELAY message is delivered at its delivery time, not before', async () => {
    const p = await producer(['rmq-delay']);
    const due = new Date(Date.now() + 1500);
    await p.send({ topic: 'rmq-delay', body: Buffer.from('later'), deliveryTimestamp: due });
    const c = await consumer('g-delay', 'rmq-delay', '*', 1000);
    assert.equal((await c.receive(32, 10_000)).length, 0, 'not yet due');
    const [m] = await receiveCount(c, 1, 10_000, 5000);
    assert.ok(m, 'delivered once due');
    assert.ok(Date.now() >= due.getTime() - 5, 'not before its delivery time');
    assert.equal(m.body.toString(), 'later');
    assert.equal(m.deliveryTimestamp?.getTime(), due.getTime());
    await c.ack(m);
  });

  it('a message of the wrong type for its topic is refused: by the client from the route, and by the broker with MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', async () => {
    const p = await producer(['rmq-fifo', 'rmq-normal']);
    await assert.rejects(p.send({ topic: 'rmq-fifo', body: Buffer.from('not fifo') }), /message type not match/);
    await assert.rejects(p.send({ topic: 'rmq-normal', messageGroup: 'g', body: Buffer.from('not normal') }), /message type not match/);

    // A client that does not check (or an old route) meets the broker's own check.
    const Ctor = grpc.makeGenericClientConstructor(messagingServiceDefinition(), 'MessagingService');
    const raw = new Ctor(endpoints, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    closers.push(async () => raw.close());
    const res = await new Promise<Record<string, any>>((resolve, reject) =>
      raw['SendMessage']({ messages: [{ topic: { name: 'rmq-fifo' }, body: Buffer.from('x'), systemProperties: { messageId: 'raw-1', messageType: 'NORMAL' } }] }, new grpc.Metadata(), (err: Error | null, r: Record<string, any>) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(res['status'].code, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
  });

  it('one topic, two protocols: an MQTT publish reaches the SimpleConsumer, a RocketMQ send reaches the MQTT subscriber', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ports.mqtt}`, { protocolVersion: 5, clientId: 'rmq-bridge-test', reconnectPeriod: 0 });
    closers.push(() => client.endAsync());
    const viaMqtt = new Promise<{ payload: string; props: unknown }>((resolve) =>
      client.on('message', (topic, payload, packet) => {
        if (payload.toString() === 'from-rocketmq') resolve({ payload: payload.toString(), props: packet.properties?.userProperties });
      }),
    );
    await client.subscribeAsync('rmq-mqtt', { qos: 1 });
    await client.publishAsync('rmq-mqtt', 'from-mqtt', { qos: 1, properties: { userProperties: { origin: 'mqtt' } } });

    const c = await consumer('g-mqtt', 'rmq-mqtt', '*');
    const [m] = await receiveCount(c, 1);
    assert.ok(m, 'the MQTT message was received');
    assert.equal(m.body.toString(), 'from-mqtt');
    assert.equal(m.properties.get('origin'), 'mqtt');
    assert.ok(!m.tag, 'an MQTT message has no tag');
    assert.match(m.messageId, /^[0-9A-F]{34}$/);
    await c.ack(m);

    const p = await producer(['rmq-mqtt']);
    await p.send({ topic: 'rmq-mqtt', body: Buffer.from('from-rocketmq'), properties: new Map([['origin', 'rocketmq']]) });
    let timer: NodeJS.Timeout | undefined;
    const got = await Promise.race([viaMqtt, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error('MQTT subscriber got nothing')), 5000)))]).finally(() => clearTimeout(timer));
    assert.equal(got.payload, 'from-rocketmq');
    assert.deepEqual({ ...(got.props as object) }, { origin: 'rocketmq' }, 'user properties, and none of the rmq.* system headers');
  });

  it('one topic, Kafka and RocketMQ: a kafkajs record reaches the SimpleConsumer, a RocketMQ send reaches a kafkajs consumer', async () => {
    await createTopic('rmq-kafka', 1);
    const kafka = kafkaClient(`127.0.0.1:${ports.kafka}`);
    const kp = kafka.producer();
    await kp.connect();
    closers.push(() => kp.disconnect());
    await kp.send({ topic: 'rmq-kafka', messages: [{ key: 'k1', value: 'from-kafka', headers: { origin: 'kafka' } }] });

    const c = await consumer('g-kafka', 'rmq-kafka', '*');
    const [m] = await receiveCount(c, 1);
    assert.ok(m, 'the Kafka record was received');
    assert.equal(m.body.toString(), 'from-kafka');
    assert.equal(m.properties.get('origin'), 'kafka', 'Kafka headers arrive as properties');
    await c.ack(m);

    const p = await producer(['rmq-kafka']);
    await p.send({ topic: 'rmq-kafka', tag: 'TagK', keys: ['order-1'], body: Buffer.from('from-rocketmq'), properties: new Map([['origin', 'rocketmq']]) });
    const kc = kafka.consumer({ groupId: 'kafka-reads-rmq', maxWaitTimeInMs: 200 });
    await kc.connect();
    closers.push(() => kc.disconnect());
    await kc.subscribe({ topic: 'rmq-kafka', fromBeginning: true });
    const seen: Array<{ value: string; origin: string | undefined }> = [];
    await kc.run({
      eachMessage: async ({ message }) => {
        seen.push({ value: message.value?.toString() ?? '', origin: message.headers?.['origin']?.toString() });
      },
    });
    const deadline = Date.now() + 20_000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen, [
      { value: 'from-kafka', origin: 'kafka' },
      { value: 'from-rocketmq', origin: 'rocketmq' },
    ]);
  });
});
