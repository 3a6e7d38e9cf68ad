import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { describe, it, after, before } from 'node:test';
import { pino } from 'pino';
import { NodeMetrics } from '../../src/common/metrics.js';
import type { NodeInfo } from '../../src/common/node-info.js';
import { RpcClientPool } from '../../src/rpc/client-pool.js';
import { RpcCallError, RpcError } from '../../src/rpc/errors.js';
import { addNodeService, fetchNodeInfo } from '../../src/rpc/node-service.js';
import { loadProto, serviceClient } from '../../src/rpc/proto.js';
import { RpcServer } from '../../src/rpc/server.js';
import { grpcHealthStatus } from '../support/grpc-health.js';
import { freePort } from '../support/server.js';

const log = pino({ level: 'silent' });

const sampleInfo = (): NodeInfo => ({
  node_id: 7,
  cluster_name: 'c',
  roles: ['meta', 'broker'],
  version: '1.2.3',
  uptime_seconds: 4.5,
  advertised_host: '127.0.0.1',
  grpc_port: 1,
  http_port: 2,
  listeners: [{ name: 'grpc', protocol: 'grpc', address: '127.0.0.1:1' }],
  services: [{ name: 'meta', ready: true }],
  ready: true,
  started_at_ms: 1_700_000_000_000,
  pid: 42,
});

describe('inner gRPC', () => {
  const metrics = new NodeMetrics({ nodeId: 7, cluster: 'c', version: '0', roles: [] });
  const server = new RpcServer(log, metrics);
  const pool = new RpcClientPool();
  const health = new HealthImplementation({ '': 'SERVING' });
  let address: string;
  let calls = 0;

  before(async () => {
    addNodeService(server, () => {
      calls++;
      if (calls === 3) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'not yet');
      return sampleInfo();
    });
    health.addToServer(server.grpc);
    const port = await server.listen('127.0.0.1', await freePort());
    address = `127.0.0.1:${port}`;
  });
  after(async () => {
    pool.close();
    await server.stop(500);
  });

  it('NodeService.GetNodeInfo round-trips every field through the pooled client', async () => {
    const info = await fetchNodeInfo(pool, address, 2_000);
    assert.deepEqual(info, sampleInfo());
  });

  it('the pool hands back one client per service and address', () => {
    const ctor = serviceClient(loadProto('robust/node/v1/node.proto'), 'robust.node.v1.NodeService');
    assert.equal(pool.get(ctor, address), pool.get(ctor, address));
  });

  it('a handler RpcError reaches the caller with its status; metrics count both', async () => {
    await fetchNodeInfo(pool, address, 2_000); // call 2
    await assert.rejects(fetchNodeInfo(pool, address, 2_000), (err: unknown) => {
      assert.ok(err instanceof RpcCallError);
      assert.equal(err.status, grpc.status.FAILED_PRECONDITION);
      assert.match(err.message, /GetNodeInfo to 127\.0\.0\.1:\d+ failed: not yet/);
      return true;
    });
    const text = await metrics.registry.metrics();
    assert.match(text, /robust_inner_rpc_requests_total\{method="\/robust\.node\.v1\.NodeService\/GetNodeInfo",code="OK"\} 2/);
    assert.match(text, /code="FAILED_PRECONDITION"\} 1/);
  });

  it('an unreachable node fails within the deadline with UNAVAILABLE or DEADLINE_EXCEEDED', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const t0 = Date.now();
    await assert.rejects(fetchNodeInfo(pool, dead, 500), (err: unknown) => {
      assert.ok(err instanceof RpcCallError);
      assert.ok(err.status === grpc.status.UNAVAILABLE || err.status === grpc.status.DEADLINE_EXCEEDED, `status ${err.status}`);
      assert.equal(err.address, dead);
      return true;
    });
    assert.ok(Date.now() - t0 < 2_000);
  });

  it('serves the standard grpc.health.v1 Health service', async () => {
    const check = () => grpcHealthStatus(pool, address);
    assert.equal(await check(), 'SERVING');
    health.setStatus('', 'NOT_SERVING');
    assert.equal(await check(), 'NOT_SERVING');
  });

  it('a second server on the same port fails with "address in use"', async () => {
    const other = new RpcServer(log, metrics);
    const port = Number(address.split(':')[1]);
    await assert.rejects(other.listen('127.0.0.1', port), /cannot listen on 127\.0\.0\.1:\d+ \(grpc_port\): address in use/);
  });
});
