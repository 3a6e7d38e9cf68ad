/**
 * Kafka DeleteRecords on a journal topic lasts: on a three-node journal cluster,
 * kafkajs deletes the records before an offset inside the partition's segment,
 * then the partition's leader is killed with -9; the new leader reports the same
 * log start offset and a consumer from the beginning starts there. Real
 * processes, kafkajs.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Cluster, until } from '../support/journal-cluster.js';

const TOPIC = 'trimmed';

describe('kafka DeleteRecords on the journal engine', () => {
  const cluster = new Cluster({ e: 3, w: 3, a: 2 });
  after(() => cluster.stop());

  it('the log start offset survives the death of the partition leader', { timeout: 120_000 }, async () => {
    await cluster.startAll();
    const client = (ids: number[]) => cluster.kafka(ids);
    const admin = client([1, 2, 3]).admin();
    await admin.connect();
    let leader: number;
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }], waitForLeaders: true });
      const producer = client([1, 2, 3]).producer();
      await producer.connect();
      await producer.send({ topic: TOPIC, acks: -1, messages: Array.from({ length: 30 }, (_, i) => ({ partition: 0, value: `v${i}` })) });
      await producer.disconnect();
      // kafkajs's admin finds the partition's leader in its metadata cache: fill it with the new topic first.
      const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      leader = meta.topics[0]!.partitions[0]!.leader;
      await admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 0, offset: '12' }] }).catch((err: unknown) => {
        throw new Error(`DeleteRecords failed: ${JSON.stringify((err as { partitions?: Array<{ error?: { type?: string; message?: string } }> }).partitions?.map((p) => p.error && { type: p.error.type, message: p.error.message }) ?? String(err))}; logs:\n${cluster.logs()}`);
      });
      const [p0] = await admin.fetchTopicOffsets(TOPIC);
      assert.deepEqual([p0!.low, p0!.high], ['12', '30']);
    } finally {
      await admin.disconnect();
    }

    await cluster.kill(leader);
    const survivors = [1, 2, 3].filter((id) => id !== leader);
    // The new leader (after meta notices) answers with the same start, from meta.
    const offsets = await until('the partition led by a live node, with its start offset', async () => {
      const a = client(survivors).admin();
      try {
        await a.connect();
        const m = await a.fetchTopicMetadata({ topics: [TOPIC] });
        const now = m.topics[0]!.partitions[0]!.leader;
        if (now === leader || now < 0) return undefined;
        const [p] = await a.fetchTopicOffsets(TOPIC);
        return { leader: now, low: p!.low, high: p!.high };
      } catch {
        return undefined;
      } finally {
        await a.disconnect().catch(() => undefined);
      }
    }, 60_000);
    assert.deepEqual([offsets.low, offsets.high], ['12', '30'], `start and end at the new leader, node ${offsets.leader}`);

    const consumer = client(survivors).consumer({ groupId: 'after-trim' });
    const got: Array<[string, string]> = [];
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push([message.offset, message.value!.toString()]) });
    try {
      await until('the records from the start offset on', async () => (got.length >= 18 ? true : undefined), 30_000);
    } finally {
      await consumer.disconnect();
    }
    assert.deepEqual(got[0], ['12', 'v12']);
    assert.deepEqual(got.map(([, v]) => v), Array.from({ length: 18 }, (_, i) => `v${i + 12}`));
  });
});
