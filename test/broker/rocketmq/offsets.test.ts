/**
 * The offset-based RPCs over raw gRPC (the Node client calls only
 * QueryAssignment among them): QueryAssignment, QueryOffset by position and
 * time, UpdateOffset / GetOffset on the group offsets pop consumption shares,
 * PullMessage's stream (status, messages, next offset) with long polling,
 * filters and offsets out of range; SQL92 filters on ReceiveMessage; and the
 * request latency histogram.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Any, type Harness } from './harness.js';

let h: Harness;

const mq = (topic: string, id = 0) => ({ topic: { name: topic }, id });
const status = (res: Any) => res['status'].code as string;
const pull = (topic: string, offset: number, extra: Any = {}) =>
  h.stream('PullMessage', { group: { name: 'puller' }, messageQueue: mq(topic, extra['queue'] ?? 0), offset, batchSize: 10, longPollingTimeout: { nanos: 100e6 }, ...extra });
const receive = (topic: string, group: string, extra: Any = {}) =>
  h.stream('ReceiveMessage', { group: { name: group }, messageQueue: mq(topic), filterExpression: { type: 'TAG', expression: '*' }, batchSize: 32, invisibleDuration: { seconds: 5 }, longPollingTimeout: { nanos: 200e6 }, ...extra });
/** A response without the oneof discriminator proto-loader adds (`content`). */
const plain = (responses: Any[]) => responses.map(({ content: _, ...rest }) => rest);
const bodies = (responses: Any[]) => responses.filter((r) => r['message']).map((r) => r['message'].body.toString());

before(async () => {
  h = await startHarness();
  await h.meta.createTopic('offsets', 1, {});
  await h.meta.createTopic('split', 3, { 'message.type': 'NORMAL' });
  await h.meta.createTopic('props', 1, {});
  await h.meta.createTopic('later', 1, { 'message.type': 'DELAY' });
  for (let i = 0; i < 5; i++) await h.send('offsets', `m${i}`);
});

after(async () => {
  await h?.close();
});

describe('rocketmq QueryAssignment', () => {
  it('assigns every broker serving the topic, as the route lists it', async () => {
    const res = await h.call('QueryAssignment', { topic: { name: 'split' }, group: { name: 'g' }, endpoints: { scheme: 'IPv4', addresses: [{ host: '127.0.0.1', port: h.meta.port }] } });
    assert.equal(status(res), 'OK');
    assert.equal(res['assignments'].length, 1);
    const q = res['assignments'][0].messageQueue;
    assert.equal(q.topic.name, 'split');
    assert.equal(q.permission, 'READ_WRITE');
    assert.deepEqual(q.acceptMessageTypes, ['NORMAL']);
    assert.deepEqual(q.broker.endpoints.addresses, [{ host: '127.0.0.1', port: h.meta.port }]);
  });

  it('an unknown topic is TOPIC_NOT_FOUND (never auto-created), a missing group ILLEGAL_CONSUMER_GROUP', async () => {
    assert.equal(status(await h.call('QueryAssignment', { topic: { name: 'nope' }, group: { name: 'g' } })), 'TOPIC_NOT_FOUND');
    assert.equal(h.meta.topic('nope'), undefined);
    assert.equal(status(await h.call('QueryAssignment', { topic: { name: 'split' } })), 'ILLEGAL_CONSUMER_GROUP');
  });
});

describe('rocketmq QueryOffset', () => {
  it('BEGINNING (also when left out, proto3 zero), END, and TIMESTAMP find offsets of the queue', async () => {
    assert.deepEqual([status(await h.call('QueryOffset', { messageQueue: mq('offsets') })), (await h.call('QueryOffset', { messageQueue: mq('offsets') }))['offset'] ?? 0], ['OK', 0]);
    assert.equal((await h.call('QueryOffset', { messageQueue: mq('offsets'), queryOffsetPolicy: 'END' }))['offset'], 5);
    const past = await h.call('QueryOffset', { messageQueue: mq('offsets'), queryOffsetPolicy: 'TIMESTAMP', timestamp: { seconds: 0 } });
    assert.equal(past['offset'] ?? 0, 0, 'before every message: the first');
    const future = await h.call('QueryOffset', { messageQueue: mq('offsets'), queryOffsetPolicy: 'TIMESTAMP', timestamp: { seconds: Math.floor(Date.now() / 1000) + 3600 } });
    assert.equal(future['offset'], 5, 'after every message: the end');
  });

  it('refuses a TIMESTAMP without time, a queue the topic lacks, and a queue another broker serves', async () => {
    assert.equal(status(await h.call('QueryOffset', { messageQueue: mq('offsets'), queryOffsetPolicy: 'TIMESTAMP' })), 'BAD_REQUEST');
    const bad = await h.call('QueryOffset', { messageQueue: mq('offsets', 7) });
    assert.equal(status(bad), 'BAD_REQUEST');
    assert.match(bad['status'].message, /queues 0\.\.0, not 7/);
    assert.equal(status(await h.call('QueryOffset', { messageQueue: mq('nope') })), 'TOPIC_NOT_FOUND');
    h.meta.elsewhere.add('split/2');
    try {
      const res = await h.call('QueryOffset', { messageQueue: mq('split', 2) });
      assert.equal(status(res), 'NOT_FOUND');
      assert.match(res['status'].message, /not served by broker 1/);
    } finally {
      h.meta.elsewhere.delete('split/2');
    }
  });
});

describe('rocketmq UpdateOffset and GetOffset', () => {
  it('GetOffset of a group that committed nothing is OFFSET_NOT_FOUND; UpdateOffset sets what GetOffset reads', async () => {
    const get = () => h.call('GetOffset', { group: { name: 'offset-group' }, messageQueue: mq('offsets') });
    assert.equal(status(await get()), 'OFFSET_NOT_FOUND');
    assert.equal(status(await h.call('UpdateOffset', { group: { name: 'offset-group' }, messageQueue: mq('offsets'), offset: 3 })), 'OK');
    const res = await get();
    assert.equal(status(res), 'OK');
    assert.equal(res['offset'], 3);
    assert.equal(h.meta.committed('offset-group', 'offsets', 0), 3, 'the same group offsets pop consumption commits');
  });

  it('refuses an offset past the end or below zero with ILLEGAL_OFFSET', async () => {
    const res = await h.call('UpdateOffset', { group: { name: 'offset-group' }, messageQueue: mq('offsets'), offset: 6 });
    assert.equal(status(res), 'ILLEGAL_OFFSET');
    assert.match(res['status'].message, /past the end/);
    assert.equal(status(await h.call('UpdateOffset', { group: { name: 'offset-group' }, messageQueue: mq('offsets'), offset: -1 })), 'ILLEGAL_OFFSET');
    assert.equal(status(await h.call('UpdateOffset', { messageQueue: mq('offsets'), offset: 1 })), 'ILLEGAL_CONSUMER_GROUP');
  });

  it('moves a pop consumer: the next receive of the group starts at the new offset', async () => {
    const first = await receive('offsets', 'moved');
    assert.deepEqual(bodies(first), ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.equal(status(await h.call('UpdateOffset', { group: { name: 'moved' }, messageQueue: mq('offsets'), offset: 3 })), 'OK');
    assert.deepEqual(bodies(await receive('offsets', 'moved')), ['m3', 'm4'], 'in-flight deliveries were dropped with the old state');
    await h.server.consumption.commit();
  });
});

describe('rocketmq PullMessage', () => {
  it('answers Status OK, the messages from the offset, then the next offset', async () => {
    const res = await pull('offsets', 1, { batchSize: 3 });
    assert.equal(res[0]!['status'].code, 'OK');
    assert.deepEqual(bodies(res), ['m1', 'm2', 'm3']);
    const last = res[res.length - 1]!;
    assert.equal(last['nextOffset'], 4);
    const m = res[1]!['message'];
    assert.equal(m.systemProperties.queueOffset, 1);
    assert.equal(m.systemProperties.messageId, 'id-offsets-m1');
    assert.equal(m.systemProperties.bodyDigest.type, 'MD5');
    assert.equal(h.meta.committed('puller', 'offsets', 0), undefined, 'a pull commits nothing');
  });

  it('at the end: long-polls, then MESSAGE_NOT_FOUND with the same next offset; a message sent meanwhile wakes it', async () => {
    const t0 = Date.now();
    const empty = await pull('offsets', 5);
    assert.ok(Date.now() - t0 >= 90, 'it waited for the poll');
    assert.deepEqual(plain(empty), [{ status: { code: 'MESSAGE_NOT_FOUND', message: 'no new message' } }, { nextOffset: 5 }]);

    const waiting = pull('offsets', 5, { longPollingTimeout: { seconds: 2 } });
    await new Promise((r) => setTimeout(r, 100));
    await h.send('offsets', 'm5');
    const woken = await waiting;
    assert.ok(Date.now() - t0 < 1500, 'woken before its poll ended');
    assert.deepEqual(bodies(woken), ['m5']);
    assert.equal(woken[woken.length - 1]!['nextOffset'], 6);
  });

  it('an offset outside the queue is ILLEGAL_OFFSET with the nearest valid next offset', async () => {
    const res = await pull('offsets', 99);
    assert.equal(res[0]!['status'].code, 'ILLEGAL_OFFSET');
    assert.match(res[0]!['status'].message, /past the end/);
    assert.equal(res[1]!['nextOffset'], 6);
  });

  it('filters by tag and SQL on the broker; what the filter refuses still moves the next offset', async () => {
    await h.send('props', 'p0', { tag: 'A', props: { n: '1' } });
    await h.send('props', 'p1', { tag: 'B', props: { n: '5' } });
    await h.send('props', 'p2', { tag: 'A', props: { n: '9' } });
    await h.send('props', 'p3', { tag: 'B', props: { n: '2' } });
    const byTag = await pull('props', 0, { filterExpression: { type: 'TAG', expression: 'B' } });
    assert.deepEqual(bodies(byTag), ['p1', 'p3']);
    const bySql = await pull('props', 0, { filterExpression: { type: 'SQL', expression: "n > 4 AND TAGS = 'A'" } });
    assert.deepEqual(bodies(bySql), ['p2']);
    assert.equal(bySql[bySql.length - 1]!['nextOffset'], 4);
    const none = await pull('props', 0, { filterExpression: { type: 'SQL', expression: 'n > 100' } });
    assert.deepEqual(plain(none), [{ status: { code: 'MESSAGE_NOT_FOUND', message: 'no new message' } }, { nextOffset: 4 }]);
  });

  it('a bad request gets a single status: bad SQL, queue out of range, unknown topic', async () => {
    const bad = await pull('props', 0, { filterExpression: { type: 'SQL', expression: 'n >' } });
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!['status'].code, 'ILLEGAL_FILTER_EXPRESSION');
    assert.match(bad[0]!['status'].message, /column 4/);
    assert.equal((await pull('props', 0, { queue: 1 }))[0]!['status'].code, 'BAD_REQUEST');
    assert.equal((await pull('nope', 0))[0]!['status'].code, 'TOPIC_NOT_FOUND');
    assert.equal((await pull('props', 0, { batchSize: 5000 }))[0]!['status'].code, 'BAD_REQUEST');
  });

  it('does not hand out a delay message before it is due', async () => {
    const due = Date.now() + 600;
    await h.send('later', 'soon', { messageType: 'DELAY', deliveryTimestamp: { seconds: Math.floor(due / 1000), nanos: (due % 1000) * 1e6 } });
    const early = await pull('later', 0);
    assert.deepEqual(bodies(early), []);
    assert.equal(early[early.length - 1]!['nextOffset'] ?? 0, 0);
    const waited = await pull('later', 0, { longPollingTimeout: { seconds: 2 } });
    assert.deepEqual(bodies(waited), ['soon']);
    assert.ok(Date.now() >= due);
  });
});

describe('rocketmq SQL92 filters on ReceiveMessage', () => {
  it('a group subscribing with SQL receives only the messages whose properties match', async () => {
    const res = await receive('props', 'sql-group', { filterExpression: { type: 'SQL', expression: 'n BETWEEN 2 AND 9 AND TAGS IN (\'B\')' } });
    assert.equal(res[0]!['status'].code, 'OK');
    assert.deepEqual(bodies(res), ['p1', 'p3']);
  });

  it('a bad SQL expression is ILLEGAL_FILTER_EXPRESSION', async () => {
    const res = await receive('props', 'sql-group-2', { filterExpression: { type: 'SQL', expression: "n = 'x" } });
    assert.equal(res.length, 1);
    assert.equal(res[0]!['status'].code, 'ILLEGAL_FILTER_EXPRESSION');
  });
});

describe('rocketmq request metrics', () => {
  it('counts requests by RPC and code and times them', async () => {
    const text = await h.registry.metrics();
    assert.match(text, /robust_rocketmq_requests_total\{rpc="PullMessage",code="OK"\} \d+/);
    assert.match(text, /robust_rocketmq_requests_total\{rpc="QueryOffset",code="BAD_REQUEST"\} \d+/);
    assert.match(text, /robust_rocketmq_request_duration_seconds_count\{rpc="QueryOffset"\} \d+/);
    assert.match(text, /robust_rocketmq_request_duration_seconds_bucket\{le="\+Inf",rpc="PullMessage"\} \d+/);
  });
});
