/**
 * MQTT cluster routing between broker nodes, over the inner gRPC port
 * (proto/robust/broker/v1/cluster.proto), never through Raft.
 *
 * Every pair of live brokers keeps one bidirectional stream, opened by the node
 * with the lower id (and reopened by it, with backoff, while the meta service
 * says the peer is alive). Both sides send a Hello, then their full route table
 * (RouteSync), then route deltas (once per event-loop turn), batches of
 * forwarded messages (one write per peer per turn) and acknowledgements of the
 * other side's batches, all in order.
 *
 * A publish is forwarded once to each peer with a matching route (the broker
 * decides, see MqttBroker.routeCluster); the peer delivers it to its own
 * sessions only. For QoS 1/2 the publisher's PUBACK/PUBREC waits for the peer's
 * acknowledgement, sent once the message is in its sessions (stored, for
 * persistent ones) — at most `ackTimeoutMs`: a peer that does not answer in
 * time fails the publisher's acknowledgement (it resends). When the stream
 * breaks with messages unconfirmed, they fail with PeerLinkLostError and the
 * broker decides (MqttBroker.afterLinkLost): sent again once the link is back,
 * or, if meta no longer holds the peer alive, queued for its persistent sessions
 * in its own session log, where a takeover of those sessions, or the peer
 * restarted, finds them. A peer whose stream breaks drops out of the route
 * table; peers are `down` (not alive in meta) or `unlinked` (alive, no link yet).
 */
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { loadProto, serviceClient } from '../../rpc/proto.js';
import { RemoteRoutes } from '../core/cluster-routes.js';
import type { ClusterPort, ForwardPlan, MqttBroker } from './broker.js';
import { PeerLinkLostError } from './cluster-errors.js';
import type { ForwardedProperties, Message } from './message.js';
import { OutState, type Outgoing } from './session.js';
import { decodeQueued, encodeQueued } from './store-records.js';
import type { QoS } from './codec/packets.js';

const MqttClusterClient = serviceClient(loadProto('robust/broker/v1/cluster.proto'), 'robust.broker.v1.MqttCluster');

/** A batch is written once it holds this much payload (more in one turn makes several batches, in order). */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Messages larger than this are not forwarded (the inner gRPC server takes frames up to 64 MiB). */
const MAX_FORWARD_BYTES = 60 * 1024 * 1024;
/** QoS 0 messages to a peer whose stream has this much unsent are dropped (counted) rather than buffered. */
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;
const FAILURE_LOG_EVERY_MS = 10_000;
/** Longest a session hand-over from a live peer may take before the client resumes without its old queue. */
const TAKE_SESSION_TIMEOUT_MS = 5_000;

interface TakeSessionRequest {
  client_id: string;
  to_node: number;
}

interface TakeSessionReply {
  found: boolean;
  messages: Array<{ record: Buffer | Uint8Array; payload: Buffer | Uint8Array; packet_id: number; state: number }>;
  inbound_qos2: number[];
  moved_to?: number;
}

/** Hops a session hand-over follows through brokers that passed the session on (their meta view lagged). */
const MAX_TAKE_HOPS = 3;

// ------------------------------------------------------------------ wire types (proto-loader, keepCase)

interface WireProperty {
  key: string;
  value: string;
}

export interface WireMessage {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  publisher: string;
  received_at_ms: number;
  has_expiry: boolean;
  expiry_left_ms: number;
  has_payload_format: boolean;
  payload_format: number;
  has_content_type: boolean;
  content_type: string;
  has_response_topic: boolean;
  response_topic: string;
  has_correlation_data: boolean;
  correlation_data: Buffer;
  user_properties: WireProperty[];
  route: boolean;
  shares: string[];
  retained_update: boolean;
}

interface Frame {
  body?: 'hello' | 'sync' | 'delta' | 'forward' | 'ack' | 'claims';
  hello?: { cluster_name: string; node_id: number; started_at_ms: number } | null;
  sync?: { routes: string[] } | null;
  delta?: { added: string[]; removed: string[] } | null;
  forward?: { seq: number; want_ack: boolean; messages: WireMessage[] } | null;
  ack?: { seq: number; ok: boolean; error: string } | null;
  claims?: { claims: Array<{ client_id: string; connected_at_ms: number | string }> } | null;
}

const EMPTY = Buffer.alloc(0);

/** The wire form of a message, without the plan fields (filled per peer). */
export function encodeMessage(msg: Message, now: number): WireMessage {
  const p = msg.properties;
  return {
    topic: msg.topic,
    payload: msg.payload,
    qos: msg.qos,
    retain: msg.retain,
    publisher: msg.publisher,
    received_at_ms: msg.receivedAt,
    has_expiry: msg.expiresAt !== undefined,
    expiry_left_ms: msg.expiresAt === undefined ? 0 : Math.max(0, msg.expiresAt - now),
    has_payload_format: p?.payloadFormatIndicator !== undefined,
    payload_format: p?.payloadFormatIndicator ?? 0,
    has_content_type: p?.contentType !== undefined,
    content_type: p?.contentType ?? '',
    has_response_topic: p?.responseTopic !== undefined,
    response_topic: p?.responseTopic ?? '',
    has_correlation_data: p?.correlationData !== undefined,
    correlation_data: p?.correlationData ?? EMPTY,
    user_properties: p?.userProperties ? p.userProperties.map(([key, value]) => ({ key, value })) : [],
    route: false,
    shares: [],
    retained_update: false,
  };
}

/** A forwarded message off the wire and what to do with it; undefined for anything malformed. */
export function decodeMessage(w: WireMessage, now: number): { msg: Message; plan: ForwardPlan } | undefined {
  if (typeof w.topic !== 'string' || w.topic === '' || w.topic.includes('+') || w.topic.includes('#')) return undefined;
  const qos = Number(w.qos);
  if (qos !== 0 && qos !== 1 && qos !== 2) return undefined;
  const props: ForwardedProperties = {};
  let any = false;
  if (w.has_payload_format) (props.payloadFormatIndicator = Number(w.payload_format)), (any = true);
  if (w.has_content_type) (props.contentType = w.content_type), (any = true);
  if (w.has_response_topic) (props.responseTopic = w.response_topic), (any = true);
  if (w.has_correlation_data) (props.correlationData = toBuffer(w.correlation_data)), (any = true);
  if (w.user_properties && w.user_properties.length > 0) (props.userProperties = w.user_properties.map((u) => [String(u.key), String(u.value)] as [string, string])), (any = true);
  const msg: Message = {
    topic: w.topic,
    payload: toBuffer(w.payload),
    qos: qos as QoS,
    retain: w.retain === true,
    properties: any ? props : undefined,
    expiresAt: w.has_expiry ? now + Number(w.expiry_left_ms) : undefined,
    publisher: typeof w.publisher === 'string' ? w.publisher : '',
    receivedAt: Number(w.received_at_ms) || now,
  };
  const shares = Array.isArray(w.shares) && w.shares.length > 0 ? w.shares.filter((s) => typeof s === 'string') : undefined;
  return { msg, plan: { route: w.route === true, shares, retained: w.retained_update === true } };
}

function toBuffer(b: Uint8Array | undefined | null): Buffer {
  if (!b) return EMPTY;
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

// ------------------------------------------------------------------ peers

export interface ClusterBroker {
  /** Broker node id. */
  id: number;
  /** Inner gRPC address, host:port. */
  grpcAddr: string;
  /** False once the meta service marks it suspect or dead. */
  alive: boolean;
}

/** The broker nodes of the cluster, as the meta service knows them. */
export interface PeerDirectory {
  /** Every broker node (this one may be among them). */
  brokers(): ClusterBroker[];
  /** fn is called whenever brokers() may have changed; returns a function that stops the calls. */
  onChange(fn: () => void): () => void;
}

export class ClusterMetrics {
  readonly forwarded: Counter<'peer'>;
  readonly received: Counter<'peer'>;
  readonly failures: Counter<'peer' | 'reason'>;

  constructor(registry: Registry, read: { routes: () => Array<[peer: number, routes: number]>; peers: () => number }) {
    const registers = [registry];
    this.forwarded = new Counter({ name: 'robust_mqtt_cluster_forwarded_total', help: 'MQTT messages forwarded to peer brokers, by peer node id', labelNames: ['peer'] as const, registers });
    this.received = new Counter({ name: 'robust_mqtt_cluster_received_total', help: 'MQTT messages forwarded by peer brokers to this one, by peer node id', labelNames: ['peer'] as const, registers });
    this.failures = new Counter({
      name: 'robust_mqtt_cluster_forward_failures_total',
      help: 'Forwarded MQTT messages a peer did not confirm, by peer and reason (timeout, link_lost, rejected, no_link, too_large, congested)',
      labelNames: ['peer', 'reason'] as const,
      registers,
    });
    new Gauge({
      name: 'robust_mqtt_cluster_routes',
      help: 'Topic filters (routes) each peer broker announced, by peer node id',
      labelNames: ['peer'] as const,
      registers,
      collect() {
        this.reset();
        for (const [peer, n] of read.routes()) this.set({ peer: String(peer) }, n);
      },
    });
    new Gauge({
      name: 'robust_mqtt_cluster_peers',
      help: 'Peer brokers with an open cluster link',
      registers,
      collect() {
        this.set(read.peers());
      },
    });
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Messages that wait on it (for the failure count). */
  count: number;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject, count: 0 };
}

type Call = grpc.ClientDuplexStream<Frame, Frame> | grpc.ServerDuplexStream<Frame, Frame>;

/** One open stream to a peer (either side may have dialed). */
class PeerLink {
  /** The peer's node id: known up front when we dialed, from its Hello when it did. */
  peer: number;
  /** Both Hellos exchanged: messages may flow. */
  ready = false;
  /**
   * The peer's full route table arrived (the Sync right after its Hello). Until
   * then the peer counts as unlinked for routing: an empty route table would
   * otherwise send nothing its sessions want.
   */
  routesKnown = false;
  closed = false;
  peerStartedAt = 0;
  private seq = 0;
  private outbox: WireMessage[] = [];
  private outboxBytes = 0;
  /** What the QoS 1/2 messages of the batch being built wait on. */
  private batch: Deferred | undefined;
  private flushScheduled = false;
  private readonly inflight = new Map<number, { d: Deferred; timer: NodeJS.Timeout }>();

  constructor(
    private readonly cluster: MqttCluster,
    readonly call: Call,
    readonly dialed: boolean,
    peer: number,
  ) {
    this.peer = peer;
  }

  get unsentBytes(): number {
    return this.call.writableLength;
  }

  write(frame: Frame): void {
    if (this.closed) return;
    this.call.write(frame);
  }

  enqueue(w: WireMessage, wait: boolean): Promise<void> | undefined {
    const size = w.payload.length + w.topic.length + 64;
    // A frame is at most MAX_BATCH_BYTES, or one message alone when it is bigger.
    if (this.outbox.length > 0 && this.outboxBytes + size > MAX_BATCH_BYTES) this.flush();
    this.outbox.push(w);
    this.outboxBytes += size;
    let p: Promise<void> | undefined;
    if (wait) {
      this.batch ??= deferred();
      this.batch.count++;
      p = this.batch.promise;
    }
    if (this.outboxBytes >= MAX_BATCH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return p;
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 || this.closed) return;
    const messages = this.outbox;
    const batch = this.batch;
    this.outbox = [];
    this.outboxBytes = 0;
    this.batch = undefined;
    const seq = ++this.seq;
    this.write({ forward: { seq, want_ack: batch !== undefined, messages } });
    this.cluster.metrics.forwarded.inc({ peer: String(this.peer) }, messages.length);
    if (batch) {
      const timer = setTimeout(() => {
        this.inflight.delete(seq);
        // Unconfirmed is not stored as far as we know: the publisher is not acknowledged and resends
        // (at least once), rather than being told a message is safe that a peer may never have taken.
        this.cluster.forwardFailed(this.peer, 'timeout', batch.count, `peer broker ${this.peer} did not confirm ${batch.count} forwarded message(s) within ${this.cluster.ackTimeoutMs} ms; the publisher is not acknowledged`);
        batch.reject(new Error(`peer broker ${this.peer} did not confirm a forwarded message within ${this.cluster.ackTimeoutMs} ms`));
      }, this.cluster.ackTimeoutMs);
      timer.unref();
      this.inflight.set(seq, { d: batch, timer });
    }
  }

  acked(seq: number, ok: boolean, error: string): void {
    const f = this.inflight.get(seq);
    if (!f) return; // timed out already
    this.inflight.delete(seq);
    clearTimeout(f.timer);
    if (ok) f.d.resolve();
    else {
      this.cluster.forwardFailed(this.peer, 'rejected', f.d.count, `peer broker ${this.peer} could not store ${f.d.count} forwarded message(s): ${error}`);
      f.d.reject(new Error(`peer broker ${this.peer} could not store a forwarded message: ${error}`));
    }
  }

  /** The stream is gone: whatever waits on it fails with PeerLinkLostError (counted as failures). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    let lost = 0;
    for (const { d, timer } of this.inflight.values()) {
      clearTimeout(timer);
      lost += d.count;
      d.reject(new PeerLinkLostError(this.peer));
    }
    this.inflight.clear();
    if (this.batch) {
      lost += this.batch.count;
      this.batch.reject(new PeerLinkLostError(this.peer));
      this.batch = undefined;
    }
    this.outbox = [];
    if (lost > 0) this.cluster.forwardFailed(this.peer, 'link_lost', lost, `link to peer broker ${this.peer} closed with ${lost} forwarded message(s) unconfirmed`);
    try {
      if (this.dialed) (this.call as grpc.ClientDuplexStream<Frame, Frame>).cancel();
      else this.call.end();
    } catch {
      /* already closed */
    }
  }
}

/** The dialing side's state for one peer with a higher id. */
interface Dialer {
  peer: number;
  address: string;
  client: grpc.Client;
  link: PeerLink | undefined;
  timer: NodeJS.Timeout | undefined;
  backoffMs: number;
}

export interface MqttClusterOptions {
  nodeId: number;
  clusterName: string;
  broker: MqttBroker;
  directory: PeerDirectory;
  /** The node's inner gRPC server; the Link service is added to it (before it binds). */
  server: grpc.Server;
  log: Logger;
  registry: Registry;
  /** Longest a QoS 1/2 publisher's acknowledgement waits for a peer (default 10 s: a meta election plus a journal segment roll fit in it). */
  ackTimeoutMs?: number;
  /** First redial delay after a stream to a peer breaks, doubled up to 2 s (default 200 ms). */
  reconnectMs?: number;
}

export class MqttCluster implements ClusterPort {
  readonly remote = new RemoteRoutes();
  linked: number[] = [];
  /** Other broker nodes meta does not hold alive. */
  down: number[] = [];
  /** Other broker nodes meta holds alive with no open link (yet). */
  unlinked: number[] = [];
  /** Clients that connected here since the last flush (claimClient). */
  private claims: Array<{ client_id: string; connected_at_ms: number }> = [];
  /** Who waits for a peer to link or go down (whenReachable). */
  private readonly reachWaiters = new Map<number, Set<(state: 'linked' | 'down') => void>>();
  readonly metrics: ClusterMetrics;
  readonly ackTimeoutMs: number;
  /** Ready links by peer id. */
  private readonly links = new Map<number, PeerLink>();
  /** Every stream not closed yet, ready or still saying hello. */
  private readonly streams = new Set<PeerLink>();
  private readonly dialers = new Map<number, Dialer>();
  private readonly broker: MqttBroker;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private running = false;
  private unsubscribe: (() => void) | undefined;
  private deltaScheduled = false;
  private readonly failureLogged = new Map<number, number>();
  private lastMsg: Message | undefined;
  private lastWire: WireMessage | undefined;
  /** Clients for TakeSession calls, by peer. */
  private readonly unaryClients = new Map<number, { address: string; client: grpc.Client }>();

  constructor(private readonly opts: MqttClusterOptions) {
    this.broker = opts.broker;
    this.log = opts.log;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    this.metrics = new ClusterMetrics(opts.registry, {
      routes: () => this.remote.peers().map((p) => [p, this.remote.count(p)]),
      peers: () => this.linked.length,
    });
    opts.server.addService(MqttClusterClient.service, {
      Link: (call: grpc.ServerDuplexStream<Frame, Frame>) => this.accept(call),
      TakeSession: (call: grpc.ServerUnaryCall<TakeSessionRequest, TakeSessionReply>, callback: grpc.sendUnaryData<TakeSessionReply>) => {
        const req = call.request;
        try {
          const handed = this.broker.handOverSession(req.client_id, req.to_node);
          if (!handed) return callback(null, { found: false, messages: [], inbound_qos2: [], moved_to: this.broker.movedTo(req.client_id) ?? 0 });
          const messages = handed.messages.map((o) => ({ record: encodeQueued(o), payload: o.msg.payload, packet_id: o.state === OutState.Queued ? 0 : o.packetId, state: o.state }));
          callback(null, { found: true, messages, inbound_qos2: handed.inboundQos2 });
        } catch (err) {
          callback({ code: grpc.status.INTERNAL, details: errorMessage(err) });
        }
      },
    });
    this.broker.routes.onChange = () => this.scheduleDelta();
  }

  /** Starts linking to the live peers; call once the broker has loaded its sessions (their routes). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.broker.cluster = this;
    this.unsubscribe = this.opts.directory.onChange(() => this.reconcile());
    this.reconcile();
  }

  /** Closes every link: peers drop this node's routes at once. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const d of this.dialers.values()) clearTimeout(d.timer);
    for (const link of [...this.streams]) this.closeLink(link, 'stopping');
    for (const d of this.dialers.values()) d.client.close();
    this.dialers.clear();
    for (const u of this.unaryClients.values()) u.client.close();
    this.unaryClients.clear();
    this.down = [];
    this.unlinked = [];
    this.broker.cluster = undefined;
  }

  /** The link state of every peer this node knows of, for the admin API. */
  peerStates(): Array<{ node_id: number; connected: boolean; routes: string[] }> {
    const ids = new Set<number>([...this.links.keys(), ...this.remote.peers(), ...this.dialers.keys()]);
    return [...ids]
      .sort((a, b) => a - b)
      .map((id) => ({ node_id: id, connected: this.links.get(id)?.ready === true, routes: this.remote.routesOf(id) }));
  }

  // ------------------------------------------------------------------ session hand-over (ClusterPort)

  /**
   * Asks the broker meta names as the session's owner to hand it over; when it
   * passed the session on meanwhile (meta here has not caught up), asks the one
   * it went to. Undefined when no broker on the way holds it.
   */
  async takeSession(peer: number, clientId: string): Promise<{ messages: Outgoing[]; inboundQos2: number[] } | undefined> {
    const asked = new Set<number>([this.opts.nodeId]);
    let next: number | undefined = peer;
    for (let hop = 0; next !== undefined && !asked.has(next) && hop < MAX_TAKE_HOPS; hop++) {
      asked.add(next);
      const reply = await this.takeSessionFrom(next, clientId);
      if (reply.found) return reply.taken;
      next = reply.movedTo;
    }
    return undefined;
  }

  private async takeSessionFrom(peer: number, clientId: string): Promise<{ found: true; taken: { messages: Outgoing[]; inboundQos2: number[] } } | { found: false; movedTo: number | undefined }> {
    const b = this.opts.directory.brokers().find((x) => x.id === peer);
    if (!b) throw new Error(`broker ${peer} is not known to the meta service`);
    let client = this.unaryClients.get(peer);
    if (!client || client.address !== b.grpcAddr) {
      client?.client.close();
      client = { address: b.grpcAddr, client: new MqttClusterClient(b.grpcAddr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 }) };
      this.unaryClients.set(peer, client);
    }
    const c = client.client as unknown as {
      TakeSession(req: TakeSessionRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: TakeSessionReply) => void): void;
    };
    const reply = await new Promise<TakeSessionReply>((resolve, reject) =>
      c.TakeSession({ client_id: clientId, to_node: this.opts.nodeId }, { deadline: Date.now() + TAKE_SESSION_TIMEOUT_MS }, (err, res) => (err || !res ? reject(err ?? new Error('empty answer')) : resolve(res))),
    );
    if (!reply.found) return { found: false, movedTo: reply.moved_to ? Number(reply.moved_to) : undefined };
    const taken = {
      messages: (reply.messages ?? []).map((m) => {
        const out = decodeQueued(toBuffer(m.record), toBuffer(m.payload));
        const state = Number(m.state);
        if ((state === OutState.Published || state === OutState.Released) && m.packet_id > 0 && m.packet_id <= 0xffff) {
          out.state = state;
          out.packetId = Number(m.packet_id);
        }
        return out;
      }),
      inboundQos2: (reply.inbound_qos2 ?? []).map(Number),
    };
    return { found: true, taken };
  }

  // ------------------------------------------------------------------ forwarding (ClusterPort)

  forward(peer: number, msg: Message, plan: ForwardPlan): Promise<void> | undefined {
    const wait = msg.qos > 0 && (plan.route || plan.shares !== undefined);
    const link = this.links.get(peer);
    if (!link || !link.ready) {
      if (plan.route || plan.shares !== undefined) this.forwardFailed(peer, 'no_link', 1, `no open link to peer broker ${peer}; a message for it was not forwarded`);
      return wait ? Promise.reject(new PeerLinkLostError(peer)) : undefined;
    }
    const now = this.broker.now();
    if (msg.expiresAt !== undefined && msg.expiresAt <= now) return undefined;
    if (msg.payload.length > MAX_FORWARD_BYTES) {
      this.forwardFailed(peer, 'too_large', 1, `a message of ${msg.payload.length} bytes on ${msg.topic} is too large to forward to peer broker ${peer}`);
      return undefined;
    }
    if (msg.qos === 0 && !plan.retained && link.unsentBytes > MAX_UNSENT_BYTES) {
      this.forwardFailed(peer, 'congested', 1, `the link to peer broker ${peer} has ${link.unsentBytes} bytes unsent; QoS 0 messages to it are dropped`);
      return undefined;
    }
    // The same message usually goes to several peers in a row: encoded once.
    let base = this.lastWire;
    if (this.lastMsg !== msg || base === undefined) {
      base = encodeMessage(msg, now);
      this.lastMsg = msg;
      this.lastWire = base;
      queueMicrotask(() => {
        this.lastMsg = undefined;
        this.lastWire = undefined;
      });
    }
    const w: WireMessage = { ...base, route: plan.route, shares: plan.shares ?? [], retained_update: plan.retained };
    return link.enqueue(w, wait);
  }

  /** Counts (and now and then logs) messages a peer did not confirm. */
  forwardFailed(peer: number, reason: string, n: number, message: string): void {
    this.metrics.failures.inc({ peer: String(peer), reason }, n);
    const now = Date.now();
    if (now - (this.failureLogged.get(peer) ?? 0) >= FAILURE_LOG_EVERY_MS) {
      this.failureLogged.set(peer, now);
      this.log.warn({ peer, reason, messages: n }, `mqtt cluster: ${message}`);
    }
  }

  // ------------------------------------------------------------------ links

  /** Dial the live peers with higher ids; close links to peers the meta service no longer reports alive. */
  private reconcile(): void {
    if (!this.running) return;
    this.updateUnreachable();
    const self = this.opts.nodeId;
    const brokers = this.opts.directory.brokers();
    const byId = new Map(brokers.map((b) => [b.id, b]));
    for (const link of [...this.links.values()]) {
      const b = byId.get(link.peer);
      if (b && !b.alive) this.closeLink(link, 'peer not alive');
    }
    for (const [id, d] of [...this.dialers]) {
      const b = byId.get(id);
      if (!b || !b.alive || b.grpcAddr !== d.address) {
        clearTimeout(d.timer);
        if (d.link) this.closeLink(d.link, b && b.alive ? 'address changed' : 'peer not alive');
        d.client.close();
        this.dialers.delete(id);
      }
    }
    // Routes of a peer that is not alive are dropped even if no link carried them (the link closed first).
    for (const peer of this.remote.peers()) {
      const b = byId.get(peer);
      if (b && !b.alive && !this.links.has(peer)) this.dropPeer(peer);
    }
    for (const b of brokers) {
      if (b.id <= self || !b.alive || this.dialers.has(b.id)) continue;
      const client = new MqttClusterClient(b.grpcAddr, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2_000,
      });
      const d: Dialer = { peer: b.id, address: b.grpcAddr, client, link: undefined, timer: undefined, backoffMs: this.opts.reconnectMs ?? 200 };
      this.dialers.set(b.id, d);
      this.dial(d);
    }
  }

  private dial(d: Dialer): void {
    d.timer = undefined;
    if (!this.running || this.dialers.get(d.peer) !== d) return;
    const client = d.client as unknown as { Link(): grpc.ClientDuplexStream<Frame, Frame> };
    const call = client.Link();
    const link = new PeerLink(this, call, true, d.peer);
    d.link = link;
    this.wire(link);
    link.write({ hello: this.hello() });
  }

  private redial(d: Dialer, wasReady: boolean): void {
    if (!this.running || this.dialers.get(d.peer) !== d || d.timer) return;
    const first = this.opts.reconnectMs ?? 200;
    if (wasReady) d.backoffMs = first;
    d.timer = setTimeout(() => this.dial(d), d.backoffMs);
    d.timer.unref();
    d.backoffMs = Math.min(2_000, d.backoffMs * 2);
  }

  /** An incoming stream from a peer with a lower id. */
  private accept(call: grpc.ServerDuplexStream<Frame, Frame>): void {
    if (!this.running) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: `the MQTT broker of node ${this.opts.nodeId} is not running` });
      return;
    }
    const link = new PeerLink(this, call, false, 0);
    this.wire(link);
  }

  private hello(): NonNullable<Frame['hello']> {
    return { cluster_name: this.opts.clusterName, node_id: this.opts.nodeId, started_at_ms: this.startedAt };
  }

  private wire(link: PeerLink): void {
    this.streams.add(link);
    const call = link.call;
    call.on('data', (frame: Frame) => {
      try {
        this.onFrame(link, frame);
      } catch (err) {
        this.log.warn({ peer: link.peer, err: errorMessage(err) }, 'mqtt cluster: bad frame from a peer; closing its link');
        this.closeLink(link, 'bad frame');
      }
    });
    const ended = (err?: grpc.ServiceError) => {
      if (link.closed) return;
      this.closeLink(link, err ? (err.details || err.message) : 'stream ended');
    };
    call.on('error', (err: grpc.ServiceError) => ended(err));
    call.on('end', () => ended());
    call.on('close', () => ended());
    // The server side learns of a peer that went away (cancelled, or its connection died) this way.
    if (!link.dialed) call.on('cancelled', () => ended());
  }

  private onFrame(link: PeerLink, frame: Frame): void {
    if (link.closed) return;
    if (!this.running) return this.closeLink(link, 'stopping');
    switch (frame.body) {
      case 'hello': {
        const h = frame.hello!;
        if (h.cluster_name !== this.opts.clusterName) {
          this.log.warn({ from_cluster: h.cluster_name, node: h.node_id }, `mqtt cluster: refused a link from another cluster ("${h.cluster_name}")`);
          this.closeLink(link, 'wrong cluster');
          return;
        }
        const peer = Number(h.node_id);
        if (link.dialed ? peer !== link.peer : peer === this.opts.nodeId || peer <= 0) {
          this.log.warn({ expected: link.peer, got: peer }, 'mqtt cluster: a peer introduced itself with an unexpected node id; closing the link');
          this.closeLink(link, 'unexpected node id');
          return;
        }
        link.peer = peer;
        link.peerStartedAt = Number(h.started_at_ms);
        // A newer stream from the same peer (it restarted or reconnected) replaces the old one.
        const old = this.links.get(peer);
        if (old && old !== link) this.closeLink(old, 'replaced by a new link');
        if (!link.dialed) link.write({ hello: this.hello() });
        // The pending delta goes to the other links first, so this full sync and the deltas after it agree.
        this.flushDelta();
        link.write({ sync: { routes: this.broker.routes.routes() } });
        link.ready = true;
        this.links.set(peer, link);
        this.updateLinked();
        // It may have queued messages for our sessions in our log while it could not reach us.
        this.broker.peerLinked();
        this.log.info({ peer, dialed: link.dialed }, `mqtt cluster: linked with broker ${peer}`);
        return;
      }
      case 'sync':
        if (!link.ready) return;
        this.remote.sync(link.peer, frame.sync?.routes ?? []);
        if (!link.routesKnown) {
          link.routesKnown = true;
          if (this.links.get(link.peer) === link) this.updateLinked();
        }
        return;
      case 'delta':
        if (!link.ready) return;
        this.remote.apply(link.peer, frame.delta?.added ?? [], frame.delta?.removed ?? []);
        return;
      case 'forward':
        if (!link.ready) return;
        this.received(link, frame.forward!);
        return;
      case 'ack':
        link.acked(Number(frame.ack!.seq), frame.ack!.ok, frame.ack!.error);
        return;
      case 'claims':
        if (!link.ready) return;
        for (const c of frame.claims?.claims ?? []) this.broker.claimedElsewhere(c.client_id, Number(c.connected_at_ms), link.peer);
        return;
      default:
        return;
    }
  }

  private received(link: PeerLink, batch: NonNullable<Frame['forward']>): void {
    const now = this.broker.now();
    const waits: Array<Promise<void>> = [];
    const messages = batch.messages ?? [];
    for (const w of messages) {
      const m = decodeMessage(w, now);
      if (!m) continue;
      const p = this.broker.deliverForwarded(m.msg, m.plan);
      if (p) waits.push(p);
    }
    this.metrics.received.inc({ peer: String(link.peer) }, messages.length);
    if (!batch.want_ack) {
      for (const p of waits) p.catch((err: unknown) => this.log.warn({ peer: link.peer, err: errorMessage(err) }, 'mqtt cluster: a forwarded message could not be stored'));
      return;
    }
    const seq = Number(batch.seq);
    if (waits.length === 0) {
      link.write({ ack: { seq, ok: true, error: '' } });
      return;
    }
    Promise.all(waits).then(
      () => link.write({ ack: { seq, ok: true, error: '' } }),
      (err: unknown) => {
        this.log.warn({ peer: link.peer, err: errorMessage(err) }, 'mqtt cluster: a forwarded message could not be stored');
        link.write({ ack: { seq, ok: false, error: errorMessage(err) } });
      },
    );
  }

  private closeLink(link: PeerLink, reason: string): void {
    const wasReady = link.ready;
    link.close();
    this.streams.delete(link);
    const peer = link.peer;
    if (peer !== 0 && this.links.get(peer) === link) {
      this.links.delete(peer);
      this.updateLinked();
      this.dropPeer(peer);
      this.log.info({ peer, reason }, `mqtt cluster: link with broker ${peer} closed (${reason})`);
    }
    if (link.dialed) {
      const d = this.dialers.get(peer);
      if (d && d.link === link) {
        d.link = undefined;
        this.redial(d, wasReady);
      }
    }
  }

  private dropPeer(peer: number): void {
    this.remote.dropPeer(peer);
  }

  private updateLinked(): void {
    this.linked = [...this.links.entries()]
      .filter(([, l]) => l.ready && l.routesKnown)
      .map(([id]) => id)
      .sort((a, b) => a - b);
    this.updateUnreachable();
  }

  private updateUnreachable(): void {
    if (!this.running) {
      this.down = [];
      this.unlinked = [];
      return;
    }
    const self = this.opts.nodeId;
    const down: number[] = [];
    const unlinked: number[] = [];
    for (const b of this.opts.directory.brokers()) {
      if (b.id === self) continue;
      if (!b.alive) down.push(b.id);
      else if (!this.routable(b.id)) unlinked.push(b.id);
    }
    this.down = down.sort((a, b) => a - b);
    this.unlinked = unlinked.sort((a, b) => a - b);
    for (const [peer, waiters] of this.reachWaiters) {
      const state = this.routable(peer) ? 'linked' : this.down.includes(peer) ? 'down' : undefined;
      if (!state) continue;
      this.reachWaiters.delete(peer);
      for (const w of waiters) w(state);
    }
  }

  /** Linked, with the peer's routes known. */
  private routable(peer: number): boolean {
    const link = this.links.get(peer);
    return link !== undefined && link.ready && link.routesKnown;
  }

  /** Resolves once the peer is linked, or meta no longer holds it alive, or after timeoutMs. */
  whenReachable(peer: number, timeoutMs: number): Promise<'linked' | 'down' | 'timeout'> {
    if (this.routable(peer)) return Promise.resolve('linked');
    if (!this.running || this.down.includes(peer)) return Promise.resolve('down');
    return new Promise((resolve) => {
      let set = this.reachWaiters.get(peer);
      if (!set) this.reachWaiters.set(peer, (set = new Set()));
      const waiters = set;
      const timer = setTimeout(() => {
        waiters.delete(done);
        resolve('timeout');
      }, timeoutMs);
      timer.unref();
      const done = (state: 'linked' | 'down'): void => {
        clearTimeout(timer);
        resolve(state);
      };
      waiters.add(done);
    });
  }

  // ------------------------------------------------------------------ route deltas

  private scheduleDelta(): void {
    if (this.deltaScheduled) return;
    this.deltaScheduled = true;
    setImmediate(() => this.flushDelta());
  }

  /**
   * A client connected here: peers close an older connection with its client id.
   * Sent with the route deltas of this event-loop turn.
   */
  claimClient(clientId: string, connectedAtMs: number): void {
    if (!this.running || this.links.size === 0) return;
    this.claims.push({ client_id: clientId, connected_at_ms: connectedAtMs });
    this.scheduleDelta();
  }

  /** Sends the routes that appeared or disappeared since the last time, and the new clients' claims, to every open link. */
  private flushDelta(): void {
    this.deltaScheduled = false;
    const delta = this.broker.routes.takeDelta();
    const claims = this.claims.length > 0 ? { claims: this.claims.splice(0) } : undefined;
    if (!delta && !claims) return;
    for (const link of this.links.values()) {
      if (!link.ready) continue;
      if (delta) link.write({ delta });
      if (claims) link.write({ claims });
    }
  }
}
