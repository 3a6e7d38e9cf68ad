/**
 * A three-node cluster (every node meta + broker + journal) storing topics on
 * the journal engine with sync flush, as real processes on 127.0.0.1. Kafka
 * producers send with acks=all while nodes are killed with -9 one after the
 * other (each restarted before the next goes, the meta leader among them).
 * Every acknowledged record must read back, offsets dense, in send order per
 * partition.
 *
 * Replication modes: 3/3/2 (E/Qw/Qa, the default), 2/2/2 (synchronous double
 * write), 2/2/1 (asynchronous replication) and 3/2/2 (striped). JOURNAL_FAILOVER_KILLS
 * sets how many kills per mode (default 3).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Cluster, until } from '../support/journal-cluster.js';
import { kafkaClient } from '../support/kafka.js';

const KILLS = Number(process.env['JOURNAL_FAILOVER_KILLS'] ?? 3);

const TOPIC = 'orders';
const PARTITIONS = 3;

for (const quorum of [
  { e: 3, w: 3, a: 2, name: '3/3/2 (default)' },
  { e: 2, w: 2, a: 2, name: '2/2/2 (synchronous double write)' },
  { e: 2, w: 2, a: 1, name: '2/2/1 (asynchronous replication; acks=all still waits for both)' },
  // A small stripe so the write set changes every few sends.
  { e: 3, w: 2, a: 2, stripeBytes: 1024, name: '3/2/2 (striped: each entry on 2 of the 3 journals)' },
]) {
  describe(`journal failover, replication ${quorum.name}`, () => {
    const cluster = new Cluster(quorum);
    after(() => cluster.stop());

    it(`kafka acks=all through ${KILLS} kill -9s (the meta leader among them): every acknowledged record reads back once, in order`, { timeout: 240_000 }, async () => {
      await cluster.startAll();
      const admin = kafkaClient(cluster.brokers()[0]!).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true });
      await admin.disconnect();

      // One producer per round (kafkajs gives up on a cluster whose seed brokers all died); acks=all.
      const acked: string[][] = Array.from({ length: PARTITIONS }, () => []);
      let seq = 0;
      let stopProducing = false;
      let failedSends = 0;
      const produce = async (): Promise<void> => {
        while (!stopProducing) {
          const producer = kafkaClient('', { brokers: cluster.brokers(), retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } }).producer({ allowAutoTopicCreation: false });
          try {
            await producer.connect();
            while (!stopProducing) {
              const p = seq % PARTITIONS;
              const values = Array.from({ length: 5 }, () => `r${seq++}`);
              try {
                await producer.send({ topic: TOPIC, acks: -1, timeout: 30_000, messages: values.map((value) => ({ partition: p, value })) });
                acked[p]!.push(...values);
              } catch {
                failedSends++; // not acknowledged: may or may not be stored
                break;
              }
            }
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          } finally {
            await producer.disconnect().catch(() => undefined);
          }
        }
      };
      const ackedCount = (): number => acked.reduce((n, a) => n + a.length, 0);
      const producing = produce();
      try {

      const ackedCount = (): number => acked.reduce((n, a) => n + a.length, 0);
      await until('records flowing', async () => (ackedCount() > 50 ? true : undefined), 20_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; ${failedSends} failed sends; node logs:\n${cluster.logs()}`);
      });
      for (let k = 0; k < KILLS; k++) {
        const metaLeader = (await cluster.status([...cluster.procs.keys()][0]!)).leader_id;
        // Kill the meta leader on the last round, another node before.
        const victim = k === KILLS - 1 ? metaLeader : ([1, 2, 3].find((id) => id !== metaLeader && (id + k) % 3 === 0) ?? [1, 2, 3].find((id) => id !== metaLeader)!);
        const before = ackedCount();
        await cluster.kill(victim);
        await until(`writes acknowledged again after killing node ${victim}`, async () => (ackedCount() > before + 30 ? true : undefined), 60_000).catch(async (err: unknown) => {
          const views = await Promise.all([...cluster.procs.keys()].map((id) => cluster.status(id).then((v) => `node ${id} sees leader ${v.leader_id}: ${v.nodes.map((n) => `${n.node_id}=${n.state}`).join(' ')}`, (e: unknown) => `node ${id}: ${String(e)}`)));
          throw new Error(`${(err as Error).message} (${ackedCount()} acknowledged, ${failedSends} failed sends); ${views.join('; ')}; node logs:\n${cluster.logs(/"level":(40|50|60)|journal/)}`);
        });
        await cluster.start(victim);
        await until(`node ${victim} alive again`, async () => {
          const v = await cluster.status(victim);
          return v.nodes.find((n) => n.node_id === victim)?.state === 'alive' ? true : undefined;
        }, 20_000);
      }
      const total = ackedCount();
      await until('more records after the last restart', async () => (ackedCount() > total + 30 ? true : undefined), 60_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message} (${ackedCount()} acknowledged, ${failedSends} failed sends); node logs:\n${cluster.logs(/"level":(40|50|60)|journal/)}`);
      });
      } finally {
        stopProducing = true;
        // A send stuck in kafkajs retries must not hold the test past its verdict.
        await Promise.race([producing, new Promise((r) => setTimeout(r, 20_000))]);
      }

      // Read every partition back from offset 0 with a fresh consumer.
      const consumer = kafkaClient('', { brokers: cluster.brokers() }).consumer({ groupId: `check-${Date.now()}` });
      const got: string[][] = Array.from({ length: PARTITIONS }, () => []);
      const offsets: bigint[][] = Array.from({ length: PARTITIONS }, () => []);
      await consumer.connect();
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      const admin2 = kafkaClient(cluster.brokers()[0]!).admin();
      await admin2.connect();
      // fetchTopicOffsets lists partitions in no particular order.
      const ends: number[] = [];
      for (const o of await admin2.fetchTopicOffsets(TOPIC)) ends[o.partition] = Number(o.high);
      await admin2.disconnect();
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          got[partition]!.push(message.value!.toString());
          offsets[partition]!.push(BigInt(message.offset));
        },
      });
      try {
        await until('every partition read to its end', async () => (got.every((g, p) => g.length >= ends[p]!) ? true : undefined), 60_000).catch(async (err: unknown) => {
          const last = offsets.map((o) => (o.length ? String(o.reduce((a, b) => (b > a ? b : a))) : '-'));
          const node = [...cluster.procs.keys()][0]!;
          const segs = await fetch(`http://127.0.0.1:${cluster.ports.get(node)!.http}/api/v1/journal/segments?topic=${TOPIC}`).then((r) => r.text(), (e: unknown) => String(e));
          throw new Error(`${(err as Error).message}: read ${got.map((g) => g.length).join('/')} (last offsets ${last.join('/')}) of ${ends.join('/')}; segments: ${segs}; node logs:\n${cluster.logs()}`);
        });
      } finally {
        await consumer.disconnect();
      }

      for (let p = 0; p < PARTITIONS; p++) {
        assert.deepEqual(offsets[p], offsets[p]!.map((_, i) => BigInt(i)), `partition ${p}: offsets dense from 0`);
        const positions = new Map<string, number>();
        got[p]!.forEach((v, i) => positions.has(v) || positions.set(v, i));
        let last = -1;
        for (const v of acked[p]!) {
          const at = positions.get(v);
          assert.ok(at !== undefined, `partition ${p}: acknowledged ${v} is stored`);
          assert.ok(at > last, `partition ${p}: ${v} in send order`);
          last = at;
        }
      }
      if (quorum.w < quorum.e) {
        // The segments really are striped: ensembles of E nodes written Qw at a time.
        const node = [...cluster.procs.keys()][0]!;
        const view = (await fetch(`http://127.0.0.1:${cluster.ports.get(node)!.http}/api/v1/journal/segments?topic=${TOPIC}`).then((r) => r.json())) as { shards: Array<{ segments: Array<{ ensemble: number[]; write_quorum: number }> }> };
        const segs = view.shards.flatMap((sh) => sh.segments);
        assert.ok(segs.some((g) => g.ensemble.length === quorum.e && g.write_quorum === quorum.w), `a segment striped ${quorum.e}/${quorum.w}: ${JSON.stringify(segs.map((g) => [g.ensemble, g.write_quorum]))}`);
      }
      const stored = got.reduce((n, g) => n + g.length, 0);
      assert.ok(ackedCount() > 200, `enough traffic to mean something: ${ackedCount()} acknowledged, ${failedSends} failed sends, ${stored} stored`);
    });
  });
}
