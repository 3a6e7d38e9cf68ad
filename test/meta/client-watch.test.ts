/**
 * MetaClient's watch stream against fake meta servers (real gRPC on 127.0.0.1):
 * a stream that stalls without closing — a meta node gone without a word — is
 * reopened on the next meta node once a write has waited on it too long.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { MetaClient } from '../../src/meta/client.js';
import { MetaServiceClient } from '../../src/meta/service.js';
import { RpcClientPool } from '../../src/rpc/client-pool.js';

interface Fake {
  server: grpc.Server;
  address: string;
  watches: number[];
}

/** A meta node: answers Propose with `index`; its Watch sends a snapshot at 1, then (if `delivers`) the command at `index`. */
async function fakeMeta(index: number, delivers: boolean): Promise<Fake> {
  const server = new grpc.Server();
  const watches: number[] = [];
  server.addService(MetaServiceClient.service, {
    Propose: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { outcomes: [{ result_json: 'null', index, error_code: 0, error: '' }] }),
    Watch: (call: grpc.ServerWritableStream<{ after_index: number | string }, unknown>) => {
      const after = Number(call.request.after_index);
      watches.push(after);
      if (after === 0) call.write({ snapshot: { index: 1, data: Buffer.from('snapshot') } });
      if (delivers) call.write({ commands: { commands: [{ index, data: Buffer.from('command') }] } });
      // Otherwise: silence, and the stream stays open.
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { server, address: `127.0.0.1:${port}`, watches };
}

describe('MetaClient watch stream', () => {
  const servers: grpc.Server[] = [];
  after(() => {
    for (const s of servers) s.forceShutdown();
  });

  it('reopens a stalled watch stream on the next meta node when a write waits on it', async () => {
    const stalled = await fakeMeta(5, false);
    const healthy = await fakeMeta(5, true);
    servers.push(stalled.server, healthy.server);
    const applied: number[] = [];
    const client = new MetaClient({
      metaAddrs: [stalled.address, healthy.address],
      pool: new RpcClientPool(),
      log: pino({ level: 'silent' }),
      replica: { apply: (i) => applied.push(i), restore: () => undefined },
      requestTimeoutMs: 2000,
      watchStallMs: 300,
    });
    try {
      await client.start(); // the snapshot from the first node
      const t0 = Date.now();
      const r = await client.propose(new Uint8Array([1]));
      assert.equal(r.index, 5);
      assert.deepEqual(applied, [5], 'the write is seen locally, from the second node');
      assert.deepEqual(stalled.watches, [0]);
      assert.deepEqual(healthy.watches, [1], 'the second node resumes after what the first delivered');
      const waited = Date.now() - t0;
      assert.ok(waited >= 250 && waited < 3000, `reopened after the stall time (${waited} ms)`);
    } finally {
      client.stop();
    }
  });
});
