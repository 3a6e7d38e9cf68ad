import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import type { RpcClientPool } from '../../src/rpc/client-pool.js';

const Health = (
  grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  }
).grpc.health.v1.Health;

/** The standard grpc.health.v1 Check, as a load balancer or grpc_health_probe asks it. */
export async function grpcHealthStatus(pool: RpcClientPool, address: string, service = ''): Promise<string> {
  return (await pool.unary<{ service: string }, { status: string }>(Health, address, 'check', { service }, 2_000)).status;
}
