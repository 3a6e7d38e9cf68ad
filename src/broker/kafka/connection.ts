/**
 * One Kafka client connection: frames (int32 size + request), header, version
 * check, body decode, the handler, response encode. Responses go out in the
 * order requests came. Requests are handled one at a time, except Produce
 * requests to existing topics, which the handler starts synchronously (their
 * appends and idempotent sequences are taken in arrival order) and which may
 * overlap up to MAX_PIPELINED: a producer with several requests in flight
 * keeps the storage busy instead of waiting a round trip per request. Frames
 * that arrive meanwhile are queued (the socket is paused when too many wait).
 *
 * A client that sends and then closes (acks=0) still has every frame it sent
 * handled: a closed peer stops the answers, not the work already received.
 *
 * A malformed frame, an unknown API, an unsupported version of anything but
 * ApiVersions, or a frame larger than `maxRequestBytes` closes this
 * connection and nothing else.
 */
import type { Duplex } from 'node:stream';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { FramePool } from './frame-pool.js';
import { APIS, ApiKey, supportedApiVersions, type ApiDefinition } from './protocol/apis.js';
import { ErrorCode, KafkaDecodeError } from './protocol/errors.js';
import { readHeaderStart, readHeaderTags, writeResponseHeader, type RequestHeader } from './protocol/header.js';
import { KafkaReader } from './protocol/reader.js';
import { KafkaWriter } from './protocol/writer.js';

/** What a handler knows about the connection it serves. */
export interface KafkaClientContext {
  readonly id: number;
  readonly remoteAddress: string;
  readonly listener: string;
  clientId: string;
  /** Set once SASL succeeds (or the listener needs none: then null). */
  principal: string | null;
  authenticated: boolean;
  /** SaslHandshake v0 switches the next frames to raw SASL tokens. */
  rawSaslMechanism: string | null;
  /** Per-connection SASL exchange state (owned by the SASL handler). */
  sasl: unknown;
}

/** What a handler tells the connection about one request's frame. */
export interface FrameUse {
  /**
   * Set by the handler when nothing it started keeps a view into the request's
   * bytes once its promise settles (storage copied them): the frame buffer is then
   * reused for a later request. Left false, the frame is simply dropped.
   */
  reusable: boolean;
}

/** Answers decoded requests; returns the response body, or undefined for none (Produce with acks=0). */
export interface KafkaRequestHandler {
  handle(ctx: KafkaClientContext, api: ApiDefinition, header: RequestHeader, body: unknown, frame?: FrameUse): Promise<unknown>;
  /** Whether this request may overlap the ones after it (its side effects start synchronously in handle()). */
  pipelinable?(api: ApiDefinition, body: unknown): boolean;
  /** Raw SASL token after SaslHandshake v0; returns the raw answer, or throws to close. */
  handleRawSasl(ctx: KafkaClientContext, token: Buffer): Promise<Buffer>;
  onRequest?(api: ApiDefinition, ms: number, failed: boolean): void;
  onBytes?(inBytes: number, outBytes: number): void;
}

export interface KafkaConnectionOptions {
  id: number;
  stream: Duplex;
  remoteAddress: string;
  listener: string;
  requireSasl: boolean;
  maxRequestBytes: number;
  handler: KafkaRequestHandler;
  log: Logger;
  onClose(): void;
}

/** Pause reading when this many frames wait behind the one being handled. */
const MAX_QUEUED_FRAMES = 64;
/** Pipelined requests in flight per connection. */
const MAX_PIPELINED = 16;

export class KafkaConnection {
  readonly ctx: KafkaClientContext;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly frames: Buffer[] = [];
  private busy = false;
  /** We stopped this connection (protocol error, server stop): nothing more is handled. */
  private closed = false;
  /** The stream is gone (peer closed): queued frames are still handled, answers are dropped. */
  private gone = false;
  private paused = false;
  /** Settles when every response so far is written (in order). */
  private lastDone: Promise<void> = Promise.resolve();
  private pipelined = 0;
  private peerEnded = false;
  private readonly writer = new KafkaWriter(64 * 1024);
  private readonly pool = new FramePool();

  constructor(private readonly opts: KafkaConnectionOptions) {
    this.ctx = {
      id: opts.id,
      remoteAddress: opts.remoteAddress,
      listener: opts.listener,
      clientId: '',
      principal: null,
      authenticated: !opts.requireSasl,
      rawSaslMechanism: null,
      sasl: undefined,
    };
    const s = opts.stream;
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (err) => opts.log.debug({ conn: opts.id, err: errorMessage(err) }, 'kafka: connection error'));
    s.on('close', () => this.onClosed());
    // The peer finished sending: answer what it sent, then end our side.
    s.on('end', () => {
      this.peerEnded = true;
      this.endWhenDone();
    });
  }

  close(reason?: string): void {
    if (this.closed) return;
    if (reason) this.opts.log.info({ conn: this.opts.id, client: this.ctx.clientId, remote: this.opts.remoteAddress }, `kafka: closing connection: ${reason}`);
    this.closed = true;
    this.opts.stream.destroy();
  }

  private onClosed(): void {
    this.gone = true;
    this.opts.onClose();
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.gone) return;
    this.opts.handler.onBytes?.(chunk.length, 0);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peekHead();
      const size = head.readInt32BE(0);
      if (size < 0 || size > this.opts.maxRequestBytes) {
        this.close(`request of ${size} bytes exceeds kafka.max_request_bytes (${this.opts.maxRequestBytes})`);
        return;
      }
      if (this.buffered < 4 + size) break;
      this.frames.push(this.take(4 + size).subarray(4));
    }
    if (this.frames.length > MAX_QUEUED_FRAMES && !this.paused) {
      this.paused = true;
      this.opts.stream.pause();
    }
    void this.drain();
  }

  private peekHead(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = this.pool.take(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, want);
      filled += want;
      if (want === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(want);
    }
    this.buffered -= n;
    return out;
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.drainFrames();
    } catch (err) {
      this.opts.log.error({ conn: this.opts.id, err: errorMessage(err) }, 'kafka: connection failed; closing it');
      this.close();
    } finally {
      this.busy = false;
      this.endWhenDone();
    }
  }

  private async drainFrames(): Promise<void> {
    while (!this.closed && this.frames.length > 0) {
      const frame = this.frames.shift()!;
      await this.handleFrame(frame);
      if (this.paused && this.frames.length <= MAX_QUEUED_FRAMES / 2 && !this.gone) {
        this.paused = false;
        this.opts.stream.resume();
      }
      // A reader that does not read its answers (big fetches) holds us back, not our memory.
      if (!this.gone && this.opts.stream.writableNeedDrain) await this.writable();
    }
  }

  private endWhenDone(): void {
    if (!this.peerEnded || this.busy || this.frames.length > 0) return;
    void this.lastDone.then(() => {
      if (!this.busy && this.frames.length === 0 && !this.gone) this.opts.stream.end();
    });
  }

  private writable(): Promise<void> {
    const s = this.opts.stream;
    return new Promise((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', done);
        resolve();
      };
      s.on('drain', done);
      s.on('close', done);
    });
  }

  private async handleFrame(frame: Buffer): Promise<void> {
    if (this.ctx.rawSaslMechanism !== null) {
      await this.lastDone;
      try {
        const answer = await this.opts.handler.handleRawSasl(this.ctx, frame);
        const out = Buffer.allocUnsafe(4 + answer.length);
        out.writeInt32BE(answer.length, 0);
        answer.copy(out, 4);
        this.send(out);
      } catch (err) {
        this.close(`SASL authentication failed: ${errorMessage(err)}`);
      }
      return;
    }
    let header: RequestHeader;
    let api: ApiDefinition | undefined;
    let body: unknown;
    const started = performance.now();
    try {
      const r = new KafkaReader(frame);
      header = readHeaderStart(r);
      if (header.clientId) this.ctx.clientId = header.clientId;
      api = APIS.get(header.apiKey);
      if (!api) {
        this.close(`unknown API key ${header.apiKey}`);
        return;
      }
      if (header.apiVersion < api.minVersion || header.apiVersion > api.maxVersion) {
        if (api.key === ApiKey.ApiVersions) {
          // The client reads v0 of this answer and retries with a version we list.
          await this.lastDone;
          this.respond(header, api, 0, { errorCode: ErrorCode.UNSUPPORTED_VERSION, apiKeys: supportedApiVersions() });
          return;
        }
        this.close(`${api.name} v${header.apiVersion} is not supported (versions ${api.minVersion}-${api.maxVersion})`);
        return;
      }
      const codec = api.request[header.apiVersion]!;
      readHeaderTags(r, codec.flexible);
      body = codec.decode(r);
    } catch (err) {
      this.close(err instanceof KafkaDecodeError ? err.message : `malformed request: ${errorMessage(err)}`);
      return;
    }
    if (!this.ctx.authenticated && api.key !== ApiKey.ApiVersions && api.key !== ApiKey.SaslHandshake && api.key !== ApiKey.SaslAuthenticate) {
      this.close(`${api.name} before SASL authentication on a listener that requires it`);
      return;
    }
    const handler = this.opts.handler;
    const fail = (err: unknown): void => {
      handler.onRequest?.(api, performance.now() - started, true);
      this.opts.log.warn({ conn: this.opts.id, api: api.name, version: header.apiVersion, client: this.ctx.clientId, err: errorMessage(err) }, `kafka: ${api.name} failed; closing the connection`);
      this.close();
    };
    const use: FrameUse = { reusable: false };
    if (handler.pipelinable?.(api, body)) {
      // Started now (its appends are queued in arrival order); answered after every earlier response.
      let handling: Promise<unknown>;
      try {
        handling = handler.handle(this.ctx, api, header, body, use);
      } catch (err) {
        fail(err);
        return;
      }
      this.pipelined++;
      const previous = this.lastDone;
      this.lastDone = Promise.all([previous, handling]).then(
        ([, response]) => {
          this.pipelined--;
          handler.onRequest?.(api, performance.now() - started, false);
          if (response !== undefined && !this.closed) this.respond(header, api, header.apiVersion, response);
          if (use.reusable) this.pool.give(frame);
        },
        (err: unknown) => {
          this.pipelined--;
          fail(err);
        },
      );
      if (this.pipelined >= MAX_PIPELINED) await this.lastDone;
      return;
    }
    // Everything else waits for the requests before it, as in Kafka.
    await this.lastDone;
    if (this.closed) return;
    let response: unknown;
    try {
      response = await handler.handle(this.ctx, api, header, body, use);
    } catch (err) {
      fail(err);
      return;
    }
    handler.onRequest?.(api, performance.now() - started, false);
    if (response !== undefined && !this.closed) this.respond(header, api, header.apiVersion, response);
    if (use.reusable) this.pool.give(frame);
  }

  /** Encodes and sends an answer; an answer that cannot be encoded (a handler bug) closes this connection, never the node. */
  private respond(header: RequestHeader, api: ApiDefinition, version: number, body: unknown): void {
    const codec = api.response[version]!;
    const w = this.writer;
    w.reset();
    try {
      const sizeAt = w.reserveInt32();
      writeResponseHeader(w, header.correlationId, api.key, codec.flexible);
      codec.encode(w, body);
      w.patchInt32(sizeAt, w.pos - 4);
    } catch (err) {
      this.opts.log.error({ conn: this.opts.id, api: api.name, version, err: errorMessage(err) }, `kafka: could not encode the ${api.name} answer; closing the connection`);
      this.close();
      return;
    }
    this.send(w.toBuffer());
    // Do not keep a huge Fetch response's buffer around for the next small answer.
    if (w.buf.length > 8 * 1024 * 1024) this.writer.buf = Buffer.allocUnsafe(64 * 1024);
  }

  private send(buf: Buffer): void {
    if (this.closed || this.gone) return;
    this.opts.handler.onBytes?.(0, buf.length);
    this.opts.stream.write(buf);
  }
}
