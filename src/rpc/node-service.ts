import type { NodeInfo } from '../common/node-info.js';
import type { RpcClientPool } from './client-pool.js';
import { loadProto, serviceClient } from './proto.js';
import type { RpcServer } from './server.js';

const NodeServiceClient = serviceClient(loadProto('robust/node/v1/node.proto'), 'robust.node.v1.NodeService');

export function addNodeService(server: RpcServer, getInfo: () => NodeInfo): void {
  server.addUnaryService(NodeServiceClient.service, {
    GetNodeInfo: () => getInfo(),
  });
}

export function fetchNodeInfo(pool: RpcClientPool, address: string, timeoutMs: number): Promise<NodeInfo> {
  return pool.unary<Record<string, never>, NodeInfo>(NodeServiceClient, address, 'GetNodeInfo', {}, timeoutMs);
}

