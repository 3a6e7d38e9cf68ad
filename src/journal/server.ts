/**
 * The journal node's data service (DESIGN.md §6): a TCP server on
 * `bind_host:journal.tcp_port` speaking the frames of storage/journal/protocol.ts
 * to writers and readers, in front of the node's ReplicaStore.
 *
 * Per connection: bytes are gathered until a frame is whole (a frame that spans
 * reads is copied once), each frame is decoded and handed to the store at once,
 * in arrival order (adds to one replica reach the store in that order; the store
 * serializes them), and answers are written as they complete, possibly out of
 * order, all answers of one tick in one corked write. Request payloads are views
 * of the received bytes, which are never reused. A frame that does not decode
 * closes its connection only; a handler failure answers io_error.
 *
 * BACKPRESSURE: a connection stops being read while more than maxInflightBytes
 * of its requests are unanswered, or that many bytes of answers wait in its
 * socket, and is read again below half of that.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram, type Registry } from 'prom-client';
import { ListenError } from '../common/errors.js';
import type { ListenerInfo } from '../common/node-info.js';
import {
  JournalProtocolError,
  Op,
  STATUS_NAMES,
  Status,
  decodeRequest,
  encodeResponse,
  frameAt,
  type FrameHead,
  type Request,
  type Response,
} from '../storage/journal/protocol.js';
import type { ReplicaStore } from './replica-store.js';

export interface JournalServerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface JournalServerOptions {
  store: ReplicaStore;
  host: string;
  /** 0 picks a free port (tests); see `port` once started. */
  port: number;
  log: JournalServerLog;
  /** The node's registry (robust_journal_* metrics); a private one when omitted. */
  registry?: Registry;
  /** Unanswered request bytes per connection before it stops being read. Default 32 MiB. */
  maxInflightBytes?: number;
}

/** Decides, by remote address, which connections a simulated network partition cuts (tests). */
export type JournalFault = (remoteAddress: string) => boolean;

const OP_NAMES: Record<number, string> = {
  [Op.Add]: 'add',
  [Op.Read]: 'read',
  [Op.Fence]: 'fence',
  [Op.Delete]: 'delete',
  [Op.Info]: 'info',
  [Op.List]: 'list',
};

const DEFAULT_MAX_INFLIGHT = 32 * 1024 * 1024;

interface JournalMetrics {
  requests: Counter<'op' | 'status'>;
  addBytes: Counter;
  addSeconds: Histogram;
  fences: Counter;
}

/** One set of metrics per registry (a service restarted on the same registry reuses it). */
const metricsByRegistry = new WeakMap<Registry, JournalMetrics>();

function journalMetrics(registry: Registry | undefined): JournalMetrics {
  const existing = registry ? metricsByRegistry.get(registry) : undefined;
  if (existing) return existing;
  const registers = registry ? [registry] : [];
  const m: JournalMetrics = {
    requests: new Counter({ name: 'robust_journal_requests_total', help: 'Journal requests answered, by operation and status', labelNames: ['op', 'status'] as const, registers }),
    addBytes: new Counter({ name: 'robust_journal_add_bytes_total', help: 'Bytes of add requests stored (frame bytes of adds answered ok)', registers }),
    addSeconds: new Histogram({
      name: 'robust_journal_add_seconds',
      help: 'Add latency on the journal node, from the whole frame to its answer (after fdatasync for sync adds)',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    fences: new Counter({ name: 'robust_journal_fences_total', help: 'Fence requests answered ok', registers }),
  };
  if (registry) metricsByRegistry.set(registry, m);
  return m;
}

class Connection {
  private chunks: Buffer[] = [];
  private have = 0;
  /** Bytes needed before the next frame can be whole. */
  private need = 4;
  private out: Buffer[] = [];
  private flushQueued = false;
  private inflight = 0;
  private paused = false;
  closed = false;
  readonly remote: string;

  constructor(
    readonly socket: Socket,
    private readonly server: JournalServer,
    private readonly maxInflight: number,
  ) {
    this.remote = socket.remoteAddress ?? '';
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.flow());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < this.need) return;
    const buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.have);
    this.chunks = [];
    let at = 0;
    for (;;) {
      let head: FrameHead | undefined;
      try {
        head = frameAt(buf, at);
      } catch (err) {
        this.server.protocolError(this, err);
        return;
      }
      if (!head) break;
      at = head.end;
      if (!this.server.dispatch(this, buf, head)) return;
      if (this.closed) return;
    }
    const rest = at === 0 ? buf : buf.subarray(at);
    this.have = rest.length;
    if (rest.length > 0) this.chunks.push(rest);
    this.need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
  }

  /** A request of `bytes` is being handled. */
  started(bytes: number): void {
    this.inflight += bytes;
    this.flow();
  }

  /** Queues an answer; every answer of this tick goes out in one corked write. */
  answer(bytes: number, frame: Buffer): void {
    this.inflight -= bytes;
    if (this.closed) return;
    this.out.push(frame);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const out = this.out;
    this.out = [];
    if (this.closed || out.length === 0) return;
    const s = this.socket;
    if (out.length === 1) s.write(out[0] as Buffer);
    else {
      s.cork();
      for (const b of out) s.write(b);
      s.uncork();
    }
    this.flow();
  }

  /** Pauses or resumes reading by what is unanswered or unsent. */
  private flow(): void {
    if (this.closed) return;
    const pending = this.socket.writableLength;
    if (!this.paused && (this.inflight > this.maxInflight || pending > this.maxInflight)) {
      this.paused = true;
      this.socket.pause();
    } else if (this.paused && this.inflight <= this.maxInflight / 2 && pending <= this.maxInflight / 2) {
      this.paused = false;
      this.socket.resume();
    }
  }

  close(): void {
    this.closed = true;
    this.chunks = [];
    this.out = [];
    this.socket.destroy();
  }
}

export class JournalServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly metrics: JournalMetrics;
  private readonly maxInflight: number;
  private fault: JournalFault | undefined;
  private boundPort = 0;
  private running = false;

  constructor(private readonly opts: JournalServerOptions) {
    this.metrics = journalMetrics(opts.registry);
    this.maxInflight = opts.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT;
    this.server = createServer({ noDelay: true }, (socket) => this.onConnection(socket));
  }

  /** The bound port (after start). */
  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `${this.opts.host}:${this.boundPort}`;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  listeners(): ListenerInfo[] {
    return this.running ? [{ name: 'journal', protocol: 'journal', address: this.address }] : [];
  }

  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new ListenError('journal.tcp_port', this.opts.host, this.opts.port, err));
      this.server.once('error', onError);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.opts.log.warn({ err: err.message }, 'journal: server error'));
        this.boundPort = (this.server.address() as AddressInfo).port;
        this.running = true;
        this.opts.log.info({ address: this.address }, `journal: listening on ${this.address}`);
        resolve();
      });
    });
  }

  /** Closes the listener and every connection. Idempotent; safe before start. */
  async stop(): Promise<void> {
    this.fault = undefined;
    const wasRunning = this.running;
    this.running = false;
    for (const c of this.connections) c.close();
    this.connections.clear();
    if (!wasRunning && !this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Test hook (simulated network partition): while `fn` returns true for a remote
   * address, connections from it are dropped and new ones refused.
   */
  setFault(fn: JournalFault | undefined): void {
    this.fault = fn;
    if (!fn) return;
    for (const c of [...this.connections]) {
      if (fn(c.remote)) {
        this.connections.delete(c);
        c.close();
      }
    }
  }

  private onConnection(socket: Socket): void {
    const remote = socket.remoteAddress ?? '';
    if (!this.running || this.fault?.(remote)) {
      socket.destroy();
      return;
    }
    socket.setKeepAlive(true, 30_000);
    const c = new Connection(socket, this, this.maxInflight);
    this.connections.add(c);
    socket.on('error', (err) => this.opts.log.debug({ remote, err: err.message }, 'journal: connection error'));
    socket.on('close', () => {
      c.closed = true;
      this.connections.delete(c);
    });
  }

  /** @internal A frame that does not decode: close its connection only. */
  protocolError(c: Connection, err: unknown): void {
    this.opts.log.warn({ remote: c.remote, err: err instanceof Error ? err.message : String(err) }, 'journal: malformed frame; closing the connection');
    this.connections.delete(c);
    c.close();
  }

  /** @internal Decodes one frame and hands it to the store now; false when the connection was closed. */
  dispatch(c: Connection, buf: Buffer, head: FrameHead): boolean {
    let req: Request;
    try {
      req = decodeRequest(buf, head);
    } catch (err) {
      this.protocolError(c, err instanceof JournalProtocolError ? err : new JournalProtocolError(String(err)));
      return false;
    }
    const bytes = head.end - head.start + 4;
    const t0 = performance.now();
    let pending: Promise<Response>;
    try {
      pending = this.handle(req);
    } catch (err) {
      pending = Promise.reject(err);
    }
    c.started(bytes);
    pending
      .catch((err: unknown) => failure(req.op, err))
      .then((res) => {
        const m = this.metrics;
        m.requests.inc({ op: OP_NAMES[req.op] ?? String(req.op), status: STATUS_NAMES[res.status] ?? String(res.status) });
        if (req.op === Op.Add) {
          m.addSeconds.observe((performance.now() - t0) / 1000);
          if (res.status === Status.Ok) m.addBytes.inc(bytes);
        } else if (req.op === Op.Fence && res.status === Status.Ok) m.fences.inc();
        let frame: Buffer;
        try {
          frame = encodeResponse(head.correlationId, res);
        } catch (err) {
          frame = encodeResponse(head.correlationId, failure(req.op, err));
        }
        c.answer(bytes, frame);
      })
      .catch((err: unknown) => {
        // Only reachable through a bug: keep the node up and the peer informed.
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'journal: could not answer a request');
        this.connections.delete(c);
        c.close();
      });
    return true;
  }

  /** Calls the store synchronously (the store orders adds before returning). */
  private handle(req: Request): Promise<Response> {
    const store = this.opts.store;
    switch (req.op) {
      case Op.Add:
        return store.add(req).then((r) => ({ op: Op.Add, ...r }));
      case Op.Read:
        return store.read(req).then((r) => ({ op: Op.Read, ...r }));
      case Op.Fence:
        return store.fence(req, req.epoch).then((r) => ({ op: Op.Fence, ...r }));
      case Op.Info:
        return store.info(req).then((r) => ({ op: Op.Info, ...r }));
      case Op.Delete:
        return store.delete(req).then((r) => ({ op: Op.Delete, ...r }));
      case Op.List:
        return Promise.resolve({ op: Op.List, status: Status.Ok, message: '', replicas: store.list() });
    }
  }
}

/** The answer to a request whose handler threw. */
function failure(op: Op, err: unknown): Response {
  const status = err instanceof TypeError || err instanceof RangeError ? Status.BadRequest : Status.IoError;
  const message = `journal node: ${err instanceof Error ? err.message : String(err)}`;
  const state = { end: 0, lac: -1, fencedEpoch: 0 };
  switch (op) {
    case Op.Add:
    case Op.Fence:
    case Op.Info:
      return { op, status, message, state };
    case Op.Read:
      return { op, status, message, state, units: [] };
    case Op.Delete:
      return { op, status, message };
    case Op.List:
      return { op, status, message, replicas: [] };
  }
}
