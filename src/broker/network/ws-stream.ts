/**
 * WebSocketDuplex: a thin byte Duplex over one server-side `ws` WebSocket, so the
 * protocol layer reads and writes a WebSocket exactly as it does a TCP socket.
 *
 * - Reading: the payload of every binary message is pushed in arrival order (the
 *   bytes of consecutive frames are simply concatenated by the consumer's parser;
 *   MQTT packets may span frames or share one). When the readable buffer is full the
 *   WebSocket is paused (its socket stops being read) until the consumer reads again.
 *   A text message is a protocol violation for MQTT (spec §6.0): the connection is
 *   closed with status 1003 and the stream ends.
 * - Writing: every write is sent as one binary frame with no copy (ws corks the header
 *   and the payload into one writev). A write completes at once while the WebSocket's
 *   buffered amount is below the stream's high-water mark, otherwise when that frame
 *   has been handed to the kernel; so a slow reader pushes back on the writer.
 *   Several writes queued behind a slow one are coalesced into one frame when small.
 * - Closing: the peer's close frame ends the readable side (like a TCP FIN); with
 *   `allowHalfOpen: false` the stream then finishes and emits 'close' once the consumer
 *   has read to the end. A connection lost without a close handshake (close code 1006)
 *   destroys the stream at once, like a TCP reset. `end()` sends a close frame (1000)
 *   after the queued data. `destroy()` terminates the WebSocket (the TCP socket is
 *   destroyed at once). A WebSocket error (for example a frame over `maxPayload`)
 *   destroys the stream with that error; the close frame ws sends for it (1009, 1002,
 *   ...) still reaches the peer.
 */
import { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';

/** Queued writes totalling at most this many bytes are sent as one frame. */
const COALESCE_LIMIT = 64 * 1024;

export class WebSocketDuplex extends Duplex {
  private readonly ws: WebSocket;
  /** Callback of the one write waiting for its frame to reach the kernel, if any. */
  private pendingWrite: ((err?: Error | null) => void) | undefined;
  private readEnded = false;
  private rejectedText = false;
  private wsErrored = false;

  constructor(ws: WebSocket, opts: { highWaterMark?: number } = {}) {
    super({
      allowHalfOpen: false,
      decodeStrings: true,
      highWaterMark: opts.highWaterMark ?? 64 * 1024,
    });
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', (code: number) => this.onWsClose(code));
    ws.on('error', (err: Error) => {
      // ws has already sent the matching close frame (e.g. 1009 for a frame over
      // maxPayload) and will end the socket itself; do not cut that frame off.
      this.wsErrored = true;
      this.destroy(err);
    });
  }

  /** The underlying WebSocket (for its `protocol`, ping/pong, or a close with a status code). */
  get webSocket(): WebSocket {
    return this.ws;
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.readEnded || this.destroyed || this.rejectedText) return;
    if (!isBinary) {
      this.rejectedText = true;
      this.ws.close(1003, 'binary frames only');
      return;
    }
    let more: boolean;
    if (Buffer.isBuffer(data)) {
      more = this.push(data);
    } else if (Array.isArray(data)) {
      more = true;
      for (const part of data) more = this.push(part);
    } else {
      more = this.push(Buffer.from(data));
    }
    if (!more) this.ws.pause();
  }

  private onWsClose(code: number): void {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    if (cb) cb(new Error('WebSocket closed before the data was sent'));
    if (!this.readEnded) {
      this.readEnded = true;
      if (!this.destroyed) this.push(null);
    }
    // 1006: the connection went away without a close handshake (reset, terminate,
    // network loss). Like a TCP socket that gets a reset, the stream closes now,
    // whether or not its consumer is reading.
    if (code === 1006 && !this.destroyed) this.destroy();
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendFrame(chunk, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, cb: (err?: Error | null) => void): void {
    if (chunks.length === 1) {
      this.sendFrame(chunks[0]!.chunk, cb);
      return;
    }
    let total = 0;
    for (const c of chunks) total += c.chunk.length;
    if (total <= COALESCE_LIMIT) {
      this.sendFrame(
        Buffer.concat(
          chunks.map((c) => c.chunk),
          total,
        ),
        cb,
      );
      return;
    }
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) {
      if (this.ws.readyState !== WebSocket.OPEN) break;
      this.ws.send(chunks[i]!.chunk, { binary: true });
    }
    this.sendFrame(chunks[last]!.chunk, cb);
  }

  private sendFrame(buf: Buffer, cb: (err?: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) {
      cb(new Error(`WebSocket is not open (readyState ${ws.readyState})`));
      return;
    }
    // The frame is queued in order in any case; only the moment we report the write as
    // done depends on how much is still buffered below us.
    if (ws.bufferedAmount + buf.length < this.writableHighWaterMark) {
      ws.send(buf, { binary: true });
      cb();
      return;
    }
    let done = false;
    const finish = (err?: Error | null): void => {
      if (done) return;
      done = true;
      if (this.pendingWrite === finish) this.pendingWrite = undefined;
      cb(err ?? null);
    };
    this.pendingWrite = finish;
    ws.send(buf, { binary: true }, (err) => finish(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    if (pending) pending(err ?? new Error('stream destroyed'));
    const state = this.ws.readyState;
    if (state !== WebSocket.CLOSED && !(this.wsErrored && state === WebSocket.CLOSING)) this.ws.terminate();
    cb(err);
  }
}
