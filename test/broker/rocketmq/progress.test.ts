/**
 * Consumer progress (broker offset, consumer offset, lag, in flight) and the
 * lag gauge, and message lookups by key and id, over the in-process server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findById, findByKey } from '../../../src/broker/rocketmq/lookup.js';
import { messageIdTime } from '../../../src/broker/rocketmq/message-id.js';
import { ConsumerProgress, ROCKETMQ_OFFSET_METADATA, type CommittedQueueOffset, type GroupOffsetSource } from '../../../src/broker/rocketmq/progress.js';
import { startHarness, type Any, type Harness } from './harness.js';

let h: Harness;
let progress: ConsumerProgress;
/** Offsets of groups that are not RocketMQ's (a Kafka group), beside the fake meta's. */
const foreign: CommittedQueueOffset[] = [{ topic: 'tracked', queue: 0, offset: 1, metadata: '', commitTimeMs: 1 }];

const source = (): GroupOffsetSource => ({
  groups: () => [...new Set([...h.meta.offsets.keys()].map((k) => k.split('/')[0]!)), 'kafka-group'],
  offsets: (group) =>
    group === 'kafka-group'
      ? foreign
      : [...h.meta.offsets].filter(([k]) => k.startsWith(`${group}/`)).map(([k, offset]) => {
          const [, topic, queue] = k.split('/');
          return { topic: topic!, queue: Number(queue), offset, metadata: ROCKETMQ_OFFSET_METADATA, commitTimeMs: 1000 };
        }),
});

before(async () => {
  h = await startHarness();
  await h.meta.createTopic('tracked', 1, {});
  await h.meta.createTopic('wide', 3, {});
  for (let i = 0; i < 6; i++) await h.send('tracked', `t${i}`, { keys: [`k${i % 2}`, 'all'] });
  progress = new ConsumerProgress(h.server.deps, h.server.consumption, h.server.deps.clients, source());
  h.server.deps.metrics.setLagSource(() => progress.lag());
});

after(async () => {
  await h?.close();
});

const receive = (group: string, batchSize: number): Promise<Any[]> =>
  h.stream('ReceiveMessage', { group: { name: group }, messageQueue: { topic: { name: 'tracked' }, id: 0 }, batchSize, invisibleDuration: { seconds: 30 }, longPollingTimeout: { nanos: 100e6 } });

describe('rocketmq consumer progress', () => {
  it('per queue: broker offset, consumer offset (acked here, ahead of the commit), lag and in-flight', async () => {
    const got = (await receive('billing', 4)).filter((r) => r['message']);
    assert.equal(got.length, 4);
    // Ack the first two: the acked offset moves to 2; two stay in flight.
    const entries = got.slice(0, 2).map((r) => ({ messageId: r['message'].systemProperties.messageId, receiptHandle: r['message'].systemProperties.receiptHandle }));
    assert.equal((await h.call('AckMessage', { group: { name: 'billing' }, topic: { name: 'tracked' }, entries }))['status'].code, 'OK');
    await h.server.consumption.commit();
    assert.deepEqual(progress.groups(), ['billing'], 'the Kafka group (offsets without the RocketMQ mark) is left out');
    const g = await progress.group('billing');
    assert.deepEqual(g.queues, [{ topic: 'tracked', queue: 0, brokerOffset: 6, consumerOffset: 2, committedOffset: 2, lag: 4, inflight: 2, lastCommitMs: 1000 }]);
    assert.equal(g.totalLag, 4);
    assert.equal(g.inflight, 2);
  });

  it('a queue served elsewhere has no broker offset and no lag here', async () => {
    await h.meta.commitOffsets('wide-group', [{ topic: 'wide', queue: 0, offset: 0 }]);
    h.meta.elsewhere.add('wide/1');
    try {
      const g = await progress.group('wide-group');
      assert.deepEqual(
        g.queues.map((q) => [q.queue, q.brokerOffset, q.consumerOffset, q.lag]),
        [
          [0, 0, 0, 0],
          [1, null, null, null],
          [2, 0, 0, 0],
        ],
      );
    } finally {
      h.meta.elsewhere.delete('wide/1');
    }
  });

  it('the lag gauge sums the queues per group and topic', async () => {
    const text = await h.registry.metrics();
    assert.match(text, /robust_rocketmq_consumer_lag\{group="billing",topic="tracked"\} 4/);
    assert.match(text, /robust_rocketmq_consumer_lag\{group="wide-group",topic="wide"\} 0/);
    assert.doesNotMatch(text, /group="kafka-group"/);
  });

  it('a consumer the broker knows makes its group a RocketMQ group before it commits anything', async () => {
    h.server.deps.clients.seen('c1', Date.now(), { type: 'SIMPLE_CONSUMER', group: 'newcomer', topics: ['tracked'] });
    assert.ok(progress.has('newcomer'));
    const g = await progress.group('newcomer');
    assert.deepEqual(g.clients.map((c) => c.clientId), ['c1']);
    assert.deepEqual(g.queues.map((q) => [q.topic, q.brokerOffset, q.consumerOffset, q.committedOffset, q.lag]), [['tracked', 6, 0, null, 6]], 'it would start at the first message (consume_from)');
  });
});

describe('rocketmq message lookup', () => {
  const limits = { scanPerQueue: 100, maxResults: 10 };

  it('finds messages by key, in offset order, and says what it scanned', async () => {
    const t = h.meta.topic('tracked')!;
    const r = await findByKey(h.server.deps, t, 'k1', limits);
    assert.deepEqual(r.found.map((f) => [f.offset, f.message.body?.toString()]), [
      [1, 't1'],
      [3, 't3'],
      [5, 't5'],
    ]);
    assert.equal(r.scanned, 6);
    assert.deepEqual(r.queuesScanned, [0]);
    assert.equal(r.partial, false);
    assert.equal((await findByKey(h.server.deps, t, 'all', { scanPerQueue: 100, maxResults: 2 })).found.length, 2, 'at most maxResults');
    const window = await findByKey(h.server.deps, t, 'k0', { scanPerQueue: 3, maxResults: 10 });
    assert.deepEqual(window.found.map((f) => f.offset), [4], 'only the newest scanPerQueue messages');
    assert.equal(window.partial, true);
  });

  it('finds a message by id; an unknown id finds nothing', async () => {
    const t = h.meta.topic('tracked')!;
    const r = await findById(h.server.deps, t, 'id-tracked-t2', limits);
    assert.equal(r.found.length, 1);
    assert.equal(r.found[0]!.offset, 2);
    assert.deepEqual(r.found[0]!.message.systemProperties?.keys, ['k0', 'all']);
    assert.equal((await findById(h.server.deps, t, 'nope', limits)).found.length, 0);
  });

  it('reads the send time out of a RocketMQ 5 message id', () => {
    // 0x01, MAC, pid, seconds since 2021-01-01 = 0x00000E10 (one hour), sequence
    assert.equal(messageIdTime('01AABBCCDDEEFF123400000E1000000001'), Date.UTC(2021, 0, 1) + 3600_000);
    assert.equal(messageIdTime('id-tracked-t2'), undefined);
    assert.equal(messageIdTime('02AABBCCDDEEFF123400000E1000000001'), undefined);
  });
});
