/**
 * The RocketMQ operator surface of a real robust-server: robust-ctl rocketmq
 * updateTopic / topicList / topicRoute / consumerProgress / queryMsgByKey /
 * queryMsgById / deleteTopic over the admin API, against messages the official
 * Node client sent and consumed (a SimpleConsumer that leaves a lag, a
 * PushConsumer — which asks QueryAssignment — that consumes everything, and a
 * SimpleConsumer with a SQL92 filter), and the lag gauge on /metrics.
 *
 * The hooks are the suite's, not the file's (see rocketmq-client.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConsumeResult, FilterExpression, Producer, PushConsumer, SimpleConsumer, type MessageView } from 'rocketmq-client-nodejs';
import { admin, quietLogger as quiet } from '../support/rocketmq.js';
import { BIN, ServerProcess, removeDir, run, until, writeTestConfig, type TestNodePorts } from '../support/server.js';

let proc: ServerProcess;
let dir: string;
let ports: TestNodePorts;
let endpoints: string;
const closers: Array<() => Promise<unknown>> = [];
/** FilterType.SQL in definition.proto (the client's enum lives in its generated protobuf code). */
const SQL_FILTER = 2;

const ctl = (...args: string[]) => run(BIN('robust-ctl'), ['--server', `127.0.0.1:${ports.http}`, ...args]);

async function ctlJson<T>(...args: string[]): Promise<T> {
  const r = await ctl('--output', 'json', ...args);
  assert.equal(r.code, 0, `robust-ctl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const adminGet = (path: string) => admin(ports.http, 'GET', path);

const metrics = async (): Promise<string> => (await adminGet('/metrics')).text;

interface GroupView {
  total_lag: number;
  inflight: number;
  queues: Array<{ topic: string; queue: number; broker_offset: number | null; consumer_offset: number | null; lag: number | null }>;
}

describe('robust-ctl rocketmq against a node the official client uses', () => {
  const sent: Array<{ id: string; key: string; body: string }> = [];
  /** Where each sent message was stored (from queryMsgByKey): message id -> [queue, offset]. */
  const stored = new Map<string, [number, number]>();

  before(async () => {
    // A short long-poll: a PushConsumer's shutdown waits for its receive in flight.
    const cfg = await writeTestConfig('', undefined, { rocketmq: 'min_invisible_ms = 500\noffset_commit_interval_ms = 100\nlong_polling_timeout_ms = 1000\nauto_create_topics = false' });
    ({ dir, ports } = cfg);
    endpoints = `127.0.0.1:${ports.rocketmq}`;
    proc = new ServerProcess(['start', cfg.file]);
    await proc.waitReady(ports.http);
  });

  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM');
      await proc.waitExit(15_000).catch(() => proc.kill());
    }
    if (dir) removeDir(dir);
  });

  it('updateTopic creates a topic, adds queues and refuses what it cannot do; topicList shows it', async () => {
    const created = await ctl('rocketmq', 'updateTopic', 'ops-orders', '--queues', '2', '--type', 'normal');
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, 'created topic ops-orders (2 queues, message type NORMAL)\n');
    const grown = await ctl('rocketmq', 'updateTopic', 'ops-orders', '--queues', '3');
    assert.equal(grown.stdout, 'updated topic ops-orders: queues 2 -> 3 (3 queues, message type NORMAL)\n');
    const same = await ctl('rocketmq', 'updateTopic', 'ops-orders', '--type', 'NORMAL');
    assert.equal(same.stdout, 'topic ops-orders unchanged (3 queues, message type NORMAL)\n');

    const shrink = await ctl('rocketmq', 'updateTopic', 'ops-orders', '--queues', '1');
    assert.equal(shrink.code, 1);
    assert.match(shrink.stderr, /queues cannot be removed.*HTTP 400/);
    const badType = await ctl('rocketmq', 'updateTopic', 'ops-orders', '--type', 'BOGUS');
    assert.equal(badType.code, 1);
    assert.match(badType.stderr, /message\.type.*BOGUS.*HTTP 400/);
    const badName = await ctl('rocketmq', 'updateTopic', 'bad/name');
    assert.equal(badName.code, 1);
    const usage = await ctl('rocketmq', 'updateTopic', 'ops-orders', '--queues', 'x');
    assert.equal(usage.code, 2, 'a bad option value is a usage error');

    const list = await ctl('rocketmq', 'topicList');
    assert.match(list.stdout, /ops-orders\s+3\s+NORMAL\s+\S+\s+rocketmq/);
  });

  it('topicRoute lists the queues, their leader and the endpoint clients are routed to; an unknown topic is a 404', async () => {
    const route = await until('queue leaders', async () => {
      const r = await ctlJson<{ message_type: string; accept_message_types: string[]; queues: Array<{ queue: number; leader: number | null; endpoint: string | null }>; brokers: Array<{ endpoint: string; queues: number[] }> }>('rocketmq', 'topicRoute', 'ops-orders');
      return r.queues.every((q) => q.leader !== null && q.endpoint !== null) ? r : undefined;
    });
    assert.deepEqual(route.accept_message_types, ['NORMAL']);
    assert.deepEqual(
      route.queues.map((q) => [q.queue, q.leader, q.endpoint]),
      [0, 1, 2].map((q) => [q, 1, endpoints]),
    );
    assert.deepEqual(route.brokers.map((b) => [b.endpoint, b.queues]), [[endpoints, [0, 1, 2]]]);
    const table = await ctl('rocketmq', 'topicRoute', 'ops-orders');
    assert.match(table.stdout, /QUEUE\s+LEADER\s+REPLICAS\s+ENDPOINT/);
    const missing = await ctl('rocketmq', 'topicRoute', 'no-such-topic');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /topic "no-such-topic" does not exist \(HTTP 404, not_found\)/);
  });

  it('queryMsgByKey and queryMsgById find what a Producer sent', async () => {
    const producer = new Producer({ endpoints, namespace: '', logger: quiet, topics: ['ops-orders'] });
    closers.push(() => producer.shutdown());
    await producer.startup();
    for (let i = 0; i < 10; i++) {
      const body = `order-${i}`;
      const receipt = await producer.send({ topic: 'ops-orders', tag: i % 2 === 0 ? 'even' : 'odd', keys: [`key-${i}`, 'batch-1'], body: Buffer.from(body), properties: new Map([['amount', String(i * 10)]]) });
      sent.push({ id: receipt.messageId, key: `key-${i}`, body });
    }

    const byKey = await ctl('rocketmq', 'queryMsgByKey', 'ops-orders', 'key-3');
    assert.equal(byKey.code, 0, byKey.stderr);
    assert.match(byKey.stdout, new RegExp(`${sent[3]!.id}\\s+odd\\s+key-3,batch-1\\s+\\S+\\s+order-3`));
    assert.match(byKey.stdout, /scanned 10 messages on queues 0,1,2\n/);
    const batch = await ctlJson<{ messages: Array<{ message_id: string; queue: number; offset: number }> }>('rocketmq', 'queryMsgByKey', 'ops-orders', 'batch-1');
    assert.deepEqual(batch.messages.map((m) => m.message_id).sort(), sent.map((s) => s.id).sort());
    for (const m of batch.messages) stored.set(m.message_id, [m.queue, m.offset]);
    const capped = await ctlJson<{ messages: unknown[] }>('rocketmq', 'queryMsgByKey', 'ops-orders', 'batch-1', '--max', '4');
    assert.equal(capped.messages.length, 4);
    const none = await ctl('rocketmq', 'queryMsgByKey', 'ops-orders', 'nobody');
    assert.match(none.stdout, /no message with key "nobody"/);

    const one = await ctlJson<{ message_id: string; body: string; tag: string; keys: string[]; properties: Record<string, string>; type: string }>('rocketmq', 'queryMsgById', 'ops-orders', sent[6]!.id);
    assert.deepEqual([one.message_id, one.body, one.tag, one.keys, one.properties['amount'], one.type], [sent[6]!.id, 'order-6', 'even', ['key-6', 'batch-1'], '60', 'NORMAL']);
    const detail = await ctl('rocketmq', 'queryMsgById', 'ops-orders', sent[6]!.id);
    assert.match(detail.stdout, /body\s+order-6/);
    assert.match(detail.stdout, /amount\s+60/);
    const unknown = await ctl('rocketmq', 'queryMsgById', 'ops-orders', '01000000000000000000000000DEADBEEF');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no message "01000000000000000000000000DEADBEEF" among the 10 messages scanned/);
    const noTopic = await ctl('rocketmq', 'queryMsgByKey', 'no-such-topic', 'k');
    assert.match(noTopic.stderr, /HTTP 404/);
    const noKey = await adminGet('/api/v1/rocketmq/topics/ops-orders/messages');
    assert.equal(noKey.status, 400);
    assert.match((JSON.parse(noKey.text) as { error: { message: string } }).error.message, /"key" is required/);
    const badScan = await adminGet('/api/v1/rocketmq/topics/ops-orders/messages?key=k&scan=lots');
    assert.equal(badScan.status, 400);
    assert.match((JSON.parse(badScan.text) as { error: { message: string } }).error.message, /"scan" must be an integer/);
    assert.equal((await ctl('rocketmq', 'queryMsgByKey', 'ops-orders', 'k', '--scan', '0')).code, 2, 'checked by robust-ctl first');
  });

  it('consumerProgress shows a SimpleConsumer group\'s lag per queue and in flight; /metrics has the lag gauge', async () => {
    const consumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: 'ops-billing', subscriptions: new Map([['ops-orders', '*']]), awaitDuration: 1000, logger: quiet });
    closers.push(() => consumer.shutdown());
    await consumer.startup();
    const got: MessageView[] = [];
    while (got.length < 6) got.push(...(await consumer.receive(6 - got.length, 30_000)));
    const acked = got.slice(0, 4);
    for (const m of acked) await consumer.ack(m);

    // A queue's consumer offset is its first message not acked: unacked ones hold it back, as in RocketMQ.
    const ackedAt = new Set(acked.map((m) => stored.get(m.messageId)!.join('/')));
    const expected = [0, 1, 2].map((queue) => {
      const end = [...stored.values()].filter(([q]) => q === queue).length;
      let offset = 0;
      while (offset < end && ackedAt.has(`${queue}/${offset}`)) offset++;
      return [queue, end, offset, end - offset];
    });
    const totalLag = expected.reduce((n, e) => n + e[3]!, 0);
    let last: GroupView | undefined;
    const view = await until(`the acks in consumerProgress (expected per queue [queue, end, offset, lag] ${JSON.stringify(expected)})`, async () => {
      last = await ctlJson<GroupView>('rocketmq', 'consumerProgress', 'ops-billing');
      return last.inflight === 2 && last.total_lag === totalLag ? last : undefined;
    }).catch((err: Error) => assert.fail(`${err.message}; last answer: ${JSON.stringify(last)}`));
    assert.deepEqual(
      view.queues.map((q) => [q.queue, q.broker_offset, q.consumer_offset, q.lag]),
      expected,
    );
    assert.ok(totalLag >= 6, 'the 4 messages never received and the 2 in flight at least');
    const list = await ctl('rocketmq', 'consumerProgress');
    assert.match(list.stdout, new RegExp(`ops-billing\\s+1\\s+ops-orders\\s+${totalLag}\\s+2`));
    const table = await ctl('rocketmq', 'consumerProgress', 'ops-billing');
    assert.match(table.stdout, /TOPIC\s+QUEUE\s+BROKER_OFFSET\s+CONSUMER_OFFSET\s+LAG\s+INFLIGHT\s+LAST_COMMIT/);
    assert.match(table.stdout, /SIMPLE_CONSUMER/);
    assert.match(await metrics(), new RegExp(`robust_rocketmq_consumer_lag\\{group="ops-billing",topic="ops-orders"\\} ${totalLag}\n`));
    const unknown = await ctl('rocketmq', 'consumerProgress', 'nobody');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /HTTP 404/);
  });

  it('a PushConsumer (QueryAssignment, then receives) consumes everything: its lag goes to 0', async () => {
    const seen = new Set<string>();
    const push = new PushConsumer({
      endpoints,
      namespace: '',
      consumerGroup: 'ops-push',
      subscriptions: new Map([['ops-orders', '*']]),
      logger: quiet,
      messageListener: {
        consume(m: MessageView) {
          seen.add(m.messageId);
          return ConsumeResult.SUCCESS;
        },
      },
    });
    await push.startup();
    // The client's consume service logs to a file of its own whatever logger it is given, and its shutdown
    // leaves that logger's flush timer running, which would keep this process alive: close it too.
    const consumeLog = (push.getConsumeService() as unknown as { logger?: { close?: () => void } }).logger;
    closers.push(async () => {
      await push.shutdown();
      consumeLog?.close?.();
    });
    await until('every message pushed', async () => (seen.size >= 10 ? true : undefined), 20_000);
    assert.deepEqual([...seen].sort(), sent.map((s) => s.id).sort());
    await until('ops-push at lag 0', async () => ((await ctlJson<GroupView>('rocketmq', 'consumerProgress', 'ops-push')).total_lag === 0 ? true : undefined));
    assert.match(await metrics(), /robust_rocketmq_requests_total\{rpc="QueryAssignment",code="OK"\} [1-9]/);
  });

  it('a SimpleConsumer subscribing with SQL92 receives exactly the matching messages', async () => {
    const consumer = new SimpleConsumer({
      endpoints,
      namespace: '',
      consumerGroup: 'ops-sql',
      subscriptions: new Map([['ops-orders', new FilterExpression("amount >= 50 AND TAGS = 'even'", SQL_FILTER as never)]]),
      awaitDuration: 1000,
      logger: quiet,
    });
    closers.push(() => consumer.shutdown());
    await consumer.startup();
    const got: MessageView[] = [];
    const deadline = Date.now() + 10_000;
    while (got.length < 2 && Date.now() < deadline) got.push(...(await consumer.receive(16, 30_000)));
    got.push(...(await consumer.receive(16, 30_000))); // and nothing more within a long poll
    assert.deepEqual(got.map((m) => m.body.toString()).sort(), ['order-6', 'order-8']);
  });

  it('deleteTopic removes a topic', async () => {
    assert.equal((await ctl('rocketmq', 'updateTopic', 'ops-scratch', '--type', 'FIFO')).code, 0);
    const del = await ctl('rocketmq', 'deleteTopic', 'ops-scratch');
    assert.equal(del.stdout, 'deleted topic ops-scratch\n');
    assert.match((await ctl('rocketmq', 'topicRoute', 'ops-scratch')).stderr, /HTTP 404/);
    assert.match((await ctl('rocketmq', 'deleteTopic', 'ops-scratch')).stderr, /HTTP 404/);
  });
});
