/**
 * Kafka's SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256) and SSL listeners with kafkajs,
 * users created with robust-ctl; Metadata hands each client the addresses of
 * the listener it came in on.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { after, before, describe, it } from 'node:test';
import { makeTestCerts, type TestCerts } from '../support/certs.js';
import { kafkaClient, startKafkaNode, type KafkaNode } from '../support/kafka.js';
import { BIN, freePort, run, tempDir } from '../support/server.js';

describe('Kafka SASL and SSL listeners (kafkajs)', () => {
  let node: KafkaNode;
  let saslPort: number;
  let sslPort: number;
  let certs: TestCerts;

  before(async () => {
    certs = await makeTestCerts(tempDir('robust-kafka-certs-'));
    saslPort = await freePort();
    sslPort = await freePort();
    node = await startKafkaNode({
      kafka: `sasl_port = ${saslPort}\nssl_port = ${sslPort}`,
      extra: `[tls]\ncert = "${certs.serverCert}"\nkey = "${certs.serverKey}"\nca = "${certs.caCert}"\n`,
    });
    const created = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${node.ports.http}`, 'user', 'create', 'alice', '--password', 'wonderland']);
    assert.equal(created.code, 0, created.stderr);
  });

  after(async () => {
    await node?.destroy();
  });

  async function roundTrip(kafka: ReturnType<typeof kafkaClient>, topic: string): Promise<string[]> {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: `g-${topic}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message.value?.toString() ?? '');
          if (got.length === 2) resolve();
        },
      });
    });
    await consumer.disconnect();
    return got;
  }

  for (const mechanism of ['plain', 'scram-sha-256'] as const) {
    it(`authenticates with SASL ${mechanism} and serves the client`, async () => {
      const kafka = kafkaClient(`127.0.0.1:${saslPort}`, { sasl: { mechanism, username: 'alice', password: 'wonderland' } as never });
      const admin = kafka.admin();
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [] });
      assert.ok(Array.isArray(meta.topics));
      await admin.disconnect();
      assert.deepEqual(await roundTrip(kafka, `sasl-${mechanism.replace(/[^a-z0-9]/g, '')}`), ['a', 'b']);
    });
  }

  it('refuses a wrong password and an unknown user', async () => {
    for (const [username, password] of [
      ['alice', 'wrong'],
      ['mallory', 'x'],
    ] as const) {
      const kafka = kafkaClient(`127.0.0.1:${saslPort}`, { sasl: { mechanism: 'scram-sha-256', username, password } as never, retry: { retries: 0 } });
      const admin = kafka.admin();
      await assert.rejects(admin.connect(), /SASL|authentication/i);
      await admin.disconnect();
    }
  });

  it('closes a connection that skips SASL on the SASL listener', async () => {
    const kafka = kafkaClient(`127.0.0.1:${saslPort}`, { retry: { retries: 0 }, connectionTimeout: 2000, requestTimeout: 3000 });
    const admin = kafka.admin();
    await assert.rejects(async () => {
      await admin.connect();
      await admin.listTopics();
    });
    await admin.disconnect();
  });

  it('serves clients over SSL, and Metadata names the SSL port', async () => {
    const kafka = kafkaClient(`localhost:${sslPort}`, { ssl: { ca: [readFileSync(certs.caCert, 'utf8')], servername: 'localhost' } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'over-ssl', numPartitions: 1 }] });
    await admin.disconnect();
    assert.deepEqual(await roundTrip(kafka, 'over-ssl'), ['a', 'b']);
    // The plain listener keeps working beside it.
    const plain = kafkaClient(node.broker).admin();
    await plain.connect();
    assert.ok((await plain.listTopics()).includes('over-ssl'));
    await plain.disconnect();
  });

  it('lists each listener among the node listeners', async () => {
    const res = await fetch(`http://127.0.0.1:${node.ports.http}/api/v1/node`);
    const info = (await res.json()) as { listeners: Array<{ name: string; address: string }> };
    const names = info.listeners.map((l) => l.name);
    for (const n of ['kafka-plaintext', 'kafka-sasl_plaintext', 'kafka-ssl']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);

  });
});
