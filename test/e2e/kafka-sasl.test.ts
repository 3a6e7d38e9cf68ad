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
import { connect, type Socket } from 'node:net';
import { BIN, freePort, run, tempDir } from '../support/server.js';

/** A raw Kafka connection: sends size-prefixed frames, reads size-prefixed answers, notices a close. */
class RawKafka {
  private buf = Buffer.alloc(0);
  private waiting: Array<() => void> = [];
  closed = false;
  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting.splice(0).forEach((w) => w());
    });
  }
  static async open(port: number): Promise<RawKafka> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', r));
    return new RawKafka(socket);
  }
  send(payload: Buffer): void {
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    this.socket.write(Buffer.concat([size, payload]));
  }
  /** A request with header v1 (api key, version, correlation id, client id) and `body`. */
  request(apiKey: number, version: number, correlationId: number, body: Buffer): void {
    const h = Buffer.alloc(10);
    h.writeInt16BE(apiKey, 0);
    h.writeInt16BE(version, 2);
    h.writeInt32BE(correlationId, 4);
    h.writeInt16BE(-1, 8); // null client id
    this.send(Buffer.concat([h, body]));
  }
  /** The next answer's payload, or null when the connection closed first. */
  async next(timeoutMs = 5000): Promise<Buffer | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
        const n = this.buf.readInt32BE(0);
        const out = this.buf.subarray(4, 4 + n);
        this.buf = this.buf.subarray(4 + n);
        return out;
      }
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('no answer in time');
      await new Promise<void>((r) => {
        this.waiting.push(r);
        setTimeout(r, 100);
      });
    }
  }
  close(): void {
    this.socket.destroy();
  }
}

const str16 = (s: string): Buffer => {
  const b = Buffer.alloc(2 + Buffer.byteLength(s));
  b.writeInt16BE(Buffer.byteLength(s));
  b.write(s, 2);
  return b;
};

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

  it('SaslHandshake v0: the PLAIN token travels raw (no Kafka framing), then requests are served; a wrong password closes the connection', async () => {
    for (const [password, ok] of [
      ['wonderland', true],
      ['nope', false],
    ] as const) {
      const c = await RawKafka.open(saslPort);
      c.request(17, 0, 1, str16('PLAIN'));
      const hs = await c.next();
      assert.ok(hs, 'a handshake answer');
      assert.equal(hs.readInt32BE(0), 1, 'correlation id');
      assert.equal(hs.readInt16BE(4), 0, 'handshake accepted');
      c.send(Buffer.from(`\u0000alice\u0000${password}`));
      const token = await c.next();
      if (!ok) {
        assert.equal(token, null, 'a failed raw exchange closes the connection');
        continue;
      }
      assert.ok(token);
      assert.equal(token.length, 0, 'PLAIN answers with an empty token');
      const topics = Buffer.alloc(4);
      topics.writeInt32BE(-1); // Metadata v1: all topics
      c.request(3, 1, 2, topics);
      const meta = await c.next();
      assert.ok(meta, 'Metadata answered after authentication');
      assert.equal(meta.readInt32BE(0), 2);
      c.close();
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
