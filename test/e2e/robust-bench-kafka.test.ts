/**
 * bin/robust-bench kafka produce|consume against a real node (its Kafka listener):
 * counted runs (--records) whose JSON says every record requested was acknowledged and
 * every record produced was consumed, in order, once; compression and acks=all/0; a
 * paced --duration run; the one-line errors.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { KafkaBenchResult } from '../../src/loadgen/kafka/run.js';
import { startKafkaNode, type KafkaNode } from '../support/kafka.js';
import { BIN, run } from '../support/server.js';

async function bench(args: string[], timeoutMs = 30_000): Promise<KafkaBenchResult> {
  const res = await run(BIN('robust-bench'), ['kafka', ...args, '--output', 'json'], { timeoutMs });
  assert.equal(res.code, 0, `robust-bench kafka ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  const lines = res.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected, got: ${res.stdout}`);
  return JSON.parse(lines[0]!) as KafkaBenchResult;
}

function assertLatency(l: KafkaBenchResult['latency_ms'], what: string): void {
  assert.ok(l, `${what} present`);
  for (const k of ['p50', 'p95', 'p99', 'p999', 'max', 'mean'] as const) assert.ok(typeof l[k] === 'number' && l[k] > 0 && l[k] < 60_000, `${what}.${k} = ${l[k]}`);
  assert.ok(l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${what} ordered: ${JSON.stringify(l)}`);
}

function assertProduced(r: KafkaBenchResult, n: number): void {
  assert.equal(r.workload, 'produce');
  assert.equal(r.requested, n);
  assert.equal(r.totals.sent, n, 'records sent');
  assert.equal(r.totals.acked, n, 'records acknowledged == records requested');
  assert.equal(r.totals.failed, 0);
  assert.equal(r.records, n);
  assert.deepEqual(r.errors, {});
  assert.ok(r.duration_s > 0 && r.records_per_s > 0 && r.mb_s > 0, `rates: ${r.records_per_s}/s, ${r.mb_s} MB/s over ${r.duration_s} s`);
  // duration_s is rounded to the ms: compare only when that rounding is small.
  if (r.duration_s >= 0.1) assert.ok(Math.abs(r.records_per_s - n / r.duration_s) <= 0.02 * r.records_per_s + 1, `${r.records_per_s} vs ${n} / ${r.duration_s} s`);
  assert.equal(r.bytes, n * r.record_size!);
}

function assertConsumed(r: KafkaBenchResult, n: number): void {
  assert.equal(r.workload, 'consume');
  assert.equal(r.totals.consumed, n, 'consumed == produced');
  assert.equal(r.records, n);
  assert.equal(r.lost, 0, 'no sequence gaps');
  assert.equal(r.duplicates, 0);
  assert.equal(r.out_of_order, 0);
  assert.equal(r.unstamped, 0);
  assert.deepEqual(r.errors, {});
  assertLatency(r.latency_ms, 'latency_ms');
  assert.equal(r.latency_ms!.count, n);
}

describe('robust-bench kafka against a node', () => {
  let node: KafkaNode | undefined;
  before(async () => {
    node = await startKafkaNode();
  });
  after(async () => {
    await node?.destroy();
  });

  it('produce --records N on 3 partitions creates the topic and gets all N acknowledged; consume reads them back', async () => {
    const N = 25_000;
    const p = await bench(['produce', '--brokers', node!.broker, '--topic', 'rb-count', '--partitions', '3', '--records', String(N), '--batch-size', '400', '--in-flight', '3']);
    assertProduced(p, N);
    assert.equal(p.topic_created, true);
    assert.equal(p.partitions, 3);
    assert.deepEqual([p.producers, p.record_size, p.batch_size, p.acks, p.compression, p.in_flight], [1, 100, 400, 1, 'none', 3]);
    assertLatency(p.ack_latency_ms, 'ack_latency_ms');
    assert.equal(p.latency_ms, null);
    assert.ok(p.versions.produce >= 3 && p.versions.fetch >= 4);
    assert.ok(p.loadgen.workers >= 1 && typeof p.loadgen.saturated === 'boolean');

    const c = await bench(['consume', '--brokers', node!.broker, '--topic', 'rb-count', '--records', String(N), '--consumers', '2', '--broker-pid', String(node!.proc.child.pid)]);
    assertConsumed(c, N);
    assert.equal(c.topic_created, false);
    assert.equal(c.partitions, 3);
    assert.equal(c.consumers, 2);
    assert.ok(c.broker && c.broker.cpu_percent >= 0 && c.broker.rss_bytes > 10 * 1024 * 1024);
  });

  it('2 producers, lz4, acks=all, 1 KiB records: everything acknowledged and consumed once', async () => {
    const N = 6_001; // not a multiple of producers × partitions × batch
    const p = await bench(['produce', '--brokers', node!.broker, '--topic', 'rb-lz4', '--partitions', '2', '--records', String(N), '--producers', '2', '--record-size', '1024', '--acks', 'all', '--compression', 'lz4', '--batch-size', '250']);
    assertProduced(p, N);
    assert.deepEqual([p.producers, p.acks, p.compression], [2, -1, 'lz4']);
    const c = await bench(['consume', '--brokers', node!.broker, '--topic', 'rb-lz4', '--records', String(N)]);
    assertConsumed(c, N);
    assert.equal(c.bytes, N * 1024);
  });

  it('acks=0: records written count as acknowledged, and they all arrive', async () => {
    const N = 5_000;
    const p = await bench(['produce', '--brokers', node!.broker, '--topic', 'rb-acks0', '--records', String(N), '--acks', '0', '--batch-size', '100']);
    assertProduced(p, N);
    assert.equal(p.ack_latency_ms, null, 'no answers with acks=0');
    const c = await bench(['consume', '--brokers', node!.broker, '--topic', 'rb-acks0', '--records', String(N)]);
    assertConsumed(c, N);
  });

  it('consume --duration while produce --rate runs: end-to-end latency and the paced rate', async () => {
    const consumer = bench(['consume', '--brokers', node!.broker, '--topic', 'rb-e2e', '--partitions', '1', '--duration', '2', '--warmup', '1']);
    await new Promise((r) => setTimeout(r, 500));
    const p = await bench(['produce', '--brokers', node!.broker, '--topic', 'rb-e2e', '--rate', '5000', '--duration', '3', '--warmup', '0']);
    const c = await consumer;
    assert.equal(p.rate, 5000);
    assert.ok(Math.abs(p.records_per_s - 5000) < 500, `paced at 5000 records/s: ${p.records_per_s}`);
    assert.equal(p.totals.acked, p.totals.sent);
    // The consumer's window and the producer's run overlap (both processes start in about 0.5 s): at most the produce rate.
    assert.ok(c.records > 2000, `consumed in the window: ${c.records}`);
    assert.ok(c.records_per_s > 1000 && c.records_per_s < 5750, `consumed at about the produce rate: ${c.records_per_s}`);
    assertLatency(c.latency_ms, 'latency_ms');
    assert.ok(c.latency_ms!.p50 < 1000, `p50 ${c.latency_ms!.p50} ms`);
    assert.equal(c.duplicates, 0);
  });

  it('table output', async () => {
    const res = await run(BIN('robust-bench'), ['kafka', 'produce', '--brokers', node!.broker, '--topic', 'rb-table', '--records', '2000'], { timeoutMs: 30_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /robust-bench kafka produce: kafka:\/\/127\.0\.0\.1:\d+ topic rb-table \(1 partition, created\), 1 producer/);
    assert.match(res.stdout, /acknowledged\s+2,000/);
    assert.match(res.stdout, /request → ack/);
  });

  it('fails with one line: usage errors exit 2, run failures exit 1', async () => {
    const closed = createServer();
    const port = await new Promise<number>((res) => closed.listen(0, '127.0.0.1', () => res((closed.address() as { port: number }).port)));
    await new Promise<void>((res) => closed.close(() => res()));
    const cases: Array<[string[], number, RegExp]> = [
      [['kafka', 'produce', '--acks', '2'], 2, /--acks must be 0, 1 or all/],
      [['kafka', 'produce', '--record-size', '8'], 2, /--record-size 8 is too small/],
      [['kafka', 'consume', '--batch-size', '10'], 2, /--batch-size applies to produce, not consume/],
      [['kafka', 'produce', '--records', '10', '--duration', '1'], 2, /give --records or --duration, not both/],
      [['kafka', 'fetch'], 2, /unknown kafka workload "fetch"/],
      [['kafka', 'produce', '--brokers', `127.0.0.1:${port}`, '--records', '10'], 1, /cannot connect to kafka:\/\/127\.0\.0\.1:\d+: connection refused/],
    ];
    for (const [args, code, pattern] of cases) {
      const res = await run(BIN('robust-bench'), args, { timeoutMs: 15_000 });
      assert.equal(res.code, code, `${args.join(' ')}: exit ${res.code}, stderr ${res.stderr}`);
      assert.match(res.stderr.split('\n')[0]!, pattern, args.join(' '));
      assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    }
    const help = await run(BIN('robust-bench'), ['kafka', '--help'], { timeoutMs: 15_000 });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: robust-bench kafka <produce\|consume>/);
  });
});
