/**
 * One topic, two protocols: records produced with kafkajs reach mqtt.js
 * subscribers of the topic of the same name (headers as MQTT 5 user
 * properties), and MQTT publishes to it are read back by a Kafka consumer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kafkaClient, startKafkaNode, type KafkaNode } from '../support/kafka.js';
import { connectWithInbox, endClient } from '../support/mqtt.js';

describe('a Kafka topic and an MQTT topic of the same name are one topic', () => {
  let node: KafkaNode;

  before(async () => {
    node = await startKafkaNode({ mqtt: '' });
  });

  after(async () => {
    await node?.destroy();
  });

  it('Kafka records reach MQTT subscribers, with headers as user properties', async () => {
    const admin = kafkaClient(node.broker).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'sensors.temp', numPartitions: 3 }] });
    await admin.disconnect();
    const { client, inbox } = await connectWithInbox(node.ports.mqtt!, { protocolVersion: 5 });
    await client.subscribeAsync('sensors.temp', { qos: 1 });
    const producer = kafkaClient(node.broker).producer();
    await producer.connect();
    await producer.send({ topic: 'sensors.temp', messages: [{ key: 'dev-1', value: '21.5', headers: { unit: 'C' } }, { value: '22.0' }] });
    await producer.disconnect();
    const got = await inbox.waitFor(2);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.packet.qos]).sort(), [
      ['sensors.temp', '21.5', 1],
      ['sensors.temp', '22.0', 1],
    ]);
    const withHeader = got.find((m) => m.payload.toString() === '21.5');
    assert.deepEqual({ ...withHeader?.packet.properties?.userProperties }, { unit: 'C' });
    await endClient(client);
  });

  it('MQTT publishes to a stored topic are consumed over Kafka; other MQTT topics are not stored', async () => {
    const { client } = await connectWithInbox(node.ports.mqtt!, { protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await client.publishAsync('sensors.temp', `mqtt-${i}`, { qos: 1, properties: { userProperties: { src: 'mqtt' } } });
    await client.publishAsync('not/a/kafka/topic', 'ignored', { qos: 1 });
    await endClient(client);

    const consumer = kafkaClient(node.broker).consumer({ groupId: 'bridge-reader' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'sensors.temp', fromBeginning: true });
    const values: string[] = [];
    const headers: string[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          values.push(message.value?.toString() ?? '');
          if (message.headers?.['src']) headers.push(String(message.headers['src']));
          if (values.length === 7) resolve();
        },
      });
    });
    await consumer.disconnect();
    assert.deepEqual(values.filter((v) => v.startsWith('mqtt-')).sort(), ['mqtt-0', 'mqtt-1', 'mqtt-2', 'mqtt-3', 'mqtt-4']);
    assert.deepEqual(headers, ['mqtt', 'mqtt', 'mqtt', 'mqtt', 'mqtt']);
    const admin = kafkaClient(node.broker).admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    assert.ok(!topics.some((t) => t.includes('not')), `an MQTT-only topic is not turned into a stored one: ${topics.join(', ')}`);
  });
});
