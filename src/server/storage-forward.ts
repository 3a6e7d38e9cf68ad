/**
 * Appends handed between brokers: a broker that does not write a shard sends
 * the append to the shard's leader over the inner gRPC port (proto/robust/storage/v1).
 * The units travel as a journal Add frame, the same encoding the data path uses.
 */
import type { MetaAgent } from '../meta/agent.js';
import type { RpcClientPool } from '../rpc/client-pool.js';
import { loadProto, serviceClient } from '../rpc/proto.js';
import type { RpcServer } from '../rpc/server.js';
import { StorageError } from '../storage/errors.js';
import { Op, decodeRequest, encodeRequest, frameAt, type Unit } from '../storage/journal/protocol.js';
import type { AppendBatch, AppendOptions, AppendRecord, StorageAdapter } from '../storage/types.js';

const StorageForwardClient = serviceClient(loadProto('robust/storage/v1/storage.proto'), 'robust.storage.v1.StorageForward');

interface ForwardAppendRequest {
  shard: string;
  frame: Buffer;
  acks: string;
}

interface ForwardAppendReply {
  base_offset: number;
  error_code: string;
  error_message: string;
}

const FORWARD_TIMEOUT_MS = 20_000;

/** Serves forwarded appends with this node's storage. */
export function addStorageForwardService(server: RpcServer, storage: () => StorageAdapter | undefined): void {
  server.addUnaryService(StorageForwardClient.service, {
    Append: async (req: ForwardAppendRequest): Promise<ForwardAppendReply> => {
      const adapter = storage();
      if (!adapter) return { base_offset: 0, error_code: 'engine_unavailable', error_message: 'this node runs no broker storage' };
      try {
        const head = frameAt(req.frame, 0);
        if (!head || head.end !== req.frame.length) throw new StorageError('forwarded append frame is incomplete', 'bad_request');
        const add = decodeRequest(req.frame, head);
        if (add.op !== Op.Add) throw new StorageError('forwarded frame is not an append', 'bad_request');
        const opts: AppendOptions = { acks: req.acks === 'all' ? 'all' : 'quorum' };
        const batches = add.units.every((u) => u.kind === 'batch');
        const r =
          batches && add.units.length > 0 && adapter.appendBatches
            ? await adapter.appendBatches(req.shard, add.units.map((u) => (u as { batch: AppendBatch }).batch), opts)
            : await adapter.append(req.shard, add.units.map(toRecord), opts);
        return { base_offset: Number(r.baseOffset), error_code: '', error_message: '' };
      } catch (err) {
        const code = err instanceof StorageError ? err.code : 'storage_io';
        return { base_offset: 0, error_code: code, error_message: (err as Error).message ?? String(err) };
      }
    },
  });
}

function toRecord(u: Unit): AppendRecord {
  if (u.kind === 'record') return u.record;
  throw new StorageError(`a forwarded append must be all batches or all records, got a ${u.kind} unit among them`, 'bad_request');
}

/** The journal engine's forwarder: sends an append to the leader's node. */
export function storageForwarder(agent: MetaAgent, pool: RpcClientPool) {
  return async (leader: number, shard: string, units: Unit[], opts?: AppendOptions): Promise<bigint> => {
    const node = agent.replica.view.nodes.get(leader);
    if (!node) throw new StorageError(`shard ${shard}: its leader, node ${leader}, is not registered`, 'not_writer');
    const frame = encodeRequest(0, { op: Op.Add, shard, segment: 0, epoch: 0, sync: false, lac: -1, firstEntry: 0, units });
    let reply: ForwardAppendReply;
    try {
      reply = await pool.unary<ForwardAppendRequest, ForwardAppendReply>(StorageForwardClient, node.grpcAddr, 'Append', { shard, frame, acks: opts?.acks ?? 'quorum' }, FORWARD_TIMEOUT_MS);
    } catch (err) {
      throw new StorageError(`shard ${shard}: could not hand the append to its leader, node ${leader}: ${(err as Error).message}`, 'not_enough_replicas');
    }
    if (reply.error_code) throw new StorageError(reply.error_message, reply.error_code);
    return BigInt(reply.base_offset);
  };
}
