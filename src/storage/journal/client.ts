/**
 * The writer's side of the journal data path: one TCP connection per journal
 * node, many requests in flight on it, answers matched by correlation id.
 * Requests written in one tick leave in one socket write (corked).
 */
import { connect, type Socket } from 'node:net';
import { StorageError } from '../errors.js';
import { JournalProtocolError, Op, STATUS_NAMES, Status, decodeResponse, encodeRequest, frameAt, type Request, type Response } from './protocol.js';

/** A journal node could not be reached, or its connection broke with the request in flight. */
export class JournalUnavailableError extends StorageError {
  constructor(
    readonly nodeId: number,
    readonly addr: string,
    why: string,
  ) {
    super(`journal node ${nodeId} (${addr}) is unavailable: ${why}`, 'journal_unavailable');
  }
}

/** A journal node answered with a status other than Ok. */
export class JournalStatusError extends StorageError {
  constructor(
    readonly nodeId: number,
    readonly status: Status,
    message: string,
  ) {
    super(`journal node ${nodeId} answered ${STATUS_NAMES[status] ?? status}: ${message}`, `journal_${STATUS_NAMES[status] ?? 'error'}`);
  }
}

interface Pending {
  resolve(r: Response): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

const CONNECT_TIMEOUT_MS = 3000;

export class JournalConnection {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private inbox: Buffer = Buffer.alloc(0);
  private corked = false;
  private closed = false;

  constructor(
    readonly nodeId: number,
    readonly addr: string,
    private readonly requestTimeoutMs: number,
    /** Source address for the connection (the node's bind host), so peers see which node calls. */
    private readonly localAddress?: string,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request; resolves with the response whatever its status (callers check it). */
  async request(req: Request): Promise<Response> {
    const socket = this.socket ?? (await this.open());
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
    const frame = encodeRequest(id, req);
    return new Promise<Response>((resolve, reject) => {
      const timer =
        this.requestTimeoutMs > 0
          ? setTimeout(() => {
              // A journal node that stops answering is as good as gone: drop the connection so every request fails over.
              this.fail(`no answer within ${this.requestTimeoutMs} ms`);
            }, this.requestTimeoutMs)
          : undefined;
      this.pending.set(id, { resolve, reject, timer });
      if (!this.corked) {
        this.corked = true;
        socket.cork();
        process.nextTick(() => {
          this.corked = false;
          socket.uncork();
        });
      }
      socket.write(frame);
    });
  }

  /** Like request, but an answer other than Ok rejects with JournalStatusError. */
  async call<R extends Response>(req: Request): Promise<R> {
    const res = await this.request(req);
    if (res.status !== Status.Ok) throw new JournalStatusError(this.nodeId, res.status, res.message);
    return res as R;
  }

  close(): void {
    this.closed = true;
    this.fail('connection closed');
  }

  private open(): Promise<Socket> {
    if (this.closed) return Promise.reject(new JournalUnavailableError(this.nodeId, this.addr, 'client closed'));
    if (this.connecting) return this.connecting;
    const colon = this.addr.lastIndexOf(':');
    const host = this.addr.slice(0, colon);
    const port = Number(this.addr.slice(colon + 1));
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port, noDelay: true, ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
      const timer = setTimeout(() => s.destroy(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      s.once('connect', () => {
        clearTimeout(timer);
        this.socket = s;
        this.connecting = undefined;
        resolve(s);
      });
      s.on('data', (chunk: Buffer) => this.onData(chunk));
      s.on('error', (err) => {
        clearTimeout(timer);
        if (this.connecting) {
          this.connecting = undefined;
          reject(new JournalUnavailableError(this.nodeId, this.addr, err.message));
        }
        this.drop(s, err.message);
      });
      s.on('close', () => {
        clearTimeout(timer);
        if (this.connecting) {
          this.connecting = undefined;
          reject(new JournalUnavailableError(this.nodeId, this.addr, 'connection closed while connecting'));
        }
        this.drop(s, 'connection closed by the journal node');
      });
    });
    return this.connecting;
  }

  private onData(chunk: Buffer): void {
    let buf = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    let at = 0;
    try {
      for (;;) {
        const head = frameAt(buf, at);
        if (!head) break;
        const res = decodeResponse(buf, head);
        at = head.end;
        const p = this.pending.get(head.correlationId);
        if (!p) continue; // timed out and failed already
        this.pending.delete(head.correlationId);
        if (p.timer) clearTimeout(p.timer);
        p.resolve(res);
      }
    } catch (err) {
      this.fail(err instanceof JournalProtocolError ? err.message : String(err));
      return;
    }
    // Keep only the unconsumed tail; copy it so a 64 KiB read chunk is not retained for a few bytes.
    buf = at === buf.length ? Buffer.alloc(0) : at === 0 ? buf : Buffer.from(buf.subarray(at));
    this.inbox = buf;
  }

  private drop(s: Socket, why: string): void {
    if (this.socket === s) this.socket = undefined;
    this.inbox = Buffer.alloc(0);
    const err = new JournalUnavailableError(this.nodeId, this.addr, why);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
  }

  private fail(why: string): void {
    const s = this.socket;
    if (s) {
      s.destroy();
      this.drop(s, why);
    } else {
      const err = new JournalUnavailableError(this.nodeId, this.addr, why);
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        p.reject(err);
      }
    }
  }
}

/** Connections to journal nodes by id; a node's address change replaces its connection. */
export class JournalClientPool {
  private readonly conns = new Map<number, JournalConnection>();

  constructor(
    private readonly requestTimeoutMs = 10_000,
    private readonly localAddress?: string,
  ) {}

  get(nodeId: number, addr: string): JournalConnection {
    let c = this.conns.get(nodeId);
    if (c && c.addr !== addr) {
      c.close();
      c = undefined;
    }
    if (!c) {
      c = new JournalConnection(nodeId, addr, this.requestTimeoutMs, this.localAddress);
      this.conns.set(nodeId, c);
    }
    return c;
  }

  closeAll(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}

export { Op, Status };
