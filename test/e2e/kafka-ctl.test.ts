/**
 * The Kafka operator surface: robust-ctl kafka groups list | describe |
 * reset-offsets | delete over the admin API, and the robust_kafka_* metrics,
 * against a node that kafkajs clients use.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Consumer } from 'kafkajs';
import { kafkaClient, startKafkaNode, type KafkaNode } from '../support/kafka.js';
import { BIN, run } from '../support/server.js';

describe('robust-ctl kafka groups and Kafka metrics', () => {
  let node: KafkaNode;
  const ctl = (...args: string[]) => run(BIN('robust-ctl'), ['--server', `127.0.0.1:${node.ports.http}`, ...args]);

  before(async () => {
    node = await startKafkaNode();
    const admin = kafkaClient(node.broker).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'ops', numPartitions: 2 }] });
    await admin.disconnect();
    const producer = kafkaClient(node.broker).producer();
    await producer.connect();
    await producer.send({ topic: 'ops', messages: Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, value: `v${i}` })) });
    await producer.disconnect();
  });

  after(async () => {
    await node?.destroy();
  });

  async function consumeAll(groupId: string, n: number): Promise<Consumer> {
    const consumer = kafkaClient(node.broker).consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'ops', fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve) => {
      void consumer.run({
        autoCommitThreshold: 1,
        eachMessage: async () => {
          if (++seen === n) resolve();
        },
      });
    });
    return consumer;
  }

  it('lists and describes a live group with its members, offsets and lag', async () => {
    const consumer = await consumeAll('ops-group', 20);
    try {
      // Commits are asynchronous to eachMessage: wait until both partitions are committed at their end.
      let view: { state: string; members: unknown[]; offsets: Array<{ partition: number; committed_offset: number; end_offset: number; lag: number }>; total_lag: number } | undefined;
      for (let i = 0; i < 100; i++) {
        const r = await ctl('--output', 'json', 'kafka', 'groups', 'describe', 'ops-group');
        assert.equal(r.code, 0, r.stderr);
        view = JSON.parse(r.stdout) as typeof view;
        if (view!.offsets.length === 2 && view!.total_lag === 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(view!.state, 'Stable');
      assert.equal(view!.members.length, 1);
      assert.deepEqual(
        view!.offsets.map((o) => [o.partition, o.committed_offset, o.end_offset, o.lag]),
        [
          [0, 10, 10, 0],
          [1, 10, 10, 0],
        ],
      );
      const list = await ctl('kafka', 'groups', 'list');
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /ops-group\s+Stable\s+\S+\s+\d+\s+1\s+1/);

      const refused = await ctl('kafka', 'groups', 'reset-offsets', 'ops-group', '--topic', 'ops', '--to', 'earliest');
      assert.notEqual(refused.code, 0, 'offsets of a group with members are not reset');
      assert.match(refused.stderr, /active members|group_not_empty/);
    } finally {
      await consumer.disconnect();
    }
  });

  it('resets an empty group to earliest, and its lag shows in the metrics', async () => {
    const reset = await ctl('--output', 'json', 'kafka', 'groups', 'reset-offsets', 'ops-group', '--topic', 'ops', '--to', 'earliest');
    assert.equal(reset.code, 0, reset.stderr);
    assert.deepEqual((JSON.parse(reset.stdout) as { offsets: unknown[] }).offsets, [
      { partition: 0, offset: 0 },
      { partition: 1, offset: 0 },
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${node.ports.http}/metrics`)).text();
    assert.match(metrics, /robust_kafka_consumer_lag\{group="ops-group",topic="ops",partition="0"\} 10/);
    assert.match(metrics, /robust_kafka_requests_total\{api="Produce"\} [1-9]/);
    assert.match(metrics, /robust_kafka_records_in_total\{topic="ops"\} 20/);

    // A consumer of the group reads everything again from the reset offsets.
    const again = await consumeAll('ops-group', 20);
    await again.disconnect();

    const toOffset = await ctl('--output', 'json', 'kafka', 'groups', 'reset-offsets', 'ops-group', '--topic', 'ops', '--to', 'offset', '--value', '7', '--partitions', '1');
    assert.equal(toOffset.code, 0, toOffset.stderr);
    assert.deepEqual((JSON.parse(toOffset.stdout) as { offsets: unknown[] }).offsets, [{ partition: 1, offset: 7 }]);
    const bad = await ctl('kafka', 'groups', 'reset-offsets', 'ops-group', '--topic', 'ops', '--to', 'offset');
    assert.equal(bad.code, 2, 'a missing --value is a usage error');
  });

  it('deletes an empty group; an unknown group is a clear error', async () => {
    const del = await ctl('kafka', 'groups', 'delete', 'ops-group');
    assert.equal(del.code, 0, del.stderr);
    const gone = await ctl('kafka', 'groups', 'describe', 'ops-group');
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /does not exist/);
  });
});
