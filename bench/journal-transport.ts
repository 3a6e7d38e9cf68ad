/**
 * The journal data path over its two candidate transports (issue: "inner gRPC
 * stream or a dedicated TCP port: measure both and keep the faster"): a writer
 * pipelines Add frames of 1 KiB records to one journal node's ReplicaStore
 * (real disk, async flush), over
 *   tcp   the dedicated port (src/journal/server.ts, the one the node runs), and
 *   grpc  a bidirectional gRPC stream carrying the same frames (batched per tick).
 * Prints MB/s and add latency per transport, then one JSON line.
 *
 *   npm run bench:journal-transport -- [--seconds 5] [--record-size 1024] [--batch 100] [--in-flight 16]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ReplicaStore } from '../src/journal/replica-store.js';
import { JournalServer } from '../src/journal/server.js';
import { loadProto, serviceClient } from '../src/rpc/proto.js';
import { JournalClientPool } from '../src/storage/journal/client.js';
import { Op, decodeRequest, decodeResponse, encodeRequest, encodeResponse, frameAt, type AddRequest, type Response } from '../src/storage/journal/protocol.js';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, 'record-size': { type: 'string', default: '1024' }, batch: { type: 'string', default: '100' }, 'in-flight': { type: 'string', default: '16' } },
});
const SECONDS = Number(args.seconds);
const RECORD = Number(args['record-size']);
const BATCH = Number(args.batch);
const IN_FLIGHT = Number(args['in-flight']);
const quiet = { info() {}, warn() {}, debug() {}, error() {} };

const value = Buffer.alloc(RECORD, 7);
const units = Array.from({ length: BATCH }, () => ({ kind: 'record' as const, record: { timestamp: Date.now(), key: null, value, headers: [] } }));

interface Result {
  transport: string;
  mb_s: number;
  adds_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Drives pipelined adds through `send` for SECONDS; `send` resolves with the response. */
async function drive(transport: string, send: (req: AddRequest) => Promise<Response>): Promise<Result> {
  let entry = 0;
  let adds = 0;
  const lat: number[] = [];
  const end = Date.now() + SECONDS * 1000;
  const lane = async (): Promise<void> => {
    while (Date.now() < end) {
      const first = entry;
      entry += BATCH;
      const t0 = performance.now();
      const res = await send({ op: Op.Add, shard: `bench-${transport}`, segment: 0, epoch: 1, sync: false, lac: first - 1, firstEntry: first, units });
      if (res.status !== 0) throw new Error(`${transport}: add failed: ${res.message}`);
      lat.push(performance.now() - t0);
      adds++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { transport, mb_s: (adds * BATCH * RECORD) / secs / 1e6, adds_per_s: adds / secs, p50_ms: pct(lat, 50), p99_ms: pct(lat, 99) };
}

async function viaTcp(store: ReplicaStore): Promise<Result> {
  const server = new JournalServer({ store, host: '127.0.0.1', port: 0, log: quiet });
  await server.start();
  const pool = new JournalClientPool(30_000);
  try {
    const conn = pool.get(1, server.address);
    return await drive('tcp', (req) => conn.request(req));
  } finally {
    pool.closeAll();
    await server.stop();
  }
}

async function viaGrpc(store: ReplicaStore): Promise<Result> {
  const Svc = serviceClient(loadProto('robust/journal/v1/transport.proto'), 'robust.journal.v1.JournalStream');
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  server.addService(Svc.service, {
    Exchange: (call: grpc.ServerDuplexStream<{ data: Buffer }, { data: Buffer }>) => {
      call.on('data', (msg: { data: Buffer }) => {
        let at = 0;
        for (let head = frameAt(msg.data, at); head; head = frameAt(msg.data, at)) {
          const req = decodeRequest(msg.data, head) as AddRequest;
          at = head.end;
          const id = head.correlationId;
          void store.add(req).then((r) => call.write({ data: encodeResponse(id, { op: Op.Add, ...r }) }));
        }
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const client = new Svc(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  const stream = (client as unknown as { Exchange(): grpc.ClientDuplexStream<{ data: Buffer }, { data: Buffer }> }).Exchange();
  const pending = new Map<number, (r: Response) => void>();
  let nextId = 1;
  stream.on('data', (msg: { data: Buffer }) => {
    const head = frameAt(msg.data, 0)!;
    pending.get(head.correlationId)?.(decodeResponse(msg.data, head));
    pending.delete(head.correlationId);
  });
  // Frames of one tick go out as one stream message, as the TCP client corks them into one write.
  let outbox: Buffer[] = [];
  const flush = (): void => {
    const data = outbox.length === 1 ? outbox[0]! : Buffer.concat(outbox);
    outbox = [];
    stream.write({ data });
  };
  try {
    return await drive('grpc', (req) => {
      const id = nextId++;
      if (outbox.length === 0) process.nextTick(flush);
      outbox.push(encodeRequest(id, req));
      return new Promise<Response>((resolve) => pending.set(id, resolve));
    });
  } finally {
    stream.end();
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'robust-journal-transport-'));
try {
  const out: Result[] = [];
  for (const [name, fn] of [
    ['tcp', viaTcp],
    ['grpc', viaGrpc],
  ] as const) {
    const store = await ReplicaStore.open({ dir: join(dir, name), log: quiet, flushIntervalMs: 500, segmentBytes: 256 * 1024 * 1024 });
    try {
      out.push(await fn(store));
    } finally {
      await store.close();
    }
  }
  console.log(`journal transport, ${SECONDS} s each, adds of ${BATCH} x ${RECORD} B records, ${IN_FLIGHT} in flight, async flush`);
  console.log('transport     MB/s   adds/s   p50 ms   p99 ms');
  for (const r of out) console.log(`${r.transport.padEnd(9)} ${r.mb_s.toFixed(1).padStart(8)} ${r.adds_per_s.toFixed(0).padStart(8)} ${r.p50_ms.toFixed(2).padStart(8)} ${r.p99_ms.toFixed(2).padStart(8)}`);
  const [tcp, g] = out as [Result, Result];
  console.log(JSON.stringify({ tcp_mb_s: +tcp.mb_s.toFixed(1), grpc_mb_s: +g.mb_s.toFixed(1), tcp_p99_ms: +tcp.p99_ms.toFixed(2), grpc_p99_ms: +g.p99_ms.toFixed(2), faster: tcp.mb_s >= g.mb_s ? 'tcp' : 'grpc' }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
