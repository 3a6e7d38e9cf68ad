/**
 * Reaches into kafkajs's own protocol encoders and decoders (one per API
 * version, plain JS) so our codecs can be cross-checked against an independent
 * implementation: kafkajs encodes a request, we decode it; we encode a
 * response, kafkajs decodes it.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}

interface KafkajsRequest {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<KafkajsEncoder> | KafkajsEncoder;
}

interface KafkajsResponse {
  decode(raw: Buffer): Promise<Record<string, unknown>>;
  parse?(data: unknown): Promise<unknown>;
}

/** `kafkajsRequest('apiVersions', 2)(...args)` builds kafkajs's request; `.encode()` gives its body bytes. */
export function kafkajsRequest(api: string, version: number): (...args: unknown[]) => KafkajsRequest {
  return require(`kafkajs/src/protocol/requests/${api}/v${version}/request.js`) as (...args: unknown[]) => KafkajsRequest;
}

export function kafkajsResponse(api: string, version: number): KafkajsResponse {
  return require(`kafkajs/src/protocol/requests/${api}/v${version}/response.js`) as KafkajsResponse;
}

/** The body bytes kafkajs sends for a request (no size or header). */
export async function kafkajsRequestBody(api: string, version: number, ...args: unknown[]): Promise<Buffer> {
  const req = kafkajsRequest(api, version)(...args);
  const enc = await req.encode();
  return enc.buffer;
}

/**
 * A kafkajs response module; some (deleteRecords) export a factory taking the
 * request's arguments instead of `{ decode, parse }`, which `args` feed.
 */
export function kafkajsResponseFor(api: string, version: number, ...args: unknown[]): KafkajsResponse {
  const mod = require(`kafkajs/src/protocol/requests/${api}/v${version}/response.js`) as KafkajsResponse | ((...a: unknown[]) => KafkajsResponse);
  return typeof mod === 'function' ? mod(...args) : mod;
}

interface KafkajsDecoderLike {
  buffer: Buffer;
}

/**
 * kafkajs's decode of a response body, with how many bytes of it kafkajs's
 * top-level decoder read (so a field kafkajs does not know about, left over at
 * the end, shows up as consumed < raw.length), and its `parse` of the result.
 * Tracks reads by putting an accessor for `offset` on kafkajs's Decoder
 * prototype for the duration of the call.
 */
export async function kafkajsDecodeResponse(api: string, version: number, raw: Buffer, ...args: unknown[]): Promise<{ decoded: Record<string, unknown>; consumed: number; parsed: unknown }> {
  const Decoder = require('kafkajs/src/protocol/decoder.js') as { prototype: object };
  const proto = Decoder.prototype;
  const slot = Symbol('offset');
  let consumed = 0;
  Object.defineProperty(proto, 'offset', {
    configurable: true,
    get(this: Record<symbol, number>) {
      return this[slot];
    },
    set(this: KafkajsDecoderLike & Record<symbol, number>, v: number) {
      this[slot] = v;
      if (this.buffer === raw && v > consumed) consumed = v;
    },
  });
  try {
    const res = kafkajsResponseFor(api, version, ...args);
    const decoded = await res.decode(raw);
    const parsed = res.parse ? await res.parse(decoded) : decoded;
    return { decoded, consumed, parsed };
  } finally {
    delete (proto as Record<string, unknown>)['offset'];
  }
}

/** A v0/v1 message set as kafkajs writes it (no size prefix). */
export function kafkajsMessageSet(messageVersion: 0 | 1, entries: Array<{ key: string | Buffer | null; value: string | Buffer; timestamp?: number }>): Buffer {
  const MessageSet = require('kafkajs/src/protocol/messageSet/index.js') as (o: unknown) => KafkajsEncoder;
  const { Types } = require('kafkajs/src/protocol/message/compression/index.js') as { Types: { None: number } };
  return MessageSet({ messageVersion, compression: Types.None, entries }).buffer;
}

/** A v2 record batch (magic 2) as kafkajs writes it, uncompressed. */
export async function kafkajsRecordBatch(messages: Array<{ key: string | Buffer | null; value: string | Buffer }>, timestamp: number): Promise<Buffer> {
  const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (o: unknown) => Promise<KafkajsEncoder> };
  const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (o: unknown) => unknown;
  const records = messages.map((m, i) => Record({ ...m, offsetDelta: i, timestampDelta: 0 }));
  const batch = await RecordBatch({ records, firstTimestamp: timestamp, maxTimestamp: timestamp, lastOffsetDelta: records.length - 1 });
  return batch.buffer;
}
