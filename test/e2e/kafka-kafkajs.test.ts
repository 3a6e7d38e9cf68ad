/**
 * The Kafka wire protocol of a real robust-server, driven by the real kafkajs
 * client: topic administration, producing with every compression and reading
 * it back byte for byte, the idempotent producer (and, over a raw socket, the
 * broker's duplicate and out-of-order sequence handling), consumer groups
 * rebalancing while data flows, committed offsets across a graceful restart,
 * group administration, and malformed frames that must close only their own
 * connection. One node for the whole file; the restart test runs last.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AssignerProtocol, CompressionTypes, type Admin, type Consumer, type IHeaders, type Kafka, type KafkaMessage } from 'kafkajs';
import { kafkaClient, registerKafkajsCodecs, startKafkaNode, type KafkaNode } from '../support/kafka.js';
import { kafkajsRequest, kafkajsResponse } from '../support/kafkajs-protocol.js';
import { mulberry32 } from '../support/mulberry32.js';

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long.js') as { fromString(s: string): unknown };

let node: KafkaNode;
let kafka: Kafka;
let admin: Admin;
/** Everything a test connects, disconnected in after() whatever happened. */
const closers = new Set<() => Promise<void>>();
const sockets = new Set<Socket>();

function track<T extends { disconnect(): Promise<void> }>(c: T): T {
  closers.add(() => c.disconnect().catch(() => undefined));
  return c;
}

before(async () => {
  registerKafkajsCodecs();
  node = await startKafkaNode();
  kafka = kafkaClient(node.broker);
  admin = track(kafka.admin());
  await admin.connect();
});

after(async () => {
  for (const s of sockets) s.destroy();
  for (const c of closers) await c();
  await node?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

interface Got {
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  timestamp: string;
}

/** Reads `topic` from the beginning with a fresh group until `count` records arrived (more are an error only to callers that check). */
async function consumeAll(topic: string, count: number, timeoutMs = 20_000): Promise<Got[]> {
  const consumer = track(kafka.consumer({ groupId: `reader-${topic}-${Math.random().toString(36).slice(2)}`, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 }));
  const got: Got[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push(toGot(partition, message));
      },
    });
    await waitFor(`${count} records of ${topic} (have ${got.length})`, () => (got.length >= count ? true : undefined), timeoutMs);
    // Anything beyond `count` that was already on its way.
    await sleep(300);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

function toGot(partition: number, m: KafkaMessage): Got {
  return { partition, offset: BigInt(m.offset), key: m.key ?? null, value: m.value, headers: m.headers ?? {}, timestamp: m.timestamp };
}

function asBuf(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return Buffer.isBuffer(v) ? v : Buffer.from(v);
}

/** Header values as arrays of Buffers, for comparing what was sent with what was read. */
function normHeaders(h: IHeaders | undefined): Record<string, Buffer[]> {
  const out: Record<string, Buffer[]> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    out[k] = (Array.isArray(v) ? v : [v]).map((x) => asBuf(x)!);
  }
  return out;
}

function byPartition(records: Got[]): Map<number, Got[]> {
  const m = new Map<number, Got[]>();
  for (const r of records) {
    let l = m.get(r.partition);
    if (!l) m.set(r.partition, (l = []));
    l.push(r);
  }
  for (const l of m.values()) l.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  return m;
}

/**
 * A bare Kafka connection: request header v1 (api key, version, correlation
 * id, client id) out, response header v0 (correlation id) in.
 */
class RawKafka {
  private buf = Buffer.alloc(0);
  private next = 1;
  private readonly waiting = new Map<number, (body: Buffer) => void>();
  received = 0;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    sockets.add(socket);
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
        const size = this.buf.readInt32BE(0);
        const frame = this.buf.subarray(4, 4 + size);
        this.buf = this.buf.subarray(4 + size);
        const id = frame.readInt32BE(0);
        this.waiting.get(id)?.(frame.subarray(4));
        this.waiting.delete(id);
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((r) => socket.once('close', () => r()));
  }

  static connect(port: number): Promise<RawKafka> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(new RawKafka(s)));
      s.once('error', reject);
    });
  }

  request(apiKey: number, apiVersion: number, body: Buffer): Promise<Buffer> {
    const id = this.next++;
    const clientId = Buffer.from('raw-test');
    const head = Buffer.alloc(4 + 2 + 2 + 4 + 2);
    head.writeInt32BE(2 + 2 + 4 + 2 + clientId.length + body.length, 0);
    head.writeInt16BE(apiKey, 4);
    head.writeInt16BE(apiVersion, 6);
    head.writeInt32BE(id, 8);
    head.writeInt16BE(clientId.length, 12);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      void this.closed.then(() => reject(new Error('connection closed')));
      this.socket.write(Buffer.concat([head, clientId, body]));
    });
  }

  /** kafkajs's encoder for `api` vN builds the body; kafkajs's decoder reads the answer (no parse: error codes are kept). */
  async call(api: string, version: number, args: unknown): Promise<Record<string, unknown>> {
    const req = kafkajsRequest(api, version)(args);
    const body = (await req.encode()).buffer;
    const raw = await this.request(req.apiKey, req.apiVersion, body);
    return kafkajsResponse(api, version).decode(raw);
  }

  /** Resolves true when the broker closes the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), sleep(ms).then(() => false)]);
  }

  destroy(): void {
    this.socket.destroy();
    sockets.delete(this.socket);
  }
}

describe('kafkajs against a real node', () => {
  it('administers topics: create, configs, metadata, partitions, offsets, record deletion, delete', async () => {
    const created = await admin.createTopics({
      topics: [
        { topic: 'adm-a', numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'compression.type', value: 'gzip' }] },
        { topic: 'adm-b', numPartitions: 1 },
      ],
    });
    assert.equal(created, true);
    // kafkajs answers false exactly when every topic failed with TOPIC_ALREADY_EXISTS.
    assert.equal(await admin.createTopics({ topics: [{ topic: 'adm-a', numPartitions: 5 }] }), false);
    const refusedWith = (type: string) => (err: Error & { errors?: Array<{ type?: string }> }) => {
      assert.deepEqual(
        err.errors?.map((e) => e.type),
        [type],
        String(err),
      );
      return true;
    };
    await assert.rejects(admin.createTopics({ topics: [{ topic: 'bad name!', numPartitions: 1 }] }), refusedWith('INVALID_TOPIC_EXCEPTION'));
    await assert.rejects(admin.createTopics({ topics: [{ topic: 'adm-badcfg', configEntries: [{ name: 'retention.ms', value: 'soon' }] }] }), refusedWith('INVALID_CONFIG'));
    await assert.rejects(admin.createTopics({ topics: [{ topic: 'adm-zero', numPartitions: 0 }] }), refusedWith('INVALID_PARTITIONS'));

    const topics = await admin.listTopics();
    assert.ok(topics.includes('adm-a') && topics.includes('adm-b'), `listTopics: ${topics.join(',')}`);
    assert.ok(!topics.includes('bad name!') && !topics.includes('adm-badcfg'));

    const md = await admin.fetchTopicMetadata({ topics: ['adm-a'] });
    assert.equal(md.topics.length, 1);
    assert.deepEqual(
      md.topics[0]!.partitions.map((p) => [p.partitionId, p.leader, p.partitionErrorCode]).sort((a, b) => a[0]! - b[0]!),
      [
        [0, 1, 0],
        [1, 1, 0],
        [2, 1, 0],
      ],
    );
    const cluster = await admin.describeCluster();
    assert.deepEqual(
      cluster.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`]),
      [[1, node.broker]],
    );

    await admin.createPartitions({ topicPartitions: [{ topic: 'adm-a', count: 5 }] });
    const grown = await admin.fetchTopicMetadata({ topics: ['adm-a'] });
    assert.deepEqual(grown.topics[0]!.partitions.map((p) => p.partitionId).sort(), [0, 1, 2, 3, 4]);
    assert.ok(grown.topics[0]!.partitions.every((p) => p.leader === 1));
    await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: 'adm-a', count: 2 }] }), /partition/i);

    // describeConfigs shows what createTopics set; alterConfigs replaces the set.
    const describe = async () => {
      const r = await admin.describeConfigs({ resources: [{ type: 2, name: 'adm-a' }], includeSynonyms: false });
      assert.equal(r.resources[0]!.errorCode, 0);
      return new Map(r.resources[0]!.configEntries.map((c) => [c.configName, c]));
    };
    let cfg = await describe();
    assert.equal(cfg.get('retention.ms')?.configValue, '3600000');
    assert.equal(cfg.get('retention.ms')?.isDefault, false);
    assert.equal(cfg.get('compression.type')?.configValue, 'gzip');
    assert.equal(cfg.get('cleanup.policy')?.configValue, 'delete');
    assert.equal(cfg.get('cleanup.policy')?.isDefault, true);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2,
          name: 'adm-a',
          configEntries: [
            { name: 'retention.ms', value: '7200000' },
            { name: 'max.message.bytes', value: '500000' },
          ],
        },
      ],
    });
    cfg = await describe();
    assert.equal(cfg.get('retention.ms')?.configValue, '7200000');
    assert.equal(cfg.get('max.message.bytes')?.configValue, '500000');
    assert.equal(cfg.get('max.message.bytes')?.isDefault, false);
    // Not named in AlterConfigs: back to the default.
    assert.equal(cfg.get('compression.type')?.configValue, 'producer');
    assert.equal(cfg.get('compression.type')?.isDefault, true);
    await assert.rejects(admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'adm-a', configEntries: [{ name: 'no.such.config', value: '1' }] }] }), /config/i);
    assert.equal((await describe()).get('retention.ms')?.configValue, '7200000', 'a refused alter changes nothing');

    // Offsets: timestamps 1000 ms apart on one partition of adm-b.
    const producer = track(kafka.producer());
    await producer.connect();
    const t0 = Date.now() - 60_000;
    const sent = await producer.send({
      topic: 'adm-b',
      messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, key: `k${i}`, value: `v${i}`, timestamp: String(t0 + i * 1000) })),
    });
    assert.equal(sent[0]!.baseOffset, '0');
    assert.deepEqual(await admin.fetchTopicOffsets('adm-b'), [{ partition: 0, offset: '10', high: '10', low: '0' }]);
    assert.deepEqual(await admin.fetchTopicOffsetsByTimestamp('adm-b', t0 + 3500), [{ partition: 0, offset: '4' }]);
    assert.deepEqual(await admin.fetchTopicOffsetsByTimestamp('adm-b', t0), [{ partition: 0, offset: '0' }]);
    // After the last record: kafkajs substitutes the high watermark for the broker's -1.
    assert.deepEqual(await admin.fetchTopicOffsetsByTimestamp('adm-b', t0 + 3_600_000), [{ partition: 0, offset: '10' }]);

    await admin.deleteTopicRecords({ topic: 'adm-b', partitions: [{ partition: 0, offset: '6' }] });
    assert.deepEqual(await admin.fetchTopicOffsets('adm-b'), [{ partition: 0, offset: '10', high: '10', low: '6' }]);
    const rest = await consumeAll('adm-b', 4);
    assert.deepEqual(
      rest.map((r) => [Number(r.offset), r.value?.toString()]),
      [
        [6, 'v6'],
        [7, 'v7'],
        [8, 'v8'],
        [9, 'v9'],
      ],
    );

    await admin.deleteTopics({ topics: ['adm-a'] });
    assert.ok(!(await admin.listTopics()).includes('adm-a'));
    await assert.rejects(admin.fetchTopicMetadata({ topics: ['adm-a'] }), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'UNKNOWN_TOPIC_OR_PARTITION', String(err));
      return true;
    });
    // The name is free again.
    assert.equal(await admin.createTopics({ topics: [{ topic: 'adm-a', numPartitions: 1 }] }), true);
    assert.deepEqual(await admin.fetchTopicOffsets('adm-a'), [{ partition: 0, offset: '0', high: '0', low: '0' }]);
  });

  it("other protocols' internal topics (__mqtt.*) take no Kafka writes; a Kafka client's own __ topic does", async () => {
    const internal = '__mqtt.retained';
    const md = await admin.fetchTopicMetadata({ topics: [internal] });
    assert.equal(md.topics[0]!.partitions.length, 1, 'the MQTT retained-message log is there');
    const before = await admin.fetchTopicOffsets(internal);
    const producer = track(kafka.producer({ retry: { retries: 0 } }));
    await producer.connect();
    await assert.rejects(producer.send({ topic: internal, messages: [{ key: 'a/b', value: 'not an MQTT record' }] }), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'INVALID_TOPIC_EXCEPTION', String(err));
      return true;
    });
    await assert.rejects(admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: internal, configEntries: [{ name: 'retention.ms', value: '1' }] }] }), /polic/i);
    await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: internal, count: 4 }] }), /polic/i);
    await assert.rejects(admin.deleteTopics({ topics: [internal] }), /polic/i);
    await assert.rejects(admin.deleteTopicRecords({ topic: internal, partitions: [{ partition: 0, offset: '-1' }] }), (err: Error & { cause?: { partitions?: Array<{ error: { type?: string } }> } }) => {
      // kafkajs wraps the per-partition errors (a non-retriable KafkaJSDeleteTopicRecordsError) as the cause.
      assert.equal(err.cause?.partitions?.[0]?.error.type, 'INVALID_TOPIC_EXCEPTION', String(err));
      return true;
    });
    assert.deepEqual(await admin.fetchTopicOffsets(internal), before, 'nothing appended or truncated');
    assert.equal((await admin.fetchTopicMetadata({ topics: [internal] })).topics[0]!.partitions.length, 1);
    const cfg = await admin.describeConfigs({ resources: [{ type: 2, name: internal, configNames: ['retention.ms'] }], includeSynonyms: false });
    assert.notEqual(cfg.resources[0]!.configEntries[0]?.configValue, '1');

    // A topic a Kafka client creates under "__" is its own: writable, deletable.
    assert.equal(await admin.createTopics({ topics: [{ topic: '__mine', numPartitions: 1 }] }), true);
    const sent = await producer.send({ topic: '__mine', messages: [{ value: 'ok' }] });
    assert.equal(sent[0]!.errorCode, 0);
    await admin.deleteTopics({ topics: ['__mine'] });
    assert.ok(!(await admin.listTopics()).includes('__mine'));
  });

  it('produces with every compression and reads every record back byte for byte', async () => {
    const rand = mulberry32(7);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    const codecs: Array<[string, CompressionTypes]> = [
      ['none', CompressionTypes.None],
      ['gzip', CompressionTypes.GZIP],
      ['snappy', CompressionTypes.Snappy],
      ['lz4', CompressionTypes.LZ4],
      ['zstd', CompressionTypes.ZSTD],
    ];
    // The topic's compression.type is how the broker sends records on Fetch: rotate it against the producer's.
    const fetchSide = ['producer', 'zstd', 'lz4', 'snappy', 'gzip'];
    await admin.createTopics({
      topics: codecs.map(([name], i) => ({ topic: `comp-${name}`, numPartitions: 2, configEntries: [{ name: 'compression.type', value: fetchSide[i]! }] })),
    });
    const producer = track(kafka.producer());
    await producer.connect();
    const t0 = Date.now() - 3_600_000;
    for (const [name, compression] of codecs) {
      const topic = `comp-${name}`;
      const messages = Array.from({ length: 60 }, (_, i) => {
        const size = i % 10 === 0 ? 20_000 + Math.floor(rand() * 5000) : Math.floor(rand() * 300);
        // Compressible and incompressible values, null keys, empty and null values, repeated header keys.
        const value = i === 5 ? null : i === 6 ? Buffer.alloc(0) : i % 2 === 0 ? bytes(size) : Buffer.from('abc'.repeat(size));
        return {
          partition: i % 2,
          key: i % 3 === 0 ? null : bytes(1 + (i % 17)),
          value,
          headers: i % 4 === 0 ? {} : { 'h-one': bytes(i % 9), 'h-two': [Buffer.from(`x${i}`), bytes(3)], ünï: Buffer.from('ß') },
          timestamp: String(t0 + i * 13),
        };
      });
      // Two sends: a batch per partition each, so records sit in several compressed batches.
      const first = await producer.send({ topic, compression, messages: messages.slice(0, 30) });
      const second = await producer.send({ topic, compression, messages: messages.slice(30) });
      const acked = [...first, ...second];
      assert.ok(acked.every((r) => r.errorCode === 0));
      assert.deepEqual(
        second.map((r) => [r.partition, r.baseOffset]).sort(),
        [
          [0, '15'],
          [1, '15'],
        ],
        `${name}: second send follows the first`,
      );
      const got = byPartition(await consumeAll(topic, messages.length));
      for (const p of [0, 1]) {
        const want = messages.filter((m) => m.partition === p);
        const have = got.get(p) ?? [];
        assert.equal(have.length, want.length, `${name} partition ${p}: record count`);
        have.forEach((r, j) => {
          const w = want[j]!;
          assert.equal(r.offset, BigInt(j), `${name} p${p}: offsets dense`);
          assert.deepEqual(r.key, asBuf(w.key), `${name} p${p}#${j}: key`);
          // kafkajs reads an empty value as an empty Buffer and a null value as null.
          assert.deepEqual(r.value, asBuf(w.value), `${name} p${p}#${j}: value`);
          assert.deepEqual(normHeaders(r.headers), normHeaders(w.headers), `${name} p${p}#${j}: headers`);
          assert.equal(r.timestamp, w.timestamp, `${name} p${p}#${j}: timestamp`);
        });
      }
    }
  });

  it('idempotent producer: every send acknowledged once, offsets dense, no duplicates', async () => {
    await admin.createTopics({ topics: [{ topic: 'idem', numPartitions: 3 }] });
    const producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    const sends = Array.from({ length: 30 }, (_, s) =>
      producer.send({ topic: 'idem', messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${(s * 10 + i) % 7}`, value: `idem-${s}-${i}` })) }),
    );
    const acks = (await Promise.all(sends)).flat();
    assert.ok(acks.every((a) => a.errorCode === 0));
    const got = await consumeAll('idem', 300);
    assert.equal(got.length, 300, 'no duplicates delivered');
    assert.equal(new Set(got.map((g) => g.value!.toString())).size, 300);
    const offsets = await admin.fetchTopicOffsets('idem');
    assert.equal(
      offsets.reduce((n, o) => n + Number(o.high), 0),
      300,
      'nothing appended twice',
    );
    for (const [p, list] of byPartition(got)) {
      assert.deepEqual(
        list.map((r) => r.offset),
        list.map((_, i) => BigInt(i)),
        `partition ${p} offsets dense`,
      );
      // Within one send, a partition's records keep their order (concurrent sends may interleave).
      const perSend = new Map<string, number[]>();
      for (const r of list) {
        const [, s, i] = r.value!.toString().split('-');
        perSend.set(s!, [...(perSend.get(s!) ?? []), Number(i)]);
      }
      for (const [s, seq] of perSend) assert.deepEqual(seq, [...seq].sort((a, b) => a - b), `send ${s} in order on partition ${p}`);
    }
  });

  it('raw Produce v3: a retried batch gets its original offset, a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER', async () => {
    await admin.createTopics({ topics: [{ topic: 'idem-raw', numPartitions: 1 }] });
    let raw = await RawKafka.connect(node.ports.kafka);
    try {
      const init = await raw.call('initProducerId', 0, { transactionalId: null, transactionTimeout: 60_000 });
      assert.equal(init['errorCode'], 0);
      const producerId = Long.fromString(init['producerId'] as string);
      const producerEpoch = init['producerEpoch'] as number;
      const produce = async (firstSequence: number, values: string[]) => {
        const r = await raw.call('produce', 3, {
          acks: -1,
          timeout: 5000,
          producerId,
          producerEpoch,
          topicData: [{ topic: 'idem-raw', partitions: [{ partition: 0, firstSequence, messages: values.map((v) => ({ key: null, value: v, timestamp: String(Date.now()) })) }] }],
        });
        const p = (r['topics'] as Array<{ partitions: Array<{ errorCode: number; baseOffset: string }> }>)[0]!.partitions[0]!;
        return { errorCode: p.errorCode, baseOffset: Number(p.baseOffset) };
      };
      const end = async () => Number((await admin.fetchTopicOffsets('idem-raw'))[0]!.high);

      assert.deepEqual(await produce(0, ['a0', 'a1', 'a2']), { errorCode: 0, baseOffset: 0 });
      assert.deepEqual(await produce(3, ['b0', 'b1']), { errorCode: 0, baseOffset: 3 });
      assert.equal(await end(), 5);
      // The last batch again (a retry after a lost answer): its offset, nothing appended.
      assert.deepEqual(await produce(3, ['b0', 'b1']), { errorCode: 0, baseOffset: 3 });
      // An older one still cached: also its own offset.
      assert.deepEqual(await produce(0, ['a0', 'a1', 'a2']), { errorCode: 0, baseOffset: 0 });
      assert.equal(await end(), 5);
      // A gap (5 expected): refused, nothing appended.
      assert.equal((await produce(9, ['gap'])).errorCode, 45);
      assert.equal(await end(), 5);
      // The right next sequence still works after the refusal.
      assert.deepEqual(await produce(5, ['c0']), { errorCode: 0, baseOffset: 5 });
      assert.equal(await end(), 6);
      raw.destroy();

      // After a restart the broker reads the producer's last batches back from the log:
      // a retry of the last batch still gets its original offset, and the sequence goes on.
      await node.stop();
      await node.restart();
      raw = await RawKafka.connect(node.ports.kafka);
      assert.deepEqual(await produce(5, ['c0']), { errorCode: 0, baseOffset: 5 });
      assert.deepEqual(await produce(3, ['b0', 'b1']), { errorCode: 0, baseOffset: 3 });
      assert.equal((await produce(8, ['gap'])).errorCode, 45);
      assert.deepEqual(await produce(6, ['d0']), { errorCode: 0, baseOffset: 6 });
      assert.equal(await end(), 7);
      const got = await consumeAll('idem-raw', 7);
      assert.deepEqual(
        got.map((g) => g.value!.toString()),
        ['a0', 'a1', 'a2', 'b0', 'b1', 'c0', 'd0'],
      );
    } finally {
      raw.destroy();
    }
  });

  it('a group of three covers six partitions, rebalances when one leaves, and commits to the log end', async () => {
    const topic = 'grp6';
    const groupId = 'g-three';
    await admin.createTopics({ topics: [{ topic, numPartitions: 6 }] });
    const producer = track(kafka.producer());
    await producer.connect();
    let produced = 0;
    const produce = async (n: number) => {
      const messages = Array.from({ length: n }, (_, i) => ({ partition: (produced + i) % 6, value: `m-${produced + i}` }));
      produced += n;
      await producer.send({ topic, messages });
    };
    await produce(60);

    const seen = new Set<string>();
    const assignment = new Map<string, { memberId: string; partitions: number[] }>();
    const members: Array<{ name: string; consumer: Consumer }> = [];
    for (const name of ['c1', 'c2', 'c3']) {
      const consumer = track(kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10_000, maxWaitTimeInMs: 200 }));
      consumer.on(consumer.events.GROUP_JOIN, (e) => assignment.set(name, { memberId: e.payload.memberId, partitions: [...(e.payload.memberAssignment[topic] ?? [])].sort() }));
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.add(message.value!.toString());
        },
      });
      members.push({ name, consumer });
    }

    /** The coordinator's view, decoded: member id → partitions, once the group is Stable. */
    const coordinatorView = async (): Promise<Map<string, number[]> | undefined> => {
      const { groups } = await admin.describeGroups([groupId]);
      const g = groups[0]!;
      if (g.state !== 'Stable') return undefined;
      const out = new Map<string, number[]>();
      for (const m of g.members) {
        const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        out.set(m.memberId, [...(a?.assignment[topic] ?? [])].sort());
      }
      return out;
    };
    const coversOnce = (lists: number[][]) => {
      const all = lists.flat().sort();
      return all.length === 6 && all.every((p, i) => p === i);
    };
    const settled = async (names: string[]) =>
      waitFor(`a stable assignment over ${names.join(',')}`, async () => {
        const view = await coordinatorView();
        if (!view || view.size !== names.length) return undefined;
        const mine = names.map((n) => assignment.get(n));
        if (mine.some((a) => a === undefined || a.partitions.length === 0)) return undefined;
        // What every consumer was told is what the coordinator holds for it.
        for (const a of mine) if (JSON.stringify(view.get(a!.memberId)) !== JSON.stringify(a!.partitions)) return undefined;
        return coversOnce([...view.values()]) ? view : undefined;
      });
    const three = await settled(['c1', 'c2', 'c3']);
    assert.equal(three.size, 3);
    assert.ok([...three.values()].every((l) => l.length === 2), `round robin: two each, got ${JSON.stringify([...three.values()])}`);

    // Produce while c3 leaves and the other two rebalance.
    let stop = false;
    const background = (async () => {
      while (!stop) {
        await produce(12);
        await sleep(30);
      }
    })();
    await sleep(200);
    const leaver = members.pop()!;
    await leaver.consumer.disconnect();
    assignment.delete(leaver.name);
    const two = await settled(['c1', 'c2']);
    assert.equal(two.size, 2);
    assert.ok([...two.values()].every((l) => l.length === 3));
    await sleep(300);
    stop = true;
    await background;

    // A member that joins and then falls silent, as a crashed process would (no LeaveGroup, no
    // heartbeats, connection left open): the group waits for it, then expels it after its
    // session timeout, and the other two take its partitions over.
    const ghost = await RawKafka.connect(node.ports.kafka);
    try {
      const metadata = AssignerProtocol.MemberMetadata.encode({ version: 0, topics: [topic], userData: Buffer.alloc(0) });
      const joined = await ghost.call('joinGroup', 2, { groupId, sessionTimeout: 6000, rebalanceTimeout: 10_000, memberId: '', protocolType: 'consumer', groupProtocols: [{ name: 'RoundRobinAssigner', metadata }] });
      assert.equal(joined['errorCode'], 0);
      const ghostId = joined['memberId'] as string;
      const generationId = joined['generationId'] as number;
      let groupAssignment: Array<{ memberId: string; memberAssignment: Buffer }> = [];
      if (joined['leaderId'] === ghostId) {
        // Elected leader: assign round robin as kafkajs would.
        const ids = (joined['members'] as Array<{ memberId: string }>).map((m) => m.memberId).sort();
        groupAssignment = ids.map((memberId, i) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: { [topic]: [0, 1, 2, 3, 4, 5].filter((p) => p % ids.length === i) }, userData: Buffer.alloc(0) }),
        }));
      }
      const synced = await ghost.call('syncGroup', 0, { groupId, generationId, memberId: ghostId, groupAssignment });
      assert.equal(synced['errorCode'], 0);
      const ghostPartitions = AssignerProtocol.MemberAssignment.decode(synced['memberAssignment'] as Buffer)?.assignment[topic] ?? [];
      assert.equal(ghostPartitions.length, 2, `the silent member got two partitions: ${JSON.stringify(ghostPartitions)}`);
      const silentSince = Date.now();
      const withGhost = await coordinatorView();
      assert.deepEqual(withGhost?.get(ghostId), [...ghostPartitions].sort());
      await produce(24);
      const back = await settled(['c1', 'c2']);
      const expelledAfter = Date.now() - silentSince;
      assert.ok(!back.has(ghostId));
      assert.ok(expelledAfter >= 4000, `expelled after ${expelledAfter} ms, before its 6000 ms session timeout`);
      const late = await ghost.call('heartbeat', 0, { groupId, groupGenerationId: generationId, memberId: ghostId });
      assert.equal(late['errorCode'], 25, 'UNKNOWN_MEMBER_ID for the expelled member');
    } finally {
      ghost.destroy();
    }
    await produce(12);

    await waitFor(`all ${produced} messages consumed (have ${seen.size})`, () => (seen.size === produced ? true : undefined));
    for (let i = 0; i < produced; i++) assert.ok(seen.has(`m-${i}`), `m-${i} consumed`);
    const ends = await admin.fetchTopicOffsets(topic);
    assert.equal(
      ends.reduce((n, o) => n + Number(o.high), 0),
      produced,
    );
    await waitFor('committed offsets at the log end', async () => {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const at = new Map(committed!.partitions.map((p) => [p.partition, p.offset]));
      return ends.every((e) => at.get(e.partition) === e.high) ? true : undefined;
    });
    for (const m of members) await m.consumer.disconnect();
  });

  it('describes, lists and deletes groups; a group with members is not deleted', async () => {
    const topic = 'grp-admin';
    const groupId = 'g-admin';
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const producer = track(kafka.producer());
    await producer.connect();
    await producer.send({ topic, messages: [{ partition: 0, value: 'x' }, { partition: 1, value: 'y' }] });
    const consumer = track(kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 }));
    let memberId = '';
    consumer.on(consumer.events.GROUP_JOIN, (e) => (memberId = e.payload.memberId));
    const got: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) });
    await waitFor('both messages', () => (got.length === 2 ? true : undefined));

    const described = await waitFor('group Stable', async () => {
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]!.state === 'Stable' ? groups[0]! : undefined;
    });
    assert.equal((described as unknown as { errorCode: number }).errorCode, 0);
    assert.equal(described.protocolType, 'consumer');
    assert.equal(described.protocol, 'RoundRobinAssigner');
    assert.equal(described.members.length, 1);
    assert.equal(described.members[0]!.memberId, memberId);
    assert.equal(described.members[0]!.clientId, 'robust-test');
    assert.deepEqual(AssignerProtocol.MemberAssignment.decode(described.members[0]!.memberAssignment)?.assignment, { [topic]: [0, 1] });
    assert.deepEqual(AssignerProtocol.MemberMetadata.decode(described.members[0]!.memberMetadata)?.topics, [topic]);

    const listed = await admin.listGroups();
    assert.ok(
      listed.groups.some((g) => g.groupId === groupId && g.protocolType === 'consumer'),
      JSON.stringify(listed),
    );

    await assert.rejects(admin.deleteGroups([groupId]), (err: Error & { groups?: Array<{ groupId: string; errorCode: number }> }) => {
      assert.equal(err.name, 'KafkaJSDeleteGroupsError', String(err));
      assert.deepEqual(
        err.groups?.map((g) => [g.groupId, g.errorCode]),
        [[groupId, 68]],
      ); // NON_EMPTY_GROUP
      return true;
    });
    // Still there, member and all.
    assert.equal((await admin.describeGroups([groupId])).groups[0]!.members.length, 1);
    await waitFor('offsets committed', async () => {
      const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return c!.partitions.every((p) => p.offset === '1') ? true : undefined;
    });

    await consumer.disconnect();
    await waitFor('group Empty', async () => ((await admin.describeGroups([groupId])).groups[0]!.state === 'Empty' ? true : undefined));
    const deleted = await admin.deleteGroups([groupId]);
    assert.deepEqual(
      deleted.map((d) => [d.groupId, d.errorCode]),
      [[groupId, 0]],
    );
    assert.equal((await admin.describeGroups([groupId])).groups[0]!.state, 'Dead');
    assert.ok(!(await admin.listGroups()).groups.some((g) => g.groupId === groupId));
    // Its committed offsets went with it.
    const [after] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.ok(
      after!.partitions.every((p) => p.offset === '-1'),
      JSON.stringify(after),
    );
    // Deleting it again: GROUP_ID_NOT_FOUND.
    await assert.rejects(admin.deleteGroups([groupId]), (err: Error & { groups?: Array<{ errorCode: number }> }) => {
      assert.equal(err.groups?.[0]?.errorCode, 69);
      return true;
    });
  });

  it('a malformed or oversized frame closes only its own connection', async () => {
    await admin.createTopics({ topics: [{ topic: 'survivor', numPartitions: 1 }] });
    const producer = track(kafka.producer());
    await producer.connect();
    await producer.send({ topic: 'survivor', messages: [{ value: 'before' }] });

    const rand = mulberry32(42);
    const frames: Array<[string, Buffer]> = [];
    // Random bytes with a correct size prefix (api key forced out of range so the seed cannot hit a real request).
    const junk = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256)));
    junk.writeInt16BE(0x7abc, 0);
    frames.push(['random bytes', Buffer.concat([int32(junk.length), junk])]);
    // A real Produce v3 header followed by a truncated body.
    const head = Buffer.alloc(10);
    head.writeInt16BE(0, 0);
    head.writeInt16BE(3, 2);
    head.writeInt32BE(7, 4);
    head.writeInt16BE(-1, 8);
    const truncated = Buffer.concat([head, Buffer.from([0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x00, 0x05, 0x00, 0x09])]);
    frames.push(['truncated produce', Buffer.concat([int32(truncated.length), truncated])]);
    // Sizes nobody may send: over max_request_bytes, and negative.
    frames.push(['oversized prefix', Buffer.concat([int32(0x7fff_fff0), Buffer.alloc(16)])]);
    frames.push(['negative prefix', int32(-5)]);

    let closesBefore = node.proc.logLines().filter((l) => String(l['msg']).startsWith('kafka: closing connection')).length;
    for (const [what, frame] of frames) {
      const raw = await RawKafka.connect(node.ports.kafka);
      // The connection works before the bad frame.
      const versions = await raw.call('apiVersions', 0, {});
      assert.equal(versions['errorCode'], 0, what);
      const before = raw.received;
      raw.socket.write(frame);
      assert.equal(await raw.closesWithin(3000), true, `${what}: connection closed by the broker`);
      assert.equal(raw.received, before, `${what}: nothing answered`);
      raw.destroy();
      const closes = () => node.proc.logLines().filter((l) => String(l['msg']).startsWith('kafka: closing connection')).length;
      await waitFor(`the broker's log of closing it (${what})`, () => (closes() === closesBefore + 1 ? true : undefined), 3000);
      closesBefore++;
      // Another client's connection was not touched.
      const r = await producer.send({ topic: 'survivor', messages: [{ value: `after ${what}` }] });
      assert.equal(r[0]!.errorCode, 0);
    }
    const got = await consumeAll('survivor', 1 + frames.length);
    assert.deepEqual(
      got.map((g) => g.value!.toString()),
      ['before', ...frames.map(([w]) => `after ${w}`)],
    );
    const health = await fetch(`http://127.0.0.1:${node.ports.http}/health/ready`);
    assert.equal(health.status, 200);
  });

  it('committed offsets survive a graceful restart; the group resumes after them', async () => {
    const topic = 'restart-offsets';
    const groupId = 'g-restart';
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
    const producer = track(kafka.producer());
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 30 }, (_, i) => ({ partition: i % 3, value: `old-${i}` })) });

    const consumer = track(kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 }));
    const first: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void first.push(message.value!.toString()) });
    await waitFor('30 old messages', () => (first.length === 30 ? true : undefined));
    await waitFor('commits at 10 per partition', async () => {
      const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return c!.partitions.every((p) => p.offset === '10') ? true : undefined;
    });
    await consumer.disconnect();
    // An offset set by hand for another group, on one partition only.
    await admin.setOffsets({ groupId: 'g-restart-manual', topic, partitions: [{ partition: 1, offset: '4' }] });
    const before = await admin.fetchOffsets({ groupId, topics: [topic] });

    for (const c of closers) await c();
    closers.clear();
    // Nothing in this file should have made a handler fail or storage complain (warn level and up).
    const complaints = node.proc.logLines().filter((l) => (l['level'] as number) >= 40);
    assert.deepEqual(complaints, [], 'warnings logged before the restart');
    await node.stop();
    assert.equal(node.proc.child.exitCode, 0, `clean exit\n${node.proc.stderr}`);
    await node.restart();
    kafka = kafkaClient(node.broker);
    admin = track(kafka.admin());
    await admin.connect();

    assert.deepEqual(await admin.fetchOffsets({ groupId, topics: [topic] }), before);
    const [manual] = await admin.fetchOffsets({ groupId: 'g-restart-manual', topics: [topic] });
    assert.deepEqual(
      manual!.partitions.map((p) => [p.partition, p.offset]).sort(),
      [
        [0, '-1'],
        [1, '4'],
        [2, '-1'],
      ],
    );
    assert.deepEqual(
      (await admin.fetchTopicOffsets(topic)).map((o) => o.high),
      ['10', '10', '10'],
    );

    const producer2 = track(kafka.producer());
    await producer2.connect();
    await producer2.send({ topic, messages: Array.from({ length: 9 }, (_, i) => ({ partition: i % 3, value: `new-${i}` })) });
    const resumed = track(kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 }));
    const second: Array<[number, string, string]> = [];
    await resumed.connect();
    await resumed.subscribe({ topics: [topic], fromBeginning: true });
    await resumed.run({ eachMessage: async ({ partition, message }) => void second.push([partition, message.offset, message.value!.toString()]) });
    await waitFor('9 new messages', () => (second.length >= 9 ? true : undefined));
    await sleep(500);
    second.sort((a, b) => a[0] - b[0] || Number(a[1]) - Number(b[1]));
    assert.deepEqual(
      second,
      Array.from({ length: 9 }, (_, j) => {
        const p = Math.floor(j / 3);
        const k = j % 3;
        return [p, String(10 + k), `new-${p + 3 * k}`] as [number, string, string];
      }),
    );
    await resumed.disconnect();
  });
});

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}
