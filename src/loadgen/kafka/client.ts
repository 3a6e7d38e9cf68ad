/**
 * A lean Kafka client connection for the load generator: one TCP socket (TCP_NODELAY),
 * request frames written with the broker's own codecs (src/broker/kafka/protocol), and
 * responses matched to requests in order (Kafka answers a connection's requests in the
 * order they came). Two ways to send:
 *  - `request(apiKey, version, body)`: encode with the schema codec, resolve with the
 *    decoded response (setup: ApiVersions, Metadata, CreateTopics, ListOffsets);
 *  - `sendFrame(frame, onResponse)`: a frame built by the caller (the Produce hot path
 *    patches a pre-encoded request); `onResponse` gets the response frame and where its
 *    body starts. `expectResponse = false` for Produce with acks=0 (no answer comes).
 *
 * Incoming bytes are framed without concatenating chunk lists: a response that does not
 * fit in the chunk it starts in gets one buffer of its exact size, filled as chunks come.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { APIS } from '../../broker/kafka/protocol/apis.js';
import { KafkaReader } from '../../broker/kafka/protocol/reader.js';
import { KafkaWriter } from '../../broker/kafka/protocol/writer.js';
import { describeConnectError, socketErrorReason } from '../errors.js';

/** Largest response frame accepted (a Fetch answer is bounded by the max_bytes asked). */
const MAX_RESPONSE_BYTES = 1024 * 1024 * 1024;
const API_VERSIONS_KEY = 18;

export type ResponseHandler = (frame: Buffer, bodyAt: number) => void;

interface Pending {
  correlationId: number;
  flexibleHeader: boolean;
  onResponse: ResponseHandler;
  onError: (err: Error) => void;
}

export class KafkaConnError extends Error {
  override readonly name = 'KafkaConnError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Writes a request header v1 (classic) or v2 (flexible: plus empty tagged fields). */
export function writeRequestHeader(w: KafkaWriter, apiKey: number, version: number, correlationId: number, clientId: string, flexible: boolean): void {
  w.int16(apiKey);
  w.int16(version);
  w.int32(correlationId);
  w.nullableString(clientId);
  if (flexible) w.uvarint(0);
}

export class KafkaConn {
  closed = false;
  /** Called once when the socket closes (err: why, when known). */
  onClose: (err: Error | undefined) => void = () => {};
  private nextCorrelationId = 1;
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private partial: Buffer | null = null;
  private filled = 0;
  private readonly head = Buffer.alloc(4);
  private headFilled = 0;
  private lastError: Error | undefined;
  private readonly writer = new KafkaWriter(4096);

  constructor(
    readonly socket: Socket,
    readonly where: string,
    readonly clientId: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.lastError ??= err;
    });
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      const err = new KafkaConnError('closed', `connection to ${this.where} closed${this.lastError ? `: ${this.lastError.message}` : ''}`);
      this.failPending(err);
      this.onClose(this.lastError);
    });
  }

  static connect(host: string, port: number, timeoutMs: number, clientId: string): Promise<KafkaConn> {
    const where = `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const sock = netConnect({ host, port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new KafkaConnError('ETIMEDOUT', describeConnectError('ETIMEDOUT', `kafka://${where}`)));
      }, timeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        const reason = socketErrorReason(err);
        reject(new KafkaConnError(reason, describeConnectError(reason, `kafka://${where}`)));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', onError);
        sock.setNoDelay(true);
        resolve(new KafkaConn(sock, where, clientId));
      });
    });
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  correlationId(): number {
    const id = this.nextCorrelationId;
    this.nextCorrelationId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /** Writes a complete frame (size prefix included) whose correlation id is `correlationId`. Returns socket.write's answer. */
  sendFrame(frame: Buffer, correlationId: number, onResponse: ResponseHandler | null, onError: (err: Error) => void = () => {}, flexibleHeader = false, written?: (err?: Error | null) => void): boolean {
    if (this.closed) {
      onError(new KafkaConnError('closed', `connection to ${this.where} is closed`));
      return false;
    }
    if (onResponse !== null) this.pending.push({ correlationId, flexibleHeader, onResponse, onError });
    return written ? this.socket.write(frame, written) : this.socket.write(frame);
  }

  /** Encodes a request with the schema codec and resolves with the decoded response. */
  request<Res>(apiKey: number, version: number, body: unknown): Promise<Res> {
    const api = APIS.get(apiKey);
    if (!api) return Promise.reject(new Error(`unknown API key ${apiKey}`));
    const reqCodec = api.request[version];
    const resCodec = api.response[version];
    if (!reqCodec || !resCodec) return Promise.reject(new Error(`${api.name} v${version} has no codec`));
    const w = this.writer;
    w.reset();
    const sizeAt = w.reserveInt32();
    const corr = this.correlationId();
    writeRequestHeader(w, apiKey, version, corr, this.clientId, reqCodec.flexible);
    reqCodec.encode(w, body);
    w.patchInt32(sizeAt, w.pos - 4);
    const frame = w.toBuffer();
    return new Promise<Res>((resolve, reject) => {
      this.sendFrame(
        frame,
        corr,
        (f, at) => {
          try {
            resolve(resCodec.decode(new KafkaReader(f, at)) as Res);
          } catch (err) {
            reject(new Error(`malformed ${api.name} v${version} response from ${this.where}: ${(err as Error).message}`));
          }
        },
        reject,
        resCodec.flexible && apiKey !== API_VERSIONS_KEY,
      );
    });
  }

  close(): void {
    if (this.closed) return;
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 1000);
    t.unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private failPending(err: Error): void {
    const p = this.pending.splice(this.pendingHead);
    this.pending.length = 0;
    this.pendingHead = 0;
    for (const x of p) x.onError(err);
  }

  private protocolError(message: string): void {
    this.lastError ??= new Error(message);
    this.socket.destroy(new Error(message));
  }

  private deliver(frame: Buffer): void {
    if (frame.length < 4) {
      this.protocolError(`response of ${frame.length} bytes from ${this.where}`);
      return;
    }
    const corr = frame.readInt32BE(0);
    const p = this.pending[this.pendingHead];
    if (p === undefined || p.correlationId !== corr) {
      this.protocolError(`response with correlation id ${corr} from ${this.where}, expected ${p?.correlationId ?? 'none'}`);
      return;
    }
    this.pending[this.pendingHead++] = undefined as unknown as Pending;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    let at = 4;
    if (p.flexibleHeader) {
      const r = new KafkaReader(frame, 4);
      r.taggedFields();
      at = r.pos;
    }
    p.onResponse(frame, at);
  }

  private onData(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len && !this.closed) {
      if (this.partial !== null) {
        const n = Math.min(this.partial.length - this.filled, len - off);
        chunk.copy(this.partial, this.filled, off, off + n);
        this.filled += n;
        off += n;
        if (this.filled === this.partial.length) {
          const f = this.partial;
          this.partial = null;
          this.deliver(f);
        }
        continue;
      }
      let size: number;
      if (this.headFilled > 0 || len - off < 4) {
        const n = Math.min(4 - this.headFilled, len - off);
        chunk.copy(this.head, this.headFilled, off, off + n);
        this.headFilled += n;
        off += n;
        if (this.headFilled < 4) return;
        this.headFilled = 0;
        size = this.head.readInt32BE(0);
      } else {
        size = chunk.readInt32BE(off);
        off += 4;
      }
      if (size < 0 || size > MAX_RESPONSE_BYTES) {
        this.protocolError(`response frame of ${size} bytes from ${this.where}`);
        return;
      }
      if (len - off >= size) {
        this.deliver(chunk.subarray(off, off + size));
        off += size;
      } else {
        this.partial = Buffer.allocUnsafe(size);
        this.filled = 0;
      }
    }
  }
}
