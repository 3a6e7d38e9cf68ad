/**
 * config/separated as a user runs it: 3 meta-only nodes, 3 journal-only nodes and
 * 2 broker-only nodes (RocketMQ's "cluster mode": stateless brokers in front of
 * replicated storage), eight processes on one machine on the ports the shipped
 * files name, started in the documented order meta -> journal -> broker. Only
 * data_dir is moved to a temp dir (ROBUST_DATA_DIR) so nothing is left behind.
 *
 * Then it serves traffic across the two brokers: a Kafka topic created through
 * broker 11, produced to with acks=all through broker 11 and consumed through
 * broker 12 (kafkajs); an MQTT QoS 1 publish on broker 11 delivered to a
 * subscriber on broker 12 (mqtt.js).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { MqttRoutesView } from '../../src/admin/mqtt-routes.js';
import type { ClusterStatusView } from '../../src/meta/service.js';
import { kafkaClient } from '../support/kafka.js';
import { Inbox, connect, endClient, sleep } from '../support/mqtt.js';
import { REPO_ROOT, removeDir, startFixedPortNode, tempDir, type ServerProcess, until } from '../support/server.js';

/** [file name, admin HTTP port], in start order: meta, then journal, then broker. */
const META: Array<[string, number]> = [
  ['meta1', 58180],
  ['meta2', 58190],
  ['meta3', 58200],
];
const JOURNALS: Array<[string, number]> = [
  ['journal1', 58380],
  ['journal2', 58390],
  ['journal3', 58400],
];
const BROKERS: Array<[string, number]> = [
  ['broker1', 58280],
  ['broker2', 58290],
];
/** The brokers' client ports, from config/separated/broker{1,2}.toml. */
const B11 = { http: 58280, kafka: 9292, mqtt: 2083 };
const B12 = { http: 58290, kafka: 9302, mqtt: 2093 };

async function getJson<T>(httpPort: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, `GET ${path} on ${httpPort}: ${await res.clone().text()}`);
  return (await res.json()) as T;
}

/** Sum of a Prometheus counter or gauge (all label sets) on a node's /metrics. */
async function metric(httpPort: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
  let sum = 0;
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[2]);
  }
  return sum;
}

describe('separated roles from config/separated (3 meta + 3 journal + 2 broker)', () => {
  const dir = tempDir('robust-separated-');
  /** Every process started, by config file name. */
  const procs = new Map<string, ServerProcess>();
  const clients = new Set<MqttClient>();

  const startGroup = async (group: Array<[string, number]>): Promise<void> => {
    const started = await Promise.allSettled(
      group.map(([name, http]) => startFixedPortNode(['start', join(REPO_ROOT, 'config', 'separated', `${name}.toml`)], { env: { ROBUST_DATA_DIR: join(dir, name) } }, http)),
    );
    started.forEach((s, i) => {
      if (s.status === 'fulfilled') procs.set(group[i]![0], s.value);
    });
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  };

  before(async () => {
    // The documented start order: meta needs 2 of 3 up to elect a leader, journals
    // register with meta, brokers need meta and (for the journal engine) the journals.
    await startGroup(META);
    await startGroup(JOURNALS);
    await startGroup(BROKERS);
  });

  after(async () => {
    for (const c of clients) c.end(true);
    for (const p of procs.values()) await p.kill();
    removeDir(dir);
  });

  it('every node registers; a broker-only node reaches the meta group for status and writes', async () => {
    const view = await until('all eight nodes registered and alive', async () => {
      const v = await getJson<ClusterStatusView>(B11.http, '/api/v1/cluster');
      return v.nodes.length === 8 && v.nodes.every((n) => n.state === 'alive') ? v : undefined;
    });
    assert.equal(view.answered_by, view.leader_id, "the broker gets the leader's view");
    assert.equal(view.cluster_name, 'robustmq-separated');
    assert.deepEqual(view.members.map((m) => m.node_id).sort(), [1, 2, 3]);
    assert.deepEqual(
      view.nodes.map((n) => [n.node_id, n.roles.join(',')]),
      [
        [1, 'meta'],
        [2, 'meta'],
        [3, 'meta'],
        [11, 'broker'],
        [12, 'broker'],
        [21, 'journal'],
        [22, 'journal'],
        [23, 'journal'],
      ],
    );
    const created = await fetch(`http://127.0.0.1:${B11.http}/api/v1/topics`, { method: 'POST', body: JSON.stringify({ name: 'via-broker', shards: 4 }) });
    assert.equal(created.status, 201, await created.text());
    const onMeta = await getJson<{ shards: number; engine: string }>(58190, '/api/v1/topics/via-broker');
    assert.equal(onMeta.shards, 4);
    assert.equal(onMeta.engine, 'journal', "the broker's [storage] default_engine");
  });

  it('Kafka: a topic created through broker 11, acks=all produce through broker 11, consume through broker 12', { timeout: 90_000 }, async () => {
    const topic = 'separated-orders';
    const partitions = 2;
    const admin = kafkaClient(`127.0.0.1:${B11.kafka}`).admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      assert.deepEqual(
        cluster.brokers.map((b) => [b.nodeId, b.port]).sort((a, b) => a[0]! - b[0]!),
        [
          [11, B11.kafka],
          [12, B12.kafka],
        ],
        'both brokers in Metadata',
      );
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true }), true);
    } finally {
      await admin.disconnect();
    }
    const onMeta = await getJson<{ shards: number; engine: string }>(58200, `/api/v1/topics/${topic}`);
    assert.deepEqual([onMeta.shards, onMeta.engine], [partitions, 'journal']);

    const sent: string[] = [];
    const producer = kafkaClient(`127.0.0.1:${B11.kafka}`).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (let batch = 0; batch < 10; batch++) {
        const values = Array.from({ length: 10 }, (_, i) => `order-${batch * 10 + i}`);
        const res = await producer.send({ topic, acks: -1, timeout: 30_000, messages: values.map((value, i) => ({ partition: i % partitions, key: value, value })) });
        for (const r of res) assert.equal(r.errorCode, 0);
        sent.push(...values);
      }
    } finally {
      await producer.disconnect();
    }

    // acks=all on 3/3/2: every journal node stored a replica of the segments.
    for (const [name, http] of JOURNALS) {
      assert.ok((await metric(http, 'robust_journal_add_bytes_total')) > 0, `${name} received adds`);
      assert.ok((await metric(http, 'robust_journal_replicas')) > 0, `${name} holds segment replicas`);
    }

    const received: string[] = [];
    const consumer = kafkaClient(`127.0.0.1:${B12.kafka}`).consumer({ groupId: 'separated-readers', sessionTimeout: 10_000, heartbeatInterval: 500 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          received.push(message.value!.toString());
        },
      });
      await until(`${sent.length} records consumed (got ${received.length})`, async () => (received.length >= sent.length ? true : undefined), 60_000);
    } finally {
      await consumer.disconnect();
    }
    assert.deepEqual([...received].sort(), [...sent].sort(), 'each acknowledged record consumed once');

    // Broker 12 reads every shard from the journals itself, whichever broker leads it.
    const viaB12: string[] = [];
    for (let p = 0; p < partitions; p++) {
      const { records } = await getJson<{ records: Array<{ offset: string; value: string }> }>(B12.http, `/api/v1/topics/${topic}/shards/${p}/records?from=0&max=1000`);
      assert.deepEqual(
        records.map((r) => Number(r.offset)),
        records.map((_, i) => i),
        `partition ${p}: dense offsets`,
      );
      viaB12.push(...records.map((r) => r.value));
    }
    assert.deepEqual(viaB12.sort(), [...sent].sort());
  });

  it('MQTT: a QoS 1 publish on broker 11 reaches a subscriber on broker 12', { timeout: 60_000 }, async () => {
    const mqttClient = async (port: number, clientId: string): Promise<{ c: MqttClient; inbox: Inbox }> => {
      let inbox!: Inbox;
      const c = await connect(port, { clientId, protocolVersion: 5, connectTimeout: 10_000 }, undefined, (cl) => {
        inbox = new Inbox(cl);
        cl.on('error', () => undefined);
      });
      clients.add(c);
      return { c, inbox };
    };
    const sub = await mqttClient(B12.mqtt, 'separated-sub-12');
    const granted = await sub.c.subscribeAsync('plant/+/temp', { qos: 1 });
    assert.equal(granted[0]!.qos, 1);
    // Broker 11 learns broker 12's subscription over their inner gRPC link.
    await until('broker 11 knows the route of broker 12', async () => {
      const v = await getJson<MqttRoutesView>(B11.http, '/api/v1/mqtt/routes');
      const peer = v.nodes.find((n) => n.node_id === 12);
      return peer?.connected && peer.routes.some((r) => r.filter === 'plant/+/temp') ? true : undefined;
    }, 20_000);

    const pub = await mqttClient(B11.mqtt, 'separated-pub-11');
    for (let i = 0; i < 5; i++) await pub.c.publishAsync(`plant/line${i}/temp`, `t${i}`, { qos: 1 });
    await sub.inbox.waitFor(5, 15_000);
    await sleep(300); // a duplicate would have arrived by now
    assert.deepEqual(
      sub.inbox.messages.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
      Array.from({ length: 5 }, (_, i) => [`plant/line${i}/temp`, `t${i}`, 1]),
    );
    await Promise.all([pub.c, sub.c].map((c) => endClient(c)));
    clients.clear();
  });

  it('stops cleanly in reverse start order (brokers, then journals, then the meta group)', async () => {
    for (const group of [BROKERS, JOURNALS, META]) {
      const running = group.map(([name]) => [name, procs.get(name)!] as const);
      for (const [, p] of running) p.child.kill('SIGTERM');
      for (const [name, p] of running) assert.equal((await p.waitExit(20_000)).code, 0, `${name} exits 0`);
    }
  });
});
