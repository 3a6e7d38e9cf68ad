/**
 * JournalServer: the journal data service over TCP — every op end to end,
 * pipelined and split frames, out-of-order answers, malformed frames (only that
 * connection closes), handler failures, backpressure, the partition fault hook,
 * metrics, stop.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { configSchema } from '../../src/common/config/index.js';
import type { ReplicaStore } from '../../src/journal/replica-store.js';
import { JournalService } from '../../src/journal/service.js';
import { JournalServer } from '../../src/journal/server.js';
import {
  ALL_SEGMENTS,
  Op,
  Status,
  decodeResponse,
  encodeRequest,
  frameAt,
  type Request,
  type Response,
} from '../../src/storage/journal/protocol.js';
import { addReq, makeRoot, mixedUnits, openStore, rec, recordUnit, sameAs, unitRecords } from './support.js';

const { newDir, cleanup } = makeRoot('robust-journal-server-');
after(cleanup);
const log = pino({ level: 'silent' });

/** A minimal journal client: frames out, answers matched by correlation id. */
class Client {
  private buf = Buffer.alloc(0);
  private next = 1;
  private readonly waiting = new Map<number, (r: Response) => void>();
  readonly answers: number[] = [];
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      let at = 0;
      for (let head = frameAt(this.buf, at); head; head = frameAt(this.buf, at)) {
        const res = decodeResponse(this.buf, head);
        this.answers.push(head.correlationId);
        const w = this.waiting.get(head.correlationId);
        this.waiting.delete(head.correlationId);
        w?.(res);
        at = head.end;
      }
      this.buf = Buffer.from(this.buf.subarray(at));
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  /** The frame and a promise of its answer (not sent). */
  frame(req: Request): { frame: Buffer; answer: Promise<Response> } {
    const id = this.next++;
    const answer = new Promise<Response>((resolve) => this.waiting.set(id, resolve));
    return { frame: encodeRequest(id, req), answer };
  }

  send(req: Request): Promise<Response> {
    const { frame, answer } = this.frame(req);
    this.socket.write(frame);
    return answer;
  }

  end(): void {
    this.socket.destroy();
  }
}

function expectOk(res: Response): void {
  assert.equal(res.status, Status.Ok, res.message);
}

describe('JournalServer', () => {
  let store: ReplicaStore;
  let server: JournalServer;
  let registry: Registry;
  const clients: Client[] = [];
  const client = async (port = server.port): Promise<Client> => {
    const c = await Client.open(port);
    clients.push(c);
    return c;
  };

  before(async () => {
    registry = new Registry();
    store = await openStore(newDir(), { registry });
    server = new JournalServer({ store, host: '127.0.0.1', port: 0, log, registry });
    await server.start();
    assert.ok(server.port > 0);
    assert.deepEqual(server.listeners(), [{ name: 'journal', protocol: 'journal', address: `127.0.0.1:${server.port}` }]);
  });
  after(async () => {
    for (const c of clients) c.end();
    await server.stop();
    await store.close();
  });

  it('serves add, read, info, fence, list and delete', async () => {
    const c = await client();
    const m = mixedUnits(0, 25);
    const add = await c.send(addReq('net-0', 1, 0, m.units, { epoch: 2, lac: -1 }));
    assert.equal(add.op, Op.Add);
    expectOk(add);
    assert.ok(add.op === Op.Add);
    assert.deepEqual(add.state, { end: 25, lac: -1, fencedEpoch: 0 });

    const read = await c.send({ op: Op.Read, shard: 'net-0', segment: 1, fromEntry: 0, maxEntries: 1000, maxBytes: 1 << 20 });
    assert.ok(read.op === Op.Read);
    expectOk(read);
    const got = unitRecords(read.units);
    assert.equal(got.length, 25);
    got.forEach((r, i) => {
      assert.equal(r.offset, BigInt(i));
      assert.ok(sameAs(r, m.want[i]!), `entry ${i}`);
    });

    const info = await c.send({ op: Op.Info, shard: 'net-0', segment: 1 });
    assert.ok(info.op === Op.Info);
    assert.deepEqual(info.state, { end: 25, lac: -1, fencedEpoch: 0 });

    const fence = await c.send({ op: Op.Fence, shard: 'net-0', segment: 1, epoch: 3 });
    assert.ok(fence.op === Op.Fence);
    expectOk(fence);
    assert.deepEqual(fence.state, { end: 25, lac: -1, fencedEpoch: 3 });
    const stale = await c.send(addReq('net-0', 1, 25, [recordUnit(25)], { epoch: 2 }));
    assert.equal(stale.status, Status.Fenced);

    const list = await c.send({ op: Op.List });
    assert.ok(list.op === Op.List);
    assert.deepEqual(
      list.replicas.filter((r) => r.shard === 'net-0'),
      [{ shard: 'net-0', segment: 1, end: 25, lac: -1, fencedEpoch: 3 }],
    );
    expectOk(await c.send({ op: Op.Delete, shard: 'net-0', segment: ALL_SEGMENTS }));
    assert.equal((await c.send({ op: Op.Info, shard: 'net-0', segment: 1 })).status, Status.NotFound);
    assert.equal((await c.send({ op: Op.Read, shard: 'net-0', segment: 1, fromEntry: 0, maxEntries: 1, maxBytes: 1 })).status, Status.NotFound);
  });

  it('answers pipelined adds on one socket (one write, many frames), and frames split byte by byte', async () => {
    const c = await client();
    const N = 200;
    const frames: Buffer[] = [];
    const answers: Array<Promise<Response>> = [];
    for (let i = 0; i < N; i++) {
      const f = c.frame(addReq('pipe-0', 0, i, [recordUnit(i)], { sync: i % 50 === 0, lac: i - 1 }));
      frames.push(f.frame);
      answers.push(f.answer);
      if (i === N / 2) {
        // A read in the middle: answered whenever it is ready (possibly before adds sent ahead of it).
        const r = c.frame({ op: Op.Read, shard: 'pipe-0', segment: 0, fromEntry: 0, maxEntries: 5, maxBytes: 1 << 20 });
        frames.push(r.frame);
        answers.push(r.answer);
      }
    }
    c.socket.write(Buffer.concat(frames));
    const results = await Promise.all(answers);
    for (const r of results) expectOk(r);
    const last = results[N]!;
    assert.ok(last.op === Op.Add);
    assert.deepEqual(last.state, { end: N, lac: N - 2, fencedEpoch: 0 });

    // One more add, its frame dribbled in one byte at a time.
    const { frame, answer } = c.frame(addReq('pipe-0', 0, N, [recordUnit(N)]));
    for (let i = 0; i < frame.length; i++) {
      c.socket.write(frame.subarray(i, i + 1));
      if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expectOk(await answer);

    const read = await c.send({ op: Op.Read, shard: 'pipe-0', segment: 0, fromEntry: 0, maxEntries: 10_000, maxBytes: 1 << 24 });
    assert.ok(read.op === Op.Read);
    const got = unitRecords(read.units);
    assert.equal(got.length, N + 1);
    got.forEach((r, i) => assert.ok(sameAs(r, rec(i)), `entry ${i} in order`));
  });

  it('closes only the connection that sent a malformed frame', async () => {
    const good = await client();
    const bad = await client();
    const garbage = Buffer.from(encodeRequest(1, { op: Op.List }));
    garbage[4] = 77; // an unknown request type, correctly framed
    bad.socket.write(garbage);
    await bad.closed;
    const tooBig = await client();
    const hdr = Buffer.alloc(9);
    hdr.writeUInt32BE(0x7fffffff, 0);
    tooBig.socket.write(hdr);
    await tooBig.closed;
    const truncated = await client();
    const add = Buffer.from(encodeRequest(5, addReq('mal-0', 0, 0, [recordUnit(0)])));
    add.writeUInt32BE(add.length - 4 - 3, 0); // the body says it ends 3 bytes early
    truncated.socket.write(add.subarray(0, add.length - 3));
    await truncated.closed;
    assert.equal((await store.info({ shard: 'mal-0', segment: 0 })).status, Status.NotFound, 'nothing of the truncated add was stored');
    expectOk(await good.send({ op: Op.List }));
    assert.equal(good.isClosed, false);
  });

  it('keeps reading within the in-flight limit and answers everything', async () => {
    const st = await openStore(newDir());
    const s = new JournalServer({ store: st, host: '127.0.0.1', port: 0, log, maxInflightBytes: 512 });
    await s.start();
    try {
      const c = await client(s.port);
      const frames: Buffer[] = [];
      const answers: Array<Promise<Response>> = [];
      for (let i = 0; i < 300; i++) {
        const f = c.frame(addReq('bp-0', 0, i, [recordUnit(i)], { sync: i % 3 === 0 }));
        frames.push(f.frame);
        answers.push(f.answer);
      }
      c.socket.write(Buffer.concat(frames));
      const results = await Promise.all(answers);
      assert.ok(results.every((r) => r.status === Status.Ok));
      assert.equal((await st.info({ shard: 'bp-0', segment: 0 })).state.end, 300);
    } finally {
      await s.stop();
      await st.close();
    }
  });

  it('answers io_error when a handler throws, and keeps the connection', async () => {
    const broken = {
      read: () => {
        throw new Error('disk on fire');
      },
      info: () => Promise.reject(new Error('also broken')),
      list: () => [],
    } as unknown as ReplicaStore;
    const s = new JournalServer({ store: broken, host: '127.0.0.1', port: 0, log });
    await s.start();
    try {
      const c = await client(s.port);
      const r = await c.send({ op: Op.Read, shard: 'x', segment: 0, fromEntry: 0, maxEntries: 1, maxBytes: 1 });
      assert.equal(r.status, Status.IoError);
      assert.match(r.message, /disk on fire/);
      const i = await c.send({ op: Op.Info, shard: 'x', segment: 0 });
      assert.equal(i.status, Status.IoError);
      expectOk(await c.send({ op: Op.List }));
      assert.equal(c.isClosed, false);
    } finally {
      await s.stop();
    }
  });

  it('the fault hook drops connections from an address and refuses new ones until cleared', async () => {
    const c = await client();
    expectOk(await c.send({ op: Op.List }));
    const before = server.connectionCount;
    server.setFault((addr) => addr === '127.0.0.1' || addr === '::ffff:127.0.0.1');
    await c.closed;
    assert.ok(server.connectionCount < before);
    const refused = await client();
    await refused.closed;
    // Another address is not affected (the predicate decides).
    server.setFault((addr) => addr === '10.9.9.9');
    const other = await client();
    expectOk(await other.send({ op: Op.List }));
    server.setFault(undefined);
    const back = await client();
    expectOk(await back.send({ op: Op.List }));
  });

  it('counts requests, add bytes and latency, fences and replicas', async () => {
    const c = await client();
    expectOk(await c.send(addReq('met-0', 0, 0, [recordUnit(0), recordUnit(1)])));
    expectOk(await c.send({ op: Op.Fence, shard: 'met-0', segment: 0, epoch: 9 }));
    assert.equal((await c.send(addReq('met-0', 0, 2, [recordUnit(2)], { epoch: 1 }))).status, Status.Fenced);
    const text = await registry.metrics();
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(value(/^robust_journal_requests_total\{op="add",status="ok"\} (\d+)$/m) >= 1);
    assert.ok(value(/^robust_journal_requests_total\{op="add",status="fenced"\} (\d+)$/m) >= 1);
    assert.ok(value(/^robust_journal_requests_total\{op="fence",status="ok"\} (\d+)$/m) >= 1);
    assert.ok(value(/^robust_journal_add_bytes_total (\d+)$/m) > 0);
    assert.ok(value(/^robust_journal_add_seconds_count (\d+)$/m) >= 2);
    assert.ok(value(/^robust_journal_fences_total (\d+)$/m) >= 1);
    assert.equal(value(/^robust_journal_replicas (\d+)$/m), store.replicaCount);
  });

  it('stop closes every connection and the listener; a second server can reuse the registry', async () => {
    const st = await openStore(newDir());
    const s = new JournalServer({ store: st, host: '127.0.0.1', port: 0, log, registry });
    await s.start();
    const c = await client(s.port);
    expectOk(await c.send({ op: Op.List }));
    await s.stop();
    await c.closed;
    await assert.rejects(Client.open(s.port));
    await s.stop(); // idempotent
    await st.close();
  });

  it('JournalService opens the store in data_dir/journal and serves it on bind_host', async () => {
    const dataDir = newDir();
    const parsed = configSchema.parse({ data_dir: dataDir, bind_host: '127.0.0.1' });
    const config = { ...parsed, journal: { ...parsed.journal, tcp_port: 0 } };
    const reg = new Registry();
    let svc = new JournalService({ dataDir, log, config, registry: reg });
    assert.equal(svc.port, 0);
    assert.throws(() => svc.store, /not started/);
    await svc.start();
    assert.ok(svc.isReady());
    assert.ok(svc.port > 0);
    assert.equal(svc.store.dir, `${dataDir}/journal`);
    assert.deepEqual(svc.listeners(), [{ name: 'journal', protocol: 'journal', address: `127.0.0.1:${svc.port}` }]);
    const c = await client(svc.port);
    expectOk(await c.send(addReq('svc-0', 0, 0, [recordUnit(0)], { sync: true })));
    await svc.stop();
    await c.closed;
    assert.equal(svc.isReady(), false);
    // Started again (same data dir, same registry): the replica is still there.
    svc = new JournalService({ dataDir, log, config, registry: reg });
    await svc.start();
    try {
      const c2 = await client(svc.port);
      const info = await c2.send({ op: Op.Info, shard: 'svc-0', segment: 0 });
      assert.ok(info.op === Op.Info);
      assert.deepEqual(info.state, { end: 1, lac: -1, fencedEpoch: 0 });
      assert.match(await reg.metrics(), /^robust_journal_replicas 1$/m);
    } finally {
      await svc.stop();
    }
  });
});
