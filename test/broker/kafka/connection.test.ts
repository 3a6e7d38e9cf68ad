/**
 * KafkaConnection over a real socket with a scripted handler: framing across
 * chunks, ApiVersions at an unsupported version, pipelined requests answered
 * in order, and what closes a connection.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { KafkaConnection, type KafkaRequestHandler } from '../../../src/broker/kafka/connection.js';
import { ApiKey, supportedApiVersions, type ApiDefinition } from '../../../src/broker/kafka/protocol/apis.js';
import { ErrorCode } from '../../../src/broker/kafka/protocol/errors.js';
import { KafkaReader } from '../../../src/broker/kafka/protocol/reader.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';

const log = pino({ level: 'silent' });

/** A request frame: size, header v1, then a body written by `body`. */
function frame(apiKey: number, version: number, correlationId: number, body: (w: KafkaWriter) => void = () => undefined): Buffer {
  const w = new KafkaWriter();
  const at = w.reserveInt32();
  w.int16(apiKey);
  w.int16(version);
  w.int32(correlationId);
  w.nullableString('test');
  body(w);
  w.patchInt32(at, w.pos - 4);
  return w.toBuffer();
}

/** Reads whole response frames from a socket. */
class Responses {
  private buf = Buffer.alloc(0);
  readonly frames: Buffer[] = [];
  closed = false;
  private waiters: Array<() => void> = [];
  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
        const n = this.buf.readInt32BE(0);
        this.frames.push(this.buf.subarray(4, 4 + n));
        this.buf = this.buf.subarray(4 + n);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async until(cond: () => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out: ${this.frames.length} frames, closed=${this.closed}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

describe('KafkaConnection', () => {
  let server: Server;
  let port: number;
  let handler: KafkaRequestHandler;
  const handled: string[] = [];

  before(async () => {
    server = createServer((socket) => {
      new KafkaConnection({ id: 1, stream: socket, remoteAddress: 'test', listener: 'PLAINTEXT', requireSasl: false, maxRequestBytes: 1024 * 1024, handler, log, onClose: () => undefined });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(() => server.close());

  async function open(): Promise<{ socket: Socket; responses: Responses }> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', r));
    return { socket, responses: new Responses(socket) };
  }

  it('answers ApiVersions at an unsupported version with UNSUPPORTED_VERSION and the supported list (response header v0)', async () => {
    handler = { handle: async () => ({ errorCode: 0, apiKeys: [] }), handleRawSasl: async () => Buffer.alloc(0) };
    const { socket, responses } = await open();
    socket.write(frame(ApiKey.ApiVersions, 9, 77));
    await responses.until(() => responses.frames.length === 1);
    const r = new KafkaReader(responses.frames[0]!);
    assert.equal(r.int32(), 77);
    assert.equal(r.int16(), ErrorCode.UNSUPPORTED_VERSION);
    const n = r.int32();
    const listed = Array.from({ length: n }, () => ({ apiKey: r.int16(), minVersion: r.int16(), maxVersion: r.int16() }));
    assert.deepEqual(listed, supportedApiVersions());
    assert.ok(listed.some((a) => a.apiKey === ApiKey.Produce && a.maxVersion === 7));
    socket.destroy();
  });

  it('handles frames split across chunks and several frames in one chunk', async () => {
    handled.length = 0;
    handler = {
      handle: async (_ctx, api, header) => {
        handled.push(`${api.name}:${header.correlationId}`);
        return { throttleTimeMs: 0, errorCode: 0, groups: [] };
      },
      handleRawSasl: async () => Buffer.alloc(0),
    };
    const { socket, responses } = await open();
    const all = Buffer.concat([frame(ApiKey.ListGroups, 2, 1), frame(ApiKey.ListGroups, 2, 2), frame(ApiKey.ListGroups, 2, 3)]);
    for (let i = 0; i < all.length; i += 5) socket.write(all.subarray(i, i + 5));
    await responses.until(() => responses.frames.length === 3);
    assert.deepEqual(handled, ['ListGroups:1', 'ListGroups:2', 'ListGroups:3']);
    assert.deepEqual(responses.frames.map((f) => f.readInt32BE(0)), [1, 2, 3]);
    socket.destroy();
  });

  it('answers pipelined requests in request order even when they finish out of order', async () => {
    const delays = [60, 5, 30];
    let started = 0;
    handler = {
      pipelinable: (api: ApiDefinition) => api.key === ApiKey.Produce,
      handle: (_ctx, _api, header) => {
        started++;
        return new Promise((r) => setTimeout(() => r({ responses: [], throttleTimeMs: header.correlationId }), delays[header.correlationId - 1]));
      },
      handleRawSasl: async () => Buffer.alloc(0),
    };
    const body = (w: KafkaWriter) => {
      w.nullableString(null); // transactional id (v3)
      w.int16(1);
      w.int32(1000);
      w.int32(0); // no topics
    };
    const { socket, responses } = await open();
    const t0 = Date.now();
    socket.write(Buffer.concat([frame(ApiKey.Produce, 3, 1, body), frame(ApiKey.Produce, 3, 2, body), frame(ApiKey.Produce, 3, 3, body)]));
    await responses.until(() => responses.frames.length === 3);
    assert.deepEqual(responses.frames.map((f) => f.readInt32BE(0)), [1, 2, 3]);
    assert.equal(started, 3);
    // Overlapped: about the longest delay, not the sum.
    assert.ok(Date.now() - t0 < 60 + 5 + 30, `took ${Date.now() - t0} ms`);
    socket.destroy();
  });

  it('closes the connection on an unknown API key, an unsupported version, a malformed body or an oversized frame', async () => {
    handler = { handle: async () => ({}), handleRawSasl: async () => Buffer.alloc(0) };
    const cases: Buffer[] = [frame(999, 0, 1), frame(ApiKey.Metadata, 42, 1), frame(ApiKey.Metadata, 1, 1, (w) => w.int32(5)), Buffer.from([0x10, 0, 0, 0])];
    for (const bytes of cases) {
      const { socket, responses } = await open();
      socket.write(bytes);
      await responses.until(() => responses.closed);
      assert.equal(responses.frames.length, 0);
    }
  });

  it('an answer that cannot be encoded (a handler bug) closes that connection, not the process', async () => {
    handler = { handle: async () => ({ throttleTimeMs: 0, errorCode: 0, groups: [{ groupId: 5, protocolType: null }] }), handleRawSasl: async () => Buffer.alloc(0) };
    const { socket, responses } = await open();
    socket.write(frame(ApiKey.ListGroups, 2, 1));
    await responses.until(() => responses.closed);
    assert.equal(responses.frames.length, 0);
    // The server still accepts and serves new connections.
    handler = { handle: async () => ({ throttleTimeMs: 0, errorCode: 0, groups: [] }), handleRawSasl: async () => Buffer.alloc(0) };
    const again = await open();
    again.socket.write(frame(ApiKey.ListGroups, 2, 2));
    await again.responses.until(() => again.responses.frames.length === 1);
    again.socket.destroy();
  });

  it('reuses a multi-read frame buffer only for requests whose handler said nothing keeps it', async () => {
    const seen: Array<{ id: number; buffer: ArrayBufferLike; byte: number }> = [];
    let reusable = true;
    handler = {
      handle: async (_ctx, _api, header, body, use) => {
        const records = (body as { topicData: Array<{ partitionData: Array<{ records: Buffer }> }> }).topicData[0]!.partitionData[0]!.records;
        seen.push({ id: header.correlationId, buffer: records.buffer, byte: records[records.length - 1]! });
        if (use) use.reusable = reusable;
        return { responses: [], throttleTimeMs: 0 };
      },
      handleRawSasl: async () => Buffer.alloc(0),
    };
    // Produce v3 with one partition whose records field is 300 KB (more than one socket read).
    const produce = (id: number, fill: number) =>
      frame(ApiKey.Produce, 3, id, (w) => {
        w.nullableString(null);
        w.int16(1);
        w.int32(1000);
        w.int32(1);
        w.string('t');
        w.int32(1);
        w.int32(0);
        w.bytes(Buffer.alloc(300_000, fill));
      });
    const { socket, responses } = await open();
    for (const [id, fill] of [
      [1, 1],
      [2, 2],
    ]) {
      socket.write(produce(id!, fill!));
      await responses.until(() => responses.frames.length === id);
    }
    reusable = false;
    for (const [id, fill] of [
      [3, 3],
      [4, 4],
    ]) {
      socket.write(produce(id!, fill!));
      await responses.until(() => responses.frames.length === id);
    }
    socket.destroy();
    assert.deepEqual(
      seen.map((x) => [x.id, x.byte]),
      [
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
      ],
      'each request sees its own bytes',
    );
    assert.equal(seen[1]!.buffer, seen[0]!.buffer, 'a frame given back carries the next request');
    assert.notEqual(seen[3]!.buffer, seen[2]!.buffer, 'a frame not given back is never reused');
  });

  it('still handles what a client sent before it closed (acks=0 produce)', async () => {
    handled.length = 0;
    handler = {
      handle: async (_ctx, _api, header) => {
        await new Promise((r) => setTimeout(r, 20));
        handled.push(String(header.correlationId));
        return undefined;
      },
      handleRawSasl: async () => Buffer.alloc(0),
    };
    const { socket } = await open();
    const body = (w: KafkaWriter) => {
      w.nullableString(null);
      w.int16(0);
      w.int32(1000);
      w.int32(0);
    };
    socket.end(Buffer.concat([1, 2, 3, 4].map((id) => frame(ApiKey.Produce, 3, id, body))));
    const deadline = Date.now() + 3000;
    while (handled.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(handled, ['1', '2', '3', '4']);
  });
});
