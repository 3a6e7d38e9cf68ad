/**
 * A Kafka consumer group keeps working when its coordinator's node dies: on a
 * three-node journal cluster, the node coordinating the group is killed with -9;
 * the consumer finds the new coordinator, resumes from its committed offsets and
 * reads what is produced afterwards. Real processes, kafkajs.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { hash32 } from '../../src/server/kafka-wiring.js';
import { Cluster, until } from '../support/journal-cluster.js';
import { BIN, run } from '../support/server.js';

const TOPIC = 'grouped';
const GROUP = 'failover-group';

describe('kafka consumer group through the death of its coordinator', () => {
  const cluster = new Cluster({ e: 3, w: 3, a: 2 });
  after(() => cluster.stop());

  it('the group moves to a live coordinator and keeps consuming', { timeout: 240_000 }, async () => {
    await cluster.startAll();
    const client = (ids: number[]) => cluster.kafka(ids);
    const admin = client([1, 2, 3]).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();

    const coordinator = [1, 2, 3][hash32(GROUP) % 3]!;
    const survivors = [1, 2, 3].filter((id) => id !== coordinator);
    const produce = async (from: number, n: number): Promise<void> => {
      const p = client(survivors).producer();
      await p.connect();
      await p.send({ topic: TOPIC, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, value: `v${from + i}` })) });
      await p.disconnect();
    };
    await produce(0, 60);

    const seen = new Set<string>();
    // kafkajs's log (its group and runner lines, and errors), shown if the test fails.
    const klog: string[] = [];
    const logCreator = () => ({ namespace, level, log }: { namespace: string; level: number; log: { message: string } }) => {
      if (level <= 2 || /Consumer|Runner/.test(namespace)) klog.push(`${new Date().toISOString()} ${namespace} ${log.message} ${JSON.stringify({ ...log, message: undefined, timestamp: undefined, logger: undefined, stack: undefined }).slice(0, 300)}`);
    };
    // kafkajs looks for a new coordinator only when it (re)joins; a dead coordinator is noticed by the consumer
    // crashing after its retries and restarting. Its default is 5 retries; with many more it would consume on
    // without a coordinator (one record per partition per retry, commits lost) for a minute before rejoining.
    const consumer = cluster.kafka(survivors, { logLevel: 4, logCreator })
      .consumer({ groupId: GROUP, sessionTimeout: 10_000, heartbeatInterval: 500, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 } });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({ autoCommitInterval: 200, eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
    try {
      await until('the first 60 records consumed', async () => (seen.size >= 60 ? true : undefined), 30_000);
      await new Promise((r) => setTimeout(r, 500)); // let the offsets commit
      await cluster.kill(coordinator);
      await produce(60, 60);
      await until('the records produced after the coordinator died consumed', async () => (seen.size >= 120 ? true : undefined), 60_000).catch(async (err: unknown) => {
        const a = client(survivors).admin();
        await a.connect();
        try {
          const ends = await a.fetchTopicOffsets(TOPIC);
          const committed = await a.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
          const missing = Array.from({ length: 120 }, (_, i) => `v${i}`).filter((v) => !seen.has(v));
          throw new Error(`${(err as Error).message}: missing ${missing.join(',')}; ends ${JSON.stringify(ends)}; committed ${JSON.stringify(committed)}; logs:\n${cluster.logs(/group|coordinat|offset|"level":(40|50)/)}\nkafkajs:\n${klog.slice(-150).join('\n')}`);
        } finally {
          await a.disconnect();
        }
      });
      assert.deepEqual([...seen].sort(), Array.from({ length: 120 }, (_, i) => `v${i}`).sort());
      // The group lives on at a new coordinator: the consumer's commits land there, up to the end of every partition.
      const committedSum = async (): Promise<number> => {
        const a = client(survivors).admin();
        await a.connect();
        try {
          const offsets = await a.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
          return offsets[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
        } finally {
          await a.disconnect();
        }
      };
      let lastSum = 0;
      await until('the group commits everything at its new coordinator', async () => ((lastSum = await committedSum()) === 120 ? true : undefined), 30_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}: committed ${lastSum} of 120; kafkajs:\n${klog.slice(-60).join('\n')}`);
      });
    } finally {
      await consumer.disconnect();
    }
  });
  it('the killed node comes back; cluster rebalance gives it leadership again and no record moves or goes missing', { timeout: 90_000 }, async () => {
    const dead = [1, 2, 3].find((id) => !cluster.procs.has(id))!;
    await cluster.start(dead);
    await until('the node alive again', async () => ((await cluster.status(dead)).nodes.find((n) => n.node_id === dead)?.state === 'alive' ? true : undefined), 20_000);
    const http = cluster.ports.get(dead)!.http;
    // Planned moves go to the returning node (the API's dry run, then robust-ctl's); retried while
    // it may still flip to suspect under load right after its restart.
    await until(`a dry run planning moves to node ${dead}`, async () => {
      const plan = (await (await fetch(`http://127.0.0.1:${http}/api/v1/cluster/rebalance?dry_run=true`, { method: 'POST' })).json()) as { moves: Array<{ to: number }> };
      return plan.moves.length >= 1 && plan.moves.every((m) => m.to === dead) ? plan : undefined;
    }, 30_000);
    const ctl = await until('robust-ctl cluster rebalance --dry-run lists the planned moves', async () => {
      const r = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${http}`, 'cluster', 'rebalance', '--dry-run']);
      assert.equal(r.code, 0, r.stderr);
      return /TOPIC\s+SHARD\s+FROM\s+TO\s+PLANNED/.test(r.stdout) ? r : undefined;
    }, 30_000);
    assert.match(ctl.stdout, new RegExp(`shards led after the moves: .*node ${dead}: [1-9]`));
    // Under load the returning node can briefly turn suspect again (heartbeats late): retry until it is placed.
    const done = await until('a rebalance that gives the returning node leadership', async () => {
      const r = (await (await fetch(`http://127.0.0.1:${http}/api/v1/cluster/rebalance`, { method: 'POST' })).json()) as { moves: Array<{ ok: boolean }>; leaders: Record<string, number> };
      const counts = Object.values(r.leaders);
      return (r.leaders[String(dead)] ?? 0) > 0 && counts.length === 3 && Math.max(...counts) - Math.min(...counts) <= 1 && r.moves.every((m) => m.ok) ? r : undefined;
    }, 30_000);
    assert.ok(done.moves.every((m) => m.ok), JSON.stringify(done));
    // Every record is still readable through the new leaders.
    const consumer = cluster.kafka([1, 2, 3]).consumer({ groupId: `after-rebalance` });
    const seen = new Set<string>();
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
    try {
      await until('all 120 records read after the rebalance', async () => (seen.size >= 120 ? true : undefined), 45_000);
    } finally {
      await consumer.disconnect();
    }
  });
});
