import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/logger.js';
import { loadProto, serviceClient } from '../../rpc/proto.js';
import type { RpcClientPool } from '../../rpc/client-pool.js';
import type { RpcServer } from '../../rpc/server.js';
import type { Entry, Message, MessageType, NodeId } from './core/types.js';

const RaftTransportClient = serviceClient(loadProto('robust/meta/v1/meta.proto'), 'robust.meta.v1.RaftTransport');

/** Messages queued for one peer beyond this are dropped: Raft resends what matters. */
const MAX_QUEUED_PER_PEER = 4096;
const RECONNECT_BACKOFF_MS = 200;

interface WireEntry {
  index: number;
  term: number;
  conf: boolean;
  data: Buffer;
}

interface WireMessage {
  type: string;
  from: number;
  to: number;
  term: number;
  log_term: number;
  index: number;
  entries: WireEntry[];
  commit: number;
  reject: boolean;
  reject_hint: number;
  snapshot?: { index: number; term: number; voters: number[]; learners: number[]; data: Buffer } | null;
  has_snapshot: boolean;
  context: string;
}

interface WireBatch {
  cluster_name: string;
  messages: WireMessage[];
}

const MESSAGE_TYPES = new Set<MessageType>(['preVote', 'preVoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat', 'heartbeatResp', 'snapshot', 'timeoutNow', 'readIndex', 'readIndexResp']);

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function encodeMessage(m: Message): WireMessage {
  return {
    type: m.type,
    from: m.from,
    to: m.to,
    term: m.term,
    log_term: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ index: e.index, term: e.term, conf: e.type === 'conf', data: toBuffer(e.data) })),
    commit: m.commit,
    reject: m.reject,
    reject_hint: m.rejectHint,
    snapshot: m.snapshot
      ? { index: m.snapshot.meta.index, term: m.snapshot.meta.term, voters: m.snapshot.meta.conf.voters, learners: m.snapshot.meta.conf.learners, data: toBuffer(m.snapshot.data) }
      : null,
    has_snapshot: m.snapshot !== undefined,
    context: m.context,
  };
}

/** Decode a message off the wire; undefined for anything malformed (a peer speaking nonsense is ignored, never trusted). */
export function decodeMessage(w: WireMessage): Message | undefined {
  if (!MESSAGE_TYPES.has(w.type as MessageType)) return undefined;
  const entries: Entry[] = (w.entries ?? []).map((e) => ({ index: Number(e.index), term: Number(e.term), type: e.conf ? 'conf' : 'normal', data: e.data ?? Buffer.alloc(0) }));
  const m: Message = {
    type: w.type as MessageType,
    from: w.from,
    to: w.to,
    term: Number(w.term),
    logTerm: Number(w.log_term),
    index: Number(w.index),
    entries,
    commit: Number(w.commit),
    reject: w.reject,
    rejectHint: Number(w.reject_hint),
    context: w.context ?? '',
  };
  if (w.has_snapshot && w.snapshot) {
    m.snapshot = {
      meta: { index: Number(w.snapshot.index), term: Number(w.snapshot.term), conf: { voters: w.snapshot.voters ?? [], learners: w.snapshot.learners ?? [] } },
      data: w.snapshot.data ?? Buffer.alloc(0),
    };
  }
  return m;
}

class PeerStream {
  private call: grpc.ClientWritableStream<WireBatch> | undefined;
  private brokenUntil = 0;
  private queue: WireMessage[] = [];
  private flushScheduled = false;

  constructor(
    private readonly address: () => string | undefined,
    private readonly pool: RpcClientPool,
    private readonly clusterName: string,
    private readonly log: Logger,
    readonly peer: NodeId,
  ) {}

  enqueue(m: Message): void {
    if (this.queue.length >= MAX_QUEUED_PER_PEER) return;
    this.queue.push(encodeMessage(m));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    const call = this.stream();
    if (!call) {
      this.queue = []; // peer unreachable right now: drop, Raft will retry
      return;
    }
    const messages = this.queue;
    this.queue = [];
    call.write({ cluster_name: this.clusterName, messages });
  }

  private stream(): grpc.ClientWritableStream<WireBatch> | undefined {
    if (this.call) return this.call;
    if (Date.now() < this.brokenUntil) return undefined;
    const address = this.address();
    if (!address) return undefined;
    const client = this.pool.get<grpc.Client>(RaftTransportClient, address) as unknown as {
      Send(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<WireBatch>;
    };
    const call = client.Send((err) => {
      if (this.call === call) this.call = undefined;
      if (err && err.code !== grpc.status.CANCELLED) {
        this.brokenUntil = Date.now() + RECONNECT_BACKOFF_MS;
        this.log.debug({ peer: this.peer, address, err: err.details }, 'raft stream to peer closed');
      }
    });
    call.on('error', () => {
      /* reported through the callback above */
    });
    this.call = call;
    return call;
  }

  close(): void {
    this.call?.end();
    this.call = undefined;
    this.queue = [];
  }
}

/**
 * Raft messages between meta nodes over the inner gRPC port: one client stream
 * per peer, one batch per flush, loss tolerated (Raft retransmits).
 */
export class RaftTransport {
  private readonly peers = new Map<NodeId, PeerStream>();

  constructor(
    private readonly opts: {
      selfId: NodeId;
      clusterName: string;
      pool: RpcClientPool;
      log: Logger;
      addressOf: (id: NodeId) => string | undefined;
    },
  ) {}

  /** Serve incoming Raft streams, delivering each well-formed message to `deliver`. */
  serve(server: RpcServer, deliver: (m: Message) => void): void {
    server.grpc.addService(RaftTransportClient.service, {
      Send: (call: grpc.ServerReadableStream<WireBatch, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        call.on('data', (batch: WireBatch) => {
          if (batch.cluster_name !== this.opts.clusterName) {
            this.opts.log.warn({ from_cluster: batch.cluster_name }, `rejected Raft traffic from another cluster ("${batch.cluster_name}")`);
            call.destroy();
            return;
          }
          for (const w of batch.messages ?? []) {
            const m = decodeMessage(w);
            if (m && m.to === this.opts.selfId) deliver(m);
          }
        });
        call.on('end', () => callback(null, {}));
        call.on('error', () => {
          /* the peer went away; it reconnects */
        });
      },
    });
  }

  send(messages: Message[]): void {
    for (const m of messages) {
      let peer = this.peers.get(m.to);
      if (!peer) {
        const to = m.to;
        peer = new PeerStream(() => this.opts.addressOf(to), this.opts.pool, this.opts.clusterName, this.opts.log, to);
        this.peers.set(to, peer);
      }
      peer.enqueue(m);
    }
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}
