/**
 * bin/robust-bench against an in-process aedes broker (TCP and WebSocket, 127.0.0.1 only;
 * a second aedes that refuses every CONNECT): pubsub at QoS 0, 1 and 2 and over
 * WebSocket with --output json, conn with 200 connections, and the one-line errors.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { BenchResult } from '../../src/loadgen/run.js';
import { BIN, run } from '../support/server.js';

interface Running {
  broker: Aedes;
  tcp: Server;
  port: number;
  http?: HttpServer;
  wsPort?: number;
}

function listen(server: Server | HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

async function startAedes(opts: { ws?: boolean; refuse?: boolean } = {}): Promise<Running> {
  const broker = await Aedes.createBroker();
  if (opts.refuse) {
    broker.authenticate = (_client, _user, _pass, done) => done(Object.assign(new Error('nope'), { returnCode: 4 as const }), false);
  }
  const tcp = createServer(broker.handle);
  const r: Running = { broker, tcp, port: await listen(tcp) };
  if (opts.ws) {
    const http = createHttpServer();
    const wss = new WebSocketServer({ server: http, path: '/mqtt' });
    wss.on('connection', (ws, req) => broker.handle(createWebSocketStream(ws), req));
    r.http = http;
    r.wsPort = await listen(http);
  }
  return r;
}

async function stopAedes(r: Running | undefined): Promise<void> {
  if (!r) return;
  r.tcp.close();
  r.http?.closeAllConnections();
  r.http?.close();
  await new Promise<void>((res) => r.broker.close(() => res()));
}

async function bench(args: string[], timeoutMs = 20_000): Promise<BenchResult> {
  const res = await run(BIN('robust-bench'), ['mqtt', ...args, '--output', 'json'], { timeoutMs });
  assert.equal(res.code, 0, `robust-bench ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  const lines = res.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected, got: ${res.stdout}`);
  return JSON.parse(lines[0]!) as BenchResult;
}

function assertLatency(l: BenchResult['latency_ms'], what: string): void {
  assert.ok(l, `${what} present`);
  for (const k of ['p50', 'p95', 'p99', 'p999', 'max', 'mean'] as const) {
    assert.equal(typeof l[k], 'number', `${what}.${k}`);
    assert.ok(l[k] > 0 && l[k] < 10_000, `${what}.${k} = ${l[k]} ms`);
  }
  assert.ok(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${what} percentiles ordered: ${JSON.stringify(l)}`);
}

/** The fields the comparison harness reads. */
function assertShape(r: BenchResult): void {
  for (const k of ['workload', 'qos', 'clients', 'publishers', 'subscribers', 'size', 'duration_s', 'sent', 'received', 'lost', 'duplicates', 'sent_per_s', 'received_per_s', 'latency_ms', 'ack_latency_ms', 'connect', 'broker', 'loadgen']) {
    assert.ok(k in r, `field ${k}`);
  }
  assert.deepEqual(Object.keys(r.loadgen).filter((k) => ['workers', 'max_worker_cpu_percent', 'saturated'].includes(k)).sort(), ['max_worker_cpu_percent', 'saturated', 'workers']);
}

function assertReceivedAboutSent(r: BenchResult): void {
  assert.ok(r.sent > 1000, `sent ${r.sent}`);
  // Both counted over the same window; what is in flight at its edges may differ.
  assert.ok(Math.abs(r.received - r.sent) <= Math.max(500, 0.05 * r.sent), `received ${r.received} ≈ sent ${r.sent}`);
  assert.ok(Math.abs(r.sent_per_s - r.sent / r.duration_s) <= 0.001 * r.sent_per_s + 1, `sent_per_s ${r.sent_per_s} vs ${r.sent} / ${r.duration_s} s`);
}

describe('robust-bench against aedes', () => {
  let aedes: Running | undefined;
  let refusing: Running | undefined;
  before(async () => {
    aedes = await startAedes({ ws: true });
    refusing = await startAedes({ refuse: true });
  });
  after(async () => {
    await stopAedes(aedes);
    await stopAedes(refusing);
  });

  it('pubsub QoS 0 at 20,000 msg/s: received ≈ sent, end-to-end latency', async () => {
    // Paced: at max rate QoS 0 has no flow control but TCP's, and what the broker queues
    // at the window's edges makes the window's sent and received differ.
    const r = await bench(['pubsub', '--port', String(aedes!.port), '--qos', '0', '--rate', '20000', '--duration', '2', '--warmup', '0.5']);
    assertShape(r);
    assert.equal(r.workload, 'pubsub');
    assert.deepEqual([r.qos, r.publishers, r.subscribers, r.clients, r.size], [0, 1, 1, 2, 100]);
    assert.ok(r.duration_s >= 1.9 && r.duration_s < 3, `duration ${r.duration_s}`);
    assertReceivedAboutSent(r);
    assert.equal(r.lost, 0);
    assert.equal(r.duplicates, 0);
    assertLatency(r.latency_ms, 'latency_ms');
    assert.equal(r.ack_latency_ms, null, 'no acks at QoS 0');
    assert.deepEqual([r.connect?.connected, r.connect?.failed], [2, 0]);
    assert.ok(Math.abs(r.sent_per_s - 20_000) < 1000, `paced: ${r.sent_per_s} msg/s`);
    assert.equal(r.broker, null);
    assert.ok(r.loadgen.workers >= 1 && typeof r.loadgen.saturated === 'boolean');
  });

  it('pubsub QoS 1, 2 publishers → 1 wildcard subscriber, with --broker-pid: no loss, ack latency', async () => {
    const r = await bench(['pubsub', '--port', String(aedes!.port), '--qos', '1', '--clients', '2', '--sub-topic', 'bench/#', '--duration', '2', '--warmup', '0.5', '--broker-pid', String(process.pid)]);
    assertShape(r);
    assert.deepEqual([r.qos, r.publishers, r.subscribers], [1, 2, 1]);
    assertReceivedAboutSent(r);
    assert.equal(r.lost, 0);
    assert.equal(r.duplicates, 0);
    assert.equal(r.totals.unique, r.totals.expected, 'everything published arrived');
    assert.equal(r.totals.acked, r.totals.sent, 'everything published was acknowledged');
    assertLatency(r.latency_ms, 'latency_ms');
    assertLatency(r.ack_latency_ms, 'ack_latency_ms');
    // The window's edges are read by the main thread while the subscriber's worker counts a read
    // chunk at a time, so a chunk straddling an edge can be in one count and not the other.
    assert.ok(Math.abs(r.latency_ms!.count - r.received) <= 64, `latency samples ${r.latency_ms!.count} ≈ received in the window ${r.received}`);
    assert.ok(r.latency_ms!.count > 10_000, 'a latency sample per message received in the window');
    assert.ok(r.broker, 'broker figures with --broker-pid');
    assert.equal(typeof r.broker.cpu_us_per_msg, 'number');
    assert.ok(r.broker.cpu_percent > 0);
    assert.ok(r.broker.rss_bytes > 10 * 1024 * 1024);
    assert.equal(r.broker.rss_per_connection_bytes, null);
  });

  it('pubsub over WebSocket, QoS 1, fixed rate', async () => {
    const r = await bench(['pubsub', '--ws', '--port', String(aedes!.wsPort), '--qos', '1', '--rate', '2000', '--duration', '2', '--warmup', '0.5']);
    assert.equal(r.transport, 'ws');
    assertReceivedAboutSent(r);
    assert.ok(Math.abs(r.sent_per_s - 2000) < 200, `paced at 2000 msg/s: ${r.sent_per_s}`);
    assert.equal(r.lost, 0);
    assertLatency(r.latency_ms, 'latency_ms');
    assertLatency(r.ack_latency_ms, 'ack_latency_ms');
  });

  it('pubsub QoS 2, fan-out to 3 subscribers, table output', async () => {
    const res = await run(BIN('robust-bench'), ['mqtt', 'pubsub', '--port', String(aedes!.port), '--qos', '2', '--topic', 'fan', '--subscribers', '3', '--duration', '1', '--warmup', '0.2'], { timeoutMs: 20_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /1 pub → 3 sub, QoS 2/);
    assert.match(res.stdout, /lost 0, duplicates 0/);
    assert.match(res.stdout, /publish → PUBCOMP/);
    assert.doesNotMatch(res.stdout, /\r/, 'no progress line when stdout is not a terminal');
  });

  it('conn holds 200 connections and reports broker RSS per connection', async () => {
    const r = await bench(['conn', '--port', String(aedes!.port), '--clients', '200', '--connect-rate', '2000', '--duration', '1', '--broker-pid', String(process.pid)]);
    assert.equal(r.workload, 'conn');
    assert.equal(r.clients, 200);
    assert.ok(r.connect);
    assert.deepEqual([r.connect.attempted, r.connect.connected, r.connect.failed, r.connect.dropped], [200, 200, 0, 0]);
    assert.ok(r.connect.per_s > 0);
    assert.equal(r.latency_ms, null);
    assert.ok(r.broker);
    assert.equal(typeof r.broker.rss_per_connection_bytes, 'number');
    assert.equal(r.broker.cpu_us_per_msg, null);
    assert.ok(r.duration_s >= 0.9);
  });

  it('fails with one line: usage errors exit 2, run failures exit 1', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['mqtt', 'pubsub', '--bogus'], 2, /unknown option --bogus/],
      [['mqtt', 'pubsub', '--size', '8'], 2, /--size 8 is too small/],
      [['mqtt', 'pubsub', '--qos', 'x'], 2, /--qos: "x" is not a number/],
      [['mqtt', 'pubsub', '--port', String(refusing!.port), '--duration', '1'], 1, /CONNACK refused: 4 bad user name or password/],
      [['mqtt', 'conn', '--port', String(refusing!.port), '--clients', '5', '--duration', '1'], 1, /no connection succeeded: CONNACK refused: 4 bad user name or password/],
      [['mqtt', 'pubsub', '--ws', '--port', String(aedes!.wsPort), '--ws-path', '/nope', '--duration', '1'], 1, /WebSocket upgrade .* refused: HTTP 400/],
    ];
    // A port nobody listens on.
    const closed = createServer();
    const port = await listen(closed);
    await new Promise<void>((res) => closed.close(() => res()));
    cases.push([['mqtt', 'pub', '--port', String(port), '--duration', '1'], 1, /cannot connect to mqtt:\/\/127\.0\.0\.1:\d+: connection refused/]);
    for (const [args, code, pattern] of cases) {
      const res = await run(BIN('robust-bench'), args, { timeoutMs: 15_000 });
      assert.equal(res.code, code, `${args.join(' ')}: exit ${res.code}, stderr ${res.stderr}`);
      const first = res.stderr.split('\n')[0]!;
      assert.match(first, pattern, args.join(' '));
      assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
